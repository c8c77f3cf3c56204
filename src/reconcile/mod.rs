//! The merge path: a merged commit → what it changes → the approval gate → lock → dry-run →
//! apply (or hand off to Argo CD / Flux and wait for their sync) → health → outcome on the pull
//! request, the commit status and the audit log; and, when health fails or on request, a revert
//! commit on the base branch whose state is applied and verified in turn ([`rollback`]).
//! Re-running for a commit already verified or rolled back does nothing; re-running after a
//! crash applies only what is not applied yet (server-side apply writes nothing that matches).
//! Wires the `git`, `forge`, `cluster`, `assess` and `audit` edges together.

pub mod changes;
pub mod gate;
mod outcome;
mod revert;

use std::time::Duration;

use git2::Oid;
use serde::Serialize;
use serde_json::{Value, json};

use crate::assess::Policies;
use crate::audit::{AuditLog, Event, Record};
use crate::cluster::imperative::is_record;
use crate::cluster::{ApplyOptions, Cluster, DryRunOptions, LockOptions, WaitOptions, WaitOutcome};
use crate::config::{Config, RollbackMode};
use crate::forge::{CommitStatus, Forge, PullInfo, StatusState};
use crate::git::{Auth, ConfigRepo, trailer, trailers};
use crate::manifests::path::FieldPath;
use crate::model::{ChangeAction, ChangeSet, ObjectRef};
use changes::{ObjectChange, short};
pub use revert::rollback;

/// What can stop the merge path (refusals and unhealthy changes are outcomes, not errors).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The change could not be worked out.
    #[error(transparent)]
    Changes(#[from] changes::Error),
    /// Git failed.
    #[error(transparent)]
    Git(#[from] crate::git::Error),
    /// The forge failed.
    #[error(transparent)]
    Forge(#[from] crate::forge::Error),
    /// The cluster failed.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::Error),
    /// The policies failed.
    #[error(transparent)]
    Assess(#[from] crate::assess::Error),
    /// The audit log failed: nothing further is done without a record.
    #[error(transparent)]
    Audit(#[from] crate::audit::Error),
    /// The commit has no parent to compare with.
    #[error("{0}: the first commit has nothing to compare with")]
    NoParent(String),
}

/// Result of the merge path.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to reconcile.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// Only objects applied in this environment.
    pub environment: Option<String>,
    /// The branch pull requests merge into, and reverts are pushed to.
    pub base_branch: String,
    /// Credentials of the Git remote.
    pub auth: Auth,
    /// Health wait after applying.
    pub wait: WaitOptions,
    /// Locks.
    pub lock: LockOptions,
    /// How long Argo CD or Flux get to sync a handed-off object.
    pub hand_off_timeout: Duration,
    /// The commit status's context.
    pub status_context: String,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        ReconcileOptions {
            environment: None,
            base_branch: "main".to_owned(),
            auth: Auth::default(),
            wait: WaitOptions::default(),
            lock: LockOptions::default(),
            hand_off_timeout: Duration::from_secs(300),
            status_context: "remediator/reconcile".to_owned(),
        }
    }
}

/// The edges the merge path works through.
pub struct Context<'a, C, F> {
    /// The config repository.
    pub repo: &'a ConfigRepo,
    /// Its configuration.
    pub config: &'a Config,
    /// The cluster.
    pub cluster: &'a C,
    /// The forge; `None` when there is none (no approvals can be read, so only changes needing
    /// none pass the gate).
    pub forge: Option<&'a F>,
    /// The audit log.
    pub audit: &'a AuditLog,
    /// Options.
    pub options: ReconcileOptions,
}

/// How a reconcile ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// An earlier run finished this commit.
    AlreadyDone {
        /// What that run recorded last.
        event: Event,
    },
    /// No Kubernetes object changes.
    NoChanges,
    /// The gate refused, or another remediation holds a lock: nothing was applied.
    Refused {
        /// Why.
        reasons: Vec<String>,
    },
    /// Applied (or synced by a GitOps tool) and healthy.
    Healthy {
        /// What was applied.
        changes: ChangeSet,
    },
    /// Not healthy; what the rollback did.
    RolledBack {
        /// Why the change failed.
        reason: String,
        /// The revert commit.
        revert: String,
        /// Whether the reverted state is healthy (`None` when left to a pull request).
        healthy: Option<bool>,
        /// The rollback pull request, when the base branch takes none directly.
        pull: Option<u64>,
    },
    /// Not healthy, and rollback is off.
    Failed {
        /// Why.
        reason: String,
    },
}

