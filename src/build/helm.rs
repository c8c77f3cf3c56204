//! Helm releases whose chart is in the repository (a Flux `HelmRelease` from a `GitRepository`,
//! an Argo CD `Application` whose source path is a chart), rendered with `helm template` when
//! `helm` is on `PATH`, so that a values or chart change shows as the objects it changes. Charts
//! from a Helm repository or an OCI registry are not fetched: such releases stay not rendered,
//! with the reason. I/O: reads value files, runs helm, writes the values to a temporary file.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Renderer;
use crate::manifests::{emit_block, parse_text};

/// A release whose chart is a directory of the repository.
#[derive(Debug, Clone)]
pub struct LocalRelease {
    /// Where the chart is.
    pub chart: Chart,
    /// The release name.
    pub name: String,
    /// The namespace it installs into.
    pub namespace: String,
    /// Its values, merged as its tool merges them.
    pub values: Value,
}

/// Where a release's chart is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chart {
    /// A directory of the repository, relative to the root.
    Dir(PathBuf),
    /// A chart of a Helm repository (`https://`) or an OCI registry (`oci://`), fetched by
    /// `helm template` itself.
    Fetched {
        /// The repository's URL.
        repository: String,
        /// The chart's name.
        name: String,
        /// The version or version range, when one is given.
        version: Option<String>,
    },
}

impl Chart {
    /// The directory, for a chart of the repository.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Chart::Dir(dir) => Some(dir),
            Chart::Fetched { .. } => None,
        }
    }

    /// The chart as `helm template` takes it, after the release name.
    fn args(&self, root: &Path) -> Vec<std::ffi::OsString> {
        match self {
            Chart::Dir(dir) => vec![root.join(dir).into_os_string()],
            Chart::Fetched {
                repository,
                name,
                version,
            } => {
                let mut args: Vec<std::ffi::OsString> = if repository.starts_with("oci://") {
                    vec![format!("{}/{name}", repository.trim_end_matches('/')).into()]
                } else {
                    vec![name.into(), "--repo".into(), repository.into()]
                };
                if let Some(version) = version {
                    args.extend(["--version".into(), version.into()]);
                }
                args
            }
        }
    }
}

/// The Helm repositories a repository declares (Flux `HelmRepository`), by namespace and name.
pub fn repositories(
    index: &crate::manifests::RepoIndex,
) -> std::collections::BTreeMap<(String, String), String> {
    index
        .declarations
        .iter()
        .filter(|d| d.id.group == "source.toolkit.fluxcd.io" && d.id.kind == "HelmRepository")
        .filter_map(|d| {
            let url = d.value.pointer("/spec/url").and_then(Value::as_str)?;
            let namespace =
                d.id.namespace
                    .clone()
                    .unwrap_or_else(|| "flux-system".into());
            Some(((namespace, d.id.name.clone()), url.to_owned()))
        })
        .collect()
}

/// `./charts/podinfo/` as `charts/podinfo`.
fn normalise(path: &str) -> PathBuf {
    path.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect()
}

/// The chart of a Flux HelmRelease or an Argo CD Application (as applied) when it is one of
/// `charts`, directories of the repository under `root`; an error when its values cannot be
/// read.
pub fn local_release(
    value: &Value,
    charts: &[PathBuf],
    repositories: &std::collections::BTreeMap<(String, String), String>,
    root: &Path,
) -> Option<Result<LocalRelease, String>> {
    let api = value["apiVersion"].as_str().unwrap_or_default();
    let field = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
    let name = field("/metadata/name")?;
    if api.starts_with("helm.toolkit.fluxcd.io/") && value["kind"] == "HelmRelease" {
        let chart = value.pointer("/spec/chart/spec")?;
        let namespace = field("/metadata/namespace").unwrap_or("default");
        let source = chart["sourceRef"]["kind"].as_str();
        let chart = match source {
            Some("GitRepository") => {
                let path = normalise(chart["chart"].as_str()?);
                if !charts.contains(&path) {
                    return None;
                }
                Chart::Dir(path)
            }
            Some("HelmRepository") => {
                let repository_namespace = chart["sourceRef"]["namespace"]
                    .as_str()
                    .unwrap_or(namespace);
                let repository_name = chart["sourceRef"]["name"].as_str()?;
                let key = (repository_namespace.to_owned(), repository_name.to_owned());
                Chart::Fetched {
                    repository: repositories.get(&key)?.clone(),
                    name: chart["chart"].as_str()?.to_owned(),
                    version: chart["version"].as_str().map(str::to_owned),
                }
            }
            _ => return None,
        };
        return Some(Ok(LocalRelease {
            chart,
            name: field("/spec/releaseName").unwrap_or(name).to_owned(),
            namespace: field("/spec/targetNamespace")
                .unwrap_or(namespace)
                .to_owned(),
            values: value
                .pointer("/spec/values")
                .cloned()
                .unwrap_or(Value::Null),
        }));
    }
    if api.starts_with("argoproj.io/") && value["kind"] == "Application" {
        let source = value.pointer("/spec/source")?;
        let (chart, values_dir) = match (source["chart"].as_str(), source["path"].as_str()) {
            (Some(chart), _) => {
                let chart = Chart::Fetched {
                    repository: source["repoURL"].as_str()?.to_owned(),
                    name: chart.to_owned(),
                    version: source["targetRevision"].as_str().map(str::to_owned),
                };
                (chart, None)
            }
            (None, Some(path)) => {
                let path = normalise(path);
                if !charts.contains(&path) {
                    return None;
                }
                (Chart::Dir(path.clone()), Some(path))
            }
            (None, None) => return None,
        };
        let helm = &source["helm"];
        let values = argo_values(root, values_dir.as_deref(), helm);
        return Some(values.map(|values| {
            LocalRelease {
                name: helm["releaseName"].as_str().unwrap_or(name).to_owned(),
                namespace: field("/spec/destination/namespace")
                    .unwrap_or("default")
                    .to_owned(),
                chart,
                values,
            }
        }));
    }
    None
}

