//! The `remediator` command line. Builds the real clients and hands each command to the library;
//! the only place that uses `anyhow`.
//!
//! Exit codes: 0 ok; 1 not found, no change, changes found (`diff`) or not healthy (`apply
//! --wait`); 2 bad input or error.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use remediator::config::Config;
use remediator::manifests::edit::{Edit, EditOp};
use remediator::manifests::path::FieldPath;
use remediator::manifests::{self, IndexOptions, RepoIndex, diff, display_dir};
use remediator::model::RefQuery;

#[derive(Parser)]
#[command(
    name = "remediator",
    version,
    about = "Kubernetes problems in, reviewed pull requests out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every object the config repository declares, with file and line.
    Index {
        /// The config repository.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show where an object is declared (KIND/NAMESPACE/NAME, or KIND/NAME).
    Locate {
        /// The config repository.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// The object.
        object: RefQuery,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Edit an object's declaration in place and print the diff; writes only with --write.
    Set {
        /// The config repository.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// The object (KIND/NAMESPACE/NAME, or KIND/NAME).
        object: RefQuery,
        /// Fields to set: PATH=VALUE, VALUE read as YAML (`3` is a number, `"3"` a string).
        #[arg(value_name = "PATH=VALUE")]
        assignments: Vec<String>,
        /// Items to append to a list: PATH=VALUE.
        #[arg(long, value_name = "PATH=VALUE")]
        append: Vec<String>,
        /// Fields to remove.
        #[arg(long, value_name = "PATH")]
        remove: Vec<String>,
        /// The declaring file, when the object is declared in several.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Write the change to the file.
        #[arg(long)]
        write: bool,
    },
    /// Find what is wrong in a cluster (or a recorded snapshot) and propose fixes as branches.
    Propose(ProposeArgs),
    /// Show what applying the repository (or a path of it) would change in the cluster, by
    /// server-side dry-run. Exit codes: 0 no changes, 1 changes, 2 error.
    Diff(cli::diff::DiffArgs),
    /// Apply a path of the repository with server-side apply, in stages. Exit codes: 0 applied,
    /// 1 applied but not healthy (with --wait), 2 error.
    Apply(cli::apply::ApplyArgs),
    /// Apply a merged commit: check its approvals against the policies, apply, wait for health,
    /// roll back with a revert commit when it fails. Exit codes: 0 healthy (or nothing to do),
    /// 1 refused or rolled back, 2 error.
    Reconcile(cli::reconcile::ReconcileArgs),
    /// Roll back a merged commit: revert it on the base branch, apply the reverted state, wait
    /// for health.
    Rollback(cli::reconcile::ReconcileArgs),
    /// Print the audit trail: recommendation, approval, apply, validation, rollback.
    History(cli::reconcile::HistoryArgs),
    /// Open the promotion pull requests that are due: a change healthy in one environment for
    /// the soak, proposed for the next in `promotion.order`, with its evidence.
    Promote(cli::promote::PromoteArgs),
    /// Write a report: `weekly` health (MTTD, MTTR, what was proposed, merged, rolled back)
    /// from the audit trail, or the `security` posture of the repository and the cluster;
    /// `--publish github` keeps it as one issue per kind.
    Report(cli::report::ReportArgs),
    /// Check a pull request: what changes, its risk, breaking CRD changes, the dry-run. Exit
    /// codes: 0 fine, 1 needs approvals beyond the default, 2 denied by policy, 3 error.
    Check(cli::check::CheckArgs),
    /// Run as a service: watch the cluster and propose what is wrong, take Alertmanager's alerts
    /// and GitHub's webhooks, reconcile what merges; `/healthz`, `/readyz`, `/metrics`.
    Serve(cli::serve::ServeArgs),
}

#[derive(clap::Args)]
pub(crate) struct ProposeArgs {
    /// The config repository.
    #[arg(long, default_value = ".")]
    pub(crate) repo: PathBuf,
    /// `kubectl get -o yaml` output: a file or a directory (UsageHistory documents included);
    /// the live cluster when not given.
    #[arg(long)]
    pub(crate) snapshot: Option<PathBuf>,
    /// The live cluster, read instead of a snapshot; proposals then carry its dry-run.
    #[command(flatten)]
    pub(crate) cluster: cli::cluster::ClusterArgs,
    /// Where proposals go; the config's forge when not given.
    #[arg(long, value_enum)]
    pub(crate) forge: Option<ForgeArg>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ProposeOutput::Text)]
    pub(crate) output: ProposeOutput,
    /// Write each pull request (title and body) to a Markdown file in this directory.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Only targets applied in this environment.
    #[arg(long)]
    pub(crate) env: Option<String>,
    /// A directory of .rego files replacing the default policies.
    #[arg(long)]
    pub(crate) policies: Option<PathBuf>,
    /// Also propose the safe edits of the security rules (`report security`), one pull
    /// request per object and rule, weighed by the same policies.
    #[arg(long)]
    pub(crate) security: bool,
    /// A directory of templates replacing the embedded ones, file by file.
    #[arg(long)]
    pub(crate) templates: Option<PathBuf>,
    /// The moment of the snapshot (RFC 3339); the latest time it shows by default.
    #[arg(long)]
    pub(crate) now: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProposeOutput {
    Text,
    Json,
    Markdown,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ForgeArg {
    /// Print proposals only.
    None,
    /// Branches in the local repository.
    Local,
    /// Branches pushed to GitHub, with a pull request each (`forge` in remediator.yaml).
    Github,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    Text,
    Json,
}

/// How a command ended, when it did not fail.
pub(crate) enum Exit {
    Ok,
    NothingFound,
    /// Changes were found (`diff`), or what was applied is not healthy (`apply --wait`).
    Changes,
    BadInput,
    /// A command's own exit code.
    Code(u8),
}

fn main() -> ExitCode {
    tune_allocator();
    // rustls panics when it finds two crypto providers and none installed; ring is the only one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        // Warnings reach the terminal; `serve` sets up its own log.
        let logs = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::WARN)
            .without_time()
            .with_target(false)
            .with_ansi(false)
            .try_init();
        drop(logs);
    }
    match run(cli.command) {
        Ok(Exit::Ok) => ExitCode::SUCCESS,
        Ok(Exit::NothingFound | Exit::Changes) => ExitCode::from(1),
        Ok(Exit::BadInput) => ExitCode::from(2),
        Ok(Exit::Code(code)) => ExitCode::from(code),
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            let not_found = err.downcast_ref::<manifests::Error>().is_some_and(|e| {
                matches!(e, manifests::Error::NotDeclared { .. })
                    || matches!(
                        e,
                        manifests::Error::Edit {
                            source: manifests::edit::EditError::NotFound { .. },
                            ..
                        }
                    )
            });
            ExitCode::from(if not_found { 1 } else { 2 })
        }
    }
}

