//! Workloads a Helm release makes: the repository declares the release (a Flux `HelmRelease`, or
//! an Argo CD `Application` with a Helm source and `valuesObject`), not the Deployment, so the
//! edit goes into the release's values. The live workload names its release (Flux's
//! `helm.toolkit.fluxcd.io/*` labels, Helm's `meta.helm.sh/*` annotations, Argo CD's tracking
//! annotation or labels). Without the chart's templates the value's key is the common convention
//! (`resources`, `replicaCount`, `image.tag`, `autoscaling.maxReplicas`), and the pull request
//! says it is one. Pure.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::manifests::path::FieldPath;
use crate::manifests::{IndexedObject, Location, RepoIndex};
use crate::model::{ObjectRef, Snapshot};

/// Where a release's values are, and what the guess is based on.
#[derive(Debug, Clone)]
pub(crate) struct HelmValues {
    /// The values' path in the release object (`spec.values`).
    pub prefix: String,
    /// The release, for the pull request (`HelmRelease podinfo/podinfo`).
    pub release: String,
    /// The top-level values the chart's templates read, when the chart is in the repository.
    pub read: Option<std::collections::BTreeSet<String>>,
    /// The chart's templates that write a `resources:` block reading no value.
    pub literal: Vec<std::path::PathBuf>,
    /// The values key each container of the chart takes its resources from, by name.
    pub containers: BTreeMap<String, String>,
    /// The values keys that reach each container of the target, by name, as `helm template`
    /// with marker values showed them; empty when the chart was not rendered.
    pub reach: BTreeMap<String, crate::manifests::Reached>,
    /// The names the release's own workload takes by Helm's naming convention (the release's
    /// name, and `<release>-<chart>`): without the chart, a common key is only a fair guess
    /// for that workload, never for a component's (`podinfo-redis`).
    pub own_names: Vec<String>,
    /// The name of the workload a remedy changes.
    pub workload: String,
    /// For a Flux HelmRelease, what its own values go over, least specific first: its chart's
    /// `values.yaml`, then each `valuesFrom` source. Read, never edited.
    pub defaults: Vec<ValuesLayer>,
    /// The layers that cannot be read here (a `valuesFrom` Secret, a ConfigMap the repository
    /// does not hold, a `values` text that does not parse): a value the editable layers do not
    /// set is not known.
    pub unread: Vec<String>,
    /// Where the values come from, least specific first, when the repository holds more than
    /// the release's own values (an Argo CD source's `valueFiles`, the chart's `values.yaml`).
    pub layers: Vec<ValuesLayer>,
}

/// One layer of a release's values.
#[derive(Debug, Clone)]
pub(crate) struct ValuesLayer {
    /// What it is, for the pull request: a file, or the release's own values.
    pub name: String,
    /// Its document.
    pub location: Location,
    /// The document.
    pub document: Value,
    /// Where the values sit in the document: empty for a values file, the release's values
    /// path (`spec.source.helm.valuesObject`) for its own.
    pub prefix: String,
    /// Whether only this release reads it: an edit there changes no other environment.
    pub own: bool,
    /// What kind of layer it is.
    pub role: Role,
}

/// The kinds of values layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    /// A values file, or the chart's defaults.
    File,
    /// A values file to be made for the release alone, added to its `valueFiles` as `entry`.
    New { entry: String },
    /// Values written in the release as one YAML text (`helm.values`): read, never edited.
    Text,
    /// The release's own values (`valuesObject`, `spec.values`).
    Object,
    /// `helm.parameters`, over every other layer: read, never edited.
    Parameters,
}

impl ValuesLayer {
    fn values(&self) -> Value {
        if self.prefix.is_empty() {
            return self.document.clone();
        }
        self.document
            .pointer(&pointer_of(&self.prefix))
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn sets(&self, key: &str) -> bool {
        let pointer = format!("/{}", key.replace('.', "/"));
        self.values().pointer(&pointer).is_some()
    }

    fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }
}

impl HelmValues {
    /// `key` (`resources.limits.memory`) for `container`: under the key the chart's templates
    /// give that container's resources (`sidecar.resources.limits.memory`), when they say.
    /// Rendered with marker values, a container that takes no resources from the values is an
    /// error naming it.
    pub fn key_for(&self, container: &str, key: &str) -> Result<String, String> {
        let Some(rest) = key.strip_prefix("resources") else {
            return Ok(key.to_owned());
        };
        if let Some(reached) = self.reach.get(container) {
            return match &reached.resources {
                Some(own) => Ok(format!("{own}{rest}")),
                None => {
                    let templates: Vec<String> = self
                        .literal
                        .iter()
                        .map(|t| format!("`{}`", t.display()))
                        .collect();
                    let written = match templates.as_slice() {
                        [] => "its templates".to_owned(),
                        some => format!("its templates ({})", some.join(", ")),
                    };
                    Err(format!(
                        "`helm template` of the chart of {} shows that no value reaches the resources of container `{container}`: they are written in {written}; change the template",
                        self.release
                    ))
                }
            };
        }
        match self.containers.get(container) {
            Some(own) if own.is_empty() => Err(format!(
                "the templates of the chart of {} give containers named `{container}` their resources from different values keys, and without helm on PATH the chart cannot be rendered to tell which one this is",
                self.release
            )),
            Some(own) => Ok(format!("{own}{rest}")),
            None => Ok(key.to_owned()),
        }
    }

    /// The values key of `container`'s image tag: the one `helm template` with marker values
    /// showed reaching it; else `image.tag`, under the key the chart's templates give the
    /// container's resources (`sidecar.image.tag` for `sidecar.resources`).
    pub fn image_key_for(&self, container: &str) -> String {
        if let Some(tag) = self.reach.get(container).and_then(|r| r.tag.clone()) {
            return tag;
        }
        let own = self
            .containers
            .get(container)
            .and_then(|key| key.strip_suffix("resources"))
            .unwrap_or("");
        format!("{own}image.tag")
    }

    /// The refusal of a chart whose templates write resources without reading the values.
    fn literal_said(&self) -> String {
        let templates: Vec<String> = self
            .literal
            .iter()
            .map(|t| format!("`{}`", t.display()))
            .collect();
        format!(
            "the chart of {} writes its resources in {} without reading `.Values.resources`: no value of the release changes them; change the template",
            self.release,
            templates.join(", ")
        )
    }

