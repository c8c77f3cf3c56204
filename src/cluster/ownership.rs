//! Who manages a live object, read from its markers: Argo CD (tracking-id annotation in its plain
//! and namespaced forms, instance labels), Flux (kustomize- and helm-controller labels), Helm
//! (release annotations), kapp, and the field managers in `managedFields`. The answer says whether
//! remediator applies the object itself or leaves it to the GitOps tool and only waits. Pure.

use serde::Serialize;
use serde_json::Value;

/// A GitOps tool or installer that owns an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "tool", rename_all = "kebab-case")]
pub enum Owner {
    /// An Argo CD Application.
    ArgoCd {
        /// The Application's name.
        application: String,
        /// The Application's namespace, when the marker names it.
        namespace: Option<String>,
    },
    /// A Flux Kustomization.
    FluxKustomization {
        /// Its name.
        name: String,
        /// Its namespace.
        namespace: String,
    },
    /// A Flux HelmRelease.
    FluxHelmRelease {
        /// Its name.
        name: String,
        /// Its namespace.
        namespace: String,
    },
    /// A Helm release installed by hand or by CI.
    Helm {
        /// The release name.
        release: String,
        /// The release namespace.
        namespace: Option<String>,
    },
    /// A kapp app.
    Kapp {
        /// The app's label value.
        app: String,
    },
}

impl Owner {
    /// Whether the owner reconciles from Git on its own, so remediator must not apply.
    pub fn reconciles(&self) -> bool {
        matches!(
            self,
            Owner::ArgoCd { .. } | Owner::FluxKustomization { .. } | Owner::FluxHelmRelease { .. }
        )
    }

    /// A short human name: `Argo CD application shop`.
    pub fn describe(&self) -> String {
        match self {
            Owner::ArgoCd { application, .. } => format!("Argo CD application {application}"),
            Owner::FluxKustomization { name, namespace } => {
                format!("Flux Kustomization {namespace}/{name}")
            }
            Owner::FluxHelmRelease { name, namespace } => {
                format!("Flux HelmRelease {namespace}/{name}")
            }
            Owner::Helm { release, .. } => format!("Helm release {release}"),
            Owner::Kapp { app } => format!("kapp app {app}"),
        }
    }
}

/// One entry of `managedFields`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldManager {
    /// The manager's name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// `status`, `scale`, or empty.
    pub subresource: String,
}

/// What remediator does with an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Handling {
    /// Server-side apply under remediator's own field manager.
    Apply,
    /// The owner syncs the merged change; remediator waits for it.
    HandOff,
}

/// Who manages an object and what remediator does about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ownership {
    /// The GitOps tool or installer, if any marker names one.
    pub owner: Option<Owner>,
    /// The field managers, in managedFields order.
    pub managers: Vec<FieldManager>,
    /// Apply, or hand off.
    pub handling: Handling,
}

fn text<'a>(object: &'a Value, pointer: &str, key: &str) -> Option<&'a str> {
    object
        .pointer(pointer)?
        .get(key)?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// Parses an Argo CD tracking id: `app:group/kind:namespace/name`, or with the Application's
/// namespace, `appns_app:group/kind:namespace/name`.
pub fn argocd_tracking(id: &str) -> Option<Owner> {
    let (application, rest) = id.split_once(':')?;
    let (_, target) = rest.split_once(':')?;
    if application.is_empty() || !target.contains('/') {
        return None;
    }
    Some(match application.split_once('_') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => Owner::ArgoCd {
            application: name.into(),
            namespace: Some(namespace.into()),
        },
        _ => Owner::ArgoCd {
            application: application.into(),
            namespace: None,
        },
    })
}

fn owner(object: &Value) -> Option<Owner> {
    let label = |key: &str| text(object, "/metadata/labels", key);
    let annotation = |key: &str| text(object, "/metadata/annotations", key);
    if let Some(owner) = annotation("argocd.argoproj.io/tracking-id").and_then(argocd_tracking) {
        return Some(owner);
    }
    if let (Some(name), Some(namespace)) = (
        label("helm.toolkit.fluxcd.io/name"),
        label("helm.toolkit.fluxcd.io/namespace"),
    ) {
        return Some(Owner::FluxHelmRelease {
            name: name.into(),
            namespace: namespace.into(),
        });
    }
    if let (Some(name), Some(namespace)) = (
        label("kustomize.toolkit.fluxcd.io/name"),
        label("kustomize.toolkit.fluxcd.io/namespace"),
    ) {
        return Some(Owner::FluxKustomization {
            name: name.into(),
            namespace: namespace.into(),
        });
    }
    if let Some(app) = label("argocd.argoproj.io/instance") {
        return Some(Owner::ArgoCd {
            application: app.into(),
            namespace: None,
        });
    }
    let argo_managed = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|e| {
            e.iter().any(|e| {
                e["manager"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("argocd"))
            })
        });
    if let (Some(app), true) = (label("app.kubernetes.io/instance"), argo_managed) {
        return Some(Owner::ArgoCd {
            application: app.into(),
            namespace: None,
        });
    }
    if let Some(release) = annotation("meta.helm.sh/release-name") {
        let namespace = annotation("meta.helm.sh/release-namespace").map(str::to_string);
        return Some(Owner::Helm {
            release: release.into(),
            namespace,
        });
    }
    label("kapp.k14s.io/app").map(|app| Owner::Kapp { app: app.into() })
}

