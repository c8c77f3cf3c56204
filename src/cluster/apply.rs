//! Staged server-side apply, after fluxcd/pkg `ssa.ApplyAllStaged`: definitions first (CRDs,
//! Namespaces, cluster roles), then a wait until the CRDs are established, then the class kinds
//! (a CRD-backed `*Class` needs its CRD established), then everything else, then admission
//! webhooks and policies, so that none of them can block the objects of the same change. Within a stage, objects are applied `concurrency` at a time. An
//! object whose dry-run shows no change is not written; one a GitOps tool manages is left to it.
//! Every call is retried on throttling, server errors and lost connections. When an object fails,
//! no new object is started, and the objects already done come back with the error.
//! I/O: the Kubernetes API, and a progress bar on stderr when asked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use indicatif::{ProgressBar, ProgressStyle};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::Value;

use super::conflicts::{self, Resolved, manager_name, remove_field};
use super::dryrun::{FieldConflict, Pending, live, preview};
use super::ownership::{Handling, ownership};
use super::prefetch::{Prefetched, prefetch};
use super::retry::{RetryPolicy, with_retry};
use super::{Error, Resolver, subject};
use crate::config::{ConflictMode, ConflictPolicy};
use crate::model::{ChangeAction, ChangeSet, Contested, ObjectRef};

/// A step of a staged apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// What other objects need to exist first: CRDs, Namespaces, cluster roles.
    Definitions,
    /// Class kinds (`StorageClass`, `IngressClass`, a CRD's `GatewayClass`): after the CRDs are
    /// established, before the objects that name them.
    Classes,
    /// Everything else.
    Objects,
    /// Admission webhooks and policies, which could refuse the objects before them.
    Admission,
}

/// The apply order: each listed kind's stage and rank within it. Kinds not listed are applied in
/// [`Stage::Objects`] after the listed ones; a kind named `*Class` is a class.
pub const APPLY_ORDER: &[(&str, Stage)] = &[
    ("CustomResourceDefinition", Stage::Definitions),
    ("Namespace", Stage::Definitions),
    ("ClusterRole", Stage::Definitions),
    ("ClusterRoleBinding", Stage::Definitions),
    ("ResourceQuota", Stage::Objects),
    ("LimitRange", Stage::Objects),
    ("ServiceAccount", Stage::Objects),
    ("Role", Stage::Objects),
    ("RoleBinding", Stage::Objects),
    ("ConfigMap", Stage::Objects),
    ("Secret", Stage::Objects),
    ("PersistentVolume", Stage::Objects),
    ("PersistentVolumeClaim", Stage::Objects),
    ("Service", Stage::Objects),
    ("Deployment", Stage::Objects),
    ("StatefulSet", Stage::Objects),
    ("DaemonSet", Stage::Objects),
    ("Job", Stage::Objects),
    ("CronJob", Stage::Objects),
    ("HorizontalPodAutoscaler", Stage::Objects),
    ("PodDisruptionBudget", Stage::Objects),
    ("Ingress", Stage::Objects),
    ("MutatingWebhookConfiguration", Stage::Admission),
    ("ValidatingWebhookConfiguration", Stage::Admission),
    ("MutatingAdmissionPolicy", Stage::Admission),
    ("MutatingAdmissionPolicyBinding", Stage::Admission),
    ("ValidatingAdmissionPolicy", Stage::Admission),
    ("ValidatingAdmissionPolicyBinding", Stage::Admission),
];

/// The stage and rank of a kind.
pub fn order(kind: &str) -> (Stage, usize) {
    match APPLY_ORDER.iter().position(|(k, _)| *k == kind) {
        Some(rank) => (APPLY_ORDER[rank].1, rank),
        None if kind.ends_with("Class") => (Stage::Classes, APPLY_ORDER.len()),
        None => (Stage::Objects, APPLY_ORDER.len()),
    }
}

