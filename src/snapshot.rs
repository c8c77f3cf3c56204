//! Reading a recorded snapshot: `kubectl get -o yaml` output (a `List` or several documents) in
//! one file or a directory of files, and `UsageHistory` documents beside them. A file that does
//! not parse, an object that does not fit its kind, or a kind detection does not use is a
//! [`Problem`]; everything else still loads. Reads the files under the given path.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::manifests::{self, parse_file};
use crate::model::objects::{Pod, Tighten};
use crate::model::{Snapshot, UsageHistory};

/// Something in the snapshot that could not be used; the rest was.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// The path does not exist or cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not YAML, or a document is not an object.
    #[error(transparent)]
    Parse(#[from] manifests::Error),
    /// An object does not fit its kind.
    #[error("{}:{line}: {object}: {message}", file.display())]
    Object {
        /// The file.
        file: PathBuf,
        /// Line of the object.
        line: usize,
        /// `Kind/namespace/name`.
        object: String,
        /// What does not fit.
        message: String,
    },
    /// A kind could not be listed from a live cluster (not served, or not allowed).
    #[error("{what}: cannot list: {message}")]
    Unavailable {
        /// What was listed.
        what: String,
        /// The API's answer.
        message: String,
    },
    /// A failing container's log was not read, or not kept. Logs explain findings and make
    /// none, so this leaves every finding as it is.
    #[error("{what}: {message}")]
    Log {
        /// Which log.
        what: String,
        /// Why.
        message: String,
    },
    /// A setting that narrows how owners are found was not read (Argo CD's `argocd-cm`, when
    /// reading it is not allowed): every way it could be set is accepted instead.
    #[error("{what}: not read: {message}")]
    Setting {
        /// The setting.
        what: String,
        /// Why.
        message: String,
    },
    /// Nothing at all could be read: there is no snapshot to decide on.
    #[error("{}: no object could be read from it ({problems} problems); give a file or directory of `kubectl get -o yaml` or `-o json` output", path.display())]
    Empty {
        /// The file or directory.
        path: PathBuf,
        /// How many problems its files had.
        problems: usize,
    },
    /// Objects of kinds detection does not look at were skipped.
    #[error("{}: skipped {count} objects of kinds detection does not use ({kinds})", file.display())]
    UnknownKinds {
        /// The file.
        file: PathBuf,
        /// How many objects.
        count: usize,
        /// The kinds and their counts.
        kinds: String,
    },
}

impl Problem {
    /// Whether objects went unread: a file or a kind could not be read at all, so a finding
    /// missing from the snapshot may only be missing from what was read.
    pub fn unread(&self) -> bool {
        matches!(
            self,
            Problem::Read { .. } | Problem::Parse(_) | Problem::Unavailable { .. }
        )
    }
}

/// A snapshot and what could not be read of it.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Everything that loaded.
    pub snapshot: Snapshot,
    /// Everything that did not.
    pub problems: Vec<Problem>,
    /// How many objects were read, of any kind.
    pub objects: usize,
    /// The values of the Secrets read, to redact logs with; the Secrets are not kept.
    redactor: crate::redact::Redactor,
}

/// Reads the snapshot at `path`, a file or a directory. A path that cannot be read, or from
/// which no object at all could be read, is an error: a snapshot that is not there is no
/// cluster without problems. A malformed file among readable ones is a problem, and the rest
/// loads.
pub fn load(path: &Path) -> Result<Loaded, Problem> {
    let files = files_under(path).map_err(|source| Problem::Read {
        path: path.to_owned(),
        source,
    })?;
    // Files are read side by side, and their objects kept in the files' order.
    let parts = crate::parallel::map(&files, 0, |file| {
        let mut part = Loaded::default();
        match std::fs::read(file) {
            Ok(bytes) => part.read_file(file, &bytes),
            Err(source) => part.problems.push(Problem::Read {
                path: file.clone(),
                source,
            }),
        }
        part
    });
    // A Secret in one file masks its values in the logs of every other.
    let mut loaded = Loaded::default();
    for part in parts {
        loaded.absorb(part);
    }
    if loaded.objects == 0 {
        return Err(Problem::Empty {
            path: path.to_owned(),
            problems: loaded.problems.len(),
        });
    }
    Ok(loaded)
}