/// What a reconcile did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The commit.
    pub commit: String,
    /// The pull request that merged it.
    pub pull: Option<u64>,
    /// The objects it changes.
    pub objects: Vec<String>,
    /// How it ended.
    pub outcome: Outcome,
}

/// What a reconcile knows of the commit, shared by every step.
pub(crate) struct Subject {
    pub(crate) commit: Oid,
    pub(crate) trailers: Vec<(String, String)>,
    pub(crate) changes: Vec<ObjectChange>,
    pub(crate) pull: Option<PullInfo>,
}

impl Subject {
    pub(crate) fn objects(&self) -> Vec<String> {
        self.changes.iter().map(|c| c.object.to_string()).collect()
    }

    pub(crate) fn record(&self, event: Event, message: impl Into<String>) -> Record {
        Record {
            remediation: trailer(&self.trailers, "Remediation-Id").map(str::to_owned),
            commit: Some(self.commit.to_string()),
            pull: self.pull.as_ref().map(|p| p.summary.number),
            objects: self.objects(),
            ..Record::new(event, message)
        }
    }
}

impl Subject {
    /// What `commit` changes (in the options' environment), its trailers, and the pull request
    /// that merged it.
    async fn load<C, F: Forge>(ctx: &Context<'_, C, F>, commit: Oid) -> Result<Subject> {
        let parents = ctx.repo.parents(commit)?;
        let parent = *parents
            .first()
            .ok_or_else(|| Error::NoParent(short(commit)))?;
        let changes = changes::between(
            ctx.repo,
            ctx.config,
            parent,
            commit,
            ctx.options.environment.as_deref(),
        )?;
        let mut subject = Subject {
            commit,
            trailers: commit_trailers(ctx.repo, commit, &parents)?,
            changes,
            pull: None,
        };
        if let Some(forge) = ctx.forge
            && let Some(number) = forge.pull_for_commit(&commit.to_string()).await?
        {
            subject.pull = Some(forge.pull(number).await?);
        }
        Ok(subject)
    }
}

/// The trailers of a commit, or of the branch it merged when the merge commit has none of ours.
fn commit_trailers(
    repo: &ConfigRepo,
    commit: Oid,
    parents: &[Oid],
) -> Result<Vec<(String, String)>> {
    let own = trailers(&repo.message(commit)?);
    if trailer(&own, "Remediation-Id").is_some() || trailer(&own, "Reverts").is_some() {
        return Ok(own);
    }
    match parents.get(1) {
        Some(merged) => Ok(trailers(&repo.message(*merged)?)),
        None => Ok(own),
    }
}

