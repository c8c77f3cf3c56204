//! Unified diffs of edited files: `a/` and `b/` headers, three lines of context, coloured for a
//! terminal or plain. Pure.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use similar::{ChangeTag, TextDiff};

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

    /// The unified diff, plain.
    pub fn unified(&self) -> String {
        unified(&self.path, &self.old, &self.new, false)
    }
}

/// The unified diff of `old` → `new` for `path`, with ANSI colours when `color` is set. Empty when
/// nothing changed.
pub fn unified(path: &Path, old: &str, new: &str, color: bool) -> String {
    if old == new {
        return String::new();
    }
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

/// Concatenated diffs of several files.
pub fn render(changes: &[FileChange], color: bool) -> String {
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