impl Loaded {
    /// Adds the objects of one file's text (`file` names it in problems). JSON (`kubectl get -o
    /// json`, one value or several) is read with a JSON parser, one object at a time straight
    /// into its type, many times faster than YAML on a large cluster and without a tree of the
    /// whole file; anything else as YAML.
    pub fn read_file(&mut self, file: &Path, bytes: &[u8]) {
        let mut unknown: BTreeMap<String, usize> = BTreeMap::new();
        // Text that is not valid JSON (a YAML stream of flow mappings, a broken file) is read as
        // YAML, which also says where a broken file breaks.
        if let Some(documents) = json_documents(bytes) {
            for (line, raw) in documents {
                self.add_json(file, bytes, line, raw, &mut unknown);
            }
        } else {
            let parsed = parse_file(file, bytes);
            self.problems
                .extend(parsed.errors.into_iter().map(Problem::Parse));
            for document in parsed.documents {
                let mut value = document.value;
                let items = match value.get("kind").and_then(Value::as_str) {
                    Some(kind) if kind.ends_with("List") && value.get("items").is_some() => {
                        match value["items"].take() {
                            Value::Array(items) => items,
                            _ => vec![],
                        }
                    }
                    _ => vec![value],
                };
                for item in items {
                    if let Some(kind) = self.add(file, document.line, Object::Tree(item)) {
                        *unknown.entry(kind).or_default() += 1;
                    }
                }
            }
        }
        if !unknown.is_empty() {
            let count = unknown.values().sum();
            let kinds = unknown
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            self.problems.push(Problem::UnknownKinds {
                file: file.to_owned(),
                count,
                kinds,
            });
        }
    }

