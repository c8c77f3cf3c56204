//! Reaching a cluster from the command line: `--kubeconfig` and `--context`, `$KUBECONFIG` and
//! in-cluster credentials otherwise, and the runtime the cluster calls run on.

use std::path::PathBuf;

use anyhow::Context;
use kube::config::{KubeConfigOptions, Kubeconfig};
use remediator::manifests;

/// Which cluster to talk to.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ClusterArgs {
    /// A kubeconfig file; `$KUBECONFIG`, `~/.kube/config` or in-cluster credentials otherwise.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; its current context otherwise.
    #[arg(long)]
    pub context: Option<String>,
}

impl ClusterArgs {
    /// Whether a cluster was named at all.
    pub fn given(&self) -> bool {
        self.kubeconfig.is_some() || self.context.is_some()
    }
}

/// A client, and a name for the cluster in messages (its context, or its server).
pub struct Connection {
    /// The client.
    pub client: kube::Client,
    /// The context, or the server's URL.
    pub name: String,
}

/// The runtime cluster calls run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Connects as the arguments say.
pub async fn connect(args: &ClusterArgs) -> anyhow::Result<Connection> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let mut config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("{}: cannot read the kubeconfig", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .with_context(|| format!("{}: cannot use the kubeconfig", path.display()))?
        }
        None if args.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .context("cannot use the kubeconfig")?,
        None => kube::Config::infer()
            .await
            .context("no cluster: give --kubeconfig, set KUBECONFIG, or run in a cluster")?,
    };
    let name = args
        .context
        .clone()
        .unwrap_or_else(|| config.cluster_url.to_string());
    // Our calls retry on their own terms (cluster::retry, and an eviction waits on its
    // disruption budget); kube's own layer would retry a 429 for minutes underneath them.
    config.default_retry = false;
    let client = kube::Client::try_from(config).context("cannot build the Kubernetes client")?;
    Ok(Connection { client, name })
}

/// The objects applied from `path` of the repository, as they will be sent, and the field
/// manager the repository's config names. Files that do not parse are an error: applying the
/// rest would leave the change half done.
pub fn repo_objects(
    repo: &std::path::Path,
    path: &std::path::Path,
) -> anyhow::Result<(Vec<serde_json::Value>, String)> {
    let (config, index) = super::super::load(repo)?;
    if !index.errors.is_empty() {
        for error in &index.errors {
            eprintln!("error: {error}");
        }
        anyhow::bail!(
            "{} files of {} do not parse; mend them or exclude them in remediator.yaml",
            index.errors.len(),
            repo.display()
        );
    }
    let objects = index
        .under(path)
        .into_iter()
        .map(|o| index.applied(o))
        .collect::<Result<Vec<_>, _>>()?;
    if objects.is_empty() {
        let relative = path.strip_prefix(".").unwrap_or(path);
        let mut builds: Vec<String> = index
            .objects
            .iter()
            .filter(|o| index.declaration(o).location.file.starts_with(relative))
            .map(|o| manifests::display_dir(&index.unit(o).path))
            .collect();
        builds.sort();
        builds.dedup();
        if builds.is_empty() {
            anyhow::bail!(
                "{}: no Kubernetes objects under {}",
                repo.display(),
                path.display()
            );
        }
        anyhow::bail!(
            "{} is applied as part of {}; give one of those as --path",
            path.display(),
            builds.join(", ")
        );
    }
    Ok((objects, config.field_manager))
}
