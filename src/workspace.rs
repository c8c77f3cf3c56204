//! Where the pipelines' inputs come from, for every command and for `serve`: the config
//! repository (a directory, or remediator's own clone of a remote one), GitHub's settings and
//! the Git credentials from the environment, the gate's trusted inputs read from the commit before
//! a merge, and the audit log. I/O: reads the environment, Git and the file system.

use std::path::{Path, PathBuf};

use crate::assess::Policies;
use crate::audit::{self, AuditLog};
use std::sync::Arc;

use crate::config::{Config, ForgeSettings, GitHubApp, KeySource};
use crate::forge::app::AppKey;
use crate::forge::{AppCredentials, Credentials, GitHub};
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
    /// A GitHub App's credentials cannot be read.
    #[error("GitHub App: {0}")]
    App(String),
    /// A secret the configuration names cannot be read.
    #[error("{0}")]
    Secret(String),
}

/// `Result` of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The audit log of a repository: the configured path, or inside its Git directory; kept in
/// the repository's Git notes too, pushed to the configured remote, when it has that remote;
/// signed with `audit.signingKey` when it is set (a key that cannot be read is an error).
pub fn audit_log(
    repo: &Path,
    config: &Config,
    git: Option<&ConfigRepo>,
) -> Result<AuditLog, Error> {
    let log = match (&config.audit_path, git) {
        (Some(path), _) => AuditLog::new(repo.join(path)),
        (None, Some(git)) => AuditLog::new(git.state_dir().join("audit.jsonl")),
        (None, None) => AuditLog::new(repo.join(".remediator-audit.jsonl")),
    };
    let log = match git {
        Some(git) if git.has_remote(&config.git.remote) => log.with_trail(audit::Trail {
            repo: repo.to_owned(),
            remote: config.git.remote.clone(),
            auth: git_auth(),
            author: config.git.author.clone(),
        }),
        _ => log,
    };
    match &config.audit_key {
        Some(source) => {
            let secret = source
                .read()
                .map_err(|e| Error::Secret(format!("audit.signingKey: {e}")))?;
            Ok(log.with_key(audit::SigningKey::new(secret.as_bytes())))
        }
        None => Ok(log),
    }
}

/// Where GitHub is and how to reach it: the config's `forge` (`type: github`); a GitHub App
/// (`forge.app`, else `REMEDIATOR_GITHUB_APP_ID` with `REMEDIATOR_GITHUB_APP_PRIVATE_KEY` and
/// optionally `REMEDIATOR_GITHUB_APP_INSTALLATION_ID`), else the token from `GITHUB_TOKEN`; the
/// API URL from the config, else `GITHUB_API_URL`, else GitHub's.
pub struct GitHubSettings {
    url: Option<String>,
    credentials: Credentials,
    repository: String,
    /// The branch pull requests target.
    pub base_branch: String,
}

/// The environment variable that names a GitHub App's id, for the Action.
pub const APP_ID_ENV: &str = "REMEDIATOR_GITHUB_APP_ID";
/// The environment variable that holds a GitHub App's private key (PEM), for the Action.
pub const APP_KEY_ENV: &str = "REMEDIATOR_GITHUB_APP_PRIVATE_KEY";
/// The environment variable that names a GitHub App's installation, for the Action.
pub const APP_INSTALLATION_ENV: &str = "REMEDIATOR_GITHUB_APP_INSTALLATION_ID";

/// The App of `app`, its key read from where it says.
fn app_credentials(app: &GitHubApp) -> Result<Credentials> {
    let (pem, source) = match &app.private_key {
        KeySource::File(path) => (
            std::fs::read_to_string(path).map_err(|e| {
                Error::App(format!(
                    "cannot read the private key file {}: {e}",
                    path.display()
                ))
            })?,
            path.display().to_string(),
        ),
        KeySource::Env(name) => (
            std::env::var(name)
                .ok()
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| Error::App(format!("the private key variable {name} is not set")))?,
            format!("${name}"),
        ),
    };
    let key = AppKey::from_pem(&pem).map_err(|e| Error::App(format!("{source}: {e}")))?;
    Ok(Credentials::App(AppCredentials {
        id: app.id,
        key: Arc::new(key),
        installation: app.installation_id,
    }))
}

/// A number from the environment variable `name`, when set.
fn env_number(name: &str) -> Result<Option<u64>> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(text) if text.trim().is_empty() => Ok(None),
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::App(format!("{name}={text} is not a number"))),
        Err(e) => Err(Error::App(format!("{name}: {e}"))),
    }
}

/// The configured App, else the one the environment gives, else the token.
fn credentials(app: Option<&GitHubApp>, missing: &'static str) -> Result<Credentials> {
    if let Some(app) = app {
        return app_credentials(app);
    }
    if let Some(id) = env_number(APP_ID_ENV)? {
        let app = GitHubApp {
            id,
            private_key: KeySource::Env(APP_KEY_ENV.to_owned()),
            installation_id: env_number(APP_INSTALLATION_ENV)?,
        };
        return app_credentials(&app);
    }
    std::env::var("GITHUB_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(Credentials::Token)
        .ok_or(Error::Missing(missing))
}

impl GitHubSettings {
    /// The settings, `None` when the config names another forge.
    pub fn of(config: &Config) -> Result<Option<GitHubSettings>> {
        let ForgeSettings::GitHub {
            repository,
            base_branch,
            api_url,
            app,
        } = &config.forge
        else {
            return Ok(None);
        };
        let credentials = credentials(
            app.as_ref(),
            "the GitHub forge needs a token or an App: set GITHUB_TOKEN, or forge.app",
        )?;
        Ok(Some(GitHubSettings {
            url: api_url
                .clone()
                .or_else(|| std::env::var("GITHUB_API_URL").ok()),
            credentials,
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
        let credentials = credentials(
            None,
            "commenting needs a token or an App: set GITHUB_TOKEN, or REMEDIATOR_GITHUB_APP_ID",
        )?;
        Ok(GitHubSettings {
            url: std::env::var("GITHUB_API_URL").ok(),
            credentials,
            repository,
            base_branch: "main".to_owned(),
        })
    }

    /// The client, built inside the runtime already running.
    pub fn client_here(&self) -> Result<GitHub> {
        Ok(GitHub::with_credentials(
            self.url.as_deref(),
            self.credentials.clone(),
            &self.repository,
        )?)
    }

    /// The client; inside the runtime that runs its requests.
    pub fn client(&self, runtime: &tokio::runtime::Runtime) -> Result<GitHub> {
        let _entered = runtime.enter();
        self.client_here()
    }
}

/// `remediator.yaml` as committed in `commit` of `repo`; the defaults when that commit has
/// none. The merge gate reads its configuration this way, from the commit before the merge, so
/// that a pull request never judges itself.
pub fn config_at(repo: &ConfigRepo, commit: git2::Oid) -> Result<Config> {
    let file = Path::new(crate::manifests::CONFIG_FILE);
    match repo.file_at(commit, file)? {
        Some(text) => Ok(Config::parse(
            &PathBuf::from(format!("{} (at {commit})", crate::manifests::CONFIG_FILE)),
            &text,
        )?),
        None => Ok(Config::default()),
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
        let config = config_at(repo, parent)?;
        let mut files = vec![PathBuf::from(crate::manifests::CONFIG_FILE)];
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
