//! The layering of `src/`, checked: no two modules import each other, directly or through
//! others. Every `crate::` and `super::` path outside comments and unit tests is an edge from
//! the file's module to the deepest module it names; a module and its own parent or children
//! are one unit (a parent declares its children, a child uses its parent's types). A circle
//! fails the test and names every module in it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `lib.rs` and `main.rs` are the roots.
fn module_of(file: &Path, src: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        return None;
    }
    Some(parts.join("::"))
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code a module is built from: unit tests and comment lines left out.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `prefix` path in `text` (`crate::a::b`), its segments after the prefix.
fn paths<'t>(text: &'t str, prefix: &str) -> Vec<Vec<&'t str>> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(prefix).map(|at| from + at) {
        let before = text[..at].chars().next_back();
        let after = &text[at + prefix.len()..];
        from = at + prefix.len();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(after.len());
        let segments: Vec<&str> = after[..end]
            .split("::")
            .take_while(|s| s.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
            .collect();
        if !segments.is_empty() {
            found.push(segments);
        }
    }
    found
}

/// The deepest module of `modules` that `segments` names.
fn deepest(modules: &BTreeSet<String>, segments: &[&str]) -> Option<String> {
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|m| modules.contains(m))
}

fn related(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<String, String> = files
        .iter()
        .filter_map(|f| Some((module_of(f, &src)?, std::fs::read_to_string(f).unwrap())))
        .collect();
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in &modules {
        let text = code(text);
        let parent: Vec<&str> = module.split("::").collect();
        let parent = &parent[..parent.len() - 1];
        let mut targets = Vec::new();
        for segments in paths(&text, "crate::") {
            targets.extend(deepest(&names, &segments));
        }
        for segments in paths(&text, "super::") {
            let mut full: Vec<&str> = parent.to_vec();
            let mut rest = segments.as_slice();
            // `super::super::x` climbs once more for each `super`.
            while rest.first() == Some(&"super") {
                full.pop();
                rest = &rest[1..];
            }
            full.extend(rest);
            targets.extend(deepest(&names, &full));
        }
        for target in targets {
            if !related(module, &target) {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    edges
}

/// A circle of the graph, when there is one.
fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, done, path) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(found) = visit(node, edges, &mut done, &mut Vec::new()) {
            return Some(found);
        }
    }
    None
}

#[test]
fn no_module_of_src_imports_itself_through_others() {
    let edges = graph();
    assert!(
        edges.len() > 50,
        "the graph was read: {} modules import others",
        edges.len()
    );
    if let Some(found) = circle(&edges) {
        panic!("an import circle: {}", found.join(" -> "));
    }
}

#[test]
fn a_circle_is_found_and_named() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    edges.entry("b".into()).or_default().insert("c::d".into());
    edges.entry("c::d".into()).or_default().insert("a".into());
    edges.entry("e".into()).or_default().insert("a".into());
    assert_eq!(
        circle(&edges).unwrap(),
        ["a", "b", "c::d", "a"].map(String::from)
    );
    edges.remove("c::d");
    assert_eq!(circle(&edges), None);
    let text =
        "use crate::manifests::edit::{Edit};\n// crate::serve::x\nlet x = super::super::y::z;";
    assert_eq!(
        paths(&code(text), "crate::"),
        vec![vec!["manifests", "edit"]]
    );
    assert_eq!(paths(text, "super::"), vec![vec!["super", "y", "z"]]);
}
