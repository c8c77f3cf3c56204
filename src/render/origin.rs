//! Where kustomize took a rendered object from: its `config.kubernetes.io/origin` annotation,
//! read and taken off the object. Pure.

use std::path::PathBuf;

use serde_json::Value;

use super::Wrapper;

/// The annotation kustomize writes with `buildMetadata: [originAnnotations]`.
const ANNOTATION: &str = "config.kubernetes.io/origin";

/// Where a rendered object comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file of the repository, relative to its root.
    File(PathBuf),
    /// A generator (`configMapGenerator`, `secretGenerator`, ...) of this kustomization file.
    Generated(PathBuf),
    /// A remote resource.
    Remote(String),
    /// kustomize did not say.
    Unknown,
}

/// The annotation kustomize writes with `buildMetadata: [transformerAnnotations]`.
const TRANSFORMATIONS: &str = "alpha.config.kubernetes.io/transformations";

/// `value` without its origin and transformer annotations, the origin it named, and the
/// transformers that changed it (`PatchTransformer in clusters/prod/kustomization.yaml`).
pub(super) fn take(mut value: Value, wrapper: &Wrapper) -> (Value, Origin, Vec<String>) {
    let Some(annotations) = value
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    else {
        return (value, Origin::Unknown, vec![]);
    };
    let text = annotations.remove(ANNOTATION);
    let changed = annotations.remove(TRANSFORMATIONS);
    if annotations.is_empty()
        && let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut)
    {
        metadata.remove("annotations");
    }
    let transformations = changed
        .as_ref()
        .and_then(Value::as_str)
        .map(|text| transformers(text, wrapper))
        .unwrap_or_default();
    let Some(text) = text.as_ref().and_then(Value::as_str) else {
        return (value, Origin::Unknown, transformations);
    };
    let origin: Value = serde_saphyr::from_str(text).unwrap_or_default();
    let field = |name: &str| origin.get(name).and_then(Value::as_str);
    let found = if let Some(repo) = field("repo") {
        Origin::Remote(repo.to_owned())
    } else if let Some(path) = field("path") {
        wrapper.resolve(path).map_or(Origin::Unknown, Origin::File)
    } else if let Some(file) = field("configuredIn") {
        wrapper
            .resolve(file)
            .map_or(Origin::Unknown, Origin::Generated)
    } else {
        Origin::Unknown
    };
    (value, found, transformations)
}

/// The transformers a transformations annotation lists, each as its kind and the
/// kustomization, relative to the root, that configures it.
fn transformers(text: &str, wrapper: &Wrapper) -> Vec<String> {
    let listed: Value = serde_saphyr::from_str(text).unwrap_or_default();
    listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let kind = t.pointer("/configuredBy/kind")?.as_str()?;
            let place = t["configuredIn"]
                .as_str()
                .and_then(|f| wrapper.resolve(f))
                .map_or_else(String::new, |f| format!(" in `{}`", f.display()));
            Some(format!("{kind}{place}"))
        })
        .collect()
}