/// Reads the ownership markers of a live object.
pub fn ownership(object: &Value) -> Ownership {
    let managers = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|e| FieldManager {
                    manager: e["manager"].as_str().unwrap_or_default().into(),
                    operation: e["operation"].as_str().unwrap_or_default().into(),
                    subresource: e["subresource"].as_str().unwrap_or_default().into(),
                })
                .collect()
        })
        .unwrap_or_default();
    let owner = owner(object);
    let handling = if owner.as_ref().is_some_and(Owner::reconciles) {
        Handling::HandOff
    } else {
        Handling::Apply
    };
    Ownership {
        owner,
        managers,
        handling,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(labels: Value, annotations: Value, managers: &[&str]) -> Value {
        let entries: Vec<Value> = managers
            .iter()
            .map(|m| json!({"manager": m, "operation": "Apply"}))
            .collect();
        json!({"metadata": {"labels": labels, "annotations": annotations, "managedFields": entries}})
    }

    #[test]
    fn every_marker_names_its_owner_and_handling() {
        let argo = |id: &str| {
            object(
                json!({}),
                json!({"argocd.argoproj.io/tracking-id": id}),
                &[],
            )
        };
        let cases = [
            (
                argo("shop:apps/Deployment:prod/web"),
                Some(Owner::ArgoCd {
                    application: "shop".into(),
                    namespace: None,
                }),
                Handling::HandOff,
            ),
            (
                argo("argocd_shop:apps/Deployment:prod/web"),
                Some(Owner::ArgoCd {
                    application: "shop".into(),
                    namespace: Some("argocd".into()),
                }),
                Handling::HandOff,
            ),
            (
                object(
                    json!({"argocd.argoproj.io/instance": "shop"}),
                    json!({}),
                    &[],
                ),
                Some(Owner::ArgoCd {
                    application: "shop".into(),
                    namespace: None,
                }),
                Handling::HandOff,
            ),
            (
                object(
                    json!({"app.kubernetes.io/instance": "shop"}),
                    json!({}),
                    &["argocd-controller"],
                ),
                Some(Owner::ArgoCd {
                    application: "shop".into(),
                    namespace: None,
                }),
                Handling::HandOff,
            ),
            (
                object(
                    json!({"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}),
                    json!({}),
                    &["kustomize-controller"],
                ),
                Some(Owner::FluxKustomization {
                    name: "apps".into(),
                    namespace: "flux-system".into(),
                }),
                Handling::HandOff,
            ),
            (
                object(
                    json!({"helm.toolkit.fluxcd.io/name": "redis", "helm.toolkit.fluxcd.io/namespace": "data"}),
                    json!({"meta.helm.sh/release-name": "redis", "meta.helm.sh/release-namespace": "data"}),
                    &["helm-controller"],
                ),
                Some(Owner::FluxHelmRelease {
                    name: "redis".into(),
                    namespace: "data".into(),
                }),
                Handling::HandOff,
            ),
            (
                object(
                    json!({"app.kubernetes.io/managed-by": "Helm"}),
                    json!({"meta.helm.sh/release-name": "redis", "meta.helm.sh/release-namespace": "data"}),
                    &["helm"],
                ),
                Some(Owner::Helm {
                    release: "redis".into(),
                    namespace: Some("data".into()),
                }),
                Handling::Apply,
            ),
            (
                object(
                    json!({"kapp.k14s.io/app": "1700000000"}),
                    json!({}),
                    &["kapp"],
                ),
                Some(Owner::Kapp {
                    app: "1700000000".into(),
                }),
                Handling::Apply,
            ),
            (
                object(
                    json!({"app.kubernetes.io/instance": "shop"}),
                    json!({}),
                    &["kubectl"],
                ),
                None,
                Handling::Apply,
            ),
            (
                object(json!({}), json!({}), &["kubectl-client-side-apply"]),
                None,
                Handling::Apply,
            ),
        ];
        for (object, owner, handling) in cases {
            let found = ownership(&object);
            assert_eq!(found.owner, owner, "{object}");
            assert_eq!(found.handling, handling, "{object}");
        }
    }

    #[test]
    fn managers_are_listed_and_bad_tracking_ids_ignored() {
        let found = ownership(&object(
            json!({}),
            json!({"argocd.argoproj.io/tracking-id": "nonsense"}),
            &["kubectl", "hpa"],
        ));
        assert_eq!(found.owner, None);
        let names: Vec<&str> = found.managers.iter().map(|m| m.manager.as_str()).collect();
        assert_eq!(names, ["kubectl", "hpa"]);
        assert_eq!(argocd_tracking("app:apps/Deployment"), None);
    }
}
