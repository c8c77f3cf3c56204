//! remediator's staged apply against `kubectl apply --server-side`, in one run, on the same
//! 1,000 ConfigMap files and the same test API server: remediator indexes the directory and
//! applies it (a read of the live object, then a write, 16 at a time); kubectl applies the
//! directory as it would in a CI job. Each round uses fresh namespaces, so both create every
//! object. Prints both rates and the ratio. A plain program (not criterion): one kubectl round
//! takes seconds, and the numbers that matter are the two rates side by side.
//!
//! `cargo bench --bench apply [-- ROUNDS]`

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use remediator::cluster::{ApplyOptions, Cluster, KubeCluster};
use remediator::manifests::{IndexOptions, RepoIndex};
use remediator::render::{self, Renderer};
use serde_json::{Value, json};
use testkit::TestCluster;

const OBJECTS: usize = 1_000;

fn write_files(dir: &Path) {
    for i in 0..OBJECTS {
        let text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings-{i:04}\n  labels:\n    app: bench\ndata:\n  key: value-{i}\n  other: constant\n"
        );
        std::fs::write(dir.join(format!("settings-{i:04}.yaml")), text).expect("write");
    }
}

fn ours(runtime: &tokio::runtime::Runtime, kube: &KubeCluster, dir: &Path, ns: &str) -> Duration {
    let started = Instant::now();
    let index = RepoIndex::build(dir, &IndexOptions::default()).expect("index");
    let renderer = Renderer::from_path(Default::default());
    let objects: Vec<Value> = render::objects(&index, &renderer, |_, _| true)
        .objects
        .into_iter()
        .map(|o| {
            let mut value = o.value;
            value["metadata"]["namespace"] = json!(ns);
            value
        })
        .collect();
    assert_eq!(objects.len(), OBJECTS);
    let changes = runtime
        .block_on(kube.apply(&objects, &ApplyOptions::default()))
        .expect("apply");
    assert_eq!(changes.entries.len(), OBJECTS);
    started.elapsed()
}

fn kubectl(kubeconfig: &Path, dir: &Path, ns: &str) -> Option<Duration> {
    let started = Instant::now();
    let out = Command::new("kubectl")
        .args([
            "apply",
            "--server-side",
            "--field-manager",
            "bench",
            "-n",
            ns,
        ])
        .arg("-f")
        .arg(dir)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()
        .ok()?;
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "kubectl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        OBJECTS
    );
    Some(elapsed)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn rate(time: Duration) -> f64 {
    OBJECTS as f64 / time.as_secs_f64()
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let cluster = TestCluster::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let kube = KubeCluster::new(runtime.block_on(async { cluster.client() }));
    let dir = tempfile::tempdir().expect("temporary directory");
    write_files(dir.path());
    let (mut our_times, mut their_times) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for tool in ["ours", "kubectl"] {
            let ns = format!("bench-{tool}-{round}");
            let namespace =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            cluster.create(namespace, "bench").expect("namespace");
        }
        our_times.push(ours(
            &runtime,
            &kube,
            dir.path(),
            &format!("bench-ours-{round}"),
        ));
        match kubectl(
            cluster.kubeconfig(),
            dir.path(),
            &format!("bench-kubectl-{round}"),
        ) {
            Some(time) => their_times.push(time),
            None => println!("note: kubectl is not installed; only remediator was measured"),
        }
    }
    let ours = median(our_times);
    println!(
        "remediator apply: {OBJECTS} ConfigMaps in {:.3} s, {:.0} objects/s (median of {rounds})",
        ours.as_secs_f64(),
        rate(ours)
    );
    if !their_times.is_empty() {
        let theirs = median(their_times);
        println!(
            "kubectl apply --server-side: {OBJECTS} ConfigMaps in {:.3} s, {:.0} objects/s (median of {rounds})",
            theirs.as_secs_f64(),
            rate(theirs)
        );
        println!(
            "ratio: remediator is {:.1}x kubectl",
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
}
