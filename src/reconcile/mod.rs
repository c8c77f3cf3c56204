//! The merge path: a merged commit → what it changes → the approval gate → lock → dry-run →
//! apply (or hand off to Argo CD / Flux and wait for their sync) → health → outcome on the pull
//! request, the commit status and the audit log; and, when health fails or on request, a revert
//! commit on the base branch whose state is applied and verified in turn ([`rollback`]).
//! Re-running for a commit already verified or rolled back does nothing; re-running after a
//! crash applies only what is not applied yet (server-side apply writes nothing that matches).
//! Wires the `git`, `forge`, `cluster`, `assess` and `audit` edges together.

mod chain;
mod deploy;
pub mod driver;
mod inputs;
mod outcome;
mod record;
mod revert;

use std::path::PathBuf;
use std::time::Duration;

use git2::Oid;
use serde::Serialize;
use serde_json::json;

use crate::assess::Policies;
use crate::audit::{AuditLog, Event, Record};
use crate::changes::{self, ObjectChange, short};
use crate::cluster::{Cluster, Clusters, LockOptions, WaitOptions};
use crate::config::{Config, RollbackMode};
use crate::forge::checks::{CheckRun, Conclusion};
use crate::forge::{Forge, MergedPull, PullInfo, StatusState};
use crate::gate;
use crate::git::{Auth, ConfigRepo, trailer};
use crate::manifests::display_dir;
use crate::model::ChangeSet;
use crate::render::Renderer;
use crate::views::Templates;
pub use chain::{Stretch, pending, reconcile_stretch};
pub(crate) use deploy::{Verified, failure_of, under_lock};
use inputs::{merged_pull, team_members, trust_files, unrouted};
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
    /// A changed field's path does not read back, so its value cannot be checked live.
    #[error("{object}: {source}")]
    FieldPath {
        /// The object.
        object: String,
        /// Why the path does not parse.
        #[source]
        source: crate::manifests::path::ParsePathError,
    },
    /// A change reaches an environment that has no cluster.
    #[error("environment {0} has no cluster: name its context under environments, or give --env")]
    NoCluster(String),
    /// A wave stopped at a cluster that could not be worked; a later run resumes there.
    #[error(
        "halted at cluster {cluster}: {reason}; nothing further was applied, and the next run resumes with this cluster"
    )]
    Halted {
        /// `environment/cluster`.
        cluster: String,
        /// Why.
        reason: String,
    },
    /// The commit has no parent to compare with.
    #[error("{0}: the first commit has nothing to compare with")]
    NoParent(String),
    /// The guard refused the next write (a service that cannot prove its leader lease).
    #[error("stopped before writing: {0}")]
    Guarded(String),
    /// The cluster's record of what it runs cannot be read, or the audit trail disagrees with
    /// it.
    #[error("{0}")]
    Trail(String),
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
    /// Files and directories (relative to the config repository) the gate itself reads: the
    /// configuration and the policies. A commit that changes one is weighed for it.
    pub trusted: Vec<PathBuf>,
    /// Asked before each write to a cluster: `serve` stops there when it cannot prove that it
    /// still leads.
    pub guard: Guard,
}

/// A check made before each write to a cluster; its refusal stops the run before the write.
#[derive(Clone, Default)]
pub struct Guard(Option<std::sync::Arc<dyn Fn() -> std::result::Result<(), String> + Send + Sync>>);

impl Guard {
    /// A guard that asks `check`.
    pub fn new(
        check: impl Fn() -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Guard(Some(std::sync::Arc::new(check)))
    }

    /// Whether the next write may go ahead.
    pub fn check(&self) -> Result<()> {
        match &self.0 {
            Some(check) => check().map_err(Error::Guarded),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Guard(set)"
        } else {
            "Guard(none)"
        })
    }
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
            trusted: vec![PathBuf::from(crate::manifests::CONFIG_FILE)],
            guard: Guard::default(),
        }
    }
}

/// The edges the merge path works through.
pub struct Context<'a, C, F> {
    /// The config repository.
    pub repo: &'a ConfigRepo,
    /// Its configuration.
    pub config: &'a Config,
    /// The clusters, by environment.
    pub clusters: &'a Clusters<C>,
    /// The forge; `None` when there is none (no approvals can be read, so only changes needing
    /// none pass the gate).
    pub forge: Option<&'a F>,
    /// The audit log.
    pub audit: &'a AuditLog,
    /// The templates of the pull request comments.
    pub templates: &'a Templates,
    /// Renders the builds, each set of inputs once per run.
    pub renderer: &'a Renderer,
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
    /// Not weighed: an earlier commit of the branch was refused, failed or rolled back, and
    /// must be resolved first.
    Waiting {
        /// That commit.
        on: String,
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
    /// Helm releases among them whose charts' objects were not rendered, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_rendered: Vec<String>,
    /// How it ended.
    pub outcome: Outcome,
}

