//! Rollback as a revert commit: the merge is reverted on top of the base branch, with `Reverts:`
//! and `Remediation-Id:` trailers, then either pushed and its state applied and verified, or
//! proposed as a pull request when the base branch is protected. Both pull requests and both
//! commits are linked in the comments and the audit log.

use serde_json::json;

use super::{Context, Outcome, Report, Result, Subject, comment, outcome, set_status, under_lock};
use crate::audit::{Event, Record};
use crate::changes::short;
use crate::cluster::Cluster;
use crate::config::RollbackMode;
use crate::forge::{Forge, PullRequestSpec, StatusState};
use crate::git::{ConfigRepo, trailer, trailers};

/// Rolls back a merged commit on request (`remediator rollback --commit`).
pub async fn rollback<C: Cluster, F: Forge>(
    ctx: &Context<'_, C, F>,
    commit: git2::Oid,
) -> Result<Report> {
    let merged = super::merged_pull(ctx, commit).await?;
    let subject = Subject::load(ctx, commit, None, merged).await?;
    let outcome = undo(ctx, &subject, "rollback requested").await?;
    Ok(Report {
        commit: commit.to_string(),
        pull: subject.pull.as_ref().map(|p| p.summary.number),
        objects: subject.objects(),
        not_rendered: subject.not_rendered(),
        outcome,
    })
}

fn revert_message(repo: &ConfigRepo, subject: &Subject, reason: &str) -> Result<String> {
    let original = repo.message(subject.commit)?;
    // The pull request's title, as GitHub's revert button does; else the commit's.
    let title = match &subject.pull {
        Some(pull) => pull.summary.title.clone(),
        None => original.lines().next().unwrap_or_default().to_owned(),
    };
    let mut message = format!(
        "Revert \"{title}\"\n\nremediator rolled back {}: {reason}\n\nReverts: {}\n",
        short(subject.commit),
        subject.commit
    );
    // The chain's id: the remediation's, else the commit's own, as `history` keys a change
    // that is not a remediation.
    let chain = trailer(&subject.trailers, "Remediation-Id")
        .map_or_else(|| subject.commit.to_string(), str::to_owned);
    message.push_str(&format!("Remediation-Id: {chain}\n"));
    if let Some(pull) = &subject.pull {
        message.push_str(&format!("Reverts-Pull-Request: #{}\n", pull.summary.number));
    }
    Ok(message)
}

/// Writes the revert on top of the remote base branch and pushes it there, or to a branch of
/// its own when `direct` is false; one more try on a fresh base when the push is refused
/// because the base moved.
fn write_revert(
    ctx: &Context<'_, impl Cluster, impl Forge>,
    subject: &Subject,
    message: &str,
    direct: bool,
) -> Result<(git2::Oid, String)> {
    let (remote, base) = (&ctx.config.git.remote, &ctx.options.base_branch);
    let branch = format!("remediator/revert-{}", short(subject.commit));
    let mut tries = 0;
    loop {
        tries += 1;
        let onto = ctx.repo.fetch_branch(remote, base, &ctx.options.auth)?;
        // A run that died after pushing its revert left it on the base branch: it is the
        // revert, and none is written twice.
        if direct && let Some(pushed) = ctx.repo.revert_of(onto, subject.commit)? {
            return Ok((pushed, branch));
        }
        let revert = ctx.repo.revert(
            subject.commit,
            onto,
            &branch,
            &ctx.config.git.author,
            message,
        )?;
        crate::failpoint::hit("after-revert-commit");
        // The base branch only moves forward; the revert branch is ours to overwrite.
        let refspec = if direct {
            format!("refs/heads/{branch}:refs/heads/{base}")
        } else {
            format!("+refs/heads/{branch}:refs/heads/{branch}")
        };
        match ctx.repo.push(remote, &[refspec], &ctx.options.auth) {
            Ok(()) => {
                crate::failpoint::hit("after-revert-pushed");
                return Ok((revert, branch));
            }
            Err(crate::git::Error::Rejected { .. }) if tries < 2 => continue,
            Err(error) => return Err(error.into()),
        }
    }
}

