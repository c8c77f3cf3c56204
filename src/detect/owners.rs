//! Who owns a Pod: its controller, followed by `ownerReferences` through a ReplicaSet to the
//! Deployment that made it, and through a Job to its CronJob. Never guessed from names. Pure.

use std::collections::HashMap;

use crate::model::objects::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::model::{ObjectRef, Snapshot};

/// The controllers of a snapshot's ReplicaSets and Jobs, by namespace and name.
type Controllers<'s> = HashMap<(&'s str, &'s str), &'s OwnerReference>;

/// Owner lookups for one snapshot.
pub struct Owners<'s> {
    replica_sets: Controllers<'s>,
    jobs: Controllers<'s>,
}

impl<'s> Owners<'s> {
    /// Indexes the ReplicaSets and Jobs of a snapshot.
    pub fn new(snapshot: &'s Snapshot) -> Self {
        Self {
            replica_sets: controllers(snapshot.replica_sets.iter().map(|rs| {
                let meta = &rs.metadata;
                (&meta.namespace, &meta.name, &meta.owner_references)
            })),
            jobs: controllers(snapshot.jobs.iter().map(|job| {
                let meta = &job.metadata;
                (&meta.namespace, &meta.name, &meta.owner_references)
            })),
        }
    }

    /// The workload that owns `pod`, by its `ownerReferences`: a Deployment (through its
    /// ReplicaSet), a CronJob (through its Job), or the StatefulSet, DaemonSet, Job or ReplicaSet
    /// that controls it. A ReplicaSet or Job missing from the snapshot is the owner itself:
    /// nothing is guessed from names. `None` for a pod no controller owns.
    pub fn of_pod(&self, pod: &Pod) -> Option<ObjectRef> {
        let meta = &pod.metadata;
        let namespace = meta.namespace.as_deref()?;
        let owner = controller(meta.owner_references.as_deref())?;
        let above = match owner.kind.as_str() {
            "ReplicaSet" => self.replica_sets.get(&(namespace, owner.name.as_str())),
            "Job" => self.jobs.get(&(namespace, owner.name.as_str())),
            _ => None,
        };
        Some(reference(above.copied().unwrap_or(owner), namespace))
    }
}

/// An object's namespace, name and owners.
type Named<'s> = (
    &'s Option<String>,
    &'s Option<String>,
    &'s Option<Vec<OwnerReference>>,
);

fn controllers<'s>(objects: impl Iterator<Item = Named<'s>>) -> Controllers<'s> {
    objects
        .filter_map(|(namespace, name, owners)| {
            let owner = controller(owners.as_deref())?;
            Some(((namespace.as_deref()?, name.as_deref()?), owner))
        })
        .collect()
}

/// The owner among `owners` that controls the object.
fn controller(owners: Option<&[OwnerReference]>) -> Option<&OwnerReference> {
    owners?.iter().find(|o| o.controller == Some(true))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn typed<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    fn owned(kind: &str, name: &str, by: Option<(&str, &str)>) -> serde_json::Value {
        let mut object = json!({"kind": kind, "metadata": {"name": name, "namespace": "shop"}});
        if let Some((owner_kind, owner)) = by {
            object["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1",
                "kind": owner_kind, "name": owner, "uid": "u", "controller": true}]);
        }
        object
    }

    #[test]
    fn owners_are_followed_by_reference_never_guessed_from_names() {
        let mut snapshot = Snapshot::default();
        snapshot.replica_sets.push(typed(owned(
            "ReplicaSet",
            "api-7d9f",
            Some(("Deployment", "api")),
        )));
        snapshot.jobs.push(typed(owned(
            "Job",
            "report-2911",
            Some(("CronJob", "report")),
        )));
        let owners = Owners::new(&snapshot);
        let pod = |by: Option<(&str, &str)>| -> Pod {
            let mut pod = owned("Pod", "p", by);
            pod["metadata"]["labels"] = json!({"pod-template-hash": "5c6b"});
            typed(pod)
        };
        let of = |p: Pod| owners.of_pod(&p).map(|o| o.to_string());
        assert_eq!(
            of(pod(Some(("ReplicaSet", "api-7d9f")))).as_deref(),
            Some("Deployment/shop/api")
        );
        assert_eq!(
            of(pod(Some(("Job", "report-2911")))).as_deref(),
            Some("CronJob/shop/report")
        );
        // A ReplicaSet the snapshot lacks is the owner: its name is not taken apart.
        assert_eq!(
            of(pod(Some(("ReplicaSet", "web-5c6b")))).as_deref(),
            Some("ReplicaSet/shop/web-5c6b")
        );
        assert_eq!(of(pod(None)), None);
    }
}
