//! `remediator reconcile`, `rollback` and `history`: the merge path on a commit, a requested
//! rollback, and the audit trail read back. Builds the GitHub client (token from
//! `GITHUB_TOKEN`), the cluster client and the audit log.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use remediator::audit;
use remediator::cluster::{Clusters, KubeCluster};
use remediator::config::Config;
use remediator::git::{Auth, ConfigRepo};
use remediator::reconcile::driver::{Driver, Reach, base_branch};
use remediator::reconcile::{Outcome as Ended, Report};
use remediator::render::Renderer;
use remediator::views::Templates;
use remediator::workspace::{TrustedInputs, audit_log, git_auth, open_or_clone};

use super::super::Exit;
use super::cluster::{ClusterArgs, clusters, runtime};

/// Arguments of `reconcile` and `rollback`.
#[derive(clap::Args)]
pub struct ReconcileArgs {
    /// The config repository: a clone with the remote reverts are pushed to, or a URL
    /// (`https://`, `file://`) that remediator clones and keeps in its cache.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The merged commit (a sha or any name Git knows).
    #[arg(long)]
    pub commit: String,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Only objects applied in this environment.
    #[arg(long)]
    pub env: Option<String>,
    /// A directory of .rego files replacing the default policies.
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// A directory of templates replacing the embedded ones (`reconcile.md.j2`).
    #[arg(long)]
    pub templates: Option<PathBuf>,
    /// Without the forge: no approvals can be read, so only changes that need none pass.
    #[arg(long)]
    pub no_forge: bool,
    /// Seconds applied objects get to become healthy (the config's when not given).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = super::super::Output::Text)]
    pub output: super::super::Output,
}

/// Arguments of `history`.
#[derive(clap::Args)]
pub struct HistoryArgs {
    /// The config repository.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Only chains that touch this object (KIND/NAMESPACE/NAME).
    #[arg(long)]
    pub object: Option<String>,
}

/// Runs `reconcile`, or `rollback` when `rollback` is set. Each part of the chain of pending
/// commits is judged by the configuration and policies of the commit before it: a run stops
/// after a commit that changes them, and the next part gets a context built from it.
pub fn run(args: ReconcileArgs, rollback: bool) -> anyhow::Result<Exit> {
    let auth = git_auth();
    let (path, repo, cloned) = open_or_clone(&args.repo, &auth)?;
    // The checkout's own configuration only says where to fetch the base branch from; every
    // decision is taken on the configuration before the merge.
    let checkout = Config::load(&path)?;
    let base = fetch_base(&repo, &checkout, &auth)?;
    if cloned {
        repo.checkout_detached(base)?;
    }
    let commit = repo.resolve(&args.commit)?;
    let latest = TrustedInputs::before(&repo, commit, args.policies.as_deref())?;
    if base_branch(&latest.config) != base_branch(&checkout)
        || latest.config.git.remote != checkout.git.remote
    {
        fetch_base(&repo, &latest.config, &auth)?;
    }
    let audit = audit_log(&path, &latest.config, Some(&repo))?;
    let templates = Templates::load(args.templates.as_deref())?;
    let runtime = runtime()?;
    let renderer = Renderer::for_config(&latest.config);
    let reach = ArgsReach(&args.cluster);
    let driver = Driver {
        repo: &repo,
        audit: &audit,
        templates: &templates,
        renderer: &renderer,
        auth: &auth,
        reach: &reach,
        policies: args.policies.clone(),
        environment: args.env.clone(),
        timeout: args.timeout.map(Duration::from_secs),
        forge: !args.no_forge,
        holder: remediator::cluster::lock::holder_name(),
        guard: remediator::reconcile::Guard::default(),
    };
    let reports = runtime.block_on(async {
        if rollback {
            driver.rollback(commit).await
        } else {
            driver.reconcile(commit).await
        }
    })?;
    print(&reports, args.output)?;
    let fine = |report: &Report| match report.outcome {
        Ended::AlreadyDone { .. } | Ended::NoChanges | Ended::Healthy { .. } => true,
        Ended::RolledBack { .. } => rollback,
        Ended::Refused { .. } | Ended::Failed { .. } | Ended::Waiting { .. } => false,
    };
    Ok(if reports.iter().all(fine) {
        Exit::Ok
    } else {
        Exit::Changes
    })
}

