//! Remedies: a finding in, a remediation out, or the reason there is none. The action catalog is
//! [`Action`]; one file per action family. Pure: the repository is read through its index, Git
//! history through [`ValueHistory`].
//!
//! Edits go where the value is set for the target's environment: an overlay's `replicas:` or
//! `images:` entry, or an overlay patch that sets the field, before the base declaration.

mod harden;
mod helm;
mod image;
mod imperative;
mod layer;
pub(crate) use helm::argo_values;
pub(crate) use image::image_name;
pub use imperative::RECORD_API_VERSION;
pub(crate) use layer::{PatchHome, appliers_of, patch_document};
pub use remediation::{Change, Remediation};
mod remediation;
mod resources;
mod scale;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::model::ContainerUsage;
use crate::model::objects::Pod;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::config::Config;
use crate::manifests::edit::{Edit, EditOp};
use crate::manifests::path::FieldPath;
use crate::manifests::{Declaration, IndexedObject, KustomizationFile, Location, RepoIndex, Unit};
use crate::model::{Action, FieldChange, Finding, FindingCode, ObjectRef, Snapshot, stable_id};

pub use crate::manifests::history::{HistoryError, Layer, NoHistory, ValueHistory};

/// What a remedy looks at.
pub struct Situation<'a> {
    /// The config repository.
    pub index: &'a RepoIndex,
    /// Its configuration.
    pub config: &'a Config,
    /// The cluster.
    pub snapshot: &'a Snapshot,
    /// Only targets applied in this environment, when set.
    pub environment: Option<&'a str>,
    /// Git history of the repository.
    pub history: &'a dyn ValueHistory,
    /// Where action records are written, relative to the repository.
    pub actions_dir: PathBuf,
    /// Lookups over the index and the snapshot, built the first time a remedy needs one.
    pub lookups: Lookups<'a>,
}

/// Lookups that many findings of one plan make, each built once: without them, each finding
/// would scan every object of the repository and every pod of the cluster.
#[derive(Default)]
pub struct Lookups<'a> {
    objects: OnceLock<HashMap<&'a ObjectRef, Vec<&'a IndexedObject>>>,
    pods: OnceLock<HashMap<ObjectRef, Vec<&'a Pod>>>,
    usage: OnceLock<HashMap<UsageKey, Vec<&'a ContainerUsage>>>,
    workloads: OnceLock<HashMap<WorkloadKey, Workload<'a>>>,
}

/// A container of a workload: namespace, kind, name and container.
type UsageKey = (String, String, String, String);

/// A workload: kind, namespace and name.
type WorkloadKey = (String, Option<String>, String);

/// A live workload's metadata and pod template.
type Workload<'a> = (&'a ObjectMeta, &'a PodTemplateSpec);

impl<'a> Situation<'a> {
    /// The objects the repository declares as `id`, in the index's order.
    pub(crate) fn objects_as(&self, id: &ObjectRef) -> &[&'a IndexedObject] {
        let index: &'a RepoIndex = self.index;
        let objects = self.lookups.objects.get_or_init(|| {
            let mut by_id: HashMap<&'a ObjectRef, Vec<&'a IndexedObject>> = HashMap::new();
            for object in &index.objects {
                by_id.entry(&object.id).or_default().push(object);
            }
            by_id
        });
        objects.get(id).map_or(&[], Vec::as_slice)
    }

    /// The usage histories of `container` of `workload`, in the snapshot's order.
    pub(crate) fn usage_of(&self, workload: &ObjectRef, container: &str) -> &[&'a ContainerUsage] {
        let snapshot: &'a Snapshot = self.snapshot;
        let usage = self.lookups.usage.get_or_init(|| {
            let mut by_key: HashMap<UsageKey, Vec<&'a ContainerUsage>> = HashMap::new();
            for series in &snapshot.usage.containers {
                let key = (
                    series.namespace.clone(),
                    series.workload.kind.clone(),
                    series.workload.name.clone(),
                    series.container.clone(),
                );
                by_key.entry(key).or_default().push(series);
            }
            by_key
        });
        let Some(namespace) = workload.namespace.clone() else {
            return &[];
        };
        let key = (
            namespace,
            workload.kind.clone(),
            workload.name.clone(),
            container.to_owned(),
        );
        usage.get(&key).map_or(&[], Vec::as_slice)
    }

