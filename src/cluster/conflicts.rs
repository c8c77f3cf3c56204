//! What an apply does with a field another manager owns. Server-side apply without force stops
//! on such a field; with force it takes the field over, and a controller that set it (an
//! autoscaler's `kube-controller-manager` on `.spec.replicas`, another GitOps tool) sets it
//! back, so the two fight. The policy (`reconcile.conflicts` in `remediator.yaml`) decides per
//! kind of manager: by default a controller's field is refused and any other manager's (an
//! earlier `kubectl apply`, a person's `kubectl edit`, a CI job) is taken over, as a reviewed
//! change should. Pure.

use serde::Serialize;
use serde_json::Value;

use super::dryrun::FieldConflict;
use crate::config::{ConflictMode, ConflictPolicy};

/// The mode `policy` gives one conflict.
pub fn decide(policy: &ConflictPolicy, conflict: &FieldConflict) -> ConflictMode {
    if is_controller(manager_name(&conflict.manager)) {
        policy.controllers
    } else {
        policy.others
    }
}

/// The conflicts `policy` refuses, each as "`field` is owned by manager".
pub fn refused(policy: &ConflictPolicy, conflicts: &[FieldConflict]) -> Vec<String> {
    conflicts
        .iter()
        .filter(|c| decide(policy, c) == ConflictMode::Refuse)
        .map(|c| format!("`{}` is owned by {}", c.field, manager_name(&c.manager)))
        .collect()
}

/// The manager's name out of the API's words: `"kube-controller-manager" using apps/v1` gives
/// `kube-controller-manager`.
pub fn manager_name(manager: &str) -> &str {
    let quoted = manager
        .trim()
        .strip_prefix('"')
        .and_then(|rest| rest.split_once('"'));
    match quoted {
        Some((name, _)) => name,
        None => manager.split_whitespace().next().unwrap_or(manager),
    }
}

/// Managers that are controllers by name: Kubernetes' own, autoscalers, GitOps tools and
/// installers that set their fields back, and the names client-go and controller-runtime
/// give a controller that sets none of its own.
const CONTROLLERS: &[&str] = &[
    "kube-controller-manager",
    "cloud-controller-manager",
    "kube-scheduler",
    "cluster-autoscaler",
    "karpenter",
    "vpa-updater",
    "vpa-recommender",
    "keda-operator",
    "helm",
    "kapp",
    "manager",
    "Go-http-client",
];

/// Whether a manager is a controller: one of [`CONTROLLERS`], an Argo CD or Flux component,
/// or a name that says controller or operator. Anything else (`kubectl`, a CI job's manager, an
/// earlier remediator) is an applier.
pub fn is_controller(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    CONTROLLERS.contains(&name)
        || lower.starts_with("argocd")
        || lower.ends_with("-controller")
        || lower.contains("controller-manager")
        || lower.contains("operator")
}

/// What one object's apply did with the fields others own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// The conflict.
    pub conflict: FieldConflict,
    /// What was done.
    pub mode: ConflictMode,
}

/// Removes the field the API names (`.spec.replicas`, `.spec.template.spec.containers[name="app"].image`)
/// from `object`; whether it was there. Keys that hold dots (`app.kubernetes.io/name`) are
/// matched against the object's own keys, longest first.
pub fn remove_field(object: &mut Value, field: &str) -> bool {
    let Some(rest) = field.strip_prefix('.') else {
        return false;
    };
    remove_at(object, rest)
}

fn remove_at(value: &mut Value, rest: &str) -> bool {
    if let Some(selector) = rest.strip_prefix('[') {
        let Some((inside, after)) = selector.split_once(']') else {
            return false;
        };
        let Some(items) = value.as_array_mut() else {
            return false;
        };
        let Some(position) = items.iter().position(|item| selects(item, inside)) else {
            return false;
        };
        return match after.strip_prefix('.') {
            Some(next) => remove_at(&mut items[position], next),
            None if after.is_empty() => {
                items.remove(position);
                true
            }
            None => remove_at(&mut items[position], after),
        };
    }
    let Some(map) = value.as_object_mut() else {
        return false;
    };
    let mut keys: Vec<String> = map
        .keys()
        .filter(|key| {
            rest.strip_prefix(key.as_str())
                .is_some_and(|after| after.is_empty() || after.starts_with(['.', '[']))
        })
        .cloned()
        .collect();
    keys.sort_by_key(|key| std::cmp::Reverse(key.len()));
    for key in keys {
        let after = &rest[key.len()..];
        if after.is_empty() {
            return map.remove(&key).is_some();
        }
        let next = after.strip_prefix('.').unwrap_or(after);
        if map
            .get_mut(&key)
            .is_some_and(|child| remove_at(child, next))
        {
            return true;
        }
    }
    false
}

