//! Promotion pull requests: a change verified in one environment (`promotion.order`) and
//! healthy there for the soak is proposed for the next environment by a pull request of its
//! own, carrying the earlier environment's evidence (health per cluster when it was applied and
//! now, the soak window), the dry-run against the next environment's clusters, and the risk as
//! the policies weigh it there. Nothing is promoted while the earlier environment soaks, is
//! unhealthy or was rolled back. A change is carried field by field onto the next environment's
//! declaration when the field there holds what the earlier one held before the change (a
//! remediation's quantity is scaled by the same ratio); otherwise the pull request says what
//! to do instead. One branch per environment and object: a newer change supersedes an older open
//! promotion by updating it in place. I/O: Git, the forge and the clusters.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use git2::Oid;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::assess::Policies;
use crate::audit::{AuditLog, Event, Record};
use crate::changes::{self, ObjectChange, short};
use crate::cluster::{Cluster, Clusters, DryRunOptions, WaitOptions};
use crate::config::Config;
use crate::forge::{Forge, PullRequestSpec};
use crate::git::{Auth, ConfigRepo, trailer, trailers};
use crate::manifests::diff::{FileChange, patch};
use crate::manifests::edit::Edit;
use crate::manifests::path::FieldPath;
use crate::manifests::{IndexOptions, RepoIndex};
use crate::model::{ObjectRef, Snapshot};
use crate::remedy::Change;
use crate::render::Renderer;

/// What can stop a promotion run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Git failed.
    #[error(transparent)]
    Git(#[from] crate::git::Error),
    /// The change could not be worked out.
    #[error(transparent)]
    Changes(#[from] changes::Error),
    /// The audit log failed.
    #[error(transparent)]
    Audit(#[from] crate::audit::Error),
    /// The forge failed.
    #[error(transparent)]
    Forge(#[from] crate::forge::Error),
    /// The policies failed.
    #[error(transparent)]
    Assess(#[from] crate::assess::Error),
    /// The repository could not be indexed.
    #[error(transparent)]
    Index(#[from] crate::manifests::Error),
    /// A cluster failed.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::Error),
    /// A file could not be written.
    #[error("{0}")]
    Io(String),
    /// An audit record the decision rests on cannot be read.
    #[error("{0}")]
    Unreadable(String),
}

/// What the run did for one change and environment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Promotion {
    /// The commit verified in `from`.
    pub commit: String,
    /// The environment it was proven in.
    pub from: String,
    /// The environment it is proposed for.
    pub to: String,
    /// What came of it.
    pub outcome: Progress,
}

/// What came of one promotion.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Progress {
    /// The pull request was opened or updated.
    Proposed {
        /// Its number.
        pull: u64,
        /// Its branch.
        branch: String,
    },
    /// The earlier environment is still soaking.
    Soaking {
        /// Seconds left.
        seconds_left: u64,
    },
    /// The earlier environment is not healthy now.
    Unhealthy {
        /// Why.
        reason: String,
    },
    /// The next environment already has the change.
    AlreadyThere,
    /// A newer change to the same objects is promoted instead.
    Superseded {
        /// That change's commit.
        by: String,
    },
    /// The promotion's pull request merged; its merge is not reconciled in the next
    /// environment yet.
    WaitingForReconcile {
        /// The pull request.
        pull: u64,
    },
    /// The promotion merged and its merge was verified in the next environment.
    Promoted {
        /// The pull request.
        pull: u64,
    },
    /// The promotion merged and its merge was rolled back in the next environment.
    RolledBack {
        /// The pull request.
        pull: u64,
    },
    /// The promotion's pull request was closed without merging: it is not proposed again.
    Closed {
        /// The pull request.
        pull: u64,
    },
    /// The promotion branch holds a commit remediator did not make: it is left to people.
    LeftToPeople {
        /// The pull request, when there is a forge.
        pull: u64,
        /// The branch.
        branch: String,
    },
}

/// Where a promotion run works.
pub struct Promoter<'a, C, F> {
    /// The config repository.
    pub repo: &'a ConfigRepo,
    /// The configuration of the base branch's head.
    pub config: &'a Config,
    /// Renders the builds.
    pub renderer: &'a Renderer,
    /// The audit log.
    pub audit: &'a AuditLog,
    /// The clusters, by environment.
    pub clusters: &'a Clusters<C>,
    /// The forge; without one, branches are pushed and no pull request is opened.
    pub forge: Option<&'a F>,
    /// The policies of the base branch's head.
    pub policies: &'a mut Policies,
    /// Git credentials.
    pub auth: &'a Auth,
    /// The branch promotions target.
    pub base_branch: &'a str,
    /// Only promotions into this environment, when given.
    pub only: Option<&'a str>,
}

/// One promotion to weigh: a change proven in `from`, for `to`.
struct Step<'s> {
    from: &'s str,
    to: &'s str,
    changes: &'s [ObjectChange],
    /// The earlier changes of the same environment.
    earlier: &'s [&'s ObjectChange],
}

