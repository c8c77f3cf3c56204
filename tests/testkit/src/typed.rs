//! Walks over JSON objects under a [`Schema`]: the field set an applied configuration claims,
//! the comparison of two objects, the apply merge, and navigation by field path. Pure data.

use serde_json::{Map, Value};

use crate::fieldset::{Element, Path, Set, canonical};
use crate::schema::{ListShape, Schema, always_present};

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// What changed between two versions of an object.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Paths present only in the new object (new maps and lists are members themselves).
    pub added: Set,
    /// Leaves whose value changed.
    pub modified: Set,
    /// Paths present only in the old object.
    pub removed: Set,
}

/// The element that names `item` in a list of the given shape. A missing `protocol` key reads
/// as its default `TCP` (ports of containers and Services), so an applied port without one names
/// the stored item without claiming the protocol field.
pub fn item_element(item: &Value, shape: &ListShape) -> Element {
    match shape {
        ListShape::Map(keys) => {
            let mut key = Map::new();
            for name in keys {
                match item.get(name) {
                    Some(value) => {
                        key.insert(name.clone(), value.clone());
                    }
                    None if name == "protocol" => {
                        key.insert(name.clone(), Value::String("TCP".into()));
                    }
                    None => {}
                }
            }
            Element::Key(canonical(&Value::Object(key)))
        }
        _ => Element::Value(canonical(item)),
    }
}

fn item_matches(item: &Value, element: &Element) -> bool {
    match element {
        Element::Key(json) => {
            let Ok(Value::Object(key)) = serde_json::from_str::<Value>(json) else {
                return false;
            };
            let shape = ListShape::Map(key.keys().cloned().collect());
            item_element(item, &shape) == *element
        }
        Element::Value(json) => canonical(item) == *json,
        _ => false,
    }
}

/// The paths an applied configuration sets: its leaves, atomic values and list items.
pub fn fieldset(schema: &Schema, config: &Value) -> Set {
    let mut out = Set::new();
    walk_fieldset(schema, config, &mut Vec::new(), &mut Vec::new(), &mut out);
    out
}

fn walk_fieldset<'a>(
    schema: &Schema,
    value: &'a Value,
    path: &mut Path,
    names: &mut Vec<&'a str>,
    out: &mut Set,
) {
    match value {
        Value::Object(fields) if path.is_empty() || !schema.atomic_map(names) => {
            for (key, child) in fields {
                if child.is_null() {
                    continue;
                }
                path.push(Element::Field(key.clone()));
                names.push(key);
                walk_fieldset(schema, child, path, names, out);
                names.pop();
                path.pop();
            }
        }
        Value::Array(items) => {
            let shape = schema.list(names);
            if shape == ListShape::Atomic {
                out.insert(path);
                return;
            }
            for item in items {
                path.push(item_element(item, &shape));
                out.insert(path);
                if matches!(shape, ListShape::Map(_)) {
                    names.push("[]");
                    walk_fieldset(schema, item, path, names, out);
                    names.pop();
                }
                path.pop();
            }
        }
        _ => out.insert(path),
    }
}

/// Compares two versions of an object the way an Update operation claims fields.
pub fn compare(schema: &Schema, old: &Value, new: &Value) -> Comparison {
    let mut out = Comparison::default();
    walk_compare(
        schema,
        Some(old),
        Some(new),
        &mut Vec::new(),
        &mut Vec::new(),
        &mut out,
    );
    out
}

fn is_granular_map(schema: &Schema, value: Option<&Value>, path: &Path, names: &[&str]) -> bool {
    matches!(value, Some(Value::Object(_))) && (path.is_empty() || !schema.atomic_map(names))
}

