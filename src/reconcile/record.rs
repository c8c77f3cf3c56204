//! The cluster's record of the last commit that finished there (see [`crate::cluster::trail`]):
//! written to every cluster a run reaches before the final audit record of each commit (a run
//! that stops in between leaves the cluster ahead, and the next run reconciles that commit
//! again), and read before a run to check the Git notes against it. A note that says more than
//! the cluster, or anything else than it, is an error naming both: the notes are writable by
//! anyone who can push, the cluster's record only by remediator's service account.

use std::collections::HashSet;

use git2::Oid;
use serde::{Deserialize, Serialize};

use super::{Context, Error, Result};
use crate::audit::{Event, SigningKey};
use crate::changes::short;
use crate::cluster::Cluster;

/// How far back along the branch the notes are compared with a cluster's record.
const LOOK_BACK: usize = 500;

/// One cluster's record of a scope.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Finished {
    /// The commit.
    commit: String,
    /// `verified` or `rolled-back`.
    outcome: String,
    /// When (RFC 3339).
    time: String,
    /// The cluster it was written to.
    cluster: String,
    /// `sha256=<hex>` of the record without it, with `audit.signingKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
}

impl Finished {
    fn unsigned_text(&self) -> Result<String> {
        let unsigned = Finished {
            signature: None,
            ..self.clone()
        };
        serde_json::to_string(&unsigned).map_err(|e| Error::Trail(e.to_string()))
    }
}

/// The scope of a run's records: its environment, or `all`.
fn scope<'c, C, F>(ctx: &'c Context<'_, C, F>) -> &'c str {
    ctx.options.environment.as_deref().unwrap_or("all")
}

