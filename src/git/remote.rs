//! The config repository's remote: clone, fetch and push over `file://` or HTTPS with a token.
//! A push whose ref the server refuses is an error naming the ref and the server's reason (git2's
//! `push` itself returns Ok then). I/O: the network and the repository.

use std::path::Path;

use git2::{Cred, FetchOptions, PushOptions, RemoteCallbacks, Repository, build::RepoBuilder};

use super::{ConfigRepo, Error, Result, git};

/// How to authenticate to the remote.
#[derive(Clone, Default)]
pub struct Auth {
    /// A token for HTTPS remotes (`GITHUB_TOKEN`), sent as the password of `x-access-token`.
    pub token: Option<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Auth {
    pub(super) fn callbacks(&self) -> RemoteCallbacks<'_> {
        let mut callbacks = RemoteCallbacks::new();
        if let Some(token) = &self.token {
            callbacks.credentials(move |_, _, _| Cred::userpass_plaintext("x-access-token", token));
        }
        callbacks
    }
}

/// Clones `url` into `dir`, checking out its default branch.
pub fn clone(url: &str, dir: &Path, auth: &Auth) -> Result<ConfigRepo> {
    let mut fetch = FetchOptions::new();
    fetch.remote_callbacks(auth.callbacks());
    let repo: Repository = git(
        format!("clone {}", redact(url)),
        RepoBuilder::new().fetch_options(fetch).clone(url, dir),
    )?;
    drop(repo);
    ConfigRepo::open(dir)
}

