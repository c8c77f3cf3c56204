//! Pure nouns shared by every stage of the pipeline. Nothing here performs I/O.

mod author;
mod changeset;
mod equivalent;
mod finding;
mod health;
mod object_ref;
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
