//! The entry points of the fuzz targets in `fuzz/`. Each takes arbitrary bytes, must not panic,
//! and asserts the property its target states; an assertion that fails is a crash the fuzzer
//! reports. `cargo test` replays the kept inputs of `fuzz/regressions/` through the same
//! functions, so a fixed crash stays fixed without a nightly toolchain. Pure.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::Value;

use crate::manifests::edit::{Edit, apply};
use crate::manifests::path::{FieldPath, Segment, scalar_text, select_position};
use crate::manifests::{Kustomization, RepoIndex, document_value, parse_file, parse_text};

/// A target: its name (the directory of its corpus and regressions) and its entry point.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, in the order `scripts/fuzz.sh` runs them.
pub const TARGETS: &[Target] = &[
    ("snapshot", snapshot),
    ("manifest_index", manifest_index),
    ("set_edit", set_edit),
    ("config", config),
    ("crd_compat", crd_compat),
    ("quantity", quantity),
    ("webhooks", webhooks),
    ("audit", audit),
];

/// The snapshot loader over one file's bytes (YAML or JSON), then detection over what loaded.
pub fn snapshot(data: &[u8]) {
    let mut loaded = crate::snapshot::Loaded::default();
    loaded.read_file(Path::new("snapshot.yaml"), data);
    for problem in &loaded.problems {
        let _ = problem.to_string();
    }
    let now = k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).expect("a valid instant");
    let _ = crate::detect::detect(&loaded.snapshot, &crate::detect::DetectOptions::at(now));
}

/// The manifest index over a file's bytes, named by the first byte as a plain manifest, a
/// kustomization or a patch.
pub fn manifest_index(data: &[u8]) {
    let Some((&name, bytes)) = data.split_first() else {
        return;
    };
    let file = match name % 3 {
        0 => "app/deploy.yaml",
        1 => "app/kustomization.yaml",
        _ => "app/patch.yaml",
    };
    let parsed = parse_file(Path::new(file), bytes);
    let index = RepoIndex::from_parsed(Path::new("/repo"), vec![(PathBuf::from(file), parsed)]);
    for error in &index.errors {
        let _ = error.to_string();
    }
    for object in &index.objects {
        let _ = index.copies(object);
        let _ = index.unit(object);
    }
}

/// A `set` edit, given as three parts separated by newlines: a field path, a value (JSON, or
/// else a string), and the YAML file. An edit that is made must leave a file that parses, in
/// which the path holds the value and nothing else of the object, nor any other document,
/// differs.
pub fn set_edit(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = input.splitn(3, '\n');
    let (Some(path), Some(value), Some(text)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let Ok(path) = FieldPath::from_str(path) else {
        return;
    };
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
    if !value.is_string() && !value.is_number() && !value.is_boolean() {
        return;
    }
    let file = Path::new("deploy.yaml");
    let before = parse_text(file, text);
    let index = RepoIndex::from_parsed(
        Path::new("/repo"),
        vec![(file.to_owned(), parse_text(file, text))],
    );
    for declaration in index.declarations.iter().take(3) {
        let location = &declaration.location;
        let Ok(edited) = apply(text, location, &[Edit::set(path.clone(), value.clone())]) else {
            continue;
        };
        let after = parse_text(file, &edited);
        assert!(
            after.errors.is_empty() || !before.errors.is_empty(),
            "the edited file does not parse: {:?}",
            after.errors
        );
        let old = document_value(&before, location).expect("the edited object was read before");
        let new = document_value(&after, location).expect("the edited object is still there");
        let set = path
            .get(new)
            .expect("the path holds a value after the edit");
        assert_eq!(scalar_text(set), scalar_text(&value), "the value set");
        let outside = changed_outside(old, new, &path);
        assert!(outside.is_empty(), "changed outside {path}: {outside:?}");
        for (doc, next) in before.documents.iter().zip(&after.documents) {
            if doc.document != location.document {
                assert_eq!(doc.value, next.value, "document {} changed", doc.document);
            }
        }
    }
}

/// The JSON pointer of `path` in `value`, items selected by key turned into positions.
fn pointer(value: &Value, path: &FieldPath) -> Option<String> {
    let mut at = String::new();
    let mut current = value;
    for segment in &path.segments {
        let (step, next) = match segment {
            Segment::Key(key) => (key.replace('~', "~0").replace('/', "~1"), current.get(key)?),
            _ => {
                let items = current.as_array()?;
                let position = select_position(items, segment)?;
                (position.to_string(), &items[position])
            }
        };
        at.push('/');
        at.push_str(&step);
        current = next;
    }
    Some(at)
}

/// Where `new` differs from `old` other than at `path` and the mappings made on the way to it.
fn changed_outside(old: &Value, new: &Value, path: &FieldPath) -> Vec<String> {
    let Some(target) = pointer(new, path) else {
        return vec![format!("{path} (not in the edited object)")];
    };
    let mut differences = Vec::new();
    differ(old, new, String::new(), &mut differences);
    differences.retain(|at| !target.starts_with(at.as_str()) && !at.starts_with(target.as_str()));
    differences
}

/// The JSON pointers at which `old` and `new` differ, as high up as the difference starts.
fn differ(old: &Value, new: &Value, at: String, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => differ(x, y, here, out),
                    _ => out.push(here),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differ(x, y, format!("{at}/{i}"), out);
            }
        }
        (a, b) if a != b => out.push(at),
        _ => {}
    }
}

