//! The CRD as a whole: its scope, which versions it serves, which it stores objects at, where
//! the storage version moves, and whether versions served side by side without conversion are
//! compatible with each other. Pure.

use serde_json::Value;

use super::{Breaking, Found, Impact, schema};

/// The rules after which some stored objects can no longer be read as before.
pub const UNREADABLE: &[&str] = &[
    "served-version-removed",
    "stored-version-removed",
    "storage-version-moved",
];

fn versions(crd: &Value) -> &[Value] {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn declared<'a>(crd: &'a Value, name: &str) -> Option<&'a Value> {
    versions(crd).iter().find(|v| v["name"] == name)
}

/// The versions served, in the CRD's order. `served` is required; a version that leaves it out
/// is an error of its own ([`invalid`]), and is compared as written, as served, so that what
/// its schema breaks is reported too.
pub fn served(crd: &Value) -> Vec<(&str, &Value)> {
    versions(crd)
        .iter()
        .filter(|v| v["served"].as_bool() != Some(false))
        .filter_map(|v| Some((v["name"].as_str()?, v)))
        .collect()
}

/// What the API server refuses in the CRD's versions: none declared, a version without its
/// name, `served` or `storage` (each required), a name declared twice, or not exactly one
/// storage version. Each is breaking: the change cannot be applied.
pub fn invalid(crd: &Value) -> Vec<Breaking> {
    let all = versions(crd);
    if all.is_empty() {
        return vec![
            Found::breaking(
                "spec.versions",
                "crd-invalid",
                "no version declared: the API server refuses a CRD without one".to_owned(),
            )
            .at(""),
        ];
    }
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, version) in all.iter().enumerate() {
        let Some(name) = version["name"].as_str() else {
            out.push(
                Found::breaking(
                    &format!("spec.versions[{i}].name"),
                    "crd-invalid",
                    format!(
                        "version {} has no name: the API server refuses the CRD",
                        i + 1
                    ),
                )
                .at(""),
            );
            continue;
        };
        if seen.contains(&name) {
            out.push(
                Found::breaking(
                    &format!("spec.versions[name={name}]"),
                    "crd-invalid",
                    format!("version {name} is declared twice: the API server refuses the CRD"),
                )
                .at(name),
            );
        }
        seen.push(name);
        for field in ["served", "storage"] {
            let problem = match &version[field] {
                Value::Bool(_) => continue,
                Value::Null => "is missing",
                _ => "is not true or false",
            };
            out.push(
                Found::breaking(
                    &format!("spec.versions[name={name}].{field}"),
                    "crd-invalid",
                    format!("`{field}` of version {name} {problem}: the field is required, and the API server refuses the CRD"),
                )
                .at(name),
            );
        }
    }
    let stored: Vec<&str> = all
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .filter_map(|v| v["name"].as_str())
        .collect();
    if stored.len() != 1 {
        let which = if stored.is_empty() {
            "none is".to_owned()
        } else {
            format!("{} are", stored.join(" and "))
        };
        out.push(
            Found::breaking(
                "spec.versions",
                "crd-invalid",
                format!("exactly one version must be the storage version, and {which}: the API server refuses the CRD"),
            )
            .at(""),
        );
    }
    out
}

/// The storage version.
pub fn storage(crd: &Value) -> Option<&str> {
    versions(crd)
        .iter()
        .find(|v| v["storage"].as_bool() == Some(true))
        .and_then(|v| v["name"].as_str())
}

fn schema_of(version: &Value) -> Option<&Value> {
    version.pointer("/schema/openAPIV3Schema")
}

fn scope(crd: &Value) -> &str {
    crd.pointer("/spec/scope")
        .and_then(Value::as_str)
        .unwrap_or("Namespaced")
}

fn strategy(crd: &Value) -> &str {
    crd.pointer("/spec/conversion/strategy")
        .and_then(Value::as_str)
        .unwrap_or("None")
}

/// Kubernetes' version priority: GA before beta before alpha, higher numbers first, then
/// other names alphabetically. Sorting by this key lists versions from the oldest to the newest.
fn age(name: &str) -> (u8, u64, u64, String) {
    let parsed = name.strip_prefix('v').and_then(|rest| {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u64 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((3, major, 0));
        }
        let (class, number) = if let Some(n) = tail.strip_prefix("beta") {
            (2, n)
        } else {
            (1, tail.strip_prefix("alpha")?)
        };
        Some((class, major, number.parse().ok()?))
    });
    match parsed {
        Some((class, major, minor)) => (class, major, minor, String::new()),
        // Non-conforming names sort below every conforming one.
        None => (0, 0, 0, name.to_owned()),
    }
}

/// The versions served before and after whose schemas are compared: each served before and
/// still served after, with both schemas.
pub fn served_pairs<'a>(old: &'a Value, new: &'a Value) -> Vec<(&'a str, &'a Value, &'a Value)> {
    let now = served(new);
    served(old)
        .into_iter()
        .filter_map(|(name, before)| {
            let (_, after) = now.iter().find(|(n, _)| *n == name)?;
            Some((name, schema_of(before)?, schema_of(after)?))
        })
        .collect()
}

