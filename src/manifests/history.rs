//! A field's earlier values in the config repository's history: the question the remedies ask
//! (to undo a change, to know what a value was before) and the Git boundary answers. Pure.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::path::FieldPath;
use crate::model::ObjectRef;

/// Earlier values of a field, from the repository's history.
pub trait ValueHistory {
    /// The last value of `path` in `object` (or the file's first document when `None`) of
    /// `file` that differs from `current`, going back from the base commit; `None` when no
    /// revision has another, an error when the history cannot be read.
    fn previous(
        &self,
        file: &Path,
        object: Option<&ObjectRef>,
        path: &FieldPath,
        current: &Value,
    ) -> Result<Option<Value>, HistoryError>;

    /// The last effective value of a field set in `layers` (most specific first: an overlay's
    /// entry, its patch, the base) that differs from `current`, going back from the base
    /// commit: at each revision the most specific layer that sets the field decides. `None`
    /// when no revision had another. Without a history of its own, the most specific layer's.
    fn previous_effective(
        &self,
        layers: &[Layer<'_>],
        current: &Value,
    ) -> Result<Option<Value>, HistoryError> {
        match layers.first() {
            Some(layer) => self.previous(layer.file, layer.object, &layer.path, current),
            None => Ok(None),
        }
    }
}

/// One layer that may set a field: a file, the object in it (the first document when `None`),
/// and the field's path there.
#[derive(Debug, Clone)]
pub struct Layer<'a> {
    /// The file, relative to the repository.
    pub file: &'a Path,
    /// The object in it.
    pub object: Option<&'a ObjectRef>,
    /// The field's path in the object.
    pub path: FieldPath,
    /// Whether the field holds a whole image (`name:tag`) whose tag is what is compared and
    /// returned (a base's `image` under an overlay's `images[].newTag`).
    pub image_tag: bool,
}

/// The history of a file cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("the Git history of {}: {message}", file.display())]
pub struct HistoryError {
    /// The file.
    pub file: PathBuf,
    /// What failed.
    pub message: String,
}

/// A repository without history.
pub struct NoHistory;

impl ValueHistory for NoHistory {
    fn previous(
        &self,
        _: &Path,
        _: Option<&ObjectRef>,
        _: &FieldPath,
        _: &Value,
    ) -> Result<Option<Value>, HistoryError> {
        Ok(None)
    }
}
