//! Causes read from a failing container's log: the tail of the log of the container before its
//! restart is matched against known failures (a panic or uncaught exception, out of memory,
//! a refused or timed-out connection, DNS, TLS, missing configuration, permission, a port in
//! use, a binary for the wrong architecture, a failed migration), and the matching lines are
//! quoted as evidence. Deterministic: the same lines give the same cause. The log is redacted
//! before it reaches the snapshot ([`crate::redact`]). Pure.

use std::sync::LazyLock;

use regex::Regex;

use crate::model::{ContainerLog, Finding, FindingCode, Snapshot};

/// Lines quoted as evidence, at most.
const QUOTED: usize = 3;
/// Characters of a quoted line, at most.
const LINE: usize = 200;

/// A known cause of a container's exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The binary is for another CPU architecture.
    ExecFormat,
    /// The process ran out of memory by its own account (JVM, Go runtime, Node heap, Python).
    OutOfMemory,
    /// The port it listens on is taken.
    PortInUse,
    /// It writes to a read-only filesystem.
    ReadOnlyFilesystem,
    /// It may not read, write or run something.
    PermissionDenied,
    /// An environment variable or a configuration file it needs is missing.
    MissingConfig,
    /// A TLS handshake or certificate check failed.
    Tls,
    /// A name does not resolve.
    Dns,
    /// A connection to a dependency is refused.
    ConnectionRefused,
    /// A connection to a dependency times out.
    Timeout,
    /// A database migration failed.
    Migration,
    /// A panic or an uncaught exception.
    Panic,
}

impl Cause {
    /// The cause's name in findings and reports.
    pub fn name(self) -> &'static str {
        match self {
            Cause::ExecFormat => "exec-format-error",
            Cause::OutOfMemory => "out-of-memory",
            Cause::PortInUse => "port-in-use",
            Cause::ReadOnlyFilesystem => "read-only-filesystem",
            Cause::PermissionDenied => "permission-denied",
            Cause::MissingConfig => "missing-config",
            Cause::Tls => "tls",
            Cause::Dns => "dns",
            Cause::ConnectionRefused => "connection-refused",
            Cause::Timeout => "timeout",
            Cause::Migration => "migration-failed",
            Cause::Panic => "panic",
        }
    }

    /// What to do about it, in a sentence.
    pub fn advice(self) -> &'static str {
        match self {
            Cause::ExecFormat => {
                "the image was built for another CPU architecture than the node's: build or pull a multi-arch image, or pin the pod to matching nodes"
            }
            Cause::OutOfMemory => {
                "the process ran out of memory by its own account (a heap or runtime limit), which a restart does not cure: give it more memory, and check that its heap flag (-Xmx, --max-old-space-size, GOMEMLIMIT) follows the container limit"
            }
            Cause::PortInUse => {
                "another process in the pod (a sidecar, or a second listener of its own) holds the port: change one of the ports"
            }
            Cause::ReadOnlyFilesystem => {
                "it writes where the root filesystem is read-only: mount an emptyDir at that path rather than making the filesystem writable"
            }
            Cause::PermissionDenied => {
                "it runs as a user who may not use a file, directory or port it needs: fix the ownership (fsGroup) or the path, not by running as root"
            }
            Cause::MissingConfig => {
                "a variable or file it needs is not there: check the ConfigMap, Secret and volume it reads, and the names they use"
            }
            Cause::Tls => {
                "a certificate is not trusted, expired or for another name: check the CA bundle it is given and the certificate of the service it calls"
            }
            Cause::Dns => {
                "a name it calls does not resolve: check the Service's name and namespace, and that the Service exists"
            }
            Cause::ConnectionRefused => {
                "a dependency refuses connections: it is down, not ready yet, or at another address; check it first, then consider a retry on start"
            }
            Cause::Timeout => {
                "a dependency does not answer in time: check that it runs, and the NetworkPolicies between them"
            }
            Cause::Migration => {
                "a database migration failed, so every start fails the same way: fix the migration or the schema state (a dirty version) by hand"
            }
            Cause::Panic => {
                "the program crashed on a bug or an input it does not handle: the first frame shows where; a rollback to the previous image is the quick way out"
            }
        }
    }
}

