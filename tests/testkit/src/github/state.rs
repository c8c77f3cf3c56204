//! The fake GitHub's state: pull requests, reviews, comments and statuses in memory, branches and
//! merges in the bare Git repository.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository, Signature};
use serde_json::{Value, json};

use super::apps::{Apps, Grant};
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
    /// The base branch's commit it was merged onto; the branch's while open.
    pub base_sha: Option<String>,
    /// The commits a rebase merge wrote on the base branch, oldest first: GitHub associates each
    /// with the pull request.
    pub rebased: Vec<String>,
    /// Who opened it.
    pub user: String,
    /// Label names.
    pub labels: Vec<String>,
}

/// An issue that is not a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Its number, from the same sequence as pull requests'.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// `open` or `closed`.
    pub state: String,
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
    /// The head commit of the pull request when the review was given.
    pub commit_id: Option<String>,
}

/// How a pull request is merged, as the merge button offers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeMethod {
    /// A merge commit with the base and the head as parents.
    Merge,
    /// One new commit on the base with the head's tree.
    Squash,
    /// The head's commits written again on top of the base, one by one.
    Rebase,
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
    pub(crate) issues: Vec<Issue>,
    pub(crate) reviews: Vec<Review>,
    pub(crate) comments: Vec<Comment>,
    pub(crate) statuses: Vec<Status>,
    /// Teams by `org/slug`: their members' logins.
    pub(crate) teams: HashMap<String, Vec<String>>,
    /// The repository's former name, answered with a redirect.
    pub(crate) former_name: Option<String>,
    /// Apps, their tokens, rate limits and check runs.
    pub(crate) apps: Apps,
    /// Force pushes to pull requests' heads: the pull request, who pushed, the new head.
    pub(crate) force_pushes: Vec<(u64, String, String)>,
    /// Protected branches: whether each requires approval of the most recent reviewable push.
    pub(crate) protection: HashMap<String, bool>,
    next_id: u64,
}

impl State {
    pub(crate) fn new(repository: &str, git_dir: &Path) -> State {
        State {
            repository: repository.to_owned(),
            git_dir: git_dir.to_owned(),
            tokens: HashMap::from([(BOT_TOKEN.to_owned(), BOT_USER.to_owned())]),
            pulls: vec![],
            issues: vec![],
            reviews: vec![],
            comments: vec![],
            statuses: vec![],
            teams: HashMap::new(),
            former_name: None,
            apps: Apps::new(),
            force_pushes: vec![],
            protection: HashMap::new(),
            next_id: 1000,
        }
    }

