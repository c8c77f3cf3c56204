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

/// `value` without its origin annotation, and the origin it named.
pub(super) fn take(mut value: Value, wrapper: &Wrapper) -> (Value, Origin) {
    let Some(annotations) = value
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    else {
        return (value, Origin::Unknown);
    };
    let text = annotations.remove(ANNOTATION);
    if annotations.is_empty()
        && let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut)
    {
        metadata.remove("annotations");
    }
    let Some(text) = text.as_ref().and_then(Value::as_str) else {
        return (value, Origin::Unknown);
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
    (value, found)
}
