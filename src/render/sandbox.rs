//! The one place a renderer (`kustomize`, `kubectl kustomize`, `helm`) is started, and the rules
//! every start follows, whatever repository content asked for it:
//!
//! - the child's environment is cleared to an allow-list: `PATH`, and a `HOME`, temporary
//!   directory and Helm and XDG cache, config and data directories inside a fresh temporary
//!   folder; no token, no kubeconfig, no proxy settings of ours, no Git configuration;
//! - without remote sources allowed, every proxy variable points at a closed local port, so a
//!   fetch that the pre-scan missed fails instead of reaching the network;
//! - it runs in a working directory it is given (a temporary copy of the tree), with no input;
//! - it is stopped at its timeout, and when it prints more than its output limit.
//!
//! I/O: creates the temporary home, runs the program, reads its output.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one run may take before it is stopped.
pub const TIMEOUT: Duration = Duration::from_secs(90);

/// How much one run may print on stdout before it is stopped: four times the largest build seen
/// in the corpus, and far below what would strain memory.
pub const MAX_OUTPUT: usize = 256 << 20;

/// How much of stderr is kept for the message.
const MAX_STDERR: usize = 64 << 10;

/// A proxy on a port nothing listens on (the discard port of loopback): a child that tries to
/// fetch through it fails at once.
const CLOSED_PROXY: &str = "http://127.0.0.1:9";

/// Why a run gave no output.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    /// The program could not be started.
    #[error("{program} could not be started: {message}")]
    Start {
        /// The program.
        program: String,
        /// The operating system's message.
        message: String,
    },
    /// It ran longer than its timeout.
    #[error("{program} was stopped after {} s", timeout.as_secs())]
    Timeout {
        /// The program.
        program: String,
        /// Its timeout.
        timeout: Duration,
    },
    /// It printed more than the output limit.
    #[error("{program} was stopped: it printed more than {} MiB", limit >> 20)]
    TooLarge {
        /// The program.
        program: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// It failed; the message is its own.
    #[error("{message}")]
    Failed {
        /// What the program said on stderr, trimmed.
        message: String,
    },
}

/// The limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long it may take.
    pub timeout: Duration,
    /// How many bytes it may print on stdout.
    pub max_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: TIMEOUT,
            max_output: MAX_OUTPUT,
        }
    }
}

/// A fresh home for one run: removed when dropped.
#[derive(Debug)]
pub struct Sandbox {
    home: tempfile::TempDir,
    /// Whether the child may reach the network (remote sources are allowed and asked for).
    network: bool,
}

impl Sandbox {
    /// A new, empty home; `network` says whether the child may fetch.
    pub fn new(network: bool) -> std::io::Result<Self> {
        let home = tempfile::Builder::new()
            .prefix("remediator-home-")
            .tempdir()?;
        for dir in ["tmp", "cache", "config", "data"] {
            std::fs::create_dir_all(home.path().join(dir))?;
        }
        Ok(Sandbox { home, network })
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `program` with a cleared environment (see the module's rules), run in `dir`.
    pub fn command(&self, program: &Path, dir: &Path) -> Command {
        let home = self.home.path();
        let mut command = Command::new(program);
        command.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        let set = |command: &mut Command, key: &str, value: &Path| {
            command.env(key, value);
        };
        set(&mut command, "HOME", home);
        set(&mut command, "TMPDIR", &home.join("tmp"));
        set(&mut command, "XDG_CACHE_HOME", &home.join("cache"));
        set(&mut command, "XDG_CONFIG_HOME", &home.join("config"));
        set(&mut command, "XDG_DATA_HOME", &home.join("data"));
        set(&mut command, "HELM_CACHE_HOME", &home.join("cache/helm"));
        set(&mut command, "HELM_CONFIG_HOME", &home.join("config/helm"));
        set(&mut command, "HELM_DATA_HOME", &home.join("data/helm"));
        set(
            &mut command,
            "HELM_PLUGINS",
            &home.join("data/helm/plugins"),
        );
        set(&mut command, "KUBECONFIG", &home.join("no-kubeconfig"));
        command
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0");
        if !self.network {
            for key in [
                "HTTP_PROXY",
                "HTTPS_PROXY",
                "ALL_PROXY",
                "http_proxy",
                "https_proxy",
                "all_proxy",
            ] {
                command.env(key, CLOSED_PROXY);
            }
            command.env("GIT_SSH_COMMAND", "false");
        }
        command
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }
}

/// The environment a command will run with, as `KEY=value` lines (for tests and `--debug`).
pub fn environment_of(command: &Command) -> Vec<String> {
    command
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, v?.to_str()?)))
        .collect()
}

