//! CustomResourceDefinition compatibility: what a new version of a CRD breaks for the custom
//! resources and clients written against the old one. A served version removed, a field removed,
//! a type changed, a field newly required, or validation tightened (an enum shrunk, a minimum
//! raised, a maximum, maxLength or maxItems lowered, a pattern changed) is breaking, with the
//! exact path. Loosening is not. Pure.

use serde::Serialize;
use serde_json::Value;

/// One breaking change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Breaking {
    /// The CRD version (`v1`).
    pub version: String,
    /// Where, in the custom resource (`.spec.size`), or the version itself.
    pub path: String,
    /// What changed.
    pub change: String,
}

fn served(crd: &Value) -> Vec<(&str, &Value)> {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|versions| {
            versions
                .iter()
                .filter(|v| v["served"].as_bool().unwrap_or(true))
                .filter_map(|v| Some((v["name"].as_str()?, v)))
                .collect()
        })
        .unwrap_or_default()
}

/// What `new` breaks of `old`; both are CustomResourceDefinitions.
pub fn compare(old: &Value, new: &Value) -> Vec<Breaking> {
    let mut out = Vec::new();
    let now = served(new);
    for (name, version) in served(old) {
        let Some((_, next)) = now.iter().find(|(n, _)| *n == name) else {
            out.push(Breaking {
                version: name.to_owned(),
                path: format!("spec.versions[name={name}]"),
                change: format!("served version {name} removed"),
            });
            continue;
        };
        let schema = |v: &Value| v.pointer("/schema/openAPIV3Schema").cloned();
        if let (Some(a), Some(b)) = (schema(version), schema(next)) {
            let mut found = Vec::new();
            schema_changes(&a, &b, "", &mut found);
            out.extend(found.into_iter().map(|(path, change)| Breaking {
                version: name.to_owned(),
                path: if path.is_empty() {
                    ".".to_owned()
                } else {
                    path
                },
                change,
            }));
        }
    }
    out
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A bound that only ever tightened when it rose (`minimum`) or fell (`maximum`).
fn bound(old: &Value, new: &Value, key: &str, rises: bool, out: &mut Vec<String>) {
    let (Some(after), before) = (new[key].as_f64(), old[key].as_f64()) else {
        return;
    };
    let tightened = match before {
        None => true,
        Some(before) if rises => after > before,
        Some(before) => after < before,
    };
    if tightened {
        let verb = if rises { "raised" } else { "lowered" };
        match before {
            Some(_) => out.push(format!(
                "{key} {verb} from {} to {}",
                shown(&old[key]),
                shown(&new[key])
            )),
            None => out.push(format!("{key} {} added", shown(&new[key]))),
        }
    }
}

fn validation(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(a), Some(b)) = (old["type"].as_str(), new["type"].as_str())
        && a != b
    {
        out.push(format!("type changed from {a} to {b}"));
    }
    match (old["enum"].as_array(), new["enum"].as_array()) {
        (Some(before), Some(after)) => {
            let gone: Vec<String> = before
                .iter()
                .filter(|v| !after.contains(v))
                .map(shown)
                .collect();
            if !gone.is_empty() {
                out.push(format!("enum no longer allows {}", gone.join(", ")));
            }
        }
        (None, Some(after)) => out.push(format!(
            "enum added: only {} allowed",
            after.iter().map(shown).collect::<Vec<_>>().join(", ")
        )),
        _ => {}
    }
    bound(old, new, "minimum", true, &mut out);
    for key in ["maximum", "maxLength", "maxItems"] {
        bound(old, new, key, false, &mut out);
    }
    match (old["pattern"].as_str(), new["pattern"].as_str()) {
        (before, Some(after)) if before != Some(after) => out.push(match before {
            Some(before) => format!("pattern changed from /{before}/ to /{after}/"),
            None => format!("pattern /{after}/ added"),
        }),
        _ => {}
    }
    out
}

