//! Every rule, in the breaking and the compatible direction.

use super::*;
use serde_json::json;

fn crd(versions: Value) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "versions": versions}})
}

fn version(name: &str, spec: Value) -> Value {
    json!({"name": name, "served": true, "storage": true, "schema": {"openAPIV3Schema":
        {"type": "object", "properties": {"spec": spec}}}})
}

fn spec() -> Value {
    json!({"type": "object", "required": ["size"], "properties": {
        "size": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
        "color": {"type": "string", "enum": ["red", "green", "blue"], "maxLength": 10},
        "name": {"type": "string", "pattern": "^[a-z]+$", "minLength": 1},
        "email": {"type": "string", "format": "email"},
        "ratio": {"type": "number", "multipleOf": 0.5},
        "tags": {"type": "array", "maxItems": 5, "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["key"],
            "items": {"type": "object", "required": ["key"], "properties": {
                "key": {"type": "string"}, "value": {"type": "string", "nullable": true}}}},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "selector": {"type": "object", "x-kubernetes-map-type": "atomic", "properties": {
            "app": {"type": "string"}}},
        "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "port": {"x-kubernetes-int-or-string": true},
        "limits": {"type": "object", "minProperties": 1, "properties": {
            "cpu": {"type": "string"}, "memory": {"type": "string"}}},
        "mode": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self != 'off'", "message": "mode cannot be off"}]},
        "note": {"type": "string", "description": "free text"}}})
}

fn changes(old: Value, new: Value) -> Vec<(String, String)> {
    compare(
        &crd(json!([version("v1", old)])),
        &crd(json!([version("v1", new)])),
        None,
    )
    .into_iter()
    .map(|b| (b.path, b.change))
    .collect()
}

fn rules(old: Value, new: Value) -> Vec<(String, String, Impact)> {
    compare(
        &crd(json!([version("v1", old)])),
        &crd(json!([version("v1", new)])),
        None,
    )
    .into_iter()
    .map(|b| (b.path, b.rule, b.severity))
    .collect()
}

fn edited(edit: impl FnOnce(&mut Value)) -> Vec<(String, String)> {
    let mut new = spec();
    edit(&mut new);
    changes(spec(), new)
}

/// The change from the edited spec back to the original: the other direction.
fn reverted(edit: impl FnOnce(&mut Value)) -> Vec<(String, String)> {
    let mut old = spec();
    edit(&mut old);
    changes(old, spec())
}

fn one(path: &str, change: &str) -> Vec<(String, String)> {
    vec![(path.to_owned(), change.to_owned())]
}

fn field<'a>(s: &'a mut Value, name: &str) -> &'a mut Value {
    &mut s["properties"][name]
}

#[test]
fn the_same_schema_breaks_nothing_and_a_description_is_not_a_change() {
    assert!(changes(spec(), spec()).is_empty());
    let described = edited(|s| field(s, "note")["description"] = json!("other text"));
    assert!(described.is_empty(), "{described:?}");
}

#[test]
fn loosening_is_never_breaking() {
    let loosened = edited(|s| {
        field(s, "size")["maximum"] = json!(100);
        field(s, "size")["minimum"] = json!(0);
        field(s, "color")["enum"] = json!(["red", "green", "blue", "black"]);
        field(s, "color")["maxLength"] = json!(20);
        field(s, "name").as_object_mut().unwrap().remove("pattern");
        field(s, "name")
            .as_object_mut()
            .unwrap()
            .remove("minLength");
        field(s, "email").as_object_mut().unwrap().remove("format");
        field(s, "ratio")["multipleOf"] = json!(0.25);
        field(s, "tags")["maxItems"] = json!(50);
        field(s, "limits")
            .as_object_mut()
            .unwrap()
            .remove("minProperties");
        field(s, "mode")
            .as_object_mut()
            .unwrap()
            .remove("x-kubernetes-validations");
        field(s, "note")["nullable"] = json!(true);
        s["properties"]["extra"] = json!({"type": "string"});
        s["required"] = json!([]);
    });
    assert!(loosened.is_empty(), "{loosened:?}");
}

