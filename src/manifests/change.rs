//! Edits addressed by object: find where the repository declares it, edit that declaration, and
//! return the file before and after. Reads the declaring file; writes nothing.

use std::path::{Path, PathBuf};

use super::diff::FileChange;
use super::edit::{Edit, apply};
use super::{Error, Location, RepoIndex, Result};
use crate::model::RefQuery;

/// The one place the repository declares `query`. `file`, when given, picks among several.
pub fn locate<'i>(
    index: &'i RepoIndex,
    query: &RefQuery,
    file: Option<&Path>,
) -> Result<&'i Location> {
    let mut places: Vec<&Location> = index
        .find(query)
        .into_iter()
        .map(|o| &index.declaration(o).location)
        .filter(|l| file.is_none_or(|f| l.file == f))
        .collect();
    places.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    places.dedup();
    match places.as_slice() {
        [] => Err(Error::NotDeclared {
            object: query.to_string(),
        }),
        [one] => Ok(one),
        many => Err(Error::Ambiguous {
            object: query.to_string(),
            places: many
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Applies `edits` to the declaration of `query`; the returned change may be empty.
pub fn edit_object(
    index: &RepoIndex,
    query: &RefQuery,
    file: Option<&Path>,
    edits: &[Edit],
) -> Result<FileChange> {
    let location = locate(index, query, file)?;
    let path: PathBuf = index.root.join(&location.file);
    let old = std::fs::read_to_string(&path).map_err(|source| Error::Read {
        file: location.file.clone(),
        source,
    })?;
    let new = apply(&old, location, edits).map_err(|source| Error::Edit {
        object: query.to_string(),
        file: location.file.clone(),
        line: location.line,
        source,
    })?;
    Ok(FileChange {
        path: location.file.clone(),
        old,
        new,
    })
}
