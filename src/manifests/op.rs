//! What an edit is: a path in one object and what to do there (set, append, remove), and why
//! one could not be made. [`super::edit`] makes edits on the text, [`super::verify`] checks them
//! against the parsed value. Pure.

use serde_json::Value;

use super::path::FieldPath;

/// What an edit does at its path.
#[derive(Debug, Clone, PartialEq)]
pub enum EditOp {
    /// Set the value, creating missing mappings on the way.
    Set(Value),
    /// Append an item to the sequence at the path, creating it when missing.
    Append(Value),
    /// Remove the key or item at the path.
    Remove,
}

/// One change to one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    /// Where, from the object's root.
    pub path: FieldPath,
    /// What.
    pub op: EditOp,
}

impl Edit {
    /// `path = value`.
    pub fn set(path: FieldPath, value: impl Into<Value>) -> Self {
        Self {
            path,
            op: EditOp::Set(value.into()),
        }
    }
}

/// Why an edit could not be made. The caller adds the object and file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EditError {
    /// The document or List item the location names is not in the text.
    #[error("document {0} is not in the file any more; re-index the repository")]
    MissingDocument(usize),
    /// A step of the path does not exist and cannot be created.
    #[error("`{at}` does not exist: {reason}")]
    NotFound {
        /// The path up to the missing step.
        at: String,
        /// What is missing.
        reason: String,
    },
    /// A step of the path has the wrong type.
    #[error("`{at}` is {found}, not {expected}")]
    WrongType {
        /// The path up to that step.
        at: String,
        /// What the path needs there.
        expected: &'static str,
        /// What is there.
        found: &'static str,
    },
    /// The path goes through an alias, which would change every place the anchor is used.
    #[error("`{at}` is an alias (`*name`); edit the anchored value instead")]
    Alias {
        /// The path up to the alias.
        at: String,
    },
    /// The edited text did not check out; the file is left as it was.
    #[error("the edited file does not check out ({0}); nothing was changed")]
    Verify(String),
}
