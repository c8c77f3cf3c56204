//! Field sets as server-side apply keeps them: sets of paths into an object, read from and written
//! to `metadata.managedFields[].fieldsV1`, and the path syntax of conflict messages. Pure data.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// One step of a path: a field, an item of a keyed list, an item of a set, or a list index.
/// The derived order (fields, keys, values, indexes) is the order `fieldsV1` is written in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Element {
    /// `f:name`
    Field(String),
    /// `k:{"name":"app"}`: the item's key fields as canonical JSON (keys sorted).
    Key(String),
    /// `v:"x"`: an item of a set, as canonical JSON.
    Value(String),
    /// `i:0`: an item of an atomic list addressed by position (not produced by apply).
    Index(usize),
}

impl Element {
    /// The `fieldsV1` spelling of this element.
    pub fn encode(&self) -> String {
        match self {
            Element::Field(name) => format!("f:{name}"),
            Element::Key(json) => format!("k:{json}"),
            Element::Value(json) => format!("v:{json}"),
            Element::Index(index) => format!("i:{index}"),
        }
    }

    /// Reads a `fieldsV1` key back; `None` for `.` and unknown prefixes.
    pub fn decode(text: &str) -> Option<Element> {
        let (prefix, rest) = text.split_at_checked(2)?;
        match prefix {
            "f:" => Some(Element::Field(rest.to_string())),
            "k:" => {
                let value: Value = serde_json::from_str(rest).ok()?;
                Some(Element::Key(canonical(&value)))
            }
            "v:" => {
                let value: Value = serde_json::from_str(rest).ok()?;
                Some(Element::Value(canonical(&value)))
            }
            "i:" => rest.parse().ok().map(Element::Index),
            _ => None,
        }
    }

    /// The element as conflict messages print it: `.name`, `[name="app"]`, `[=x]`, `[0]`.
    pub fn display(&self) -> String {
        match self {
            Element::Field(name) => format!(".{name}"),
            Element::Key(json) => {
                let value: Value = serde_json::from_str(json).unwrap_or(Value::Null);
                let parts: Vec<String> = value
                    .as_object()
                    .map(|fields| fields.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                format!("[{}]", parts.join(","))
            }
            Element::Value(json) => format!("[={json}]"),
            Element::Index(index) => format!("[{index}]"),
        }
    }
}

/// JSON with object keys sorted, so equal values have one spelling.
pub fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(fields) => {
                let ordered: BTreeMap<&String, Value> =
                    fields.iter().map(|(k, v)| (k, sorted(v))).collect();
                let mut out = Map::new();
                for (key, value) in ordered {
                    out.insert(key.clone(), value);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// A path from the object's root.
pub type Path = Vec<Element>;

/// Prints a path the way the API server's conflict messages do: `.spec.replicas`.
pub fn display(path: &[Element]) -> String {
    path.iter().map(Element::display).collect()
}

/// A set of paths, stored as a tree: `members` end at this node, `children` go deeper.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Set {
    members: BTreeSet<Element>,
    children: BTreeMap<Element, Set>,
}

impl Set {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(Set::is_empty)
    }

    /// Adds a path; the empty path is ignored.
    pub fn insert(&mut self, path: &[Element]) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut node = self;
        for element in parents {
            node = node.children.entry(element.clone()).or_default();
        }
        node.members.insert(last.clone());
    }

    /// Whether the path itself is in the set.
    pub fn contains(&self, path: &[Element]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut node = self;
        for element in parents {
            match node.children.get(element) {
                Some(child) => node = child,
                None => return false,
            }
        }
        node.members.contains(last)
    }