    /// The path of `key` in `layer`'s document.
    pub fn layer_path(&self, layer: &ValuesLayer, key: &str) -> Result<FieldPath, String> {
        layer.path(key).parse().map_err(|e| format!("`{key}`: {e}"))
    }

    /// The path of `key` (`resources.limits.memory`) in the release's values; an error when
    /// the chart is in the repository and its templates do not read the key.
    pub fn path(&self, key: &str) -> Result<FieldPath, String> {
        if self.read.is_none() && self.reach.is_empty() && !self.own_names.contains(&self.workload)
        {
            return Err(format!(
                "the chart of {} is not in the repository, and `{}` is not the release's own workload ({}): which of its values reaches it is not known, and the common `{key}` would change another workload",
                self.release,
                self.workload,
                self.own_names.join(" or ")
            ));
        }
        if let Some(parameters) = self
            .layers
            .iter()
            .find(|l| l.role == Role::Parameters && l.sets(key))
        {
            return Err(format!(
                "`{key}` is set by {}, which overrides every values layer: change it there",
                parameters.name
            ));
        }
        let root = key.split('.').next().unwrap_or(key);
        if self.read.as_ref().is_some_and(|read| !read.contains(root)) {
            if root == "resources" && !self.literal.is_empty() {
                return Err(self.literal_said());
            }
            return Err(format!(
                "the chart of {} does not read `.Values.{root}`; set the value where its templates take it",
                self.release
            ));
        }
        let path = match self.target(key) {
            Some(layer) => layer.path(key),
            None => format!("{}.{key}", self.prefix),
        };
        path.parse().map_err(|e| format!("`{key}`: {e}"))
    }

    /// The layer an edit of `key` goes to: the most specific layer that sets it, when only
    /// this release reads that layer; else the most specific values file only this release
    /// reads; else the release's own values. `None` without layers.
    fn target(&self, key: &str) -> Option<&ValuesLayer> {
        let editable =
            |l: &ValuesLayer| matches!(l.role, Role::File | Role::Object | Role::New { .. });
        let top = self.layers.iter().rposition(|l| l.sets(key));
        if let Some(layer) = top
            .map(|t| &self.layers[t])
            .filter(|l| l.own && editable(l))
        {
            return Some(layer);
        }
        // Only a layer above the one that sets it wins over it: the most specific values file
        // the release alone reads (or the one to make), else its own values.
        let above = &self.layers[top.map_or(0, |t| t + 1)..];
        above
            .iter()
            .rev()
            .find(|l| l.own && matches!(l.role, Role::File | Role::New { .. }))
            .or_else(|| above.iter().find(|l| l.role == Role::Object))
    }

    /// The values file to make for the release alone, when its edits go there.
    pub fn new_file(&self) -> Option<(&ValuesLayer, &str)> {
        self.layers.iter().find_map(|l| match &l.role {
            Role::New { entry } => Some((l, entry.as_str())),
            _ => None,
        })
    }

    /// `doc`, the release as declared, with its own values read over what they go over (a
    /// Flux release's chart defaults and `valuesFrom`).
    pub fn read_through(&self, mut doc: Value) -> Value {
        if self.defaults.is_empty() {
            return doc;
        }
        let mut merged = Value::Object(serde_json::Map::new());
        for layer in &self.defaults {
            crate::render::helm::merge_values(&mut merged, layer.values());
        }
        let own = doc.pointer("/spec/values").cloned().unwrap_or(Value::Null);
        crate::render::helm::merge_values(&mut merged, own);
        if let Some(Value::Object(spec)) = doc.get_mut("spec") {
            spec.insert("values".into(), merged);
        }
        doc
    }

    /// Whether a layer above the last one that cannot be read sets `key`.
    pub fn set_above_unread(&self, key: &str) -> bool {
        let from = self
            .layers
            .iter()
            .rposition(|l| l.role == Role::Text)
            .map_or(0, |at| at + 1);
        self.layers[from..].iter().any(|l| l.sets(key))
    }

    /// Why a value the release's own values do not set is not known: the `valuesFrom` sources
    /// that cannot be read.
    pub fn unread_said(&self) -> Option<String> {
        (!self.unread.is_empty()).then(|| {
            format!(
                "the values of {} come in part from {}, which cannot be read here",
                self.release,
                self.unread.join(", ")
            )
        })
    }

    /// Where an edit of `path` (as [`HelmValues::path`] gave it) goes, with a document to read
    /// its current value from: the layer's, with the values as all the layers make them.
    pub fn location(&self, path: &FieldPath) -> Option<(Location, Value)> {
        let text = path.to_string();
        let key = text
            .strip_prefix(&format!("{}.", self.prefix))
            .unwrap_or(&text);
        let layer = self.target(key)?;
        let mut merged = Value::Object(serde_json::Map::new());
        for layer in &self.layers {
            crate::render::helm::merge_values(&mut merged, layer.values());
        }
        let document = if layer.prefix.is_empty() {
            merged
        } else {
            let mut document = layer.document.clone();
            let (parent, last) = layer.prefix.rsplit_once('.').unwrap_or(("", &layer.prefix));
            if let Some(Value::Object(slot)) = document.pointer_mut(&pointer_of(parent)) {
                slot.insert(last.to_owned(), merged);
            }
            document
        };
        Some((layer.location.clone(), document))
    }

    /// Where the edit of `key` goes, for the pull request.
    pub fn layer_said(&self, key: &str) -> Option<String> {
        let layer = self.target(key)?;
        let mut shared: Vec<&ValuesLayer> = self
            .layers
            .iter()
            .filter(|l| !l.own && l.sets(key))
            .collect();
        // The chart's defaults named in `valueFiles` too are one layer.
        shared.dedup_by(|a, b| a.location.file == b.location.file && a.prefix == b.prefix);
        let shared: Vec<&str> = shared.iter().map(|l| l.name.as_str()).collect();
        Some(if shared.is_empty() {
            format!("{} (read only by {})", layer.name, self.release)
        } else {
            format!(
                "{} (read only by {}), over {} which other releases read too",
                layer.name,
                self.release,
                shared.join(", ")
            )
        })
    }

