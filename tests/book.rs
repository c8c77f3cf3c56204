//! The manual (`docs/`, an mdBook) kept true: each command's page shows its `--help` as the
//! binary prints it, the configuration reference is generated from the JSON Schema, every page
//! is in the summary, and every relative link of the README and the book resolves, anchors
//! included, and the README's scale figures are what `cargo bench --bench scale` checks against.
//! `REMEDIATOR_UPDATE_BOOK=1 cargo test --test book` writes the generated parts.

mod common;
#[path = "../benches/support/figures.rs"]
mod figures;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn updating() -> bool {
    std::env::var_os("REMEDIATOR_UPDATE_BOOK").is_some()
}

fn pages(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            pages(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// The commands `remediator --help` lists.
fn commands() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_remediator"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let listed = text.split("Commands:\n").nth(1).unwrap();
    let listed = listed.split("\n\n").next().unwrap();
    listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// The fenced help block of `command` in `text`, replaced by `help`.
fn with_help(text: &str, command: &str, help: &str) -> Option<String> {
    let marker = format!("<!-- remediator {command} --help -->\n```text\n");
    let start = text.find(&marker)? + marker.len();
    let end = start + text[start..].find("\n```")?;
    Some(format!(
        "{}{}{}",
        &text[..start],
        help.trim_end(),
        &text[end..]
    ))
}

#[test]
fn every_command_has_a_page_that_shows_its_help() {
    let commands = commands();
    assert!(commands.len() >= 13, "{commands:?}");
    let mut stale = Vec::new();
    for command in &commands {
        let page = root().join(format!("docs/commands/{command}.md"));
        let text =
            std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        let out = Command::new(env!("CARGO_BIN_EXE_remediator"))
            .args([command.as_str(), "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        let shown = with_help(&text, command, &help).unwrap_or_else(|| {
            panic!("{}: no `remediator {command} --help` block", page.display())
        });
        assert!(
            text.contains("Exit codes: "),
            "{}: no exit codes",
            page.display()
        );
        if shown != text {
            if updating() {
                std::fs::write(&page, shown).unwrap();
            } else {
                stale.push(page.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "pages whose help differs from the binary's (REMEDIATOR_UPDATE_BOOK=1 writes them): {stale:?}"
    );
}

/// The type of a schema node, in words.
fn type_of(node: &Value) -> String {
    if let Some(values) = node["enum"].as_array() {
        let values: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        return values.join(" \\| ");
    }
    if let Some(value) = node.get("const") {
        return format!("`{value}`");
    }
    match &node["type"] {
        Value::String(t) if t == "array" => format!("list of {}", type_of(&node["items"])),
        Value::String(t) => t.clone(),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ if node.get("oneOf").is_some() || node.get("anyOf").is_some() => "one of several".into(),
        _ => "any".into(),
    }
}

/// A `$ref` to `#/$defs/name`, followed.
fn resolve<'a>(schema: &'a Value, node: &'a Value) -> &'a Value {
    match node["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        Some(name) => &schema["$defs"][name],
        None => node,
    }
}

fn rows(schema: &Value, node: &Value, path: &str, out: &mut Vec<String>, depth: usize) {
    let node = resolve(schema, node);
    let Some(properties) = node["properties"].as_object() else {
        return;
    };
    let required: BTreeSet<&str> = node["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (key, child) in properties {
        let child = resolve(schema, child);
        let key_path = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let default = child
            .get("default")
            .map_or_else(String::new, |d| format!("`{d}`"));
        let description = child["description"]
            .as_str()
            .unwrap_or("")
            .replace('|', "\\|")
            .replace('\n', " ");
        let required = if required.contains(key.as_str()) {
            " (required)"
        } else {
            ""
        };
        out.push(format!(
            "| `{key_path}`{required} | {} | {default} | {description} |",
            type_of(child)
        ));
        if depth < 6 {
            rows(schema, child, &key_path, out, depth + 1);
            let items = resolve(schema, &child["items"]);
            if items["properties"].is_object() {
                rows(schema, items, &format!("{key_path}[]"), out, depth + 1);
            }
            if let Some(values) = child["additionalProperties"].as_object() {
                let values = Value::Object(values.clone());
                rows(schema, &values, &format!("{key_path}.*"), out, depth + 1);
            }
        }
    }
}

/// The configuration reference, from the schema.
fn reference(schema: &Value) -> String {
    let mut out = vec![
        "# Configuration reference".to_owned(),
        String::new(),
        "Generated from [`schemas/remediator.schema.json`](../schemas/remediator.schema.json) by \
         `tests/book.rs`; edit the schema, then `REMEDIATOR_UPDATE_BOOK=1 cargo test --test book`. \
         [Configuration](configuration.md) explains the file with an example."
            .to_owned(),
        String::new(),
        "| Key | Type | Default | What it is |".to_owned(),
        "| --- | --- | --- | --- |".to_owned(),
    ];
    rows(schema, schema, "", &mut out, 0);
    out.push(String::new());
    out.join("\n")
}

#[test]
fn the_configuration_reference_is_generated_from_the_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/remediator.schema.json")).unwrap(),
    )
    .unwrap();
    let generated = reference(&schema);
    assert!(
        generated.contains("| `forge.app.privateKeyFile` |"),
        "{generated}"
    );
    assert!(
        generated.contains("| `approvals.requiredChecks` |"),
        "{generated}"
    );
    let file = root().join("docs/configuration-reference.md");
    if updating() {
        std::fs::write(&file, &generated).unwrap();
    }
    let written = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        written == generated,
        "docs/configuration-reference.md differs from the schema (REMEDIATOR_UPDATE_BOOK=1 writes it)"
    );
}

#[test]
fn every_page_of_the_book_is_in_its_summary() {
    let docs = root().join("docs");
    let summary = std::fs::read_to_string(docs.join("SUMMARY.md")).unwrap();
    let mut all = Vec::new();
    pages(&docs, &mut all);
    for page in all {
        let relative = page
            .strip_prefix(&docs)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if relative == "SUMMARY.md" {
            continue;
        }
        assert!(
            summary.contains(&format!("]({relative})")),
            "docs/{relative} is not in docs/SUMMARY.md"
        );
    }
}

/// GitHub's and mdBook's anchor of a heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut inside_code = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            inside_code = !inside_code;
        }
        if !inside_code && line.starts_with('#') {
            found.insert(slug(line.trim_start_matches('#')));
        }
    }
    found
}

