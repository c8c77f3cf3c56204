//! The resource types the test server serves (built-in kinds and the custom resources of
//! established CRDs) and the discovery documents that describe them. Pure data.

use serde_json::{Value, json};

use crate::schema::Schema;

/// One served resource type.
#[derive(Clone, Debug)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// API version within the group.
    pub version: String,
    /// Plural resource name in URLs.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// The kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Serves `/status`.
    pub status: bool,
    /// Serves `/scale` (replicas at `spec.replicas`).
    pub scale: bool,
    /// Keeps `metadata.generation`.
    pub generation: bool,
    /// kubectl short names.
    pub short_names: Vec<String>,
    /// How apply merges this type.
    pub schema: Schema,
}

impl ResourceType {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for the core group, as NotFound messages name it.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Deployment.apps`, or `Pod`, as Invalid messages name it.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// The discovery entries of this type and its subresources.
    pub fn discovery(&self) -> Vec<Value> {
        let verbs = [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ];
        let verbs: Vec<&str> = verbs
            .into_iter()
            .filter(|v| !(self.plural == "namespaces" && *v == "deletecollection"))
            .collect();
        let mut main = json!({
            "name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
            "kind": self.kind, "verbs": verbs,
        });
        if !self.short_names.is_empty() {
            main["shortNames"] = json!(self.short_names);
        }
        let mut out = vec![main];
        if self.status {
            out.push(json!({"name": format!("{}/status", self.plural), "singularName": "",
                "namespaced": self.namespaced, "kind": self.kind, "verbs": ["get", "patch", "update"]}));
        }
        if self.scale {
            out.push(
                json!({"name": format!("{}/scale", self.plural), "singularName": "",
                "namespaced": self.namespaced, "group": "autoscaling", "version": "v1",
                "kind": "Scale", "verbs": ["get", "patch", "update"]}),
            );
        }
        out
    }
}

/// (group, version, plural, kind, namespaced, status, scale, generation, short names)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    bool,
    bool,
    bool,
    &'static [&'static str],
);

#[rustfmt::skip]
const BUILTIN: &[Row] = &[
    ("", "v1", "configmaps", "ConfigMap", true, false, false, false, &["cm"]),
    ("", "v1", "events", "Event", true, false, false, false, &["ev"]),
    ("", "v1", "namespaces", "Namespace", false, true, false, false, &["ns"]),
    ("", "v1", "nodes", "Node", false, true, false, false, &["no"]),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true, true, false, false, &["pvc"]),
    ("", "v1", "pods", "Pod", true, true, false, true, &["po"]),
    ("", "v1", "secrets", "Secret", true, false, false, false, &[]),
    ("", "v1", "serviceaccounts", "ServiceAccount", true, false, false, false, &["sa"]),
    ("", "v1", "services", "Service", true, true, false, false, &["svc"]),
    ("apps", "v1", "daemonsets", "DaemonSet", true, true, false, true, &["ds"]),
    ("apps", "v1", "deployments", "Deployment", true, true, true, true, &["deploy"]),
    ("apps", "v1", "replicasets", "ReplicaSet", true, true, true, true, &["rs"]),
    ("apps", "v1", "statefulsets", "StatefulSet", true, true, true, true, &["sts"]),
    ("batch", "v1", "jobs", "Job", true, true, false, true, &[]),
    ("batch", "v1", "cronjobs", "CronJob", true, true, false, true, &["cj"]),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", true, true, false, true, &["hpa"]),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true, true, false, true, &["pdb"]),
    ("networking.k8s.io", "v1", "ingresses", "Ingress", true, true, false, true, &["ing"]),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true, false, false, true, &["netpol"]),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role", true, false, false, false, &[]),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true, false, false, false, &[]),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false, false, false, false, &[]),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false, false, false, false, &[]),
    ("coordination.k8s.io", "v1", "leases", "Lease", true, false, false, false, &[]),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false, true, false, true, &["crd", "crds"]),
];

/// Whether `group` holds built-in types (the core group included).
pub fn is_builtin_group(group: &str) -> bool {
    static GROUPS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        let mut groups: Vec<String> = builtin().into_iter().map(|t| t.group).collect();
        groups.dedup();
        groups
    });
    GROUPS.iter().any(|g| g == group)
}

/// The built-in resource types.
pub fn builtin() -> Vec<ResourceType> {
    BUILTIN
        .iter()
        .map(
            |&(group, version, plural, kind, namespaced, status, scale, generation, short)| {
                ResourceType {
                    group: group.into(),
                    version: version.into(),
                    plural: plural.into(),
                    singular: kind.to_lowercase(),
                    kind: kind.into(),
                    namespaced,
                    status,
                    scale,
                    generation,
                    short_names: short.iter().map(|s| s.to_string()).collect(),
                    schema: Schema::Builtin(kind.into()),
                }
            },
        )
        .collect()
}

/// The resource types an established CRD serves, one per served version.
pub fn from_crd(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let names = &spec["names"];
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(false))
        .map(|version| ResourceType {
            group: text(&spec["group"]),
            version: text(&version["name"]),
            plural: text(&names["plural"]),
            singular: names["singular"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| text(&names["kind"]).to_lowercase()),
            kind: text(&names["kind"]),
            namespaced: spec["scope"].as_str() != Some("Cluster"),
            status: version.pointer("/subresources/status").is_some(),
            scale: version.pointer("/subresources/scale").is_some(),
            generation: true,
            short_names: names["shortNames"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .filter_map(|n| n.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            schema: Schema::Custom(
                version
                    .pointer("/schema/openAPIV3Schema")
                    .cloned()
                    .unwrap_or(Value::Null),
            ),
        })
        .collect()
}

/// `/api`.
pub fn core_versions(address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]})
}

/// `/apis`: one entry per group, versions in the order they were registered.
pub fn group_list(types: &[ResourceType]) -> Value {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, versions)) if !versions.contains(&t.version) => {
                versions.push(t.version.clone())
            }
            Some(_) => {}
            None => groups.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    let groups: Vec<Value> = groups
        .iter()
        .map(|(group, versions)| {
            let entries: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
                .collect();
            json!({"name": group, "versions": entries, "preferredVersion": entries[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/api/v1` or `/apis/G/V`; `None` when nothing is served there.
pub fn resource_list(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let served: Vec<&ResourceType> = types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let resources: Vec<Value> = served.iter().flat_map(|t| t.discovery()).collect();
    let group_version = served[0].api_version();
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": group_version, "resources": resources}))
}

/// `/openapi/v3`: one entry per served group version.
pub fn openapi_root(types: &[ResourceType]) -> Value {
    let mut paths = serde_json::Map::new();
    for t in types {
        let path = openapi_path(t);
        let url = format!("/openapi/v3/{path}?hash={}", types.len());
        paths.insert(path, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

fn openapi_path(t: &ResourceType) -> String {
    if t.group.is_empty() {
        format!("api/{}", t.version)
    } else {
        format!("apis/{}/{}", t.group, t.version)
    }
}

/// `/openapi/v3/apis/G/V`: the item paths of each type with the query parameters their patch
/// accepts, which is what kubectl reads to learn that the server validates fields itself.
pub fn openapi_group_version(types: &[ResourceType], path: &str) -> Option<Value> {
    let served: Vec<&ResourceType> = types.iter().filter(|t| openapi_path(t) == path).collect();
    if served.is_empty() {
        return None;
    }
    let parameters: Vec<Value> = ["fieldValidation", "fieldManager", "force", "dryRun"]
        .iter()
        .map(|name| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}}))
        .collect();
    let mut paths = serde_json::Map::new();
    for t in served {
        let scope = if t.namespaced {
            "namespaces/{namespace}/"
        } else {
            ""
        };
        let item = format!("/{path}/{scope}{}/{{name}}", t.plural);
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        paths.insert(
            item,
            json!({"patch": {"operationId": format!("patch{}", t.kind), "parameters": parameters,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk}}),
        );
    }
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.36.2"},
        "paths": paths, "components": {"schemas": {}}}),
    )
}