/// What a reconcile knows of the commit, shared by every step.
pub(crate) struct Subject {
    pub(crate) commit: Oid,
    pub(crate) trailers: Vec<(String, String)>,
    pub(crate) changes: Vec<ObjectChange>,
    /// The program that rendered the builds.
    pub(crate) renderer: Option<String>,
    /// The Helm charts it changes, which are rendered by their releases.
    pub(crate) charts: Vec<crate::render::NotRendered>,
    /// The files it changes that the gate reads (configuration, policies).
    pub(crate) trust: Vec<String>,
    pub(crate) pull: Option<PullInfo>,
    /// The environment the run is limited to.
    pub(crate) environment: Option<String>,
    /// The one cluster of an environment with several that this part goes to.
    pub(crate) cluster: Option<String>,
}

impl Subject {
    /// The same commit with `changes` alone, going to `cluster` when given.
    pub(crate) fn part(&self, changes: Vec<ObjectChange>, cluster: Option<String>) -> Subject {
        Subject {
            commit: self.commit,
            trailers: self.trailers.clone(),
            changes,
            renderer: self.renderer.clone(),
            charts: vec![],
            trust: vec![],
            pull: self.pull.clone(),
            environment: self.environment.clone(),
            cluster,
        }
    }

    pub(crate) fn objects(&self) -> Vec<String> {
        self.changes.iter().map(|c| c.object.to_string()).collect()
    }

    /// The Helm releases it changes whose charts' objects are not rendered, with why.
    pub(crate) fn not_rendered(&self) -> Vec<String> {
        let charts = self
            .charts
            .iter()
            .map(|c| format!("{}: {}", display_dir(&c.build), c.reason));
        self.changes
            .iter()
            .filter_map(|c| Some(format!("{}: {}", c.object, c.unrendered.as_ref()?)))
            .chain(charts)
            .collect()
    }

    pub(crate) fn record(&self, event: Event, message: impl Into<String>) -> Record {
        Record {
            remediation: trailer(&self.trailers, "Remediation-Id").map(str::to_owned),
            commit: Some(self.commit.to_string()),
            pull: self.pull.as_ref().map(|p| p.summary.number),
            environment: self.environment.clone(),
            cluster: self.cluster.clone(),
            objects: self.objects(),
            renderer: self.renderer.clone(),
            ..Record::new(event, message)
        }
    }
}

impl Subject {
    /// What `commit` changes (in the options' environment) since `since` (its first parent
    /// when `None`), its trailers, and the pull request that merged it (`merged`, when the
    /// forge was asked).
    async fn load<C, F: Forge>(
        ctx: &Context<'_, C, F>,
        commit: Oid,
        since: Option<Oid>,
        merged: Option<MergedPull>,
    ) -> Result<Subject> {
        let parents = ctx.repo.parents(commit)?;
        let parent = match since {
            Some(since) => since,
            None => *parents
                .first()
                .ok_or_else(|| Error::NoParent(short(commit)))?,
        };
        let changes = changes::between(
            ctx.repo,
            ctx.config,
            ctx.renderer,
            parent,
            commit,
            ctx.options.environment.as_deref(),
        )?;
        // A build whose change cannot be rendered cannot be applied: the rest would be half
        // the change.
        if !changes.not_rendered.is_empty() {
            let problems = changes
                .not_rendered
                .iter()
                .map(|n| format!("{}: not rendered: {}", display_dir(&n.build), n.reason))
                .collect();
            return Err(changes::Error::Unreadable {
                commit: short(commit),
                problems,
            }
            .into());
        }
        let trust = trust_files(ctx, Some(parent), commit)?;
        let mut subject = Subject {
            commit,
            trailers: ctx.repo.merged_trailers(commit)?,
            changes: changes.objects,
            renderer: changes.renderer,
            charts: changes.charts,
            trust,
            pull: None,
            environment: ctx.options.environment.clone(),
            cluster: None,
        };
        // Only the pull request whose merge wrote this very commit judges it.
        if let (Some(forge), Some(merged)) = (ctx.forge, merged)
            && merged.merge_commit == commit.to_string()
        {
            subject.pull = Some(forge.pull(merged.number).await?);
            if trailer(&subject.trailers, "Remediation-Id").is_none()
                && let Some(chain) = promotion_chain(&ctx.audit.read_trusted()?, merged.number)
            {
                subject.trailers.push(("Remediation-Id".into(), chain));
            }
        }
        Ok(subject)
    }
}

