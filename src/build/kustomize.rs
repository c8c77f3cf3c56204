//! The kustomize program, as Argo CD's repo-server and Flux's kustomize-controller use it: the
//! `kustomize` binary when it is on `PATH`, else `kubectl kustomize`. It runs on one directory
//! with a timeout, the load restrictor at its default and no plugins; Helm charts inflate only
//! when `helm` is on `PATH` too. I/O: runs the program.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one build may take before it is stopped.
pub const TIMEOUT: Duration = Duration::from_secs(90);

/// Neither `kustomize` nor `kubectl` is on `PATH`.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "neither `kustomize` nor `kubectl` is on PATH: remediator renders kustomize builds with kustomize itself, as Argo CD and Flux do; install one of them"
)]
pub struct Missing;

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
    /// It failed; the message is its own.
    #[error("{message}")]
    Failed {
        /// What the program said on stderr, trimmed.
        message: String,
    },
}

/// The kustomize program found on `PATH`.
#[derive(Debug, Clone)]
pub struct Kustomize {
    program: PathBuf,
    /// `build` for kustomize, `kustomize` for kubectl.
    verb: &'static str,
    /// `helm`, when it is on `PATH`.
    helm: Option<PathBuf>,
    /// What it is, with its version: `kustomize v5.4.3`, `kubectl kustomize (kustomize v5.5.0)`.
    pub name: String,
    /// How long one build may take.
    pub timeout: Duration,
}

impl Kustomize {
    /// The kustomize on this process's `PATH`.
    pub fn find() -> Result<Self, Missing> {
        Self::find_in(std::env::var_os("PATH"))
    }

    /// The kustomize on `path` (a `PATH` value).
    pub fn find_in(path: Option<OsString>) -> Result<Self, Missing> {
        let dirs: Vec<PathBuf> = path
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        let lookup = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| is_executable(p));
        let helm = lookup("helm");
        if let Some(program) = lookup("kustomize") {
            let version = version_of(&program, &["version"]);
            return Ok(Kustomize {
                name: format!("kustomize {version}"),
                program,
                verb: "build",
                helm,
                timeout: TIMEOUT,
            });
        }
        let program = lookup("kubectl").ok_or(Missing)?;
        let version = version_of(&program, &["version", "--client"]);
        Ok(Kustomize {
            name: format!("kubectl kustomize (kustomize {version})"),
            program,
            verb: "kustomize",
            helm,
            timeout: TIMEOUT,
        })
    }

    /// Whether Helm charts can be inflated.
    pub fn has_helm(&self) -> bool {
        self.helm.is_some()
    }

    /// `helm template` of `chart` (a directory, or a name with `--repo` and `--version`) as
    /// release `name` in `namespace` with the values file `values`, as Helm prints it.
    pub fn helm_template(
        &self,
        chart: &[std::ffi::OsString],
        name: &str,
        namespace: &str,
        values: &Path,
    ) -> Option<Result<String, RunError>> {
        let helm = self.helm.as_ref()?;
        let mut command = Command::new(helm);
        command
            .arg("template")
            .arg(name)
            .args(chart)
            .arg("--namespace")
            .arg(namespace)
            .arg("--values")
            .arg(values)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Some(run_with_timeout(command, "helm template", self.timeout))
    }

    /// The build of `dir`, as kustomize prints it.
    pub fn run(&self, dir: &Path) -> Result<String, RunError> {
        let mut command = Command::new(&self.program);
        command.arg(self.verb);
        if let Some(helm) = &self.helm {
            command.arg("--enable-helm").arg("--helm-command").arg(helm);
        }
        command
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        run_with_timeout(command, &self.name, self.timeout)
    }
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

/// The first `vX.Y.Z` the program prints for `args` (kubectl prints kustomize's after
/// `Kustomize Version:`), or `(version unknown)`.
fn version_of(program: &Path, args: &[&str]) -> String {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let text = run_with_timeout(command, "version", Duration::from_secs(20)).unwrap_or_default();
    let line = text
        .lines()
        .find(|l| l.starts_with("Kustomize Version:"))
        .or_else(|| text.lines().next())
        .unwrap_or_default();
    version_in(line).unwrap_or_else(|| "(version unknown)".to_owned())
}

/// The first `v<digit>...` word of `line`, with a `kustomize/` prefix taken off.
fn version_in(line: &str) -> Option<String> {
    line.split(|c: char| c.is_whitespace() || c == ',' || c == '{' || c == '}')
        .map(|w| {
            w.trim_start_matches("Version:")
                .trim_start_matches("kustomize/")
        })
        .find(|w| w.starts_with('v') && w[1..].starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_owned)
}

/// Runs `command` with its stdout and stderr piped; its stdout when it exits 0.
fn run_with_timeout(
    mut command: Command,
    name: &str,
    timeout: Duration,
) -> Result<String, RunError> {
    let mut child = command.spawn().map_err(|e| RunError::Start {
        program: name.to_owned(),
        message: e.to_string(),
    })?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError::Timeout {
                    program: name.to_owned(),
                    timeout,
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
    let (Ok(out), Ok(err)) = (stdout.join(), stderr.join()) else {
        return Err(RunError::Start {
            program: name.to_owned(),
            message: "its output could not be read".to_owned(),
        });
    };
    if status.success() {
        Ok(out)
    } else {
        Err(RunError::Failed {
            message: failure_message(&err, status),
        })
    }
}

/// kustomize's own message: kubectl wraps it in a klog line (`E1126 ... "command failed"
/// err="..."`), which is taken off.
fn failure_message(stderr: &str, status: std::process::ExitStatus) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_either_program() {
        assert_eq!(version_in("v5.4.3").as_deref(), Some("v5.4.3"));
        assert_eq!(
            version_in("Kustomize Version: v5.5.0").as_deref(),
            Some("v5.5.0")
        );
        assert_eq!(
            version_in("{Version:kustomize/v4.5.7 GitCommit:56d82a8}").as_deref(),
            Some("v4.5.7")
        );
        assert_eq!(version_in("devel"), None);
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
    fn a_build_that_hangs_is_stopped_at_its_timeout() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("kustomize");
        std::fs::write(
            &program,
            "#!/bin/sh\nif [ \"$1\" = version ]; then echo v5.4.3; exit 0; fi\nexec sleep 30\n",
        )
        .unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut kustomize = Kustomize::find_in(Some(dir.path().as_os_str().to_owned())).unwrap();
        assert_eq!(kustomize.name, "kustomize v5.4.3");
        kustomize.timeout = Duration::from_millis(300);
        let started = Instant::now();
        let error = kustomize.run(dir.path()).unwrap_err();
        assert!(matches!(error, RunError::Timeout { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_path_without_either_program_is_named() {
        let empty = tempfile::tempdir().unwrap();
        let error = Kustomize::find_in(Some(empty.path().as_os_str().to_owned())).unwrap_err();
        assert!(error.to_string().contains("kubectl"), "{error}");
    }
}
