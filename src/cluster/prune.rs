//! Pruning: what a merge removes from Git is deleted from the cluster, as Flux's and Argo CD's
//! garbage collection do, but only what remediator itself applied (its field manager owns
//! fields through server-side apply) and no GitOps tool or installer owns. Objects go in the
//! reverse of the apply order (CRDs and Namespaces last), each deleted with its UID as a
//! precondition, so a newer object of the same name is never the one deleted. I/O: reads and
//! deletes through the kube client.

use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use serde_json::Value;

use super::apply::Stopped;
use super::ownership::ownership;
use super::{Error, KubeCluster};
use crate::model::{ChangeAction, ChangeSet, ObjectRef};

/// Kinds deleted last: everything else may depend on them.
const LAST: &[&str] = &["CustomResourceDefinition", "Namespace"];

/// How to prune.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// The field manager remediator applies with; only objects it owns fields of are deleted.
    pub field_manager: String,
}

/// Whether `live` is remediator's to delete: applied by `field_manager` and owned by no tool.
fn ours(live: &Value, field_manager: &str) -> bool {
    let marks = ownership(live);
    marks.owner.is_none()
        && marks
            .managers
            .iter()
            .any(|m| m.manager == field_manager && m.operation == "Apply")
}

impl KubeCluster {
    /// Deletes `objects` that remediator applied; the others are `skipped`, and those already
    /// gone `unchanged`. The partial change set comes back with the error that stops it.
    pub(super) async fn prune_objects(
        &self,
        objects: &[ObjectRef],
        options: &PruneOptions,
    ) -> Result<ChangeSet, Stopped> {
        let mut ordered: Vec<&ObjectRef> = objects.iter().collect();
        ordered.sort_by_key(|o| LAST.contains(&o.kind.as_str()));
        let mut changes = ChangeSet::default();
        for object in ordered {
            let stop = |changes: &ChangeSet, error: Error| Stopped {
                changes: changes.clone(),
                total: objects.len(),
                error,
            };
            let live = match crate::cluster::Cluster::get(self, object).await {
                Ok(live) => live,
                Err(error) => return Err(stop(&changes, error)),
            };
            let Some(live) = live else {
                changes.push(object.clone(), ChangeAction::Unchanged);
                continue;
            };
            if !ours(&live, &options.field_manager) {
                changes.push(object.clone(), ChangeAction::Skipped);
                continue;
            }
            let api = match self.api(object).await {
                Ok(api) => api,
                Err(error) => return Err(stop(&changes, error)),
            };
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: live
                        .pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    resource_version: None,
                }),
                propagation_policy: Some(PropagationPolicy::Background),
                ..DeleteParams::default()
            };
            match api.delete(&object.name, &params).await {
                Ok(_) => changes.push(object.clone(), ChangeAction::Deleted),
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    changes.push(object.clone(), ChangeAction::Unchanged);
                }
                Err(source) => {
                    let error = Error::Api {
                        object: object.to_string(),
                        verb: "delete",
                        source,
                    };
                    return Err(stop(&changes, error));
                }
            }
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_what_remediator_applied_and_no_tool_owns_is_ours() {
        let applied = |manager: &str, operation: &str| json!({"metadata": {"name": "a", "managedFields": [{"manager": manager, "operation": operation}]}});
        assert!(ours(&applied("remediator", "Apply"), "remediator"));
        assert!(!ours(&applied("kubectl", "Apply"), "remediator"));
        assert!(!ours(&applied("remediator", "Update"), "remediator"));
        let mut flux = applied("remediator", "Apply");
        flux["metadata"]["labels"] = json!({"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"});
        assert!(!ours(&flux, "remediator"), "Flux prunes its own");
    }
}