    /// The live Deployment, StatefulSet or DaemonSet `target`, as [`Snapshot::workload`] finds
    /// it.
    pub(crate) fn workload(&self, target: &ObjectRef) -> Option<Workload<'a>> {
        let snapshot: &'a Snapshot = self.snapshot;
        let workloads = self.lookups.workloads.get_or_init(|| {
            let mut by_ref: HashMap<WorkloadKey, Workload<'a>> = HashMap::new();
            for (kind, meta, template) in snapshot.workloads() {
                if let Some(name) = meta.name.clone() {
                    let key = (kind.to_owned(), meta.namespace.clone(), name);
                    by_ref.entry(key).or_insert((meta, template));
                }
            }
            by_ref
        });
        let key = (
            target.kind.clone(),
            target.namespace.clone(),
            target.name.clone(),
        );
        workloads.get(&key).copied()
    }

    /// The pods of `workload` in the cluster, by their owner references.
    pub(crate) fn pods_of(&self, workload: &ObjectRef) -> &[&'a Pod] {
        let snapshot: &'a Snapshot = self.snapshot;
        let pods = self.lookups.pods.get_or_init(|| {
            let owners = crate::detect::owners::Owners::new(snapshot);
            let mut by_owner: HashMap<ObjectRef, Vec<&'a Pod>> = HashMap::new();
            for pod in &snapshot.pods {
                if let Some(owner) = owners.of_pod(pod) {
                    by_owner.entry(owner).or_default().push(pod);
                }
            }
            by_owner
        });
        pods.get(workload).map_or(&[], Vec::as_slice)
    }
}

/// The result of remedying one finding.
#[derive(Debug, Clone)]
pub enum Remedy {
    /// A change to propose.
    Proposal(Box<Remediation>),
    /// No safe change: the diagnosis and runbook are the answer.
    Diagnosis {
        /// The finding.
        finding: Finding,
        /// Why there is no change.
        reason: String,
    },
    /// The target is not declared in the repository (or not once).
    Unmanaged {
        /// The finding.
        finding: Finding,
        /// Why.
        reason: String,
    },
}

/// The remedy for `finding`.
pub fn remediate(finding: &Finding, ctx: &Situation) -> Remedy {
    let result = match finding.code {
        FindingCode::CrashLoopOom => resources::raise_memory(finding, ctx),
        FindingCode::OverProvisioned | FindingCode::UnderProvisioned => resources::right_size(finding, ctx),
        FindingCode::HighCpu => scale::high_cpu(finding, ctx),
        FindingCode::PeakForecast => scale::ahead_of_peak(finding, ctx),
        FindingCode::MemoryGrowth => Err(Stop::Diagnosis(
            "memory that keeps growing is a suspected leak: a higher limit only moves the OOM kill later; find what holds the memory (a heap profile, the growth's start against the deploy history)".into(),
        )),
        FindingCode::ImagePullBackoff | FindingCode::RolloutStuck => image::rollback(finding, ctx),
        FindingCode::PvcFillingUp => imperative::expand_pvc(finding, ctx),
        FindingCode::NodeNotReady => imperative::node(finding, ctx, Action::DrainNode),
        FindingCode::NodeMemoryPressure | FindingCode::NodeDiskPressure => imperative::node(finding, ctx, Action::CordonNode),
        FindingCode::PodStuckTerminating => imperative::delete_pod(finding, ctx),
        FindingCode::InsecureWorkload => harden::harden(finding, ctx),
        FindingCode::CrashLoop => Err(Stop::Diagnosis(
            "the container exits on its own; its logs say why, and no resource or replica change fixes that".into(),
        )),
        FindingCode::CreateContainerConfigError => Err(Stop::Diagnosis(
            "a referenced ConfigMap, Secret or key is missing; create it or fix the reference".into(),
        )),
        FindingCode::Unschedulable => Err(Stop::Diagnosis("scheduling needs capacity or a changed selector, a human decision".into())),
        FindingCode::PvcPending => Err(Stop::Diagnosis("the claim waits on its storage class; nothing in the manifests to change".into())),
        FindingCode::ReplicasNotReady => Err(Stop::Diagnosis("the snapshot does not say why the replicas are not ready".into())),
    };
    match result {
        Ok(remediation) => Remedy::Proposal(Box::new(remediation)),
        Err(Stop::Diagnosis(reason)) => Remedy::Diagnosis {
            finding: finding.clone(),
            reason,
        },
        Err(Stop::Unmanaged(reason)) => Remedy::Unmanaged {
            finding: finding.clone(),
            reason,
        },
    }
}

/// Why a remedy stops without a remediation.
pub(crate) enum Stop {
    Diagnosis(String),
    Unmanaged(String),
}

/// Result of one remedy.
pub(crate) type RemedyResult = Result<Remediation, Stop>;

/// The target as the repository declares it for one unit.
pub(crate) struct Declared<'a> {
    pub index: &'a RepoIndex,
    pub object: &'a IndexedObject,
    pub declaration: &'a Declaration,
    pub unit: &'a Unit,
    pub kustomization: Option<&'a KustomizationFile>,
    pub environment: Option<String>,
    /// The patch to add to the build's overlay for a value set in a shared base.
    pub overlay: Option<layer::OverlayPatch>,
    /// For a workload a Helm release makes: the release's values (the declaration is the
    /// release's).
    pub helm: Option<helm::HelmValues>,
}

