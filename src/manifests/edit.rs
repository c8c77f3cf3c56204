//! Lossless edits of one object in a YAML file: set a scalar (keeping its quoting), insert a
//! missing key or mapping, append a list item, remove a key. Only the lines that carry the change
//! move; comments, key order, quoting, indentation, flow collections, line endings and document
//! separators stay as they were.
//!
//! Every edit is checked: the edited text must parse, and must equal the old document with the
//! edit applied to its value, every other document unchanged. Pure: text in, text out.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::str::FromStr;

use serde_json::Value;
use yaml_edit::{AsYaml, Mapping, ScalarStyle, ScalarValue, Sequence, YamlFile, YamlNode};

pub use super::op::{Edit, EditError, EditOp};
use super::path::{FieldPath, Segment, scalar_text, select_position};
use super::source::{Location, parse_text};
use super::verify::{apply_to_value, document_value, verify};

/// Applies `edits` to the object at `location` in `text` and returns the new text. Either every
/// edit is made and verified, or an error says which one failed and `text` is untouched.
pub fn apply(text: &str, location: &Location, edits: &[Edit]) -> Result<String, EditError> {
    let before = parse_text(&location.file, text);
    let mut expected = document_value(&before, location)?.clone();
    let mut current = text.to_owned();
    for edit in edits {
        let (next, intended) = apply_one(&current, location, edit)?;
        apply_to_value(&mut expected, &edit.path, &intended);
        current = next;
    }
    verify(
        &before,
        &parse_text(&location.file, &current),
        location,
        &expected,
    )?;
    Ok(current)
}

/// One edit on the text; also returns the op as it was made (a number written into a quoted
/// string field stays a string).
fn apply_one(text: &str, location: &Location, edit: &Edit) -> Result<(String, EditOp), EditError> {
    catch_unwind(AssertUnwindSafe(|| {
        let file = YamlFile::from_str(text).map_err(|e| EditError::Verify(e.to_string()))?;
        let root = object_root(&file, location)?;
        let layout = Layout::of(text);
        let intended = match &edit.op {
            EditOp::Set(value) => set(&root, &edit.path, value, layout)?,
            EditOp::Append(value) => append(&root, &edit.path, value, layout)?,
            EditOp::Remove => remove(&root, &edit.path)?,
        };
        Ok((keep_trailing_space(text, &file.to_string()), intended))
    }))
    .unwrap_or_else(|_| {
        Err(EditError::Verify(
            "the YAML editor failed on this file".to_owned(),
        ))
    })
}

/// `new` with the trailing whitespace of each edited line as it was in `old`: the editor drops
/// it when it replaces a scalar that ends a line.
fn keep_trailing_space(old: &str, new: &str) -> String {
    let split = |line: &str| -> (usize, usize) {
        let ending = if line.ends_with("\r\n") {
            2
        } else {
            usize::from(line.ends_with('\n'))
        };
        let body = &line[..line.len() - ending];
        (body.trim_end_matches([' ', '\t']).len(), body.len())
    };
    let diff = similar::TextDiff::from_lines(old, new);
    let (old_lines, new_lines): (Vec<&str>, Vec<&str>) = (
        old.split_inclusive('\n').collect(),
        new.split_inclusive('\n').collect(),
    );
    let mut out = String::with_capacity(new.len());
    for op in diff.ops() {
        let (_, old_range, new_range) = op.as_tag_tuple();
        let same_shape = old_range.len() == new_range.len();
        for (i, n) in new_range.clone().enumerate() {
            let line = new_lines[n];
            let old_line = old_range.clone().nth(i).map(|o| old_lines[o]);
            match old_line.filter(|_| same_shape) {
                Some(old_line) => {
                    let (old_kept, old_body) = split(old_line);
                    let (kept, body) = split(line);
                    if old_kept < old_body && kept == body {
                        out.push_str(&line[..body]);
                        out.push_str(&old_line[old_kept..old_body]);
                        out.push_str(&line[body..]);
                    } else {
                        out.push_str(line);
                    }
                }
                None => out.push_str(line),
            }
        }
    }
    out
}

