//! Image rollback: put back the tag that ran before, found in the repository's Git history,
//! where the environment sets it (an overlay's `images:` entry, or the container's `image`).
//! Pure.

use serde_json::Value;

use super::{Declared, Draft, Layer, RemedyResult, Situation, Stop, container_path};
use crate::manifests::path::FieldPath;
use crate::model::{Action, Finding, FindingCode};

pub(super) fn rollback(finding: &Finding, ctx: &Situation) -> RemedyResult {
    let target = finding.target().clone();
    let declared = ctx.declared(&target)?;
    if let Some(values) = &declared.helm {
        return released(finding, ctx, &declared, values);
    }
    let containers: Vec<String> = match (&finding.container, finding.code) {
        (Some(c), FindingCode::ImagePullBackoff) => vec![c.clone()],
        _ => containers(&declared),
    };
    let mut draft = Draft::new(
        finding,
        Action::RollbackImage,
        target.clone(),
        Some(&declared),
        String::new(),
        String::new(),
    );
    let mut moves = Vec::new();
    for container in &containers {
        let Some(image_path) = container_path(&declared.declaration.id.kind, container, "image")
        else {
            continue;
        };
        let (image_location, image_doc) = ctx.field_location(&declared, &image_path);
        let Some(image) = image_path
            .get(&image_doc)
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            continue;
        };
        let name = image_name(&image).to_owned();
        let overlay = declared.kustomization.and_then(|k| {
            let entry = k.kustomization.images.iter().find(|i| i.name == name)?;
            let tag = entry.new_tag.clone()?;
            let path: FieldPath = format!("images[name={name}].newTag").parse().ok()?;
            Some((
                k.location.clone(),
                serde_json::to_value(&k.kustomization).ok()?,
                path,
                tag,
            ))
        });
        let (location, doc, path, current, object) = match overlay {
            Some((location, doc, path, tag)) => (location, doc, path, tag, None),
            None => (
                image_location.clone(),
                image_doc,
                image_path.clone(),
                image.clone(),
                Some(&declared.declaration.id),
            ),
        };
        let running = format!(
            "{name}:{}",
            current
                .rsplit_once(':')
                .map_or(current.as_str(), |(_, tag)| tag)
        );
        if let Some(failing) = finding
            .fact("image")
            .filter(|f| *f != running && *f != current)
        {
            return Err(Stop::Diagnosis(format!(
                "the repository already declares `{running}` for `{container}`, not the failing `{failing}`: it waits to be synced"
            )));
        }
        // The layers that may set the image, most specific first: the overlay's `images:`
        // entry, the file the edit goes to (an overlay's patch), the base's declaration. What
        // ran before is the previous effective value across their history: a patch that is new
        // has none of its own, and the base's value at the time is what ran.
        let base = &declared.declaration;
        let mut layers = vec![Layer {
            file: &location.file,
            object,
            path: path.clone(),
            image_tag: false,
        }];
        for file in [&image_location.file, &base.location.file] {
            if layers.iter().all(|l| l.file != file.as_path()) {
                layers.push(Layer {
                    file,
                    object: Some(&base.id),
                    path: image_path.clone(),
                    image_tag: object.is_none(),
                });
            }
        }
        let previous = ctx
            .history
            .previous_effective(&layers, &Value::String(current.clone()))
            .map_err(|e| Stop::Diagnosis(format!("no earlier image can be looked up: {e}")))?;
        let Some(Value::String(previous)) = previous else {
            continue;
        };
        moves.push(format!("`{container}` {current} → {previous}"));
        draft.rollback = format!("Revert the commit: `{container}` goes back to {current}.");
        draft.set(&location, &doc, path, Value::String(previous));
    }
    if moves.is_empty() {
        return Err(Stop::Diagnosis(
            "the repository's Git history has no earlier image for the failing container to roll back to".into(),
        ));
    }
    draft.summary = format!("Roll back the image of {target}: {}", moves.join(", "));
    Ok(draft.finish())
}