impl<'a> Situation<'a> {
    /// The one declaration of `target` (in the context's environment, when set).
    pub(crate) fn declared(&self, target: &ObjectRef) -> Result<Declared<'a>, Stop> {
        let index = self.index;
        let in_environment =
            |o: &IndexedObject, env: &str| self.environments_of(o).iter().any(|e| e == env);
        let found: Vec<&IndexedObject> = self
            .objects_as(target)
            .iter()
            .copied()
            .filter(|o| self.environment.is_none_or(|env| in_environment(o, env)))
            .collect();
        // A build that renames its objects (`namePrefix`, `nameSuffix`) applies them under
        // another name than the one declared.
        let found = if found.is_empty() {
            index
                .renamed_as(target)
                .filter(|o| self.environment.is_none_or(|env| in_environment(o, env)))
                .collect()
        } else {
            found
        };
        let object = match found.as_slice() {
            [] => {
                let released =
                    helm::release_of(index, self.snapshot, target, self.environment, |o| {
                        self.environment.is_none_or(|env| in_environment(o, env))
                    });
                if let Some((release, values)) = released {
                    return self.declared_object(release, Some(values));
                }
                let scope = self
                    .environment
                    .map(|e| format!(" for environment `{e}`"))
                    .unwrap_or_default();
                return Err(Stop::Unmanaged(format!(
                    "{target} is not declared in the repository{scope}"
                )));
            }
            [one] => *one,
            many => {
                let units: Vec<String> = many
                    .iter()
                    .map(|o| crate::manifests::display_dir(&index.unit(o).path))
                    .collect();
                let advice = match self.environment {
                    None => "pass --env to choose the environment".to_owned(),
                    // Several units of one environment: the config's paths cannot tell them
                    // apart, and guessing one would edit a build the failing cluster may not use.
                    Some(env) => format!(
                        "all of them are in environment `{env}`; give each unit its own environment in remediator.yaml"
                    ),
                };
                return Err(Stop::Unmanaged(format!(
                    "{target} is declared in several units ({}); {advice}",
                    units.join(", ")
                )));
            }
        };
        self.declared_object(object, None)
    }

    /// `object` as declared, when it is declared once.
    fn declared_object(
        &self,
        object: &'a IndexedObject,
        helm: Option<helm::HelmValues>,
    ) -> Result<Declared<'a>, Stop> {
        let index = self.index;
        let target = &object.id;
        let copies = index.copies(object);
        if copies.len() > 1 {
            let places: Vec<String> = copies.iter().map(|l| l.to_string()).collect();
            return Err(Stop::Diagnosis(format!(
                "{target} is declared more than once in {} ({}): a change to one copy would be undone by the other; keep one declaration, then propose again",
                crate::manifests::display_dir(&index.unit(object).path),
                places.join(", ")
            )));
        }
        let unit = index.unit(object);
        let kustomization = index
            .kustomizations
            .iter()
            .find(|k| unit.kustomization.as_ref() == Some(&k.location.file));
        // A build that appliers of several environments apply (the same path in two
        // clusters' directories) is never edited for one of them.
        let environments = self.environments_of(object);
        // Its values for one environment go into that environment's own applier.
        if let Some(env) = self.environment.filter(|_| environments.len() > 1) {
            let environment_of =
                |file: &Path| self.config.environment_for(file).map(|e| e.name.clone());
            if let Some(patch) = layer::applier_patch(index, object, environment_of, env) {
                return Ok(Declared {
                    index,
                    object,
                    declaration: index.declaration(object),
                    unit,
                    kustomization,
                    environment: Some(env.to_owned()),
                    overlay: Some(patch),
                    helm,
                });
            }
        }
        if environments.len() > 1 {
            let appliers: Vec<String> = layer::appliers_of(index, &unit.path)
                .iter()
                .map(|(name, file)| format!("{name} ({})", file.display()))
                .collect();
            let own = self.environment.unwrap_or("this one");
            return Err(Stop::Diagnosis(format!(
                "`{}` is applied in environments {} (by {}): an edit of its files would change them all; set the value for {own} in its own applier (a Flux Kustomization's `spec.patches`, an Argo CD Application's `kustomize.patches`) or give it its own overlay",
                crate::manifests::display_dir(&unit.path),
                environments.join(", "),
                appliers.join(", ")
            )));
        }
        let environment = environments.into_iter().next();
        // A release's edits that go to a values file of its own yet to be made.
        let new_values = helm.as_ref().and_then(|h| {
            let (layer, entry) = h.new_file()?;
            let list = h.prefix.strip_suffix(".valuesObject")?;
            Some(layer::OverlayPatch {
                file: layer.location.file.clone(),
                others: vec![],
                home: layer::PatchHome::ValuesFile {
                    application: index.declaration(object).location.clone(),
                    list: format!("{list}.valueFiles").parse().ok()?,
                    entry: entry.to_owned(),
                    name: h.release.clone(),
                },
            })
        });
        Ok(Declared {
            index,
            object,
            declaration: index.declaration(object),
            unit,
            kustomization,
            environment,
            overlay: new_values.or_else(|| layer::overlay_patch(index, object, kustomization)),
            helm,
        })
    }

    /// The environments `object` is applied in: the one the configuration's paths give its
    /// placement, else those of the Flux Kustomizations and Argo CD Applications that apply its
    /// unit, by the files that declare them (the same build applied from two clusters'
    /// directories is in both).
    fn environments_of(&self, object: &IndexedObject) -> Vec<String> {
        let index = self.index;
        if let Some(env) = self.config.environment_for(index.placement(object)) {
            return vec![env.name.clone()];
        }
        let mut out: Vec<String> = layer::appliers_of(index, &index.unit(object).path)
            .iter()
            .filter_map(|(_, file)| self.config.environment_for(file))
            .map(|e| e.name.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Where `path` of the declared object is set for its unit: an overlay patch of the unit that
    /// sets it; else, for a base other builds share, the new patch of the unit's overlay (with
    /// the base's value to read); else the declaration itself.
    pub(crate) fn field_location(
        &self,
        declared: &Declared,
        path: &FieldPath,
    ) -> (Location, Value) {
        // A release's value goes to the layer of its values that belongs to it.
        if let Some(found) = declared.helm.as_ref().and_then(|h| h.location(path)) {
            return found;
        }
        let (location, value) = self.own_location(declared, path);
        // A release's own values read over what they go over.
        match &declared.helm {
            Some(helm) => (location, helm.read_through(value)),
            None => (location, value),
        }
    }

    /// Whether the current value of `path` can be known: a release with a values layer that
    /// cannot be read knows it only where a layer of its own above that one sets it.
    pub(crate) fn known(&self, declared: &Declared, path: &FieldPath) -> Result<(), Stop> {
        let Some(helm) = &declared.helm else {
            return Ok(());
        };
        let Some(said) = helm.unread_said() else {
            return Ok(());
        };
        let set_above = if helm.layers.is_empty() {
            // A Flux release: its own values and patches, read without what they go over.
            let (_, value) = self.own_location(declared, path);
            path.get(&value).is_some()
        } else {
            let text = path.to_string();
            let key = text
                .strip_prefix(&format!("{}.", helm.prefix))
                .unwrap_or(&text);
            helm.set_above_unread(key)
        };
        if set_above {
            Ok(())
        } else {
            Err(Stop::Diagnosis(format!(
                "{said}, so the current `{path}` is not known"
            )))
        }
    }

    /// Where `path` of the declared object is set among the unit's own files (its patches, the
    /// new overlay patch, the declaration), with the value as they make it.
    fn own_location(&self, declared: &Declared, path: &FieldPath) -> (Location, Value) {
        let in_unit = |file: &Path| {
            declared.unit.kustomization.is_some() && file.starts_with(&declared.unit.path)
        };
        let patches: Vec<&Declaration> = self
            .index
            .patch_declarations
            .iter()
            .filter(|p| {
                p.id.kind == declared.declaration.id.kind
                    && p.id.name == declared.declaration.id.name
                    && in_unit(&p.location.file)
            })
            .collect();
        // A patch that sets the field; else, for a base other builds share, one that already
        // patches the list item the field is in (a container), which the edit extends.
        let item = item_path(path);
        let patch = patches
            .iter()
            .find(|p| path.get(&p.value).is_some())
            .or_else(|| {
                declared.overlay.as_ref()?;
                patches.iter().find(|p| match &item {
                    Some(item) => item.get(&p.value).is_some(),
                    None => true,
                })
            });
        let (location, value) = match (patch, &declared.overlay) {
            // Written into the patch, read as the patches make it of the base: a patch that
            // sets other fields leaves this one at the base's value.
            (Some(p), _) => {
                let value = patches
                    .iter()
                    .fold(declared.declaration.value.clone(), |v, p| {
                        layer::effective(&v, &p.value)
                    });
                (p.location.clone(), value)
            }
            (None, Some(overlay)) => (overlay.location(), declared.declaration.value.clone()),
            (None, None) => (
                declared.declaration.location.clone(),
                declared.declaration.value.clone(),
            ),
        };
        (location, value)
    }
}

/// Builds a remediation for `finding` from its changes.
pub(crate) struct Draft<'d> {
    pub finding: &'d Finding,
    pub action: Action,
    pub target: ObjectRef,
    pub declared: Option<&'d Declared<'d>>,
    pub summary: String,
    pub rollback: String,
    pub changes: Vec<Change>,
    pub fields: Vec<FieldChange>,
    /// What goes into the new overlay patch.
    pub patch_sets: Vec<(FieldPath, Value)>,
}

