//! The config repository as remediator sees it: which file, document, line and byte span declares
//! each Kubernetes object ([`RepoIndex`]), lossless edits of those declarations ([`edit`]), and
//! unified diffs of the result ([`diff`]).
//!
//! Parsing and editing are pure; [`RepoIndex::build`] reads the files of a directory and nothing
//! else.

pub mod appset;
mod builds;
pub mod diff;
pub mod edit;
mod emit;
pub mod history;
mod index;
mod kustomize;
mod lines;
mod locate;
mod op;
pub mod path;
mod scope;
mod source;
pub mod upstream;
mod verify;
pub(crate) use verify::document_value;
mod walk;

use std::path::PathBuf;

pub use builds::{Build, normalise};
pub use emit::block as emit_block;
pub use index::{
    Applier, Declaration, IndexOptions, IndexedObject, Reached, RepoIndex, Unit, ValuesReach,
};
pub use kustomize::{
    FILE_NAMES, ImageOverride, Kustomization, KustomizationFile, ReplicaOverride, is_remote,
};
pub use lines::{LineIndex, line_of_byte};
pub use locate::{edit_object, locate};
pub use scope::{Scope, Scopes, is_cluster_scoped, namespace_of};
pub use source::{Location, ParsedDocument, ParsedFile, parse_file, parse_text};
pub use upstream::Upstream;
pub use walk::CONFIG_FILE;

/// What can go wrong reading or editing manifests. Each names the file and line, or the object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The file, relative to the repository.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The repository directory could not be walked.
    #[error("{}: cannot list files: {source}", dir.display())]
    Walk {
        /// The directory.
        dir: PathBuf,
        /// The walker's error.
        #[source]
        source: ignore::Error,
    },
    /// The file is not UTF-8.
    #[error("{}:{line}: not UTF-8 text; save the file as UTF-8", file.display())]
    NotUtf8 {
        /// The file.
        file: PathBuf,
        /// Line of the first byte that is not UTF-8.
        line: usize,
    },
    /// A document is not valid YAML.
    #[error("{}:{line}:{column}: YAML syntax error: {message}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A document that should be a Kubernetes object is not one.
    #[error("{}:{line}: {message}", file.display())]
    NotAnObject {
        /// The file.
        file: PathBuf,
        /// Line of the document.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A kustomization file has a field of the wrong shape.
    #[error("{}:{line}: kustomization: {message}", file.display())]
    Kustomization {
        /// The file.
        file: PathBuf,
        /// Line of the document.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The same object is declared twice in one unit (one kustomize build or one directory).
    #[error(
        "{}:{line}: {object} is declared twice in {}: here and at {}:{other_line}; remove one",
        file.display(), display_dir(unit), other_file.display()
    )]
    Duplicate {
        /// The object.
        object: String,
        /// The unit both declarations belong to.
        unit: PathBuf,
        /// The later declaration's file.
        file: PathBuf,
        /// The later declaration's line.
        line: usize,
        /// The first declaration's file.
        other_file: PathBuf,
        /// The first declaration's line.
        other_line: usize,
    },

    /// No unit of the repository declares the object.
    #[error("{object}: not declared in this repository{why}")]
    NotDeclared {
        /// The object asked for.
        object: String,
        /// What the index found wrong in the file asked for, when there was one (`; f.yaml:3:
        /// YAML syntax error ...`); empty otherwise.
        why: String,
    },
    /// The object is declared in several places and none was chosen.
    #[error("{object}: declared in several places ({places}); pass --file to choose one")]
    Ambiguous {
        /// The object asked for.
        object: String,
        /// Its declarations, `file:line` each.
        places: String,
    },
    /// An edit could not be made; the file is unchanged.
    #[error("{object} ({}:{line}): {source}", file.display())]
    Edit {
        /// The object edited.
        object: String,
        /// The file declaring it.
        file: PathBuf,
        /// The line of its declaration.
        line: usize,
        /// Why.
        #[source]
        source: edit::EditError,
    },
}

impl Error {
    /// The files (or the directory) the error is about, relative to the repository: both
    /// declarations of a duplicate, none for an object that was asked for.
    pub fn files(&self) -> Vec<&std::path::Path> {
        match self {
            Error::Read { file, .. }
            | Error::NotUtf8 { file, .. }
            | Error::Syntax { file, .. }
            | Error::NotAnObject { file, .. }
            | Error::Kustomization { file, .. }
            | Error::Edit { file, .. } => vec![file],
            Error::Walk { dir, .. } => vec![dir],
            Error::Duplicate {
                file, other_file, ..
            } => vec![file, other_file],
            Error::NotDeclared { .. } | Error::Ambiguous { .. } => vec![],
        }
    }
}

/// A directory relative to the repository root as people write it: `.` for the root itself.
pub fn display_dir(path: &std::path::Path) -> String {
    if path.as_os_str().is_empty() {
        ".".to_owned()
    } else {
        path.display().to_string()
    }
}

/// Result of the manifests module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod error_tests {
    use std::path::{Path, PathBuf};

    use super::Error;

    #[test]
    fn an_error_names_every_file_it_is_about() {
        let duplicate = Error::Duplicate {
            object: "Deployment/shop/api".into(),
            unit: PathBuf::from("apps"),
            file: PathBuf::from("apps/all.yaml"),
            line: 40,
            other_file: PathBuf::from("apps/api.yaml"),
            other_line: 1,
        };
        assert_eq!(
            duplicate.files(),
            [Path::new("apps/all.yaml"), Path::new("apps/api.yaml")]
        );
        let asked = Error::NotDeclared {
            object: "Deployment/shop/api".into(),
            why: String::new(),
        };
        assert!(asked.files().is_empty());
    }
}