/// A cause read from a log, with what in the log shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    /// The cause.
    pub cause: Cause,
    /// The address, variable, file or frame it names, when it names one.
    pub detail: Option<String>,
    /// The matching lines, trimmed; at most [`QUOTED`].
    pub lines: Vec<String>,
}

impl Diagnosis {
    /// `connection refused to db:5432`.
    pub fn summary(&self) -> String {
        let what = self.cause.name().replace('-', " ");
        match &self.detail {
            Some(detail) => format!("{what} ({detail})"),
            None => what,
        }
    }
}

struct Rule {
    cause: Cause,
    line: Regex,
    detail: Option<Regex>,
}

fn rule(cause: Cause, line: &str, detail: Option<&str>) -> Rule {
    Rule {
        cause,
        line: Regex::new(line).expect("a valid pattern"),
        detail: detail.map(|d| Regex::new(d).expect("a valid pattern")),
    }
}

/// The rules, most specific first: a line that shows several causes (a migration that failed
/// because the database refused the connection) is given the one nearest the root.
static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    // host:port, the host with a letter or a dot in it (not a time of day).
    let address = r"\[?([A-Za-z0-9_-]*[A-Za-z.][A-Za-z0-9._-]*\]?:[0-9]{1,5})\b";
    vec![
        rule(Cause::ExecFormat, r"exec format error", None),
        rule(
            Cause::OutOfMemory,
            r"java\.lang\.OutOfMemoryError|fatal error: runtime: out of memory|JavaScript heap out of memory|Allocation failed - process out of memory|^MemoryError\b|\bMemoryError: |std::bad_alloc|memory allocation of \d+ bytes failed",
            Some(
                r"(java\.lang\.OutOfMemoryError: .*|JavaScript heap out of memory|runtime: out of memory)",
            ),
        ),
        rule(
            Cause::PortInUse,
            r"(?i)address already in use|EADDRINUSE",
            Some(r":([0-9]{1,5})\b"),
        ),
        rule(
            Cause::ReadOnlyFilesystem,
            r"(?i)read-only file ?system|EROFS",
            Some(r"((?:/[\w.-]+)+)"),
        ),
        rule(
            Cause::PermissionDenied,
            r"(?i)permission denied|EACCES|operation not permitted|AccessDeniedException",
            Some(r"((?:/[\w.-]+)+)"),
        ),
        rule(
            Cause::MissingConfig,
            r#"(?i)(?:environment variable|env var|\benv\b)\s*["'`]?[A-Z_][A-Z0-9_]*["'`]?\s*(?:is\s+)?(?:not set|not defined|missing|required|must be set|is empty)|(?:missing|required)\s+(?:required\s+)?(?:environment variable|env var|config(?:uration)?(?: file)?)|KeyError: '[A-Z_][A-Z0-9_]*'|\b[A-Z][A-Z0-9_]{2,}\s+(?:is\s+)?(?:not set|must be set|is required)|(?:config|conf|\.ya?ml|\.json|\.toml|\.ini|\.properties).*(?:no such file or directory|not found|ENOENT)|FileNotFoundError|open .*: no such file or directory"#,
            Some(r#"([A-Z][A-Z0-9_]{2,}|(?:/[\w.-]+)+)"#),
        ),
        rule(
            Cause::Tls,
            r"(?i)x509:|certificate verify failed|CERTIFICATE_VERIFY_FAILED|SSLHandshakeException|PKIX path building failed|tls: |certificate has expired|unable to verify the first certificate|self[- ]signed certificate",
            None,
        ),
        rule(
            Cause::Dns,
            r"(?i)no such host|Name or service not known|Temporary failure in name resolution|getaddrinfo (?:ENOTFOUND|EAI_AGAIN)|UnknownHostException|could not resolve host|nodename nor servname",
            Some(
                r"(?i)(?:lookup |ENOTFOUND |EAI_AGAIN |UnknownHostException: |resolve host:? )([A-Za-z0-9._-]+)",
            ),
        ),
        rule(
            Cause::ConnectionRefused,
            r"(?i)connection refused|ECONNREFUSED",
            Some(address),
        ),
        rule(
            Cause::Timeout,
            r"(?i)i/o timeout|connection timed out|connect timed out|ETIMEDOUT|context deadline exceeded|timeout expired|SocketTimeoutException",
            Some(address),
        ),
        rule(
            Cause::Migration,
            r"(?i)migration.*(?:failed|error)|failed to (?:run )?migrat|dirty database version|flyway.*(?:failed|error|exception)|liquibase.*(?:failed|exception)|alembic.*error",
            None,
        ),
        rule(
            Cause::Panic,
            r#"^panic: |thread '.*' panicked at|^Traceback \(most recent call last\)|Exception in thread ".*"|^Uncaught |^\S*(?:Error|Exception): |unhandled (?:exception|rejection)|^fatal error: "#,
            None,
        ),
    ]
});