/// Options of an apply.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// The field manager that owns what we apply.
    pub field_manager: String,
    /// What to do with fields other managers own.
    pub conflicts: ConflictPolicy,
    /// Objects written at once within a stage.
    pub concurrency: usize,
    /// Retries of failed calls.
    pub retry: RetryPolicy,
    /// How long a new CRD may take to be established.
    pub established_timeout: Duration,
    /// Namespace for namespaced objects that name none.
    pub default_namespace: String,
    /// Ask the API what would change, and store nothing.
    pub dry_run: bool,
    /// Leave objects that Argo CD or Flux manage to them (reported as skipped).
    pub hand_off: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            field_manager: "remediator".into(),
            conflicts: ConflictPolicy::default(),
            concurrency: 16,
            retry: RetryPolicy::default(),
            established_timeout: Duration::from_secs(60),
            default_namespace: "default".into(),
            dry_run: false,
            hand_off: true,
            progress: false,
        }
    }
}

/// An apply that stopped on an error, with what it did before.
#[derive(Debug, thiserror::Error)]
#[error("{error} (stopped after {} of {total} objects)", changes.entries.len())]
pub struct Stopped {
    /// Every object done, and the one that failed.
    pub changes: ChangeSet,
    /// How many objects were asked for.
    pub total: usize,
    /// Why it stopped.
    #[source]
    pub error: Error,
}

/// Applies `objects` in stages; see the module documentation.
pub async fn apply(
    client: &kube::Client,
    objects: &[Value],
    options: &ApplyOptions,
) -> Result<ChangeSet, Stopped> {
    let mut changes = ChangeSet::default();
    let total = objects.len();
    let stopped = |changes: ChangeSet, error: Error| Stopped {
        changes,
        total,
        error,
    };
    let mut staged: Vec<(Stage, usize, usize)> = objects
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let (stage, rank) = order(o["kind"].as_str().unwrap_or_default());
            (stage, rank, i)
        })
        .collect();
    staged.sort();
    let bar = progress_bar(total, options.progress);
    let pending = Pending::of(objects);
    let mut resolver = match Resolver::new(client).await {
        Ok(resolver) => resolver,
        Err(error) => return Err(stopped(changes, error)),
    };
    for stage in [
        Stage::Definitions,
        Stage::Classes,
        Stage::Objects,
        Stage::Admission,
    ] {
        let members: Vec<&Value> = staged
            .iter()
            .filter(|(s, ..)| *s == stage)
            .map(|(.., i)| &objects[*i])
            .collect();
        if members.is_empty() {
            continue;
        }
        bar.set_message(format!("{stage:?}").to_lowercase());
        let context = Context {
            client,
            resolver: &resolver,
            pending: &pending,
            options,
        };
        if let Err(error) = apply_stage(&context, &members, &mut changes, &bar).await {
            bar.abandon();
            return Err(stopped(changes, error));
        }
        if !options.dry_run {
            crate::failpoint::hit(&format!(
                "after-stage-{}",
                format!("{stage:?}").to_lowercase()
            ));
        }
        let crds: Vec<&ObjectRef> = changes
            .entries
            .iter()
            .filter(|e| e.subject.kind == "CustomResourceDefinition")
            .map(|e| &e.subject)
            .collect();
        if stage == Stage::Definitions && !crds.is_empty() && !options.dry_run {
            let waited = established(client, &resolver, &crds, options).await;
            let rediscovered = match waited {
                Ok(()) => Resolver::new(client).await,
                Err(error) => Err(error),
            };
            match rediscovered {
                Ok(fresh) => resolver = fresh,
                Err(error) => return Err(stopped(changes, error)),
            }
        }
    }
    bar.finish_and_clear();
    Ok(changes)
}

fn progress_bar(total: usize, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// What every object of a stage needs.
struct Context<'a> {
    client: &'a kube::Client,
    resolver: &'a Resolver,
    pending: &'a Pending,
    options: &'a ApplyOptions,
}

