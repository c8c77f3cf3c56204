//! The Git boundary (git2): the config repository's commits, branches made without touching the
//! working tree, and the history of a field. The config repository may be a directory inside a
//! larger repository; paths given and returned are relative to the config repository. The
//! remote (clone, fetch, push) is in [`remote`]; single commits (trailers, reverts, trees) in
//! [`commits`].

mod commits;
mod notes;
mod remote;

pub use commits::{Author, trailer, trailers};
pub use notes::NOTES_REF;
pub use remote::{Auth, clone};

use std::path::{Path, PathBuf};

use git2::{BranchType, FileMode, ObjectType, Oid, Repository, build::TreeUpdateBuilder};
use serde_json::Value;

use crate::manifests::history::{HistoryError, Layer, ValueHistory};
use crate::manifests::parse_text;
use crate::manifests::path::FieldPath;
use crate::model::ObjectRef;

/// What can go wrong with the repository.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory is not inside a Git repository.
    #[error("{}: not inside a Git repository ({source}); run `git init` and commit the manifests first", path.display())]
    NotARepository {
        /// The directory.
        path: PathBuf,
        /// git2's error.
        #[source]
        source: git2::Error,
    },
    /// A Git operation failed.
    #[error("git: {what}: {source}")]
    Git {
        /// What was being done.
        what: String,
        /// git2's error.
        #[source]
        source: git2::Error,
    },
    /// The remote refused a pushed ref.
    #[error("git: {remote} refused {reference}: {message}; fetch, then run again")]
    Rejected {
        /// The ref.
        reference: String,
        /// The remote, without credentials.
        remote: String,
        /// The remote's reason.
        message: String,
    },
    /// A pull request's head ref is not the commit its event names.
    #[error(
        "refs/pull/{number}/head is {found}, not the event's head {expected}: the pull request moved on, or the event is not about it; it is checked again on its next event"
    )]
    PullMoved {
        /// The pull request.
        number: u64,
        /// What the ref holds.
        found: String,
        /// What the event named.
        expected: String,
    },
    /// A revert does not apply cleanly.
    #[error("git: reverting {commit} conflicts with later commits; revert it by hand")]
    Conflict {
        /// The commit to revert.
        commit: String,
    },
    /// A file could not be written.
    #[error("git: cannot write {message}")]
    Write {
        /// The file and the reason.
        message: String,
    },
    /// The base branch changed a file since the working tree's HEAD.
    #[error("{}: changed on the base branch ({base}) since HEAD; pull, then propose again", file.display())]
    Behind {
        /// The file, relative to the config repository.
        file: PathBuf,
        /// The base commit.
        base: String,
    },
    /// A file to commit differs from HEAD in the working tree.
    #[error("{}: has changes that are not committed; commit or stash them, then propose again", file.display())]
    Uncommitted {
        /// The file, relative to the config repository.
        file: PathBuf,
    },
}

/// Result of Git operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn git<T>(what: impl Into<String>, result: std::result::Result<T, git2::Error>) -> Result<T> {
    result.map_err(|source| Error::Git {
        what: what.into(),
        source,
    })
}

/// What happened to a branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BranchOutcome {
    /// It did not exist and was created.
    Created,
    /// It existed with other content and now points at a new commit.
    Updated,
    /// It already held exactly this content.
    Unchanged,
}

impl std::fmt::Display for BranchOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
        })
    }
}

/// The config repository.
pub struct ConfigRepo {
    repo: Repository,
    /// The config repository's directory, relative to the Git work tree.
    prefix: PathBuf,
}

