//! What `templates/reconcile.md.j2` shows: the merge path's comments on the pull request it
//! merged (refused, healthy, unhealthy, rolled back) with their evidence. The reconcile pipeline
//! fills them. Pure.

use serde::Serialize;

/// One row of the change table.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeRow {
    /// The object (in backticks), or `action record`.
    pub object: String,
    /// What happened to it.
    pub result: String,
}

/// One live diff from before the apply.
#[derive(Debug, Clone, Serialize)]
pub struct DiffView {
    /// `Kind/namespace/name`.
    pub object: String,
    /// The unified diff, Secret values masked.
    pub diff: String,
}

/// One object's health after.
#[derive(Debug, Clone, Serialize)]
pub struct HealthRow {
    /// `Kind/namespace/name`.
    pub object: String,
    /// Healthy, Progressing, Degraded, ...
    pub status: String,
    /// Why, with `|` escaped for the table.
    pub message: String,
}

/// What `templates/reconcile.md.j2` shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CommentView {
    /// `refused`, `healthy`, `unhealthy` or `rolled-back`.
    pub kind: &'static str,
    /// The merged commit, 12 digits.
    pub commit: String,
    /// Why it was refused.
    pub reasons: Vec<String>,
    /// Why it is not healthy.
    pub reason: Option<String>,
    /// What was applied and what action records did.
    pub changes: Vec<ChangeRow>,
    /// The live diffs from before.
    pub before: Vec<DiffView>,
    /// The health after.
    pub health: Vec<HealthRow>,
    /// The revert commit, 12 digits.
    pub revert: Option<String>,
    /// The rollback pull request, when the base branch takes no direct pushes.
    pub revert_pull: Option<u64>,
    /// Why the reverted state is not healthy either.
    pub failure: Option<String>,
    /// Objects the merge created, left in the cluster by the rollback.
    pub left: Vec<String>,
}
