//! GitHub's answers read into octocrab's typed models, and those into the forge's own nouns: a
//! field GitHub documents as always there and that is missing is an error, never a default.
//! Pure.

use octocrab::models::Label;
use octocrab::models::pulls::PullRequest;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Error, PullSummary, Result, ReviewState};

/// Reads an answer into octocrab's model of it.
pub(super) fn decode<T: DeserializeOwned>(what: &str, value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Decode {
        what: what.to_owned(),
        message: e.to_string(),
    })
}

/// A field octocrab models as optional that GitHub documents as always there.
pub(super) fn required<T>(what: &str, field: &str, value: Option<T>) -> Result<T> {
    value.ok_or_else(|| Error::Decode {
        what: what.to_owned(),
        message: format!("no `{field}`"),
    })
}

pub(super) fn label_names(what: &str, labels: Option<&[Label]>) -> Result<Vec<String>> {
    Ok(required(what, "labels", labels)?
        .iter()
        .map(|l| l.name.clone())
        .collect())
}

pub(super) fn summary(pull: &PullRequest) -> Result<PullSummary> {
    let what = format!("read #{}", pull.number);
    Ok(PullSummary {
        number: pull.number,
        head: pull.head.ref_field.clone(),
        title: required(&what, "title", pull.title.clone())?,
        url: required(&what, "html_url", pull.html_url.as_ref())?.to_string(),
        labels: label_names(&what, pull.labels.as_deref())?,
    })
}

pub(super) fn review_state(
    what: &str,
    state: Option<octocrab::models::pulls::ReviewState>,
) -> Result<ReviewState> {
    use octocrab::models::pulls::ReviewState as Theirs;
    Ok(match required(what, "state", state)? {
        Theirs::Approved => ReviewState::Approved,
        Theirs::ChangesRequested => ReviewState::ChangesRequested,
        Theirs::Dismissed => ReviewState::Dismissed,
        Theirs::Pending => ReviewState::Pending,
        _ => ReviewState::Commented,
    })
}
