//! Parsing one YAML file into its documents: where each starts (line, byte span), the values
//! they hold, and the items of `List` documents. yaml-edit gives the lossless document
//! boundaries; serde-saphyr parses each document strictly (syntax, tabs, duplicate keys) and
//! resolves anchors. Pure: takes the file's bytes, performs no I/O.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rowan::ast::AstNode;
use serde_json::Value;
use yaml_edit::YamlFile;

use super::Error;
use super::lines::{LineIndex, line_of_byte};

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
    let cst = match YamlFile::from_str(text) {
        Ok(cst) => cst,
        Err(err) => {
            // yaml-edit refuses only unclosed flow collections and strings; serde-saphyr says
            // where, so prefer its message.
            let error =
                strict_error(file, text).unwrap_or_else(|| syntax(file, 1, 1, err.to_string()));
            parsed.errors.push(error);
            return parsed;
        }
    };
    for (document, doc) in cst.documents().enumerate() {
        let range = doc.byte_range();
        let (start, end) = (range.start as usize, range.end as usize);
        let slice = &text[start..end];
        let value = match serde_saphyr::from_multiple::<Value>(slice) {
            Ok(mut values) if values.len() == 1 => values.pop().unwrap_or_default(),
            Ok(values) if values.is_empty() => continue,
            Ok(_) => {
                let line = lines.line(start);
                parsed.errors.push(syntax(
                    file,
                    line,
                    1,
                    "a document boundary was not recognised".into(),
                ));
                continue;
            }
            Err(err) => {
                parsed
                    .errors
                    .push(saphyr_error(file, &err, lines.line(start) - 1));
                continue;
            }
        };
        let root = doc.as_mapping().map(|m| node_span(m.syntax()));
        let root = root
            .or_else(|| doc.as_sequence().map(|s| node_span(s.syntax())))
            .unwrap_or(start..end);
        let items = list_items(&doc, &lines);
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

fn node_span(node: &rowan::SyntaxNode<yaml_edit::Lang>) -> Range<usize> {
    let range = node.text_range();
    usize::from(range.start())..usize::from(range.end())
}

fn list_items(doc: &yaml_edit::Document, lines: &LineIndex) -> Vec<(usize, Range<usize>)> {
    let Some(items) = doc.as_mapping().and_then(|m| m.get_sequence("items")) else {
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

/// Re-parses the whole text strictly to find where yaml-edit's refusal comes from.
fn strict_error(file: &Path, text: &str) -> Option<Error> {
    serde_saphyr::from_multiple::<serde::de::IgnoredAny>(text)
        .err()
        .map(|err| saphyr_error(file, &err, 0))
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
    fn anchors_resolve_and_duplicates_fail() {
        let parsed = parse("a: &x {n: 1}\nb: *x\n");
        assert_eq!(parsed.documents[0].value["b"]["n"], 1);
        assert_eq!(parse("a: 1\na: 2\n").errors.len(), 1);
    }
}
