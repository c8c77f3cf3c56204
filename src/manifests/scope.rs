//! Which kinds are cluster-scoped, so that an object without a namespace gets `default` only
//! when it lives in a namespace. Pure.

/// Built-in and widely installed cluster-scoped kinds.
const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "ComponentStatus",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "FlowSchema",
    "GatewayClass",
    "IngressClass",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "RuntimeClass",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
];

/// Whether `kind` is cluster-scoped: a built-in cluster-scoped kind, a kind the repository's own
/// CRDs declare with `scope: Cluster` (`crd_cluster_kinds`), or a kind named `Cluster*`
/// (ClusterIssuer, ClusterPolicy, ClusterSecretStore), the convention of custom resources.
pub fn is_cluster_scoped(kind: &str, crd_cluster_kinds: &[String]) -> bool {
    CLUSTER_SCOPED.contains(&kind)
        || crd_cluster_kinds.iter().any(|k| k == kind)
        || (kind.starts_with("Cluster") && kind.len() > "Cluster".len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_scopes() {
        assert!(is_cluster_scoped("Namespace", &[]));
        assert!(is_cluster_scoped("ClusterIssuer", &[]));
        assert!(is_cluster_scoped("Bucket", &["Bucket".into()]));
        assert!(!is_cluster_scoped("Deployment", &[]));
        assert!(!is_cluster_scoped("Cluster", &[]));
    }
}