#[test]
fn a_field_removed_and_the_children_of_a_removed_parent() {
    let removed = edited(|s| {
        s["properties"].as_object_mut().unwrap().remove("note");
    });
    assert_eq!(removed, one(".spec.note", "field removed"));
    let parent = edited(|s| {
        s["properties"].as_object_mut().unwrap().remove("tags");
    });
    assert_eq!(
        parent,
        vec![
            (".spec.tags".to_owned(), "field removed".to_owned()),
            (
                ".spec.tags[*].key".to_owned(),
                "removed with its parent .spec.tags".to_owned()
            ),
            (
                ".spec.tags[*].value".to_owned(),
                "removed with its parent .spec.tags".to_owned()
            ),
        ]
    );
    // The other direction: a field added.
    assert!(
        reverted(|s| {
            s["properties"].as_object_mut().unwrap().remove("note");
        })
        .is_empty()
    );
}

#[test]
fn a_field_newly_required_unless_under_a_parent_the_change_adds() {
    assert_eq!(
        edited(|s| s["required"] = json!(["size", "name"])),
        one(".spec.name", "newly required")
    );
    // Under an existing optional parent: objects that set the parent without it break.
    assert_eq!(
        edited(|s| field(s, "limits")["required"] = json!(["cpu"])),
        one(".spec.limits.cpu", "newly required")
    );
    // Under a new optional parent: no existing object has the parent.
    let under_new = edited(|s| {
        s["properties"]["probe"] = json!({"type": "object", "required": ["path"],
            "properties": {"path": {"type": "string"}}});
    });
    assert!(under_new.is_empty(), "{under_new:?}");
    // A new parent that is itself required is reported at its own level.
    let required_parent = edited(|s| {
        s["properties"]["probe"] =
            json!({"type": "object", "properties": {"path": {"type": "string"}}});
        s["required"] = json!(["size", "probe"]);
    });
    assert_eq!(required_parent, one(".spec.probe", "newly required"));
    // No longer required: compatible.
    assert!(reverted(|s| s["required"] = json!(["size", "name"])).is_empty());
}

#[test]
fn a_type_changed_or_removed_is_breaking_and_int_or_string_widening_is_not() {
    assert_eq!(
        edited(|s| field(s, "size")["type"] = json!("string")),
        one(".spec.size", "type changed from integer to string")
    );
    assert_eq!(
        edited(|s| {
            field(s, "note").as_object_mut().unwrap().remove("type");
        }),
        one(
            ".spec.note",
            "type string removed: clients can no longer rely on it"
        )
    );
    let nested = edited(|s| {
        s["properties"]["tags"]["items"]["properties"]["key"]["type"] = json!("integer")
    });
    assert_eq!(
        nested,
        one(".spec.tags[*].key", "type changed from string to integer")
    );
    // integer → int-or-string widens; the reverse narrows.
    let widened = edited(|s| {
        field(s, "note").as_object_mut().unwrap().remove("type");
        field(s, "note")["x-kubernetes-int-or-string"] = json!(true);
    });
    assert!(widened.is_empty(), "{widened:?}");
    assert_eq!(
        edited(|s| *field(s, "port") = json!({"type": "integer"})),
        one(".spec.port", "type changed from int-or-string to integer")
    );
}

#[test]
fn nullable_removed_is_breaking_and_added_is_not() {
    let path = ".spec.tags[*].value";
    let removed = edited(|s| {
        s["properties"]["tags"]["items"]["properties"]["value"]
            .as_object_mut()
            .unwrap()
            .remove("nullable");
    });
    assert_eq!(
        removed,
        one(path, "nullable removed: null is no longer accepted")
    );
    assert!(
        reverted(|s| {
            s["properties"]["tags"]["items"]["properties"]["value"]
                .as_object_mut()
                .unwrap()
                .remove("nullable");
        })
        .is_empty()
    );
}

#[test]
fn defaults_added_changed_or_removed_are_warnings() {
    let changed = rules(spec(), {
        let mut s = spec();
        field(&mut s, "size")["default"] = json!(5);
        field(&mut s, "note")["default"] = json!("none");
        field(&mut s, "color")["default"] = json!("red");
        s
    });
    let warning = |path: &str, rule: &str| (path.to_owned(), rule.to_owned(), Impact::Warning);
    assert_eq!(
        changed,
        vec![
            warning(".spec.size", "default-changed"),
            warning(".spec.color", "default-added"),
            warning(".spec.note", "default-added"),
        ]
    );
    let removed = rules(spec(), {
        let mut s = spec();
        field(&mut s, "size")
            .as_object_mut()
            .unwrap()
            .remove("default");
        s
    });
    assert_eq!(removed, vec![warning(".spec.size", "default-removed")]);
    let same = compare(
        &crd(json!([version("v1", spec())])),
        &crd(json!([version("v1", spec())])),
        None,
    );
    assert!(same.is_empty());
    let found = compare(
        &crd(json!([version("v1", spec())])),
        &crd(json!([version("v1", {
            let mut s = spec();
            field(&mut s, "size")["default"] = json!(4);
            s
        })])),
        None,
    );
    assert!(!found[0].breaks(), "a default is a warning, not breaking");
}

