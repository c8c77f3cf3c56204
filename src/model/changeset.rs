//! Change sets: what a mutating stage did to each object, returned whole even when the stage
//! stops half way (the partial set travels with the error).

use std::fmt;

use serde::Serialize;

use super::ObjectRef;

/// What happened to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    /// It did not exist and was (or would be) created.
    Created,
    /// It existed and was (or would be) changed.
    Configured,
    /// It already matched.
    Unchanged,
    /// It was removed.
    Deleted,
    /// It was left alone on purpose (owned by a GitOps tool, or not selected).
    Skipped,
    /// The write failed.
    Failed,
}

impl fmt::Display for ChangeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ChangeAction::Created => "created",
            ChangeAction::Configured => "configured",
            ChangeAction::Unchanged => "unchanged",
            ChangeAction::Deleted => "deleted",
            ChangeAction::Skipped => "skipped",
            ChangeAction::Failed => "failed",
        };
        f.write_str(text)
    }
}

/// One object and what happened to it.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeEntry {
    /// The object.
    pub subject: ObjectRef,
    /// What happened.
    pub action: ChangeAction,
    /// Fields other managers owned, and what the apply did with each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contested: Vec<Contested>,
}

/// A field another manager owned when the object was applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Contested {
    /// The field, as the API names it (`.spec.replicas`).
    pub field: String,
    /// Its manager (`kube-controller-manager`).
    pub manager: String,
    /// `taken over from` or `left to` (the manager).
    pub outcome: String,
}

/// Every object a stage touched, in the order it touched them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChangeSet {
    /// The entries.
    pub entries: Vec<ChangeEntry>,
}

impl ChangeSet {
    /// Records one object.
    pub fn push(&mut self, subject: ObjectRef, action: ChangeAction) {
        self.entries.push(ChangeEntry {
            subject,
            action,
            contested: vec![],
        });
    }

    /// Whether any object was (or would be) created, changed or deleted.
    pub fn has_changes(&self) -> bool {
        self.entries.iter().any(|e| {
            matches!(
                e.action,
                ChangeAction::Created | ChangeAction::Configured | ChangeAction::Deleted
            )
        })
    }
}
