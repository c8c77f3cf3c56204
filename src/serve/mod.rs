//! `remediator serve`: the long-running service. It watches the cluster and runs detection when
//! objects change (debounced) and on a resync interval, takes Alertmanager's alerts and GitHub's
//! webhooks, and runs the same library functions as the commands: [`crate::propose`] and
//! [`crate::publish`] for findings, the reconcile [`crate::reconcile::driver`] for pushes to the
//! base branch. One worker takes jobs from a bounded queue; a full queue answers 503. It serves
//! `/healthz`, `/readyz` and `/metrics`. I/O: the cluster, Git, GitHub and HTTP.

pub mod alerts;
mod endpoints;
pub mod leader;
pub mod metrics;
pub mod replays;
pub mod samples;

mod watch;
pub mod webhook;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::{Mutex, mpsc};

use crate::audit::AuditLog;
use crate::cluster::KubeCluster;
use crate::config::Config;
use crate::config::ServeSettings;
use crate::forge::GitHub;
use crate::git::{Auth, ConfigRepo};
use crate::render::Renderer;
use crate::views::Templates;
use crate::workspace::GitHubSettings;
use metrics::Metrics;

/// What can stop the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A secret the configuration names cannot be read.
    #[error("serve: {0}")]
    Secret(String),
    /// The HTTP server failed.
    #[error("the HTTP server failed: {0}")]
    Http(#[source] std::io::Error),
}

/// A job for the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Detect, propose, publish, close what cleared.
    Detect,
    /// What a GitHub delivery asks for.
    GitHub(webhook::Asked),
    /// Open the promotion pull requests that are due.
    Promote,
}

/// Everything the worker uses, built by the command.
pub struct Service {
    /// The config repository's clone.
    pub repo: ConfigRepo,
    /// The configuration of the checkout: where to fetch, and the service's settings.
    pub config: Config,
    /// The cluster the service runs in.
    pub cluster: KubeCluster,
    /// The client the watches use.
    pub client: kube::Client,
    /// GitHub's settings.
    pub github: GitHubSettings,
    /// The GitHub client.
    pub forge: GitHub,
    /// Git credentials.
    pub auth: Auth,
    /// The audit log.
    pub audit: AuditLog,
    /// The templates.
    pub templates: Templates,
    /// Renders the builds.
    pub renderer: Renderer,
    /// A directory of policies replacing the defaults.
    pub policies: Option<PathBuf>,
    /// Who holds the locks.
    pub holder: String,
}

/// What the HTTP handlers, the watches and the worker share.
pub(crate) struct Shared {
    settings: ServeSettings,
    base_branch: String,
    metrics: Metrics,
    jobs: mpsc::Sender<Job>,
    /// A detection is queued and not started: more changes need no second one.
    detect_queued: AtomicBool,
    /// The delivery ids of the replay window, kept in a ConfigMap.
    replays: replays::Store,
    episodes: Mutex<alerts::Episodes>,
    github_secret: Option<Vec<u8>>,
    alertmanager_token: Option<String>,
    /// The watches have listed everything once.
    synced: AtomicBool,
    /// GitHub answered.
    reachable: AtomicBool,
    /// Why the clone does not follow the base branch: its last fetch failed.
    stale: std::sync::Mutex<Option<String>>,
    started: Instant,
    /// This replica holds the leader's lease.
    leading: AtomicBool,
    /// When the lease was last renewed (the renewal's sending).
    renewed_at: std::sync::Mutex<Option<Instant>>,
    /// Where the leader is reached, when another replica leads.
    leader_address: std::sync::Mutex<Option<String>>,
    /// Wakes the worker when this replica starts leading.
    wake: tokio::sync::Notify,
    /// This replica's own address.
    own_address: String,
    /// The usage history sampled from metrics.k8s.io.
    history: std::sync::Mutex<samples::History>,
    /// The last snapshot detection read: the sampler's map from pods to workloads.
    latest: std::sync::Mutex<Option<Arc<crate::model::Snapshot>>>,
}

impl Shared {
    /// Records the election's outcome.
    fn set_leader(&self, leads: bool, address: Option<String>) {
        let was = self.leading.swap(leads, Ordering::SeqCst);
        self.metrics.leader.set(i64::from(leads));
        if let Ok(mut known) = self.leader_address.lock() {
            *known = if leads { None } else { address };
        }
        if leads && !was {
            tracing::info!("leading");
            self.wake.notify_waiters();
            // A new leader catches up with what changed while it followed.
            self.detect();
        } else if !leads && was {
            tracing::warn!("no longer leading");
        }
    }

