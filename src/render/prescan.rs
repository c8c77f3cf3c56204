//! The pre-scan of a kustomize build, before kustomize runs: every kustomization the build
//! loads is read from the tree, every path it names is resolved inside the repository (see
//! [`super::paths`]), every value that becomes a Helm argument is checked, and every remote
//! source it would fetch is listed, so that nothing is read from outside the tree or fetched by
//! accident. I/O: reads the kustomization files under the root.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::allowlist::AllowRemote;
use super::paths::{self, Absolute, Refusal, Source};
use crate::manifests::{FILE_NAMES, parse_text};

/// What a build loads, once its kustomizations are read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// Every kustomization directory it loads, relative to the root, the build's first.
    pub dirs: Vec<PathBuf>,
    /// Every remote source it fetches (resources, bases, Helm repositories, values files).
    pub remote: BTreeSet<String>,
}

impl Scanned {
    /// The remote sources `allow` does not allow.
    pub fn refused_remote<'a>(&'a self, allow: &'a AllowRemote) -> Vec<&'a str> {
        self.remote
            .iter()
            .map(String::as_str)
            .filter(|url| !allow.allows(url))
            .collect()
    }
}

/// Reads the kustomizations `build` (a directory relative to `root`) loads.
pub fn scan(root: &Path, build: &Path) -> Result<Scanned, Refusal> {
    let mut scanned = Scanned::default();
    let mut pending = vec![build.to_owned()];
    while let Some(dir) = pending.pop() {
        if scanned.dirs.contains(&dir) {
            continue;
        }
        scanned.dirs.push(dir.clone());
        let Some((file, value)) = read_kustomization(root, &dir)? else {
            continue;
        };
        let mut scan = One {
            root,
            dir: &dir,
            file: &file,
            scanned: &mut scanned,
            subdirs: vec![],
        };
        scan.kustomization(&value)?;
        let subdirs = std::mem::take(&mut scan.subdirs);
        pending.extend(subdirs.into_iter().rev());
    }
    Ok(scanned)
}

/// The kustomization file of `dir` and its first document; `None` when the directory has none.
fn read_kustomization(root: &Path, dir: &Path) -> Result<Option<(PathBuf, Value)>, Refusal> {
    for name in FILE_NAMES {
        let file = dir.join(name);
        let Ok(bytes) = std::fs::read(root.join(&file)) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let parsed = parse_text(&file, &text);
        if let Some(error) = parsed.errors.first() {
            return Err(Refusal {
                file: file.clone(),
                field: "(document)".into(),
                value: String::new(),
                rule: format!("it does not parse: {error}"),
            });
        }
        let value = parsed
            .documents
            .into_iter()
            .next()
            .map_or(Value::Null, |d| d.value);
        return Ok(Some((file, value)));
    }
    Ok(None)
}

/// The scan of one kustomization file.
struct One<'a> {
    root: &'a Path,
    dir: &'a Path,
    file: &'a Path,
    scanned: &'a mut Scanned,
    subdirs: Vec<PathBuf>,
}

