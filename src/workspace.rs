//! Where the pipelines' inputs come from, for every command and for `serve`: the config
//! repository (a directory, or remediator's own clone of a remote one), GitHub's settings and
//! the Git credentials from the environment, the gate's trusted inputs read from the commit before
//! a merge, and the audit log. I/O: reads the environment, Git and the file system.

use std::path::{Path, PathBuf};

use crate::assess::Policies;
use crate::audit::{self, AuditLog};
use crate::config::{Config, Forge as ForgeConfig};
use crate::forge::GitHub;
use crate::git::{Auth, ConfigRepo};

/// What can stop reading the inputs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting the environment must give is missing.
    #[error("{0}")]
    Missing(&'static str),
    /// The commit has no parent to take the gate's inputs from.
    #[error("{0}: the first commit has no commit before it to take the configuration from")]
    FirstCommit(git2::Oid),
    /// A directory could not be made.
    #[error("cannot create {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Git failed.
    #[error(transparent)]
    Git(#[from] crate::git::Error),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    /// The policies cannot be loaded.
    #[error(transparent)]
    Assess(#[from] crate::assess::Error),
    /// The GitHub client cannot be built.
    #[error(transparent)]
    Forge(#[from] crate::forge::Error),
}

/// `Result` of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The audit log of a repository: the configured path, or inside its Git directory; kept in
/// the repository's Git notes too, pushed to the configured remote, when it has that remote.
pub fn audit_log(repo: &Path, config: &Config, git: Option<&ConfigRepo>) -> AuditLog {
    let log = match (&config.audit_path, git) {
        (Some(path), _) => AuditLog::new(repo.join(path)),
        (None, Some(git)) => AuditLog::new(git.state_dir().join("audit.jsonl")),
        (None, None) => AuditLog::new(repo.join(".remediator-audit.jsonl")),
    };
    match git {
        Some(git) if git.has_remote(&config.git.remote) => log.with_trail(audit::Trail {
            repo: repo.to_owned(),
            remote: config.git.remote.clone(),
            auth: git_auth(),
            author: config.git.author.clone(),
        }),
        _ => log,
    }
}

/// Where GitHub is and how to reach it: the config's `forge` (`type: github`), the token from
/// `GITHUB_TOKEN`, the API URL from the config, else `GITHUB_API_URL`, else GitHub's.
pub struct GitHubSettings {
    url: Option<String>,
    token: String,
    repository: String,
    /// The branch pull requests target.
    pub base_branch: String,
}

impl GitHubSettings {
    /// The settings, `None` when the config names another forge.
    pub fn of(config: &Config) -> Result<Option<GitHubSettings>> {
        let ForgeConfig::GitHub {
            repository,
            base_branch,
            api_url,
        } = &config.forge
        else {
            return Ok(None);
        };
        let token = std::env::var("GITHUB_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or(Error::Missing(
                "the GitHub forge needs a token: set GITHUB_TOKEN",
            ))?;
        Ok(Some(GitHubSettings {
            url: api_url
                .clone()
                .or_else(|| std::env::var("GITHUB_API_URL").ok()),
            token,
            repository: repository.clone(),
            base_branch: base_branch.clone(),
        }))
    }

    /// The config's GitHub, else the repository GitHub Actions runs for (`GITHUB_REPOSITORY`,
    /// `GITHUB_API_URL`): a check comments on any repository's pull requests.
    pub fn of_or_env(config: &Config) -> Result<GitHubSettings> {
        if let Some(settings) = GitHubSettings::of(config)? {
            return Ok(settings);
        }
        let repository = std::env::var("GITHUB_REPOSITORY")
            .ok()
            .filter(|r| r.contains('/'))
            .ok_or(Error::Missing(
                "no GitHub repository: set forge in remediator.yaml, or GITHUB_REPOSITORY",
            ))?;
        let token = std::env::var("GITHUB_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or(Error::Missing("commenting needs a token: set GITHUB_TOKEN"))?;
        Ok(GitHubSettings {
            url: std::env::var("GITHUB_API_URL").ok(),
            token,
            repository,
            base_branch: "main".to_owned(),
        })
    }

    /// The client, built inside the runtime already running.
    pub fn client_here(&self) -> Result<GitHub> {
        Ok(GitHub::new(
            self.url.as_deref(),
            &self.token,
            &self.repository,
        )?)
    }

    /// The client; inside the runtime that runs its requests.
    pub fn client(&self, runtime: &tokio::runtime::Runtime) -> Result<GitHub> {
        let _entered = runtime.enter();
        Ok(GitHub::new(
            self.url.as_deref(),
            &self.token,
            &self.repository,
        )?)
    }
}

/// Git credentials: `GITHUB_TOKEN` for HTTPS remotes.
pub fn git_auth() -> Auth {
    Auth {
        token: std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty()),
    }
}

/// Whether `--repo` names a remote repository rather than a directory.
pub fn is_url(repo: &Path) -> bool {
    let text = repo.to_string_lossy();
    ["https://", "http://", "file://", "ssh://"]
        .iter()
        .any(|scheme| text.starts_with(scheme))
}

/// The directory of a local repository, or of remediator's own clone of a remote one (kept in
/// `$XDG_CACHE_HOME/remediator/clones`, or `~/.cache/...`, and fetched again on each run).
pub fn open_or_clone(repo: &Path, auth: &Auth) -> Result<(PathBuf, ConfigRepo, bool)> {
    if !is_url(repo) {
        return Ok((repo.to_owned(), ConfigRepo::open(repo)?, false));
    }
    let url = repo.to_string_lossy().into_owned();
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .ok_or(Error::Missing(
            "no cache directory for the clone: set XDG_CACHE_HOME or HOME",
        ))?;
    let dir = cache
        .join("remediator/clones")
        .join(crate::model::stable_id(&[&url]));
    let opened = if dir.join(".git").is_dir() {
        ConfigRepo::open(&dir)?
    } else {
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        crate::git::clone(&url, &dir, auth)?
    };
    Ok((dir, opened, true))
}

/// The gate's inputs, read from the commit before the merge (the first parent of `commit`):
/// the configuration, and the policies when `--policies` names a directory of the repository.
/// Policies from outside the repository are the operator's, read from disk.
pub struct TrustedInputs {
    /// The configuration as it was before the merge.
    pub config: Config,
    /// The policies as they were before the merge.
    pub policies: Policies,
    /// The files the gate reads, relative to the config repository.
    pub files: Vec<PathBuf>,
}

impl TrustedInputs {
    /// Reads them for `commit` of `repo`.
    pub fn before(
        repo: &ConfigRepo,
        commit: git2::Oid,
        policies: Option<&Path>,
    ) -> Result<TrustedInputs> {
        let parent = *repo
            .parents(commit)?
            .first()
            .ok_or(Error::FirstCommit(commit))?;
        TrustedInputs::at(repo, parent, policies)
    }

    /// Reads them as they are in `commit`.
    pub fn at(
        repo: &ConfigRepo,
        parent: git2::Oid,
        policies: Option<&Path>,
    ) -> Result<TrustedInputs> {
        let config = Config::at(repo, parent)?;
        let mut files = vec![PathBuf::from(crate::config::FILE_NAME)];
        let policies = match policies {
            None => Policies::embedded(),
            Some(dir) => match repo.relative(dir)? {
                None => Policies::from_dir(dir)?,
                Some(inside) => {
                    files.push(inside.clone());
                    // A policy directory the commit before did not have: the defaults judged
                    // until this merge, and they weigh the new directory as critical.
                    match repo.files_at(parent, &inside)? {
                        Some(texts) => Policies::from_files(texts)?,
                        None => Policies::embedded(),
                    }
                }
            },
        };
        Ok(TrustedInputs {
            config,
            policies,
            files,
        })
    }
}