/// Records in every cluster the run reaches that `commit` finished with `outcome` (`verified`,
/// `rolled-back`). A cluster that cannot be written (unreachable) is passed over, and said so:
/// it keeps an older record, which the check reads as behind. None written is an error.
pub(crate) async fn finished<C: Cluster, F>(
    ctx: &Context<'_, C, F>,
    commit: Oid,
    outcome: Event,
) -> Result<()> {
    let namespace = &ctx.config.reconcile.lock_namespace;
    let mut failed = Vec::new();
    let clusters = ctx.clusters.every();
    for (name, cluster) in &clusters {
        // Never backwards: a commit before the one the cluster records (a rollback asked for
        // an older merge, proposed as a pull request) leaves the record as it is. A record that
        // does not read is written over: only remediator writes there.
        match cluster.read_trail(namespace, scope(ctx)).await {
            Ok(Some(text)) => {
                let at = serde_json::from_str::<Finished>(&text)
                    .ok()
                    .and_then(|r| Oid::from_str(&r.commit).ok());
                if let Some(at) = at
                    && ctx.repo.descends(at, commit)?
                {
                    continue;
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(cluster = %name, %error, "the cluster's record of the last finished commit was not written");
                failed.push(error);
                continue;
            }
        }
        let mut record = Finished {
            commit: commit.to_string(),
            outcome: outcome.as_str().to_owned(),
            time: k8s_openapi::jiff::Timestamp::now().to_string(),
            cluster: name.clone(),
            signature: None,
        };
        if let Some(key) = ctx.audit.key() {
            record.signature = Some(key.sign(&record.unsigned_text()?));
        }
        let text = serde_json::to_string(&record).map_err(|e| Error::Trail(e.to_string()))?;
        ctx.options.guard.check()?;
        if let Err(error) = cluster.write_trail(namespace, scope(ctx), &text).await {
            tracing::warn!(cluster = %name, %error, "the cluster's record of the last finished commit was not written");
            failed.push(error);
        }
    }
    match failed.pop() {
        Some(error) if failed.len() + 1 == clusters.len() => Err(error.into()),
        _ => Ok(()),
    }
}

/// Checks the audit trail's notes against the record of every cluster the run reaches, before
/// `target` is reconciled: the last commit on `target`'s branch that a note says finished (any
/// note, signed or not) must be the one the cluster records, or come before it on the branch
/// (a run stopped between the two writes). A cluster without a record yet is left to the notes.
pub(crate) async fn check_notes<C: Cluster, F>(ctx: &Context<'_, C, F>, target: Oid) -> Result<()> {
    let environment = ctx.options.environment.as_deref();
    let records = ctx.audit.read()?;
    let finished: HashSet<&str> = records
        .iter()
        .filter(|r| matches!(r.event, Event::Verified | Event::RolledBack))
        .filter(|r| r.covers(environment))
        .filter_map(|r| r.commit.as_deref())
        .collect();
    // The branch from `target` back to the last commit a note says finished.
    let mut line = Vec::new();
    let mut at = Some(target);
    while let Some(commit) = at {
        line.push(commit);
        if finished.contains(commit.to_string().as_str()) || line.len() >= LOOK_BACK {
            break;
        }
        at = ctx.repo.parents(commit)?.first().copied();
    }
    let noted = line
        .last()
        .filter(|c| finished.contains(c.to_string().as_str()))
        .copied();
    let namespace = &ctx.config.reconcile.lock_namespace;
    // The newest record of the clusters: one that missed the last write (a run that stopped
    // between clusters) is behind it, never beside it.
    let mut newest: Option<(&str, Finished, Oid)> = None;
    let clusters = ctx.clusters.every();
    let mut unread = Vec::new();
    for (name, cluster) in &clusters {
        // A cluster that cannot be reached is left out, and said so; the wave halts there
        // when the change reaches it. None read is an error.
        let text = match cluster.read_trail(namespace, scope(ctx)).await {
            Ok(Some(text)) => text,
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(cluster = %name, %error, "the cluster's record of the last finished commit cannot be read");
                unread.push(error);
                continue;
            }
        };
        let record: Finished = serde_json::from_str(&text).map_err(|e| {
            Error::Trail(format!(
                "cluster {name}'s record (ConfigMap {namespace}/{}) cannot be read: {e}",
                crate::cluster::trail::NAME
            ))
        })?;
        check_signature(&record, name, ctx.audit.key())?;
        let recorded = Oid::from_str(&record.commit).map_err(|e| {
            Error::Trail(format!(
                "cluster {name}'s record names no commit ({:?}): {e}",
                record.commit
            ))
        })?;
        newest = match newest {
            Some((other, _, at))
                if at != recorded
                    && !ctx.repo.descends(recorded, at)?
                    && !ctx.repo.descends(at, recorded)? =>
            {
                return Err(Error::Trail(format!(
                    "clusters {other} and {name} record commits of different histories ({} and {}): nothing is reconciled until they agree",
                    short(at),
                    short(recorded)
                )));
            }
            Some((other, kept, at)) if at == recorded || ctx.repo.descends(at, recorded)? => {
                Some((other, kept, at))
            }
            _ => Some((name.as_str(), record, recorded)),
        };
    }
    if let Some(error) = unread.pop().filter(|_| unread.len() + 1 == clusters.len()) {
        return Err(error.into());
    }
    let Some((name, record, recorded)) = newest else {
        return Ok(());
    };
    // The cluster is as far as the notes, or further on the branch (its commits are
    // reconciled again); or `target` is behind what the cluster runs.
    let agrees =
        noted.is_some() && line.contains(&recorded) || ctx.repo.descends(recorded, target)?;
    if agrees {
        return Ok(());
    }
    Err(Error::Trail(format!(
        "the audit trail's notes disagree with cluster {name}'s record: {} as the last commit finished here ({}), the cluster records {} ({} at {}); a note that no run of remediator wrote, or a lost record. Nothing is reconciled until they agree",
        match noted {
            Some(n) => format!("the notes say {}", short(n)),
            None => "the notes name no commit".to_owned(),
        },
        scope(ctx),
        short(recorded),
        record.outcome,
        record.time
    )))
}

/// A cluster's record must be signed with the audit key when there is one.
fn check_signature(record: &Finished, cluster: &str, key: Option<&SigningKey>) -> Result<()> {
    let Some(key) = key else {
        return Ok(());
    };
    let signed = record
        .signature
        .as_deref()
        .is_some_and(|s| record.unsigned_text().is_ok_and(|t| key.verifies(&t, s)));
    if signed {
        Ok(())
    } else {
        Err(Error::Trail(format!(
            "cluster {cluster}'s record of {} is not signed with audit.signingKey",
            record.commit
        )))
    }
}