/// The error and its causes, each cause left out when the message before already says it.
pub(crate) fn describe(err: &anyhow::Error) -> String {
    let mut text = String::new();
    // The cluster's errors already say what the API answered; kube's own text repeats it.
    let chain = err
        .chain()
        .take_while(|c| c.downcast_ref::<kube::Error>().is_none());
    for cause in chain {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}

/// Output piped into `head` that stopped reading is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Index { repo, output } => index(&repo, output),
        Command::Locate {
            repo,
            object,
            output,
        } => locate(&repo, &object, output),
        Command::Set {
            repo,
            object,
            assignments,
            append,
            remove,
            file,
            write,
        } => {
            let mut edits = Vec::new();
            for a in &assignments {
                let (path, value) = assignment(a)?;
                edits.push(Edit {
                    path,
                    op: EditOp::Set(value),
                });
            }
            for a in &append {
                let (path, value) = assignment(a)?;
                edits.push(Edit {
                    path,
                    op: EditOp::Append(value),
                });
            }
            for p in &remove {
                edits.push(Edit {
                    path: p.parse()?,
                    op: EditOp::Remove,
                });
            }
            anyhow::ensure!(
                !edits.is_empty(),
                "nothing to change: give PATH=VALUE, --append or --remove"
            );
            set(&repo, &object, file.as_deref(), &edits, write)
        }
        Command::Propose(args) => cli::propose::run(args),
        Command::Diff(args) => cli::diff::run(args),
        Command::Apply(args) => cli::apply::run(args),
        Command::Reconcile(args) => cli::reconcile::run(args, false),
        Command::Rollback(args) => cli::reconcile::run(args, true),
        Command::History(args) => cli::reconcile::history(args),
        Command::Promote(args) => cli::promote::run(args),
        Command::Report(args) => cli::report::run(args),
        Command::Check(args) => cli::check::run(args),
        Command::Serve(args) => cli::serve::run(args),
    }
}

mod cli;

/// Blocks of 128 KiB or more (a snapshot file of a whole cluster, a list's items) are mapped on
/// their own and given back to the system when freed. glibc starts at that threshold but raises
/// it to the largest block freed so far, and the next ones land in the heap between small
/// objects, keeping the process at its peak size long after.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tuning parameter of the allocator, before any other thread
    // runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
    }
}

/// [`tune_allocator`]'s threshold, in bytes.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const THRESHOLD: libc::c_int = 128 << 10;

fn load(repo: &Path) -> anyhow::Result<(Config, RepoIndex)> {
    let config = Config::load(repo)?;
    let options = IndexOptions {
        excludes: config.excludes.clone(),
        threads: 0,
        origin: config.origin.clone(),
    };
    let index = RepoIndex::build(repo, &options)
        .with_context(|| format!("cannot index {}", repo.display()))?;
    for warning in config.glob_warnings(index.files.iter().map(PathBuf::as_path)) {
        eprintln!("warning: {warning}");
    }
    Ok((config, index))
}

