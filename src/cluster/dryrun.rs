//! Server-side dry-run of a set of objects (`dryRun=All`, never stored): per object created,
//! configured or unchanged; a diff of the live object against the dry-run result without
//! server-owned fields, Secret values masked; and the other field managers that own fields the
//! change would set, found with a non-forced dry-run apply. I/O: the Kubernetes API.

use std::path::Path;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use serde_json::Value;

use crate::manifests::diff::unified;
use crate::model::{ChangeAction, ObjectRef};

/// Errors of the cluster boundary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Discovery failed.
    #[error("cannot discover the cluster's API resources: {0}")]
    Discovery(#[source] kube::Error),
    /// The cluster does not serve the object's kind.
    #[error("{0}: the cluster does not serve this kind; apply its CRD first")]
    UnknownKind(String),
    /// An object lacks apiVersion, kind or name.
    #[error("an object without apiVersion, kind or metadata.name cannot be sent: {0}")]
    Incomplete(String),
    /// The API refused or failed a request.
    #[error("{object}: {verb} failed: {source}")]
    Api {
        /// The object, as `Kind/namespace/name`.
        object: String,
        /// What was attempted.
        verb: &'static str,
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
}

/// `Result` of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Options of a dry-run.
#[derive(Clone, Debug)]
pub struct DryRunOptions {
    /// The field manager the apply would use.
    pub field_manager: String,
    /// Namespace for namespaced objects that name none.
    pub default_namespace: String,
}

impl Default for DryRunOptions {
    fn default() -> Self {
        DryRunOptions {
            field_manager: "remediator".into(),
            default_namespace: "default".into(),
        }
    }
}

/// Another manager owning a field the change sets to a different value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldConflict {
    /// The manager as the API names it (`"kube-controller-manager" using apps/v1`).
    pub manager: String,
    /// The field path, `.spec.replicas`.
    pub field: String,
}

/// What applying one object would do.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DryRunResult {
    /// The object.
    pub object: ObjectRef,
    /// Created, configured or unchanged.
    pub action: ChangeAction,
    /// Unified diff of live → result, server-owned fields stripped, Secret values masked.
    pub diff: String,
    /// Fields other managers own that the change would take.
    pub conflicts: Vec<FieldConflict>,
}

/// Finds the API resource serving each kind.
pub struct Resolver {
    discovery: Discovery,
}

impl Resolver {
    /// Runs discovery once.
    pub async fn new(client: &kube::Client) -> Result<Self> {
        let discovery = Discovery::new(client.clone())
            .run()
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
}

/// The object's reference, and an Api for it.
fn target(
    client: &kube::Client,
    resolver: &Resolver,
    object: &Value,
    default_namespace: &str,
) -> Result<(ObjectRef, Api<DynamicObject>)> {
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
    let (Some(api_version), Some(kind), Some(name)) =
        (text("/apiVersion"), text("/kind"), text("/metadata/name"))
    else {
        return Err(Error::Incomplete(
            object.to_string().chars().take(120).collect(),
        ));
    };
    let Some((resource, capabilities)) = resolver.resolve(api_version, kind) else {
        return Err(Error::UnknownKind(format!("{kind}/{name}")));
    };
    if capabilities.scope == Scope::Cluster {
        let subject = ObjectRef::new(api_version, kind, None, name);
        return Ok((subject, Api::all_with(client.clone(), &resource)));
    }
    let namespace = text("/metadata/namespace").unwrap_or(default_namespace);
    let subject = ObjectRef::new(api_version, kind, Some(namespace), name);
    Ok((
        subject,
        Api::namespaced_with(client.clone(), namespace, &resource),
    ))
}

/// The object without what the server owns: managedFields, status, resourceVersion, uid,
/// generation, timestamps.
pub fn comparable(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(fields) = out.as_object_mut() {
        fields.remove("status");
        if let Some(metadata) = fields.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in [
                "managedFields",
                "resourceVersion",
                "uid",
                "generation",
                "creationTimestamp",
                "selfLink",
            ] {
                metadata.remove(key);
            }
        }
    }
    out
}

fn yaml(object: Option<&Value>) -> String {
    object
        .map(|o| serde_saphyr::to_string(&comparable(o)).unwrap_or_default())
        .unwrap_or_default()
}

fn conflicts_of(error: &kube::Error) -> Option<Vec<FieldConflict>> {
    let kube::Error::Api(status) = error else {
        return None;
    };
    if status.code != 409 || status.reason != "Conflict" {
        return None;
    }
    let causes = status.details.as_ref()?.causes.clone();
    Some(
        causes
            .into_iter()
            .filter(|c| c.reason == "FieldManagerConflict")
            .map(|c| FieldConflict {
                manager: c.message.trim_start_matches("conflict with ").to_string(),
                field: c.field,
            })
            .collect(),
    )
}

/// Dry-runs the apply of each object.
pub async fn dry_run(
    client: &kube::Client,
    objects: &[Value],
    options: &DryRunOptions,
) -> Result<Vec<DryRunResult>> {
    let resolver = Resolver::new(client).await?;
    let mut results = Vec::with_capacity(objects.len());
    for object in objects {
        let (subject, api) = target(client, &resolver, object, &options.default_namespace)?;
        let failed = |verb: &'static str| {
            let object = subject.to_string();
            move |source| Error::Api {
                object,
                verb,
                source,
            }
        };
        let live = api.get_opt(&subject.name).await.map_err(failed("get"))?;
        let live = live.map(|l| serde_json::to_value(l).unwrap_or(Value::Null));
        let params = PatchParams::apply(&options.field_manager).dry_run();
        let (result, conflicts) = match api
            .patch(&subject.name, &params, &Patch::Apply(object))
            .await
        {
            Ok(result) => (result, Vec::new()),
            Err(error) => match conflicts_of(&error) {
                Some(conflicts) => {
                    let forced = params.clone().force();
                    let result = api
                        .patch(&subject.name, &forced, &Patch::Apply(object))
                        .await
                        .map_err(failed("dry-run apply"))?;
                    (result, conflicts)
                }
                None => return Err(failed("dry-run apply")(error)),
            },
        };
        let result = serde_json::to_value(result).unwrap_or(Value::Null);
        let (before, after) = (yaml(live.as_ref()), yaml(Some(&result)));
        let action = match &live {
            None => ChangeAction::Created,
            Some(_) if before == after => ChangeAction::Unchanged,
            Some(_) => ChangeAction::Configured,
        };
        let diff = unified(Path::new(&subject.to_string()), &before, &after, false);
        results.push(DryRunResult {
            object: subject,
            action,
            diff,
            conflicts,
        });
    }
    Ok(results)
}
