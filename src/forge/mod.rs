//! The pull-request boundary: a narrow [`Forge`] trait (open or update a pull request, one
//! comment per purpose upserted by a hidden marker, read a pull request with its reviews, find
//! the pull request of a merge commit, commit statuses, close) and its GitHub implementation
//! ([`GitHub`], octocrab). I/O: HTTPS to the forge's API. [`split`] and [`approvers`] are pure.

mod github;
pub mod split;

use std::collections::BTreeMap;
use std::future::Future;

use serde::Serialize;

pub use github::GitHub;

/// What can go wrong talking to the forge.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The forge answered with an error.
    #[error("{what}: GitHub answered {status}: {message}")]
    Api {
        /// What was being done (`open pull request for remediator/x`).
        what: String,
        /// HTTP status.
        status: u16,
        /// GitHub's message.
        message: String,
    },
    /// Rate limited, and the tries ran out.
    #[error("{what}: rate limited by GitHub ({message}); try again after the limit resets")]
    RateLimited {
        /// What was being done.
        what: String,
        /// GitHub's message.
        message: String,
    },
    /// The request could not be sent or its answer not read.
    #[error("{what}: {source}")]
    Transport {
        /// What was being done.
        what: String,
        /// The client's error.
        #[source]
        source: octocrab::Error,
    },
    /// The answer did not have the expected shape.
    #[error("{what}: unexpected answer from GitHub: {message}")]
    Decode {
        /// What was being done.
        what: String,
        /// What was wrong.
        message: String,
    },
    /// The client could not be built (bad base URL).
    #[error("GitHub client: {0}")]
    Setup(String),
}

/// Result of forge calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A pull request to open or update.
#[derive(Debug, Clone)]
pub struct PullRequestSpec {
    /// Head branch.
    pub head: String,
    /// Base branch.
    pub base: String,
    /// Title.
    pub title: String,
    /// Markdown body; split into the body and continuation comments when too long.
    pub body: String,
    /// Labels the pull request carries; other labels set by people are kept.
    pub labels: Vec<String>,
}

/// A pull request as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullSummary {
    /// Its number.
    pub number: u64,
    /// Head branch.
    pub head: String,
    /// Title.
    pub title: String,
    /// Web address.
    pub url: String,
    /// Labels.
    pub labels: Vec<String>,
}

/// What opening a pull request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Upserted {
    /// A new pull request.
    Opened,
    /// The open pull request of the branch was updated.
    Updated,
}

/// A review's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReviewState {
    /// Approved.
    Approved,
    /// Changes requested.
    ChangesRequested,
    /// A comment only; leaves the reviewer's earlier state as it was.
    Commented,
    /// The reviewer's approval was dismissed.
    Dismissed,
    /// Not submitted yet.
    Pending,
}

/// A submitted review, in the order they were submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Review {
    /// The reviewer.
    pub user: String,
    /// Its state.
    pub state: ReviewState,
}

/// A pull request read in full.
#[derive(Debug, Clone, Serialize)]
pub struct PullInfo {
    /// Number, title, head, address and labels.
    #[serde(flatten)]
    pub summary: PullSummary,
    /// Who opened it.
    pub author: String,
    /// Base branch.
    pub base: String,
    /// Whether it was merged.
    pub merged: bool,
    /// The merge commit.
    pub merge_commit: Option<String>,
    /// Every review, oldest first.
    pub reviews: Vec<Review>,
}

/// A commit status's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    /// Running.
    Pending,
    /// Done and fine.
    Success,
    /// Done and refused or failed.
    Failure,
    /// Could not be done.
    Error,
}

/// A commit status.
#[derive(Debug, Clone)]
pub struct CommitStatus {
    /// Its state.
    pub state: StatusState,
    /// The check's name (`remediator/reconcile`).
    pub context: String,
    /// One line; cut to GitHub's 140 characters.
    pub description: String,
}

/// The pull-request forge.
pub trait Forge {
    /// Opens a pull request for `spec.head`, or updates the open one of that branch (title, body,
    /// labels); never opens a second one.
    fn open_or_update(
        &self,
        spec: &PullRequestSpec,
    ) -> impl Future<Output = Result<(PullSummary, Upserted)>> + Send;

    /// Open pull requests carrying `label`.
    fn open_pulls(&self, label: &str) -> impl Future<Output = Result<Vec<PullSummary>>> + Send;

    /// A pull request with its reviews.
    fn pull(&self, number: u64) -> impl Future<Output = Result<PullInfo>> + Send;

    /// The pull request whose merge made `commit`, if any.
    fn pull_for_commit(&self, commit: &str) -> impl Future<Output = Result<Option<u64>>> + Send;

    /// Creates or edits the one comment of the pull request that holds `marker` (a hidden
    /// HTML comment is added to the body to find it again).
    fn upsert_comment(
        &self,
        number: u64,
        marker: &str,
        body: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Sets a commit status.
    fn set_status(
        &self,
        commit: &str,
        status: &CommitStatus,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Comments, then closes the pull request.
    fn close(&self, number: u64, comment: &str) -> impl Future<Output = Result<()>> + Send;
}

/// The hidden line that marks a comment as the one for `marker`.
pub fn marker_line(marker: &str) -> String {
    format!("<!-- remediator:{marker} -->")
}

/// The labels of a proposal: `remediator`, `risk/<level>`, `finding/<code>`.
pub fn labels(risk: &str, finding: &str) -> Vec<String> {
    vec![
        "remediator".to_owned(),
        format!("risk/{risk}"),
        format!("finding/{finding}"),
    ]
}

/// The reviewers whose latest decisive review approves, the author left out: a later "changes
/// requested" or a dismissal cancels an approval; a comment changes nothing.
pub fn approvers(reviews: &[Review], author: &str) -> Vec<String> {
    let mut latest: BTreeMap<&str, ReviewState> = BTreeMap::new();
    for review in reviews {
        if review.user == author {
            continue;
        }
        match review.state {
            ReviewState::Commented | ReviewState::Pending => {}
            state => {
                latest.insert(&review.user, state);
            }
        }
    }
    latest
        .into_iter()
        .filter(|(_, state)| *state == ReviewState::Approved)
        .map(|(user, _)| user.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(user: &str, state: ReviewState) -> Review {
        Review {
            user: user.into(),
            state,
        }
    }

    #[test]
    fn the_latest_decisive_review_of_each_reviewer_counts_and_the_author_never() {
        use ReviewState::*;
        let reviews = [
            review("alice", Approved),
            review("bob", Approved),
            review("bob", ChangesRequested),
            review("carol", ChangesRequested),
            review("carol", Approved),
            review("dave", Approved),
            review("dave", Commented),
            review("erin", Approved),
            review("erin", Dismissed),
            review("bot", Approved),
        ];
        assert_eq!(approvers(&reviews, "bot"), ["alice", "carol", "dave"]);
        assert!(approvers(&[], "bot").is_empty());
    }
}
