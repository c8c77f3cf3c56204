//! A fake GitHub: a stateful HTTP server on 127.0.0.1 that answers the REST calls remediator
//! makes (pull requests, labels, issue comments, reviews, commit statuses, merges) for one
//! repository. Branches are read from a real bare Git repository that tests push to over
//! `file://`; a merge writes a real merge commit into it. Tests play the humans (review, merge,
//! edit labels), inject faults (5xx, primary and secondary rate limits) and read the state back.
//!
//! I/O: a listening socket ([`Background`]), and the bare repository.

mod apps;
mod checks;
mod routes;
mod state;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::background::Background;
use crate::faults::{Faults, LoggedRequest};

pub use apps::CheckRun;
pub use state::{Comment, Issue, MergeMethod, Pull, Review, ReviewState, Status};

/// The token of the bot user, `remediator-bot`, that opens pull requests.
pub const BOT_TOKEN: &str = "bot-token";

/// The bot user's login.
pub const BOT_USER: &str = "remediator-bot";

/// State shared with the handlers.
pub(crate) struct Hub {
    pub(crate) state: Mutex<state::State>,
    pub(crate) faults: Faults,
}

/// A running fake GitHub serving one repository. Stops when dropped.
pub struct FakeGitHub {
    hub: Arc<Hub>,
    server: Background,
}

impl FakeGitHub {
    /// Serves `owner/name`, whose branches live in the bare repository `git_dir`.
    pub fn start(repository: &str, git_dir: &Path) -> FakeGitHub {
        let hub = Arc::new(Hub {
            state: Mutex::new(state::State::new(repository, git_dir)),
            faults: Faults::default(),
        });
        FakeGitHub {
            server: Background::start("github", routes::router(hub.clone())),
            hub,
        }
    }

    /// `http://127.0.0.1:PORT`, the API base URL.
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// The bare repository.
    pub fn git_dir(&self) -> PathBuf {
        self.state().git_dir.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, state::State> {
        self.hub.state.lock().expect("fake GitHub state")
    }

    /// Fault rules, matched on method and path like the test API server's.
    pub fn faults(&self) -> &Faults {
        &self.hub.faults
    }

    /// Every request seen, in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.hub.faults.requests()
    }

    /// Lets `token` act as `login`.
    pub fn add_user(&self, login: &str, token: &str) {
        self.state()
            .tokens
            .insert(token.to_owned(), login.to_owned());
    }

    /// Every pull request, open or not, by number.
    pub fn pulls(&self) -> Vec<Pull> {
        self.state().pulls.clone()
    }

    /// One pull request.
    ///
    /// # Panics
    /// When there is no such pull request.
    pub fn pull(&self, number: u64) -> Pull {
        self.state()
            .pull(number)
            .cloned()
            .unwrap_or_else(|| panic!("no pull request #{number}"))
    }

    /// The comments of a pull request, oldest first.
    pub fn comments(&self, number: u64) -> Vec<Comment> {
        self.state()
            .comments
            .iter()
            .filter(|c| c.issue == number)
            .cloned()
            .collect()
    }

    /// The statuses set on a commit, oldest first.
    pub fn statuses(&self, sha: &str) -> Vec<Status> {
        self.state()
            .statuses
            .iter()
            .filter(|s| s.sha == sha)
            .cloned()
            .collect()
    }

    /// `login` opens a pull request of `head` into `base`; returns its number.
    ///
    /// # Panics
    /// When either branch is missing from the bare repository.
    pub fn open_pull(&self, head: &str, base: &str, title: &str, login: &str) -> u64 {
        let mut state = self.state();
        assert!(state.branch_head(head).is_some(), "no branch {head}");
        assert!(state.branch_head(base).is_some(), "no branch {base}");
        let number = state.pulls.len() as u64 + 1;
        state.pulls.push(Pull {
            number,
            title: title.to_owned(),
            body: String::new(),
            head: head.to_owned(),
            base: base.to_owned(),
            state: "open".into(),
            merged: false,
            merge_commit_sha: None,
            head_sha: None,
            base_sha: None,
            rebased: vec![],
            user: login.to_owned(),
            labels: vec![],
        });
        state.publish_pull_refs();
        number
    }

    /// Points every open pull request's `refs/pull/N/head` at its branch head, as GitHub does
    /// after a push to the branch.
    pub fn publish_pull_refs(&self) {
        self.state().publish_pull_refs();
    }

    /// `login` force-pushes `sha` to the head branch of pull request `number`: the branch moves
    /// there, and the timeline says who pushed it.
    ///
    /// # Panics
    /// When the pull request is not there.
    pub fn force_push(&self, number: u64, login: &str, sha: &str) {
        let mut state = self.state();
        let head = state
            .pull(number)
            .expect("no such pull request")
            .head
            .clone();
        let repo = git2::Repository::open_bare(&state.git_dir).expect("the bare repository");
        let oid = git2::Oid::from_str(sha).expect("a commit");
        repo.reference(&format!("refs/heads/{head}"), oid, true, "force push")
            .expect("the branch moves");
        state
            .force_pushes
            .push((number, login.to_owned(), sha.to_owned()));
        state.publish_pull_refs();
    }

    /// Protects `branch`, requiring approval of the most recent reviewable push or not.
    pub fn protect(&self, branch: &str, require_last_push_approval: bool) {
        self.state()
            .protection
            .insert(branch.to_owned(), require_last_push_approval);
    }

