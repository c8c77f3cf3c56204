//! Validation as the API server's strategies and CRD schemas do it: required fields, selectors
//! that must match their template, immutable fields, and a custom resource's openAPIV3Schema
//! (`type`, `required`, `minimum`/`maximum`, `enum`, `pattern`, lengths), with unknown fields
//! pruned. Pure data.

use serde_json::Value;

use crate::schema::Schema;
use crate::status::Cause;

const WORKLOADS: [&str; 4] = ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"];

/// Problems of `object` (of `kind`), given the stored `old` version when it is an update.
pub fn object(kind: &str, schema: &Schema, object: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    if WORKLOADS.contains(&kind) {
        workload(object, &mut causes);
        let pod_spec = object.pointer("/spec/template/spec");
        containers(pod_spec, "spec.template.spec", &mut causes);
    }
    match kind {
        "Pod" => containers(object.get("spec"), "spec", &mut causes),
        "Job" => containers(
            object.pointer("/spec/template/spec"),
            "spec.template.spec",
            &mut causes,
        ),
        "Service" => {
            for (index, port) in array(object.pointer("/spec/ports")).iter().enumerate() {
                if port.get("port").is_none() {
                    causes.push(Cause::required(&format!("spec.ports[{index}].port")));
                }
            }
        }
        _ => {}
    }
    if let Some(old) = old {
        immutable(kind, object, old, &mut causes);
    }
    if let Schema::Custom(root) = schema {
        for part in ["spec", "status"] {
            if let (Some(node), Some(value)) = (
                root.pointer(&format!("/properties/{part}")),
                object.get(part),
            ) {
                custom(node, value, part, &mut causes);
            }
        }
        if let Some(required) = root.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if object.get(name).is_none() {
                    causes.push(Cause::required(name));
                }
            }
        }
    }
    causes
}

fn array(value: Option<&Value>) -> Vec<Value> {
    value.and_then(Value::as_array).cloned().unwrap_or_default()
}

fn workload(object: &Value, causes: &mut Vec<Cause>) {
    let labels = object
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .unwrap_or(Value::Null);
    let selector = object.pointer("/spec/selector");
    match selector {
        None | Some(Value::Null) => causes.push(Cause::required("spec.selector")),
        Some(selector) if selector_is_empty(selector) => causes.push(Cause::invalid(
            "spec.selector",
            selector,
            "empty selector is invalid for deployment",
        )),
        _ => {}
    }
    if !selector.is_some_and(|s| selects(s, &labels)) {
        causes.push(Cause::invalid(
            "spec.template.metadata.labels",
            &labels,
            "`selector` does not match template `labels`",
        ));
    }
}

fn selector_is_empty(selector: &Value) -> bool {
    let empty = |key: &str| {
        selector.get(key).is_none_or(|v| match v {
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => true,
        })
    };
    empty("matchLabels") && empty("matchExpressions")
}

/// Whether a label selector selects these labels.
pub fn selects(selector: &Value, labels: &Value) -> bool {
    let label = |key: &str| labels.get(key).and_then(Value::as_str);
    if let Some(required) = selector.get("matchLabels").and_then(Value::as_object)
        && required.iter().any(|(k, v)| label(k) != v.as_str())
    {
        return false;
    }
    array(selector.get("matchExpressions"))
        .iter()
        .all(|expression| {
            let key = expression["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = expression["values"]
                .as_array()
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match expression["operator"].as_str() {
                Some("In") => label(key).is_some_and(|v| values.contains(&v)),
                Some("NotIn") => label(key).is_none_or(|v| !values.contains(&v)),
                Some("Exists") => label(key).is_some(),
                Some("DoesNotExist") => label(key).is_none(),
                _ => false,
            }
        })
}

fn containers(spec: Option<&Value>, at: &str, causes: &mut Vec<Cause>) {
    let Some(spec) = spec else {
        return;
    };
    let list = array(spec.get("containers"));
    if list.is_empty() {
        causes.push(Cause::required(&format!("{at}.containers")));
    }
    for (index, container) in list.iter().enumerate() {
        for field in ["name", "image"] {
            if container
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                causes.push(Cause::required(&format!(
                    "{at}.containers[{index}].{field}"
                )));
            }
        }
    }
}

