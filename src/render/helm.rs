//! Helm releases whose chart is in the repository (a Flux `HelmRelease` from a `GitRepository`,
//! an Argo CD `Application` whose source path is a chart), rendered with `helm template` when
//! `helm` is on `PATH`, so that a values or chart change shows as the objects it changes. Charts
//! from a Helm repository or an OCI registry are fetched only from what the trusted
//! configuration's `render.allowRemote` allows; other releases stay not rendered, with the
//! reason. Release names and namespaces follow Helm's and Kubernetes' rules, values files
//! resolve inside the repository ([`super::paths`]), and helm renders a copy of the chart in a
//! sandbox ([`super::sandbox`]). I/O: reads value files, copies the chart, runs helm, writes the
//! values to a temporary file.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Renderer;
use super::kustomize::ChartArgs;
use super::paths::{self, Absolute, Refusal, Source};
use super::prescan::{dns_label, not_a_flag, release_name};
use super::sandbox::Sandbox;
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

/// The chart of a Flux HelmRelease or an Argo CD Application (as applied, declared in `file`)
/// when it is one of `charts`, directories of the repository under `root`, or a chart fetched
/// from a repository; an error when its values cannot be read, or when its release name,
/// namespace or a values file is refused (naming the file, the field and the rule).
pub fn local_release(
    value: &Value,
    file: &Path,
    charts: &[PathBuf],
    repositories: &std::collections::BTreeMap<(String, String), String>,
    root: &Path,
) -> Option<Result<LocalRelease, String>> {
    let release = release_of(value, file, charts, repositories, root)?;
    Some(release.and_then(|release| {
        let refuse = |field: &str, value: &str, rule: String| {
            Refusal {
                file: file.to_owned(),
                field: field.to_owned(),
                value: value.to_owned(),
                rule,
            }
            .to_string()
        };
        let flux = value["kind"] == "HelmRelease";
        let (name_field, namespace_field) = if flux {
            let name = if value.pointer("/spec/releaseName").is_some() {
                "spec.releaseName"
            } else {
                "metadata.name"
            };
            let namespace = if value.pointer("/spec/targetNamespace").is_some() {
                "spec.targetNamespace"
            } else {
                "metadata.namespace"
            };
            (name, namespace)
        } else {
            let name = if value.pointer("/spec/source/helm/releaseName").is_some() {
                "spec.source.helm.releaseName"
            } else {
                "metadata.name"
            };
            (name, "spec.destination.namespace")
        };
        release_name(&release.name).map_err(|rule| refuse(name_field, &release.name, rule))?;
        dns_label(&release.namespace, 63)
            .map_err(|rule| refuse(namespace_field, &release.namespace, rule))?;
        if let Chart::Fetched { name, version, .. } = &release.chart {
            not_a_flag(name).map_err(|rule| refuse("chart", name, rule))?;
            if let Some(version) = version {
                not_a_flag(version).map_err(|rule| refuse("version", version, rule))?;
            }
        }
        Ok(release)
    }))
}