impl ConfigRepo {
    /// Opens the Git repository that holds `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let repo = Repository::discover(path).map_err(|source| Error::NotARepository {
            path: path.to_owned(),
            source,
        })?;
        let workdir = repo.workdir().map(Path::to_owned).unwrap_or_default();
        let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_owned());
        let prefix = canonical(path)
            .strip_prefix(canonical(&workdir))
            .map(Path::to_owned)
            .unwrap_or_default();
        Ok(Self { repo, prefix })
    }

    fn git_path(&self, file: &Path) -> String {
        self.prefix.join(file).to_string_lossy().replace('\\', "/")
    }

    /// remediator's own directory inside the Git directory (`.git/remediator`), for state that
    /// must not show in the working tree.
    pub fn state_dir(&self) -> PathBuf {
        self.repo.path().join("remediator")
    }

    /// The commit HEAD points at.
    pub fn head(&self) -> Result<Oid> {
        let head = git("read HEAD", self.repo.head())?;
        Ok(git("resolve HEAD", head.peel_to_commit())?.id())
    }

    /// A file's text at `commit`, `None` when the file is not there.
    pub fn file_at(&self, commit: Oid, file: &Path) -> Result<Option<String>> {
        let tree = git(
            "read tree",
            git("find commit", self.repo.find_commit(commit))?.tree(),
        )?;
        let Ok(entry) = tree.get_path(Path::new(&self.git_path(file))) else {
            return Ok(None);
        };
        let blob = git("read blob", self.repo.find_blob(entry.id()))?;
        Ok(Some(String::from_utf8_lossy(blob.content()).into_owned()))
    }

    /// Whether `file` (relative to the config repository) is a symbolic link at `commit`.
    pub fn is_symlink_at(&self, commit: Oid, file: &Path) -> Result<bool> {
        let tree = git(
            "read tree",
            git("find commit", self.repo.find_commit(commit))?.tree(),
        )?;
        Ok(tree
            .get_path(Path::new(&self.git_path(file)))
            .is_ok_and(|entry| entry.filemode() == 0o120000))
    }

    /// The files directly in directory `dir` (relative to the config repository) at `commit`,
    /// with their text, by name; `None` when `commit` has no such directory, an error when a
    /// file is not UTF-8.
    pub fn files_at(&self, commit: Oid, dir: &Path) -> Result<Option<Vec<(PathBuf, String)>>> {
        let tree = git(
            "read tree",
            git("find commit", self.repo.find_commit(commit))?.tree(),
        )?;
        let what = format!("read {} at {commit}", dir.display());
        let Ok(entry) = tree.get_path(Path::new(&self.git_path(dir))) else {
            return Ok(None);
        };
        let dir_tree = git(&what, self.repo.find_tree(entry.id()))?;
        let mut files = Vec::new();
        for entry in dir_tree.iter() {
            if entry.kind() != Some(git2::ObjectType::Blob) {
                continue;
            }
            let name = dir.join(entry.name().map_err(|_| Error::Git {
                what: what.clone(),
                source: git2::Error::from_str("a file name that is not UTF-8"),
            })?);
            let blob = git(&what, self.repo.find_blob(entry.id()))?;
            let text = String::from_utf8(blob.content().to_vec()).map_err(|_| Error::Git {
                what: format!("read {} at {commit}", name.display()),
                source: git2::Error::from_str("not UTF-8"),
            })?;
            files.push((name, text));
        }
        files.sort();
        Ok(Some(files))
    }

    /// `path` (on disk) relative to the config repository, when it lies inside its work tree;
    /// a path that does not exist is compared as written (made absolute).
    pub fn relative(&self, path: &Path) -> Result<Option<PathBuf>> {
        let io = |what: &str, e: std::io::Error| Error::Write {
            message: format!("{what}: {e}"),
        };
        let workdir = self
            .repo
            .workdir()
            .ok_or_else(|| Error::Write {
                message: "the repository has no work tree".into(),
            })?
            .canonicalize()
            .map_err(|e| io("the work tree", e))?;
        let absolute = if path.is_absolute() {
            path.to_owned()
        } else {
            std::env::current_dir()
                .map_err(|e| io("the current directory", e))?
                .join(path)
        };
        let resolved = match absolute.canonicalize() {
            Ok(resolved) => resolved,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => absolute,
            Err(e) => return Err(io(&path.display().to_string(), e)),
        };
        Ok(resolved
            .strip_prefix(workdir.join(&self.prefix))
            .ok()
            .map(Path::to_owned))
    }

    /// Points `branch` at a commit of `files` (path relative to the config repository, and new
    /// text) on top of `base`, unless it already holds exactly that tree. The working tree and
    /// the index are not touched. Every file must be as committed in `base` in the working tree,
    /// so that nothing uncommitted slips into the branch.
    pub fn commit_branch(
        &self,
        branch: &str,
        base: Oid,
        files: &[(PathBuf, String)],
        message: &str,
        author: &Author,
    ) -> Result<(BranchOutcome, Oid)> {
        let base_commit = git("find base commit", self.repo.find_commit(base))?;
        let base_tree = git("read base tree", base_commit.tree())?;
        let mut update = TreeUpdateBuilder::new();
        for (file, text) in files {
            self.check_committed(base, file)?;
            let blob = git("write blob", self.repo.blob(text.as_bytes()))?;
            update.upsert(self.git_path(file), blob, FileMode::Blob);
        }
        let tree_id = git("build tree", update.create_updated(&self.repo, &base_tree))?;
        let existing = self.repo.find_branch(branch, BranchType::Local).ok();
        let existing_tree = existing
            .as_ref()
            .and_then(|b| b.get().peel_to_commit().ok())
            .map(|c| c.tree_id());
        if existing_tree == Some(tree_id) {
            let id = existing.and_then(|b| b.get().target()).unwrap_or(base);
            return Ok((BranchOutcome::Unchanged, id));
        }
        // The same edit on an older base that has not touched its files since is kept, as
        // Renovate keeps a branch that does not conflict: a rebase would only dismiss the
        // reviews of its head.
        let kept = existing.as_ref().and_then(|b| b.get().target());
        if let Some(kept) = kept
            && self.still_applies(kept, base, files)?
        {
            return Ok((BranchOutcome::Unchanged, kept));
        }
        let tree = git("find tree", self.repo.find_tree(tree_id))?;
        let signature = author.signature()?;
        let commit = git(
            "commit",
            self.repo.commit(
                None,
                &signature,
                &signature,
                message,
                &tree,
                &[&base_commit],
            ),
        )?;
        let reference = format!("refs/heads/{branch}");
        git(
            format!("update {reference}"),
            self.repo
                .reference(&reference, commit, true, "remediator: propose"),
        )?;
        let outcome = if existing.is_some() {
            BranchOutcome::Updated
        } else {
            BranchOutcome::Created
        };
        Ok((outcome, commit))
    }

    /// Whether the branch commit `kept` is exactly `files` on top of its one parent, and that
    /// parent is `base` or behind it with the files as `base` has them.
    fn still_applies(&self, kept: Oid, base: Oid, files: &[(PathBuf, String)]) -> Result<bool> {
        let commit = git("find branch commit", self.repo.find_commit(kept))?;
        if commit.parent_count() != 1 {
            return Ok(false);
        }
        let parent = git("find parent commit", commit.parent(0))?;
        let behind = parent.id() == base
            || git(
                "compare commits",
                self.repo.graph_descendant_of(base, parent.id()),
            )?;
        if !behind {
            return Ok(false);
        }
        let parent_tree = git("read parent tree", parent.tree())?;
        let base_commit = git("find base commit", self.repo.find_commit(base))?;
        let base_tree = git("read base tree", base_commit.tree())?;
        let mut update = TreeUpdateBuilder::new();
        for (file, text) in files {
            let path = self.git_path(file);
            let entry =
                |tree: &git2::Tree<'_>| tree.get_path(Path::new(&path)).ok().map(|e| e.id());
            if entry(&parent_tree) != entry(&base_tree) {
                return Ok(false);
            }
            let blob = git("write blob", self.repo.blob(text.as_bytes()))?;
            update.upsert(path, blob, FileMode::Blob);
        }
        let expected = git(
            "build tree",
            update.create_updated(&self.repo, &parent_tree),
        )?;
        Ok(expected == commit.tree_id())
    }

    /// The edit of `file` was made on the working tree: it must hold HEAD's text (nothing
    /// uncommitted), and HEAD's text must be the base's (the base did not move on under it).
    fn check_committed(&self, base: Oid, file: &Path) -> Result<()> {
        let Some(workdir) = self.repo.workdir() else {
            return Ok(());
        };
        let on_disk = std::fs::read_to_string(workdir.join(self.git_path(file))).ok();
        let head = self.head()?;
        if on_disk != self.file_at(head, file)? {
            return Err(Error::Uncommitted {
                file: file.to_owned(),
            });
        }
        if head != base && self.file_at(head, file)? != self.file_at(base, file)? {
            return Err(Error::Behind {
                file: file.to_owned(),
                base: base.to_string(),
            });
        }
        Ok(())
    }

    /// Local branches whose names start with `prefix`.
    pub fn branches(&self, prefix: &str) -> Result<Vec<String>> {
        let branches = git("list branches", self.repo.branches(Some(BranchType::Local)))?;
        Ok(branches
            .filter_map(|b| b.ok()?.0.name().ok().flatten().map(str::to_owned))
            .filter(|name| name.starts_with(prefix))
            .collect())
    }

    /// The commits of `branch` that `base` does not have, newest first, each with its message.
    pub fn commits_ahead(&self, branch: &str, base: Oid) -> Result<Vec<(Oid, String)>> {
        let tip = git(
            "find branch",
            self.repo.find_branch(branch, BranchType::Local),
        )?;
        let tip = git("resolve branch", tip.get().peel_to_commit())?.id();
        let mut walk = git("walk", self.repo.revwalk())?;
        git("walk", walk.push(tip))?;
        git("walk", walk.hide(base))?;
        walk.filter_map(|id| id.ok())
            .map(|id| {
                Ok((
                    id,
                    git("read commit", self.repo.find_commit(id))?
                        .message()
                        .unwrap_or_default()
                        .to_owned(),
                ))
            })
            .collect()
    }

    /// Files that differ between `base` and `commit`, relative to the config repository.
    pub fn changed_files(&self, base: Oid, commit: Oid) -> Result<Vec<PathBuf>> {
        let tree = |id| {
            git(
                "read tree",
                git("find commit", self.repo.find_commit(id))?.tree(),
            )
        };
        let diff = git(
            "diff",
            self.repo
                .diff_tree_to_tree(Some(&tree(base)?), Some(&tree(commit)?), None),
        )?;
        Ok(diff
            .deltas()
            .filter_map(|d| d.new_file().path().map(Path::to_owned))
            .filter_map(|p| p.strip_prefix(&self.prefix).ok().map(Path::to_owned))
            .collect())
    }
}

