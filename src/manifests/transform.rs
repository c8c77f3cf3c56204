//! Objects as their build applies them, for the cluster commands: the declared value with the
//! name and namespace of its unit, and the `images` and `replicas` of every kustomization on the
//! way from the build to the file, innermost first as kustomize applies them. A build that uses
//! a transformer not rendered here (patches, components, name prefixes, labels, generators) is
//! refused, naming the kustomization and the field, rather than sent half rendered. Pure.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::builds::join_relative;
use super::index::{IndexedObject, KustomizationFile, RepoIndex};

/// Kustomization fields that change no object, or that are rendered here.
const RENDERED: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "namespace",
    "resources",
    "bases",
    "images",
    "replicas",
    "sortOptions",
    "buildMetadata",
];

/// Kinds whose `spec.replicas` a kustomize `replicas` entry sets.
const SCALABLE: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "ReplicaSet",
    "ReplicationController",
];

/// An object whose build uses a transformer remediator does not render.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{object}: {} uses `{field}`, which remediator does not render; apply this build with `kubectl apply -k --server-side` or let Flux or Argo CD apply it",
    file.display()
)]
pub struct Unrendered {
    /// The object, `Kind/namespace/name`.
    pub object: String,
    /// The kustomization file.
    pub file: PathBuf,
    /// The field.
    pub field: String,
}

impl RepoIndex {
    /// The objects applied from `path` (a directory or file, relative to the root): those of
    /// units under it, and those declared under it in plain directories; each object once for
    /// each build that applies it.
    pub fn under(&self, path: &Path) -> Vec<&IndexedObject> {
        let path = path.strip_prefix(".").unwrap_or(path);
        let mut seen = HashSet::new();
        self.objects
            .iter()
            .filter(|o| {
                let unit = self.unit(o);
                let file = &self.declaration(o).location.file;
                unit.path.starts_with(path)
                    || (unit.kustomization.is_none() && file.starts_with(path))
            })
            .filter(|o| seen.insert((&self.unit(o).path, &o.id)))
            .collect()
    }

    /// The object as its build applies it; see the module documentation.
    pub fn applied(&self, object: &IndexedObject) -> Result<Value, Unrendered> {
        self.render(object, self.declaration(object).value.clone())
    }

    /// `value` (the object's declaration, perhaps edited) as the object's build applies it.
    pub fn render(&self, object: &IndexedObject, mut value: Value) -> Result<Value, Unrendered> {
        if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("name".into(), Value::from(object.id.name.clone()));
            if let Some(namespace) = &object.id.namespace {
                metadata.insert("namespace".into(), Value::from(namespace.clone()));
            }
        }
        let file = &self.declaration(object).location.file;
        let Some(top) = &self.unit(object).kustomization else {
            return Ok(value);
        };
        let declared_name = self.declaration(object).value["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        for kustomization in self.chain(top, file) {
            let k = &kustomization.kustomization;
            let unrendered = [
                ("patches", !k.patches.is_empty()),
                (
                    "patchesStrategicMerge",
                    !k.patches_strategic_merge.is_empty(),
                ),
                ("patchesJson6902", !k.patches_json6902.is_empty()),
                ("components", !k.components.is_empty()),
            ]
            .into_iter()
            .filter(|(_, used)| *used)
            .map(|(field, _)| field.to_owned())
            .chain(
                k.others
                    .keys()
                    .filter(|key| !RENDERED.contains(&key.as_str()))
                    .cloned(),
            )
            .next();
            if let Some(field) = unrendered {
                return Err(Unrendered {
                    object: object.id.to_string(),
                    file: kustomization.location.file.clone(),
                    field,
                });
            }
            for replicas in &k.replicas {
                if replicas.name == declared_name
                    && SCALABLE.contains(&object.id.kind.as_str())
                    && let Some(spec) = value.get_mut("spec").and_then(Value::as_object_mut)
                {
                    spec.insert("replicas".into(), Value::from(replicas.count));
                }
            }
            for image in &k.images {
                for container in containers(&mut value) {
                    if let Some(current) = container.get("image").and_then(Value::as_str) {
                        let replaced = override_image(current, image);
                        if let Some(replaced) = replaced {
                            container["image"] = Value::from(replaced);
                        }
                    }
                }
            }
        }
        Ok(value)
    }

    /// The kustomizations from the build at `top` down to `file`, innermost first.
    fn chain(&self, top: &Path, file: &Path) -> Vec<&KustomizationFile> {
        let by_dir: HashMap<&Path, &KustomizationFile> = self
            .kustomizations
            .iter()
            .map(|k| (k.dir.as_path(), k))
            .collect();
        let top_dir = top.parent().unwrap_or(Path::new(""));
        let mut depth: Vec<(&KustomizationFile, usize)> = Vec::new();
        let mut queue = VecDeque::from([(top_dir.to_path_buf(), 0usize)]);
        let mut seen = HashSet::new();
        while let Some((dir, level)) = queue.pop_front() {
            if !seen.insert(dir.clone()) {
                continue;
            }
            let Some(k) = by_dir.get(dir.as_path()) else {
                continue;
            };
            if self.reaches(k, file, &by_dir, &mut HashSet::new()) {
                depth.push((k, level));
            }
            for resource in k.kustomization.local_resources() {
                if let Some(sub) = join_relative(&k.dir, resource)
                    && by_dir.contains_key(sub.as_path())
                {
                    queue.push_back((sub, level + 1));
                }
            }
        }
        depth.sort_by_key(|(_, level)| std::cmp::Reverse(*level));
        depth.into_iter().map(|(k, _)| k).collect()
    }

    fn reaches(
        &self,
        k: &KustomizationFile,
        file: &Path,
        by_dir: &HashMap<&Path, &KustomizationFile>,
        visiting: &mut HashSet<PathBuf>,
    ) -> bool {
        if !visiting.insert(k.dir.clone()) {
            return false;
        }
        k.kustomization.local_resources().any(|resource| {
            let Some(path) = join_relative(&k.dir, resource) else {
                return false;
            };
            path == file
                || by_dir
                    .get(path.as_path())
                    .is_some_and(|sub| self.reaches(sub, file, by_dir, visiting))
        })
    }
}

