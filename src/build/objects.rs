//! Every object of a repository as it will be applied: kustomize builds rendered by kustomize,
//! plain directories as declared with their namespace, each object traced to its declaring file
//! and line. I/O: through [`Renderer`].

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Failure, NotRendered, Origin, Rendered, Renderer};
use crate::manifests::{Build, RepoIndex, is_cluster_scoped};
use crate::model::ObjectRef;

/// One object as its build applies it.
#[derive(Debug, Clone)]
pub struct AppliedObject {
    /// The object.
    pub id: ObjectRef,
    /// The build (kustomization directory) or plain directory applying it.
    pub unit: PathBuf,
    /// Whether a kustomize build applies it (else it is a plain directory's).
    pub built: bool,
    /// The file deciding its environment: the build's kustomization, or the object's own file.
    pub placement: PathBuf,
    /// The declaring file and the 1-based line the object starts on (the kustomization for a
    /// generated object, line 1 when kustomize did not say).
    pub declared: (PathBuf, usize),
    /// The object as applied.
    pub value: Value,
}

/// The objects of a repository, and the builds that gave none.
#[derive(Debug, Default)]
pub struct Rendering {
    /// Every object rendered, by unit.
    pub objects: Vec<AppliedObject>,
    /// Builds not rendered for a reason outside the repository.
    pub not_rendered: Vec<NotRendered>,
    /// Builds that could not be rendered for a reason of the repository (kustomize refused
    /// them) or of this machine (no kustomize), each with the whole error.
    pub failed: Vec<(Build, String)>,
}

/// The objects of the units of `index` that `wanted` (given the unit's directory) accepts.
pub fn objects(
    index: &RepoIndex,
    renderer: &Renderer,
    wanted: impl Fn(&Path) -> bool,
) -> Rendering {
    let mut out = Rendering::default();
    for object in &index.objects {
        let unit = index.unit(object);
        if unit.kustomization.is_some() || !wanted(&unit.path) {
            continue;
        }
        let declaration = index.declaration(object);
        let mut value = declaration.value.clone();
        if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut)
            && let Some(namespace) = &object.id.namespace
        {
            metadata.insert("namespace".into(), Value::from(namespace.clone()));
        }
        out.objects.push(AppliedObject {
            id: object.id.clone(),
            unit: unit.path.clone(),
            built: false,
            placement: declaration.location.file.clone(),
            declared: (declaration.location.file.clone(), declaration.location.line),
            value,
        });
    }
    for build in index
        .builds
        .iter()
        .filter(|b| !b.component && wanted(&b.dir))
    {
        match renderer.render(&index.root, build) {
            Ok(rendered) => out
                .objects
                .extend(rendered.into_iter().map(|r| applied(index, build, r))),
            Err(Failure::NotRendered(not)) => out.not_rendered.push(not),
            Err(error) => out.failed.push((build.clone(), error.to_string())),
        }
    }
    out
}

/// A rendered object with its identity and declaring line.
fn applied(index: &RepoIndex, build: &Build, rendered: Rendered) -> AppliedObject {
    let id = identity(&rendered.value, &index.cluster_kinds);
    let declared = match &rendered.origin {
        Origin::File(file) => (file.clone(), declared_line(index, file, &id)),
        Origin::Generated(file) => {
            let line = index
                .kustomizations
                .iter()
                .find(|k| &k.location.file == file)
                .map_or(1, |k| k.location.line);
            (file.clone(), line)
        }
        Origin::Remote(_) | Origin::Unknown => (build.kustomization.clone(), 1),
    };
    AppliedObject {
        id,
        unit: build.dir.clone(),
        built: true,
        placement: build.kustomization.clone(),
        declared,
        value: rendered.value,
    }
}

/// The identity of a rendered object; a namespaced object without a namespace lands in
/// `default`, as `kubectl apply` puts it.
pub fn identity(value: &Value, cluster_kinds: &[String]) -> ObjectRef {
    let field = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
    let kind = field("/kind").unwrap_or_default();
    let namespace = if is_cluster_scoped(kind, cluster_kinds) {
        None
    } else {
        Some(field("/metadata/namespace").unwrap_or("default"))
    };
    ObjectRef::new(
        field("/apiVersion").unwrap_or_default(),
        kind,
        namespace,
        field("/metadata/name")
            .or(field("/metadata/generateName"))
            .unwrap_or_default(),
    )
}

/// The line of `file` declaring the object kustomize rendered as `id`: the declaration of its
/// kind with its name, else one whose name the rendered name contains (a name prefix or
/// suffix), else the first of its kind, else line 1.
fn declared_line(index: &RepoIndex, file: &Path, id: &ObjectRef) -> usize {
    let same_kind: Vec<_> = index
        .declarations
        .iter()
        .chain(&index.patch_declarations)
        .filter(|d| d.location.file == file && d.id.kind == id.kind)
        .collect();
    same_kind
        .iter()
        .find(|d| d.id.name == id.name)
        .or_else(|| same_kind.iter().find(|d| id.name.contains(&d.id.name)))
        .or(same_kind.first())
        .map_or(1, |d| d.location.line)
}