fn object_root(file: &YamlFile, location: &Location) -> Result<Mapping, EditError> {
    let missing = || EditError::MissingDocument(location.document + 1);
    // The document that holds the object's first byte: the edits of one object never move it.
    let start = location.span.start;
    let doc = file.documents().find(|d| {
        let range = d.byte_range();
        (range.start as usize) <= start && start < range.end as usize
    });
    let root = doc.ok_or_else(missing)?.as_mapping().ok_or_else(missing)?;
    match location.item {
        None => Ok(root),
        Some(item) => {
            let items = root.get_sequence("items").ok_or_else(missing)?;
            let node = items.get(item).ok_or_else(missing)?;
            node.as_mapping().cloned().ok_or_else(missing)
        }
    }
}

/// A node reached by a path: a mapping, a sequence or a leaf.
enum Node {
    Mapping(Mapping),
    Sequence(Sequence),
    Leaf(YamlNode),
}

fn node(value: YamlNode, at: &str) -> Result<Node, EditError> {
    match value {
        YamlNode::Mapping(m) => Ok(Node::Mapping(m)),
        YamlNode::Sequence(s) => Ok(Node::Sequence(s)),
        YamlNode::Alias(_) => Err(EditError::Alias { at: at.to_owned() }),
        YamlNode::TaggedNode(t) => match (t.as_mapping(), t.as_sequence()) {
            (Some(m), _) => Ok(Node::Mapping(m)),
            (_, Some(s)) => Ok(Node::Sequence(s)),
            _ => Ok(Node::Leaf(YamlNode::TaggedNode(t))),
        },
        leaf => Ok(Node::Leaf(leaf)),
    }
}

fn kind_of(node: &Node) -> &'static str {
    match node {
        Node::Mapping(_) => "a mapping",
        Node::Sequence(_) => "a sequence",
        Node::Leaf(_) => "a scalar",
    }
}

/// Follows `segments` from `root`; returns how many steps exist and the node reached.
fn walk(root: &Mapping, segments: &[Segment]) -> Result<(usize, Node), EditError> {
    let mut current = Node::Mapping(root.clone());
    for (depth, segment) in segments.iter().enumerate() {
        let at = prefix(segments, depth + 1);
        let next = match (&current, segment) {
            (Node::Mapping(m), Segment::Key(key)) => m.get(key.as_str()),
            (Node::Sequence(s), Segment::Index(_) | Segment::Select { .. }) => {
                sequence_position(s, segment).and_then(|i| s.get(i))
            }
            (other, Segment::Key(_)) => {
                return Err(wrong(&segments[..depth], "a mapping", kind_of(other)));
            }
            (other, _) => return Err(wrong(&segments[..depth], "a sequence", kind_of(other))),
        };
        match next {
            Some(value) => current = node(value, &at)?,
            None => return Ok((depth, current)),
        }
    }
    Ok((segments.len(), current))
}

