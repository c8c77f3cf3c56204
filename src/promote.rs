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
        if order.len() < 2 {
            return Ok(vec![]);
        }
        let records = self.audit.read()?;
        let mut done = Vec::new();
        let all = self.proven(&records)?;
        for (at, proven) in all.iter().enumerate() {
            for (from, changes) in &proven.by_environment {
                let Some(to) = self.config.promotion.next(from) else {
                    continue;
                };
                if proven.by_environment.contains_key(to) {
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
        let own = trailers(&message);
        let merged_trailers = match self.repo.parents(proven.commit)?.get(1) {
            Some(merged) if trailer(&own, "Remediation-Id").is_none() => {
                trailers(&self.repo.message(*merged)?)
            }
            _ => own,
        };
        // The chain's id: the remediation's, else the first commit's, so that `history` shows
        // every environment's steps as one chain.
        let chain = trailer(&merged_trailers, "Remediation-Id")
            .map_or_else(|| proven.commit.to_string(), str::to_owned);
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
            None => carry(&index, self.config, to, changes, earlier, finding.is_some()),
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

/// Carries each changed field of `changes` onto the same object in `to`: where the field there
/// holds what it held before the change, the new value; for a remediation, a quantity scaled by
/// the change's ratio; anything else is left, with why.
fn carry(
    index: &RepoIndex,
    config: &Config,
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
        for field in &change.fields {
            let Ok(path) = field.path.parse::<FieldPath>() else {
                carried
                    .left
                    .push(format!("{}: `{}` by hand", object.id, field.path));
                continue;
            };
            let (location, doc) = ctx.field_location(&declared, &path);
            let new_file = declared
                .overlay
                .as_ref()
                .is_some_and(|o| o.file == location.file);
            let there = path.get(&doc);
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
            match value {
                Some(value) if !new_file => {
                    let edit = Edit::set(path, value);
                    match carried.edits.iter_mut().find(
                        |c| matches!(c, Change::Edit { location: l, .. } if *l == location),
                    ) {
                        Some(Change::Edit { edits, .. }) => edits.push(edit),
                        _ => carried.edits.push(Change::Edit {
                            location: location.clone(),
                            edits: vec![edit],
                        }),
                    }
                }
                _ => carried.left.push(format!(
                    "{}: `{}` is {} in {to} (it was {} before the change in the earlier environment, which set {}); decide its value there by hand",
                    object.id,
                    field.path,
                    shown(there),
                    shown(field.old.as_ref()),
                    shown(field.new.as_ref())
                )),
            }
        }
    }
    carried
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
