//! One version's schema, old against new, node by node: what an object valid before may no
//! longer be (a field removed, a type changed, a bound tightened, a value constraint or a CEL
//! rule added), what its clients may no longer rely on (list and map structure, nullability),
//! and what the same object now means (defaults, as warnings). Paths are those of the custom
//! resource: `.spec.tags[*].key`, `.spec.labels.*`. Pure.

use serde_json::{Map, Value};

use super::{Found, shown};

/// Compares the schema node `old` with `new` at `path` and everything under it.
pub fn compare(old: &Value, new: &Value, path: &str, out: &mut Vec<Found>) {
    if !old.is_object() || !new.is_object() {
        return;
    }
    let retyped = types(old, new, path, out);
    nullable(old, new, path, out);
    defaults(old, new, path, out);
    bounds(old, new, path, out);
    values(old, new, path, out);
    composition(old, new, path, out);
    rules(old, new, path, out);
    structure(old, new, path, out);
    if retyped {
        // A node of another type: what was under it is already broken.
        return;
    }
    required(old, new, path, out);
    properties(old, new, path, out);
    additional(old, new, path, out);
    match (old.get("items"), new.get("items")) {
        (Some(a), Some(b)) => compare(a, b, &format!("{path}[*]"), out),
        (None, Some(b)) if kept(old) => compare(&ANY, b, &format!("{path}[*]"), out),
        _ => {}
    }
}

/// A node that accepts any value and keeps it: what a node declared where unknown fields were
/// kept is compared with, since existing objects may already hold a value there.
static ANY: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| serde_json::json!({"x-kubernetes-preserve-unknown-fields": true}));

/// Whether a node kept values it does not declare: unknown fields kept, and no type.
fn kept(schema: &Value) -> bool {
    is_true(schema, "x-kubernetes-preserve-unknown-fields") && kind(schema).is_none()
}

fn is_true(schema: &Value, key: &str) -> bool {
    schema[key].as_bool() == Some(true)
}

/// The type a node accepts: `int-or-string` for `x-kubernetes-int-or-string`.
fn kind(schema: &Value) -> Option<&str> {
    if is_true(schema, "x-kubernetes-int-or-string") {
        return Some("int-or-string");
    }
    schema["type"].as_str()
}

/// Reports a type changed or removed; true when the node's type changed.
fn types(old: &Value, new: &Value, path: &str, out: &mut Vec<Found>) -> bool {
    match (kind(old), kind(new)) {
        (Some(a), Some(b)) if a == b => false,
        (Some("integer" | "string"), Some("int-or-string")) => false,
        (Some(a), Some(b)) => {
            out.push(Found::breaking(
                path,
                "type-changed",
                format!("type changed from {a} to {b}"),
            ));
            true
        }
        (Some(a), None) => {
            out.push(Found::breaking(
                path,
                "type-removed",
                format!("type {a} removed: clients can no longer rely on it"),
            ));
            false
        }
        // Where any value was accepted (unknown fields kept), values of another type now fail.
        (None, Some(b)) => {
            out.push(Found::breaking(
                path,
                "type-added",
                format!("type {b} declared where any value was accepted"),
            ));
            false
        }
        (None, None) => false,
    }
}

fn nullable(old: &Value, new: &Value, path: &str, out: &mut Vec<Found>) {
    if is_true(old, "nullable") && !is_true(new, "nullable") {
        out.push(Found::breaking(
            path,
            "nullable-removed",
            "nullable removed: null is no longer accepted".to_owned(),
        ));
    }
}

fn defaults(old: &Value, new: &Value, path: &str, out: &mut Vec<Found>) {
    match (old.get("default"), new.get("default")) {
        (None, Some(d)) => out.push(Found::warning(
            path,
            "default-added",
            format!(
                "default {} added: objects that leave it out now get it",
                shown(d)
            ),
        )),
        (Some(a), Some(b)) if a != b => out.push(Found::warning(
            path,
            "default-changed",
            format!(
                "default changed from {} to {}: objects that leave it out get the new value",
                shown(a),
                shown(b)
            ),
        )),
        (Some(a), None) => out.push(Found::warning(
            path,
            "default-removed",
            format!(
                "default {} removed: objects that leave it out no longer get it",
                shown(a)
            ),
        )),
        _ => {}
    }
}

