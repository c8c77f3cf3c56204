//! `reconcile.conflicts:` in `remediator.yaml`: what an apply does with a field another manager
//! owns, per kind of manager. Applied by [`crate::cluster::conflicts`].

use serde::{Deserialize, Serialize};

/// What to do with a field another manager owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictMode {
    /// Take the field over (server-side apply with force).
    Force,
    /// Leave the field to its manager: apply the object without it.
    SkipField,
    /// Apply nothing of the change, and say why.
    Refuse,
}

impl ConflictMode {
    /// What the mode does, in the words of a report.
    pub fn describe(self) -> &'static str {
        match self {
            ConflictMode::Force => "taken over from",
            ConflictMode::SkipField => "left to",
            ConflictMode::Refuse => "refused, owned by",
        }
    }
}

/// The mode for each kind of manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ConflictPolicy {
    /// Managers that are controllers: they set the field back.
    pub controllers: ConflictMode,
    /// Every other manager: appliers and people.
    pub others: ConflictMode,
}

impl Default for ConflictPolicy {
    fn default() -> Self {
        ConflictPolicy {
            controllers: ConflictMode::Refuse,
            others: ConflictMode::Force,
        }
    }
}

impl ConflictPolicy {
    /// One mode for every manager.
    pub fn all(mode: ConflictMode) -> Self {
        ConflictPolicy {
            controllers: mode,
            others: mode,
        }
    }

    /// The mode for a rollback: a rollback is never refused, since refusing it would leave the
    /// failed change in place; a field it would have refused is left to its controller.
    pub fn for_rollback(self) -> Self {
        let soften = |mode| match mode {
            ConflictMode::Refuse => ConflictMode::SkipField,
            mode => mode,
        };
        ConflictPolicy {
            controllers: soften(self.controllers),
            others: soften(self.others),
        }
    }
}
