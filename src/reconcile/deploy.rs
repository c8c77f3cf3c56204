//! Applying a change and proving it: action records carried out, a server-side dry-run for the
//! "before" evidence, the staged apply, the wait for GitOps tools to sync what they own, and the
//! health wait. Every step lands in the audit log. I/O: through the `Cluster` trait.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::{Context, Error, Result, Subject};
use crate::audit::{Event, Record};
use crate::changes::ObjectChange;
use crate::cluster::dryrun::DryRunResult;
use crate::cluster::imperative::is_record;
use crate::cluster::{ApplyOptions, Cluster, DryRunOptions, PruneOptions, WaitOutcome};
use crate::config::ConflictPolicy;
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
        let clusters = ctx.clusters.all(environment);
        if clusters.is_empty() {
            return Err(Error::NoCluster(environment.unwrap_or("(none)").to_owned()));
        }
        let part = subject.part(changes, None);
        // A cluster named under `clusters:` is named in the records too.
        let named = ctx
            .config
            .environments
            .iter()
            .any(|e| Some(e.name.as_str()) == environment && e.context.is_none());
        let one = match clusters {
            [(name, cluster)] => {
                let part = Subject {
                    cluster: named.then(|| name.clone()),
                    ..part
                };
                under_lock_on(ctx, cluster, &part, reverse).await?
            }
            several => {
                waves(
                    ctx,
                    environment.unwrap_or("(none)"),
                    several,
                    &part,
                    reverse,
                )
                .await?
            }
        };
        let failed = one.failure.is_some();
        verified.add(one);
        if failed {
            break;
        }
    }
    Ok(verified)
}

/// One environment's clusters in waves: its canary clusters (`promotion.canary`) one at a
/// time, a soak, their health checked again, then the others `promotion.maxParallel` at a time.
/// Each cluster that verifies is recorded, so a later run after a crash resumes with the next
/// one and never applies a verified cluster again. A failure stops the waves; a cluster that
/// cannot be worked (unreachable) halts them with a record naming it. Going back (a rollback),
/// every cluster the change reached is restored, and no other.
async fn waves<C: Cluster, F>(
    ctx: &Context<'_, C, F>,
    environment: &str,
    clusters: &[(String, C)],
    subject: &Subject,
    reverse: bool,
) -> Result<Verified> {
    let promotion = &ctx.config.promotion;
    let mut verified = Verified::default();
    if reverse {
        // Which clusters the change reached is read from the records of the commit the revert
        // names; a revert that names none cannot say, and restores nothing blindly.
        let original = super::trailer(&subject.trailers, "Reverts").ok_or_else(|| Error::Halted {
            cluster: environment.to_owned(),
            reason: format!(
                "revert {} names no commit it reverts (no Reverts: trailer), so the clusters to restore are unknown",
                crate::changes::short(subject.commit)
            ),
        })?;
        let reached = cluster_records(ctx, original, &[Event::Applied])?;
        for (name, cluster) in clusters.iter().filter(|(n, _)| reached.contains_key(n)) {
            let one = on_cluster(ctx, environment, name, cluster, subject, reverse).await?;
            verified.add(one);
        }
        return Ok(verified);
    }
    let sha = subject.commit.to_string();
    let finished = cluster_records(ctx, &sha, &[Event::ClusterVerified])?;
    let (canaries, rest) = clusters.split_at(promotion.canary.min(clusters.len()));
    for (name, cluster) in canaries {
        if finished.contains_key(name) {
            continue;
        }
        let one = on_cluster(ctx, environment, name, cluster, subject, reverse).await?;
        let failed = one.failure.is_some();
        verified.add(one);
        if failed {
            return Ok(verified);
        }
    }
    let waiting: Vec<&(String, C)> = rest
        .iter()
        .filter(|(n, _)| !finished.contains_key(n))
        .collect();
    if waiting.is_empty() {
        return Ok(verified);
    }
    if !canaries.is_empty() {
        // The soak runs from the last canary's verification, a resumed run waiting only for what
        // is left of it.
        let verified_at = cluster_records(ctx, &sha, &[Event::ClusterVerified])?;
        let last = canaries
            .iter()
            .filter_map(|(n, _)| verified_at.get(n))
            .max()
            .copied()
            .unwrap_or_else(Timestamp::now);
        let soaked = Timestamp::now().duration_since(last);
        let left = SignedDuration::try_from(promotion.soak)
            .unwrap_or(SignedDuration::MAX)
            .checked_sub(soaked)
            .unwrap_or_default();
        if left.is_positive() {
            tokio::time::sleep(left.unsigned_abs()).await;
        }
        for (name, cluster) in canaries {
            if let Some(failure) = still_healthy(ctx, cluster, subject).await? {
                let failure = format!(
                    "canary cluster {name} is not healthy after the {}s soak: {failure}",
                    promotion.soak.as_secs()
                );
                ctx.audit.append(&Record {
                    cluster: Some(name.clone()),
                    ..subject.record(Event::Failed, failure.clone())
                })?;
                verified.failure = Some(failure);
                return Ok(verified);
            }
        }
    }
    for wave in waiting.chunks(promotion.max_parallel.max(1)) {
        let runs = wave
            .iter()
            .map(|(name, cluster)| on_cluster(ctx, environment, name, cluster, subject, reverse));
        let mut failed = false;
        let mut halted = None;
        for one in futures::future::join_all(runs).await {
            match one {
                Ok(one) => {
                    failed |= one.failure.is_some();
                    verified.add(one);
                }
                Err(error) => {
                    halted.get_or_insert(error);
                }
            }
        }
        if let Some(error) = halted {
            return Err(error);
        }
        if failed {
            return Ok(verified);
        }
    }
    Ok(verified)
}

