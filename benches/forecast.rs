//! Usage for 2,000 containers over 14 days: fetched from the fake Prometheus (40 namespaces of
//! 50 Deployments, a point every 10 minutes, queried 8 at a time) with the time and the resident
//! memory it took, then analysed without I/O (usage findings and forecasts on the 2-minute
//! history Prometheus gives by default, 10,080 points a series), which must stay under a second.
//! A bench command: `cargo bench --bench forecast` prints the figures.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use remediator::cluster::prometheus::Prometheus;
use remediator::config::PrometheusSettings;
use remediator::detect::{DetectOptions, detect};
use remediator::model::{ContainerUsage, Snapshot, UsageHistory, WorkloadRef};
use serde_json::json;
use testkit::prometheus::FakePrometheus;

const NAMESPACES: usize = 40;
const PER_NAMESPACE: usize = 50;
const DAY: f64 = 86_400.0;

fn status_kb(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// A day's shape for workload `i`: a daily sine with its own phase and level.
fn cpu(i: usize, t: f64) -> f64 {
    let phase = (t.rem_euclid(DAY) / DAY + i as f64 * 0.01) * std::f64::consts::TAU;
    0.2 + 0.1 * (i % 7) as f64 + 0.15 * phase.sin()
}

fn workloads() -> (Vec<Deployment>, Vec<HorizontalPodAutoscaler>) {
    let mut deployments = Vec::new();
    let mut hpas = Vec::new();
    for n in 0..NAMESPACES {
        for w in 0..PER_NAMESPACE {
            let (ns, name) = (format!("team-{n}"), format!("app-{w}"));
            deployments.push(serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                        {"name": "app", "image": "app:1", "resources": {
                            "requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}}]}}}}))
                .unwrap());
            if w % 5 == 0 {
                hpas.push(serde_json::from_value(json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                        "maxReplicas": 4, "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70}}}]}}))
                    .unwrap());
            }
        }
    }
    (deployments, hpas)
}

fn fetch(now: f64) -> (Duration, u64, usize) {
    let prometheus = FakePrometheus::start();
    let points = |value: &dyn Fn(f64) -> f64| -> Vec<(f64, f64)> {
        (0..2016)
            .map(|k| {
                let t = now - 14.0 * DAY + k as f64 * 600.0;
                (t, value(t))
            })
            .collect()
    };
    for n in 0..NAMESPACES {
        let ns = format!("team-{n}");
        for w in 0..PER_NAMESPACE {
            let (set, pod) = (format!("app-{w}-5c6b"), format!("app-{w}-5c6b-a"));
            let i = n * PER_NAMESPACE + w;
            prometheus.add(
                "kube_pod_owner",
                &[
                    ("namespace", &ns),
                    ("pod", &pod),
                    ("owner_kind", "ReplicaSet"),
                    ("owner_name", &set),
                ],
                vec![(now - 60.0, 1.0)],
            );
            prometheus.add(
                "kube_replicaset_owner",
                &[
                    ("namespace", &ns),
                    ("replicaset", &set),
                    ("owner_kind", "Deployment"),
                    ("owner_name", &format!("app-{w}")),
                ],
                vec![(now - 60.0, 1.0)],
            );
            let labels = [
                ("namespace", ns.as_str()),
                ("pod", pod.as_str()),
                ("container", "app"),
            ];
            prometheus.add(
                "container_cpu_usage_seconds_total",
                &labels,
                points(&|t| cpu(i, t)),
            );
            prometheus.add(
                "container_memory_working_set_bytes",
                &labels,
                points(&|_| 300.0 * 1048576.0),
            );
        }
    }
    let settings: PrometheusSettings = serde_json::from_value(json!({
        "url": prometheus.url(), "stepSeconds": 600, "concurrency": 8}))
    .unwrap();
    let client = Prometheus::new(settings).unwrap();
    let namespaces: Vec<String> = (0..NAMESPACES).map(|n| format!("team-{n}")).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = status_kb("VmRSS:");
    let start = Instant::now();
    let history = runtime
        .block_on(client.usage(&namespaces, now as u64))
        .unwrap();
    let took = start.elapsed();
    let grown = status_kb("VmRSS:").saturating_sub(before);
    (took, grown, history.containers.len())
}

fn main() {
    let now = (k8s_openapi::jiff::Timestamp::now().as_second() / 600 * 600) as f64;
    let (fetched, memory, containers) = fetch(now);
    let (deployments, hpas) = workloads();
    let containers_usage: Vec<ContainerUsage> = (0..NAMESPACES * PER_NAMESPACE)
        .map(|i| {
            let times: Vec<f64> = (0..10_080)
                .map(|k| now - 14.0 * DAY + k as f64 * 120.0)
                .collect();
            ContainerUsage {
                namespace: format!("team-{}", i / PER_NAMESPACE),
                workload: WorkloadRef {
                    kind: "Deployment".into(),
                    name: format!("app-{}", i % PER_NAMESPACE),
                },
                container: "app".into(),
                cpu: times.iter().map(|t| (*t, cpu(i, *t))).collect(),
                memory: times
                    .iter()
                    .map(|t| (*t, 300.0 * 1048576.0 + (i % 3) as f64 * t.rem_euclid(DAY)))
                    .collect(),
                replicas: times.iter().map(|t| (*t, 3.0)).collect(),
                oom_killed_pods: 0,
            }
        })
        .collect();
    let snapshot = Snapshot {
        deployments,
        hpas,
        usage: UsageHistory {
            containers: containers_usage,
            ..UsageHistory::default()
        },
        ..Snapshot::default()
    };
    let options = DetectOptions::at(k8s_openapi::jiff::Timestamp::from_second(now as i64).unwrap());
    let mut runs = Vec::new();
    let mut findings = 0;
    for _ in 0..5 {
        let start = Instant::now();
        findings = detect(&snapshot, &options).len();
        runs.push(start.elapsed());
    }
    runs.sort();
    println!("usage for {containers} containers over 14 days:");
    println!(
        "  fetched from the fake Prometheus  {fetched:?} ({} MB more resident)",
        memory / 1024
    );
    println!(
        "  analysed (2,000 series of 10,080 points, median of 5)  {:?}, {findings} findings",
        runs[2]
    );
    assert!(
        runs[2] < Duration::from_secs(1),
        "analysis took {:?}",
        runs[2]
    );
}
