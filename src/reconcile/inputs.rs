//! What the gate reads of a commit besides the change itself: the pull request it came from,
//! the members of the teams the policies may ask for, the files it changes that the gate itself
//! reads, and whether every environment it reaches has a cluster. I/O: the repository and the
//! forge, through the context.

use std::collections::BTreeMap;

use git2::Oid;

use super::{Context, Error, Result, Subject};
use crate::changes::short;
use crate::forge::{Forge, MergedPull};
use crate::gate::TeamMembers;

/// Why the subject cannot be applied for want of a cluster: each environment it changes that
/// has none, named.
pub(super) fn unrouted<C, F>(ctx: &Context<'_, C, F>, subject: &Subject) -> Vec<String> {
    let mut missing: Vec<&str> = subject
        .changes
        .iter()
        .filter(|c| ctx.clusters.get(c.environment.as_deref()).is_none())
        .map(|c| {
            c.environment
                .as_deref()
                .unwrap_or("(outside every environment)")
        })
        .collect();
    missing.sort_unstable();
    missing.dedup();
    missing
        .into_iter()
        .map(|environment| {
            format!(
                "the change reaches environment {environment}, which has no cluster: name its context in remediator.yaml (environments[].context), or reconcile it alone with --env and --context"
            )
        })
        .collect()
}

/// The files the gate reads (configuration, policies) that `commit` changes since `since` (its
/// first parent when `None`).
pub(crate) fn trust_files<C, F>(
    ctx: &Context<'_, C, F>,
    since: Option<Oid>,
    commit: Oid,
) -> Result<Vec<String>> {
    let since = match since {
        Some(since) => since,
        None => *ctx
            .repo
            .parents(commit)?
            .first()
            .ok_or_else(|| Error::NoParent(short(commit)))?,
    };
    Ok(ctx
        .repo
        .changed_files(since, commit)?
        .into_iter()
        .filter(|file| ctx.options.trusted.iter().any(|t| file.starts_with(t)))
        .map(|file| file.to_string_lossy().replace('\\', "/"))
        .collect())
}

/// The pull request `commit` comes from, as the forge says; `None` without a forge.
pub(crate) async fn merged_pull<C, F: Forge>(
    ctx: &Context<'_, C, F>,
    commit: Oid,
) -> Result<Option<MergedPull>> {
    match ctx.forge {
        Some(forge) => Ok(forge
            .pull_for_commit(&commit.to_string(), &ctx.options.base_branch)
            .await?),
        None => Ok(None),
    }
}

/// Every team of `approvals.teams` with its members: logins as listed, and the members of each
/// GitHub team (`@org/slug`) among them as the forge says at this moment. A GitHub team that
/// cannot be read leaves its team unresolved, with the reason, never empty.
pub(super) async fn team_members<C, F: Forge>(
    ctx: &Context<'_, C, F>,
) -> BTreeMap<String, TeamMembers> {
    let mut teams = BTreeMap::new();
    for (team, entries) in &ctx.config.teams {
        let mut members = Vec::new();
        let mut unresolved = None;
        for entry in entries {
            let Some(github_team) = entry.strip_prefix('@') else {
                members.push(entry.clone());
                continue;
            };
            match ctx.forge {
                None => {
                    unresolved = Some(format!("{entry} is a GitHub team, and no forge was given"))
                }
                Some(forge) => match forge.team_members(github_team).await {
                    Ok(logins) => members.extend(logins),
                    Err(error) => unresolved = Some(format!("{entry}: {error}")),
                },
            }
        }
        let resolved = match unresolved {
            Some(why) => TeamMembers::Unresolved(why),
            None => TeamMembers::Known(members),
        };
        teams.insert(team.clone(), resolved);
    }
    teams
}
