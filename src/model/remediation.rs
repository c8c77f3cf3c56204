//! The actions remediator knows, and the fields a remediation changes. The remediation itself,
//! written as edits of the config repository, is [`crate::remedy::Remediation`]. Pure.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use super::RiskLevel;

/// The actions remediator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Raise a container's memory limit (and request) after OOM kills.
    RaiseMemory,
    /// Change a workload's replica count.
    ScaleReplicas,
    /// Raise an autoscaler's ceiling.
    TuneHpa,
    /// Set requests and limits from usage history.
    RightSize,
    /// Put back the image tag that ran before.
    RollbackImage,
    /// Grow a PersistentVolumeClaim.
    ExpandPvc,
    /// Mark a node unschedulable.
    CordonNode,
    /// Cordon a node and evict its pods.
    DrainNode,
    /// Delete a stuck pod.
    DeletePod,
    /// Set a security field to its hardened value (`allowPrivilegeEscalation: false`).
    HardenWorkload,
}

/// What the catalog says of an action.
#[derive(Debug, Clone, Serialize)]
pub struct ActionSpec {
    /// The action's name (`raise-memory`).
    pub name: &'static str,
    /// Risk before policies weigh the environment and the change.
    pub base_risk: RiskLevel,
    /// Whether reverting the commit undoes it.
    pub reversible: bool,
    /// What must hold before it runs.
    pub prerequisites: &'static [&'static str],
    /// The check that proves it worked.
    pub verification: &'static str,
    /// Whether it is an imperative action, written as an action record.
    pub imperative: bool,
}

impl Action {
    /// Every action of the catalog.
    pub const ALL: [Action; 10] = [
        Action::RaiseMemory,
        Action::ScaleReplicas,
        Action::TuneHpa,
        Action::RightSize,
        Action::RollbackImage,
        Action::ExpandPvc,
        Action::CordonNode,
        Action::DrainNode,
        Action::DeletePod,
        Action::HardenWorkload,
    ];

    /// The action of a catalog name (`raise-memory`).
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.spec().name == name)
    }

    /// The catalog entry.
    pub fn spec(self) -> ActionSpec {
        let (name, base_risk, reversible, prerequisites, verification, imperative): (
            _,
            _,
            _,
            &'static [&'static str],
            _,
            _,
        ) = match self {
            Self::RaiseMemory => (
                "raise-memory",
                RiskLevel::Low,
                true,
                &["the node pool has room for the larger request"],
                "no OOMKilled restarts of the container for 15 minutes after the rollout",
                false,
            ),
            Self::ScaleReplicas => (
                "scale-replicas",
                RiskLevel::Low,
                true,
                &["the cluster has room for the new pods"],
                "all replicas ready and CPU below 70 % of the request",
                false,
            ),
            Self::TuneHpa => (
                "tune-hpa",
                RiskLevel::Low,
                true,
                &["the cluster has room for the new ceiling"],
                "the autoscaler below its ceiling and CPU below its target",
                false,
            ),
            Self::RightSize => (
                "right-size",
                RiskLevel::Medium,
                true,
                &["a week or more of usage history"],
                "no OOM kills or CPU throttling for a day after the rollout",
                false,
            ),
            Self::RollbackImage => (
                "rollback-image",
                RiskLevel::Medium,
                true,
                &["the previous image is still in the registry"],
                "the rollout completes and every pod is ready",
                false,
            ),
            Self::ExpandPvc => (
                "expand-pvc",
                RiskLevel::Medium,
                false,
                &["the storage class allows volume expansion"],
                "the claim reports the new capacity",
                false,
            ),
            Self::CordonNode => (
                "cordon-node",
                RiskLevel::Medium,
                true,
                &["other nodes can take new pods"],
                "the node is unschedulable and no new pods land on it",
                true,
            ),
            Self::DrainNode => (
                "drain-node",
                RiskLevel::High,
                true,
                &[
                    "disruption budgets allow the evictions",
                    "other nodes have room",
                ],
                "no pods but DaemonSet pods left on the node, every evicted workload ready elsewhere",
                true,
            ),
            Self::DeletePod => (
                "delete-pod",
                RiskLevel::Medium,
                false,
                &["the pod's controller recreates it"],
                "the pod is gone and its replacement ready",
                true,
            ),
            Self::HardenWorkload => (
                "harden-workload",
                RiskLevel::Medium,
                true,
                &[
                    "the program does not rely on what the setting takes away (setuid binaries, say)",
                ],
                "all replicas ready after the rollout",
                false,
            ),
        };
        ActionSpec {
            name,
            base_risk,
            reversible,
            prerequisites,
            verification,
            imperative,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.spec().name)
    }
}

/// One field a remediation changes, for policies and for the pull request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// The file.
    pub file: PathBuf,
    /// The field (`spec.template.spec.containers[name=api].resources.limits.memory`).
    pub path: String,
    /// Its value before, when it had one.
    pub old: Option<Value>,
    /// Its value after; `None` when removed.
    pub new: Option<Value>,
    /// new / old for quantities and numbers, when both are.
    pub ratio: Option<f64>,
}

/// Stable id of a problem: FNV-1a of its parts, as 12 hex digits.
pub fn stable_id(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf29ce484222325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x100000001b3);
        }
    }
    format!("{:012x}", hash & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable() {
        assert_eq!(
            stable_id(&["crash-loop-oom", "Deployment/shop/api"]),
            stable_id(&["crash-loop-oom", "Deployment/shop/api"])
        );
        assert_ne!(stable_id(&["a", "bc"]), stable_id(&["ab", "c"]));
        assert_eq!(stable_id(&["x"]).len(), 12);
    }
}