impl One<'_> {
    fn kustomization(&mut self, k: &Value) -> Result<(), Refusal> {
        for key in ["resources", "bases", "components"] {
            for (i, entry) in strings(&k[key]) {
                let field = format!("{key}[{i}]");
                if paths::is_remote(entry) {
                    self.scanned.remote.insert(entry.to_owned());
                    continue;
                }
                let path = self.path(&field, entry)?;
                let here = self.root.join(&path);
                if here.is_dir() {
                    self.subdirs.push(path);
                } else if !here.is_file() {
                    // kustomize takes a path it cannot find for a remote Git repository and
                    // clones it: a missing path is refused, never fetched.
                    return Err(self.refuse(
                        &field,
                        entry,
                        "it is neither a file nor a directory of the repository, and kustomize would try to fetch it; write a remote source as a URL".into(),
                    ));
                }
            }
        }
        for key in ["crds", "configurations"] {
            for (i, entry) in strings(&k[key]) {
                self.file_or_remote(&format!("{key}[{i}]"), entry)?;
            }
        }
        for key in [
            "generators",
            "transformers",
            "validators",
            "patchesStrategicMerge",
        ] {
            for (i, entry) in strings(&k[key]) {
                if !is_inline(entry) {
                    self.file_or_remote(&format!("{key}[{i}]"), entry)?;
                }
            }
        }
        for key in ["patches", "patchesJson6902", "replacements"] {
            for (i, entry) in items(&k[key]) {
                if let Some(path) = entry["path"].as_str() {
                    self.path(&format!("{key}[{i}].path"), path)?;
                }
            }
        }
        if let Some(path) = k.pointer("/openapi/path").and_then(Value::as_str) {
            self.path("openapi.path", path)?;
        }
        for key in ["configMapGenerator", "secretGenerator"] {
            for (i, generator) in items(&k[key]) {
                for (j, entry) in strings(&generator["files"]) {
                    // `key=path` or `path`.
                    let path = entry.split_once('=').map_or(entry, |(_, p)| p);
                    self.path(&format!("{key}[{i}].files[{j}]"), path)?;
                }
                for (j, entry) in strings(&generator["envs"]) {
                    self.path(&format!("{key}[{i}].envs[{j}]"), entry)?;
                }
                if let Some(env) = generator["env"].as_str() {
                    self.path(&format!("{key}[{i}].env"), env)?;
                }
            }
        }
        self.helm(k)
    }

    /// `helmCharts`, `helmGlobals` and the older `helmChartInflationGenerator`.
    fn helm(&mut self, k: &Value) -> Result<(), Refusal> {
        for key in ["chartHome", "configHome"] {
            if let Some(path) = k
                .pointer(&format!("/helmGlobals/{key}"))
                .and_then(Value::as_str)
            {
                self.path(&format!("helmGlobals.{key}"), path)?;
            }
        }
        for (i, chart) in items(&k["helmCharts"]) {
            let field = |name: &str| format!("helmCharts[{i}].{name}");
            if let Some(repo) = chart["repo"].as_str().filter(|r| !r.is_empty()) {
                self.scanned.remote.insert(repo.to_owned());
            }
            if let Some(name) = chart["releaseName"].as_str() {
                release_name(name)
                    .map_err(|rule| self.refuse(&field("releaseName"), name, rule))?;
            }
            if let Some(name) = chart["name"].as_str() {
                chart_name(name).map_err(|rule| self.refuse(&field("name"), name, rule))?;
            }
            if let Some(namespace) = chart["namespace"].as_str() {
                dns_label(namespace, 63)
                    .map_err(|rule| self.refuse(&field("namespace"), namespace, rule))?;
            }
            for key in ["version", "kubeVersion", "nameTemplate"] {
                if let Some(value) = chart[key].as_str() {
                    not_a_flag(value).map_err(|rule| self.refuse(&field(key), value, rule))?;
                }
            }
            for (j, version) in strings(&chart["apiVersions"]) {
                not_a_flag(version).map_err(|rule| {
                    self.refuse(&field(&format!("apiVersions[{j}]")), version, rule)
                })?;
            }
            if let Some(values) = chart["valuesFile"].as_str() {
                self.file_or_remote(&field("valuesFile"), values)?;
            }
            for (j, values) in strings(&chart["additionalValuesFiles"]) {
                self.file_or_remote(&field(&format!("additionalValuesFiles[{j}]")), values)?;
            }
        }
        for (i, generator) in items(&k["helmChartInflationGenerator"]) {
            if let Some(url) = generator["chartRepoUrl"].as_str() {
                self.scanned.remote.insert(url.to_owned());
            }
            if let Some(home) = generator["chartHome"].as_str() {
                self.path(&format!("helmChartInflationGenerator[{i}].chartHome"), home)?;
            }
            if let Some(name) = generator["releaseName"].as_str() {
                let field = format!("helmChartInflationGenerator[{i}].releaseName");
                release_name(name).map_err(|rule| self.refuse(&field, name, rule))?;
            }
        }
        Ok(())
    }

    fn refuse(&self, field: &str, value: &str, rule: String) -> Refusal {
        Refusal {
            file: self.file.to_owned(),
            field: field.to_owned(),
            value: value.to_owned(),
            rule,
        }
    }

    fn path(&self, field: &str, raw: &str) -> Result<PathBuf, Refusal> {
        let source = Source {
            file: self.file,
            field,
        };
        paths::resolve(self.root, self.dir, raw, Absolute::Refused, source)
    }

    fn file_or_remote(&mut self, field: &str, raw: &str) -> Result<(), Refusal> {
        if paths::is_remote(raw) {
            self.scanned.remote.insert(raw.to_owned());
            return Ok(());
        }
        self.path(field, raw).map(drop)
    }
}

/// An inline plugin configuration or patch rather than a file name.
fn is_inline(entry: &str) -> bool {
    entry.contains('\n') || entry.trim_start().starts_with('{')
}

fn strings(value: &Value) -> impl Iterator<Item = (usize, &str)> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, v)| Some((i, v.as_str()?)))
}

fn items(value: &Value) -> impl Iterator<Item = (usize, &Value)> {
    value.as_array().into_iter().flatten().enumerate()
}

/// Helm's rule for a release name: a DNS-1123 subdomain of at most 53 characters.
pub fn release_name(name: &str) -> Result<(), String> {
    const RULE: &str = "a Helm release name is lower-case letters, digits, `-` and `.`, starts and ends with a letter or digit, and has at most 53 characters";
    let ok = !name.is_empty()
        && name.len() <= 53
        && name.split('.').all(|label| dns_label(label, 63).is_ok());
    if ok { Ok(()) } else { Err(RULE.to_owned()) }
}