/// The cause the log's tail shows, if it shows a known one.
pub fn classify(text: &str) -> Option<Diagnosis> {
    let lines: Vec<&str> = text.lines().collect();
    for rule in RULES.iter() {
        let hits: Vec<usize> = (0..lines.len())
            .filter(|i| rule.line.is_match(lines[*i]))
            .collect();
        if hits.is_empty() {
            continue;
        }
        let detail = match rule.cause {
            Cause::Panic => first_frame(&lines, hits[0]),
            // The last match on the line: a timestamp or a logger's prefix comes first.
            _ => rule.detail.as_ref().and_then(|d| {
                hits.iter().rev().find_map(|i| {
                    let last = d.captures_iter(lines[*i]).last()?;
                    Some(last.get(1)?.as_str().to_owned())
                })
            }),
        };
        let mut quoted: Vec<usize> = hits.iter().rev().take(QUOTED).copied().collect();
        quoted.reverse();
        if rule.cause == Cause::Panic
            && let Some(frame) = frame_line(&lines, hits[0])
            && !quoted.contains(&frame)
        {
            quoted.truncate(QUOTED - 1);
            quoted.push(frame);
            quoted.sort_unstable();
        }
        return Some(Diagnosis {
            cause: rule.cause,
            detail,
            lines: quoted.iter().map(|i| trim(lines[*i])).collect(),
        });
    }
    None
}

/// The line of the first stack frame after a panic at `from`: Java's and Node's `at ...`,
/// Python's last `File "...", line N`, Go's first function after `goroutine N [running]:`,
/// Rust's location on the panic line itself.
fn frame_line(lines: &[&str], from: usize) -> Option<usize> {
    let after = || from + 1..lines.len().min(from + 40);
    if lines[from].starts_with("Traceback") {
        return after()
            .rev()
            .find(|i| lines[*i].trim_start().starts_with("File \""));
    }
    if let Some(go) = after().find(|i| lines[*i].starts_with("goroutine ")) {
        return (go + 1 < lines.len()).then_some(go + 1);
    }
    after().find(|i| lines[*i].trim_start().starts_with("at "))
}

/// The first frame, as text.
fn first_frame(lines: &[&str], from: usize) -> Option<String> {
    if let Some(at) = lines[from].find("panicked at ") {
        let location = lines[from][at + "panicked at ".len()..].trim_end_matches(':');
        return Some(location.trim().to_owned());
    }
    frame_line(lines, from).map(|i| {
        let frame = lines[i].trim();
        frame.strip_prefix("at ").unwrap_or(frame).to_owned()
    })
}

