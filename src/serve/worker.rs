//! The worker: one job at a time from the bounded queue. A detection fetches the base branch,
//! indexes it as committed, reads the cluster, plans with the firing alerts beside detection's
//! findings, and publishes exactly as `propose --forge github` does (GitHub is the state: an
//! open pull request is updated, never opened twice, and one whose finding cleared is closed). A
//! push reconciles the base branch through the reconcile driver, as `reconcile` does; a review
//! weighs the pending merges again; a pull request opened or synchronized is checked as
//! `check --comment` does. The job under way is finished before the service stops.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::mpsc;

use super::metrics::Metrics;
use super::{Job, Service, Shared, webhook};
use crate::assess::Policies;
use crate::check::CheckOptions;
use crate::cluster::{Cluster, SnapshotOptions};
use crate::forge::Forge;
use crate::git::GitHistory;
use crate::manifests::{IndexOptions, RepoIndex};
use crate::propose::{self, Inputs, LiveCluster, ProposeOptions};
use crate::publish;
use crate::reconcile::Outcome;
use crate::reconcile::driver::{Driver, Fixed};
use crate::render::Renderer;
use crate::views::check as view;
use crate::workspace::TrustedInputs;

pub(super) async fn run(
    mut service: Service,
    shared: Arc<Shared>,
    mut queue: mpsc::Receiver<Job>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    reach_github(&service, &shared).await;
    loop {
        // Only the leader works; a follower's queued deliveries wait for it to lead.
        while !shared.leading.load(Ordering::SeqCst) {
            let woken = shared.wake.notified();
            if shared.leading.load(Ordering::SeqCst) {
                break;
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                _ = stopped.changed() => return,
            }
        }
        let job = tokio::select! {
            job = queue.recv() => match job {
                Some(job) => job,
                None => return,
            },
            _ = stopped.changed() => return,
        };
        shared.metrics.queue.set(shared.depth());
        // Each job is a run: GitHub's answers are kept within it, their ETags across runs.
        service.forge = service.forge.for_run();
        // An App's installation token is what Git pushes with too.
        match service.forge.git_token().await {
            Ok(Some(token)) => service.auth.token = Some(token),
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "cannot renew the GitHub App's token"),
        }
        let started = Instant::now();
        let (operation, result) = match job {
            Job::Detect => {
                shared.detect_queued.store(false, Ordering::SeqCst);
                let result = detect(&service, &shared).await;
                release_memory();
                ("detect", result)
            }
            Job::GitHub(webhook::Asked::Reconcile { after }) => (
                "reconcile",
                reconcile(&service, &shared, Some(&after)).await,
            ),
            Job::GitHub(webhook::Asked::Review { .. }) => {
                ("reconcile", reconcile(&service, &shared, None).await)
            }
            Job::Promote => ("promote", promote(&service, &shared).await),
            Job::GitHub(webhook::Asked::Check {
                pull, base, head, ..
            }) => ("check", check(&service, pull, &base, &head).await),
        };
        shared
            .metrics
            .took(operation, started.elapsed().as_secs_f64());
        shared.metrics.github(&service.forge);
        if let Err(failed) = result {
            shared.metrics.failed(failed.operation);
            tracing::error!(operation = failed.operation, error = %failed.why, "job failed");
        }
    }
}

/// A failed operation: which one (one of [`super::metrics::OPERATIONS`]), and why.
struct Failed {
    operation: &'static str,
    why: String,
}

impl Failed {
    /// A failure of `operation`.
    fn of(operation: &'static str) -> impl Fn(&dyn std::fmt::Display) -> Failed {
        move |error| Failed {
            operation,
            why: error.to_string(),
        }
    }
}

/// Fetches the base branch and moves the clone to it (HEAD detached, the working tree forced
/// to match), so that every job starts from the remote's base, never from what the clone saw
/// last. A failed fetch makes the service not ready and is counted; the job stops there.
fn follow(service: &Service, shared: &Shared) -> Result<git2::Oid, Failed> {
    let started = Instant::now();
    let remote = &service.config.git.remote;
    let base_branch = &shared.base_branch;
    let fetched = service
        .repo
        .fetch_branch(remote, base_branch, &service.auth)
        .and_then(|base| service.repo.checkout_detached(base).map(|()| base));
    shared
        .metrics
        .took("fetch", started.elapsed().as_secs_f64());
    let mut stale = shared.stale.lock().unwrap_or_else(|e| e.into_inner());
    match fetched {
        Ok(base) => {
            *stale = None;
            shared.metrics.clone_fresh.set(1);
            let now = k8s_openapi::jiff::Timestamp::now().as_second();
            shared.metrics.clone_fetched.set(now);
            Ok(base)
        }
        Err(error) => {
            let why = format!("cannot fetch {base_branch} from {remote}: {error}");
            *stale = Some(why.clone());
            shared.metrics.clone_fresh.set(0);
            Err(Failed {
                operation: "fetch",
                why,
            })
        }
    }
}

