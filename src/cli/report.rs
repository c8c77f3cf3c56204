//! `remediator report weekly|security`: renders a report as Markdown or JSON on stdout, and
//! with `--publish github` keeps it as the one open issue of its kind.

use std::io::Write;
use std::path::PathBuf;

use k8s_openapi::jiff::Timestamp;

use remediator::audit;
use remediator::git::ConfigRepo;
use remediator::report::{self, capacity, runbook, security, weekly};
use remediator::snapshot;
use remediator::views::Templates;
use remediator::workspace::{GitHubSettings, audit_log};

use super::super::Exit;
use super::cluster::{ClusterArgs, connect, runtime};

/// A report's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Health of the week from the audit trail: proposed, merged, verified, rolled back, MTTD
    /// and MTTR against the week before, recurring problems.
    Weekly,
    /// Security posture of the repository's objects and the cluster's workloads.
    Security,
    /// Requests against use, node pool headroom, limits against peaks, forecasts and the
    /// largest right-sizing savings, from the cluster and its usage history.
    Capacity,
    /// Per finding code, the causes, remedies and rollbacks of the whole audit trail.
    Runbook,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Weekly => "weekly",
            Kind::Security => "security",
            Kind::Capacity => "capacity",
            Kind::Runbook => "runbook",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Weekly => "remediator: weekly health",
            Kind::Security => "remediator: security posture",
            Kind::Capacity => "remediator: capacity",
            Kind::Runbook => "remediator: runbook from this cluster's history",
        }
    }
}

/// Output of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Markdown with Mermaid charts.
    Markdown,
    /// JSON.
    Json,
}

/// Where a report is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Publish {
    /// One open issue per kind, updated in place.
    Github,
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// Which report.
    #[arg(value_enum)]
    pub kind: Kind,
    /// The config repository.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// A recorded snapshot (with its usage history), for `capacity`, the cluster's side of
    /// `security`, and what `weekly` finds open now.
    #[arg(long)]
    pub snapshot: Option<PathBuf>,
    /// The live cluster, for `capacity` (usage from `metrics.prometheus` when configured) and
    /// the cluster's side of `security`.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    pub output: Format,
    /// Keep the report as the one open issue of its kind.
    #[arg(long, value_enum)]
    pub publish: Option<Publish>,
    /// The end of the week (RFC 3339); now when not given.
    #[arg(long)]
    pub now: Option<String>,
    /// A directory of .rego files replacing the default security rules.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// A directory of templates replacing the embedded ones.
    #[arg(long)]
    pub templates: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<Exit> {
    let (config, index) = super::super::load(&args.repo)?;
    let templates = Templates::load(args.templates.as_deref())?;
    let (json, markdown) = match args.kind {
        Kind::Weekly => {
            let now: Timestamp = match &args.now {
                Some(text) => text
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--now {text}: not an RFC 3339 time: {e}"))?,
                None => Timestamp::now(),
            };
            let repo = ConfigRepo::open(&args.repo).ok();
            let log = audit_log(&args.repo, &config, repo.as_ref())?;
            let chains = audit::history(&log.read()?, None);
            let mut view = weekly::weekly(&chains, now);
            if let Some(loaded) = cluster(&args, &config, true)? {
                view.open_now = weekly::open_now(
                    &loaded.snapshot,
                    &remediator::detect::DetectOptions::at(now),
                );
            }
            (
                serde_json::to_value(&view)?,
                templates.report("weekly", &view)?,
            )
        }
        Kind::Security => {
            let mut rules = security::rules(args.rules.as_deref())?;
            let mut findings = security::scan_repository(&mut rules, &index)?;
            if let Some(loaded) = cluster(&args, &config, false)? {
                findings.extend(security::scan_snapshot(&mut rules, &loaded.snapshot)?);
            }
            let view = security::report(findings);
            (
                serde_json::to_value(&view)?,
                templates.report("security", &view)?,
            )
        }
        Kind::Runbook => {
            let repo = ConfigRepo::open(&args.repo).ok();
            let log = audit_log(&args.repo, &config, repo.as_ref())?;
            let sections = runbook::runbook(&audit::history(&log.read()?, None));
            let view = serde_json::json!({ "sections": sections });
            (view.clone(), templates.report("runbook", &view)?)
        }
        Kind::Capacity => {
            let loaded = cluster(&args, &config, true)?.ok_or_else(|| {
                anyhow::anyhow!("the capacity report reads a cluster: give --snapshot, or --kubeconfig/--context")
            })?;
            let now = match &args.now {
                Some(text) => text
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--now {text}: not an RFC 3339 time: {e}"))?,
                None => loaded.snapshot.taken_at().unwrap_or_else(Timestamp::now),
            };
            let view = capacity::capacity(
                &loaded.snapshot,
                &remediator::detect::DetectOptions::at(now),
            );
            (
                serde_json::to_value(&view)?,
                templates.report("capacity", &view)?,
            )
        }
    };
    let mut out = std::io::stdout().lock();
    match args.output {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?,
        Format::Markdown => write!(out, "{markdown}")?,
    }
    if args.publish == Some(Publish::Github) {
        let settings = GitHubSettings::of_or_env(&config)?;
        let runtime = runtime()?;
        let github = settings.client(&runtime)?;
        let (number, upserted) = runtime.block_on(github.upsert_issue(
            &report::marker(args.kind.name()),
            args.kind.title(),
            &markdown,
            report::LABEL,
        ))?;
        eprintln!("issue #{number} {upserted:?}");
    }
    Ok(Exit::Ok)
}

/// The cluster the report reads: the recorded snapshot, or the live cluster (with usage from
/// `metrics.prometheus` when `usage` and configured, else metrics-server's sample); none when
/// neither is given. Every problem reading it is printed.
fn cluster(
    args: &ReportArgs,
    config: &remediator::config::Config,
    usage: bool,
) -> anyhow::Result<Option<snapshot::Loaded>> {
    let loaded = match (&args.snapshot, args.cluster.given()) {
        (Some(_), true) => {
            anyhow::bail!("give either --snapshot or --kubeconfig/--context, not both")
        }
        (Some(path), false) => snapshot::load(path)?,
        (None, true) => {
            use remediator::cluster::Cluster;
            let runtime = runtime()?;
            let connection = runtime.block_on(connect(&args.cluster))?;
            let cluster = remediator::cluster::KubeCluster::new(connection.client);
            let options = remediator::cluster::SnapshotOptions {
                metrics: usage,
                logs: false,
                ..Default::default()
            };
            let mut loaded = runtime.block_on(cluster.snapshot(&options))?;
            if usage {
                runtime.block_on(remediator::cluster::prometheus::load_usage(
                    config.prometheus.as_ref(),
                    Some(&connection.name),
                    &mut loaded,
                    None,
                ));
            }
            loaded
        }
        (None, false) => return Ok(None),
    };
    for problem in &loaded.problems {
        eprintln!("warning: {problem}");
    }
    Ok(Some(loaded))
}
