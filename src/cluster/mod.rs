//! The Kubernetes boundary, behind the [`Cluster`] trait: [`live`] lists a snapshot, [`dryrun`]
//! shows what applying would do and who else owns the fields, [`apply`] writes in stages with
//! server-side apply, [`wait`] polls health, [`list`] lists a kind. [`health`] (per-kind health) and [`ownership`] (who
//! manages a live object) are pure and read objects as the API server returns them; [`retry`]
//! says which failures are worth another try; [`lock`] keeps two remediations off one object.
//! [`KubeCluster`] talks to the API server through
//! kube; nothing else in the crate does.

pub mod apply;
pub mod conflicts;
pub mod dryrun;
pub mod health;
pub mod imperative;
pub mod list;
pub mod live;
pub mod lock;
pub mod ownership;
mod prefetch;
pub mod prometheus;
pub mod prune;
pub mod retry;
pub mod routing;
pub mod trail;
pub mod wait;

use std::future::Future;
use std::time::Duration;

use kube::api::{Api, DynamicObject};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use serde_json::Value;

use crate::manifests::{Scopes, is_cluster_scoped};
use crate::model::{ChangeSet, ObjectRef};
use crate::snapshot::Loaded;
pub use apply::{ApplyOptions, Stopped};
pub use dryrun::{DryRunOptions, DryRunResult, FieldConflict};
pub use list::ListOptions;
pub use live::SnapshotOptions;
pub use lock::{Held, LockOptions};
pub use prune::PruneOptions;
pub use retry::RetryPolicy;
pub use routing::Clusters;
pub use wait::{WaitOptions, WaitOutcome, WaitReport};

/// Errors of the cluster boundary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Discovery failed.
    #[error("cannot discover the cluster's API resources: {}", api_message(.0))]
    Discovery(#[source] kube::Error),
    /// The cluster does not serve the object's kind.
    #[error("{0}: the cluster does not serve this kind; apply its CustomResourceDefinition first")]
    UnknownKind(String),
    /// The cluster answered with a value that decides something and cannot be read.
    #[error("{object}: {message}")]
    Unreadable {
        /// The object, as `Kind/namespace/name`.
        object: String,
        /// What cannot be read.
        message: String,
    },
    /// An object lacks apiVersion, kind or name.
    #[error("an object without apiVersion, kind or metadata.name cannot be sent: {0}")]
    Incomplete(String),
    /// The API refused or failed a request.
    #[error("{object}: {verb} failed: {}", api_message(source))]
    Api {
        /// The object, as `Kind/namespace/name`.
        object: String,
        /// What was attempted.
        verb: &'static str,
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
    /// A CustomResourceDefinition was applied but not established in time.
    #[error(
        "{object}: not established after {}s; its custom resources cannot be applied (check the CRD's status conditions)",
        timeout.as_secs()
    )]
    NotEstablished {
        /// The CRD.
        object: String,
        /// How long it was given.
        timeout: Duration,
    },
    /// An action record cannot be carried out.
    #[error("Remediation/{record}: {message}")]
    Imperative {
        /// The record's name.
        record: String,
        /// What is wrong.
        message: String,
    },
    /// A field the change sets is owned by a manager the conflict policy refuses to take it
    /// from.
    #[error(
        "{object}: {fields}; the change would fight that manager, so nothing of it is applied (set reconcile.conflicts in remediator.yaml to force or skip-field to decide otherwise)"
    )]
    Conflict {
        /// The object.
        object: String,
        /// Each refused field and its owner.
        fields: String,
    },
    /// Another remediation holds the object's lock.
    #[error(
        "{object}: locked by {holder} (Lease {lease}); another remediation of it is in flight, try again when it is done"
    )]
    LockHeld {
        /// The object.
        object: String,
        /// Who holds the lock.
        holder: String,
        /// The Lease, `namespace/name`.
        lease: String,
    },
}

/// `Result` of this module.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The API's HTTP status, when the API answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api {
                source: kube::Error::Api(status),
                ..
            }
            | Error::Discovery(kube::Error::Api(status)) => Some(status.code),
            _ => None,
        }
    }
}

/// The API's own words for a failure: `message (Reason)` for an answer, the transport error
/// otherwise.
pub fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if status.reason.is_empty() => {
            format!("{} (HTTP {})", status.message, status.code)
        }
        kube::Error::Api(status) => format!("{} ({})", status.message, status.reason),
        other => other.to_string(),
    }
}

