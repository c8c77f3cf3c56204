//! Each environment reaches only its own cluster: one commit touching two environments lands
//! each one's objects in its own test API server and nothing of the other, a change to an
//! environment without a cluster is refused before anything is written, and apply, diff and
//! propose send and read each environment's objects to and from its own cluster.

mod common;

use common::world::{World, text};
use testkit::TestCluster;

fn settings(level: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\ndata:\n  level: \"{level}\"\n"
    )
}

/// Writes by remediator to the settings ConfigMap of `cluster`.
fn writes(cluster: &TestCluster) -> usize {
    common::writes_to(cluster, "/configmaps/settings")
}

fn level(cluster: &TestCluster) -> Option<String> {
    let settings = cluster.object("ConfigMap", "default", "settings")?;
    Some(settings["data"]["level"].as_str()?.to_owned())
}

/// dev, prod and staging directories; dev reaches the world's cluster, prod `prod`, staging
/// none. The configuration is pushed to main before any merge, so the gate reads it.
fn three_environments(prod: &TestCluster) -> World {
    let files = [
        ("dev/settings.yaml", settings("1")),
        ("prod/settings.yaml", settings("1")),
        ("staging/settings.yaml", settings("1")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    World::dev_and_prod(
        &files,
        prod,
        "  - name: staging\n    paths: [\"staging/**\"]\n",
    )
}

/// A pull request by mallory changing `edits` (file, new level), approved by alice, merged.
fn merged(world: &World, branch: &str, edits: &[(&str, &str)]) -> String {
    let files: Vec<(&str, String)> = edits.iter().map(|(f, l)| (*f, settings(l))).collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(f, t)| (*f, t.as_str())).collect();
    world.merge_change(branch, &files)
}

/// `reconcile --commit C EXTRA...`, no cluster named unless `extra` names one.
fn reconcile(world: &World, commit: &str, extra: &[&str]) -> std::process::Output {
    world.reconcile_routed(commit, extra)
}

#[test]
fn one_commit_touching_two_environments_lands_each_in_its_own_cluster() {
    let prod = TestCluster::start();
    let world = three_environments(&prod);
    let merge = merged(
        &world,
        "levels",
        &[("dev/settings.yaml", "2"), ("prod/settings.yaml", "3")],
    );
    let out = reconcile(&world, &merge, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(level(&world.cluster).as_deref(), Some("2"));
    assert_eq!(level(&prod).as_deref(), Some("3"));
    assert_eq!(writes(&world.cluster), 1, "dev got its own object once");
    assert_eq!(writes(&prod), 1, "prod got its own object once");
}

#[test]
fn a_change_to_an_environment_without_a_cluster_is_refused_before_anything_is_written() {
    let prod = TestCluster::start();
    let world = three_environments(&prod);
    let merge = merged(
        &world,
        "staging",
        &[("dev/settings.yaml", "2"), ("staging/settings.yaml", "2")],
    );
    let out = reconcile(&world, &merge, &[]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("the change reaches environment staging, which has no cluster"),
        "{printed}"
    );
    assert_eq!(writes(&world.cluster), 0, "{printed}");
    assert_eq!(writes(&prod), 0, "{printed}");
    assert_eq!(level(&world.cluster), None);

    // Reconciled alone for staging, with its cluster named, it goes through.
    let staging = TestCluster::start();
    let kubeconfig = staging.kubeconfig().to_str().unwrap();
    let out = reconcile(
        &world,
        &merge,
        &["--env", "staging", "--kubeconfig", kubeconfig],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(level(&staging).as_deref(), Some("2"));
    assert_eq!(writes(&prod), 0);

    // Finished for staging is not finished for dev: its own run, on its configured cluster,
    // applies it there.
    let out = reconcile(&world, &merge, &["--env", "dev"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(level(&world.cluster).as_deref(), Some("2"));
    assert_eq!(writes(&world.cluster), 1);
    assert_eq!(writes(&staging), 1);
    assert_eq!(writes(&prod), 0);
}

/// The example repository with dev reaching `dev` and prod reaching `prod`.
fn example_on(dev: &TestCluster, prod: &TestCluster) -> tempfile::TempDir {
    let repo = common::copy_tree(&common::example_repo(), false);
    let config_file = repo.path().join("remediator.yaml");
    let config = std::fs::read_to_string(&config_file).unwrap();
    let config = common::example_config_on(&config, dev.kubeconfig(), prod.kubeconfig());
    std::fs::write(&config_file, config).unwrap();
    repo
}

fn binary(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_remediator"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .unwrap()
}

#[test]
fn apply_and_diff_send_each_environment_to_its_own_cluster() {
    let prod = TestCluster::start();
    let world = three_environments(&prod);
    let work = world.work();
    // Without a cluster named, a build goes to its environment's cluster and no other.
    let out = binary(&["apply", "--repo", work, "--path", "prod"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(level(&prod).as_deref(), Some("1"));
    assert_eq!(level(&world.cluster), None);
    let out = binary(&["diff", "--repo", work, "--path", "prod"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // An environment without a cluster reaches none, before anything is sent.
    let out = binary(&["diff", "--repo", work]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("environment staging has no cluster"),
        "{}",
        text(&out)
    );
    assert_eq!(level(&world.cluster), None, "nothing was sent to dev");
    // A cluster named on the command line takes one environment's objects only, and only the
    // environment whose context it is.
    let kubeconfig = world.cluster.kubeconfig().to_str().unwrap().to_owned();
    let out = binary(&["diff", "--repo", work, "--kubeconfig", &kubeconfig]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("one cluster may take one environment's only"),
        "{}",
        text(&out)
    );
    let out = binary(&[
        "apply",
        "--repo",
        work,
        "--path",
        "prod",
        "--kubeconfig",
        &kubeconfig,
        "--context",
        "other",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("environment prod reaches context testkit, not other"),
        "{}",
        text(&out)
    );
}

#[test]
fn propose_reads_each_environment_s_findings_from_its_own_cluster() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "propose_reads_each_environment_s_findings_from_its_own_cluster",
    ) {
        return;
    }
    let (dev, prod) = (TestCluster::start(), TestCluster::start());
    let repo = example_on(&dev, &prod);
    let repo_arg = repo.path().to_str().unwrap();
    let out = binary(&["apply", "--repo", repo_arg, "--path", "clusters/dev"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(dev.object("Deployment", "shop-dev", "api").is_some());
    assert!(prod.object("Deployment", "shop-dev", "api").is_none());
    dev.add_pods("shop-dev", "api", 2, &testkit::PodState::oom_killed(6))
        .unwrap();
    // A stale copy of prod's api crash-loops in dev, where prod's findings never come from.
    let stale = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "api", "image": "api:1"}]}}}});
    let namespace =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
    dev.create(namespace, "kubectl").unwrap();
    dev.create(stale, "kubectl").unwrap();
    dev.add_pods("shop", "api", 2, &testkit::PodState::oom_killed(6))
        .unwrap();
    let out = binary(&[
        "propose", "--repo", repo_arg, "--forge", "none", "--output", "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let targets: Vec<&str> = report["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["target"].as_str().unwrap())
        .collect();
    assert!(targets.contains(&"Deployment/shop-dev/api"), "{targets:?}");
    assert!(!targets.contains(&"Deployment/shop/api"), "{targets:?}");
    // A cluster named without saying whose it is is refused.
    let out = binary(&[
        "propose",
        "--repo",
        repo_arg,
        "--kubeconfig",
        dev.kubeconfig().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("which environment is this cluster?"),
        "{}",
        text(&out)
    );
}

#[test]
fn check_dry_runs_each_environment_in_its_own_cluster_and_says_what_it_left_out() {
    let prod = TestCluster::start();
    let world = three_environments(&prod);
    let base = common::branch_head(&world.remote.bare, "main").unwrap();
    let merge = merged(
        &world,
        "all",
        &[
            ("dev/settings.yaml", "2"),
            ("prod/settings.yaml", "3"),
            ("staging/settings.yaml", "4"),
        ],
    );
    let repo = git2::Repository::open(&world.remote.work).unwrap();
    repo.find_remote("origin")
        .unwrap()
        .fetch(&["refs/heads/main:refs/remotes/origin/main"], None, None)
        .unwrap();
    let out = binary(&[
        "check",
        "--repo",
        world.work(),
        "--base",
        &base.to_string(),
        "--head",
        &merge,
        "--kubeconfig",
        prod.kubeconfig().to_str().unwrap(),
    ]);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(report.contains("Server-side dry-run"), "{report}");
    assert!(
        report.contains("Not dry-run: 1 objects of staging: it has no cluster"),
        "{report}"
    );
    let dry_runs = |cluster: &TestCluster| {
        cluster
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.query.contains("dryRun"))
            .count()
    };
    assert_eq!(dry_runs(&world.cluster), 1, "dev's object in dev");
    assert_eq!(dry_runs(&prod), 1, "prod's object in prod");
    assert_eq!(writes(&world.cluster) + writes(&prod), 0);
}
