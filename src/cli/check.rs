//! `remediator check`: what a pull request changes, its risk, breaking CRD changes and (with a
//! cluster) its dry-run, as Markdown or JSON on stdout, one upserted pull request comment
//! (`--comment`), the job summary (`--summary`), SARIF (`--sarif`) and step outputs
//! (`--github-output`). Exit codes: 0 fine, 1 needs approvals beyond the default, 2 denied by
//! policy, 3 error.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::Value;

use remediator::check::existing::Existing;
use remediator::check::{self, CheckOptions, CheckReport};
use remediator::cluster::imperative::is_record;
use remediator::cluster::{Cluster, DryRunOptions, KubeCluster, ListOptions};
use remediator::config::Config;
use remediator::forge::Forge;
use remediator::git::ConfigRepo;
use remediator::render::Renderer;
use remediator::views::check as view;
use remediator::views::{DryRunView, Templates};

use super::super::Exit;
use super::cluster::{ByEnvironment, ClusterArgs, Route, connect, route, runtime};
use remediator::workspace::{GitHubSettings, TrustedInputs};

/// Output format of `check`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckOutput {
    /// The report as the comment shows it.
    Markdown,
    /// Everything, for machines.
    Json,
}

/// Arguments of `check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// The config repository (a checkout with both commits).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The branch the pull request merges into (`origin/main`); the diff starts at its merge
    /// base with the head.
    #[arg(long)]
    pub base: String,
    /// The pull request's head.
    #[arg(long, default_value = "HEAD")]
    pub head: String,
    /// With a cluster: the server-side dry-run and the other owners of the fields set.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Only objects applied in this environment.
    #[arg(long)]
    pub env: Option<String>,
    /// A directory of .rego files replacing the default policies.
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// A directory of templates replacing the embedded ones (`check.md.j2`, `dry_run.md.j2`).
    #[arg(long)]
    pub templates: Option<PathBuf>,
    /// Create or update the one remediator comment on the pull request (GITHUB_TOKEN).
    #[arg(long)]
    pub comment: bool,
    /// Report the check run `remediator/check` on the head: its conclusion follows the verdict,
    /// each finding annotated at its file and line; a commit status when the token may not
    /// write checks.
    #[arg(long)]
    pub check_run: bool,
    /// The commit the check run is reported on: the pull request's head, where the head
    /// checked is a merge of it (GitHub Actions' checkout of a pull request). The head when
    /// not given.
    #[arg(long, requires = "check_run")]
    pub check_run_sha: Option<String>,
    /// The pull request; from GITHUB_EVENT_PATH or GITHUB_REF when not given.
    #[arg(long)]
    pub pull: Option<u64>,
    /// Append the report to the file GITHUB_STEP_SUMMARY names.
    #[arg(long)]
    pub summary: bool,
    /// Write SARIF 2.1.0 (denials, breaking CRD changes, high risk) to this file.
    #[arg(long)]
    pub sarif: Option<PathBuf>,
    /// Write `risk` and `changed-objects` to the file GITHUB_OUTPUT names.
    #[arg(long)]
    pub github_output: bool,
    /// Approvals every pull request gets anyway (branch protection); more needed exits 1.
    #[arg(long, default_value_t = 1)]
    pub default_approvals: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckOutput::Markdown)]
    pub output: CheckOutput,
}

/// Runs the command; errors are reported here, with exit code 3.
pub fn run(args: CheckArgs) -> anyhow::Result<Exit> {
    match checked(&args) {
        Ok(outcome) => Ok(outcome),
        Err(error) => {
            eprintln!("error: {}", super::super::describe(&error));
            Ok(Exit::Code(3))
        }
    }
}

