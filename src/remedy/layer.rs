//! Which layer of the config repository an edit goes into. A remediation for one build must not
//! silently change every build that shares a base: when the value is set in a base that more
//! than one build uses and no overlay patch of the target's build sets it, the change goes into
//! a new strategic-merge patch in that build's overlay, as small as possible, added to its
//! `patches:`. A base only one build uses is edited in place. Pure.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::manifests::path::{FieldPath, Segment};
use crate::manifests::{
    Declaration, IndexedObject, KustomizationFile, Location, RepoIndex, emit_block,
};
use crate::model::Finding;

/// A patch to add to the target's overlay.
#[derive(Debug, Clone)]
pub(crate) struct OverlayPatch {
    /// The file the patch goes to, relative to the root: a new patch file, or the applier's.
    pub file: PathBuf,
    /// The other builds (or appliers' files) that use the base declaration, which the patch
    /// leaves alone.
    pub others: Vec<PathBuf>,
    /// Where the patch is listed.
    pub home: PatchHome,
}

/// Where a new strategic-merge patch is listed.
#[derive(Debug, Clone)]
pub(crate) enum PatchHome {
    /// A new file of the overlay, named in its kustomization's `patches:` by `entry` (relative
    /// to the overlay).
    File {
        kustomization: Location,
        entry: String,
    },
    /// An inline entry of the failing environment's own applier: `spec.patches` of a Flux
    /// Kustomization, `spec.source.kustomize.patches` of an Argo CD Application. For a build
    /// that the appliers of several environments apply as it is.
    Applier {
        /// The applier's document.
        location: Location,
        /// The list the entry is appended to (`spec.patches`).
        list: FieldPath,
        /// The applier, for the pull request (`Flux Kustomization flux-system/apps`).
        name: String,
    },
    /// A new Helm values file (not a patch) for one Argo CD Application alone, appended to its
    /// `valueFiles` as `entry`.
    ValuesFile {
        /// The Application's document.
        application: Location,
        /// Its `valueFiles` (`spec.source.helm.valueFiles`).
        list: FieldPath,
        /// The entry, relative to the chart (`values-prod.yaml`).
        entry: String,
        /// The Application, for the pull request.
        name: String,
    },
}

impl OverlayPatch {
    /// The location an edit of the new patch is addressed to.
    pub fn location(&self) -> Location {
        match &self.home {
            PatchHome::Applier { location, .. } => location.clone(),
            PatchHome::File { .. } | PatchHome::ValuesFile { .. } => Location {
                file: self.file.clone(),
                document: 0,
                item: None,
                line: 1,
                span: 0..0,
            },
        }
    }
}

/// The patch for `object`, whose build the appliers of several environments apply as it is,
/// that sets values for `environment` only: an entry of the patches of the one Flux
/// Kustomization or Argo CD Application of that environment that applies the build (by the
/// file that declares it). `None` when that environment has no such applier, or several.
pub(crate) fn applier_patch(
    index: &RepoIndex,
    object: &IndexedObject,
    environment_of: impl Fn(&Path) -> Option<String>,
    environment: &str,
) -> Option<OverlayPatch> {
    let unit = &index.unit(object).path;
    let appliers = appliers_of(index, unit);
    let own: Vec<&(String, PathBuf)> = appliers
        .iter()
        .filter(|(_, file)| environment_of(file).as_deref() == Some(environment))
        .collect();
    let [(name, file)] = own.as_slice() else {
        return None;
    };
    // The applier as declared in the repository: an Application an ApplicationSet makes has no
    // document of its own to edit.
    let declaration = index.declarations.iter().find(|d| {
        d.location.file == *file && name.ends_with(&format!("/{}", d.id.name)) && {
            let flux = d.id.group == "kustomize.toolkit.fluxcd.io" && d.id.kind == "Kustomization";
            let argo = d.id.group == "argoproj.io" && d.id.kind == "Application";
            flux || argo
        }
    })?;
    let list = if declaration.id.group == "argoproj.io" {
        // A multi-source Application's patches belong to one of its sources: not guessed.
        declaration.value.pointer("/spec/source")?;
        "spec.source.kustomize.patches"
    } else {
        "spec.patches"
    };
    let others: Vec<PathBuf> = appliers
        .iter()
        .filter(|(_, f)| f != file)
        .map(|(_, f)| f.clone())
        .collect();
    Some(OverlayPatch {
        file: file.clone(),
        others,
        home: PatchHome::Applier {
            location: declaration.location.clone(),
            list: list.parse().ok()?,
            name: name.clone(),
        },
    })
}