/// `remediator.yaml` and the kustomizations of a file's documents.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = crate::config::Config::parse(Path::new("remediator.yaml"), text) {
        let _ = error.to_string();
    }
    let file = Path::new("kustomization.yaml");
    for document in parse_text(file, text).documents {
        if Kustomization::is_kustomization(file, &document.value)
            && let Ok(kustomization) = Kustomization::from_value(&document.value)
        {
            let _ = kustomization.local_resources().count();
            let _ = kustomization.remote_resources().count();
            let _ = kustomization.patch_files().count();
        }
    }
}

/// The CRD compatibility check on two schemas: the documents of one YAML stream, the first
/// taken as the old CRD and the second as the new.
pub fn crd_compat(data: &[u8]) {
    let parsed = parse_file(Path::new("crd.yaml"), data);
    let [old, new, ..] = parsed.documents.as_slice() else {
        return;
    };
    let stored = [String::from("v1")];
    for stored in [None, Some(&stored[..])] {
        let found = crate::crd::compare(&old.value, &new.value, stored);
        let _ = crate::crd::readability(&old.value, &new.value, stored, &found);
    }
    let _ = crate::crd::compare(&new.value, &new.value, None);
}

/// The quantity parser: a memory amount formatted for a manifest reads back as the amount
/// rounded up to the next MiB, never less.
pub fn quantity(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    use crate::model::quantity;
    let _ = quantity::parse(text);
    let _ = quantity::cpu_millis(text);
    if let Some(bytes) = quantity::memory_bytes(text)
        && bytes.is_finite()
        && (0.0..1e18).contains(&bytes)
    {
        let again = quantity::memory_bytes(&quantity::format_memory(bytes))
            .expect("a formatted quantity parses");
        assert!(
            again >= bytes && again < bytes.max(1.0) * (1.0 + 1e-12) + 1_048_576.0,
            "{text}: {bytes} formatted reads back as {again}, not rounded up to a MiB"
        );
    }
}

/// The Alertmanager and GitHub webhook payloads; the first byte picks the GitHub event.
pub fn webhooks(data: &[u8]) {
    let Some((&event, body)) = data.split_first() else {
        return;
    };
    if let Ok(payload) = crate::serve::alerts::parse(body) {
        let mut window = crate::serve::alerts::Episodes::default();
        window.receive(payload);
        let _ = window.findings(&crate::config::serve::builtin());
    }
    let events = [
        "push",
        "pull_request",
        "pull_request_review",
        "issue_comment",
        "check_suite",
        "ping",
    ];
    let event = events[usize::from(event) % events.len()];
    let _ = crate::serve::webhook::job(event, body, "main");
}

/// The audit trail's reader over a log's text, then the history it renders.
pub fn audit(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(records) = crate::audit::parse_records(Path::new("audit.jsonl"), text) else {
        return;
    };
    let records: Vec<_> = records.into_iter().map(|(_, record)| record).collect();
    let chains = crate::audit::history(&records, None);
    let _ = crate::audit::text(&chains, Some(&crate::audit::SigningKey::new(b"k")));
    let _ = crate::audit::history(&records, Some("Deployment/shop/web"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fuzz_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
    }

    #[test]
    fn every_kept_input_replays_without_a_crash() {
        let mut replayed = 0;
        for (name, target) in TARGETS {
            for kept in ["seeds", "regressions"] {
                let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kept).join(name)) else {
                    continue;
                };
                for entry in entries {
                    let path = entry.expect("a readable directory").path();
                    let data = std::fs::read(&path).expect("a readable input");
                    let outcome = std::panic::catch_unwind(|| target(&data));
                    assert!(outcome.is_ok(), "{} crashes {name}", path.display());
                    replayed += 1;
                }
            }
        }
        assert!(replayed >= 20, "only {replayed} inputs kept");
    }

    #[test]
    fn every_target_is_built_by_cargo_fuzz() {
        let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/");
        for (name, _) in TARGETS {
            assert!(
                manifest.contains(&format!("name = \"{name}\"")),
                "{name} is not a bin of fuzz/Cargo.toml"
            );
            let source = fuzz_dir().join(format!("fuzz_targets/{name}.rs"));
            let source = std::fs::read_to_string(&source).expect("the target's source");
            assert!(source.contains(&format!("remediator::fuzz::{name}(data)")));
        }
    }

    #[test]
    fn differences_are_found_where_they_start() {
        let old = json!({"spec": {"replicas": 2, "template": {"containers": [{"name": "a", "image": "x"}]}}});
        let new = json!({"spec": {"replicas": 2, "template": {"containers": [{"name": "a", "image": "y", "tty": true}]}}, "status": {}});
        let mut found = Vec::new();
        differ(&old, &new, String::new(), &mut found);
        assert_eq!(
            found,
            [
                "/spec/template/containers/0/image",
                "/spec/template/containers/0/tty",
                "/status"
            ]
        );
        let path: FieldPath = "spec.template.containers[name=a].image".parse().unwrap();
        assert_eq!(
            pointer(&new, &path).as_deref(),
            Some("/spec/template/containers/0/image")
        );
    }

    #[test]
    fn a_change_beside_the_edited_path_breaks_the_property() {
        let path: FieldPath = "spec.replicas".parse().unwrap();
        let old = json!({"spec": {"replicas": 2, "paused": true}});
        assert!(
            changed_outside(
                &old,
                &json!({"spec": {"replicas": 3, "paused": true}}),
                &path
            )
            .is_empty()
        );
        assert!(changed_outside(&json!({}), &json!({"spec": {"replicas": 3}}), &path).is_empty());
        assert_eq!(
            changed_outside(&old, &json!({"spec": {"replicas": 3}}), &path),
            ["/spec/paused"]
        );
        assert_eq!(
            changed_outside(&old, &json!({"spec": {}}), &path),
            ["spec.replicas (not in the edited object)"]
        );
    }
}