fn report_errors(index: &RepoIndex) -> Exit {
    for error in &index.errors {
        eprintln!("error: {error}");
    }
    if index.errors.is_empty() {
        Exit::Ok
    } else {
        Exit::BadInput
    }
}

fn index(repo: &Path, output: Output) -> anyhow::Result<Exit> {
    let (config, index) = load(repo)?;
    let mut out = std::io::stdout().lock();
    let environment = |o| {
        config
            .environment_for(index.placement(o))
            .map(|e| e.name.clone())
    };
    match output {
        Output::Json => {
            let objects: Vec<Value> = index
                .objects
                .iter()
                .map(|o| {
                    let location = &index.declaration(o).location;
                    json!({
                        "apiVersion": o.id.api_version(),
                        "kind": o.id.kind,
                        "namespace": o.id.namespace,
                        "name": o.id.name,
                        "file": location.file,
                        "line": location.line,
                        "document": location.document,
                        "item": location.item,
                        "unit": index.unit(o).path,
                        "environment": environment(o),
                    })
                })
                .collect();
            let report = json!({
                "objects": objects,
                "kustomizations": index.kustomizations.iter().map(|k| &k.location.file).collect::<Vec<_>>(),
                "patches": index.patches,
                "others": index.others,
                "errors": index.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            });
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Output::Text => {
            let width = index
                .objects
                .iter()
                .map(|o| o.id.to_string().len())
                .max()
                .unwrap_or(0);
            for o in &index.objects {
                let location = &index.declaration(o).location;
                let unit = index.unit(o);
                let mut tags = vec![format!("unit {}", display_dir(&unit.path))];
                tags.extend(environment(o).map(|e| format!("env {e}")));
                writeln!(
                    out,
                    "{:width$}  {}  ({})",
                    o.id.to_string(),
                    location,
                    tags.join(", ")
                )?;
            }
            let builds = index
                .units
                .iter()
                .filter(|u| u.kustomization.is_some())
                .count();
            writeln!(
                out,
                "{} objects in {} files ({} kustomize builds, {} directories); {} other YAML files; {} errors",
                index.objects.len(),
                index.files.len(),
                builds,
                index.units.len() - builds,
                index.others.len(),
                index.errors.len()
            )?;
        }
    }
    Ok(report_errors(&index))
}

fn locate(repo: &Path, query: &RefQuery, output: Output) -> anyhow::Result<Exit> {
    let (_, index) = load(repo)?;
    let found = index.find(query);
    let mut out = std::io::stdout().lock();
    for o in &found {
        let location = &index.declaration(o).location;
        match output {
            Output::Text => writeln!(
                out,
                "{}  {}  (unit {})",
                o.id,
                location,
                display_dir(&index.unit(o).path)
            )?,
            Output::Json => writeln!(
                out,
                "{}",
                json!({"object": o.id.to_string(), "file": location.file, "line": location.line,
                       "document": location.document, "item": location.item,
                       "span": [location.span.start, location.span.end], "unit": index.unit(o).path})
            )?,
        }
    }
    if found.is_empty() {
        eprintln!("{query}: not declared in {}", repo.display());
        return Ok(Exit::NothingFound);
    }
    Ok(Exit::Ok)
}

fn set(
    repo: &Path,
    query: &RefQuery,
    file: Option<&Path>,
    edits: &[Edit],
    write: bool,
) -> anyhow::Result<Exit> {
    let (_, index) = load(repo)?;
    let change = manifests::edit_object(&index, query, file, edits)?;
    if change.is_empty() {
        eprintln!("{query}: already as asked; nothing to change");
        return Ok(Exit::NothingFound);
    }
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!(
        "{}",
        diff::unified(&change.path, &change.old, &change.new, color)
    );
    if write {
        let path = repo.join(&change.path);
        let tmp = path.with_extension("remediator-tmp");
        std::fs::write(&tmp, &change.new)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        eprintln!("wrote {}", change.path.display());
    }
    Ok(Exit::Ok)
}

/// `PATH=VALUE`, the value read as YAML; text that is not YAML stays a string.
fn assignment(text: &str) -> anyhow::Result<(FieldPath, Value)> {
    let (path, value) =
        split_assignment(text).with_context(|| format!("`{text}` is not PATH=VALUE"))?;
    let value =
        serde_saphyr::from_str::<Value>(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((path.parse()?, value))
}

/// Splits at the first `=` outside brackets, so `containers[name=app].image=x` works.
fn split_assignment(text: &str) -> Option<(&str, &str)> {
    let mut depth = 0i32;
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            '=' if depth == 0 => return Some((&text[..i], &text[i + 1..])),
            _ => {}
        }
    }
    None
}