/// Applies one stage; stops starting objects after the first failure, records every result.
async fn apply_stage(
    context: &Context<'_>,
    members: &[&Value],
    changes: &mut ChangeSet,
    bar: &ProgressBar,
) -> Result<(), Error> {
    let options = context.options;
    let prefetched = prefetch(
        context.client,
        context.resolver,
        members,
        &options.default_namespace,
        &options.retry,
    )
    .await?;
    let stop = AtomicBool::new(false);
    let each: Vec<_> = members
        .iter()
        .enumerate()
        .map(|(i, object)| guarded(context, &prefetched, &stop, bar, i, object))
        .collect();
    let mut results: Vec<(usize, Option<ApplyResult>)> = stream::iter(each)
        .buffer_unordered(context.options.concurrency.max(1))
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    let mut first_error = None;
    for (_, result) in results {
        match result {
            Some(Ok((subject, action, contested))) => {
                changes.push(subject, action);
                if let Some(entry) = changes.entries.last_mut() {
                    entry.contested = contested;
                }
            }
            Some(Err((subject, error))) => {
                if let Some(subject) = subject {
                    changes.push(subject, ChangeAction::Failed);
                }
                first_error.get_or_insert(error);
            }
            None => {}
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// One object, unless an earlier one failed.
async fn guarded(
    context: &Context<'_>,
    prefetched: &Prefetched,
    stop: &AtomicBool,
    bar: &ProgressBar,
    i: usize,
    object: &Value,
) -> (usize, Option<ApplyResult>) {
    if stop.load(Ordering::Relaxed) {
        return (i, None);
    }
    let result = apply_one(context, prefetched, object).await;
    if result.is_err() {
        stop.store(true, Ordering::Relaxed);
    }
    bar.inc(1);
    (i, Some(result))
}

type ApplyResult = Result<(ObjectRef, ChangeAction, Vec<Contested>), (Option<ObjectRef>, Error)>;

async fn apply_one(context: &Context<'_>, prefetched: &Prefetched, object: &Value) -> ApplyResult {
    let options = context.options;
    let named = subject(object, &options.default_namespace).ok();
    let failed = |error: Error| (named.clone(), error);
    let (subject, api) =
        match context
            .resolver
            .target(context.client, object, &options.default_namespace)
        {
            Ok(found) => found,
            Err(error) => {
                if let Some(named) = &named
                    && options.dry_run
                    && context.pending.explains(named, &error)
                {
                    return Ok((named.clone(), ChangeAction::Created, vec![]));
                }
                return Err(failed(error));
            }
        };
    let failed = |error: Error| (Some(subject.clone()), error);
    let live = match prefetched.get(&subject) {
        Some(live) => live.clone(),
        None => live(&api, &subject, &options.retry).await.map_err(failed)?,
    };
    if options.hand_off
        && let Some(live) = &live
        && ownership(live).handling == Handling::HandOff
    {
        return Ok((subject, ChangeAction::Skipped, vec![]));
    }
    let mut params = PatchParams::apply(&options.field_manager);
    let mut object = std::borrow::Cow::Borrowed(object);
    let mut contested = Vec::new();
    let action = if live.is_some() || options.dry_run {
        let mut preview = match preview(
            &api,
            &subject,
            object.as_ref(),
            live.clone(),
            &params,
            &options.retry,
        )
        .await
        {
            Ok(preview) => preview,
            Err(error) if options.dry_run && context.pending.explains(&subject, &error) => {
                return Ok((subject, ChangeAction::Created, vec![]));
            }
            Err(error) => return Err(failed(error)),
        };
        if !preview.conflicts.is_empty() {
            let resolved =
                resolve(&subject, &preview.conflicts, &options.conflicts).map_err(failed)?;
            params.force = resolved.iter().any(|r| r.mode == ConflictMode::Force);
            let skipped: Vec<&Resolved> = resolved
                .iter()
                .filter(|r| r.mode == ConflictMode::SkipField)
                .collect();
            if !skipped.is_empty() {
                let stripped = object.to_mut();
                for r in skipped {
                    remove_field(stripped, &r.conflict.field);
                }
                preview = preview_again(&api, &subject, object.as_ref(), live, &params, options)
                    .await
                    .map_err(failed)?;
            }
            contested = resolved
                .into_iter()
                .map(|r| Contested {
                    field: r.conflict.field,
                    manager: manager_name(&r.conflict.manager).to_owned(),
                    outcome: r.mode.describe().to_owned(),
                })
                .collect();
        }
        let action = preview.action();
        if action == ChangeAction::Unchanged || options.dry_run {
            return Ok((subject, action, contested));
        }
        action
    } else {
        ChangeAction::Created
    };
    write(&api, &subject, object.as_ref(), &params, &options.retry)
        .await
        .map_err(failed)?;
    Ok((subject, action, contested))
}

/// The preview of an object stripped of the fields left to their managers: another conflict
/// now (a manager that took a field since) is an error, not a field taken unseen.
async fn preview_again(
    api: &Api<DynamicObject>,
    subject: &ObjectRef,
    object: &Value,
    live: Option<Value>,
    params: &PatchParams,
    options: &ApplyOptions,
) -> Result<super::dryrun::Preview, Error> {
    let again = preview(api, subject, object, live, params, &options.retry).await?;
    if again.conflicts.is_empty() {
        return Ok(again);
    }
    resolve(
        subject,
        &again.conflicts,
        &ConflictPolicy::all(ConflictMode::Refuse),
    )?;
    Ok(again)
}

/// Each conflict with the mode the policy gives it; any refused one is an error naming them.
fn resolve(
    subject: &ObjectRef,
    conflicts: &[FieldConflict],
    policy: &ConflictPolicy,
) -> Result<Vec<Resolved>, Error> {
    let refused = conflicts::refused(policy, conflicts);
    if refused.is_empty() {
        Ok(conflicts
            .iter()
            .map(|conflict| Resolved {
                conflict: conflict.clone(),
                mode: conflicts::decide(policy, conflict),
            })
            .collect())
    } else {
        Err(Error::Conflict {
            object: subject.to_string(),
            fields: refused.join(", "),
        })
    }
}

async fn write(
    api: &Api<DynamicObject>,
    subject: &ObjectRef,
    object: &Value,
    params: &PatchParams,
    retry: &RetryPolicy,
) -> Result<(), Error> {
    with_retry(retry, || async {
        api.patch(&subject.name, params, &Patch::Apply(object))
            .await
    })
    .await
    .map(|_| ())
    .map_err(|source| Error::Api {
        object: subject.to_string(),
        verb: "apply",
        source,
    })
}

/// Waits until every CRD reports `Established`.
async fn established(
    client: &kube::Client,
    resolver: &Resolver,
    crds: &[&ObjectRef],
    options: &ApplyOptions,
) -> Result<(), Error> {
    let start = Instant::now();
    for crd in crds {
        let api = resolver.api_for(client, crd)?;
        loop {
            let found = live(&api, crd, &options.retry).await?;
            let is_established = found.as_ref().is_some_and(|o| {
                o.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            });
            if is_established {
                break;
            }
            if start.elapsed() >= options.established_timeout {
                return Err(Error::NotEstablished {
                    object: crd.to_string(),
                    timeout: options.established_timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_come_first_and_admission_last() {
        assert_eq!(order("CustomResourceDefinition").0, Stage::Definitions);
        assert_eq!(order("StorageClass").0, Stage::Classes);
        assert!(order("Namespace") < order("GatewayClass"));
        assert!(order("GatewayClass") < order("ConfigMap"));
        assert_eq!(order("Widget").0, Stage::Objects);
        assert_eq!(order("ValidatingWebhookConfiguration").0, Stage::Admission);
        assert!(order("Namespace") < order("ConfigMap"));
        assert!(order("ConfigMap") < order("Deployment"));
        assert!(order("Deployment") < order("Widget"));
    }
}
