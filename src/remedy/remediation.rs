//! Remediations: an action from the catalog, applied to one object, written as edits of the
//! config repository (or a new action record for imperative actions). Pure.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::manifests::Location;
use crate::manifests::edit::Edit;
use crate::model::{Action, FieldChange, Finding, ObjectRef};

/// A change to the repository that a remediation makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Edit a declaration in place.
    Edit {
        /// Where the edited object or kustomization is declared.
        location: Location,
        /// The edits.
        edits: Vec<Edit>,
    },
    /// Write a new file (an action record).
    Create {
        /// The file, relative to the repository.
        path: PathBuf,
        /// Its content.
        content: String,
    },
}

/// A fix for one finding, ready to be written to a branch.
#[derive(Debug, Clone, Serialize)]
pub struct Remediation {
    /// Stable id of the problem: the same finding on the same target always gets the same id.
    pub id: String,
    /// The finding it fixes.
    pub finding: Finding,
    /// The action.
    pub action: Action,
    /// The object the action changes in the cluster.
    pub target: ObjectRef,
    /// Labels of the target, as declared.
    pub labels: serde_json::Map<String, Value>,
    /// The environment the target is applied in, when known.
    pub environment: Option<String>,
    /// One line: what changes.
    pub summary: String,
    /// The fields it changes.
    pub fields: Vec<FieldChange>,
    /// How to undo it.
    pub rollback: String,
    /// The repository changes.
    #[serde(skip)]
    pub changes: Vec<Change>,
}
