//! Who owns a Pod: its controller, followed through a ReplicaSet to the Deployment that made it.
//! Pure.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::model::{ObjectRef, Snapshot};

/// Owner lookups for one snapshot.
pub struct Owners<'s> {
    replica_sets: HashMap<(&'s str, &'s str), &'s OwnerReference>,
}

impl<'s> Owners<'s> {
    /// Indexes the ReplicaSets of a snapshot.
    pub fn new(snapshot: &'s Snapshot) -> Self {
        let replica_sets = snapshot
            .replica_sets
            .iter()
            .filter_map(|rs| {
                let meta = &rs.metadata;
                let owner = controller(meta)?;
                Some(((meta.namespace.as_deref()?, meta.name.as_deref()?), owner))
            })
            .collect();
        Self { replica_sets }
    }

    /// The workload that owns `pod`: a Deployment (through its ReplicaSet), StatefulSet,
    /// DaemonSet, Job or ReplicaSet. A ReplicaSet missing from the snapshot is matched to its
    /// Deployment by the `pod-template-hash` suffix of its name.
    pub fn of_pod(&self, pod: &Pod) -> Option<ObjectRef> {
        let meta = &pod.metadata;
        let namespace = meta.namespace.as_deref()?;
        let owner = controller(meta)?;
        if owner.kind != "ReplicaSet" {
            return Some(reference(owner, namespace));
        }
        if let Some(deployment) = self.replica_sets.get(&(namespace, owner.name.as_str())) {
            return Some(reference(deployment, namespace));
        }
        let hash = meta
            .labels
            .as_ref()
            .and_then(|l| l.get("pod-template-hash"));
        match hash.and_then(|h| owner.name.strip_suffix(&format!("-{h}"))) {
            Some(deployment) => Some(ObjectRef::new(
                "apps/v1",
                "Deployment",
                Some(namespace),
                deployment,
            )),
            None => Some(reference(owner, namespace)),
        }
    }
}

fn controller(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
}

fn reference(owner: &OwnerReference, namespace: &str) -> ObjectRef {
    ObjectRef::new(
        &owner.api_version,
        &owner.kind,
        Some(namespace),
        &owner.name,
    )
}

/// `Pod/namespace/name` of a pod.
pub fn pod_ref(pod: &Pod) -> ObjectRef {
    let meta = &pod.metadata;
    ObjectRef::new(
        "v1",
        "Pod",
        meta.namespace.as_deref(),
        meta.name.as_deref().unwrap_or_default(),
    )
}