impl<'d> Draft<'d> {
    /// A remediation of `finding` by `action` on `target`, with no change yet.
    pub(crate) fn new(
        finding: &'d Finding,
        action: Action,
        target: ObjectRef,
        declared: Option<&'d Declared<'d>>,
        summary: String,
        rollback: String,
    ) -> Self {
        Self {
            finding,
            action,
            target,
            declared,
            summary,
            rollback,
            changes: vec![],
            fields: vec![],
            patch_sets: vec![],
        }
    }

    /// Sets `path` to `new` in the object or file at `location`, whose current value is `doc`.
    pub(crate) fn set(&mut self, location: &Location, doc: &Value, path: FieldPath, new: Value) {
        let old = path.get(doc).cloned();
        self.fields.push(FieldChange {
            file: location.file.clone(),
            path: path.to_string(),
            ratio: ratio(old.as_ref(), &new),
            old,
            new: Some(new.clone()),
        });
        let overlay = self.declared.and_then(|d| d.overlay.as_ref());
        if overlay.is_some_and(|o| o.file == location.file) {
            self.patch_sets.push((path, new));
            return;
        }
        let edit = Edit::set(path, new);
        match self
            .changes
            .iter_mut()
            .find(|c| matches!(c, Change::Edit { location: l, .. } if l == location))
        {
            Some(Change::Edit { edits, .. }) => edits.push(edit),
            _ => self.changes.push(Change::Edit {
                location: location.clone(),
                edits: vec![edit],
            }),
        }
    }