    /// What the pull request says about the keys.
    pub fn guess(&self, keys: &str) -> String {
        let first = keys.split("`, `").next().unwrap_or(keys);
        let layer = self
            .layer_said(first)
            .map(|l| format!("; edited in {l}"))
            .unwrap_or_default();
        let said = match &self.read {
            Some(_) => format!(
                "`{keys}` in the values of {}: the chart's templates read them",
                self.release
            ),
            None => format!(
                "`{keys}` in the values of {}: the chart's templates are not in the repository, so the key is the common convention for charts; check that this chart reads it",
                self.release
            ),
        };
        format!("{said}{layer}")
    }
}

/// The labels and annotations of the live workload `target`.
fn live_metadata(
    snapshot: &Snapshot,
    target: &ObjectRef,
) -> Option<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let (metadata, _) = snapshot.workload(target)?;
    Some((
        metadata.labels.clone().unwrap_or_default(),
        metadata.annotations.clone().unwrap_or_default(),
    ))
}

/// The release in the repository that makes `target`, among the declarations `accept` takes
/// (those of one environment: a release in a base shared by several overlays is declared once
/// per overlay), with where its values are.
pub(crate) fn release_of<'i>(
    index: &'i RepoIndex,
    snapshot: &Snapshot,
    target: &ObjectRef,
    environment: Option<&str>,
    accept: impl Fn(&IndexedObject) -> bool,
) -> Option<(&'i IndexedObject, HelmValues)> {
    let (labels, annotations) = live_metadata(snapshot, target)?;
    let flux = labels
        .get("helm.toolkit.fluxcd.io/name")
        .zip(labels.get("helm.toolkit.fluxcd.io/namespace"));
    let helm = annotations
        .get("meta.helm.sh/release-name")
        .zip(annotations.get("meta.helm.sh/release-namespace"));
    let argo = argo_application(&labels, &annotations, snapshot.argo_tracking.as_ref());
    index
        .objects
        .iter()
        .filter(|o| accept(o))
        .find_map(|object| {
            let id = &object.id;
            let value = &index.declaration(object).value;
            let namespace = id.namespace.as_deref().unwrap_or("default");
            if id.group == "helm.toolkit.fluxcd.io" && id.kind == "HelmRelease" {
                let release_name = value
                    .pointer("/spec/releaseName")
                    .and_then(Value::as_str)
                    .unwrap_or(&id.name);
                let target_namespace = value
                    .pointer("/spec/targetNamespace")
                    .and_then(Value::as_str)
                    .unwrap_or(namespace);
                let by_flux = flux.is_some_and(|(n, ns)| *n == id.name && ns == namespace);
                let by_helm =
                    helm.is_some_and(|(n, ns)| n == release_name && ns == target_namespace);
                (by_flux || by_helm).then(|| {
                    let release = format!("HelmRelease {namespace}/{}", id.name);
                    let (defaults, unread) = flux_defaults(index, value, namespace);
                    let chart = value
                        .pointer("/spec/chart/spec/chart")
                        .and_then(Value::as_str)
                        .map(|c| c.trim_end_matches('/').rsplit('/').next().unwrap_or(c));
                    (
                        object,
                        HelmValues {
                            prefix: "spec.values".into(),
                            own_names: own_names(release_name, chart),
                            workload: target.name.clone(),
                            release,
                            read: chart_dir(value)
                                .and_then(|dir| index.chart_values.get(&dir).cloned()),
                            literal: chart_dir(value)
                                .and_then(|dir| index.chart_literals.get(&dir).cloned())
                                .unwrap_or_default(),
                            containers: chart_dir(value)
                                .and_then(|dir| index.chart_containers.get(&dir).cloned())
                                .unwrap_or_default(),
                            reach: reach_of(index, object, target),
                            defaults,
                            unread,
                            layers: vec![],
                        },
                    )
                })
            } else if id.group == "argoproj.io" && id.kind == "Application" {
                // The Helm source: `spec.source`, or the one of `spec.sources` with a chart.
                let (source, base) = helm_source(value)?;
                let tracked = argo.as_ref().is_some_and(|(name, app_namespace)| {
                    *name == id.name
                        && app_namespace
                            .as_deref()
                            .is_none_or(|ns| Some(ns) == id.namespace.as_deref())
                });
                tracked.then(|| {
                    let release = format!("Argo CD Application {namespace}/{}", id.name);
                    let release_name = source
                        .pointer("/helm/releaseName")
                        .and_then(Value::as_str)
                        .unwrap_or(&id.name);
                    let chart = source["chart"].as_str().or_else(|| {
                        source["path"]
                            .as_str()
                            .and_then(|p| p.trim_end_matches('/').rsplit('/').next())
                    });
                    let own_names = own_names(release_name, chart);
                    let prefix = format!("{base}.helm.valuesObject");
                    let dir: Option<std::path::PathBuf> = source["path"].as_str().and_then(|p| {
                        crate::manifests::normalise(std::path::Path::new(p.trim_start_matches('/')))
                    });
                    let chart = dir.as_ref().filter(|dir| index.charts.contains(dir));
                    let own_name = environment.unwrap_or(&id.name);
                    let (layers, unread) = argo_layers(
                        index,
                        object,
                        (source, &base),
                        chart.map(|d| d.as_path()),
                        own_name,
                    );
                    let read = dir
                        .as_ref()
                        .and_then(|dir| index.chart_values.get(dir).cloned());
                    let literal = dir
                        .as_ref()
                        .and_then(|dir| index.chart_literals.get(dir).cloned())
                        .unwrap_or_default();
                    let containers = dir
                        .as_ref()
                        .and_then(|dir| index.chart_containers.get(dir).cloned())
                        .unwrap_or_default();
                    (
                        object,
                        HelmValues {
                            prefix,
                            defaults: vec![],
                            unread,
                            own_names,
                            workload: target.name.clone(),
                            release,
                            read,
                            literal,
                            containers,
                            reach: reach_of(index, object, target),
                            layers,
                        },
                    )
                })
            } else {
                None
            }
        })
}

/// The `values.yaml` of the repository's chart `dir`, as the least specific layer.
fn chart_defaults(index: &RepoIndex, dir: &std::path::Path) -> Option<ValuesLayer> {
    let (location, document) = index.values_files.get(&dir.join("values.yaml"))?;
    Some(ValuesLayer {
        name: format!("`{}` (the chart's defaults)", location.file.display()),
        location: location.clone(),
        document: document.clone(),
        prefix: String::new(),
        own: false,
        role: Role::File,
    })
}