/// What the change breaks of the CRD as a whole.
pub fn compare(old: &Value, new: &Value, stored: Option<&[String]>) -> Vec<Breaking> {
    let mut out = invalid(new);
    let (before, after) = (scope(old), scope(new));
    if before != after {
        out.push(
            Found::breaking(
                "spec.scope",
                "scope-changed",
                format!("scope changed from {before} to {after}: existing objects are not moved, and the API server refuses the change"),
            )
            .at(""),
        );
    }
    let now = served(new);
    for (name, _) in served(old) {
        if !now.iter().any(|(n, _)| *n == name) {
            let change = match declared(new, name) {
                Some(_) => format!("served version {name} no longer served"),
                None => format!("served version {name} removed"),
            };
            out.push(
                Found::breaking(
                    &format!("spec.versions[name={name}]"),
                    "served-version-removed",
                    change,
                )
                .at(name),
            );
        }
    }
    out.extend(stored_removed(old, new, stored));
    out.extend(storage_moved(old, new));
    out.extend(side_by_side(old, new));
    out
}

/// Versions objects are stored at that the new CRD no longer declares.
fn stored_removed(old: &Value, new: &Value, stored: Option<&[String]>) -> Vec<Breaking> {
    // The live CRD's word, else the old file's status (an exported CRD keeps it), else the
    // storage version before the change, which certainly holds objects.
    let written: Option<Vec<String>> = old
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        });
    let (stored, whence) = match (stored, written) {
        (Some(live), _) => (live.to_vec(), "is in the live CRD's status.storedVersions"),
        (None, Some(written)) => (written, "is in the old CRD's status.storedVersions"),
        (None, None) => (
            storage(old).map(str::to_owned).into_iter().collect(),
            "is the storage version before the change",
        ),
    };
    stored
        .iter()
        .filter(|name| declared(new, name).is_none())
        .map(|name| {
            Found::breaking(
                &format!("spec.versions[name={name}]"),
                "stored-version-removed",
                format!("version {name} {whence} and is removed: objects stored at it cannot be read, and the API server refuses the change until they are migrated and storedVersions no longer lists it"),
            )
            .at(name)
        })
        .collect()
}

/// The storage version moved under conversion `None`: the objects stored at the old one are
/// served as the new one unchanged, so the new schema must accept them.
fn storage_moved(old: &Value, new: &Value) -> Vec<Breaking> {
    let (Some(from), Some(to)) = (storage(old), storage(new)) else {
        return vec![];
    };
    if from == to || strategy(new) != "None" {
        return vec![];
    }
    let before = declared(old, from).and_then(schema_of);
    let after = declared(new, to).and_then(schema_of);
    let (Some(before), Some(after)) = (before, after) else {
        return vec![];
    };
    let why = format!(
        "storage version moved from {from} to {to} without conversion (strategy None), so objects stored as {from} are served as {to} unchanged"
    );
    breaking_between(before, after, "storage-version-moved", &why, to)
}

/// What `after` breaks of `before`, each reported under `rule` at `version`, its words after
/// `why`. Warnings are left out: they concern one version's own objects.
fn breaking_between(
    before: &Value,
    after: &Value,
    rule: &'static str,
    why: &str,
    version: &str,
) -> Vec<Breaking> {
    let mut found = Vec::new();
    schema::compare(before, after, "", &mut found);
    found
        .into_iter()
        .filter(|f| f.severity == Impact::Breaking)
        .map(|f| {
            Found {
                rule,
                change: format!("{why}: {}", f.change),
                ..f
            }
            .at(version)
        })
        .collect()
}

/// Under conversion `None`, every served version serves the same stored objects unchanged:
/// each pair of served versions, oldest to newest, must be compatible. Only what the change
/// introduces is reported, not what the old CRD already had.
fn side_by_side(old: &Value, new: &Value) -> Vec<Breaking> {
    let had = pair_findings(old);
    pair_findings(new)
        .into_iter()
        .filter(|f| !had.contains(f))
        .collect()
}

fn pair_findings(crd: &Value) -> Vec<Breaking> {
    if strategy(crd) != "None" {
        return vec![];
    }
    let mut served: Vec<(&str, &Value)> = served(crd)
        .into_iter()
        .filter_map(|(n, v)| Some((n, schema_of(v)?)))
        .collect();
    served.sort_by_key(|(n, _)| age(n));
    let mut out = Vec::new();
    for (i, (older, before)) in served.iter().enumerate() {
        for (newer, after) in &served[i + 1..] {
            let why = format!(
                "{older} and {newer} are served side by side without conversion (strategy None), so {older} objects are served as {newer} unchanged"
            );
            out.extend(breaking_between(
                before,
                after,
                "served-versions-incompatible",
                &why,
                newer,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::age;

    #[test]
    fn versions_sort_from_oldest_to_newest_as_kubernetes_orders_them() {
        let mut names = vec!["v2", "foo", "v1", "v1beta2", "v1alpha1", "v1beta1", "v10"];
        names.sort_by_key(|n| age(n));
        assert_eq!(
            names,
            ["foo", "v1alpha1", "v1beta1", "v1beta2", "v1", "v2", "v10"]
        );
    }
}