    pub(crate) fn finish(mut self) -> Remediation {
        let mut finding = self.finding.clone();
        if let Some(declared) = self.declared {
            if let Some(overlay) = declared
                .overlay
                .as_ref()
                .filter(|_| !self.patch_sets.is_empty())
            {
                let scope = match &overlay.home {
                    layer::PatchHome::File { .. } => "only this overlay's build sees it",
                    layer::PatchHome::Applier { .. } => "only this environment's applier sees it",
                    layer::PatchHome::ValuesFile { .. } => "only this Application reads it",
                };
                let content =
                    layer::patch_text(declared.declaration, &self.patch_sets, self.finding, scope);
                match &overlay.home {
                    layer::PatchHome::File {
                        kustomization,
                        entry,
                    } => {
                        self.changes.push(Change::Create {
                            path: overlay.file.clone(),
                            content,
                        });
                        self.changes.push(Change::Edit {
                            location: kustomization.clone(),
                            edits: vec![Edit {
                                path: FieldPath {
                                    segments: vec![crate::manifests::path::Segment::Key(
                                        "patches".into(),
                                    )],
                                },
                                op: EditOp::Append(serde_json::json!({"path": entry})),
                            }],
                        });
                    }
                    layer::PatchHome::ValuesFile {
                        application,
                        list,
                        entry,
                        ..
                    } => {
                        self.changes.push(Change::Create {
                            path: overlay.file.clone(),
                            content: layer::values_text(&self.patch_sets, self.finding, scope),
                        });
                        self.changes.push(Change::Edit {
                            location: application.clone(),
                            edits: vec![Edit {
                                path: list.clone(),
                                op: EditOp::Append(Value::String(entry.clone())),
                            }],
                        });
                    }
                    layer::PatchHome::Applier { location, list, .. } => {
                        let id = &declared.declaration.id;
                        let mut target = serde_json::json!({"kind": id.kind, "name": id.name});
                        if let Some(namespace) =
                            declared.declaration.value.pointer("/metadata/namespace")
                        {
                            target["namespace"] = namespace.clone();
                        }
                        self.changes.push(Change::Edit {
                            location: location.clone(),
                            edits: vec![Edit {
                                path: list.clone(),
                                op: EditOp::Append(
                                    serde_json::json!({"patch": content, "target": target}),
                                ),
                            }],
                        });
                    }
                }
            }
            if let Some(helm) = &declared.helm {
                // A key of the release's own values, or of a values file (the whole path).
                let own = format!("{}.", helm.prefix);
                let keys: Vec<String> =
                    self.fields
                        .iter()
                        .filter_map(|f| match f.path.strip_prefix(&own) {
                            Some(key) => Some(key.to_owned()),
                            None => (f.file != declared.declaration.location.file)
                                .then(|| f.path.clone()),
                        })
                        .collect();
                finding = finding.with("values key", helm.guess(&keys.join("`, `")));
            }
            let mut files: Vec<&Path> = self.fields.iter().map(|f| f.file.as_path()).collect();
            files.dedup();
            if !files.is_empty() {
                let words = layer::explain(
                    declared.index,
                    declared.object,
                    &files,
                    declared.overlay.as_ref(),
                );
                finding = finding.with("edited", words);
            }
        }
        let container = self.finding.container.as_deref().unwrap_or_default();
        let target = self.target.to_string();
        Remediation {
            id: stable_id(&[self.finding.code.as_str(), &target, container]),
            finding,
            action: self.action,
            labels: self
                .declared
                .and_then(|d| {
                    d.declaration.value["metadata"]["labels"]
                        .as_object()
                        .cloned()
                })
                .unwrap_or_default(),
            environment: self.declared.and_then(|d| d.environment.clone()),
            target: self.target,
            summary: self.summary,
            fields: self.fields,
            rollback: self.rollback,
            changes: self.changes,
        }
    }
}