#[test]
fn numeric_bounds_tightened_including_exclusive_forms() {
    assert_eq!(
        edited(|s| field(s, "size")["minimum"] = json!(2)),
        one(".spec.size", "minimum 1 tightened to minimum 2")
    );
    assert_eq!(
        edited(|s| field(s, "size")["maximum"] = json!(5)),
        one(".spec.size", "maximum 10 tightened to maximum 5")
    );
    assert_eq!(
        edited(|s| field(s, "size")["exclusiveMinimum"] = json!(true)),
        one(".spec.size", "minimum 1 tightened to exclusive minimum 1")
    );
    assert_eq!(
        edited(|s| field(s, "size")["exclusiveMaximum"] = json!(true)),
        one(".spec.size", "maximum 10 tightened to exclusive maximum 10")
    );
    assert_eq!(
        edited(|s| field(s, "ratio")["minimum"] = json!(0)),
        one(".spec.ratio", "minimum 0 added")
    );
    // Loosened the other way round.
    assert!(reverted(|s| field(s, "size")["exclusiveMinimum"] = json!(true)).is_empty());
    assert!(reverted(|s| field(s, "size")["maximum"] = json!(5)).is_empty());
    assert!(reverted(|s| field(s, "ratio")["minimum"] = json!(0)).is_empty());
}

#[test]
fn size_bounds_tightened_and_a_bound_that_appears_counts() {
    let cases = [
        (
            "name",
            "minLength",
            json!(3),
            "minLength raised from 1 to 3",
        ),
        (
            "color",
            "maxLength",
            json!(3),
            "maxLength lowered from 10 to 3",
        ),
        ("tags", "minItems", json!(1), "minItems 1 added"),
        ("tags", "maxItems", json!(2), "maxItems lowered from 5 to 2"),
        (
            "limits",
            "minProperties",
            json!(2),
            "minProperties raised from 1 to 2",
        ),
        ("limits", "maxProperties", json!(1), "maxProperties 1 added"),
        ("note", "maxLength", json!(100), "maxLength 100 added"),
    ];
    for (name, key, value, change) in cases {
        let path = format!(".spec.{name}");
        assert_eq!(
            edited(|s| field(s, name)[key] = value.clone()),
            one(&path, change),
            "{key}"
        );
        assert!(
            reverted(|s| field(s, name)[key] = value.clone()).is_empty(),
            "{key} loosened"
        );
    }
}

#[test]
fn multiple_of_tightened_unless_the_old_factor_is_a_multiple_of_the_new() {
    assert_eq!(
        edited(|s| field(s, "ratio")["multipleOf"] = json!(0.3)),
        one(".spec.ratio", "multipleOf changed from 0.5 to 0.3")
    );
    assert_eq!(
        edited(|s| field(s, "ratio")["multipleOf"] = json!(1)),
        one(".spec.ratio", "multipleOf changed from 0.5 to 1")
    );
    assert_eq!(
        edited(|s| field(s, "size")["multipleOf"] = json!(2)),
        one(".spec.size", "multipleOf 2 added")
    );
    assert!(edited(|s| field(s, "ratio")["multipleOf"] = json!(0.25)).is_empty());
}

#[test]
fn enum_shrunk_or_added_and_grown() {
    assert_eq!(
        edited(|s| field(s, "color")["enum"] = json!(["red"])),
        one(".spec.color", "enum no longer allows green, blue")
    );
    assert_eq!(
        edited(|s| field(s, "note")["enum"] = json!(["a", "b"])),
        one(".spec.note", "enum added: only a, b allowed")
    );
    assert!(reverted(|s| field(s, "note")["enum"] = json!(["a", "b"])).is_empty());
    assert!(reverted(|s| field(s, "color")["enum"] = json!(["red"])).is_empty());
}

