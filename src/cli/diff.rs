//! `remediator diff`: what applying a directory of the repository would change in the cluster,
//! by server-side dry-run, with `flux diff`'s exit codes (0 no change, 1 changes, 2 error).

use std::io::Write;
use std::path::PathBuf;

use remediator::cluster::{Cluster, DryRunOptions};
use remediator::model::ChangeAction;

use super::super::Exit;
use super::cluster::{ClusterArgs, repo_objects, route, runtime};

/// Arguments of `diff`.
#[derive(clap::Args)]
pub struct DiffArgs {
    /// The config repository.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// A directory or file of the repository; all of it by default.
    #[arg(long, default_value = ".")]
    pub path: PathBuf,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: DiffArgs) -> anyhow::Result<Exit> {
    let (groups, config) = repo_objects(&args.repo, &args.path)?;
    let results = runtime()?.block_on(async {
        let options = DryRunOptions {
            field_manager: config.field_manager.clone(),
            ..DryRunOptions::default()
        };
        let mut results = Vec::new();
        // Each environment's objects against its own cluster.
        for route in route(&config, &args.cluster, groups).await? {
            results.extend(route.cluster.dry_run(&route.objects, &options).await?);
        }
        anyhow::Ok(results)
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &results)?;
        writeln!(out)?;
    } else {
        for result in results
            .iter()
            .filter(|r| r.action != ChangeAction::Unchanged)
        {
            writeln!(out, "{} {}", result.object, result.action)?;
            for conflict in &result.conflicts {
                writeln!(
                    out,
                    "  field {} is owned by {}",
                    conflict.field, conflict.manager
                )?;
            }
            write!(out, "{}", result.diff)?;
        }
        let count = |action| results.iter().filter(|r| r.action == action).count();
        writeln!(
            out,
            "{} objects: {} to create, {} to configure, {} unchanged",
            results.len(),
            count(ChangeAction::Created),
            count(ChangeAction::Configured),
            count(ChangeAction::Unchanged)
        )?;
    }
    let changed = results.iter().any(|r| r.action != ChangeAction::Unchanged);
    Ok(if changed { Exit::Changes } else { Exit::Ok })
}
