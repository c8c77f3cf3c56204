//! `remediator serve` watching a cluster of 10,000 pods (100 Deployments of 100 pods, on the test
//! API server, with the fake GitHub): its resident memory once the watches have listed everything
//! and a detection has run, its peak, and the time from one workload's failure to its pull
//! request. A bench command: `cargo bench --bench serve` prints the three figures.

#[path = "support/fleet.rs"]
mod fleet;

use std::time::{Duration, Instant};

use fleet::{Fleet, free_address, metric, wait};
use testkit::PodState;

const WORKLOADS: usize = 100;
const PODS: usize = 100;

fn status_kb(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let fleet = Fleet::new(
        WORKLOADS,
        PODS,
        "  debounceSeconds: 1\n  resyncSeconds: 3600\n",
    );
    let (github, cluster) = (&fleet.github, &fleet.cluster);
    let mut names = Vec::new();
    for i in 0..WORKLOADS {
        names.push(
            cluster
                .add_pods("fleet", &format!("app-{i}"), PODS, &PodState::Running)
                .unwrap(),
        );
    }
    let address = free_address();
    let mut child = fleet.serve(&address, &[]);
    let detections = |address: &str| {
        metric(
            address,
            "remediator_operation_duration_seconds_count{operation=\"detect\"}",
        )
    };
    let synced = fleet.ready(&address);
    wait("the first detection", Duration::from_secs(120), || {
        detections(&address) >= 1.0
    });
    let rss = status_kb(child.id(), "VmRSS:");
    let failed = Instant::now();
    for pod in &names[7][..2] {
        cluster
            .set_container_state("fleet", pod, "app", &PodState::oom_killed(6))
            .unwrap();
    }
    wait("the pull request", Duration::from_secs(120), || {
        !github.pulls().is_empty()
    });
    let to_pull = failed.elapsed();
    let peak = status_kb(child.id(), "VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "serve watching {} pods in {WORKLOADS} Deployments:",
        WORKLOADS * PODS
    );
    println!("  ready after            {synced:?}");
    println!(
        "  resident memory        {} MB (after the first detection)",
        rss / 1024
    );
    println!("  peak resident memory   {} MB", peak / 1024);
    println!("  failure to pull request {to_pull:?}");
    assert_eq!(github.pulls().len(), 1);
}
