//! The audit trail: one JSON object a line, appended and synced for every decision (proposed,
//! policy, approval, applied, verified, rolled back, refused), and read back as chains from
//! recommendation to rollback for `remediator history`. With a [`Trail`], the records live with
//! the repository: Git notes (`refs/notes/remediator`) on the commits they describe, pushed to
//! the remote on every append, so that a fresh clone (a CI runner) sees every earlier run; the
//! local file is then a cache. I/O: the log file, and the repository and its remote.

use std::io::Write;
use std::path::{Path, PathBuf};

use git2::Oid;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::git::{Auth, Author, ConfigRepo};

/// What can go wrong with the log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log cannot be written or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The log.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The trail in the repository cannot be read or written.
    #[error("the audit trail in Git notes: {0}")]
    Git(#[source] crate::git::Error),
    /// A line is not a record.
    #[error("{}:{line}: not an audit record: {message}", path.display())]
    Parse {
        /// The log.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Result of audit calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A decision or step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// A pull request was opened or updated.
    Proposed,
    /// The policies weighed the merged change.
    Policy,
    /// The approvals were counted.
    Approval,
    /// Refused: nothing applied.
    Refused,
    /// Applied to the cluster.
    Applied,
    /// Left to Argo CD or Flux, which synced it.
    HandedOff,
    /// Healthy after the change.
    Verified,
    /// Not healthy after the change.
    Failed,
    /// Undone with a revert commit.
    RolledBack,
    /// An imperative action was carried out.
    Executed,
    /// The pull request was closed.
    Closed,
    /// Applied and healthy in one cluster of an environment that has several; the commit is
    /// finished when every cluster is.
    ClusterVerified,
    /// A wave stopped at a cluster that could not be worked (unreachable, say): nothing was
    /// skipped, and a later run resumes there.
    Halted,
    /// A promotion pull request for the next environment was opened or updated.
    Promoted,
}

impl Event {
    /// Its name, as the log writes it (`rolled-back`).
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Proposed => "proposed",
            Event::Policy => "policy",
            Event::Approval => "approval",
            Event::Refused => "refused",
            Event::Applied => "applied",
            Event::HandedOff => "handed-off",
            Event::Verified => "verified",
            Event::Failed => "failed",
            Event::RolledBack => "rolled-back",
            Event::Executed => "executed",
            Event::Closed => "closed",
            Event::ClusterVerified => "cluster-verified",
            Event::Halted => "halted",
            Event::Promoted => "promoted",
        }
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When (RFC 3339).
    pub time: String,
    /// What.
    pub event: Event,
    /// The remediation's id, when the change is one of ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    /// The commit the step is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The pull request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull: Option<u64>,
    /// The environment a run was limited to (`--env`); `None` for a run over every
    /// environment. A commit finished for one environment is not finished for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The cluster of an environment with several that the step is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The objects, `Kind/namespace/name`.
    #[serde(default)]
    pub objects: Vec<String>,
    /// The program that rendered the builds, with its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renderer: Option<String>,
    /// One line for people.
    pub message: String,
    /// The step's data (change set, approvers, revert commit, ...).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
    /// `sha256=<hex>`: HMAC-SHA256 of the record without it, with `audit.signingKey`; `None` on
    /// a log kept without a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The key audit records are signed with (HMAC-SHA256), from `audit.signingKey`.
#[derive(Clone)]
pub struct SigningKey(ring::hmac::Key);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// The key of `secret`.
    pub fn new(secret: &[u8]) -> SigningKey {
        SigningKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret))
    }

    /// `sha256=<hex>` of `text`.
    pub fn sign(&self, text: &str) -> String {
        let tag = ring::hmac::sign(&self.0, text.as_bytes());
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256={hex}")
    }

    /// Whether `signature` is this key's of `text`, compared in constant time.
    pub fn verifies(&self, text: &str, signature: &str) -> bool {
        let Some(hex) = signature.strip_prefix("sha256=") else {
            return false;
        };
        let tag: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
        tag.is_some_and(|tag| ring::hmac::verify(&self.0, text.as_bytes(), &tag).is_ok())
    }
}

/// What a record's signature says, read with the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seal {
    /// Signed with the key.
    Signed,
    /// Not signed at all.
    Unsigned,
    /// Signed, but not with the key, or changed since.
    Broken,
}

