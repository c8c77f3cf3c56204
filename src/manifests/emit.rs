//! Writes new YAML for values inserted by an edit: block style, two-space indentation, and
//! strings quoted only where a YAML 1.1 or 1.2 reader would take them for something else
//! (Kubernetes tools read YAML 1.1: `on`, `yes`, `0755` are not strings there). Pure.

use serde_json::Value;

/// `value` as a block YAML document ending in a newline.
pub fn block(value: &Value) -> String {
    block_styled(value, Style::default())
}

/// How a file lays out what is written into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Whether a list under a key is indented past the key (`key:\n  - a`), or written at the
    /// key's column (`key:\n- a`, as kubectl and kustomize write them).
    pub indent_sequences: bool,
    /// The quote every string value is written in (`"` or `'`), as the list it joins quotes
    /// them; `None` quotes only what needs it.
    pub quote: Option<char>,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            indent_sequences: true,
            quote: None,
        }
    }
}

/// `value` as a block YAML document in `style`, ending in a newline.
pub fn block_styled(value: &Value, style: Style) -> String {
    let mut out = String::new();
    write_node(&mut out, value, 0, style);
    out
}

fn write_node(out: &mut String, value: &Value, indent: usize, style: Style) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                out.push_str(&pad);
                out.push_str(&scalar(&Value::String(key.clone())));
                write_child(out, value, indent, style);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                match item {
                    Value::Object(map) if !map.is_empty() => {
                        let mut nested = String::new();
                        write_node(&mut nested, item, indent + 2, style);
                        out.push(' ');
                        out.push_str(&nested[indent + 2..]);
                    }
                    _ => write_child(out, item, indent, style),
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&styled(other, style));
            out.push('\n');
        }
    }
}

/// After `key` or `-`: an inline scalar, or a nested block on the following lines.
fn write_child(out: &mut String, value: &Value, indent: usize, style: Style) {
    let nested = matches!(value, Value::Object(m) if !m.is_empty())
        || matches!(value, Value::Array(a) if !a.is_empty());
    if nested {
        let after_key = !out.ends_with('-');
        out.push_str(if after_key { ":\n" } else { "\n" });
        let flush = after_key && value.is_array() && !style.indent_sequences;
        write_node(out, value, if flush { indent } else { indent + 2 }, style);
    } else if let Some(text) = value.as_str().filter(|s| literal(s)) {
        // A text of several lines (an inline patch) as a literal block, one line per line.
        out.push_str(if out.ends_with('-') { " |\n" } else { ": |\n" });
        let pad = " ".repeat(indent + 2);
        for line in text.lines() {
            if !line.is_empty() {
                out.push_str(&pad);
                out.push_str(line);
            }
            out.push('\n');
        }
    } else {
        out.push_str(if out.ends_with('-') { " " } else { ": " });
        out.push_str(&styled(value, style));
        out.push('\n');
    }
}

/// Whether `text` reads back the same from a literal block (`|`): several lines ending in one
/// newline, the first not indented, none with trailing blanks or characters a block cannot hold.
fn literal(text: &str) -> bool {
    let body = text.strip_suffix('\n').unwrap_or("");
    !body.is_empty()
        && body.contains('\n')
        && !body.ends_with('\n')
        && !body.starts_with([' ', '\t'])
        && !body.lines().any(|l| l.ends_with([' ', '\t']))
        && !text.chars().any(|c| c.is_control() && c != '\n')
}

/// A scalar value in `style`'s quote, when it has one and the value is a string.
fn styled(value: &Value, style: Style) -> String {
    match (value, style.quote) {
        (Value::String(s), Some('\'')) if !s.contains(['\n', '\\']) => {
            format!("'{}'", s.replace('\'', "''"))
        }
        (Value::String(s), Some(_)) => Value::String(s.clone()).to_string(),
        _ => scalar(value),
    }
}

/// One scalar, plain where that reads back as the same string.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) if needs_quotes(s) => Value::String(s.clone()).to_string(),
        Value::String(s) => s.clone(),
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
        other => other.to_string(),
    }
}

/// Whether a string must be quoted to read back as a string.
pub fn needs_quotes(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", "-.inf", "+.inf",
        ".nan",
    ];
    let Some(first) = s.chars().next() else {
        return true;
    };
    // YAML 1.1 readers take `2026-11-26` (and what follows it) for a timestamp.
    let date_like =
        s.len() >= 8 && s.as_bytes()[..4].iter().all(u8::is_ascii_digit) && s.as_bytes()[4] == b'-';
    WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
        || is_number_like(s)
        || date_like
        || "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || first.is_whitespace()
        || s.ends_with(char::is_whitespace)
        || s.ends_with(':')
        || s.contains(": ")
        || s.contains(" #")
        || s.chars().any(char::is_control)
}

