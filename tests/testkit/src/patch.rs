//! The non-apply patch types: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic
//! merge patch for the keyed lists of the built-in types. Pure data.

use serde_json::{Map, Value};

use crate::schema::{ListShape, Schema};
use crate::typed::item_element;

/// RFC 7386: objects merge, `null` deletes, everything else replaces.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch_fields) = patch else {
        return patch.clone();
    };
    let mut out = target.as_object().cloned().unwrap_or_default();
    for (key, value) in patch_fields {
        if value.is_null() {
            out.shift_remove(key);
        } else {
            let merged = merge_patch(out.get(key).unwrap_or(&Value::Null), value);
            out.insert(key.clone(), merged);
        }
    }
    Value::Object(out)
}

/// RFC 6902 operations; an error names the failing operation.
pub fn json_patch(target: &Value, operations: &Value) -> Result<Value, String> {
    let operations = operations
        .as_array()
        .ok_or("a JSON patch must be a list of operations")?;
    let mut out = target.clone();
    for (index, operation) in operations.iter().enumerate() {
        let op = operation["op"].as_str().unwrap_or_default();
        let path = operation["path"]
            .as_str()
            .ok_or(format!("operation {index} has no path"))?;
        match op {
            "add" => add(&mut out, path, operation["value"].clone())?,
            "remove" => {
                take(&mut out, path)?;
            }
            "replace" => {
                take(&mut out, path)?;
                add(&mut out, path, operation["value"].clone())?;
            }
            "move" | "copy" => {
                let from = operation["from"]
                    .as_str()
                    .ok_or(format!("operation {index} has no from"))?;
                let value = if op == "move" {
                    take(&mut out, from)?
                } else {
                    out.pointer(from)
                        .cloned()
                        .ok_or(format!("no value at {from}"))?
                };
                add(&mut out, path, value)?;
            }
            "test" => {
                if out.pointer(path) != Some(&operation["value"]) {
                    return Err(format!("testing value {path} failed"));
                }
            }
            other => return Err(format!("unexpected operation {other:?}")),
        }
    }
    Ok(out)
}

fn split(path: &str) -> Result<(String, String), String> {
    let index = path.rfind('/').ok_or(format!("invalid path {path:?}"))?;
    let last = path[index + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..index].to_string(), last))
}

fn add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split(path)?;
    match target.pointer_mut(&parent) {
        Some(Value::Object(fields)) => {
            fields.insert(last, value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let index = if last == "-" {
                items.len()
            } else {
                last.parse()
                    .map_err(|_| format!("invalid index in {path:?}"))?
            };
            if index > items.len() {
                return Err(format!("index out of range in {path:?}"));
            }
            items.insert(index, value);
            Ok(())
        }
        _ => Err(format!("doc is missing path: {path:?}")),
    }
}

fn take(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split(path)?;
    let missing = || format!("doc is missing path: {path:?}");
    match target.pointer_mut(&parent) {
        Some(Value::Object(fields)) => fields.shift_remove(&last).ok_or_else(missing),
        Some(Value::Array(items)) => {
            let index: usize = last.parse().map_err(|_| missing())?;
            (index < items.len())
                .then(|| items.remove(index))
                .ok_or_else(missing)
        }
        _ => Err(missing()),
    }
}

/// Strategic merge patch: like a merge patch, but keyed lists merge by key, `$patch: delete`
/// removes an item, `$patch: replace` replaces a list or map, and `$setElementOrder`/`$retainKeys`
/// directives are honoured as far as ordering goes (ignored).
pub fn strategic(schema: &Schema, target: &Value, patch: &Value) -> Value {
    strategic_at(schema, target, patch, &mut Vec::new())
}

fn strategic_at<'a>(
    schema: &Schema,
    target: &Value,
    patch: &'a Value,
    names: &mut Vec<&'a str>,
) -> Value {
    let Value::Object(patch_fields) = patch else {
        return patch.clone();
    };
    if patch_fields.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = patch_fields.clone();
        replaced.shift_remove("$patch");
        return Value::Object(replaced);
    }
    let mut out: Map<String, Value> = target.as_object().cloned().unwrap_or_default();
    for (key, value) in patch_fields {
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            out.shift_remove(key);
            continue;
        }
        names.push(key);
        let merged = match value {
            Value::Array(items) => match schema.list(names) {
                ListShape::Map(_) => {
                    let shape = schema.list(names);
                    merge_list(schema, out.get(key), items, &shape, names)
                }
                _ => value.clone(),
            },
            Value::Object(_) => {
                strategic_at(schema, out.get(key).unwrap_or(&Value::Null), value, names)
            }
            _ => value.clone(),
        };
        names.pop();
        out.insert(key.clone(), merged);
    }
    Value::Object(out)
}

fn merge_list<'a>(
    schema: &Schema,
    target: Option<&Value>,
    items: &'a [Value],
    shape: &ListShape,
    names: &mut Vec<&'a str>,
) -> Value {
    let mut out: Vec<Value> = target
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    names.push("[]");
    for item in items {
        let directive = item.get("$patch").and_then(Value::as_str);
        if directive == Some("replace") {
            names.pop();
            return Value::Array(
                items
                    .iter()
                    .filter(|i| i.get("$patch").is_none())
                    .cloned()
                    .collect(),
            );
        }
        let element = item_element(item, shape);
        let position = out.iter().position(|i| item_element(i, shape) == element);
        match (directive, position) {
            (Some("delete"), Some(index)) => {
                out.remove(index);
            }
            (Some("delete"), None) => {}
            (_, Some(index)) => out[index] = strategic_at(schema, &out[index], item, names),
            (_, None) => out.push(strategic_at(schema, &Value::Null, item, names)),
        }
    }
    names.pop();
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_deletes_with_null() {
        let target = json!({"a": 1, "b": {"c": 2, "d": 3}});
        let patched = merge_patch(&target, &json!({"a": null, "b": {"c": 5}}));
        assert_eq!(patched, json!({"b": {"c": 5, "d": 3}}));
    }

    #[test]
    fn json_patch_applies_every_operation_or_names_the_failure() {
        let target = json!({"spec": {"replicas": 1, "list": [1, 2]}});
        let ops = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/spec/list/-", "value": 9},
            {"op": "remove", "path": "/spec/list/0"},
            {"op": "test", "path": "/spec/replicas", "value": 3}
        ]);
        assert_eq!(
            json_patch(&target, &ops).unwrap(),
            json!({"spec": {"replicas": 3, "list": [2, 9]}})
        );
        let failing = json!([{"op": "remove", "path": "/spec/missing"}]);
        assert!(
            json_patch(&target, &failing)
                .unwrap_err()
                .contains("/spec/missing")
        );
    }

    #[test]
    fn strategic_merge_patches_containers_by_name() {
        let schema = Schema::Builtin("Deployment".into());
        let target = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "a"}, {"name": "side", "image": "s"}]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "b"}, {"name": "side", "$patch": "delete"}]}}}});
        assert_eq!(
            strategic(&schema, &target, &patch),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "b"}]}}}})
        );
    }
}