/// `url` without a password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl ConfigRepo {
    /// Fetches `refspecs` from `remote` (a remote's name or a URL).
    pub fn fetch(&self, remote: &str, refspecs: &[&str], auth: &Auth) -> Result<()> {
        let mut remote = self.remote(remote)?;
        let mut options = FetchOptions::new();
        options.remote_callbacks(auth.callbacks());
        git(
            format!("fetch from {}", redact(remote.url().unwrap_or_default())),
            remote.fetch(refspecs, Some(&mut options), None),
        )
    }

    /// Fetches `branch` from `remote` into `refs/remotes/<remote>/<branch>`; returns its commit.
    pub fn fetch_branch(&self, remote: &str, branch: &str, auth: &Auth) -> Result<git2::Oid> {
        let tracking = format!("refs/remotes/{remote}/{branch}");
        self.fetch(remote, &[&format!("+refs/heads/{branch}:{tracking}")], auth)?;
        self.resolve(&tracking)
    }

    /// Fetches `branch` as [`ConfigRepo::fetch_branch`] does when `remote` has it; `None` when
    /// it has not.
    pub fn fetch_branch_if_any(
        &self,
        remote: &str,
        branch: &str,
        auth: &Auth,
    ) -> Result<Option<git2::Oid>> {
        let mut handle = self.remote(remote)?;
        let what = format!(
            "list the branches of {}",
            redact(handle.url().unwrap_or_default())
        );
        let connection = git(
            what.clone(),
            handle.connect_auth(git2::Direction::Fetch, Some(auth.callbacks()), None),
        )?;
        let wanted = format!("refs/heads/{branch}");
        let present = git(what, connection.list())?
            .iter()
            .any(|head| head.name() == wanted);
        drop(connection);
        if !present {
            return Ok(None);
        }
        self.fetch_branch(remote, branch, auth).map(Some)
    }

    /// Fetches pull request `number`'s head as GitHub publishes it (`refs/pull/N/head`, which
    /// holds a fork's commits too) and returns it when it is `expected` (the event's head
    /// commit). A different commit is an error: the pull request moved on, or the ref is not
    /// what the event named; a branch of the same name is never taken instead.
    pub fn fetch_pull(
        &self,
        remote: &str,
        number: u64,
        expected: &str,
        auth: &Auth,
    ) -> Result<git2::Oid> {
        let tracking = format!("refs/remotes/{remote}/pull/{number}/head");
        self.fetch(
            remote,
            &[&format!("+refs/pull/{number}/head:{tracking}")],
            auth,
        )?;
        let fetched = self.resolve(&tracking)?;
        if fetched.to_string() != expected {
            return Err(Error::PullMoved {
                number,
                found: fetched.to_string(),
                expected: expected.to_owned(),
            });
        }
        Ok(fetched)
    }

    /// Checks `commit` out (detached HEAD), the working tree forced to match: for clones
    /// remediator keeps for itself, never for a person's checkout.
    pub fn checkout_detached(&self, commit: git2::Oid) -> Result<()> {
        git("set HEAD", self.repo.set_head_detached(commit))?;
        let mut options = git2::build::CheckoutBuilder::new();
        options.force();
        git("check out", self.repo.checkout_head(Some(&mut options)))
    }

    /// The tracked files whose working-tree or index content differs from HEAD, relative to
    /// the repository; untracked and ignored files are left out.
    pub fn uncommitted_files(&self) -> Result<Vec<String>> {
        let mut options = git2::StatusOptions::new();
        options.include_untracked(false).include_ignored(false);
        let statuses = git("read status", self.repo.statuses(Some(&mut options)))?;
        Ok(statuses
            .iter()
            .filter(|s| s.status() != git2::Status::CURRENT)
            .map(|s| String::from_utf8_lossy(s.path_bytes()).into_owned())
            .collect())
    }

    /// Pushes `refspecs` (`+refs/heads/a:refs/heads/a`) to `remote`; every ref must be accepted.
    pub fn push(&self, remote: &str, refspecs: &[String], auth: &Auth) -> Result<()> {
        let mut remote = self.remote(remote)?;
        let url = redact(remote.url().unwrap_or_default());
        let rejected = std::cell::RefCell::new(Vec::new());
        let mut callbacks = auth.callbacks();
        callbacks.push_update_reference(|reference, status| {
            if let Some(message) = status {
                rejected
                    .borrow_mut()
                    .push((reference.to_owned(), message.to_owned()));
            }
            Ok(())
        });
        let mut options = PushOptions::new();
        options.remote_callbacks(callbacks);
        match remote.push(refspecs, Some(&mut options)) {
            Ok(()) => {}
            // The remote's branch moved on: refused as a server would refuse it.
            Err(e) if e.code() == git2::ErrorCode::NotFastForward => {
                return Err(Error::Rejected {
                    reference: refspecs.join(", "),
                    remote: url,
                    message: "not a fast-forward: the branch moved on".into(),
                });
            }
            Err(source) => {
                return Err(Error::Git {
                    what: format!("push to {url}"),
                    source,
                });
            }
        }
        drop(options);
        if let Some((reference, message)) = rejected.into_inner().into_iter().next() {
            return Err(Error::Rejected {
                reference,
                remote: url,
                message,
            });
        }
        Ok(())
    }

    /// The URL of the remote `name` (or `name` itself when it is a URL), as configured;
    /// `None` when no such remote is configured. A remote that cannot be read, or whose URL is
    /// not UTF-8, is an error: which appliers read this repository depends on it.
    pub fn remote_url(&self, name: &str) -> Result<Option<String>> {
        match self.repo.find_remote(name) {
            Ok(remote) => git(format!("the URL of remote {name}"), remote.url())
                .map(|url| Some(url.to_owned())),
            Err(_) if name.contains("://") => Ok(Some(name.to_owned())),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(source) => Err(Error::Git {
                what: format!("remote {name}"),
                source,
            }),
        }
    }

    /// The branch `revision` names (`main`, `origin/main`, `refs/remotes/origin/main`), when
    /// it names one; `None` for a commit, a tag or an expression.
    pub fn branch_named(&self, revision: &str) -> Result<Option<String>> {
        let Ok((_, Some(reference))) = self.repo.revparse_ext(revision) else {
            return Ok(None);
        };
        let Ok(name) = reference.name() else {
            return Ok(None);
        };
        Ok(crate::manifests::upstream::branch_of(
            name,
            &self.remote_names()?,
        ))
    }

    /// The branch `remote`'s HEAD points at (`refs/remotes/origin/HEAD`), else the branch
    /// checked out here; `None` when neither names one.
    pub fn default_branch(&self, remote: &str) -> Result<Option<String>> {
        let remotes = self.remote_names()?;
        for name in [format!("refs/remotes/{remote}/HEAD"), "HEAD".to_owned()] {
            if let Ok(reference) = self.repo.find_reference(&name)
                && let Ok(Some(target)) = reference.symbolic_target()
                && let Some(branch) = crate::manifests::upstream::branch_of(target, &remotes)
            {
                return Ok(Some(branch));
            }
        }
        Ok(None)
    }

    /// The names of the configured remotes (a name that is not UTF-8 left out: it cannot be
    /// written in a revision either).
    pub fn remote_names(&self) -> Result<Vec<String>> {
        let names = git("list remotes", self.repo.remotes())?;
        Ok(names
            .iter()
            .flatten()
            .flatten()
            .map(str::to_owned)
            .collect())
    }

    pub(super) fn remote(&self, name_or_url: &str) -> Result<git2::Remote<'_>> {
        match self.repo.find_remote(name_or_url) {
            Ok(remote) => Ok(remote),
            Err(_) if name_or_url.contains("://") || Path::new(name_or_url).is_absolute() => {
                git("remote", self.repo.remote_anonymous(name_or_url))
            }
            Err(source) => Err(Error::Git {
                what: format!("remote {name_or_url}"),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(repo: &Repository, file: &str, text: &str, parents: &[&git2::Commit]) -> git2::Oid {
        let workdir = repo.workdir().unwrap();
        std::fs::write(workdir.join(file), text).unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new(file)).unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        repo.commit(None, &sig, &sig, "m", &tree, parents).unwrap()
    }

    #[test]
    fn a_pull_request_s_head_is_fetched_from_its_pull_ref_and_must_be_the_event_s() {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("origin.git");
        Repository::init_bare(&bare).unwrap();
        let work = Repository::init(dir.path().join("work")).unwrap();
        let base = commit(&work, "a.yaml", "x: 1\n", &[]);
        let parent = work.find_commit(base).unwrap();
        let fork = commit(&work, "a.yaml", "x: 2\n", &[&parent]);
        work.reference("refs/heads/main", base, true, "t").unwrap();
        work.reference("refs/pull/7/head", fork, true, "t").unwrap();
        work.remote("origin", &format!("file://{}", bare.display()))
            .unwrap();
        let repo = ConfigRepo::open(&dir.path().join("work")).unwrap();
        let auth = Auth::default();
        let refspecs = [
            "refs/heads/main:refs/heads/main".to_owned(),
            "refs/pull/7/head:refs/pull/7/head".to_owned(),
            // A branch of the same name as the fork's, holding something else.
            "refs/heads/main:refs/heads/fix".to_owned(),
        ];
        repo.push("origin", &refspecs, &auth).unwrap();
        let fetched = repo
            .fetch_pull("origin", 7, &fork.to_string(), &auth)
            .unwrap();
        assert_eq!(fetched, fork);
        let error = repo
            .fetch_pull("origin", 7, &base.to_string(), &auth)
            .unwrap_err();
        assert!(
            error.to_string().contains("not the event's head"),
            "{error}"
        );
        assert!(
            repo.fetch_pull("origin", 8, &fork.to_string(), &auth)
                .is_err()
        );
    }

    #[test]
    fn a_push_the_remote_refuses_is_an_error_and_fetch_brings_the_branch_back() {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("origin.git");
        Repository::init_bare(&bare).unwrap();
        let work = Repository::init(dir.path().join("work")).unwrap();
        let first = commit(&work, "a.yaml", "x: 1\n", &[]);
        work.reference("refs/heads/main", first, true, "t").unwrap();
        work.remote("origin", &format!("file://{}", bare.display()))
            .unwrap();
        let repo = ConfigRepo::open(&dir.path().join("work")).unwrap();
        let auth = Auth::default();
        repo.push("origin", &["refs/heads/main:refs/heads/main".into()], &auth)
            .unwrap();
        let parent = work.find_commit(first).unwrap();
        let second = commit(&work, "a.yaml", "x: 2\n", &[&parent]);
        work.reference("refs/heads/main", second, true, "t")
            .unwrap();
        repo.push("origin", &["refs/heads/main:refs/heads/main".into()], &auth)
            .unwrap();
        // A commit that does not descend from the remote's main is refused without force.
        let diverged = commit(&work, "a.yaml", "x: 3\n", &[&parent]);
        work.reference("refs/heads/other", diverged, true, "t")
            .unwrap();
        let error = repo
            .push(
                "origin",
                &["refs/heads/other:refs/heads/main".into()],
                &auth,
            )
            .unwrap_err();
        assert!(matches!(error, Error::Rejected { .. }), "{error}");
        assert!(
            error.to_string().ends_with("refused refs/heads/other:refs/heads/main: not a fast-forward: the branch moved on; fetch, then run again"),
            "{error}"
        );
        assert_eq!(repo.fetch_branch("origin", "main", &auth).unwrap(), second);
    }

    #[test]
    fn passwords_are_left_out_of_urls() {
        assert_eq!(
            redact("https://x:secret@github.com/o/r"),
            "https://***@github.com/o/r"
        );
        assert_eq!(redact("file:///tmp/r.git"), "file:///tmp/r.git");
    }
}