impl Record {
    /// Whether this record speaks for a run over `environment` (`None`: every environment): a
    /// record of a run over every environment speaks for each.
    pub fn covers(&self, environment: Option<&str>) -> bool {
        self.environment.is_none() || self.environment.as_deref() == environment
    }

    /// The event's name, as the log writes it.
    pub fn event_name(&self) -> &'static str {
        self.event.as_str()
    }

    /// The text a signature covers: the record as JSON, without its signature.
    fn signed_text(&self) -> serde_json::Result<String> {
        let unsigned = Record {
            signature: None,
            ..self.clone()
        };
        serde_json::to_string(&unsigned)
    }

    /// What its signature says under `key`.
    pub fn seal(&self, key: &SigningKey) -> Seal {
        match &self.signature {
            None => Seal::Unsigned,
            Some(signature)
                if self
                    .signed_text()
                    .is_ok_and(|text| key.verifies(&text, signature)) =>
            {
                Seal::Signed
            }
            Some(_) => Seal::Broken,
        }
    }

    /// Whether it may be taken as a fact by a decision: always without a key, only when signed
    /// with one.
    pub fn trusted(&self, key: Option<&SigningKey>) -> bool {
        key.is_none_or(|key| self.seal(key) == Seal::Signed)
    }

    /// A record of `event` now.
    pub fn new(event: Event, message: impl Into<String>) -> Record {
        Record {
            time: Timestamp::now().to_string(),
            event,
            remediation: None,
            commit: None,
            pull: None,
            environment: None,
            cluster: None,
            objects: vec![],
            renderer: None,
            message: message.into(),
            detail: Value::Null,
            signature: None,
        }
    }
}

/// Where the records are kept with the repository.
#[derive(Debug, Clone)]
pub struct Trail {
    /// The config repository's directory.
    pub repo: PathBuf,
    /// The remote the notes are fetched from and pushed to.
    pub remote: String,
    /// Its credentials.
    pub auth: Auth,
    /// Who writes the notes.
    pub author: Author,
}

/// The log file, and the trail in the repository when there is one.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
    trail: Option<Trail>,
    key: Option<SigningKey>,
}

impl AuditLog {
    /// The log at `path`; created on the first append.
    pub fn new(path: impl Into<PathBuf>) -> AuditLog {
        AuditLog {
            path: path.into(),
            trail: None,
            key: None,
        }
    }

    /// The same log, its records signed with `key`, and read as trusted only when signed with
    /// it.
    pub fn with_key(mut self, key: SigningKey) -> AuditLog {
        self.key = Some(key);
        self
    }

    /// The key records are signed with, when there is one.
    pub fn key(&self) -> Option<&SigningKey> {
        self.key.as_ref()
    }

    /// The same log, its records kept in the repository's Git notes too, and read from there.
    pub fn with_trail(mut self, trail: Trail) -> AuditLog {
        self.trail = Some(trail);
        self
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the records are read from, for people: the notes ref and its remote, or the file.
    pub fn location(&self) -> String {
        match &self.trail {
            Some(trail) => format!("{} of {}", crate::git::NOTES_REF, trail.remote),
            None => self.path.display().to_string(),
        }
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends a record and syncs it to disk.
    pub fn append(&self, record: &Record) -> Result<()> {
        let mut record = record.clone();
        record.signature = match &self.key {
            Some(key) => Some(key.sign(&record.signed_text().map_err(|e| self.io(e.into()))?)),
            None => None,
        };
        let line = serde_json::to_string(&record).map_err(|e| self.io(e.into()))?;
        if let Some(trail) = &self.trail {
            let repo = ConfigRepo::open(&trail.repo).map_err(Error::Git)?;
            let target = match &record.commit {
                Some(commit) => Oid::from_str(commit).map_err(|source| {
                    Error::Git(crate::git::Error::Git {
                        what: format!("the commit of a record: {commit}"),
                        source,
                    })
                })?,
                None => repo.trail_anchor().map_err(Error::Git)?,
            };
            repo.append_note(&trail.remote, target, &line, &trail.author, &trail.auth)
                .map_err(Error::Git)?;
        }
        self.append_cache(&line)?;
        crate::failpoint::hit(&format!("after-{}", record.event_name()));
        Ok(())
    }

    fn append_cache(&self, line: &str) -> Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let line = format!("{line}\n");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        file.write_all(line.as_bytes()).map_err(|e| self.io(e))?;
        file.sync_data().map_err(|e| self.io(e))
    }

    /// The records a decision may take as facts, oldest first: every record without a key;
    /// with one, those signed with it (see [`AuditLog::read`] for all of them).
    pub fn read_trusted(&self) -> Result<Vec<Record>> {
        let mut records = self.read()?;
        records.retain(|r| r.trusted(self.key.as_ref()));
        Ok(records)
    }

    /// Every record, oldest first; none when there is no log yet.
    pub fn read(&self) -> Result<Vec<Record>> {
        if let Some(trail) = &self.trail {
            return read_trail(trail);
        }
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(self.io(e)),
        };
        Ok(parse_records(&self.path, &text)?
            .into_iter()
            .map(|(_, record)| record)
            .collect())
    }
}

