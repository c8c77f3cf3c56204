//! A whole run of `reconcile` or `rollback` for one target commit, as the command and `serve`
//! both do it: the chain of pending commits is cut where a commit changes the gate's own inputs,
//! and each part is judged by the configuration and policies of the commit before it, with the
//! forge and the clusters that configuration names. I/O: Git, GitHub and the clusters, through
//! the pipeline.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use super::{Context, ReconcileOptions, Report, Stretch};
use crate::audit::AuditLog;
use crate::cluster::{Clusters, KubeCluster, LockOptions, WaitOptions};
use crate::config::{Config, ForgeSettings};
use crate::forge::GitHub;
use crate::git::{Auth, ConfigRepo};
use crate::render::Renderer;
use crate::views::Templates;
use crate::workspace::{GitHubSettings, TrustedInputs};

/// What can stop a run before it reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The gate's inputs or the forge's settings cannot be read.
    #[error(transparent)]
    Inputs(#[from] crate::workspace::Error),
    /// The pipeline failed.
    #[error(transparent)]
    Reconcile(#[from] super::Error),
    /// The clusters the configuration names cannot be reached.
    #[error("{0}")]
    Clusters(String),
}

/// How a run reaches the clusters a configuration names.
pub trait Reach {
    /// The clusters of `config`, limited to `environment` when given.
    fn clusters(
        &self,
        config: &Config,
        environment: Option<&str>,
    ) -> impl Future<Output = Result<Clusters<KubeCluster>, String>> + Send;
}

/// One cluster for every environment: `serve` in the cluster it runs in.
pub struct Fixed(pub KubeCluster);

impl Reach for Fixed {
    async fn clusters(
        &self,
        _config: &Config,
        _environment: Option<&str>,
    ) -> Result<Clusters<KubeCluster>, String> {
        Ok(Clusters::single(self.0.clone()))
    }
}

/// A run's settings and what it shares across its parts.
pub struct Driver<'a, R> {
    /// The config repository.
    pub repo: &'a ConfigRepo,
    /// The audit log.
    pub audit: &'a AuditLog,
    /// The report templates.
    pub templates: &'a Templates,
    /// Renders the builds.
    pub renderer: &'a Renderer,
    /// Git credentials.
    pub auth: &'a Auth,
    /// The clusters.
    pub reach: &'a R,
    /// A directory of policies replacing the defaults (read from the commit before when it is
    /// inside the repository).
    pub policies: Option<PathBuf>,
    /// Only objects applied in this environment.
    pub environment: Option<String>,
    /// Health timeout replacing the configuration's.
    pub timeout: Option<Duration>,
    /// Whether to read approvals from the forge; without it, only changes that need none pass.
    pub forge: bool,
    /// Who holds the locks (`remediator-<host>-<pid>`; `serve`: the pod and a random suffix).
    pub holder: String,
    /// Asked before each write to a cluster.
    pub guard: super::Guard,
}

/// The branch pull requests merge into: the GitHub forge's `baseBranch`, else `main`.
pub fn base_branch(config: &Config) -> String {
    match &config.forge {
        ForgeSettings::GitHub { base_branch, .. } => base_branch.clone(),
        _ => "main".to_owned(),
    }
}

/// What a part of the run does.
#[derive(Clone, Copy)]
enum Job<'p> {
    Rollback,
    Reconcile(&'p [git2::Oid]),
}

impl<R: Reach> Driver<'_, R> {
    /// Reconciles every pending commit up to `commit`.
    pub async fn reconcile(&self, commit: git2::Oid) -> Result<Vec<Report>, Error> {
        let mut reports = Vec::new();
        loop {
            let env = self.environment.as_deref();
            let pending = super::pending(self.repo, self.audit, env, commit)?;
            let start = pending.first().copied().unwrap_or(commit);
            let inputs = TrustedInputs::before(self.repo, start, self.policies.as_deref())?;
            let segment = self
                .in_context(inputs, Job::Reconcile(&pending), commit)
                .await?;
            reports.extend(segment.reports);
            if !segment.inputs_changed {
                return Ok(reports);
            }
        }
    }

    /// Rolls `commit` back.
    pub async fn rollback(&self, commit: git2::Oid) -> Result<Vec<Report>, Error> {
        let inputs = TrustedInputs::before(self.repo, commit, self.policies.as_deref())?;
        Ok(self
            .in_context(inputs, Job::Rollback, commit)
            .await?
            .reports)
    }

    /// Builds the forge, the clusters and the options from `inputs`, and does `job`.
    async fn in_context(
        &self,
        inputs: TrustedInputs,
        job: Job<'_>,
        commit: git2::Oid,
    ) -> Result<Stretch, Error> {
        let TrustedInputs {
            config,
            mut policies,
            files,
        } = inputs;
        let forge: Option<GitHub> = match self.forge {
            true => match GitHubSettings::of(&config)? {
                Some(settings) => Some(settings.client_here()?),
                None => None,
            },
            false => None,
        };
        let settings = &config.reconcile;
        let timeout = self.timeout.unwrap_or(settings.health_timeout);
        let lock = LockOptions::default();
        // A GitHub App pushes reverts with its installation token.
        let mut auth = self.auth.clone();
        let token = match &forge {
            Some(forge) => forge
                .git_token()
                .await
                .map_err(crate::workspace::Error::from)?,
            None => None,
        };
        if token.is_some() {
            auth.token = token;
        }
        let options = ReconcileOptions {
            environment: self.environment.clone(),
            base_branch: base_branch(&config),
            auth,
            wait: WaitOptions {
                timeout,
                ..WaitOptions::default()
            },
            lock: LockOptions {
                namespace: settings.lock_namespace.clone(),
                wait: settings.lock_wait,
                holder: self.holder.clone(),
                ..lock
            },
            hand_off_timeout: timeout,
            trusted: files,
            guard: self.guard.clone(),
            ..ReconcileOptions::default()
        };
        let clusters = self
            .reach
            .clusters(&config, self.environment.as_deref())
            .await
            .map_err(Error::Clusters)?;
        let ctx = Context {
            repo: self.repo,
            config: &config,
            clusters: &clusters,
            forge: forge.as_ref(),
            audit: self.audit,
            templates: self.templates,
            renderer: self.renderer,
            options,
        };
        Ok(match job {
            Job::Rollback => Stretch {
                reports: vec![super::rollback(&ctx, commit).await?],
                inputs_changed: false,
            },
            Job::Reconcile(pending) => {
                super::reconcile_stretch(&ctx, &mut policies, pending, commit).await?
            }
        })
    }
}
