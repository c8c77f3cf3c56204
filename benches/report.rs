//! Report and log-diagnosis speed. The weekly report over a 10,000-pod snapshot (what is open
//! now) and an audit trail of 2,000 pull requests over four weeks, from records to Markdown; the
//! capacity and cluster-side security reports over the same snapshot; classifying one failing
//! container's 100 log lines; and diagnosis with logs against the test API server: 20 failing
//! pods, each log read, redacted and classified, per failing pod. Targets: under 2 s each.

use criterion::{Criterion, criterion_group, criterion_main};
use remediator::audit::{Record, history};
use remediator::cluster::{Cluster, KubeCluster, SnapshotOptions};
use remediator::detect::{DetectOptions, detect};
use remediator::report::{capacity, security, weekly};
use remediator::views::Templates;
use serde_json::json;
use testkit::{PodState, TestCluster};

mod support;

/// Pull requests in the trail.
const PULLS: usize = 2_000;
/// Failing pods of the live diagnosis.
const FAILING: usize = 20;

fn trail(now: k8s_openapi::jiff::Timestamp) -> Vec<Record> {
    let codes = [
        "crash-loop-oom",
        "high-cpu",
        "over-provisioned",
        "pvc-filling-up",
    ];
    let mut records = Vec::new();
    for i in 0..PULLS {
        let opened = now - k8s_openapi::jiff::SignedDuration::from_mins(20 * i as i64);
        let first = opened - k8s_openapi::jiff::SignedDuration::from_secs(90 + i as i64 % 300);
        let record = |event: &str, minutes: i64, detail: serde_json::Value| {
            let time = opened + k8s_openapi::jiff::SignedDuration::from_mins(minutes);
            serde_json::from_value::<Record>(json!({"time": time.to_string(), "event": event,
                "remediation": format!("r{i}"), "objects": [format!("Deployment/team-{}/app-{}", i % 50, i % 400)],
                "message": event, "detail": detail}))
            .unwrap()
        };
        records.push(record(
            "proposed",
            0,
            json!({"finding": codes[i % 4], "firstSeen": first.to_string(), "opened": true, "action": "raise-memory"}),
        ));
        records.push(record("applied", 30, json!(null)));
        records.push(record(
            if i % 10 == 0 {
                "rolled-back"
            } else {
                "verified"
            },
            35,
            json!(null),
        ));
    }
    records.sort_by(|a, b| a.time.cmp(&b.time));
    records
}

fn log(i: usize) -> String {
    let mut lines: Vec<String> = (0..97)
        .map(|n| {
            format!(
                "2026-11-20T11:{:02}:{:02}Z INFO request {n} served in 12ms user=u{i}",
                n / 60,
                n % 60
            )
        })
        .collect();
    lines.push(format!(
        "2026-11-20T11:59:58Z WARN retrying with token=abc{i}def0123456789"
    ));
    lines.push(
        "2026-11-20T11:59:59Z ERROR dial tcp 10.0.3.7:5432: connect: connection refused".into(),
    );
    lines.push("exit status 1".into());
    lines.join("\n")
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let snapshot_dir = dir.path().join("snapshot");
    support::snapshot(&snapshot_dir);
    let snapshot = remediator::snapshot::load(&snapshot_dir).unwrap().snapshot;
    assert_eq!(snapshot.pods.len(), support::FILES * support::PODS_PER_APP);
    let now = "2026-11-20T12:00:00Z".parse().unwrap();
    let options = DetectOptions::at(now);
    let templates = Templates::load(None).unwrap();
    let records = trail(now);
    let mut group = c.benchmark_group("report");
    group.sample_size(10);
    group.bench_function(
        "weekly: 10,000 pods and 2,000 pull requests, to Markdown",
        |b| {
            b.iter(|| {
                let mut view = weekly::weekly(&history(&records, None), now);
                view.open_now = weekly::open_now(&snapshot, &options);
                templates.report("weekly", &view).unwrap().len()
            })
        },
    );
    group.bench_function("capacity: 10,000 pods, to Markdown", |b| {
        b.iter(|| {
            let view = capacity::capacity(&snapshot, &options);
            templates.report("capacity", &view).unwrap().len()
        })
    });
    group.bench_function("security: the cluster side of 10,000 pods", |b| {
        let mut rules = security::rules(None).unwrap();
        b.iter(|| {
            security::scan_snapshot(&mut rules, &snapshot)
                .unwrap()
                .len()
        })
    });
    group.bench_function("logs: redact and classify 100 lines", |b| {
        let text = log(7);
        b.iter(|| {
            let redacted = remediator::redact::redact(&text);
            remediator::detect::logs::classify(&redacted).map(|d| d.cause)
        })
    });
    // Live: FAILING crash-looping pods, each with its previous log, on the test API server.
    let cluster = TestCluster::start();
    cluster
        .create(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
            "bench",
        )
        .unwrap();
    cluster
        .create(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"},
                "spec": {"replicas": FAILING, "selector": {"matchLabels": {"app": "api"}},
                    "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "api", "image": "api:1"}]}}}}),
            "bench",
        )
        .unwrap();
    let crashing = PodState::CrashLoop {
        reason: "Error".into(),
        exit_code: 1,
        restarts: 6,
    };
    let pods = cluster.add_pods("shop", "api", FAILING, &crashing).unwrap();
    for (i, pod) in pods.iter().enumerate() {
        cluster.set_log("shop", pod, "api", true, &log(i));
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The client's buffer starts on the runtime it is made in.
    let live = runtime.block_on(async { KubeCluster::new(cluster.client()) });
    let snapshot_options = SnapshotOptions {
        metrics: false,
        ..SnapshotOptions::default()
    };
    group.bench_function(
        "diagnosis with logs: 20 failing pods on the test API server",
        |b| {
            b.iter(|| {
                let loaded = runtime.block_on(live.snapshot(&snapshot_options)).unwrap();
                assert_eq!(loaded.snapshot.logs.len(), FAILING);
                let findings = detect(
                    &loaded.snapshot,
                    &DetectOptions::at(k8s_openapi::jiff::Timestamp::now()),
                );
                assert!(
                    findings
                        .iter()
                        .any(|f| f.fact("cause (from log)").is_some())
                );
                findings.len()
            })
        },
    );
    group.finish();
    let started = std::time::Instant::now();
    let loaded = runtime.block_on(live.snapshot(&snapshot_options)).unwrap();
    detect(
        &loaded.snapshot,
        &DetectOptions::at(k8s_openapi::jiff::Timestamp::now()),
    );
    println!(
        "diagnosis with logs: {:.1} ms per failing pod ({FAILING} pods)",
        started.elapsed().as_secs_f64() * 1000.0 / FAILING as f64
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