async fn reach_github(service: &Service, shared: &Shared) {
    match service.forge.open_pulls("remediator").await {
        Ok(_) => shared.reachable.store(true, Ordering::SeqCst),
        Err(error) => tracing::warn!(%error, "GitHub is not reachable yet"),
    }
}

/// One detection, planned and published.
async fn detect(service: &Service, shared: &Shared) -> Result<(), Failed> {
    let fail = Failed::of("detect");
    let remote = &service.config.git.remote;
    let base_branch = &shared.base_branch;
    let base = follow(service, shared)?;
    // The job's own worktree: the base as committed, in a directory of its own.
    let dir = tempfile::tempdir().map_err(|e| fail(&format!("no temporary directory: {e}")))?;
    let root = service
        .repo
        .write_tree(base, dir.path())
        .map_err(|e| fail(&e))?;
    let config = crate::workspace::config_at(&service.repo, base).map_err(|e| fail(&e))?;
    let options = IndexOptions {
        excludes: config.excludes.clone(),
        threads: 0,
        origin: crate::manifests::Upstream {
            url: service.repo.remote_url(remote).map_err(|e| fail(&e))?,
            branch: Some(base_branch.clone()),
        },
    };
    let mut index = RepoIndex::build(&root, &options).map_err(|e| fail(&e))?;
    for warning in crate::render::learn_renames(&mut index, &service.renderer) {
        tracing::warn!(%warning, "renamed objects");
    }
    for warning in crate::render::learn_reach(&mut index, &service.renderer) {
        tracing::warn!(%warning, "chart values");
    }
    let mut loaded = service
        .cluster
        .snapshot(&SnapshotOptions::default())
        .await
        .map_err(|e| fail(&e))?;
    // The cluster's discovery places the kinds the repository cannot, as `propose` does.
    match crate::cluster::Resolver::new(&service.client).await {
        Ok(resolver) => index.rescope(&resolver.scopes()),
        Err(error) => return Err(fail(&error)),
    }
    // Prometheus's history when there is one; else this read's usage joins the history
    // sampled since, and detection reads all of it.
    if config.prometheus.is_some() {
        let cluster = config.first_cluster(shared.settings.environment.as_deref());
        crate::cluster::prometheus::load_usage(
            config.prometheus.as_ref(),
            cluster,
            &mut loaded,
            None,
        )
        .await;
    } else if let Ok(mut history) = shared.history.lock() {
        history.absorb(&loaded.snapshot.usage);
        loaded.snapshot.usage = history.history();
    }
    // A pull request is closed as cleared only when every kind was read; else it stays open,
    // saying why.
    let unread: Vec<String> = loaded
        .problems
        .iter()
        .filter(|p| p.unread())
        .map(ToString::to_string)
        .collect();
    let clearing = if unread.is_empty() {
        publish::Clearing::Close
    } else {
        publish::Clearing::KeepOpen(format!("not everything was read: {}", unread.join("; ")))
    };
    let mut policies = match &service.policies {
        Some(dir) => Policies::from_dir(dir).map_err(|e| fail(&e))?,
        None => Policies::embedded(),
    };
    let (alerted, unknown) = {
        let episodes = shared.episodes.lock().await;
        let (findings, unknown) = episodes.findings(&shared.settings.alerts);
        let unknown: Vec<String> = unknown
            .iter()
            .map(|a| a.labels.get("alertname").cloned().unwrap_or_default())
            .collect();
        (findings, unknown)
    };
    for name in unknown {
        tracing::warn!(alert = %name, "the alert maps to no finding (add it to serve.alerts)");
    }
    let history = GitHistory::new(&service.repo);
    let inputs = Inputs {
        repo: &root,
        index: &index,
        config: &config,
        snapshot: &loaded.snapshot,
        history: &history,
        templates: &service.templates,
        renderer: Some(&service.renderer),
    };
    let propose_options = ProposeOptions {
        environment: shared.settings.environment.clone(),
        ..ProposeOptions::default()
    };
    let alerted = alerted
        .into_iter()
        .map(|f| super::alerts::enrich(f, &loaded.snapshot))
        .collect();
    let mut plan = propose::plan_with(&inputs, &mut policies, &propose_options, alerted);
    // The same dry-runs and explanations as `propose --forge github`.
    let environment = shared.settings.environment.as_deref();
    let live = LiveCluster {
        name: config
            .first_cluster(environment)
            .unwrap_or(environment.unwrap_or("in-cluster")),
        cluster: &service.cluster,
    };
    propose::add_dry_runs(&mut plan, &index, &service.templates, &live, &config).await;
    propose::explain_configured(&mut plan, &service.templates, &config).await;
    for proposal in &plan.proposals {
        Metrics::count(
            &shared.metrics.findings,
            &proposal.remediation.finding.code.to_string(),
        );
    }
    for reported in plan.diagnoses.iter().chain(&plan.unmanaged) {
        Metrics::count(&shared.metrics.findings, &reported.finding.code.to_string());
    }
    let target = publish::Destination {
        repo: &service.repo,
        config: &config,
        forge: &service.forge,
        base_branch,
        base,
        audit: &service.audit,
        auth: &service.auth,
    };
    // Pushing and opening pull requests are writes: only a replica that proves its lease.
    shared
        .proves_lease()
        .map_err(|e| Failed::of("publish")(&e))?;
    let started = Instant::now();
    let published = publish::publish(&target, &plan, &clearing).await;
    shared
        .metrics
        .took("publish", started.elapsed().as_secs_f64());
    let (published, closed) = published.map_err(|e| Failed::of("publish")(&e))?;
    shared.reachable.store(true, Ordering::SeqCst);
    for one in &published {
        let outcome = match (&one.outcome, &one.pull) {
            (Err(_), _) => "failed",
            (Ok(_), Some(pull)) if pull.ends_with("opened") => "opened",
            (Ok(_), Some(_)) => "updated",
            (Ok(_), None) => "failed",
        };
        Metrics::count(&shared.metrics.proposals, outcome);
        if let (Err(error), _) = (&one.outcome, &one.pull) {
            shared.metrics.failed("publish");
            tracing::error!(branch = %one.branch, %error, "not published");
        }
    }
    for _ in &closed {
        Metrics::count(&shared.metrics.proposals, "closed");
    }
    if let Ok(mut latest) = shared.latest.lock() {
        *latest = Some(Arc::new(owners_only(loaded.snapshot)));
    }
    Ok(())
}