/// The containers and init containers of a pod template or pod.
fn containers(object: &mut Value) -> Vec<&mut Value> {
    let spec = if object["kind"] == "Pod" {
        object.get_mut("spec")
    } else if object["kind"] == "CronJob" {
        object.pointer_mut("/spec/jobTemplate/spec/template/spec")
    } else {
        object.pointer_mut("/spec/template/spec")
    };
    let Some(spec) = spec.and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    spec.iter_mut()
        .filter(|(key, _)| *key == "containers" || *key == "initContainers")
        .filter_map(|(_, list)| list.as_array_mut())
        .flatten()
        .collect()
}

/// `image` with an `images` entry applied, when the entry names it.
fn override_image(image: &str, entry: &super::ImageOverride) -> Option<String> {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[slash..].split_once(':') {
        Some((_, tag)) => (&rest[..rest.len() - tag.len() - 1], Some(tag)),
        None => (rest, None),
    };
    if name != entry.name {
        return None;
    }
    let name = entry.new_name.as_deref().unwrap_or(name);
    if let Some(digest) = &entry.digest {
        return Some(format!("{name}@{digest}"));
    }
    let tag = entry.new_tag.as_deref().or(tag);
    Some(match (tag, digest) {
        (Some(tag), _) if entry.new_tag.is_some() => format!("{name}:{tag}"),
        (Some(tag), Some(digest)) => format!("{name}:{tag}@{digest}"),
        (Some(tag), None) => format!("{name}:{tag}"),
        (None, Some(digest)) => format!("{name}@{digest}"),
        (None, None) => name.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::{ImageOverride, IndexOptions};

    fn entry(name: &str, new_name: Option<&str>, new_tag: Option<&str>) -> ImageOverride {
        ImageOverride {
            name: name.into(),
            new_name: new_name.map(Into::into),
            new_tag: new_tag.map(Into::into),
            digest: None,
        }
    }

    #[test]
    fn images_are_overridden_by_name() {
        let tag = entry("nginx", None, Some("1.28"));
        assert_eq!(
            override_image("nginx:1.27", &tag),
            Some("nginx:1.28".into())
        );
        assert_eq!(override_image("nginx", &tag), Some("nginx:1.28".into()));
        assert_eq!(override_image("redis:7", &tag), None);
        let moved = entry("ghcr.io/shop/web", Some("registry.local/web"), None);
        assert_eq!(
            override_image("ghcr.io/shop/web:2.0", &moved),
            Some("registry.local/web:2.0".into())
        );
        let port = entry("localhost:5000/app", None, Some("v2"));
        assert_eq!(
            override_image("localhost:5000/app:v1", &port),
            Some("localhost:5000/app:v2".into())
        );
    }

    fn index(files: &[(&str, &str)]) -> (tempfile::TempDir, RepoIndex) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        (dir, index)
    }

    const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n      - name: app\n        image: shop/api:1.0\n";

    #[test]
    fn a_build_applies_replicas_and_images_innermost_first() {
        let (_dir, index) = index(&[
            ("base/deployment.yaml", DEPLOYMENT),
            (
                "base/kustomization.yaml",
                "resources: [deployment.yaml]\nimages:\n- name: shop/api\n  newTag: '1.1'\n",
            ),
            (
                "dev/kustomization.yaml",
                "namespace: dev\nresources: [../base]\nreplicas:\n- name: api\n  count: 1\nimages:\n- name: shop/api\n  newTag: '2.0'\n",
            ),
        ]);
        let objects = index.under(Path::new("dev"));
        assert_eq!(objects.len(), 1);
        let value = index.applied(objects[0]).unwrap();
        assert_eq!(value["metadata"]["namespace"], "dev");
        assert_eq!(value["spec"]["replicas"], 1);
        assert_eq!(
            value["spec"]["template"]["spec"]["containers"][0]["image"],
            "shop/api:2.0"
        );
    }

    #[test]
    fn a_build_with_patches_or_prefixes_is_refused_by_name() {
        let (_dir, index) = index(&[
            ("base/deployment.yaml", DEPLOYMENT),
            ("base/kustomization.yaml", "resources: [deployment.yaml]\n"),
            (
                "prod/kustomization.yaml",
                "namespace: prod\nnamePrefix: prod-\nresources: [../base]\n",
            ),
            (
                "stage/kustomization.yaml",
                "namespace: stage\nresources: [../base]\npatches:\n- path: p.yaml\n",
            ),
            (
                "stage/p.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 9\n",
            ),
        ]);
        let prod = index.under(Path::new("prod"));
        let error = index.applied(prod[0]).unwrap_err();
        assert_eq!(error.field, "namePrefix");
        assert_eq!(error.file, Path::new("prod/kustomization.yaml"));
        let stage = index.under(Path::new("stage"));
        let error = index.applied(stage[0]).unwrap_err();
        assert_eq!(error.field, "patches");
        assert!(
            error
                .to_string()
                .starts_with("Deployment/stage/api: stage/kustomization.yaml uses `patches`")
        );
    }
}
