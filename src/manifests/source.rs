//! Parsing one YAML file into its documents: where each starts (line, byte span), the values
//! they hold, and the items of `List` documents. Document markers are found by a line scan (YAML
//! forbids them inside scalars); serde-saphyr parses each document strictly (syntax, tabs,
//! duplicate keys) and resolves anchors, so one broken document does not hide the others.
//! Pure: takes the file's bytes, performs no I/O.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use yaml_edit::YamlFile;

use super::Error;
use super::lines::{LineIndex, line_of_byte};

/// Where a declaration sits in the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// File, relative to the repository root, with `/` separators.
    pub file: PathBuf,
    /// 0-based document within the file, empty documents included.
    pub document: usize,
    /// 0-based item within a `kind: List` document.
    pub item: Option<usize>,
    /// 1-based line where the object starts.
    pub line: usize,
    /// Byte span of the object in the file.
    pub span: Range<usize>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One parsed YAML document of a file.
#[derive(Debug, Clone)]
pub struct ParsedDocument {
    /// 0-based position among the file's documents, empty ones included.
    pub document: usize,
    /// 1-based line of the document's first node.
    pub line: usize,
    /// Byte span of the document's root node.
    pub span: Range<usize>,
    /// The document's value, anchors and aliases resolved.
    pub value: Value,
    /// Line and span of each item of a `kind: List` document, in order.
    pub items: Vec<(usize, Range<usize>)>,
}

/// The outcome of parsing one file: its documents, and the documents that failed.
#[derive(Debug, Default)]
pub struct ParsedFile {
    /// Every non-empty document that parsed.
    pub documents: Vec<ParsedDocument>,
    /// One error per document that did not parse; the others are still in `documents`.
    pub errors: Vec<Error>,
}

/// Parses the bytes of `file` (a path used only in messages).
pub fn parse_file(file: &Path, bytes: &[u8]) -> ParsedFile {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let line = line_of_byte(bytes, err.valid_up_to());
            let error = Error::NotUtf8 {
                file: file.to_owned(),
                line,
            };
            return ParsedFile {
                documents: vec![],
                errors: vec![error],
            };
        }
    };
    parse_text(file, text)
}

/// Parses `text`, the contents of `file`.
pub fn parse_text(file: &Path, text: &str) -> ParsedFile {
    let lines = LineIndex::new(text);
    let mut parsed = ParsedFile::default();
    let mut cst: Option<YamlFile> = None;
    let segments = split_documents(text);
    // One parse of the whole stream is the common case; a stream with an error (or one whose
    // documents the parser counts differently) is parsed a document at a time, so that the
    // error names its document and the others still load.
    let with_root = segments.iter().filter(|s| s.root.is_some()).count();
    let mut whole = match serde_saphyr::from_multiple_with_options::<Tight>(text, options()) {
        Ok(values) if values.len() == with_root => Some(values.into_iter().map(|t| t.0)),
        _ => None,
    };
    for (document, segment) in segments.into_iter().enumerate() {
        let Some(root) = segment.root.clone() else {
            continue;
        };
        let value = match whole.as_mut().and_then(Iterator::next) {
            Some(value) => value,
            None => match parse_segment(file, text, &segment, &lines) {
                Ok(Some(value)) => value,
                Ok(None) => continue,
                Err(error) => {
                    parsed.errors.push(error);
                    continue;
                }
            },
        };
        let items = match value.get("kind").and_then(Value::as_str) {
            Some("List") => {
                let cst = cst.get_or_insert_with(|| YamlFile::from_str_relaxed(text).0);
                list_items(cst, root.start, &lines)
            }
            _ => vec![],
        };
        parsed.documents.push(ParsedDocument {
            document,
            line: lines.line(root.start),
            span: root,
            value,
            items,
        });
    }
    parsed
}

/// A value read at its size: each mapping made from all its entries at once, so that it holds
/// just them. Grown entry by entry, as [`Value`] reads one, a mapping takes up to twice its
/// room, and an object is many small mappings: a repository's index takes a third less this
/// way. Everything else reads as [`Value`] reads it.
struct Tight(Value);

impl<'de> serde::Deserialize<'de> for Tight {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TightVisitor).map(Tight)
    }
}

struct TightVisitor;

/// Hands a scalar to [`Value`]'s own reading of it.
macro_rules! as_value {
    ($($visit:ident($type:ty) => $with:ident),* $(,)?) => {$(
        fn $visit<E: serde::de::Error>(self, scalar: $type) -> Result<Value, E> {
            use serde::de::{Deserialize, IntoDeserializer};
            let deserializer: serde::de::value::$with<E> = scalar.into_deserializer();
            Value::deserialize(deserializer)
        }
    )*};
}