/// The chain a merged pull request belongs to when its commits carry none: the remediation of
/// the promotion that opened it (a squash merge keeps only the pull request's title).
pub(crate) fn promotion_chain(records: &[Record], pull: u64) -> Option<String> {
    records
        .iter()
        .rfind(|r| r.event == Event::Promoted && r.pull == Some(pull))
        .and_then(|r| r.remediation.clone())
}

/// Reconciles one merged commit, its change taken since `since` (its first parent when `None`);
/// `merged` is the pull request it comes from, as the forge said. See the module
/// documentation; [`reconcile_stretch`] reconciles every commit not yet reconciled up to one.
pub(crate) async fn reconcile_one<C: Cluster, F: Forge>(
    ctx: &Context<'_, C, F>,
    policies: &mut Policies,
    commit: Oid,
    since: Option<Oid>,
    merged: Option<MergedPull>,
) -> Result<Report> {
    let sha = commit.to_string();
    let records: Vec<Record> = ctx
        .audit
        .read_trusted()?
        .into_iter()
        .filter(|r| r.commit.as_deref() == Some(sha.as_str()))
        .filter(|r| r.covers(ctx.options.environment.as_deref()))
        .collect();
    let done = records
        .iter()
        .rfind(|r| matches!(r.event, Event::Verified | Event::RolledBack))
        .cloned();
    // The record that finished the commit says all the report needs: neither tree is indexed
    // again, nor the forge asked.
    if let Some(record) = done {
        return Ok(Report {
            commit: sha,
            pull: record.pull,
            objects: record.objects,
            not_rendered: vec![],
            outcome: Outcome::AlreadyDone {
                event: record.event,
            },
        });
    }
    let subject = Subject::load(ctx, commit, since, merged).await?;
    let report = |subject: &Subject, outcome| Report {
        commit: sha.clone(),
        pull: subject.pull.as_ref().map(|p| p.summary.number),
        objects: subject.objects(),
        not_rendered: subject.not_rendered(),
        outcome,
    };
    // A run that failed the commit and pushed its revert, then died before recording the
    // rollback: the revert is finished, and the failed change is never applied again.
    let failed = records.iter().rfind(|r| r.event == Event::Failed);
    if let Some(failed) = failed
        && ctx.config.reconcile.rollback == RollbackMode::Push
    {
        let (remote, base) = (&ctx.config.git.remote, &ctx.options.base_branch);
        let tip = ctx.repo.fetch_branch(remote, base, &ctx.options.auth)?;
        if ctx.repo.revert_of(tip, commit)?.is_some() {
            let outcome = revert::undo(ctx, &subject, &failed.message).await?;
            return Ok(report(&subject, outcome));
        }
    }
    if subject.changes.is_empty() && subject.trust.is_empty() {
        record::finished(ctx, commit, Event::Verified).await?;
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
    // Each environment reaches only its own cluster; one without a cluster reaches none.
    let mut refusals = unrouted(ctx, &subject);
    if refusals.is_empty() {
        refusals = check(ctx, policies, &subject).await?;
    }
    if !refusals.is_empty() {
        refuse(ctx, &subject, &refusals).await?;
        return Ok(report(&subject, Outcome::Refused { reasons: refusals }));
    }
    if subject.changes.is_empty() {
        let message = "approved; the configuration it changes takes effect for later merges";
        record::finished(ctx, commit, Event::Verified).await?;
        ctx.audit
            .append(&subject.record(Event::Verified, message))?;
        set_status(ctx, commit, StatusState::Success, message).await?;
        return Ok(report(&subject, Outcome::NoChanges));
    }
    set_status(
        ctx,
        commit,
        StatusState::Pending,
        "applying the merged change",
    )
    .await?;
    let applied = match under_lock(ctx, &subject, false).await {
        Err(Error::Cluster(error @ crate::cluster::Error::LockHeld { .. })) => {
            let reasons = vec![error.to_string()];
            refuse(ctx, &subject, &reasons).await?;
            return Ok(report(&subject, Outcome::Refused { reasons }));
        }
        applied => applied,
    };
    let outcome = conclude(ctx, &subject, applied?).await?;
    Ok(report(&subject, outcome))
}

/// The gate: the policies on the change as merged, then the approvals; every step recorded.
/// Returns why the change may not be applied, nothing when it may.
async fn check<C, F: Forge>(
    ctx: &Context<'_, C, F>,
    policies: &mut Policies,
    subject: &Subject,
) -> Result<Vec<String>> {
    let assessment = gate::assess(
        policies,
        &subject.changes,
        &subject.trailers,
        &subject.trust,
        ctx.config,
    )?;
    ctx.audit.append(&Record {
        detail: json!(assessment),
        ..subject.record(
            Event::Policy,
            format!(
                "{} risk, {} approvals required",
                assessment.risk, assessment.approvals.count
            ),
        )
    })?;
    let teams = team_members(ctx).await;
    let mut decision = gate::decide(assessment, subject.pull.as_ref(), &teams);
    let required = &ctx.config.required_checks;
    let mut checks = Vec::new();
    if !required.is_empty() {
        // The checks of the head that merged: of the commit itself after a direct push.
        let head = subject
            .pull
            .as_ref()
            .map_or_else(|| subject.commit.to_string(), |p| p.head_sha.clone());
        match ctx.forge {
            Some(forge) => {
                checks = forge.checks(&head).await?;
                let unmet = crate::forge::checks::unmet(required, &checks);
                decision.refusals.extend(unmet);
            }
            None => decision.refusals.push(format!(
                "the checks {} are required, and without a forge they cannot be read",
                required.join(", ")
            )),
        }
    }
    // GitHub's own check that whoever pushed last did not approve, when the branch has it.
    if let (Some(forge), Some(_)) = (ctx.forge, &subject.pull) {
        let base = &ctx.options.base_branch;
        match forge.last_push_approval(base).await? {
            Some(true) => {}
            Some(false) => decision.notes.push(format!(
                "branch protection of {base} does not require approval of the most recent reviewable push: GitHub does not vouch that whoever pushed last did not approve"
            )),
            None => decision.notes.push(format!(
                "branch protection of {base} cannot be read with this token: whether GitHub requires approval of the most recent reviewable push is not known"
            )),
        }
    }
    let from = subject.pull.as_ref().map(|p| p.pushers_from);
    ctx.audit.append(&Record {
        detail: json!({"approvers": decision.approvers, "required": decision.assessment.approvals, "checks": checks,
            "pushers": subject.pull.as_ref().map(|p| &p.pushers), "pushersFrom": from, "notes": decision.notes}),
        ..subject.record(
            Event::Approval,
            format!(
                "approved by {}{}",
                list_or_none(&decision.approvers),
                match from {
                    Some(crate::forge::PushersFrom::Emails) =>
                        "; the last pusher taken from the head commit's e-mails",
                    Some(crate::forge::PushersFrom::Timeline) =>
                        "; the last pusher from GitHub's timeline",
                    None => "",
                }
            ),
        )
    })?;
    Ok(decision.refusals)
}

/// Reports a verified change, or rolls back one that is not healthy.
async fn conclude<C: Cluster, F: Forge>(
    ctx: &Context<'_, C, F>,
    subject: &Subject,
    verified: Verified,
) -> Result<Outcome> {
    let Some(reason) = verified.failure.clone() else {
        // The record that ends the commit comes last, so a crash before it is finished by the
        // next run.
        let body = outcome::healthy(ctx.templates, subject, &verified);
        comment(ctx, subject, "reconcile", &body).await?;
        set_status(
            ctx,
            subject.commit,
            StatusState::Success,
            "applied and healthy",
        )
        .await?;
        record::finished(ctx, subject.commit, Event::Verified).await?;
        ctx.audit.append(&Record {
            detail: outcome::health_detail(&verified),
            ..subject.record(Event::Verified, "healthy")
        })?;
        return Ok(Outcome::Healthy {
            changes: verified.changes,
        });
    };
    ctx.audit.append(&Record {
        detail: outcome::health_detail(&verified),
        ..subject.record(Event::Failed, reason.clone())
    })?;
    let body = outcome::unhealthy(ctx.templates, subject, &verified, &reason);
    comment(ctx, subject, "reconcile", &body).await?;
    if ctx.config.reconcile.rollback == RollbackMode::Off {
        let description = "not healthy; rollback is off";
        set_status(ctx, subject.commit, StatusState::Failure, description).await?;
        return Ok(Outcome::Failed { reason });
    }
    revert::undo(ctx, subject, &reason).await
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
        &outcome::refused(ctx.templates, subject, reasons),
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
        let conclusion = match state {
            StatusState::Pending => None,
            StatusState::Success => Some(Conclusion::Success),
            StatusState::Failure | StatusState::Error => Some(Conclusion::Failure),
        };
        let run = CheckRun {
            name: ctx.options.status_context.clone(),
            head_sha: commit.to_string(),
            conclusion,
            title: description.chars().take(140).collect(),
            summary: description.to_owned(),
            annotations: vec![],
        };
        forge.report_check(&run).await?;
        crate::failpoint::hit("after-status");
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