/// The clusters with a record of one of `events` for `commit`, and the time of the last.
fn cluster_records<C, F>(
    ctx: &Context<'_, C, F>,
    commit: &str,
    events: &[Event],
) -> Result<std::collections::BTreeMap<String, Timestamp>> {
    let mut found = std::collections::BTreeMap::new();
    for record in ctx.audit.read_trusted()? {
        if record.commit.as_deref() != Some(commit)
            || !events.contains(&record.event)
            || !record.covers(ctx.options.environment.as_deref())
        {
            continue;
        }
        if let (Some(cluster), Ok(time)) = (record.cluster, record.time.parse::<Timestamp>()) {
            found.insert(cluster, time);
        }
    }
    Ok(found)
}

/// Applies and verifies the subject in one cluster of several, its records naming the cluster;
/// records it verified, or that the wave halted there.
async fn on_cluster<C: Cluster, F>(
    ctx: &Context<'_, C, F>,
    environment: &str,
    name: &str,
    cluster: &C,
    subject: &Subject,
    reverse: bool,
) -> Result<Verified> {
    let part = subject.part(subject.changes.clone(), Some(name.to_owned()));
    match under_lock_on(ctx, cluster, &part, reverse).await {
        Ok(one) => {
            if one.failure.is_none() && !reverse {
                ctx.audit.append(&Record {
                    detail: super::outcome::health_detail(&one),
                    ..part.record(
                        Event::ClusterVerified,
                        format!("healthy in {environment}/{name}"),
                    )
                })?;
                crate::failpoint::hit("after-cluster-verified");
            }
            Ok(one)
        }
        Err(error) => {
            let reason = format!("halted at cluster {environment}/{name}: {error}");
            ctx.audit
                .append(&part.record(Event::Halted, reason.clone()))?;
            Err(Error::Halted {
                cluster: format!("{environment}/{name}"),
                reason: error.to_string(),
            })
        }
    }
}

/// Why the subject's objects are no longer healthy in `cluster`, after a soak; `None` when
/// they are.
async fn still_healthy<C: Cluster, F>(
    ctx: &Context<'_, C, F>,
    cluster: &C,
    subject: &Subject,
) -> Result<Option<String>> {
    let targets: Vec<ObjectRef> = subject
        .changes
        .iter()
        .filter(|c| c.after.as_ref().is_some_and(|v| !is_record(v)))
        .map(|c| c.object.clone())
        .collect();
    let options = crate::cluster::WaitOptions {
        timeout: ctx.options.wait.timeout.min(Duration::from_secs(30)),
        ..ctx.options.wait.clone()
    };
    let report = cluster.wait(&targets, &options).await?;
    Ok(failure_of(report.outcome, options.timeout))
}

/// Why a health wait did not end healthy; `None` when it did.
pub(crate) fn failure_of(outcome: WaitOutcome, timeout: Duration) -> Option<String> {
    match outcome {
        WaitOutcome::Healthy => None,
        WaitOutcome::Failed { object, message } => Some(format!("{object}: {message}")),
        WaitOutcome::TimedOut => Some(format!("not healthy after {}s", timeout.as_secs())),
    }
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
    ctx.options.guard.check()?;
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
    let field_manager = ctx.config.field_manager.clone();
    let conflicts = if reverse {
        ctx.config.reconcile.conflicts.for_rollback()
    } else {
        ctx.config.reconcile.conflicts
    };
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
    crate::failpoint::hit("after-dry-run");
    // A field the policy refuses to take stops the change before any of it, action records
    // included, reaches the cluster. When the dry-run itself failed (its error goes into the
    // report), the apply still refuses such a field object by object before it writes.
    let refused = match &dry {
        Ok(results) => refused_fields(results, &conflicts),
        Err(_) => vec![],
    };
    let before: Vec<(String, String)> = match dry {
        Ok(results) => results
            .into_iter()
            .map(|r| (r.object.to_string(), r.diff))
            .collect(),
        Err(error) => vec![("dry-run".to_owned(), error.to_string())],
    };
    if !refused.is_empty() {
        return Ok(Verified {
            changes: ChangeSet::default(),
            executed: vec![],
            before,
            health: vec![],
            unsynced: vec![],
            failure: Some(format!(
                "refused: {}; taking these fields would fight their controllers (reconcile.conflicts)",
                refused.join("; ")
            )),
        });
    }
    ctx.options.guard.check()?;
    let executed = execute_records(ctx, cluster, subject, reverse).await?;
    ctx.options.guard.check()?;
    let options = ApplyOptions {
        field_manager,
        conflicts,
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
    crate::failpoint::hit("after-health-wait");
    verified.health = report.health;
    verified.failure = failure_of(report.outcome, ctx.options.wait.timeout);
    Ok(verified)
}

/// The fields the dry-run found owned by other managers that `policy` refuses to take, each
/// with its object and manager.
fn refused_fields(results: &[DryRunResult], policy: &ConflictPolicy) -> Vec<String> {
    results
        .iter()
        .filter(|r| r.synced_by.is_none())
        .flat_map(|r| {
            crate::cluster::conflicts::refused(policy, &r.conflicts)
                .into_iter()
                .map(move |why| format!("{}: {why}", r.object))
        })
        .collect()
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
            skips: None,
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