/// A Kubernetes cluster as the pipeline sees it.
pub trait Cluster {
    /// The objects detection reads, and usage from metrics.k8s.io when it is served.
    fn snapshot(&self, options: &SnapshotOptions) -> impl Future<Output = Result<Loaded>> + Send;
    /// The live object, or `None` when it does not exist.
    fn get(&self, object: &ObjectRef) -> impl Future<Output = Result<Option<Value>>> + Send;
    /// Every object of a kind in every namespace (see [`list`]).
    fn list(
        &self,
        api_version: &str,
        kind: &str,
        options: &ListOptions,
    ) -> impl Future<Output = Result<Vec<Value>>> + Send;
    /// What applying `objects` would do, and who else owns the fields it sets.
    fn dry_run(
        &self,
        objects: &[Value],
        options: &DryRunOptions,
    ) -> impl Future<Output = Result<Vec<DryRunResult>>> + Send;
    /// Applies `objects` in stages; the partial change set comes back with the error.
    fn apply(
        &self,
        objects: &[Value],
        options: &ApplyOptions,
    ) -> impl Future<Output = std::result::Result<ChangeSet, Stopped>> + Send;
    /// Polls the objects' health until all are healthy, one fails, or time runs out.
    fn wait(
        &self,
        objects: &[ObjectRef],
        options: &WaitOptions,
    ) -> impl Future<Output = Result<WaitReport>> + Send;
    /// Takes the lock of every object, waiting for other holders up to `options.wait`.
    fn lock(
        &self,
        objects: &[ObjectRef],
        options: &LockOptions,
    ) -> impl Future<Output = Result<Held>> + Send;
    /// Gives locks back.
    fn unlock(&self, held: &Held) -> impl Future<Output = Result<()>> + Send;
    /// Deletes the objects a merge removed that remediator applied (see [`prune`]); the
    /// partial change set comes back with the error.
    fn prune(
        &self,
        objects: &[ObjectRef],
        options: &PruneOptions,
    ) -> impl Future<Output = std::result::Result<ChangeSet, Stopped>> + Send;
    /// Carries out an action record (its undo when `undo`); one line per thing done.
    fn execute(
        &self,
        record: &Value,
        undo: bool,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// The cluster's record of the last commit that finished there for `scope` (see
    /// [`trail`]); `None` when there is none.
    fn read_trail(
        &self,
        namespace: &str,
        scope: &str,
    ) -> impl Future<Output = Result<Option<String>>> + Send;
    /// Sets the cluster's record for `scope`.
    fn write_trail(
        &self,
        namespace: &str,
        scope: &str,
        value: &str,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// A cluster reached through a kube client.
#[derive(Clone)]
pub struct KubeCluster {
    client: kube::Client,
    /// Discovery kept between `get`s; run again when a kind is not found in it.
    resolver: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<Resolver>>>>,
}

impl KubeCluster {
    /// Wraps a client.
    pub fn new(client: kube::Client) -> Self {
        KubeCluster {
            client,
            resolver: Default::default(),
        }
    }

    /// The kept discovery, or a new one when there is none or `fresh` is asked for.
    /// The API serving `object`'s kind, discovering again once when the kind is unknown.
    async fn api(&self, object: &ObjectRef) -> Result<Api<DynamicObject>> {
        match self.resolver(false).await?.api_for(&self.client, object) {
            Ok(api) => Ok(api),
            Err(Error::UnknownKind(_)) => self.resolver(true).await?.api_for(&self.client, object),
            Err(error) => Err(error),
        }
    }

    async fn resolver(&self, fresh: bool) -> Result<std::sync::Arc<Resolver>> {
        let kept = self.resolver.lock().ok().and_then(|r| r.clone());
        match kept {
            Some(resolver) if !fresh => Ok(resolver),
            _ => {
                let resolver = std::sync::Arc::new(Resolver::new(&self.client).await?);
                if let Ok(mut kept) = self.resolver.lock() {
                    *kept = Some(resolver.clone());
                }
                Ok(resolver)
            }
        }
    }
}

impl Cluster for KubeCluster {
    async fn snapshot(&self, options: &SnapshotOptions) -> Result<Loaded> {
        live::snapshot(&self.client, options).await
    }

    async fn get(&self, object: &ObjectRef) -> Result<Option<Value>> {
        let api = self.api(object).await?;
        dryrun::live(&api, object, &RetryPolicy::default()).await
    }

    async fn list(
        &self,
        api_version: &str,
        kind: &str,
        options: &ListOptions,
    ) -> Result<Vec<Value>> {
        self.list_objects(api_version, kind, options).await
    }

    async fn prune(
        &self,
        objects: &[ObjectRef],
        options: &PruneOptions,
    ) -> std::result::Result<ChangeSet, Stopped> {
        self.prune_objects(objects, options).await
    }

    async fn dry_run(
        &self,
        objects: &[Value],
        options: &DryRunOptions,
    ) -> Result<Vec<DryRunResult>> {
        dryrun::dry_run(&self.client, objects, options).await
    }

    async fn apply(
        &self,
        objects: &[Value],
        options: &ApplyOptions,
    ) -> std::result::Result<ChangeSet, Stopped> {
        apply::apply(&self.client, objects, options).await
    }

    async fn wait(&self, objects: &[ObjectRef], options: &WaitOptions) -> Result<WaitReport> {
        wait::wait(&self.client, objects, options).await
    }

    async fn lock(&self, objects: &[ObjectRef], options: &LockOptions) -> Result<Held> {
        lock::acquire(&self.client, objects, options).await
    }

    async fn unlock(&self, held: &Held) -> Result<()> {
        lock::release(&self.client, held).await
    }

    async fn read_trail(&self, namespace: &str, scope: &str) -> Result<Option<String>> {
        trail::read(&self.client, namespace, scope).await
    }

    async fn write_trail(&self, namespace: &str, scope: &str, value: &str) -> Result<()> {
        trail::write(&self.client, namespace, scope, value).await
    }

    async fn execute(&self, record: &Value, undo: bool) -> Result<Vec<String>> {
        imperative::execute(&self.client, record, undo, &RetryPolicy::default()).await
    }
}

/// A dynamic object as JSON.
pub(crate) fn to_value(object: DynamicObject) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

/// Finds the API resource serving each kind.
pub struct Resolver {
    discovery: Discovery,
}

impl Resolver {
    /// Runs discovery once.
    pub async fn new(client: &kube::Client) -> Result<Self> {
        let discovery = retry::with_retry(&RetryPolicy::default(), || {
            Discovery::new(client.clone()).run()
        })
        .await
        .map_err(Error::Discovery)?;
        Ok(Resolver { discovery })
    }

    /// The resource of an `apiVersion` and `kind`.
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<(ApiResource, ApiCapabilities)> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        self.discovery.resolve_gvk(&gvk)
    }

    /// The scope of every kind the cluster serves.
    pub fn scopes(&self) -> Scopes {
        let served = self.discovery.groups().flat_map(|group| {
            group
                .recommended_resources()
                .into_iter()
                .map(|(resource, capabilities)| {
                    let scope = match capabilities.scope {
                        Scope::Cluster => crate::manifests::Scope::Cluster,
                        Scope::Namespaced => crate::manifests::Scope::Namespaced,
                    };
                    (resource.kind, scope)
                })
        });
        Scopes::default().with(served)
    }

    /// Whether the cluster serves a group.
    pub fn serves_group(&self, group: &str) -> bool {
        self.discovery.has_group(group)
    }

    /// An Api for a known object.
    pub fn api_for(&self, client: &kube::Client, object: &ObjectRef) -> Result<Api<DynamicObject>> {
        let Some((resource, capabilities)) = self.resolve(&object.api_version(), &object.kind)
        else {
            return Err(Error::UnknownKind(object.to_string()));
        };
        Ok(match (&object.namespace, capabilities.scope) {
            (Some(namespace), Scope::Namespaced) => {
                Api::namespaced_with(client.clone(), namespace, &resource)
            }
            _ => Api::all_with(client.clone(), &resource),
        })
    }

    /// The object's reference (its namespace filled in when the kind is namespaced) and an Api
    /// for it.
    pub fn target(
        &self,
        client: &kube::Client,
        object: &Value,
        default_namespace: &str,
    ) -> Result<(ObjectRef, Api<DynamicObject>)> {
        let subject = subject(object, default_namespace)?;
        let Some((resource, capabilities)) = self.resolve(&subject.api_version(), &subject.kind)
        else {
            return Err(Error::UnknownKind(subject.to_string()));
        };
        if capabilities.scope == Scope::Cluster {
            let subject = ObjectRef {
                namespace: None,
                ..subject
            };
            return Ok((subject, Api::all_with(client.clone(), &resource)));
        }
        let namespace = subject
            .namespace
            .clone()
            .unwrap_or_else(|| default_namespace.to_owned());
        Ok((
            subject.with_namespace(Some(&namespace)),
            Api::namespaced_with(client.clone(), &namespace, &resource),
        ))
    }
}

/// The reference of an object about to be sent: namespaced as written, or in
/// `default_namespace` unless its kind is known to be cluster-scoped (discovery has the last
/// word in [`Resolver::target`]).
pub fn subject(object: &Value, default_namespace: &str) -> Result<ObjectRef> {
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
    let (Some(api_version), Some(kind), Some(name)) =
        (text("/apiVersion"), text("/kind"), text("/metadata/name"))
    else {
        return Err(Error::Incomplete(
            object.to_string().chars().take(120).collect(),
        ));
    };
    let namespace = match text("/metadata/namespace") {
        Some(namespace) => Some(namespace),
        None if is_cluster_scoped(kind, &Scopes::default()) => None,
        None => Some(default_namespace),
    };
    Ok(ObjectRef::new(api_version, kind, namespace, name))
}
