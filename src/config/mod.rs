//! `remediator.yaml` at the root of the config repository: read once, validated into a
//! [`Config`], and never re-checked by the stages that take it. Reads that one file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::manifests::CONFIG_FILE as FILE_NAME;
use crate::model::Author;
use crate::model::RiskLevel;

mod conflicts;
mod llm;
mod prometheus;
mod secret;
pub mod serve;

pub use conflicts::{ConflictMode, ConflictPolicy};
pub use llm::LlmSettings;
pub use prometheus::{BasicAuth, PrometheusSettings};
pub use secret::SecretSource;
pub use serve::ServeSettings;

/// What is wrong with the configuration, naming the file, line and key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file exists but cannot be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML, or has an unknown key or a value of the wrong type.
    #[error("{}:{line}: {message}", file.display())]
    Parse {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A value is of the right type but not allowed.
    #[error("{}:{line}: `{key}`: {message}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The key, as a path (`environments[1].paths`).
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

/// Result of loading the configuration.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Field manager name used for server-side apply.
    pub field_manager: String,
    /// gitignore-style patterns of repository paths to leave out of the index.
    pub excludes: Vec<String>,
    /// Environments, in the order written; the first whose paths match a file owns it.
    pub environments: Vec<Environment>,
    /// Where pull requests go.
    pub forge: ForgeSettings,
    /// The Git side: remote and commit author.
    pub git: GitSettings,
    /// How merged changes are applied, verified and rolled back.
    pub reconcile: ReconcileSettings,
    /// The JSON Lines audit log, relative to the repository root; inside the Git directory
    /// (`.git/remediator/audit.jsonl`) when not given.
    pub audit_path: Option<PathBuf>,
    /// Where the key that signs audit records is (`audit.signingKey`): with it, a record not
    /// signed with it is never taken as a fact.
    pub audit_key: Option<SecretSource>,
    /// Approval teams: a team's name and the logins of its members.
    pub teams: BTreeMap<String, Vec<String>>,
    /// Check runs or commit statuses (by name or context) that must pass on the merged head
    /// before the gate lets a merge through (`approvals.requiredChecks`).
    pub required_checks: Vec<String>,
    /// The in-cluster service (`serve`).
    pub serve: serve::ServeSettings,
    /// Canary clusters, soak and promotion order; the defaults when not given.
    pub promotion: PromotionSettings,
    /// Where usage history comes from for live runs: Prometheus when given, else
    /// metrics-server's samples.
    pub prometheus: Option<PrometheusSettings>,
    /// An OpenAI-compatible chat endpoint that explains findings in plain words.
    pub llm: Option<LlmSettings>,
    /// `render.allowRemote`: the hosts (or `host/path` prefixes) that kustomize and Helm may
    /// fetch remote resources, bases and charts from. Empty: nothing is fetched.
    pub allow_remote: Vec<String>,
    /// The repository as the GitOps tools read it: its URL and the branch reviewed and
    /// applied (the forge's base branch; `check` names it by `--base`). Not read from the file.
    pub origin: crate::manifests::Upstream,
}

impl Config {}

/// The Git side of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSettings {
    /// The remote pushed to and fetched from.
    pub remote: String,
    /// Who remediator's commits are by.
    pub author: Author,
}

/// What a failed merge does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackMode {
    /// Push a revert commit to the base branch and apply it.
    Push,
    /// Open a pull request with the revert (for protected branches).
    PullRequest,
    /// Report only.
    Off,
}

/// The merge path's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileSettings {
    /// What a failed merge does.
    pub rollback: RollbackMode,
    /// How long to wait for health after applying.
    pub health_timeout: Duration,
    /// Namespace of the Lease objects that lock objects under change.
    pub lock_namespace: String,
    /// How long to wait for another holder's lock before refusing.
    pub lock_wait: Duration,
    /// What an apply does with fields other managers own.
    pub conflicts: ConflictPolicy,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            rollback: RollbackMode::Push,
            health_timeout: Duration::from_secs(300),
            lock_namespace: "default".to_owned(),
            lock_wait: Duration::from_secs(120),
            conflicts: ConflictPolicy::default(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            field_manager: "remediator".to_owned(),
            excludes: vec![],
            environments: vec![],
            forge: ForgeSettings::None,
            git: GitSettings {
                remote: "origin".to_owned(),
                author: Author::default(),
            },
            reconcile: ReconcileSettings::default(),
            audit_path: None,
            audit_key: None,
            teams: BTreeMap::new(),
            required_checks: Vec::new(),
            serve: serve::ServeSettings::default(),
            promotion: PromotionSettings::default(),
            prometheus: None,
            llm: None,
            allow_remote: vec![],
            origin: crate::manifests::Upstream::default(),
        }
    }
}

