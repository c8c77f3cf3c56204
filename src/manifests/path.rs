//! Field paths into a manifest: `spec.replicas`, `spec.template.spec.containers[name=app].image`,
//! `metadata.annotations["example.com/owner"]`, `spec.ports[0].port`. Parsing, display, and reading
//! a path out of a parsed value. Pure.

use std::fmt;

use serde_json::Value;

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence item by position.
    Index(usize),
    /// The sequence item whose `key` field equals `value` (`containers[name=app]`).
    Select {
        /// The field that identifies items (`name`, `containerPort`).
        key: String,
        /// Its value, compared with the item's scalar written as a string.
        value: String,
    },
}

/// A path from the root of an object to one of its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    /// The steps, outermost first; never empty.
    pub segments: Vec<Segment>,
}

/// A path that could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "`{input}` is not a field path: {reason} (at character {at}); write it as spec.template.spec.containers[name=app].image"
)]
pub struct ParsePathError {
    input: String,
    at: usize,
    reason: &'static str,
}

impl std::str::FromStr for FieldPath {
    type Err = ParsePathError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Parser { input, pos: 0 }.parse()
    }
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn fail(&self, reason: &'static str) -> ParsePathError {
        ParsePathError {
            input: self.input.to_owned(),
            at: self.pos + 1,
            reason,
        }
    }

    fn rest(&self) -> &str {
        &self.input[self.pos..]
    }

    fn parse(mut self) -> Result<FieldPath, ParsePathError> {
        let mut segments = Vec::new();
        while self.pos < self.input.len() {
            if self.rest().starts_with('[') {
                segments.push(self.bracket()?);
            } else {
                if !segments.is_empty() {
                    if !self.rest().starts_with('.') {
                        return Err(self.fail("expected `.` or `[`"));
                    }
                    self.pos += 1;
                    if self.rest().starts_with('[') {
                        continue;
                    }
                }
                let len = self
                    .rest()
                    .find(['.', '[', ']'])
                    .unwrap_or(self.rest().len());
                if len == 0 {
                    return Err(self.fail("empty key"));
                }
                if self.rest()[len..].starts_with(']') {
                    self.pos += len;
                    return Err(self.fail("`]` without `[`"));
                }
                segments.push(Segment::Key(self.rest()[..len].to_owned()));
                self.pos += len;
            }
        }
        if segments.is_empty() {
            return Err(self.fail("empty path"));
        }
        Ok(FieldPath { segments })
    }

    /// `[0]`, `[name=app]`, `[name="a b"]`, `["key.with/dots"]`.
    fn bracket(&mut self) -> Result<Segment, ParsePathError> {
        self.pos += 1;
        if self.rest().starts_with('"') {
            let key = self.quoted()?;
            self.close()?;
            return Ok(Segment::Key(key));
        }
        let end = self
            .rest()
            .find([']', '='])
            .ok_or_else(|| self.fail("unclosed `[`"))?;
        let head = self.rest()[..end].trim().to_owned();
        self.pos += end;
        if self.rest().starts_with(']') {
            self.pos += 1;
            return head
                .parse()
                .map(Segment::Index)
                .map_err(|_| self.fail("expected a number, `key=value` or a quoted key"));
        }
        self.pos += 1;
        let value = if self.rest().starts_with('"') {
            self.quoted()?
        } else {
            let end = self
                .rest()
                .find(']')
                .ok_or_else(|| self.fail("unclosed `[`"))?;
            let value = self.rest()[..end].trim().to_owned();
            self.pos += end;
            value
        };
        self.close()?;
        if head.is_empty() {
            return Err(self.fail("empty key before `=`"));
        }
        Ok(Segment::Select { key: head, value })
    }

    fn quoted(&mut self) -> Result<String, ParsePathError> {
        self.pos += 1;
        let end = self
            .rest()
            .find('"')
            .ok_or_else(|| self.fail("unclosed quote"))?;
        let text = self.rest()[..end].to_owned();
        self.pos += end + 1;
        Ok(text)
    }

    fn close(&mut self) -> Result<(), ParsePathError> {
        if !self.rest().starts_with(']') {
            return Err(self.fail("expected `]`"));
        }
        self.pos += 1;
        Ok(())
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Key(key) if key.contains(['.', '[', ']', '=']) => {
                    write!(f, "[\"{key}\"]")?
                }
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Select { key, value } => write!(f, "[{key}={value}]")?,
            }
        }
        Ok(())
    }
}