/// new / old when both are numbers or quantities of the same kind.
fn ratio(old: Option<&Value>, new: &Value) -> Option<f64> {
    let number = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => crate::model::quantity::memory_bytes(s)
            .or_else(|| crate::model::quantity::cpu_millis(s)),
        _ => None,
    };
    let (old, new) = (number(old?)?, number(new)?);
    (old > 0.0).then(|| new / old)
}

/// The path up to and including its last `[key=value]` step (the list item a field is in).
fn item_path(path: &FieldPath) -> Option<FieldPath> {
    let last = path
        .segments
        .iter()
        .rposition(|s| matches!(s, crate::manifests::path::Segment::Select { .. }))?;
    Some(FieldPath {
        segments: path.segments[..=last].to_vec(),
    })
}

/// `spec.template.spec.containers[name=<container>].<rest>` for a workload kind; `None` for kinds
/// without a pod template this remedy knows.
pub(crate) fn container_path(kind: &str, container: &str, rest: &str) -> Option<FieldPath> {
    let prefix = match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => "spec.template.spec",
        "Job" => "spec.template.spec",
        "CronJob" => "spec.jobTemplate.spec.template.spec",
        _ => return None,
    };
    format!("{prefix}.containers[name={container}].{rest}")
        .parse()
        .ok()
}

#[cfg(test)]
pub(crate) mod testing {
    //! A context over the example repository.

    use std::path::Path;

    use super::*;
    use crate::manifests::IndexOptions;