/// One environment: a part of the repository applied to one cluster.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Name (`prod`).
    pub name: String,
    /// Path globs, relative to the repository root.
    pub paths: Vec<String>,
    /// kubeconfig context of the cluster.
    pub context: Option<String>,
    /// The kubeconfig file holding that context; `--kubeconfig`, `$KUBECONFIG` or
    /// `~/.kube/config` when not given.
    pub kubeconfig: Option<PathBuf>,
    /// The highest risk this environment accepts without escalation.
    pub risk_tolerance: RiskLevel,
    /// The clusters it reaches, in wave order: those `clusters` names, or one named after the
    /// environment for `context`; none when neither is given.
    pub clusters: Vec<ClusterTarget>,
    globs: GlobSet,
    /// Each pattern whose older reading (`*` crossing `/`) differs: its key, the pattern, and
    /// its matcher as it used to read.
    widened: Vec<(String, String, GlobMatcher)>,
}

/// One cluster an environment reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTarget {
    /// Its name in records and messages (`prod-eu-1`).
    pub name: String,
    /// Its kubeconfig context.
    pub context: String,
    /// The kubeconfig file holding that context; `--kubeconfig`, `$KUBECONFIG` or
    /// `~/.kube/config` when not given.
    pub kubeconfig: Option<PathBuf>,
}

/// How a change moves through the environments and, within one, through its clusters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionSettings {
    /// The environments in promotion order; a change proven in one is proposed for the next.
    pub order: Vec<String>,
    /// How long a change stays healthy before it goes further: after an environment's canary
    /// clusters, before the rest; after a whole environment, before the next one's pull request.
    pub soak: Duration,
    /// The first clusters of an environment, applied and soaked before the others.
    pub canary: usize,
    /// How many of the other clusters are applied at once.
    pub max_parallel: usize,
}

impl Default for PromotionSettings {
    fn default() -> Self {
        PromotionSettings {
            order: vec![],
            soak: Duration::from_secs(600),
            canary: 1,
            max_parallel: 1,
        }
    }
}

impl PromotionSettings {
    /// The environment after `environment` in the order.
    pub fn next(&self, environment: &str) -> Option<&str> {
        let at = self.order.iter().position(|e| e == environment)?;
        self.order.get(at + 1).map(String::as_str)
    }

    /// The environment before `environment` in the order.
    pub fn previous(&self, environment: &str) -> Option<&str> {
        let at = self.order.iter().position(|e| e == environment)?;
        self.order.get(at.checked_sub(1)?).map(String::as_str)
    }
}

impl Environment {
    /// Whether `path` (relative to the repository root) belongs to this environment.
    pub fn contains(&self, path: &Path) -> bool {
        self.globs.is_match(path)
    }
}

/// An environment glob as gitignore reads it: `*` and `?` stop at `/`, `**` crosses it.
fn environment_glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).build()
}

impl Config {
    /// One warning per environment pattern and file of `files` that the pattern matched when
    /// `*` crossed `/`, and no longer does: the file's environment changed with the reading.
    pub fn glob_warnings<'f>(&self, files: impl IntoIterator<Item = &'f Path>) -> Vec<String> {
        let files: Vec<&Path> = files.into_iter().collect();
        let mut out = Vec::new();
        for env in &self.environments {
            for (key, pattern, old) in &env.widened {
                let lost: Vec<&Path> = files
                    .iter()
                    .copied()
                    .filter(|f| old.is_match(f) && !env.globs.is_match(f))
                    .collect();
                if let Some(first) = lost.first() {
                    out.push(format!(
                        "{FILE_NAME}: {key} `{pattern}`: `*` no longer crosses `/` (gitignore's reading), so {} file{} such as {} left environment {}; write `**` to take subdirectories in",
                        lost.len(),
                        if lost.len() == 1 { "" } else { "s" },
                        first.display(),
                        env.name
                    ));
                }
            }
        }
        out
    }
}

/// Where pull requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForgeSettings {
    /// Nowhere: print proposals only.
    None,
    /// Branches in the local repository.
    Local,
    /// GitHub or GitHub Enterprise.
    GitHub {
        /// `owner/name`.
        repository: String,
        /// Branch pull requests target.
        base_branch: String,
        /// API base URL; GitHub's own when not given.
        api_url: Option<String>,
        /// A GitHub App to authenticate as, instead of a token.
        app: Option<GitHubApp>,
    },
}

