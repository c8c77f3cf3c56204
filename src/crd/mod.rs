//! CustomResourceDefinition compatibility: what a new version of a CRD breaks for the custom
//! resources and clients written against the old one, each with its exact path and a stable
//! rule code. [`versions`] judges the CRD as a whole (scope, served, stored and storage
//! versions, conversion), [`schema`] each served version's schema (fields, types, bounds, value
//! constraints, composition, CEL rules, list and map structure, defaults), and [`validate`]
//! checks existing custom resources against the new schema. Loosening is never breaking;
//! defaults are behavioural and come as warnings. The choices where the upstream checkers
//! disagree are in `docs/crd-compatibility.md`. Pure.

pub mod lines;
pub mod schema;
pub mod validate;
pub mod versions;

#[cfg(test)]
mod tests;

use serde::Serialize;
use serde_json::Value;

/// How much a change matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Impact {
    /// Behavioural: the same objects mean something else (a default changed).
    Warning,
    /// Existing objects or clients stop working.
    Breaking,
}

/// One incompatible change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Breaking {
    /// The CRD version (`v1`); empty for the CRD as a whole (its scope).
    pub version: String,
    /// Where, in the custom resource (`.spec.tags[*].key`), or in the CRD
    /// (`spec.versions[name=v1]`).
    pub path: String,
    /// What changed.
    pub change: String,
    /// The rule's stable code (`field-removed`, `enum-shrunk`, `default-changed`).
    pub rule: String,
    /// Breaking, or a warning.
    pub severity: Impact,
    /// The 1-based line in the CRD's file, when the file was read ([`lines`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// For a rule existing objects may fail: whether the API server's validation ratcheting
    /// lets such an object be updated while it leaves the failing value unchanged ([`ratchets`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratcheted: Option<bool>,
}

impl Breaking {
    /// Whether existing objects or clients break (not only a warning).
    pub fn breaks(&self) -> bool {
        self.severity == Impact::Breaking
    }
}

/// One finding of a schema comparison, before it is tied to a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The path in the custom resource.
    pub path: String,
    /// The rule's code.
    pub rule: &'static str,
    /// What changed.
    pub change: String,
    /// Breaking or a warning.
    pub severity: Impact,
    /// Whether validation ratcheting applies ([`ratchets`]).
    pub ratcheted: Option<bool>,
}

impl Found {
    fn breaking(path: &str, rule: &'static str, change: String) -> Found {
        Found {
            path: path_or_root(path),
            rule,
            change,
            severity: Impact::Breaking,
            ratcheted: ratchets(rule, path),
        }
    }

    fn warning(path: &str, rule: &'static str, change: String) -> Found {
        Found {
            path: path_or_root(path),
            rule,
            change,
            severity: Impact::Warning,
            ratcheted: None,
        }
    }

    fn at(self, version: &str) -> Breaking {
        Breaking {
            version: version.to_owned(),
            path: self.path,
            change: self.change,
            rule: self.rule.to_owned(),
            severity: self.severity,
            line: None,
            ratcheted: self.ratcheted,
        }
    }
}

/// Whether the API server's validation ratcheting (`CRDValidationRatcheting`, on by default
/// since Kubernetes 1.30) lets an existing object that fails `rule` at `path` be updated while
/// the failing value stays as it is; `None` for rules that are not a validation of values
/// (a field removed, pruning, versions, defaults). Never ratcheted: transition rules (they
/// compare with the old object on every update), list types and list-map keys, `allOf`,
/// `anyOf`, `oneOf` and `not` and everything under them (set by the comparison), and anything
/// under `metadata`. The rest (types, bounds, enums, patterns, formats, required fields,
/// `additionalProperties` value schemas and CEL rules without `oldSelf`) is ratcheted.
pub fn ratchets(rule: &str, path: &str) -> Option<bool> {
    let validation = match rule {
        "type-changed"
        | "type-added"
        | "nullable-removed"
        | "bound-tightened"
        | "enum-shrunk"
        | "enum-added"
        | "pattern-changed"
        | "format-changed"
        | "field-required"
        | "cel-rule"
        | "additional-properties-tightened"
        | "additional-properties-added" => true,
        "cel-transition-rule"
        | "composition-tightened"
        | "list-type-changed"
        | "list-map-keys-changed"
        | "additional-properties-removed" => false,
        _ => return None,
    };
    let metadata = path == ".metadata" || path.starts_with(".metadata.");
    Some(validation && !metadata)
}

fn path_or_root(path: &str) -> String {
    if path.is_empty() {
        ".".to_owned()
    } else {
        path.to_owned()
    }
}

/// What `new` breaks of `old`; both are CustomResourceDefinitions. `stored` is the live CRD's
/// `status.storedVersions` when a cluster was read; without it, the old storage version is
/// taken as stored.
pub fn compare(old: &Value, new: &Value, stored: Option<&[String]>) -> Vec<Breaking> {
    let mut out = versions::compare(old, new, stored);
    for (name, before, after) in versions::served_pairs(old, new) {
        let mut found = Vec::new();
        schema::compare(before, after, "", &mut found);
        out.extend(found.into_iter().map(|f| f.at(name)));
    }
    out
}

/// Whether the objects a CRD serves stay readable after the change: every served version
/// still served, every stored version still declared, and the storage version moved only
/// where the objects stored at the old one can be served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readability {
    /// The versions served before.
    pub served_before: Vec<String>,
    /// The versions served after.
    pub served_after: Vec<String>,
    /// The storage version before.
    pub storage_before: Option<String>,
    /// The storage version after.
    pub storage_after: Option<String>,
    /// The versions objects are stored at (the live CRD's `status.storedVersions`), when a
    /// cluster was read.
    pub stored: Option<Vec<String>>,
    /// Whether all of them stay readable.
    pub readable: bool,
}

/// The versions of a CRD before and after, and whether they stay readable given `found`.
pub fn readability(
    old: &Value,
    new: &Value,
    stored: Option<&[String]>,
    found: &[Breaking],
) -> Readability {
    let served = |crd: &Value| -> Vec<String> {
        versions::served(crd)
            .into_iter()
            .map(|(n, _)| n.to_owned())
            .collect()
    };
    Readability {
        served_before: served(old),
        served_after: served(new),
        storage_before: versions::storage(old).map(str::to_owned),
        storage_after: versions::storage(new).map(str::to_owned),
        stored: stored.map(<[String]>::to_vec),
        readable: !found
            .iter()
            .any(|b| versions::UNREADABLE.contains(&b.rule.as_str())),
    }
}

/// How a value is shown in a change's words.
pub(crate) fn shown(value: &Value) -> String {
    match value {
        Value::String(s) if s.is_empty() => "\"\"".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