/// Field history from the commits before HEAD.
pub struct GitHistory<'r> {
    repo: &'r ConfigRepo,
    /// How many commits to look back.
    pub depth: usize,
}

impl<'r> GitHistory<'r> {
    /// History of `repo`, looking back at most 500 commits.
    pub fn new(repo: &'r ConfigRepo) -> Self {
        Self { repo, depth: 500 }
    }
}

impl ValueHistory for GitHistory<'_> {
    fn previous_effective(
        &self,
        layers: &[Layer<'_>],
        current: &Value,
    ) -> std::result::Result<Option<Value>, HistoryError> {
        let Some(first) = layers.first() else {
            return Ok(None);
        };
        let failed = |e: git2::Error| HistoryError {
            file: first.file.to_owned(),
            message: e.message().to_owned(),
        };
        let repo = &self.repo.repo;
        let mut walk = repo.revwalk().map_err(failed)?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)
            .map_err(failed)?;
        walk.push_head().map_err(failed)?;
        for id in walk.take(self.depth) {
            let tree = repo
                .find_commit(id.map_err(failed)?)
                .and_then(|c| c.tree())
                .map_err(failed)?;
            // The most specific layer that sets the field at this revision decides it. A layer
            // the revision does not have sets nothing; one that cannot be read is an error.
            let mut texts = Vec::new();
            for layer in layers {
                let Ok(entry) = tree.get_path(Path::new(&self.repo.git_path(layer.file))) else {
                    texts.push(None);
                    continue;
                };
                let blob = repo.find_blob(entry.id()).map_err(|e| HistoryError {
                    file: layer.file.to_owned(),
                    message: e.message().to_owned(),
                })?;
                texts.push(Some(String::from_utf8_lossy(blob.content()).into_owned()));
            }
            let effective = layers.iter().zip(&texts).find_map(|(layer, text)| {
                let text = text.as_deref()?;
                let parsed = parse_text(layer.file, text);
                let doc = parsed.documents.iter().find(|d| match layer.object {
                    Some(o) => {
                        d.value["kind"] == o.kind.as_str()
                            && d.value["metadata"]["name"] == o.name.as_str()
                    }
                    None => true,
                })?;
                let value = layer.path.get(&doc.value)?.clone();
                if layer.image_tag {
                    let image = value.as_str()?;
                    let tag = image.rsplit_once(':').map(|(_, t)| t)?;
                    Some(Value::String(tag.to_owned()))
                } else {
                    Some(value)
                }
            });
            match effective {
                Some(value) if value != *current => return Ok(Some(value)),
                _ => {}
            }
        }
        Ok(None)
    }

    fn previous(
        &self,
        file: &Path,
        object: Option<&ObjectRef>,
        path: &FieldPath,
        current: &Value,
    ) -> std::result::Result<Option<Value>, HistoryError> {
        let failed = |e: git2::Error| HistoryError {
            file: file.to_owned(),
            message: e.message().to_owned(),
        };
        let repo = &self.repo.repo;
        let git_path = self.repo.git_path(file);
        let mut walk = repo.revwalk().map_err(failed)?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)
            .map_err(failed)?;
        walk.push_head().map_err(failed)?;
        let mut last_blob = None;
        for id in walk.take(self.depth) {
            let tree = repo
                .find_commit(id.map_err(failed)?)
                .and_then(|c| c.tree())
                .map_err(failed)?;
            let Ok(entry) = tree.get_path(Path::new(&git_path)) else {
                continue;
            };
            if entry.kind() != Some(ObjectType::Blob) || last_blob == Some(entry.id()) {
                continue;
            }
            last_blob = Some(entry.id());
            let blob = repo.find_blob(entry.id()).map_err(failed)?;
            let text = String::from_utf8_lossy(blob.content());
            let parsed = parse_text(file, &text);
            // A revision that does not declare the object (yet) is passed over, not the end.
            let Some(doc) = parsed.documents.iter().find(|d| match object {
                Some(o) => {
                    d.value["kind"] == o.kind.as_str()
                        && d.value["metadata"]["name"] == o.name.as_str()
                }
                None => true,
            }) else {
                continue;
            };
            match path.get(&doc.value) {
                Some(value) if value != current => return Ok(Some(value.clone())),
                _ => {}
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::Signature;

    fn commit_all(repo: &Repository, message: &str) -> Oid {
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = Signature::now("t", "t@example.com").unwrap();
        let parents: Vec<git2::Commit> = repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
    }

    #[test]
    fn branches_are_made_without_touching_the_work_tree_and_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("cfg/apps")).unwrap();
        std::fs::write(dir.path().join("cfg/apps/a.yaml"), "replicas: 1\n").unwrap();
        let base = commit_all(&repo, "init");
        let config = ConfigRepo::open(&dir.path().join("cfg")).unwrap();
        let files = vec![(PathBuf::from("apps/a.yaml"), "replicas: 2\n".to_owned())];
        let (outcome, commit) = config
            .commit_branch(
                "remediator/x/y",
                base,
                &files,
                "fix\n\nRemediation-Id: 1\n",
                &Author::default(),
            )
            .unwrap();
        assert_eq!(outcome, BranchOutcome::Created);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cfg/apps/a.yaml")).unwrap(),
            "replicas: 1\n"
        );
        assert_eq!(
            config
                .file_at(commit, Path::new("apps/a.yaml"))
                .unwrap()
                .as_deref(),
            Some("replicas: 2\n")
        );
        assert_eq!(
            config.changed_files(base, commit).unwrap(),
            [PathBuf::from("apps/a.yaml")]
        );
        let again = config
            .commit_branch("remediator/x/y", base, &files, "fix", &Author::default())
            .unwrap();
        assert_eq!(again, (BranchOutcome::Unchanged, commit));
        let other = vec![(PathBuf::from("apps/a.yaml"), "replicas: 3\n".to_owned())];
        assert_eq!(
            config
                .commit_branch("remediator/x/y", base, &other, "fix", &Author::default())
                .unwrap()
                .0,
            BranchOutcome::Updated
        );
        assert_eq!(
            config.commits_ahead("remediator/x/y", base).unwrap().len(),
            1
        );
        assert_eq!(config.branches("remediator/").unwrap(), ["remediator/x/y"]);
    }

    #[test]
    fn a_branch_whose_edit_still_applies_is_kept_when_the_base_moves_on_and_rebased_when_it_conflicts()
     {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        std::fs::write(dir.path().join("a.yaml"), "replicas: 1\n").unwrap();
        std::fs::write(dir.path().join("b.yaml"), "x: 1\n").unwrap();
        let first = commit_all(&repo, "init");
        let config = ConfigRepo::open(dir.path()).unwrap();
        let files = vec![(PathBuf::from("a.yaml"), "replicas: 2\n".to_owned())];
        let author = Author::default();
        let (_, branch) = config
            .commit_branch("remediator/x/y", first, &files, "fix", &author)
            .unwrap();
        // Another file changes on the base: the branch and its reviews stay.
        std::fs::write(dir.path().join("b.yaml"), "x: 2\n").unwrap();
        let second = commit_all(&repo, "other");
        let kept = config
            .commit_branch("remediator/x/y", second, &files, "fix", &author)
            .unwrap();
        assert_eq!(kept, (BranchOutcome::Unchanged, branch));
        // Another edit, or the base changing the file itself: rebased on the base.
        let other = vec![(PathBuf::from("a.yaml"), "replicas: 3\n".to_owned())];
        let (outcome, moved) = config
            .commit_branch("remediator/x/y", second, &other, "fix", &author)
            .unwrap();
        assert_eq!(outcome, BranchOutcome::Updated);
        assert_eq!(
            repo.find_commit(moved).unwrap().parent_id(0).unwrap(),
            second
        );
        std::fs::write(dir.path().join("a.yaml"), "replicas: 1 # pinned\n").unwrap();
        let third = commit_all(&repo, "touch a");
        let edited = vec![(PathBuf::from("a.yaml"), "replicas: 3 # pinned\n".to_owned())];
        let (outcome, rebased) = config
            .commit_branch("remediator/x/y", third, &edited, "fix", &author)
            .unwrap();
        assert_eq!(outcome, BranchOutcome::Updated);
        assert_eq!(
            repo.find_commit(rebased).unwrap().parent_id(0).unwrap(),
            third
        );
    }

    #[test]
    fn uncommitted_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        std::fs::write(dir.path().join("a.yaml"), "x: 1\n").unwrap();
        let base = commit_all(&repo, "init");
        std::fs::write(dir.path().join("a.yaml"), "x: 5\n").unwrap();
        let config = ConfigRepo::open(dir.path()).unwrap();
        let err = config
            .commit_branch(
                "b",
                base,
                &[(PathBuf::from("a.yaml"), "x: 2\n".into())],
                "m",
                &Author::default(),
            )
            .unwrap_err();
        assert!(matches!(err, Error::Uncommitted { .. }), "{err}");
    }

    #[test]
    fn history_finds_the_previous_value() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let write = |tag: &str| {
            std::fs::write(
                dir.path().join("k.yaml"),
                format!("images:\n  - name: app\n    newTag: \"{tag}\"\n"),
            )
            .unwrap()
        };
        write("1.0");
        commit_all(&repo, "one");
        write("1.1");
        commit_all(&repo, "two");
        std::fs::write(dir.path().join("other.yaml"), "x: 1\n").unwrap();
        commit_all(&repo, "unrelated");
        let config = ConfigRepo::open(dir.path()).unwrap();
        let history = GitHistory::new(&config);
        let path: FieldPath = "images[name=app].newTag".parse().unwrap();
        let previous = history.previous(Path::new("k.yaml"), None, &path, &Value::from("1.1"));
        assert_eq!(previous.unwrap(), Some(Value::from("1.0")));
        assert_eq!(
            history
                .previous(Path::new("k.yaml"), None, &path, &Value::from("0.9"))
                .unwrap(),
            Some(Value::from("1.1"))
        );
    }

    #[test]
    fn a_revision_without_the_object_is_passed_over_and_an_unreadable_history_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let config = ConfigRepo::open(dir.path()).unwrap();
        let history = GitHistory::new(&config);
        let path: FieldPath = "spec.template.spec.containers[name=api].image"
            .parse()
            .unwrap();
        let api = ObjectRef::new("apps/v1", "Deployment", Some("shop"), "api");
        let unborn = history.previous(Path::new("d.yaml"), Some(&api), &path, &Value::from("x"));
        assert!(unborn.is_err(), "{unborn:?}");
        let deployment = |image: &str| {
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: api, namespace: shop}}\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: {image}\n"
            )
        };
        let file = dir.path().join("d.yaml");
        std::fs::write(&file, deployment("api:1")).unwrap();
        commit_all(&repo, "one");
        std::fs::write(
            &file,
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
        )
        .unwrap();
        commit_all(&repo, "moved away");
        std::fs::write(&file, deployment("api:2")).unwrap();
        commit_all(&repo, "back");
        let previous = history
            .previous(
                Path::new("d.yaml"),
                Some(&api),
                &path,
                &Value::from("api:2"),
            )
            .unwrap();
        assert_eq!(previous, Some(Value::from("api:1")));
    }
}