/// A DNS-1123 label of at most `max` characters (a namespace: 63).
pub fn dns_label(label: &str, max: usize) -> Result<(), String> {
    let bytes = label.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok = !bytes.is_empty()
        && bytes.len() <= max
        && bytes.iter().all(|b| edge(b) || *b == b'-')
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "a DNS-1123 label is lower-case letters, digits and `-`, starts and ends with a letter or digit, and has at most {max} characters"
        ))
    }
}

/// A chart's name: letters, digits, `-`, `_` and `.`, not starting with `-` or `.`.
fn chart_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(
            "a chart name is letters, digits, `-`, `_` and `.`, and does not start with `-` or `.`"
                .into(),
        )
    }
}

/// A value passed to Helm as an argument's value: it must not read as a flag.
pub fn not_a_flag(value: &str) -> Result<(), String> {
    if value.starts_with('-') || value.contains(['\n', '\0']) {
        Err("a value passed to Helm must not start with `-` or hold a line break".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        root
    }

    #[test]
    fn every_loaded_kustomization_is_read_and_its_remote_sources_listed() {
        let root = tree(&[
            (
                "apps/prod/kustomization.yaml",
                "resources: [../base, https://example.com/x.yaml]\n\
                 helmCharts: [{name: web, repo: oci://registry.example.com/charts, releaseName: web}]\n",
            ),
            (
                "apps/base/kustomization.yaml",
                "resources: [github.com/org/repo//deploy?ref=v1, cm.yaml]\n\
                 configMapGenerator: [{name: x, files: [key=app.properties]}]\n",
            ),
            ("apps/base/cm.yaml", "kind: ConfigMap\n"),
        ]);
        let scanned = scan(root.path(), Path::new("apps/prod")).unwrap();
        assert_eq!(
            scanned.dirs,
            [PathBuf::from("apps/prod"), PathBuf::from("apps/base")]
        );
        assert_eq!(
            scanned.remote.iter().collect::<Vec<_>>(),
            [
                "github.com/org/repo//deploy?ref=v1",
                "https://example.com/x.yaml",
                "oci://registry.example.com/charts"
            ]
        );
        let allow = AllowRemote::new(vec!["example.com".into()]);
        assert_eq!(
            scanned.refused_remote(&allow),
            [
                "github.com/org/repo//deploy?ref=v1",
                "oci://registry.example.com/charts"
            ]
        );
    }

    #[test]
    fn each_refusal_names_the_file_the_field_and_the_rule() {
        for (text, expected) in [
            (
                "resources: [../../../../tmp/x]\n",
                "apps/prod/kustomization.yaml: resources[0]: `../../../../tmp/x` is refused: it leaves the repository",
            ),
            (
                "patches: [{path: /etc/passwd}]\n",
                "apps/prod/kustomization.yaml: patches[0].path: `/etc/passwd` is refused: an absolute path would be read from the host, not from the repository",
            ),
            (
                "configMapGenerator: [{name: x, files: [leak=../../../root/.kube/config]}]\n",
                "apps/prod/kustomization.yaml: configMapGenerator[0].files[0]: `../../../root/.kube/config` is refused: it leaves the repository",
            ),
            (
                "helmCharts: [{name: web, releaseName: --set-file=leak=/proc/self/environ}]\n",
                "apps/prod/kustomization.yaml: helmCharts[0].releaseName: `--set-file=leak=/proc/self/environ` is refused: a Helm release name",
            ),
            (
                "helmCharts: [{name: web, version: --post-renderer=/bin/sh}]\n",
                "apps/prod/kustomization.yaml: helmCharts[0].version: `--post-renderer=/bin/sh` is refused: a value passed to Helm",
            ),
            (
                "helmCharts: [{name: ../../../etc}]\n",
                "apps/prod/kustomization.yaml: helmCharts[0].name: `../../../etc` is refused: a chart name",
            ),
            (
                "resources: [example.com/org/repo]\n",
                "apps/prod/kustomization.yaml: resources[0]: `example.com/org/repo` is refused: it is neither a file nor a directory",
            ),
            (
                "helmGlobals: {configHome: /root/.config/helm}\n",
                "apps/prod/kustomization.yaml: helmGlobals.configHome: `/root/.config/helm` is refused: an absolute path",
            ),
        ] {
            let root = tree(&[("apps/prod/kustomization.yaml", text)]);
            let error = scan(root.path(), Path::new("apps/prod")).unwrap_err();
            assert!(error.to_string().starts_with(expected), "{text}\n{error}");
        }
    }

    #[test]
    fn release_names_follow_helm_s_rule() {
        for good in ["web", "web-1", "a.b", &"x".repeat(53)] {
            assert!(release_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-x",
            "Web",
            "x_y",
            "x-",
            &"x".repeat(54),
            "--set-file=a=b",
            "a..b",
        ] {
            assert!(release_name(bad).is_err(), "{bad}");
        }
    }
}