fn schema_changes(old: &Value, new: &Value, path: &str, out: &mut Vec<(String, String)>) {
    for change in validation(old, new) {
        out.push((path.to_owned(), change));
    }
    let required = |v: &Value| -> Vec<String> {
        v["required"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let before = required(old);
    for field in required(new).iter().filter(|f| !before.contains(f)) {
        out.push((format!("{path}.{field}"), "newly required".to_owned()));
    }
    let open = new["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
    if let Some(properties) = old["properties"].as_object() {
        for (name, schema) in properties {
            let child = format!("{path}.{name}");
            match new["properties"].get(name) {
                Some(next) => schema_changes(schema, next, &child, out),
                None if open => {}
                None => out.push((child, "field removed".to_owned())),
            }
        }
    }
    if let (Some(a), Some(b)) = (old.get("items"), new.get("items")) {
        schema_changes(a, b, &format!("{path}[*]"), out);
    }
    if let (Some(a), Some(b)) = (
        old.get("additionalProperties").filter(|v| v.is_object()),
        new.get("additionalProperties").filter(|v| v.is_object()),
    ) {
        schema_changes(a, b, &format!("{path}.*"), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd(versions: Value) -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"}, "spec": {"versions": versions}})
    }

    fn version(name: &str, spec: Value) -> Value {
        json!({"name": name, "served": true, "storage": true, "schema": {"openAPIV3Schema":
            {"type": "object", "properties": {"spec": spec}}}})
    }

    fn spec() -> Value {
        json!({"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10},
            "color": {"type": "string", "enum": ["red", "green", "blue"], "maxLength": 10},
            "name": {"type": "string", "pattern": "^[a-z]+$"},
            "tags": {"type": "array", "items": {"type": "object", "properties": {"key": {"type": "string"}}}},
            "note": {"type": "string"}}})
    }

    fn changes(old: Value, new: Value) -> Vec<(String, String)> {
        compare(
            &crd(json!([version("v1", old)])),
            &crd(json!([version("v1", new)])),
        )
        .into_iter()
        .map(|b| (b.path, b.change))
        .collect()
    }

    fn edited(edit: impl FnOnce(&mut Value)) -> Vec<(String, String)> {
        let mut new = spec();
        edit(&mut new);
        changes(spec(), new)
    }

    fn one(path: &str, change: &str) -> Vec<(String, String)> {
        vec![(path.to_owned(), change.to_owned())]
    }

    #[test]
    fn the_same_schema_breaks_nothing_and_loosening_is_fine() {
        assert!(changes(spec(), spec()).is_empty());
        let loosened = edited(|s| {
            s["properties"]["size"]["maximum"] = json!(100);
            s["properties"]["color"]["enum"] = json!(["red", "green", "blue", "black"]);
            s["properties"]["extra"] = json!({"type": "string"});
            s["required"] = json!([]);
        });
        assert!(loosened.is_empty(), "{loosened:?}");
    }

    #[test]
    fn each_breaking_change_is_named_with_its_path() {
        let removed = edited(|s| {
            s["properties"].as_object_mut().unwrap().remove("note");
        });
        assert_eq!(removed, one(".spec.note", "field removed"));
        let required = edited(|s| s["required"] = json!(["size", "name"]));
        assert_eq!(required, one(".spec.name", "newly required"));
        let retyped = edited(|s| s["properties"]["size"]["type"] = json!("string"));
        assert_eq!(
            retyped,
            one(".spec.size", "type changed from integer to string")
        );
        let shrunk = edited(|s| s["properties"]["color"]["enum"] = json!(["red"]));
        assert_eq!(
            shrunk,
            one(".spec.color", "enum no longer allows green, blue")
        );
        let raised = edited(|s| s["properties"]["size"]["minimum"] = json!(2));
        assert_eq!(raised, one(".spec.size", "minimum raised from 1 to 2"));
        let lowered = edited(|s| s["properties"]["size"]["maximum"] = json!(5));
        assert_eq!(lowered, one(".spec.size", "maximum lowered from 10 to 5"));
        let shorter = edited(|s| s["properties"]["color"]["maxLength"] = json!(3));
        assert_eq!(
            shorter,
            one(".spec.color", "maxLength lowered from 10 to 3")
        );
        let pattern = edited(|s| s["properties"]["name"]["pattern"] = json!("^[a-z0-9]+$"));
        assert_eq!(
            pattern,
            one(
                ".spec.name",
                "pattern changed from /^[a-z]+$/ to /^[a-z0-9]+$/"
            )
        );
        let nested = edited(|s| {
            s["properties"]["tags"]["items"]["properties"]["key"]["type"] = json!("integer")
        });
        assert_eq!(
            nested,
            one(".spec.tags[*].key", "type changed from string to integer")
        );
    }

    #[test]
    fn a_served_version_removed_is_breaking_and_a_new_one_is_not() {
        let old = crd(json!([version("v1", spec()), version("v2", spec())]));
        let mut unserved = version("v1", spec());
        unserved["served"] = json!(false);
        let new = crd(json!([
            unserved,
            version("v2", spec()),
            version("v3", spec())
        ]));
        let found = compare(&old, &new);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "spec.versions[name=v1]");
        assert_eq!(found[0].change, "served version v1 removed");
        assert!(
            compare(
                &new,
                &crd(json!([version("v2", spec()), version("v3", spec())]))
            )
            .is_empty()
        );
    }
}