    /// Records a renewal of the lease, sent at `at`.
    fn renewed(&self, at: Instant) {
        *self.renewed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
    }

    /// Whether this replica can prove that it leads: it holds the lease, renewed within the
    /// last two thirds of its duration (before any other replica may take it over). Asked
    /// before each write.
    fn proves_lease(&self) -> Result<(), String> {
        if !self.leading.load(Ordering::SeqCst) {
            return Err("this replica no longer leads".into());
        }
        let renewed = *self.renewed_at.lock().unwrap_or_else(|e| e.into_inner());
        let limit = self.settings.lease * 2 / 3;
        match renewed {
            Some(at) if at.elapsed() < limit => Ok(()),
            Some(at) => Err(format!(
                "the leader lease was last renewed {:.1}s ago, past {:.1}s: another replica may hold it",
                at.elapsed().as_secs_f64(),
                limit.as_secs_f64()
            )),
            None => Err("the leader lease was never renewed".into()),
        }
    }

    /// Where to forward a delivery: the leader's address, unless this replica leads.
    fn forward_to(&self) -> Option<String> {
        if self.leading.load(Ordering::SeqCst) {
            return None;
        }
        let known = self.leader_address.lock().ok()?.clone()?;
        (known != self.own_address).then_some(known)
    }

    /// Queues a detection unless one is already waiting, or this replica follows; false when
    /// the queue is full.
    fn detect(&self) -> bool {
        if !self.leading.load(Ordering::SeqCst) {
            return true;
        }
        if self.detect_queued.swap(true, Ordering::SeqCst) {
            return true;
        }
        let sent = self.jobs.try_send(Job::Detect).is_ok();
        if !sent {
            self.detect_queued.store(false, Ordering::SeqCst);
        }
        self.metrics.queue.set(self.depth());
        sent
    }

    /// Queues a job; false when the queue is full.
    fn push(&self, job: Job) -> bool {
        let sent = self.jobs.try_send(job).is_ok();
        self.metrics.queue.set(self.depth());
        sent
    }

    fn depth(&self) -> i64 {
        (self.jobs.max_capacity() - self.jobs.capacity()) as i64
    }

    fn ready(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
            && self.reachable.load(Ordering::SeqCst)
            && self.stale_reason().is_none()
    }

