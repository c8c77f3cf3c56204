//! Pure nouns shared by every stage of the pipeline. Nothing here performs I/O.

mod author;
mod changeset;
mod equivalent;
mod finding;
mod health;
mod object_ref;
pub mod objects;
pub mod quantity;
mod remediation;
mod risk;
mod snapshot;

pub use author::Author;
pub use changeset::{ChangeAction, ChangeEntry, ChangeSet, Contested};
pub use equivalent::{duration_nanos, equivalent};
pub use finding::{Evidence, Finding, FindingCode, Severity, UsageFacts};
pub use health::{Health, HealthStatus};
pub use object_ref::{ObjectRef, ParseRefError, RefQuery, split_api_version};
pub use remediation::{Action, ActionSpec, FieldChange, stable_id};
pub use risk::RiskLevel;
pub use snapshot::{
    ArgoTracking, ContainerLog, ContainerUsage, Snapshot, UsageHistory, VolumeUsage, WorkloadRef,
};

/// `n` and its noun, which takes an `s` unless `n` is 1: `1 point`, `3 points`.
pub fn counted(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod counted_tests {
    #[test]
    fn a_count_agrees_with_its_noun() {
        assert_eq!(super::counted(1u32, "sample"), "1 sample");
        assert_eq!(super::counted(0u32, "gap"), "0 gaps");
        assert_eq!(super::counted(12u64, "time"), "12 times");
    }
}
