//! Kustomize builds: which files each build reaches, and the namespace the build gives them
//! (the outermost `namespace:` wins, as kustomize applies it). Pure.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use super::Error;
use super::index::KustomizationFile;

/// Which files each kustomize build reaches, with the namespace the build gives them.
pub(super) struct BuildGraph {
    /// Root kustomization directory → (file, namespace) pairs.
    pub reach: BTreeMap<PathBuf, Vec<(PathBuf, Option<String>)>>,
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
            let mut reached = Vec::new();
            let mut visiting = HashSet::new();
            collect(
                &k.dir,
                None,
                &by_dir,
                &children,
                &mut visiting,
                &mut reached,
            );
            graph.reach.insert(k.dir.clone(), reached);
        }
        graph
    }
}

enum Child {
    File(PathBuf),
    Build(PathBuf),
}

fn collect(
    dir: &Path,
    outer_namespace: Option<&str>,
    by_dir: &HashMap<&Path, &KustomizationFile>,
    children: &HashMap<&Path, Vec<Child>>,
    visiting: &mut HashSet<PathBuf>,
    reached: &mut Vec<(PathBuf, Option<String>)>,
) {
    if !visiting.insert(dir.to_owned()) {
        return;
    }
    let own = by_dir
        .get(dir)
        .and_then(|k| k.kustomization.namespace.as_deref());
    let namespace = outer_namespace.or(own);
    for child in children.get(dir).into_iter().flatten() {
        match child {
            Child::File(file) => reached.push((file.clone(), namespace.map(str::to_owned))),
            Child::Build(sub) => collect(sub, namespace, by_dir, children, visiting, reached),
        }
    }
    visiting.remove(dir);
}

/// Resources that are not YAML (a kustomization may list JSON or generated files); they are not
/// the index's business, so a missing one is not reported.
fn is_skipped_resource(path: &Path) -> bool {
    path.extension().is_some_and(|e| e != "yaml" && e != "yml")
}

/// `dir/relative` with `.` and `..` resolved; `None` when it leaves the repository.
pub(super) fn join_relative(dir: &Path, relative: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in dir.join(relative).components() {
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
