//! The audit trail kept with the repository: Git notes under [`NOTES_REF`], one note of JSON
//! Lines on each commit the records describe, fetched from the remote before each read and
//! pushed after each append. A push another run got in first is retried on top of its notes, so
//! concurrent runs lose no record. I/O: the repository and its remote.

use std::path::{Path, PathBuf};
use std::time::Duration;

use git2::{ErrorCode, Oid};

use super::{Auth, Author, ConfigRepo, Error, Result, git};

/// The notes ref of the audit trail.
pub const NOTES_REF: &str = "refs/notes/remediator";

/// Tries of an append whose push another run beat.
const ATTEMPTS: u32 = 8;

/// A lock held in a remote on this machine while its notes are fetched, added to and pushed:
/// libgit2's local transport updates a ref without comparing its old value, as a Git server
/// does, so two runs could each replace the other's push. Remotes over the network need none.
struct LocalLock {
    path: Option<PathBuf>,
}

impl LocalLock {
    /// How long a lock may be held before it counts as left behind by a run that died.
    const STALE: Duration = Duration::from_secs(30);

    fn take(remote: &git2::Remote<'_>) -> Result<LocalLock> {
        let url = remote.url().unwrap_or_default();
        let dir = match url.strip_prefix("file://") {
            Some(path) => PathBuf::from(path),
            None if Path::new(url).is_absolute() => PathBuf::from(url),
            None => return Ok(LocalLock { path: None }),
        };
        let path = dir.join("remediator-notes.lock");
        let failed = |e: std::io::Error| Error::Write {
            message: format!("{}: {e}", path.display()),
        };
        let started = std::time::Instant::now();
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(LocalLock { path: Some(path) }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let age = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .map_err(failed)?
                        .elapsed()
                        .unwrap_or(Duration::ZERO);
                    if age > Self::STALE || started.elapsed() > Self::STALE {
                        std::fs::remove_file(&path).map_err(failed)?;
                    } else {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                Err(e) => return Err(failed(e)),
            }
        }
    }
}

impl Drop for LocalLock {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            // A lock that cannot be removed is taken over once it is stale.
            drop(std::fs::remove_file(path));
        }
    }
}

impl ConfigRepo {
    /// Whether the repository has a remote of that name.
    pub fn has_remote(&self, name: &str) -> bool {
        self.repo.find_remote(name).is_ok()
    }

    /// Makes the local trail the remote's: fetched when the remote has one, removed when it has
    /// none.
    pub fn fetch_notes(&self, remote: &str, auth: &Auth) -> Result<()> {
        let listed = {
            let mut connection = self.remote(remote)?;
            let what = format!("list the refs of {remote}");
            let callbacks = auth.callbacks();
            let connected = git(
                &what,
                connection.connect_auth(git2::Direction::Fetch, Some(callbacks), None),
            )?;
            let heads = git(&what, connected.list())?;
            heads.iter().any(|head| head.name() == NOTES_REF)
        };
        if listed {
            return self.fetch(remote, &[&format!("+{NOTES_REF}:{NOTES_REF}")], auth);
        }
        match self.repo.find_reference(NOTES_REF) {
            Ok(mut reference) => git("remove the local audit notes", reference.delete()),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(()),
            Err(source) => Err(Error::Git {
                what: "read the audit notes".into(),
                source,
            }),
        }
    }

    /// Adds `line` to the note of `target` on top of the remote's trail and pushes it; when
    /// another run pushed first, fetches its notes and tries again.
    pub fn append_note(
        &self,
        remote: &str,
        target: Oid,
        line: &str,
        author: &Author,
        auth: &Auth,
    ) -> Result<()> {
        let _lock = LocalLock::take(&self.remote(remote)?)?;
        let mut attempt = 1;
        loop {
            self.fetch_notes(remote, auth)?;
            let mut text = self.note(target)?.unwrap_or_default();
            text.push_str(line.trim_end());
            text.push('\n');
            let signature = author.signature()?;
            git(
                format!("note {target}"),
                self.repo
                    .note(&signature, &signature, Some(NOTES_REF), target, &text, true),
            )?;
            let refspec = format!("{NOTES_REF}:{NOTES_REF}");
            // A push is checked by reading the trail back: a transport that updates the ref
            // without comparing it (a local one) may let another run's push replace ours.
            let pushed = self.push(remote, &[refspec], auth).and_then(|()| {
                self.fetch_notes(remote, auth)?;
                let text = self.note(target)?.unwrap_or_default();
                if text.lines().any(|l| l == line.trim_end()) {
                    Ok(())
                } else {
                    Err(Error::Rejected {
                        reference: NOTES_REF.into(),
                        remote: remote.to_owned(),
                        message: "another run's notes replaced this record".into(),
                    })
                }
            });
            match pushed {
                Ok(()) => return Ok(()),
                Err(_) if attempt < ATTEMPTS => {
                    attempt += 1;
                    // Another run's push won; back off a little, differently for each run.
                    let nanos = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.subsec_nanos());
                    let jitter = u64::from((std::process::id() ^ nanos) % 50);
                    std::thread::sleep(Duration::from_millis(20 * u64::from(attempt) + jitter));
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The note of `target` in the local trail, `None` when it has none.
    fn note(&self, target: Oid) -> Result<Option<String>> {
        match self.repo.find_note(Some(NOTES_REF), target) {
            Ok(note) => {
                let text = git(format!("read the audit note of {target}"), note.message())?;
                Ok(Some(text.to_owned()))
            }
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(source) => Err(Error::Git {
                what: format!("read the audit note of {target}"),
                source,
            }),
        }
    }

    /// Every note of the local trail: the object it is on, and its text.
    pub fn notes(&self) -> Result<Vec<(Oid, String)>> {
        let iter = match self.repo.notes(Some(NOTES_REF)) {
            Ok(iter) => iter,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(vec![]),
            Err(source) => {
                return Err(Error::Git {
                    what: "read the audit notes".into(),
                    source,
                });
            }
        };
        let mut notes = Vec::new();
        for entry in iter {
            let (_, target) = git("read the audit notes", entry)?;
            if let Some(text) = self.note(target)? {
                notes.push((target, text));
            }
        }
        Ok(notes)
    }

    /// What records about no commit are noted on: a blob every clone computes alike.
    pub fn trail_anchor(&self) -> Result<Oid> {
        git(
            "write the audit trail's anchor",
            self.repo.blob(b"remediator audit trail\n"),
        )
    }
}
