//! Image rollback: put back the tag that ran before, found in the repository's Git history,
//! where the environment sets it (an overlay's `images:` entry, or the container's `image`).
//! Pure.

use serde_json::Value;

use super::{Context, Declared, Draft, RemedyResult, Stop, container_path};
use crate::manifests::path::FieldPath;
use crate::model::{Action, Finding, FindingCode};

pub(super) fn rollback(finding: &Finding, ctx: &Context) -> RemedyResult {
    let target = finding.target().clone();
    let declared = ctx.declared(&target)?;
    if let Some(values) = &declared.helm {
        return Err(Stop::Diagnosis(format!(
            "{target} is made by {}; roll its image back in the release's values (commonly `image.tag`) or with the release's own history",
            values.release
        )));
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
        let (location, doc) = ctx.field_location(&declared, &image_path);
        let Some(image) = image_path
            .get(&doc)
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
                location,
                doc,
                image_path,
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
        let previous = ctx
            .history
            .previous(
                &location.file,
                object,
                &path,
                &Value::String(current.clone()),
            )
            .map_err(|e| Stop::Diagnosis(format!("no earlier image can be looked up: {e}")))?;
        let Some(Value::String(previous)) = previous else {
            continue;
        };
        moves.push(format!("`{container}` {current} → {previous}"));
        draft.rollback = format!("Revert the commit: `{container}` goes back to {current}.");
        draft.set(&location, &doc, path, Value::String(previous));
    }
    if draft.changes.is_empty() {
        return Err(Stop::Diagnosis(
            "the repository's Git history has no earlier image for the failing container to roll back to".into(),
        ));
    }
    draft.summary = format!("Roll back the image of {target}: {}", moves.join(", "));
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
    use super::super::{Context, Outcome, remediate};
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
        let ctx = Context {
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
        let ctx = Context {
            actions_dir: "r".into(),
            ..context(&index, &config, &snapshot)
        };
        assert!(matches!(
            remediate(&pull_failure("ghcr.io/acme/shop-worker:3.3.0"), &ctx),
            Outcome::Diagnosis { .. }
        ));
        let history = FixedHistory(json!("3.2.0"));
        let ctx = Context {
            history: &history,
            ..ctx
        };
        let Outcome::Diagnosis { reason, .. } =
            remediate(&pull_failure("ghcr.io/acme/shop-worker:9.9.9"), &ctx)
        else {
            panic!()
        };
        assert!(
            reason.contains("already declares `ghcr.io/acme/shop-worker:3.3.0`"),
            "{reason}"
        );
    }

    #[test]
    fn image_names() {
        assert_eq!(image_name("ghcr.io/acme/api:1.2"), "ghcr.io/acme/api");
        assert_eq!(image_name("localhost:5000/api"), "localhost:5000/api");
        assert_eq!(image_name("redis@sha256:abc"), "redis");
        assert_eq!(image_name("redis"), "redis");
    }
}
