//! The proof of a proposal by rendering: every kustomize build that reads a changed file is
//! rendered before and after the edit (kustomize's origin and transformer annotations on), and
//! so are the Helm values of every Argo CD Application whose values layers changed. A build or
//! an Application of another environment must come out as before; the target, where a build or
//! an Application of its environment renders it, must show each new value. What does not is a
//! reason to drop the proposal, naming the transformers that set the field instead. I/O: through
//! [`Renderer`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::Config;
use crate::manifests::diff::FileChange;
use crate::manifests::path::FieldPath;
use crate::manifests::{Build, RepoIndex, parse_text};
use crate::remedy::Remediation;
use crate::render::{Failure, Rendered, Renderer, identity};

/// What rendering showed, for the pull request; an error when it disproves the edit.
pub fn prove(
    index: &RepoIndex,
    config: &Config,
    renderer: &Renderer,
    remediation: &Remediation,
    files: &[FileChange],
) -> Result<Vec<String>, String> {
    let own = remediation.environment.as_deref();
    let mut said = Vec::new();
    let edits: Vec<(&Path, &str)> = files
        .iter()
        .map(|f| (f.path.as_path(), f.new.as_str()))
        .collect();
    let builds = index
        .builds
        .iter()
        .filter(|b| !b.component && files.iter().any(|f| b.reads(&f.path)));
    for build in builds {
        let shown = crate::manifests::display_dir(&build.dir);
        let environments = environments_of_build(index, config, build);
        // A build any other environment applies (alone, or beside this one) must not change;
        // only then is it rendered before the edit too.
        let other = own.is_some_and(|own| environments.iter().any(|e| e != own));
        let before = if other {
            match renderer.render(&index.root, build) {
                Ok(rendered) => rendered,
                Err(failure) => {
                    said.push(not_rendered(&shown, &failure));
                    continue;
                }
            }
        } else {
            Vec::new()
        };
        let after = match renderer.render_edited(&index.root, build, &edits) {
            Ok(rendered) => rendered,
            // What keeps a build from rendering at all (no kustomize, a remote source not
            // allowed) says so; a failure the edit brings disproves it.
            Err(failure) if !other && renderer.render(&index.root, build).is_err() => {
                said.push(not_rendered(&shown, &failure));
                continue;
            }
            Err(failure) => {
                return Err(format!(
                    "`{shown}` does not render after the edit: {failure}"
                ));
            }
        };
        if other {
            if !same(&before, &after) {
                return Err(format!(
                    "the edit changes what `{shown}` renders, a build of environment {}: a fix for {} must leave it as it is",
                    environments.join(", "),
                    own.unwrap_or("one environment")
                ));
            }
            said.push(format!("`{shown}` renders as before"));
            continue;
        }
        let checked = check_fields(&shown, &after, index, remediation, build)?;
        if !checked.is_empty() {
            said.push(format!("`{shown}` renders {}", checked.join(", ")));
        }
    }
    said.extend(prove_values(index, config, remediation, files)?);
    Ok(said)
}