/// An Argo CD Helm source's values as Argo CD merges them: each of `valueFiles` (relative to
/// the chart), then `values` (a YAML string), then `valuesObject`, later ones winning.
fn argo_values(root: &Path, chart: Option<&Path>, helm: &Value) -> Result<Value, String> {
    let mut merged = Value::Object(serde_json::Map::new());
    for file in helm["valueFiles"].as_array().into_iter().flatten() {
        let file = file.as_str().ok_or("a valueFiles entry is not a string")?;
        let chart = chart.ok_or("valueFiles of a fetched chart are not in the repository")?;
        let path = chart.join(file);
        let text = std::fs::read_to_string(root.join(&path))
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        merge(&mut merged, parse_values(&path, &text)?);
    }
    if let Some(text) = helm["values"].as_str() {
        merge(&mut merged, parse_values(Path::new("helm.values"), text)?);
    }
    if let Some(object) = helm.get("valuesObject") {
        merge(&mut merged, object.clone());
    }
    Ok(merged)
}

fn parse_values(file: &Path, text: &str) -> Result<Value, String> {
    let parsed = parse_text(file, text);
    if let Some(error) = parsed.errors.first() {
        return Err(error.to_string());
    }
    Ok(parsed
        .documents
        .into_iter()
        .next()
        .map_or(Value::Null, |d| d.value))
}

/// `over` merged into `base`, mappings key by key, anything else replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, over) => *base = over,
    }
}

/// The objects `release` makes, as `helm template` renders them with its values; `None` when
/// `helm` is not on `PATH`.
pub fn template(
    renderer: &Renderer,
    root: &Path,
    release: &LocalRelease,
) -> Option<Result<Vec<Value>, String>> {
    let values = &release.values;
    let kustomize = renderer.kustomize()?;
    let file = match tempfile::Builder::new()
        .prefix("remediator-values-")
        .suffix(".yaml")
        .tempfile()
    {
        Ok(file) => file,
        Err(error) => return Some(Err(format!("cannot write the values: {error}"))),
    };
    let values = if values.is_object() {
        emit_block(values)
    } else {
        "{}\n".to_owned()
    };
    if let Err(error) = std::fs::write(file.path(), values) {
        return Some(Err(format!("cannot write the values: {error}")));
    }
    let output = kustomize.helm_template(
        &release.chart.args(root),
        &release.name,
        &release.namespace,
        file.path(),
    )?;
    Some(output.map_err(|e| e.to_string()).and_then(|text| {
        let parsed = parse_text(Path::new("helm-template.yaml"), &text);
        match parsed.errors.first() {
            Some(error) => Err(format!("helm template's output does not parse: {error}")),
            None => Ok(parsed
                .documents
                .into_iter()
                .map(|d| d.value)
                .filter(Value::is_object)
                .collect()),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argo_cd_values_merge_files_then_the_string_then_the_object() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("charts/app")).unwrap();
        std::fs::write(
            root.path().join("charts/app/values-prod.yaml"),
            "replicaCount: 2\nimage: {tag: \"1.0\", pullPolicy: Always}\n",
        )
        .unwrap();
        let app = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "app", "namespace": "argocd"},
            "spec": {"destination": {"namespace": "shop"},
                "source": {"path": "./charts/app", "helm": {
                    "valueFiles": ["values-prod.yaml"],
                    "values": "replicaCount: 3\n",
                    "valuesObject": {"image": {"tag": "1.1"}}}}}});
        let charts = [PathBuf::from("charts/app")];
        let none = Default::default();
        let release = local_release(&app, &charts, &none, root.path())
            .unwrap()
            .unwrap();
        assert_eq!(
            (release.name.as_str(), release.namespace.as_str()),
            ("app", "shop")
        );
        assert_eq!(
            release.values,
            json!({"replicaCount": 3, "image": {"tag": "1.1", "pullPolicy": "Always"}})
        );
        let missing = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "app"},
            "spec": {"source": {"path": "charts/app", "helm": {"valueFiles": ["nope.yaml"]}}}});
        let error = local_release(&missing, &charts, &none, root.path())
            .unwrap()
            .unwrap_err();
        assert!(error.contains("charts/app/nope.yaml"), "{error}");
        let elsewhere = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "app"}, "spec": {"source": {"path": "k8s"}}});
        assert!(local_release(&elsewhere, &charts, &none, root.path()).is_none());
    }
}