/// A numeric bound with its exclusiveness: OpenAPI 3.0's boolean `exclusiveMinimum` beside
/// `minimum`, or a JSON Schema numeric `exclusiveMinimum`.
fn numeric(schema: &Value, key: &str, exclusive: &str) -> Option<(f64, bool)> {
    match (schema[key].as_f64(), &schema[exclusive]) {
        (Some(value), flag) => Some((value, flag.as_bool() == Some(true))),
        (None, Value::Number(n)) => Some((n.as_f64()?, true)),
        _ => None,
    }
}

fn describe((value, exclusive): (f64, bool), key: &str) -> String {
    let value = Value::from(value);
    let value = match value.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => (f as i64).to_string(),
        _ => shown(&value),
    };
    if exclusive {
        format!("exclusive {key} {value}")
    } else {
        format!("{key} {value}")
    }
}

fn numeric_bound(old: &Value, new: &Value, path: &str, rises: bool, out: &mut Vec<Found>) {
    let (key, exclusive) = if rises {
        ("minimum", "exclusiveMinimum")
    } else {
        ("maximum", "exclusiveMaximum")
    };
    let (before, Some(after)) = (numeric(old, key, exclusive), numeric(new, key, exclusive)) else {
        return;
    };
    let tightened = match before {
        None => true,
        Some((a, ae)) => {
            let moved = if rises { after.0 > a } else { after.0 < a };
            moved || (after.0 == a && after.1 && !ae)
        }
    };
    if !tightened {
        return;
    }
    let change = match before {
        None => format!("{} added", describe(after, key)),
        Some(before) => format!(
            "{} tightened to {}",
            describe(before, key),
            describe(after, key)
        ),
    };
    out.push(Found::breaking(path, "bound-tightened", change));
}

fn size_bound(old: &Value, new: &Value, path: &str, key: &str, out: &mut Vec<Found>) {
    let rises = key.starts_with("min");
    let (before, Some(after)) = (old[key].as_f64(), new[key].as_f64()) else {
        return;
    };
    let change = match before {
        None => format!("{key} {} added", shown(&new[key])),
        Some(a) if (rises && after > a) || (!rises && after < a) => format!(
            "{key} {} from {} to {}",
            if rises { "raised" } else { "lowered" },
            shown(&old[key]),
            shown(&new[key])
        ),
        Some(_) => return,
    };
    out.push(Found::breaking(path, "bound-tightened", change));
}

fn bounds(old: &Value, new: &Value, path: &str, out: &mut Vec<Found>) {
    numeric_bound(old, new, path, true, out);
    numeric_bound(old, new, path, false, out);
    for key in [
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
    ] {
        size_bound(old, new, path, key, out);
    }
    if let Some(after) = new["multipleOf"].as_f64() {
        // Loosened only when every old multiple is a new one: the old factor divides evenly.
        let divides = |before: f64| after != 0.0 && ((before / after).fract()).abs() < 1e-9;
        let change = match old["multipleOf"].as_f64() {
            None => format!("multipleOf {} added", shown(&new["multipleOf"])),
            Some(before) if !divides(before) => format!(
                "multipleOf changed from {} to {}",
                shown(&old["multipleOf"]),
                shown(&new["multipleOf"])
            ),
            Some(_) => return,
        };
        out.push(Found::breaking(path, "bound-tightened", change));
    }
}

fn listed(values: &[Value]) -> String {
    values.iter().map(shown).collect::<Vec<_>>().join(", ")
}

