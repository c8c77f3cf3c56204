//! List filtering and paging: `labelSelector` and `fieldSelector` syntax, continue tokens, and a
//! label selector written as the string the `scale` subresource reports. Pure data.

use base64::Engine;
use serde_json::{Value, json};

/// One requirement of a label or field selector.
#[derive(Clone, Debug, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    Missing(String),
}

/// A parsed selector; empty selects everything.
#[derive(Clone, Debug, Default)]
pub struct Selector(Vec<Requirement>);

fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (index, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

impl Selector {
    /// Parses `a=b,c!=d,e in (f,g),h,!i`.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(text)
            .into_iter()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            requirements.push(requirement(part)?);
        }
        Ok(Selector(requirements))
    }

    /// The keys the requirements name.
    pub fn keys(&self) -> Vec<&str> {
        self.0
            .iter()
            .map(|requirement| match requirement {
                Requirement::Equals(k, _)
                | Requirement::NotEquals(k, _)
                | Requirement::In(k, _)
                | Requirement::NotIn(k, _)
                | Requirement::Exists(k)
                | Requirement::Missing(k) => k.as_str(),
            })
            .collect()
    }

    /// Whether a lookup of keys satisfies every requirement.
    pub fn matches(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|requirement| match requirement {
            Requirement::Equals(k, v) => lookup(k).as_deref() == Some(v.as_str()),
            Requirement::NotEquals(k, v) => lookup(k).as_deref() != Some(v.as_str()),
            Requirement::In(k, values) => lookup(k).is_some_and(|v| values.contains(&v)),
            Requirement::NotIn(k, values) => lookup(k).is_none_or(|v| !values.contains(&v)),
            Requirement::Exists(k) => lookup(k).is_some(),
            Requirement::Missing(k) => lookup(k).is_none(),
        })
    }
}

fn requirement(part: &str) -> Result<Requirement, String> {
    let set = |rest: &str| -> Result<Vec<String>, String> {
        let rest = rest.trim();
        let inner = rest
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .ok_or(format!("invalid selector requirement {part:?}"))?;
        Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
    };
    if let Some((key, rest)) = part.split_once(" notin ") {
        return Ok(Requirement::NotIn(key.trim().into(), set(rest)?));
    }
    if let Some((key, rest)) = part.split_once(" in ") {
        return Ok(Requirement::In(key.trim().into(), set(rest)?));
    }
    if let Some((key, value)) = part.split_once("!=") {
        return Ok(Requirement::NotEquals(
            key.trim().into(),
            value.trim().into(),
        ));
    }
    if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement::Equals(key.trim().into(), value.trim().into()));
    }
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::Missing(key.trim().into()));
    }
    if part
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        return Ok(Requirement::Exists(part.into()));
    }
    Err(format!("unable to parse requirement: {part:?}"))
}

/// The label of an object.
pub fn label(object: &Value, key: &str) -> Option<String> {
    object
        .pointer("/metadata/labels")
        .and_then(|labels| labels.get(key))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// A field selector key (`metadata.name`, `status.phase`) looked up in an object; a missing
/// field reads as the empty string, as the API server's field labels do.
pub fn field(object: &Value, key: &str) -> Option<String> {
    let mut node = object;
    for part in key.split('.') {
        match node.get(part) {
            Some(child) => node = child,
            None => return Some(String::new()),
        }
    }
    Some(match node {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// Whether the real server lets a list of `kind` select by the field `key`: `metadata.name` and
/// `metadata.namespace` for every kind, and the fields each built-in kind registers.
pub fn field_supported(kind: &str, key: &str) -> bool {
    let own: &[&str] = match kind {
        "Pod" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        "Event" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "Secret" => &["type"],
        "Node" => &["spec.unschedulable"],
        "Namespace" => &["status.phase"],
        "ReplicaSet" | "ReplicationController" => &["status.replicas"],
        "Job" => &["status.successful"],
        _ => &[],
    };
    matches!(key, "metadata.name" | "metadata.namespace") || own.contains(&key)
}

/// A label selector as `scale` reports it: `app=web,tier in (a,b)`.
pub fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        let mut pairs: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        pairs.sort();
        parts.extend(pairs);
    }
    for expression in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expression["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = expression["values"]
            .as_array()
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        parts.push(match expression["operator"].as_str() {
            Some("In") => format!("{key} in ({})", values.join(",")),
            Some("NotIn") => format!("{key} notin ({})", values.join(",")),
            Some("DoesNotExist") => format!("!{key}"),
            _ => key.to_string(),
        });
    }
    parts.join(",")
}

/// A continue token: the revision of the first page and the key after which to go on.
pub fn continue_token(revision: u64, after: &str) -> String {
    let body = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": format!("{after}\u{0}")});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string())
}

/// Reads a continue token back into the key to start after.
pub fn read_continue(token: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .ok()?;
    let body: Value = serde_json::from_slice(&bytes).ok()?;
    let start = body["start"].as_str()?;
    Some(start.trim_end_matches('\u{0}').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_cover_equality_sets_and_existence() {
        let object = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        let check = |text: &str| {
            Selector::parse(text)
                .unwrap()
                .matches(|k| label(&object, k))
        };
        assert!(check("app=web"));
        assert!(check("app==web,tier in (front, back)"));
        assert!(!check("app!=web"));
        assert!(check("tier notin (back),app"));
        assert!(check("!missing"));
        assert!(!check("missing"));
        assert!(Selector::parse("a in b").is_err());
    }

    #[test]
    fn continue_tokens_round_trip() {
        let token = continue_token(42, "/dry");
        assert_eq!(read_continue(&token).as_deref(), Some("/dry"));
    }
}