impl<'de> serde::de::Visitor<'de> for TightVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("any YAML value")
    }

    as_value! {
        visit_bool(bool) => BoolDeserializer,
        visit_i64(i64) => I64Deserializer,
        visit_i128(i128) => I128Deserializer,
        visit_u64(u64) => U64Deserializer,
        visit_u128(u128) => U128Deserializer,
        visit_f64(f64) => F64Deserializer,
        visit_string(String) => StringDeserializer,
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Value, E> {
        Ok(Value::String(text.to_owned()))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, inner: D) -> Result<Value, D::Error> {
        <Tight as serde::Deserialize>::deserialize(inner).map(|t| t.0)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Tight(item)) = seq.next_element()? {
            items.push(item);
        }
        items.shrink_to_fit();
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<(String, Value)> = Vec::new();
        while let Some((key, Tight(value))) = map.next_entry::<String, Tight>()? {
            entries.push((key, value));
        }
        Ok(Value::Object(entries.into_iter().collect()))
    }
}

/// Parser options for the user's own files. serde-saphyr's size budget (events, nodes and
/// documents counted one by one) costs a third of the parse and refuses a `kubectl get pods -A -o
/// yaml` of a large cluster, so it is off; its alias limits, which stop expansion bombs, and its
/// recursion limit (256 levels), which keeps the stack safe, stay on.
fn options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.budget = None;
    options
}

/// The value of one document parsed on its own; `None` when it is empty.
fn parse_segment(
    file: &Path,
    text: &str,
    segment: &Segment,
    lines: &LineIndex,
) -> Result<Option<Value>, Error> {
    let slice = &text[segment.range.clone()];
    let line_offset = lines.line(segment.range.start) - 1;
    match serde_saphyr::from_multiple_with_options::<Tight>(slice, options()) {
        Ok(mut values) if values.len() <= 1 => Ok(values.pop().map(|t| t.0)),
        Ok(_) => {
            let line = segment
                .root
                .as_ref()
                .map_or(line_offset + 1, |r| lines.line(r.start));
            Err(syntax(
                file,
                line,
                1,
                "a document boundary was not recognised".to_owned(),
            ))
        }
        Err(err) => Err(saphyr_error(file, &err, line_offset)),
    }
}

/// One document of a stream: its text (markers included) and its root node's span, `None` when
/// it holds only comments and markers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    range: Range<usize>,
    root: Option<Range<usize>>,
}

/// Splits a YAML stream into documents. `---` or `...` at the start of a line, followed by
/// white space or the end of the line, is a document marker wherever it stands: YAML forbids it
/// inside any scalar, so no parse is needed to find the boundaries.
fn split_documents(text: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut start = 0;
    let mut marker = false;
    let mut root: Option<Range<usize>> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let (line_start, line_end) = (offset, offset + line.len());
        offset = line_end;
        let body = line.trim_end_matches(['\n', '\r']);
        let body = body.strip_prefix('\u{feff}').unwrap_or(body);
        if is_marker(body, "---") {
            if marker || root.is_some() {
                segments.push(Segment {
                    range: start..line_start,
                    root: root.take(),
                });
                start = line_start;
            }
            marker = true;
            let rest = body[3..].trim_start();
            if !rest.is_empty() && !rest.starts_with('#') {
                let content = line_start
                    + (line.len() - line.trim_start_matches('\u{feff}').len())
                    + body.len()
                    - rest.len();
                root = Some(content..line_start + body.len());
            }
            continue;
        }
        if is_marker(body, "...") {
            segments.push(Segment {
                range: start..line_end,
                root: root.take(),
            });
            (start, marker) = (line_end, false);
            continue;
        }
        let content = body.trim_start();
        let directive = content.starts_with('%') && !marker && root.is_none();
        if content.is_empty() || content.starts_with('#') || directive {
            continue;
        }
        let indent = line.len() - line.trim_start_matches(['\u{feff}', ' ', '\t']).len();
        let end = line_start + line.trim_end_matches(['\n', '\r']).len();
        root = Some(root.map_or(line_start + indent, |r| r.start)..end);
    }
    if start < text.len() || root.is_some() {
        segments.push(Segment {
            range: start..text.len(),
            root,
        });
    }
    segments
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// Line and span of each item of the `items` sequence of the document whose root starts at
/// `root_start`.
fn list_items(cst: &YamlFile, root_start: usize, lines: &LineIndex) -> Vec<(usize, Range<usize>)> {
    let doc = cst.documents().find(|d| {
        let range = d.byte_range();
        (range.start as usize) <= root_start && root_start < range.end as usize
    });
    let Some(items) = doc
        .and_then(|d| d.as_mapping())
        .and_then(|m| m.get_sequence("items"))
    else {
        return vec![];
    };
    items
        .values()
        .map(|item| {
            let range = item.byte_range();
            let span = range.start as usize..range.end as usize;
            (lines.line(span.start), span)
        })
        .collect()
}