/// The environments a build is applied in: the one the configuration's paths give its
/// kustomization, else those of the Flux Kustomizations and Argo CD Applications that apply it.
fn environments_of_build(index: &RepoIndex, config: &Config, build: &Build) -> Vec<String> {
    if let Some(env) = config.environment_for(&build.kustomization) {
        return vec![env.name.clone()];
    }
    let mut out: Vec<String> = crate::remedy::appliers_of(index, &build.dir)
        .iter()
        .filter_map(|(_, file)| config.environment_for(file))
        .map(|e| e.name.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Why a build was not rendered, for the pull request.
fn not_rendered(shown: &str, failure: &Failure) -> String {
    format!("`{shown}` not rendered: {failure}")
}

/// Whether two renders are the same objects.
fn same(before: &[Rendered], after: &[Rendered]) -> bool {
    before.len() == after.len() && before.iter().zip(after).all(|(a, b)| a.value == b.value)
}

/// Each new value of a file `build` reads, as the rendered objects it is for hold it: the
/// target for a field of its own, a rendered HelmRelease or Application for one of a release's
/// values. What each holds, for the pull request; an error naming the transformers that left a
/// value otherwise.
fn check_fields(
    shown: &str,
    after: &[Rendered],
    index: &RepoIndex,
    remediation: &Remediation,
    build: &Build,
) -> Result<Vec<String>, String> {
    let mut said = Vec::new();
    for field in remediation.fields.iter().filter(|f| build.reads(&f.file)) {
        let (Some(new), Ok(path)) = (&field.new, field.path.parse::<FieldPath>()) else {
            continue;
        };
        // A kustomization's `images:` and `replicas:` entries, as the target holds them.
        if index
            .kustomizations
            .iter()
            .any(|k| k.location.file == field.file)
        {
            if let Some(held) = kustomization_entry(&field.path, new, after, index, remediation) {
                said.push(held?);
            }
            continue;
        }
        let released = field.path.starts_with("spec.values.") || field.path.contains(".helm.");
        let candidates: Vec<&Rendered> = after
            .iter()
            .filter(|r| {
                let kind = r.value["kind"].as_str().unwrap_or_default();
                if released {
                    matches!(kind, "HelmRelease" | "Application")
                } else {
                    identity(&r.value, &index.scopes) == remediation.target
                }
            })
            .collect();
        if candidates.is_empty() {
            continue;
        }
        if let Some(holder) = candidates.iter().find(|r| path.get(&r.value) == Some(new)) {
            let object = identity(&holder.value, &index.scopes).to_string();
            let value = format!("{} = {new}", said_path(&field.path));
            // One object named once, with each of its values.
            match said
                .iter_mut()
                .find(|s: &&mut String| s.starts_with(&format!("{object} with ")))
            {
                Some(known) => known.push_str(&format!(" and {value}")),
                None => said.push(format!("{object} with {value}")),
            }
            continue;
        }
        let target = candidates[0];
        let got = path
            .get(&target.value)
            .map_or("nothing".to_owned(), Value::to_string);
        let by = if target.transformations.is_empty() {
            String::new()
        } else {
            format!(
                "; the transformers that changed it after its declaration: {}",
                target.transformations.join(", ")
            )
        };
        return Err(format!(
            "rendering `{shown}` after the edit gives `{}` = {got}, not {new}: a later layer sets it{by}; change it there",
            field.path
        ));
    }
    Ok(said)
}

/// A field path for the pull request: a container's field by the container's name.
fn said_path(path: &str) -> String {
    let container = [
        "spec.template.spec.containers[name=",
        "spec.jobTemplate.spec.template.spec.containers[name=",
    ]
    .iter()
    .find_map(|prefix| path.strip_prefix(prefix))
    .and_then(|rest| rest.split_once("]."));
    match container {
        Some((name, field)) => format!("`{field}` of `{name}`"),
        None => format!("`{path}`"),
    }
}

/// The target as rendered holds a kustomization's entry `path` (`images[name=ui].newTag`,
/// `replicas[name=ui].count`) at `new`: what it holds, or an error; `None` for another entry, or
/// when the build does not render the target.
fn kustomization_entry(
    path: &str,
    new: &Value,
    after: &[Rendered],
    index: &RepoIndex,
    remediation: &Remediation,
) -> Option<Result<String, String>> {
    let target = after
        .iter()
        .find(|r| identity(&r.value, &index.scopes) == remediation.target)?;
    let name = path
        .strip_prefix("images[name=")
        .or_else(|| path.strip_prefix("replicas[name="))?
        .split(']')
        .next()?;
    let new_text = match new {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    if path.starts_with("replicas[") {
        let got = &target.value["spec"]["replicas"];
        return Some(if got == new {
            Ok(format!("{} with {got} replicas", remediation.target))
        } else {
            Err(format!(
                "rendering after the edit gives {} {got} replicas, not {new_text}: a later layer sets them",
                remediation.target
            ))
        });
    }
    let spec = &target.value["spec"]["template"]["spec"];
    let images: Vec<&str> = ["containers", "initContainers"]
        .iter()
        .filter_map(|list| spec[*list].as_array())
        .flatten()
        .filter_map(|c| c["image"].as_str())
        .filter(|image| crate::remedy::image_name(image) == name)
        .collect();
    if images.is_empty() {
        return None;
    }
    Some(
        if images
            .iter()
            .all(|image| image.ends_with(&format!(":{new_text}")))
        {
            Ok(format!("{} with {}", remediation.target, images.join(", ")))
        } else {
            Err(format!(
                "rendering after the edit gives {} image {}, not tag {new_text}: a later layer sets it",
                remediation.target,
                images.join(", ")
            ))
        },
    )
}

/// The values of each Argo CD Application whose Helm values layers the edit changes, merged as
/// Argo CD merges them, before and after: one of another environment must merge as before; one
/// of the target's environment must hold each new value.
fn prove_values(
    index: &RepoIndex,
    config: &Config,
    remediation: &Remediation,
    files: &[FileChange],
) -> Result<Vec<String>, String> {
    let own = remediation.environment.as_deref();
    let edited: BTreeMap<&Path, &str> = files
        .iter()
        .map(|f| (f.path.as_path(), f.new.as_str()))
        .collect();
    let mut said = Vec::new();
    for (app, file) in index.argo_applications() {
        let name = app
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let Some((before, inputs)) = crate::remedy::argo_values(index, app, &BTreeMap::new())
        else {
            continue;
        };
        let touched = inputs
            .iter()
            .chain([file])
            .any(|f| edited.contains_key(f.as_path()));
        if !touched {
            continue;
        }
        // The Application as edited, when its own file changed.
        let app_after = match edited.get(file.as_path()) {
            Some(text) => parse_text(file, text)
                .documents
                .into_iter()
                .map(|d| d.value)
                .find(|v| v.pointer("/metadata/name") == app.pointer("/metadata/name"))
                .unwrap_or_else(|| app.clone()),
            None => app.clone(),
        };
        // Every edited file as it will read: a values file the edit makes is among them.
        let overrides: BTreeMap<PathBuf, Value> = edited
            .iter()
            .filter_map(|(f, text)| {
                let value = parse_text(f, text).documents.into_iter().next()?.value;
                Some((f.to_path_buf(), value))
            })
            .collect();
        let Some((after, inputs_after)) = crate::remedy::argo_values(index, &app_after, &overrides)
        else {
            continue;
        };
        let inputs: Vec<PathBuf> = inputs.into_iter().chain(inputs_after).collect();
        let environment = config.environment_for(file).map(|e| e.name.clone());
        let other = own.is_some_and(|own| environment.as_deref().is_some_and(|e| e != own));
        if other {
            if before != after {
                return Err(format!(
                    "the edit changes the Helm values of Argo CD Application {name} of environment {}: a fix for {} must leave them as they are",
                    environment.unwrap_or_default(),
                    own.unwrap_or("one environment")
                ));
            }
            said.push(format!(
                "Argo CD Application {name} merges its values as before"
            ));
            continue;
        }
        // Each new value of a layer it reads, as it merges them: an edit a later layer
        // overrides changes nothing.
        for field in &remediation.fields {
            let Some(new) = &field.new else { continue };
            let key = if field.file == *file {
                match field.path.split_once(".helm.valuesObject.") {
                    Some((_, key)) => key.to_owned(),
                    None => continue,
                }
            } else if inputs.contains(&field.file) {
                field.path.clone()
            } else {
                continue;
            };
            let pointer = format!("/{}", key.replace('.', "/"));
            let got = after.pointer(&pointer);
            if got != Some(new) {
                let got = got.map_or("nothing".to_owned(), Value::to_string);
                return Err(format!(
                    "Argo CD Application {name} merges `{key}` = {got} after the edit, not {new}: a later values layer sets it; change it there"
                ));
            }
            said.push(format!("Argo CD Application {name} merges `{key}` = {new}"));
        }
    }
    Ok(said)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::manifests::IndexOptions;
    use crate::model::{Action, Finding, FindingCode, ObjectRef, Severity};

    const CONFIG: &str = "environments:
  - name: prod
    paths: [\"argo/prod.yaml\", \"clusters/prod/**\"]
  - name: dev
    paths: [\"argo/dev.yaml\", \"clusters/dev/**\"]
";

    fn app(env: &str, files: &str) -> String {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {{name: web-{env}, namespace: argocd}}\nspec:\n  source:\n    path: chart\n    helm:\n      valueFiles: {files}\n"
        )
    }

    /// A remediation of `target` in prod that sets `path` in `file` to `new`.
    fn remediation(target: ObjectRef, file: &str, path: &str, new: Value) -> Remediation {
        let finding = Finding::new(
            FindingCode::CrashLoopOom,
            Severity::Warning,
            target.clone(),
            "x".into(),
        );
        Remediation {
            id: "1".into(),
            finding,
            action: Action::RaiseMemory,
            labels: Default::default(),
            environment: Some("prod".into()),
            target,
            summary: String::new(),
            fields: vec![crate::model::FieldChange {
                file: file.into(),
                path: path.into(),
                old: None,
                new: Some(new),
                ratio: None,
            }],
            rollback: String::new(),
            changes: vec![],
        }
    }

    fn repo(files: &[(&str, &str)]) -> (tempfile::TempDir, RepoIndex, Config) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        let config = Config::parse(Path::new("remediator.yaml"), CONFIG).unwrap();
        (dir, index, config)
    }

    #[test]
    fn a_build_two_environments_apply_must_render_as_before() {
        if !crate::render::kustomize_for_test(
            "a_build_two_environments_apply_must_render_as_before",
        ) {
            return;
        }
        let flux = |path: &str| {
            format!(
                "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {{name: apps, namespace: flux-system}}\nspec:\n  path: {path}\n  sourceRef: {{kind: GitRepository, name: flux-system}}\n"
            )
        };
        let deployment = |limit: &str| {
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: api, namespace: shop}}\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: api:1\n          resources: {{limits: {{memory: {limit}}}}}\n"
            )
        };
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in [
            (
                "apps/shared/kustomization.yaml",
                "resources: [api.yaml]\n".to_owned(),
            ),
            ("apps/shared/api.yaml", deployment("256Mi")),
            ("clusters/prod/apps.yaml", flux("./apps/shared")),
            ("clusters/dev/apps.yaml", flux("./apps/shared")),
        ] {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        let config = Config::parse(Path::new("remediator.yaml"), CONFIG).unwrap();
        let renderer = Renderer::from_path(Default::default());
        let target = ObjectRef::new("apps/v1", "Deployment", Some("shop"), "api");
        let path = "spec.template.spec.containers[name=api].resources.limits.memory";
        let r = remediation(target, "apps/shared/api.yaml", path, json!("384Mi"));
        let files = [FileChange {
            path: "apps/shared/api.yaml".into(),
            old: deployment("256Mi"),
            new: deployment("384Mi"),
        }];
        // Edited in place for prod, the base dev applies too would change.
        let error = prove(&index, &config, &renderer, &r, &files).unwrap_err();
        assert!(
            error.contains(
                "the edit changes what `apps/shared` renders, a build of environment dev, prod"
            ),
            "{error}"
        );
    }

    #[test]
    fn values_another_environment_reads_must_merge_as_before() {
        let (_dir, index, config) = repo(&[
            (
                "chart/Chart.yaml",
                "apiVersion: v2\nname: web\nversion: 1.0.0\n",
            ),
            ("chart/values.yaml", "resources: {}\n"),
            ("chart/values-prod.yaml", "replicaCount: 3\n"),
            (
                "argo/prod.yaml",
                &app("prod", "[values.yaml, values-prod.yaml]"),
            ),
            ("argo/dev.yaml", &app("dev", "[values.yaml]")),
        ]);
        let target = ObjectRef::new("apps/v1", "Deployment", Some("web-prod"), "web-prod-web");
        // No kustomize build reads these files: the values alone prove them.
        let renderer = Renderer::new(Err(crate::render::Missing), Default::default());
        let limit = json!("384Mi");
        let prove_edit = |file: &str, text: &str, path: &str| {
            let files = [FileChange {
                path: file.into(),
                old: String::new(),
                new: text.into(),
            }];
            let r = remediation(target.clone(), file, path, limit.clone());
            prove(&index, &config, &renderer, &r, &files)
        };
        // Prod's own file: prod merges the new value, dev is not touched.
        let said = prove_edit(
            "chart/values-prod.yaml",
            "replicaCount: 3\nresources:\n  limits: {memory: 384Mi}\n",
            "resources.limits.memory",
        )
        .unwrap();
        assert_eq!(
            said,
            ["Argo CD Application web-prod merges `resources.limits.memory` = \"384Mi\""]
        );
        // The chart's shared defaults: dev's values change too.
        let error = prove_edit(
            "chart/values.yaml",
            "resources:\n  limits: {memory: 384Mi}\n",
            "resources.limits.memory",
        )
        .unwrap_err();
        assert!(
            error.contains(
                "the edit changes the Helm values of Argo CD Application web-dev of environment dev"
            ),
            "{error}"
        );
        // A later layer of prod's that sets the key wins over the edit.
        let (_dir, index, config) = repo(&[
            (
                "chart/Chart.yaml",
                "apiVersion: v2\nname: web\nversion: 1.0.0\n",
            ),
            ("chart/values.yaml", "resources: {}\n"),
            (
                "chart/values-prod.yaml",
                "resources:\n  limits: {memory: 256Mi}\n",
            ),
            ("chart/values-base.yaml", "{}\n"),
            (
                "argo/prod.yaml",
                &app("prod", "[values.yaml, values-base.yaml, values-prod.yaml]"),
            ),
        ]);
        let files = [FileChange {
            path: "chart/values-base.yaml".into(),
            old: String::new(),
            new: "resources:\n  limits: {memory: 384Mi}\n".into(),
        }];
        let r = remediation(
            target.clone(),
            "chart/values-base.yaml",
            "resources.limits.memory",
            limit.clone(),
        );
        let error = prove(&index, &config, &renderer, &r, &files).unwrap_err();
        assert!(
            error.contains(
                "merges `resources.limits.memory` = \"256Mi\" after the edit, not \"384Mi\""
            ),
            "{error}"
        );
    }
}
