//! Server-side dry-run of a set of objects (`dryRun=All`, never stored): per object created,
//! configured or unchanged; a diff of the live object against the dry-run result without
//! server-owned fields, Secret values masked; and the other field managers that own fields the
//! change would set, found with a non-forced dry-run apply. I/O: the Kubernetes API.

use std::path::Path;

use futures::{StreamExt, TryStreamExt, stream};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::Value;

use super::ownership::{Handling, ownership};
use super::retry::{RetryPolicy, with_retry};
use super::{Error, Resolver, Result, subject, to_value};
use crate::manifests::diff::unified;
use crate::model::{ChangeAction, ObjectRef};

/// Options of a dry-run.
#[derive(Clone, Debug)]
pub struct DryRunOptions {
    /// The field manager the apply would use.
    pub field_manager: String,
    /// Namespace for namespaced objects that name none.
    pub default_namespace: String,
    /// Objects previewed at once.
    pub concurrency: usize,
    /// Retries of failed calls.
    pub retry: RetryPolicy,
}

impl Default for DryRunOptions {
    fn default() -> Self {
        DryRunOptions {
            field_manager: "remediator".into(),
            default_namespace: "default".into(),
            concurrency: 16,
            retry: RetryPolicy::default(),
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
    /// The GitOps tool that syncs the live object (Argo CD, Flux), which remediator leaves it
    /// to: its conflicts are that tool's, never remediator's to take.
    pub synced_by: Option<String>,
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

/// The object as YAML for the diff; an absent object is empty. A value that cannot be written
/// as YAML is an error naming the object, never an empty diff.
fn yaml(object: Option<&Value>, name: &str) -> Result<String> {
    match object {
        None => Ok(String::new()),
        Some(o) => serde_saphyr::to_string(&comparable(o)).map_err(|e| Error::Unreadable {
            object: name.to_owned(),
            message: format!("cannot be written as YAML for its diff: {e}"),
        }),
    }
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

/// The live object and what the API would make of the apply, found without storing anything.
#[derive(Clone, Debug)]
pub(crate) struct Preview {
    /// The object as it is, `None` when it does not exist.
    pub live: Option<Value>,
    /// The object as it would be.
    pub result: Value,
    /// Fields other managers own that the apply would take.
    pub conflicts: Vec<FieldConflict>,
}

impl Preview {
    /// Created, configured or unchanged, comparing without server-owned fields.
    pub fn action(&self) -> ChangeAction {
        match &self.live {
            None => ChangeAction::Created,
            Some(live) if comparable(live) == comparable(&self.result) => ChangeAction::Unchanged,
            Some(_) => ChangeAction::Configured,
        }
    }
}

/// A dry-run apply of `object`. Without `force` in `params`, a conflict is reported and the
/// dry-run repeated with force, to show the result all the same; with it, no conflict arises.
pub(crate) async fn preview(
    api: &Api<DynamicObject>,
    subject: &ObjectRef,
    object: &Value,
    live: Option<Value>,
    params: &PatchParams,
    retry: &RetryPolicy,
) -> Result<Preview> {
    let failed = |verb: &'static str| {
        let object = subject.to_string();
        move |source| Error::Api {
            object,
            verb,
            source,
        }
    };
    let params = params.clone().dry_run();
    let patch = |params: PatchParams| async move {
        with_retry(retry, || async {
            api.patch(&subject.name, &params, &Patch::Apply(object))
                .await
        })
        .await
    };
    let (result, conflicts) = match patch(params.clone()).await {
        Ok(result) => (result, Vec::new()),
        Err(error) => match conflicts_of(&error) {
            Some(conflicts) if !params.force => {
                let result = patch(params.force())
                    .await
                    .map_err(failed("dry-run apply"))?;
                (result, conflicts)
            }
            _ => return Err(failed("dry-run apply")(error)),
        },
    };
    Ok(Preview {
        live,
        result: to_value(result),
        conflicts,
    })
}

/// The live object, `None` when there is none.
pub(crate) async fn live(
    api: &Api<DynamicObject>,
    subject: &ObjectRef,
    retry: &RetryPolicy,
) -> Result<Option<Value>> {
    let found = with_retry(retry, || api.get_opt(&subject.name))
        .await
        .map_err(|source| Error::Api {
            object: subject.to_string(),
            verb: "get",
            source,
        })?;
    Ok(found.map(to_value))
}

/// What a set of objects creates for its own members: the kinds of its CRDs and its
/// Namespaces. Before they exist the API cannot dry-run the members that need them, and those
/// are reported as created.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    kinds: Vec<(String, String)>,
    namespaces: Vec<String>,
}

impl Pending {
    /// What `objects` create.
    pub fn of(objects: &[Value]) -> Self {
        let text = |o: &Value, p: &str| o.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let kinds = objects
            .iter()
            .filter(|o| o["kind"] == "CustomResourceDefinition")
            .filter_map(|o| Some((text(o, "/spec/group")?, text(o, "/spec/names/kind")?)))
            .collect();
        let namespaces = objects
            .iter()
            .filter(|o| o["kind"] == "Namespace")
            .filter_map(|o| text(o, "/metadata/name"))
            .collect();
        Pending { kinds, namespaces }
    }

    /// Whether `error` about `subject` comes from something the set creates.
    pub fn explains(&self, subject: &ObjectRef, error: &Error) -> bool {
        match error {
            Error::UnknownKind(_) => self
                .kinds
                .iter()
                .any(|(g, k)| *g == subject.group && *k == subject.kind),
            Error::Api {
                source: kube::Error::Api(status),
                ..
            } => {
                status.code == 404
                    && status
                        .details
                        .as_ref()
                        .is_some_and(|d| d.kind == "namespaces")
                    && subject
                        .namespace
                        .as_ref()
                        .is_some_and(|ns| self.namespaces.contains(ns))
            }
            _ => false,
        }
    }
}

/// Dry-runs the apply of each object, sixteen at a time; results come in the objects' order. A
/// custom resource whose CRD is in the same set (and not served yet) is reported as created
/// without asking the API, which cannot check it before the CRD exists.
pub async fn dry_run(
    client: &kube::Client,
    objects: &[Value],
    options: &DryRunOptions,
) -> Result<Vec<DryRunResult>> {
    let resolver = Resolver::new(client).await?;
    let pending = Pending::of(objects);
    let params = PatchParams::apply(&options.field_manager);
    let context = (client, &resolver, &pending, &params, options);
    let each: Vec<_> = objects.iter().map(|o| dry_run_one(context, o)).collect();
    stream::iter(each)
        .buffered(options.concurrency.max(1))
        .try_collect()
        .await
}

type DryRunContext<'a> = (
    &'a kube::Client,
    &'a Resolver,
    &'a Pending,
    &'a PatchParams,
    &'a DryRunOptions,
);

async fn dry_run_one(context: DryRunContext<'_>, object: &Value) -> Result<DryRunResult> {
    let (client, resolver, pending, params, options) = context;
    let named = subject(object, &options.default_namespace)?;
    let unvalidated = |subject: ObjectRef| -> Result<DryRunResult> {
        let name = subject.to_string();
        Ok(DryRunResult {
            diff: unified(Path::new(&name), "", &yaml(Some(object), &name)?, false),
            object: subject,
            action: ChangeAction::Created,
            conflicts: Vec::new(),
            synced_by: None,
        })
    };
    let (subject, api) = match resolver.target(client, object, &options.default_namespace) {
        Ok(found) => found,
        Err(error) if pending.explains(&named, &error) => return unvalidated(named),
        Err(error) => return Err(error),
    };
    let live = live(&api, &subject, &options.retry).await?;
    let preview = match preview(&api, &subject, object, live, params, &options.retry).await {
        Ok(preview) => preview,
        Err(error) if pending.explains(&subject, &error) => return unvalidated(subject),
        Err(error) => return Err(error),
    };
    let action = preview.action();
    let name = subject.to_string();
    let before = yaml(preview.live.as_ref(), &name)?;
    let after = yaml(Some(&preview.result), &name)?;
    let diff = unified(Path::new(&name), &before, &after, false);
    let synced_by = preview
        .live
        .as_ref()
        .map(ownership)
        .filter(|o| o.handling == Handling::HandOff)
        .and_then(|o| o.owner)
        .map(|owner| owner.describe());
    Ok(DryRunResult {
        object: subject,
        action,
        diff,
        conflicts: preview.conflicts,
        synced_by,
    })
}