/// The records in the text of a log or of one note, in their order: one JSON record per line,
/// blank lines skipped. A line that is not a record, or whose time is not a timestamp, is an
/// error naming `path` and the line.
pub fn parse_records(path: &Path, text: &str) -> Result<Vec<(Timestamp, Record)>> {
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parse_error = |message: String| Error::Parse {
            path: path.to_owned(),
            line: i + 1,
            message,
        };
        let record: Record = serde_json::from_str(line).map_err(|e| parse_error(e.to_string()))?;
        let time: Timestamp = record
            .time
            .parse()
            .map_err(|e| parse_error(format!("time {:?}: {e}", record.time)))?;
        records.push((time, record));
    }
    Ok(records)
}

/// The records of one change, oldest first: a remediation's, or a commit's when it is not one
/// of ours.
/// Every record of the remote's trail, oldest first.
fn read_trail(trail: &Trail) -> Result<Vec<Record>> {
    let repo = ConfigRepo::open(&trail.repo).map_err(Error::Git)?;
    repo.fetch_notes(&trail.remote, &trail.auth)
        .map_err(Error::Git)?;
    let mut records = Vec::new();
    for (target, text) in repo.notes().map_err(Error::Git)? {
        let note = PathBuf::from(format!("{}:{target}", crate::git::NOTES_REF));
        records.extend(parse_records(&note, &text)?);
    }
    // Records of one instant keep their note's order.
    records.sort_by_key(|(time, _)| *time);
    Ok(records.into_iter().map(|(_, record)| record).collect())
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// The remediation id or the commit.
    pub key: String,
    /// Its records.
    pub records: Vec<Record>,
}

/// The chains that touch `object` (`Kind/namespace/name`, kind case-insensitive), or all.
pub fn history(records: &[Record], object: Option<&str>) -> Vec<Chain> {
    let mut chains: Vec<Chain> = Vec::new();
    for record in records {
        let key = record
            .remediation
            .clone()
            .or_else(|| record.commit.clone())
            .unwrap_or_else(|| "-".to_owned());
        // A record about a revert commit joins the chain of the commit it reverts.
        let key = chains
            .iter()
            .find(|c| {
                c.records.iter().any(|r| {
                    r.commit.as_deref() == Some(key.as_str())
                        || r.detail["revert"].as_str() == Some(key.as_str())
                })
            })
            .map_or(key, |c| c.key.clone());
        match chains.iter_mut().find(|c| c.key == key) {
            Some(chain) => chain.records.push(record.clone()),
            None => chains.push(Chain {
                key,
                records: vec![record.clone()],
            }),
        }
    }
    if let Some(wanted) = object {
        chains.retain(|c| {
            c.records
                .iter()
                .any(|r| r.objects.iter().any(|o| same_object(o, wanted)))
        });
    }
    chains
}

fn same_object(a: &str, b: &str) -> bool {
    match (a.split_once('/'), b.split_once('/')) {
        (Some((ka, ra)), Some((kb, rb))) => ka.eq_ignore_ascii_case(kb) && ra == rb,
        _ => a == b,
    }
}

