//! The Argo CD Applications an `ApplicationSet` of the repository makes, with its list and Git
//! directory generators, as Argo CD makes them: each generated set of parameters filled into the
//! template (`{{path}}`, `{{path.basename}}`, `{{path[0]}}`, a list element's keys; with
//! `goTemplate`, `{{.path.path}}` and the like). Directories are those of the repository's own
//! files, matched as Argo CD matches them (`*` within one directory). Generators that read
//! anything else (clusters, pull requests, SCM providers) make nothing here. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The sources of an Argo CD Application: each of `spec.sources`, then `spec.source`.
pub fn sources(app: &Value) -> impl Iterator<Item = &Value> {
    app.pointer("/spec/sources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(app.pointer("/spec/source"))
}

/// The Applications `appset` makes over a repository whose files are `files`.
pub fn applications(appset: &Value, files: &[PathBuf]) -> Vec<Value> {
    let Some(template) = appset.pointer("/spec/template") else {
        return vec![];
    };
    let go = appset.pointer("/spec/goTemplate") == Some(&Value::Bool(true));
    let mut out = Vec::new();
    for generator in appset
        .pointer("/spec/generators")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for parameters in parameters(generator, files) {
            let mut app = fill(template, &parameters, go);
            if let Some(object) = app.as_object_mut() {
                object.insert("apiVersion".into(), "argoproj.io/v1alpha1".into());
                object.insert("kind".into(), "Application".into());
            }
            out.push(app);
        }
    }
    out
}

/// The parameters of each Application one generator makes.
fn parameters(generator: &Value, files: &[PathBuf]) -> Vec<BTreeMap<String, String>> {
    if let Some(elements) = generator
        .pointer("/list/elements")
        .and_then(Value::as_array)
    {
        return elements
            .iter()
            .filter_map(Value::as_object)
            .map(|element| {
                element
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), scalar(v)?)))
                    .collect()
            })
            .collect();
    }
    let Some(directories) = generator
        .pointer("/git/directories")
        .and_then(Value::as_array)
    else {
        return vec![];
    };
    let dirs: BTreeSet<&Path> = files.iter().filter_map(|f| f.parent()).collect();
    let matcher = |pattern: &str| {
        globset::GlobBuilder::new(pattern.trim_start_matches("./"))
            .literal_separator(true)
            .build()
            .ok()
            .map(|g| g.compile_matcher())
    };
    let (mut include, mut exclude) = (vec![], vec![]);
    for entry in directories {
        let excluding = entry["exclude"] == Value::Bool(true);
        let Some(pattern) = entry["path"].as_str().and_then(matcher) else {
            // An exclusion that cannot be read could hide any directory: none is made, rather
            // than one it should have left out.
            if excluding {
                return vec![];
            }
            continue;
        };
        if excluding {
            exclude.push(pattern);
        } else {
            include.push(pattern);
        }
    }
    dirs.into_iter()
        .filter(|d| include.iter().any(|m| m.is_match(d)) && !exclude.iter().any(|m| m.is_match(d)))
        .map(|dir| {
            let path = dir.to_string_lossy().replace('\\', "/");
            let mut parameters = BTreeMap::new();
            parameters.insert("path".to_owned(), path.clone());
            parameters.insert("path.path".to_owned(), path.clone());
            let basename = path.rsplit('/').next().unwrap_or(&path).to_owned();
            parameters.insert("path.basename".to_owned(), basename.clone());
            parameters.insert("path.basenameNormalized".to_owned(), normalized(&basename));
            for (i, segment) in path.split('/').enumerate() {
                parameters.insert(format!("path[{i}]"), segment.to_owned());
                parameters.insert(format!("path.segments[{i}]"), segment.to_owned());
            }
            parameters
        })
        .collect()
}

/// A basename as Argo CD normalises it for names: lower case, `-` for what a name cannot hold.
fn normalized(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
        _ => None,
    }
}

/// `template` with every `{{name}}` (or `{{.name}}` with `go`) of every string filled in.
fn fill(template: &Value, parameters: &BTreeMap<String, String>, go: bool) -> Value {
    match template {
        Value::String(text) => {
            let mut out = text.clone();
            for (name, value) in parameters {
                let (plain, dotted) = (format!("{{{{{name}}}}}"), format!("{{{{ {name} }}}}"));
                out = out.replace(&plain, value).replace(&dotted, value);
                if go {
                    let go_name = go_parameter(name);
                    for form in [
                        format!("{{{{.{go_name}}}}}"),
                        format!("{{{{ .{go_name} }}}}"),
                    ] {
                        out = out.replace(&form, value);
                    }
                }
            }
            Value::String(out)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| fill(i, parameters, go)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill(v, parameters, go)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A parameter as a Go template names it: `path` is `path.path` there, `path[0]` is
/// `path.segments` indexed (left as written, so only the named forms are filled).
fn go_parameter(name: &str) -> &str {
    match name {
        "path" => "path.path",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_exclusion_that_cannot_be_read_makes_no_application() {
        let files = [
            PathBuf::from("apps/shop/a.yaml"),
            PathBuf::from("apps/blog/a.yaml"),
        ];
        let appset = |exclude: &str| {
            json!({"spec": {"generators": [{"git": {"directories": [
                    {"path": "apps/*"}, {"path": exclude, "exclude": true}]}}],
                "template": {"metadata": {"name": "{{path.basename}}"},
                    "spec": {"source": {"path": "{{path}}"}}}}})
        };
        assert_eq!(applications(&appset("apps/blog"), &files).len(), 1);
        assert!(applications(&appset("apps/[blog"), &files).is_empty());
    }

    #[test]
    fn git_directories_and_lists_make_their_applications() {
        let files: Vec<PathBuf> = [
            "apps/api/deploy.yaml",
            "apps/web/deploy.yaml",
            "apps/web/sub/x.yaml",
            "apps/skip/a.yaml",
            "other/b.yaml",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let appset = json!({"spec": {
            "generators": [{"git": {"repoURL": "https://git.example.com/x", "directories": [
                {"path": "apps/*"}, {"path": "apps/skip", "exclude": true}]}}],
            "template": {"metadata": {"name": "{{path.basename}}"},
                "spec": {"source": {"path": "{{path}}"}, "destination": {"namespace": "{{path[1]}}"}}}}});
        let apps = applications(&appset, &files);
        let made: Vec<(String, String, String)> = apps
            .iter()
            .map(|a| {
                (
                    a["metadata"]["name"].as_str().unwrap().to_owned(),
                    a["spec"]["source"]["path"].as_str().unwrap().to_owned(),
                    a["spec"]["destination"]["namespace"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect();
        assert_eq!(
            made,
            [
                ("api".into(), "apps/api".into(), "api".into()),
                ("web".into(), "apps/web".into(), "web".into())
            ],
            "`*` stays in one directory, and excluded ones are left out"
        );
        assert_eq!(apps[0]["kind"], "Application");
        let list = json!({"spec": {"goTemplate": true,
            "generators": [{"list": {"elements": [{"env": "prod"}, {"env": "dev"}]}}],
            "template": {"metadata": {"name": "shop-{{.env}}"},
                "spec": {"source": {"path": "envs/{{ .env }}"}}}}});
        let names: Vec<String> = applications(&list, &files)
            .iter()
            .map(|a| format!("{} {}", a["metadata"]["name"], a["spec"]["source"]["path"]))
            .collect();
        assert_eq!(
            names,
            ["\"shop-prod\" \"envs/prod\"", "\"shop-dev\" \"envs/dev\""]
        );
    }
}