/// Undoes a failed (or unwanted) merge; see the module documentation.
pub(super) async fn undo<C: Cluster, F: Forge>(
    ctx: &Context<'_, C, F>,
    subject: &Subject,
    reason: &str,
) -> Result<Outcome> {
    let message = revert_message(ctx.repo, subject, reason)?;
    let direct = ctx.config.reconcile.rollback != RollbackMode::PullRequest;
    let (revert, branch) = write_revert(ctx, subject, &message, direct)?;
    let left: Vec<String> = subject
        .changes
        .iter()
        .filter(|c| c.before.is_none())
        .map(|c| c.object.to_string())
        .collect();
    if !direct {
        let mut pull = None;
        if let Some(forge) = ctx.forge {
            let spec = PullRequestSpec {
                head: branch.clone(),
                base: ctx.options.base_branch.clone(),
                title: message.lines().next().unwrap_or_default().to_owned(),
                body: message.clone(),
                labels: vec!["remediator".into(), "rollback".into()],
            };
            pull = Some(forge.open_or_update(&spec).await?.0.number);
        }
        super::record::finished(ctx, subject.commit, Event::RolledBack).await?;
        ctx.audit.append(&Record {
            detail: json!({"revert": revert.to_string(), "pull": pull}),
            ..subject.record(
                Event::RolledBack,
                format!("revert {} proposed on {branch}", short(revert)),
            )
        })?;
        comment(
            ctx,
            subject,
            "rollback",
            &outcome::rolled_back(
                ctx.templates,
                subject,
                &outcome::Rollback {
                    revert: short(revert),
                    pull,
                    verified: None,
                    left: &left,
                },
            ),
        )
        .await?;
        set_status(
            ctx,
            subject.commit,
            StatusState::Failure,
            &format!("rollback proposed in {branch}"),
        )
        .await?;
        return Ok(Outcome::RolledBack {
            reason: reason.to_owned(),
            revert: revert.to_string(),
            healthy: None,
            pull,
        });
    }
    let reverted = Subject {
        commit: revert,
        trailers: trailers(&message),
        changes: subject.changes.clone(),
        renderer: subject.renderer.clone(),
        charts: vec![],
        trust: vec![],
        pull: subject.pull.clone(),
        environment: subject.environment.clone(),
        cluster: None,
    };
    let verified = under_lock(ctx, &reverted, true).await?;
    crate::failpoint::hit("after-revert-applied");
    let healthy = verified.failure.is_none();
    let detail = json!({"revert": revert.to_string(), "reverts": subject.commit.to_string(), "healthy": healthy, "leftInCluster": left});
    let summary = format!(
        "reverted by {}; the reverted state is {}",
        short(revert),
        if healthy { "healthy" } else { "not healthy" }
    );
    comment(
        ctx,
        subject,
        "rollback",
        &outcome::rolled_back(
            ctx.templates,
            subject,
            &outcome::Rollback {
                revert: short(revert),
                pull: None,
                verified: Some(&verified),
                left: &left,
            },
        ),
    )
    .await?;
    set_status(
        ctx,
        subject.commit,
        StatusState::Failure,
        &format!("not healthy; rolled back by {}", short(revert)),
    )
    .await?;
    let state = if healthy {
        StatusState::Success
    } else {
        StatusState::Failure
    };
    set_status(
        ctx,
        revert,
        state,
        if healthy {
            "rollback applied and healthy"
        } else {
            "rollback applied, not healthy"
        },
    )
    .await?;
    // The revert's record, unless a run that died before the merge's record wrote it.
    let revert_sha = revert.to_string();
    let recorded = ctx.audit.read_trusted()?.iter().any(|r| {
        r.event == Event::RolledBack
            && r.commit.as_deref() == Some(revert_sha.as_str())
            && r.covers(ctx.options.environment.as_deref())
    });
    // The cluster runs the revert: the branch goes on from it.
    super::record::finished(ctx, revert, Event::RolledBack).await?;
    if !recorded {
        // The revert's own record says what it reverts, never that it was reverted.
        let own = format!(
            "reverts {}; the reverted state is {}",
            short(subject.commit),
            if healthy { "healthy" } else { "not healthy" }
        );
        ctx.audit.append(&Record {
            detail: detail.clone(),
            ..reverted.record(Event::RolledBack, own)
        })?;
    }
    ctx.audit.append(&Record {
        detail,
        ..subject.record(Event::RolledBack, summary)
    })?;
    Ok(Outcome::RolledBack {
        reason: reason.to_owned(),
        revert: revert.to_string(),
        healthy: Some(healthy),
        pull: None,
    })
}
