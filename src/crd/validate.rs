//! Existing custom resources against a CRD version's new schema: the structural schema turned
//! into JSON Schema (draft 4, OpenAPI 3.0's dialect) and checked by the `jsonschema` crate, and
//! the `x-kubernetes-validations` CEL rules evaluated by the `cel` crate where it can (rules
//! using functions it lacks are listed as not evaluated, never as passed). Transition rules
//! (`oldSelf`) are left out: they apply to updates only. Values of the objects never appear in
//! the messages. Pure.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::schema::is_transition;

/// The formats checked: those the API server validates the same way `jsonschema` does.
const FORMATS: &[&str] = &["date-time", "email", "ipv4", "ipv6", "uuid"];

/// What a new schema says of the existing objects of one version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Validation {
    /// How many objects were checked.
    pub total: usize,
    /// Those that fail, each with why.
    pub invalid: Vec<Invalid>,
    /// CEL rules that could not be evaluated here, with why.
    pub unevaluated: Vec<String>,
}

/// One object that fails the new schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invalid {
    /// `namespace/name`, or `name` when cluster-scoped.
    pub object: String,
    /// Each failure: `.spec.colour: value is not of type "integer"`.
    pub messages: Vec<String>,
}

impl Validation {
    /// Each distinct failure with the objects that have it, most common first.
    pub fn grouped(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for invalid in &self.invalid {
            for message in &invalid.messages {
                let objects = groups.entry(message.clone()).or_default();
                if !objects.contains(&invalid.object) {
                    objects.push(invalid.object.clone());
                }
            }
        }
        let mut groups: Vec<(String, Vec<String>)> = groups.into_iter().collect();
        groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        groups
    }
}

/// A schema that cannot be compiled.
#[derive(Debug, thiserror::Error)]
#[error("the schema cannot be checked: {0}")]
pub struct Unusable(String);

/// A version's schema, ready to check objects.
pub struct Validator {
    schema: jsonschema::Validator,
    rules: Option<Rules>,
    env: Arc<cel::Env>,
    programs: HashMap<String, Result<cel::Program, String>>,
}

/// The CEL rules of a schema, kept only along the paths that lead to one.
#[derive(Default)]
struct Rules {
    /// This node's rules: the rule, its message and its `fieldPath`.
    own: Vec<(String, Option<String>, String)>,
    properties: Vec<(String, Rules)>,
    items: Option<Box<Rules>>,
    values: Option<Box<Rules>>,
}

impl Rules {
    /// The rules under `schema`; `None` when it has none.
    fn of(schema: &Value) -> Option<Rules> {
        let text = |r: &Value, k: &str| r[k].as_str().map(str::to_owned);
        let own: Vec<(String, Option<String>, String)> = schema["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let rule = text(r, "rule").filter(|rule| !is_transition(rule))?;
                Some((
                    rule,
                    text(r, "message"),
                    text(r, "fieldPath").unwrap_or_default(),
                ))
            })
            .collect();
        let properties: Vec<(String, Rules)> = schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), Rules::of(v)?)))
            .collect();
        let items = schema.get("items").and_then(Rules::of).map(Box::new);
        let values = schema
            .get("additionalProperties")
            .filter(|v| v.is_object())
            .and_then(Rules::of)
            .map(Box::new);
        let empty = own.is_empty() && properties.is_empty() && items.is_none() && values.is_none();
        (!empty).then_some(Rules {
            own,
            properties,
            items,
            values,
        })
    }
}

impl Validator {
    /// Compiles a CRD version's `openAPIV3Schema`.
    pub fn new(schema: &Value) -> Result<Validator, Unusable> {
        let converted = to_json_schema(schema);
        let compiled = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(true)
            .build(&converted)
            .map_err(|e| Unusable(e.masked().to_string()))?;
        let mut env = cel::Env::stdlib();
        // Kubernetes' CEL environment has the strings and lists libraries.
        env.add_extension(cel::extensions::strings)
            .and_then(|()| env.add_extension(cel::extensions::lists))
            .map_err(|e| Unusable(format!("{e:?}")))?;
        Ok(Validator {
            schema: compiled,
            rules: Rules::of(schema),
            env: Arc::new(env),
            programs: HashMap::new(),
        })
    }

