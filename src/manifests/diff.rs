//! Unified diffs of edited files: `a/` and `b/` headers, three lines of context, coloured for a
//! terminal or plain. Secret values are masked as kubectl diff masks them. Pure.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use similar::{ChangeTag, TextDiff};
use yaml_edit::{YamlFile, YamlNode};

/// One file before and after an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The file, relative to the repository root.
    pub path: PathBuf,
    /// Its text before.
    pub old: String,
    /// Its text after.
    pub new: String,
}

impl FileChange {
    /// Whether the edit changed nothing.
    pub fn is_empty(&self) -> bool {
        self.old == self.new
    }

    /// The unified diff, plain, Secret values masked.
    pub fn unified(&self) -> String {
        unified(&self.path, &self.old, &self.new, false)
    }
}

/// The unified diff of `old` → `new` for `path`, with ANSI colours when `color` is set, and the
/// values of every Secret's `data` and `stringData` masked. Empty when nothing changed.
pub fn unified(path: &Path, old: &str, new: &str, color: bool) -> String {
    if old == new {
        return String::new();
    }
    let (old, new) = mask_secrets(old, new);
    let (old, new) = (old.as_str(), new.as_str());
    let name = path.to_string_lossy().replace('\\', "/");
    let diff = TextDiff::from_lines(old, new);
    let mut out = String::new();
    let (bold, red, green, cyan, reset) = match color {
        true => ("\x1b[1m", "\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[0m"),
        false => ("", "", "", "", ""),
    };
    let _ = writeln!(out, "{bold}--- a/{name}{reset}");
    let _ = writeln!(out, "{bold}+++ b/{name}{reset}");
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        let _ = writeln!(out, "{cyan}{}{reset}", hunk.header());
        for change in hunk.iter_changes() {
            let (sign, colour) = match change.tag() {
                ChangeTag::Delete => ('-', red),
                ChangeTag::Insert => ('+', green),
                ChangeTag::Equal => (' ', ""),
            };
            let line = change.value();
            let body = line.strip_suffix('\n').unwrap_or(line);
            let reset = if colour.is_empty() { "" } else { reset };
            let _ = writeln!(out, "{colour}{sign}{body}{reset}");
            if change.missing_newline() {
                out.push_str("\\ No newline at end of file\n");
            }
        }
    }
    out
}

/// `old` and `new` with every value under a Secret's `data` or `stringData` replaced, as kubectl
/// diff does: `***` where the value is the same on both sides, `*** (before)` and `*** (after)`
/// where it changed. Documents are paired by position.
pub fn mask_secrets(old: &str, new: &str) -> (String, String) {
    let (old_values, new_values) = (secret_values(old), secret_values(new));
    let mask = |text: &str, mine: &[SecretValue], theirs: &[SecretValue], changed: &str| {
        let theirs: HashMap<(usize, &str, &str), &str> = theirs
            .iter()
            .map(|v| ((v.document, v.field, v.key.as_str()), v.text.as_str()))
            .collect();
        let mut out = text.to_owned();
        for value in mine.iter().rev() {
            let same = theirs.get(&(value.document, value.field, value.key.as_str()))
                == Some(&value.text.as_str());
            let replacement = if same {
                "***".to_owned()
            } else {
                format!("*** ({changed})")
            };
            out.replace_range(value.range.clone(), &replacement);
        }
        out
    };
    (
        mask(old, &old_values, &new_values, "before"),
        mask(new, &new_values, &old_values, "after"),
    )
}

/// One value of a Secret's `data` or `stringData`.
struct SecretValue {
    document: usize,
    field: &'static str,
    key: String,
    text: String,
    range: Range<usize>,
}

/// Every Secret value in `text`, in text order.
fn secret_values(text: &str) -> Vec<SecretValue> {
    if !text.contains("Secret") {
        return vec![];
    }
    let (file, _) = YamlFile::from_str_relaxed(text);
    let mut values = Vec::new();
    for (document, doc) in file.documents().enumerate() {
        let Some(root) = doc.as_mapping() else {
            continue;
        };
        let kind = root
            .get("kind")
            .and_then(|k| k.as_scalar().map(|s| s.as_string()));
        if kind.as_deref() != Some("Secret") {
            continue;
        }
        for field in ["data", "stringData"] {
            let Some(YamlNode::Mapping(map)) = root.get(field) else {
                continue;
            };
            for entry in map.entries() {
                let (Some(key), Some(value)) = (entry.key_node(), entry.value_node()) else {
                    continue;
                };
                let key = key.as_scalar().map(|s| s.as_string()).unwrap_or_default();
                let range = value.byte_range();
                // A block scalar's range holds its final line break: keep that outside the mask.
                let start = range.start as usize;
                let range = start..start + text[start..range.end as usize].trim_end().len();
                let text = text[range.clone()].to_owned();
                values.push(SecretValue {
                    document,
                    field,
                    key,
                    text,
                    range,
                });
            }
        }
    }
    values.sort_by_key(|v| v.range.start);
    values
}

/// Concatenated diffs of several files.
pub fn patch(changes: &[FileChange], color: bool) -> String {
    changes
        .iter()
        .map(|c| unified(&c.path, &c.old, &c.new, color))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_with_headers_and_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        let diff = unified(Path::new("x/y.yaml"), old, new, false);
        assert_eq!(
            diff,
            "--- a/x/y.yaml\n+++ b/x/y.yaml\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
        assert_eq!(unified(Path::new("x"), old, old, false), "");
    }

    #[test]
    fn secret_values_are_masked() {
        let old = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: plain}\n---\n\
                   apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  user: YWRtaW4=\n  password: c2VjcmV0\n\
                   stringData:\n  token: |\n    abc\n    def\n";
        let new = old
            .replace("c2VjcmV0", "bmV3c2VjcmV0")
            .replace("def", "xyz")
            .replace("plain", "visible");
        let diff = unified(Path::new("s.yaml"), old, &new, false);
        for secret in ["YWRtaW4=", "c2VjcmV0", "bmV3c2VjcmV0", "abc", "def", "xyz"] {
            assert!(!diff.contains(secret), "{secret} in {diff}");
        }
        assert!(
            diff.contains("-  password: *** (before)\n+  password: *** (after)\n"),
            "{diff}"
        );
        assert!(
            diff.contains("-  token: *** (before)\n+  token: *** (after)\n"),
            "{diff}"
        );
        assert!(
            diff.contains("-data: {a: plain}\n+data: {a: visible}\n"),
            "{diff}"
        );
        assert!(diff.contains("   user: ***\n"), "{diff}");
    }

    #[test]
    fn colours_only_when_asked() {
        let diff = unified(Path::new("f"), "a\n", "b\n", true);
        assert!(diff.contains("\x1b[31m-a\x1b[0m") && diff.contains("\x1b[32m+b\x1b[0m"));
        let diff = unified(Path::new("f"), "a", "b", false);
        assert!(
            diff.contains("-a\n\\ No newline at end of file\n+b\n"),
            "{diff}"
        );
    }
}
