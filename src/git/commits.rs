//! Reading and writing single commits: resolve a name, a commit's parents, message and trailers,
//! its config tree written out to a directory, and revert commits. I/O: the repository and the
//! directory written to.

use std::path::{Path, PathBuf};

use git2::{Oid, Signature};

use super::{ConfigRepo, Error, Result, git};

/// Who commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
}

impl Default for Author {
    fn default() -> Self {
        Author {
            name: "remediator".to_owned(),
            email: "remediator@users.noreply.github.com".to_owned(),
        }
    }
}

impl Author {
    pub(super) fn signature(&self) -> Result<Signature<'static>> {
        git("signature", Signature::now(&self.name, &self.email))
    }
}

/// The trailers (`Key: value` lines of the last paragraph) of a commit message, in order.
pub fn trailers(message: &str) -> Vec<(String, String)> {
    match git2::message_trailers_strs(message) {
        Ok(found) => found
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        Err(_) => vec![],
    }
}

/// The value of the first trailer named `key`.
pub fn trailer<'t>(trailers: &'t [(String, String)], key: &str) -> Option<&'t str> {
    trailers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

impl ConfigRepo {
    /// The commit a name (`HEAD`, `origin/main`, a sha) stands for.
    pub fn resolve(&self, name: &str) -> Result<Oid> {
        let object = git(format!("resolve {name}"), self.repo.revparse_single(name))?;
        Ok(git(format!("{name} is not a commit"), object.peel_to_commit())?.id())
    }

    /// The best common ancestor of two commits, as a pull request's diff starts from it.
    pub fn merge_base(&self, a: Oid, b: Oid) -> Result<Oid> {
        git(
            format!("merge base of {a} and {b}"),
            self.repo.merge_base(a, b),
        )
    }

    /// A commit's parents, first parent first.
    pub fn parents(&self, commit: Oid) -> Result<Vec<Oid>> {
        let commit = git("find commit", self.repo.find_commit(commit))?;
        Ok(commit.parent_ids().collect())
    }

    /// The commit after `commit`, up to `tip`, whose `Reverts:` trailer names it: a revert
    /// already written, by a run that did not live to record it.
    pub fn revert_of(&self, tip: Oid, commit: Oid) -> Result<Option<Oid>> {
        let mut walk = git("walk", self.repo.revwalk())?;
        git("walk", walk.push(tip))?;
        git("walk", walk.hide(commit))?;
        let sha = commit.to_string();
        for id in walk {
            let id = git("walk", id)?;
            let message = self.message(id)?;
            if trailer(&trailers(&message), "Reverts") == Some(sha.as_str()) {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// A commit's full message.
    pub fn message(&self, commit: Oid) -> Result<String> {
        let commit = git("find commit", self.repo.find_commit(commit))?;
        Ok(String::from_utf8_lossy(commit.message_bytes()).into_owned())
    }

    /// Writes the config repository's files as of `commit` into `dir`; returns `dir`.
    pub fn write_tree(&self, commit: Oid, dir: &Path) -> Result<PathBuf> {
        let tree = git(
            "read tree",
            git("find commit", self.repo.find_commit(commit))?.tree(),
        )?;
        let prefix = self.prefix.to_string_lossy().replace('\\', "/");
        let mut failed = None;
        let walked = tree.walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
            if entry.kind() != Some(git2::ObjectType::Blob) {
                return git2::TreeWalkResult::Ok;
            }
            let full = format!("{parent}{}", entry.name().unwrap_or_default());
            let Some(relative) = strip(&full, &prefix) else {
                return git2::TreeWalkResult::Ok;
            };
            let target = dir.join(relative);
            let written = self
                .repo
                .find_blob(entry.id())
                .map_err(|e| e.to_string())
                .and_then(|blob| {
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                    }
                    std::fs::write(&target, blob.content()).map_err(|e| e.to_string())
                });
            match written {
                Ok(()) => git2::TreeWalkResult::Ok,
                Err(message) => {
                    failed = Some(format!("{}: {message}", target.display()));
                    git2::TreeWalkResult::Abort
                }
            }
        });
        if let Some(message) = failed {
            return Err(Error::Write { message });
        }
        git("walk tree", walked)?;
        Ok(dir.to_owned())
    }

    /// A commit on top of `onto` that undoes `commit` (against its first parent when it is a
    /// merge). `Err(Error::Conflict)` when later commits changed the same lines. Points
    /// `refs/heads/<branch>` at it and returns it.
    pub fn revert(
        &self,
        commit: Oid,
        onto: Oid,
        branch: &str,
        author: &Author,
        message: &str,
    ) -> Result<Oid> {
        let reverted = git("find commit", self.repo.find_commit(commit))?;
        let ours = git("find commit", self.repo.find_commit(onto))?;
        let mainline = if reverted.parent_count() > 1 { 1 } else { 0 };
        let mut index = git(
            format!("revert {commit}"),
            self.repo.revert_commit(&reverted, &ours, mainline, None),
        )?;
        if index.has_conflicts() {
            return Err(Error::Conflict {
                commit: commit.to_string(),
            });
        }
        let tree = git("write tree", index.write_tree_to(&self.repo))?;
        let tree = git("find tree", self.repo.find_tree(tree))?;
        let signature = author.signature()?;
        let id = git(
            "commit",
            self.repo
                .commit(None, &signature, &signature, message, &tree, &[&ours]),
        )?;
        git(
            format!("update refs/heads/{branch}"),
            self.repo.reference(
                &format!("refs/heads/{branch}"),
                id,
                true,
                "remediator: revert",
            ),
        )?;
        Ok(id)
    }
}

fn strip<'p>(full: &'p str, prefix: &str) -> Option<&'p str> {
    if prefix.is_empty() {
        return Some(full);
    }
    full.strip_prefix(prefix)?.strip_prefix('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_are_read_from_the_last_paragraph() {
        let message = "Revert x\n\nbody text\n\nReverts: abc123\nRemediation-Id: 42\n";
        let found = trailers(message);
        assert_eq!(trailer(&found, "reverts"), Some("abc123"));
        assert_eq!(trailer(&found, "Remediation-Id"), Some("42"));
        assert_eq!(trailer(&found, "Finding"), None);
        assert!(trailers("no trailers here").is_empty());
    }
}
