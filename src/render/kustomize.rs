//! The kustomize program, as Argo CD's repo-server and Flux's kustomize-controller use it: the
//! `kustomize` binary when it is on `PATH`, else `kubectl kustomize`, and `helm`. Each runs
//! through [`super::sandbox`]: a cleared environment, a temporary home, a timeout and an output
//! limit. kustomize runs with its root-only load restrictor and without exec or alpha plugins;
//! Helm charts inflate only when `helm` is on `PATH` too. I/O: runs the programs.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use super::sandbox::{self, Limits, Sandbox};
pub use super::sandbox::{RunError, TIMEOUT};

/// Neither `kustomize` nor `kubectl` is on `PATH`.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "neither `kustomize` nor `kubectl` is on PATH: remediator renders kustomize builds with kustomize itself, as Argo CD and Flux do; install one of them"
)]
pub struct Missing;

/// The kustomize program found on `PATH`.
#[derive(Debug, Clone)]
pub struct Kustomize {
    program: PathBuf,
    /// `build` for kustomize, `kustomize` for kubectl.
    verb: &'static str,
    /// `helm`, when it is on `PATH`.
    helm: Option<PathBuf>,
    /// What it is, with its version, asked for the first time it is needed: a run that renders
    /// nothing does not start the program.
    name: OnceLock<String>,
    /// How long one build may take, and how much it may print.
    pub limits: Limits,
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
        let lookup = |name: &str| sandbox::lookup(&dirs, name);
        let helm = lookup("helm");
        if let Some(program) = lookup("kustomize") {
            return Ok(Kustomize {
                name: OnceLock::new(),
                program,
                verb: "build",
                helm,
                limits: Limits::default(),
            });
        }
        let program = lookup("kubectl").ok_or(Missing)?;
        Ok(Kustomize {
            name: OnceLock::new(),
            program,
            verb: "kustomize",
            helm,
            limits: Limits::default(),
        })
    }

    /// What it is, with its version: `kustomize v5.4.3`, `kubectl kustomize (kustomize v5.5.0)`.
    pub fn name(&self) -> &str {
        self.name.get_or_init(|| match self.verb {
            "build" => format!("kustomize {}", version_of(&self.program, &["version"])),
            _ => format!(
                "kubectl kustomize (kustomize {})",
                version_of(&self.program, &["version", "--client"])
            ),
        })
    }

    /// Whether Helm charts can be inflated.
    pub fn has_helm(&self) -> bool {
        self.helm.is_some()
    }

    /// `helm template` of `chart` (a directory, or a name with `--repo` and `--version`) as
    /// release `name` in `namespace` with the values file `values`, as Helm prints it, run in
    /// `sandbox` from `dir`. The release name and the chart come after `--`, so neither can be
    /// read as a flag; a flag-like one is refused all the same.
    pub fn helm_template(
        &self,
        sandbox: &Sandbox,
        dir: &Path,
        chart: &ChartArgs<'_>,
        name: &str,
        namespace: &str,
        values: &Path,
    ) -> Option<Result<String, RunError>> {
        let helm = self.helm.as_ref()?;
        let flags: Vec<&OsStr> = chart.flags.iter().map(OsString::as_os_str).collect();
        let positional = [OsStr::new(name), chart.reference];
        if let Some(bad) = positional.iter().chain(&flags).find(|a| a.is_empty()) {
            let message = format!("an empty argument {bad:?} is refused");
            return Some(Err(RunError::Failed { message }));
        }
        if let Some(bad) = positional.iter().find(|a| sandbox::is_flag_like(a)) {
            let message = format!("{bad:?} reads as a flag: refused");
            return Some(Err(RunError::Failed { message }));
        }
        let mut command = sandbox.command(helm, dir);
        command
            .arg("template")
            .arg("--namespace")
            .arg(namespace)
            .arg("--values")
            .arg(values)
            .args(flags)
            .arg("--")
            .args(positional);
        Some(sandbox::run(command, "helm template", self.limits))
    }

    /// The build of `dir`, as kustomize prints it, run in `sandbox`.
    pub fn run(&self, sandbox: &Sandbox, dir: &Path) -> Result<String, RunError> {
        let mut command = sandbox.command(&self.program, dir);
        command
            .arg(self.verb)
            .arg("--load-restrictor")
            .arg("LoadRestrictionsRootOnly");
        if let Some(helm) = &self.helm {
            command.arg("--enable-helm").arg("--helm-command").arg(helm);
        }
        command.arg("--").arg(dir);
        sandbox::run(command, self.name(), self.limits)
    }
}

/// A chart as `helm template` takes it: the reference after the release name (a directory or a
/// chart name or OCI reference), and the flags that go with it (`--repo`, `--version`).
#[derive(Debug)]
pub struct ChartArgs<'a> {
    /// The directory, chart name or `oci://` reference.
    pub reference: &'a OsStr,
    /// `--repo URL`, `--version V`.
    pub flags: Vec<OsString>,
}

/// The first `vX.Y.Z` the program prints for `args` (kubectl prints kustomize's after
/// `Kustomize Version:`), or `(version unknown)`.
fn version_of(program: &Path, args: &[&str]) -> String {
    let limits = Limits {
        timeout: Duration::from_secs(20),
        max_output: 1 << 20,
    };
    let text = Sandbox::new(false)
        .ok()
        .and_then(|sandbox| {
            let mut command = sandbox.command(program, sandbox.home());
            command.args(args);
            sandbox::run(command, "version", limits).ok()
        })
        .unwrap_or_default();
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
        assert_eq!(kustomize.name(), "kustomize v5.4.3");
        kustomize.limits.timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let sandbox = Sandbox::new(false).unwrap();
        let error = kustomize.run(&sandbox, dir.path()).unwrap_err();
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
