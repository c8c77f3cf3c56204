//! Where in the CRD's file a finding is: the line of the deepest key along its path
//! (`spec.versions[name=v1].schema.openAPIV3Schema.properties.spec.properties.size`), read off
//! block-style YAML by indentation, as CRD generators write it; the object's own line when the
//! path cannot be followed (flow style, JSON). Pure.

use super::Breaking;

enum Step {
    Key(String),
    Select(String, String),
}

/// One line's key: the column it starts at (after any `- `), whether the line opens a
/// sequence item, the key and the rest.
struct Line {
    col: usize,
    item: bool,
    key: String,
    value: String,
}

fn read(line: &str) -> Option<Line> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    let mut col = line.len() - trimmed.len();
    let mut rest = trimmed;
    let item = rest.starts_with("- ") || rest == "-";
    while let Some(after) = rest.strip_prefix("- ") {
        let inner = after.trim_start();
        col += rest.len() - inner.len();
        rest = inner;
    }
    let (key, value) = rest.split_once(':').unwrap_or((rest, ""));
    Some(Line {
        col,
        item,
        key: key.trim().trim_matches(['"', '\'']).to_owned(),
        value: value.trim().trim_matches(['"', '\'']).to_owned(),
    })
}

/// The steps into the CRD that `breaking.path` names.
fn steps(breaking: &Breaking) -> Vec<Step> {
    let path = breaking.path.as_str();
    if let Some(crd) = path.strip_prefix("spec.") {
        let mut out = vec![Step::Key("spec".into())];
        for part in crd.split('.') {
            match part.split_once('[') {
                Some((key, select)) => {
                    out.push(Step::Key(key.into()));
                    let select = select.trim_end_matches(']');
                    if let Some((k, v)) = select.split_once('=') {
                        out.push(Step::Select(k.into(), v.into()));
                    }
                }
                None => out.push(Step::Key(part.into())),
            }
        }
        return out;
    }
    let mut out: Vec<Step> = ["spec", "versions"]
        .into_iter()
        .map(|k| Step::Key(k.into()))
        .collect();
    out.push(Step::Select("name".into(), breaking.version.clone()));
    out.push(Step::Key("schema".into()));
    out.push(Step::Key("openAPIV3Schema".into()));
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, items) = match part.strip_suffix("[*]") {
            Some(name) => (name, true),
            None => (part, false),
        };
        // A field's own `[*]` suffixes may repeat (lists of lists).
        let name = name.trim_end_matches("[*]");
        let depth = part.matches("[*]").count();
        match name {
            "" => {}
            "*" => out.push(Step::Key("additionalProperties".into())),
            _ => {
                out.push(Step::Key("properties".into()));
                out.push(Step::Key(name.into()));
            }
        }
        if items {
            out.extend((0..depth).map(|_| Step::Key("items".into())));
        }
    }
    out
}

/// The 1-based line of the finding in `text`, whose object starts at line `start`; `start`
/// when the path cannot be followed.
pub fn line(text: &str, start: usize, breaking: &Breaking) -> usize {
    let lines: Vec<Option<Line>> = text
        .lines()
        .skip(start.saturating_sub(1))
        .take_while(|l| !l.starts_with("---"))
        .map(read)
        .collect();
    let end = lines.len();
    let (mut from, mut to) = (0, end);
    let mut found = None;
    for step in steps(breaking) {
        let Some(col) = lines[from..to].iter().flatten().map(|l| l.col).min() else {
            break;
        };
        let at = |i: usize| lines[i].as_ref().filter(|l| l.col == col);
        let hit = match &step {
            Step::Key(key) => (from..to).find(|&i| at(i).is_some_and(|l| &l.key == key)),
            Step::Select(key, value) => (from..to)
                .find(|&i| at(i).is_some_and(|l| &l.key == key && &l.value == value))
                .and_then(|i| (from..=i).rev().find(|&j| at(j).is_some_and(|l| l.item))),
        };
        let Some(hit) = hit else { break };
        found = Some(hit);
        let ends = |j: usize, item: bool| {
            lines[j]
                .as_ref()
                .is_some_and(|l| l.col < col || (l.col == col && (!item || l.item)))
        };
        (from, to) = match step {
            Step::Key(_) => (
                hit + 1,
                (hit + 1..end).find(|&j| ends(j, false)).unwrap_or(end),
            ),
            // An item's block: its own line, up to the next item or a shallower line.
            Step::Select(..) => (hit, (hit + 1..end).find(|&j| ends(j, true)).unwrap_or(end)),
        };
        if from >= to {
            break;
        }
    }
    found.map_or(start, |i| start.max(1) + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Impact;

    const CRD: &str = r#"# a comment
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
spec:
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    schema:
      openAPIV3Schema:
        properties:
          spec:
            properties:
              size:
                type: integer
  - served: true
    name: v1
    schema:
      openAPIV3Schema:
        properties:
          spec:
            properties:
              labels:
                additionalProperties:
                  type: string
              tags:
                items:
                  properties:
                    key:
                      type: string
              size:
                type: integer"#;

    fn at(version: &str, path: &str) -> usize {
        let b = Breaking {
            version: version.into(),
            path: path.into(),
            change: String::new(),
            rule: String::new(),
            severity: Impact::Breaking,
            line: None,
            ratcheted: None,
        };
        line(CRD, 2, &b)
    }

    #[test]
    fn a_finding_is_at_the_line_of_its_key() {
        let line_of = |needle: &str, nth: usize| {
            CRD.lines()
                .enumerate()
                .filter(|(_, l)| l.trim_start().starts_with(needle))
                .nth(nth)
                .unwrap()
                .0
                + 1
        };
        assert_eq!(at("v1", ".spec.size"), line_of("size:", 1));
        assert_eq!(at("v1alpha1", ".spec.size"), line_of("size:", 0));
        assert_eq!(at("v1", ".spec.tags[*].key"), line_of("key:", 0));
        assert_eq!(
            at("v1", ".spec.labels.*"),
            line_of("additionalProperties:", 0)
        );
        assert_eq!(at("", "spec.scope"), line_of("scope:", 0));
        assert_eq!(
            at("v1", "spec.versions[name=v1]"),
            line_of("- served: true", 0)
        );
        // A field no longer in the file (removed): its deepest parent that is.
        assert_eq!(at("v1", ".spec.gone"), line_of("properties:", 3));
        assert_eq!(at("v9", ".spec.size"), line_of("versions:", 0));
    }
}
