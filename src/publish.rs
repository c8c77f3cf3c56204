//! Proposals to GitHub: the proposal branches are committed on top of the remote base branch as
//! the caller fetched it, pushed (every ref checked), and each gets one pull request, opened or
//! updated in place; a pull request whose finding is gone from the cluster is closed with a
//! comment saying so. Every step
//! is recorded in the audit log. `propose --forge github` and `serve` both publish through here.
//! I/O: Git and GitHub.

use crate::audit::{self, AuditLog, Event, Record};
use crate::config::Config;
use crate::forge::{self, Forge, GitHub, PullRequestSpec, Upserted, labels};
use crate::git::{self, Auth, ConfigRepo};
use crate::propose::{Plan, Published, is_branch_of, publish_local};

/// What can stop a publication; the branches and pull requests done before stay done.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The base branch could not be fetched, or the branches pushed.
    #[error(transparent)]
    Git(#[from] git::Error),
    /// GitHub failed.
    #[error(transparent)]
    Forge(#[from] forge::Error),
    /// The audit log could not be written.
    #[error(transparent)]
    Audit(#[from] audit::Error),
}

/// Where a plan is published.
pub struct Destination<'a> {
    /// The config repository's clone.
    pub repo: &'a ConfigRepo,
    /// Its configuration.
    pub config: &'a Config,
    /// GitHub.
    pub forge: &'a GitHub,
    /// The branch pull requests target.
    pub base_branch: &'a str,
    /// Its commit the plan was made against, fetched by the caller: the proposal branches are
    /// committed on top of it.
    pub base: git2::Oid,
    /// The audit log.
    pub audit: &'a AuditLog,
    /// Git credentials.
    pub auth: &'a Auth,
}

/// What happens to remediator's open pull requests whose finding this run did not see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clearing {
    /// The run read everything: they are closed as cleared.
    Close,
    /// The run did not read everything (a kind that could not be listed, usage that was partial,
    /// one environment of several): they stay open, each with one comment saying why.
    KeepOpen(String),
}

/// The marker of the comment that says why a pull request was kept open.
pub const KEPT_OPEN_MARKER: &str = "remediator:kept-open";

/// A pull request closed because its finding cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// Its number.
    pub number: u64,
    /// Its branch.
    pub branch: String,
}

/// Publishes the plan to GitHub: the Git part first (blocking), then the pull requests.
/// `clearing` says what happens to the pull requests of findings no longer seen: closed only
/// when the whole cluster was looked at, else kept open with a comment saying why.
pub async fn publish(
    target: &Destination<'_>,
    plan: &Plan,
    clearing: &Clearing,
) -> Result<(Vec<Published>, Vec<Closed>), Error> {
    let Destination {
        repo,
        config,
        forge,
        base_branch,
        base,
        audit,
        auth,
    } = *target;
    let remote = &config.git.remote;
    let mut published = publish_local(repo, base, &plan.proposals, &config.git.author);
    let refspecs: Vec<String> = published
        .iter()
        .filter(|p| p.outcome.is_ok())
        .map(|p| format!("+refs/heads/{0}:refs/heads/{0}", p.branch))
        .collect();
    if !refspecs.is_empty() {
        repo.push(remote, &refspecs, auth)?;
    }
    for (proposal, result) in plan.proposals.iter().zip(published.iter_mut()) {
        if result.outcome.is_err() {
            continue;
        }
        let spec = PullRequestSpec {
            head: proposal.branch.clone(),
            base: base_branch.to_owned(),
            title: proposal.title.clone(),
            body: proposal.body.clone(),
            labels: labels(
                &proposal.assessment.risk.to_string(),
                &proposal.remediation.finding.code.to_string(),
            ),
        };
        match forge.open_or_update(&spec).await {
            Ok((pull, upserted)) => {
                let verb = if upserted == Upserted::Opened {
                    "opened"
                } else {
                    "updated"
                };
                result.pull = Some(format!("#{} {verb}", pull.number));
                audit.append(&Record {
                    remediation: Some(proposal.remediation.id.clone()),
                    pull: Some(pull.number),
                    objects: vec![proposal.remediation.target.to_string()],
                    detail: serde_json::json!({
                        "branch": proposal.branch,
                        "risk": proposal.assessment.risk,
                        "approvals": proposal.assessment.approvals,
                        "finding": proposal.remediation.finding.code,
                        "firstSeen": proposal.remediation.finding.first_seen,
                        "opened": upserted == Upserted::Opened,
                        "action": proposal.remediation.action,
                        "cause": proposal.remediation.finding.fact("cause (from log)"),
                    }),
                    ..Record::new(
                        Event::Proposed,
                        format!("{}: pull request {verb}", proposal.title),
                    )
                })?;
            }
            Err(error) => result.outcome = Err(error.to_string()),
        }
    }
    let closed = match clearing {
        Clearing::Close => close_cleared_pulls(forge, plan, audit).await?,
        Clearing::KeepOpen(reason) => {
            keep_open(forge, plan, reason).await?;
            vec![]
        }
    };
    Ok((published, closed))
}

/// remediator's open pull requests of findings the plan does not see (revert pull requests
/// aside).
async fn unseen(forge: &GitHub, plan: &Plan) -> Result<Vec<crate::forge::PullSummary>, Error> {
    let still_seen = |branch: &str| {
        plan.proposals.iter().any(|p| p.branch == branch)
            || plan
                .diagnoses
                .iter()
                .chain(&plan.unmanaged)
                .chain(&plan.failures)
                .any(|r| is_branch_of(branch, &r.finding.code.to_string(), r.finding.target()))
    };
    Ok(forge
        .open_pulls("remediator")
        .await?
        .into_iter()
        .filter(|pull| {
            pull.head.starts_with("remediator/")
                && !pull.head.starts_with("remediator/revert-")
                && !still_seen(&pull.head)
        })
        .collect())
}

/// Says on each pull request whose finding this run did not see why it stays open: the run
/// did not read everything, so not seeing the finding is no sign that it cleared.
async fn keep_open(forge: &GitHub, plan: &Plan, reason: &str) -> Result<(), Error> {
    for pull in unseen(forge, plan).await? {
        let comment = format!(
            "This run did not see the finding behind `{}`, but it did not read everything, so this pull request stays open: {reason}. \
             remediator closes it once a run that reads everything no longer sees the finding.",
            pull.head
        );
        forge
            .upsert_comment(pull.number, KEPT_OPEN_MARKER, &comment)
            .await?;
    }
    Ok(())
}

/// Closes remediator's open pull requests whose finding the plan no longer sees.
pub async fn close_cleared_pulls(
    forge: &GitHub,
    plan: &Plan,
    audit: &AuditLog,
) -> Result<Vec<Closed>, Error> {
    let mut closed = Vec::new();
    for pull in unseen(forge, plan).await? {
        let comment = format!(
            "The finding behind `{}` is no longer seen in the cluster, so this pull request is closed. \
             If it comes back, remediator opens a new one.",
            pull.head
        );
        forge.close(pull.number, &comment).await?;
        audit.append(&Record {
            pull: Some(pull.number),
            detail: serde_json::json!({"branch": pull.head}),
            ..Record::new(
                Event::Closed,
                format!("#{}: the finding has cleared", pull.number),
            )
        })?;
        closed.push(Closed {
            number: pull.number,
            branch: pull.head,
        });
    }
    Ok(closed)
}