/// Every `[label](target)` of `text` outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut inside_code = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            inside_code = !inside_code;
            continue;
        }
        if inside_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            found.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    found
}

#[test]
fn every_relative_link_of_the_readme_and_the_book_resolves() {
    let mut files = vec![root().join("README.md")];
    pages(&root().join("docs"), &mut files);
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for target in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !resolved.exists() {
                broken.push(format!("{}: {target}", file.display()));
                continue;
            }
            if !anchor.is_empty() && resolved.extension().is_some_and(|e| e == "md") {
                let there = std::fs::read_to_string(&resolved).unwrap();
                if !anchors(&there).contains(anchor) {
                    broken.push(format!("{}: {target} (no such heading)", file.display()));
                }
            }
        }
    }
    assert!(checked > 50, "{checked} links checked");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The `sh` blocks of the tour, each line a command.
fn tour_commands(text: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        match (inside, line) {
            (false, "```sh") => inside = true,
            (true, "```") => inside = false,
            (true, line) if !line.trim().is_empty() && !line.starts_with('#') => {
                commands.push(line.to_owned());
            }
            _ => {}
        }
    }
    commands
}

#[test]
fn the_tour_runs_on_the_example_as_written() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "the_tour_runs_on_the_example_as_written",
    ) {
        return;
    }
    let text = std::fs::read_to_string(root().join("docs/tour.md")).unwrap();
    let commands = tour_commands(&text);
    assert_eq!(commands.len(), 3, "{commands:?}");
    // The tour writes branches: it runs in a clone of this repository.
    let dir = tempfile::tempdir().unwrap();
    let clone = dir.path().join("remediator");
    let cloned = Command::new("git")
        .args(["clone", "-q"])
        .arg(root())
        .arg(&clone)
        .status()
        .unwrap();
    assert!(cloned.success());
    let bin = Path::new(env!("CARGO_BIN_EXE_remediator"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut outputs = Vec::new();
    for command in &commands {
        let out = Command::new("bash")
            .args(["-c", command])
            .current_dir(&clone)
            .env("PATH", &path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{command}: {text}");
        outputs.push(text);
    }
    // What the tour says each step shows.
    assert!(
        outputs[0].contains("remediator/crash-loop-oom/shop-api (created)"),
        "{}",
        outputs[0]
    );
    assert_eq!(
        outputs[1].lines().count(),
        5,
        "five branches: {}",
        outputs[1]
    );
    assert!(
        outputs[2].starts_with("## remediator check: medium risk"),
        "{}",
        outputs[2]
    );
    assert!(
        outputs[2].contains("Merging needs **1 approval**"),
        "{}",
        outputs[2]
    );
}

#[test]
fn the_readme_gives_the_scale_figures_the_bench_checks() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let rows = figures::figures(&readme).unwrap();
    let pods: Vec<usize> = rows.iter().map(|f| f.pods).collect();
    assert_eq!(pods, [1_000, 10_000, 50_000, 100_000]);
    // The check fails past one and a half times a figure, on time or on memory, and says which.
    let ten = &rows[1];
    assert!(
        ten.exceeded(ten.wall * 1.4, ten.peak_mb * 1.4, 1.5)
            .is_empty()
    );
    let slow = ten.exceeded(ten.wall * 1.6, ten.peak_mb, 1.5);
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert!(slow[0].starts_with("10,000 pods: "), "{slow:?}");
    let big = ten.exceeded(ten.wall, ten.peak_mb * 1.6, 1.5);
    assert!(big.len() == 1 && big[0].ends_with(" MB"), "{big:?}");
    // A table without figures is an error, not a check that passes.
    let empty = format!("{}\n| pods |\n{}", figures::TABLE_START, figures::TABLE_END);
    assert!(figures::figures(&empty).is_err());
    assert!(figures::figures("no table").is_err());
}