/// Enum, pattern and format.
fn values(old: &Value, new: &Value, path: &str, out: &mut Vec<Found>) {
    match (old["enum"].as_array(), new["enum"].as_array()) {
        (Some(before), Some(after)) => {
            let gone: Vec<Value> = before
                .iter()
                .filter(|v| !after.contains(v))
                .cloned()
                .collect();
            if !gone.is_empty() {
                out.push(Found::breaking(
                    path,
                    "enum-shrunk",
                    format!("enum no longer allows {}", listed(&gone)),
                ));
            }
        }
        (None, Some(after)) => out.push(Found::breaking(
            path,
            "enum-added",
            format!("enum added: only {} allowed", listed(after)),
        )),
        _ => {}
    }
    for (key, rule, shape) in [
        ("pattern", "pattern-changed", "/{}/"),
        ("format", "format-changed", "{}"),
    ] {
        let quoted = |s: &str| shape.replace("{}", s);
        match (old[key].as_str(), new[key].as_str()) {
            (before, Some(after)) if before != Some(after) => out.push(Found::breaking(
                path,
                rule,
                match before {
                    Some(before) => {
                        format!("{key} changed from {} to {}", quoted(before), quoted(after))
                    }
                    None => format!("{key} {} added", quoted(after)),
                },
            )),
            _ => {}
        }
    }
}

/// `allOf`, `anyOf`, `oneOf` and `not`: added, or tightened.
fn composition(old: &Value, new: &Value, path: &str, out: &mut Vec<Found>) {
    for key in ["allOf", "anyOf", "oneOf"] {
        let (before, after) = (old[key].as_array(), new[key].as_array());
        let Some(after) = after else { continue };
        let Some(before) = before else {
            out.push(Found::breaking(
                path,
                "composition-tightened",
                format!("{key} added ({} schemas)", after.len()),
            ));
            continue;
        };
        match key {
            // Every entry must hold: an entry added tightens, an entry changed is compared.
            "allOf" => {
                for (i, next) in after.iter().enumerate() {
                    match before.get(i) {
                        Some(previous) => {
                            // Nothing under a composition is ratcheted.
                            let from = out.len();
                            compare(previous, next, path, out);
                            for found in &mut out[from..] {
                                found.ratcheted = found.ratcheted.map(|_| false);
                            }
                        }
                        None => out.push(Found::breaking(
                            path,
                            "composition-tightened",
                            format!("allOf entry {} added", i + 1),
                        )),
                    }
                }
            }
            // One branch must hold: a branch gone (or changed) tightens, one added loosens.
            "anyOf" => {
                let gone = before.iter().filter(|b| !after.contains(b)).count();
                if gone > 0 {
                    out.push(Found::breaking(
                        path,
                        "composition-tightened",
                        format!("anyOf: {gone} branch(es) removed or changed"),
                    ));
                }
            }
            // Exactly one must hold: a branch added can make a valid object match two.
            _ => {
                if before != after {
                    out.push(Found::breaking(
                        path,
                        "composition-tightened",
                        "oneOf changed: objects that matched exactly one branch may not now"
                            .to_owned(),
                    ));
                }
            }
        }
    }
    match (old.get("not"), new.get("not")) {
        (None, Some(_)) => out.push(Found::breaking(
            path,
            "composition-tightened",
            "not added".to_owned(),
        )),
        (Some(a), Some(b)) if a != b => out.push(Found::breaking(
            path,
            "composition-tightened",
            "not changed".to_owned(),
        )),
        _ => {}
    }
}

fn rule_texts(schema: &Value) -> Vec<&str> {
    schema["x-kubernetes-validations"]
        .as_array()
        .map(|rules| rules.iter().filter_map(|r| r["rule"].as_str()).collect())
        .unwrap_or_default()
}