fn walk_compare<'a>(
    schema: &Schema,
    old: Option<&'a Value>,
    new: Option<&'a Value>,
    path: &mut Path,
    names: &mut Vec<&'a str>,
    out: &mut Comparison,
) {
    let (old, new) = (old.filter(|v| !v.is_null()), new.filter(|v| !v.is_null()));
    if old.is_none() && new.is_none() {
        return;
    }
    let reference = new.or(old);
    if is_granular_map(schema, reference, path, names) {
        let (old_map, new_map) = (
            old.and_then(Value::as_object),
            new.and_then(Value::as_object),
        );
        match (old_map, new_map) {
            (None, Some(map)) if !path.is_empty() && (map.is_empty() || !always_present(names)) => {
                out.added.insert(path);
            }
            (Some(_), None) => {
                out.removed.insert(path);
                return;
            }
            _ => {}
        }
        let (old_map, new_map) = (old_map.unwrap_or(&EMPTY), new_map.unwrap_or(&EMPTY));
        let keys = new_map
            .keys()
            .chain(old_map.keys().filter(|k| !new_map.contains_key(*k)));
        for key in keys {
            path.push(Element::Field(key.clone()));
            names.push(key);
            walk_compare(schema, old_map.get(key), new_map.get(key), path, names, out);
            names.pop();
            path.pop();
        }
        return;
    }
    if let Some(Value::Array(_)) = reference {
        let shape = schema.list(names);
        if shape != ListShape::Atomic {
            compare_items(schema, old, new, &shape, path, names, out);
            return;
        }
    }
    match (old, new) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(a), Some(b)) if a != b => out.modified.insert(path),
        _ => {}
    }
}

fn compare_items<'a>(
    schema: &Schema,
    old: Option<&'a Value>,
    new: Option<&'a Value>,
    shape: &ListShape,
    path: &mut Path,
    names: &mut Vec<&'a str>,
    out: &mut Comparison,
) {
    let old_items = old.and_then(Value::as_array);
    let new_items = new.and_then(Value::as_array);
    match (old_items, new_items) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => {
            out.removed.insert(path);
            return;
        }
        _ => {}
    }
    let keyed = |items: Option<&'a Vec<Value>>| -> Vec<(Element, &'a Value)> {
        items
            .map(|items| items.iter().map(|i| (item_element(i, shape), i)).collect())
            .unwrap_or_default()
    };
    let (old_keyed, new_keyed) = (keyed(old_items), keyed(new_items));
    names.push("[]");
    for (element, item) in &new_keyed {
        let before = old_keyed
            .iter()
            .find(|(e, _)| e == element)
            .map(|(_, i)| *i);
        path.push(element.clone());
        if before.is_none() {
            out.added.insert(path);
        }
        if matches!(shape, ListShape::Map(_)) {
            walk_compare(schema, before, Some(item), path, names, out);
        }
        path.pop();
    }
    for (element, _) in &old_keyed {
        if !new_keyed.iter().any(|(e, _)| e == element) {
            path.push(element.clone());
            out.removed.insert(path);
            path.pop();
        }
    }
    names.pop();
}

/// Merges an applied configuration into the live object: maps field by field, keyed lists item
/// by item (live order first, new items after), sets as a union, everything else replaced.
pub fn merge(schema: &Schema, live: &Value, config: &Value) -> Value {
    merge_at(schema, Some(live), config, &mut Vec::new(), true)
}

fn merge_at<'a>(
    schema: &Schema,
    live: Option<&Value>,
    config: &'a Value,
    names: &mut Vec<&'a str>,
    root: bool,
) -> Value {
    match config {
        Value::Object(fields) if root || !schema.atomic_map(names) => {
            let mut out = live.and_then(Value::as_object).cloned().unwrap_or_default();
            for (key, value) in fields {
                if value.is_null() {
                    continue;
                }
                names.push(key);
                let merged = merge_at(schema, out.get(key), value, names, false);
                names.pop();
                out.insert(key.clone(), merged);
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let shape = schema.list(names);
            if shape == ListShape::Atomic {
                return config.clone();
            }
            let mut out: Vec<Value> = live.and_then(Value::as_array).cloned().unwrap_or_default();
            names.push("[]");
            for item in items {
                let element = item_element(item, &shape);
                match out.iter().position(|i| item_element(i, &shape) == element) {
                    Some(index) if matches!(shape, ListShape::Map(_)) => {
                        out[index] = merge_at(schema, Some(&out[index]), item, names, false);
                    }
                    Some(_) => {}
                    None => out.push(item.clone()),
                }
            }
            names.pop();
            Value::Array(out)
        }
        other => other.clone(),
    }
}

/// The value at `path`.
pub fn get<'a>(value: &'a Value, path: &[Element]) -> Option<&'a Value> {
    let mut node = value;
    for element in path {
        node = match element {
            Element::Field(name) => node.get(name)?,
            Element::Index(index) => node.get(index)?,
            keyed => node.as_array()?.iter().find(|i| item_matches(i, keyed))?,
        };
    }
    Some(node)
}