    /// Checks every object.
    pub fn check_all(&mut self, objects: &[Value]) -> Validation {
        let mut out = Validation {
            total: objects.len(),
            ..Validation::default()
        };
        let mut unevaluated = BTreeMap::new();
        for object in objects {
            let mut messages: Vec<String> = self
                .schema
                .iter_errors(object)
                .map(|e| format!("{}: {}", dotted(e.instance_path().as_str()), e.masked()))
                .collect();
            if let Some(rules) = &self.rules {
                let mut cel = Cel {
                    env: &self.env,
                    programs: &mut self.programs,
                    messages: &mut messages,
                    unevaluated: &mut unevaluated,
                };
                cel.walk(rules, object, "");
            }
            if !messages.is_empty() {
                messages.sort();
                messages.dedup();
                out.invalid.push(Invalid {
                    object: name(object),
                    messages,
                });
            }
        }
        out.unevaluated = unevaluated
            .into_iter()
            .map(|(rule, why)| format!("`{rule}`: {why}"))
            .collect();
        out
    }
}

/// One object's walk through the CEL rules.
struct Cel<'a> {
    env: &'a Arc<cel::Env>,
    programs: &'a mut HashMap<String, Result<cel::Program, String>>,
    messages: &'a mut Vec<String>,
    unevaluated: &'a mut BTreeMap<String, String>,
}

impl Cel<'_> {
    /// The rules of a node on `value`, and of every node under it.
    fn walk(&mut self, rules: &Rules, value: &Value, path: &str) {
        for (rule, message, at) in &rules.own {
            match self.evaluate(rule, value) {
                Ok(true) => {}
                Ok(false) => {
                    let why = message
                        .clone()
                        .unwrap_or_else(|| format!("failed rule: {rule}"));
                    self.messages
                        .push(format!("{}: {why}", dotted_or_root(&format!("{path}{at}"))));
                }
                Err(why) => {
                    self.unevaluated.entry(rule.clone()).or_insert(why);
                }
            }
        }
        for (key, child) in &rules.properties {
            if let Some(inner) = value.get(key) {
                self.walk(child, inner, &format!("{path}.{key}"));
            }
        }
        if let (Some(items), Some(list)) = (&rules.items, value.as_array()) {
            for (i, inner) in list.iter().enumerate() {
                self.walk(items, inner, &format!("{path}[{i}]"));
            }
        }
        if let (Some(values), Some(map)) = (&rules.values, value.as_object()) {
            for (key, inner) in map {
                self.walk(values, inner, &format!("{path}.{key}"));
            }
        }
    }

    fn evaluate(&mut self, rule: &str, value: &Value) -> Result<bool, String> {
        let env = self.env.clone();
        let program = self.programs.entry(rule.to_owned()).or_insert_with(|| {
            env.compile(rule).map_err(|e| {
                let first = e.errors.first().map(|e| e.msg.clone());
                format!("does not compile: {}", first.unwrap_or_default())
            })
        });
        let program = match program {
            Ok(program) => program,
            Err(why) => return Err(why.clone()),
        };
        let mut context = cel::Context::with_env(env);
        context
            .add_variable("self", value)
            .map_err(|e| format!("the value cannot be given to CEL: {e}"))?;
        match program.execute(&context) {
            Ok(cel::Value::Bool(result)) => Ok(result),
            Ok(other) => Err(format!("evaluates to {other:?}, not a bool")),
            Err(error) => Err(format!("cannot be evaluated here: {error}")),
        }
    }
}

/// `namespace/name` of an object.
fn name(object: &Value) -> String {
    let text = |p: &str| object.pointer(p).and_then(Value::as_str);
    match (text("/metadata/namespace"), text("/metadata/name")) {
        (Some(namespace), Some(name)) => format!("{namespace}/{name}"),
        (None, Some(name)) => name.to_owned(),
        _ => "(unnamed)".to_owned(),
    }
}

fn dotted_or_root(path: &str) -> String {
    if path.is_empty() {
        ".".to_owned()
    } else {
        path.to_owned()
    }
}

/// A JSON Pointer as a custom resource path: `/spec/tags/0/key` → `.spec.tags[0].key`.
fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            out.push('.');
            out.push_str(&segment);
        }
    }
    dotted_or_root(&out)
}