/// Whether a CEL rule compares with the old object: a transition rule, checked on update only.
pub fn is_transition(rule: &str) -> bool {
    rule.match_indices("oldSelf").any(|(at, _)| {
        let before = rule[..at].chars().next_back();
        let after = rule[at + "oldSelf".len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !word(before) && !word(after)
    })
}

/// `x-kubernetes-validations` rules added or changed; a rule removed loosens.
fn rules(old: &Value, new: &Value, path: &str, out: &mut Vec<Found>) {
    let (before, after) = (rule_texts(old), rule_texts(new));
    for (i, rule) in after.iter().enumerate() {
        if before.contains(rule) {
            continue;
        }
        let replaced = before.get(i).filter(|r| !after.contains(r));
        let what = match replaced {
            Some(previous) => format!("changed from `{previous}` to `{rule}`"),
            None => format!("added: `{rule}`"),
        };
        out.push(if is_transition(rule) {
            Found::breaking(
                path,
                "cel-transition-rule",
                format!("transition rule {what}: existing objects stay readable, but updates must satisfy it"),
            )
        } else {
            Found::breaking(path, "cel-rule", format!("validation rule {what}"))
        });
    }
}

/// List and map structure, and unknown fields kept.
fn structure(old: &Value, new: &Value, path: &str, out: &mut Vec<Found>) {
    let array = kind(old) == Some("array") || kind(new) == Some("array");
    let object = kind(old) == Some("object") || kind(new) == Some("object");
    let effective = |schema: &Value, key: &str, default: &'static str| -> String {
        schema[key].as_str().unwrap_or(default).to_owned()
    };
    if array {
        let (a, b) = (
            effective(old, "x-kubernetes-list-type", "atomic"),
            effective(new, "x-kubernetes-list-type", "atomic"),
        );
        if a != b {
            out.push(Found::breaking(
                path,
                "list-type-changed",
                format!("x-kubernetes-list-type changed from {a} to {b}"),
            ));
        }
        let (a, b) = (
            &old["x-kubernetes-list-map-keys"],
            &new["x-kubernetes-list-map-keys"],
        );
        if a != b && (a.is_array() || b.is_array()) {
            out.push(Found::breaking(
                path,
                "list-map-keys-changed",
                format!(
                    "x-kubernetes-list-map-keys changed from {} to {}",
                    if a.is_null() {
                        "none".into()
                    } else {
                        a.to_string()
                    },
                    if b.is_null() {
                        "none".into()
                    } else {
                        b.to_string()
                    }
                ),
            ));
        }
    }
    if object {
        let (a, b) = (
            effective(old, "x-kubernetes-map-type", "granular"),
            effective(new, "x-kubernetes-map-type", "granular"),
        );
        if a != b {
            out.push(Found::breaking(
                path,
                "map-type-changed",
                format!("x-kubernetes-map-type changed from {a} to {b}"),
            ));
        }
    }
    if is_true(old, "x-kubernetes-preserve-unknown-fields")
        && !is_true(new, "x-kubernetes-preserve-unknown-fields")
        && matches!(kind(new), None | Some("object"))
    {
        out.push(Found::breaking(
            path,
            "preserve-unknown-fields-removed",
            "x-kubernetes-preserve-unknown-fields removed: fields the schema does not declare are pruned".to_owned(),
        ));
    }
}

fn names(schema: &Value, key: &str) -> Vec<String> {
    schema[key]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A field newly required of a node that existed before. A required field under a parent the
/// change adds is not reported: existing objects have no such parent (the parent itself, when
/// required, is reported at its own level).
fn required(old: &Value, new: &Value, path: &str, out: &mut Vec<Found>) {
    let before = names(old, "required");
    for field in names(new, "required")
        .iter()
        .filter(|f| !before.contains(f))
    {
        out.push(Found::breaking(
            &format!("{path}.{field}"),
            "field-required",
            "newly required".to_owned(),
        ));
    }
}

fn object<'a>(schema: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    schema[key].as_object()
}

