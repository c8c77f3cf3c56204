//! Which appliers declared in the repository read this repository at the branch under review.
//! A Flux Kustomization reads the source its `sourceRef` names, and an Argo CD Application the
//! `repoURL` and `targetRevision` of each source: a tenant's Kustomization that syncs another
//! repository, or this one at another branch, applies nothing of this branch, whatever its
//! `path`. Pure.

use serde_json::Value;

use super::Declaration;

/// The repository as the GitOps tools clone it, when known: its URL (the remote's), and the
/// branch whose commits are reviewed and applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upstream {
    /// The remote's URL.
    pub url: Option<String>,
    /// The branch.
    pub branch: Option<String>,
}

/// `https://github.com/org/repo.git`, `ssh://git@github.com/org/repo` and
/// `git@github.com:org/repo` as `github.com/org/repo`, lower-cased.
fn canonical(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    let rest = match url.split_once("://") {
        Some((_, rest)) => rest.to_owned(),
        // scp-like `user@host:path`.
        None => match url.split_once(':') {
            Some((host, path)) if !host.contains('/') => format!("{host}/{path}"),
            _ => url.to_owned(),
        },
    };
    let rest = match rest.split_once('@') {
        Some((user, after)) if !user.contains('/') => after.to_owned(),
        _ => rest,
    };
    rest.to_lowercase()
}

/// Whether two Git URLs name the same repository.
pub fn same_repository(a: &str, b: &str) -> bool {
    canonical(a) == canonical(b)
}

impl Upstream {
    /// Whether a source at `url`, following `reference`, is this repository's branch. What is
    /// not known is not held against it: without this repository's URL any URL may be it, and
    /// without its branch any branch may be.
    fn is(&self, url: Option<&str>, reference: Reference<'_>) -> bool {
        if let (Some(ours), Some(theirs)) = (&self.url, url)
            && !same_repository(ours, theirs)
        {
            return false;
        }
        match reference {
            Reference::Default => true,
            Reference::Branch(branch) => self.branch.as_deref().is_none_or(|b| b == branch),
            // A tag, a semver range or a commit does not follow any branch's new commits.
            Reference::Pinned => false,
        }
    }

    /// Whether the Flux Kustomization `kustomization` reads this repository's branch:
    /// its `sourceRef` names a GitRepository that is, or one the repository does not declare
    /// (the bootstrap's own `flux-system`, as a rule). Other kinds of source (OCIRepository,
    /// Bucket) are built elsewhere.
    pub fn flux_reads(&self, declarations: &[Declaration], kustomization: &Declaration) -> bool {
        let source = kustomization.value.pointer("/spec/sourceRef");
        let kind = source
            .and_then(|s| s.get("kind"))
            .and_then(Value::as_str)
            .unwrap_or("GitRepository");
        if kind != "GitRepository" {
            return false;
        }
        let Some(name) = source.and_then(|s| s.get("name")).and_then(Value::as_str) else {
            return true;
        };
        let namespace = source
            .and_then(|s| s.get("namespace"))
            .and_then(Value::as_str)
            .or(kustomization.id.namespace.as_deref());
        let declared = declarations.iter().find(|d| {
            d.id.group == "source.toolkit.fluxcd.io"
                && d.id.kind == "GitRepository"
                && d.id.name == name
                && d.id.namespace.as_deref() == namespace
        });
        let Some(repository) = declared else {
            return true;
        };
        let spec = &repository.value["spec"];
        let reference = match &spec["ref"] {
            Value::Object(r) => match r.get("branch").and_then(Value::as_str) {
                Some(_) if r.keys().any(|k| k != "branch") => Reference::Pinned,
                Some(branch) => Reference::Branch(branch),
                None if r.is_empty() => Reference::Default,
                None => Reference::Pinned,
            },
            _ => Reference::Default,
        };
        self.is(spec["url"].as_str(), reference)
    }

    /// Whether an Argo CD Application's source reads this repository's branch.
    pub fn argo_reads(&self, source: &Value) -> bool {
        if source.get("chart").is_some() {
            return false;
        }
        let reference = match source["targetRevision"].as_str() {
            None | Some("" | "HEAD") => Reference::Default,
            // A branch name, a tag or a commit: only a branch of ours is known as ours.
            Some(revision) if self.branch.as_deref() == Some(revision) => {
                Reference::Branch(revision)
            }
            Some(revision) if is_commit(revision) => Reference::Pinned,
            Some(revision) => match &self.branch {
                Some(_) => Reference::Pinned,
                None => Reference::Branch(revision),
            },
        };
        self.is(source["repoURL"].as_str(), reference)
    }
}

/// What a source follows.
enum Reference<'a> {
    /// The repository's default branch.
    Default,
    /// A branch.
    Branch(&'a str),
    /// A tag, a semver range, a commit.
    Pinned,
}

fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The branch a full reference name is: `refs/heads/main`, or `refs/remotes/origin/main` for
/// one of `remotes`; `None` for a tag or anything else.
pub fn branch_of(reference: &str, remotes: &[String]) -> Option<String> {
    if let Some(branch) = reference.strip_prefix("refs/heads/") {
        return Some(branch.to_owned());
    }
    let tracking = reference.strip_prefix("refs/remotes/")?;
    remotes
        .iter()
        .find_map(|remote| tracking.strip_prefix(&format!("{remote}/")))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::{IndexOptions, RepoIndex};

    #[test]
    fn one_repository_under_its_many_urls() {
        for url in [
            "https://github.com/FluxCD/flux2-multi-tenancy.git",
            "ssh://git@github.com/fluxcd/flux2-multi-tenancy",
            "git@github.com:fluxcd/flux2-multi-tenancy.git",
            "https://github.com/fluxcd/flux2-multi-tenancy/",
        ] {
            assert!(
                same_repository(url, "https://github.com/fluxcd/flux2-multi-tenancy"),
                "{url}"
            );
        }
        assert!(!same_repository(
            "https://github.com/fluxcd/flux2-multi-tenancy",
            "https://github.com/fluxcd/flux2-kustomize-helm-example"
        ));
    }

    #[test]
    fn a_reference_names_its_branch() {
        let remotes = ["origin".to_owned(), "up/stream".to_owned()];
        assert_eq!(
            branch_of("refs/remotes/origin/release/1.2", &remotes).as_deref(),
            Some("release/1.2")
        );
        assert_eq!(
            branch_of("refs/remotes/up/stream/main", &remotes).as_deref(),
            Some("main")
        );
        assert_eq!(
            branch_of("refs/heads/main", &remotes).as_deref(),
            Some("main")
        );
        assert_eq!(branch_of("refs/tags/v1", &remotes), None);
        assert_eq!(branch_of("refs/remotes/fork/main", &remotes), None);
    }

    /// flux2-multi-tenancy's layout: the tenant's Kustomization has no path and syncs the
    /// same repository at the tenant's own branch.
    #[test]
    fn a_kustomization_reads_this_branch_only_through_a_source_that_follows_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            (
                "tenants/dev-team/sync.yaml",
                "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: dev-team, namespace: apps}\nspec: {url: 'https://github.com/org/fleet', ref: {branch: dev-team}}\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: dev-team, namespace: apps}\nspec: {sourceRef: {kind: GitRepository, name: dev-team}, prune: true}\n",
            ),
            (
                "clusters/staging/tenants.yaml",
                "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: tenants, namespace: flux-system}\nspec: {path: ./tenants/staging, sourceRef: {kind: GitRepository, name: flux-system}}\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: oci, namespace: flux-system}\nspec: {path: ./, sourceRef: {kind: OCIRepository, name: manifests}}\n---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: pinned, namespace: flux-system}\nspec: {url: 'https://github.com/org/fleet', ref: {tag: v1.0.0}}\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: pinned, namespace: flux-system}\nspec: {path: ./, sourceRef: {kind: GitRepository, name: pinned}}\n",
            ),
        ];
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        let reads = |origin: &Upstream, name: &str| {
            let kustomization = index
                .declarations
                .iter()
                .find(|d| d.id.kind == "Kustomization" && d.id.name == name)
                .unwrap();
            origin.flux_reads(&index.declarations, kustomization)
        };
        let main = Upstream {
            url: Some("git@github.com:org/fleet.git".into()),
            branch: Some("main".into()),
        };
        assert!(reads(&main, "tenants"), "flux-system is not declared: ours");
        assert!(!reads(&main, "dev-team"), "another branch");
        assert!(!reads(&main, "oci"), "an OCI artifact");
        assert!(!reads(&main, "pinned"), "a tag follows no branch");
        let elsewhere = Upstream {
            url: Some("https://github.com/org/other".into()),
            branch: None,
        };
        assert!(!reads(&elsewhere, "dev-team"), "another repository");
        assert!(
            reads(&Upstream::default(), "dev-team"),
            "nothing known: may be ours"
        );
    }

    #[test]
    fn an_application_reads_this_branch_through_its_url_and_revision() {
        let main = Upstream {
            url: Some("https://git.example.com/platform.git".into()),
            branch: Some("main".into()),
        };
        let source = |url: &str, revision: Option<&str>| {
            let mut s = serde_json::json!({"repoURL": url, "path": "apps"});
            if let Some(r) = revision {
                s["targetRevision"] = r.into();
            }
            s
        };
        let ours = "https://git.example.com/platform";
        assert!(main.argo_reads(&source(ours, None)));
        assert!(main.argo_reads(&source(ours, Some("HEAD"))));
        assert!(main.argo_reads(&source(ours, Some("main"))));
        assert!(!main.argo_reads(&source(ours, Some("v1.2.0"))));
        assert!(!main.argo_reads(&source("https://git.example.com/other", None)));
        assert!(!main.argo_reads(&serde_json::json!({"repoURL": ours, "chart": "web"})));
        assert!(Upstream::default().argo_reads(&source(ours, Some("staging"))));
    }
}
