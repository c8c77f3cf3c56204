//! Reaching a cluster from the command line: `--kubeconfig` and `--context`, `$KUBECONFIG` and
//! in-cluster credentials otherwise, and the runtime the cluster calls run on.

use std::path::PathBuf;

use std::collections::BTreeMap;

use anyhow::Context;
use kube::config::{KubeConfigOptions, Kubeconfig};
use remediator::cluster::{Clusters, KubeCluster};
use remediator::config::Config;
use remediator::manifests;
use remediator::render::{self, Renderer};

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
#[derive(Clone)]
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
    // The API server's audit log names the process: the holder of its locks.
    let agent = format!(
        "remediator/{} ({})",
        env!("CARGO_PKG_VERSION"),
        remediator::cluster::lock::holder_name()
    );
    if let Ok(value) = http::HeaderValue::from_str(&agent) {
        config.headers.push((http::header::USER_AGENT, value));
    }
    if let Some(timeout) = remediator::http::request_timeout().map_err(anyhow::Error::msg)? {
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
    }
    let client = kube::Client::try_from(config).context("cannot build the Kubernetes client")?;
    Ok(Connection { client, name })
}

/// The clusters a run reaches. With `--env`, that environment's cluster for everything: the
/// command line's when it names one, else the context (and kubeconfig) the configuration gives
/// the environment. Without, each environment with a context reaches its own cluster, and
/// objects outside every environment the command line's (or the default kubeconfig's); an
/// environment without a context reaches none. A configuration without environments sends
/// everything to the command line's cluster.
pub async fn clusters(
    config: &Config,
    args: &ClusterArgs,
    environment: Option<&str>,
) -> anyhow::Result<Clusters<KubeCluster>> {
    Ok(connections(config, args, environment)
        .await?
        .map(|connection| KubeCluster::new(connection.client)))
}

/// The connections [`clusters`] makes, with their names.
pub async fn connections(
    config: &Config,
    args: &ClusterArgs,
    environment: Option<&str>,
) -> anyhow::Result<Clusters<Connection>> {
    let configured = |name: &str| config.environments.iter().find(|e| e.name == name);
    let targets = |env: &remediator::config::Environment| -> Vec<(String, ClusterArgs)> {
        env.clusters
            .iter()
            .map(|target| {
                let target_args = ClusterArgs {
                    kubeconfig: target
                        .kubeconfig
                        .clone()
                        .or_else(|| args.kubeconfig.clone()),
                    context: Some(target.context.clone()),
                };
                (target.name.clone(), target_args)
            })
            .collect()
    };
    let connect_all = |env: &remediator::config::Environment| {
        let all = targets(env);
        let name = env.name.clone();
        async move {
            let mut connected = Vec::new();
            for (cluster, target_args) in all {
                let connection = connect(&target_args).await.with_context(|| {
                    format!("environment {name}: cannot reach its cluster {cluster}")
                })?;
                connected.push((cluster, connection));
            }
            anyhow::Ok(connected)
        }
    };
    if let Some(name) = environment {
        if args.given() {
            return Ok(Clusters::single(connect(args).await?));
        }
        return match configured(name).filter(|env| !env.clusters.is_empty()) {
            Some(env) => Ok(Clusters::single_named(connect_all(env).await?)),
            None => Ok(Clusters::single(connect(args).await?)),
        };
    }
    if config.environments.is_empty() {
        return Ok(Clusters::single(connect(args).await?));
    }
    let mut by_environment = BTreeMap::new();
    for env in &config.environments {
        by_environment.insert(env.name.clone(), connect_all(env).await?);
    }
    let default = if args.given() {
        Some(connect(args).await?)
    } else {
        None
    };
    Ok(Clusters::routed(by_environment, default))
}

/// Objects bound for clusters by the environment that applies them (`None`: outside every
/// environment).
pub type ByEnvironment = BTreeMap<Option<String>, Vec<serde_json::Value>>;

/// The environment whose cluster the command line names by its context, when one does: a
/// run on one cluster looks at that environment only.
pub fn environment_of(config: &Config, args: &ClusterArgs) -> Option<String> {
    let context = args.context.as_deref()?;
    config
        .environments
        .iter()
        .find(|e| e.clusters.iter().any(|c| c.context == context))
        .map(|e| e.name.clone())
}

