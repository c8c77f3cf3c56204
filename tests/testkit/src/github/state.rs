//! The fake GitHub's state: pull requests, reviews, comments and statuses in memory, branches and
//! merges in the bare Git repository.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository, Signature};
use serde_json::{Value, json};

use super::{BOT_TOKEN, BOT_USER};

/// A pull request.
#[derive(Clone, Debug)]
pub struct Pull {
    /// Its number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Head branch.
    pub head: String,
    /// Base branch.
    pub base: String,
    /// `open` or `closed`.
    pub state: String,
    /// Whether it was merged.
    pub merged: bool,
    /// The merge commit, once merged.
    pub merge_commit_sha: Option<String>,
    /// The head commit when it was merged or closed; the branch's while open.
    pub head_sha: Option<String>,
    /// Who opened it.
    pub user: String,
    /// Label names.
    pub labels: Vec<String>,
}

/// A review's state, as GitHub names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewState {
    /// Approved.
    Approved,
    /// Changes requested.
    ChangesRequested,
    /// A comment only.
    Commented,
    /// An approval dismissed.
    Dismissed,
}

impl ReviewState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "APPROVED",
            Self::ChangesRequested => "CHANGES_REQUESTED",
            Self::Commented => "COMMENTED",
            Self::Dismissed => "DISMISSED",
        }
    }
}

/// A review.
#[derive(Clone, Debug)]
pub struct Review {
    /// Id, increasing with time.
    pub id: u64,
    /// The pull request.
    pub pull: u64,
    /// The reviewer.
    pub user: String,
    /// Its state.
    pub state: ReviewState,
}

/// An issue comment.
#[derive(Clone, Debug)]
pub struct Comment {
    /// Id.
    pub id: u64,
    /// The pull request (issue) number.
    pub issue: u64,
    /// The author.
    pub user: String,
    /// Markdown.
    pub body: String,
}

/// A commit status.
#[derive(Clone, Debug)]
pub struct Status {
    /// The commit.
    pub sha: String,
    /// `pending`, `success`, `failure` or `error`.
    pub state: String,
    /// The context (`remediator/reconcile`).
    pub context: String,
    /// One line.
    pub description: String,
}

pub(crate) struct State {
    pub(crate) repository: String,
    pub(crate) git_dir: PathBuf,
    pub(crate) tokens: HashMap<String, String>,
    pub(crate) pulls: Vec<Pull>,
    pub(crate) reviews: Vec<Review>,
    pub(crate) comments: Vec<Comment>,
    pub(crate) statuses: Vec<Status>,
    next_id: u64,
}

impl State {
    pub(crate) fn new(repository: &str, git_dir: &Path) -> State {
        State {
            repository: repository.to_owned(),
            git_dir: git_dir.to_owned(),
            tokens: HashMap::from([(BOT_TOKEN.to_owned(), BOT_USER.to_owned())]),
            pulls: vec![],
            reviews: vec![],
            comments: vec![],
            statuses: vec![],
            next_id: 1000,
        }
    }

    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn pull(&self, number: u64) -> Option<&Pull> {
        self.pulls.iter().find(|p| p.number == number)
    }

    pub(crate) fn pull_mut(&mut self, number: u64) -> Option<&mut Pull> {
        self.pulls.iter_mut().find(|p| p.number == number)
    }

    fn repo(&self) -> Result<Repository, String> {
        Repository::open_bare(&self.git_dir).map_err(|e| e.to_string())
    }

    pub(crate) fn branch_head(&self, branch: &str) -> Option<String> {
        let repo = self.repo().ok()?;
        let reference = repo.find_reference(&format!("refs/heads/{branch}")).ok()?;
        reference.target().map(|o| o.to_string())
    }

    pub(crate) fn add_review(&mut self, number: u64, login: &str, state: ReviewState) {
        let id = self.next_id();
        self.reviews.push(Review {
            id,
            pull: number,
            user: login.to_owned(),
            state,
        });
    }

    /// Writes a merge commit of the pull request's head into its base branch.
    pub(crate) fn merge(&mut self, number: u64, login: &str) -> Result<String, String> {
        let pull = self.pull(number).ok_or("no such pull request")?.clone();
        if pull.state != "open" {
            return Err("the pull request is not open".into());
        }
        let repo = self.repo()?;
        let head = self
            .branch_head(&pull.head)
            .ok_or("the head branch is gone")?;
        let base = self
            .branch_head(&pull.base)
            .ok_or("the base branch is gone")?;
        let find = |sha: &str| {
            Oid::from_str(sha)
                .and_then(|oid| repo.find_commit(oid))
                .map_err(|e| e.to_string())
        };
        let (head_commit, base_commit) = (find(&head)?, find(&base)?);
        let mut index = repo
            .merge_commits(&base_commit, &head_commit, None)
            .map_err(|e| e.to_string())?;
        if index.has_conflicts() {
            return Err("merge conflict".into());
        }
        let tree = index.write_tree_to(&repo).map_err(|e| e.to_string())?;
        let tree = repo.find_tree(tree).map_err(|e| e.to_string())?;
        let signature = Signature::now(login, &format!("{login}@users.noreply.github.com"))
            .map_err(|e| e.to_string())?;
        let message = format!(
            "Merge pull request #{number} from {}\n\n{}\n",
            pull.head, pull.title
        );
        let merge = repo
            .commit(
                Some(&format!("refs/heads/{}", pull.base)),
                &signature,
                &signature,
                &message,
                &tree,
                &[&base_commit, &head_commit],
            )
            .map_err(|e| e.to_string())?
            .to_string();
        let pull = self.pull_mut(number).ok_or("no such pull request")?;
        pull.state = "closed".into();
        pull.merged = true;
        pull.merge_commit_sha = Some(merge.clone());
        pull.head_sha = Some(head);
        Ok(merge)
    }

    pub(crate) fn url(&self) -> String {
        format!("https://github.test/{}", self.repository)
    }

    pub(crate) fn pull_json(&self, pull: &Pull) -> Value {
        let head_sha = pull
            .head_sha
            .clone()
            .or_else(|| self.branch_head(&pull.head));
        json!({
            "number": pull.number,
            "title": pull.title,
            "body": pull.body,
            "state": pull.state,
            "merged": pull.merged,
            "merged_at": pull.merged.then_some("2026-11-22T00:00:00Z"),
            "merge_commit_sha": pull.merge_commit_sha,
            "html_url": format!("{}/pull/{}", self.url(), pull.number),
            "user": {"login": pull.user},
            "head": {"ref": pull.head, "sha": head_sha},
            "base": {"ref": pull.base},
            "labels": pull.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
        })
    }

    pub(crate) fn review_json(&self, review: &Review) -> Value {
        json!({
            "id": review.id,
            "user": {"login": review.user},
            "state": review.state.as_str(),
            "submitted_at": "2026-11-22T00:00:00Z",
        })
    }

    pub(crate) fn comment_json(&self, comment: &Comment) -> Value {
        json!({
            "id": comment.id,
            "user": {"login": comment.user},
            "body": comment.body,
            "html_url": format!("{}/pull/{}#issuecomment-{}", self.url(), comment.issue, comment.id),
        })
    }
}