    /// Adds one JSON document: each item of a `List`, or the object itself.
    fn add_json(
        &mut self,
        file: &Path,
        bytes: &[u8],
        line: usize,
        raw: &RawValue,
        unknown: &mut BTreeMap<String, usize>,
    ) {
        let items = match serde_json::from_str::<ListHead<'_>>(raw.get()) {
            Ok(ListHead {
                kind: Some(kind),
                items: Some(items),
            }) if kind.ends_with("List") => items,
            _ => vec![raw],
        };
        // Each item says its own line: where it starts in the file, counted on from the
        // document's start, as the items come in order.
        let (mut at, mut counted) = (raw.get().as_ptr() as usize - bytes.as_ptr() as usize, line);
        let items: Vec<(usize, &RawValue)> = items
            .into_iter()
            .map(|item| {
                let offset = item.get().as_ptr() as usize - bytes.as_ptr() as usize;
                counted += bytes[at..offset].iter().filter(|b| **b == b'\n').count();
                at = offset;
                (counted, item)
            })
            .collect();
        if items.len() < LIST_CHUNK * 2 {
            // A list of one kind (its first and last items agree; kubectl lists kinds one after
            // another) gets room for all its items at once, rather than a vector of large
            // objects grown and copied item by item.
            if let [(_, first), .., (_, last)] = items.as_slice()
                && let (Some(kind), Some(last)) = (
                    Object::Json(first).head().kind,
                    Object::Json(last).head().kind,
                )
                && kind == last
            {
                self.reserve(&kind, items.len());
            }
            for (line, item) in items {
                if let Some(kind) = self.add(file, line, Object::Json(item)) {
                    *unknown.entry(kind).or_default() += 1;
                }
            }
            return;
        }
        // A long list is read a chunk of items per core at a time, the chunks kept in order.
        // The snapshot's vectors grow as the chunks are taken, each chunk freed as it goes,
        // rather than being reserved whole beside them.
        let chunks: Vec<&[(usize, &RawValue)]> = items.chunks(LIST_CHUNK).collect();
        let parts = crate::parallel::map(&chunks, 0, |chunk| {
            let (mut part, mut kinds) = (Loaded::default(), BTreeMap::<String, usize>::new());
            for (line, item) in chunk.iter() {
                if let Some(kind) = part.add(file, *line, Object::Json(item)) {
                    *kinds.entry(kind).or_default() += 1;
                }
            }
            (part, kinds)
        });
        for (part, kinds) in parts {
            self.absorb(part);
            for (kind, n) in kinds {
                *unknown.entry(kind).or_default() += n;
            }
        }
    }

    /// Adds what `part` read after what was read before it; a Secret in either masks its
    /// values in the logs of both.
    fn absorb(&mut self, part: Loaded) {
        let more = !part.redactor.is_empty() || !part.snapshot.logs.is_empty();
        self.snapshot.absorb(part.snapshot);
        self.problems.extend(part.problems);
        self.objects += part.objects;
        self.redactor.absorb(part.redactor);
        if more && !self.redactor.is_empty() {
            for log in &mut self.snapshot.logs {
                log.text = self.redactor.redact(&log.text);
            }
        }
    }

    /// Room for `more` objects of `kind`.
    fn reserve(&mut self, kind: &str, more: usize) {
        let s = &mut self.snapshot;
        match kind {
            "Pod" => s.pods.reserve_exact(more),
            "Deployment" => s.deployments.reserve_exact(more),
            "ReplicaSet" => s.replica_sets.reserve_exact(more),
            "Event" => s.events.reserve_exact(more),
            "Node" => s.nodes.reserve_exact(more),
            "HorizontalPodAutoscaler" => s.hpas.reserve_exact(more),
            "PersistentVolumeClaim" => s.pvcs.reserve_exact(more),
            _ => {}
        }
    }

    /// Adds one object; returns its kind when detection does not use it.
    fn add(&mut self, file: &Path, line: usize, object: Object<'_>) -> Option<String> {
        let head = object.head();
        let kind = head.kind.as_deref().unwrap_or("(no kind)").to_owned();
        let s = &mut self.snapshot;
        let result = match kind.as_str() {
            "Pod" => object.pod().map(|pod| s.pods.push(pod)),
            "Deployment" => object.resource(&mut s.deployments),
            "StatefulSet" => object.resource(&mut s.stateful_sets),
            "DaemonSet" => object.resource(&mut s.daemon_sets),
            "ReplicaSet" => object.compact(&mut s.replica_sets),
            "Event" => object.compact(&mut s.events),
            "Node" => object.resource(&mut s.nodes),
            "HorizontalPodAutoscaler" => object.resource(&mut s.hpas),
            "PersistentVolumeClaim" => object.resource(&mut s.pvcs),
            "Job" => object.resource(&mut s.jobs),
            // A log is redacted as it is read, and again by each Secret read after it.
            "ContainerLog" => object.typed(&mut s.logs).map(|()| {
                if let Some(log) = s.logs.last_mut() {
                    log.text = self.redactor.redact(&log.text);
                }
            }),
            "Secret" => {
                let mut secrets: Vec<k8s_openapi::api::core::v1::Secret> = Vec::new();
                object.typed(&mut secrets).map(|()| {
                    for secret in secrets {
                        self.redactor.add(crate::redact::secret_values(secret));
                    }
                    for log in &mut s.logs {
                        log.text = self.redactor.redact(&log.text);
                    }
                })
            }
            // Argo CD's settings say how it marks what it applies; no other ConfigMap is read.
            "ConfigMap" if head.name() == Some("argocd-cm") => {
                let mut maps: Vec<k8s_openapi::api::core::v1::ConfigMap> = Vec::new();
                object.typed(&mut maps).map(|()| {
                    let data = maps.pop().and_then(|m| m.data).unwrap_or_default();
                    s.argo_tracking = Some(crate::model::ArgoTracking::from_data(&data));
                })
            }
            "UsageHistory" => {
                let mut histories: Vec<UsageHistory> = Vec::new();
                object.typed(&mut histories).map(|()| {
                    for usage in histories {
                        s.usage.containers.extend(usage.containers);
                        s.usage.volumes.extend(usage.volumes);
                    }
                })
            }
            _ => {
                self.objects += 1;
                return Some(kind);
            }
        };
        match result {
            Ok(()) => self.objects += 1,
            Err(message) => {
                let name = head.name().unwrap_or("(no name)");
                let object = match head.namespace() {
                    Some(ns) => format!("{kind}/{ns}/{name}"),
                    None => format!("{kind}/{name}"),
                };
                self.problems.push(Problem::Object {
                    file: file.to_owned(),
                    line,
                    object,
                    message,
                });
            }
        }
        None
    }
}

/// One object of a snapshot: a YAML document's tree, or a JSON object's text.
enum Object<'a> {
    Tree(Value),
    Json(&'a RawValue),
}

/// The fields of an object that say what it is, read before the rest.
#[derive(Debug, Default, serde::Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    metadata: Option<HeadMeta<'a>>,
}

