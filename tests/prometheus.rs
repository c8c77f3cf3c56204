//! Usage from Prometheus, end to end: `propose` against a live cluster (the test API server)
//! reads two weeks of usage from the fake Prometheus and finds sustained CPU, an over-sized
//! workload, a volume forecast to fill within the horizon, and a daily peak its autoscaler
//! cannot serve, which it proposes to raise ahead of time. The queries are checked for shape
//! and step; a failing Prometheus is an error for usage findings, never an empty history.

mod common;

use std::f64::consts::TAU;

use serde_json::{Value, json};
use testkit::TestCluster;
use testkit::prometheus::FakePrometheus;

const DAY: f64 = 86_400.0;

fn deployment(name: &str, replicas: u32, cpu: &str, memory: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: shop
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: {name}
          image: registry.example.com/{name}:1.0
          resources:
            requests: {{cpu: {cpu}, memory: {memory}}}
            limits: {{memory: 2Gi}}
"
    )
}

const HPA: &str = "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  namespace: shop
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 4
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: 70}
";

const PVC: &str = "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  namespace: shop
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests: {storage: 10Gi}
";

/// Two weeks at five-minute steps, up to and including `now` (an instant query a few seconds
/// later still finds its latest point within Prometheus's five-minute lookback).
fn series(now: f64, value: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    (0..=4032)
        .map(|i| {
            let t = (now - 14.0 * DAY + f64::from(i) * 300.0).floor();
            (t, value(t))
        })
        .collect()
}

struct Setup {
    _remote: common::GitRemote,
    work: String,
    cluster: TestCluster,
    prometheus: FakePrometheus,
    /// The hour (UTC) of web's daily peak.
    peak_hour: u32,
}

fn setup() -> Setup {
    setup_with(&|_| 300.0 * 1048576.0, &|_, _| 0.05)
}

/// The setup with api's memory per pod and worker's CPU (at a time, at the point's index)
/// given, now; web peaks once a day, half a day from now.
fn setup_with(api_memory: &dyn Fn(f64) -> f64, worker_cpu: &dyn Fn(f64, usize) -> f64) -> Setup {
    let now = k8s_openapi::jiff::Timestamp::now().as_second() as f64;
    // web: three pods whose total CPU peaks at 5 cores once a day, on the hour half a day from
    // now: whenever the test runs, now is web's quiet time and the peak is still to come.
    let peak = ((now + DAY / 2.0) / 3600.0).floor() * 3600.0;
    let daily = move |t: f64| (2.75 + 2.25 * (((t - peak) / DAY + 0.25) * TAU).sin()) / 3.0;
    let mut setup = setup_at(now, api_memory, worker_cpu, &daily);
    setup.peak_hour = (peak.rem_euclid(DAY) / 3600.0) as u32;
    setup
}

