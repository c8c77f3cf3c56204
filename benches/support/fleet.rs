//! A fleet for the `serve` benchmarks: a config repository of Deployments pushed to a bare
//! remote that the fake GitHub serves, the same Deployments on the test API server, and a
//! plain HTTP/1.1 client for the service's endpoints.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::TestCluster;
use testkit::github::FakeGitHub;

/// Deployment `app-i` of namespace `fleet` with `replicas` replicas.
pub fn deployment(i: usize, replicas: usize) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("app-{i}"), "namespace": "fleet"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": format!("app-{i}")}},
            "template": {"metadata": {"labels": {"app": format!("app-{i}")}},
                "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1.0",
                    "resources": {"requests": {"memory": "128Mi"}, "limits": {"memory": "256Mi"}}}]}}}})
}

/// Runs git in `dir`; its standard output, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The repository, its remote, the fake GitHub serving it and the cluster, with `workloads`
/// Deployments of `replicas` declared and created.
pub struct Fleet {
    /// The temporary directory holding both repositories, removed when dropped.
    pub _dir: tempfile::TempDir,
    pub work: PathBuf,
    pub github: FakeGitHub,
    pub cluster: TestCluster,
}

impl Fleet {
    /// `serve` is the `serve:` block of remediator.yaml (indented by two spaces).
    pub fn new(workloads: usize, replicas: usize, serve: &str) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let (work, bare) = (dir.path().join("work"), dir.path().join("bare.git"));
        std::fs::create_dir_all(work.join("apps")).unwrap();
        git(
            dir.path(),
            &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
        );
        let github = FakeGitHub::start("acme/config", &bare);
        for i in 0..workloads {
            let yaml = serde_saphyr::to_string(&deployment(i, replicas)).unwrap();
            std::fs::write(work.join(format!("apps/app-{i}.yaml")), yaml).unwrap();
        }
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "fleet"]);
        // The configuration in a commit of its own: the gate reads it from the commit before.
        std::fs::write(
            work.join("remediator.yaml"),
            format!(
                "forge:\n  type: github\n  repository: acme/config\n  apiUrl: {}\nserve:\n{serve}",
                github.url()
            ),
        )
        .unwrap();
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "remediator"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        git(&work, &["push", "-q", "origin", "main"]);
        let cluster = TestCluster::start();
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fleet"}});
        cluster.create(ns, "kubectl").unwrap();
        for i in 0..workloads {
            cluster.create(deployment(i, replicas), "kubectl").unwrap();
        }
        Fleet {
            _dir: dir,
            work,
            github,
            cluster,
        }
    }
}

impl Fleet {
    /// `remediator serve` on the fleet, listening on `address`, with `env`; its log goes to a
    /// file that [`Fleet::ready`] shows when it never becomes ready. The benches post no alerts.
    pub fn serve(&self, address: &str, env: &[(&str, &str)]) -> std::process::Child {
        let log = std::fs::File::create(self._dir.path().join("serve.log")).unwrap();
        Command::new(env!("CARGO_BIN_EXE_remediator"))
            .args([
                "serve",
                "--repo",
                self.work.to_str().unwrap(),
                "--listen",
                address,
            ])
            .args(["--kubeconfig", self.cluster.kubeconfig().to_str().unwrap()])
            .arg("--unauthenticated-alerts")
            .env("GITHUB_TOKEN", testkit::github::BOT_TOKEN)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// Waits for `/readyz`; how long it took. Panics with the service's log when it is not
    /// ready within two minutes.
    pub fn ready(&self, address: &str) -> Duration {
        let start = Instant::now();
        while !matches!(request(address, "/readyz", &[], ""), Some((200, _))) {
            if start.elapsed() > Duration::from_secs(120) {
                let log =
                    std::fs::read_to_string(self._dir.path().join("serve.log")).unwrap_or_default();
                panic!("serve was not ready within 120 s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        start.elapsed()
    }
}

/// A free address on the loopback.
pub fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("127.0.0.1:{}", listener.local_addr().unwrap().port())
}

/// One request (POST when `body` is not empty); the status and body, `None` when nothing
/// listens.
pub fn request(
    address: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(address).ok()?;
    let method = if body.is_empty() { "GET" } else { "POST" };
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    Some((
        status,
        answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned(),
    ))
}

/// The value of the first `/metrics` line starting with `line_start`; 0 when there is none.
pub fn metric(address: &str, line_start: &str) -> f64 {
    request(address, "/metrics", &[], "")
        .and_then(|(_, text)| {
            text.lines()
                .find(|l| l.starts_with(line_start))
                .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        })
        .unwrap_or(0.0)
}

/// Waits until `done`, at most `limit`; how long it took.
pub fn wait(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}
