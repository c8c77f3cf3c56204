//! Flux's post-build variable substitution: a Flux `Kustomization` with `spec.postBuild`
//! replaces `${var}` and `${var:=default}` (also `${var:-default}`) in every object it applies,
//! from `substituteFrom` ConfigMaps and Secrets (later ones win) and then `substitute` (which
//! wins over both), as kustomize-controller does after the build. `$${var}` is left as `${var}`;
//! an object labelled or annotated `kustomize.toolkit.fluxcd.io/substitute: disabled` is left
//! alone. The ConfigMaps and Secrets are read from the repository. A variable without a value
//! is an error naming it. Pure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::manifests::{RepoIndex, emit_block, parse_text};

/// The key that turns substitution off for one object.
const DISABLED: &str = "kustomize.toolkit.fluxcd.io/substitute";

/// The substitution one Flux Kustomization asks for.
#[derive(Debug, Clone)]
pub struct Substitution {
    /// `Flux Kustomization namespace/name`.
    pub applier: String,
    /// The path it applies, relative to the root.
    pub path: PathBuf,
    /// Every variable with its value, or why the values could not all be read.
    pub vars: Result<BTreeMap<String, String>, String>,
    /// The files it reads: the Flux Kustomization's, and its ConfigMaps' and Secrets'.
    pub files: Vec<PathBuf>,
}

/// The substitutions of every Flux Kustomization of the repository with a `postBuild`.
pub fn substitutions(index: &RepoIndex) -> Vec<Substitution> {
    let mut out = Vec::new();
    for declaration in &index.declarations {
        let id = &declaration.id;
        if id.group != "kustomize.toolkit.fluxcd.io" || id.kind != "Kustomization" {
            continue;
        }
        let Some(post_build) = declaration.value.pointer("/spec/postBuild") else {
            continue;
        };
        let namespace = id.namespace.as_deref().unwrap_or("flux-system");
        let path = declaration
            .value
            .pointer("/spec/path")
            .and_then(Value::as_str);
        let mut files = vec![declaration.location.file.clone()];
        let vars = variables(index, namespace, post_build, &mut files);
        out.push(Substitution {
            applier: format!("Flux Kustomization {namespace}/{}", id.name),
            path: path
                .unwrap_or("")
                .split('/')
                .filter(|p| !p.is_empty() && *p != ".")
                .collect(),
            vars,
            files,
        });
    }
    out
}

/// The variables of one `postBuild`.
fn variables(
    index: &RepoIndex,
    namespace: &str,
    post_build: &Value,
    files: &mut Vec<PathBuf>,
) -> Result<BTreeMap<String, String>, String> {
    let mut vars = BTreeMap::new();
    let sources = post_build["substituteFrom"]
        .as_array()
        .into_iter()
        .flatten();
    for source in sources {
        let kind = source["kind"].as_str().unwrap_or("ConfigMap");
        let Some(name) = source["name"].as_str() else {
            return Err(format!("a substituteFrom {kind} has no name"));
        };
        let optional = source["optional"].as_bool().unwrap_or(false);
        let found = index.declarations.iter().find(|d| {
            d.id.kind == kind
                && d.id.group.is_empty()
                && d.id.name == name
                && d.id.namespace.as_deref().unwrap_or(namespace) == namespace
        });
        let Some(found) = found else {
            if optional {
                continue;
            }
            return Err(format!(
                "substituteFrom {kind} {namespace}/{name} is not declared in the repository"
            ));
        };
        files.push(found.location.file.clone());
        if let Some(data) = found.value["data"].as_object() {
            for (key, value) in data {
                let text = scalar(value);
                let text = text.as_str();
                let text = if kind == "Secret" {
                    decode_base64(text).ok_or_else(|| {
                        format!("Secret {namespace}/{name}: `{key}` is not base64")
                    })?
                } else {
                    text.to_owned()
                };
                vars.insert(key.clone(), text);
            }
        }
        if let Some(data) = found.value["stringData"].as_object() {
            for (key, value) in data {
                vars.insert(key.clone(), scalar(value));
            }
        }
    }
    if let Some(inline) = post_build["substitute"].as_object() {
        for (key, value) in inline {
            vars.insert(key.clone(), scalar(value));
        }
    }
    Ok(vars)
}