/// Checks a pull request as `check --comment` does: judged by the configuration and policies
/// of the merge base, its one comment created or updated.
async fn check(service: &Service, pull: u64, base: &str, head: &str) -> Result<(), Failed> {
    let remote = &service.config.git.remote;
    let repo = &service.repo;
    let fail = |e: &dyn std::fmt::Display| Failed {
        operation: "check",
        why: format!("pull request #{pull}: {e}"),
    };
    let base_oid = repo
        .fetch_branch(remote, base, &service.auth)
        .map_err(|e| fail(&e))?;
    // A fork's branch is not on the remote: GitHub publishes every pull request's head as
    // refs/pull/N/head, and that commit must be the one the event names.
    let head_oid = repo
        .fetch_pull(remote, pull, head, &service.auth)
        .map_err(|e| fail(&e))?;
    let merge_base = repo.merge_base(base_oid, head_oid).map_err(|e| fail(&e))?;
    let TrustedInputs {
        config,
        mut policies,
        files,
    } = TrustedInputs::at(repo, merge_base, service.policies.as_deref()).map_err(|e| fail(&e))?;
    // Remote sources are fetched as the trusted configuration (the merge base's) allows.
    let renderer = Renderer::for_config(&config);
    let options = CheckOptions {
        environment: None,
        renderer: &renderer,
    };
    let checked = crate::check::check(
        repo,
        &config,
        &mut policies,
        &files,
        (base_oid, head_oid),
        &options,
    )
    .map_err(|e| fail(&e))?;
    let markdown =
        view::markdown(&service.templates, &checked.report, None).map_err(|e| fail(&e))?;
    service
        .forge
        .upsert_comment(pull, view::COMMENT_MARKER, &markdown)
        .await
        .map_err(|e| fail(&e))?;
    // The default of branch protection: one approval.
    let run = view::check_run(&checked.report, head, &markdown, 1);
    service
        .forge
        .report_check(&run)
        .await
        .map_err(|e| fail(&e))?;
    Ok(())
}