/// The builds (and plain directories) that apply declaration `declaration`, sorted.
pub(crate) fn units_of(index: &RepoIndex, declaration: usize) -> Vec<&Path> {
    let units: BTreeSet<&Path> = index
        .objects
        .iter()
        .filter(|o| o.declaration == declaration)
        .map(|o| index.unit(o).path.as_path())
        .collect();
    units.into_iter().collect()
}

/// What applies the unit at `dir`: the Flux Kustomizations and Argo CD Applications of the
/// repository whose path is `dir`, else those with the nearest path above it. Each with its
/// name and the file that declares it.
pub(crate) fn appliers_of(index: &RepoIndex, dir: &Path) -> Vec<(String, PathBuf)> {
    let found: Vec<&crate::manifests::Applier> = index
        .appliers()
        .iter()
        .filter(|a| dir.starts_with(&a.path))
        .collect();
    let nearest = found.iter().map(|a| a.path.components().count()).max();
    found
        .into_iter()
        .filter(|a| Some(a.path.components().count()) == nearest)
        .map(|a| (a.name.clone(), a.file.clone()))
        .collect()
}

/// The overlay patch for `object` when its declaration sits outside its build's directory, in a
/// base that other builds use too; `None` when editing the declaration in place is right.
pub(crate) fn overlay_patch(
    index: &RepoIndex,
    object: &IndexedObject,
    kustomization: Option<&KustomizationFile>,
) -> Option<OverlayPatch> {
    let kustomization = kustomization?;
    let unit = index.unit(object);
    let declaration = index.declaration(object);
    if declaration.location.file.starts_with(&unit.path) {
        return None;
    }
    let others: Vec<PathBuf> = units_of(index, object.declaration)
        .into_iter()
        .filter(|u| *u != unit.path)
        .map(Path::to_owned)
        .collect();
    if others.is_empty() {
        return None;
    }
    let stem = format!(
        "{}-{}-patch",
        declaration.id.kind.to_lowercase(),
        declaration.id.name
    );
    // Beside the overlay's other patches when they share a folder (`patches/`).
    let patch_dirs: BTreeSet<PathBuf> = kustomization
        .kustomization
        .patch_files()
        .filter_map(|p| Path::new(p).parent().map(Path::to_owned))
        .collect();
    let dir = match patch_dirs.iter().collect::<Vec<_>>().as_slice() {
        [one] => unit.path.join(one),
        _ => unit.path.clone(),
    };
    let taken =
        |file: &Path| index.files.iter().any(|f| f == file) || index.root.join(file).exists();
    let file = std::iter::once(dir.join(format!("{stem}.yaml")))
        .chain((2..).map(|n| dir.join(format!("{stem}-{n}.yaml"))))
        .find(|f| !taken(f))?;
    let entry = file
        .strip_prefix(&unit.path)
        .ok()?
        .to_string_lossy()
        .replace('\\', "/");
    Some(OverlayPatch {
        file,
        others,
        home: PatchHome::File {
            kustomization: kustomization.location.clone(),
            entry,
        },
    })
}