/// The chains as text, one block each; with `key`, a record not signed with it is marked.
pub fn text(chains: &[Chain], key: Option<&SigningKey>) -> String {
    let mut out = String::new();
    for chain in chains {
        let objects: Vec<&str> = {
            let mut all: Vec<&str> = chain
                .records
                .iter()
                .flat_map(|r| r.objects.iter().map(String::as_str))
                .collect();
            all.sort_unstable();
            all.dedup();
            all
        };
        out.push_str(&format!("== {} ({})\n", chain.key, objects.join(", ")));
        for r in &chain.records {
            let mut refs = Vec::new();
            if let Some(pull) = r.pull {
                refs.push(format!("#{pull}"));
            }
            if let Some(commit) = &r.commit {
                refs.push(commit.chars().take(12).collect());
            }
            // Where the step happened: the run's environment and the cluster, when known.
            let place = match (&r.environment, &r.cluster) {
                (Some(env), Some(cluster)) => format!("[{env}/{cluster}] "),
                (Some(env), None) => format!("[{env}] "),
                (None, Some(cluster)) => format!("[{cluster}] "),
                (None, None) => String::new(),
            };
            let seal = match key.map(|key| r.seal(key)) {
                Some(Seal::Unsigned) => "  [unsigned: not taken as a fact]",
                Some(Seal::Broken) => "  [BAD SIGNATURE: changed or forged, not taken as a fact]",
                Some(Seal::Signed) | None => "",
            };
            out.push_str(&format!(
                "  {}  {:<16} {:<16} {place}{}{seal}\n",
                r.time,
                r.event.as_str(),
                refs.join(" "),
                r.message
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare remote and `clones` clones of it, each with its audit log kept in the remote's
    /// notes.
    fn clones(clones: usize) -> (tempfile::TempDir, Vec<AuditLog>) {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("origin.git");
        git2::Repository::init_bare(&bare).unwrap();
        let logs = (0..clones)
            .map(|i| {
                let work = dir.path().join(format!("clone-{i}"));
                let repo = git2::Repository::init(&work).unwrap();
                repo.remote("origin", &format!("file://{}", bare.display()))
                    .unwrap();
                AuditLog::new(work.join(".git/remediator/audit.jsonl")).with_trail(Trail {
                    repo: work,
                    remote: "origin".into(),
                    auth: Auth::default(),
                    author: Author::default(),
                })
            })
            .collect();
        (dir, logs)
    }

    #[test]
    fn the_trail_lives_in_the_remote_so_another_clone_reads_it() {
        let (_dir, logs) = clones(2);
        let commit = "0123456789abcdef0123456789abcdef01234567";
        logs[0]
            .append(&record(Event::Policy, None, commit, "Deployment/a/b"))
            .unwrap();
        logs[0]
            .append(&record(Event::Verified, None, commit, "Deployment/a/b"))
            .unwrap();
        logs[0]
            .append(&Record::new(Event::Closed, "no commit"))
            .unwrap();
        let read = logs[1].read().unwrap();
        let events: Vec<Event> = read.iter().map(|r| r.event).collect();
        assert_eq!(events, [Event::Policy, Event::Verified, Event::Closed]);
        assert_eq!(logs[1].location(), "refs/notes/remediator of origin");
    }

    #[test]
    fn concurrent_runs_lose_no_record() {
        let (_dir, logs) = clones(2);
        let threads: Vec<_> = logs
            .iter()
            .cloned()
            .enumerate()
            .map(|(run, log)| {
                std::thread::spawn(move || {
                    for i in 0..12 {
                        let commit = format!("{:040x}", i % 3);
                        let message = format!("run {run} record {i}");
                        log.append(&Record {
                            commit: Some(commit),
                            ..Record::new(Event::Applied, message)
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let read = logs[0].read().unwrap();
        let mut messages: Vec<&str> = read.iter().map(|r| r.message.as_str()).collect();
        messages.sort_unstable();
        let mut wanted: Vec<String> = (0..2)
            .flat_map(|run| (0..12).map(move |i| format!("run {run} record {i}")))
            .collect();
        wanted.sort();
        assert_eq!(messages, wanted);
    }

    fn record(event: Event, id: Option<&str>, commit: &str, object: &str) -> Record {
        Record {
            remediation: id.map(str::to_owned),
            commit: Some(commit.to_owned()),
            objects: vec![object.to_owned()],
            ..Record::new(event, format!("{event:?}"))
        }
    }

    #[test]
    fn a_signed_log_signs_every_record_and_reads_a_changed_or_unsigned_one_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::new(b"s3cret");
        let log = AuditLog::new(dir.path().join("audit.jsonl")).with_key(key.clone());
        let verified = Record {
            detail: serde_json::json!({"health": [{"object": "Deployment/shop/api"}]}),
            ..record(Event::Verified, Some("r1"), "c1", "Deployment/shop/api")
        };
        log.append(&verified).unwrap();
        log.append(&record(
            Event::Refused,
            Some("r1"),
            "c2",
            "Deployment/shop/api",
        ))
        .unwrap();
        let read = log.read().unwrap();
        assert!(
            read.iter().all(|r| r.seal(&key) == Seal::Signed),
            "{read:?}"
        );
        // Another key, a changed field, a forged or a missing signature.
        assert_eq!(read[0].seal(&SigningKey::new(b"other")), Seal::Broken);
        let changed = Record {
            commit: Some("c2".into()),
            ..read[0].clone()
        };
        assert_eq!(changed.seal(&key), Seal::Broken);
        let forged = Record {
            signature: Some("sha256=00".into()),
            ..record(Event::Verified, None, "c2", "Deployment/shop/api")
        };
        assert_eq!(forged.seal(&key), Seal::Broken);
        let unsigned = record(Event::Verified, None, "c3", "Deployment/shop/api");
        assert_eq!(unsigned.seal(&key), Seal::Unsigned);
        // A decision takes only what is signed; without a key, everything.
        std::fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap()
            .write_all(format!("{}\n", serde_json::to_string(&forged).unwrap()).as_bytes())
            .unwrap();
        let trusted = log.read_trusted().unwrap();
        assert_eq!(trusted.len(), 2);
        assert!(forged.trusted(None) && unsigned.trusted(None));
        // history marks them.
        let chains = history(&[read[0].clone(), forged, unsigned], None);
        let shown = text(&chains, Some(&key));
        assert_eq!(shown.matches("[BAD SIGNATURE").count(), 1, "{shown}");
        assert_eq!(shown.matches("[unsigned").count(), 1, "{shown}");
        assert!(!text(&chains, None).contains('['));
    }

    #[test]
    fn records_round_trip_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("a/audit.jsonl"));
        assert!(log.read().unwrap().is_empty());
        let first = record(Event::Applied, Some("r1"), "c1", "Deployment/shop/api");
        log.append(&first).unwrap();
        log.append(&record(
            Event::Verified,
            Some("r1"),
            "c1",
            "Deployment/shop/api",
        ))
        .unwrap();
        let read = log.read().unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0], first);
        std::fs::write(log.path(), "{\"time\": 1}\n").unwrap();
        let err = log.read().unwrap_err().to_string();
        assert!(err.ends_with("audit.jsonl:1: not an audit record: invalid type: integer `1`, expected a string at line 1 column 10"), "{err}");
    }

    #[test]
    fn history_groups_by_remediation_joins_reverts_and_filters_by_object() {
        let mut revert = record(Event::RolledBack, None, "c9", "Deployment/shop/api");
        revert.detail = serde_json::json!({"revert": "c9"});
        let mut reverted = record(Event::Failed, Some("r1"), "c1", "Deployment/shop/api");
        reverted.detail = serde_json::json!({"revert": "c9"});
        let records = [
            record(Event::Proposed, Some("r1"), "b1", "Deployment/shop/api"),
            record(Event::Applied, Some("r1"), "c1", "Deployment/shop/api"),
            reverted,
            revert,
            record(Event::Applied, None, "c2", "ConfigMap/shop/other"),
        ];
        let chains = history(&records, None);
        assert_eq!(chains.len(), 2);
        assert_eq!(chains[0].key, "r1");
        assert_eq!(chains[0].records.len(), 4);
        let only = history(&records, Some("deployment/shop/api"));
        assert_eq!(only.len(), 1);
        let text = self::text(&only, None);
        assert!(text.contains("proposed"), "{text}");
        assert!(text.contains("rolled-back"), "{text}");
        assert!(history(&records, Some("Deployment/shop/none")).is_empty());
    }
}
