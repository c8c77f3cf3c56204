//! Who applies a path of the repository, and whether removing an object from Git deletes it from
//! the cluster: a Flux `Kustomization` with `prune: true`, or an Argo CD `Application` with
//! automated pruning, declared in the repository, prunes what it applied. Pure.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::manifests::RepoIndex;

/// A GitOps object that applies a path of the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applier {
    /// What it is: `Flux Kustomization flux-system/apps`.
    pub name: String,
    /// The path it applies, relative to the root (`apps/production`; empty for the root).
    pub path: PathBuf,
    /// Whether it deletes what disappears from the path.
    pub prune: bool,
}

/// Every applier the repository declares.
pub fn appliers(index: &RepoIndex) -> Vec<Applier> {
    let mut out = Vec::new();
    for declaration in &index.declarations {
        let id = &declaration.id;
        let value = &declaration.value;
        let named = |what: &str| {
            let namespace = id.namespace.as_deref().unwrap_or("default");
            format!("{what} {namespace}/{}", id.name)
        };
        if id.group == "kustomize.toolkit.fluxcd.io" && id.kind == "Kustomization" {
            if !index.origin.flux_reads(&index.declarations, declaration) {
                continue;
            }
            let path = value.pointer("/spec/path").and_then(Value::as_str);
            out.push(Applier {
                name: named("Flux Kustomization"),
                path: normalise(path.unwrap_or("")),
                prune: value.pointer("/spec/prune") == Some(&Value::Bool(true)),
            });
        } else if id.group == "argoproj.io" && id.kind == "Application" {
            let prune =
                value.pointer("/spec/syncPolicy/automated/prune") == Some(&Value::Bool(true));
            let sources = crate::manifests::appset::sources(value);
            for source in sources.filter(|s| index.origin.argo_reads(s)) {
                if let Some(path) = source.get("path").and_then(Value::as_str) {
                    out.push(Applier {
                        name: named("Argo CD Application"),
                        path: normalise(path),
                        prune,
                    });
                }
            }
        }
    }
    out
}

/// The applier of `dir` (a build or plain directory): the one with the longest path containing
/// it, as a nested Flux Kustomization takes over its subtree.
pub fn applier_of<'a>(appliers: &'a [Applier], dir: &Path) -> Option<&'a Applier> {
    appliers
        .iter()
        .filter(|a| dir.starts_with(&a.path))
        .max_by_key(|a| a.path.components().count())
}

/// `./apps/production/` as `apps/production`.
fn normalise(path: &str) -> PathBuf {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::{IndexOptions, RepoIndex};

    fn index(files: &[(&str, &str)]) -> (tempfile::TempDir, RepoIndex) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        (dir, index)
    }

    #[test]
    fn flux_and_argo_cd_appliers_are_read_with_their_pruning() {
        let (_dir, index) = index(&[
            (
                "clusters/prod/apps.yaml",
                "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: apps, namespace: flux-system}\nspec: {path: ./apps/production, prune: true}\n",
            ),
            (
                "clusters/prod/infra.yaml",
                "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: infra, namespace: flux-system}\nspec: {path: ./infrastructure}\n",
            ),
            (
                "argo/app.yaml",
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: guestbook, namespace: argocd}\nspec:\n  source: {path: guestbook/}\n  syncPolicy: {automated: {prune: true}}\n",
            ),
        ]);
        let all = appliers(&index);
        assert_eq!(all.len(), 3);
        let apps = applier_of(&all, Path::new("apps/production")).unwrap();
        assert_eq!(apps.name, "Flux Kustomization flux-system/apps");
        assert!(apps.prune);
        let infra = applier_of(&all, Path::new("infrastructure/controllers")).unwrap();
        assert!(!infra.prune, "prune defaults to false");
        let guestbook = applier_of(&all, Path::new("guestbook")).unwrap();
        assert_eq!(guestbook.name, "Argo CD Application argocd/guestbook");
        assert!(guestbook.prune);
        assert_eq!(applier_of(&all, Path::new("other")), None);
    }

    #[test]
    fn the_nearest_applier_wins() {
        let all = vec![
            Applier {
                name: "root".into(),
                path: normalise("./"),
                prune: false,
            },
            Applier {
                name: "apps".into(),
                path: normalise("apps"),
                prune: true,
            },
        ];
        assert_eq!(applier_of(&all, Path::new("apps/x")).unwrap().name, "apps");
        assert_eq!(applier_of(&all, Path::new("infra")).unwrap().name, "root");
    }
}
