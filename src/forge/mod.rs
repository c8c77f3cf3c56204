//! The pull-request boundary: a narrow [`Forge`] trait (open or update a pull request, one
//! comment per purpose upserted by a hidden marker, read a pull request with its reviews and the
//! head it merged with, find the pull request that merged a commit into a branch, a team's
//! members, commit statuses, check runs with annotations, a commit's checks, close) and its GitHub
//! implementation ([`GitHub`], octocrab's typed models, as a token or a GitHub App). I/O: HTTPS to
//! the forge's API. [`split`], [`checks`], [`session`] and [`approvers`] are pure.

pub mod app;
pub mod checks;
mod github;
mod models;
pub mod session;
pub mod split;

use std::collections::BTreeMap;
use std::future::Future;

use serde::Serialize;

pub use github::{GitHub, RequestCounts};
pub use session::{AppCredentials, Credentials, RateLimit};

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
    /// The head commit the review was given on; `None` when the forge did not say (such a
    /// review counts for no head).
    pub commit: Option<String>,
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
    /// Whether it is closed, merged or not.
    pub closed: bool,
    /// The merge commit (of a squash or rebase merge: the commit it wrote last).
    pub merge_commit: Option<String>,
    /// The head commit: the one it merged with, once merged.
    pub head_sha: String,
    /// Whoever pushed the head commit, as far as the forge knows: the actor of the timeline's
    /// force push to it, and the logins its author's and committer's e-mails belong to.
    /// Whoever pushed last may not approve.
    pub pushers: Vec<String>,
    /// Where `pushers` was learned.
    pub pushers_from: PushersFrom,
    /// Every review, oldest first.
    pub reviews: Vec<Review>,
}

/// Where the forge learned who pushed a pull request's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PushersFrom {
    /// The pull request's timeline names the push (`head_ref_force_pushed` to the head), with
    /// its actor: GitHub's own record.
    Timeline,
    /// The timeline names no push of the head: its author's and committer's e-mails, which
    /// whoever makes the commit sets.
    Emails,
}

/// A merged pull request, as a commit of its base branch knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergedPull {
    /// Its number.
    pub number: u64,
    /// The commit its merge wrote last (`merge_commit_sha`).
    pub merge_commit: String,
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

    /// The pull request merged into the branch `base` that `commit` comes from: the one whose
    /// merge made it (its merge, squash or last rebased commit), else one whose commits include
    /// it (an earlier commit of a rebase merge), else none. A pull request merged into another
    /// branch is never it.
    fn pull_for_commit(
        &self,
        commit: &str,
        base: &str,
    ) -> impl Future<Output = Result<Option<MergedPull>>> + Send;

    /// Whether `branch`'s protection requires approval of the most recent reviewable push
    /// (GitHub's own check that whoever pushed last did not approve): `Some(false)` for a
    /// branch without that rule or without protection, `None` when the token may not read it.
    fn last_push_approval(&self, branch: &str)
    -> impl Future<Output = Result<Option<bool>>> + Send;

    /// The logins of a team's members; `team` is `org/slug`.
    fn team_members(&self, team: &str) -> impl Future<Output = Result<Vec<String>>> + Send;

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

    /// Reports a check run on its commit: an unfinished one of that name is updated, else one
    /// is created; its annotations go [`checks::ANNOTATIONS_PER_REQUEST`] a request. When the
    /// token may not write checks, a commit status stands for it.
    fn report_check(
        &self,
        run: &checks::CheckRun,
    ) -> impl Future<Output = Result<checks::ReportedAs>> + Send;

    /// Every check of a commit: the latest check run of each name and the latest status of
    /// each context. One that cannot be read is an error.
    fn checks(&self, commit: &str)
    -> impl Future<Output = Result<Vec<checks::CheckResult>>> + Send;
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

/// The reviewers of `pull` whose latest decisive review approves its head (the commit it merged
/// with), as GitHub's "dismiss stale approvals" and "most recent reviewable push" rules count
/// them: a later "changes requested" or a dismissal cancels an approval, a comment changes
/// nothing, an approval of an earlier head counts for nothing, and neither the author nor
/// whoever pushed the head may approve.
pub fn approvers(pull: &PullInfo) -> Vec<String> {
    let mut latest: BTreeMap<&str, &Review> = BTreeMap::new();
    for review in &pull.reviews {
        if review.user == pull.author || pull.pushers.contains(&review.user) {
            continue;
        }
        match review.state {
            ReviewState::Commented | ReviewState::Pending => {}
            _ => {
                latest.insert(&review.user, review);
            }
        }
    }
    latest
        .into_values()
        .filter(|r| r.state == ReviewState::Approved)
        .filter(|r| r.commit.as_deref() == Some(pull.head_sha.as_str()))
        .map(|r| r.user.clone())
        .collect()
}

/// A merged pull request #1 by `bot` whose head is `head`, for tests.
#[cfg(test)]
pub(crate) fn test_pull(reviews: Vec<Review>, pushers: &[&str]) -> PullInfo {
    PullInfo {
        summary: PullSummary {
            number: 1,
            head: "b".into(),
            title: "t".into(),
            url: String::new(),
            labels: vec![],
        },
        author: "bot".into(),
        base: "main".into(),
        merged: true,
        closed: true,
        merge_commit: None,
        head_sha: "head".into(),
        pushers: pushers.iter().map(|p| (*p).to_owned()).collect(),
        pushers_from: PushersFrom::Emails,
        reviews,
    }
}

/// A review of the head `head`, for tests.
#[cfg(test)]
pub(crate) fn test_review(user: &str, state: ReviewState) -> Review {
    Review {
        user: user.into(),
        state,
        commit: Some("head".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use test_pull as pull;
    use test_review as review;

    #[test]
    fn the_latest_decisive_review_of_each_reviewer_counts_and_the_author_never() {
        use ReviewState::*;
        let reviews = vec![
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
        assert_eq!(approvers(&pull(reviews, &[])), ["alice", "carol", "dave"]);
        assert!(approvers(&pull(vec![], &[])).is_empty());
    }

    #[test]
    fn only_approvals_of_the_merged_head_count_and_never_the_last_pushers() {
        use ReviewState::*;
        let stale = Review {
            commit: Some("earlier".into()),
            ..review("alice", Approved)
        };
        let unknown = Review {
            commit: None,
            ..review("bob", Approved)
        };
        let reviews = vec![
            stale,
            unknown,
            review("carol", Approved),
            review("mallory", Approved),
        ];
        assert_eq!(approvers(&pull(reviews.clone(), &[])), ["carol", "mallory"]);
        assert_eq!(approvers(&pull(reviews, &["mallory"])), ["carol"]);
        // A fresh approval of the head after a stale one counts.
        let again = vec![
            Review {
                commit: Some("earlier".into()),
                ..review("alice", Approved)
            },
            review("alice", Approved),
        ];
        assert_eq!(approvers(&pull(again, &[])), ["alice"]);
    }
}
