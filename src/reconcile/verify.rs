//! Applying a change and proving it: action records carried out, a server-side dry-run for the
//! "before" evidence, the staged apply, the wait for GitOps tools to sync what they own, and the
//! health wait. Every step lands in the audit log. I/O: through the `Cluster` trait.

use std::time::Duration;

use serde_json::{Value, json};

use super::changes::ObjectChange;
use super::{Context, Error, Result, Subject};
use crate::audit::{Event, Record};
use crate::cluster::imperative::is_record;
use crate::cluster::{ApplyOptions, Cluster, DryRunOptions, PruneOptions, WaitOutcome};
use crate::manifests::path::FieldPath;
use crate::model::{ChangeAction, ChangeSet, ObjectRef};

/// What applying and waiting found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Verified {
    /// The apply's change set.
    pub(crate) changes: ChangeSet,
    /// What action records did.
    pub(crate) executed: Vec<String>,
    /// Live diffs before applying (dry-run), by object.
    pub(crate) before: Vec<(String, String)>,
    /// Each object's health at the end.
    pub(crate) health: Vec<(ObjectRef, crate::model::Health)>,
    /// Handed-off objects that did not reach the merged values.
    pub(crate) unsynced: Vec<String>,
    /// Why it is not healthy; `None` when it is.
    pub(crate) failure: Option<String>,
}

impl Verified {
    /// Adds what one environment's apply found.
    fn add(&mut self, one: Verified) {
        self.changes.entries.extend(one.changes.entries);
        self.executed.extend(one.executed);
        self.before.extend(one.before);
        self.health.extend(one.health);
        self.unsynced.extend(one.unsynced);
        if self.failure.is_none() {
            self.failure = one.failure;
        }
    }
}

/// Carries out the action records the change adds (or, going back, undoes those it added).
async fn execute_records<C: Cluster, F>(
    ctx: &Context<'_, C, F>,
    cluster: &C,
    subject: &Subject,
    reverse: bool,
) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for change in &subject.changes {
        let (from, to) = if reverse {
            (&change.after, &change.before)
        } else {
            (&change.before, &change.after)
        };
        let (record, undo) = match (from, to) {
            (None, Some(record)) if is_record(record) => (record, false),
            (Some(record), None) if is_record(record) => (record, true),
            _ => continue,
        };
        let lines = cluster.execute(record, undo).await?;
        ctx.audit.append(&Record {
            detail: json!({"done": lines, "undo": if undo { Value::Null } else { record["spec"]["undo"].clone() }}),
            ..subject.record(Event::Executed, format!("{}: {}", change.object, lines.join("; ")))
        })?;
        done.extend(lines);
    }
    Ok(done)
}

/// Applies and verifies the subject's changes, each environment's in its own cluster, one
/// environment after the other in the configuration's order; the first that fails stops the
/// rest. An environment without a cluster is an error: the gate refuses such a change first.
pub(crate) async fn under_lock<C: Cluster, F>(
    ctx: &Context<'_, C, F>,
    subject: &Subject,
    reverse: bool,
) -> Result<Verified> {
    let mut order: Vec<Option<&str>> = ctx
        .config
        .environments
        .iter()
        .map(|e| Some(e.name.as_str()))
        .collect();
    order.push(None);
    let mut verified = Verified::default();
    for environment in order {
        let changes: Vec<ObjectChange> = subject
            .changes
            .iter()
            .filter(|c| c.environment.as_deref() == environment)
            .cloned()
            .collect();
        if changes.is_empty() {
            continue;
        }
        let cluster = ctx
            .clusters
            .get(environment)
            .ok_or_else(|| Error::NoCluster(environment.unwrap_or("(none)").to_owned()))?;
        let part = Subject {
            commit: subject.commit,
            trailers: subject.trailers.clone(),
            changes,
            renderer: subject.renderer.clone(),
            charts: vec![],
            trust: vec![],
            pull: subject.pull.clone(),
            environment: subject.environment.clone(),
        };
        let one = under_lock_on(ctx, cluster, &part, reverse).await?;
        let failed = one.failure.is_some();
        verified.add(one);
        if failed {
            break;
        }
    }
    Ok(verified)
}