/// Whether a YAML 1.1 or 1.2 reader could take `s` for a number: decimal integers and floats,
/// `0x`/`0o`/`0b` and leading-zero octals, and YAML 1.1's sexagesimal `1:30`, with `_` digit
/// separators and a sign. `a:2` and `1.2.3` are strings.
fn is_number_like(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits =
        |t: &str, radix: u32| !t.is_empty() && t.chars().all(|c| c == '_' || c.is_digit(radix));
    if let Some(rest) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        return digits(rest, 16);
    }
    if let Some(rest) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        return digits(rest, 8);
    }
    if let Some(rest) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        return digits(rest, 2);
    }
    if body.contains(':') {
        // Sexagesimal: 190:20:30 or 1:30.5.
        let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
        let mut parts = whole.split(':');
        let first = parts.next().unwrap_or_default();
        return digits(first, 10)
            && parts.all(|p| digits(p, 10) && p.len() <= 2)
            && (fraction.is_empty() || digits(fraction, 10));
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e), 10));
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let has_digit = mantissa.chars().any(|c| c.is_ascii_digit());
    has_digit
        && exponent_ok
        && (whole.is_empty() || digits(whole, 10))
        && (fraction.is_empty() || digits(fraction, 10))
        && mantissa.matches('.').count() <= 1
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_told_from_strings_that_look_like_them() {
        for number in [
            "1",
            "-2",
            "+3.5",
            "1_000",
            "0x1F",
            "0o17",
            "0b101",
            "1e3",
            "2.5E-3",
            ".5",
            "1:30",
            "190:20:30.15",
            "017",
        ] {
            assert!(super::is_number_like(number), "{number}");
        }
        for string in [
            "a:2", "1.2.3", "500m", "1Gi", "v1.0", "1:2:345", "0x", "e3", "1e",
        ] {
            assert!(!super::is_number_like(string), "{string}");
            assert!(!super::needs_quotes(string), "{string} is a plain string");
        }
        assert!(super::needs_quotes("2026-11-26"), "a YAML 1.1 timestamp");
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn writes_in_the_file_s_layout() {
        let value =
            json!({"patches": [{"path": "p.yaml", "target": {"kind": "Deployment"}}], "count": 1});
        let flush = Style {
            indent_sequences: false,
            quote: Some('"'),
        };
        assert_eq!(
            block_styled(&value, flush),
            "patches:\n- path: \"p.yaml\"\n  target:\n    kind: \"Deployment\"\ncount: 1\n"
        );
        let single = Style {
            indent_sequences: true,
            quote: Some('\''),
        };
        assert_eq!(
            block_styled(&json!({"a": ["it's"]}), single),
            "a:\n  - 'it''s'\n"
        );
        for style in [flush, single, Style::default()] {
            let text = block_styled(&value, style);
            assert_eq!(
                serde_saphyr::from_str::<Value>(&text).unwrap(),
                value,
                "{text}"
            );
        }
    }

    #[test]
    fn a_text_of_several_lines_is_a_literal_block() {
        let patch = "kind: Deployment\nspec:\n  replicas: 2\n";
        let value = json!({"patches": [{"patch": patch, "target": {"kind": "Deployment"}}],
            "one": "a\nb", "blank": "a\n\nb\n", "trailing": "a \nb\n"});
        let text = block(&value);
        assert!(
            text.contains(
                "  - patch: |\n      kind: Deployment\n      spec:\n        replicas: 2\n    target:\n"
            ),
            "{text}"
        );
        assert!(text.contains("blank: |\n  a\n\n  b\n"), "{text}");
        assert!(
            text.contains("one: \"a\\nb\"\n"),
            "no final newline: quoted\n{text}"
        );
        assert!(text.contains("trailing: \"a \\nb\\n\"\n"), "{text}");
        assert_eq!(
            serde_saphyr::from_str::<Value>(&text).unwrap(),
            value,
            "{text}"
        );
    }

    #[test]
    fn writes_block_yaml_that_reads_back() {
        let value = json!({
            "limits": {"memory": "512Mi", "cpu": "1"},
            "env": [{"name": "A", "value": "on"}, "x", []],
            "empty": {},
        });
        let text = block(&value);
        let back: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back, value, "{text}");
        assert!(text.contains("cpu: \"1\"\n"), "{text}");
        assert!(text.contains("- name: A\n    value: \"on\"\n"), "{text}");
    }

    #[test]
    fn quotes_only_what_needs_it() {
        for s in [
            "",
            "3",
            "1.5",
            "0755",
            "true",
            "No",
            "~",
            "a: b",
            "#x",
            "-",
            " x",
            "2024-01-01",
            "1e3",
        ] {
            assert!(needs_quotes(s), "{s:?}");
        }
        for s in [
            "256Mi",
            "100m",
            "nginx:1.25",
            "api",
            "reg/api:1.0",
            "deadbeef",
            "a-b",
        ] {
            assert!(!needs_quotes(s), "{s:?}");
        }
    }
}