/// Where one environment's objects go.
pub struct Route {
    /// The environment, or the cluster's name, for messages.
    pub name: String,
    /// Its cluster.
    pub cluster: KubeCluster,
    /// The objects.
    pub objects: Vec<serde_json::Value>,
}

/// Sends each environment's objects to its own cluster, every one found before anything is
/// sent. A cluster named on the command line takes the objects of one environment only (a
/// `--context` other than the one the environment names is refused); without one, each
/// environment goes to the cluster [`clusters`] gives it, and one that has none is an error
/// naming it.
pub async fn route(
    config: &Config,
    args: &ClusterArgs,
    groups: ByEnvironment,
) -> anyhow::Result<Vec<Route>> {
    if args.given() {
        let names: Vec<&str> = groups
            .keys()
            .map(|e| e.as_deref().unwrap_or("(outside every environment)"))
            .collect();
        if groups.len() > 1 && !config.environments.is_empty() {
            anyhow::bail!(
                "the objects belong to {}: one cluster may take one environment's only; give the --path of one, or name no cluster so that each goes to its own",
                names.join(", ")
            );
        }
        let configured = groups
            .keys()
            .flatten()
            .find_map(|name| config.environments.iter().find(|e| &e.name == name));
        if let (Some(env), Some(given)) = (configured, &args.context)
            && let Some(own) = &env.context
            && own != given
        {
            anyhow::bail!(
                "environment {} reaches context {own}, not {given}: objects never go to another environment's cluster",
                env.name
            );
        }
        let connection = connect(args).await?;
        let cluster = KubeCluster::new(connection.client);
        return Ok(groups
            .into_values()
            .map(|objects| Route {
                name: connection.name.clone(),
                cluster: cluster.clone(),
                objects,
            })
            .collect());
    }
    let clusters = clusters(config, args, None).await?;
    let mut routes = Vec::new();
    for (environment, objects) in groups {
        let all = clusters.all(environment.as_deref());
        if all.is_empty() {
            anyhow::bail!(
                "environment {} has no cluster: name its context in remediator.yaml (environments[].context), or give --context",
                environment
                    .as_deref()
                    .unwrap_or("(outside every environment)")
            );
        }
        let name = environment.unwrap_or_else(|| "default".to_owned());
        for (cluster_name, cluster) in all {
            routes.push(Route {
                name: if all.len() > 1 {
                    format!("{name}/{cluster_name}")
                } else {
                    name.clone()
                },
                cluster: cluster.clone(),
                objects: objects.clone(),
            });
        }
    }
    Ok(routes)
}

/// The objects applied from `path` of the repository, as they will be sent, by environment, and
/// the repository's configuration. Files that do not parse are an error: applying the rest
/// would leave the change half done.
pub fn repo_objects(
    repo: &std::path::Path,
    path: &std::path::Path,
) -> anyhow::Result<(ByEnvironment, Config)> {
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
    let path = path.strip_prefix(".").unwrap_or(path);
    let renderer = Renderer::for_config(&config);
    let rendering = render::objects(&index, &renderer, |dir, _| {
        dir.starts_with(path) || path.starts_with(dir)
    });
    if let Some(not) = rendering.not_rendered.first() {
        anyhow::bail!(
            "{}: not rendered: {}; nothing was applied",
            manifests::display_dir(&not.build),
            not.reason
        );
    }
    if let Some(failed) = rendering.failed.first() {
        anyhow::bail!("{}; nothing was applied", failed.message);
    }
    let mut objects = ByEnvironment::new();
    let mut seen = std::collections::HashSet::new();
    let applied_from_path = |o: &render::AppliedObject| {
        if o.built {
            o.unit.starts_with(path)
        } else {
            o.declared.0.starts_with(path)
        }
    };
    for object in rendering.objects.into_iter().filter(applied_from_path) {
        let environment = config
            .environment_for(&object.placement)
            .map(|e| e.name.clone());
        // One cluster takes an object once, whichever of its builds apply it.
        if seen.insert((environment.clone(), object.id.clone())) {
            objects.entry(environment).or_default().push(object.value);
        }
    }
    if objects.is_empty() {
        let relative = path;
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
    Ok((objects, config))
}