/// The setup with two weeks of history up to `now`, and web's CPU per pod given.
fn setup_at(
    now: f64,
    api_memory: &dyn Fn(f64) -> f64,
    worker_cpu: &dyn Fn(f64, usize) -> f64,
    web_cpu: &dyn Fn(f64) -> f64,
) -> Setup {
    let web = deployment("web", 3, "500m", "256Mi");
    let api = deployment("api", 2, "500m", "512Mi");
    let worker = deployment("worker", 1, "1", "1Gi");
    let files = [
        ("shop/web.yaml", web.as_str()),
        ("shop/web-hpa.yaml", HPA),
        ("shop/api.yaml", api.as_str()),
        ("shop/worker.yaml", worker.as_str()),
        ("shop/data.yaml", PVC),
    ];
    let remote = common::git_remote(None, &files);
    let cluster = TestCluster::start();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
    cluster.create(ns, "kubectl").unwrap();
    for (_, text) in &files {
        let object: Value = serde_saphyr::from_str(text).unwrap();
        cluster.create(object, "kubectl").unwrap();
    }
    let prometheus = FakePrometheus::start();
    let owner = |pod: &str, set: &str| {
        prometheus.add(
            "kube_pod_owner",
            &[
                ("namespace", "shop"),
                ("pod", pod),
                ("owner_kind", "ReplicaSet"),
                ("owner_name", set),
            ],
            vec![(now - 60.0, 1.0)],
        );
    };
    for (set, deployment) in [
        ("web-5c6b", "web"),
        ("api-7d9f", "api"),
        ("worker-6f4d", "worker"),
    ] {
        prometheus.add(
            "kube_replicaset_owner",
            &[
                ("namespace", "shop"),
                ("replicaset", set),
                ("owner_kind", "Deployment"),
                ("owner_name", deployment),
            ],
            vec![(now - 60.0, 1.0)],
        );
    }
    let usage =
        |pod: &str, container: &str, cpu: &dyn Fn(f64) -> f64, memory: &dyn Fn(f64) -> f64| {
            let labels = [
                ("namespace", "shop"),
                ("pod", pod),
                ("container", container),
            ];
            prometheus.add(
                "container_cpu_usage_seconds_total",
                &labels,
                series(now, cpu),
            );
            prometheus.add(
                "container_memory_working_set_bytes",
                &labels,
                series(now, memory),
            );
        };
    for pod in ["web-5c6b-a", "web-5c6b-b", "web-5c6b-c"] {
        owner(pod, "web-5c6b");
        usage(pod, "web", web_cpu, &|_| 200.0 * 1048576.0);
    }
    // api: 450m of a 500m request, all the time.
    for pod in ["api-7d9f-a", "api-7d9f-b"] {
        owner(pod, "api-7d9f");
        usage(pod, "api", &|_| 0.45, api_memory);
    }
    // worker: a twentieth of its core and a tenth of its memory.
    owner("worker-6f4d-a", "worker-6f4d");
    let start = now - 14.0 * DAY;
    let worker = move |t: f64| worker_cpu(t, ((t - start) / 300.0).round() as usize);
    usage("worker-6f4d-a", "worker", &worker, &|_| 100.0 * 1048576.0);
    // Its earlier pod was OOM-killed three days ago (kube-state-metrics remembers; no pod shows it).
    owner("worker-6f4d-z", "worker-6f4d");
    let oom = [
        ("namespace", "shop"),
        ("pod", "worker-6f4d-z"),
        ("container", "worker"),
        ("reason", "OOMKilled"),
    ];
    prometheus.add(
        "kube_pod_container_status_last_terminated_reason",
        &oom,
        vec![(now - 3.0 * DAY, 1.0), (now - 2.9 * DAY, 1.0)],
    );
    // data: from 10 % to 60 % of 10 GiB over the last week; full in about 5.6 days.
    let capacity = 10.0 * 1024f64.powi(3);
    let claim = [("namespace", "shop"), ("persistentvolumeclaim", "data")];
    let week_ago = now - 7.0 * DAY;
    prometheus.add(
        "kubelet_volume_stats_used_bytes",
        &claim,
        series(now, |t| {
            let f = ((t - week_ago) / (7.0 * DAY)).clamp(0.0, 1.0);
            capacity * (0.1 + 0.5 * f)
        })
        .into_iter()
        .filter(|(t, _)| *t >= week_ago)
        .collect(),
    );
    prometheus.add(
        "kubelet_volume_stats_capacity_bytes",
        &claim,
        series(now, |_| capacity),
    );
    let config = format!(
        "metrics:\n  prometheus:\n    url: {}\n    labels: {{cluster: test}}\n    concurrency: 2\n",
        prometheus.url()
    );
    std::fs::write(remote.work.join("remediator.yaml"), config).unwrap();
    common::commit_all(&remote.work, "Usage from Prometheus");
    let work = remote.work.to_str().unwrap().to_owned();
    Setup {
        _remote: remote,
        work,
        cluster,
        prometheus,
        peak_hour: 0,
    }
}

/// `propose` on the live cluster, as JSON.
fn propose(setup: &Setup) -> std::process::Output {
    let kubeconfig = setup.cluster.kubeconfig().to_str().unwrap();
    propose_as(setup, "json", &["--kubeconfig", kubeconfig])
}

