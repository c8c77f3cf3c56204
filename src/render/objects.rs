//! Every object of a repository as it will be applied: kustomize builds rendered by kustomize,
//! plain directories as declared with their namespace, each object traced to its declaring file
//! and line. I/O: through [`Renderer`].

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Failure, NotRendered, Origin, Rendered, Renderer, flux};
use crate::manifests::{Build, RepoIndex, Scopes, namespace_of};
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
    /// What could not be rendered for a reason of the repository (kustomize refused a build, a
    /// substitution variable has no value) or of this machine (no kustomize).
    pub failed: Vec<Failed>,
}

/// A build or file that could not be rendered.
#[derive(Debug, Clone)]
pub struct Failed {
    /// The files and directories it reads.
    pub about: Vec<PathBuf>,
    /// The file deciding its environment.
    pub placement: PathBuf,
    /// The whole error, naming the build or file.
    pub message: String,
}

/// The objects of the units of `index` that `wanted` accepts, given the unit's directory and
/// whether it is a kustomize build.
pub fn objects(
    index: &RepoIndex,
    renderer: &Renderer,
    wanted: impl Fn(&Path, bool) -> bool,
) -> Rendering {
    let mut out = Rendering::default();
    let substitutions = flux::substitutions(index);
    for object in &index.objects {
        let unit = index.unit(object);
        if unit.kustomization.is_some() || !wanted(&unit.path, false) {
            continue;
        }
        let declaration = index.declaration(object);
        let mut value = declaration.value.clone();
        if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut)
            && let Some(namespace) = &object.id.namespace
        {
            metadata.insert("namespace".into(), Value::from(namespace.clone()));
        }
        let file = &declaration.location.file;
        if let Some(substitution) = flux::for_unit(&substitutions, file, false) {
            match substituted(substitution, value) {
                Ok(done) => value = done,
                Err(message) => {
                    let mut about = substitution.files.clone();
                    about.push(file.clone());
                    out.failed.push(Failed {
                        about,
                        placement: file.clone(),
                        message: format!("{}: {message}", declaration.location),
                    });
                    continue;
                }
            }
        }
        out.objects.push(AppliedObject {
            id: identity(&value, &index.scopes),
            unit: unit.path.clone(),
            built: false,
            placement: declaration.location.file.clone(),
            declared: (declaration.location.file.clone(), declaration.location.line),
            value,
        });
    }
    let builds: Vec<&Build> = index
        .builds
        .iter()
        .filter(|b| !b.component && wanted(&b.dir, true))
        .collect();
    let renders = render_all(index, renderer, &builds);
    for (build, rendered) in builds.into_iter().zip(renders) {
        let failed = |message: String| Failed {
            about: build.dirs.clone(),
            placement: build.kustomization.clone(),
            message,
        };
        let rendered = match rendered {
            Ok(rendered) => rendered,
            Err(Failure::NotRendered(not)) => {
                out.not_rendered.push(not);
                continue;
            }
            Err(error) => {
                out.failed.push(failed(error.to_string()));
                continue;
            }
        };
        let substitution = flux::for_unit(&substitutions, &build.dir, true);
        let mut objects = Vec::new();
        for mut r in rendered {
            if let Some(substitution) = substitution {
                match substituted(substitution, r.value) {
                    Ok(done) => r.value = done,
                    Err(message) => {
                        let dir = crate::manifests::display_dir(&build.dir);
                        let mut failed = failed(format!("{dir}: {message}"));
                        failed.about.extend(substitution.files.iter().cloned());
                        out.failed.push(failed);
                        objects.clear();
                        break;
                    }
                }
            }
            objects.push(applied(index, build, r));
        }
        out.objects.extend(objects);
    }
    out
}

/// Each of `builds` rendered, on every core (kustomize spends most of a build loading its
/// schemas, one process per build), in their order.
fn render_all(
    index: &RepoIndex,
    renderer: &Renderer,
    builds: &[&Build],
) -> Vec<Result<Vec<Rendered>, Failure>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, Result<Vec<Rendered>, Failure>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(builds.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(build) = builds.get(i) else {
                            break mine;
                        };
                        mine.push((i, renderer.render(&index.root, build)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let mut out: Vec<Option<Result<Vec<Rendered>, Failure>>> =
        builds.iter().map(|_| None).collect();
    for (i, result) in done.drain(..) {
        out[i] = Some(result);
    }
    // A worker that died leaves its builds failed, never missing: a missing build would read
    // as every object of it removed.
    out.into_iter()
        .zip(builds)
        .map(|(result, build)| {
            result.unwrap_or_else(|| {
                Err(Failure::Failed {
                    kustomization: build.kustomization.clone(),
                    message: "rendering stopped before this build was done".to_owned(),
                })
            })
        })
        .collect()
}

/// `value` with the variables of `substitution`; the error names the Flux Kustomization.
fn substituted(substitution: &flux::Substitution, value: Value) -> Result<Value, String> {
    let vars = substitution
        .vars
        .as_ref()
        .map_err(|e| format!("{}: {e}", substitution.applier))?;
    flux::substitute(value, vars)
        .map_err(|e| format!("post-build substitution of {}: {e}", substitution.applier))
}

/// A rendered object with its identity and declaring line.
fn applied(index: &RepoIndex, build: &Build, rendered: Rendered) -> AppliedObject {
    let id = identity(&rendered.value, &index.scopes);
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
pub fn identity(value: &Value, scopes: &Scopes) -> ObjectRef {
    let field = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
    let kind = field("/kind").unwrap_or_default();
    let namespace = namespace_of(kind, field("/metadata/namespace"), scopes);
    ObjectRef::new(
        field("/apiVersion").unwrap_or_default(),
        kind,
        namespace.as_deref(),
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