/// Takes the locks of the subject's objects in `cluster` (waiting as the options say;
/// `LockHeld` when another holder keeps them), applies and verifies, and gives the locks back
/// whatever came of it.
async fn under_lock_on<C: Cluster, F>(
    ctx: &Context<'_, C, F>,
    cluster: &C,
    subject: &Subject,
    reverse: bool,
) -> Result<Verified> {
    let targets: Vec<ObjectRef> = subject.changes.iter().map(|c| c.object.clone()).collect();
    let held = cluster.lock(&targets, &ctx.options.lock).await?;
    let verified = apply_and_verify(ctx, cluster, subject, reverse).await;
    cluster.unlock(&held).await?;
    verified
}

/// Dry-runs and applies every change's new state (its old one when `reverse`; removals are
/// skipped), carries out action records, waits for handed-off objects to sync and for
/// everything to be healthy.
async fn apply_and_verify<C: Cluster, F>(
    ctx: &Context<'_, C, F>,
    cluster: &C,
    subject: &Subject,
    reverse: bool,
) -> Result<Verified> {
    let state = |c: &ObjectChange| {
        let value = if reverse { &c.before } else { &c.after };
        value.clone().filter(|v| !is_record(v))
    };
    let executed = execute_records(ctx, cluster, subject, reverse).await?;
    let field_manager = ctx.config.field_manager.clone();
    let objects: Vec<Value> = subject.changes.iter().filter_map(state).collect();
    let dry = cluster
        .dry_run(
            &objects,
            &DryRunOptions {
                field_manager: field_manager.clone(),
                ..DryRunOptions::default()
            },
        )
        .await;
    let before = match dry {
        Ok(results) => results
            .into_iter()
            .map(|r| (r.object.to_string(), r.diff))
            .collect(),
        Err(error) => vec![("dry-run".to_owned(), error.to_string())],
    };
    let options = ApplyOptions {
        field_manager,
        ..ApplyOptions::default()
    };
    let (mut changes, mut stopped) = match cluster.apply(&objects, &options).await {
        Ok(changes) => (changes, None),
        Err(stopped) => (stopped.changes.clone(), Some(stopped.to_string())),
    };
    // What the merge removes from Git goes from the cluster too, when remediator applied it
    // and no GitOps tool of the repository does: after everything else is applied, as Flux
    // collects its garbage.
    let forward = !reverse && stopped.is_none();
    let removed: Vec<ObjectRef> = subject
        .changes
        .iter()
        .filter(|c| forward && c.after.is_none() && c.applier.is_none())
        .filter(|c| c.before.as_ref().is_some_and(|v| !is_record(v)))
        .map(|c| c.object.clone())
        .collect();
    if !removed.is_empty() {
        let options = PruneOptions {
            field_manager: options.field_manager.clone(),
        };
        match cluster.prune(&removed, &options).await {
            Ok(pruned) => changes.entries.extend(pruned.entries),
            Err(error) => {
                changes.entries.extend(error.changes.entries.clone());
                stopped = Some(error.to_string());
            }
        }
    }
    ctx.audit.append(&Record {
        detail: json!(changes),
        ..subject.record(Event::Applied, changes_line(&changes))
    })?;
    let mut verified = Verified {
        changes,
        executed,
        before,
        health: vec![],
        unsynced: vec![],
        failure: stopped,
    };
    if verified.failure.is_some() {
        return Ok(verified);
    }
    let unsynced = hand_off(ctx, cluster, subject, &verified.changes, &state).await?;
    if !unsynced.is_empty() {
        verified.failure = Some(format!(
            "{} did not reach the merged values within {}s",
            unsynced.join(", "),
            ctx.options.hand_off_timeout.as_secs()
        ));
        verified.unsynced = unsynced;
        return Ok(verified);
    }
    let targets: Vec<ObjectRef> = subject
        .changes
        .iter()
        .filter(|c| state(c).is_some())
        .map(|c| c.object.clone())
        .collect();
    let report = cluster.wait(&targets, &ctx.options.wait).await?;
    verified.health = report.health;
    verified.failure = match report.outcome {
        WaitOutcome::Healthy => None,
        WaitOutcome::Failed { object, message } => Some(format!("{object}: {message}")),
        WaitOutcome::TimedOut => Some(format!(
            "not healthy after {}s",
            ctx.options.wait.timeout.as_secs()
        )),
    };
    Ok(verified)
}

