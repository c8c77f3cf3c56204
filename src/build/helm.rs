//! Flux `HelmRelease`s whose chart is in the repository (a `GitRepository` source and a chart
//! path), rendered with `helm template` when `helm` is on `PATH`, so that a values or chart
//! change shows as the objects it changes. Charts from a Helm repository or an OCI registry are
//! not fetched: such releases stay not rendered, with the reason. I/O: runs helm, writes the
//! values to a temporary file.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Renderer;
use crate::manifests::{emit_block, parse_text};

/// A release whose chart is a directory of the repository.
#[derive(Debug, Clone)]
pub struct LocalRelease {
    /// The chart's directory, relative to the root.
    pub chart: PathBuf,
    /// The release name.
    pub name: String,
    /// The namespace it installs into.
    pub namespace: String,
}

/// The chart of a HelmRelease (as applied) when it is one of `charts`, directories of the
/// repository.
pub fn local_release(value: &Value, charts: &[PathBuf]) -> Option<LocalRelease> {
    let api = value["apiVersion"].as_str().unwrap_or_default();
    if !api.starts_with("helm.toolkit.fluxcd.io/") || value["kind"] != "HelmRelease" {
        return None;
    }
    let chart = value.pointer("/spec/chart/spec")?;
    if chart.pointer("/sourceRef/kind").and_then(Value::as_str) != Some("GitRepository") {
        return None;
    }
    let path: PathBuf = chart["chart"]
        .as_str()?
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if !charts.contains(&path) {
        return None;
    }
    let field = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
    let namespace = field("/metadata/namespace").unwrap_or("default");
    Some(LocalRelease {
        chart: path,
        name: field("/spec/releaseName")
            .or(field("/metadata/name"))
            .unwrap_or_default()
            .to_owned(),
        namespace: field("/spec/targetNamespace")
            .unwrap_or(namespace)
            .to_owned(),
    })
}

/// The objects `release` makes, as `helm template` renders them with its `spec.values`;
/// `None` when `helm` is not on `PATH`.
pub fn template(
    renderer: &Renderer,
    root: &Path,
    release: &LocalRelease,
    values: &Value,
) -> Option<Result<Vec<Value>, String>> {
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
        &root.join(&release.chart),
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
