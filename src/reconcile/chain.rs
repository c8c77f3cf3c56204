//! Every merged commit is weighed and applied, none skipped. A CI system may cancel the run of a
//! merge when a later one queues behind it, so a run reconciles every commit of the base
//! branch's first-parent chain since the last one that reached a final state (verified or
//! rolled back, as the audit trail says), oldest first, each through the gate on its own. A
//! commit that is refused, fails or is rolled back stops the chain: the later ones wait until it
//! is resolved, by approvals given after the fact (the next run weighs it again) or by a revert
//! on the branch (a reverted commit is left out). The earlier commits of a rebase merge are
//! weighed together with the commit that ends it, under its pull request. Each commit is judged
//! by the gate's inputs as the commit before it left them, so a run stops after a commit that
//! changes them, and the next is built from it.

use std::collections::HashSet;

use git2::Oid;

use super::{Context, Outcome, Report, Result, merged_pull, reconcile_one, trust_files};
use crate::assess::Policies;
use crate::audit::{AuditLog, Event, Record};
use crate::cluster::Cluster;
use crate::forge::Forge;
use crate::git::{ConfigRepo, trailer, trailers};

/// How far back a run looks for the last reconciled commit.
const LOOK_BACK: usize = 500;

/// What a run over part of the chain did.
#[derive(Debug)]
pub struct Stretch {
    /// One report per commit weighed, oldest first; then one per commit left waiting.
    pub reports: Vec<Report>,
    /// Whether it stopped after a commit that changed the gate's own inputs (configuration,
    /// policies) went through: the commits after it are to be weighed by those inputs as that
    /// commit left them, in a run built from it.
    pub inputs_changed: bool,
}

/// Reconciles `pending` (from [`pending`]), oldest first, with `ctx` and `policies` read from
/// the commit before the first of them. It stops at a commit that is refused, fails or is
/// rolled back (the later ones wait), and after a commit that changes the gate's own inputs:
/// nothing after it may be judged by the inputs from before it. With nothing pending, the
/// target's earlier outcome.
pub async fn reconcile_stretch<C: Cluster, F: Forge>(
    ctx: &Context<'_, C, F>,
    policies: &mut Policies,
    pending: &[Oid],
    target: Oid,
) -> Result<Stretch> {
    // The notes are checked against what the clusters record before anything is weighed.
    super::record::check_notes(ctx, target).await?;
    if pending.is_empty() {
        return Ok(Stretch {
            reports: vec![reconcile_one(ctx, policies, target, None, None).await?],
            inputs_changed: false,
        });
    }
    let mut reports = Vec::new();
    let mut since = None;
    for (i, &commit) in pending.iter().enumerate() {
        let merged = merged_pull(ctx, commit).await?;
        // An earlier commit of a rebase merge: weighed with the commit that ends it.
        if let Some(merged) = &merged
            && merged.merge_commit != commit.to_string()
            && pending[i + 1..]
                .iter()
                .any(|c| c.to_string() == merged.merge_commit)
        {
            if since.is_none() {
                since = ctx.repo.parents(commit)?.first().copied();
            }
            continue;
        }
        let from = since;
        let report = reconcile_one(ctx, policies, commit, since.take(), merged).await?;
        let stops = matches!(
            report.outcome,
            Outcome::Refused { .. } | Outcome::RolledBack { .. } | Outcome::Failed { .. }
        );
        reports.push(report);
        let later = &pending[i + 1..];
        if stops {
            // Nothing later is weighed, let alone applied, before this one is resolved.
            reports.extend(later.iter().map(|c| Report {
                commit: c.to_string(),
                pull: None,
                objects: vec![],
                not_rendered: vec![],
                outcome: Outcome::Waiting {
                    on: commit.to_string(),
                },
            }));
            break;
        }
        if !later.is_empty() && !trust_files(ctx, from, commit)?.is_empty() {
            return Ok(Stretch {
                reports,
                inputs_changed: true,
            });
        }
    }
    Ok(Stretch {
        reports,
        inputs_changed: false,
    })
}

/// The commits to reconcile for `target` in a run over `environment` (`None`: every
/// environment), oldest first: its first-parent ancestors back to the last one with a final
/// record, that one left out, and without the commits a later one of them reverts. With no
/// final record on the chain at all (the first run), from the oldest commit with any record
/// (one refused before), else `target` alone; with `target` itself final, none.
pub fn pending(
    repo: &ConfigRepo,
    audit: &AuditLog,
    environment: Option<&str>,
    target: Oid,
) -> Result<Vec<Oid>> {
    // A record not signed with the audit key settles nothing: a forged note cannot move the
    // chain past a commit.
    let records: Vec<Record> = audit
        .read_trusted()?
        .into_iter()
        .filter(|r| r.covers(environment))
        .collect();
    pending_in(repo, &records, target)
}

fn pending_in(repo: &ConfigRepo, records: &[Record], target: Oid) -> Result<Vec<Oid>> {
    let settled: HashSet<&str> = records
        .iter()
        .filter(|r| matches!(r.event, Event::Verified | Event::RolledBack))
        .filter_map(|r| r.commit.as_deref())
        .collect();
    let mut chain = Vec::new();
    let mut at = target;
    while !settled.contains(at.to_string().as_str()) {
        chain.push(at);
        match repo.parents(at)?.first() {
            Some(&parent) if chain.len() < LOOK_BACK => at = parent,
            _ => {
                let recorded: HashSet<&str> =
                    records.iter().filter_map(|r| r.commit.as_deref()).collect();
                let oldest = chain
                    .iter()
                    .rposition(|c| recorded.contains(c.to_string().as_str()));
                chain.truncate(oldest.map_or(1, |at| at + 1));
                break;
            }
        }
    }
    chain.reverse();
    let mut reverted = HashSet::new();
    for commit in &chain {
        reverted.extend(reverts(&repo.message(*commit)?));
    }
    chain.retain(|c| !reverted.contains(&c.to_string()));
    Ok(chain)
}

/// The commits a message says it reverts: remediator's `Reverts:` trailer, or the line
/// `git revert` writes ("This reverts commit <sha>.").
fn reverts(message: &str) -> Vec<String> {
    let mut found: Vec<String> = trailer(&trailers(message), "Reverts")
        .map(|sha| sha.trim().to_owned())
        .into_iter()
        .collect();
    for line in message.lines() {
        if let Some(rest) = line.trim().strip_prefix("This reverts commit ") {
            found.push(rest.trim_end_matches('.').trim().to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revert_names_the_commit_it_reverts_either_way() {
        let ours =
            "Revert \"x\"\n\nremediator rolled back abc\n\nReverts: 0123abcd\nRemediation-Id: r\n";
        assert_eq!(reverts(ours), ["0123abcd"]);
        let git = "Revert \"x\"\n\nThis reverts commit 89ab0123.\n";
        assert_eq!(reverts(git), ["89ab0123"]);
        assert!(reverts("web: image 2\n").is_empty());
    }
}