/// Waits for the objects the apply left to their GitOps tool (`skipped`) to reach the merged
/// values, and records it; returns those that did not in time.
async fn hand_off<C: Cluster, F>(
    ctx: &Context<'_, C, F>,
    cluster: &C,
    subject: &Subject,
    changes: &ChangeSet,
    state: &impl Fn(&ObjectChange) -> Option<Value>,
) -> Result<Vec<String>> {
    let handed: Vec<&ObjectChange> = subject
        .changes
        .iter()
        .filter(|c| {
            changes
                .entries
                .iter()
                .any(|e| e.action == ChangeAction::Skipped && same(&e.subject, &c.object))
        })
        .collect();
    if handed.is_empty() {
        return Ok(vec![]);
    }
    let unsynced = wait_for_values(cluster, &handed, state, ctx.options.hand_off_timeout).await?;
    let names: Vec<String> = handed.iter().map(|c| c.object.to_string()).collect();
    let message = if unsynced.is_empty() {
        format!("synced by their GitOps tool: {}", names.join(", "))
    } else {
        format!("not synced in time: {}", unsynced.join(", "))
    };
    ctx.audit
        .append(&subject.record(Event::HandedOff, message))?;
    Ok(unsynced)
}

fn same(a: &ObjectRef, b: &ObjectRef) -> bool {
    a.kind == b.kind && a.name == b.name && a.namespace == b.namespace
}

fn changes_line(changes: &ChangeSet) -> String {
    changes
        .entries
        .iter()
        .map(|e| format!("{} {}", e.subject, e.action))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Polls the handed-off objects until every field the change sets has its merged value live;
/// returns the objects that did not get there in time.
async fn wait_for_values<C: Cluster>(
    cluster: &C,
    changes: &[&ObjectChange],
    state: &impl Fn(&ObjectChange) -> Option<Value>,
    timeout: Duration,
) -> Result<Vec<String>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut unsynced = Vec::new();
        for change in changes {
            let Some(wanted) = state(change) else {
                continue;
            };
            let live = cluster.get(&change.object).await?;
            let mut synced = live.is_some();
            for field in &change.fields {
                // A path that does not read back cannot say the value is live: an error.
                let path = field
                    .path
                    .parse::<FieldPath>()
                    .map_err(|source| Error::FieldPath {
                        object: change.object.to_string(),
                        source,
                    })?;
                synced &= live
                    .as_ref()
                    .is_some_and(|l| path.get(l) == path.get(&wanted));
            }
            if !synced {
                unsynced.push(change.object.to_string());
            }
        }
        if unsynced.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(unsynced);
        }
        tokio::time::sleep(Duration::from_millis(500).min(timeout)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::KubeCluster;
    use crate::model::FieldChange;

    fn change(path: &str) -> ObjectChange {
        let after = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "default"}, "data": {"x": "1"}});
        ObjectChange {
            object: ObjectRef::new("v1", "ConfigMap", Some("default"), "c"),
            unit: ".".into(),
            placement: "c.yaml".into(),
            declared: ("c.yaml".into(), 1),
            environment: None,
            before: None,
            after: Some(after),
            fields: vec![FieldChange {
                file: "c.yaml".into(),
                path: path.to_owned(),
                old: None,
                new: Some(json!("1")),
                ratio: None,
            }],
            applier: None,
            unrendered: None,
        }
    }

    #[tokio::test]
    async fn a_field_path_that_does_not_read_back_is_an_error_not_synced() {
        let cluster = testkit::TestCluster::start();
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "default"}, "data": {"x": "1"}});
        cluster.create(live, "argocd-controller").unwrap();
        let kube = KubeCluster::new(cluster.client());
        let state = |c: &ObjectChange| c.after.clone();
        let timeout = Duration::from_millis(100);
        let synced = change("data.x");
        let left = wait_for_values(&kube, &[&synced], &state, timeout)
            .await
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
        let unreadable = change("data[x");
        let error = wait_for_values(&kube, &[&unreadable], &state, timeout)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::FieldPath { object, .. } if object == "ConfigMap/default/c"),
            "{error}"
        );
    }
}
