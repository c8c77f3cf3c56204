//! The cluster commands of the binary against the test API server, through a kubeconfig:
//! `diff` with `flux diff`'s exit codes, `apply` (staged, `--dry-run`, `--wait`), `propose
//! --kubeconfig` with the dry-run in the pull request body, and no Secret value in any output.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use testkit::{PodState, Rollout, TestCluster};

fn remediator(args: &[&str], kubeconfig: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_remediator"))
        .args(args)
        .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// `remediator COMMAND --repo REPO --path PATH EXTRA...` against the cluster.
fn on_repo(kubeconfig: &Path, repo: &str, command: &str, path: &str, extra: &[&str]) -> Output {
    let mut args = vec![command, "--repo", repo, "--path", path];
    args.extend_from_slice(extra);
    remediator(&args, kubeconfig)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The example's Secret value, in every form it could leak in.
const SECRETS: [&str; 4] = [
    "Y2hhbmdlLW1l",
    "change-me",
    "bmV3LXNlY3JldA==",
    "new-secret",
];

fn assert_no_secret(output: &str) {
    for secret in SECRETS {
        assert!(!output.contains(secret), "{secret} leaked:\n{output}");
    }
}

#[test]
fn diff_and_apply_a_build_with_flux_exit_codes() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "diff_and_apply_a_build_with_flux_exit_codes",
    ) {
        return;
    }
    let cluster = TestCluster::start();
    let kubeconfig = cluster.kubeconfig();
    let repo = common::copy_tree(&common::example_repo(), false);
    let repo_arg = repo.path().to_str().unwrap();
    let run = |command, path, extra: &[&str]| on_repo(kubeconfig, repo_arg, command, path, extra);
    let mut outputs = String::new();

    let before = run("diff", "clusters/dev", &[]);
    outputs += &text(&before);
    assert_eq!(before.status.code(), Some(1), "{}", text(&before));
    assert!(
        text(&before).contains("Deployment/shop-dev/api created"),
        "{}",
        text(&before)
    );

    let dry = run("apply", "clusters/dev", &["--dry-run"]);
    outputs += &text(&dry);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert!(cluster.object("Namespace", "", "shop-dev").is_none());

    let applied = run("apply", "clusters/dev", &[]);
    outputs += &text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let lines: Vec<&str> = std::str::from_utf8(&applied.stdout)
        .unwrap()
        .lines()
        .collect();
    assert_eq!(lines[0], "Namespace/shop-dev created", "{lines:?}");
    assert!(
        lines.contains(&"Secret/shop-dev/api-db created"),
        "{lines:?}"
    );
    let api = cluster.object("Deployment", "shop-dev", "api").unwrap();
    assert_eq!(
        api["spec"]["replicas"], 1,
        "the build's replicas override applies"
    );

    let after = run("diff", "clusters/dev", &[]);
    outputs += &text(&after);
    assert_eq!(after.status.code(), Some(0), "{}", text(&after));
    assert!(
        text(&after).contains("0 to create, 0 to configure"),
        "{}",
        text(&after)
    );

    let secret = repo.path().join("apps/api/secret.yaml");
    let changed = std::fs::read_to_string(&secret)
        .unwrap()
        .replace("Y2hhbmdlLW1l", "bmV3LXNlY3JldA==");
    std::fs::write(&secret, changed).unwrap();
    let secret_diff = run("diff", "clusters/dev", &[]);
    outputs += &text(&secret_diff);
    assert_eq!(secret_diff.status.code(), Some(1), "{}", text(&secret_diff));
    assert!(text(&secret_diff).contains("Secret/shop-dev/api-db configured"));
    let json = run("diff", "clusters/dev", &["--json"]);
    outputs += &text(&json);
    let reapplied = run("apply", "clusters/dev", &[]);
    outputs += &text(&reapplied);
    assert!(text(&reapplied).contains("Secret/shop-dev/api-db configured"));
    assert_no_secret(&outputs);

    // A build that kustomize refuses is its error, naming the build; nothing of it is applied.
    let kustomization = repo.path().join("clusters/prod/kustomization.yaml");
    let good = std::fs::read_to_string(&kustomization).unwrap();
    std::fs::write(
        &kustomization,
        good.replace("patches/web-resources.yaml", "patches/missing.yaml"),
    )
    .unwrap();
    let refused = run("apply", "clusters/prod", &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("clusters/prod/kustomization.yaml: kustomize build failed")
            && text(&refused).contains("missing.yaml"),
        "{}",
        text(&refused)
    );
    assert!(
        cluster.object("Namespace", "", "shop").is_none(),
        "nothing of it applied"
    );

    // The production build renders with its patch, as kustomize renders it.
    std::fs::write(&kustomization, good).unwrap();
    let prod = run("apply", "clusters/prod", &[]);
    assert_eq!(prod.status.code(), Some(0), "{}", text(&prod));
    let web = cluster.object("Deployment", "shop", "web").unwrap();
    let container = &web["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["resources"]["requests"]["cpu"], "500m");
    assert_eq!(container["image"], "ghcr.io/acme/shop-web:2.4.1");
    let api = cluster.object("Deployment", "shop", "api").unwrap();
    assert_eq!(api["spec"]["replicas"], 3);
}

#[test]
fn a_path_inside_a_build_names_the_builds_to_give() {
    let cluster = TestCluster::start();
    let repo = common::example_repo();
    let repo = repo.to_str().unwrap();
    let out = on_repo(cluster.kubeconfig(), repo, "diff", "apps/worker", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("apps/worker is applied as part of clusters/dev, clusters/prod"),
        "{}",
        text(&out)
    );
}

#[test]
fn diff_without_a_reachable_cluster_is_an_error() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "diff_without_a_reachable_cluster_is_an_error",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster: {server: 'http://127.0.0.1:9'}\n\
         contexts:\n- name: gone\n  context: {cluster: gone, user: nobody}\ncurrent-context: gone\n\
         users:\n- name: nobody\n  user: {}\n",
    )
    .unwrap();
    let repo = common::example_repo();
    let repo = repo.to_str().unwrap();
    let out = on_repo(&kubeconfig, repo, "diff", "clusters/dev", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("error: cannot discover the cluster's API resources"),
        "{}",
        text(&out)
    );
}