#[test]
fn pattern_and_format_added_or_changed() {
    assert_eq!(
        edited(|s| field(s, "name")["pattern"] = json!("^[a-z0-9]+$")),
        one(
            ".spec.name",
            "pattern changed from /^[a-z]+$/ to /^[a-z0-9]+$/"
        )
    );
    assert_eq!(
        edited(|s| field(s, "note")["pattern"] = json!("^x")),
        one(".spec.note", "pattern /^x/ added")
    );
    assert_eq!(
        edited(|s| field(s, "email")["format"] = json!("hostname")),
        one(".spec.email", "format changed from email to hostname")
    );
    assert_eq!(
        edited(|s| field(s, "note")["format"] = json!("date-time")),
        one(".spec.note", "format date-time added")
    );
    assert!(reverted(|s| field(s, "note")["pattern"] = json!("^x")).is_empty());
    assert!(reverted(|s| field(s, "note")["format"] = json!("date-time")).is_empty());
}

#[test]
fn composition_added_or_tightened() {
    let rule = |found: Vec<(String, String, Impact)>| -> Vec<String> {
        found
            .into_iter()
            .map(|(p, r, _)| format!("{p} {r}"))
            .collect()
    };
    let with = |key: &str, value: Value| {
        let mut s = spec();
        field(&mut s, "note")[key] = value;
        s
    };
    let a = json!({"maxLength": 5});
    let b = json!({"pattern": "^x"});
    for (key, value) in [
        ("allOf", json!([a])),
        ("anyOf", json!([a, b])),
        ("oneOf", json!([a, b])),
        ("not", json!(b)),
    ] {
        assert_eq!(
            rule(rules(spec(), with(key, value.clone()))),
            [".spec.note composition-tightened"],
            "{key} added"
        );
        assert!(
            rules(with(key, value.clone()), spec()).is_empty(),
            "{key} removed loosens"
        );
    }
    // allOf entries compared; an entry added tightens.
    assert_eq!(
        rule(rules(
            with("allOf", json!([{"maxLength": 5}])),
            with("allOf", json!([{"maxLength": 3}]))
        )),
        [".spec.note bound-tightened"]
    );
    assert_eq!(
        rule(rules(
            with("allOf", json!([a])),
            with("allOf", json!([a, b]))
        )),
        [".spec.note composition-tightened"]
    );
    // anyOf: a branch added loosens, one removed tightens.
    assert!(rules(with("anyOf", json!([a])), with("anyOf", json!([a, b]))).is_empty());
    assert_eq!(
        rule(rules(
            with("anyOf", json!([a, b])),
            with("anyOf", json!([a]))
        )),
        [".spec.note composition-tightened"]
    );
    // oneOf: any change can tighten; not: a change is judged breaking.
    assert_eq!(
        rule(rules(
            with("oneOf", json!([a])),
            with("oneOf", json!([a, b]))
        )),
        [".spec.note composition-tightened"]
    );
    assert_eq!(
        rule(rules(with("not", json!(a)), with("not", json!(b)))),
        [".spec.note composition-tightened"]
    );
}

#[test]
fn cel_rules_added_or_changed_and_transition_rules_apart() {
    let with = |rules: Value| {
        let mut s = spec();
        field(&mut s, "mode")["x-kubernetes-validations"] = rules;
        s
    };
    let found = rules(
        spec(),
        with(json!([{"rule": "self != 'off'"}, {"rule": "self.size() < 10"}])),
    );
    assert_eq!(
        found,
        vec![(
            ".spec.mode".to_owned(),
            "cel-rule".to_owned(),
            Impact::Breaking
        )]
    );
    let changed = changes(spec(), with(json!([{"rule": "self != 'none'"}])));
    assert_eq!(
        changed,
        one(
            ".spec.mode",
            "validation rule changed from `self != 'off'` to `self != 'none'`"
        )
    );
    let transition = rules(
        spec(),
        with(
            json!([{"rule": "self != 'off'"}, {"rule": "self == oldSelf", "message": "immutable"}]),
        ),
    );
    assert_eq!(transition[0].1, "cel-transition-rule");
    // A rule removed, or only its message changed, loosens or changes nothing.
    assert!(rules(spec(), with(json!([]))).is_empty());
    assert!(
        rules(
            spec(),
            with(json!([{"rule": "self != 'off'", "message": "other"}]))
        )
        .is_empty()
    );
    assert!(schema::is_transition("self.x == oldSelf.x"));
    assert!(!schema::is_transition("self.oldSelfish == 1"));
}

