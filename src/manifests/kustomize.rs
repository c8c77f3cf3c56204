//! `kustomization.yaml` files: the fields remediator reads (resources, namespace, images,
//! replicas, patches). Rendering overlays is not done here; the index uses these fields to know
//! which files a build reaches, which files are patches, and which namespace objects end up in.
//! Pure.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::source::Location;

/// A kustomization file.
#[derive(Debug, Clone)]
pub struct KustomizationFile {
    /// Where it is.
    pub location: Location,
    /// Its directory, relative to the root.
    pub dir: PathBuf,
    /// What it says.
    pub kustomization: Kustomization,
}

/// File names kustomize looks for in a directory, in its order.
pub const FILE_NAMES: &[&str] = &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The fields of a kustomization that remediator reads; the others are ignored.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Kustomization {
    /// `kind`: `Kustomization` or `Component`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Namespace set on every namespaced object of the build.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Files, directories and remote URLs the build includes.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub resources: Vec<String>,
    /// Older spelling of directory resources.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub bases: Vec<String>,
    /// Component directories.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub components: Vec<String>,
    /// Image overrides.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub images: Vec<ImageOverride>,
    /// Replica overrides.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub replicas: Vec<ReplicaOverride>,
    /// Patches: a file (`path`) or inline (`patch`), with an optional target.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub patches: Vec<Patch>,
    /// Older strategic-merge patches: file names or inline YAML.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub patches_strategic_merge: Vec<String>,
    /// Older JSON 6902 patches.
    #[serde(
        default,
        rename = "patchesJson6902",
        deserialize_with = "null_as_empty"
    )]
    pub patches_json6902: Vec<Patch>,
    /// Every other field (`namePrefix`, `labels`, generators, ...), kept to tell which
    /// transformers a build uses.
    #[serde(flatten)]
    pub others: std::collections::BTreeMap<String, Value>,
}

/// One `images` entry.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageOverride {
    /// Image name as written in the manifests it overrides.
    pub name: String,
    /// Replacement image name.
    #[serde(default)]
    pub new_name: Option<String>,
    /// Replacement tag.
    #[serde(default)]
    pub new_tag: Option<String>,
    /// Replacement digest.
    #[serde(default)]
    pub digest: Option<String>,
}

/// One `replicas` entry.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ReplicaOverride {
    /// Name of the workload.
    pub name: String,
    /// Replica count.
    pub count: i64,
}

/// One `patches` entry.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Patch {
    /// A patch file, relative to the kustomization.
    #[serde(default)]
    pub path: Option<String>,
    /// An inline patch.
    #[serde(default)]
    pub patch: Option<String>,
}

impl Kustomization {
    /// Reads a kustomization from a parsed document; the message says which field is wrong.
    pub fn from_value(value: &Value) -> Result<Self, String> {
        Self::deserialize(value).map_err(|e| e.to_string())
    }

    /// Whether a document is a kustomization: its `apiVersion` is kustomize's, or it sits in a
    /// file named as kustomize expects and has no `apiVersion` of another group.
    pub fn is_kustomization(file: &Path, value: &Value) -> bool {
        let api = value.get("apiVersion").and_then(Value::as_str);
        match api {
            Some(api) => api.starts_with("kustomize.config.k8s.io/"),
            None => file
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| FILE_NAMES.contains(&n)),
        }
    }

    /// Local paths the build includes (resources, bases, components), remote URLs left out.
    pub fn local_resources(&self) -> impl Iterator<Item = &str> {
        self.resources
            .iter()
            .chain(&self.bases)
            .chain(&self.components)
            .map(String::as_str)
            .filter(|r| !is_remote(r))
    }

    /// Remote resources (URLs) the build includes.
    pub fn remote_resources(&self) -> impl Iterator<Item = &str> {
        self.resources
            .iter()
            .chain(&self.bases)
            .map(String::as_str)
            .filter(|r| is_remote(r))
    }

    /// Files this kustomization uses as patches.
    pub fn patch_files(&self) -> impl Iterator<Item = &str> {
        let inline = |s: &&String| !s.contains('\n') && !s.trim_start().starts_with('{');
        self.patches
            .iter()
            .chain(&self.patches_json6902)
            .filter_map(|p| p.path.as_deref())
            .chain(
                self.patches_strategic_merge
                    .iter()
                    .filter(inline)
                    .map(String::as_str),
            )
    }
}

/// A list left empty (`components:` with every entry commented out) reads as no entries, as
/// kustomize reads it.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// Whether a path-like entry names a remote location (a URL, an scp-like Git address, or
/// kustomize's `github.com/org/repo` shorthand) rather than a local path.
pub fn is_remote(entry: &str) -> bool {
    entry.contains("://")
        || entry.starts_with("git@")
        || entry.starts_with("git::")
        || ["github.com/", "gitlab.com/", "bitbucket.org/"]
            .iter()
            .any(|host| entry.starts_with(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Kustomization {
        let value: Value = serde_saphyr::from_str(yaml).unwrap();
        Kustomization::from_value(&value).unwrap()
    }

    #[test]
    fn reads_the_fields_remediator_uses() {
        let k = parse(
            "namespace: prod\nresources: [../../base, cm.yaml, https://x/y.yaml]\n\
             images: [{name: api, newTag: '1.2'}]\nreplicas: [{name: api, count: 3}]\n\
             patches: [{path: p.yaml}, {patch: 'inline'}]\npatchesStrategicMerge: [old.yaml]\n\
             configMapGenerator: [{name: x}]\ncomponents:\n",
        );
        assert_eq!(k.namespace.as_deref(), Some("prod"));
        assert_eq!(
            k.local_resources().collect::<Vec<_>>(),
            ["../../base", "cm.yaml"]
        );
        assert_eq!(k.images[0].new_tag.as_deref(), Some("1.2"));
        assert_eq!(k.replicas[0].count, 3);
        assert_eq!(k.patch_files().collect::<Vec<_>>(), ["p.yaml", "old.yaml"]);
    }

    #[test]
    fn wrong_shapes_are_named() {
        let value: Value = serde_saphyr::from_str("replicas: {name: api}\n").unwrap();
        let err = Kustomization::from_value(&value).unwrap_err();
        assert!(err.contains("sequence") || err.contains("array"), "{err}");
    }

    #[test]
    fn recognises_kustomizations() {
        let flux: Value = serde_saphyr::from_str(
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n",
        )
        .unwrap();
        assert!(!Kustomization::is_kustomization(
            Path::new("kustomization.yaml"),
            &flux
        ));
        let plain: Value = serde_saphyr::from_str("resources: []\n").unwrap();
        assert!(Kustomization::is_kustomization(
            Path::new("a/kustomization.yaml"),
            &plain
        ));
        assert!(!Kustomization::is_kustomization(
            Path::new("a/values.yaml"),
            &plain
        ));
    }
}
