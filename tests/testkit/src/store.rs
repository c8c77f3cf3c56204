//! The object store: every object by resource, namespace and name; the resourceVersion counter;
//! uids, generations and creation times; the watch history; and the resource types served, which
//! grow as CRDs are established. Everything here runs under the server's one lock.

use std::collections::{BTreeMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::resources::{self, ResourceType};

/// How many past events a watch can resume from.
const HISTORY: usize = 10_000;

/// Where an object lives.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// API group.
    pub group: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

/// One change, as watches see it.
#[derive(Clone, Debug)]
pub struct Event {
    /// The resourceVersion the change produced.
    pub revision: u64,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// The object's key.
    pub key: Key,
    /// The object after the change (before it, for deletions).
    pub object: Value,
}

/// The server's state.
pub struct Store {
    /// Types served now.
    pub types: Vec<ResourceType>,
    objects: BTreeMap<Key, Value>,
    revision: u64,
    history: VecDeque<Arc<Event>>,
    events: broadcast::Sender<Arc<Event>>,
    random: RandomState,
    /// Container logs by (namespace, pod, container, previous), as the kubelets would serve them.
    pub logs: BTreeMap<(String, String, String, bool), String>,
    /// Whether no kubelet confirms a deletion: a pod bound to a node then stays Terminating
    /// after its delete or eviction, as in a cluster without kubelets (the recorded one). Off,
    /// the kubelets confirm at once and the pod goes.
    pub graceful_pods: bool,
    /// Whether the disruption controller runs: each PodDisruptionBudget's status is worked out
    /// from its pods when it is read or used by an eviction. Off, the status is what the test
    /// set.
    pub disruption_controller: bool,
}

/// The current time at second precision, as the API server writes it.
pub fn now() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now.to_string())
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// A store with the built-in types and the namespaces every cluster has.
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(4096);
        let mut store = Store {
            types: resources::builtin(),
            objects: BTreeMap::new(),
            revision: 1,
            history: VecDeque::new(),
            events,
            random: RandomState::new(),
            logs: BTreeMap::new(),
            graceful_pods: false,
            disruption_controller: false,
        };
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            store.seed_namespace(name);
        }
        store
    }

    fn seed_namespace(&mut self, name: &str) {
        let mut object = json!({"kind": "Namespace", "apiVersion": "v1",
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        self.stamp(&mut object, None);
        let key = Key {
            group: String::new(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: name.into(),
        };
        self.put(key, object);
    }

    /// The served type for a group, version and plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// The served type of a kind in an API version.
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
    }

    /// The last resourceVersion handed out.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// One object.
    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Whether a namespace exists.
    pub fn namespace_exists(&self, name: &str) -> bool {
        self.objects.contains_key(&Key {
            group: String::new(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: name.into(),
        })
    }

    /// The objects of one resource, in one namespace or all, in key order.
    pub fn list<'a>(
        &'a self,
        group: &'a str,
        plural: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        self.objects.iter().filter(move |(key, _)| {
            key.group == group
                && key.plural == plural
                && namespace.is_none_or(|ns| key.namespace == ns)
        })
    }

    /// A fresh uid.
    pub fn uid(&self) -> String {
        let a = self
            .random
            .hash_one((self.revision, jiff::Timestamp::now()));
        let b = self.random.hash_one((a, self.objects.len()));
        let hex = format!("{a:016x}{b:016x}");
        format!(
            "{}-{}-4{}-a{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        )
    }

    /// Gives a new object its uid, creation time and first generation.
    pub fn stamp(&self, object: &mut Value, generation: Option<u64>) {
        let uid = self.uid();
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("uid".into(), json!(uid));
            if let Some(generation) = generation {
                metadata.insert("generation".into(), json!(generation));
            }
            metadata.insert("creationTimestamp".into(), json!(now()));
        }
    }

    /// Stores an object under a new resourceVersion and tells the watches.
    pub fn put(&mut self, key: Key, mut object: Value) -> Value {
        self.revision += 1;
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("resourceVersion".into(), json!(self.revision.to_string()));
        }
        let kind = if self.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.objects.insert(key.clone(), object.clone());
        self.publish(kind, key, object.clone());
        object
    }

    /// Removes an object and tells the watches.
    pub fn delete(&mut self, key: &Key) -> Option<Value> {
        let mut object = self.objects.remove(key)?;
        self.revision += 1;
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("resourceVersion".into(), json!(self.revision.to_string()));
        }
        self.publish("DELETED", key.clone(), object.clone());
        Some(object)
    }

    fn publish(&mut self, kind: &'static str, key: Key, object: Value) {
        let event = Arc::new(Event {
            revision: self.revision,
            kind,
            key,
            object,
        });
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(event.clone());
        let _ = self.events.send(event);
    }

    /// Events after `revision`, or `None` when they are no longer all remembered.
    pub fn since(&self, revision: u64) -> Option<Vec<Arc<Event>>> {
        let oldest = self.history.front().map_or(self.revision, |e| e.revision);
        if revision + 1 < oldest && revision < self.revision {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|e| e.revision > revision)
                .cloned()
                .collect(),
        )
    }

    /// A receiver of every later event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Serves the types of an established CRD, replacing earlier versions of it.
    pub fn serve_crd(&mut self, crd: &Value) {
        let served = resources::from_crd(crd);
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or("");
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or("");
        self.types
            .retain(|t| !(t.group == group && t.plural == plural));
        self.types.extend(served);
    }

    /// Stops serving a CRD's types and removes its objects.
    pub fn drop_crd(&mut self, crd: &Value) {
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        self.types
            .retain(|t| !(t.group == group && t.plural == plural));
        let keys: Vec<Key> = self
            .list(&group, &plural, None)
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            self.delete(&key);
        }
    }

    /// Removes every object of a namespace.
    pub fn drop_namespace(&mut self, namespace: &str) {
        let keys: Vec<Key> = self
            .objects
            .keys()
            .filter(|k| k.namespace == namespace)
            .cloned()
            .collect();
        for key in keys {
            self.delete(&key);
        }
    }
}

/// The metadata fields the server owns: they never take part in field ownership.
const SERVER_METADATA: [&str; 10] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The object without type, identity and server-owned metadata: what field ownership covers.
pub fn strip(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(fields) = out.as_object_mut() {
        fields.shift_remove("apiVersion");
        fields.shift_remove("kind");
        if let Some(metadata) = fields.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in SERVER_METADATA {
                metadata.shift_remove(key);
            }
        }
    }
    out
}

/// Puts type, identity and server metadata back around a stripped object, in the order the API
/// server writes them.
pub fn assemble(resource: &ResourceType, identity: &Value, body: Value) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), json!(resource.kind));
    out.insert("apiVersion".into(), json!(resource.api_version()));
    let mut metadata = Map::new();
    for key in SERVER_METADATA {
        if key == "managedFields" {
            continue;
        }
        if let Some(value) = identity.pointer(&format!("/metadata/{key}")) {
            metadata.insert(key.into(), value.clone());
        }
    }
    let Value::Object(mut body) = body else {
        out.insert("metadata".into(), Value::Object(metadata));
        return Value::Object(out);
    };
    if let Some(Value::Object(rest)) = body.shift_remove("metadata") {
        metadata.extend(rest);
    }
    out.insert("metadata".into(), Value::Object(metadata));
    out.extend(body);
    Value::Object(out)
}

/// The parts of an object outside metadata and status: a change there bumps the generation.
pub fn generation_content(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(fields) = out.as_object_mut() {
        for key in ["metadata", "status", "apiVersion", "kind"] {
            fields.shift_remove(key);
        }
    }
    out
}