fn release_of(
    value: &Value,
    file: &Path,
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
        let values = argo_values(root, file, values_dir.as_deref(), helm);
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
/// the chart, or to the repository root when absolute, and never outside it), then `values`
/// (a YAML string), then `valuesObject`, later ones winning. `app` is the Application's file.
fn argo_values(
    root: &Path,
    app: &Path,
    chart: Option<&Path>,
    helm: &Value,
) -> Result<Value, String> {
    let mut merged = Value::Object(serde_json::Map::new());
    for (i, file) in helm["valueFiles"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("spec.source.helm.valueFiles[{i}]");
        let file = file
            .as_str()
            .ok_or_else(|| format!("{}: {field}: not a string", app.display()))?;
        let chart = chart.ok_or("valueFiles of a fetched chart are not in the repository")?;
        let source = Source {
            file: app,
            field: &field,
        };
        let path = paths::resolve(root, chart, file, Absolute::FromRoot, source)
            .map_err(|refusal| refusal.to_string())?;
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

/// `over` merged into `base` as Helm merges values: mappings key by key, anything else replaced,
/// a key set to null removed; a layer that is null as a whole (absent) changes nothing.
pub(crate) fn merge_values(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                // A key set to null in a later layer is taken out, as Helm takes it out.
                if value.is_null() {
                    base.remove(&key);
                } else {
                    merge_values(base.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        (_, Value::Null) => {}
        (base, over) => *base = over,
    }
}

/// The objects `release` makes, as `helm template` renders them with its values; `None` when
/// `helm` is not on `PATH`. A chart of the repository is rendered from a copy; a fetched chart
/// only from a repository that `render.allowRemote` allows.
pub fn template(
    renderer: &Renderer,
    root: &Path,
    release: &LocalRelease,
) -> Option<Result<Vec<Value>, String>> {
    let kustomize = renderer.kustomize()?;
    let fetched = matches!(release.chart, Chart::Fetched { .. });
    if let Chart::Fetched { repository, .. } = &release.chart
        && !renderer.allow_remote().allows(repository)
    {
        return Some(Err(format!(
            "its chart is fetched from `{repository}`, which `render.allowRemote` in the trusted configuration does not allow: nothing is fetched while a change is judged"
        )));
    }
    let sandbox = match Sandbox::new(fetched) {
        Ok(sandbox) => sandbox,
        Err(error) => return Some(Err(format!("cannot make a temporary home: {error}"))),
    };
    let values = if release.values.is_object() {
        emit_block(&release.values)
    } else {
        "{}\n".to_owned()
    };
    let values_file = sandbox.home().join("values.yaml");
    if let Err(error) = std::fs::write(&values_file, values) {
        return Some(Err(format!("cannot write the values: {error}")));
    }
    let copy = sandbox.home().join("chart");
    let (reference, flags) = match &release.chart {
        Chart::Dir(dir) => {
            if let Err(error) = super::copy_dir(&root.join(dir), &copy) {
                return Some(Err(format!("cannot copy the chart: {error}")));
            }
            (copy.into_os_string(), vec![])
        }
        Chart::Fetched {
            repository,
            name,
            version,
        } => {
            let (reference, mut flags): (std::ffi::OsString, Vec<std::ffi::OsString>) =
                if repository.starts_with("oci://") {
                    (
                        format!("{}/{name}", repository.trim_end_matches('/')).into(),
                        vec![],
                    )
                } else {
                    (name.into(), vec!["--repo".into(), repository.into()])
                };
            if let Some(version) = version {
                flags.extend(["--version".into(), version.into()]);
            }
            (reference, flags)
        }
    };
    let chart = ChartArgs {
        reference: &reference,
        flags,
    };
    let output = kustomize.helm_template(
        &sandbox,
        sandbox.home(),
        &chart,
        &release.name,
        &release.namespace,
        &values_file,
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
    fn values_merge_as_helm_merges_them() {
        let mut base =
            json!({"resources": {"limits": {"memory": "300Mi", "cpu": "1"}}, "tag": "1"});
        merge_values(
            &mut base,
            json!({"resources": {"limits": {"memory": null}}, "tag": "2"}),
        );
        assert_eq!(
            base,
            json!({"resources": {"limits": {"cpu": "1"}}, "tag": "2"})
        );
        merge_values(&mut base, Value::Null);
        assert_eq!(base["tag"], "2", "an absent layer changes nothing");
    }

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
        let release = local_release(
            &app,
            Path::new("apps/app.yaml"),
            &charts,
            &none,
            root.path(),
        )
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
        let error = local_release(
            &missing,
            Path::new("apps/app.yaml"),
            &charts,
            &none,
            root.path(),
        )
        .unwrap()
        .unwrap_err();
        assert!(error.contains("charts/app/nope.yaml"), "{error}");
        let elsewhere = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "app"}, "spec": {"source": {"path": "k8s"}}});
        assert!(
            local_release(
                &elsewhere,
                Path::new("apps/app.yaml"),
                &charts,
                &none,
                root.path()
            )
            .is_none()
        );
    }

    #[test]
    fn hostile_names_and_values_files_are_refused_naming_the_file_and_field() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("charts/app")).unwrap();
        let charts = [PathBuf::from("charts/app")];
        let none = Default::default();
        let file = Path::new("apps/app.yaml");
        let refused = |app: Value| {
            local_release(&app, file, &charts, &none, root.path())
                .unwrap()
                .unwrap_err()
        };
        let named = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "--set-file=leak=/proc/self/environ"},
            "spec": {"destination": {"namespace": "shop"}, "source": {"path": "charts/app"}}});
        let error = refused(named);
        assert!(
            error.starts_with("apps/app.yaml: metadata.name: `--set-file=leak=/proc/self/environ` is refused: a Helm release name"),
            "{error}"
        );
        let flux = json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"releaseName": "--post-renderer=/bin/sh", "chart": {"spec": {"chart": "./charts/app",
                "sourceRef": {"kind": "GitRepository", "name": "repo"}}}}});
        assert!(
            refused(flux).starts_with(
                "apps/app.yaml: spec.releaseName: `--post-renderer=/bin/sh` is refused"
            )
        );
        for (raw, rule) in [
            ("../../../../etc/os-release", "leaves the repository"),
            ("https://example.com/values.yaml", "remote source"),
        ] {
            let app = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": "app"},
                "spec": {"destination": {"namespace": "shop"},
                    "source": {"path": "charts/app", "helm": {"valueFiles": ["values.yaml", raw]}}}});
            std::fs::write(root.path().join("charts/app/values.yaml"), "a: 1\n").unwrap();
            let error = refused(app);
            assert!(
                error.starts_with(&format!(
                    "apps/app.yaml: spec.source.helm.valueFiles[1]: `{raw}` is refused: "
                )) && error.contains(rule),
                "{error}"
            );
        }
        let rooted = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "app"},
            "spec": {"destination": {"namespace": "shop"},
                "source": {"path": "charts/app", "helm": {"valueFiles": ["/etc/os-release"]}}}});
        let error = refused(rooted);
        assert!(
            error.starts_with("etc/os-release: cannot read"),
            "read from the repository root: {error}"
        );
    }
}
