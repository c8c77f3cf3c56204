//! Reading and writing single commits: resolve a name, a commit's parents, message and trailers,
//! its config tree written out to a directory, and revert commits. I/O: the repository and the
//! directory written to.

use std::path::{Path, PathBuf};

use git2::{Oid, Signature};

use super::{ConfigRepo, Error, Result, git};

pub use crate::model::Author;

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

    /// Whether `commit` comes after `ancestor` (has it in its history); a commit does not come
    /// after itself.
    pub fn descends(&self, commit: Oid, ancestor: Oid) -> Result<bool> {
        git(
            "compare commits",
            self.repo.graph_descendant_of(commit, ancestor),
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

    /// The commits reachable from `tip` that are not from `base`, newest first, each with the
    /// e-mail of its committer and its message.
    pub fn commits_only_in(&self, tip: Oid, base: Oid) -> Result<Vec<(Oid, String, String)>> {
        let mut walk = git("walk", self.repo.revwalk())?;
        git("walk", walk.push(tip))?;
        git("walk", walk.hide(base))?;
        let mut out = Vec::new();
        for id in walk {
            let id = git("walk", id)?;
            let commit = git("read commit", self.repo.find_commit(id))?;
            let email = String::from_utf8_lossy(commit.committer().email_bytes()).into_owned();
            let message = String::from_utf8_lossy(commit.message_bytes()).into_owned();
            out.push((id, email, message));
        }
        Ok(out)
    }

    /// The trailers of a commit, or, for a merge commit with none of remediator's
    /// (`Remediation-Id:`, `Reverts:`), of the newest commit of the branch it merged that has
    /// them: a person's commit on top of remediator's leaves them on the one below it.
    pub fn merged_trailers(&self, commit: Oid) -> Result<Vec<(String, String)>> {
        let ours = |found: &[(String, String)]| {
            trailer(found, "Remediation-Id").is_some() || trailer(found, "Reverts").is_some()
        };
        let own = trailers(&self.message(commit)?);
        if ours(&own) {
            return Ok(own);
        }
        let [first, merged, ..] = self.parents(commit)?[..] else {
            return Ok(own);
        };
        for (_, _, message) in self.commits_only_in(merged, first)? {
            let found = trailers(&message);
            if ours(&found) {
                return Ok(found);
            }
        }
        Ok(trailers(&self.message(merged)?))
    }

    /// A commit's full message.
    pub fn message(&self, commit: Oid) -> Result<String> {
        let commit = git("find commit", self.repo.find_commit(commit))?;
        Ok(String::from_utf8_lossy(commit.message_bytes()).into_owned())
    }

    /// Writes the config repository's files as of `commit` into `dir`; returns `dir`. Every
    /// tree entry is a name, never a path: one named `.`, `..` or `.git`, or holding `/`, `\`
    /// or NUL, is refused before anything is written for it. A symlink is not written (nothing
    /// written points anywhere); `check` weighs a changed one as not rendered.
    pub fn write_tree(&self, commit: Oid, dir: &Path) -> Result<PathBuf> {
        let tree = git(
            "read tree",
            git("find commit", self.repo.find_commit(commit))?.tree(),
        )?;
        let tree = if self.prefix.as_os_str().is_empty() {
            tree
        } else {
            match tree.get_path(&self.prefix) {
                Ok(entry) => git("read tree", entry.to_object(&self.repo))?
                    .peel_to_tree()
                    .map_err(|e| Error::Write {
                        message: format!("{}: not a directory: {e}", self.prefix.display()),
                    })?,
                Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(dir.to_owned()),
                Err(e) => return git("read tree", Err(e)),
            }
        };
        self.write_subtree(&tree, dir, Path::new(""))?;
        Ok(dir.to_owned())
    }

    fn write_subtree(&self, tree: &git2::Tree<'_>, dir: &Path, at: &Path) -> Result<()> {
        for entry in tree.iter() {
            let name = entry_name(entry.name_bytes()).map_err(|rule| Error::Write {
                message: format!(
                    "{}: a tree entry named {:?} is refused: {rule}",
                    display(at),
                    String::from_utf8_lossy(entry.name_bytes())
                ),
            })?;
            let (target, path) = (dir.join(name), at.join(name));
            let failed = |e: String| Error::Write {
                message: format!("{}: {e}", path.display()),
            };
            match entry.kind() {
                Some(git2::ObjectType::Tree) => {
                    let sub = git("read tree", self.repo.find_tree(entry.id()))?;
                    std::fs::create_dir_all(&target).map_err(|e| failed(e.to_string()))?;
                    self.write_subtree(&sub, &target, &path)?;
                }
                Some(git2::ObjectType::Blob) if entry.filemode() == 0o120000 => {}
                Some(git2::ObjectType::Blob) => {
                    let blob = git("read blob", self.repo.find_blob(entry.id()))?;
                    std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
                    std::fs::write(&target, blob.content()).map_err(|e| failed(e.to_string()))?;
                }
                // Submodules are other repositories: not part of this tree's files.
                _ => {}
            }
        }
        Ok(())
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

/// A tree entry's name as a file name; why it is refused otherwise.
fn entry_name(bytes: &[u8]) -> std::result::Result<&std::ffi::OsStr, &'static str> {
    use std::os::unix::ffi::OsStrExt as _;
    if bytes.is_empty() {
        return Err("an entry needs a name");
    }
    if bytes == b"." || bytes == b".." {
        return Err("`.` and `..` are no names but steps out of the tree");
    }
    if bytes.eq_ignore_ascii_case(b".git") {
        return Err("`.git` is Git's own directory, as Git itself refuses it in a tree");
    }
    if bytes.contains(&b'/') || bytes.contains(&b'\\') || bytes.contains(&0) {
        return Err("a name must not hold `/`, `\\` or NUL");
    }
    Ok(std::ffi::OsStr::from_bytes(bytes))
}

fn display(at: &Path) -> String {
    if at.as_os_str().is_empty() {
        "(root)".to_owned()
    } else {
        at.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_entries_are_names_never_paths() {
        for bad in [
            &b".."[..],
            b".",
            b".git",
            b".GIT",
            b"a/b",
            b"a\\b",
            b"a\0b",
            b"",
        ] {
            assert!(
                entry_name(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        for good in [&b"app.yaml"[..], b".hidden", b"..x", b"\xff\xfe.yaml"] {
            assert!(
                entry_name(good).is_ok(),
                "{:?}",
                String::from_utf8_lossy(good)
            );
        }
    }

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