fn set(
    root: &Mapping,
    path: &FieldPath,
    value: &Value,
    layout: Layout,
) -> Result<EditOp, EditError> {
    let (parent_path, last) = path.split_last();
    let (depth, parent) = walk(root, parent_path)?;
    if depth < parent_path.len() {
        // Create the missing mappings: every remaining step must be a key.
        let missing = &path.segments[depth..];
        let Some(keys) = missing.iter().map(as_key).collect::<Option<Vec<_>>>() else {
            return Err(not_found(&path.segments, depth, missing));
        };
        let Node::Mapping(mapping) = parent else {
            return Err(wrong(
                &path.segments[..depth],
                "a mapping",
                kind_of(&parent),
            ));
        };
        let nested = keys[1..].iter().rev().fold(value.clone(), |acc, key| {
            Value::Object([(key.to_string(), acc)].into_iter().collect())
        });
        insert_key(&mapping, keys[0], &nested, layout);
        return Ok(EditOp::Set(value.clone()));
    }
    match (parent, last) {
        (Node::Mapping(m), Segment::Key(key)) => {
            let existing = m
                .get(key.as_str())
                .map(|v| node(v, &path.to_string()))
                .transpose()?;
            let style = match &existing {
                Some(Node::Leaf(YamlNode::Scalar(s))) => Some(ScalarValue::from_scalar(s).style()),
                _ => None,
            };
            let value = keep_string_type(value, style);
            match existing {
                Some(_) => m.set(key.as_str(), &*to_yaml(&value, style, layout)),
                None => insert_key(&m, key, &value, layout),
            }
            Ok(EditOp::Set(value))
        }
        (Node::Sequence(s), segment @ (Segment::Index(_) | Segment::Select { .. })) => {
            let at = path.to_string();
            let position = sequence_position(&s, segment).ok_or_else(|| {
                not_found(
                    &path.segments,
                    parent_path.len(),
                    std::slice::from_ref(segment),
                )
            })?;
            let style = match s.get(position).map(|v| node(v, &at)).transpose()? {
                Some(Node::Leaf(YamlNode::Scalar(sc))) => {
                    Some(ScalarValue::from_scalar(&sc).style())
                }
                _ => None,
            };
            let value = keep_string_type(value, style);
            s.set(position, &*to_yaml(&value, style, layout));
            Ok(EditOp::Set(value))
        }
        (other, Segment::Key(_)) => Err(wrong(parent_path, "a mapping", kind_of(&other))),
        (other, _) => Err(wrong(parent_path, "a sequence", kind_of(&other))),
    }
}

/// Adds a key that is not there yet. A scalar goes before the first entry holding a block
/// collection, where people write scalars (`replicas` before `selector` and `template`); a
/// collection goes at the end.
fn insert_key(mapping: &Mapping, key: &str, value: &Value, layout: Layout) {
    let node = to_yaml(value, None, layout);
    let scalar = !matches!(value, Value::Object(_) | Value::Array(_));
    let first_block = || {
        mapping
            .entries()
            .find_map(|entry| match entry.value_node()? {
                YamlNode::Mapping(m) if !m.is_flow_style() => entry.key_node(),
                YamlNode::Sequence(s) if !s.is_flow_style() => entry.key_node(),
                _ => None,
            })
    };
    match first_block().filter(|_| scalar && !mapping.is_flow_style()) {
        Some(before) => {
            mapping.insert_before(before, key, &*node);
        }
        None => mapping.set(key, &*node),
    }
}

fn append(
    root: &Mapping,
    path: &FieldPath,
    value: &Value,
    layout: Layout,
) -> Result<EditOp, EditError> {
    let (depth, target) = walk(root, &path.segments)?;
    if depth < path.segments.len() {
        set(root, path, &Value::Array(vec![value.clone()]), layout)?;
        return Ok(EditOp::Append(value.clone()));
    }
    match target {
        Node::Sequence(s) => {
            // The new item is quoted as the items already there are.
            let layout = Layout {
                quote: quote_of(&s),
                ..layout
            };
            let style = match layout.quote {
                Some('"') => Some(ScalarStyle::DoubleQuoted),
                Some(_) => Some(ScalarStyle::SingleQuoted),
                None => None,
            };
            s.push(&*to_yaml(value, style, layout));
            Ok(EditOp::Append(value.clone()))
        }
        other => Err(wrong(&path.segments, "a sequence", kind_of(&other))),
    }
}