/// Reconciles a merged commit; see the module documentation.
pub async fn reconcile<C: Cluster, F: Forge>(
    ctx: &Context<'_, C, F>,
    policies: &mut Policies,
    commit: Oid,
) -> Result<Report> {
    let sha = commit.to_string();
    let done = ctx
        .audit
        .read()?
        .into_iter()
        .filter(|r| r.commit.as_deref() == Some(sha.as_str()))
        .rfind(|r| matches!(r.event, Event::Verified | Event::RolledBack));
    let subject = Subject::load(ctx, commit).await?;
    let report = |subject: &Subject, outcome| Report {
        commit: sha.clone(),
        pull: subject.pull.as_ref().map(|p| p.summary.number),
        objects: subject.objects(),
        outcome,
    };
    if let Some(record) = done {
        return Ok(report(
            &subject,
            Outcome::AlreadyDone {
                event: record.event,
            },
        ));
    }
    if subject.changes.is_empty() {
        ctx.audit
            .append(&subject.record(Event::Verified, "no Kubernetes object changes"))?;
        set_status(
            ctx,
            commit,
            StatusState::Success,
            "no Kubernetes object changes",
        )
        .await?;
        return Ok(report(&subject, Outcome::NoChanges));
    }
    let assessment = gate::assess(policies, &subject.changes, &subject.trailers, ctx.config)?;
    ctx.audit.append(&Record {
        detail: serde_json::to_value(&assessment).unwrap_or_default(),
        ..subject.record(
            Event::Policy,
            format!(
                "{} risk, {} approvals required",
                assessment.risk, assessment.approvals.count
            ),
        )
    })?;
    let decision = gate::decide(assessment, subject.pull.as_ref(), &ctx.config.teams);
    ctx.audit.append(&Record {
        detail: json!({"approvers": decision.approvers, "required": decision.assessment.approvals}),
        ..subject.record(
            Event::Approval,
            format!("approved by {}", list_or_none(&decision.approvers)),
        )
    })?;
    if !decision.allowed() {
        refuse(ctx, &subject, &decision.refusals).await?;
        return Ok(report(
            &subject,
            Outcome::Refused {
                reasons: decision.refusals,
            },
        ));
    }
    set_status(
        ctx,
        commit,
        StatusState::Pending,
        "applying the merged change",
    )
    .await?;
    let targets: Vec<ObjectRef> = subject.changes.iter().map(|c| c.object.clone()).collect();
    let held = match ctx.cluster.lock(&targets, &ctx.options.lock).await {
        Ok(held) => held,
        Err(error @ crate::cluster::Error::LockHeld { .. }) => {
            let reasons = vec![error.to_string()];
            refuse(ctx, &subject, &reasons).await?;
            return Ok(report(&subject, Outcome::Refused { reasons }));
        }
        Err(error) => return Err(error.into()),
    };
    let applied = apply_and_verify(ctx, &subject, false).await;
    ctx.cluster.unlock(&held).await?;
    let verified = applied?;
    let outcome = match verified.failure.clone() {
        None => {
            // The record that ends the commit comes last, so a crash before it is finished by
            // the next run.
            comment(
                ctx,
                &subject,
                "reconcile",
                &outcome::healthy(&subject, &verified),
            )
            .await?;
            set_status(ctx, commit, StatusState::Success, "applied and healthy").await?;
            ctx.audit.append(&Record {
                detail: outcome::health_detail(&verified),
                ..subject.record(Event::Verified, "healthy")
            })?;
            Outcome::Healthy {
                changes: verified.changes,
            }
        }
        Some(reason) => {
            ctx.audit.append(&Record {
                detail: outcome::health_detail(&verified),
                ..subject.record(Event::Failed, reason.clone())
            })?;
            comment(
                ctx,
                &subject,
                "reconcile",
                &outcome::unhealthy(&subject, &verified, &reason),
            )
            .await?;
            match ctx.config.reconcile.rollback {
                RollbackMode::Off => {
                    set_status(
                        ctx,
                        commit,
                        StatusState::Failure,
                        "not healthy; rollback is off",
                    )
                    .await?;
                    Outcome::Failed { reason }
                }
                _ => revert::undo(ctx, &subject, &reason).await?,
            }
        }
    };
    Ok(report(&subject, outcome))
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "nobody".to_owned()
    } else {
        items.join(", ")
    }
}

async fn refuse<C: Cluster, F: Forge>(
    ctx: &Context<'_, C, F>,
    subject: &Subject,
    reasons: &[String],
) -> Result<()> {
    ctx.audit.append(&Record {
        detail: json!({ "reasons": reasons }),
        ..subject.record(Event::Refused, reasons.join("; "))
    })?;
    comment(
        ctx,
        subject,
        "reconcile",
        &outcome::refused(subject, reasons),
    )
    .await?;
    set_status(
        ctx,
        subject.commit,
        StatusState::Failure,
        &format!("refused: {}", reasons.join("; ")),
    )
    .await
}