/// Reconciles the base branch up to `after` (a push), or up to its head (a review).
async fn reconcile(
    service: &Service,
    shared: &Arc<Shared>,
    after: Option<&str>,
) -> Result<(), Failed> {
    let fail = Failed::of("reconcile");
    let base = follow(service, shared)?;
    let commit = match after {
        Some(sha) => service.repo.resolve(sha).map_err(|e| fail(&e))?,
        None => base,
    };
    let reach = Fixed(service.cluster.clone());
    let driver = Driver {
        repo: &service.repo,
        audit: &service.audit,
        templates: &service.templates,
        renderer: &service.renderer,
        auth: &service.auth,
        reach: &reach,
        policies: service.policies.clone(),
        environment: shared.settings.environment.clone(),
        timeout: None,
        forge: true,
        holder: service.holder.clone(),
        guard: {
            let shared = shared.clone();
            crate::reconcile::Guard::new(move || shared.proves_lease())
        },
    };
    let reports = driver.reconcile(commit).await.map_err(|e| fail(&e))?;
    for report in &reports {
        let outcome = match &report.outcome {
            Outcome::AlreadyDone { .. } => "already-done",
            Outcome::NoChanges => "no-changes",
            Outcome::Healthy { .. } => "healthy",
            Outcome::RolledBack { .. } => {
                shared.metrics.rollbacks.inc();
                "rolled-back"
            }
            Outcome::Refused { .. } => {
                shared.metrics.refusals.inc();
                "refused"
            }
            Outcome::Failed { .. } => "failed",
            Outcome::Waiting { .. } => "waiting",
        };
        Metrics::count(&shared.metrics.reconciles, outcome);
    }
    Ok(())
}

/// Opens the promotion pull requests that are due from the environment the service runs in,
/// judged by the configuration and policies of the base branch's head. The service reaches only
/// its own cluster: the next environment's dry-run is left to the pull request's check.
async fn promote(service: &Service, shared: &Shared) -> Result<(), Failed> {
    let fail = Failed::of("promote");
    let Some(environment) = shared.settings.environment.clone() else {
        return Ok(());
    };
    let base = follow(service, shared)?;
    let TrustedInputs {
        config,
        mut policies,
        ..
    } = TrustedInputs::at(&service.repo, base, service.policies.as_deref())
        .map_err(|e| fail(&e))?;
    let name = match config.environments.iter().find(|e| e.name == environment) {
        Some(env) if env.clusters.len() == 1 => env.clusters[0].name.clone(),
        _ => environment.clone(),
    };
    let clusters = crate::cluster::Clusters::routed(
        std::collections::BTreeMap::from([(environment, vec![(name, service.cluster.clone())])]),
        None,
    );
    let mut promoter = crate::promote::Promoter {
        repo: &service.repo,
        config: &config,
        renderer: &service.renderer,
        audit: &service.audit,
        clusters: &clusters,
        forge: Some(&service.forge),
        policies: &mut policies,
        auth: &service.auth,
        base_branch: &shared.base_branch,
        only: None,
    };
    shared.proves_lease().map_err(|e| fail(&e))?;
    let done = promoter
        .run(k8s_openapi::jiff::Timestamp::now())
        .await
        .map_err(|e| fail(&e))?;
    for promotion in done {
        if let crate::promote::Progress::Proposed { pull, .. } = promotion.outcome {
            tracing::info!(from = %promotion.from, to = %promotion.to, pull, "promotion proposed");
        }
    }
    Ok(())
}

/// What the sampler needs of a snapshot: the namespace, name and owners of pods, ReplicaSets
/// and Jobs, to attribute pods to workloads, and the workloads' specs, to read the requests
/// and limits usage is judged against; the rest is dropped rather than kept between detections.
fn owners_only(snapshot: crate::model::Snapshot) -> crate::model::Snapshot {
    use crate::model::objects::Pod;
    use k8s_openapi::api::batch::v1::Job as BatchJob;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let owners = |meta: ObjectMeta| ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        owner_references: meta.owner_references,
        ..ObjectMeta::default()
    };
    crate::model::Snapshot {
        pods: snapshot
            .pods
            .into_iter()
            .map(|p| Pod {
                metadata: p.metadata,
                ..Pod::default()
            })
            .collect(),
        // A ReplicaSet keeps its name, namespace and owners alone already.
        replica_sets: snapshot.replica_sets,
        jobs: snapshot
            .jobs
            .into_iter()
            .map(|j| BatchJob {
                metadata: owners(j.metadata),
                ..BatchJob::default()
            })
            .collect(),
        deployments: snapshot.deployments,
        stateful_sets: snapshot.stateful_sets,
        daemon_sets: snapshot.daemon_sets,
        ..crate::model::Snapshot::default()
    }
}

/// Gives the memory a detection freed back to the system. The allocator keeps freed pages for
/// reuse, so without this the service's resident size would stay at the peak of listing the
/// whole cluster between detections.
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; no live allocation is
    // touched, and it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}
