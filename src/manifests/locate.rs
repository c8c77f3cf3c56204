//! Edits addressed by object: find where the repository declares it, edit that declaration, and
//! return the file before and after. Reads the declaring file; writes nothing.

use std::path::{Path, PathBuf};

use super::diff::FileChange;
use super::edit::{Edit, apply};
use super::{Error, Location, RepoIndex, Result};
use crate::model::RefQuery;

/// The one place the repository declares `query`. `file`, when given, picks among several;
/// without it, an object declared more than once (in several units, or twice in one) is
/// ambiguous and every copy is named: editing one copy would leave the other to undo it.
pub fn locate<'i>(
    index: &'i RepoIndex,
    query: &RefQuery,
    file: Option<&Path>,
) -> Result<&'i Location> {
    let mut places: Vec<&Location> = index
        .find(query)
        .into_iter()
        .flat_map(|o| index.copies(o))
        .filter(|l| file.is_none_or(|f| l.file == f))
        .collect();
    places.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    places.dedup();
    match places.as_slice() {
        [] => {
            // The file asked for may not declare it because it could not be read.
            let problems: Vec<String> = match file {
                Some(f) => index
                    .errors
                    .iter()
                    .filter(|e| e.files().contains(&f))
                    .map(ToString::to_string)
                    .collect(),
                None => vec![],
            };
            let why = if problems.is_empty() {
                String::new()
            } else {
                format!("; {}", problems.join("; "))
            };
            Err(Error::NotDeclared {
                object: query.to_string(),
                why,
            })
        }
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
