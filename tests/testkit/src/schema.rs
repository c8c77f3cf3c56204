//! How server-side apply sees each part of an object: which lists merge by key, which are sets,
//! which maps are atomic. Built-in kinds use the rules of the Kubernetes API types; custom
//! resources read `x-kubernetes-list-type`, `x-kubernetes-list-map-keys` and
//! `x-kubernetes-map-type` from their CRD's schema. Pure data.

use serde_json::Value;

/// How a list merges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListShape {
    /// Replaced as a whole; one owner.
    Atomic,
    /// Items merge by these key fields (`listType: map`).
    Map(Vec<String>),
    /// Scalars merge as a set (`listType: set`).
    Set,
}

/// The schema of one resource type.
#[derive(Clone, Debug)]
pub enum Schema {
    /// A built-in kind, by its `kind`.
    Builtin(String),
    /// A custom resource: its version's `openAPIV3Schema`.
    Custom(Value),
}

/// Where the pod spec sits in each kind that carries one.
fn pod_spec_prefix(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &["spec"],
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => {
            &["spec", "template", "spec"]
        }
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        "PodTemplate" => &["template", "spec"],
        _ => &[],
    }
}

fn keyed(keys: &[&str]) -> ListShape {
    ListShape::Map(keys.iter().map(|k| k.to_string()).collect())
}

fn pod_spec_list(rest: &[&str]) -> Option<ListShape> {
    const CONTAINERS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];
    match rest {
        [name] if CONTAINERS.contains(name) => Some(keyed(&["name"])),
        ["volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates"] => {
            Some(keyed(&["name"]))
        }
        ["hostAliases"] => Some(keyed(&["ip"])),
        ["topologySpreadConstraints"] => Some(keyed(&["topologyKey", "whenUnsatisfiable"])),
        [container, "[]", field] if CONTAINERS.contains(container) => match *field {
            "env" => Some(keyed(&["name"])),
            "ports" => Some(keyed(&["containerPort", "protocol"])),
            "volumeMounts" => Some(keyed(&["mountPath"])),
            "volumeDevices" => Some(keyed(&["devicePath"])),
            "resizePolicy" => Some(keyed(&["resourceName"])),
            _ => None,
        },
        _ => None,
    }
}

fn metadata_list(path: &[&str]) -> Option<ListShape> {
    match path {
        ["metadata", "ownerReferences"] => Some(keyed(&["uid"])),
        ["metadata", "finalizers"] => Some(ListShape::Set),
        _ => None,
    }
}

fn builtin_list(kind: &str, path: &[&str]) -> ListShape {
    if let Some(shape) = metadata_list(path) {
        return shape;
    }
    let prefix = pod_spec_prefix(kind);
    if !prefix.is_empty()
        && path.starts_with(prefix)
        && let Some(shape) = pod_spec_list(&path[prefix.len()..])
    {
        return shape;
    }
    match (kind, path) {
        (_, ["status", "conditions"]) => keyed(&["type"]),
        ("Node", ["status", "addresses"]) => keyed(&["type"]),
        ("Service", ["spec", "ports"]) => keyed(&["port", "protocol"]),
        ("Namespace", ["spec", "finalizers"]) => ListShape::Set,
        _ => ListShape::Atomic,
    }
}

/// Label selectors and selector maps are atomic in every built-in type.
fn builtin_atomic_map(path: &[&str]) -> bool {
    matches!(
        path.last(),
        Some(
            &("selector" | "podSelector" | "namespaceSelector" | "nodeSelector" | "labelSelector")
        )
    ) && path.first() != Some(&"metadata")
}

impl Schema {
    /// How the list at `path` merges; `path` holds field names, with `[]` for a list item.
    pub fn list(&self, path: &[&str]) -> ListShape {
        match self {
            Schema::Builtin(kind) => builtin_list(kind, path),
            Schema::Custom(root) => {
                if let Some(shape) = metadata_list(path) {
                    return shape;
                }
                let Some(node) = descend(root, path) else {
                    return ListShape::Atomic;
                };
                match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("map") => {
                        let keys = node
                            .get("x-kubernetes-list-map-keys")
                            .and_then(Value::as_array)
                            .map(|keys| {
                                keys.iter()
                                    .filter_map(|k| k.as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default();
                        ListShape::Map(keys)
                    }
                    Some("set") => ListShape::Set,
                    _ => ListShape::Atomic,
                }
            }
        }
    }

    /// Whether the map at `path` is owned as a whole.
    pub fn atomic_map(&self, path: &[&str]) -> bool {
        match self {
            Schema::Builtin(_) => builtin_atomic_map(path),
            Schema::Custom(root) => {
                descend(root, path)
                    .and_then(|node| node.get("x-kubernetes-map-type"))
                    .and_then(Value::as_str)
                    == Some("atomic")
            }
        }
    }
}

/// Whether a map at `path` is a struct the API types always carry (so an Update that fills it
/// does not claim the map itself, only its fields).
pub fn always_present(path: &[&str]) -> bool {
    matches!(
        path.last(),
        Some(
            &("metadata"
                | "spec"
                | "status"
                | "template"
                | "strategy"
                | "updateStrategy"
                | "jobTemplate"
                | "resources"
                | "acceptedNames")
        )
    )
}

/// The schema node at `path` of an OpenAPI v3 schema.
pub fn descend<'a>(root: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut node = root;
    for segment in path {
        node = if *segment == "[]" {
            node.get("items")?
        } else {
            match node.get("properties").and_then(|p| p.get(*segment)) {
                Some(child) => child,
                None => node.get("additionalProperties").filter(|a| a.is_object())?,
            }
        };
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_specs_merge_containers_env_and_ports_by_key() {
        let schema = Schema::Builtin("Deployment".into());
        let containers = ["spec", "template", "spec", "containers"];
        assert_eq!(schema.list(&containers), keyed(&["name"]));
        let ports = ["spec", "template", "spec", "containers", "[]", "ports"];
        assert_eq!(schema.list(&ports), keyed(&["containerPort", "protocol"]));
        assert_eq!(
            schema.list(&["spec", "template", "spec", "tolerations"]),
            ListShape::Atomic
        );
        assert!(schema.atomic_map(&["spec", "selector"]));
        assert!(!schema.atomic_map(&["metadata", "labels"]));
    }

    #[test]
    fn custom_resources_follow_their_schema_markers() {
        let schema = Schema::Custom(json!({"properties": {"spec": {"properties": {
            "items": {"type": "array", "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["id"]},
            "tags": {"type": "array", "x-kubernetes-list-type": "set"},
            "sel": {"type": "object", "x-kubernetes-map-type": "atomic"}
        }}}}));
        assert_eq!(schema.list(&["spec", "items"]), keyed(&["id"]));
        assert_eq!(schema.list(&["spec", "tags"]), ListShape::Set);
        assert_eq!(schema.list(&["spec", "other"]), ListShape::Atomic);
        assert!(schema.atomic_map(&["spec", "sel"]));
    }
}