/// A GitHub App's credentials: its id, where its private key is, and its installation (looked
/// up by repository when not given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubApp {
    /// The App's id.
    pub id: u64,
    /// Where the private key is: a file (a mounted Secret) or an environment variable.
    pub private_key: KeySource,
    /// The installation on the repository's account.
    pub installation_id: Option<u64>,
}

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl Config {
    /// Reads `remediator.yaml` from the repository root; the defaults when there is none.
    pub fn load(repo: &Path) -> Result<Self> {
        let file = repo.join(FILE_NAME);
        match std::fs::read_to_string(&file) {
            Ok(text) => Self::parse(Path::new(FILE_NAME), &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(Error::Read { file, source }),
        }
    }

    /// Parses and validates the text of a configuration file (`file` names it in errors).
    pub fn parse(file: &Path, text: &str) -> Result<Self> {
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
            let line = e.location().map_or(1, |l| l.line() as usize);
            let message = e.to_string();
            let message = message.lines().next().unwrap_or_default();
            let message = message.strip_prefix("error: ").unwrap_or(message);
            let message = match message.split_once(": ") {
                Some((prefix, rest)) if prefix.starts_with("line ") => rest,
                _ => message,
            };
            Error::Parse {
                file: file.to_owned(),
                line,
                message: message.to_owned(),
            }
        })?;
        raw.validate(file)
    }

    /// The name `remediator.yaml` gives the first cluster `environment` reaches; `None` for no
    /// environment, one it does not name, or one without a cluster.
    pub fn first_cluster(&self, environment: Option<&str>) -> Option<&str> {
        let environment = environment?;
        self.environments
            .iter()
            .find(|e| e.name == environment)?
            .clusters
            .first()
            .map(|c| c.name.as_str())
    }

    /// The environment a repository path belongs to.
    pub fn environment_for(&self, path: &Path) -> Option<&Environment> {
        self.environments.iter().find(|e| e.contains(path))
    }
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    field_manager: Option<Spanned<String>>,
    #[serde(default)]
    excludes: Vec<Spanned<String>>,
    #[serde(default)]
    environments: Vec<RawEnvironment>,
    #[serde(default)]
    forge: Option<RawForge>,
    #[serde(default)]
    git: Option<RawGit>,
    #[serde(default)]
    reconcile: Option<RawReconcile>,
    #[serde(default)]
    audit: Option<RawAudit>,
    #[serde(default)]
    approvals: Option<RawApprovals>,
    #[serde(default)]
    serve: Option<Spanned<serve::RawServe>>,
    #[serde(default)]
    clusters: Vec<RawCluster>,
    #[serde(default)]
    promotion: Option<Spanned<RawPromotion>>,
    #[serde(default)]
    metrics: Option<Spanned<RawMetrics>>,
    #[serde(default)]
    llm: Option<Spanned<LlmSettings>>,
    #[serde(default)]
    render: Option<RawRender>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRender {
    #[serde(default)]
    allow_remote: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawMetrics {
    #[serde(default)]
    prometheus: Option<PrometheusSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCluster {
    name: Spanned<String>,
    context: String,
    #[serde(default)]
    kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPromotion {
    #[serde(default)]
    order: Vec<Spanned<String>>,
    #[serde(default)]
    soak_seconds: Option<u64>,
    #[serde(default)]
    canary: Option<usize>,
    #[serde(default)]
    max_parallel: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawGit {
    #[serde(default)]
    remote: Option<String>,
    #[serde(default)]
    author: Option<RawAuthor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawAuthor {
    name: String,
    email: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawReconcile {
    #[serde(default)]
    rollback: Option<RollbackMode>,
    #[serde(default)]
    health_timeout_seconds: Option<Spanned<u64>>,
    #[serde(default)]
    lock_namespace: Option<String>,
    #[serde(default)]
    lock_wait_seconds: Option<u64>,
    #[serde(default)]
    conflicts: Option<Spanned<serde_json::Value>>,
}

/// `conflicts: force`, or `{controllers: MODE, others: MODE}` with the defaults for what is
/// not given.
fn conflicts(written: &serde_json::Value) -> std::result::Result<ConflictPolicy, String> {
    const EXPECTED: &str =
        "write force, skip-field or refuse, or {controllers: MODE, others: MODE}";
    let mode = |value: &serde_json::Value| {
        ConflictMode::deserialize(value).map_err(|_| format!("`{value}` is not a mode; {EXPECTED}"))
    };
    let mut policy = ConflictPolicy::default();
    match written {
        serde_json::Value::String(_) => return Ok(ConflictPolicy::all(mode(written)?)),
        serde_json::Value::Object(modes) => {
            for (key, value) in modes {
                match key.as_str() {
                    "controllers" => policy.controllers = mode(value)?,
                    "others" => policy.others = mode(value)?,
                    other => return Err(format!("unknown key `{other}`; {EXPECTED}")),
                }
            }
        }
        other => return Err(format!("`{other}` is not a mode; {EXPECTED}")),
    }
    Ok(policy)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawAudit {
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default)]
    signing_key: Option<SecretSource>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawApprovals {
    #[serde(default)]
    teams: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    required_checks: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawEnvironment {
    name: Spanned<String>,
    paths: Vec<Spanned<String>>,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    kubeconfig: Option<PathBuf>,
    #[serde(default)]
    clusters: Vec<Spanned<String>>,
    #[serde(default = "default_tolerance")]
    risk_tolerance: RiskLevel,
}

fn default_tolerance() -> RiskLevel {
    RiskLevel::Medium
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawForge {
    #[serde(rename = "type")]
    kind: Spanned<ForgeKind>,
    #[serde(default)]
    repository: Option<Spanned<String>>,
    #[serde(default)]
    base_branch: Option<String>,
    #[serde(default)]
    api_url: Option<String>,
    #[serde(default)]
    app: Option<Spanned<RawApp>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawApp {
    id: u64,
    #[serde(default)]
    private_key_file: Option<PathBuf>,
    #[serde(default)]
    private_key_env: Option<String>,
    #[serde(default)]
    installation_id: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ForgeKind {
    None,
    Local,
    GitHub,
}

impl RawConfig {
    fn validate(self, file: &Path) -> Result<Config> {
        let invalid = |line: u64, key: &str, message: String| Error::Invalid {
            file: file.to_owned(),
            line: line as usize,
            key: key.to_owned(),
            message,
        };
        let field_manager = match self.field_manager {
            None => "remediator".to_owned(),
            Some(fm) => {
                let ok = !fm.value.is_empty() && fm.value.len() <= 128;
                if !ok {
                    let message = "must be 1 to 128 characters, as the API server requires".into();
                    return Err(invalid(fm.referenced.line(), "fieldManager", message));
                }
                fm.value
            }
        };
        let mut excludes = Vec::new();
        for (i, pattern) in self.excludes.into_iter().enumerate() {
            if let Err(e) = Glob::new(pattern.value.trim_start_matches('!')) {
                return Err(invalid(
                    pattern.referenced.line(),
                    &format!("excludes[{i}]"),
                    e.kind().to_string(),
                ));
            }
            excludes.push(pattern.value);
        }
        let mut clusters: Vec<ClusterTarget> = Vec::new();
        for (i, cluster) in self.clusters.into_iter().enumerate() {
            let (name, line) = (cluster.name.value, cluster.name.referenced.line());
            if name.is_empty() || clusters.iter().any(|c| c.name == name) {
                let message = format!("`{name}` must be a name used once");
                return Err(invalid(line, &format!("clusters[{i}].name"), message));
            }
            let target = ClusterTarget {
                name,
                context: cluster.context,
                kubeconfig: cluster.kubeconfig,
            };
            clusters.push(target);
        }
        let mut reached: BTreeMap<String, String> = BTreeMap::new();
        let mut environments: Vec<Environment> = Vec::new();
        for (i, env) in self.environments.into_iter().enumerate() {
            let key = format!("environments[{i}]");
            let (name, line) = (env.name.value, env.name.referenced.line());
            let label = !name.is_empty()
                && name.len() <= 63
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !label {
                let message =
                    format!("`{name}` must be lowercase letters, digits and `-`, at most 63");
                return Err(invalid(line, &format!("{key}.name"), message));
            }
            if environments.iter().any(|e| e.name == name) {
                return Err(invalid(
                    line,
                    &format!("{key}.name"),
                    format!("`{name}` is used twice"),
                ));
            }
            if env.paths.is_empty() {
                return Err(invalid(
                    line,
                    &format!("{key}.paths"),
                    "needs at least one glob".into(),
                ));
            }
            let mut globs = GlobSetBuilder::new();
            let mut widened = Vec::new();
            for (j, path) in env.paths.iter().enumerate() {
                let at = format!("{key}.paths[{j}]");
                let wrong =
                    |e: globset::Error| invalid(path.referenced.line(), &at, e.kind().to_string());
                let glob = environment_glob(&path.value).map_err(wrong)?;
                // Only a `*` or `?` outside `**` read differently when it crossed `/`.
                if path.value.replace("**", "").contains(['*', '?']) {
                    let old = Glob::new(&path.value).map_err(wrong)?;
                    widened.push((at.clone(), path.value.clone(), old.compile_matcher()));
                }
                globs.add(glob);
            }
            let globs = globs
                .build()
                .map_err(|e| invalid(line, &format!("{key}.paths"), e.to_string()))?;
            if env.context.is_some() && !env.clusters.is_empty() {
                return Err(invalid(
                    line,
                    &format!("{key}.clusters"),
                    "give `context` (one cluster) or `clusters` (names under `clusters:`), not both"
                        .into(),
                ));
            }
            let mut targets = Vec::new();
            for (j, wanted) in env.clusters.iter().enumerate() {
                let at = (wanted.referenced.line(), format!("{key}.clusters[{j}]"));
                let target = clusters
                    .iter()
                    .find(|c| c.name == wanted.value)
                    .cloned()
                    .ok_or_else(|| {
                        let message = format!("`{}` is not under `clusters:`", wanted.value);
                        invalid(at.0, &at.1, message)
                    })?;
                // Each environment reaches only its own clusters.
                if let Some(other) = reached.insert(target.name.clone(), name.clone()) {
                    let message = format!(
                        "`{}` is environment {other}'s already: an environment reaches only its own clusters",
                        target.name
                    );
                    return Err(invalid(at.0, &at.1, message));
                }
                targets.push(target);
            }
            if let Some(context) = &env.context {
                targets.push(ClusterTarget {
                    name: name.clone(),
                    context: context.clone(),
                    kubeconfig: env.kubeconfig.clone(),
                });
            }
            environments.push(Environment {
                name,
                paths: env.paths.into_iter().map(|p| p.value).collect(),
                context: env.context,
                kubeconfig: env.kubeconfig,
                risk_tolerance: env.risk_tolerance,
                clusters: targets,
                globs,
                widened,
            });
        }
        let forge = match self.forge {
            None => ForgeSettings::None,
            Some(forge) => match forge.kind.value {
                ForgeKind::None => ForgeSettings::None,
                ForgeKind::Local => ForgeSettings::Local,
                ForgeKind::GitHub => {
                    let line = forge.kind.referenced.line();
                    let repository = forge.repository.ok_or_else(|| {
                        invalid(
                            line,
                            "forge.repository",
                            "is required for `type: github` (owner/name)".into(),
                        )
                    })?;
                    let parts: Vec<&str> = repository.value.split('/').collect();
                    if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                        let message = format!("`{}` must be owner/name", repository.value);
                        return Err(invalid(
                            repository.referenced.line(),
                            "forge.repository",
                            message,
                        ));
                    }
                    let app = match forge.app {
                        None => None,
                        Some(app) => {
                            let line = app.referenced.line();
                            let raw = app.value;
                            let private_key = match (raw.private_key_file, raw.private_key_env) {
                                (Some(file), None) => KeySource::File(file),
                                (None, Some(env)) => KeySource::Env(env),
                                _ => {
                                    return Err(invalid(
                                        line,
                                        "forge.app",
                                        "give exactly one of privateKeyFile and privateKeyEnv"
                                            .into(),
                                    ));
                                }
                            };
                            Some(GitHubApp {
                                id: raw.id,
                                private_key,
                                installation_id: raw.installation_id,
                            })
                        }
                    };
                    ForgeSettings::GitHub {
                        repository: repository.value,
                        base_branch: forge.base_branch.unwrap_or_else(|| "main".to_owned()),
                        api_url: forge.api_url,
                        app,
                    }
                }
            },
        };
        let defaults = ReconcileSettings::default();
        let reconcile = match self.reconcile {
            None => defaults,
            Some(raw) => {
                if let Some(timeout) = raw.health_timeout_seconds.as_ref().filter(|t| t.value == 0)
                {
                    return Err(invalid(
                        timeout.referenced.line(),
                        "reconcile.healthTimeoutSeconds",
                        "must be at least 1".into(),
                    ));
                }
                ReconcileSettings {
                    rollback: raw.rollback.unwrap_or(defaults.rollback),
                    health_timeout: raw
                        .health_timeout_seconds
                        .map_or(defaults.health_timeout, |t| Duration::from_secs(t.value)),
                    lock_namespace: raw.lock_namespace.unwrap_or(defaults.lock_namespace),
                    lock_wait: raw
                        .lock_wait_seconds
                        .map_or(defaults.lock_wait, Duration::from_secs),
                    conflicts: match raw.conflicts {
                        None => defaults.conflicts,
                        Some(written) => conflicts(&written.value).map_err(|message| {
                            invalid(written.referenced.line(), "reconcile.conflicts", message)
                        })?,
                    },
                }
            }
        };
        let git = self.git.unwrap_or(RawGit {
            remote: None,
            author: None,
        });
        let serve = match self.serve {
            None => serve::ServeSettings::default(),
            Some(raw) => {
                let line = raw.referenced.line();
                raw.value
                    .validate()
                    .map_err(|(key, message)| invalid(line, &key, message))?
            }
        };
        let promotion = match self.promotion {
            None => PromotionSettings::default(),
            Some(raw) => {
                let line = raw.referenced.line();
                let raw = raw.value;
                let defaults = PromotionSettings::default();
                let mut order = Vec::new();
                for (i, name) in raw.order.into_iter().enumerate() {
                    let key = format!("promotion.order[{i}]");
                    let line = name.referenced.line();
                    let Some(environment) = environments.iter().find(|e| e.name == name.value)
                    else {
                        let message = format!("`{}` is not an environment", name.value);
                        return Err(invalid(line, &key, message));
                    };
                    // A promotion into an environment that reaches no cluster could never be
                    // applied, and its merge would hold up every commit behind it.
                    if environment.clusters.is_empty() {
                        let message = format!(
                            "`{}` reaches no cluster: give it `context` or `clusters`, or leave it out of the order",
                            name.value
                        );
                        return Err(invalid(line, &key, message));
                    }
                    if order.contains(&name.value) {
                        let message = format!("`{}` comes twice", name.value);
                        return Err(invalid(line, &key, message));
                    }
                    order.push(name.value);
                }
                if let Some(parallel) = raw.max_parallel.as_ref().filter(|p| p.value == 0) {
                    return Err(invalid(
                        parallel.referenced.line().max(line),
                        "promotion.maxParallel",
                        "must be at least 1".into(),
                    ));
                }
                PromotionSettings {
                    order,
                    soak: raw.soak_seconds.map_or(defaults.soak, Duration::from_secs),
                    canary: raw.canary.unwrap_or(defaults.canary),
                    max_parallel: raw.max_parallel.map_or(defaults.max_parallel, |p| p.value),
                }
            }
        };
        let prometheus = match self.metrics {
            None => None,
            Some(raw) => {
                let line = raw.referenced.line();
                match raw.value.prometheus {
                    None => None,
                    Some(settings) => {
                        let bad = |key: &str, message: &str| {
                            Err(invalid(
                                line,
                                &format!("metrics.prometheus.{key}"),
                                message.into(),
                            ))
                        };
                        if !(settings.url.starts_with("http://")
                            || settings.url.starts_with("https://"))
                        {
                            return bad("url", "must be an http:// or https:// URL");
                        }
                        if settings.window_days == 0 {
                            return bad("windowDays", "must be at least 1");
                        }
                        if settings.concurrency == 0 {
                            return bad("concurrency", "must be at least 1");
                        }
                        if settings.step_seconds == Some(0) {
                            return bad("stepSeconds", "must be at least 1");
                        }
                        Some(settings)
                    }
                }
            }
        };
        let llm = match self.llm {
            None => None,
            Some(raw) => {
                let line = raw.referenced.line();
                let settings = raw.value;
                if !(settings.url.starts_with("http://") || settings.url.starts_with("https://")) {
                    return Err(invalid(
                        line,
                        "llm.url",
                        "must be an http:// or https:// URL".into(),
                    ));
                }
                Some(settings)
            }
        };
        let mut allow_remote = Vec::new();
        for (i, entry) in self
            .render
            .map(|r| r.allow_remote)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let host = entry.value.split('/').next().unwrap_or_default();
            let bad = entry.value.contains("://")
                || entry.value.contains(['*', '?', '@', ' '])
                || !host.contains('.') && host != "localhost";
            if bad {
                return Err(invalid(
                    entry.referenced.line(),
                    &format!("render.allowRemote[{i}]"),
                    format!(
                        "`{}` must be a host or a host and path prefix (`github.com/my-org`), without scheme or wildcard",
                        entry.value
                    ),
                ));
            }
            allow_remote.push(entry.value);
        }
        let origin = crate::manifests::Upstream {
            url: None,
            branch: match &forge {
                ForgeSettings::GitHub { base_branch, .. } => Some(base_branch.clone()),
                _ => None,
            },
        };
        Ok(Config {
            origin,
            allow_remote,
            llm,
            prometheus,
            promotion,
            serve,
            field_manager,
            excludes,
            environments,
            forge,
            git: GitSettings {
                remote: git.remote.unwrap_or_else(|| "origin".to_owned()),
                author: git.author.map_or_else(Author::default, |a| Author {
                    name: a.name,
                    email: a.email,
                }),
            },
            reconcile,
            audit_path: self.audit.as_ref().and_then(|a| a.path.clone()),
            audit_key: self.audit.and_then(|a| a.signing_key),
            required_checks: self
                .approvals
                .as_ref()
                .map_or_else(Vec::new, |a| a.required_checks.clone()),
            teams: self.approvals.map(|a| a.teams).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("remediator.yaml"), text)
    }

    #[test]
    fn environment_globs_read_as_gitignore_and_a_changed_reading_is_warned() {
        let config = parse(
            "environments:\n  - name: web\n    paths: [\"web/x/*.yaml\", \"clusters/web/**\"]\n  - name: all\n    paths: [\"**/all/**\"]\n",
        )
        .unwrap();
        let of = |path: &str| {
            config
                .environment_for(Path::new(path))
                .map(|e| e.name.as_str())
        };
        assert_eq!(of("web/x/a.yaml"), Some("web"));
        assert_eq!(
            of("web/x/all/y.yaml"),
            Some("all"),
            "`*` does not cross `/`"
        );
        assert_eq!(of("clusters/web/a/b/c.yaml"), Some("web"), "`**` does");
        let files = [Path::new("web/x/a.yaml"), Path::new("web/x/all/y.yaml")];
        let warnings = config.glob_warnings(files);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("environments[0].paths[0] `web/x/*.yaml`")
                && warnings[0].contains("web/x/all/y.yaml")
                && warnings[0].contains("`**`"),
            "{}",
            warnings[0]
        );
        assert!(config.glob_warnings([Path::new("web/x/a.yaml")]).is_empty());
    }

    #[test]
    fn remote_sources_are_allowed_by_host_or_prefix_and_nothing_else() {
        let config = parse("render:\n  allowRemote: [github.com/acme, ghcr.io]\n").unwrap();
        assert_eq!(config.allow_remote, ["github.com/acme", "ghcr.io"]);
        let allow = crate::render::AllowRemote::new(config.allow_remote.clone());
        assert!(allow.allows("oci://ghcr.io/acme/charts"));
        assert!(Config::default().allow_remote.is_empty());
        for bad in [
            "https://github.com/acme",
            "*.example.com",
            "github",
            "user@host.com",
        ] {
            let text = format!("fieldManager: x\nrender:\n  allowRemote:\n    - \"{bad}\"\n");
            let error = parse(&text).unwrap_err().to_string();
            assert!(
                error.contains("remediator.yaml:4") && error.contains("render.allowRemote[0]"),
                "{bad}: {error}"
            );
        }
    }

    const FULL: &str = "\
fieldManager: remediator-prod
excludes: [\"charts/**\"]
environments:
  - name: dev
    paths: [\"clusters/dev/**\"]
    context: kind-dev
    riskTolerance: high
  - name: prod
    paths: [\"clusters/prod/**\", \"apps/**\"]
forge:
  type: github
  repository: acme/platform-config
";

    #[test]
    fn reads_a_full_config() {
        let config = parse(FULL).unwrap();
        assert_eq!(config.field_manager, "remediator-prod");
        assert_eq!(config.environments[0].risk_tolerance, RiskLevel::High);
        assert_eq!(config.environments[1].risk_tolerance, RiskLevel::Medium);
        let env = config
            .environment_for(Path::new("clusters/prod/api/deploy.yaml"))
            .unwrap();
        assert_eq!(env.name, "prod");
        assert!(config.environment_for(Path::new("other/x.yaml")).is_none());
        assert_eq!(
            config.forge,
            ForgeSettings::GitHub {
                repository: "acme/platform-config".into(),
                base_branch: "main".into(),
                api_url: None,
                app: None,
            }
        );
    }

    #[test]
    fn a_github_app_names_its_key_in_one_place_and_required_checks_are_read() {
        let config = parse(
            "forge:\n  type: github\n  repository: acme/config\n  app: {id: 42, privateKeyFile: /var/run/secrets/app/key.pem, installationId: 7}\napprovals:\n  requiredChecks: [ci/test, remediator/check]\n",
        )
        .unwrap();
        let ForgeSettings::GitHub { app: Some(app), .. } = &config.forge else {
            panic!("{:?}", config.forge);
        };
        assert_eq!(
            *app,
            GitHubApp {
                id: 42,
                private_key: KeySource::File("/var/run/secrets/app/key.pem".into()),
                installation_id: Some(7),
            }
        );
        assert_eq!(config.required_checks, ["ci/test", "remediator/check"]);
        let error = parse(
            "forge:\n  type: github\n  repository: acme/config\n  app:\n    id: 42\n    privateKeyFile: k.pem\n    privateKeyEnv: KEY\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("remediator.yaml:5:"), "{error}");
        assert!(
            error.contains("exactly one of privateKeyFile and privateKeyEnv"),
            "{error}"
        );
    }

    #[test]
    fn defaults_without_a_file() {
        let config = parse("{}\n").unwrap();
        assert_eq!(config.field_manager, "remediator");
        assert_eq!(config.forge, ForgeSettings::None);
    }

    #[test]
    fn conflicts_are_one_mode_or_one_per_kind_of_manager() {
        let policy = |text: &str| parse(text).map(|c| c.reconcile.conflicts);
        assert_eq!(policy("{}\n").unwrap(), ConflictPolicy::default());
        assert_eq!(
            ConflictPolicy::default(),
            ConflictPolicy {
                controllers: ConflictMode::Refuse,
                others: ConflictMode::Force
            }
        );
        assert_eq!(
            policy("reconcile:\n  conflicts: skip-field\n").unwrap(),
            ConflictPolicy::all(ConflictMode::SkipField)
        );
        assert_eq!(
            policy("reconcile:\n  conflicts: {controllers: force}\n").unwrap(),
            ConflictPolicy::all(ConflictMode::Force)
        );
        assert_eq!(
            policy("reconcile:\n  conflicts: {others: refuse}\n").unwrap(),
            ConflictPolicy::all(ConflictMode::Refuse)
        );
        let error = policy("reconcile:\n  conflicts: maybe\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("remediator.yaml:2:")
                && error.contains("reconcile.conflicts")
                && error.contains("`\"maybe\"` is not a mode; write force, skip-field or refuse"),
            "{error}"
        );
        let error = policy("reconcile:\n  conflicts: {controller: force}\n").unwrap_err();
        assert!(
            error.to_string().contains("unknown key `controller`"),
            "{error}"
        );
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let err =
            parse("environments:\n  - name: dev\n    paths: [a]\n    contxt: x\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("remediator.yaml:4:"), "{text}");
        assert!(text.contains("contxt"), "{text}");
    }

    #[test]
    fn environments_reach_named_clusters_in_wave_order_and_promote_in_order() {
        let config = parse(
            "clusters:\n  - {name: eu, context: ctx-eu}\n  - {name: us, context: ctx-us, kubeconfig: /k}\nenvironments:\n  - {name: dev, paths: [\"dev/**\"], context: kind-dev}\n  - {name: prod, paths: [\"prod/**\"], clusters: [us, eu]}\npromotion:\n  order: [dev, prod]\n  soakSeconds: 60\n  canary: 1\n  maxParallel: 2\n",
        )
        .unwrap();
        let names = |env: usize| -> Vec<String> {
            config.environments[env]
                .clusters
                .iter()
                .map(|c| c.name.clone())
                .collect()
        };
        assert_eq!(
            names(0),
            ["dev"],
            "a context is one cluster named after its environment"
        );
        assert_eq!(names(1), ["us", "eu"]);
        assert_eq!(
            config.environments[1].clusters[0].kubeconfig.as_deref(),
            Some(Path::new("/k"))
        );
        assert_eq!(config.promotion.next("dev"), Some("prod"));
        assert_eq!(config.promotion.next("prod"), None);
        assert_eq!(config.promotion.soak, Duration::from_secs(60));
        assert_eq!(config.promotion.max_parallel, 2);
    }

    #[test]
    fn invalid_values_name_the_key_and_line() {
        let cases = [
            (
                "environments:\n  - name: Prod\n    paths: [a]\n",
                2,
                "environments[0].name",
            ),
            (
                "environments:\n  - name: a\n    paths: [x]\n  - name: a\n    paths: [y]\n",
                4,
                "environments[1].name",
            ),
            (
                "environments:\n  - name: a\n    paths: [\"a/[\"]\n",
                3,
                "environments[0].paths[0]",
            ),
            ("forge:\n  type: github\n", 2, "forge.repository"),
            (
                "forge:\n  type: github\n  repository: nope\n",
                3,
                "forge.repository",
            ),
            ("fieldManager: \"\"\n", 1, "fieldManager"),
            (
                "environments:\n  - name: a\n    paths: [x]\n    clusters: [eu]\n",
                4,
                "environments[0].clusters[0]",
            ),
            (
                "clusters:\n  - {name: eu, context: c}\nenvironments:\n  - name: a\n    paths: [x]\n    clusters: [eu]\n  - name: b\n    paths: [y]\n    clusters: [eu]\n",
                9,
                "environments[1].clusters[0]",
            ),
            (
                "clusters:\n  - {name: eu, context: c}\nenvironments:\n  - name: a\n    paths: [x]\n    context: c\n    clusters: [eu]\n",
                4,
                "environments[0].clusters",
            ),
            (
                "environments:\n  - name: a\n    paths: [x]\n    context: c\npromotion:\n  order: [a, b]\n",
                6,
                "promotion.order[1]",
            ),
            (
                "environments:\n  - {name: a, paths: [x], context: c}\n  - {name: b, paths: [y]}\npromotion:\n  order:\n    - a\n    - b\n",
                7,
                "promotion.order[1]",
            ),
        ];
        for (text, line, key) in cases {
            match parse(text).unwrap_err() {
                Error::Invalid {
                    line: l, key: k, ..
                } => assert_eq!((l, k.as_str()), (line, key), "{text}"),
                other => panic!("{text}: {other}"),
            }
        }
        let err = parse("environments:\n  - name: a\n    paths: [x]\n    riskTolerance: extreme\n")
            .unwrap_err();
        assert!(err.to_string().starts_with("remediator.yaml:4:"), "{err}");
    }
}