fn trim(line: &str) -> String {
    let line = line.trim_end();
    match line.char_indices().nth(LINE) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// The log the snapshot holds for a finding's container: the previous container's when there
/// is one (it is the one that failed), else the current one's.
fn log_of<'s>(snapshot: &'s Snapshot, finding: &Finding) -> Option<&'s ContainerLog> {
    let pod = &finding.subject;
    let container = finding.container.as_deref()?;
    let mut logs = snapshot.logs.iter().filter(|l| {
        pod.kind == "Pod"
            && Some(&l.namespace) == pod.namespace.as_ref()
            && l.pod == pod.name
            && l.container == container
    });
    let all: Vec<&ContainerLog> = logs.by_ref().collect();
    all.iter()
        .find(|l| l.previous)
        .or_else(|| all.first())
        .copied()
}

/// Adds what the logs show to the crash-loop findings of the pods whose logs the snapshot
/// holds: the cause, its advice and the lines. An out-of-memory in the log makes a crash loop a
/// memory problem (`crash-loop-oom`) even though the kill was in-process.
pub fn annotate(findings: &mut [Finding], snapshot: &Snapshot) {
    if snapshot.logs.is_empty() {
        return;
    }
    for finding in findings.iter_mut() {
        if !matches!(
            finding.code,
            FindingCode::CrashLoop | FindingCode::CrashLoopOom
        ) {
            continue;
        }
        let Some(log) = log_of(snapshot, finding) else {
            continue;
        };
        let Some(diagnosis) = classify(&log.text) else {
            finding.evidence.push(crate::model::Evidence {
                label: "log".into(),
                value: "no known cause in the last lines".into(),
            });
            continue;
        };
        let container = finding.container.clone().unwrap_or_default();
        let which = if log.previous {
            "before its last restart"
        } else {
            "now"
        };
        if diagnosis.cause == Cause::OutOfMemory && finding.code == FindingCode::CrashLoop {
            finding.code = FindingCode::CrashLoopOom;
            finding.explanation = format!(
                "Container `{container}` keeps exiting, and its log {which} says it ran out of memory ({}). \
                 The kill was in-process, not by the kernel, but it is a memory problem all the same: {}.",
                diagnosis.detail.as_deref().unwrap_or("out of memory"),
                Cause::OutOfMemory.advice()
            );
        } else {
            finding.explanation = format!(
                "{} Its log {which} shows the cause: {}; {}.",
                finding.explanation.replace(
                    " read the container's logs from before the restart (`kubectl logs --previous`) and follow the runbook.",
                    " the log shows why."
                ),
                diagnosis.summary(),
                diagnosis.cause.advice()
            );
        }
        finding.evidence.push(crate::model::Evidence {
            label: "cause (from log)".into(),
            value: diagnosis.summary(),
        });
        finding.evidence.push(crate::model::Evidence {
            label: "log".into(),
            value: diagnosis.lines.join("\n"),
        });
        finding.evidence.push(crate::model::Evidence {
            label: "runbook".into(),
            value: format!("docs/runbook.md#log-cause-{}", diagnosis.cause.name()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause(text: &str) -> (Cause, Option<String>, Vec<String>) {
        let d = classify(text).unwrap_or_else(|| panic!("no cause in {text:?}"));
        (d.cause, d.detail, d.lines)
    }

    #[test]
    fn each_known_cause_is_read_from_planted_lines() {
        let cases: &[(&str, Cause, Option<&str>)] = &[
            (
                "starting\npanic: runtime error: invalid memory address or nil pointer dereference\n\ngoroutine 1 [running]:\nmain.handler(0x0)\n\t/src/main.go:42 +0x1d\n",
                Cause::Panic,
                Some("main.handler(0x0)"),
            ),
            (
                "thread 'main' panicked at src/config.rs:17:9:\ncalled `Option::unwrap()` on a `None` value",
                Cause::Panic,
                Some("src/config.rs:17:9"),
            ),
            (
                "Exception in thread \"main\" java.lang.IllegalStateException: bad state\n\tat com.shop.App.start(App.java:31)\n\tat com.shop.App.main(App.java:12)",
                Cause::Panic,
                Some("com.shop.App.start(App.java:31)"),
            ),
            (
                "Traceback (most recent call last):\n  File \"/app/main.py\", line 3, in <module>\n    run()\n  File \"/app/run.py\", line 9, in run\n    1/0\nZeroDivisionError: division by zero",
                Cause::Panic,
                Some("File \"/app/run.py\", line 9, in run"),
            ),
            (
                "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space\n\tat java.util.Arrays.copyOf(Arrays.java:3332)",
                Cause::OutOfMemory,
                Some("java.lang.OutOfMemoryError: Java heap space"),
            ),
            (
                "fatal error: runtime: out of memory\n\nruntime stack:",
                Cause::OutOfMemory,
                Some("runtime: out of memory"),
            ),
            (
                "<--- Last few GCs --->\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
                Cause::OutOfMemory,
                Some("JavaScript heap out of memory"),
            ),
            (
                "level=error msg=\"cannot reach the database\" err=\"dial tcp 10.0.3.7:5432: connect: connection refused\"",
                Cause::ConnectionRefused,
                Some("10.0.3.7:5432"),
            ),
            (
                "Error: connect ECONNREFUSED 10.96.0.12:6379",
                Cause::ConnectionRefused,
                Some("10.96.0.12:6379"),
            ),
            (
                "failed to fetch: dial tcp 10.0.0.9:443: i/o timeout",
                Cause::Timeout,
                Some("10.0.0.9:443"),
            ),
            (
                "dial tcp: lookup postgres.shop.svc.cluster.local on 10.96.0.10:53: no such host",
                Cause::Dns,
                Some("postgres.shop.svc.cluster.local"),
            ),
            (
                "Get \"https://api.internal:8443/v1\": x509: certificate signed by unknown authority",
                Cause::Tls,
                None,
            ),
            (
                "config error: environment variable DATABASE_URL is not set",
                Cause::MissingConfig,
                Some("DATABASE_URL"),
            ),
            (
                "open /etc/shop/config.yaml: no such file or directory",
                Cause::MissingConfig,
                Some("/etc/shop/config.yaml"),
            ),
            (
                "mkdir /var/cache/nginx/client_temp: permission denied",
                Cause::PermissionDenied,
                Some("/var/cache/nginx/client_temp"),
            ),
            (
                "open /tmp/app.pid: read-only file system",
                Cause::ReadOnlyFilesystem,
                Some("/tmp/app.pid"),
            ),
            (
                "listen tcp :8080: bind: address already in use",
                Cause::PortInUse,
                Some("8080"),
            ),
            (
                "exec /usr/local/bin/server: exec format error",
                Cause::ExecFormat,
                None,
            ),
            (
                "Running migrations...\nError: Dirty database version 14. Fix and force version.\nmigration failed",
                Cause::Migration,
                None,
            ),
        ];
        for (text, want, detail) in cases {
            let (got, got_detail, lines) = cause(text);
            assert_eq!(got, *want, "{text}");
            assert_eq!(got_detail.as_deref(), *detail, "{text}");
            assert!(!lines.is_empty() && lines.len() <= QUOTED, "{lines:?}");
        }
    }

    #[test]
    fn the_cause_nearest_the_root_wins_and_ordinary_logs_have_none() {
        // A migration that fails because the database refuses: the refusal.
        let (got, detail, _) =
            cause("migration failed: dial tcp 10.0.3.7:5432: connect: connection refused");
        assert_eq!(got, Cause::ConnectionRefused);
        assert_eq!(detail.as_deref(), Some("10.0.3.7:5432"));
        assert_eq!(
            classify("listening on :8080\nGET /healthz 200\nshutting down on SIGTERM"),
            None
        );
    }

    #[test]
    fn quoted_lines_are_few_and_trimmed() {
        let long = format!("connection refused {}", "x".repeat(400));
        let text = (0..10)
            .map(|_| long.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let (_, _, lines) = cause(&text);
        assert_eq!(lines.len(), QUOTED);
        assert!(lines.iter().all(|l| l.chars().count() <= LINE + 1));
    }
}
