//! Builds rendered by kustomize itself ([`kustomize`]), as Argo CD and Flux render them, with
//! each rendered object traced back to the file that declares it (kustomize's own origin
//! annotations), and every object of a repository as it will be applied ([`objects`]).
//! A build is rendered once per run for the same inputs (the files under the directories it
//! reads). A build that cannot be rendered for a reason outside the repository (Helm not
//! installed, a remote resource that cannot be fetched) is [`NotRendered`]; any other failure is
//! kustomize's own error, never a partial render.
//!
//! Repository content is hostile: before kustomize runs, [`prescan`] reads every kustomization
//! the build loads and refuses a path that leaves the repository or a Helm argument that reads
//! as a flag ([`Failure::Refused`]); a remote source that the trusted configuration does not
//! allow ([`AllowRemote`]) leaves the build not rendered. kustomize then runs on a temporary
//! copy of the directories the build loads, through [`sandbox`]. I/O: reads the build's files,
//! copies them and writes a wrapper kustomization in a temporary directory, runs kustomize.

pub mod allowlist;
pub mod flux;
pub mod helm;
pub mod kustomize;
mod objects;
mod origin;
pub mod paths;
pub mod prescan;
mod reach;
pub mod release;
mod renames;
pub mod sandbox;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

pub use allowlist::AllowRemote;
pub use kustomize::{Kustomize, Missing};
pub use objects::{AppliedObject, Failed, Rendering, identity, objects};
pub use origin::Origin;
pub use paths::Refusal;
pub use reach::learn_reach;
pub use renames::learn_renames;

use crate::manifests::{Build, display_dir, parse_text};

/// A build that cannot be rendered here, and why: it is reported, never taken as "no change".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotRendered {
    /// The build's directory.
    pub build: PathBuf,
    /// Why.
    pub reason: String,
}

/// Why a build gives no objects.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    /// Something outside the repository is missing.
    #[error("{}: not rendered: {}", display_dir(&.0.build), .0.reason)]
    NotRendered(NotRendered),
    /// Neither kustomize nor kubectl is there to render it.
    #[error("{}: cannot be rendered: {missing}", kustomization.display())]
    NoKustomize {
        /// The build's kustomization file.
        kustomization: PathBuf,
        /// What is missing.
        missing: Missing,
    },
    /// The build names a path or a value that is refused before anything runs.
    #[error("{0}")]
    Refused(Refusal),
    /// kustomize refused the build; the message is its own.
    #[error("{}: kustomize build failed: {message}", kustomization.display())]
    Failed {
        /// The build's kustomization file.
        kustomization: PathBuf,
        /// kustomize's message.
        message: String,
    },
}

/// One object of a build's output.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The object as applied, without the origin and transformer annotations.
    pub value: Value,
    /// Where kustomize took it from.
    pub origin: Origin,
    /// The transformers that changed it after its source, as kustomize names them
    /// (`PatchTransformer in clusters/prod/kustomization.yaml`).
    pub transformations: Vec<String>,
}

/// Renders, by build directory and hash of its inputs.
type Cache = HashMap<(PathBuf, u64), Result<Vec<Rendered>, Failure>>;

/// Renders builds with kustomize, each set of inputs once.
#[derive(Debug)]
pub struct Renderer {
    kustomize: Result<Kustomize, Missing>,
    allow: AllowRemote,
    cache: Mutex<Cache>,
}

impl Renderer {
    /// A renderer using `kustomize` (see [`Kustomize::find`]) that fetches only the remote
    /// sources `allow` allows; a missing kustomize is an error only when a build has to be
    /// rendered.
    pub fn new(kustomize: Result<Kustomize, Missing>, allow: AllowRemote) -> Self {
        Renderer {
            kustomize,
            allow,
            cache: Mutex::default(),
        }
    }

    /// A renderer with the kustomize on `PATH`, fetching what `allow` allows (the trusted
    /// configuration's `render.allowRemote`).
    pub fn from_path(allow: AllowRemote) -> Self {
        Self::new(Kustomize::find(), allow)
    }

    /// A renderer with the kustomize on `PATH`, fetching what the trusted configuration's
    /// `render.allowRemote` allows.
    pub fn for_config(config: &crate::config::Config) -> Self {
        Self::from_path(AllowRemote::new(config.allow_remote.clone()))
    }

    /// The remote sources it may fetch.
    pub fn allow_remote(&self) -> &AllowRemote {
        &self.allow
    }

    /// The program builds are rendered with, and its version; `None` when there is none.
    pub fn name(&self) -> Option<&str> {
        self.kustomize.as_ref().ok().map(Kustomize::name)
    }

    /// The program builds are rendered with, when there is one.
    pub fn kustomize(&self) -> Option<&Kustomize> {
        self.kustomize.as_ref().ok()
    }