/// Named properties: each kept one compared, each gone one removed unless what replaces it
/// (`additionalProperties`, unknown fields kept) accepts it.
fn properties(old: &Value, new: &Value, path: &str, out: &mut Vec<Found>) {
    let after = object(new, "properties");
    declared(old, after, path, out);
    let Some(before) = object(old, "properties") else {
        return;
    };
    let keeps = is_true(new, "x-kubernetes-preserve-unknown-fields");
    for (name, schema) in before {
        let child = format!("{path}.{name}");
        if let Some(next) = after.and_then(|p| p.get(name)) {
            compare(schema, next, &child, out);
            continue;
        }
        match new.get("additionalProperties") {
            Some(Value::Bool(true)) => {}
            // The named field is now a map value: it must fit the value schema.
            Some(values) if values.is_object() => compare(schema, values, &child, out),
            Some(_) => removed(schema, &child, None, out),
            None if keeps => {}
            None => removed(schema, &child, None, out),
        }
    }
}

/// Fields the new schema declares that the old one did not, where existing objects may
/// already hold them: kept as unknown fields, or as a map's values. Each is compared with what
/// accepted it before, so its type, bounds and rules (transition rules too) are weighed against
/// values already stored. A field new where nothing undeclared was kept holds nothing yet.
fn declared(old: &Value, after: Option<&Map<String, Value>>, path: &str, out: &mut Vec<Found>) {
    let Some(after) = after else { return };
    let before = object(old, "properties");
    let accepted = match old.get("additionalProperties") {
        Some(values) if values.is_object() => Some(values),
        Some(Value::Bool(true)) => Some(&*ANY),
        _ if is_true(old, "x-kubernetes-preserve-unknown-fields") => Some(&*ANY),
        _ => None,
    };
    let Some(accepted) = accepted else { return };
    for (name, schema) in after {
        if before.is_none_or(|b| !b.contains_key(name)) {
            compare(accepted, schema, &format!("{path}.{name}"), out);
        }
    }
}

/// A field removed, and every field under it.
fn removed(schema: &Value, path: &str, parent: Option<&str>, out: &mut Vec<Found>) {
    out.push(Found::breaking(
        path,
        "field-removed",
        match parent {
            None => "field removed".to_owned(),
            Some(parent) => format!("removed with its parent {parent}"),
        },
    ));
    let parent = parent.unwrap_or(path);
    if let Some(children) = object(schema, "properties") {
        for (name, child) in children {
            removed(child, &format!("{path}.{name}"), Some(parent), out);
        }
    }
    if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
        let inner = format!("{path}[*]");
        if let Some(children) = object(items, "properties") {
            for (name, child) in children {
                removed(child, &format!("{inner}.{name}"), Some(parent), out);
            }
        }
    }
}

/// `additionalProperties`: a map's values, compared; removed, added or set to false.
fn additional(old: &Value, new: &Value, path: &str, out: &mut Vec<Found>) {
    let keeps = is_true(new, "x-kubernetes-preserve-unknown-fields");
    let values = format!("{path}.*");
    match (
        old.get("additionalProperties"),
        new.get("additionalProperties"),
    ) {
        (Some(a), Some(b)) if a.is_object() && b.is_object() => compare(a, b, &values, out),
        (Some(a), Some(Value::Bool(false))) if a != &Value::Bool(false) => {
            out.push(Found::breaking(
                path,
                "additional-properties-tightened",
                "additionalProperties set to false: no keys beyond the named properties".to_owned(),
            ));
        }
        (Some(Value::Bool(true)), Some(b)) if b.is_object() => out.push(Found::breaking(
            &values,
            "additional-properties-tightened",
            "additionalProperties constrained: every value must now match its schema".to_owned(),
        )),
        (Some(a), None) if (a.is_object() || a == &Value::Bool(true)) && !keeps => {
            out.push(Found::breaking(
                path,
                "additional-properties-removed",
                "additionalProperties removed: keys other than the named properties are pruned"
                    .to_owned(),
            ));
        }
        (None, Some(b))
            if (b.is_object() || b == &Value::Bool(false))
                && object(old, "properties").is_none()
                && is_true(old, "x-kubernetes-preserve-unknown-fields") =>
        {
            out.push(Found::breaking(
                &values,
                "additional-properties-added",
                "additionalProperties added where any field was kept: every value must now match it"
                    .to_owned(),
            ));
        }
        _ => {}
    }
}