    /// Whether the path or any path below it is in the set.
    pub fn has_prefix(&self, path: &[Element]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return !self.is_empty();
        };
        let mut node = self;
        for element in parents {
            match node.children.get(element) {
                Some(child) => node = child,
                None => return false,
            }
        }
        node.members.contains(last) || node.children.get(last).is_some_and(|c| !c.is_empty())
    }

    /// Every path in the set, in `fieldsV1` order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        let mut elements: BTreeSet<&Element> = self.members.iter().collect();
        elements.extend(self.children.keys());
        for element in elements {
            prefix.push(element.clone());
            if self.members.contains(element) {
                out.push(prefix.clone());
            }
            if let Some(child) = self.children.get(element) {
                child.collect(prefix, out);
            }
            prefix.pop();
        }
    }

    /// The paths in either set.
    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        for path in other.paths() {
            out.insert(&path);
        }
        out
    }

    /// The paths in `self` that are not in `other`.
    pub fn difference(&self, other: &Set) -> Set {
        let mut out = Set::new();
        for path in self.paths() {
            if !other.contains(&path) {
                out.insert(&path);
            }
        }
        out
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &Set) -> Set {
        let mut out = Set::new();
        for path in self.paths() {
            if other.contains(&path) {
                out.insert(&path);
            }
        }
        out
    }

    /// Reads a `fieldsV1` document.
    pub fn from_fields_v1(value: &Value) -> Set {
        let mut set = Set::new();
        if let Some(fields) = value.as_object() {
            set.read(fields);
        }
        set
    }

    fn read(&mut self, fields: &Map<String, Value>) {
        for (key, child) in fields {
            let Some(element) = Element::decode(key) else {
                continue;
            };
            let child_fields = child.as_object();
            let has_children = child_fields.is_some_and(|c| c.keys().any(|k| k != "."));
            let is_member = child_fields.is_none_or(|c| c.is_empty() || c.contains_key("."));
            if is_member {
                self.members.insert(element.clone());
            }
            if has_children {
                let node = self.children.entry(element).or_default();
                node.read(child_fields.expect("has children"));
            }
        }
    }

    /// Writes the set as a `fieldsV1` document.
    pub fn to_fields_v1(&self) -> Value {
        let mut out = Map::new();
        let mut elements: BTreeSet<&Element> = self.members.iter().collect();
        elements.extend(
            self.children
                .keys()
                .filter(|e| !self.children[*e].is_empty()),
        );
        for element in elements {
            let child = self.children.get(element).filter(|c| !c.is_empty());
            let value = match child {
                Some(child) => {
                    let mut inner = Map::new();
                    if self.members.contains(element) {
                        inner.insert(".".into(), Value::Object(Map::new()));
                    }
                    if let Value::Object(fields) = child.to_fields_v1() {
                        inner.extend(fields);
                    }
                    Value::Object(inner)
                }
                None => Value::Object(Map::new()),
            };
            out.insert(element.encode(), value);
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trips_with_members_and_children() {
        let doc = json!({
            "f:spec": {
                "f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}
                }}}
            }
        });
        let set = Set::from_fields_v1(&doc);
        assert_eq!(set.to_fields_v1(), doc);
        let paths: Vec<String> = set.paths().iter().map(|p| display(p)).collect();
        assert_eq!(
            paths,
            [
                ".spec.replicas",
                ".spec.template.spec.containers[name=\"app\"]",
                ".spec.template.spec.containers[name=\"app\"].image",
                ".spec.template.spec.containers[name=\"app\"].name",
            ]
        );
    }

    #[test]
    fn set_algebra_works_on_exact_paths() {
        let a = Set::from_fields_v1(&json!({"f:a": {}, "f:b": {"f:c": {}}}));
        let b = Set::from_fields_v1(&json!({"f:b": {"f:c": {}, "f:d": {}}}));
        assert_eq!(
            a.intersection(&b).to_fields_v1(),
            json!({"f:b": {"f:c": {}}})
        );
        assert_eq!(a.difference(&b).to_fields_v1(), json!({"f:a": {}}));
        assert_eq!(
            a.union(&b).to_fields_v1(),
            json!({"f:a": {}, "f:b": {"f:c": {}, "f:d": {}}})
        );
        assert!(b.has_prefix(&[Element::Field("b".into())]));
        assert!(!b.contains(&[Element::Field("b".into())]));
    }

    #[test]
    fn keys_are_canonical_and_printed_like_the_server() {
        let element = Element::decode("k:{\"protocol\":\"TCP\",\"containerPort\":80}").unwrap();
        assert_eq!(
            element.encode(),
            "k:{\"containerPort\":80,\"protocol\":\"TCP\"}"
        );
        assert_eq!(element.display(), "[containerPort=80,protocol=\"TCP\"]");
    }
}
