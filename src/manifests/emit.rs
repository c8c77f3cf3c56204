//! Writes new YAML for values inserted by an edit: block style, two-space indentation, and
//! strings quoted only where a YAML 1.1 or 1.2 reader would take them for something else
//! (Kubernetes tools read YAML 1.1: `on`, `yes`, `0755` are not strings there). Pure.

use serde_json::Value;

/// `value` as a block YAML document ending in a newline.
pub fn block(value: &Value) -> String {
    let mut out = String::new();
    write_node(&mut out, value, 0);
    out
}

fn write_node(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                out.push_str(&pad);
                out.push_str(&scalar(&Value::String(key.clone())));
                write_child(out, value, indent);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                match item {
                    Value::Object(map) if !map.is_empty() => {
                        let mut nested = String::new();
                        write_node(&mut nested, item, indent + 2);
                        out.push(' ');
                        out.push_str(&nested[indent + 2..]);
                    }
                    _ => write_child(out, item, indent),
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

/// After `key` or `-`: an inline scalar, or a nested block on the following lines.
fn write_child(out: &mut String, value: &Value, indent: usize) {
    let nested = matches!(value, Value::Object(m) if !m.is_empty())
        || matches!(value, Value::Array(a) if !a.is_empty());
    if nested {
        out.push_str(if out.ends_with('-') { "\n" } else { ":\n" });
        write_node(out, value, indent + 2);
    } else {
        out.push_str(if out.ends_with('-') { " " } else { ": " });
        out.push_str(&scalar(value));
        out.push('\n');
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
    let numeric_looking = s.chars().any(|c| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() || "+-._:xXoO".contains(c));
    WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
        || numeric_looking
        || "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || first.is_whitespace()
        || s.ends_with(char::is_whitespace)
        || s.ends_with(':')
        || s.contains(": ")
        || s.contains(" #")
        || s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