/// A Kubernetes structural schema as JSON Schema draft 4: `nullable` as a `null` type,
/// `x-kubernetes-int-or-string` as integer or string, a `set` list as unique items, formats
/// the API server checks kept and the others left out.
pub fn to_json_schema(schema: &Value) -> Value {
    let Some(node) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    for key in [
        "type",
        "enum",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "multipleOf",
    ] {
        if let Some(value) = node.get(key) {
            out.insert(key.to_owned(), value.clone());
        }
    }
    if let Some(required) = node
        .get("required")
        .filter(|r| r.as_array().is_some_and(|r| !r.is_empty()))
    {
        out.insert("required".to_owned(), required.clone());
    }
    if let Some(format) = node
        .get("format")
        .and_then(Value::as_str)
        .filter(|f| FORMATS.contains(f))
    {
        out.insert("format".to_owned(), json!(format));
    }
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        let converted: Map<String, Value> = properties
            .iter()
            .map(|(k, v)| (k.clone(), to_json_schema(v)))
            .collect();
        out.insert("properties".to_owned(), Value::Object(converted));
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(value) = node.get(key) {
            out.insert(key.to_owned(), to_json_schema(value));
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = node.get(key).and_then(Value::as_array) {
            out.insert(
                key.to_owned(),
                Value::Array(list.iter().map(to_json_schema).collect()),
            );
        }
    }
    if node.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set") {
        out.insert("uniqueItems".to_owned(), json!(true));
    }
    if node.get("x-kubernetes-int-or-string") == Some(&json!(true)) {
        out.remove("type");
        let either = json!({"anyOf": [{"type": "integer"}, {"type": "string"}]});
        let mut all = out
            .remove("allOf")
            .and_then(|a| a.as_array().cloned())
            .unwrap_or_default();
        all.push(either);
        out.insert("allOf".to_owned(), Value::Array(all));
    }
    if node.get("nullable") == Some(&json!(true)) {
        if let Some(Value::String(kind)) = out.get("type").cloned() {
            out.insert("type".to_owned(), json!([kind, "null"]));
        }
        if let Some(Value::Array(values)) = out.get_mut("enum") {
            values.push(Value::Null);
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "metadata": {"type": "object"},
            "spec": {"type": "object", "required": ["colour"], "properties": {
                "colour": {"type": "integer", "minimum": 0},
                "port": {"x-kubernetes-int-or-string": true},
                "note": {"type": "string", "nullable": true},
                "when": {"type": "string", "format": "date-time"},
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "replicas": {"type": "integer", "x-kubernetes-validations": [
                    {"rule": "self <= 5", "message": "at most 5 replicas"},
                    {"rule": "self == oldSelf", "message": "immutable"}]},
                "name": {"type": "string", "x-kubernetes-validations": [
                    {"rule": "self.noSuchFunction()"}]}}}}})
    }

    fn gadget(name: &str, spec: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Gadget",
            "metadata": {"name": name, "namespace": "team-a", "uid": "x"}, "spec": spec})
    }

    #[test]
    fn existing_objects_are_checked_against_the_schema_and_its_cel_rules() {
        let mut validator = Validator::new(&schema()).unwrap();
        let objects = [
            gadget(
                "fine",
                json!({"colour": 1, "port": "http", "note": null, "replicas": 5,
                "when": "2026-01-02T03:04:05Z", "tags": ["a", "b"]}),
            ),
            gadget("blue", json!({"colour": "blue", "port": 80})),
            gadget("many", json!({"colour": 2, "replicas": 9})),
            gadget(
                "none",
                json!({"port": 1.5, "tags": ["a", "a"], "when": "yesterday"}),
            ),
        ];
        let found = validator.check_all(&objects);
        assert_eq!(found.total, 4);
        let invalid: Vec<(&str, Vec<&str>)> = found
            .invalid
            .iter()
            .map(|i| {
                (
                    i.object.as_str(),
                    i.messages.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(invalid.len(), 3, "{invalid:#?}");
        assert_eq!(invalid[0].0, "team-a/blue");
        assert_eq!(invalid[0].1.len(), 1);
        assert!(
            invalid[0].1[0].starts_with(".spec.colour: "),
            "{:?}",
            invalid[0]
        );
        assert!(
            !invalid[0].1[0].contains("blue"),
            "values stay out of messages"
        );
        assert_eq!(
            invalid[1],
            ("team-a/many", vec![".spec.replicas: at most 5 replicas"])
        );
        let none: Vec<&str> = invalid[2]
            .1
            .iter()
            .map(|m| m.split(':').next().unwrap())
            .collect();
        assert_eq!(
            none,
            [".spec.port", ".spec.tags", ".spec.when", ".spec"],
            "{:?}",
            invalid[2]
        );
        // The rule this CEL cannot evaluate is said, never passed silently.
        assert_eq!(found.unevaluated.len(), 0, "no object sets .spec.name");
        let named = validator.check_all(&[gadget("n", json!({"colour": 1, "name": "x"}))]);
        assert_eq!(named.invalid, vec![]);
        assert_eq!(named.unevaluated.len(), 1, "{:?}", named.unevaluated);
        assert!(named.unevaluated[0].starts_with("`self.noSuchFunction()`"));
        let grouped = found.grouped();
        assert_eq!(grouped.len(), 6);
    }

    #[test]
    fn pointers_read_as_resource_paths() {
        assert_eq!(dotted("/spec/tags/0/key"), ".spec.tags[0].key");
        assert_eq!(dotted("/metadata/labels/a~1b"), ".metadata.labels.a/b");
        assert_eq!(dotted(""), ".");
    }
}