fn remove(root: &Mapping, path: &FieldPath) -> Result<EditOp, EditError> {
    let (parent_path, last) = path.split_last();
    let (depth, parent) = walk(root, parent_path)?;
    let gone = || {
        not_found(
            &path.segments,
            parent_path.len(),
            std::slice::from_ref(last),
        )
    };
    if depth < parent_path.len() {
        return Err(not_found(&path.segments, depth, &path.segments[depth..]));
    }
    match (parent, last) {
        (Node::Mapping(m), Segment::Key(key)) => {
            m.remove(key.as_str()).ok_or_else(gone)?;
        }
        (Node::Sequence(s), segment) => {
            let position = sequence_position(&s, segment).ok_or_else(gone)?;
            s.remove(position).ok_or_else(gone)?;
        }
        (other, _) => return Err(wrong(parent_path, "a mapping", kind_of(&other))),
    }
    Ok(EditOp::Remove)
}

/// Position of the item `segment` names in a sequence node.
fn sequence_position(sequence: &Sequence, segment: &Segment) -> Option<usize> {
    let items: Vec<Value> = sequence
        .values()
        .map(|item| item_key_value(&item, segment))
        .collect();
    select_position(&items, segment)
}

/// Just enough of an item to match a `Select`: `{key: scalar}`.
fn item_key_value(item: &YamlNode, segment: &Segment) -> Value {
    let Segment::Select { key, .. } = segment else {
        return Value::Null;
    };
    let scalar = item.as_mapping().and_then(|m| m.get(key.as_str()));
    match scalar.as_ref().and_then(YamlNode::as_scalar) {
        Some(s) => Value::Object(
            [(key.clone(), Value::String(s.as_string()))]
                .into_iter()
                .collect(),
        ),
        None => Value::Null,
    }
}

/// A number or boolean written where a quoted string stood stays a string: the field is a string
/// field (an env value, an annotation), and a bare `2` there would be rejected.
fn keep_string_type(value: &Value, style: Option<ScalarStyle>) -> Value {
    let quoted = matches!(
        style,
        Some(ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted)
    );
    match value {
        Value::Number(_) | Value::Bool(_) if quoted => Value::String(scalar_text(value)),
        other => other.clone(),
    }
}

/// How the file being edited lays out lists and quotes strings, so that what is written into
/// it looks like what is there.
#[derive(Debug, Clone, Copy, Default)]
struct Layout {
    /// Whether lists under a key are indented past it; `None` when the file has no such list.
    indent_sequences: Option<bool>,
    /// The quote the strings of the list being appended to are written in.
    quote: Option<char>,
}

impl Layout {
    /// The layout of `text`: whether most lists under a key are indented past the key.
    fn of(text: &str) -> Self {
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .collect();
        let column = |line: &str| line.len() - line.trim_start().len();
        let (mut indented, mut flush) = (0, 0);
        for pair in lines.windows(2) {
            let (key, item) = (pair[0], pair[1].trim_start());
            let opens = key.trim_end().ends_with(':') && !key.trim_start().starts_with('-');
            if opens && (item.starts_with("- ") || item == "-") {
                if column(pair[1]) > column(key) {
                    indented += 1;
                } else {
                    flush += 1;
                }
            }
        }
        Layout {
            indent_sequences: (indented + flush > 0).then_some(indented >= flush),
            quote: None,
        }
    }
}

/// The quote every string scalar of `sequence` (its items, or its items' values) is written
/// in, when they all share one.
fn quote_of(sequence: &Sequence) -> Option<char> {
    let mut styles = Vec::new();
    for item in sequence.values() {
        match &item {
            YamlNode::Scalar(s) => styles.push(ScalarValue::from_scalar(s).style()),
            YamlNode::Mapping(m) => {
                for (_, value) in m {
                    if let YamlNode::Scalar(s) = &value {
                        styles.push(ScalarValue::from_scalar(s).style());
                    }
                }
            }
            _ => {}
        }
    }
    let first = *styles.first()?;
    let quote = match first {
        ScalarStyle::DoubleQuoted => '"',
        ScalarStyle::SingleQuoted => '\'',
        _ => return None,
    };
    styles.iter().all(|s| *s == first).then_some(quote)
}