/// Whether `value` would be read by a program as a flag rather than as a value.
pub fn is_flag_like(value: &OsStr) -> bool {
    value.as_encoded_bytes().first() == Some(&b'-')
}

/// Runs `command` within `limits`; its stdout when it exits 0.
pub fn run(mut command: Command, name: &str, limits: Limits) -> Result<String, RunError> {
    let mut child = command.spawn().map_err(|e| RunError::Start {
        program: name.to_owned(),
        message: e.to_string(),
    })?;
    let too_large = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain = |pipe: Option<Box<dyn Read + Send>>, limit: usize, flag: Option<_>| {
        let flag: Option<std::sync::Arc<std::sync::atomic::AtomicBool>> = flag;
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(pipe) = pipe {
                // One byte past the limit tells a full pipe from one that stops at the limit.
                let mut pipe = pipe.take(limit as u64 + 1);
                let read = pipe.read_to_end(&mut bytes);
                if bytes.len() > limit {
                    bytes.truncate(limit);
                    if let Some(flag) = &flag {
                        flag.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    // Keep reading to the end so the child is not blocked on a full pipe.
                    let mut rest = pipe.into_inner();
                    let _ = std::io::copy(&mut rest, &mut std::io::sink());
                }
                read.map(|_| bytes).map_err(|e| e.to_string())
            } else {
                Ok(bytes)
            }
        })
    };
    let stdout = child
        .stdout
        .take()
        .map(|p| Box::new(p) as Box<dyn Read + Send>);
    let stderr = child
        .stderr
        .take()
        .map(|p| Box::new(p) as Box<dyn Read + Send>);
    let stdout = drain(stdout, limits.max_output, Some(too_large.clone()));
    let stderr = drain(stderr, MAX_STDERR, None);
    let deadline = Instant::now() + limits.timeout;
    let status = loop {
        if too_large.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RunError::TooLarge {
                program: name.to_owned(),
                limit: limits.max_output,
            });
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError::Timeout {
                    program: name.to_owned(),
                    timeout: limits.timeout,
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                return Err(RunError::Start {
                    program: name.to_owned(),
                    message: e.to_string(),
                });
            }
        }
    };
    // A reader that died would pass for an empty build: every object gone.
    let unread = |message: String| RunError::Start {
        program: name.to_owned(),
        message: format!("its output could not be read: {message}"),
    };
    let out = stdout
        .join()
        .map_err(|_| unread("the reader stopped".into()))?
        .map_err(unread)?;
    let err = stderr
        .join()
        .map_err(|_| unread("the reader stopped".into()))?
        .map_err(unread)?;
    if too_large.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(RunError::TooLarge {
            program: name.to_owned(),
            limit: limits.max_output,
        });
    }
    if status.success() {
        String::from_utf8(out).map_err(|_| RunError::Failed {
            message: format!("{name} printed output that is not UTF-8"),
        })
    } else {
        Err(RunError::Failed {
            message: failure_message(&String::from_utf8_lossy(&err), status),
        })
    }
}