fn immutable(kind: &str, object: &Value, old: &Value, causes: &mut Vec<Cause>) {
    let mut fixed: Vec<&str> = Vec::new();
    if WORKLOADS.contains(&kind) || kind == "Job" {
        fixed.push("/spec/selector");
    }
    match kind {
        "Service" => fixed.push("/spec/clusterIP"),
        "StatefulSet" => fixed.extend(["/spec/serviceName", "/spec/volumeClaimTemplates"]),
        "Job" => fixed.push("/spec/completionMode"),
        "CustomResourceDefinition" => fixed.extend(["/spec/group", "/spec/scope"]),
        _ => {}
    }
    for pointer in fixed {
        let (new_value, old_value) = (object.pointer(pointer), old.pointer(pointer));
        if old_value.is_some() && new_value != old_value {
            let field = pointer.trim_start_matches('/').replace('/', ".");
            let shown = new_value.cloned().unwrap_or(Value::Null);
            causes.push(Cause::invalid(&field, &shown, "field is immutable"));
        }
    }
    let immutable_data = old.get("immutable").and_then(Value::as_bool) == Some(true);
    if immutable_data && matches!(kind, "ConfigMap" | "Secret") {
        for field in ["data", "binaryData"] {
            if object.get(field) != old.get(field) {
                causes.push(Cause::forbidden(
                    field,
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Validates one value against a structural schema node.
fn custom(node: &Value, value: &Value, at: &str, causes: &mut Vec<Cause>) {
    if let Some(expected) = node.get("type").and_then(Value::as_str) {
        let actual = type_name(value);
        let fits = actual == expected || (expected == "number" && actual == "integer");
        let int_or_string = node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
        let nullable = value.is_null() && node.get("nullable") == Some(&Value::Bool(true));
        if !(fits || int_or_string || nullable) {
            let detail = format!("{at} in body must be of type {expected}: \"{actual}\"");
            causes.push(Cause::invalid(at, &Value::String(actual.into()), &detail));
            return;
        }
    }
    if let Some(allowed) = node.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        causes.push(Cause::not_supported(at, value, allowed));
    }
    if let Some(number) = value.as_f64() {
        bounds(node, value, number, at, causes);
    }
    if let Some(text) = value.as_str() {
        strings(node, value, text, at, causes);
    }
    match value {
        Value::Object(fields) => {
            if let Some(required) = node.get("required").and_then(Value::as_array) {
                for name in required.iter().filter_map(Value::as_str) {
                    if !fields.contains_key(name) {
                        causes.push(Cause::required(&format!("{at}.{name}")));
                    }
                }
            }
            for (key, child) in fields {
                let child_node = node
                    .get("properties")
                    .and_then(|p| p.get(key))
                    .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()));
                if let Some(child_node) = child_node {
                    custom(child_node, child, &format!("{at}.{key}"), causes);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_node) = node.get("items") {
                for (index, item) in items.iter().enumerate() {
                    custom(item_node, item, &format!("{at}[{index}]"), causes);
                }
            }
        }
        _ => {}
    }
}

fn bounds(node: &Value, value: &Value, number: f64, at: &str, causes: &mut Vec<Cause>) {
    let exclusive = |key: &str| node.get(key) == Some(&Value::Bool(true));
    if let Some(minimum) = node.get("minimum").and_then(Value::as_f64) {
        let (bad, words) = if exclusive("exclusiveMinimum") {
            (number <= minimum, "greater than")
        } else {
            (number < minimum, "greater than or equal to")
        };
        if bad {
            let detail = format!("{at} in body should be {words} {}", node["minimum"]);
            causes.push(Cause::invalid(at, value, &detail));
        }
    }
    if let Some(maximum) = node.get("maximum").and_then(Value::as_f64) {
        let (bad, words) = if exclusive("exclusiveMaximum") {
            (number >= maximum, "less than")
        } else {
            (number > maximum, "less than or equal to")
        };
        if bad {
            let detail = format!("{at} in body should be {words} {}", node["maximum"]);
            causes.push(Cause::invalid(at, value, &detail));
        }
    }
}

fn strings(node: &Value, value: &Value, text: &str, at: &str, causes: &mut Vec<Cause>) {
    let length = text.chars().count() as u64;
    if let Some(max) = node.get("maxLength").and_then(Value::as_u64)
        && length > max
    {
        let detail = format!("{at} in body should be at most {max} chars long");
        causes.push(Cause::invalid(at, value, &detail));
    }
    if let Some(min) = node.get("minLength").and_then(Value::as_u64)
        && length < min
    {
        let detail = format!("{at} in body should be at least {min} chars long");
        causes.push(Cause::invalid(at, value, &detail));
    }
    if let Some(pattern) = node.get("pattern").and_then(Value::as_str) {
        let matches = regex::Regex::new(pattern)
            .map(|r| r.is_match(text))
            .unwrap_or(true);
        if !matches {
            let detail = format!("{at} in body should match '{pattern}'");
            causes.push(Cause::invalid(at, value, &detail));
        }
    }
}

/// Drops the fields a structural schema does not declare, as the API server prunes them.
pub fn prune_unknown(node: &Value, value: &mut Value) {
    if node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(fields) => {
            let properties = node.get("properties").and_then(Value::as_object);
            let additional = node.get("additionalProperties").filter(|a| a.is_object());
            if properties.is_none() && additional.is_none() {
                return;
            }
            fields.retain(|key, _| {
                properties.is_some_and(|p| p.contains_key(key)) || additional.is_some()
            });
            for (key, child) in fields.iter_mut() {
                let child_node = properties.and_then(|p| p.get(key)).or(additional);
                if let Some(child_node) = child_node {
                    prune_unknown(child_node, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_node) = node.get("items") {
                items
                    .iter_mut()
                    .for_each(|item| prune_unknown(item_node, item));
            }
        }
        _ => {}
    }
}