/// The substitution that applies to a build at `dir` (or a plain file): the Flux Kustomization
/// whose path is the build's directory, or contains the file.
pub fn for_unit<'s>(all: &'s [Substitution], dir: &Path, built: bool) -> Option<&'s Substitution> {
    all.iter()
        .filter(|s| {
            if built {
                dir == s.path
            } else {
                dir.starts_with(&s.path)
            }
        })
        .max_by_key(|s| s.path.components().count())
}

/// `value` with its variables substituted, as Flux substitutes the object's YAML; an object
/// with substitution disabled is returned as it is.
pub fn substitute(value: Value, vars: &BTreeMap<String, String>) -> Result<Value, String> {
    let disabled = |map: &str| {
        value
            .pointer(&format!("/metadata/{map}"))
            .and_then(|m| m.get(DISABLED))
            == Some(&Value::from("disabled"))
    };
    if disabled("labels") || disabled("annotations") {
        return Ok(value);
    }
    let text = emit_block(&value);
    if !text.contains("${") {
        return Ok(value);
    }
    let replaced = replace(&text, vars)?;
    let parsed = parse_text(Path::new("substituted.yaml"), &replaced);
    match (parsed.errors.first(), parsed.documents.into_iter().next()) {
        (None, Some(document)) => Ok(document.value),
        (Some(error), _) => Err(format!("the substituted object does not parse: {error}")),
        (None, None) => Err("the substituted object is empty".to_owned()),
    }
}

/// `${var}`, `${var:=default}` and `${var:-default}` replaced in `text`; `$${` kept as `${`.
fn replace(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if rest[..at].ends_with('$') {
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find('}') else {
            out.push_str(&rest[at..]);
            rest = "";
            break;
        };
        let inner = &rest[at + 2..at + end];
        let (name, default) = match inner.find(":=").or_else(|| inner.find(":-")) {
            Some(split) => (&inner[..split], Some(&inner[split + 2..])),
            None => (inner, None),
        };
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
            && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
        if !valid {
            return Err(format!("`${{{inner}}}` is not a valid variable name"));
        }
        match vars.get(name).map(String::as_str).or(default) {
            Some(value) => out.push_str(value),
            None => missing.push(name.to_owned()),
        }
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        missing.sort();
        missing.dedup();
        Err(format!(
            "no value for {}",
            missing
                .iter()
                .map(|m| format!("${{{m}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// A value as the text a variable takes: a string as it is, anything else as written.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Standard base64, as a Secret's `data` holds it, when it is UTF-8 text.
pub fn decode_base64(text: &str) -> Option<String> {
    String::from_utf8(decode_base64_bytes(text)?).ok()
}

/// Standard base64 (white space ignored) as bytes.
pub fn decode_base64_bytes(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in text.bytes().filter(|b| !b.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn variables_defaults_and_escapes_are_replaced_as_flux_does() {
        let v = vars(&[("cluster", "prod-eu"), ("replicas", "3")]);
        assert_eq!(replace("a-${cluster}", &v).unwrap(), "a-prod-eu");
        assert_eq!(replace("${region:=eu-west-1}", &v).unwrap(), "eu-west-1");
        assert_eq!(replace("${region:-eu}", &v).unwrap(), "eu");
        assert_eq!(
            replace("$${cluster} $cluster", &v).unwrap(),
            "${cluster} $cluster"
        );
        let error = replace("${a} ${cluster} ${b} ${a}", &v).unwrap_err();
        assert_eq!(error, "no value for ${a}, ${b}");
    }

    #[test]
    fn a_substituted_number_becomes_a_number() {
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api-${cluster}"}, "spec": {"replicas": "${replicas}"}});
        let out = substitute(object, &vars(&[("cluster", "eu"), ("replicas", "3")])).unwrap();
        assert_eq!(out["metadata"]["name"], "api-eu");
        assert_eq!(out["spec"]["replicas"], 3);
        let disabled = json!({"kind": "ConfigMap", "metadata": {"name": "s",
            "annotations": {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}},
            "data": {"script": "echo ${HOME}"}});
        assert_eq!(
            substitute(disabled.clone(), &BTreeMap::new()).unwrap(),
            disabled
        );
    }

    #[test]
    fn secrets_are_decoded() {
        assert_eq!(decode_base64("cHJvZC1ldQ==").as_deref(), Some("prod-eu"));
        assert_eq!(decode_base64("not base64!"), None);
    }
}