fn checked(args: &CheckArgs) -> anyhow::Result<Exit> {
    let repo = ConfigRepo::open(&args.repo)?;
    let (base, head) = (repo.resolve(&args.base)?, repo.resolve(&args.head)?);
    // Judged as the merge gate will judge it: by the configuration and the policies of the
    // base it merges into, never by the pull request's own.
    let TrustedInputs {
        mut config,
        mut policies,
        files,
    } = TrustedInputs::at(
        &repo,
        repo.merge_base(base, head)?,
        args.policies.as_deref(),
    )?;
    // The branch the pull request merges into is the one whose appliers matter.
    // Else the forge's base branch, else the one the remote's HEAD (or this checkout) names.
    if let Some(branch) = repo.branch_named(&args.base)? {
        config.origin.branch = Some(branch);
    } else if config.origin.branch.is_none() {
        config.origin.branch = repo.default_branch(&config.git.remote)?;
    }
    let templates = Templates::load(args.templates.as_deref())?;
    let renderer = Renderer::for_config(&config);
    let options = CheckOptions {
        environment: args.env.as_deref(),
        renderer: &renderer,
    };
    let mut checked = check::check(
        &repo,
        &config,
        &mut policies,
        &files,
        (base, head),
        &options,
    )?;
    let runtime = runtime()?;
    let dry_run = if args.cluster.given() {
        let (text, existing) = runtime.block_on(dry_run(args, &config, &templates, &checked))?;
        check::existing::weigh(&mut checked.report, &mut policies, existing, &repo)?;
        Some(text)
    } else {
        None
    };
    let mut markdown = view::markdown(&templates, &checked.report, dry_run.as_deref())?;
    // What the pull request shows on GitHub says when GitHub's own check on the last pusher is
    // off: without it, whoever pushed last is known only as far as the gate can read it.
    if let (true, Some(branch)) = (args.comment || args.check_run, &config.origin.branch) {
        let forge = GitHubSettings::of_or_env(&config)?.client(&runtime)?;
        let required = runtime.block_on(forge.last_push_approval(branch))?;
        if required != Some(true) {
            let said = match required {
                Some(_) => "does not require",
                None => "cannot be read to see whether it requires",
            };
            markdown.push_str(&format!(
                "\n> **Branch protection:** `{branch}` {said} approval of the most recent reviewable push. GitHub's own check that whoever pushed last did not approve is off, and the gate reads the last pusher from GitHub's timeline (force pushes) or else from the head commit's e-mails, which the pusher sets. Turn it on in the branch's protection rule.\n"
            ));
        }
    }
    if args.comment {
        comment(args, &config, &runtime, &markdown)?;
    }
    if args.check_run {
        let on = args
            .check_run_sha
            .clone()
            .unwrap_or_else(|| head.to_string());
        let run = view::check_run(&checked.report, &on, &markdown, args.default_approvals);
        let forge = GitHubSettings::of_or_env(&config)?.client(&runtime)?;
        runtime.block_on(forge.report_check(&run))?;
    }
    if args.summary {
        append_env_file("GITHUB_STEP_SUMMARY", &format!("{markdown}\n"))?;
    }
    if let Some(file) = &args.sarif {
        let text = serde_json::to_string_pretty(&view::sarif(&checked.report))?;
        std::fs::write(file, text).with_context(|| format!("cannot write {}", file.display()))?;
    }
    if args.github_output {
        let objects: Vec<&str> = checked
            .report
            .objects
            .iter()
            .map(|o| o.object.as_str())
            .collect();
        let outputs = format!(
            "risk={}\nchanged-objects={}\n",
            checked.report.assessment.risk,
            objects.join(",")
        );
        append_env_file("GITHUB_OUTPUT", &outputs)?;
    }
    let mut out = std::io::stdout().lock();
    match args.output {
        CheckOutput::Markdown => write!(out, "{markdown}")?,
        CheckOutput::Json => {
            let mut value = serde_json::to_value(&checked.report)?;
            value["dryRun"] = dry_run.map_or(Value::Null, Value::from);
            serde_json::to_writer_pretty(&mut out, &value)?;
            writeln!(out)?;
        }
    }
    Ok(outcome(&checked.report, args.default_approvals))
}

/// 2 when denied, 1 when more approvals than the default are needed, else 0.
fn outcome(report: &CheckReport, default_approvals: u32) -> Exit {
    if report.denied() {
        Exit::Code(2)
    } else if report.needs_approvals_beyond(default_approvals) {
        Exit::Code(1)
    } else {
        Exit::Code(0)
    }
}

/// The dry-run section, and what each cluster says of the CustomResourceDefinitions that
/// change (their live objects against the new schemas).
async fn dry_run(
    args: &CheckArgs,
    config: &Config,
    templates: &Templates,
    checked: &check::Checked,
) -> anyhow::Result<(String, Vec<Existing>)> {
    let mut groups = ByEnvironment::new();
    for (environment, object) in &checked.applied {
        if !is_record(object) {
            groups
                .entry(environment.clone())
                .or_default()
                .push(object.clone());
        }
    }
    let options = DryRunOptions {
        field_manager: config.field_manager.clone(),
        ..DryRunOptions::default()
    };
    // Each environment's objects are dry-run in its own cluster.
    let (routes, skipped) = check_routes(config, &args.cluster, groups).await?;
    let names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
    let name = names.join(", ");
    let mut results = Vec::new();
    let mut failed = None;
    let mut existing = Vec::new();
    for route in &routes {
        let crds: Vec<Value> = route
            .objects
            .iter()
            .filter(|o| o["kind"] == "CustomResourceDefinition")
            .cloned()
            .collect();
        if !crds.is_empty() {
            // What the policies weigh: a cluster that cannot say is an error, not a pass.
            let found = check::existing::examine(&route.cluster, &crds, &ListOptions::default())
                .await
                .with_context(|| {
                    format!("{}: cannot check the live custom resources", route.name)
                })?;
            existing.extend(found);
        }
        match route.cluster.dry_run(&route.objects, &options).await {
            Ok(found) => results.extend(found),
            Err(error) => {
                failed = Some(format!("{}: {error}", route.name));
                break;
            }
        }
    }
    let mut view = match failed {
        None => DryRunView::new(
            &name,
            &config.field_manager,
            &results,
            &config.reconcile.conflicts,
        ),
        Some(error) => DryRunView::failed(&name, &config.field_manager, error),
    };
    view.skipped = skipped;
    Ok((templates.dry_run(&view)?, existing))
}

