//! `remediator propose` on the example: a real Git repository holding examples/repo (with the
//! worker's image history), the recorded snapshot, and branches checked commit by commit.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use git2::{Oid, Repository};
use serde_json::Value;

fn remediator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_remediator"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/snapshot")
}

/// The example in a fresh repository: prod first on shop-worker 3.2.0, then 3.3.0.
fn example_repository() -> (tempfile::TempDir, Repository) {
    let dir = common::copy_tree(&common::example_repo(), false);
    let repo = Repository::init(dir.path()).unwrap();
    let kustomization = dir.path().join("clusters/prod/kustomization.yaml");
    let text = std::fs::read_to_string(&kustomization).unwrap();
    std::fs::write(
        &kustomization,
        text.replace("newTag: \"3.3.0\"", "newTag: \"3.2.0\""),
    )
    .unwrap();
    common::commit_all(dir.path(), "shop platform");
    std::fs::write(&kustomization, text).unwrap();
    common::commit_all(dir.path(), "roll shop-worker 3.3.0 out to prod");
    (dir, repo)
}

fn propose_json(repo: &Path, snapshot: &Path) -> Value {
    let out = propose(
        repo.to_str().unwrap(),
        snapshot.to_str().unwrap(),
        &["--output", "json"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `remediator propose --repo REPO --snapshot SNAPSHOT EXTRA...`.
fn propose(repo: &str, snapshot: &str, extra: &[&str]) -> Output {
    remediator(
        &[
            &["propose", "--repo", repo, "--snapshot", snapshot][..],
            extra,
        ]
        .concat(),
    )
}

/// The lines a branch's single commit adds and removes, per file.
fn branch_change(repo: &Repository, branch: &str) -> Vec<String> {
    let tip = repo
        .find_branch(branch, git2::BranchType::Local)
        .unwrap()
        .get()
        .peel_to_commit()
        .unwrap();
    assert_eq!(tip.parent_count(), 1);
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(
        tip.parent_id(0).unwrap(),
        head.id(),
        "{branch} is one commit on HEAD"
    );
    let diff = repo
        .diff_tree_to_tree(
            Some(&head.tree().unwrap()),
            Some(&tip.tree().unwrap()),
            None,
        )
        .unwrap();
    let mut lines = Vec::new();
    diff.print(git2::DiffFormat::Patch, |delta, _, line| {
        let file = delta.new_file().path().unwrap().display().to_string();
        let text = String::from_utf8_lossy(line.content())
            .trim_end()
            .to_owned();
        match line.origin() {
            '+' | '-' => lines.push(format!("{file}: {}{text}", line.origin())),
            _ => {}
        }
        true
    })
    .unwrap();
    lines
}

/// The lines a branch adds for a new patch of the prod overlay: the kustomization's `patches`
/// entry, then the patch with its comment naming the finding.
fn overlay_patch(file: &str, finding: &str, body: &str) -> Vec<String> {
    let patch = format!("clusters/prod/patches/{file}");
    let mut lines = vec![format!(
        "clusters/prod/kustomization.yaml: +  - path: patches/{file}"
    )];
    lines.push(format!(
        "{patch}: +# remediator: {finding}; only this overlay's build sees it."
    ));
    lines.extend(body.lines().map(|l| format!("{patch}: +{l}")));
    lines
}

#[test]
fn the_example_gives_five_proposals_each_on_its_own_branch() {
    let (dir, repo) = example_repository();
    let report = propose_json(dir.path(), &snapshot_dir());
    let proposals = report["proposals"].as_array().unwrap();
    assert_eq!(proposals.len(), 5, "{report:#}");
    for p in proposals {
        assert!(!p["diff"].as_str().unwrap().is_empty());
        assert!(
            ["low", "medium", "high", "critical"].contains(&p["risk"].as_str().unwrap()),
            "{p}"
        );
        assert_eq!(p["published"], "created", "{p}");
    }
    let risk =
        |branch: &str| proposals.iter().find(|p| p["branch"] == branch).unwrap()["risk"].clone();
    assert_eq!(risk("remediator/node-not-ready/pool-b-3"), "critical");
    assert_eq!(risk("remediator/crash-loop-oom/shop-api"), "medium");

    // The bases under apps/ are shared by dev and prod: a fix for prod goes into a new patch
    // of the prod overlay, and the bases stay as they are.
    assert_eq!(
        branch_change(&repo, "remediator/crash-loop-oom/shop-api"),
        overlay_patch(
            "deployment-api-patch.yaml",
            "crash-loop-oom on Deployment/shop/api",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          resources:\n            limits:\n              memory: 665Mi\n            requests:\n              memory: 665Mi",
        )
    );
    assert_eq!(
        branch_change(&repo, "remediator/image-pull-backoff/shop-worker"),
        [
            "clusters/prod/kustomization.yaml: -    newTag: \"3.3.0\" # released 2026-11-20",
            "clusters/prod/kustomization.yaml: +    newTag: \"3.2.0\" # released 2026-11-20",
        ]
    );
    assert_eq!(
        branch_change(&repo, "remediator/high-cpu/shop-web"),
        overlay_patch(
            "horizontalpodautoscaler-web-patch.yaml",
            "high-cpu on Deployment/shop/web",
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\nspec:\n  maxReplicas: 9",
        )
    );
    assert_eq!(
        branch_change(&repo, "remediator/over-provisioned/shop-redis"),
        overlay_patch(
            "statefulset-redis-patch.yaml",
            "over-provisioned on StatefulSet/shop/redis",
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: redis\nspec:\n  template:\n    spec:\n      containers:\n        - name: redis\n          resources:\n            requests:\n              cpu: 230m\n              memory: 390Mi\n            limits:\n              memory: 390Mi",
        )
    );
    let drain = branch_change(&repo, "remediator/node-not-ready/pool-b-3");
    assert!(
        drain
            .iter()
            .all(|l| l.starts_with("remediations/drain-node-pool-b-3.yaml: +")),
        "{drain:#?}"
    );
    assert!(
        drain.contains(&"remediations/drain-node-pool-b-3.yaml: +  action: drain-node".to_owned()),
        "{drain:#?}"
    );

    // The commit carries its trailers; the working tree was not touched.
    let tip = repo
        .find_branch(
            "remediator/crash-loop-oom/shop-api",
            git2::BranchType::Local,
        )
        .unwrap()
        .get()
        .peel_to_commit()
        .unwrap();
    let message = tip.message().unwrap();
    assert!(
        message.contains("\nRemediation-Id: ")
            && message.contains("\nFinding: crash-loop-oom\n")
            && message.contains("\nRisk: medium\n"),
        "{message}"
    );
    let statuses = repo.statuses(None).unwrap();
    assert!(
        statuses
            .iter()
            .all(|s| s.status() == git2::Status::IGNORED || s.status().is_empty()),
        "the work tree changed"
    );
}

#[test]
fn running_twice_creates_nothing_and_a_changed_proposal_updates_its_branch() {
    let (dir, repo) = example_repository();
    propose_json(dir.path(), &snapshot_dir());
    let tips = |repo: &Repository| -> Vec<(String, Oid)> {
        let mut tips: Vec<_> = repo
            .branches(Some(git2::BranchType::Local))
            .unwrap()
            .map(|b| b.unwrap().0)
            .map(|b| {
                (
                    b.name().unwrap().unwrap().to_owned(),
                    b.get().target().unwrap(),
                )
            })
            .collect();
        tips.sort();
        tips
    };
    let before = tips(&repo);
    let again = propose_json(dir.path(), &snapshot_dir());
    assert!(
        again["proposals"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["published"] == "unchanged"),
        "{again:#}"
    );
    assert_eq!(tips(&repo), before);

    // A higher memory peak changes only the API's proposal.
    let snapshot = common::copy_tree(&snapshot_dir(), false);
    let usage = snapshot.path().join("usage.json");
    let mut history: Value =
        serde_json::from_str(&std::fs::read_to_string(&usage).unwrap()).unwrap();
    let api = history["containers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["workload"]["name"] == "api")
        .unwrap();
    api["memory"].as_array_mut().unwrap().last_mut().unwrap()[1] = Value::from(600.0 * 1048576.0);
    std::fs::write(&usage, history.to_string()).unwrap();
    let changed = propose_json(dir.path(), snapshot.path());
    for p in changed["proposals"].as_array().unwrap() {
        let expected = if p["branch"] == "remediator/crash-loop-oom/shop-api" {
            "updated"
        } else {
            "unchanged"
        };
        assert_eq!(p["published"], expected, "{}", p["branch"]);
    }
    assert!(
        branch_change(&repo, "remediator/crash-loop-oom/shop-api")
            .iter()
            .any(|l| l.ends_with("+              memory: 780Mi"))
    );
}

/// A Service (a kind detection does not use) and an OOM-killed pod of a Deployment the repository
/// does not declare.
const PAYMENTS: &str = r#"apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: payments-6d5f
  namespace: shop
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: payments, uid: d, controller: true}]
spec: {selector: {matchLabels: {app: payments}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: payments-6d5f-x
  namespace: shop
  labels: {pod-template-hash: 6d5f}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: payments-6d5f, uid: u, controller: true}]
spec: {containers: [{name: app, image: "payments:1"}]}
status:
  containerStatuses:
  - name: app
    image: payments:1
    imageID: ""
    ready: false
    restartCount: 6
    state: {waiting: {reason: CrashLoopBackOff}}
    lastState: {terminated: {reason: OOMKilled, exitCode: 137, finishedAt: "2026-11-20T14:29:00Z"}}
"#;

#[test]
fn bad_snapshot_input_is_named_and_the_other_findings_still_come_out() {
    let (dir, _repo) = example_repository();
    let snapshot = common::copy_tree(&snapshot_dir(), false);
    std::fs::write(
        snapshot.path().join("broken.yaml"),
        "apiVersion: v1\nkind: List\nitems:\n  - kind: Pod\n   metadata: {}\n",
    )
    .unwrap();
    std::fs::write(snapshot.path().join("other.yaml"), PAYMENTS).unwrap();
    // A usage file with a gap of several hours in the Redis history.
    let usage = snapshot.path().join("usage.json");
    let mut history: Value =
        serde_json::from_str(&std::fs::read_to_string(&usage).unwrap()).unwrap();
    let redis = history["containers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["workload"]["name"] == "redis")
        .unwrap();
    redis["cpu"].as_array_mut().unwrap().drain(100..110);
    std::fs::write(&usage, history.to_string()).unwrap();

    let out = propose(
        dir.path().to_str().unwrap(),
        snapshot.path().to_str().unwrap(),
        &["--forge", "none"],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("broken.yaml:5:"), "{stderr}");
    assert!(
        stderr
            .contains("other.yaml: skipped 1 objects of kinds detection does not use (Service 1)"),
        "{stderr}"
    );
    assert!(stdout.starts_with("6 findings: 5 proposals"), "{stdout}");
    assert!(stdout.contains("crash-loop-oom Deployment/shop/payments: Deployment/shop/payments is not declared in the repository"), "{stdout}");
    let body = propose(
        dir.path().to_str().unwrap(),
        snapshot.path().to_str().unwrap(),
        &["--forge", "none", "--output", "markdown"],
    );
    let body = String::from_utf8_lossy(&body.stdout);
    assert!(body.contains("| gaps | 1 (longest 11h 0m) |"), "{body}");
}

#[test]
fn the_pull_request_body_is_stable() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "the_pull_request_body_is_stable",
    ) {
        return;
    }
    let (dir, _repo) = example_repository();
    let out = dir.path().join("prs");
    let run = propose(
        dir.path().to_str().unwrap(),
        snapshot_dir().to_str().unwrap(),
        &["--forge", "none", "--out", out.to_str().unwrap()],
    );
    assert_eq!(run.status.code(), Some(0));
    let body = std::fs::read_to_string(out.join("crash-loop-oom_shop-api.md")).unwrap();
    insta::assert_snapshot!("crash_loop_oom_pull_request", body);
    let redis = std::fs::read_to_string(out.join("over-provisioned_shop-redis.md")).unwrap();
    insta::assert_snapshot!("over_provisioned_pull_request", redis);
}

#[test]
fn policies_templates_and_environment_can_be_chosen() {
    let (dir, _repo) = example_repository();
    let repo = dir.path().to_str().unwrap().to_owned();
    let snapshot = snapshot_dir();
    let snapshot = snapshot.to_str().unwrap();

    // A team's own policies: every change in production is critical.
    let policies = tempfile::tempdir().unwrap();
    let default = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/remediator.rego"),
    )
    .unwrap();
    let strict = default.replace(
        "reasons contains {\"level\": \"medium\", \"reason\": \"the action cannot be undone by a revert\"}",
        "reasons contains {\"level\": \"critical\", \"reason\": \"production is frozen\"} if production\n\nreasons contains {\"level\": \"medium\", \"reason\": \"the action cannot be undone by a revert\"}",
    );
    assert_ne!(strict, default);
    std::fs::write(policies.path().join("team.rego"), strict).unwrap();
    let out = propose(
        &repo,
        snapshot,
        &[
            "--forge",
            "none",
            "--output",
            "json",
            "--policies",
            policies.path().to_str().unwrap(),
        ],
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let api = report["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["branch"] == "remediator/crash-loop-oom/shop-api")
        .unwrap();
    assert_eq!(api["risk"], "critical");

    // A policy that does not parse is an error naming its file.
    std::fs::write(
        policies.path().join("broken.rego"),
        "package remediator\n\nx if {\n",
    )
    .unwrap();
    let out = propose(
        &repo,
        snapshot,
        &[
            "--forge",
            "none",
            "--policies",
            policies.path().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("broken.rego"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A template replaced by a file of the same name.
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("pr_title.txt.j2"),
        "[{{ risk }}] {{ target }}\n",
    )
    .unwrap();
    let out = propose(
        &repo,
        snapshot,
        &[
            "--forge",
            "none",
            "--output",
            "markdown",
            "--templates",
            templates.path().to_str().unwrap(),
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("# [medium] Deployment/shop/api\n"));

    // Only the dev environment: the snapshot's namespace is production's, so nothing is declared there.
    let out = propose(&repo, snapshot, &["--forge", "none", "--env", "dev"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "Deployment/shop/api is not declared in the repository for environment `dev`"
        ),
        "{stdout}"
    );
}

#[test]
fn a_github_forge_without_a_token_is_refused_before_anything_is_published() {
    let (dir, repo) = example_repository();
    let config = dir.path().join("remediator.yaml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "  type: local",
        "  type: github\n  repository: acme/platform-config",
    );
    std::fs::write(&config, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_remediator"))
        .args(["propose", "--repo", dir.path().to_str().unwrap()])
        .args(["--snapshot", snapshot_dir().to_str().unwrap()])
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        "error: the GitHub forge needs a token or an App: set GITHUB_TOKEN, or forge.app\n"
    );
    assert_eq!(
        repo.branches(Some(git2::BranchType::Local))
            .unwrap()
            .count(),
        1,
        "only the base branch"
    );
}

#[test]
fn a_fix_for_prod_in_a_shared_base_changes_prod_alone_as_kustomize_renders_it() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_fix_for_prod_in_a_shared_base_changes_prod_alone_as_kustomize_renders_it",
    ) {
        return;
    }
    let (dir, _repo) = example_repository();
    propose_json(dir.path(), &snapshot_dir());
    let repo = dir.path().to_str().unwrap();
    let checked = remediator(&[
        "check",
        "--repo",
        repo,
        "--base",
        "HEAD",
        "--head",
        "remediator/crash-loop-oom/shop-api",
        "--output",
        "json",
    ]);
    let report: Value = serde_json::from_slice(&checked.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&checked.stderr)));
    let objects = report["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1, "{report:#}");
    assert_eq!(objects[0]["object"], "Deployment/shop/api");
    assert_eq!(
        objects[0]["environment"], "prod",
        "dev's build is untouched"
    );
    let fields: Vec<(&str, &str)> = objects[0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["new"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        [
            (
                "spec.template.spec.containers[name=api].resources.limits.memory",
                "665Mi"
            ),
            (
                "spec.template.spec.containers[name=api].resources.requests.memory",
                "665Mi"
            ),
        ]
    );
}