/// The text of a new Helm values file that sets `sets` (values keys), with a comment naming the
/// finding and who reads the file (`scope`).
pub(crate) fn values_text(sets: &[(FieldPath, Value)], finding: &Finding, scope: &str) -> String {
    let mut values = Value::Object(Map::new());
    for (path, new) in sets {
        let mut at = &mut values;
        let keys: Vec<&str> = path
            .segments
            .iter()
            .filter_map(|s| match s {
                crate::manifests::path::Segment::Key(k) => Some(k.as_str()),
                _ => None,
            })
            .collect();
        for (i, key) in keys.iter().enumerate() {
            let Value::Object(map) = at else { break };
            if i + 1 == keys.len() {
                map.insert((*key).to_owned(), new.clone());
                break;
            }
            at = map
                .entry((*key).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    format!(
        "# remediator: {} on {}; {scope}.\n{}",
        finding.code,
        finding.target(),
        crate::manifests::emit_block(&values)
    )
}

/// The text of a strategic-merge patch of `declaration` that sets `sets`, with a comment naming
/// the finding and who sees the patch (`scope`).
pub(crate) fn patch_text(
    declaration: &Declaration,
    sets: &[(FieldPath, Value)],
    finding: &Finding,
    scope: &str,
) -> String {
    patch_document(
        declaration,
        sets,
        &format!(
            "remediator: {} on {}; {scope}.",
            finding.code,
            finding.target()
        ),
    )
}

/// A strategic-merge patch of `declaration` setting `sets`, under the comment `header`.
pub(crate) fn patch_document(
    declaration: &Declaration,
    sets: &[(FieldPath, Value)],
    header: &str,
) -> String {
    let value = &declaration.value;
    let mut metadata = Map::new();
    metadata.insert("name".into(), Value::from(declaration.id.name.clone()));
    if let Some(namespace) = value.pointer("/metadata/namespace") {
        metadata.insert("namespace".into(), namespace.clone());
    }
    let mut patch = Map::new();
    patch.insert("apiVersion".into(), value["apiVersion"].clone());
    patch.insert("kind".into(), value["kind"].clone());
    patch.insert("metadata".into(), Value::Object(metadata));
    let mut patch = Value::Object(patch);
    for (path, new) in sets {
        put(&mut patch, &path.segments, new.clone());
    }
    format!("# {header}\n{}", emit_block(&patch))
}

/// Sets `segments` of `value` to `new`, creating mappings and `[key=value]` items on the way.
fn put(value: &mut Value, segments: &[Segment], new: Value) {
    let Some((first, rest)) = segments.split_first() else {
        *value = new;
        return;
    };
    match first {
        Segment::Key(key) => {
            if !value.is_object() {
                *value = Value::Object(Map::new());
            }
            let Some(map) = value.as_object_mut() else {
                return;
            };
            let child = map.entry(key.clone()).or_insert(Value::Null);
            put(child, rest, new);
        }
        Segment::Select { key, value: wanted } => {
            if !value.is_array() {
                *value = Value::Array(vec![]);
            }
            let Some(items) = value.as_array_mut() else {
                return;
            };
            let position = items.iter().position(|i| {
                i.get(key)
                    .map(crate::manifests::path::scalar_text)
                    .as_deref()
                    == Some(wanted)
            });
            let position = position.unwrap_or_else(|| {
                let mut item = Map::new();
                item.insert(key.clone(), Value::from(wanted.clone()));
                items.push(Value::Object(item));
                items.len() - 1
            });
            put(&mut items[position], rest, new);
        }
        Segment::Index(i) => {
            if let Some(item) = value.as_array_mut().and_then(|items| items.get_mut(*i)) {
                put(item, rest, new);
            }
        }
    }
}

/// The pull request's words on where the edit went and who else sees it.
/// What `base` is once `patch` (a strategic-merge patch of it) is applied: mappings merged key
/// by key, lists of named items (containers, env) merged by name, any other value replaced, a
/// `null` removing the key. The value a field has where the patch leaves it is the base's.
pub(crate) fn effective(base: &Value, patch: &Value) -> Value {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            let mut out = base.clone();
            for (key, value) in patch {
                match (out.get(key), value) {
                    (_, Value::Null) => {
                        out.remove(key);
                    }
                    (Some(old), new) => {
                        let merged = effective(old, new);
                        out.insert(key.clone(), merged);
                    }
                    (None, new) => {
                        out.insert(key.clone(), new.clone());
                    }
                }
            }
            Value::Object(out)
        }
        (Value::Array(base), Value::Array(patch)) if named(base) && named(patch) => {
            let mut out = base.clone();
            for item in patch {
                match out.iter_mut().find(|o| o["name"] == item["name"]) {
                    Some(old) => *old = effective(old, item),
                    None => out.push(item.clone()),
                }
            }
            Value::Array(out)
        }
        (_, patch) => patch.clone(),
    }
}

fn named(items: &[Value]) -> bool {
    items.iter().all(|i| i["name"].is_string())
}

pub(crate) fn explain(
    index: &RepoIndex,
    object: &IndexedObject,
    files: &[&Path],
    overlay: Option<&OverlayPatch>,
) -> String {
    let unit = crate::manifests::display_dir(&index.unit(object).path);
    let shown = |paths: &[PathBuf]| {
        paths
            .iter()
            .map(|p| format!("`{}`", crate::manifests::display_dir(p)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(overlay) = overlay.filter(|o| files.contains(&o.file.as_path())) {
        if let PatchHome::ValuesFile { name, list, .. } = &overlay.home {
            return format!(
                "a new values file `{}`, appended to `{list}` of {name}: no values file of the chart's was its alone, and a values file is how this repository sets values per environment",
                overlay.file.display()
            );
        }
        if let PatchHome::Applier { name, list, .. } = &overlay.home {
            return format!(
                "a new entry of `{list}` of {name} (`{}`): `{unit}` is applied as it is by {} too, which the patch leaves as it is",
                overlay.file.display(),
                shown(&overlay.others)
            );
        }
        return format!(
            "a new patch in the `{unit}` overlay (`{}`): the value is set in a base shared with {}, which the patch leaves as it is",
            overlay.file.display(),
            shown(&overlay.others)
        );
    }
    let declaration = index.declaration(object);
    let all: Vec<String> = files.iter().map(|f| format!("`{}`", f.display())).collect();
    let others: Vec<PathBuf> = units_of(index, object.declaration)
        .into_iter()
        .filter(|u| *u != index.unit(object).path)
        .map(Path::to_owned)
        .collect();
    if files
        .iter()
        .all(|f| f.starts_with(&index.unit(object).path))
        && !files.contains(&declaration.location.file.as_path())
    {
        return format!(
            "{}, in the `{unit}` build's own files; no other build sees the change",
            all.join(", ")
        );
    }
    if others.is_empty() {
        format!(
            "{} in place: only the `{unit}` build uses it",
            all.join(", ")
        )
    } else {
        format!(
            "{} in place: {} see the change too",
            all.join(", "),
            shown(&others)
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::effective;

    #[test]
    fn a_patch_merges_maps_and_named_items_replaces_the_rest_and_null_removes() {
        let base = json!({"spec": {"replicas": 2, "containers": [
            {"name": "api", "image": "api:1", "resources": {"limits": {"memory": "256Mi"}}},
            {"name": "side", "image": "side:1"}], "args": ["a", "b"], "paused": true}});
        let patch = json!({"spec": {"containers": [{"name": "api", "image": "api:2"},
            {"name": "new", "image": "new:1"}], "args": ["c"], "paused": null}});
        assert_eq!(
            effective(&base, &patch),
            json!({"spec": {"replicas": 2, "containers": [
                {"name": "api", "image": "api:2", "resources": {"limits": {"memory": "256Mi"}}},
                {"name": "side", "image": "side:1"},
                {"name": "new", "image": "new:1"}], "args": ["c"]}})
        );
    }
}