/// Where check dry-runs each environment's objects, and what it leaves out with why. Without
/// environments, everything in the cluster the command line names. With them, each
/// environment with a context in that context (of its own kubeconfig, else the one given), and
/// objects outside every environment in the cluster given; an environment without a context,
/// or other than the one a given `--context` names, is not dry-run: no cluster but its own
/// may preview it.
async fn check_routes(
    config: &Config,
    args: &ClusterArgs,
    groups: ByEnvironment,
) -> anyhow::Result<(Vec<Route>, Vec<String>)> {
    if config.environments.is_empty() {
        return Ok((route(config, args, groups).await?, vec![]));
    }
    let mut routes = Vec::new();
    let mut skipped = Vec::new();
    for (environment, objects) in groups {
        let Some(label) = environment.as_deref() else {
            // No environment claims them: the cluster the command line names.
            let connection = connect(args).await?;
            routes.push(Route {
                name: connection.name,
                cluster: KubeCluster::new(connection.client),
                objects,
            });
            continue;
        };
        let configured = config.environments.iter().find(|e| e.name == label);
        let targets = configured.map_or(&[][..], |e| e.clusters.as_slice());
        if targets.is_empty() {
            skipped.push(format!(
                "{} objects of {label}: it has no cluster",
                objects.len()
            ));
            continue;
        }
        for target in targets {
            let context = target.context.clone();
            if args.context.as_ref().is_some_and(|given| *given != context) {
                skipped.push(format!(
                    "{} objects of {label}: its cluster {} is context {context}",
                    objects.len(),
                    target.name
                ));
                continue;
            }
            let own = ClusterArgs {
                kubeconfig: target
                    .kubeconfig
                    .clone()
                    .or_else(|| args.kubeconfig.clone()),
                context: Some(context),
            };
            let connection = connect(&own).await?;
            let name = match targets.len() {
                1 => format!("{label} ({})", connection.name),
                _ => format!("{label}/{} ({})", target.name, connection.name),
            };
            routes.push(Route {
                name,
                cluster: KubeCluster::new(connection.client),
                objects: objects.clone(),
            });
        }
    }
    Ok((routes, skipped))
}

/// The pull request: `--pull`, else the event's, else `refs/pull/N/merge`.
fn pull_number(args: &CheckArgs) -> anyhow::Result<u64> {
    if let Some(number) = args.pull {
        return Ok(number);
    }
    if let Some(path) = std::env::var_os("GITHUB_EVENT_PATH") {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", PathBuf::from(&path).display()))?;
        let event: Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not JSON", PathBuf::from(&path).display()))?;
        if let Some(number) = event["pull_request"]["number"].as_u64() {
            return Ok(number);
        }
    }
    std::env::var("GITHUB_REF")
        .ok()
        .and_then(|r| {
            r.strip_prefix("refs/pull/")?
                .split('/')
                .next()?
                .parse()
                .ok()
        })
        .context("--comment needs the pull request: give --pull N, or run on a pull_request event")
}

fn comment(
    args: &CheckArgs,
    config: &Config,
    runtime: &tokio::runtime::Runtime,
    body: &str,
) -> anyhow::Result<()> {
    let number = pull_number(args)?;
    let settings = GitHubSettings::of_or_env(config)?;
    let forge = settings.client(runtime)?;
    runtime.block_on(forge.upsert_comment(number, view::COMMENT_MARKER, body))?;
    Ok(())
}

/// Appends to the file an environment variable names (GitHub Actions' step files).
fn append_env_file(variable: &str, text: &str) -> anyhow::Result<()> {
    let path = std::env::var_os(variable).with_context(|| format!("{variable} is not set"))?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", PathBuf::from(&path).display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