    /// Whether `helm` is on `PATH` beside kustomize.
    pub fn has_helm(&self) -> bool {
        self.kustomize.as_ref().is_ok_and(Kustomize::has_helm)
    }

    /// The objects of `build` under `root`, as kustomize renders them.
    pub fn render(&self, root: &Path, build: &Build) -> Result<Vec<Rendered>, Failure> {
        let key = (build.dir.clone(), inputs_hash(root, build));
        if let Some(done) = self.lock().get(&key) {
            return done.clone();
        }
        let result = self.render_uncached(root, build);
        self.lock().insert(key, result.clone());
        result
    }

    /// The objects of `build` under `root` with `edits` (file relative to the root, new text)
    /// written over its files: the build's inputs are copied into a temporary directory, which
    /// is removed afterwards.
    pub fn render_edited(
        &self,
        root: &Path,
        build: &Build,
        edits: &[(&Path, &str)],
    ) -> Result<Vec<Rendered>, Failure> {
        // Without kustomize there is nothing to copy the build for.
        self.kustomize_for(build)?;
        let failed = |error: std::io::Error| Failure::Failed {
            kustomization: build.kustomization.clone(),
            message: format!("cannot copy its files to render the edit: {error}"),
        };
        let copy = tempfile::Builder::new()
            .prefix("remediator-edit-")
            .tempdir()
            .map_err(failed)?;
        let mut files = Vec::new();
        for dir in &build.dirs {
            collect_files(&root.join(dir), &mut files);
        }
        for file in files {
            let relative = file.strip_prefix(root).unwrap_or(&file);
            let target = copy.path().join(relative);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(failed)?;
            }
            std::fs::copy(&file, &target).map_err(failed)?;
        }
        for (file, text) in edits {
            if build.reads(file) {
                std::fs::write(copy.path().join(file), text).map_err(failed)?;
            }
        }
        self.render(copy.path(), build)
    }

    /// The kustomize to render `build` with; its absence, said of `build`.
    fn kustomize_for(&self, build: &Build) -> Result<&Kustomize, Failure> {
        self.kustomize
            .as_ref()
            .map_err(|missing| Failure::NoKustomize {
                kustomization: build.kustomization.clone(),
                missing: missing.clone(),
            })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn render_uncached(&self, root: &Path, build: &Build) -> Result<Vec<Rendered>, Failure> {
        let not_rendered = |reason: String| {
            Failure::NotRendered(NotRendered {
                build: build.dir.clone(),
                reason,
            })
        };
        let failed = |message: String| Failure::Failed {
            kustomization: build.kustomization.clone(),
            message,
        };
        if build.component {
            return Err(not_rendered(
                "a kustomize Component is built only through the builds that use it".to_owned(),
            ));
        }
        let kustomize = self.kustomize_for(build)?;
        if build.helm && !kustomize.has_helm() {
            return Err(not_rendered(
                "it inflates Helm charts (`helmCharts`) and `helm` is not on PATH".to_owned(),
            ));
        }
        let scanned = prescan::scan(root, &build.dir).map_err(Failure::Refused)?;
        let refused = scanned.refused_remote(&self.allow);
        if !refused.is_empty() {
            return Err(not_rendered(format!(
                "it fetches {}, which `render.allowRemote` in the trusted configuration does not allow: nothing is fetched while a change is judged",
                refused
                    .iter()
                    .map(|u| format!("`{u}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let wrapper =
            Wrapper::new(root, &build.dir, &scanned.dirs).map_err(|e| failed(e.to_string()))?;
        let sandbox = sandbox::Sandbox::new(!scanned.remote.is_empty())
            .map_err(|e| failed(format!("cannot make its temporary home: {e}")))?;
        let text = match kustomize.run(&sandbox, &wrapper.dir()) {
            Ok(text) => text,
            Err(error) if !scanned.remote.is_empty() => {
                return Err(not_rendered(format!(
                    "its remote resources ({}) could not be fetched: {}",
                    scanned
                        .remote
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                    wrapper.local(&error.to_string())
                )));
            }
            Err(error) => return Err(failed(wrapper.local(&error.to_string()))),
        };
        let parsed = parse_text(&build.kustomization, &text);
        if let Some(error) = parsed.errors.first() {
            return Err(failed(format!("its output does not parse: {error}")));
        }
        Ok(parsed
            .documents
            .into_iter()
            .filter(|d| d.value.is_object())
            .map(|d| {
                let (value, origin, transformations) = origin::take(d.value, &wrapper);
                Rendered {
                    value,
                    origin,
                    transformations,
                }
            })
            .collect())
    }
}

/// A temporary copy of the directories a build loads (`tree/`), and beside it a kustomization
/// (`wrapper/`) that includes the build and asks kustomize for origin and transformer
/// annotations, so every rendered object names its source file and what changed it. kustomize reads only the copy; the repository itself
/// is never its working directory.
pub(crate) struct Wrapper {
    /// Removes the copy and the wrapper when dropped.
    _dir: tempfile::TempDir,
    /// The copy of the tree, absolute.
    root: PathBuf,
}

impl Wrapper {
    fn new(root: &Path, build: &Path, dirs: &[PathBuf]) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("remediator-build-")
            .tempdir()?;
        let here = dir.path().canonicalize()?;
        let tree = here.join("tree");
        for loaded in dirs {
            copy_dir(&root.join(loaded), &tree.join(loaded))?;
        }
        std::fs::create_dir_all(tree.join(build))?;
        let wrapper = here.join("wrapper");
        std::fs::create_dir_all(&wrapper)?;
        let target = Path::new("../tree").join(build);
        let text = format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- {}\nbuildMetadata: [originAnnotations, transformerAnnotations]\n",
            serde_json::to_string(&target.to_string_lossy()).unwrap_or_default()
        );
        std::fs::write(wrapper.join("kustomization.yaml"), text)?;
        Ok(Wrapper {
            _dir: dir,
            root: tree,
        })
    }

    /// The wrapper's directory, where kustomize runs.
    fn dir(&self) -> PathBuf {
        self.root.with_file_name("wrapper")
    }

    /// `path` as kustomize wrote it (relative to the wrapper), relative to the repository root;
    /// `None` when it is outside.
    fn resolve(&self, path: &str) -> Option<PathBuf> {
        let here = self.dir();
        let mut out = PathBuf::new();
        for component in here.join(path).components() {
            match component {
                Component::ParentDir => {
                    out.pop();
                }
                Component::CurDir => {}
                other => out.push(other),
            }
        }
        out.strip_prefix(&self.root).ok().map(Path::to_owned)
    }

    /// kustomize's message with the wrapper's level and the absolute paths taken out.
    fn local(&self, message: &str) -> String {
        const INNER: &str = "recursed accumulation of path '";
        let message = match message.find(INNER) {
            Some(start) => {
                let rest = &message[start + INNER.len()..];
                rest.find("': ").map_or(rest, |end| &rest[end + 3..])
            }
            None => message,
        };
        let root = format!("{}/", self.root.display());
        let wrapper = format!("{}/", self.dir().display());
        let base = format!("{}/", self.root.parent().unwrap_or(&self.root).display());
        message
            .replace(&root, "")
            .replace(&wrapper, "")
            .replace(&base, "")
    }
}

/// What decides a build's output: its input files under `root` and the Flux variables it gets
/// (`substitutions` are the repository's). Two builds with one fingerprint render alike.
pub fn fingerprint(root: &Path, build: &Build, substitutions: &[flux::Substitution]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    inputs_hash(root, build).hash(&mut hasher);
    if let Some(substitution) = flux::for_unit(substitutions, &build.dir, true) {
        format!("{:?}", substitution.vars).hash(&mut hasher);
    }
    hasher.finish()
}

/// A hash of every file a build may read: the files under its kustomization directories.
fn inputs_hash(root: &Path, build: &Build) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut files = Vec::new();
    for dir in &build.dirs {
        collect_files(&root.join(dir), &mut files);
    }
    files.sort();
    files.dedup();
    for file in files {
        file.strip_prefix(root).unwrap_or(&file).hash(&mut hasher);
        std::fs::read(&file).ok().hash(&mut hasher);
    }
    hasher.finish()
}

/// Copies the regular files under `from` to `to`; symlinks and anything else are left out, so
/// the copy holds nothing that points outside it.
pub(crate) fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut files = Vec::new();
    collect_files(from, &mut files);
    for file in files {
        let target = to.join(file.strip_prefix(from).unwrap_or(&file));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&file, &target)?;
    }
    Ok(())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() && entry.file_name() != ".git" => collect_files(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

/// For a unit test that renders: whether kustomize (or kubectl's) is here. Without it the test
/// fails, naming what to install, unless `REMEDIATOR_SKIP_TOOLS=1`; then it is skipped with a
/// line on standard error, as the integration tests' `common::tools` does.
#[cfg(test)]
pub(crate) fn kustomize_for_test(test: &str) -> bool {
    use std::io::Write as _;
    if Kustomize::find().is_ok() {
        return true;
    }
    let how = "kustomize (https://kubectl.docs.kubernetes.io/installation/kustomize/) or kubectl (https://kubernetes.io/docs/tasks/tools/)";
    if std::env::var("REMEDIATOR_SKIP_TOOLS").as_deref() != Ok("1") {
        panic!(
            "{test} needs {how} on PATH: install it, or set REMEDIATOR_SKIP_TOOLS=1 to skip the tests that need it"
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "skipped (REMEDIATOR_SKIP_TOOLS=1): {test} needs {how}"
    );
    false
}
