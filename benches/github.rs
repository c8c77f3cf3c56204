//! `remediator serve`'s GitHub traffic in steady state: 100 open remediation pull requests, and
//! one hour compressed, as 12 resyncs (the default five minutes apart) with 20 webhook
//! deliveries among them (8 reviews, 6 pull request pushes checked, 6 pushes to main
//! reconciled), against the fake GitHub. It prints the requests sent, the `304 Not Modified`
//! answers among them, and the requests that count against the rate limit. A bench command:
//! `cargo bench --bench github`.

#[path = "support/fleet.rs"]
mod fleet;

use std::time::Duration;

use fleet::{Fleet, free_address, git, metric, request, wait};
use serde_json::{Value, json};
use testkit::PodState;
use testkit::github::BOT_USER;

const WORKLOADS: usize = 100;
const RESYNCS: usize = 12;
const SECRET: &str = "bench-webhook-secret";

fn deliver(address: &str, event: &str, id: usize, body: &Value) {
    let body = body.to_string();
    let signature = remediator::serve::webhook::sign(SECRET.as_bytes(), body.as_bytes());
    let delivery = format!("bench-{id}");
    let answer = request(
        address,
        "/webhooks/github",
        &[
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", &delivery),
            ("X-Hub-Signature-256", &signature),
            ("Content-Type", "application/json"),
        ],
        &body,
    );
    assert!(
        matches!(answer, Some((202 | 200, _))),
        "{event}: {answer:?}"
    );
}

fn main() {
    let fleet = Fleet::new(
        WORKLOADS,
        1,
        "  debounceSeconds: 1\n  resyncSeconds: 2\n  githubWebhookSecret: {env: BENCH_WEBHOOK_SECRET}\n",
    );
    let (work, github, cluster) = (&fleet.work, &fleet.github, &fleet.cluster);
    for i in 0..WORKLOADS {
        cluster
            .add_pods("fleet", &format!("app-{i}"), 1, &PodState::oom_killed(6))
            .unwrap();
    }
    let address = free_address();
    let mut child = fleet.serve(&address, &[("BENCH_WEBHOOK_SECRET", SECRET)]);
    // Each detection publishes every proposal again: 100 pull requests "updated".
    let detections = |address: &str| {
        metric(address, "remediator_proposals_total{value=\"updated\"}") / WORKLOADS as f64
    };
    fleet.ready(&address);
    wait(
        "a pull request per workload",
        Duration::from_secs(300),
        || github.pulls().iter().filter(|p| p.state == "open").count() >= WORKLOADS,
    );
    // Steady state: one more resync after the last pull request opened.
    let settled = detections(&address);
    wait("a resync", Duration::from_secs(60), || {
        detections(&address) >= settled + 1.0
    });
    let (sent_before, used_before) = (github.requests().len(), github.rate_used(BOT_USER));
    let start = detections(&address);
    let pulls = github.pulls();
    let mut delivered = 0;
    for lap in 0..RESYNCS {
        wait("a resync", Duration::from_secs(60), || {
            detections(&address) >= start + lap as f64 + 1.0
        });
        // 20 deliveries over the 12 resyncs.
        let due = (lap + 1) * 20 / RESYNCS;
        while delivered < due {
            let pull = &pulls[delivered * 5 % pulls.len()];
            match delivered % 10 {
                0..=3 => deliver(
                    &address,
                    "pull_request_review",
                    delivered,
                    &json!({"action": "submitted", "review": {"state": "approved"},
                        "pull_request": {"number": pull.number}}),
                ),
                4..=6 => {
                    let head = github.branch_head(&pull.head).unwrap();
                    deliver(
                        &address,
                        "pull_request",
                        delivered,
                        &json!({"action": "synchronize", "pull_request": {"number": pull.number,
                            "head": {"sha": head, "ref": pull.head}, "base": {"ref": "main"}}}),
                    );
                }
                _ => {
                    std::fs::write(work.join("NOTES.md"), format!("note {delivered}\n")).unwrap();
                    git(work, &["add", "-A"]);
                    git(work, &["commit", "-q", "-m", "notes"]);
                    git(work, &["push", "-q", "origin", "main"]);
                    let after = git(work, &["rev-parse", "HEAD"]);
                    deliver(
                        &address,
                        "push",
                        delivered,
                        &json!({"ref": "refs/heads/main", "after": after}),
                    );
                }
            }
            delivered += 1;
        }
    }
    // The last deliveries' jobs finish.
    wait("the queue", Duration::from_secs(60), || {
        metric(&address, "remediator_queue_depth") == 0.0
    });
    std::thread::sleep(Duration::from_secs(2));
    let requests = &github.requests()[sent_before..];
    let not_modified = requests.iter().filter(|r| r.status == Some(304)).count();
    let counted = github.rate_used(BOT_USER) - used_before;
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(fleet._dir.path().join("serve.log")).unwrap_or_default();
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(failed.is_empty(), "jobs failed:\n{}", failed.join("\n"));
    let mut kinds: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for r in requests {
        let path: String = r
            .path
            .split('/')
            .map(|s| {
                if s.chars().all(|c| c.is_ascii_hexdigit()) && !s.is_empty() {
                    "N"
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        *kinds.entry(format!("{} {path}", r.method)).or_default() += 1;
    }
    println!(
        "serve with {WORKLOADS} open pull requests, one hour: {RESYNCS} resyncs and {delivered} webhook deliveries:"
    );
    println!("  requests to GitHub     {}", requests.len());
    println!("  of them 304s           {not_modified}");
    println!("  counted by rate limit  {counted}");
    for (kind, count) in kinds {
        println!("    {count:>4}  {kind}");
    }
    assert_eq!(
        github.pulls().iter().filter(|p| p.state == "open").count(),
        WORKLOADS
    );
}