/// Removes the value at `path`; returns whether there was one.
pub fn remove(value: &mut Value, path: &[Element]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = value;
    for element in parents {
        node = match element {
            Element::Field(name) => match node.get_mut(name) {
                Some(child) => child,
                None => return false,
            },
            Element::Index(index) => match node.get_mut(*index) {
                Some(child) => child,
                None => return false,
            },
            keyed => match node
                .as_array_mut()
                .and_then(|items| items.iter_mut().find(|i| item_matches(i, keyed)))
            {
                Some(child) => child,
                None => return false,
            },
        };
    }
    match last {
        Element::Field(name) => node
            .as_object_mut()
            .and_then(|fields| fields.shift_remove(name))
            .is_some(),
        Element::Index(index) => match node.as_array_mut() {
            Some(items) if *index < items.len() => {
                items.remove(*index);
                true
            }
            _ => false,
        },
        keyed => match node.as_array_mut() {
            Some(items) => {
                let before = items.len();
                items.retain(|i| !item_matches(i, keyed));
                items.len() != before
            }
            None => false,
        },
    }
}

/// Removes from `object` the paths of `last` that no manager in `owned` holds any more, and the
/// maps and lists left empty by that which nobody owns.
pub fn prune(object: &mut Value, last: &Set, owned: &Set) {
    for path in last.paths() {
        if owned.has_prefix(&path) || !remove(object, &path) {
            continue;
        }
        for depth in (2..path.len()).rev() {
            let parent = &path[..depth];
            let empty = match get(object, parent) {
                Some(Value::Object(fields)) => fields.is_empty(),
                Some(Value::Array(items)) => items.is_empty(),
                _ => false,
            };
            if !empty || owned.has_prefix(parent) {
                break;
            }
            remove(object, parent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldset::display;
    use serde_json::json;

    fn deployment() -> Schema {
        Schema::Builtin("Deployment".into())
    }

    #[test]
    fn applied_configs_claim_leaves_items_and_atomic_selectors() {
        let config = json!({"spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "app", "image": "nginx"}]}}}});
        let paths: Vec<String> = fieldset(&deployment(), &config)
            .paths()
            .iter()
            .map(|p| display(p))
            .collect();
        assert_eq!(
            paths,
            [
                ".spec.replicas",
                ".spec.selector",
                ".spec.template.spec.containers[name=\"app\"]",
                ".spec.template.spec.containers[name=\"app\"].image",
                ".spec.template.spec.containers[name=\"app\"].name",
            ]
        );
    }

    #[test]
    fn merge_keeps_live_order_and_appends_new_items() {
        let live = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "a", "env": [{"name": "A", "value": "1"}]}]}}}});
        let config = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "side", "image": "s"}, {"name": "app", "image": "b"}]}}}});
        let merged = merge(&deployment(), &live, &config);
        assert_eq!(
            merged["spec"]["template"]["spec"]["containers"],
            json!([{"name": "app", "image": "b", "env": [{"name": "A", "value": "1"}]},
                   {"name": "side", "image": "s"}])
        );
    }

    #[test]
    fn compare_marks_new_maps_and_items_as_members() {
        let old = json!({"metadata": {"name": "x"}, "status": {}});
        let new = json!({"metadata": {"name": "x", "annotations": {"a": "1"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let comparison = compare(&deployment(), &old, &new);
        let added = comparison.added.to_fields_v1();
        assert_eq!(
            added,
            json!({"f:metadata": {"f:annotations": {".": {}, "f:a": {}}},
                "f:status": {"f:conditions": {".": {}, "k:{\"type\":\"Ready\"}":
                    {".": {}, "f:status": {}, "f:type": {}}}}})
        );
    }

    #[test]
    fn prune_drops_unowned_fields_and_their_empty_maps() {
        let mut object = json!({"metadata": {"labels": {"team": "a"}}, "spec": {"replicas": 1}});
        let last = Set::from_fields_v1(&json!({"f:metadata": {"f:labels": {"f:team": {}}},
            "f:spec": {"f:replicas": {}}}));
        let owned = Set::from_fields_v1(&json!({"f:spec": {"f:replicas": {}}}));
        prune(&mut object, &last, &owned);
        assert_eq!(object, json!({"metadata": {}, "spec": {"replicas": 1}}));
    }
}