/// What a Flux HelmRelease's own values go over, least specific first, as helm-controller
/// merges them: its chart's `values.yaml` (a chart of the repository), then each `valuesFrom`
/// ConfigMap that the repository declares or that a kustomization generates from a values file.
/// With the sources that cannot be read (a Secret, a ConfigMap the repository does not hold);
/// an optional one that is missing is skipped, as Flux skips it.
fn flux_defaults(
    index: &RepoIndex,
    value: &Value,
    namespace: &str,
) -> (Vec<ValuesLayer>, Vec<String>) {
    let mut layers: Vec<ValuesLayer> = chart_dir(value)
        .and_then(|dir| chart_defaults(index, &dir))
        .into_iter()
        .collect();
    let mut unread = Vec::new();
    let sources = value
        .pointer("/spec/valuesFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for source in sources {
        let kind = source["kind"].as_str().unwrap_or("ConfigMap");
        let name = source["name"].as_str().unwrap_or_default();
        let key = source["valuesKey"].as_str().unwrap_or("values.yaml");
        let said = format!("{kind} {namespace}/{name} (`{key}`)");
        let found = (kind == "ConfigMap")
            .then(|| config_map_values(index, namespace, name, key))
            .flatten();
        let Some((location, values)) = found else {
            if source["optional"] != Value::Bool(true) || kind != "ConfigMap" {
                unread.push(said);
            }
            continue;
        };
        // A `targetPath` puts the whole text at one key.
        let values = match source["targetPath"].as_str() {
            Some(path) => path.rsplit('.').fold(values, |inner, key| {
                let mut map = serde_json::Map::new();
                map.insert(key.to_owned(), inner);
                Value::Object(map)
            }),
            None => values,
        };
        layers.push(ValuesLayer {
            name: said,
            location,
            document: values,
            prefix: String::new(),
            own: false,
            role: Role::File,
        });
    }
    (layers, unread)
}

/// The values under `key` of ConfigMap `namespace/name`: declared in the repository (its data,
/// read as YAML), or generated by a kustomization's `configMapGenerator` from a values file.
fn config_map_values(
    index: &RepoIndex,
    namespace: &str,
    name: &str,
    key: &str,
) -> Option<(Location, Value)> {
    let declared = index.declarations.iter().find(|d| {
        d.id.kind == "ConfigMap"
            && d.id.name == name
            && d.id.namespace.as_deref().unwrap_or(namespace) == namespace
    });
    if let Some(declared) = declared {
        let text = declared.value.pointer("/data")?.get(key)?.as_str()?;
        let values = serde_saphyr::from_str::<Value>(text).ok()?;
        return Some((declared.location.clone(), values));
    }
    for kustomization in &index.kustomizations {
        let generators = kustomization
            .kustomization
            .others
            .get("configMapGenerator")
            .and_then(Value::as_array);
        for generator in generators.into_iter().flatten() {
            if generator["name"].as_str() != Some(name) {
                continue;
            }
            let files = generator["files"].as_array().into_iter().flatten();
            for file in files.filter_map(Value::as_str) {
                let (file_key, path) = match file.split_once('=') {
                    Some((k, p)) => (k.to_owned(), p),
                    None => (file.rsplit('/').next().unwrap_or(file).to_owned(), file),
                };
                if file_key != key {
                    continue;
                }
                let path = crate::manifests::normalise(&kustomization.dir.join(path))?;
                if let Some((location, values)) = index.values_files.get(&path) {
                    return Some((location.clone(), values.clone()));
                }
            }
        }
    }
    None
}

/// The names Helm's naming conventions give a release's own workload: the release's name (the
/// `fullname` of `helm create` when the release's name holds the chart's), and
/// `<release>-<chart>`.
fn own_names(release: &str, chart: Option<&str>) -> Vec<String> {
    let mut names = vec![release.to_owned()];
    if let Some(chart) = chart.filter(|c| !c.is_empty()) {
        names.push(format!("{release}-{chart}"));
    }
    names
}

/// What reaches each container of `target` among the objects the release `object` renders.
fn reach_of(
    index: &RepoIndex,
    object: &IndexedObject,
    target: &ObjectRef,
) -> BTreeMap<String, crate::manifests::Reached> {
    let Some(reach) = index.chart_reach.get(&object.declaration) else {
        return BTreeMap::new();
    };
    reach
        .iter()
        .filter(|((kind, name, _), _)| *kind == target.kind && *name == target.name)
        .map(|((_, _, container), reached)| (container.clone(), reached.clone()))
        .collect()
}

/// The Argo CD Application tracking a live object, and its namespace when the tracking says it,
/// as Argo CD tracks: the `argocd.argoproj.io/tracking-id` annotation (Argo CD 3's default,
/// `app:group/kind:namespace/name`, with `namespace_app` for an Application outside Argo CD's
/// own namespace), else the legacy `argocd.argoproj.io/instance` label, else the
/// `app.kubernetes.io/instance` label that `application.resourceTrackingMethod: label` writes.
/// When the snapshot has `argocd-cm`, only the method it names: the annotation for
/// `annotation` and `annotation+label`, its `application.instanceLabelKey` for `label`.
fn argo_application(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    tracking: Option<&crate::model::ArgoTracking>,
) -> Option<(String, Option<String>)> {
    let method = tracking.and_then(|t| t.method.as_deref());
    if method == Some("label") {
        let key = tracking
            .and_then(|t| t.label_key.as_deref())
            .unwrap_or("app.kubernetes.io/instance");
        return labels.get(key).map(|name| (name.clone(), None));
    }
    let annotation_only = matches!(method, Some("annotation" | "annotation+label"));
    if let Some(id) = annotations.get("argocd.argoproj.io/tracking-id") {
        let (application, rest) = id.split_once(':')?;
        if application.is_empty() || !rest.contains('/') {
            return None;
        }
        return Some(match application.split_once('_') {
            Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
                (name.to_owned(), Some(namespace.to_owned()))
            }
            _ => (application.to_owned(), None),
        });
    }
    if annotation_only {
        return None;
    }
    let custom = tracking.and_then(|t| t.label_key.as_deref());
    custom
        .and_then(|key| labels.get(key))
        .or_else(|| labels.get("argocd.argoproj.io/instance"))
        .or_else(|| labels.get("app.kubernetes.io/instance"))
        .map(|name| (name.clone(), None))
}

