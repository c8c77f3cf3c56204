//! Paths read from repository content (values files, kustomize resources, patches and generator
//! files, chart directories, Flux paths), resolved as Argo CD's `ResolveFilePath` resolves them:
//! made absolute against the repository root, normalised, symlinks resolved, and refused when
//! they leave the root. A URL is no path: it is told apart here and judged as a remote source
//! elsewhere. I/O: reads symlinks under the root.

use std::path::{Path, PathBuf};

/// Why a path from repository content was refused: the file and field it came from, the value,
/// and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {field}: `{value}` is refused: {rule}", file.display())]
pub struct Refusal {
    /// The file that holds the path, relative to the root.
    pub file: PathBuf,
    /// The field, as written (`resources[2]`, `spec.source.helm.valueFiles[0]`).
    pub field: String,
    /// The path as written.
    pub value: String,
    /// The rule it breaks.
    pub rule: String,
}

/// How an absolute path is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absolute {
    /// From the repository root, as Argo CD reads an absolute values file.
    FromRoot,
    /// Refused: the tool would read it from the host (kustomize).
    Refused,
}

/// Where a path from content is read from.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The file that holds it, relative to the root.
    pub file: &'a Path,
    /// The field that holds it.
    pub field: &'a str,
}

impl Source<'_> {
    fn refuse(&self, value: &str, rule: impl Into<String>) -> Refusal {
        Refusal {
            file: self.file.to_owned(),
            field: self.field.to_owned(),
            value: value.to_owned(),
            rule: rule.into(),
        }
    }
}

pub use crate::manifests::{is_remote, normalise};

