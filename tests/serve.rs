//! `remediator serve` as a process, against the test API server, the fake GitHub and a real Git
//! remote: webhooks are authenticated before anything acts on them, a crash loop becomes one
//! pull request within seconds of the failure, a restart re-adopts it, and an Alertmanager alert
//! opens a pull request that its resolution closes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::world::{World, text};
use serde_json::{Value, json};
use testkit::PodState;
use testkit::github::BOT_TOKEN;

const SECRET: &str = "webhook-s3cret";
const TOKEN: &str = "alert-t0ken";

/// A running `serve`, killed when dropped.
struct Serve {
    child: Child,
    address: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The world with `serve:` in its configuration, pushed to main: dev is the environment the
/// service runs in, and the debounce is the default.
fn world() -> World {
    let world = World::new(None);
    let file = world.remote.work.join("remediator.yaml");
    let config = std::fs::read_to_string(&file).unwrap();
    let serve = "serve:\n  environment: dev\n  resyncSeconds: 3600\n  leaseSeconds: 3\n  githubWebhookSecret: {env: TEST_WEBHOOK_SECRET}\n  alertmanagerToken: {env: TEST_ALERT_TOKEN}\n";
    std::fs::write(&file, format!("{config}{serve}")).unwrap();
    common::commit_all(&world.remote.work, "Run remediator as a service");
    common::push(&world.remote.work, "refs/heads/main:refs/heads/main");
    world
}

fn start(world: &World) -> Serve {
    let serve = spawn(world, &[], Stdio::inherit());
    wait_ready(&serve);
    serve
}

/// `serve` with `extra` arguments, its standard error to `stderr`.
fn spawn(world: &World, extra: &[&str], stderr: Stdio) -> Serve {
    let address = format!("127.0.0.1:{}", free_port());
    // The service keeps a clone of its own, in its cache, as it does in the cluster: the work
    // clone stays the test's.
    let origin = format!("file://{}", world.remote.bare.display());
    let child = Command::new(env!("CARGO_BIN_EXE_remediator"))
        .args(["serve", "--repo", &origin, "--listen", &address])
        .args(["--kubeconfig", world.cluster.kubeconfig().to_str().unwrap()])
        .args(["--policies", world.policies.to_str().unwrap()])
        .args(extra)
        .env("GITHUB_TOKEN", BOT_TOKEN)
        .env("TEST_WEBHOOK_SECRET", SECRET)
        .env("TEST_ALERT_TOKEN", TOKEN)
        .env("XDG_CACHE_HOME", world.remote.dir.path().join("cache"))
        .env_remove("GITHUB_API_URL")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    Serve { child, address }
}

fn wait_ready(serve: &Serve) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((200, _)) = request(serve, "GET", "/readyz", &[], b"") {
            return;
        }
        assert!(Instant::now() < deadline, "serve did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One HTTP/1.1 request; the status and body, `None` when nothing listens.
fn request(
    serve: &Serve,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(&serve.address).ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        serve.address,
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    // Both senders post JSON; a test of another content type names its own.
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    Some((status, body))
}

fn sign(body: &[u8]) -> String {
    remediator::serve::webhook::sign(SECRET.as_bytes(), body)
}

fn open_pulls(world: &World) -> Vec<testkit::github::Pull> {
    world
        .github
        .pulls()
        .into_iter()
        .filter(|p| p.state == "open")
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

fn metric(serve: &Serve, line_start: &str) -> Option<f64> {
    let (_, text) = request(serve, "GET", "/metrics", &[], b"")?;
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn without_an_alertmanager_token_serve_starts_only_when_told_to() {
    let world = World::new(None);
    let file = world.remote.work.join("remediator.yaml");
    let config = std::fs::read_to_string(&file).unwrap();
    let serve = "serve:\n  environment: dev\n  resyncSeconds: 3600\n  githubWebhookSecret: {env: TEST_WEBHOOK_SECRET}\n";
    std::fs::write(&file, format!("{config}{serve}")).unwrap();
    common::commit_all(&world.remote.work, "Run remediator without an alert token");
    common::push(&world.remote.work, "refs/heads/main:refs/heads/main");
    let mut refused = spawn(&world, &[], Stdio::piped());
    let status = refused.child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(refused.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("needs `serve.alertmanagerToken`")
            && stderr.contains("--unauthenticated-alerts"),
        "{stderr}"
    );
    let open = spawn(&world, &["--unauthenticated-alerts"], Stdio::inherit());
    wait_ready(&open);
}

#[test]
fn webhook_deliveries_that_are_not_authentic_are_refused_and_nothing_acts() {
    let world = world();
    let serve = start(&world);
    assert_eq!(
        request(&serve, "GET", "/healthz", &[], b"").map(|r| r.0),
        Some(200)
    );
    let push =
        json!({"ref": "refs/heads/main", "after": "0000000000000000000000000000000000000000"})
            .to_string();
    let body = push.as_bytes();
    let good = sign(body);
    let event = ("X-GitHub-Event", "push");
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [u8]);
    let cases: [Case; 3] = [
        ("unsigned", vec![event, ("X-GitHub-Delivery", "d1")], body),
        (
            "wrong signature",
            vec![
                event,
                ("X-GitHub-Delivery", "d2"),
                ("X-Hub-Signature-256", "sha256=00ff"),
            ],
            body,
        ),
        (
            "truncated body",
            vec![
                event,
                ("X-GitHub-Delivery", "d3"),
                ("X-Hub-Signature-256", &good),
            ],
            &body[..body.len() - 2],
        ),
    ];
    for (what, headers, body) in cases {
        let answer = request(&serve, "POST", "/webhooks/github", &headers, body);
        assert_eq!(answer.map(|a| a.0), Some(401), "{what}");
    }
    // An authentic delivery of an event that asks for nothing, then its replay.
    let ping = br#"{"zen":"Keep it logically awesome."}"#;
    let ping_signature = sign(ping);
    let headers = [
        ("X-GitHub-Event", "issues"),
        ("X-GitHub-Delivery", "d4"),
        ("X-Hub-Signature-256", ping_signature.as_str()),
    ];
    let first = request(&serve, "POST", "/webhooks/github", &headers, ping);
    assert_eq!(first.map(|a| a.0), Some(202));
    let replay = request(&serve, "POST", "/webhooks/github", &headers, ping);
    assert_eq!(replay.map(|a| a.0), Some(401), "a replayed delivery");
    assert_eq!(
        metric(
            &serve,
            "remediator_webhook_deliveries_total{source=\"github\",result=\"refused\"}"
        ),
        Some(4.0)
    );
    // A webhook set to GitHub's form encoding gets 415, saying what to set.
    let form = format!("payload={}", push.replace('"', "%22"));
    let form_signature = sign(form.as_bytes());
    let headers = [
        event,
        ("X-GitHub-Delivery", "d5"),
        ("X-Hub-Signature-256", form_signature.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let answer = request(
        &serve,
        "POST",
        "/webhooks/github",
        &headers,
        form.as_bytes(),
    )
    .unwrap();
    assert_eq!(answer.0, 415);
    assert!(
        answer
            .1
            .contains("set the webhook's Content type to application/json"),
        "{}",
        answer.1
    );
    // Alertmanager without its token.
    let alert = request(&serve, "POST", "/webhooks/alertmanager", &[], b"{}");
    assert_eq!(alert.map(|a| a.0), Some(401));
    assert!(world.github.pulls().is_empty(), "nothing acted");
    assert_eq!(world.events().len(), 0, "nothing was audited");
}

#[test]
fn a_crash_loop_becomes_one_pull_request_within_seconds_and_a_restart_adopts_it() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_crash_loop_becomes_one_pull_request_within_seconds_and_a_restart_adopts_it",
    ) {
        return;
    }
    let world = world();
    let applied = world.run(&["apply", "--path", "clusters/dev"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let serve = start(&world);
    // Every metric is there before anything happened, at zero.
    for family in [
        "remediator_proposals_total{value=\"failed\"}",
        "remediator_operation_errors_total{operation=\"publish\"}",
        "remediator_operation_errors_total{operation=\"fetch\"}",
        "remediator_reconciles_total{value=\"rolled-back\"}",
        "remediator_findings_total{value=\"crash-loop-oom\"}",
    ] {
        assert_eq!(metric(&serve, family), Some(0.0), "{family}");
    }
    let failed = Instant::now();
    let pods = fail_api(&world);
    let took = wait_for("the pull request", Duration::from_secs(10), || {
        !open_pulls(&world).is_empty()
    });
    let since_failure = failed.elapsed();
    println!(
        "failure to pull request with the default debounce: {since_failure:?} (seen {took:?} after the pods failed)"
    );
    assert!(since_failure < Duration::from_secs(10));
    let pulls = open_pulls(&world);
    assert_eq!(pulls.len(), 1, "one pull request for one problem");
    assert!(
        pulls[0].head.starts_with("remediator/crash-loop-oom/"),
        "{}",
        pulls[0].head
    );
    // More changes to the same pods: the same pull request, updated, never a second.
    world
        .cluster
        .set_container_state("shop-dev", &pods[0], "api", &PodState::oom_killed(7))
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(world.github.pulls().len(), 1);
    assert_eq!(
        metric(&serve, "remediator_proposals_total{value=\"opened\"}"),
        Some(1.0)
    );
    // GitHub's rate limit as data: what its headers said, and the requests sent.
    assert_eq!(
        metric(&serve, "remediator_github_rate_limit{resource=\"core\"}"),
        Some(5000.0)
    );
    let remaining = metric(
        &serve,
        "remediator_github_rate_remaining{resource=\"core\"}",
    );
    let used = world.github.rate_used(testkit::github::BOT_USER) as f64;
    assert!(
        remaining.is_some_and(|r| r < 5000.0 && r >= 5000.0 - used),
        "{remaining:?} after {used} counted"
    );
    assert!(metric(&serve, "remediator_github_requests_total").is_some_and(|n| n >= used));
    // A restart re-adopts the open pull request.
    drop(serve);
    let serve = start(&world);
    // The killed replica never gave its lease back: the new one takes it once it lapses.
    wait_for("the restarted detection", Duration::from_secs(15), || {
        metric(&serve, "remediator_proposals_total{value=\"updated\"}").is_some_and(|n| n >= 1.0)
    });
    assert_eq!(world.github.pulls().len(), 1, "re-adopted, not duplicated");
}

#[test]
fn an_alert_opens_a_pull_request_and_its_resolution_closes_it() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "an_alert_opens_a_pull_request_and_its_resolution_closes_it",
    ) {
        return;
    }
    let world = world();
    let applied = world.run(&["apply", "--path", "clusters/dev"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    // A pod whose one OOM kill is an hour old: detection alone sees nothing to do.
    let pods = world
        .cluster
        .add_pods("shop-dev", "api", 1, &PodState::Running)
        .unwrap();
    let pod = &pods[0];
    let mut live = world.cluster.object("Pod", "shop-dev", pod).unwrap();
    let status = &mut live["status"]["containerStatuses"][0];
    status["restartCount"] = json!(1);
    status["lastState"] = json!({"terminated": {"reason": "OOMKilled", "exitCode": 137,
        "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:10:00Z"}});
    world
        .cluster
        .set_status("Pod", "shop-dev", pod, live["status"].clone())
        .unwrap();
    let serve = start(&world);
    std::thread::sleep(Duration::from_secs(2));
    assert!(world.github.pulls().is_empty(), "nothing without the alert");
    let payload = |status: &str| -> Vec<u8> {
        json!({"version": "4", "groupKey": "{}:{alertname=\"KubePodCrashLooping\"}",
            "status": status, "receiver": "remediator", "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://alertmanager",
            "alerts": [{"status": status, "labels": {"alertname": "KubePodCrashLooping",
                "namespace": "shop-dev", "pod": pod, "container": "api", "severity": "warning"},
                "annotations": {"description": "Pod is in waiting state (reason: CrashLoopBackOff)."},
                "startsAt": "2026-11-26T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus", "fingerprint": "a1b2c3"}]})
        .to_string()
        .into_bytes()
    };
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let firing = request(
        &serve,
        "POST",
        "/webhooks/alertmanager",
        &auth,
        &payload("firing"),
    );
    assert_eq!(firing.map(|a| a.0), Some(200));
    // Alertmanager repeats the notification: still one finding.
    let again = request(
        &serve,
        "POST",
        "/webhooks/alertmanager",
        &auth,
        &payload("firing"),
    );
    assert_eq!(again.map(|a| a.0), Some(200));
    wait_for("the alert's pull request", Duration::from_secs(10), || {
        !open_pulls(&world).is_empty()
    });
    std::thread::sleep(Duration::from_secs(2));
    let pulls = world.github.pulls();
    assert_eq!(pulls.len(), 1, "one finding, one pull request");
    assert!(
        pulls[0].body.contains("KubePodCrashLooping"),
        "{}",
        pulls[0].body
    );
    let resolved = request(
        &serve,
        "POST",
        "/webhooks/alertmanager",
        &auth,
        &payload("resolved"),
    );
    assert_eq!(resolved.map(|a| a.0), Some(200));
    wait_for("the pull request closed", Duration::from_secs(10), || {
        open_pulls(&world).is_empty()
    });
    let comments = world.github.comments(pulls[0].number);
    assert!(
        comments.iter().any(|c| c.body.contains("no longer seen")),
        "{comments:?}"
    );
}

/// The api's pods, running, then their api container OOM-killed (the log shipper beside it
/// keeps running): one problem.
fn fail_api(world: &World) -> Vec<String> {
    let pods = world
        .cluster
        .add_pods("shop-dev", "api", 2, &PodState::Running)
        .unwrap();
    for pod in &pods {
        world
            .cluster
            .set_container_state("shop-dev", pod, "api", &PodState::oom_killed(6))
            .unwrap();
    }
    pods
}

/// How many times metrics.k8s.io has been listed.
fn metric_reads(world: &World) -> usize {
    world
        .cluster
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/apis/metrics.k8s.io/") && r.status == Some(200))
        .count()
}

#[test]
fn sustained_cpu_sampled_from_metrics_server_becomes_a_high_cpu_pull_request() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "sustained_cpu_sampled_from_metrics_server_becomes_a_high_cpu_pull_request",
    ) {
        return;
    }
    let world = world();
    let file = world.remote.work.join("remediator.yaml");
    let config = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{config}  metricsIntervalSeconds: 1\n")).unwrap();
    common::commit_all(&world.remote.work, "Sample metrics every second");
    common::push(&world.remote.work, "refs/heads/main:refs/heads/main");
    let applied = world.run(&["apply", "--path", "clusters/dev"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    world.cluster.serve_metrics();
    let pods = world
        .cluster
        .add_pods("shop-dev", "api", 2, &PodState::Running)
        .unwrap();
    let _serve = start(&world);
    // metrics-server's samples of the last five minutes, one per read: the api container at
    // 450m of its 500m request; the sidecar idle.
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut high_cpu_opened = false;
    for ago in [280, 200, 120, 40, 0] {
        let at = (now - k8s_openapi::jiff::SignedDuration::from_secs(ago)).to_string();
        for pod in &pods {
            let usage = [("api", "450m", "100Mi"), ("log-shipper", "5m", "10Mi")];
            world
                .cluster
                .set_pod_metrics("shop-dev", pod, &at, &usage)
                .unwrap();
        }
        let read = metric_reads(&world);
        wait_for("a metrics sample", Duration::from_secs(10), || {
            metric_reads(&world) > read
        });
        if ago > 60 {
            // Under four minutes of high use is not yet sustained.
            std::thread::sleep(Duration::from_millis(1500));
            assert!(
                open_pulls(&world)
                    .iter()
                    .all(|p| !p.head.starts_with("remediator/high-cpu/")),
                "high-cpu after {}s of samples",
                280 - ago
            );
        } else if !high_cpu_opened {
            high_cpu_opened = wait_for_pull(&world, "remediator/high-cpu/");
        }
    }
    assert!(high_cpu_opened, "no high-cpu pull request");
    let pulls = open_pulls(&world);
    let high: Vec<_> = pulls
        .iter()
        .filter(|p| p.head.starts_with("remediator/high-cpu/"))
        .collect();
    assert_eq!(high.len(), 1, "{pulls:?}");
    assert!(high[0].head.contains("api"), "{}", high[0].head);
}

/// Whether a pull request whose branch starts with `prefix` opens within 10 s.
fn wait_for_pull(world: &World, prefix: &str) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if open_pulls(world).iter().any(|p| p.head.starts_with(prefix)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The api's crash loop, proposed by `serve`: its one pull request, approved by alice.
fn proposed(world: &World) -> u64 {
    let applied = world.run(&["apply", "--path", "clusters/dev"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    fail_api(world);
    wait_for("the pull request", Duration::from_secs(10), || {
        !open_pulls(world).is_empty()
    });
    let number = open_pulls(world)[0].number;
    world
        .github
        .review(number, "alice", testkit::github::ReviewState::Approved);
    number
}

/// A signed push of `after` to main.
fn push_delivery(serve: &Serve, after: &str, id: &str) -> Option<u16> {
    let body = json!({"ref": "refs/heads/main", "after": after, "deleted": false}).to_string();
    let signature = sign(body.as_bytes());
    let headers = [
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", id),
        ("X-Hub-Signature-256", signature.as_str()),
    ];
    request(serve, "POST", "/webhooks/github", &headers, body.as_bytes()).map(|a| a.0)
}

/// Merges pull request `number`, delivers the push of its merge as delivery `id`, and waits for
/// the outcome comment of a healthy apply; the merge commit.
fn merged_to_health(world: &World, serve: &Serve, number: u64, id: &str) -> String {
    let merge = world.github.merge(number);
    world.cluster.follow_spec(Duration::from_millis(200));
    assert_eq!(push_delivery(serve, &merge, id), Some(202));
    wait_for("the outcome comment", Duration::from_secs(30), || {
        world
            .github
            .comments(number)
            .iter()
            .any(|c| c.body.contains("applied and healthy"))
    });
    merge
}

fn memory_limit(world: &World) -> Value {
    let api = world
        .cluster
        .object("Deployment", "shop-dev", "api")
        .unwrap();
    api["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"].clone()
}

#[test]
fn a_signed_push_of_the_merge_is_applied_checked_for_health_and_commented() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_signed_push_of_the_merge_is_applied_checked_for_health_and_commented",
    ) {
        return;
    }
    let world = world();
    let serve = start(&world);
    let number = proposed(&world);
    let before = memory_limit(&world);
    let merge = merged_to_health(&world, &serve, number, "merge-1");
    assert_ne!(memory_limit(&world), before, "the memory limit was raised");
    // The comment is posted before the run ends and is counted.
    wait_for(
        "the healthy reconcile counted",
        Duration::from_secs(10),
        || metric(&serve, "remediator_reconciles_total{value=\"healthy\"}") == Some(1.0),
    );
    // The same push delivered again is a replay; a new delivery of it finds it done.
    assert_eq!(push_delivery(&serve, &merge, "merge-1"), Some(401));
    assert_eq!(push_delivery(&serve, &merge, "merge-2"), Some(202));
    wait_for("the second delivery", Duration::from_secs(10), || {
        metric(
            &serve,
            "remediator_reconciles_total{value=\"already-done\"}",
        )
        .is_some_and(|n| n >= 1.0)
    });
    assert_eq!(world.writes("/deployments/api"), 2, "applied once");
    // The second lap: the clone follows main, so the same container failing again gives a
    // second pull request, raising from the merged value.
    let merged = memory_limit(&world);
    let merged = merged.as_str().unwrap();
    fail_api(&world);
    wait_for("the second pull request", Duration::from_secs(15), || {
        open_pulls(&world).iter().any(|p| p.number != number)
    });
    let second = open_pulls(&world);
    let second = second.iter().find(|p| p.number != number).unwrap();
    assert!(
        second.title.contains(&format!("from {merged} to ")),
        "{}",
        second.title
    );
    assert_eq!(
        metric(&serve, "remediator_proposals_total{value=\"failed\"}"),
        Some(0.0)
    );
    // Delivery ids outlive the process: after a restart the first delivery is still a replay.
    drop(serve);
    let serve = start(&world);
    assert_eq!(push_delivery(&serve, &merge, "merge-1"), Some(401));
}

#[test]
fn a_fetch_that_fails_makes_the_service_not_ready_and_says_why() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_fetch_that_fails_makes_the_service_not_ready_and_says_why",
    ) {
        return;
    }
    let world = world();
    let applied = world.run(&["apply", "--path", "clusters/dev"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let serve = start(&world);
    wait_for("a first fetch", Duration::from_secs(15), || {
        metric(&serve, "remediator_clone_fresh") == Some(1.0)
    });
    // The remote goes away: the next job cannot fetch the base branch.
    let gone = world.remote.bare.with_extension("gone");
    std::fs::rename(&world.remote.bare, &gone).unwrap();
    let pods = fail_api(&world);
    wait_for("not ready", Duration::from_secs(15), || {
        request(&serve, "GET", "/readyz", &[], b"")
            .is_some_and(|(status, body)| status == 503 && body.contains("the clone is stale"))
    });
    let (_, why) = request(&serve, "GET", "/readyz", &[], b"").unwrap();
    assert!(why.contains("cannot fetch main from origin"), "{why}");
    assert_eq!(metric(&serve, "remediator_clone_fresh"), Some(0.0));
    assert!(
        metric(
            &serve,
            "remediator_operation_errors_total{operation=\"fetch\"}"
        )
        .is_some_and(|n| n >= 1.0)
    );
    // It comes back: the next job fetches, and the service is ready again.
    std::fs::rename(&gone, &world.remote.bare).unwrap();
    world
        .cluster
        .set_container_state("shop-dev", &pods[0], "api", &PodState::oom_killed(8))
        .unwrap();
    wait_for("ready again", Duration::from_secs(15), || {
        request(&serve, "GET", "/readyz", &[], b"").is_some_and(|(status, _)| status == 200)
    });
}

#[test]
fn a_merge_the_gate_refused_is_named_and_a_raise_never_compounds_on_it() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_merge_the_gate_refused_is_named_and_a_raise_never_compounds_on_it",
    ) {
        return;
    }
    let world = world();
    let serve = start(&world);
    let applied = world.run(&["apply", "--path", "clusters/dev"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    // A person raises the api's limit to 600Mi straight on main, unreviewed: the gate refuses
    // it, and 512Mi keeps running.
    let file = world.remote.work.join("apps/api/deployment.yaml");
    let manifest = std::fs::read_to_string(&file).unwrap();
    let raised = manifest.replace(
        "memory: 512Mi # equal to the request",
        "memory: 600Mi # equal to the request",
    );
    assert_ne!(raised, manifest);
    std::fs::write(&file, raised).unwrap();
    common::commit_all(&world.remote.work, "Give the api more memory");
    common::push(&world.remote.work, "refs/heads/main:refs/heads/main");
    let head = world.github.branch_head("main").unwrap();
    assert_eq!(push_delivery(&serve, &head, "push-1"), Some(202));
    wait_for("the refusal", Duration::from_secs(30), || {
        metric(&serve, "remediator_gate_refusals_total") == Some(1.0)
    });
    assert_eq!(memory_limit(&world), "512Mi");
    // The api is OOM-killed: the raise starts from the 512Mi that runs (× 1.5), not from the
    // repository's unapplied 600Mi, and the title names the gap.
    fail_api(&world);
    wait_for("the pull request", Duration::from_secs(15), || {
        !open_pulls(&world).is_empty()
    });
    let pull = &open_pulls(&world)[0];
    assert!(
        pull.title.contains("from 512Mi (running; the repository's"),
        "{}",
        pull.title
    );
    assert!(
        pull.body
            .contains("from 512Mi (running; the repository's 600Mi is not applied) to 768Mi"),
        "{}",
        pull.body
    );
    // The same input through `propose --forge none --out` gives the same pull request, word for
    // word, dry-run on the environment's cluster included.
    let out = world.remote.dir.path().join("bodies");
    let proposed = world.run(&[
        "propose",
        "--env",
        "dev",
        "--forge",
        "none",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(proposed.status.code(), Some(0), "{}", text(&proposed));
    let file = out.join(format!(
        "{}.md",
        pull.head
            .trim_start_matches("remediator/")
            .replace('/', "_")
    ));
    let cli = std::fs::read_to_string(&file).unwrap();
    let served = format!("# {}\n\n{}", pull.title, pull.body);
    assert!(served.contains("Server-side dry-run"), "{served}");
    assert_eq!(without_times(&served), without_times(&cli));
}

/// `text` with its RFC 3339 times and durations in seconds made `<time>`: what differs between
/// two runs of the same input.
fn without_times(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '+')))
            .unwrap_or(tail.len());
        let token = &tail[..end];
        let is_time = token.len() >= 20 && token.as_bytes()[4] == b'-' && token.contains('T');
        out.push_str(if is_time { "<time>" } else { token });
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn a_remediation_healthy_in_dev_for_the_soak_is_proposed_for_prod() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_remediation_healthy_in_dev_for_the_soak_is_proposed_for_prod",
    ) {
        return;
    }
    let world = world();
    let file = world.remote.work.join("remediator.yaml");
    let config = std::fs::read_to_string(&file).unwrap();
    let promotion = "promotion:\n  order: [dev, prod]\n  soakSeconds: 2\n";
    std::fs::write(&file, format!("{config}{promotion}")).unwrap();
    common::commit_all(&world.remote.work, "Promote from dev to prod");
    common::push(&world.remote.work, "refs/heads/main:refs/heads/main");
    let serve = start(&world);
    let number = proposed(&world);
    merged_to_health(&world, &serve, number, "merge-1");
    let healthy = Instant::now();
    let promotion = || {
        world
            .github
            .pulls()
            .into_iter()
            .find(|p| p.head.starts_with("remediator/promote-prod/"))
    };
    wait_for("the promotion to prod", Duration::from_secs(30), || {
        promotion().is_some()
    });
    assert!(
        healthy.elapsed() >= Duration::from_millis(1500),
        "not before the soak: {:?}",
        healthy.elapsed()
    );
    let pull = promotion().unwrap();
    let body = world.github.pull(pull.number).body;
    for wanted in [
        "Promotion from dev to prod",
        "### The remedy, made again for prod",
        "No cluster of prod is reachable from this run",
    ] {
        assert!(body.contains(wanted), "{wanted:?} not in:\n{body}");
    }
    // The value proven in dev is what the branch writes into prod's own files, and only there.
    let raised = memory_limit(&world);
    let raised = raised.as_str().unwrap();
    let repo = git2::Repository::open(&world.remote.bare).unwrap();
    let tree = |name: &str| repo.find_reference(name).unwrap().peel_to_tree().unwrap();
    let (main, branch) = (
        tree("refs/heads/main"),
        tree(&format!("refs/heads/{}", pull.head)),
    );
    let diff = repo
        .diff_tree_to_tree(Some(&main), Some(&branch), None)
        .unwrap();
    let mut carried = Vec::new();
    diff.print(git2::DiffFormat::Patch, |delta, _, line| {
        let file = delta
            .new_file()
            .path()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = String::from_utf8_lossy(line.content()).into_owned();
        if line.origin() == '+' {
            carried.push((file, text));
        }
        true
    })
    .unwrap();
    assert!(!carried.is_empty(), "the promotion branch changes nothing");
    assert!(
        carried.iter().all(|(file, _)| file.contains("prod")),
        "{carried:?}"
    );
    assert!(
        carried
            .iter()
            .any(|(_, line)| line.contains("memory") && line.contains(raised)),
        "{raised} is not carried into prod: {carried:?}"
    );
}

#[test]
fn a_merge_refused_for_want_of_approval_is_applied_once_a_review_approves_it() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_merge_refused_for_want_of_approval_is_applied_once_a_review_approves_it",
    ) {
        return;
    }
    let world = world();
    let serve = start(&world);
    let applied = world.run(&["apply", "--path", "clusters/dev"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    fail_api(&world);
    wait_for("the pull request", Duration::from_secs(10), || {
        !open_pulls(&world).is_empty()
    });
    let number = open_pulls(&world)[0].number;
    let before = memory_limit(&world);
    // Merged with no review: the gate refuses it and nothing is applied.
    let merge = world.github.merge(number);
    world.cluster.follow_spec(Duration::from_millis(200));
    assert_eq!(push_delivery(&serve, &merge, "merge-1"), Some(202));
    wait_for("the refusal", Duration::from_secs(30), || {
        metric(&serve, "remediator_gate_refusals_total") == Some(1.0)
    });
    assert_eq!(memory_limit(&world), before, "refused, not applied");
    // A review that does not approve changes nothing.
    let review = |id: &str| {
        let body = json!({"action": "submitted", "pull_request": {"number": number}}).to_string();
        signed(&serve, "pull_request_review", id, &body)
    };
    world
        .github
        .review(number, "mallory", testkit::github::ReviewState::Commented);
    assert_eq!(review("review-1"), Some(202));
    wait_for("the second refusal", Duration::from_secs(30), || {
        metric(&serve, "remediator_gate_refusals_total") == Some(2.0)
    });
    assert_eq!(memory_limit(&world), before);
    // alice approves: the gate is weighed again and the change applied.
    world
        .github
        .review(number, "alice", testkit::github::ReviewState::Approved);
    assert_eq!(review("review-2"), Some(202));
    wait_for("the apply", Duration::from_secs(30), || {
        metric(&serve, "remediator_reconciles_total{value=\"healthy\"}") == Some(1.0)
    });
    assert_ne!(memory_limit(&world), before, "applied once approved");
}

#[test]
fn a_merge_whose_rollout_fails_is_reverted_and_the_revert_applied() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_merge_whose_rollout_fails_is_reverted_and_the_revert_applied",
    ) {
        return;
    }
    let world = world();
    let serve = start(&world);
    let number = proposed(&world);
    let merge = world.github.merge(number);
    let before = memory_limit(&world);
    let main_before = world.github.branch_head("main").unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let failed_at = std::sync::Mutex::new(None::<Instant>);
    std::thread::scope(|scope| {
        // The new pods never come up: the rollout fails as soon as the change is applied.
        scope.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let api = world
                    .cluster
                    .object("Deployment", "shop-dev", "api")
                    .unwrap();
                if api["metadata"]["generation"] != api["status"]["observedGeneration"]
                    && memory_limit(&world) != before
                {
                    world
                        .cluster
                        .set_rollout("Deployment", "shop-dev", "api", testkit::Rollout::Failed)
                        .unwrap();
                    failed_at.lock().unwrap().get_or_insert_with(Instant::now);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        assert_eq!(push_delivery(&serve, &merge, "merge-1"), Some(202));
        wait_for("the revert applied", Duration::from_secs(60), || {
            memory_limit(&world) == before && failed_at.lock().unwrap().is_some()
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let failed = failed_at.lock().unwrap().unwrap();
    let took = failed.elapsed();
    println!("failure shown to revert applied: {took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    let main_after = world.github.branch_head("main").unwrap();
    assert_ne!(main_after, main_before, "a revert commit is on main");
    wait_for("the rollback counted", Duration::from_secs(10), || {
        metric(&serve, "remediator_rollbacks_total").is_some_and(|n| n >= 1.0)
    });
}

#[test]
fn a_pull_request_event_is_checked_and_gets_its_one_comment() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_pull_request_event_is_checked_and_gets_its_one_comment",
    ) {
        return;
    }
    let world = world();
    let serve = start(&world);
    // A change on a branch, pushed, and its pull request.
    let main = common::branch_head(&world.remote.work, "main").unwrap();
    let file = world.remote.work.join("apps/api/deployment.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replacen("revisionHistoryLimit: 5", "revisionHistoryLimit: 6", 1),
    )
    .unwrap();
    let head = common::commit_all(&world.remote.work, "api: one more revision").to_string();
    common::push(&world.remote.work, "HEAD:refs/heads/more-api");
    let repo = git2::Repository::open(&world.remote.work).unwrap();
    repo.reset(
        &repo.find_object(main, None).unwrap(),
        git2::ResetType::Hard,
        None,
    )
    .unwrap();
    let number = world
        .github
        .open_pull("more-api", "main", "More api", "dev");
    // The fake, as GitHub, publishes the head under refs/pull/N/head: the check reads it there.
    let event = |action: &str, sha: &str| {
        json!({"action": action, "number": number, "pull_request": {"number": number,
            "base": {"ref": "main"}, "head": {"ref": "more-api", "sha": sha}}})
        .to_string()
    };
    // An event whose head is not refs/pull/N/head is refused: no comment.
    let stale = main.to_string();
    assert_eq!(
        signed(&serve, "pull_request", "p0", &event("opened", &stale)),
        Some(202)
    );
    wait_for("the refused check", Duration::from_secs(20), || {
        metric(
            &serve,
            "remediator_operation_errors_total{operation=\"check\"}",
        )
        .is_some_and(|n| n >= 1.0)
    });
    assert!(
        world.github.comments(number).is_empty(),
        "a check of a commit the pull request does not hold"
    );
    for (id, action) in [("p1", "opened"), ("p2", "synchronize")] {
        let body = event(action, &head);
        let signature = sign(body.as_bytes());
        let headers = [
            ("X-GitHub-Event", "pull_request"),
            ("X-GitHub-Delivery", id),
            ("X-Hub-Signature-256", signature.as_str()),
        ];
        let answer = request(
            &serve,
            "POST",
            "/webhooks/github",
            &headers,
            body.as_bytes(),
        );
        assert_eq!(answer.map(|a| a.0), Some(202));
        wait_for("the check comment", Duration::from_secs(20), || {
            world
                .github
                .comments(number)
                .iter()
                .any(|c| c.body.contains("remediator check"))
        });
    }
    std::thread::sleep(Duration::from_secs(1));
    let comments: Vec<_> = world
        .github
        .comments(number)
        .into_iter()
        .filter(|c| c.body.contains("remediator check"))
        .collect();
    assert_eq!(comments.len(), 1, "one comment, updated in place");
    assert!(
        comments[0].body.contains("`Deployment/shop-dev/api`"),
        "{}",
        comments[0].body
    );
}

fn leads(serve: &Serve) -> bool {
    metric(serve, "remediator_leader") == Some(1.0)
}

fn signed(serve: &Serve, event: &str, id: &str, body: &str) -> Option<u16> {
    let signature = sign(body.as_bytes());
    let headers = [
        ("X-GitHub-Event", event),
        ("X-GitHub-Delivery", id),
        ("X-Hub-Signature-256", signature.as_str()),
    ];
    request(serve, "POST", "/webhooks/github", &headers, body.as_bytes()).map(|a| a.0)
}

#[test]
fn two_replicas_elect_one_leader_and_the_other_takes_over_losing_no_delivery() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "two_replicas_elect_one_leader_and_the_other_takes_over_losing_no_delivery",
    ) {
        return;
    }
    let world = world();
    let applied = world.run(&["apply", "--path", "clusters/dev"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let first = start(&world);
    let second = start(&world);
    wait_for("one leader", Duration::from_secs(10), || {
        leads(&first) != leads(&second)
    });
    let (leader, follower) = if leads(&first) {
        (first, second)
    } else {
        (second, first)
    };
    let leader_name = lease_holder(&world).unwrap();
    // Only the leader acts: one failure, one pull request.
    fail_api(&world);
    wait_for("the pull request", Duration::from_secs(10), || {
        !open_pulls(&world).is_empty()
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        world.github.pulls().len(),
        1,
        "one pull request from two replicas"
    );
    // A delivery that reaches the follower is forwarded to the leader.
    assert_eq!(signed(&follower, "issues", "f1", "{}"), Some(202));
    assert_eq!(
        metric(
            &follower,
            "remediator_webhook_deliveries_total{source=\"github\",result=\"forwarded\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &leader,
            "remediator_webhook_deliveries_total{source=\"github\",result=\"ignored\"}"
        ),
        Some(1.0)
    );
    // The leader dies without giving its lease back.
    drop(leader);
    let died = Instant::now();
    // A delivery sent before the follower leads is queued there, not lost.
    let pull = open_pulls(&world).remove(0);
    let event = json!({"action": "synchronize", "number": pull.number, "pull_request": {
        "number": pull.number, "base": {"ref": "main"},
        "head": {"ref": pull.head, "sha": world.github.branch_head(&pull.head)}}})
    .to_string();
    assert_eq!(signed(&follower, "pull_request", "f2", &event), Some(202));
    let took = wait_for("the takeover", Duration::from_secs(10), || leads(&follower));
    println!("takeover {:?} after the leader died", died.elapsed());
    assert!(
        died.elapsed() < Duration::from_millis(3000 + 900),
        "within the lease duration and a follower's look ({took:?})"
    );
    wait_for(
        "the queued delivery worked",
        Duration::from_secs(20),
        || {
            world
                .github
                .comments(pull.number)
                .iter()
                .any(|c| c.body.contains("remediator check"))
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        world.github.pulls().len(),
        1,
        "no duplicate after the takeover"
    );
    // Killed, the leader wrote nothing after the follower took the lease, nor the follower
    // before.
    let follower_name = lease_holder(&world).unwrap();
    one_writer_at_a_time(&world, &leader_name, &follower_name);
}

/// The holder name in the leader's Lease (`name-suffix` of `name-suffix@address`), once one
/// holds it.
fn lease_holder(world: &World) -> Option<String> {
    let lease = world
        .cluster
        .object("Lease", "remediator", "remediator-serve")
        .or_else(|| world.cluster.object("Lease", "default", "remediator-serve"))?;
    let identity = lease["spec"]["holderIdentity"].as_str()?;
    let name = identity.split('@').next()?;
    (!name.is_empty()).then(|| name.to_owned())
}

/// From the test API server's log, by the holder name each process puts in its User-Agent:
/// every write of `first` came before `second` first took the leader's Lease, and `second`
/// wrote nothing before then. Two holders never wrote at once. The ConfigMap of delivery ids
/// is the intake's, not an action: any replica that takes a delivery writes it, with
/// optimistic concurrency.
fn one_writer_at_a_time(world: &World, first: &str, second: &str) {
    let log = world.cluster.requests();
    let write = |r: &testkit::LoggedRequest| {
        ["POST", "PUT", "PATCH", "DELETE"].contains(&r.method.as_str())
            && r.status.is_some_and(|s| s < 300)
            && !r.path.ends_with("/configmaps/remediator-deliveries")
            // Its creation, a POST to the collection: repository objects go by PATCH.
            && !(r.method == "POST" && r.path.ends_with("/configmaps"))
    };
    let lease = |r: &testkit::LoggedRequest| r.path.ends_with("/leases/remediator-serve");
    let by = |r: &testkit::LoggedRequest, who: &str| r.user_agent.contains(who);
    let taken = log
        .iter()
        .position(|r| write(r) && lease(r) && by(r, second))
        .expect("the second replica took the lease");
    if let Some(last) = log
        .iter()
        .rposition(|r| write(r) && !lease(r) && by(r, first))
    {
        assert!(
            last < taken,
            "the first replica wrote {} {} (request {last}) after the second took the lease (request {taken})",
            log[last].method,
            log[last].path
        );
    }
    let early: Vec<String> = log[..taken]
        .iter()
        .filter(|r| write(r) && by(r, second))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        early.is_empty(),
        "the second replica wrote before it led: {early:?}"
    );
}

#[test]
fn sigterm_mid_apply_finishes_the_job_and_only_then_hands_the_lease_over() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "sigterm_mid_apply_finishes_the_job_and_only_then_hands_the_lease_over",
    ) {
        return;
    }
    let world = world();
    let mut first = start(&world);
    wait_for("the leader", Duration::from_secs(10), || leads(&first));
    let first_name = lease_holder(&world).unwrap();
    let second = start(&world);
    let number = proposed(&world);
    let before = memory_limit(&world);
    // The merge is applied, and its rollout waits for the test: the leader is in its health
    // wait when SIGTERM comes.
    let merge = world.github.merge(number);
    assert_eq!(push_delivery(&first, &merge, "merge-1"), Some(202));
    wait_for("the apply", Duration::from_secs(30), || {
        memory_limit(&world) != before
    });
    let terminated = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &first.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Past the lease's three seconds: the leader kept renewing it while its job ran.
    std::thread::sleep(Duration::from_millis(3500));
    assert!(
        first.child.try_wait().unwrap().is_none(),
        "the job under way is finished before the process ends"
    );
    assert!(!leads(&second), "the lease is kept while the job runs");
    // The rollout completes: the health wait ends, and with it the job.
    world
        .cluster
        .set_rollout("Deployment", "shop-dev", "api", testkit::Rollout::Done)
        .unwrap();
    let exit = loop {
        if let Some(exit) = first.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            terminated.elapsed() < Duration::from_secs(40),
            "still running"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let ended = Instant::now();
    wait_for("the outcome comment", Duration::from_secs(5), || {
        world
            .github
            .comments(number)
            .iter()
            .any(|c| c.body.contains("applied and healthy"))
    });
    // The lease was given back once the job was done, not left to lapse.
    wait_for("the takeover", Duration::from_secs(10), || leads(&second));
    let took = ended.elapsed();
    println!("the first replica's exit to the second leading: {took:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
    let second_name = lease_holder(&world).unwrap();
    assert_ne!(first_name, second_name, "one holder name per process");
    one_writer_at_a_time(&world, &first_name, &second_name);
}

#[test]
fn the_shipped_alerts_read_only_metrics_the_service_registers_at_start() {
    let rules = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring/prometheus-rules.yaml"),
    )
    .unwrap();
    let exposed = remediator::serve::metrics::Metrics::default().encode();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(
        alerts,
        [
            "RemediatorCloneStale",
            "RemediatorPublishFailing",
            "RemediatorNoLeader",
            "RemediatorWebhookSignatureFailures"
        ]
    );
    let mut read = 0;
    for expr in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
    {
        for (at, _) in expr.match_indices("remediator_") {
            let name: String = expr[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            read += 1;
            assert!(
                exposed
                    .lines()
                    .any(|l| l.starts_with(&format!("{name}{{"))
                        || l.starts_with(&format!("{name} "))),
                "{name} is not exposed at start:\n{exposed}"
            );
        }
    }
    assert!(read >= 5, "{read} metrics read");
}

/// One RBAC rule.
struct Rule {
    groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The ClusterRole's and the Role's rules of deploy/, as kustomize renders it, and the
/// namespace the Role is in.
fn deploy_rules() -> (Vec<Rule>, Vec<Rule>, String) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    // Rendered as the service renders builds: kustomize, else kubectl's.
    let kustomize = remediator::render::Kustomize::find().expect("kustomize or kubectl on PATH");
    let sandbox = remediator::render::sandbox::Sandbox::new(false).unwrap();
    let text = kustomize.run(&sandbox, &dir).unwrap();
    let (mut cluster, mut namespaced, mut namespace) = (vec![], vec![], String::new());
    for doc in text.split("\n---\n") {
        let value: Value = serde_saphyr::from_str(doc).unwrap();
        let rules = || -> Vec<Rule> {
            value["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| Rule {
                    groups: strings(&r["apiGroups"]),
                    resources: strings(&r["resources"]),
                    verbs: strings(&r["verbs"]),
                })
                .collect()
        };
        match value["kind"].as_str() {
            Some("ClusterRole") => cluster = rules(),
            Some("Role") => {
                namespaced = rules();
                namespace = value["metadata"]["namespace"].as_str().unwrap().to_owned();
            }
            _ => {}
        }
    }
    (cluster, namespaced, namespace)
}

/// A request as RBAC sees it: verb, group, resource (with its subresource), namespace; `None`
/// for discovery and other non-resource paths.
fn attributes(
    method: &str,
    path: &str,
    query: &str,
) -> Option<(String, String, String, Option<String>)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        rest => (None, rest),
    };
    let (resource, name, sub) = match rest {
        [] => return None,
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, sub, ..] => (*resource, Some(*name), Some(*sub)),
    };
    let verb = match (method, name) {
        ("GET", Some(_)) => "get",
        ("GET", None) if query.contains("watch=true") || query.contains("watch=1") => "watch",
        ("GET", None) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", Some(_)) => "delete",
        ("DELETE", None) => "deletecollection",
        _ => return None,
    };
    let resource = match sub {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_owned(),
    };
    Some((verb.to_owned(), group.to_owned(), resource, namespace))
}

fn allows(rules: &[Rule], verb: &str, group: &str, resource: &str) -> bool {
    rules.iter().any(|r| {
        r.groups.iter().any(|g| g == group || g == "*")
            && r.resources.iter().any(|x| x == resource || x == "*")
            && r.verbs.iter().any(|v| v == verb || v == "*")
    })
}

#[test]
fn the_deploy_base_dry_runs_and_its_rbac_covers_every_request_serve_makes() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "the_deploy_base_dry_runs_and_its_rbac_covers_every_request_serve_makes",
    ) {
        return;
    }
    let world = world();
    // Leases in remediator's own namespace, as deploy/ grants them.
    let file = world.remote.work.join("remediator.yaml");
    let config = std::fs::read_to_string(&file)
        .unwrap()
        .replace("reconcile:\n", "reconcile:\n  lockNamespace: remediator\n");
    std::fs::write(&file, format!("{config}  leaseNamespace: remediator\n")).unwrap();
    common::commit_all(&world.remote.work, "Leases in remediator's namespace");
    common::push(&world.remote.work, "refs/heads/main:refs/heads/main");
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "remediator"}});
    world.cluster.create(ns, "kubectl").unwrap();
    // deploy/ itself, by server-side dry-run.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let diff = Command::new(env!("CARGO_BIN_EXE_remediator"))
        .args(["diff", "--repo", root.to_str().unwrap(), "--path", "deploy"])
        .args(["--kubeconfig", world.cluster.kubeconfig().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(diff.status.code(), Some(1), "{}", text(&diff));
    for kind in [
        "ClusterRole/remediator",
        "Deployment/remediator/remediator",
        "NetworkPolicy/remediator/remediator",
    ] {
        assert!(text(&diff).contains(kind), "{kind}: {}", text(&diff));
    }
    // Everything serve asks of the API server in a merge's life.
    let applied = world.run(&["apply", "--path", "clusters/dev"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let from = world.cluster.requests().len();
    let serve = start(&world);
    fail_api(&world);
    wait_for("the pull request", Duration::from_secs(10), || {
        !open_pulls(&world).is_empty()
    });
    let number = open_pulls(&world)[0].number;
    world
        .github
        .review(number, "alice", testkit::github::ReviewState::Approved);
    merged_to_health(&world, &serve, number, "rbac-1");
    drop(serve);
    let (cluster_rules, own_rules, own) = deploy_rules();
    let mut uncovered: Vec<String> = world.cluster.requests()[from..]
        .iter()
        .filter_map(|r| attributes(&r.method, &r.path, &r.query).map(|a| (r, a)))
        .filter(|(_, (verb, group, resource, namespace))| {
            let in_own = namespace.as_deref() == Some(own.as_str());
            let granted = allows(&cluster_rules, verb, group, resource)
                || (in_own && allows(&own_rules, verb, group, resource));
            !granted
        })
        .map(|(r, (verb, group, resource, namespace))| {
            format!(
                "{verb} {group}/{resource} in {namespace:?} ({} {})",
                r.method, r.path
            )
        })
        .collect();
    uncovered.dedup();
    assert!(
        uncovered.is_empty(),
        "deploy/ does not grant:\n{}",
        uncovered.join("\n")
    );
}

#[test]
fn a_thousand_failing_pods_across_two_hundred_workloads_make_one_pull_request_each() {
    const WORKLOADS: usize = 200;
    let deployment = |i: usize| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: fleet\nspec:\n  replicas: 5\n  selector:\n    matchLabels: {{app: app-{i}}}\n  template:\n    metadata:\n      labels: {{app: app-{i}}}\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/app:1.0\n          resources:\n            requests: {{memory: 128Mi}}\n            limits: {{memory: 256Mi}}\n"
        )
    };
    let mut files: Vec<(String, String)> = (0..WORKLOADS)
        .map(|i| (format!("apps/app-{i}.yaml"), deployment(i)))
        .collect();
    files.push((
        "apps/namespace.yaml".into(),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: fleet\n".into(),
    ));
    files.push((
        "remediator.yaml".into(),
        "serve:\n  debounceSeconds: 1\n  resyncSeconds: 3600\n  githubWebhookSecret: {env: TEST_WEBHOOK_SECRET}\n  alertmanagerToken: {env: TEST_ALERT_TOKEN}\n".into(),
    ));
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let world = World::new(Some(&borrowed));
    let applied = world.run(&["apply", "--path", "apps"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    // GitHub's secondary rate limit, three times while the pull requests are opened.
    world.github.faults().add(
        testkit::Fault::new(
            "POST",
            "*/pulls",
            testkit::FaultKind::SecondaryRateLimit { retry_after: 1 },
        )
        .times(3),
    );
    let serve = start(&world);
    let failed = Instant::now();
    for i in 0..WORKLOADS {
        world
            .cluster
            .add_pods("fleet", &format!("app-{i}"), 5, &PodState::oom_killed(6))
            .unwrap();
    }
    wait_for(
        "a pull request per workload",
        Duration::from_secs(240),
        || open_pulls(&world).len() >= WORKLOADS,
    );
    println!(
        "1,000 failing pods to {WORKLOADS} pull requests: {:?}",
        failed.elapsed()
    );
    std::thread::sleep(Duration::from_secs(2));
    let pulls = world.github.pulls();
    let mut heads: Vec<&str> = pulls.iter().map(|p| p.head.as_str()).collect();
    heads.sort_unstable();
    heads.dedup();
    assert_eq!(pulls.len(), WORKLOADS, "one pull request per problem");
    assert_eq!(heads.len(), WORKLOADS);
    let limited = world
        .github
        .requests()
        .iter()
        .filter(|r| r.status == Some(403) && r.method == "POST")
        .count();
    assert_eq!(
        limited, 3,
        "the secondary rate limit was met, and waited out"
    );
    drop(serve);
}

#[test]
fn logs_come_as_json_lines_when_asked() {
    let world = world();
    let mut serve = spawn(&world, &["--log-format", "json"], Stdio::piped());
    wait_ready(&serve);
    serve.child.kill().unwrap();
    let mut stderr = String::new();
    serve
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "listening"
            && l["fields"]["address"] == serve.address.as_str()),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l["level"].is_string()));
}