#[test]
fn list_and_map_structure_changed() {
    let found = |edit: fn(&mut Value)| -> Vec<String> {
        let mut s = spec();
        edit(&mut s);
        rules(spec(), s).into_iter().map(|(_, r, _)| r).collect()
    };
    assert_eq!(
        found(|s| s["properties"]["tags"]["x-kubernetes-list-type"] = json!("atomic")),
        ["list-type-changed"]
    );
    assert_eq!(
        found(|s| s["properties"]["tags"]["x-kubernetes-list-map-keys"] = json!(["key", "value"])),
        ["list-map-keys-changed"]
    );
    assert_eq!(
        found(|s| {
            s["properties"]["selector"]
                .as_object_mut()
                .unwrap()
                .remove("x-kubernetes-map-type");
        }),
        ["map-type-changed"]
    );
    assert_eq!(
        found(|s| {
            s["properties"]["config"]
                .as_object_mut()
                .unwrap()
                .remove("x-kubernetes-preserve-unknown-fields");
        }),
        ["preserve-unknown-fields-removed"]
    );
    // An explicit default value is no change; keeping unknown fields anew loosens.
    let list = |extra: Value| {
        let mut s = spec();
        s["properties"]["hosts"] = json!({"type": "array", "items": {"type": "string"}});
        s["properties"]["hosts"]
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        s
    };
    assert!(
        rules(
            list(json!({})),
            list(json!({"x-kubernetes-list-type": "atomic"}))
        )
        .is_empty()
    );
    assert_eq!(
        rules(
            list(json!({})),
            list(json!({"x-kubernetes-list-type": "set"}))
        )
        .into_iter()
        .map(|(_, r, _)| r)
        .collect::<Vec<_>>(),
        ["list-type-changed"]
    );
    assert!(
        found(|s| s["properties"]["labels"]["x-kubernetes-map-type"] = json!("granular"))
            .is_empty()
    );
    assert!(
        found(|s| s["properties"]["limits"]["x-kubernetes-preserve-unknown-fields"] = json!(true))
            .is_empty()
    );
}