#[test]
fn apply_wait_reports_healthy_or_failed() {
    let cluster = TestCluster::start();
    cluster.follow_spec(Duration::from_millis(100));
    let kubeconfig = cluster.kubeconfig();
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo.path().join("worker")).unwrap();
    std::fs::copy(
        common::example_repo().join("apps/worker/deployment.yaml"),
        repo.path().join("worker/deployment.yaml"),
    )
    .unwrap();
    let repo_arg = repo.path().to_str().unwrap();
    let args = [
        "apply",
        "--repo",
        repo_arg,
        "--path",
        "worker",
        "--wait",
        "--timeout",
        "20",
    ];
    let healthy = remediator(&args, kubeconfig);
    assert_eq!(healthy.status.code(), Some(0), "{}", text(&healthy));
    assert!(
        text(&healthy).contains("healthy after"),
        "{}",
        text(&healthy)
    );

    cluster
        .set_rollout("Deployment", "default", "worker", Rollout::Failed)
        .unwrap();
    let failed = remediator(&args, kubeconfig);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    assert!(
        text(&failed).contains("failed: Deployment/default/worker")
            && text(&failed).contains("ProgressDeadlineExceeded"),
        "{}",
        text(&failed)
    );
}

#[test]
fn propose_reads_the_live_cluster_and_puts_the_dry_run_in_the_body() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "propose_reads_the_live_cluster_and_puts_the_dry_run_in_the_body",
    ) {
        return;
    }
    let cluster = TestCluster::start();
    let kubeconfig = cluster.kubeconfig();
    let repo = common::copy_tree(&common::example_repo(), false);
    let repo_arg = repo.path().to_str().unwrap();
    let run = |command, path, extra: &[&str]| on_repo(kubeconfig, repo_arg, command, path, extra);
    let applied = run("apply", "clusters/dev", &[]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    cluster
        .add_pods("shop-dev", "api", 2, &PodState::oom_killed(6))
        .unwrap();

    let out = remediator(
        &[
            "propose", "--repo", repo_arg, "--forge", "none", "--output", "markdown", "--env",
            "dev",
        ],
        kubeconfig,
    );
    let body = text(&out);
    assert_eq!(out.status.code(), Some(0), "{body}");
    assert!(
        body.contains("crash-loop-oom") || body.contains("OOM"),
        "{body}"
    );
    assert!(
        body.contains("Server-side dry-run (`dryRun=All`)"),
        "{body}"
    );
    assert!(
        body.contains("| `Deployment/shop-dev/api` | configured | none |"),
        "{body}"
    );
    assert!(
        body.contains("<summary>Live diff of <code>Deployment/shop-dev/api</code>"),
        "{body}"
    );
    assert!(!body.contains("Not run: offline"), "{body}");
    assert_no_secret(&body);

    let both = remediator(
        &["propose", "--repo", repo_arg, "--snapshot", repo_arg],
        kubeconfig,
    );
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));
}