#[derive(Debug, serde::Deserialize)]
struct HeadMeta<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
}

impl Head<'_> {
    fn name(&self) -> Option<&str> {
        self.metadata.as_ref()?.name.as_deref()
    }
    fn namespace(&self) -> Option<&str> {
        self.metadata.as_ref()?.namespace.as_deref()
    }
}

/// An object's kind alone, when the rest of its head does not read.
#[derive(serde::Deserialize)]
struct KindOnly<'a> {
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
}

/// A JSON document as a possible `List`: its kind and its items' texts.
#[derive(serde::Deserialize)]
struct ListHead<'a> {
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    items: Option<Vec<&'a RawValue>>,
}

impl<'a> Object<'a> {
    /// What the object is; an object whose head does not read has none.
    fn head(&self) -> Head<'_> {
        let head = match self {
            Object::Tree(value) => Head::deserialize(value),
            Object::Json(raw) => serde_json::from_str(raw.get()),
        };
        // Malformed metadata still leaves the kind, so that the object is reported as the
        // kind it says it is, not as one detection does not use.
        head.or_else(|_| {
            let kind = match self {
                Object::Tree(value) => KindOnly::deserialize(value),
                Object::Json(raw) => serde_json::from_str(raw.get()),
            };
            kind.map(|k| Head {
                kind: k.kind,
                metadata: None,
            })
        })
        .unwrap_or_default()
    }

    /// Deserializes the object into its type and keeps it; the message when it does not fit.
    fn typed<T: DeserializeOwned>(&self, into: &mut Vec<T>) -> Result<(), String> {
        let object = match self {
            Object::Tree(value) => T::deserialize(value),
            Object::Json(raw) => serde_json::from_str(raw.get()),
        };
        into.push(object.map_err(|e| e.to_string())?);
        Ok(())
    }

    /// A pod; one no controller owns keeps its whole object too, without its field managers
    /// and kubectl's last applied configuration.
    fn pod(&self) -> Result<Pod, String> {
        let mut pods = Vec::with_capacity(1);
        self.compact(&mut pods)?;
        let mut pod: Pod = pods.pop().ok_or("no pod read")?;
        if pod.metadata.owner_references.is_none() {
            let mut whole = match self {
                Object::Tree(value) => value.clone(),
                Object::Json(raw) => serde_json::from_str(raw.get()).map_err(|e| e.to_string())?,
            };
            if let Some(meta) = whole.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
                if let Some(annotations) =
                    meta.get_mut("annotations").and_then(Value::as_object_mut)
                {
                    annotations.remove(LAST_APPLIED);
                }
            }
            pod.whole = Some(Box::new(whole));
        }
        Ok(pod)
    }

    /// An object of one of remediator's own compact types, which keep only what is read.
    fn compact<T: DeserializeOwned + Tighten>(&self, into: &mut Vec<T>) -> Result<(), String> {
        self.typed(into)?;
        if let Some(object) = into.last_mut() {
            object.tighten();
        }
        Ok(())
    }

    /// A Kubernetes object, kept without what detection never reads and a large cluster has
    /// much of: `managedFields` and kubectl's last-applied annotation, as `serve` drops them.
    fn resource<T>(&self, into: &mut Vec<T>) -> Result<(), String>
    where
        T: DeserializeOwned + k8s_openapi::Metadata<Ty = ObjectMeta> + Tighten,
    {
        self.typed(into)?;
        if let Some(object) = into.last_mut() {
            object.tighten();
            let meta = object.metadata_mut();
            meta.managed_fields = None;
            if let Some(annotations) = &mut meta.annotations {
                annotations.remove(LAST_APPLIED);
            }
        }
        Ok(())
    }
}

/// Items of a list read together on one core.
const LIST_CHUNK: usize = 1024;

/// The annotation `kubectl apply` keeps the whole object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The documents of a JSON text (one value, or several one after another), each with its line,
/// unparsed beyond their extent; `None` when the text is not JSON.
fn json_documents(bytes: &[u8]) -> Option<Vec<(usize, &RawValue)>> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    if !matches!(bytes[start], b'{' | b'[') {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let mut documents = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    // Lines counted on from one document to the next.
    let (mut at, mut line) = (0, 1);
    loop {
        match stream.next() {
            None => return Some(documents),
            Some(Ok(raw)) => {
                let offset = raw.get().as_ptr() as usize - bytes.as_ptr() as usize;
                line += bytes[at..offset].iter().filter(|b| **b == b'\n').count();
                at = offset;
                documents.push((line, raw));
            }
            Some(Err(_)) => return None,
        }
    }
}