/// `raw`, relative to `dir` (a directory relative to `root`), as a path relative to `root`
/// that stays inside it once symlinks are followed; the refusal names `source`'s file and field.
pub fn resolve(
    root: &Path,
    dir: &Path,
    raw: &str,
    absolute: Absolute,
    source: Source<'_>,
) -> Result<PathBuf, Refusal> {
    if raw.is_empty() {
        return Err(source.refuse(raw, "a path must not be empty"));
    }
    if raw.contains('\0') {
        return Err(source.refuse(raw, "a path must not hold a NUL byte"));
    }
    if is_remote(raw) {
        return Err(source.refuse(
            raw,
            "a URL is a remote source, not a file of the repository",
        ));
    }
    if raw.contains('\\') {
        return Err(source.refuse(raw, "`\\` is no path separator here: write paths with `/`"));
    }
    let start = if raw.starts_with('/') {
        if absolute == Absolute::Refused {
            return Err(source.refuse(
                raw,
                "an absolute path would be read from the host, not from the repository",
            ));
        }
        PathBuf::new()
    } else {
        dir.to_owned()
    };
    let leaves = || source.refuse(raw, "it leaves the repository");
    let lexical = normalise(&start.join(raw.trim_start_matches('/'))).ok_or_else(leaves)?;
    // Follow symlinks one component at a time, so a link inside the tree that points out of it
    // is refused whether or not its target exists.
    let mut resolved = PathBuf::new();
    let mut hops = 0;
    let mut pending: Vec<PathBuf> = lexical
        .components()
        .rev()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    while let Some(part) = pending.pop() {
        let candidate = resolved.join(&part);
        match std::fs::symlink_metadata(root.join(&candidate)) {
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return Err(source.refuse(raw, "its symlinks loop"));
                }
                let target = std::fs::read_link(root.join(&candidate))
                    .map_err(|e| source.refuse(raw, format!("its symlink cannot be read: {e}")))?;
                if target.is_absolute() {
                    let inside = root
                        .canonicalize()
                        .ok()
                        .and_then(|r| target.strip_prefix(r).ok().map(Path::to_owned));
                    let Some(inside) = inside else {
                        return Err(
                            source.refuse(raw, "a symlink on it leads out of the repository")
                        );
                    };
                    resolved = PathBuf::new();
                    pending.extend(
                        inside
                            .components()
                            .rev()
                            .map(|c| PathBuf::from(c.as_os_str())),
                    );
                } else {
                    let joined = normalise(&resolved.join(&target)).ok_or_else(|| {
                        source.refuse(raw, "a symlink on it leads out of the repository")
                    })?;
                    resolved = PathBuf::new();
                    pending.extend(
                        joined
                            .components()
                            .rev()
                            .map(|c| PathBuf::from(c.as_os_str())),
                    );
                }
            }
            _ => resolved = candidate,
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Source<'static> {
        Source {
            file: Path::new("apps/web/app.yaml"),
            field: "spec.source.helm.valueFiles[0]",
        }
    }

    fn at(root: &Path, raw: &str, absolute: Absolute) -> Result<PathBuf, Refusal> {
        resolve(root, Path::new("charts/web"), raw, absolute, source())
    }

    #[test]
    fn relative_paths_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let ok = at(root.path(), "../shared/./values.yaml", Absolute::Refused).unwrap();
        assert_eq!(ok, PathBuf::from("charts/shared/values.yaml"));
        let error = at(root.path(), "../../../../etc/passwd", Absolute::Refused).unwrap_err();
        assert_eq!(
            error.to_string(),
            "apps/web/app.yaml: spec.source.helm.valueFiles[0]: `../../../../etc/passwd` is refused: it leaves the repository"
        );
    }

    #[test]
    fn absolute_paths_are_rooted_or_refused() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(
            at(root.path(), "/etc/passwd", Absolute::FromRoot).unwrap(),
            PathBuf::from("etc/passwd"),
            "Argo CD reads an absolute values file from the repository root"
        );
        let error = at(root.path(), "/etc/passwd", Absolute::Refused).unwrap_err();
        assert!(error.rule.contains("from the host"), "{error}");
        let error = at(root.path(), "/../etc/passwd", Absolute::FromRoot).unwrap_err();
        assert!(error.rule.contains("leaves"), "{error}");
    }

    #[test]
    fn symlinks_are_followed_and_may_not_leave() {
        let root = tempfile::tempdir().unwrap();
        let charts = root.path().join("charts/web");
        std::fs::create_dir_all(&charts).unwrap();
        std::fs::create_dir_all(root.path().join("values")).unwrap();
        std::fs::write(root.path().join("values/prod.yaml"), "a: 1\n").unwrap();
        std::os::unix::fs::symlink("../../values", charts.join("inside")).unwrap();
        std::os::unix::fs::symlink("/etc", charts.join("outside")).unwrap();
        std::os::unix::fs::symlink("../../../..", charts.join("up")).unwrap();
        let inner = root.path().canonicalize().unwrap().join("values");
        std::os::unix::fs::symlink(&inner, charts.join("absolute-inside")).unwrap();
        assert_eq!(
            at(root.path(), "inside/prod.yaml", Absolute::Refused).unwrap(),
            PathBuf::from("values/prod.yaml")
        );
        assert_eq!(
            at(root.path(), "absolute-inside/prod.yaml", Absolute::Refused).unwrap(),
            PathBuf::from("values/prod.yaml")
        );
        for raw in ["outside/passwd", "up/etc/passwd"] {
            let error = at(root.path(), raw, Absolute::Refused).unwrap_err();
            assert!(error.rule.contains("symlink"), "{raw}: {error}");
        }
        std::os::unix::fs::symlink("loop", charts.join("loop")).unwrap();
        let error = at(root.path(), "loop/x", Absolute::Refused).unwrap_err();
        assert!(error.rule.contains("loop"), "{error}");
    }

    #[test]
    fn windows_separators_urls_and_nul_are_refused() {
        let root = tempfile::tempdir().unwrap();
        for (raw, rule) in [
            ("..\\..\\etc\\passwd", "separator"),
            ("C:\\values.yaml", "separator"),
            ("https://example.com/values.yaml", "remote"),
            ("oci://registry.example.com/charts/web", "remote"),
            ("file:///etc/passwd", "remote"),
            ("git@github.com:org/repo.git", "remote"),
            ("github.com/org/repo//deploy?ref=v1", "remote"),
            ("a\0b", "NUL"),
            ("", "empty"),
        ] {
            let error = at(root.path(), raw, Absolute::FromRoot).unwrap_err();
            assert!(error.rule.contains(rule), "{raw:?}: {error}");
            assert!(
                error
                    .to_string()
                    .starts_with("apps/web/app.yaml: spec.source")
            );
        }
    }
}
