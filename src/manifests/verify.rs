//! Verification of an edit: what the edited object should read as, and the check that the
//! edited file says exactly that, every other document unchanged. Pure.

use serde_json::Value;

use super::op::{EditError, EditOp};
use super::path::{FieldPath, Segment, select_position, step, step_mut};
use super::source::{Location, ParsedFile};

/// Applies an edit to a parsed value, as the text edit should have.
pub(super) fn apply_to_value(root: &mut Value, path: &FieldPath, op: &EditOp) {
    let (parent_path, last) = path.split_last();
    let mut current = root;
    for segment in parent_path {
        if step(current, segment).is_none()
            && let (Segment::Key(key), Some(map)) = (segment, current.as_object_mut())
        {
            map.insert(key.clone(), Value::Object(Default::default()));
        }
        match step_mut(current, segment) {
            Some(next) => current = next,
            None => return,
        }
    }
    match (op, last) {
        (EditOp::Set(value), Segment::Key(key)) => {
            if let Some(map) = current.as_object_mut() {
                map.insert(key.clone(), value.clone());
            }
        }
        (EditOp::Set(value), segment) => {
            if let Some(item) = step_mut(current, segment) {
                *item = value.clone();
            }
        }
        (EditOp::Append(value), segment) => {
            if let Some(map) = current.as_object_mut()
                && let (Segment::Key(key), None) =
                    (segment, step(&Value::Object(map.clone()), segment))
            {
                map.insert(key.clone(), Value::Array(vec![]));
            }
            if let Some(Value::Array(items)) = step_mut(current, segment) {
                items.push(value.clone());
            }
        }
        (EditOp::Remove, Segment::Key(key)) => {
            if let Some(map) = current.as_object_mut() {
                map.remove(key);
            }
        }
        (EditOp::Remove, segment) => {
            if let Some(position) = current.as_array().and_then(|a| select_position(a, segment)) {
                current.as_array_mut().map(|a| a.remove(position));
            }
        }
    }
}

pub(crate) fn document_value<'p>(
    parsed: &'p ParsedFile,
    location: &Location,
) -> Result<&'p Value, EditError> {
    let missing = || EditError::MissingDocument(location.document + 1);
    let doc = parsed
        .documents
        .iter()
        .find(|d| d.document == location.document)
        .ok_or_else(missing)?;
    match location.item {
        None => Ok(&doc.value),
        Some(item) => doc.value["items"].get(item).ok_or_else(missing),
    }
}

/// The edited file parses, the edited object is exactly the expected value, and every other
/// document is unchanged.
pub(super) fn verify(
    before: &ParsedFile,
    after: &ParsedFile,
    location: &Location,
    expected: &Value,
) -> Result<(), EditError> {
    if let Some(error) = after.errors.iter().find(|_| before.errors.is_empty()) {
        return Err(EditError::Verify(error.to_string()));
    }
    if after.documents.len() != before.documents.len() {
        return Err(EditError::Verify(
            "the number of documents changed".to_owned(),
        ));
    }
    let actual = document_value(after, location)?;
    if actual != expected {
        let field = first_difference(expected, actual, String::new());
        return Err(EditError::Verify(format!(
            "`{field}` does not read back as intended"
        )));
    }
    for (old, new) in before.documents.iter().zip(&after.documents) {
        if old.document != location.document && old.value != new.value {
            return Err(EditError::Verify(format!(
                "document {} changed too",
                old.document + 1
            )));
        }
    }
    if let (Some(item), Some(old), Some(new)) = (
        location.item,
        document_value(
            before,
            &Location {
                item: None,
                ..location.clone()
            },
        )
        .ok(),
        document_value(
            after,
            &Location {
                item: None,
                ..location.clone()
            },
        )
        .ok(),
    ) {
        let others = |v: &Value| {
            let mut v = v.clone();
            v["items"].as_array_mut().map(|a| a.remove(item));
            v
        };
        if others(old) != others(new) {
            return Err(EditError::Verify(
                "another item of the List changed too".to_owned(),
            ));
        }
    }
    Ok(())
}

/// The first path where two values differ, for the verification message.
fn first_difference(a: &Value, b: &Value, at: String) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys = x.keys().chain(y.keys());
            for key in keys {
                if x.get(key) != y.get(key) {
                    let at = if at.is_empty() {
                        key.clone()
                    } else {
                        format!("{at}.{key}")
                    };
                    return match (x.get(key), y.get(key)) {
                        (Some(x), Some(y)) => first_difference(x, y, at),
                        _ => at,
                    };
                }
            }
            at
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            let i = x.iter().zip(y).position(|(x, y)| x != y).unwrap_or(0);
            first_difference(&x[i], &y[i], format!("{at}[{i}]"))
        }
        _ => at,
    }
}