/// The yaml-edit value for `value`: a scalar in `style` when one is given (the style of the
/// scalar it replaces) and can hold it, or a block collection laid out as the file is.
fn to_yaml(value: &Value, style: Option<ScalarStyle>, layout: Layout) -> Box<dyn AsYaml> {
    match value {
        Value::Array(_) if layout.indent_sequences == Some(true) => {
            // Taken from under a key, the list keeps its items' indentation where it is put.
            let emitted = super::emit::block_styled(
                &Value::Object([("x".to_owned(), value.clone())].into_iter().collect()),
                super::emit::Style {
                    indent_sequences: true,
                    quote: layout.quote,
                },
            );
            let doc = yaml_edit::Document::from_str(&emitted).expect("emitted YAML parses");
            match doc.as_mapping().and_then(|m| m.get("x")) {
                Some(node) => Box::new(node),
                None => Box::new(ScalarValue::null()),
            }
        }
        Value::Object(_) | Value::Array(_) => {
            let text = super::emit::block_styled(
                value,
                super::emit::Style {
                    indent_sequences: layout.indent_sequences.unwrap_or(true),
                    quote: layout.quote,
                },
            );
            let doc = yaml_edit::Document::from_str(&text).expect("emitted YAML parses");
            match (doc.as_mapping(), doc.as_sequence()) {
                (Some(m), _) => Box::new(m),
                (_, Some(s)) => Box::new(s),
                _ => Box::new(ScalarValue::null()),
            }
        }
        Value::String(s) => {
            let needs = super::emit::needs_quotes(s);
            let style = match style {
                Some(ScalarStyle::SingleQuoted) if !s.contains('\n') => ScalarStyle::SingleQuoted,
                Some(ScalarStyle::DoubleQuoted) => ScalarStyle::DoubleQuoted,
                _ if needs => ScalarStyle::DoubleQuoted,
                _ => ScalarStyle::Plain,
            };
            // yaml-edit quotes a plain scalar that starts with `<`, which YAML allows plain
            // (`<REGISTRY>/app:1.0`): such a node is taken as parsed, written as it is.
            if style == ScalarStyle::Plain && s.starts_with('<') && !s.contains('\n') {
                let doc = yaml_edit::Document::from_str(&format!("x: {s}\n"));
                if let Some(node) = doc.ok().and_then(|d| d.as_mapping()?.get("x"))
                    && node.as_scalar().is_some_and(|n| n.as_string() == *s)
                {
                    return Box::new(node);
                }
            }
            Box::new(ScalarValue::with_style(s.clone(), style))
        }
        Value::Null => Box::new(ScalarValue::null()),
        other => Box::new(ScalarValue::parse(other.to_string())),
    }
}

fn as_key(segment: &Segment) -> Option<&str> {
    match segment {
        Segment::Key(key) => Some(key),
        _ => None,
    }
}

fn prefix(segments: &[Segment], len: usize) -> String {
    FieldPath {
        segments: segments[..len].to_vec(),
    }
    .to_string()
}

fn wrong(segments: &[Segment], expected: &'static str, found: &'static str) -> EditError {
    let at = if segments.is_empty() {
        "(the object)".to_owned()
    } else {
        prefix(segments, segments.len())
    };
    EditError::WrongType {
        at,
        expected,
        found,
    }
}