/// The rollback of an image a Helm release's values set: the container's `image.tag` key (under
/// the key the chart's templates give the container, `sidecar.image.tag`), in the layer of the
/// values that belongs to the release, back to the value it had across all the layers before.
fn released(
    finding: &Finding,
    ctx: &Situation,
    declared: &Declared,
    values: &super::helm::HelmValues,
) -> RemedyResult {
    let target = finding.target().clone();
    let container = finding.container.clone().ok_or_else(|| {
        Stop::Diagnosis(format!(
            "the finding names no container of {target} whose image to roll back"
        ))
    })?;
    let key = values.image_key_for(&container);
    let path = values.path(&key).map_err(Stop::Diagnosis)?;
    let (location, doc) = ctx.field_location(declared, &path);
    let written = path.get(&doc).cloned();
    let current = match &written {
        Some(Value::String(tag)) => tag.clone(),
        Some(Value::Number(tag)) => tag.to_string(),
        _ => {
            return Err(Stop::Diagnosis(format!(
                "the values of {} set no `{key}` in the repository: the failing tag comes from elsewhere (the chart's defaults, or its appVersion); roll back the chart's version or set `{key}`",
                values.release
            )));
        }
    };
    if let Some(failing) = finding.fact("image")
        && failing.rsplit_once(':').map(|(_, tag)| tag) != Some(current.as_str())
    {
        return Err(Stop::Diagnosis(format!(
            "the repository already declares `{key}: {current}` for `{container}`, not the tag of the failing `{failing}`: it waits to be synced"
        )));
    }
    // The layers of the values, most specific first; a values file is one document, the release's
    // own values are in the release.
    let mut layers: Vec<Layer> = Vec::new();
    let release = &declared.declaration.id;
    for layer in values.layers.iter().rev() {
        let path = values.layer_path(layer, &key).map_err(Stop::Diagnosis)?;
        layers.push(Layer {
            file: &layer.location.file,
            object: (!layer.prefix.is_empty()).then_some(release),
            path,
            image_tag: false,
        });
    }
    for file in [&location.file, &declared.declaration.location.file] {
        if layers.iter().all(|l| l.file != file.as_path()) {
            layers.push(Layer {
                file,
                object: Some(release),
                path: path.clone(),
                image_tag: false,
            });
        }
    }
    // Under a Flux release's own values: its chart's defaults and `valuesFrom` values files.
    for layer in values.defaults.iter().rev() {
        if declared
            .index
            .values_files
            .contains_key(&layer.location.file)
        {
            layers.push(Layer {
                file: &layer.location.file,
                object: None,
                path: values.layer_path(layer, &key).map_err(Stop::Diagnosis)?,
                image_tag: false,
            });
        }
    }
    let previous = ctx
        .history
        .previous_effective(&layers, written.as_ref().unwrap_or(&Value::Null))
        .map_err(|e| Stop::Diagnosis(format!("no earlier image can be looked up: {e}")))?;
    // A tag written as a number (`tag: 2`) compares as its text.
    let (previous, written) = match previous {
        Some(Value::String(tag)) => (tag.clone(), Value::String(tag)),
        // Written back as it was written: a number stays a number.
        Some(Value::Number(tag)) => (tag.to_string(), Value::Number(tag)),
        _ => {
            return Err(Stop::Diagnosis(format!(
                "the repository's Git history has no earlier `{key}` in the values of {} to roll back to",
                values.release
            )));
        }
    };
    let mut draft = Draft::new(
        finding,
        Action::RollbackImage,
        target.clone(),
        Some(declared),
        format!(
            "Roll back the image of {target}: `{container}` {current} → {previous} (`{key}` in the values of {})",
            values.release
        ),
        format!("Revert the commit: `{container}` goes back to {current}."),
    );
    draft.set(&location, &doc, path, written);
    Ok(draft.finish())
}

/// Container names of the declared workload's pod template.
fn containers(declared: &Declared) -> Vec<String> {
    let spec = &declared.declaration.value["spec"]["template"]["spec"]["containers"];
    spec.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect()
}

