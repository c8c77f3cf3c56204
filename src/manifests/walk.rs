//! Finding and reading the YAML files of a repository, as Flux's source-controller packs them:
//! dotfiles and dot-directories are read like any other (Flux applies them), `.gitignore` and
//! `.ignore` files decide nothing (a pull request could hide a manifest with one), and what is
//! skipped is decided only by Flux's default exclusions, `.sourceignore` files and the
//! configuration's `excludes`. Parsing runs on every core. Reads the files under the root.

use std::path::{Path, PathBuf};

use super::kustomize::FILE_NAMES;
use super::source::{ParsedFile, parse_file};
use super::{Error, Result};

/// The configuration file's name, at the repository root: read as configuration, never as
/// a manifest.
pub const CONFIG_FILE: &str = "remediator.yaml";

/// What Flux's source-controller leaves out of every artifact it packs (its default
/// `.sourceignore`): CI configuration and VCS metadata, never applied.
const FLUX_EXCLUDES: &[&str] = &[
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
    "**/.goreleaser.yml",
    "**/.sops.yaml",
    "**/.flux.yaml",
];

/// YAML files under `root`, relative and sorted.
pub(super) fn walk(root: &Path, excludes: &[String]) -> Result<Vec<PathBuf>> {
    let walk_error = |source| Error::Walk {
        dir: root.to_owned(),
        source,
    };
    let mut ignore = ignore::gitignore::GitignoreBuilder::new(root);
    for pattern in FLUX_EXCLUDES
        .iter()
        .map(|p| p.to_string())
        .chain([".git/".to_owned()])
    {
        ignore.add_line(None, &pattern).map_err(walk_error)?;
    }
    for pattern in excludes {
        ignore.add_line(None, pattern).map_err(walk_error)?;
    }
    let ignore = ignore.build().map_err(walk_error)?;
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .ignore(false)
        .git_ignore(false)
        .git_global(false)
        .git_exclude(false)
        .parents(false)
        .add_custom_ignore_filename(".sourceignore")
        .filter_entry(|e| e.file_name() != ".git")
        .sort_by_file_path(Path::cmp)
        .build();
    let mut files = Vec::new();
    for entry in walker {
        let entry = entry.map_err(walk_error)?;
        let path = entry.path();
        let is_file = entry.file_type().is_some_and(|t| t.is_file());
        let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            || path.file_name().is_some_and(|n| n == FILE_NAMES[2]);
        if !is_file || !yaml {
            continue;
        }
        let relative = path.strip_prefix(root).unwrap_or(path).to_owned();
        let is_config = relative == Path::new(CONFIG_FILE);
        if is_config
            || ignore
                .matched_path_or_any_parents(&relative, false)
                .is_ignore()
        {
            continue;
        }
        files.push(relative);
    }
    Ok(files)
}

/// Reads and parses `files` on `threads` threads, keeping their order.
pub(super) fn parse_all(
    root: &Path,
    files: &[PathBuf],
    threads: usize,
) -> Vec<(PathBuf, ParsedFile)> {
    let read = |file: &PathBuf| match std::fs::read(root.join(file)) {
        Ok(bytes) => parse_file(file, &bytes),
        Err(source) => ParsedFile {
            documents: vec![],
            errors: vec![Error::Read {
                file: file.clone(),
                source,
            }],
        },
    };
    let parsed = crate::parallel::map(files, threads, read);
    files.iter().cloned().zip(parsed).collect()
}
