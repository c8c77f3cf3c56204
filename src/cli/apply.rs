//! `remediator apply`: server-side apply of a directory of the repository, in stages, under the
//! configured field manager; `--dry-run` stores nothing, `--wait` waits for health. Exit codes:
//! 0 applied (and healthy), 1 applied but not healthy, 2 error (the objects done before it are
//! listed).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use remediator::cluster::{ApplyOptions, Cluster, KubeCluster, WaitOptions, WaitOutcome};
use remediator::model::{ChangeAction, ChangeSet, ObjectRef};

use super::super::Exit;
use super::cluster::{ClusterArgs, Route, repo_objects, route, runtime};

/// Arguments of `apply`.
#[derive(clap::Args)]
pub struct ApplyArgs {
    /// The config repository.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// A directory or file of the repository.
    #[arg(long)]
    pub path: PathBuf,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Ask the API server what would change; store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait until the applied objects are healthy.
    #[arg(long)]
    pub wait: bool,
    /// Seconds `--wait` gives them.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Objects written at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

/// Runs the command: each environment's objects applied to its own cluster, one after the
/// other; the first that fails stops the rest.
pub fn run(args: ApplyArgs) -> anyhow::Result<Exit> {
    let (groups, config) = repo_objects(&args.repo, &args.path)?;
    let options = ApplyOptions {
        field_manager: config.field_manager.clone(),
        conflicts: config.reconcile.conflicts,
        concurrency: args.concurrency,
        dry_run: args.dry_run,
        progress: std::io::stderr().is_terminal(),
        ..ApplyOptions::default()
    };
    runtime()?.block_on(async {
        let routes = route(&config, &args.cluster, groups).await?;
        let mut outcome = Exit::Ok;
        for Route {
            cluster, objects, ..
        } in &routes
        {
            if !matches!(
                apply_one(cluster, objects, &options, &args).await?,
                Exit::Ok
            ) {
                outcome = Exit::Changes;
                break;
            }
        }
        Ok(outcome)
    })
}

async fn apply_one(
    cluster: &KubeCluster,
    objects: &[serde_json::Value],
    options: &ApplyOptions,
    args: &ApplyArgs,
) -> anyhow::Result<Exit> {
    let changes = match cluster.apply(objects, options).await {
        Ok(changes) => changes,
        Err(stopped) => {
            print_changes(&stopped.changes, args.dry_run)?;
            return Err(stopped.into());
        }
    };
    print_changes(&changes, args.dry_run)?;
    if !args.wait || args.dry_run {
        return Ok(Exit::Ok);
    }
    let subjects: Vec<ObjectRef> = changes.entries.iter().map(|e| e.subject.clone()).collect();
    let wait = WaitOptions {
        timeout: Duration::from_secs(args.timeout),
        ..WaitOptions::default()
    };
    let report = cluster.wait(&subjects, &wait).await?;
    let mut out = std::io::stdout().lock();
    for (object, health) in &report.health {
        writeln!(out, "{object} {}: {}", health.status, health.message)?;
    }
    Ok(match report.outcome {
        WaitOutcome::Healthy => {
            writeln!(out, "healthy after {} s", report.elapsed.as_secs())?;
            Exit::Ok
        }
        WaitOutcome::Failed { object, message } => {
            writeln!(out, "failed: {object}: {message}")?;
            Exit::Changes
        }
        WaitOutcome::TimedOut => {
            writeln!(out, "timed out after {} s", args.timeout)?;
            Exit::Changes
        }
    })
}

fn print_changes(changes: &ChangeSet, dry_run: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let suffix = if dry_run { " (dry run)" } else { "" };
    for entry in &changes.entries {
        let note = match entry.action {
            ChangeAction::Skipped => " (managed by a GitOps tool; left to it)",
            _ => "",
        };
        writeln!(out, "{} {}{note}{suffix}", entry.subject, entry.action)?;
    }
    Ok(())
}
