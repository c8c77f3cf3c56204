//! Wave skipping: a change to an environment that `promotion.order` puts after another is
//! weighed against what that earlier environment runs. When the earlier one, as of the parent
//! commit, does not render the object at the change's new values, the change reaches a later
//! wave first (`change.skipsWave` in the policy input). Runs kustomize on the earlier
//! environment's builds.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

use super::{ObjectChange, environment_of};
use crate::config::Config;
use crate::manifests::RepoIndex;
use crate::manifests::path::FieldPath;
use crate::render::{self, AppliedObject, Renderer};

/// Sets [`ObjectChange::skips`] on each change whose earlier environment, in `before` (the
/// parent commit's index), does not run it. A build of the earlier environment that cannot be
/// rendered runs nothing that can be shown: its changes skip it.
pub(super) fn mark_skipped(
    config: &Config,
    renderer: &Renderer,
    before: &RepoIndex,
    changes: &mut [ObjectChange],
) {
    let earlier: BTreeSet<&str> = changes
        .iter()
        .filter_map(|c| config.promotion.previous(c.environment.as_deref()?))
        .collect();
    if earlier.is_empty() {
        return;
    }
    // Only the earlier environments' builds are rendered.
    let builds: BTreeSet<PathBuf> = before
        .builds
        .iter()
        .filter(|b| {
            config
                .environment_for(&b.kustomization)
                .is_some_and(|e| earlier.contains(e.name.as_str()))
        })
        .map(|b| b.dir.clone())
        .collect();
    let rendering = render::objects(before, renderer, |dir, built| {
        !built || builds.contains(dir)
    });
    // Each rendered object with its environment, worked out once.
    let placed: Vec<(&AppliedObject, Option<String>)> = rendering
        .objects
        .iter()
        .map(|o| {
            (
                o,
                environment_of(config, before, &o.placement, &o.unit, None),
            )
        })
        .collect();
    for change in changes.iter_mut() {
        let Some(wave) = change
            .environment
            .as_deref()
            .and_then(|env| config.promotion.previous(env))
        else {
            continue;
        };
        let there = placed.iter().find(|(o, env)| {
            o.id.kind == change.object.kind
                && o.id.name == change.object.name
                && env.as_deref() == Some(wave)
        });
        if !runs(change, there.map(|(o, _)| &o.value)) {
            change.skips = Some(wave.to_owned());
        }
    }
}

/// Whether `there` (the earlier environment's object, if any) holds every field `change` sets
/// at its new value; a removal is run there when the object is gone there too.
fn runs(change: &ObjectChange, there: Option<&Value>) -> bool {
    match (there, &change.after) {
        (None, None) => true,
        (Some(_), None) | (None, Some(_)) => false,
        (Some(there), Some(_)) => change.fields.iter().all(|field| {
            let Ok(path) = field.path.parse::<FieldPath>() else {
                return false;
            };
            path.get(there) == field.new.as_ref()
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{FieldChange, ObjectRef};

    fn change(fields: &[(&str, Value)], after: bool) -> ObjectChange {
        ObjectChange {
            object: ObjectRef::new("apps/v1", "Deployment", Some("shop"), "api"),
            unit: PathBuf::from("prod"),
            placement: PathBuf::from("prod/api.yaml"),
            declared: (PathBuf::from("prod/api.yaml"), 1),
            environment: Some("prod".into()),
            before: Some(json!({})),
            after: after.then(|| json!({})),
            fields: fields
                .iter()
                .map(|(path, new)| FieldChange {
                    file: PathBuf::from("prod/api.yaml"),
                    path: (*path).into(),
                    old: None,
                    new: Some(new.clone()),
                    ratio: None,
                })
                .collect(),
            applier: None,
            unrendered: None,
            skips: None,
        }
    }

    #[test]
    fn an_earlier_wave_runs_a_change_only_with_every_field_at_its_new_value() {
        let staging = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "api", "image": "api:2"}]}}}});
        let image = "spec.template.spec.containers[name=api].image";
        assert!(runs(
            &change(&[(image, json!("api:2"))], true),
            Some(&staging)
        ));
        assert!(!runs(
            &change(&[(image, json!("api:3"))], true),
            Some(&staging)
        ));
        assert!(!runs(
            &change(
                &[(image, json!("api:2")), ("spec.replicas", json!(4))],
                true
            ),
            Some(&staging)
        ));
        assert!(!runs(&change(&[(image, json!("api:2"))], true), None));
        // A removal: run there once it is gone there too.
        assert!(runs(&change(&[], false), None));
        assert!(!runs(&change(&[], false), Some(&staging)));
    }
}
