//! `remediator propose`: load the snapshot, the repository, its policies and templates; plan;
//! print; publish branches to the local forge; write the rendered pull requests.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::json;

use remediator::assess::Policies;
use remediator::cluster::Resolver;
use remediator::cluster::{Cluster, KubeCluster, SnapshotOptions};
use remediator::config::{Config, ForgeSettings};
use remediator::git::{ConfigRepo, GitHistory};
use remediator::manifests::Scopes;
use remediator::propose::{
    Inputs, LiveCluster, Plan, ProposeOptions, Published, add_dry_runs, explain_configured,
    plan as plan_of, publish_local,
};
use remediator::remedy::{NoHistory, ValueHistory};
use remediator::render::Renderer;
use remediator::snapshot;
use remediator::views::Templates;

use super::super::{Exit, ForgeArg, ProposeArgs, ProposeOutput};
use super::cluster::{Connection, connections, environment_of, runtime};
use remediator::publish::{self, Clearing};
use remediator::workspace::{GitHubSettings, audit_log, git_auth};

/// Where the proposals go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    None,
    Local,
    GitHub,
}

/// Runs the command.
pub fn run(args: ProposeArgs) -> anyhow::Result<Exit> {
    if args.snapshot.is_some() && args.cluster.given() {
        anyhow::bail!("give either --snapshot or --kubeconfig/--context, not both");
    }
    // The repository is indexed while the snapshot is read: neither needs the other.
    let (repo, snapshot) = std::thread::scope(|scope| {
        let snapshot = args
            .snapshot
            .as_deref()
            .map(|path| scope.spawn(|| snapshot::load(path)));
        let repo = super::super::load(&args.repo);
        let snapshot = snapshot.map(|read| match read.join() {
            Ok(loaded) => loaded,
            Err(panic) => std::panic::resume_unwind(panic),
        });
        (repo, snapshot)
    });
    let (config, mut index) = repo?;
    for error in &index.errors {
        eprintln!("warning: {error}");
    }
    let renderer = Renderer::for_config(&config);
    for warning in remediator::render::learn_renames(&mut index, &renderer) {
        eprintln!("warning: {warning}");
    }
    for warning in remediator::render::learn_reach(&mut index, &renderer) {
        eprintln!("warning: {warning}");
    }
    // `--now` is the moment of the snapshot, and the end of the usage history read.
    let now: Option<k8s_openapi::jiff::Timestamp> = match &args.now {
        Some(text) => Some(
            text.parse()
                .map_err(|e| anyhow::anyhow!("--now {text}: not an RFC 3339 time: {e}"))?,
        ),
        None => None,
    };
    // Without a snapshot, the live clusters, each environment's its own: their runtime and
    // connections serve the dry-runs too.
    let runtime = match &args.snapshot {
        Some(_) => None,
        None => Some(runtime()?),
    };
    let (sources, whole) = match (snapshot, &runtime) {
        (Some(loaded), _) => {
            let loaded = loaded?;
            let whole = loaded.problems.iter().all(|p| !p.unread());
            let source = Source {
                environment: args.env.clone(),
                loaded,
                connection: None,
                scopes: None,
            };
            (vec![source], whole)
        }
        (None, Some(runtime)) => runtime.block_on(live_sources(&args, &config, now))?,
        (None, None) => unreachable!("a runtime is started for every live run"),
    };
    for source in &sources {
        for problem in &source.loaded.problems {
            eprintln!("warning: {problem}");
        }
        // With a cluster at hand, its discovery places the kinds the repository cannot.
        if let Some(scopes) = &source.scopes {
            index.rescope(scopes);
        }
    }
    let mut policies = match &args.policies {
        Some(dir) => Policies::from_dir(dir)?,
        None => Policies::embedded(),
    };
    let templates = Templates::load(args.templates.as_deref())?;
    let target = match args.forge {
        Some(ForgeArg::Local) => Target::Local,
        Some(ForgeArg::None) => Target::None,
        Some(ForgeArg::Github) => Target::GitHub,
        None => match &config.forge {
            ForgeSettings::None => Target::None,
            ForgeSettings::Local => Target::Local,
            ForgeSettings::GitHub { .. } => Target::GitHub,
        },
    };
    let github = match target {
        Target::GitHub => Some(GitHubSettings::of(&config)?.context(
            "--forge github needs `forge: {type: github, repository: owner/name}` in remediator.yaml",
        )?),
        _ => None,
    };
    let forge = target != Target::None;
    let repo = if forge {
        Some(ConfigRepo::open(&args.repo)?)
    } else {
        ConfigRepo::open(&args.repo).ok()
    };
    let git_history = repo.as_ref().map(GitHistory::new);
    let history: &dyn ValueHistory = match &git_history {
        Some(h) => h,
        None => &NoHistory,
    };
    let mut plan = Plan::default();
    for source in &sources {
        let options = ProposeOptions {
            environment: source.environment.clone(),
            now,
            ..ProposeOptions::default()
        };
        let inputs = Inputs {
            repo: &args.repo,
            index: &index,
            config: &config,
            snapshot: &source.loaded.snapshot,
            history,
            templates: &templates,
            renderer: Some(&renderer),
        };
        let mut one = if args.security {
            let mut rules = remediator::report::security::rules(None)?;
            let hardening = remediator::report::security::hardening(&mut rules, &index)?;
            remediator::propose::plan_with(&inputs, &mut policies, &options, hardening)
        } else {
            plan_of(&inputs, &mut policies, &options)
        };
        if let (Some(runtime), Some(connection)) = (&runtime, &source.connection) {
            let cluster = KubeCluster::new(connection.client.clone());
            let live = LiveCluster {
                name: config
                    .first_cluster(source.environment.as_deref())
                    .unwrap_or(&connection.name),
                cluster: &cluster,
            };
            runtime.block_on(add_dry_runs(&mut one, &index, &templates, &live, &config));
        }
        plan.absorb(one);
    }
    if config.llm.is_some() {
        let started;
        let on = match &runtime {
            Some(runtime) => runtime,
            None => {
                started = super::cluster::runtime()?;
                &started
            }
        };
        on.block_on(explain_configured(&mut plan, &templates, &config));
    }
    let published = match (&repo, &github) {
        (Some(repo), Some(settings)) => {
            // A pull request is closed as cleared only when every kind of every environment
            // was read in this run: a finding not seen in a list that failed has not cleared.
            let unread: Vec<String> = sources
                .iter()
                .flat_map(|s| s.loaded.problems.iter())
                .filter(|p| p.unread())
                .map(ToString::to_string)
                .collect();
            let clearing = if !unread.is_empty() {
                Clearing::KeepOpen(format!("not everything was read: {}", unread.join("; ")))
            } else if let Some(env) = &args.env {
                Clearing::KeepOpen(format!("this run read environment {env} only (--env)"))
            } else if !whole {
                Clearing::KeepOpen("not every environment has a cluster this run could read".into())
            } else {
                Clearing::Close
            };
            to_github(
                &args,
                &config,
                &plan,
                repo,
                settings,
                runtime.as_ref(),
                &clearing,
            )?
        }
        (Some(repo), None) if forge => {
            publish_local(repo, repo.head()?, &plan.proposals, &config.git.author)
        }
        _ => vec![],
    };
    if let Some(dir) = &args.out {
        write_bodies(dir, &plan)?;
    }
    let mut out = std::io::stdout().lock();
    match args.output {
        ProposeOutput::Text => print_text(&mut out, &plan, &published)?,
        ProposeOutput::Markdown => {
            for p in &plan.proposals {
                writeln!(out, "# {}\n\n{}\n", p.title, p.body)?;
            }
        }
        ProposeOutput::Json => {
            let report = json!({
                "findings": plan.findings,
                "proposals": plan.proposals.iter().map(|p| json!({
                    "id": p.remediation.id,
                    "finding": p.remediation.finding.code,
                    "target": p.remediation.target.to_string(),
                    "action": p.remediation.action,
                    "environment": p.remediation.environment,
                    "summary": p.remediation.summary,
                    "fields": p.remediation.fields,
                    "risk": p.assessment.risk,
                    "approvals": p.assessment.approvals,
                    "denials": p.assessment.denials,
                    "branch": p.branch,
                    "published": published.iter().find(|x| x.branch == p.branch).map(|x| match &x.outcome {
                        Ok(o) => json!(o),
                        Err(e) => json!({"error": e}),
                    }),
                    "pull": published.iter().find(|x| x.branch == p.branch).and_then(|x| x.pull.clone()),
                    "diff": p.diff,
                })).collect::<Vec<_>>(),
                "diagnoses": plan.diagnoses,
                "unmanaged": plan.unmanaged,
                "failures": plan.failures,
            });
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
    }
    let failed = !plan.failures.is_empty() || published.iter().any(|p| p.outcome.is_err());
    // The process ends here: freeing a large cluster's objects one by one would only delay it.
    std::mem::forget(sources);
    std::mem::forget(index);
    Ok(if failed { Exit::BadInput } else { Exit::Ok })
}

/// What one plan is made from: a snapshot, or one environment's cluster.
struct Source {
    /// The environment it stands for; `None`: every environment.
    environment: Option<String>,
    /// What was read.
    loaded: snapshot::Loaded,
    /// The cluster it was read from, for the dry-runs.
    connection: Option<Connection>,
    /// The scope of every kind the live cluster serves.
    scopes: Option<Scopes>,
}

/// The live clusters to look at, and whether together they are the whole of what the
/// repository applies. With `--env`, or a cluster named on the command line (whose context
/// picks its environment), one; else each environment's own cluster, and an environment
/// without one is not looked at (said as a warning).
async fn live_sources(
    args: &ProposeArgs,
    config: &Config,
    now: Option<k8s_openapi::jiff::Timestamp>,
) -> anyhow::Result<(Vec<Source>, bool)> {
    let environment = args
        .env
        .clone()
        .or_else(|| environment_of(config, &args.cluster));
    if args.cluster.given() && environment.is_none() && !config.environments.is_empty() {
        anyhow::bail!(
            "which environment is this cluster? give --env, or name no cluster so that each environment is read from its own"
        );
    }
    let connections = connections(config, &args.cluster, environment.as_deref()).await?;
    let single = environment.is_some() || config.environments.is_empty();
    let mut whole = true;
    let mut sources = Vec::new();
    let wanted: Vec<Option<String>> = if single {
        vec![environment.clone()]
    } else {
        config
            .environments
            .iter()
            .map(|e| Some(e.name.clone()))
            .collect()
    };
    for environment in wanted {
        let Some(connection) = connections.get(environment.as_deref()) else {
            eprintln!(
                "warning: environment {} has no cluster (environments[].context): its findings are not looked for",
                environment.as_deref().unwrap_or("-")
            );
            whole = false;
            continue;
        };
        let mut loaded = KubeCluster::new(connection.client.clone())
            .snapshot(&SnapshotOptions::default())
            .await?;
        let cluster = config.first_cluster(environment.as_deref());
        remediator::cluster::prometheus::load_usage(
            config.prometheus.as_ref(),
            cluster,
            &mut loaded,
            now,
        )
        .await;
        whole &= loaded.problems.iter().all(|p| !p.unread());
        let scopes = Resolver::new(&connection.client).await?.scopes();
        sources.push(Source {
            environment,
            loaded,
            connection: Some(connection.clone()),
            scopes: Some(scopes),
        });
    }
    Ok((sources, whole))
}

/// Publishes the plan to GitHub, on the live cluster's runtime when there is one.
fn to_github(
    args: &ProposeArgs,
    config: &Config,
    plan: &Plan,
    repo: &ConfigRepo,
    settings: &GitHubSettings,
    runtime: Option<&tokio::runtime::Runtime>,
    clearing: &Clearing,
) -> anyhow::Result<Vec<Published>> {
    let own;
    let runtime = match runtime {
        Some(runtime) => runtime,
        None => {
            own = super::cluster::runtime()?;
            &own
        }
    };
    let audit = audit_log(&args.repo, config, Some(repo))?;
    let forge = settings.client(runtime)?;
    let auth = git_auth();
    let base = repo
        .fetch_branch(&config.git.remote, &settings.base_branch, &auth)
        .with_context(|| {
            format!(
                "cannot fetch {} from {}",
                settings.base_branch, config.git.remote
            )
        })?;
    let target = publish::Destination {
        repo,
        config,
        forge: &forge,
        base_branch: &settings.base_branch,
        base,
        audit: &audit,
        auth: &auth,
    };
    let (published, closed) = runtime.block_on(publish::publish(&target, plan, clearing))?;
    for pull in closed {
        eprintln!(
            "closed #{} ({}): its finding has cleared",
            pull.number, pull.branch
        );
    }
    Ok(published)
}

fn print_text(out: &mut impl Write, plan: &Plan, published: &[Published]) -> std::io::Result<()> {
    writeln!(
        out,
        "{} findings: {} proposals, {} diagnoses without a change, {} on objects the repository does not declare{}",
        plan.findings,
        plan.proposals.len(),
        plan.diagnoses.len(),
        plan.unmanaged.len(),
        if plan.failures.is_empty() {
            String::new()
        } else {
            format!(", {} failed", plan.failures.len())
        }
    )?;
    if !plan.proposals.is_empty() {
        writeln!(out)?;
        let rows: Vec<[String; 5]> = plan
            .proposals
            .iter()
            .map(|p| {
                let state =
                    published
                        .iter()
                        .find(|x| x.branch == p.branch)
                        .map(|x| match &x.outcome {
                            Ok(o) => o.to_string(),
                            Err(_) => "failed".into(),
                        });
                let denied = if p.assessment.denials.is_empty() {
                    ""
                } else {
                    " DENIED"
                };
                [
                    format!("{}{denied}", p.assessment.risk),
                    p.remediation.finding.code.to_string(),
                    p.remediation.target.to_string(),
                    p.remediation.action.to_string(),
                    match (
                        state,
                        published
                            .iter()
                            .find(|x| x.branch == p.branch)
                            .and_then(|x| x.pull.as_ref()),
                    ) {
                        (Some(state), Some(pull)) => format!("{} ({state}, {pull})", p.branch),
                        (Some(state), None) => format!("{} ({state})", p.branch),
                        (None, _) => p.branch.clone(),
                    },
                ]
            })
            .collect();
        let header = ["RISK", "FINDING", "TARGET", "ACTION", "BRANCH"].map(str::to_owned);
        let widths: Vec<usize> = (0..5)
            .map(|i| {
                rows.iter()
                    .chain([&header])
                    .map(|r| r[i].len())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in [&header].into_iter().chain(&rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:w$}"))
                .collect();
            writeln!(out, "{}", cells.join("  ").trim_end())?;
        }
    }
    for p in &plan.proposals {
        let a = &p.assessment;
        let teams = if a.approvals.teams.is_empty() {
            String::new()
        } else {
            format!(" incl. {}", a.approvals.teams.join(", "))
        };
        let plural = if a.approvals.count == 1 { "" } else { "s" };
        writeln!(
            out,
            "\n== {} ({} risk, {} approval{plural}{teams})",
            p.branch, a.risk, a.approvals.count
        )?;
        writeln!(out, "{}", p.remediation.summary)?;
        for denial in &a.denials {
            writeln!(out, "DENIED: {denial}")?;
        }
        write!(out, "{}", p.diff)?;
        for x in published.iter().filter(|x| x.branch == p.branch) {
            if let Err(e) = &x.outcome {
                writeln!(out, "error: branch {}: {e}", x.branch)?;
            }
        }
    }
    for (title, list) in [
        ("Diagnoses (no safe change)", &plan.diagnoses),
        ("Not declared in the repository", &plan.unmanaged),
        ("Failed", &plan.failures),
    ] {
        if list.is_empty() {
            continue;
        }
        writeln!(out, "\n{title}:")?;
        for r in list {
            writeln!(
                out,
                "  {} {}: {}",
                r.finding.code,
                r.finding.target(),
                r.reason
            )?;
            writeln!(out, "    runbook: {}", r.finding.code.runbook())?;
        }
    }
    Ok(())
}

fn write_bodies(dir: &Path, plan: &Plan) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for p in &plan.proposals {
        let file = dir.join(format!(
            "{}.md",
            p.branch.trim_start_matches("remediator/").replace('/', "_")
        ));
        std::fs::write(&file, format!("# {}\n\n{}", p.title, p.body))
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    Ok(())
}
