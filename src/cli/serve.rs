//! `remediator serve`: builds the service's clients (the cluster from the command line, the
//! kubeconfig or the pod's service account; GitHub from the configuration and `GITHUB_TOKEN`),
//! opens or clones the config repository (a checkout with uncommitted changes is refused: the
//! service moves its clone to the remote's base branch before each job), and runs
//! [`remediator::serve`] until SIGTERM or Ctrl-C.

use std::path::PathBuf;

use anyhow::Context as _;

use remediator::cluster::KubeCluster;
use remediator::config::Config;
use remediator::render::Renderer;
use remediator::serve::{self, Service};
use remediator::views::Templates;
use remediator::workspace::{GitHubSettings, audit_log, git_auth, open_or_clone};

use super::super::Exit;
use super::cluster::{ClusterArgs, connect, runtime};

/// Arguments of `serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// The config repository: a clone, or a URL (`https://`, `file://`) that remediator clones
    /// and keeps in its cache. Its `remediator.yaml` holds `serve:` and the forge.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The cluster the service runs in: the pod's service account when not given.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// A directory of .rego files replacing the default policies.
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// A directory of templates replacing the embedded ones.
    #[arg(long)]
    pub templates: Option<PathBuf>,
    /// The address to listen on, replacing `serve.listen`.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Log lines as text, or as JSON objects (one a line) for a log pipeline.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Take Alertmanager's alerts without a bearer token. Without this flag, `serve` refuses
    /// to start when `serve.alertmanagerToken` is not set.
    #[arg(long)]
    pub unauthenticated_alerts: bool,
}

/// How `serve` logs.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-11-26T10:00:00Z  INFO remediator::serve: listening address=0.0.0.0:8080`.
    Text,
    /// `{"timestamp":...,"level":"INFO","fields":{"message":"listening",...},"target":...}`.
    Json,
}

/// Sends the service's log to stderr, in the format asked for.
fn init_logs(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO);
    let result = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    // Only a second initialisation fails, and the first one logs.
    drop(result);
}

/// Runs the service.
pub fn run(args: ServeArgs) -> anyhow::Result<Exit> {
    init_logs(args.log_format);
    let auth = git_auth();
    let (path, repo, _) = open_or_clone(&args.repo, &auth)?;
    // Every job moves the clone to the remote's base branch, its working tree forced to match:
    // a checkout with work in it is not the service's to move.
    let changed = repo.uncommitted_files()?;
    if !changed.is_empty() {
        anyhow::bail!(
            "{}: serve moves this clone to the remote's base branch before each job, and {} {} changes not committed ({}); commit or stash them, or give --repo the repository's URL so that serve keeps a clone of its own",
            path.display(),
            changed.len(),
            if changed.len() == 1 {
                "file has"
            } else {
                "files have"
            },
            changed
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut config = Config::load(&path)?;
    if let Some(listen) = args.listen {
        config.serve.listen = listen;
    }
    config.serve.unauthenticated_alerts = args.unauthenticated_alerts;
    let github = GitHubSettings::of(&config)?.context(
        "serve needs `forge: {type: github, repository: owner/name}` in remediator.yaml",
    )?;
    let runtime = runtime()?;
    let connection = runtime.block_on(connect(&args.cluster))?;
    let forge = github.client(&runtime)?;
    let service = Service {
        audit: audit_log(&path, &config, Some(&repo))?,
        repo,
        cluster: KubeCluster::new(connection.client.clone()),
        client: connection.client,
        github,
        forge,
        auth,
        templates: Templates::load(args.templates.as_deref())?,
        renderer: Renderer::for_config(&config),
        policies: args.policies.clone(),
        holder: remediator::cluster::lock::holder_name(),
        config,
    };
    runtime.block_on(serve::run(service, stop_signal()))?;
    Ok(Exit::Ok)
}

/// SIGTERM (the kubelet stopping the pod) or Ctrl-C.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
