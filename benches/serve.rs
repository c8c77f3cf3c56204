//! `remediator serve` watching a cluster of 10,000 pods (100 Deployments of 100 pods, on the test
//! API server, with the fake GitHub): its resident memory once the watches have listed everything
//! and a detection has run, its peak, and the time from one workload's failure to its pull
//! request. A bench command: `cargo bench --bench serve` prints the three figures.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::github::{BOT_TOKEN, FakeGitHub};
use testkit::{PodState, TestCluster};

const WORKLOADS: usize = 100;
const PODS: usize = 100;

fn deployment(i: usize) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("app-{i}"), "namespace": "fleet"},
        "spec": {"replicas": PODS, "selector": {"matchLabels": {"app": format!("app-{i}")}},
            "template": {"metadata": {"labels": {"app": format!("app-{i}")}},
                "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1.0",
                    "resources": {"requests": {"memory": "128Mi"}, "limits": {"memory": "256Mi"}}}]}}}})
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

fn get(address: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(address).ok()?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    Some((
        status,
        answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned(),
    ))
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn wait(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = (dir.path().join("work"), dir.path().join("bare.git"));
    std::fs::create_dir_all(work.join("apps")).unwrap();
    git(
        dir.path(),
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    let github = FakeGitHub::start("acme/config", &bare);
    for i in 0..WORKLOADS {
        let yaml = serde_saphyr::to_string(&deployment(i)).unwrap();
        std::fs::write(work.join(format!("apps/app-{i}.yaml")), yaml).unwrap();
    }
    std::fs::write(
        work.join("remediator.yaml"),
        format!(
            "forge:\n  type: github\n  repository: acme/config\n  apiUrl: {}\nserve:\n  debounceSeconds: 1\n  resyncSeconds: 3600\n",
            github.url()
        ),
    )
    .unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "fleet"]);
    git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
    git(&work, &["push", "-q", "origin", "main"]);
    let cluster = TestCluster::start();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fleet"}});
    cluster.create(ns, "kubectl").unwrap();
    let mut names = Vec::new();
    for i in 0..WORKLOADS {
        cluster.create(deployment(i), "kubectl").unwrap();
        names.push(
            cluster
                .add_pods("fleet", &format!("app-{i}"), PODS, &PodState::Running)
                .unwrap(),
        );
    }
    let address = format!(
        "127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_remediator"))
        .args([
            "serve",
            "--repo",
            work.to_str().unwrap(),
            "--listen",
            &address,
        ])
        .args(["--kubeconfig", cluster.kubeconfig().to_str().unwrap()])
        .env("GITHUB_TOKEN", BOT_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let detections = |address: &str| -> f64 {
        get(address, "/metrics")
            .and_then(|(_, text)| {
                text.lines()
                    .find(|l| {
                        l.starts_with(
                            "remediator_request_duration_seconds_count{target=\"kubernetes\"}",
                        )
                    })
                    .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            })
            .unwrap_or(0.0)
    };
    let synced = wait("ready", Duration::from_secs(120), || {
        matches!(get(&address, "/readyz"), Some((200, _)))
    });
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
