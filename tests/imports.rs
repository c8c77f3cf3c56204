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

/// The graph of the top-level modules: `a::b -> c::d` is `a -> c`.
fn top_level(edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let top = |m: &str| m.split("::").next().unwrap_or(m).to_owned();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in edges {
        for to in targets {
            if top(from) != top(to) {
                out.entry(top(from)).or_default().insert(top(to));
            }
        }
    }
    out
}

/// Each top-level module's layer: 0 when it imports none of the others, else one above the
/// highest it imports.
fn layers(edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, usize> {
    fn layer(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        known: &mut BTreeMap<String, usize>,
    ) -> usize {
        if let Some(&n) = known.get(node) {
            return n;
        }
        let n = edges
            .get(node)
            .into_iter()
            .flatten()
            .map(|next| layer(next, edges, known) + 1)
            .max()
            .unwrap_or(0);
        known.insert(node.to_owned(), n);
        n
    }
    let mut known = BTreeMap::new();
    for node in edges.keys() {
        layer(node, edges, &mut known);
    }
    known
}

/// The top-level modules form layers, as a workspace of crates would need: none imports a
/// module that imports it back. The layers go in the order `lib.rs` lists them.
#[test]
fn the_top_level_modules_form_layers_in_the_order_lib_rs_gives() {
    let edges = top_level(&graph());
    if let Some(found) = circle(&edges) {
        panic!("a circle of top-level modules: {}", found.join(" -> "));
    }
    let layers = layers(&edges);
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    // Each bullet `- layer N: ...`, its continuation lines joined; the modules are its links.
    let mut bullets: Vec<String> = Vec::new();
    for line in lib.lines().filter_map(|l| l.strip_prefix("//!")) {
        if let Some(rest) = line.strip_prefix(" - layer ") {
            bullets.push(rest.to_owned());
        } else if let (Some(last), true) = (bullets.last_mut(), line.starts_with("   ")) {
            last.push_str(line);
        }
    }
    let listed: Vec<(usize, Vec<String>)> = bullets
        .iter()
        .map(|b| {
            let (n, rest) = b.split_once(':').unwrap();
            let names = rest
                .split("[`")
                .skip(1)
                .filter_map(|s| s.split_once("`]").map(|(name, _)| name.to_owned()))
                .collect();
            (n.trim().parse().unwrap(), names)
        })
        .collect();
    let mut named: BTreeMap<String, usize> = BTreeMap::new();
    for (n, names) in &listed {
        for name in names {
            named.insert(name.clone(), *n);
        }
    }
    let all: BTreeSet<&String> = layers.keys().collect();
    assert_eq!(
        named.keys().collect::<BTreeSet<_>>(),
        all,
        "lib.rs lists every top-level module that imports or is imported, once"
    );
    for (module, n) in &layers {
        assert_eq!(
            named[module], *n,
            "lib.rs puts `{module}` in layer {}; its imports put it in layer {n}",
            named[module]
        );
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
    let top = top_level(&edges);
    assert_eq!(
        circle(&top).unwrap(),
        ["a", "b", "c", "a"].map(String::from)
    );
    edges.remove("c::d");
    assert_eq!(circle(&edges), None);
    edges.entry("b".into()).or_default().insert("c::x".into());
    let layers = layers(&top_level(&edges));
    assert_eq!(
        (layers["c"], layers["b"], layers["a"], layers["e"]),
        (0, 1, 2, 3)
    );
    let text =
        "use crate::manifests::edit::{Edit};\n// crate::serve::x\nlet x = super::super::y::z;";
    assert_eq!(
        paths(&code(text), "crate::"),
        vec![vec!["manifests", "edit"]]
    );
    assert_eq!(paths(text, "super::"), vec![vec!["super", "y", "z"]]);
}
