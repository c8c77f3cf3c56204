//! `remediator report`: the reports teams read, as Markdown with Mermaid charts or as JSON, and
//! kept as one GitHub issue per kind: `weekly` (health from the audit trail: MTTD, MTTR,
//! what was proposed, merged and rolled back), `security` (posture rules over the repository
//! and the cluster), `capacity` (requests, use, headroom, forecasts, savings) and `runbook`
//! (per finding code, the causes, remedies and rollbacks this cluster has seen).

pub mod capacity;
pub mod runbook;
pub mod security;
pub mod weekly;

/// The marker of a report kind's issue.
pub fn marker(kind: &str) -> String {
    format!("report={kind}")
}

/// The label of report issues.
pub const LABEL: &str = "remediator-report";