    /// The example repository's index and configuration.
    pub fn example() -> (RepoIndex, Config) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/repo");
        let config = Config::load(&root).unwrap();
        let index = RepoIndex::build(&root, &IndexOptions::default()).unwrap();
        (index, config)
    }

    /// A context over `index` in `prod`, without history, writing action records under `r`.
    pub fn prod<'a>(
        index: &'a RepoIndex,
        config: &'a Config,
        snapshot: &'a Snapshot,
    ) -> Situation<'a> {
        Situation {
            environment: Some("prod"),
            actions_dir: "r".into(),
            ..context(index, config, snapshot)
        }
    }

    /// A context over `index` in no particular environment, without history.
    pub fn context<'a>(
        index: &'a RepoIndex,
        config: &'a Config,
        snapshot: &'a Snapshot,
    ) -> Situation<'a> {
        Situation {
            index,
            config,
            snapshot,
            environment: None,
            history: &NoHistory,
            actions_dir: "remediations".into(),
            lookups: Default::default(),
        }
    }

    /// Usage facts of `resource` whose p95 and maximum are `p95`.
    pub fn usage(resource: &str, p95: f64) -> crate::model::UsageFacts {
        crate::model::UsageFacts {
            forecast_from: None,
            resource: resource.into(),
            p95,
            max: p95,
            request: None,
            limit: None,
            chart: vec![],
        }
    }

    /// A history that answers every question with `value`.
    pub struct FixedHistory(pub Value);

    impl ValueHistory for FixedHistory {
        fn previous(
            &self,
            _: &Path,
            _: Option<&ObjectRef>,
            _: &FieldPath,
            current: &Value,
        ) -> Result<Option<Value>, HistoryError> {
            Ok((self.0 != *current).then(|| self.0.clone()))
        }
    }

    /// The remediation, or a panic saying what came instead.
    pub fn proposal(outcome: Remedy) -> Remediation {
        match outcome {
            Remedy::Proposal(r) => *r,
            Remedy::Diagnosis { reason, .. } => panic!("diagnosis: {reason}"),
            Remedy::Unmanaged { reason, .. } => panic!("unmanaged: {reason}"),
        }
    }

    /// The edits of a remediation as `file: path = value` lines.
    pub fn edits(r: &Remediation) -> Vec<String> {
        r.fields
            .iter()
            .map(|f| {
                format!(
                    "{}: {} = {}",
                    f.file.display(),
                    f.path,
                    f.new.as_ref().map(|v| v.to_string()).unwrap_or_default()
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::testing::*;
    use super::*;
    use crate::manifests::parse_text;
    use crate::model::{Severity, UsageFacts};

    fn finding(code: FindingCode, subject: ObjectRef) -> Finding {
        Finding::new(code, Severity::Warning, subject, "x".into())
    }

    #[test]
    fn findings_without_a_safe_change_are_diagnoses() {
        let (index, config) = example();
        let snapshot = Snapshot::default();
        let ctx = context(&index, &config, &snapshot);
        let api = ObjectRef::new("apps/v1", "Deployment", Some("shop"), "api");
        for code in [
            FindingCode::CrashLoop,
            FindingCode::CreateContainerConfigError,
            FindingCode::Unschedulable,
            FindingCode::PvcPending,
            FindingCode::ReplicasNotReady,
        ] {
            let mut f = finding(code, api.clone());
            f.owner = Some(api.clone());
            assert!(
                matches!(remediate(&f, &ctx), Remedy::Diagnosis { .. }),
                "{code}"
            );
        }
    }

    #[test]
    fn a_build_two_clusters_apply_is_edited_in_the_failing_environment_s_own_applier() {
        let root = tempfile::tempdir().unwrap();
        let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: shop}\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: api:1\n          resources: {limits: {memory: 256Mi}}\n";
        let flux = |path: &str| {
            format!(
                "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {{name: apps, namespace: flux-system}}\nspec:\n  path: {path}\n  sourceRef: {{kind: GitRepository, name: flux-system}}\n"
            )
        };
        for (path, text) in [
            (
                "apps/shared/kustomization.yaml",
                "resources: [api.yaml]\n".to_owned(),
            ),
            ("apps/shared/api.yaml", deployment.to_owned()),
            (
                "apps/eu-only/kustomization.yaml",
                "resources: [api.yaml]\n".to_owned(),
            ),
            (
                "apps/eu-only/api.yaml",
                deployment.replace("name: api,", "name: eu,"),
            ),
            ("clusters/prod-eu/apps.yaml", flux("./apps/shared")),
            (
                "clusters/prod-eu/eu.yaml",
                flux("./apps/eu-only").replace("name: apps", "name: eu"),
            ),
            ("clusters/prod-us/apps.yaml", flux("./apps/shared")),
        ] {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let index = RepoIndex::build(root.path(), &Default::default()).unwrap();
        let config = Config::parse(
            Path::new("remediator.yaml"),
            "environments:\n  - name: prod-eu\n    paths: [\"clusters/prod-eu/**\"]\n  - name: prod-us\n    paths: [\"clusters/prod-us/**\"]\n",
        )
        .unwrap();
        let snapshot = Snapshot::default();
        let oom = |name: &str| {
            let target = ObjectRef::new("apps/v1", "Deployment", Some("shop"), name);
            let mut f = finding(FindingCode::CrashLoopOom, target.clone());
            f.owner = Some(target);
            f.container = Some("api".into());
            f
        };
        let eu = Situation {
            environment: Some("prod-eu"),
            ..context(&index, &config, &snapshot)
        };
        // For one environment, the value goes into that environment's own Flux Kustomization.
        let r = proposal(remediate(&oom("api"), &eu));
        let [
            Change::Edit {
                location,
                edits: appended,
            },
        ] = r.changes.as_slice()
        else {
            panic!("{:?}", r.changes);
        };
        assert_eq!(location.file, Path::new("clusters/prod-eu/apps.yaml"));
        assert_eq!(appended[0].path.to_string(), "spec.patches");
        let EditOp::Append(entry) = &appended[0].op else {
            panic!("{appended:?}");
        };
        assert_eq!(
            entry["target"],
            serde_json::json!({"kind": "Deployment", "name": "api", "namespace": "shop"})
        );
        assert!(
            entry["patch"].as_str().unwrap().ends_with(
                "          resources:\n            limits:\n              memory: 384Mi\n"
            ),
            "{entry}"
        );
        assert!(
            r.finding.evidence.iter().any(|e| e.value.contains(
                "Flux Kustomization flux-system/apps (`clusters/prod-eu/apps.yaml`): `apps/shared` is applied as it is by `clusters/prod-us/apps.yaml` too"
            )),
            "{:?}",
            r.finding.evidence
        );
        // With no environment named, no edit of the shared build is right.
        match remediate(&oom("api"), &context(&index, &config, &snapshot)) {
            Remedy::Diagnosis { reason, .. } => assert!(
                reason.contains("`apps/shared` is applied in environments prod-eu, prod-us")
                    && reason.contains("clusters/prod-us/apps.yaml"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        // A build only one cluster applies is that cluster's environment's, though no glob
        // names its directory.
        let r = proposal(remediate(&oom("eu"), &eu));
        assert_eq!(
            edits(&r),
            [
                "apps/eu-only/api.yaml: spec.template.spec.containers[name=api].resources.limits.memory = \"384Mi\""
            ]
        );
    }

    #[test]
    fn an_object_in_several_units_names_what_would_tell_them_apart() {
        let root = tempfile::tempdir().unwrap();
        let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: shop}\nspec:\n  template:\n    spec:\n      containers: [{name: api, image: api:1}]\n";
        for dir in ["a", "b"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
            std::fs::write(root.path().join(dir).join("api.yaml"), deployment).unwrap();
        }
        let index = RepoIndex::build(root.path(), &Default::default()).unwrap();
        let config = Config::parse(
            Path::new("remediator.yaml"),
            "environments:\n  - name: all\n    paths: [\"**\"]\n",
        )
        .unwrap();
        let snapshot = Snapshot::default();
        let api = ObjectRef::new("apps/v1", "Deployment", Some("shop"), "api");
        let mut f = finding(FindingCode::ImagePullBackoff, api.clone());
        f.owner = Some(api);
        let reason = |ctx: &Situation| match remediate(&f, ctx) {
            Remedy::Unmanaged { reason, .. } => reason,
            _ => panic!("not unmanaged"),
        };
        let anywhere = reason(&context(&index, &config, &snapshot));
        assert!(
            anywhere.ends_with("pass --env to choose the environment"),
            "{anywhere}"
        );
        let in_all = Situation {
            environment: Some("all"),
            ..context(&index, &config, &snapshot)
        };
        let told = reason(&in_all);
        assert!(
            !told.contains("pass --env") && told.contains("all of them are in environment `all`"),
            "{told}"
        );
    }

    #[test]
    fn under_provisioned_raises_the_limit_only() {
        let (index, config) = example();
        let snapshot = Snapshot::default();
        let web = ObjectRef::new("apps/v1", "Deployment", Some("shop"), "web");
        let mut f = finding(FindingCode::UnderProvisioned, web.clone());
        f.owner = Some(web);
        f.container = Some("web".into());
        f.usage = vec![UsageFacts {
            forecast_from: None,
            resource: "memory".into(),
            p95: 480.0 * 1048576.0,
            max: 0.0,
            request: None,
            limit: None,
            chart: vec![],
        }];
        let r = proposal(remediate(&f, &context(&index, &config, &snapshot)));
        assert_eq!(
            edits(&r),
            [
                "clusters/prod/patches/web-resources.yaml: spec.template.spec.containers[name=web].resources.limits.memory = \"624Mi\""
            ]
        );
    }

    #[test]
    fn node_pressure_cordons_and_stuck_pods_are_deleted() {
        let (index, config) = example();
        let snapshot = Snapshot::default();
        let ctx = context(&index, &config, &snapshot);
        let node = finding(
            FindingCode::NodeDiskPressure,
            ObjectRef::new("v1", "Node", None, "n1"),
        );
        let r = proposal(remediate(&node, &ctx));
        assert_eq!((r.action, r.changes.len()), (Action::CordonNode, 1));
        let pod = finding(
            FindingCode::PodStuckTerminating,
            ObjectRef::new("v1", "Pod", Some("shop"), "api-1"),
        );
        let r = proposal(remediate(&pod, &ctx));
        let [Change::Create { path, content }] = r.changes.as_slice() else {
            panic!()
        };
        assert_eq!(path, Path::new("remediations/delete-pod-shop-api-1.yaml"));
        assert!(content.contains("gracePeriodSeconds: 0"), "{content}");
    }

    #[test]
    fn a_declared_claim_is_expanded_in_its_manifest() {
        let pvc = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: uploads\n  namespace: shop\nspec:\n  resources:\n    requests:\n      storage: 20Gi\n";
        let parsed = vec![(
            PathBuf::from("pvc.yaml"),
            parse_text(Path::new("pvc.yaml"), pvc),
        )];
        let index = RepoIndex::from_parsed(Path::new("/repo"), parsed);
        let config = Config::default();
        let snapshot = Snapshot::default();
        let mut f = finding(
            FindingCode::PvcFillingUp,
            ObjectRef::new("v1", "PersistentVolumeClaim", Some("shop"), "uploads"),
        );
        f.usage = vec![UsageFacts {
            forecast_from: None,
            resource: "storage".into(),
            p95: 0.0,
            max: 0.0,
            request: Some(20.0 * 1073741824.0),
            limit: None,
            chart: vec![],
        }];
        let r = proposal(remediate(&f, &context(&index, &config, &snapshot)));
        assert_eq!(
            edits(&r),
            ["pvc.yaml: spec.resources.requests.storage = \"30Gi\""]
        );
        assert_eq!(r.action, Action::ExpandPvc);
    }
}