/// Secrets planted in the logs below, besides the example Secret's value.
const PLANTED: [&str; 4] = [
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    "sk9live0abcdefghijklmnop",
    "hunter22",
];

#[test]
fn failing_containers_logs_give_the_cause_and_no_secret_leaves_the_cluster() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "failing_containers_logs_give_the_cause_and_no_secret_leaves_the_cluster",
    ) {
        return;
    }
    let cluster = TestCluster::start();
    let kubeconfig = cluster.kubeconfig();
    let repo = common::copy_tree(&common::example_repo(), false);
    let repo_arg = repo.path().to_str().unwrap();
    let applied = on_repo(kubeconfig, repo_arg, "apply", "clusters/dev", &[]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let crashing = PodState::CrashLoop {
        reason: "Error".into(),
        exit_code: 1,
        restarts: 5,
    };
    // api: the JVM runs out of heap (exit 1, not OOMKilled), after logging its database URL
    // with the password the Secret api-db gives it, and an AWS key.
    let api = cluster.add_pods("shop-dev", "api", 1, &crashing).unwrap();
    cluster.set_log(
        "shop-dev",
        &api[0],
        "api",
        true,
        "2026-11-27T10:00:01Z INFO connecting to postgres://api:change-me@db:5432/shop\n\
         2026-11-27T10:00:01Z DEBUG env DB_PASSWORD=change-me AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n\
         Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space (pool postgres://api:change-me@db:5432 key AKIAIOSFODNN7EXAMPLE seed change-me)\n\
         \tat com.shop.Cache.fill(Cache.java:88)\n",
    );
    // worker: its queue refuses the connection; it logged a token and a password first.
    let worker = cluster
        .add_pods("shop-dev", "worker", 1, &crashing)
        .unwrap();
    cluster.set_log(
        "shop-dev",
        &worker[0],
        "worker",
        true,
        "using ghp_0123456789abcdefghijABCDEFGHIJ012345 to fetch jobs\n\
         Authorization: Bearer sk9live0abcdefghijklmnop\n\
         redis password=hunter22\n\
         2026-11-27T10:00:07Z ERROR password=hunter22 token ghp_0123456789abcdefghijABCDEFGHIJ012345 \
         Bearer sk9live0abcdefghijklmnop: dial tcp 10.0.3.7:6379: connect: connection refused\n",
    );
    let propose = |output: &str| {
        remediator(
            &[
                "propose", "--repo", repo_arg, "--forge", "none", "--output", output, "--env",
                "dev",
            ],
            kubeconfig,
        )
    };
    let markdown = propose("markdown");
    let body = text(&markdown);
    assert_eq!(markdown.status.code(), Some(0), "{body}");
    // The out-of-memory in api's log makes its crash loop a memory problem, with the lines
    // quoted in the pull request.
    assert!(body.contains("crash-loop-oom"), "{body}");
    assert!(
        body.contains("java.lang.OutOfMemoryError: Java heap space"),
        "{body}"
    );
    let json = propose("json");
    let printed = text(&json);
    assert_eq!(json.status.code(), Some(0), "{printed}");
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let worker_finding = report["diagnoses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| &d["finding"])
        .find(|f| f["code"] == "crash-loop" && f["container"] == "worker")
        .unwrap_or_else(|| panic!("no worker crash loop: {printed}"));
    let cause = worker_finding["evidence"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["label"] == "cause (from log)")
        .unwrap_or_else(|| panic!("{worker_finding}"));
    assert_eq!(cause["value"], "connection refused (10.0.3.7:6379)");
    for out in [&body, &printed] {
        assert_no_secret(out);
        for secret in PLANTED {
            assert!(!out.contains(secret), "{secret} leaked:\n{out}");
        }
    }

    // When the Secret api-db cannot be read, api's log is withheld, never kept unredacted.
    for _ in 0..4 {
        cluster.faults().add(testkit::Fault::new(
            "GET",
            "/api/v1/namespaces/shop-dev/secrets/api-db",
            testkit::FaultKind::Answer {
                status: 403,
                body: serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": "secrets \"api-db\" is forbidden", "reason": "Forbidden", "code": 403}),
            },
        ));
    }
    let withheld = propose("json");
    let printed = text(&withheld);
    assert_eq!(withheld.status.code(), Some(0), "{printed}");
    assert!(printed.contains("withheld: Secret api-db"), "{printed}");
    assert!(!printed.contains("OutOfMemoryError"), "{printed}");
    assert!(!printed.contains("crash-loop-oom"), "{printed}");
    assert_no_secret(&printed);
}
