//! Which kinds are cluster-scoped, so that an object without a namespace gets `default` only
//! when it lives in a namespace. Offline, the answer comes from the built-in kinds' known scope
//! and from the CustomResourceDefinitions the repository declares (`spec.scope`); any other
//! kind's scope is unknown, and said to be, never guessed from its name (OLM's namespaced
//! `ClusterServiceVersion` starts with `Cluster`). With a cluster at hand, discovery decides
//! (`cluster::Resolver`). Pure.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// Built-in cluster-scoped kinds.
const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterTrustBundle",
    "ComponentStatus",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "DeviceClass",
    "FlowSchema",
    "IngressClass",
    "IPAddress",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "ResourceSlice",
    "RuntimeClass",
    "SelfSubjectAccessReview",
    "SelfSubjectReview",
    "SelfSubjectRulesReview",
    "ServiceCIDR",
    "StorageClass",
    "StorageVersionMigration",
    "SubjectAccessReview",
    "TokenReview",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
    "VolumeAttributesClass",
];

/// Built-in namespaced kinds.
const NAMESPACED: &[&str] = &[
    "Binding",
    "ConfigMap",
    "ControllerRevision",
    "CronJob",
    "CSIStorageCapacity",
    "DaemonSet",
    "Deployment",
    "EndpointSlice",
    "Endpoints",
    "Event",
    "HorizontalPodAutoscaler",
    "Ingress",
    "Job",
    "Lease",
    "LimitRange",
    "LocalSubjectAccessReview",
    "NetworkPolicy",
    "PersistentVolumeClaim",
    "Pod",
    "PodDisruptionBudget",
    "PodTemplate",
    "ReplicaSet",
    "ReplicationController",
    "ResourceClaim",
    "ResourceClaimTemplate",
    "ResourceQuota",
    "Role",
    "RoleBinding",
    "Secret",
    "Service",
    "ServiceAccount",
    "StatefulSet",
];

/// Where a kind's objects live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Outside namespaces.
    Cluster,
    /// In a namespace.
    Namespaced,
    /// Neither built in nor declared by a CRD of the repository.
    Unknown,
}

/// The scopes the repository's own CustomResourceDefinitions declare, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes {
    declared: BTreeMap<String, Scope>,
}

impl Scopes {
    /// The scopes the CRDs among `values` declare; other values are passed over.
    pub fn declared_by<'v>(values: impl IntoIterator<Item = &'v Value>) -> Self {
        let declared = values
            .into_iter()
            .filter(|v| v["kind"] == "CustomResourceDefinition")
            .filter_map(|v| {
                let kind = v["spec"]["names"]["kind"].as_str()?;
                let scope = match v["spec"]["scope"].as_str()? {
                    "Cluster" => Scope::Cluster,
                    "Namespaced" => Scope::Namespaced,
                    _ => return None,
                };
                Some((kind.to_owned(), scope))
            })
            .collect();
        Scopes { declared }
    }

    /// These scopes and `more` (a cluster's, found by discovery), which win over the
    /// repository's where both name a kind.
    pub fn with(mut self, more: impl IntoIterator<Item = (String, Scope)>) -> Self {
        self.declared.extend(more);
        self
    }

    /// These scopes and `other`'s, which win where both name a kind.
    pub fn merged(self, other: &Scopes) -> Self {
        self.with(other.declared.clone())
    }

    /// The scope of `kind`: built in, declared by the repository, or unknown.
    pub fn of(&self, kind: &str) -> Scope {
        if CLUSTER_SCOPED.contains(&kind) {
            Scope::Cluster
        } else if NAMESPACED.contains(&kind) {
            Scope::Namespaced
        } else {
            self.declared.get(kind).copied().unwrap_or(Scope::Unknown)
        }
    }
}

/// Whether `kind` is known to be cluster-scoped.
pub fn is_cluster_scoped(kind: &str, scopes: &Scopes) -> bool {
    scopes.of(kind) == Scope::Cluster
}

/// The namespace an object is identified by: none for a cluster-scoped kind; for a namespaced
/// one, the namespace written (or given by its build), else `default`, as `kubectl apply` puts
/// it; for a kind of unknown scope, the namespace written, or none.
pub fn namespace_of(kind: &str, written: Option<&str>, scopes: &Scopes) -> Option<String> {
    match scopes.of(kind) {
        Scope::Cluster => None,
        Scope::Namespaced => Some(written.unwrap_or("default").to_owned()),
        Scope::Unknown => written.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_are_known_declared_or_unknown_never_guessed() {
        let crds = [
            json!({"kind": "CustomResourceDefinition", "spec": {"scope": "Cluster", "names": {"kind": "ClusterIssuer"}}}),
            json!({"kind": "CustomResourceDefinition", "spec": {"scope": "Namespaced", "names": {"kind": "ClusterServiceVersion"}}}),
            json!({"kind": "ConfigMap", "spec": {"scope": "Cluster", "names": {"kind": "Bogus"}}}),
        ];
        let scopes = Scopes::declared_by(&crds);
        assert_eq!(scopes.of("Namespace"), Scope::Cluster);
        assert_eq!(scopes.of("Deployment"), Scope::Namespaced);
        assert_eq!(scopes.of("ClusterIssuer"), Scope::Cluster);
        assert_eq!(scopes.of("ClusterServiceVersion"), Scope::Namespaced);
        assert_eq!(scopes.of("Bogus"), Scope::Unknown);
        let offline = Scopes::default();
        assert_eq!(offline.of("ClusterServiceVersion"), Scope::Unknown);
        assert_eq!(offline.of("ClusterIssuer"), Scope::Unknown);
        assert!(!is_cluster_scoped("ClusterIssuer", &offline));
        assert_eq!(
            namespace_of("ConfigMap", None, &offline).as_deref(),
            Some("default")
        );
        assert_eq!(namespace_of("Namespace", Some("x"), &offline), None);
        assert_eq!(namespace_of("Widget", None, &offline), None);
        assert_eq!(
            namespace_of("Widget", Some("shop"), &offline).as_deref(),
            Some("shop")
        );
    }
}