/// The values layers of an Argo CD Application's Helm source (`source`, at `base` in the
/// Application) whose chart is the repository's `chart` directory, least specific first: the
/// chart's `values.yaml`, each of `valueFiles` (relative to the chart, from the root when
/// absolute, `$ref/path` from the root), `values` (one YAML text), `valuesObject`, then
/// `parameters`. A file is the release's own when no other Application reads it. With a chart
/// of the repository and no values file of its own, a new `values-<own_name>.yaml` beside the
/// chart, after its `valueFiles`, is the layer its edits go to. With what cannot be read (a
/// `values` text that does not parse).
fn argo_layers(
    index: &RepoIndex,
    object: &IndexedObject,
    (source, base): (&Value, &str),
    chart: Option<&std::path::Path>,
    own_name: &str,
) -> (Vec<ValuesLayer>, Vec<String>) {
    let declaration = index.declaration(object);
    let mut layers: Vec<ValuesLayer> = chart
        .and_then(|dir| chart_defaults(index, dir))
        .into_iter()
        .collect();
    let readers = |file: &std::path::Path| {
        index
            .declarations
            .iter()
            .filter(|d| d.id.group == "argoproj.io" && d.id.kind == "Application")
            .filter(|d| {
                helm_source(&d.value).is_some_and(|(s, _)| {
                    let chart = s["path"].as_str().and_then(|p| {
                        crate::manifests::normalise(std::path::Path::new(p.trim_start_matches('/')))
                    });
                    value_files(s, chart.as_deref()).iter().any(|f| f == file)
                })
            })
            .count()
    };
    for file in value_files(source, chart) {
        if let Some((location, document)) = index.values_files.get(&file) {
            layers.push(ValuesLayer {
                name: format!("`{}`", file.display()),
                location: location.clone(),
                document: document.clone(),
                prefix: String::new(),
                own: readers(&file) == 1,
                role: Role::File,
            });
        }
    }
    let file_name: String = own_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let fresh = chart.map(|c| c.join(format!("values-{file_name}.yaml")));
    let taken = |f: &std::path::Path| {
        index.values_files.contains_key(f)
            || index.files.iter().any(|x| x == f)
            || index.root.join(f).exists()
    };
    if let Some(fresh) = fresh.filter(|f| !taken(f))
        && !layers.iter().any(|l| l.own)
    {
        layers.push(ValuesLayer {
            name: format!("a new `{}`", fresh.display()),
            location: Location {
                file: fresh,
                document: 0,
                item: None,
                line: 1,
                span: 0..0,
            },
            document: Value::Object(serde_json::Map::new()),
            prefix: String::new(),
            own: true,
            role: Role::New {
                entry: format!("values-{file_name}.yaml"),
            },
        });
    }
    let helm = format!("{base}.helm");
    let mut unread = Vec::new();
    if let Some(text) = source.pointer("/helm/values").and_then(Value::as_str) {
        let document = match serde_saphyr::from_str::<Value>(text) {
            Ok(document) => document,
            Err(error) => {
                unread.push(format!(
                    "`{helm}.values` of {} ({error})",
                    declaration.location.file.display()
                ));
                Value::Null
            }
        };
        layers.push(ValuesLayer {
            name: format!("`{helm}.values` of {}", declaration.location.file.display()),
            location: declaration.location.clone(),
            document,
            prefix: String::new(),
            own: false,
            role: Role::Text,
        });
    }
    layers.push(ValuesLayer {
        name: format!(
            "`{helm}.valuesObject` of {}",
            declaration.location.file.display()
        ),
        location: declaration.location.clone(),
        document: declaration.value.clone(),
        prefix: format!("{helm}.valuesObject"),
        own: true,
        role: Role::Object,
    });
    if let Some(parameters) = source.pointer("/helm/parameters").and_then(Value::as_array) {
        let mut document = Value::Object(serde_json::Map::new());
        for parameter in parameters {
            let (Some(name), Some(value)) = (parameter["name"].as_str(), parameter.get("value"))
            else {
                continue;
            };
            let mut nested = value.clone();
            for key in name.rsplit('.') {
                let mut map = serde_json::Map::new();
                map.insert(key.to_owned(), nested);
                nested = Value::Object(map);
            }
            crate::render::helm::merge_values(&mut document, nested);
        }
        layers.push(ValuesLayer {
            name: format!(
                "`{helm}.parameters` of {}",
                declaration.location.file.display()
            ),
            location: declaration.location.clone(),
            document,
            prefix: String::new(),
            own: false,
            role: Role::Parameters,
        });
    }
    (layers, unread)
}

/// The Helm values of Argo CD Application `app` as Argo CD merges them (its chart's
/// `values.yaml` when the chart is in the repository, `valueFiles` in order, `$ref/...`
/// included, `values`, `valuesObject`, then `parameters`), with `overrides` in place of the files they name; and the
/// files read. `None` without a Helm source.
pub(crate) fn argo_values(
    index: &RepoIndex,
    app: &Value,
    overrides: &BTreeMap<std::path::PathBuf, Value>,
) -> Option<(Value, Vec<std::path::PathBuf>)> {
    let (source, _) = helm_source(app)?;
    let helm = source.get("helm")?;
    let dir = source["path"]
        .as_str()
        .and_then(|p| crate::manifests::normalise(std::path::Path::new(p.trim_start_matches('/'))));
    let chart = dir.filter(|d| index.charts.contains(d));
    let mut files: Vec<std::path::PathBuf> = chart.iter().map(|c| c.join("values.yaml")).collect();
    files.extend(value_files(source, chart.as_deref()));
    let mut merged = Value::Object(serde_json::Map::new());
    for file in &files {
        let values = overrides
            .get(file)
            .or_else(|| index.values_files.get(file).map(|(_, v)| v));
        if let Some(values) = values {
            crate::render::helm::merge_values(&mut merged, values.clone());
        }
    }
    if let Some(text) = helm.get("values").and_then(Value::as_str) {
        let values = serde_saphyr::from_str::<Value>(text).unwrap_or(Value::Null);
        crate::render::helm::merge_values(&mut merged, values);
    }
    if let Some(object) = helm.get("valuesObject") {
        crate::render::helm::merge_values(&mut merged, object.clone());
    }
    for parameter in helm
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(name), Some(value)) = (parameter["name"].as_str(), parameter.get("value")) {
            let nested = name.rsplit('.').fold(value.clone(), |inner, key| {
                let mut map = serde_json::Map::new();
                map.insert(key.to_owned(), inner);
                Value::Object(map)
            });
            crate::render::helm::merge_values(&mut merged, nested);
        }
    }
    Some((merged, files))
}