/// `.yaml`, `.yml` and `.json` files under `path`, sorted; `path` itself when it is a file.
fn files_under(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        std::fs::metadata(path)?;
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    let mut stack = vec![path.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Loaded {
        let mut loaded = Loaded::default();
        loaded.read_file(Path::new("snap.yaml"), text.as_bytes());
        loaded
    }

    #[test]
    fn a_recorded_log_is_redacted_by_patterns_and_by_the_secrets_beside_it() {
        // The Secret comes after the log: its values still go.
        let loaded = read(
            "apiVersion: remediator.dev/v1alpha1\nkind: ContainerLog\nnamespace: shop\npod: api-1\ncontainer: api\n\
             previous: true\ntext: |\n  login as app with pw Zq9-pLm4x failed\n  token=abc123def456\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\ndata: {password: WnE5LXBMbTR4}\n",
        );
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let log = &loaded.snapshot.logs[0];
        assert_eq!(
            log.text,
            "login as app with pw [REDACTED] failed\ntoken=[REDACTED]\n"
        );
        assert!(log.previous);
        assert!(!format!("{loaded:?}").contains("Zq9-pLm4x"));
    }

    #[test]
    fn a_json_list_is_read_item_by_item_each_with_its_line_and_without_managed_fields() {
        let text = r#"{
  "apiVersion": "v1",
  "kind": "List",
  "items": [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "x",
      "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
      "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "web"}}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b", "namespace": "x"},
      "spec": {"containers": 3}},
    {"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": "broken"}
  ]
}
{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
"#;
        let mut loaded = Loaded::default();
        loaded.read_file(Path::new("snap.json"), text.as_bytes());
        let pods = &loaded.snapshot.pods;
        assert_eq!(pods.len(), 1);
        // Kept whole, as no controller owns it: without them too.
        let whole = pods[0].whole.as_deref().unwrap();
        assert!(whole["metadata"].get("managedFields").is_none(), "{whole}");
        assert_eq!(
            whole["metadata"]["annotations"],
            serde_json::json!({"team": "web"})
        );
        assert_eq!(loaded.snapshot.nodes.len(), 1);
        let problems: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].starts_with("snap.json:8: Pod/x/b: invalid type: integer `3`"),
            "{problems:?}"
        );
        // A pod whose metadata does not read is still a pod that does not fit.
        assert!(
            problems[1].starts_with("snap.json:11: Pod/(no name): invalid type"),
            "{problems:?}"
        );
        assert_eq!(
            problems[2],
            "snap.json: skipped 1 objects of kinds detection does not use (Widget 1)"
        );
        assert_eq!(loaded.objects, 3);
    }

    #[test]
    fn a_long_list_read_a_chunk_per_core_keeps_its_order_lines_and_redaction() {
        // One item a line, from line 2; a log in the first chunk and one in the last, the
        // Secret that masks both between them, a broken pod and an unused kind.
        let count = LIST_CHUNK * 3 + 5;
        let items: Vec<String> = (0..count)
            .map(|n| match n {
                3 | 3075 => r#"{"apiVersion": "remediator.dev/v1alpha1", "kind": "ContainerLog", "namespace": "shop", "pod": "p1", "container": "app", "text": "pw Zq9-pLm4x"}"#.to_owned(),
                2500 => r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad", "namespace": "x"}, "spec": {"containers": 3}}"#.to_owned(),
                2600 => r#"{"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"}}"#.to_owned(),
                3000 => r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"}, "data": {"password": "WnE5LXBMbTR4"}}"#.to_owned(),
                n => format!(r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "p{n}", "namespace": "x", "ownerReferences": []}}}}"#),
            })
            .collect();
        let text = format!(
            "{{\"kind\": \"List\", \"items\": [\n{}\n]}}\n",
            items.join(",\n")
        );
        let mut loaded = Loaded::default();
        loaded.read_file(Path::new("pods.json"), text.as_bytes());
        let names: Vec<&str> = loaded
            .snapshot
            .pods
            .iter()
            .filter_map(|p| p.metadata.name.as_deref())
            .collect();
        let expected: Vec<String> = (0..count)
            .filter(|n| ![3, 2500, 2600, 3000, 3075].contains(n))
            .map(|n| format!("p{n}"))
            .collect();
        assert_eq!(names, expected);
        let logs: Vec<&str> = loaded
            .snapshot
            .logs
            .iter()
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(logs, ["pw [REDACTED]", "pw [REDACTED]"]);
        let problems: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("pods.json:2502: Pod/x/bad: invalid type"),
            "{problems:?}"
        );
        assert_eq!(
            problems[1],
            "pods.json: skipped 1 objects of kinds detection does not use (Widget 1)"
        );
        assert_eq!(loaded.objects, count - 1);
    }

    #[test]
    fn files_read_side_by_side_keep_their_order_and_a_secret_masks_every_files_logs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a-log.yaml"),
            "apiVersion: remediator.dev/v1alpha1\nkind: ContainerLog\nnamespace: shop\npod: api-1\n\
             container: api\ntext: connecting with Zq9-pLm4x\n",
        )
        .unwrap();
        for n in 0..6 {
            std::fs::write(
                dir.path().join(format!("b-pods-{n}.json")),
                format!(r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "p{n}", "namespace": "x"}}}}"#),
            )
            .unwrap();
        }
        std::fs::write(
            dir.path().join("c-secret.yaml"),
            "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\ndata: {password: WnE5LXBMbTR4}\n",
        )
        .unwrap();
        let loaded = load(dir.path()).unwrap();
        let names: Vec<&str> = loaded
            .snapshot
            .pods
            .iter()
            .filter_map(|p| p.metadata.name.as_deref())
            .collect();
        assert_eq!(names, ["p0", "p1", "p2", "p3", "p4", "p5"]);
        assert_eq!(loaded.snapshot.logs[0].text, "connecting with [REDACTED]");
        assert_eq!(loaded.objects, 8);
    }

    #[test]
    fn reads_lists_and_documents() {
        let loaded = read(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a, namespace: x}\n\
             - apiVersion: v1\n  kind: Node\n  metadata: {name: n1}\n---\napiVersion: apps/v1\nkind: DeploymentList\n\
             items:\n- metadata: {name: web, namespace: x}\n  kind: Deployment\n",
        );
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert_eq!(
            (loaded.snapshot.pods.len(), loaded.snapshot.nodes.len()),
            (1, 1)
        );
        assert_eq!(loaded.snapshot.deployments.len(), 1);
    }

    #[test]
    fn a_snapshot_that_is_not_there_or_holds_nothing_readable_is_an_error() {
        let missing = load(Path::new("/nonexistent/snapshot")).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("/nonexistent/snapshot: cannot read"),
            "{missing}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("broken.yaml"), "a: [1,\n").unwrap();
        std::fs::write(
            dir.path().join("bad.yaml"),
            "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec: {containers: 3}\n",
        )
        .unwrap();
        let empty = load(dir.path()).unwrap_err();
        assert!(
            matches!(empty, Problem::Empty { problems: 2, .. }),
            "{empty}"
        );
        // A malformed file among readable ones stays a problem; the rest loads.
        std::fs::write(
            dir.path().join("ok.yaml"),
            "apiVersion: v1\nkind: Pod\nmetadata: {name: ok, namespace: x}\n",
        )
        .unwrap();
        let loaded = load(dir.path()).unwrap();
        assert_eq!(loaded.snapshot.pods.len(), 1);
        assert_eq!(loaded.problems.len(), 2, "{:?}", loaded.problems);
    }

    #[test]
    fn problems_are_named_and_the_rest_loads() {
        let loaded = read(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: ok, namespace: x}\n---\n\
             apiVersion: v1\nkind: Pod\nmetadata: {name: bad, namespace: x}\nspec: {containers: 3}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\nkind: ConfigMap\n---\na: [1,\n",
        );
        assert_eq!(loaded.snapshot.pods.len(), 1);
        let problems: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].starts_with("snap.yaml:16:"), "{problems:#?}");
        assert!(
            problems[1].starts_with("snap.yaml:5: Pod/x/bad: "),
            "{problems:#?}"
        );
        assert_eq!(
            problems[2],
            "snap.yaml: skipped 2 objects of kinds detection does not use (ConfigMap 1, Service 1)"
        );
    }

    #[test]
    fn json_snapshots_are_read_as_json() {
        let loaded = read(
            "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [\n  {\"apiVersion\": \"v1\", \"kind\": \"Node\", \"metadata\": {\"name\": \"n1\"}}]}\n{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"p\"}}\n",
        );
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert_eq!(
            (loaded.snapshot.nodes.len(), loaded.snapshot.pods.len()),
            (1, 1)
        );
        let broken = read("{\"kind\": \"List\",\n \"items\": [}\n");
        assert!(
            broken.problems[0].to_string().starts_with("snap.yaml:2:"),
            "{:?}",
            broken.problems
        );
    }

    #[test]
    fn usage_history_is_read_beside_the_objects() {
        let loaded = read(
            "apiVersion: remediator.dev/v1alpha1\nkind: UsageHistory\ncontainers:\n\
             - namespace: x\n  workload: {kind: Deployment, name: web}\n  container: web\n  cpu: [[0, 0.5], [60, 0.6]]\n",
        );
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert_eq!(loaded.snapshot.usage.containers[0].cpu[1], (60.0, 0.6));
        let bad = read(
            "kind: UsageHistory\ncontainers:\n- namespace: x\n  workload: {kind: Deployment, name: web}\n  container: web\n  cpus: []\n",
        );
        assert!(
            bad.problems[0].to_string().contains("cpus"),
            "{:?}",
            bad.problems
        );
    }
}