/// Whether a list item matches a selector's inside: `name="app"`, `containerPort=80,protocol="TCP"`.
fn selects(item: &Value, inside: &str) -> bool {
    inside.split(',').all(|pair| {
        let Some((key, wanted)) = pair.split_once('=') else {
            return false;
        };
        let wanted = wanted.trim_matches('"');
        match &item[key] {
            Value::String(text) => text == wanted,
            Value::Number(number) => number.to_string() == wanted,
            Value::Bool(flag) => flag.to_string() == wanted,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conflict(manager: &str, field: &str) -> FieldConflict {
        FieldConflict {
            manager: manager.into(),
            field: field.into(),
        }
    }

    #[test]
    fn controllers_are_told_from_appliers() {
        let policy = ConflictPolicy::default();
        for controller in [
            "\"kube-controller-manager\" using apps/v1",
            "\"argocd-controller\"",
            "\"kustomize-controller\"",
            "\"helm-controller\"",
            "\"helm\"",
            "\"manager\"",
            "\"cert-manager-cainjector-controller\"",
            "\"prometheus-operator\"",
        ] {
            assert_eq!(
                decide(&policy, &conflict(controller, ".spec.replicas")),
                ConflictMode::Refuse,
                "{controller}"
            );
        }
        for applier in [
            "\"kubectl\"",
            "\"kubectl-client-side-apply\"",
            "\"kubectl-edit\"",
            "\"gitops\"",
            "\"deploy-ci\" using apps/v1",
            "\"remediator-old\"",
        ] {
            assert_eq!(
                decide(&policy, &conflict(applier, ".spec.replicas")),
                ConflictMode::Force,
                "{applier}"
            );
        }
        assert_eq!(
            manager_name("\"kube-controller-manager\" using apps/v1"),
            "kube-controller-manager"
        );
        assert_eq!(manager_name("kubectl"), "kubectl");
    }

    #[test]
    fn a_rollback_is_never_refused() {
        let rollback = ConflictPolicy::default().for_rollback();
        assert_eq!(rollback.controllers, ConflictMode::SkipField);
        assert_eq!(rollback.others, ConflictMode::Force);
        let all = ConflictPolicy::all(ConflictMode::Refuse).for_rollback();
        assert_eq!(all, ConflictPolicy::all(ConflictMode::SkipField));
    }

    #[test]
    fn fields_are_removed_as_the_api_names_them() {
        let mut object = json!({
            "metadata": {"labels": {"app.kubernetes.io/name": "web", "app": "web"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [
                {"name": "web", "image": "web:1", "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]},
                {"name": "side", "image": "side:1"}
            ]}}}
        });
        assert!(remove_field(&mut object, ".spec.replicas"));
        assert!(remove_field(
            &mut object,
            ".metadata.labels.app.kubernetes.io/name"
        ));
        assert!(remove_field(
            &mut object,
            ".spec.template.spec.containers[name=\"side\"].image"
        ));
        assert!(remove_field(
            &mut object,
            ".spec.template.spec.containers[name=\"web\"].ports[containerPort=80,protocol=\"TCP\"].name"
        ));
        assert!(!remove_field(&mut object, ".spec.paused"));
        assert!(!remove_field(
            &mut object,
            ".spec.template.spec.containers[name=\"gone\"].image"
        ));
        assert_eq!(
            object,
            json!({
                "metadata": {"labels": {"app": "web"}},
                "spec": {"template": {"spec": {"containers": [
                    {"name": "web", "image": "web:1", "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                    {"name": "side"}
                ]}}}
            })
        );
    }
}