/// The program's own message: kubectl wraps kustomize's in a klog line (`E1126 ... "command
/// failed" err="..."`), which is taken off.
pub(super) fn failure_message(stderr: &str, status: std::process::ExitStatus) -> String {
    let text = stderr.trim();
    if text.is_empty() {
        return format!("exited with {status}");
    }
    // klog's multi-line form: `err=<`, the message indented by a tab, then ` >`.
    if let Some(start) = text.find("err=<\n") {
        let body: Vec<&str> = text[start + 6..]
            .lines()
            .take_while(|l| l.trim() != ">")
            .map(|l| l.trim_start_matches('\t').trim_end())
            .collect();
        return body.join("\n");
    }
    let message = match text.find("err=\"") {
        Some(start) => text[start + 5..]
            .trim_end()
            .trim_end_matches('"')
            .replace("\\\"", "\"")
            .replace("\\'", "'"),
        None => text.trim_start_matches("Error: ").to_owned(),
    };
    message
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A program found on `PATH`.
pub fn lookup(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(name)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_gets_only_the_allowed_environment() {
        let sandbox = Sandbox::new(false).unwrap();
        let command = sandbox.command(Path::new("/bin/sh"), Path::new("/"));
        let env = environment_of(&command);
        let keys: Vec<&str> = env.iter().filter_map(|l| l.split('=').next()).collect();
        for key in ["GITHUB_TOKEN", "KUBERNETES_SERVICE_HOST", "SSH_AUTH_SOCK"] {
            assert!(!keys.contains(&key), "{key} passed: {env:?}");
        }
        let home = format!("HOME={}", sandbox.home().display());
        assert!(env.contains(&home), "{env:?}");
        assert!(env.iter().any(|l| l == "HTTPS_PROXY=http://127.0.0.1:9"));
        assert!(
            env.iter().any(|l| l.starts_with("KUBECONFIG=")
                && l.contains(&sandbox.home().display().to_string()))
        );
        let open = Sandbox::new(true).unwrap();
        let env = environment_of(&open.command(Path::new("/bin/sh"), Path::new("/")));
        assert!(
            !env.iter().any(|l| l.starts_with("HTTPS_PROXY=")),
            "{env:?}"
        );
    }

    #[test]
    fn a_run_that_prints_past_its_limit_is_stopped() {
        let sandbox = Sandbox::new(false).unwrap();
        let mut command = sandbox.command(Path::new("/bin/sh"), Path::new("/"));
        command.args(["-c", "yes 0123456789"]);
        let limits = Limits {
            timeout: Duration::from_secs(20),
            max_output: 1 << 20,
        };
        let error = run(command, "yes", limits).unwrap_err();
        assert!(matches!(error, RunError::TooLarge { .. }), "{error}");
        assert!(error.to_string().contains("more than 1 MiB"), "{error}");
        let mut small = sandbox.command(Path::new("/bin/sh"), Path::new("/"));
        small.args(["-c", "printf ok"]);
        assert_eq!(run(small, "sh", limits).unwrap(), "ok");
    }

    #[test]
    fn a_run_that_hangs_is_stopped_at_its_timeout() {
        let sandbox = Sandbox::new(false).unwrap();
        let mut command = sandbox.command(Path::new("/bin/sh"), Path::new("/"));
        command.args(["-c", "exec sleep 30"]);
        let limits = Limits {
            timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let started = Instant::now();
        let error = run(command, "sleep", limits).unwrap_err();
        assert!(matches!(error, RunError::Timeout { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn kubectl_s_log_line_is_taken_off_the_message() {
        let status = std::process::Command::new("false").status().unwrap();
        let one = "E1126 16:30:49.524475 9227 run.go:72] \"command failed\" err=\"missing 'x'\"";
        assert_eq!(failure_message(one, status), "missing 'x'");
        let many = "E1126 16:38:21.221704 18676 run.go:72] \"command failed\" err=<\n\tfirst\n\tsecond\n >\n";
        assert_eq!(failure_message(many, status), "first\nsecond");
        assert_eq!(failure_message("Error: no file\n", status), "no file");
    }

    #[test]
    fn flags_are_told_from_values() {
        assert!(is_flag_like(OsStr::new("--set-file=x=/proc/self/environ")));
        assert!(is_flag_like(OsStr::new("-f")));
        assert!(!is_flag_like(OsStr::new("web")));
    }
}