/// `propose --output OUTPUT EXTRA...`, the default kubeconfig pointing nowhere.
fn propose_as(setup: &Setup, output: &str, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_remediator"))
        .args(["propose", "--repo", &setup.work, "--forge", "none"])
        .args(["--output", output])
        .args(extra)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn propose_reads_two_weeks_from_prometheus_and_forecasts() {
    let setup = setup();
    let out = propose(&setup);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found: Vec<(String, String)> = Vec::new();
    for section in ["proposals", "diagnoses", "unmanaged", "failures"] {
        for item in report[section].as_array().into_iter().flatten() {
            let code = item["finding"]
                .as_str()
                .or(item["finding"]["code"].as_str())
                .or(item["code"].as_str())
                .unwrap_or_default();
            let target = item["finding"]["subject"]
                .as_str()
                .or(item["target"].as_str())
                .unwrap_or_default();
            found.push((code.to_owned(), target.to_owned()));
        }
    }
    let has =
        |code: &str, target: &str| found.iter().any(|(c, t)| c == code && t.ends_with(target));
    assert!(has("high-cpu", "api"), "{found:?}\n{}", text(&out));
    assert!(has("over-provisioned", "worker"), "{found:?}");
    assert!(has("pvc-filling-up", "data"), "{found:?}");
    // worker's memory is sized from 100 MiB plus 30 %, and a quarter more for the OOM kill
    // kube-state-metrics saw in the window.
    let worker = report["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["finding"] == "over-provisioned")
        .unwrap_or_else(|| panic!("no right-sizing proposal: {found:?}"));
    let memory = worker["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["path"]
                .as_str()
                .unwrap_or_default()
                .ends_with("requests.memory")
        })
        .unwrap_or_else(|| panic!("{worker}"));
    assert_eq!(memory["new"], "163Mi", "{worker}");
    // A request written as a bare number is read as one.
    let summary = worker["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("cpu request 1 → 70m"), "{summary}");
    // api runs hot now and its peak needs more replicas too: one problem, one pull request.
    assert!(!has("peak-forecast", "api"), "{found:?}");
    let peak = report["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["finding"] == "peak-forecast")
        .unwrap_or_else(|| panic!("no predictive scaling proposal: {found:?}\n{}", text(&out)));
    let shown = peak.to_string();
    // 5 cores at 70 % of 500m is 15 replicas; the ceiling is 4.
    assert!(shown.contains("from 4 to 15 replicas"), "{shown}");
    // The queries of that first run: range queries of 14 days under the point limit, with the
    // configured label.
    let sent = setup.prometheus.sent();
    // The pull request body states the forecast's numbers and charts it against the history.
    let kubeconfig = setup.cluster.kubeconfig().to_str().unwrap();
    let markdown = propose_as(&setup, "markdown", &["--kubeconfig", kubeconfig]);
    let body = String::from_utf8_lossy(&markdown.stdout);
    let forecast = body
        .split("\n# ")
        .find(|p| p.contains("peak-forecast"))
        .unwrap_or_else(|| panic!("no peak-forecast body:\n{body}"));
    let hour = format!("{:02}:00 UTC", setup.peak_hour);
    for wanted in [
        hour.clone(),
        format!("of CPU in all at its daily peak ({hour}"),
        "seasonal medians".into(),
        "15 replicas".into(),
        "xychart-beta".into(),
        "the rest is the forecast".into(),
    ] {
        assert!(forecast.contains(&wanted), "{wanted:?} not in:\n{forecast}");
    }
    let ranges: Vec<_> = sent
        .iter()
        .filter(|q| q.endpoint == "query_range")
        .collect();
    assert!(!ranges.is_empty());
    for q in &ranges {
        assert!((q.end - q.start - 14.0 * DAY).abs() < 1.0, "{q:?}");
        assert!((q.end - q.start) / q.step <= 11_000.0, "{q:?}");
        assert_eq!(q.step, 120.0, "{q:?}");
        assert!(q.query.contains("cluster=\"test\""), "{q:?}");
        assert!(q.query.contains("namespace=\"shop\""), "{q:?}");
    }
    assert!(ranges.iter().any(|q| q.query.starts_with(
        "sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{"
    )));
    assert!(
        ranges
            .iter()
            .any(|q| q.query.contains("container_memory_working_set_bytes"))
    );
    assert!(
        sent.iter()
            .any(|q| q.endpoint == "query" && q.query.contains("kube_pod_owner"))
    );
    // Each query once: answers are cached within the run.
    let mut queries: Vec<String> = sent
        .iter()
        .map(|q| format!("{}{}", q.endpoint, q.query))
        .collect();
    let all = queries.len();
    queries.sort();
    queries.dedup();
    assert!(
        sent.iter().any(|q| q.endpoint == "query"
            && q.query.contains("max_over_time(kube_pod_container_status_last_terminated_reason{reason=\"OOMKilled\",namespace=\"shop\",cluster=\"test\"}[14d])")),
        "{sent:#?}"
    );
    assert_eq!(queries.len(), all);
}

/// The pull request bodies `propose --output markdown` prints, each with its title.
fn bodies(setup: &Setup) -> Vec<String> {
    let kubeconfig = setup.cluster.kubeconfig().to_str().unwrap();
    let markdown = propose_as(setup, "markdown", &["--kubeconfig", kubeconfig]);
    String::from_utf8_lossy(&markdown.stdout)
        .split("\n# ")
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_leak_reaching_its_limit_in_three_days_is_memory_growth_and_no_raise() {
    // api's working set grows by 100 MiB a day and reaches its 2 GiB limit in three days: its
    // p95 is over 80 % of the limit, which alone would ask for a higher one.
    let now = k8s_openapi::jiff::Timestamp::now().as_second() as f64;
    let leak = move |t: f64| (1748.0 - 100.0 * (now - t) / DAY) * 1048576.0;
    let setup = setup_with(&leak, &|_, _| 0.05);
    let out = propose(&setup);
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    let diagnosed = report["diagnoses"].to_string();
    assert!(
        diagnosed.contains("memory-growth") && diagnosed.contains("api"),
        "{}",
        text(&out)
    );
    for proposal in report["proposals"].as_array().into_iter().flatten() {
        let raises_api_memory = proposal["target"]
            .as_str()
            .is_some_and(|t| t.ends_with("/api"))
            && proposal["fields"].to_string().contains("memory");
        assert!(!raises_api_memory, "a leak's limit raised: {proposal}");
    }
}

#[test]
fn a_spike_on_a_steady_or_flat_workload_is_evidence_and_its_noise_is_not() {
    // worker's CPU: 50m with a little noise for two weeks.
    let noise = |i: usize| {
        let x = (i as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((x >> 33) as f64 / (1u64 << 31) as f64 - 1.0) * 0.004
    };
    // worker's right-sizing pull request, with worker's CPU at each point's index given.
    let worker_of = |cpu: &dyn Fn(f64, usize) -> f64| {
        let setup = setup_with(&|_| 300.0 * 1048576.0, cpu);
        let worker = bodies(&setup)
            .into_iter()
            .find(|b| b.contains("over-provisioned") && b.contains("worker"))
            .unwrap_or_else(|| panic!("no right-sizing of worker"));
        (setup, worker)
    };
    let (quiet, worker) = worker_of(&move |_, i| 0.05 + noise(i));
    assert!(
        !worker.contains("anomalies"),
        "noise is no anomaly:\n{worker}"
    );
    // The same with one point at 900m, four days ago; then on a perfectly flat 50m, where the
    // spread is nothing at all.
    let spiked = move |_, i| if i == 2880 { 0.9 } else { 0.05 + noise(i) };
    let flat = |_, i| if i == 2880 { 0.9 } else { 0.05 };
    for cpu in [&spiked as &dyn Fn(f64, usize) -> f64, &flat] {
        let (_, worker) = worker_of(cpu);
        // Prometheus repeats the point at each 2-minute step within its 5-minute lookback.
        assert!(
            worker.contains("robust standard deviations") && worker.contains("the latest 900m"),
            "{worker}"
        );
    }
    // web's daily peak is its season, not an anomaly.
    let web = bodies(&quiet)
        .into_iter()
        .find(|b| b.contains("peak-forecast"))
        .unwrap_or_else(|| panic!("no peak forecast"));
    assert!(!web.contains("anomalies"), "{web}");
}

#[test]
fn a_failing_prometheus_is_an_error_for_usage_findings_never_an_empty_history() {
    let setup = setup();
    setup.prometheus.fail(
        422,
        "execution",
        "query processing would load too many samples into memory",
    );
    let out = propose(&setup);
    let printed = text(&out);
    assert!(
        printed.contains("usage history from Prometheus")
            && printed.contains("execution: query processing would load too many samples"),
        "{printed}"
    );
    assert!(!printed.contains("\"over-provisioned\""), "{printed}");
}

#[test]
fn an_answer_with_warnings_is_partial_data_not_usage() {
    let setup = setup();
    setup
        .prometheus
        .warn("partial response: store 10.0.3.4:10901 did not answer");
    let out = propose(&setup);
    let printed = text(&out);
    assert!(
        printed.contains("usage history from Prometheus")
            && printed.contains("may be partial: partial response: store 10.0.3.4:10901"),
        "{printed}"
    );
    // No usage finding is made from a partial answer.
    for code in [
        "over-provisioned",
        "under-provisioned",
        "memory-growth",
        "peak-forecast",
    ] {
        assert!(
            !printed.contains(&format!("\"{code}\"")),
            "{code}: {printed}"
        );
    }
}

#[test]
fn an_answer_with_warnings_leaves_the_open_pull_request_open_and_says_why() {
    let setup = setup();
    let github = testkit::github::FakeGitHub::start("acme/config", &setup._remote.bare);
    let file = std::path::Path::new(&setup.work).join("remediator.yaml");
    let config = std::fs::read_to_string(&file).unwrap();
    let forge = format!(
        "forge:\n  type: github\n  repository: acme/config\n  apiUrl: {}\n",
        github.url()
    );
    std::fs::write(&file, config + &forge).unwrap();
    common::commit_all(&setup._remote.work, "Publish to GitHub");
    common::push(&setup._remote.work, "refs/heads/main:refs/heads/main");
    let kubeconfig = setup.cluster.kubeconfig().to_str().unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_remediator"))
            .args(["propose", "--repo", &setup.work, "--forge", "github"])
            .args(["--kubeconfig", kubeconfig])
            .env("GITHUB_TOKEN", testkit::github::BOT_TOKEN)
            .env_remove("GITHUB_API_URL")
            .output()
            .unwrap()
    };
    let first = run();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let worker = github
        .pulls()
        .into_iter()
        .find(|p| p.body.contains("over-provisioned") && p.title.contains("worker"))
        .unwrap_or_else(|| panic!("no right-sizing pull request: {}", text(&first)));
    // The next run's usage answers are partial: worker's finding is not seen, and not cleared.
    setup
        .prometheus
        .warn("partial response: store 10.0.3.4:10901 did not answer");
    let second = run();
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert!(
        !text(&second).contains(&format!("closed #{}", worker.number)),
        "{}",
        text(&second)
    );
    assert_eq!(github.pull(worker.number).state, "open");
    let kept: Vec<_> = github
        .comments(worker.number)
        .into_iter()
        .filter(|c| c.body.contains("stays open"))
        .collect();
    assert_eq!(kept.len(), 1, "one comment");
    assert!(
        kept[0].body.contains("not everything was read")
            && kept[0].body.contains("may be partial: partial response"),
        "{}",
        kept[0].body
    );
}

#[test]
fn two_hours_of_a_fourteen_day_window_are_partial_data_not_usage() {
    let setup = setup_with(&|_| 300.0 * 1048576.0, &|_, _| 0.05);
    // Every series loses all but its last two hours, as after a retention cut.
    let now = k8s_openapi::jiff::Timestamp::now().as_second() as f64;
    setup.prometheus.keep_after(now - 2.0 * 3600.0);
    let out = propose(&setup);
    let printed = text(&out);
    assert!(
        printed.contains("Prometheus holds 0.1 days of the 14 asked, less than metrics.prometheus.minCoveragePercent (50 %)"),
        "{printed}"
    );
    for code in ["over-provisioned", "high-cpu", "peak-forecast"] {
        assert!(
            !printed.contains(&format!("\"{code}\"")),
            "{code}: {printed}"
        );
    }
}

#[test]
fn a_series_with_five_days_missing_of_fourteen_is_not_read() {
    let setup = setup();
    let now = k8s_openapi::jiff::Timestamp::now().as_second() as f64;
    setup
        .prometheus
        .cut("worker-6f4d-a", now - 10.0 * DAY, now - 5.0 * DAY);
    let out = propose(&setup);
    let printed = text(&out);
    assert!(
        printed.contains("usage history of Deployment shop/worker container worker (")
            && printed.contains("more than metrics.prometheus.maxGapPercent (20 %)"),
        "{printed}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{printed}"));
    let found = report.to_string();
    assert!(
        !found.contains("\"over-provisioned\""),
        "worker not read: {printed}"
    );
    // The other workloads are read.
    assert!(found.contains("\"high-cpu\""), "{printed}");
}

#[test]
fn now_ends_the_range_read_from_prometheus() {
    let setup = setup();
    let kubeconfig = setup.cluster.kubeconfig().to_str().unwrap();
    let out = propose_as(
        &setup,
        "json",
        &["--kubeconfig", kubeconfig, "--now", "2026-11-20T12:00:00Z"],
    );
    assert!(out.status.code().is_some(), "{}", text(&out));
    // 2026-11-20T12:00:00Z in seconds since the epoch.
    let end = 1795176000.0;
    let ranges: Vec<_> = setup
        .prometheus
        .sent()
        .into_iter()
        .filter(|q| q.endpoint == "query_range")
        .collect();
    assert!(!ranges.is_empty());
    for range in ranges {
        assert_eq!(range.end, end, "{}", range.query);
    }
}

#[test]
fn a_friday_morning_run_forecasts_that_afternoons_weekday_peak() {
    // 2026-11-20, a Friday, at 08:00 UTC. web's pods peak at 5 cores in all from 14:00 to 16:00
    // on weekdays only: tomorrow, a Saturday, is quiet.
    let now = 1795161600.0;
    let weekdays = |t: f64| {
        // 1970-01-01 was a Thursday; 0 is a Monday.
        let weekday = ((t / DAY).floor() as i64 + 3).rem_euclid(7);
        let hour = (t.rem_euclid(DAY) / 3600.0).floor() as u32;
        if weekday < 5 && (14..16).contains(&hour) {
            5.0 / 3.0
        } else {
            0.25
        }
    };
    let setup = setup_at(now, &|_| 300.0 * 1048576.0, &|_, _| 0.05, &weekdays);
    let kubeconfig = setup.cluster.kubeconfig().to_str().unwrap();
    let at = ["--kubeconfig", kubeconfig, "--now", "2026-11-20T08:00:00Z"];
    let markdown = propose_as(&setup, "markdown", &at);
    let body = String::from_utf8_lossy(&markdown.stdout);
    let forecast = body
        .split("\n# ")
        .find(|p| p.contains("peak-forecast") && p.contains("web"))
        .unwrap_or_else(|| panic!("no forecast of this afternoon's peak:\n{}", text(&markdown)));
    // The peak of the hours from 14:00 to 16:00, read from Fridays alone.
    assert!(
        forecast.contains("5 at 14:00 UTC") || forecast.contains("5 at 15:00 UTC"),
        "{forecast}"
    );
    assert!(forecast.contains("from 4 to 15 replicas"), "{forecast}");
    // Read from Fridays: a profile of tomorrow, a Saturday, would have no peak at all.
    assert!(
        forecast.contains("each hour by its own weekday"),
        "{forecast}"
    );
}

#[test]
fn a_cluster_label_names_the_cluster_each_environment_is_read_from() {
    let setup = setup();
    let file = std::path::Path::new(&setup.work).join("remediator.yaml");
    let write = |environments: &str| {
        let config = format!(
            "{environments}metrics:\n  prometheus:\n    url: {}\n    labels: {{cluster: \"{{cluster}}\"}}\n",
            setup.prometheus.url()
        );
        std::fs::write(&file, config).unwrap();
    };
    // No configured cluster to name: no usage, and the run says why.
    write("");
    let out = propose(&setup);
    let printed = text(&out);
    assert!(printed.contains("names the cluster"), "{printed}");
    assert!(setup.prometheus.sent().is_empty());
    // An environment whose cluster is named: its queries carry that name.
    write(&format!(
        "clusters:\n  - {{name: shop-eu-1, context: testkit, kubeconfig: {}}}\nenvironments:\n  - {{name: shop, paths: [\"shop/**\"], clusters: [shop-eu-1]}}\n",
        setup.cluster.kubeconfig().display()
    ));
    let out = propose_as(&setup, "json", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let sent = setup.prometheus.sent();
    assert!(!sent.is_empty());
    assert!(
        sent.iter()
            .all(|q| q.query.contains("cluster=\"shop-eu-1\"")),
        "{sent:?}"
    );
}
