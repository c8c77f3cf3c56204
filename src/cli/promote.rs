//! `remediator promote`: the promotion pull requests that are due, judged by the configuration
//! and policies of the base branch's head. Run it after `reconcile` and on a schedule (a soak
//! ends between merges).

use std::io::Write;
use std::path::PathBuf;

use remediator::config::Config;
use remediator::promote::{Progress, Promoter};
use remediator::reconcile::driver::base_branch;
use remediator::render::Renderer;
use remediator::workspace::{GitHubSettings, TrustedInputs, audit_log, git_auth, open_or_clone};

use super::super::Exit;
use super::cluster::{ClusterArgs, clusters, runtime};

/// Arguments of `promote`.
#[derive(clap::Args)]
pub struct PromoteArgs {
    /// The config repository: a clone, or a URL remediator clones.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The cluster of objects outside every environment.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// A directory of .rego files replacing the default policies.
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// Only the promotions into this environment (one of `promotion.order`).
    #[arg(long)]
    pub env: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = super::super::Output::Text)]
    pub output: super::super::Output,
}

/// Runs `promote`.
pub fn run(args: PromoteArgs) -> anyhow::Result<Exit> {
    let auth = git_auth();
    let (path, repo, _) = open_or_clone(&args.repo, &auth)?;
    let checkout = Config::load(&path)?;
    let base_name = base_branch(&checkout);
    let base = repo.fetch_branch(&checkout.git.remote, &base_name, &auth)?;
    let TrustedInputs {
        config,
        mut policies,
        ..
    } = TrustedInputs::at(&repo, base, args.policies.as_deref())?;
    let audit = audit_log(&path, &config, Some(&repo))?;
    let renderer = Renderer::for_config(&config);
    let runtime = runtime()?;
    let promotions = runtime.block_on(async {
        let clusters = clusters(&config, &args.cluster, None).await?;
        let forge = match GitHubSettings::of(&config)? {
            Some(settings) => Some(settings.client_here()?),
            None => None,
        };
        let mut promoter = Promoter {
            repo: &repo,
            config: &config,
            renderer: &renderer,
            audit: &audit,
            clusters: &clusters,
            forge: forge.as_ref(),
            policies: &mut policies,
            auth: &auth,
            base_branch: &base_name,
            only: args.env.as_deref(),
        };
        anyhow::Ok(promoter.run(k8s_openapi::jiff::Timestamp::now()).await?)
    })?;
    // An earlier environment that is not healthy now holds its promotions back: a scheduled
    // run says so by its exit code.
    let exit = if promotions
        .iter()
        .any(|p| matches!(p.outcome, Progress::Unhealthy { .. }))
    {
        Exit::Code(1)
    } else {
        Exit::Ok
    };
    let mut out = std::io::stdout().lock();
    if args.output == super::super::Output::Json {
        serde_json::to_writer_pretty(&mut out, &promotions)?;
        writeln!(out)?;
        return Ok(exit);
    }
    if promotions.is_empty() {
        writeln!(out, "nothing to promote")?;
    }
    for p in &promotions {
        let what = match &p.outcome {
            Progress::Proposed { pull, branch } => format!("proposed in #{pull} ({branch})"),
            Progress::Soaking { seconds_left } => format!("soaking, {seconds_left}s left"),
            Progress::Unhealthy { reason } => format!("not promoted: {reason}"),
            Progress::AlreadyThere => "already there".to_owned(),
            Progress::Superseded { by } => format!("superseded by {}", &by[..12]),
            Progress::WaitingForReconcile { pull } => {
                format!("merged in #{pull}, waiting for reconcile")
            }
            Progress::Promoted { pull } => format!("promoted by #{pull}"),
            Progress::RolledBack { pull } => format!("merged in #{pull}, rolled back there"),
            Progress::Closed { pull } => format!("#{pull} was closed; not proposed again"),
            Progress::LeftToPeople { pull, branch } => {
                format!("#{pull} ({branch}) holds commits of people; left to them")
            }
        };
        writeln!(out, "{} {} -> {}: {what}", &p.commit[..12], p.from, p.to)?;
    }
    Ok(exit)
}