    /// Why the clone does not follow the base branch, when its last fetch failed.
    fn stale_reason(&self) -> Option<String> {
        self.stale.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Runs the service until `shutdown` resolves; the job under way is finished first.
pub async fn run(
    service: Service,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let settings = service.config.serve.clone();
    let read = |source: &Option<crate::config::SecretSource>| -> Result<Option<String>, Error> {
        source
            .as_ref()
            .map(|s| s.read().map_err(Error::Secret))
            .transpose()
    };
    let github_secret = read(&settings.github_webhook_secret)?.map(String::into_bytes);
    let alertmanager_token = read(&settings.alertmanager_token)?;
    if alertmanager_token.is_none() && !settings.unauthenticated_alerts {
        return Err(Error::Secret(
            "the Alertmanager intake (/alerts) needs `serve.alertmanagerToken` in remediator.yaml: anyone who reaches the port could otherwise open pull requests; pass --unauthenticated-alerts to run without one on purpose".into(),
        ));
    }
    let (jobs, queue) = mpsc::channel(settings.queue);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| Error::Listen {
            address: settings.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(Error::Http)?;
    // Where the other replicas reach this one: as configured, else the pod's IP (POD_IP, from
    // the downward API) when listening on every address, else the address bound.
    let own_address = settings.advertise.clone().unwrap_or_else(|| {
        match std::env::var("POD_IP").ok().filter(|ip| !ip.is_empty()) {
            Some(ip) if bound.ip().is_unspecified() => format!("{ip}:{}", bound.port()),
            _ => bound.to_string(),
        }
    });
    let shared = Arc::new(Shared {
        base_branch: service.github.base_branch.clone(),
        metrics: Metrics::default(),
        jobs,
        detect_queued: AtomicBool::new(false),
        replays: replays::Store::new(
            service.client.clone(),
            &settings.lease_namespace,
            replays::WINDOW,
            10_000,
        ),
        episodes: Mutex::new(alerts::Episodes::default()),
        github_secret,
        alertmanager_token,
        synced: AtomicBool::new(false),
        reachable: AtomicBool::new(false),
        stale: std::sync::Mutex::new(None),
        started: Instant::now(),
        leading: AtomicBool::new(false),
        renewed_at: std::sync::Mutex::new(None),
        leader_address: std::sync::Mutex::new(None),
        wake: tokio::sync::Notify::new(),
        own_address: own_address.clone(),
        // Two hours of samples, at most 720 a series (every 10 s).
        history: std::sync::Mutex::new(samples::History::new(7200, 720)),
        latest: std::sync::Mutex::new(None),
        settings,
    });
    let sampler = tokio::spawn(sample(
        service.client.clone(),
        shared.clone(),
        stopped.clone(),
    ));
    let promotions = tokio::spawn(promote_on_interval(
        shared.clone(),
        service.config.promotion.clone(),
        stopped.clone(),
    ));
    let identity = format!("{}@{own_address}", service.holder);
    // The election stops only after the worker: the lease is kept, and renewed, while the job
    // under way finishes, so that no other replica writes meanwhile.
    let (stop_election, election_stopped) = tokio::sync::watch::channel(false);
    let election = tokio::spawn(leader::run(
        service.client.clone(),
        shared.clone(),
        identity,
        election_stopped,
    ));
    tracing::info!(address = %bound, "listening");
    let watches = tokio::spawn(watch::run(
        service.client.clone(),
        shared.clone(),
        stopped.clone(),
    ));
    // Git's repository handle is not shared between threads: the worker stays on this one.
    let local = tokio::task::LocalSet::new();
    let worker = local.spawn_local(worker::run(service, shared.clone(), queue, stopped.clone()));
    let app = endpoints::router(shared.clone());
    let mut on_stop = stopped.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = on_stop.wait_for(|s| *s).await;
    });
    let server = tokio::spawn(async move { server.await });
    local
        .run_until(async {
            shutdown.await;
            tracing::info!("stopping; the job under way is finished first");
            let _ = stop.send(true);
            watches.abort();
            sampler.abort();
            promotions.abort();
            let _ = worker.await;
            // The lease is given up once the job under way is done.
            let _ = stop_election.send(true);
            let _ = election.await;
        })
        .await;
    match server.await {
        Ok(result) => result.map_err(Error::Http),
        Err(_) => Ok(()),
    }
}

/// Samples metrics.k8s.io on the interval into the usage history, attributing pods to their
/// workloads by the last snapshot detection read. When the usage findings the history now
/// shows differ from those of the last sample (`high-cpu` has lasted long enough, or stopped),
/// a detection is queued rather than left to the next resync.
async fn sample(
    client: kube::Client,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(shared.settings.metrics_interval);
    let options = crate::cluster::SnapshotOptions::default();
    let mut shown = std::collections::BTreeSet::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        let latest = shared.latest.lock().ok().and_then(|l| l.clone());
        let Some(snapshot) = latest else { continue };
        match crate::cluster::live::sample_pod_metrics(&client, &options).await {
            Ok(Some(items)) => match crate::cluster::live::usage(&snapshot, &items) {
                Ok(usage) => {
                    let history = match shared.history.lock() {
                        Ok(mut history) => {
                            history.absorb(&usage);
                            history.history()
                        }
                        Err(_) => continue,
                    };
                    let now = usage_findings(&snapshot, history);
                    if now != shown {
                        shown = now;
                        shared.detect();
                    }
                }
                Err(error) => tracing::warn!(%error, "metrics sample"),
            },
            // No metrics-server: no usage to keep.
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "metrics sample"),
        }
    }
}

/// The usage findings a history shows against the workloads of `snapshot`, as code, object and
/// container.
fn usage_findings(
    snapshot: &crate::model::Snapshot,
    history: crate::model::UsageHistory,
) -> std::collections::BTreeSet<String> {
    let workloads = crate::model::Snapshot {
        deployments: snapshot.deployments.clone(),
        stateful_sets: snapshot.stateful_sets.clone(),
        daemon_sets: snapshot.daemon_sets.clone(),
        usage: history,
        ..crate::model::Snapshot::default()
    };
    let options = crate::detect::DetectOptions::at(k8s_openapi::jiff::Timestamp::now());
    crate::detect::usage::detect(&workloads, &options)
        .into_iter()
        .map(|f| format!("{} {} {:?}", f.code, f.subject, f.container))
        .collect()
}

/// Queues a promotion run while leading, a quarter of the soak apart (at least ten seconds, at
/// most the resync interval), so that a promotion opens soon after its soak ends; nothing when
/// the configuration orders no promotion.
async fn promote_on_interval(
    shared: Arc<Shared>,
    promotion: crate::config::PromotionSettings,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    if promotion.order.len() < 2 {
        return;
    }
    let every = (promotion.soak / 4)
        .max(std::time::Duration::from_secs(1))
        .min(shared.settings.resync);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        if shared.leading.load(Ordering::SeqCst) {
            shared.push(Job::Promote);
        }
    }
}
