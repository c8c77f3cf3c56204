//! Properties over generated inputs (proptest): an edit changes only the lines that carry it,
//! the index reads back exactly the value set and nothing else, and a Secret's values never
//! reach a diff or a log, whatever they hold and however they are written.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use remediator::manifests::edit::{Edit, apply};
use remediator::manifests::path::{FieldPath, scalar_text};
use remediator::manifests::{RepoIndex, parse_text};
use serde_json::Value;

const DEPLOYMENT: &str = include_str!("../examples/repo/apps/api/deployment.yaml");

/// Paths into the example's api Deployment: scalars that exist (plain, quoted, in flow
/// collections, after comments) and keys that do not yet.
const PATHS: &[(&str, bool)] = &[
    ("spec.replicas", true),
    ("metadata.annotations.owner", true),
    ("spec.template.spec.containers[name=api].image", true),
    (
        "spec.template.spec.containers[name=api].resources.limits.memory",
        true,
    ),
    ("spec.strategy.rollingUpdate.maxSurge", true),
    (
        "spec.template.spec.containers[name=log-shipper].resources.limits.memory",
        true,
    ),
    ("metadata.labels[\"app.kubernetes.io/part-of\"]", true),
    (
        "spec.template.spec.containers[name=api].resources.limits.cpu",
        false,
    ),
    ("spec.minReadySeconds", false),
    ("metadata.annotations[\"example.com/reviewed-by\"]", false),
    // Keys that need quoting.
    ("metadata.annotations[\"true\"]", false),
    ("metadata.annotations[\"0755\"]", false),
    ("metadata.annotations[\"a: b\"]", false),
    ("metadata.annotations[\"#note\"]", false),
    ("metadata.annotations[\"- x\"]", false),
];

fn index(text: &str) -> RepoIndex {
    let file = PathBuf::from("deployment.yaml");
    let parsed = parse_text(&file, text);
    RepoIndex::from_parsed(Path::new("/repo"), vec![(file, parsed)])
}

/// A value as a manifest may hold it: text of any printable kind (quotes, colons, hashes,
/// leading spaces), text that YAML would read as another type when written bare (booleans,
/// numbers in every base, null, timestamps, octal modes), a number, or a boolean.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[ -~]{0,40}".prop_map(Value::String),
        "(yes|no|on|off|y|n|Yes|NO|null|Null|NULL|~|true|True|FALSE|1e3|0x1F|0o17|0755|1_000|\\.5|\\+1|-0|1\\.0|\\.inf|-\\.Inf|\\.NaN|2026-11-26|2026-11-26T10:00:00Z|12:30:00|-|:|# x|'q'|\"q\"|)".prop_map(Value::String),
        "[0-9]{1,6}".prop_map(Value::String),
        any::<i32>().prop_map(|n| Value::from(i64::from(n))),
        any::<bool>().prop_map(Value::Bool),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// index → set → index: the path reads back as the value, every other field and object
    /// reads back as before, and only the lines that carry the change move: one line replaced
    /// for a value that was there, lines added and none removed for a key that was not.
    #[test]
    fn an_edit_changes_its_value_and_lines_only(
        (path, existed) in prop::sample::select(PATHS),
        value in value(),
    ) {
        let path: FieldPath = path.parse().unwrap();
        let before = index(DEPLOYMENT);
        let declaration = &before.declarations[0];
        let edited = apply(DEPLOYMENT, &declaration.location, &[Edit::set(path.clone(), value.clone())])
            .map_err(|e| TestCaseError::fail(format!("{path} = {value}: {e}")))?;

        let after = index(&edited);
        prop_assert!(after.errors.is_empty(), "{:?}", after.errors);
        prop_assert_eq!(after.declarations.len(), before.declarations.len());
        let new = &after.declarations[0].value;
        // Type for type, as serde-saphyr reads the edited file: a string that looks like a
        // boolean, a number or null must come back a string. A quoted string keeps its quotes,
        // so a number or a boolean set there comes back as its text, a string still.
        let quoted = path.get(&declaration.value).is_some_and(Value::is_string)
            && DEPLOYMENT.lines().any(|l| l.contains(&format!("\"{}\"", path.get(&declaration.value).and_then(Value::as_str).unwrap_or("\u{0}"))));
        let expected = match &value {
            Value::Number(_) | Value::Bool(_) if quoted => Value::String(scalar_text(&value)),
            other => other.clone(),
        };
        prop_assert_eq!(path.get(new), Some(&expected), "{}", edited);
        let read = path.get(new).map(scalar_text);
        prop_assert_eq!(read, Some(scalar_text(&value)), "{}", edited);
        let mut expected = declaration.value.clone();
        let mut got = new.clone();
        for object in [&mut expected, &mut got] {
            remove(object, &path);
        }
        prop_assert_eq!(got, expected, "something besides {} changed", path);

        let old_lines: Vec<&str> = DEPLOYMENT.lines().collect();
        let new_lines: Vec<&str> = edited.lines().collect();
        let removed = old_lines.iter().filter(|l| !new_lines.contains(l)).count();
        let added = new_lines.iter().filter(|l| !old_lines.contains(l)).count();
        if existed {
            prop_assert_eq!(new_lines.len(), old_lines.len(), "{}", edited);
            prop_assert!(removed <= 1 && added <= 1, "{} lines removed, {} added:\n{}", removed, added, edited);
        } else {
            prop_assert_eq!(removed, 0, "{}", edited);
            prop_assert!(added >= 1);
        }
    }
}