fn not_found(segments: &[Segment], depth: usize, missing: &[Segment]) -> EditError {
    let reason = match &missing[0] {
        Segment::Select { key, value } => format!("no item has {key}={value}"),
        Segment::Index(i) => format!("there is no item {i}"),
        Segment::Key(key) => format!("there is no key `{key}`"),
    };
    EditError::NotFound {
        at: prefix(segments, depth + 1),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    const TWO: &str = "\
# first
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
data:
  COUNT: \"1\"
  MODE: 'fast'
...
---
# second
apiVersion: apps/v1
kind: Deployment
metadata:
  name: b
spec:
  replicas: 2 # two
  template:
    spec:
      containers:
        - name: app
          image: app:1
          env:
            - {name: A, value: x}
...
";

    /// The location of document `document` of `text`, as the index gives it.
    fn locate(text: &str, document: usize) -> Location {
        let parsed = parse_text(Path::new("f.yaml"), text);
        let doc = parsed.documents.iter().find(|d| d.document == document);
        let span = doc.map_or(text.len()..text.len(), |d| d.span.clone());
        Location {
            file: PathBuf::from("f.yaml"),
            document,
            item: None,
            line: 1,
            span,
        }
    }

    fn edit(path: &str, op: EditOp) -> Edit {
        Edit {
            path: path.parse().unwrap(),
            op,
        }
    }

    fn changed_lines(old: &str, new: &str) -> Vec<String> {
        let diff = similar::TextDiff::from_lines(old, new);
        let changes = diff
            .iter_all_changes()
            .filter(|c| c.tag() != similar::ChangeTag::Equal);
        changes
            .map(|c| format!("{}{}", c.tag(), c.value().trim_end()))
            .collect()
    }

    #[test]
    fn a_plain_value_stays_plain_with_its_trailing_space_and_comment() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  image: a:1\t\n  cpu: 500m  \n  memory: \"1Gi\"   # q\r\n  other: x\n";
        let out = apply(
            text,
            &locate(text, 0),
            &[
                edit("data.image", EditOp::Set("a:2".into())),
                edit("data.cpu", EditOp::Set("750m".into())),
                edit("data.memory", EditOp::Set("2Gi".into())),
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            text.replace("a:1", "a:2")
                .replace("500m", "750m")
                .replace("1Gi", "2Gi")
        );
    }

    #[test]
    fn a_plain_value_that_starts_with_a_less_than_sign_stays_plain() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n    - name: app\n      image: <REGISTRY>/app:1.0 # set by CI\n";
        let out = apply(
            text,
            &locate(text, 0),
            &[edit(
                "spec.containers[0].image",
                EditOp::Set("<REGISTRY>/app:1.1".into()),
            )],
        )
        .unwrap();
        assert_eq!(out, text.replace("app:1.0", "app:1.1"));
        // A new value that starts with `<` is written plain too, and reads back the same.
        let out = apply(
            text,
            &locate(text, 0),
            &[edit(
                "spec.containers[0].name",
                EditOp::Set("<name>".into()),
            )],
        )
        .unwrap();
        assert!(out.contains("    - name: <name>\n"), "{out}");
    }

    #[test]
    fn separators_comments_and_document_ends_survive() {
        let out = apply(
            TWO,
            &locate(TWO, 1),
            &[edit("spec.replicas", EditOp::Set(3.into()))],
        )
        .unwrap();
        assert_eq!(
            changed_lines(TWO, &out),
            ["-  replicas: 2 # two", "+  replicas: 3 # two"]
        );
    }

    #[test]
    fn quoted_strings_stay_quoted_and_stay_strings() {
        let edits = [
            edit("data.COUNT", EditOp::Set(2.into())),
            edit("data.MODE", EditOp::Set("safe".into())),
            edit("data.NEW", EditOp::Set("true".into())),
        ];
        let out = apply(TWO, &locate(TWO, 0), &edits).unwrap();
        assert_eq!(
            changed_lines(TWO, &out),
            [
                "-  COUNT: \"1\"",
                "-  MODE: 'fast'",
                "+  COUNT: \"2\"",
                "+  MODE: 'safe'",
                "+  NEW: \"true\""
            ]
        );
    }

    #[test]
    fn an_appended_list_entry_follows_the_file_s_indentation_and_quoting() {
        let patch = || {
            [edit(
                "patches",
                EditOp::Append(serde_json::json!({"path": "p.yaml"})),
            )]
        };
        for (text, expected) in [
            // A new list, in a file whose lists are indented by two spaces.
            (
                "kind: Kustomization\nresources:\n  - ../base\n",
                "kind: Kustomization\nresources:\n  - ../base\npatches:\n  - path: p.yaml\n",
            ),
            // The same, in a file whose lists are not.
            (
                "kind: Kustomization\nresources:\n- ../base\n",
                "kind: Kustomization\nresources:\n- ../base\npatches:\n- path: p.yaml\n",
            ),
            (
                "resources:\n  - ../base\npatches:\n  - path: a.yaml\n",
                "resources:\n  - ../base\npatches:\n  - path: a.yaml\n  - path: p.yaml\n",
            ),
            // Quoted entries get a quoted one.
            (
                "resources:\n  - \"../base\"\npatches:\n  - path: \"a.yaml\"\n",
                "resources:\n  - \"../base\"\npatches:\n  - path: \"a.yaml\"\n  - path: \"p.yaml\"\n",
            ),
            (
                "patches:\n- path: 'a.yaml'\n",
                "patches:\n- path: 'a.yaml'\n- path: 'p.yaml'\n",
            ),
        ] {
            let out = apply(text, &locate(text, 0), &patch()).unwrap();
            assert_eq!(out, expected, "{text}");
        }
    }

    #[test]
    fn appends_to_flow_and_block_lists_and_removes() {
        let edits = [
            edit(
                "spec.template.spec.containers[name=app].env",
                EditOp::Append(serde_json::json!({"name": "B", "value": "y"})),
            ),
            edit(
                "spec.template.spec.containers[0].args",
                EditOp::Append("--verbose".into()),
            ),
            edit("spec.replicas", EditOp::Remove),
        ];
        let out = apply(TWO, &locate(TWO, 1), &edits).unwrap();
        let value: Value = serde_saphyr::from_multiple::<Value>(&out)
            .unwrap()
            .remove(1);
        let container = &value["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["env"][1],
            serde_json::json!({"name": "B", "value": "y"})
        );
        assert_eq!(container["args"], serde_json::json!(["--verbose"]));
        assert!(value["spec"].get("replicas").is_none());
        assert!(
            out.starts_with("# first\n") && out.ends_with("...\n"),
            "{out}"
        );
    }

    #[test]
    fn missing_items_and_wrong_types_are_named() {
        let err = apply(
            TWO,
            &locate(TWO, 1),
            &[edit(
                "spec.template.spec.containers[name=web].image",
                EditOp::Set("x".into()),
            )],
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "`spec.template.spec.containers[name=web]` does not exist: no item has name=web"
        );
        let err = apply(
            TWO,
            &locate(TWO, 1),
            &[edit("spec.replicas.value", EditOp::Set(1.into()))],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`spec.replicas` is a scalar, not a mapping"
        );
        let err = apply(TWO, &locate(TWO, 1), &[edit("spec.paused", EditOp::Remove)]).unwrap_err();
        assert!(matches!(err, EditError::NotFound { .. }), "{err}");
        let err = apply(TWO, &locate(TWO, 5), &[edit("a", EditOp::Remove)]).unwrap_err();
        assert!(matches!(err, EditError::MissingDocument(6)), "{err}");
    }

    #[test]
    fn aliases_are_not_edited_through() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: &l {app: a}\n  annotations: *l\n";
        let err = apply(
            text,
            &locate(text, 0),
            &[edit("metadata.annotations.app", EditOp::Set("b".into()))],
        )
        .unwrap_err();
        assert!(matches!(err, EditError::Alias { .. }), "{err}");
    }

    #[test]
    fn list_items_are_edited_in_place() {
        let text = "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: a}\n    data: {k: v}\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: b}\n    data: {k: v}\n";
        let location = Location {
            item: Some(1),
            ..locate(text, 0)
        };
        let out = apply(text, &location, &[edit("data.k", EditOp::Set("w".into()))]).unwrap();
        assert_eq!(
            changed_lines(text, &out),
            ["-    data: {k: v}", "+    data: {k: w}"]
        );
        assert!(
            out.contains("metadata: {name: b}\n    data: {k: w}"),
            "{out}"
        );
    }
}
