//! The fault matrix: every call kind a clean run made, read from the servers' request logs,
//! gets each fault kind in turn on its first request.

use std::time::Duration;

use testkit::github::FakeGitHub;
use testkit::{Fault, FaultKind, TestCluster};

/// The requests logged so far by the test API server (when there is one) and the fake GitHub.
pub fn logged(cluster: Option<&TestCluster>, github: &FakeGitHub) -> Calls {
    let api = cluster.map(TestCluster::requests).unwrap_or_default();
    [(false, api), (true, github.requests())]
        .into_iter()
        .flat_map(|(github, log)| {
            log.into_iter()
                .map(move |r| (github, r.method, r.path, r.query))
        })
        .collect()
}

/// A call kind of a clean run: the server, the method, the path with commit hashes as `*`,
/// and whether it is a dry-run.
pub type CallKind = (bool, String, String, bool);

pub fn call_kind(github: bool, method: &str, path: &str, query: &str) -> CallKind {
    let pattern: Vec<&str> = path
        .split('/')
        .map(|segment| {
            if segment.len() == 40 && segment.chars().all(|c| c.is_ascii_hexdigit()) {
                "*"
            } else {
                segment
            }
        })
        .collect();
    (
        github,
        method.to_owned(),
        pattern.join("/"),
        query.contains("dryRun"),
    )
}

/// The requests a run made, the API server's then GitHub's: (github, method, path, query).
pub type Calls = Vec<(bool, String, String, String)>;

/// Each request's bound in the disturbed runs (`REMEDIATOR_REQUEST_TIMEOUT`, seconds): the
/// delay fault goes past it.
pub const REQUEST_TIMEOUT: (&str, &str) = ("REMEDIATOR_REQUEST_TIMEOUT", "3");

/// The fault kinds of the matrices: 500, 503 with `Retry-After`, 429, GitHub's secondary rate
/// limit, a dropped connection, and an answer that comes after the client's timeout (the server
/// still does what was asked: a write the client gave up on has happened).
pub fn fault_kinds() -> [FaultKind; 6] {
    [
        FaultKind::Status(500),
        FaultKind::Unavailable { retry_after: 1 },
        FaultKind::TooManyRequests { retry_after: 1 },
        FaultKind::SecondaryRateLimit { retry_after: 1 },
        FaultKind::Drop,
        FaultKind::Delay(Duration::from_secs(4)),
    ]
}

/// Runs `disturbed` once per (call kind of `calls`, fault kind): with the fault on the first
/// request of that kind. `disturbed` checks the end itself and says whether the first run
/// stopped short, and what it said. Each call kind gets one fault kind in turn, or every one
/// with `every` or `REMEDIATOR_FAULT_MATRIX=full`. Prints the matrix; returns the call kinds.
pub fn fault_matrix(
    name: &str,
    calls: &Calls,
    every: bool,
    disturbed: impl Fn(&str, bool, Fault) -> (bool, String) + Sync,
) -> usize {
    let mut kinds: Vec<(CallKind, usize)> = Vec::new();
    for (at, (github, method, path, query)) in calls.iter().enumerate() {
        let kind = call_kind(*github, method, path, query);
        if kinds.iter().any(|(k, _)| *k == kind) {
            continue;
        }
        // The rule matches by method and path pattern: let the earlier requests it would
        // match through.
        let skip = calls[..at]
            .iter()
            .filter(|(g, m, p, q)| {
                let earlier = call_kind(*g, m, p, q);
                (earlier.0, &earlier.1, &earlier.2) == (kind.0, &kind.1, &kind.2)
            })
            .count();
        kinds.push((kind, skip));
    }
    let faults = fault_kinds();
    let full = every || std::env::var("REMEDIATOR_FAULT_MATRIX").is_ok_and(|v| v == "full");
    let mut runs: Vec<(CallKind, usize, FaultKind)> = Vec::new();
    for (i, (kind, skip)) in kinds.iter().enumerate() {
        if full {
            runs.extend(faults.iter().map(|f| (kind.clone(), *skip, f.clone())));
        } else {
            runs.push((kind.clone(), *skip, faults[i % faults.len()].clone()));
        }
    }
    let disturbed = &disturbed;
    let outcomes: Vec<(String, bool)> = std::thread::scope(|scope| {
        runs.chunks(4)
            .flat_map(|chunk| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|((github, method, pattern, _), skip, fault)| {
                        scope.spawn(move || {
                            let label = format!(
                                "{fault:?} on {} {method} {pattern} (after {skip})",
                                if *github { "GitHub" } else { "the API server" }
                            );
                            let fault = Fault::new(method, pattern, fault.clone()).after(*skip);
                            let fired = fault.fired();
                            let (stopped, first) = disturbed(&label, *github, fault);
                            // A pattern that no longer matches any request would pass as
                            // "retried": every fault must have hit its request.
                            assert!(
                                fired.load(std::sync::atomic::Ordering::SeqCst) >= 1,
                                "{label}: the fault never fired"
                            );
                            let said = first
                                .lines()
                                .find(|l| l.contains("error:"))
                                .map(|l| format!(": {l}"))
                                .unwrap_or_default();
                            (format!("{label}{said}"), stopped)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    });
    let stopped = outcomes.iter().filter(|(_, s)| *s).count();
    println!(
        "{name} fault matrix: {} call kinds, {} runs, {} retried to the end, {} stopped and finished by a rerun",
        kinds.len(),
        outcomes.len(),
        outcomes.len() - stopped,
        stopped
    );
    for (label, stopped) in &outcomes {
        println!(
            "  {}: {label}",
            if *stopped { "stopped" } else { "retried" }
        );
    }
    kinds.len()
}

/// `text` without what differs from one world to the next: times (the pods' own, and how long
/// ago they were) and commit ids, each as `T` or `C`.
pub fn steady(text: &str) -> String {
    let time =
        regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z|(\d+[smhd])+ ago").unwrap();
    let commit = regex::Regex::new(r"\b[0-9a-f]{40}\b|\b[0-9a-f]{12}\b").unwrap();
    commit
        .replace_all(&time.replace_all(text, "T"), "C")
        .into_owned()
}