/// The image without its tag or digest: `ghcr.io/acme/api:1.2` → `ghcr.io/acme/api`.
pub(crate) fn image_name(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => image,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::*;
    use super::super::{Remedy, Situation, remediate};
    use super::image_name;
    use crate::model::{Finding, FindingCode, ObjectRef, Severity, Snapshot};

    fn pull_failure(image: &str) -> Finding {
        let target = ObjectRef::new("apps/v1", "Deployment", Some("shop"), "worker");
        let mut f = Finding::new(
            FindingCode::ImagePullBackoff,
            Severity::Critical,
            target.clone(),
            "x".into(),
        )
        .with("image", image);
        f.owner = Some(target);
        f.container = Some("worker".into());
        f
    }

    #[test]
    fn the_previous_tag_goes_back_into_the_overlay() {
        let (index, config) = example();
        let snapshot = Snapshot::default();
        let history = FixedHistory(json!("3.2.0"));
        let ctx = Situation {
            history: &history,
            actions_dir: "r".into(),
            ..context(&index, &config, &snapshot)
        };
        let r = proposal(remediate(
            &pull_failure("ghcr.io/acme/shop-worker:3.3.0"),
            &ctx,
        ));
        assert_eq!(
            edits(&r),
            [
                "clusters/prod/kustomization.yaml: images[name=ghcr.io/acme/shop-worker].newTag = \"3.2.0\""
            ]
        );
        assert!(r.summary.contains("3.3.0 → 3.2.0"), "{}", r.summary);
    }

    #[test]
    fn no_history_or_an_already_fixed_repository_is_a_diagnosis() {
        let (index, config) = example();
        let snapshot = Snapshot::default();
        let ctx = Situation {
            actions_dir: "r".into(),
            ..context(&index, &config, &snapshot)
        };
        assert!(matches!(
            remediate(&pull_failure("ghcr.io/acme/shop-worker:3.3.0"), &ctx),
            Remedy::Diagnosis { .. }
        ));
        let history = FixedHistory(json!("3.2.0"));
        let ctx = Situation {
            history: &history,
            ..ctx
        };
        let Remedy::Diagnosis { reason, .. } =
            remediate(&pull_failure("ghcr.io/acme/shop-worker:9.9.9"), &ctx)
        else {
            panic!()
        };
        assert!(
            reason.contains("already declares `ghcr.io/acme/shop-worker:3.3.0`"),
            "{reason}"
        );
    }

    /// Writes `files` into the repository at `dir` and commits them.
    fn commit(dir: &std::path::Path, files: &[(&str, &str)]) {
        let repo = git2::Repository::open(dir).unwrap();
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, "m", &tree, &parents)
            .unwrap();
    }

    #[test]
    fn a_tag_bumped_in_a_new_overlay_patch_rolls_back_to_what_the_base_ran() {
        let worker = |tag: &str| {
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: worker}}\nspec:\n  template:\n    spec:\n      containers:\n        - name: worker\n          image: ghcr.io/acme/worker:{tag}\n"
            )
        };
        let layout = |patched: bool| {
            let prod = if patched {
                "namespace: shop\nresources: [../base]\npatches:\n  - path: patch.yaml\n"
            } else {
                "namespace: shop\nresources: [../base]\n"
            };
            vec![
                (
                    "base/kustomization.yaml",
                    "resources: [worker.yaml]\n".to_owned(),
                ),
                ("base/worker.yaml", worker("1.0")),
                ("prod/kustomization.yaml", prod.to_owned()),
                (
                    "dev/kustomization.yaml",
                    "namespace: shop-dev\nresources: [../base]\n".to_owned(),
                ),
            ]
        };
        let run = |history_of: &[Vec<(&str, String)>]| {
            let dir = tempfile::tempdir().unwrap();
            git2::Repository::init(dir.path()).unwrap();
            for files in history_of {
                let borrowed: Vec<(&str, &str)> =
                    files.iter().map(|(p, t)| (*p, t.as_str())).collect();
                commit(dir.path(), &borrowed);
            }
            let index =
                crate::manifests::RepoIndex::build(dir.path(), &Default::default()).unwrap();
            let config = crate::config::Config::default();
            let snapshot = Snapshot::default();
            let repo = crate::git::ConfigRepo::open(dir.path()).unwrap();
            let history = crate::git::GitHistory::new(&repo);
            let ctx = Situation {
                history: &history,
                ..context(&index, &config, &snapshot)
            };
            let mut failure = pull_failure("ghcr.io/acme/worker:1.1");
            failure.container = Some("worker".into());
            remediate(&failure, &ctx)
        };
        let patch = ("prod/patch.yaml", worker("1.1"));
        // 1.0 ran in prod from the base; a later commit bumped it in a new patch.
        let mut bumped = layout(true);
        bumped.push(patch.clone());
        let r = proposal(run(&[layout(false), bumped.clone()]));
        assert_eq!(
            edits(&r),
            [
                "prod/patch.yaml: spec.template.spec.containers[name=worker].image = \"ghcr.io/acme/worker:1.0\""
            ]
        );
        // The patch was there from the start: the base's 1.0 never ran in prod.
        assert!(matches!(run(&[bumped]), Remedy::Diagnosis { .. }));
    }

    #[test]
    fn image_names() {
        assert_eq!(image_name("ghcr.io/acme/api:1.2"), "ghcr.io/acme/api");
        assert_eq!(image_name("localhost:5000/api"), "localhost:5000/api");
        assert_eq!(image_name("redis@sha256:abc"), "redis");
        assert_eq!(image_name("redis"), "redis");
    }
}
