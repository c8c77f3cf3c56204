//! Finding and reading the YAML files of a repository: gitignore-aware walking and parsing on
//! every core. Reads the files under the root.

use std::path::{Path, PathBuf};

use super::kustomize::FILE_NAMES;
use super::source::{ParsedFile, parse_file};
use super::{Error, Result};

/// YAML files under `root`, relative and sorted.
pub(super) fn walk(root: &Path, excludes: &[String]) -> Result<Vec<PathBuf>> {
    let walk_error = |source| Error::Walk {
        dir: root.to_owned(),
        source,
    };
    let mut ignore = ignore::gitignore::GitignoreBuilder::new(root);
    for pattern in excludes {
        ignore.add_line(None, pattern).map_err(walk_error)?;
    }
    let ignore = ignore.build().map_err(walk_error)?;
    let walker = ignore::WalkBuilder::new(root)
        .hidden(true)
        .require_git(false)
        .git_global(false)
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
        let is_config = relative == Path::new(crate::config::FILE_NAME);
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
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let chunk = files.len().div_ceil(threads).max(1);
    let read = |file: &PathBuf| {
        let parsed = match std::fs::read(root.join(file)) {
            Ok(bytes) => parse_file(file, &bytes),
            Err(source) => ParsedFile {
                documents: vec![],
                errors: vec![Error::Read {
                    file: file.clone(),
                    source,
                }],
            },
        };
        (file.clone(), parsed)
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(read).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}