impl FieldPath {
    /// The value at this path in `value`, if present.
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.segments
            .iter()
            .try_fold(value, |v, segment| step(v, segment))
    }

    /// The path without its last segment, and the last segment.
    pub fn split_last(&self) -> (&[Segment], &Segment) {
        let (last, parent) = self
            .segments
            .split_last()
            .expect("a field path is never empty");
        (parent, last)
    }
}

/// The child of `value` that `segment` names.
pub fn step<'v>(value: &'v Value, segment: &Segment) -> Option<&'v Value> {
    match segment {
        Segment::Key(key) => value.as_object()?.get(key),
        Segment::Index(index) => value.as_array()?.get(*index),
        Segment::Select { .. } => {
            let items = value.as_array()?;
            items.get(select_position(items, segment)?)
        }
    }
}

/// Mutable twin of [`step`].
pub fn step_mut<'v>(value: &'v mut Value, segment: &Segment) -> Option<&'v mut Value> {
    match segment {
        Segment::Key(key) => value.as_object_mut()?.get_mut(key),
        Segment::Index(index) => value.as_array_mut()?.get_mut(*index),
        Segment::Select { .. } => {
            let position = select_position(value.as_array()?, segment)?;
            value.as_array_mut()?.get_mut(position)
        }
    }
}

/// Position of the item a `Select` or `Index` segment names.
pub fn select_position(items: &[Value], segment: &Segment) -> Option<usize> {
    match segment {
        Segment::Index(index) => (*index < items.len()).then_some(*index),
        Segment::Select { key, value } => items
            .iter()
            .position(|item| item.get(key).is_some_and(|v| scalar_text(v) == *value)),
        Segment::Key(_) => None,
    }
}

/// A scalar written as a string, as a `Select` compares it.
pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> FieldPath {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_segment_kind() {
        let p = path("spec.template.spec.containers[name=app].ports[0].containerPort");
        assert_eq!(p.segments[3], Segment::Key("containers".into()));
        assert_eq!(
            p.segments[4],
            Segment::Select {
                key: "name".into(),
                value: "app".into()
            }
        );
        assert_eq!(p.segments[6], Segment::Index(0));
        let p = path(r#"metadata.annotations["example.com/owner"]"#);
        assert_eq!(p.segments[2], Segment::Key("example.com/owner".into()));
        let p = path(r#"env[name="A B"].value"#);
        assert_eq!(
            p.segments[1],
            Segment::Select {
                key: "name".into(),
                value: "A B".into()
            }
        );
    }

    #[test]
    fn displays_what_it_parses() {
        for s in [
            "spec.replicas",
            "a[name=x].b[2]",
            r#"metadata.labels["app.kubernetes.io/name"]"#,
        ] {
            assert_eq!(path(s).to_string(), s);
        }
    }

    #[test]
    fn rejects_bad_paths() {
        for s in ["", "a..b", "a[", "a[x", "a[=1]", "a]b", "a[\"x]"] {
            assert!(s.parse::<FieldPath>().is_err(), "{s}");
        }
    }

    #[test]
    fn reads_values() {
        let v =
            serde_json::json!({"spec": {"ports": [{"port": 80}, {"port": 443, "name": "https"}]}});
        assert_eq!(
            path("spec.ports[port=443].name").get(&v),
            Some(&Value::from("https"))
        );
        assert_eq!(path("spec.ports[1].port").get(&v), Some(&Value::from(443)));
        assert_eq!(path("spec.ports[port=8080]").get(&v), None);
    }
}