#[cfg(test)]
mod schema_tests {
    use std::path::Path;

    use serde_json::Value;

    use crate::model::UsageHistory;

    /// Property names of every object in a schema, by JSON pointer to the object.
    fn properties(schema: &Value, at: &str) -> Vec<String> {
        schema
            .pointer(at)
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn the_container_log_schema_matches_the_parser() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("schemas/container-log.schema.json")).unwrap(),
        )
        .unwrap();
        let declared = properties(&schema, "/properties");
        let full = serde_json::json!({"apiVersion": "remediator.dev/v1alpha1", "kind": "ContainerLog",
            "namespace": "n", "pod": "p", "container": "c", "previous": true, "text": "t"});
        let keys: Vec<String> = full.as_object().unwrap().keys().cloned().collect();
        assert_eq!(declared, keys);
        serde_json::from_value::<crate::model::ContainerLog>(full.clone()).unwrap();
        let mut unknown = full;
        unknown["lines"] = Value::from(1);
        assert!(serde_json::from_value::<crate::model::ContainerLog>(unknown).is_err());
    }

    #[test]
    fn the_usage_schema_matches_the_parser_and_the_example() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("schemas/usage-history.schema.json")).unwrap(),
        )
        .unwrap();
        let example: Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("examples/snapshot/usage.json")).unwrap(),
        )
        .unwrap();
        serde_json::from_value::<UsageHistory>(example.clone()).unwrap();
        // Every key the example uses is declared, and every declared key is one the parser reads.
        assert_eq!(
            properties(&schema, "/properties"),
            ["apiVersion", "kind", "metadata", "containers", "volumes"]
        );
        let container = properties(&schema, "/properties/containers/items/properties");
        assert_eq!(
            container,
            [
                "namespace",
                "workload",
                "container",
                "cpu",
                "memory",
                "replicas",
                "oomKilledPods"
            ]
        );
        for c in example["containers"].as_array().unwrap() {
            assert!(
                c.as_object().unwrap().keys().all(|k| container.contains(k)),
                "{c}"
            );
        }
        let volume = properties(&schema, "/properties/volumes/items/properties");
        let full = serde_json::json!({"containers": [{"namespace": "n", "workload": {"kind": "Deployment", "name": "w"},
            "container": "c", "cpu": [[0, 1]], "memory": [[0, 1]]}],
            "volumes": [{"namespace": "n", "pvc": "p", "capacityBytes": 1.0, "used": [[0, 1]]}]});
        serde_json::from_value::<UsageHistory>(full.clone()).unwrap();
        assert_eq!(volume, ["namespace", "pvc", "capacityBytes", "used"]);
        let mut unknown = full;
        unknown["volumes"][0]["size"] = Value::from(1);
        assert!(serde_json::from_value::<UsageHistory>(unknown).is_err());
    }
}