/// The clusters the command line and each configuration name.
struct ArgsReach<'a>(&'a ClusterArgs);

impl Reach for ArgsReach<'_> {
    async fn clusters(
        &self,
        config: &Config,
        environment: Option<&str>,
    ) -> Result<Clusters<KubeCluster>, String> {
        clusters(config, self.0, environment)
            .await
            .map_err(|e| format!("{e:#}"))
    }
}

fn fetch_base(repo: &ConfigRepo, config: &Config, auth: &Auth) -> anyhow::Result<git2::Oid> {
    let (remote, branch) = (&config.git.remote, base_branch(config));
    repo.fetch_branch(remote, &branch, auth)
        .with_context(|| format!("cannot fetch {branch} from {remote}"))
}

/// Prints the reports: as JSON, the last alone when there is one (as before a run weighed
/// several commits), else the list; as text, each in turn.
fn print(reports: &[Report], output: super::super::Output) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if output == super::super::Output::Json {
        match reports {
            [one] => serde_json::to_writer_pretty(&mut out, one)?,
            all => serde_json::to_writer_pretty(&mut out, all)?,
        }
        writeln!(out)?;
        return Ok(());
    }
    for report in reports {
        print_one(&mut out, report)?;
    }
    Ok(())
}

fn print_one(out: &mut impl Write, report: &Report) -> anyhow::Result<()> {
    let pull = report.pull.map(|n| format!(" (#{n})")).unwrap_or_default();
    writeln!(
        out,
        "commit {}{pull}: {}",
        report.commit,
        report.objects.join(", ")
    )?;
    for line in &report.not_rendered {
        writeln!(out, "not rendered: {line}")?;
    }
    match &report.outcome {
        Ended::AlreadyDone { event } => writeln!(
            out,
            "already done: {}",
            serde_json::to_string(event)?.trim_matches('"')
        )?,
        Ended::NoChanges => writeln!(out, "no Kubernetes object changes")?,
        Ended::Refused { reasons } => {
            writeln!(out, "refused, nothing applied:")?;
            for reason in reasons {
                writeln!(out, "  {reason}")?;
            }
        }
        Ended::Healthy { changes } => {
            for entry in &changes.entries {
                writeln!(out, "{} {}", entry.subject, entry.action)?;
            }
            writeln!(out, "healthy")?;
        }
        Ended::RolledBack {
            reason,
            revert,
            healthy,
            pull,
        } => {
            writeln!(out, "{reason}")?;
            match (pull, healthy) {
                (Some(n), _) => writeln!(out, "rollback proposed in #{n} (revert {revert})")?,
                (None, Some(true)) => writeln!(out, "rolled back by {revert}; healthy")?,
                (None, _) => writeln!(out, "rolled back by {revert}; still not healthy")?,
            }
        }
        Ended::Failed { reason } => writeln!(out, "not healthy: {reason}")?,
        Ended::Waiting { on } => writeln!(
            out,
            "waiting: not weighed until {on} is resolved (approved, or reverted)"
        )?,
    }
    Ok(())
}

/// Runs `history`.
pub fn history(args: HistoryArgs) -> anyhow::Result<Exit> {
    let config = Config::load(&args.repo)?;
    let repo = ConfigRepo::open(&args.repo).ok();
    let log = audit_log(&args.repo, &config, repo.as_ref())?;
    let chains = audit::history(&log.read()?, args.object.as_deref());
    if chains.is_empty() {
        eprintln!("no records in {}", log.location());
        return Ok(Exit::NothingFound);
    }
    write!(
        std::io::stdout().lock(),
        "{}",
        audit::text(&chains, log.key())
    )?;
    Ok(Exit::Ok)
}