async fn set_status<C, F: Forge>(
    ctx: &Context<'_, C, F>,
    commit: Oid,
    state: StatusState,
    description: &str,
) -> Result<()> {
    if let Some(forge) = ctx.forge {
        let status = CommitStatus {
            state,
            context: ctx.options.status_context.clone(),
            description: description.to_owned(),
        };
        forge.set_status(&commit.to_string(), &status).await?;
    }
    Ok(())
}

async fn comment<C, F: Forge>(
    ctx: &Context<'_, C, F>,
    subject: &Subject,
    marker: &str,
    body: &str,
) -> Result<()> {
    if let (Some(forge), Some(pull)) = (ctx.forge, &subject.pull) {
        forge
            .upsert_comment(
                pull.summary.number,
                &format!("{marker}-{}", short(subject.commit)),
                body,
            )
            .await?;
    }
    Ok(())
}

/// What applying and waiting found.
#[derive(Debug, Clone)]
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

/// Carries out the action records the change adds (or, going back, undoes those it added).
async fn execute_records<C: Cluster, F>(
    ctx: &Context<'_, C, F>,
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
        let lines = ctx.cluster.execute(record, undo).await?;
        ctx.audit.append(&Record {
            detail: json!({"done": lines, "undo": if undo { Value::Null } else { record["spec"]["undo"].clone() }}),
            ..subject.record(Event::Executed, format!("{}: {}", change.object, lines.join("; ")))
        })?;
        done.extend(lines);
    }
    Ok(done)
}

/// Dry-runs and applies every change's new state (its old one when `reverse`; removals are
/// skipped), carries out action records, waits for handed-off objects to sync and for
/// everything to be healthy.
pub(crate) async fn apply_and_verify<C: Cluster, F>(
    ctx: &Context<'_, C, F>,
    subject: &Subject,
    reverse: bool,
) -> Result<Verified> {
    let state = |c: &ObjectChange| {
        let value = if reverse { &c.before } else { &c.after };
        value.clone().filter(|v| !is_record(v))
    };
    let executed = execute_records(ctx, subject, reverse).await?;
    let field_manager = ctx.config.field_manager.clone();
    let objects: Vec<Value> = subject.changes.iter().filter_map(state).collect();
    let dry = ctx
        .cluster
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
    let (changes, stopped) = match ctx.cluster.apply(&objects, &options).await {
        Ok(changes) => (changes, None),
        Err(stopped) => (stopped.changes.clone(), Some(stopped.to_string())),
    };
    ctx.audit.append(&Record {
        detail: serde_json::to_value(&changes).unwrap_or_default(),
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
    let handed: Vec<&ObjectChange> = subject
        .changes
        .iter()
        .filter(|c| {
            verified
                .changes
                .entries
                .iter()
                .any(|e| e.action == ChangeAction::Skipped && same(&e.subject, &c.object))
        })
        .collect();
    if !handed.is_empty() {
        verified.unsynced =
            wait_for_values(ctx.cluster, &handed, &state, ctx.options.hand_off_timeout).await?;
        let names: Vec<String> = handed.iter().map(|c| c.object.to_string()).collect();
        let message = if verified.unsynced.is_empty() {
            format!("synced by their GitOps tool: {}", names.join(", "))
        } else {
            format!("not synced in time: {}", verified.unsynced.join(", "))
        };
        ctx.audit
            .append(&subject.record(Event::HandedOff, message))?;
        if !verified.unsynced.is_empty() {
            verified.failure = Some(format!(
                "{} did not reach the merged values within {}s",
                verified.unsynced.join(", "),
                ctx.options.hand_off_timeout.as_secs()
            ));
            return Ok(verified);
        }
    }
    let targets: Vec<ObjectRef> = subject
        .changes
        .iter()
        .filter(|c| state(c).is_some())
        .map(|c| c.object.clone())
        .collect();
    let report = ctx.cluster.wait(&targets, &ctx.options.wait).await?;
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
            let synced = live.is_some_and(|live| {
                change.fields.iter().all(|f| {
                    let Ok(path) = f.path.parse::<FieldPath>() else {
                        return true;
                    };
                    path.get(&live) == path.get(&wanted)
                })
            });
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
