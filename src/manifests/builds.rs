//! Kustomize builds: which files each build reaches, and the namespace the build gives them
//! (the outermost `namespace:` wins, as kustomize applies it). Pure.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use super::Error;
use super::kustomize::KustomizationFile;

/// One kustomize build: a kustomization no other kustomization of the repository includes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The kustomization's directory, relative to the root.
    pub dir: PathBuf,
    /// Its kustomization file.
    pub kustomization: PathBuf,
    /// Every kustomization directory the build reads, itself first; its inputs are the files
    /// under them.
    pub dirs: Vec<PathBuf>,
    /// A `kind: Component`, which kustomize builds only through the builds that use it.
    pub component: bool,
    /// Remote resources (URLs) any of its kustomizations include.
    pub remote: Vec<String>,
    /// Whether any of its kustomizations inflates Helm charts (`helmCharts`).
    pub helm: bool,
}

impl Build {
    /// The builds of `graph`, from the kustomizations it was made of.
    pub(super) fn all(graph: &BuildGraph, kustomizations: &[KustomizationFile]) -> Vec<Build> {
        let by_dir: HashMap<&Path, &KustomizationFile> = kustomizations
            .iter()
            .map(|k| (k.dir.as_path(), k))
            .collect();
        let mut out = Vec::new();
        for (dir, dirs) in &graph.dirs {
            let Some(top) = by_dir.get(dir.as_path()) else {
                continue;
            };
            let read: Vec<&KustomizationFile> = dirs
                .iter()
                .filter_map(|d| by_dir.get(d.as_path()).copied())
                .collect();
            out.push(Build {
                dir: dir.clone(),
                kustomization: top.location.file.clone(),
                dirs: dirs.clone(),
                component: top.kustomization.kind.as_deref() == Some("Component"),
                remote: read
                    .iter()
                    .flat_map(|k| k.kustomization.remote_resources())
                    .map(str::to_owned)
                    .collect(),
                helm: read
                    .iter()
                    .any(|k| k.kustomization.others.contains_key("helmCharts")),
            });
        }
        out
    }

    /// Whether `file` (relative to the root) is one the build may read.
    pub fn reads(&self, file: &Path) -> bool {
        self.dirs.iter().any(|d| file.starts_with(d))
    }
}

/// Which files each kustomize build reaches, with the namespace the build gives them.
pub(super) struct BuildGraph {
    /// Root kustomization directory → (file, namespace) pairs.
    pub reach: BTreeMap<PathBuf, Vec<(PathBuf, Option<String>)>>,
    /// Root kustomization directory → every kustomization directory the build reads, itself
    /// first: kustomize loads a build's files only from under these.
    pub dirs: BTreeMap<PathBuf, Vec<PathBuf>>,
    pub errors: Vec<Error>,
}

impl BuildGraph {
    pub fn new(kustomizations: &[KustomizationFile], files: &[PathBuf]) -> Self {
        let by_dir: HashMap<&Path, &KustomizationFile> = kustomizations
            .iter()
            .map(|k| (k.dir.as_path(), k))
            .collect();
        let file_set: HashSet<&Path> = files.iter().map(PathBuf::as_path).collect();
        let mut graph = BuildGraph {
            reach: BTreeMap::new(),
            dirs: BTreeMap::new(),
            errors: vec![],
        };
        let mut included: HashSet<PathBuf> = HashSet::new();
        let mut children: HashMap<&Path, Vec<Child>> = HashMap::new();
        for k in kustomizations {
            let mut list = Vec::new();
            for resource in k.kustomization.local_resources() {
                let Some(path) = join_relative(&k.dir, resource) else {
                    continue;
                };
                if file_set.contains(path.as_path()) {
                    list.push(Child::File(path));
                } else if by_dir.contains_key(path.as_path()) {
                    included.insert(path.clone());
                    list.push(Child::Build(path));
                } else if !is_skipped_resource(&path) {
                    let message = format!(
                        "resource `{resource}` is neither a YAML file nor a directory with a kustomization in this repository"
                    );
                    graph.errors.push(Error::Kustomization {
                        file: k.location.file.clone(),
                        line: k.location.line,
                        message,
                    });
                }
            }
            children.insert(k.dir.as_path(), list);
        }
        for k in kustomizations.iter().filter(|k| !included.contains(&k.dir)) {
            let mut walk = Walk::default();
            collect(&k.dir, None, &by_dir, &children, &mut walk);
            graph.reach.insert(k.dir.clone(), walk.reached);
            graph.dirs.insert(k.dir.clone(), walk.dirs);
        }
        graph
    }
}

enum Child {
    File(PathBuf),
    Build(PathBuf),
}

/// What one build's walk has found so far.
#[derive(Default)]
struct Walk {
    visiting: HashSet<PathBuf>,
    reached: Vec<(PathBuf, Option<String>)>,
    dirs: Vec<PathBuf>,
}

fn collect(
    dir: &Path,
    outer_namespace: Option<&str>,
    by_dir: &HashMap<&Path, &KustomizationFile>,
    children: &HashMap<&Path, Vec<Child>>,
    walk: &mut Walk,
) {
    if !walk.visiting.insert(dir.to_owned()) {
        return;
    }
    if !walk.dirs.iter().any(|d| d == dir) {
        walk.dirs.push(dir.to_owned());
    }
    let own = by_dir
        .get(dir)
        .and_then(|k| k.kustomization.namespace.as_deref());
    let namespace = outer_namespace.or(own);
    for child in children.get(dir).into_iter().flatten() {
        match child {
            Child::File(file) => walk
                .reached
                .push((file.clone(), namespace.map(str::to_owned))),
            Child::Build(sub) => collect(sub, namespace, by_dir, children, walk),
        }
    }
    walk.visiting.remove(dir);
}

/// Resources that are not YAML (a kustomization may list JSON or generated files); they are not
/// the index's business, so a missing one is not reported.
fn is_skipped_resource(path: &Path) -> bool {
    path.extension().is_some_and(|e| e != "yaml" && e != "yml")
}

/// `dir/relative` with `.` and `..` resolved; `None` when it leaves the repository.
pub(super) fn join_relative(dir: &Path, relative: &str) -> Option<PathBuf> {
    normalise(&dir.join(relative))
}

/// `path` with `.` and `..` resolved; `None` when it climbs above its start or is absolute.
pub fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_stay_inside_the_repository() {
        assert_eq!(
            join_relative(Path::new("a/b"), "../c/./d.yaml"),
            Some(PathBuf::from("a/c/d.yaml"))
        );
        assert_eq!(join_relative(Path::new("a"), "../../x"), None);
    }
}