fn saphyr_error(file: &Path, err: &serde_saphyr::Error, line_offset: usize) -> Error {
    let (line, column) = err
        .location()
        .map(|l| (l.line() as usize, l.column() as usize))
        .unwrap_or((1, 1));
    syntax(
        file,
        line + line_offset,
        column,
        first_line(&err.to_string()),
    )
}

fn syntax(file: &Path, line: usize, column: usize, message: String) -> Error {
    Error::Syntax {
        file: PathBuf::from(file),
        line,
        column,
        message,
    }
}

/// serde-saphyr's message without its source snippet, and without the location it repeats.
fn first_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first.split_once(": ") {
        Some((prefix, rest)) if prefix.starts_with("line ") => rest.to_owned(),
        _ => first.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ParsedFile {
        parse_text(Path::new("f.yaml"), text)
    }

    #[test]
    fn documents_have_lines_and_spans() {
        let text = "# header\n---\napiVersion: v1\nkind: A\n---\n---\n# c\nkind: B\n";
        let parsed = parse(text);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let docs = &parsed.documents;
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[0].document, docs[0].line), (0, 3));
        assert!(text[docs[0].span.clone()].starts_with("apiVersion: v1"));
        assert_eq!((docs[1].document, docs[1].line), (2, 8));
        assert_eq!(docs[1].value["kind"], "B");
    }

    #[test]
    fn a_bad_document_does_not_hide_the_others() {
        let parsed = parse("a: 1\n---\nb: 1\n  c: 2\n---\nd: 4\n");
        assert_eq!(parsed.documents.len(), 2);
        let err = parsed.errors[0].to_string();
        assert!(err.starts_with("f.yaml:4:"), "{err}");
    }

    #[test]
    fn non_utf8_names_the_line() {
        let parsed = parse_file(Path::new("f.yaml"), b"a: 1\nb: \xff\n");
        assert_eq!(
            parsed.errors[0]
                .to_string()
                .split(':')
                .take(2)
                .collect::<Vec<_>>(),
            ["f.yaml", "2"]
        );
    }

    #[test]
    fn list_items_have_their_own_lines() {
        let parsed = parse("apiVersion: v1\nkind: List\nitems:\n- kind: A\n  x: 1\n- kind: B\n");
        let items = &parsed.documents[0].items;
        assert_eq!(items.iter().map(|i| i.0).collect::<Vec<_>>(), [4, 6]);
    }

    #[test]
    fn splits_where_markers_stand() {
        let text = "%YAML 1.2\n---\na: 1\n...\n---\n---\n# only a comment\n---\nc: |\n  ---\n  not a marker\n--- {b: 2}\n---\nd: [1,\n";
        let roots: Vec<Option<&str>> = split_documents(text)
            .iter()
            .map(|s| s.root.clone().map(|r| &text[r]))
            .collect();
        let block = "c: |\n  ---\n  not a marker";
        assert_eq!(
            roots,
            [
                Some("a: 1"),
                None,
                None,
                Some(block),
                Some("{b: 2}"),
                Some("d: [1,")
            ]
        );
        let parsed = parse(text);
        let lines: Vec<usize> = parsed.documents.iter().map(|d| d.line).collect();
        assert_eq!(lines, [3, 9, 12]);
        assert_eq!(parsed.documents[1].value["c"], "---\nnot a marker\n");
        let errors: Vec<String> = parsed.errors.iter().map(ToString::to_string).collect();
        assert!(
            errors.len() == 1 && errors[0].starts_with("f.yaml:14:"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_object() {
        let parsed =
            parse("\u{feff}apiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: a\r\n");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(
            (
                parsed.documents[0].line,
                parsed.documents[0].value["kind"].as_str()
            ),
            (1, Some("ConfigMap"))
        );
    }

    #[test]
    fn a_list_of_a_hundred_thousand_items_parses() {
        let mut text = String::from("apiVersion: v1\nkind: List\nitems:\n");
        for i in 0..100_000 {
            text.push_str(&format!(
                "- {{kind: Pod, metadata: {{name: p{i}, labels: {{a: b, c: d}}}}}}\n"
            ));
        }
        let parsed = parse(&text);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors.first());
        assert_eq!(
            parsed.documents[0].value["items"].as_array().map(Vec::len),
            Some(100_000)
        );
    }

    #[test]
    fn nesting_past_the_recursion_limit_is_refused_not_a_crash() {
        let deep = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse(&deep).errors.len(), 1);
    }

    #[test]
    fn alias_bombs_are_still_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        assert_eq!(parse(&text).errors.len(), 1);
    }

    #[test]
    fn anchors_resolve_and_duplicates_fail() {
        let parsed = parse("a: &x {n: 1}\nb: *x\n");
        assert_eq!(parsed.documents[0].value["b"]["n"], 1);
        assert_eq!(parse("a: 1\na: 2\n").errors.len(), 1);
    }
}