    /// What a token may do: a person's token (in `tokens`) or one with permissions, while it
    /// has not expired.
    pub(crate) fn grant(&self, token: &str) -> Option<Grant> {
        if let Some(login) = self.tokens.get(token) {
            return Some(Grant {
                login: login.clone(),
                permissions: None,
                expires_at: None,
                limit: 5000,
            });
        }
        self.apps
            .grants
            .get(token)
            .filter(|g| g.expires_at.is_none_or(|end| end > super::apps::now()))
            .cloned()
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

    /// Points `refs/pull/N/head` at each open pull request's branch head, as GitHub keeps it
    /// (a fork's commits reach the base repository only there).
    pub(crate) fn publish_pull_refs(&self) {
        let Ok(repo) = self.repo() else { return };
        for pull in self.pulls.iter().filter(|p| p.state == "open") {
            let Some(head) = self.branch_head(&pull.head) else {
                continue;
            };
            let Ok(id) = Oid::from_str(&head) else {
                continue;
            };
            drop(repo.reference(
                &format!("refs/pull/{}/head", pull.number),
                id,
                true,
                "fake GitHub: pull request head",
            ));
        }
    }

    pub(crate) fn branch_head(&self, branch: &str) -> Option<String> {
        let repo = self.repo().ok()?;
        let reference = repo.find_reference(&format!("refs/heads/{branch}")).ok()?;
        reference.target().map(|o| o.to_string())
    }

    /// The head commit of a pull request: the one it merged or closed with, else its branch's.
    pub(crate) fn head_sha(&self, pull: &Pull) -> Option<String> {
        pull.head_sha
            .clone()
            .or_else(|| self.branch_head(&pull.head))
    }

    pub(crate) fn add_review(&mut self, number: u64, login: &str, state: ReviewState) {
        let id = self.next_id();
        let commit_id = self.pull(number).and_then(|p| self.head_sha(p));
        self.reviews.push(Review {
            id,
            pull: number,
            user: login.to_owned(),
            state,
            commit_id,
        });
    }

    /// The commits of a pull request, oldest first: those of its head not on its base (before
    /// the merge, for a merged one).
    pub(crate) fn pull_commits(&self, pull: &Pull) -> Result<Vec<Value>, String> {
        let repo = self.repo()?;
        let head = self.head_sha(pull).ok_or("the head branch is gone")?;
        let mut walk = repo.revwalk().map_err(|e| e.to_string())?;
        walk.push(Oid::from_str(&head).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let base = match &pull.base_sha {
            Some(sha) => Some(sha.clone()),
            None => self.branch_head(&pull.base),
        };
        if let Some(base) = base {
            walk.hide(Oid::from_str(&base).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        }
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
            .map_err(|e| e.to_string())?;
        let mut commits = Vec::new();
        for oid in walk {
            let oid = oid.map_err(|e| e.to_string())?;
            let commit = repo.find_commit(oid).map_err(|e| e.to_string())?;
            commits.push(self.commit_json(&commit));
        }
        Ok(commits)
    }

    /// A commit as the API gives it; `author` and `committer` are the GitHub users whose
    /// no-reply address (`login@users.noreply.github.com`) the commit carries, else null.
    fn commit_json(&self, commit: &git2::Commit<'_>) -> Value {
        let sha = commit.id().to_string();
        let login = |sig: git2::Signature<'_>| {
            sig.email()
                .ok()
                .and_then(|e| e.strip_suffix("@users.noreply.github.com"))
                .map(user_json)
                .unwrap_or(Value::Null)
        };
        let person = |sig: git2::Signature<'_>| json!({"name": sig.name().unwrap_or_default(), "email": sig.email().unwrap_or_default(), "date": "2026-11-22T00:00:00Z"});
        json!({
            "url": format!("{}/commits/{sha}", self.api_url()),
            "sha": sha,
            "node_id": format!("C_{sha}"),
            "html_url": format!("{}/commit/{sha}", self.url()),
            "comments_url": format!("{}/commits/{sha}/comments", self.api_url()),
            "commit": {
                "url": format!("{}/git/commits/{sha}", self.api_url()),
                "author": person(commit.author()),
                "committer": person(commit.committer()),
                "message": commit.message().unwrap_or_default(),
                "comment_count": 0,
                "tree": {"sha": commit.tree_id().to_string(), "url": format!("{}/git/trees/{}", self.api_url(), commit.tree_id())},
            },
            "author": login(commit.author()),
            "committer": login(commit.committer()),
            "parents": commit.parent_ids().map(|p| json!({"sha": p.to_string(), "url": format!("{}/commits/{p}", self.api_url())})).collect::<Vec<_>>(),
        })
    }

    /// Merges a pull request into its base branch as `method` does.
    pub(crate) fn merge(
        &mut self,
        number: u64,
        login: &str,
        method: MergeMethod,
    ) -> Result<String, String> {
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
        let branch = format!("refs/heads/{}", pull.base);
        let mut rebased = Vec::new();
        let commit = |message: &str, parents: &[&git2::Commit<'_>]| {
            repo.commit(
                Some(&branch),
                &signature,
                &signature,
                message,
                &tree,
                parents,
            )
        };
        let merge = match method {
            MergeMethod::Merge => commit(
                &format!(
                    "Merge pull request #{number} from {}\n\n{}\n",
                    pull.head, pull.title
                ),
                &[&base_commit, &head_commit],
            ),
            MergeMethod::Squash => {
                commit(&format!("{} (#{number})\n", pull.title), &[&base_commit])
            }
            MergeMethod::Rebase => {
                rebase(&repo, &pull.base, &base_commit, &head_commit, &signature).and_then(
                    |commits| {
                        rebased = commits.iter().map(Oid::to_string).collect();
                        commits
                            .last()
                            .copied()
                            .ok_or_else(|| git2::Error::from_str("nothing to rebase"))
                    },
                )
            }
        }
        .map_err(|e| e.to_string())?
        .to_string();
        let pull = self.pull_mut(number).ok_or("no such pull request")?;
        pull.state = "closed".into();
        pull.merged = true;
        pull.merge_commit_sha = Some(merge.clone());
        pull.head_sha = Some(head);
        pull.base_sha = Some(base);
        pull.rebased = rebased;
        Ok(merge)
    }

    pub(crate) fn url(&self) -> String {
        format!("https://github.test/{}", self.repository)
    }

    pub(crate) fn api_url(&self) -> String {
        format!("https://api.github.test/repos/{}", self.repository)
    }

    /// A pull request in GitHub's documented shape.
    /// The next issue or pull request number.
    pub(crate) fn next_number(&self) -> u64 {
        (self.pulls.len() + self.issues.len()) as u64 + 1
    }

    /// An issue as the issues API gives it.
    pub(crate) fn issue_json(&self, issue: &Issue) -> Value {
        let api = format!("{}/issues/{}", self.api_url(), issue.number);
        json!({
            "id": 700_000 + issue.number,
            "node_id": format!("I_{}", issue.number),
            "url": api,
            "repository_url": self.api_url(),
            "labels_url": format!("{api}/labels{{/name}}"),
            "comments_url": format!("{api}/comments"),
            "events_url": format!("{api}/events"),
            "html_url": format!("{}/issues/{}", self.url(), issue.number),
            "number": issue.number,
            "state": issue.state,
            "state_reason": null,
            "title": issue.title,
            "body": issue.body,
            "user": user_json(&issue.user),
            "labels": issue.labels.iter().map(|l| label_json(l)).collect::<Vec<_>>(),
            "assignee": null,
            "assignees": [],
            "author_association": "MEMBER",
            "milestone": null,
            "locked": false,
            "active_lock_reason": null,
            "comments": 0,
            "closed_at": null,
            "created_at": "2026-11-21T00:00:00Z",
            "updated_at": "2026-11-22T00:00:00Z",
        })
    }

    pub(crate) fn pull_json(&self, pull: &Pull) -> Value {
        let head_sha = self.head_sha(pull);
        let base_sha = pull
            .base_sha
            .clone()
            .or_else(|| self.branch_head(&pull.base));
        let owner = self.repository.split('/').next().unwrap_or_default();
        let api = format!("{}/pulls/{}", self.api_url(), pull.number);
        let html = format!("{}/pull/{}", self.url(), pull.number);
        let links = json!({
            "url": api,
            "id": 500_000 + pull.number,
            "node_id": format!("PR_{}", pull.number),
            "html_url": html,
            "diff_url": format!("{html}.diff"),
            "patch_url": format!("{html}.patch"),
            "issue_url": format!("{}/issues/{}", self.api_url(), pull.number),
            "commits_url": format!("{api}/commits"),
            "review_comments_url": format!("{api}/comments"),
            "review_comment_url": format!("{}/pulls/comments{{/number}}", self.api_url()),
            "comments_url": format!("{}/issues/{}/comments", self.api_url(), pull.number),
            "statuses_url": format!("{}/statuses/{}", self.api_url(), head_sha.clone().unwrap_or_default()),
        });
        let mut pull = json!({
            "number": pull.number,
            "state": pull.state,
            "locked": false,
            "title": pull.title,
            "user": user_json(&pull.user),
            "body": pull.body,
            "labels": pull.labels.iter().map(|l| label_json(l)).collect::<Vec<_>>(),
            "milestone": null,
            "active_lock_reason": null,
            "created_at": "2026-11-21T00:00:00Z",
            "updated_at": "2026-11-22T00:00:00Z",
            "closed_at": (pull.state == "closed").then_some("2026-11-22T00:00:00Z"),
            "merged_at": pull.merged.then_some("2026-11-22T00:00:00Z"),
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": null,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": {"label": format!("{owner}:{}", pull.head), "ref": pull.head, "sha": head_sha, "user": user_json(owner), "repo": null},
            "base": {"label": format!("{owner}:{}", pull.base), "ref": pull.base, "sha": base_sha, "user": user_json(owner), "repo": null},
            "_links": {},
            "author_association": "MEMBER",
            "auto_merge": null,
            "draft": false,
            "merged": pull.merged,
            "mergeable": null,
            "rebaseable": null,
            "mergeable_state": "unknown",
            "merged_by": pull.merged.then(|| user_json("octocat")),
            "comments": 0,
            "review_comments": 0,
            "maintainer_can_modify": false,
            "commits": 1,
            "additions": 1,
            "deletions": 1,
            "changed_files": 1,
        });
        if let (Some(pull), Value::Object(more)) = (pull.as_object_mut(), links) {
            pull.extend(more);
        }
        pull
    }

    /// A review in GitHub's documented shape.
    /// A pull request's timeline as GitHub gives it: its commits (`committed`, without who
    /// pushed them), force pushes to its head (`head_ref_force_pushed`, with the actor) and
    /// reviews (`reviewed`), oldest first.
    pub(crate) fn timeline(&self, pull: &Pull) -> Result<Vec<Value>, String> {
        let mut events: Vec<Value> = self
            .pull_commits(pull)?
            .into_iter()
            .map(|c| {
                json!({"event": "committed", "sha": c["sha"], "node_id": c["node_id"],
                    "url": c["url"], "html_url": c["html_url"],
                    "author": c["commit"]["author"], "committer": c["commit"]["committer"],
                    "message": c["commit"]["message"]})
            })
            .collect();
        for (number, login, sha) in &self.force_pushes {
            if *number == pull.number {
                events.push(
                    json!({"id": 1, "node_id": "HRFPE_1", "event": "head_ref_force_pushed",
                    "actor": user_json(login), "commit_id": sha,
                    "commit_url": format!("{}/commits/{sha}", self.api_url()),
                    "created_at": "2026-11-22T00:00:00Z"}),
                );
            }
        }
        for review in self.reviews.iter().filter(|r| r.pull == pull.number) {
            let mut event = self.review_json(review);
            event["event"] = json!("reviewed");
            events.push(event);
        }
        Ok(events)
    }

    pub(crate) fn review_json(&self, review: &Review) -> Value {
        json!({
            "id": review.id,
            "node_id": format!("PRR_{}", review.id),
            "user": user_json(&review.user),
            "body": "",
            "state": review.state.as_str(),
            "html_url": format!("{}/pull/{}#pullrequestreview-{}", self.url(), review.pull, review.id),
            "pull_request_url": format!("{}/pulls/{}", self.api_url(), review.pull),
            "_links": {
                "html": {"href": format!("{}/pull/{}#pullrequestreview-{}", self.url(), review.pull, review.id)},
                "pull_request": {"href": format!("{}/pulls/{}", self.api_url(), review.pull)},
            },
            "submitted_at": "2026-11-22T00:00:00Z",
            "commit_id": review.commit_id,
            "author_association": "MEMBER",
        })
    }

    /// An issue comment in GitHub's documented shape.
    pub(crate) fn comment_json(&self, comment: &Comment) -> Value {
        json!({
            "id": comment.id,
            "node_id": format!("IC_{}", comment.id),
            "url": format!("{}/issues/comments/{}", self.api_url(), comment.id),
            "html_url": format!("{}/pull/{}#issuecomment-{}", self.url(), comment.issue, comment.id),
            "issue_url": format!("{}/issues/{}", self.api_url(), comment.issue),
            "body": comment.body,
            "user": user_json(&comment.user),
            "created_at": "2026-11-22T00:00:00Z",
            "updated_at": "2026-11-22T00:00:00Z",
            "author_association": "MEMBER",
        })
    }

    /// A commit status in GitHub's documented shape.
    pub(crate) fn status_json(&self, status: &Status, id: u64) -> Value {
        json!({
            "url": format!("{}/statuses/{}", self.api_url(), status.sha),
            "avatar_url": null,
            "id": id,
            "node_id": format!("SC_{id}"),
            "state": status.state,
            "description": status.description,
            "target_url": null,
            "context": status.context,
            "created_at": "2026-11-22T00:00:00Z",
            "updated_at": "2026-11-22T00:00:00Z",
            "creator": user_json(super::BOT_USER),
        })
    }
}

/// A user in GitHub's documented `simple-user` shape.
pub(crate) fn user_json(login: &str) -> Value {
    let id = login
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        % 1_000_000_000;
    let api = format!("https://api.github.test/users/{login}");
    json!({
        "login": login,
        "id": id,
        "node_id": format!("U_{id}"),
        "avatar_url": format!("https://avatars.github.test/u/{id}"),
        "gravatar_id": "",
        "url": api,
        "html_url": format!("https://github.test/{login}"),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": "User",
        "site_admin": false,
    })
}

/// A label in GitHub's documented shape.
pub(crate) fn label_json(name: &str) -> Value {
    let id = name
        .bytes()
        .fold(11u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        % 1_000_000_000;
    json!({
        "id": id,
        "node_id": format!("LA_{id}"),
        "url": format!("https://api.github.test/labels/{name}"),
        "name": name,
        "description": null,
        "color": "ededed",
        "default": false,
    })
}

/// Writes `head`'s commits since the merge base again on top of `base`, one by one, and moves
/// the branch `branch` to the last; returns them, oldest first.
fn rebase(
    repo: &Repository,
    branch: &str,
    base: &git2::Commit<'_>,
    head: &git2::Commit<'_>,
    signature: &Signature<'_>,
) -> Result<Vec<Oid>, git2::Error> {
    let mut walk = repo.revwalk()?;
    walk.push(head.id())?;
    walk.hide(repo.merge_base(base.id(), head.id())?)?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
    let mut tip = base.clone();
    let mut written = Vec::new();
    for oid in walk {
        let commit = repo.find_commit(oid?)?;
        let mut index = repo.cherrypick_commit(&commit, &tip, 0, None)?;
        if index.has_conflicts() {
            return Err(git2::Error::from_str("rebase conflict"));
        }
        let tree = repo.find_tree(index.write_tree_to(repo)?)?;
        let written_id = repo.commit(
            None,
            &commit.author(),
            signature,
            commit.message().unwrap_or_default(),
            &tree,
            &[&tip],
        )?;
        tip = repo.find_commit(written_id)?;
        written.push(written_id);
    }
    repo.reference(
        &format!("refs/heads/{branch}"),
        tip.id(),
        true,
        "rebase merge",
    )?;
    Ok(written)
}