    /// `login` submits a review.
    pub fn review(&self, number: u64, login: &str, state: ReviewState) {
        self.state().add_review(number, login, state);
    }

    /// Replaces the labels of a pull request, as a person editing them by hand.
    pub fn set_labels(&self, number: u64, labels: &[&str]) {
        if let Some(pull) = self.state().pull_mut(number) {
            pull.labels = labels.iter().map(|l| (*l).to_owned()).collect();
        }
    }

    /// Merges a pull request with a merge commit on its base branch, as the merge button does;
    /// returns the merge commit.
    ///
    /// # Panics
    /// When the pull request cannot be merged.
    pub fn merge(&self, number: u64) -> String {
        self.merge_with(number, MergeMethod::Merge)
    }

    /// Merges a pull request as `method` does; returns the commit the merge wrote last (what
    /// GitHub calls its `merge_commit_sha`).
    ///
    /// # Panics
    /// When the pull request cannot be merged.
    pub fn merge_with(&self, number: u64, method: MergeMethod) -> String {
        self.state()
            .merge(number, "octocat", method)
            .unwrap_or_else(|e| panic!("merge #{number}: {e}"))
    }

    /// Makes `org/slug` a team whose members are `logins`.
    pub fn add_team(&self, team: &str, logins: &[&str]) {
        self.state().teams.insert(
            team.to_owned(),
            logins.iter().map(|l| (*l).to_owned()).collect(),
        );
    }

    /// Renames the repository to `new_name` (`owner/name`): the old name then answers with
    /// redirects, as GitHub does.
    pub fn rename(&self, new_name: &str) {
        let mut state = self.state();
        let old = std::mem::replace(&mut state.repository, new_name.to_owned());
        state.former_name = Some(old);
    }

    /// The commit a branch of the bare repository points at.
    pub fn branch_head(&self, branch: &str) -> Option<String> {
        self.state().branch_head(branch)
    }

    /// The issues that are not pull requests.
    pub fn issues(&self) -> Vec<Issue> {
        self.state().issues.clone()
    }

    /// The pull requests as JSON, as the API lists them.
    pub fn pulls_json(&self) -> Vec<Value> {
        let state = self.state();
        state.pulls.iter().map(|p| state.pull_json(p)).collect()
    }

    /// Registers a GitHub App with its public key (`RSAPublicKey`, DER) and installs it on the
    /// repository with `permissions` (`("checks", "write")`); returns the installation id.
    pub fn add_app(
        &self,
        id: u64,
        slug: &str,
        public_key: &[u8],
        permissions: &[(&str, &str)],
    ) -> u64 {
        let mut state = self.state();
        let installation = state.next_id();
        state.apps.apps.insert(
            id,
            apps::App {
                slug: slug.to_owned(),
                public_key: public_key.to_vec(),
                installation: Some(installation),
                permissions: owned(permissions),
            },
        );
        installation
    }

    /// Lets `token` act as `login` with `permissions`, as an Actions token does.
    pub fn add_token_with_permissions(
        &self,
        token: &str,
        login: &str,
        permissions: &[(&str, &str)],
    ) {
        self.state().apps.grants.insert(
            token.to_owned(),
            apps::Grant {
                login: login.to_owned(),
                permissions: Some(owned(permissions)),
                expires_at: None,
                limit: 5000,
            },
        );
    }

    /// How long installation tokens handed out from now on live.
    pub fn set_token_lifetime(&self, lifetime: std::time::Duration) {
        self.state().apps.token_lifetime = lifetime.as_secs() as i64;
    }

    /// Ends every installation token handed out, as time passing would.
    pub fn expire_installation_tokens(&self) {
        let now = apps::now();
        for grant in self.state().apps.grants.values_mut() {
            if grant.expires_at.is_some() {
                grant.expires_at = Some(now - 1);
            }
        }
    }

    /// Installation tokens handed out.
    pub fn token_exchanges(&self) -> usize {
        self.state().apps.exchanges
    }

    /// Every check run, oldest first.
    pub fn check_runs(&self) -> Vec<CheckRun> {
        self.state().apps.check_runs.clone()
    }

    /// Adds a completed check run, as another CI would.
    pub fn add_check_run(&self, sha: &str, name: &str, conclusion: &str) {
        let mut state = self.state();
        let id = state.next_id();
        state.apps.check_runs.push(CheckRun {
            id,
            name: name.to_owned(),
            head_sha: sha.to_owned(),
            status: "completed".into(),
            conclusion: Some(conclusion.to_owned()),
            title: String::new(),
            summary: String::new(),
            annotations: vec![],
            app: "ci[bot]".into(),
            writes: 1,
        });
    }

    /// Sets a commit status, as another CI would.
    pub fn add_status(&self, sha: &str, context: &str, state: &str) {
        self.state().statuses.push(Status {
            sha: sha.to_owned(),
            state: state.to_owned(),
            context: context.to_owned(),
            description: String::new(),
        });
    }

    /// Requests counted against `login`'s rate limit in this window (a `304` is not).
    pub fn rate_used(&self, login: &str) -> u64 {
        self.state().apps.used.get(login).copied().unwrap_or(0)
    }
}

/// `("checks", "write")` pairs as an App's permissions.
fn owned(permissions: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    permissions
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