#[test]
fn additional_properties_added_removed_or_tightened() {
    let found = |old: Value, new: Value| -> Vec<String> {
        rules(old, new)
            .into_iter()
            .map(|(p, r, _)| format!("{p} {r}"))
            .collect()
    };
    let with = |labels: Value| {
        let mut s = spec();
        s["properties"]["labels"] = labels;
        s
    };
    let map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    // Removed: map keys are pruned.
    assert_eq!(
        found(spec(), with(json!({"type": "object"}))),
        [".spec.labels additional-properties-removed"]
    );
    // Values tightened, at the values' path.
    assert_eq!(
        found(
            spec(),
            with(
                json!({"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}})
            )
        ),
        [".spec.labels.* bound-tightened"]
    );
    // Added where any field was kept.
    let open = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    assert_eq!(
        found(with(open.clone()), with(map.clone())),
        [
            ".spec.labels preserve-unknown-fields-removed",
            ".spec.labels.* additional-properties-added"
        ]
    );
    // Loosened: values' bound removed; a map that now keeps unknown fields.
    assert!(found(
        with(json!({"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}})),
        spec()
    )
    .is_empty());
    assert!(found(with(map), with(open)).is_empty());
}

#[test]
fn named_properties_replaced_by_a_map_are_not_removed_unless_the_map_rejects_them() {
    let with = |limits: Value| {
        let mut s = spec();
        s["properties"]["limits"] = limits;
        s
    };
    let strings =
        json!({"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}});
    assert!(rules(spec(), with(strings)).is_empty());
    let anything = json!({"type": "object", "minProperties": 1, "additionalProperties": true});
    assert!(rules(spec(), with(anything)).is_empty());
    let integers =
        json!({"type": "object", "minProperties": 1, "additionalProperties": {"type": "integer"}});
    assert_eq!(
        changes(spec(), with(integers)),
        vec![
            (
                ".spec.limits.cpu".to_owned(),
                "type changed from string to integer".to_owned()
            ),
            (
                ".spec.limits.memory".to_owned(),
                "type changed from string to integer".to_owned()
            ),
        ]
    );
    // The other way, a map turned into named properties, prunes every other key.
    assert_eq!(
        rules(with(json!({"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}})), spec())
            .into_iter()
            .map(|(p, r, _)| format!("{p} {r}"))
            .collect::<Vec<_>>(),
        [".spec.limits additional-properties-removed"]
    );
}

#[test]
fn scope_changed_is_breaking() {
    let old = crd(json!([version("v1", spec())]));
    let mut new = old.clone();
    new["spec"]["scope"] = json!("Cluster");
    let found = compare(&old, &new, None);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].path.as_str(), found[0].rule.as_str()),
        ("spec.scope", "scope-changed")
    );
    // Namespaced written out or left to its default is the same scope.
    let mut implicit = old.clone();
    implicit["spec"].as_object_mut().unwrap().remove("scope");
    assert!(compare(&old, &implicit, None).is_empty());
}

#[test]
fn a_served_version_removed_is_breaking_and_a_new_one_is_not() {
    let stored = |name: &str, storage: bool| {
        let mut v = version(name, spec());
        v["storage"] = json!(storage);
        v
    };
    let old = crd(json!([stored("v1", false), stored("v2", true)]));
    let mut unserved = stored("v1", false);
    unserved["served"] = json!(false);
    let new = crd(json!([unserved, stored("v2", true), stored("v3", false)]));
    let found = compare(&old, &new, None);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, "spec.versions[name=v1]");
    assert_eq!(found[0].change, "served version v1 no longer served");
    assert_eq!(
        compare(
            &new,
            &crd(json!([stored("v2", true), stored("v3", false)])),
            None
        ),
        vec![],
        "an unserved version that is not stored can go"
    );
}

#[test]
fn a_stored_version_removed_is_breaking_with_the_live_stored_versions() {
    let v = |name: &str, storage: bool| {
        let mut v = version(name, spec());
        v["storage"] = json!(storage);
        v
    };
    let old = crd(json!([v("v1", false), v("v2", true)]));
    let mut unserved = v("v1", false);
    unserved["served"] = json!(false);
    let old_unserved = crd(json!([unserved, v("v2", true)]));
    let new = crd(json!([v("v2", true)]));
    // Offline, only the old storage version is known to be stored: v1 can go.
    assert!(compare(&old_unserved, &new, None).is_empty());
    // The live CRD says objects are still stored at v1.
    let live = ["v1".to_owned(), "v2".to_owned()];
    let found = compare(&old_unserved, &new, Some(&live));
    assert_eq!(
        found.iter().map(|b| b.rule.as_str()).collect::<Vec<_>>(),
        ["stored-version-removed"]
    );
    assert_eq!(found[0].path, "spec.versions[name=v1]");
    // Served and stored: both rules.
    let both = compare(&old, &new, Some(&live));
    assert_eq!(
        both.iter().map(|b| b.rule.as_str()).collect::<Vec<_>>(),
        ["served-version-removed", "stored-version-removed"]
    );
    let readable = readability(&old, &new, Some(&live), &both);
    assert!(!readable.readable);
    assert_eq!(readable.served_after, ["v2"]);
    // Offline, an old CRD that carries its status says so too.
    let mut exported = old_unserved.clone();
    exported["status"] = json!({"storedVersions": ["v1", "v2"]});
    let found = compare(&exported, &new, None);
    assert_eq!(found.len(), 1);
    assert!(
        found[0]
            .change
            .contains("is in the old CRD's status.storedVersions")
    );
    // Migrated: storedVersions no longer lists v1.
    let migrated = ["v2".to_owned()];
    assert!(compare(&old_unserved, &new, Some(&migrated)).is_empty());
}

#[test]
fn the_storage_version_moved_without_conversion_must_accept_what_is_stored() {
    let v = |name: &str, storage: bool, spec: Value| {
        let mut v = version(name, spec);
        v["storage"] = json!(storage);
        v
    };
    let mut narrower = spec();
    narrower["properties"]["size"]["type"] = json!("string");
    let old = crd(json!([v("v1", true, spec())]));
    let moved = crd(json!([
        v("v1", false, spec()),
        v("v2", true, narrower.clone())
    ]));
    let found = compare(&old, &moved, None);
    let storage: Vec<&Breaking> = found
        .iter()
        .filter(|b| b.rule == "storage-version-moved")
        .collect();
    assert_eq!(storage.len(), 1, "{found:?}");
    assert_eq!(storage[0].path, ".spec.size");
    assert!(
        storage[0]
            .change
            .contains("from v1 to v2 without conversion")
    );
    // With a conversion webhook, the old version is converted: no finding for the move.
    let mut webhook = moved.clone();
    webhook["spec"]["conversion"] = json!({"strategy": "Webhook"});
    assert!(
        compare(&old, &webhook, None)
            .iter()
            .all(|b| b.rule != "storage-version-moved")
    );
    // Moved to a compatible schema: fine.
    let compatible = crd(json!([v("v1", false, spec()), v("v2", true, spec())]));
    assert!(compare(&old, &compatible, None).is_empty());
}

#[test]
fn new_served_versions_incompatible_with_each_other_under_no_conversion() {
    let v = |name: &str, storage: bool, spec: Value| {
        let mut v = version(name, spec);
        v["storage"] = json!(storage);
        v
    };
    let mut fewer = spec();
    fewer["properties"].as_object_mut().unwrap().remove("note");
    let old = crd(json!([v("v1", true, spec())]));
    let new = crd(json!([
        v("v1", true, spec()),
        v("v2", false, fewer.clone())
    ]));
    let found = compare(&old, &new, None);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].rule, "served-versions-incompatible");
    assert_eq!(
        (found[0].version.as_str(), found[0].path.as_str()),
        ("v2", ".spec.note")
    );
    // With a webhook the versions are converted.
    let mut webhook = new.clone();
    webhook["spec"]["conversion"] = json!({"strategy": "Webhook"});
    assert!(compare(&old, &webhook, None).is_empty());
    // A compatible new version.
    let same = crd(json!([v("v1", true, spec()), v("v2", false, spec())]));
    assert!(compare(&old, &same, None).is_empty());
    // What the old CRD already had is not this change's.
    assert!(compare(&new, &new, None).is_empty());
}

/// The API server's CRD validation (`ValidateCustomResourceDefinitionSpec`): `served` and
/// `storage` are required of every version, and exactly one version is the storage version.
#[test]
fn a_version_without_served_or_storage_is_refused_and_its_schema_still_compared() {
    let old = crd(json!([version("v1", spec())]));
    let mut retyped = spec();
    field(&mut retyped, "size")["type"] = json!("string");
    let mut bare = version("v1", retyped);
    let fields = bare.as_object_mut().unwrap();
    fields.remove("served");
    fields.remove("storage");
    let found = compare(&old, &crd(json!([bare])), None);
    let seen: Vec<(&str, &str)> = found
        .iter()
        .map(|b| (b.path.as_str(), b.rule.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("spec.versions[name=v1].served", "crd-invalid"),
            ("spec.versions[name=v1].storage", "crd-invalid"),
            ("spec.versions", "crd-invalid"),
            (".spec.size", "type-changed"),
        ],
        "{found:?}"
    );
    assert!(found.iter().all(Breaking::breaks));
    assert!(
        found[0]
            .change
            .contains("`served` of version v1 is missing"),
        "{}",
        found[0].change
    );
    assert!(
        found[2].change.contains("none is"),
        "not exactly one storage version: {}",
        found[2].change
    );
    let mut two = version("v2", spec());
    two["storage"] = json!(true);
    let both = versions::invalid(&crd(json!([version("v1", spec()), two])));
    assert_eq!(both.len(), 1, "{both:?}");
    assert!(
        both[0].change.contains("v1 and v2 are"),
        "{}",
        both[0].change
    );
    let mut wrong = version("v1", spec());
    wrong["served"] = json!("yes");
    let wrong = versions::invalid(&crd(json!([wrong])));
    assert_eq!(wrong[0].path, "spec.versions[name=v1].served");
    assert!(wrong[0].change.contains("is not true or false"));
    assert!(versions::invalid(&crd(json!([]))).len() == 1);
    assert!(versions::invalid(&old).is_empty(), "a valid CRD is valid");
}

fn kept(properties: Value) -> Value {
    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": properties})
}

/// What existing objects may already hold where unknown fields were kept: a field declared
/// there is weighed against those values, and, per the documentation of validation
/// ratcheting, a transition rule is never ratcheted while a type is.
#[test]
fn a_field_declared_where_unknown_fields_were_kept_is_weighed_against_stored_values() {
    let before = kept(json!({"size": {"type": "integer"}}));
    let after = kept(
        json!({"size": {"type": "integer"}, "replicas": {"type": "integer",
        "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "only grows"}]}}),
    );
    let found = compare(
        &crd(json!([version("v1", before.clone())])),
        &crd(json!([version("v1", after)])),
        None,
    );
    let seen: Vec<(&str, &str, Option<bool>)> = found
        .iter()
        .map(|b| (b.path.as_str(), b.rule.as_str(), b.ratcheted))
        .collect();
    assert_eq!(
        seen,
        [
            (".spec.replicas", "type-added", Some(true)),
            (".spec.replicas", "cel-transition-rule", Some(false)),
        ]
    );
    // Declared as a map's value before, the field is compared with that value schema.
    let map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let mut named = map.clone();
    named["properties"] =
        json!({"tier": {"type": "string", "enum": ["gold"]}, "free": {"type": "string"}});
    assert_eq!(
        rules(map, named),
        [(
            ".spec.tier".to_owned(),
            "enum-added".to_owned(),
            Impact::Breaking
        )]
    );
    // Nested: a list declared where anything was kept has its items weighed too.
    let nested = kept(
        json!({"size": {"type": "integer"}, "ports": {"type": "array",
        "items": {"type": "integer", "maximum": 100}}}),
    );
    let found: Vec<String> = compare(
        &crd(json!([version("v1", before.clone())])),
        &crd(json!([version("v1", nested)])),
        None,
    )
    .into_iter()
    .map(|b| format!("{} {}", b.path, b.rule))
    .collect();
    assert_eq!(
        found,
        [
            ".spec.ports type-added",
            ".spec.ports[*] type-added",
            ".spec.ports[*] bound-tightened"
        ]
    );
    // Where nothing undeclared was kept, a new field holds nothing yet.
    let closed = json!({"type": "object", "properties": {"size": {"type": "integer"}}});
    let mut grown = closed.clone();
    grown["properties"]["replicas"] =
        json!({"type": "integer", "x-kubernetes-validations": [{"rule": "self >= oldSelf"}]});
    assert!(rules(closed, grown).is_empty());
}

/// The documentation of validation ratcheting: types, bounds, enums, required fields and CEL
/// rules without `oldSelf` let an unchanged failing value through on update; transition
/// rules, list types and map keys, compositions and what is under them, and `metadata` do not.
#[test]
fn each_finding_says_whether_the_api_server_ratchets_it() {
    let ratcheted = |edit: fn(&mut Value)| -> Vec<(String, Option<bool>)> {
        let mut new = spec();
        edit(&mut new);
        compare(
            &crd(json!([version("v1", spec())])),
            &crd(json!([version("v1", new)])),
            None,
        )
        .into_iter()
        .map(|b| (b.rule, b.ratcheted))
        .collect()
    };
    let one = |rule: &str, r: Option<bool>| vec![(rule.to_owned(), r)];
    assert_eq!(
        ratcheted(|s| field(s, "size")["maximum"] = json!(5)),
        one("bound-tightened", Some(true))
    );
    assert_eq!(
        ratcheted(|s| field(s, "color")["enum"] = json!(["red"])),
        one("enum-shrunk", Some(true))
    );
    assert_eq!(
        ratcheted(|s| s["required"] = json!(["size", "color"])),
        one("field-required", Some(true))
    );
    assert_eq!(
        ratcheted(|s| field(s, "mode")["x-kubernetes-validations"] =
            json!([{"rule": "self != 'off'"}, {"rule": "self.size() < 5"}])),
        one("cel-rule", Some(true))
    );
    assert_eq!(
        ratcheted(|s| field(s, "mode")["x-kubernetes-validations"] =
            json!([{"rule": "self != 'off'"}, {"rule": "self == oldSelf"}])),
        one("cel-transition-rule", Some(false))
    );
    assert_eq!(
        ratcheted(|s| field(s, "tags")["x-kubernetes-list-type"] = json!("set")),
        one("list-type-changed", Some(false))
    );
    assert_eq!(
        ratcheted(|s| field(s, "tags")["x-kubernetes-list-map-keys"] = json!(["key", "value"])),
        one("list-map-keys-changed", Some(false))
    );
    assert_eq!(
        ratcheted(|s| field(s, "name")["anyOf"] = json!([{"maxLength": 5}])),
        one("composition-tightened", Some(false))
    );
    assert_eq!(
        ratcheted(|s| s["properties"]
            .as_object_mut()
            .unwrap()
            .remove("note")
            .map(drop)
            .unwrap()),
        one("field-removed", None)
    );
    // Under an allOf entry, even a bound is not ratcheted.
    let entry = |max: u64| {
        let mut s = spec();
        field(&mut s, "size")["allOf"] = json!([{"maximum": max}]);
        s
    };
    assert_eq!(
        rules(entry(8), entry(6))
            .into_iter()
            .map(|r| r.1)
            .collect::<Vec<_>>(),
        ["bound-tightened"]
    );
    let under = compare(
        &crd(json!([version("v1", entry(8))])),
        &crd(json!([version("v1", entry(6))])),
        None,
    );
    assert_eq!(under[0].ratcheted, Some(false));
    assert_eq!(ratchets("bound-tightened", ".metadata.labels"), Some(false));
    assert_eq!(ratchets("bound-tightened", ".metadatas"), Some(true));
}