/// The values files a Helm source of an Argo CD Application reads (its chart at `chart` when
/// the chart is in the repository), as paths of the repository: relative to the chart, from the
/// root when absolute, and `$ref/path` from the root of the source that `ref` names (this
/// repository).
fn value_files(source: &Value, chart: Option<&std::path::Path>) -> Vec<std::path::PathBuf> {
    let files = source
        .pointer("/helm/valueFiles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    files
        .filter_map(|file| {
            let relative = if let Some(reference) = file.strip_prefix('$') {
                std::path::PathBuf::from(reference.split_once('/')?.1)
            } else if let Some(rooted) = file.strip_prefix('/') {
                std::path::PathBuf::from(rooted)
            } else {
                chart?.join(file)
            };
            crate::manifests::normalise(&relative)
        })
        .collect()
}

/// The Helm source of an Argo CD Application, with its path in the object: `spec.source`, or
/// the first of `spec.sources` with a chart or Helm settings (`spec.sources[1]`).
fn helm_source(app: &Value) -> Option<(&Value, String)> {
    if let Some(source) = app.pointer("/spec/source") {
        return Some((source, "spec.source".to_owned()));
    }
    let sources = app.pointer("/spec/sources")?.as_array()?;
    sources
        .iter()
        .enumerate()
        .find(|(_, s)| s.get("chart").is_some() || s.get("helm").is_some())
        .map(|(i, s)| (s, format!("spec.sources[{i}]")))
}

/// A field path (`spec.sources[1].helm.valuesObject`) as a JSON pointer.
fn pointer_of(path: &str) -> String {
    format!(
        "/{}",
        path.replace('[', ".").replace(']', "").replace('.', "/")
    )
}

/// The chart directory of a Flux HelmRelease from a `GitRepository`.
fn chart_dir(release: &Value) -> Option<std::path::PathBuf> {
    let chart = release.pointer("/spec/chart/spec")?;
    if chart.pointer("/sourceRef/kind").and_then(Value::as_str) != Some("GitRepository") {
        return None;
    }
    let path = chart["chart"].as_str()?;
    Some(
        path.split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect(),
    )
}

/// The values key of a workload field a remedy changes, by the charts' common conventions:
/// `spec.template.spec.containers[name=x].resources.limits.memory` is `resources.limits.memory`,
/// `spec.replicas` is `replicaCount`.
pub(crate) fn conventional_key(rest: &str) -> Option<String> {
    if rest.starts_with("resources.") {
        return Some(rest.to_owned());
    }
    match rest {
        "replicas" => Some("replicaCount".into()),
        "image" => Some("image.tag".into()),
        "maxReplicas" => Some("autoscaling.maxReplicas".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::remediate;
    use super::super::testing::{context, proposal, usage};
    use crate::config::Config;
    use crate::detect::fixtures;
    use crate::manifests::{IndexOptions, RepoIndex};
    use crate::model::{Finding, FindingCode, ObjectRef, Severity};

    const RELEASE: &str = "# podinfo, as Flux installs it
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: podinfo
spec:
  interval: 50m
  chart:
    spec:
      chart: podinfo
      version: \">=1.0.0\" # any release
      sourceRef: {kind: HelmRepository, name: podinfo}
  values:
    replicaCount: 2 # two for rolling updates
    resources:
      requests:
        cpu: \"1\" # sized by hand
        memory: 512Mi
";

    fn live(labels: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "podinfo", "namespace": "podinfo", "labels": labels},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "podinfo"}},
                "template": {"metadata": {"labels": {"app": "podinfo"}},
                    "spec": {"containers": [{"name": "podinfod", "image": "podinfo:6"}]}}}})
    }

    fn over_provisioned() -> Finding {
        let target = ObjectRef::new("apps/v1", "Deployment", Some("podinfo"), "podinfo");
        let mut f = Finding::new(
            FindingCode::OverProvisioned,
            Severity::Warning,
            target.clone(),
            "x".into(),
        );
        f.owner = Some(target);
        f.container = Some("podinfod".into());
        f.usage = vec![usage("cpu", 100.0), usage("memory", 100.0 * 1048576.0)];
        f
    }

    #[test]
    fn a_right_size_of_a_flux_release_edits_its_values_in_place_with_comments_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("apps/podinfo")).unwrap();
        std::fs::write(dir.path().join("apps/podinfo/release.yaml"), RELEASE).unwrap();
        let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        let config = Config::default();
        let labels = json!({"helm.toolkit.fluxcd.io/name": "podinfo", "helm.toolkit.fluxcd.io/namespace": "podinfo"});
        let snapshot = fixtures::snapshot(vec![live(labels)]);
        let r = proposal(remediate(
            &over_provisioned(),
            &context(&index, &config, &snapshot),
        ));
        let changes = crate::propose::apply_changes(dir.path(), &r).unwrap();
        assert_eq!(changes.len(), 1);
        let text_diff = similar::TextDiff::from_lines(&changes[0].old, &changes[0].new);
        let diff: Vec<&str> = text_diff
            .iter_all_changes()
            .filter(|c| c.tag() != similar::ChangeTag::Equal)
            .map(|c| c.value())
            .collect();
        assert_eq!(
            diff,
            [
                "        cpu: \"1\" # sized by hand\n",
                "        memory: 512Mi\n",
                "        cpu: \"130m\" # sized by hand\n",
                "        memory: 130Mi\n",
            ]
        );
        assert!(
            r.finding
                .fact("values key")
                .unwrap()
                .contains("HelmRelease podinfo/podinfo"),
            "the key is stated as a guess: {:?}",
            r.finding.evidence
        );
    }

    #[test]
    fn a_release_in_a_base_shared_by_two_overlays_is_found_for_each_environment() {
        let dir = tempfile::tempdir().unwrap();
        let overlay = |env: &str| {
            format!(
                "resources: [../../base/podinfo]\npatches:\n  - path: values.yaml\n    target: {{kind: HelmRelease, name: podinfo}}\n# {env}\n"
            )
        };
        let patch = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: podinfo, namespace: podinfo}\nspec:\n  values:\n    replicaCount: 3\n";
        let files = [
            (
                "base/podinfo/kustomization.yaml",
                "resources: [release.yaml]\n".to_owned(),
            ),
            ("base/podinfo/release.yaml", RELEASE.to_owned()),
            ("clusters/staging/kustomization.yaml", overlay("staging")),
            ("clusters/staging/values.yaml", patch.to_owned()),
            (
                "clusters/production/kustomization.yaml",
                overlay("production"),
            ),
            ("clusters/production/values.yaml", patch.to_owned()),
        ];
        for (path, text) in &files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        let config = Config::parse(
            std::path::Path::new("remediator.yaml"),
            "environments:\n  - name: staging\n    paths: [\"clusters/staging/**\"]\n  - name: production\n    paths: [\"clusters/production/**\"]\n",
        )
        .unwrap();
        let labels = json!({"helm.toolkit.fluxcd.io/name": "podinfo", "helm.toolkit.fluxcd.io/namespace": "podinfo"});
        let snapshot = fixtures::snapshot(vec![live(labels)]);
        for env in ["staging", "production"] {
            let ctx = crate::remedy::Situation {
                environment: Some(env),
                ..context(&index, &config, &snapshot)
            };
            let r = proposal(remediate(&over_provisioned(), &ctx));
            for field in &r.fields {
                assert!(
                    field.file.starts_with(format!("clusters/{env}")),
                    "{env}: {} {}",
                    field.file.display(),
                    field.path
                );
            }
        }
    }

    #[test]
    fn an_argo_cd_release_s_value_is_edited_in_the_values_file_only_its_environment_reads() {
        let app = |env: &str, files: &str| {
            format!(
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {{name: web-{env}, namespace: argocd}}\nspec:\n  destination: {{namespace: podinfo}}\n  source:\n    repoURL: https://git.example.com/platform.git\n    path: charts/web\n    helm:\n      valueFiles: [{files}]\n"
            )
        };
        let run = |prod_values: &str, prod_files: &str| {
            let dir = tempfile::tempdir().unwrap();
            for (path, text) in [
                ("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.0.0\n".to_owned()),
                (
                    "charts/web/values.yaml",
                    "replicaCount: 1\nresources:\n  requests: {cpu: \"1\", memory: 256Mi}\n  limits: {memory: 256Mi}\n".to_owned(),
                ),
                (
                    "charts/web/templates/deployment.yaml",
                    "resources: {{ toYaml .Values.resources }}\nreplicas: {{ .Values.replicaCount }}\n".to_owned(),
                ),
                ("charts/web/values-prod.yaml", prod_values.to_owned()),
                ("charts/web/values-staging.yaml", "replicaCount: 2\n".to_owned()),
                ("argo/prod.yaml", app("prod", prod_files)),
                ("argo/staging.yaml", app("staging", "values.yaml, values-staging.yaml")),
            ] {
                let path = dir.path().join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
            let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
            let config = Config::default();
            let mut object = live(json!({}));
            object["metadata"]["annotations"] = json!({"argocd.argoproj.io/tracking-id": "web-prod:apps/Deployment:podinfo/podinfo"});
            let snapshot = fixtures::snapshot(vec![object]);
            let mut oom = over_provisioned();
            oom.code = FindingCode::CrashLoopOom;
            oom.usage = vec![];
            let r = proposal(remediate(&oom, &context(&index, &config, &snapshot)));
            let said = r.finding.fact("values key").unwrap().to_owned();
            // The edit applies to the file as it is, comments and all.
            let changes = crate::propose::apply_changes(dir.path(), &r).unwrap();
            let written: Vec<String> = changes.iter().map(|c| c.new.clone()).collect();
            let edits = super::super::testing::edits(&r);
            (edits, r.fields[0].old.clone(), said, written)
        };
        // The limit is the chart's default, shared: it is set in prod's own values file, and
        // the request equal to it moves with it.
        let (edits, old, said, written) =
            run("replicaCount: 3 # prod\n", "values.yaml, values-prod.yaml");
        assert_eq!(
            written,
            [
                "replicaCount: 3 # prod\nresources:\n  limits:\n    memory: 384Mi\n  requests:\n    memory: 384Mi\n"
            ]
        );
        assert_eq!(
            edits,
            [
                "charts/web/values-prod.yaml: resources.limits.memory = \"384Mi\"",
                "charts/web/values-prod.yaml: resources.requests.memory = \"384Mi\""
            ]
        );
        assert_eq!(old, Some(json!("256Mi")), "read through the layers");
        assert!(
            said.contains("charts/web/values-prod.yaml") && said.contains("charts/web/values.yaml"),
            "{said}"
        );
        // Where prod's file sets it, it is changed there.
        let (edits, old, _, _) = run(
            "resources:\n  limits: {memory: 512Mi}\n",
            "values.yaml, values-prod.yaml",
        );
        assert_eq!(
            edits,
            ["charts/web/values-prod.yaml: resources.limits.memory = \"768Mi\""]
        );
        assert_eq!(old, Some(json!("512Mi")));
        // Without a file of its own, one is made beside the chart and added to its valueFiles.
        let (edits, _, said, written) = run("replicaCount: 3\n", "values.yaml");
        assert_eq!(
            edits,
            [
                "charts/web/values-web-prod.yaml: resources.limits.memory = \"384Mi\"",
                "charts/web/values-web-prod.yaml: resources.requests.memory = \"384Mi\""
            ]
        );
        assert_eq!(
            written,
            [
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web-prod, namespace: argocd}\nspec:\n  destination: {namespace: podinfo}\n  source:\n    repoURL: https://git.example.com/platform.git\n    path: charts/web\n    helm:\n      valueFiles: [values.yaml, values-web-prod.yaml]\n",
                "# remediator: crash-loop-oom on Deployment/podinfo/podinfo; only this Application reads it.\nresources:\n  limits:\n    memory: 384Mi\n  requests:\n    memory: 384Mi\n"
            ]
        );
        assert!(
            said.contains("edited in a new `charts/web/values-web-prod.yaml` (read only by Argo CD Application argocd/web-prod), over `charts/web/values.yaml` (the chart's defaults) which other releases read too"),
            "{said}"
        );
    }

    #[test]
    fn an_argo_cd_helm_application_is_found_by_every_way_argo_cd_tracks() {
        let app = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: podinfo
  namespace: argocd
spec:
  destination: {namespace: podinfo}
  source:
    repoURL: https://stefanprodan.github.io/podinfo
    chart: podinfo
    targetRevision: 6.5.0
    helm:
      valuesObject:
        resources:
          requests: {cpu: \"1\", memory: 512Mi}
";
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("argo")).unwrap();
        std::fs::write(dir.path().join("argo/podinfo.yaml"), app).unwrap();
        let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        let config = Config::default();
        let tracked = [
            json!({"metadata": {"annotations": {"argocd.argoproj.io/tracking-id": "podinfo:apps/Deployment:podinfo/podinfo"}}}),
            json!({"metadata": {"annotations": {"argocd.argoproj.io/tracking-id": "argocd_podinfo:apps/Deployment:podinfo/podinfo"}}}),
            json!({"metadata": {"labels": {"argocd.argoproj.io/instance": "podinfo"}}}),
            json!({"metadata": {"labels": {"app.kubernetes.io/instance": "podinfo"}}}),
        ];
        let marked = |marker: &serde_json::Value| {
            let mut object = live(json!({}));
            for key in ["labels", "annotations"] {
                if let Some(found) = marker["metadata"].get(key) {
                    object["metadata"][key] = found.clone();
                }
            }
            object
        };
        for marker in tracked {
            let object = marked(&marker);
            let snapshot = fixtures::snapshot(vec![object]);
            let r = proposal(remediate(
                &over_provisioned(),
                &context(&index, &config, &snapshot),
            ));
            assert_eq!(
                r.fields[0].path, "spec.source.helm.valuesObject.resources.requests.cpu",
                "{marker}"
            );
        }
        // An Application of the same name in another namespace is not this one.
        let object = marked(
            &json!({"metadata": {"annotations": {"argocd.argoproj.io/tracking-id": "team-a_podinfo:apps/Deployment:podinfo/podinfo"}}}),
        );
        let snapshot = fixtures::snapshot(vec![object]);
        assert!(matches!(
            remediate(&over_provisioned(), &context(&index, &config, &snapshot)),
            crate::remedy::Remedy::Unmanaged { .. }
        ));
        // With argocd-cm in the snapshot, only the method it names: a label another tool left
        // does not make Argo CD's annotation-tracked application its owner.
        let found = |marker: &serde_json::Value, data: serde_json::Value| {
            let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "argocd-cm", "namespace": "argocd"}, "data": data});
            let snapshot = fixtures::snapshot(vec![marked(marker), config_map]);
            matches!(
                remediate(&over_provisioned(), &context(&index, &config, &snapshot)),
                crate::remedy::Remedy::Proposal(_)
            )
        };
        let annotation = json!({"application.resourceTrackingMethod": "annotation"});
        let label = json!({"application.resourceTrackingMethod": "label",
            "application.instanceLabelKey": "argocd.argoproj.io/instance"});
        let by_annotation = json!({"metadata": {"annotations": {"argocd.argoproj.io/tracking-id": "podinfo:apps/Deployment:podinfo/podinfo"}}});
        let by_label = json!({"metadata": {"labels": {"argocd.argoproj.io/instance": "podinfo"}}});
        let by_helm_label =
            json!({"metadata": {"labels": {"app.kubernetes.io/instance": "podinfo"}}});
        assert!(found(&by_annotation, annotation.clone()));
        assert!(!found(&by_label, annotation.clone()));
        assert!(!found(&by_helm_label, annotation));
        assert!(found(&by_label, label.clone()));
        assert!(
            !found(&by_helm_label, label.clone()),
            "not the configured key"
        );
        assert!(!found(&by_annotation, label));
        assert!(
            found(&by_helm_label, json!({})),
            "argocd-cm without a method: all three"
        );
    }

    #[test]
    fn a_chart_in_the_repository_confirms_the_key_or_refuses_it() {
        let local = RELEASE.replace(
            "chart: podinfo\n      version: \">=1.0.0\" # any release\n      sourceRef: {kind: HelmRepository, name: podinfo}",
            "chart: ./charts/podinfo\n      sourceRef: {kind: GitRepository, name: flux-system}",
        );
        assert!(local.contains("GitRepository"), "{local}");
        let run = |template: &str| {
            let dir = tempfile::tempdir().unwrap();
            let files = [
                ("apps/release.yaml", local.as_str()),
                (
                    "charts/podinfo/Chart.yaml",
                    "apiVersion: v2\nname: podinfo\nversion: 1.0.0\n",
                ),
                ("charts/podinfo/templates/deployment.yaml", template),
            ];
            for (name, text) in files {
                let path = dir.path().join(name);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
            let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
            let labels = json!({"helm.toolkit.fluxcd.io/name": "podinfo", "helm.toolkit.fluxcd.io/namespace": "podinfo"});
            let snapshot = fixtures::snapshot(vec![live(labels)]);
            remediate(
                &over_provisioned(),
                &context(&index, &Config::default(), &snapshot),
            )
        };
        let reads = run("resources: {{- toYaml .Values.resources | nindent 12 }}\n");
        let r = proposal(reads);
        assert!(
            r.finding
                .fact("values key")
                .unwrap()
                .contains("the chart's templates read them"),
            "{:?}",
            r.finding.evidence
        );
        let ignores = run("replicas: {{ .Values.replicaCount }}\n");
        let super::super::Remedy::Diagnosis { reason, .. } = ignores else {
            panic!("{ignores:?}");
        };
        assert!(
            reason.contains("does not read `.Values.resources`"),
            "{reason}"
        );
    }

    #[test]
    fn a_workload_without_release_labels_stays_unmanaged() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("release.yaml"), RELEASE).unwrap();
        let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        let config = Config::default();
        let snapshot = fixtures::snapshot(vec![live(json!({"app": "podinfo"}))]);
        let outcome = remediate(&over_provisioned(), &context(&index, &config, &snapshot));
        assert!(
            matches!(outcome, super::super::Remedy::Unmanaged { .. }),
            "{outcome:?}"
        );
    }

    #[test]
    fn helm_s_own_annotations_find_the_release_too() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("release.yaml"), RELEASE).unwrap();
        let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        let mut live = live(json!({}));
        live["metadata"]["annotations"] = json!({"meta.helm.sh/release-name": "podinfo", "meta.helm.sh/release-namespace": "podinfo"});
        let snapshot = fixtures::snapshot(vec![live]);
        let target = ObjectRef::new("apps/v1", "Deployment", Some("podinfo"), "podinfo");
        let (object, values) =
            super::release_of(&index, &snapshot, &target, None, |_| true).unwrap();
        assert_eq!(object.id.kind, "HelmRelease");
        assert_eq!(values.prefix, "spec.values");
    }
}