/// Removes the value at `path`, so that two objects compare on everything else.
fn remove(object: &mut Value, path: &FieldPath) {
    let (parents, last) = path.split_last();
    let mut at = object;
    for segment in parents {
        match remediator::manifests::path::step_mut(at, segment) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let remediator::manifests::path::Segment::Key(key) = last
        && let Some(map) = at.as_object_mut()
    {
        map.remove(key);
        // A mapping made only to hold the key is part of the edit.
        if map.is_empty() {
            *at = Value::Object(Default::default());
        }
    }
}

/// How a Secret value is written.
#[derive(Clone, Copy, Debug)]
enum Style {
    Plain,
    Double,
    Single,
    Literal,
}

fn written(text: &str, style: Style) -> String {
    match style {
        Style::Plain => text.to_owned(),
        Style::Double => serde_json::to_string(text).unwrap(),
        Style::Single => format!("'{}'", text.replace('\'', "''")),
        Style::Literal => format!("|\n    {text}"),
    }
}

fn secret(entries: &[(String, String, Style)], field: &str) -> String {
    let mut out =
        String::from("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\n");
    out.push_str(&format!("{field}:\n"));
    for (key, text, style) in entries {
        out.push_str(&format!("  {key}: {}\n", written(text, *style)));
    }
    out
}

fn style() -> impl Strategy<Value = Style> {
    prop_oneof![
        Just(Style::Plain),
        Just(Style::Double),
        Just(Style::Single),
        Just(Style::Literal)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever a Secret holds, in `data` or `stringData`, plain, quoted or as a block, its
    /// values appear in no diff (before or after a change) and in no redacted log line.
    #[test]
    fn a_secret_value_never_appears_in_a_diff_or_a_log(
        values in prop::collection::vec(("[a-z][a-z0-9_.-]{0,8}", "[A-Za-z0-9+/=_!@%^&*.-]{10,40}", style()), 1..5),
        changed in prop::collection::vec("[A-Za-z0-9+/=_!@%^&*.-]{10,40}", 5),
        string_data in any::<bool>(),
    ) {
        // Plain style only for what YAML reads back as the same text.
        let values: Vec<(String, String, Style)> = values
            .into_iter()
            .enumerate()
            .map(|(i, (key, text, style))| {
                let plain_safe = text.chars().all(|c| c.is_ascii_alphanumeric() || "+/=_.-".contains(c))
                    && !text.starts_with(['-', '.']);
                let style = if matches!(style, Style::Plain) && !plain_safe { Style::Double } else { style };
                (format!("{key}{i}"), text, style)
            })
            .collect();
        let after: Vec<(String, String, Style)> = values
            .iter()
            .zip(&changed)
            .enumerate()
            .map(|(i, ((key, text, style), new))| {
                let text = if i % 2 == 0 { new.clone() } else { text.clone() };
                (key.clone(), text, if matches!(style, Style::Plain) { Style::Double } else { *style })
            })
            .collect();
        let field = if string_data { "stringData" } else { "data" };
        let (old, new) = (secret(&values, field), secret(&after, field));
        let diff = remediator::manifests::diff::unified(Path::new("secret.yaml"), &old, &new, false);
        let created = remediator::manifests::diff::unified(Path::new("secret.yaml"), "", &new, false);
        let removed = remediator::manifests::diff::unified(Path::new("secret.yaml"), &old, "", false);
        let secrets: Vec<&String> = values.iter().chain(&after).map(|(_, text, _)| text).collect();
        for text in [&diff, &created, &removed] {
            for value in &secrets {
                prop_assert!(!text.contains(value.as_str()), "{} leaks in:\n{}", value, text);
            }
        }
        prop_assert!(diff.contains("***"), "{}", diff);

        // The same values read from the cluster (`data` decoded, `stringData` as is) redact a
        // log that prints them.
        let entries = |range: std::ops::Range<usize>| -> std::collections::BTreeMap<String, String> {
            after[range].iter().map(|(key, text, _)| (key.clone(), text.clone())).collect()
        };
        let half = after.len() / 2;
        let live = k8s_openapi::api::core::v1::Secret {
            data: Some(entries(0..half).into_iter()
                .map(|(k, v)| (k, k8s_openapi::ByteString(v.into_bytes())))
                .collect()),
            string_data: Some(entries(half..after.len())),
            ..Default::default()
        };
        let redactor = remediator::redact::Redactor::with_values(remediator::redact::secret_values(live));
        let log: String = after.iter().map(|(_, v, _)| format!("connecting with {v} to db:5432\n")).collect();
        let redacted = redactor.redact(&log);
        for (_, value, _) in &after {
            prop_assert!(!redacted.contains(value.as_str()), "{} leaks in the log:\n{}", value, redacted);
        }
    }
}