/// One verified commit and what it changed, by environment.
struct Proven {
    commit: Oid,
    verified_at: Timestamp,
    pull: Option<u64>,
    by_environment: BTreeMap<String, Vec<ObjectChange>>,
}

impl<C: Cluster, F: Forge> Promoter<'_, C, F> {
    /// Promotes every change that is due.
    pub async fn run(&mut self, now: Timestamp) -> Result<Vec<Promotion>, Error> {
        let order = &self.config.promotion.order;
        if let Some(only) = self.only
            && !order.iter().any(|e| e == only)
        {
            return Err(Error::Unreadable(format!(
                "`{only}` is not in promotion.order ({})",
                order.join(", ")
            )));
        }
        if order.len() < 2 {
            return Ok(vec![]);
        }
        let records = self.audit.read_trusted()?;
        let mut done = Vec::new();
        let all = self.proven(&records)?;
        for (at, proven) in all.iter().enumerate() {
            for (from, changes) in &proven.by_environment {
                let Some(to) = self.config.promotion.next(from) else {
                    continue;
                };
                if proven.by_environment.contains_key(to) || self.only.is_some_and(|o| o != to) {
                    continue;
                }
                let touches = |later: &Proven| {
                    later.by_environment.get(from).is_some_and(|l| {
                        l.iter()
                            .any(|c| changes.iter().any(|o| o.object == c.object))
                    })
                };
                // A newer change to the same objects supersedes this one: its promotion
                // carries both, on the same branch.
                if let Some(newer) = all[at + 1..].iter().find(|later| touches(later)) {
                    done.push(Promotion {
                        commit: proven.commit.to_string(),
                        from: from.clone(),
                        to: to.to_owned(),
                        outcome: Progress::Superseded {
                            by: newer.commit.to_string(),
                        },
                    });
                    continue;
                }
                // What the fields held before the earlier changes of the same objects: the
                // next environment may still hold it.
                let earlier: Vec<&ObjectChange> = all[..at]
                    .iter()
                    .filter_map(|p| p.by_environment.get(from))
                    .flatten()
                    .collect();
                let outcome = self
                    .one(
                        proven,
                        Step {
                            from,
                            to,
                            changes,
                            earlier: &earlier,
                        },
                        &records,
                        now,
                    )
                    .await?;
                done.push(Promotion {
                    commit: proven.commit.to_string(),
                    from: from.clone(),
                    to: to.to_owned(),
                    outcome,
                });
            }
        }
        Ok(done)
    }

    /// The commits applied and verified healthy, never rolled back, oldest first.
    fn proven(&self, records: &[Record]) -> Result<Vec<Proven>, Error> {
        let rolled_back: Vec<&str> = records
            .iter()
            .filter(|r| r.event == Event::RolledBack)
            .filter_map(|r| r.commit.as_deref())
            .collect();
        let mut seen = Vec::new();
        let mut proven = Vec::new();
        for record in records {
            let Some(sha) = record.commit.as_deref() else {
                continue;
            };
            if record.event != Event::Verified
                || record.message != "healthy"
                || rolled_back.contains(&sha)
                || seen.contains(&sha)
            {
                continue;
            }
            seen.push(sha);
            let commit = self.repo.resolve(sha)?;
            let Some(&parent) = self.repo.parents(commit)?.first() else {
                continue;
            };
            let found =
                changes::between(self.repo, self.config, self.renderer, parent, commit, None)?;
            let mut by_environment: BTreeMap<String, Vec<ObjectChange>> = BTreeMap::new();
            for change in found.objects {
                if let Some(env) = change.environment.clone() {
                    by_environment.entry(env).or_default().push(change);
                }
            }
            proven.push(Proven {
                commit,
                // An unreadable time would read as a soak long over: an error instead.
                verified_at: record.time.parse().map_err(|e| {
                    Error::Unreadable(format!(
                        "the verified record of {sha} has no readable time ({:?}: {e})",
                        record.time
                    ))
                })?,
                pull: record.pull,
                by_environment,
            });
        }
        Ok(proven)
    }

    async fn one(
        &mut self,
        proven: &Proven,
        step: Step<'_>,
        records: &[Record],
        now: Timestamp,
    ) -> Result<Progress, Error> {
        let Step {
            from,
            to,
            changes,
            earlier,
        } = step;
        // One promotion per change and environment, ever: a pull request of it that merged or
        // was closed settles it.
        if let Some(settled) = self.settled(proven, to, records).await? {
            return Ok(settled);
        }
        let soak = self.config.promotion.soak;
        let soaked = now.duration_since(proven.verified_at);
        let soak_signed = k8s_openapi::jiff::SignedDuration::try_from(soak)
            .unwrap_or(k8s_openapi::jiff::SignedDuration::MAX);
        if soaked < soak_signed {
            let left = soak_signed - soaked;
            return Ok(Progress::Soaking {
                seconds_left: left.as_secs().max(1) as u64,
            });
        }
        // Healthy now, in every cluster of the earlier environment.
        let targets: Vec<ObjectRef> = changes
            .iter()
            .filter(|c| c.after.is_some())
            .map(|c| c.object.clone())
            .collect();
        let mut now_health = Vec::new();
        for (name, cluster) in self.clusters.all(Some(from)) {
            let options = WaitOptions {
                timeout: Duration::from_secs(10),
                ..WaitOptions::default()
            };
            let report = cluster.wait(&targets, &options).await?;
            let reason = crate::reconcile::failure_of(report.outcome, options.timeout);
            if let Some(reason) = reason {
                return Ok(Progress::Unhealthy {
                    reason: format!("{from}/{name}: {reason}"),
                });
            }
            now_health.push(format!(
                "| {from}/{name} | healthy ({}) |",
                report
                    .health
                    .iter()
                    .map(|(o, h)| format!("{o}: {}", h.status))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let base = self
            .repo
            .fetch_branch(&self.config.git.remote, self.base_branch, self.auth)?;
        let dir = tempfile::tempdir().map_err(|e| Error::Io(e.to_string()))?;
        let root = self.repo.write_tree(base, dir.path())?;
        let index = RepoIndex::build(
            &root,
            &IndexOptions {
                excludes: self.config.excludes.clone(),
                threads: 0,
                origin: crate::manifests::Upstream {
                    url: self.repo.remote_url(&self.config.git.remote)?,
                    branch: Some(self.base_branch.to_owned()),
                },
            },
        )?;
        let message = self.repo.message(proven.commit)?;
        let merged_trailers = self.repo.merged_trailers(proven.commit)?;
        // The chain's id: the remediation's (of the commits the pull request merged, else of
        // the promotion that opened it), else the first commit's, so that `history` shows
        // every environment's steps as one chain.
        let chain = trailer(&merged_trailers, "Remediation-Id")
            .map(str::to_owned)
            .or_else(|| {
                proven
                    .pull
                    .and_then(|pull| crate::reconcile::promotion_chain(records, pull))
            })
            .unwrap_or_else(|| proven.commit.to_string());
        let finding = trailer(&merged_trailers, "Finding").map(str::to_owned);
        // A remediation is made again for the next environment's declaration, as propose
        // would make it there; a change the remedy cannot make again is carried.
        let remade = finding
            .as_deref()
            .and_then(|code| remake(&index, self.config, to, changes, code));
        let carried = match &remade {
            Some(remediation) => Carried {
                edits: remediation.changes.clone(),
                left: vec![],
            },
            None => carry(
                &index,
                self.config,
                self.renderer,
                to,
                changes,
                earlier,
                finding.is_some(),
            ),
        };
        let files =
            crate::propose::apply_edits(&root, &carried.edits, "promotion").map_err(Error::Io)?;
        let mut files: Vec<FileChange> = files.into_iter().filter(|f| !f.is_empty()).collect();
        if files.is_empty() && carried.left.is_empty() {
            return Ok(Progress::AlreadyThere);
        }
        let objects: Vec<String> = changes.iter().map(|c| c.object.to_string()).collect();
        let key = changes
            .first()
            .map(|c| c.object.name.clone())
            .unwrap_or_else(|| short(proven.commit));
        // Nothing could be carried: the pull request holds the list of what to do, to be done
        // on its branch by hand (and the list removed) before it merges.
        if files.is_empty() {
            let tasks: Vec<String> = carried.left.iter().map(|l| format!("- [ ] {l}")).collect();
            files.push(FileChange {
                path: PathBuf::from(format!(".remediator/promotions/{to}-{key}.md")),
                old: String::new(),
                new: format!(
                    "# Promote {} to {to}\n\nThe change could not be carried onto {to}'s files. On this branch:\n\n{}\n\nthen delete this file, and merge.\n",
                    short(proven.commit),
                    tasks.join("\n")
                ),
            });
        }
        let branch = format!("remediator/promote-{to}/{key}");
        let title = format!(
            "Promote to {to}: {}",
            message.lines().next().unwrap_or_default()
        );
        let mut commit_message = format!(
            "{title}\n\nProven in {from} by {}.\n\nPromotes: {}\nPromoted-From: {from}\n",
            short(proven.commit),
            proven.commit
        );
        commit_message.push_str(&format!("Remediation-Id: {chain}\n"));
        if let Some(code) = &finding {
            commit_message.push_str(&format!("Finding: {code}\n"));
        }
        // The branch belongs to people once they commit to it: it is left alone, and its pull
        // request says so once.
        if let Some(pull) = self.touched(&branch, base).await? {
            return Ok(Progress::LeftToPeople { pull, branch });
        }
        let written: Vec<(PathBuf, String)> = files
            .iter()
            .map(|f| (f.path.clone(), f.new.clone()))
            .collect();
        let (_, head) = self.repo.commit_branch(
            &branch,
            base,
            &written,
            &commit_message,
            &self.config.git.author,
        )?;
        // The next environment's view of the change: its risk and its dry-run.
        let next = changes::between(self.repo, self.config, self.renderer, base, head, Some(to))?;
        let assessment = crate::gate::assess(
            self.policies,
            &next.objects,
            &trailers(&commit_message),
            &[],
            self.config,
        )?;
        let mut dry_runs = Vec::new();
        let after: Vec<Value> = next
            .objects
            .iter()
            .filter_map(|c| c.after.clone())
            .collect();
        if self.clusters.all(Some(to)).is_empty() {
            dry_runs.push(format!(
                "No cluster of {to} is reachable from this run; the pull request's check dry-runs the change there.\n"
            ));
        }
        for (name, cluster) in self.clusters.all(Some(to)) {
            let options = DryRunOptions {
                field_manager: self.config.field_manager.clone(),
                ..DryRunOptions::default()
            };
            match cluster.dry_run(&after, &options).await {
                Ok(results) => {
                    for result in results {
                        dry_runs.push(format!(
                            "**{to}/{name}** `{}` {}\n\n```diff\n{}\n```\n",
                            result.object,
                            result.action,
                            result.diff.trim_end()
                        ));
                    }
                }
                Err(error) => dry_runs.push(format!("**{to}/{name}**: not dry-run: {error}\n")),
            }
        }
        // The proof: what the next environment renders before and after the edit.
        let rendered: Vec<String> = next
            .objects
            .iter()
            .flat_map(|c| {
                c.fields.iter().map(move |f| {
                    format!(
                        "- `{}` `{}`: {} → {}",
                        c.object,
                        f.path,
                        shown(f.old.as_ref()),
                        shown(f.new.as_ref())
                    )
                })
            })
            .collect();
        let evidence = self.evidence(proven, from, records);
        let body = body(&Body {
            from,
            to,
            commit: proven.commit,
            pull: proven.pull,
            soak,
            verified_at: proven.verified_at,
            evidence: &evidence,
            now_health: &now_health,
            diff: &patch(&files, false),
            rendered: &rendered,
            left: &carried.left,
            remedy: remade.as_ref().map(|r| r.summary.as_str()),
            risk: &assessment,
            dry_runs: &dry_runs,
            objects: &objects,
        });
        self.repo.push(
            &self.config.git.remote,
            &[format!("+refs/heads/{branch}:refs/heads/{branch}")],
            self.auth,
        )?;
        let mut pull = 0;
        if let Some(forge) = self.forge {
            let spec = PullRequestSpec {
                head: branch.clone(),
                base: self.base_branch.to_owned(),
                title,
                body,
                labels: vec![
                    "remediator".into(),
                    "promotion".into(),
                    format!("risk/{}", assessment.risk),
                ],
            };
            pull = forge.open_or_update(&spec).await?.0.number;
        }
        let sha = proven.commit.to_string();
        let recorded = records.iter().any(|r| {
            r.event == Event::Promoted
                && r.commit.as_deref() == Some(sha.as_str())
                && r.detail["to"] == to
                && r.pull == (pull > 0).then_some(pull)
        });
        if recorded {
            return Ok(Progress::Proposed { pull, branch });
        }
        self.audit.append(&Record {
            remediation: Some(chain),
            commit: Some(proven.commit.to_string()),
            pull: (pull > 0).then_some(pull),
            objects,
            detail: json!({"from": from, "to": to, "branch": branch, "risk": assessment.risk, "promotedFrom": proven.pull}),
            ..Record::new(
                Event::Promoted,
                format!("promotion from {from} to {to} proposed on {branch}"),
            )
        })?;
        Ok(Progress::Proposed { pull, branch })
    }

    /// How the change's promotion to `to` ended, when its pull request is no longer open:
    /// merged (and then verified, rolled back or not yet reconciled there) or closed.
    async fn settled(
        &self,
        proven: &Proven,
        to: &str,
        records: &[Record],
    ) -> Result<Option<Progress>, Error> {
        let Some(forge) = self.forge else {
            return Ok(None);
        };
        let sha = proven.commit.to_string();
        let pull = records
            .iter()
            .filter(|r| r.event == Event::Promoted && r.commit.as_deref() == Some(sha.as_str()))
            .filter(|r| r.detail["to"] == to)
            .rev()
            .find_map(|r| r.pull);
        let Some(pull) = pull else {
            return Ok(None);
        };
        let info = forge.pull(pull).await?;
        if !info.merged {
            return Ok(info.closed.then_some(Progress::Closed { pull }));
        }
        let merge = info.merge_commit.as_deref();
        let finished = records
            .iter()
            .filter(|r| merge.is_some() && r.commit.as_deref() == merge)
            .filter(|r| r.covers(Some(to)))
            .rfind(|r| matches!(r.event, Event::Verified | Event::RolledBack));
        Ok(Some(match finished {
            Some(r) if r.event == Event::Verified => Progress::Promoted { pull },
            Some(_) => Progress::RolledBack { pull },
            None => Progress::WaitingForReconcile { pull },
        }))
    }

    /// When `branch` on the remote holds a commit remediator did not make (another committer,
    /// or no `Promotes:` trailer), the open pull request it was told of (0 without a forge,
    /// which cannot tell an open one from a stale branch).
    async fn touched(&self, branch: &str, base: Oid) -> Result<Option<u64>, Error> {
        let remote = &self.config.git.remote;
        let Some(tip) = self.repo.fetch_branch_if_any(remote, branch, self.auth)? else {
            return Ok(None);
        };
        let ours = &self.config.git.author.email;
        let theirs: Vec<String> = self
            .repo
            .commits_only_in(tip, base)?
            .into_iter()
            .filter(|(_, email, message)| {
                email != ours || trailer(&trailers(message), "Promotes").is_none()
            })
            .map(|(id, email, _)| format!("{} ({email})", short(id)))
            .collect();
        if theirs.is_empty() {
            return Ok(None);
        }
        let Some(forge) = self.forge else {
            return Ok(Some(0));
        };
        // A branch no open promotion has (one merged by squash, and not deleted) is stale:
        // the new promotion starts it afresh.
        let open = forge.open_pulls("promotion").await?;
        let Some(pull) = open.iter().find(|p| p.head == branch) else {
            return Ok(None);
        };
        forge
            .upsert_comment(
                pull.number,
                "promotion-left-to-people",
                &format!(
                    "This branch holds commits remediator did not make ({}). remediator leaves it to you from here: it will not update or rebase it. Merge it when it is ready; closing it ends this promotion, which is not proposed again.",
                    theirs.join(", ")
                ),
            )
            .await?;
        Ok(Some(pull.number))
    }

    /// The earlier environment's records of the commit, a line each: applied, verified per
    /// cluster, and when.
    fn evidence(&self, proven: &Proven, from: &str, records: &[Record]) -> Vec<String> {
        let sha = proven.commit.to_string();
        let clusters: Vec<&str> = self
            .clusters
            .all(Some(from))
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        records
            .iter()
            .filter(|r| r.commit.as_deref() == Some(sha.as_str()))
            .filter(|r| {
                matches!(
                    r.event,
                    Event::Applied | Event::ClusterVerified | Event::Verified | Event::HandedOff
                )
            })
            .filter(|r| r.cluster.as_deref().is_none_or(|c| clusters.contains(&c)))
            .map(|r| {
                let health = r.detail["health"]
                    .as_array()
                    .map(|all| {
                        all.iter()
                            .map(|h| {
                                format!(
                                    "{}: {}",
                                    h["object"].as_str().unwrap_or_default(),
                                    h["status"].as_str().unwrap_or_default()
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                // A record of an environment with one cluster names none: that one.
                let cluster = r.cluster.as_deref().or(match clusters.as_slice() {
                    [only] => Some(*only),
                    _ => None,
                });
                format!(
                    "| {} | {}{} | {} | {} |",
                    r.time,
                    from,
                    cluster.map(|c| format!("/{c}")).unwrap_or_default(),
                    r.event_name(),
                    if health.is_empty() {
                        r.message.clone()
                    } else {
                        health
                    }
                )
            })
            .collect()
    }
}

/// The edits that carry a change onto the next environment, and what could not be carried.
struct Carried {
    edits: Vec<Change>,
    left: Vec<String>,
}

/// Carries each changed field of `changes` onto the same object in `to`: where the field as `to`
/// renders it holds what the earlier environment rendered before the change, the new value;
/// for a remediation, a quantity scaled by the change's ratio; anything else is left, with why.
/// The value goes into the layer that sets it for `to`: its overlay's `images:` entry for an
/// image, an overlay patch that sets the field, a new patch of `to`'s overlay for a value of a
/// base other builds share, else the declaration.
fn carry(
    index: &RepoIndex,
    config: &Config,
    renderer: &Renderer,
    to: &str,
    changes: &[ObjectChange],
    earlier: &[&ObjectChange],
    remediation: bool,
) -> Carried {
    let mut carried = Carried {
        edits: vec![],
        left: vec![],
    };
    let (snapshot, history) = (Snapshot::default(), crate::remedy::NoHistory);
    let ctx = next_environment(index, config, to, &snapshot, &history);
    for change in changes {
        let Some(object) = counterpart(index, config, to, &change.object) else {
            carried.left.push(format!(
                "{} has no {} {} in {to}: add it there by hand if it belongs",
                change.object, change.object.kind, change.object.name
            ));
            continue;
        };
        let declared = match ctx.declared(&object.id) {
            Ok(declared) => declared,
            Err(_) => {
                carried.left.push(format!(
                    "{} is not declared once in {to}: change it there by hand",
                    object.id
                ));
                continue;
            }
        };
        let rendered = match rendered_in(index, renderer, object) {
            Ok(rendered) => rendered,
            Err(reason) => {
                carried.left.push(format!(
                    "{}: what {to} renders cannot be read ({reason}); carry the change by hand",
                    object.id
                ));
                continue;
            }
        };
        let mut patch_sets = Vec::new();
        for field in &change.fields {
            let Ok(path) = field.path.parse::<FieldPath>() else {
                carried
                    .left
                    .push(format!("{}: `{}` by hand", object.id, field.path));
                continue;
            };
            let (location, doc) = ctx.field_location(&declared, &path);
            // What `to` applies: its build's output, else the declaration as written.
            let there = match &rendered {
                Some(value) => path.get(value),
                None => path.get(&doc),
            };
            // Already what the change set: nothing to carry.
            if there.is_some() && there == field.new.as_ref() {
                continue;
            }
            // The value before this change, or before an earlier one of the same field.
            let held_before = |value: Option<&Value>| {
                value == field.old.as_ref()
                    || earlier
                        .iter()
                        .filter(|e| e.object == change.object)
                        .flat_map(|e| &e.fields)
                        .any(|f| f.path == field.path && f.old.as_ref() == value)
            };
            let value = match (&field.new, there) {
                (None, _) => None,
                (Some(new), here) if held_before(here) => Some(new.clone()),
                (Some(_), Some(here)) if remediation => scaled(here, field.ratio),
                _ => None,
            };
            let Some(value) = value else {
                carried.left.push(format!(
                    "{}: `{}` is {} in {to} (it was {} before the change in the earlier environment, which set {}); decide its value there by hand",
                    object.id,
                    field.path,
                    shown(there),
                    shown(field.old.as_ref()),
                    shown(field.new.as_ref())
                ));
                continue;
            };
            if let Some((entry, edits)) = image_entry(&declared, &path, &doc, &value) {
                carried.edit(&entry, edits);
            } else if declared
                .overlay
                .as_ref()
                .is_some_and(|o| o.file == location.file)
            {
                patch_sets.push((path, value));
            } else {
                carried.edit(&location, vec![Edit::set(path, value)]);
            }
        }
        if patch_sets.is_empty() {
            continue;
        }
        match declared.overlay.as_ref().map(|o| (o, &o.home)) {
            Some((
                overlay,
                crate::remedy::PatchHome::File {
                    kustomization,
                    entry,
                },
            )) => {
                carried.edits.push(Change::Create {
                    path: overlay.file.clone(),
                    content: crate::remedy::patch_document(
                        declared.declaration,
                        &patch_sets,
                        &format!(
                            "remediator: promoted to {to}; only this overlay's build sees it."
                        ),
                    ),
                });
                carried.edit(
                    kustomization,
                    vec![Edit {
                        path: FieldPath {
                            segments: vec![crate::manifests::path::Segment::Key("patches".into())],
                        },
                        op: crate::manifests::edit::EditOp::Append(json!({"path": entry})),
                    }],
                );
            }
            _ => {
                for (path, value) in patch_sets {
                    carried.left.push(format!(
                        "{}: `{path}` to {} in {to}'s own applier, by hand (the base is shared)",
                        object.id,
                        shown(Some(&value))
                    ));
                }
            }
        }
    }
    carried
}

impl Carried {
    /// Adds `edits` to those of the document at `location`.
    fn edit(&mut self, location: &crate::manifests::Location, edits: Vec<Edit>) {
        match self
            .edits
            .iter_mut()
            .find(|c| matches!(c, Change::Edit { location: l, .. } if l == location))
        {
            Some(Change::Edit { edits: all, .. }) => all.extend(edits),
            _ => self.edits.push(Change::Edit {
                location: location.clone(),
                edits,
            }),
        }
    }
}

/// The object as `to`'s build renders it at the base; `None` for an object of plain manifests,
/// which is applied as written.
fn rendered_in(
    index: &RepoIndex,
    renderer: &Renderer,
    object: &crate::manifests::IndexedObject,
) -> Result<Option<Value>, String> {
    let unit = index.unit(object);
    let Some(build) = index.builds.iter().find(|b| b.dir == unit.path) else {
        return Ok(None);
    };
    let all = renderer
        .render(&index.root, build)
        .map_err(|e| e.to_string())?;
    let found = all
        .into_iter()
        .find(|r| crate::render::identity(&r.value, &index.scopes) == object.id);
    match found {
        Some(rendered) => Ok(Some(rendered.value)),
        None => Err(format!(
            "{} does not render {}",
            crate::manifests::display_dir(&build.dir),
            object.id
        )),
    }
}

/// For a container's image that `to`'s overlay sets by an `images:` entry, the entry's edits
/// that make it render `value`: `newTag`, and `newName` when the repository changes too.
fn image_entry(
    declared: &crate::remedy::Declared,
    path: &FieldPath,
    doc: &Value,
    value: &Value,
) -> Option<(crate::manifests::Location, Vec<Edit>)> {
    use crate::remedy::image_name;
    if !path.to_string().ends_with("].image") {
        return None;
    }
    let kustomization = declared.kustomization?;
    let written = path.get(doc)?.as_str()?;
    let name = image_name(written);
    let entry = kustomization
        .kustomization
        .images
        .iter()
        .find(|i| i.name == name)?;
    let new = value.as_str()?;
    // A digest is not a tag: such a value is carried by hand.
    if new.contains('@') || entry.digest.is_some() {
        return None;
    }
    let new_name = image_name(new);
    let tag = new.strip_prefix(new_name)?.strip_prefix(':')?;
    let at = |key: &str| -> Option<FieldPath> { format!("images[name={name}].{key}").parse().ok() };
    let mut edits = vec![Edit::set(at("newTag")?, json!(tag))];
    if new_name != entry.new_name.as_deref().unwrap_or(name) {
        edits.push(Edit::set(at("newName")?, json!(new_name)));
    }
    Some((kustomization.location.clone(), edits))
}

/// The remediation of `code` made again for the counterpart in `to` of the change's first
/// object, from that environment's declaration alone; `None` when the remedy makes none there.
fn remake(
    index: &RepoIndex,
    config: &Config,
    to: &str,
    changes: &[ObjectChange],
    code: &str,
) -> Option<crate::remedy::Remediation> {
    let code = crate::model::FindingCode::ALL
        .into_iter()
        .find(|c| c.as_str() == code)?;
    let change = changes.first()?;
    let object = counterpart(index, config, to, &change.object)?;
    let container = change.fields.iter().find_map(|f| {
        let rest = f.path.split_once("containers[name=")?.1;
        Some(rest.split_once(']')?.0.to_owned())
    });
    let mut finding = crate::model::Finding::new(
        code,
        crate::model::Severity::Warning,
        object.id.clone(),
        format!("proven in the environment before {to}"),
    );
    finding.owner = Some(object.id.clone());
    finding.container = container;
    let (snapshot, history) = (Snapshot::default(), crate::remedy::NoHistory);
    let ctx = next_environment(index, config, to, &snapshot, &history);
    match crate::remedy::remediate(&finding, &ctx) {
        crate::remedy::Remedy::Proposal(remediation) => Some(*remediation),
        _ => None,
    }
}

/// The object of `to` with the kind and name of `object`.
fn counterpart<'i>(
    index: &'i RepoIndex,
    config: &Config,
    to: &str,
    object: &ObjectRef,
) -> Option<&'i crate::manifests::IndexedObject> {
    index.objects.iter().find(|o| {
        o.id.kind == object.kind
            && o.id.name == object.name
            && config
                .environment_for(index.placement(o))
                .is_some_and(|e| e.name == to)
    })
}

/// What a remedy reads to work on `to`'s declarations alone: no cluster, no history.
fn next_environment<'a>(
    index: &'a RepoIndex,
    config: &'a Config,
    to: &'a str,
    snapshot: &'a Snapshot,
    history: &'a crate::remedy::NoHistory,
) -> crate::remedy::Situation<'a> {
    crate::remedy::Situation {
        index,
        config,
        snapshot,
        environment: Some(to),
        history,
        actions_dir: PathBuf::from("actions"),
        lookups: Default::default(),
    }
}

/// `value` times `ratio`, in its own kind of quantity.
fn scaled(value: &Value, ratio: Option<f64>) -> Option<Value> {
    use crate::model::quantity::{cpu_millis, format_cpu, format_memory, memory_bytes};
    let ratio = ratio?;
    match value {
        Value::Number(n) => Some(json!((n.as_f64()? * ratio).ceil() as i64)),
        Value::String(s) => {
            if let Some(bytes) = memory_bytes(s).filter(|_| !s.ends_with('m')) {
                Some(json!(format_memory(bytes * ratio)))
            } else {
                cpu_millis(s).map(|m| json!(format_cpu(m * ratio)))
            }
        }
        _ => None,
    }
}

fn shown(value: Option<&Value>) -> String {
    match value {
        None => "unset".to_owned(),
        Some(Value::String(s)) => format!("`{s}`"),
        Some(v) => format!("`{v}`"),
    }
}

struct Body<'a> {
    from: &'a str,
    to: &'a str,
    commit: Oid,
    pull: Option<u64>,
    soak: Duration,
    verified_at: Timestamp,
    evidence: &'a [String],
    now_health: &'a [String],
    diff: &'a str,
    rendered: &'a [String],
    left: &'a [String],
    remedy: Option<&'a str>,
    risk: &'a crate::assess::Assessment,
    dry_runs: &'a [String],
    objects: &'a [String],
}

fn body(b: &Body) -> String {
    let mut out = format!(
        "## Promotion from {} to {}\n\nThe change `{}`{} has been applied in **{}** and stayed healthy there for the {}s soak (verified {}). This pull request brings it to **{}**.\n\nObjects: {}\n\n",
        b.from,
        b.to,
        short(b.commit),
        b.pull.map(|p| format!(" (#{p})")).unwrap_or_default(),
        b.from,
        b.soak.as_secs(),
        b.verified_at,
        b.to,
        b.objects.join(", ")
    );
    out.push_str(&format!(
        "### Evidence from {}\n\n| When | Where | Step | Health |\n|---|---|---|---|\n{}\n\n",
        b.from,
        b.evidence.join("\n")
    ));
    out.push_str(&format!(
        "After the soak, now:\n\n| Where | Health |\n|---|---|\n{}\n\n",
        b.now_health.join("\n")
    ));
    out.push_str(&format!(
        "### Risk in {}\n\n**{}**, {} approvals required{}\n\n",
        b.to,
        b.risk.risk,
        b.risk.approvals.count,
        if b.risk.reasons.is_empty() {
            String::new()
        } else {
            format!(": {}", b.risk.reasons.join("; "))
        }
    ));
    if let Some(summary) = b.remedy {
        out.push_str(&format!(
            "### The remedy, made again for {}\n\n{summary}, from {}'s own declaration.\n\n",
            b.to, b.to
        ));
    }
    if !b.diff.is_empty() {
        out.push_str(&format!(
            "### Change\n\n```diff\n{}\n```\n\n",
            b.diff.trim_end()
        ));
    }
    if !b.diff.is_empty() {
        out.push_str(&format!(
            "### Rendered in {}\n\n{}\n\n",
            b.to,
            if b.rendered.is_empty() {
                format!("{} renders no change from these edits.", b.to)
            } else {
                b.rendered.join("\n")
            }
        ));
    }
    if !b.left.is_empty() {
        out.push_str(&format!(
            "### Not carried: to do by hand\n\n{}\n\n",
            b.left
                .iter()
                .map(|l| format!("- [ ] {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    out.push_str(&format!(
        "### Dry-run in {}\n\n{}\n",
        b.to,
        if b.dry_runs.is_empty() {
            "Nothing to dry-run.".to_owned()
        } else {
            b.dry_runs.join("\n")
        }
    ));
    out
}
