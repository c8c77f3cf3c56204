//! The merge path end to end, through the binary: the test API server, the fake GitHub and real
//! Git repositories pushed over `file://`. A crash-looping Deployment becomes one pull request;
//! its merge is gated on approvals, applied, verified, commented on and recorded; a failing
//! rollout is reverted; an Argo CD object is left to Argo CD; retries, re-runs and races never
//! apply anything twice.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::faults::{Calls, fault_matrix, logged, steady};
use common::world::{World, text};
use serde_json::{Value, json};
use testkit::github::{BOT_TOKEN, BOT_USER, FakeGitHub, ReviewState};
use testkit::{Fault, FaultKind, PodState, Rollout, TestCluster};

impl World {
    /// The dev build applied, and the api container OOM-killed in the api's pods (the log
    /// shipper beside it runs).
    fn crash_looping(&self) {
        let applied = self.run(&["apply", "--path", "clusters/dev"]);
        assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
        let pods = self
            .cluster
            .add_pods("shop-dev", "api", 2, &PodState::oom_killed(6))
            .unwrap();
        for pod in pods {
            self.cluster
                .set_container_state("shop-dev", &pod, "log-shipper", &PodState::Running)
                .unwrap();
        }
    }

    fn api(&self) -> Value {
        self.cluster
            .object("Deployment", "shop-dev", "api")
            .unwrap()
    }

    /// The pull request the api's crash loop gets, approved by `approvers` and merged.
    fn proposed_and_merged(&self, approvers: &[&str]) -> (u64, String) {
        self.crash_looping();
        let proposed = self.run(&["propose", "--forge", "github"]);
        assert_eq!(proposed.status.code(), Some(0), "{}", text(&proposed));
        let pulls = self.github.pulls();
        assert_eq!(pulls.len(), 1, "{}", text(&proposed));
        let number = pulls[0].number;
        for approver in approvers {
            self.github.review(number, approver, ReviewState::Approved);
        }
        (number, self.github.merge(number))
    }
}

fn memory_limit(deployment: &Value) -> Value {
    deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"].clone()
}

fn last_status(github: &FakeGitHub, sha: &str) -> String {
    github
        .statuses(sha)
        .last()
        .map(|s| s.state.clone())
        .unwrap_or_default()
}

#[test]
fn an_oom_crash_loop_goes_from_pull_request_to_a_healthy_cluster_through_faults() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "an_oom_crash_loop_goes_from_pull_request_to_a_healthy_cluster_through_faults",
    ) {
        return;
    }
    let world = World::new(None);
    let faults = world.github.faults();
    common::publishing_faults(faults);
    world.crash_looping();
    let proposed = world.run(&["propose", "--forge", "github"]);
    assert_eq!(proposed.status.code(), Some(0), "{}", text(&proposed));
    assert_eq!(world.github.pulls().len(), 1, "{}", text(&proposed));
    let number = world.github.pulls()[0].number;
    let pull = world.github.pull(number);
    assert!(
        pull.head.starts_with("remediator/crash-loop-oom/"),
        "{}",
        pull.head
    );
    assert!(pull.labels.contains(&"remediator".to_owned()));
    assert!(pull.labels.contains(&"finding/crash-loop-oom".to_owned()));
    assert!(pull.labels.iter().any(|l| l.starts_with("risk/")));
    assert!(pull.body.contains("Server-side dry-run"), "{}", pull.body);

    // Proposing again updates the one pull request.
    let again = world.run(&["propose", "--forge", "github"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(world.github.pulls().len(), 1);
    assert!(
        text(&again).contains(&format!("#{number} updated")),
        "{}",
        text(&again)
    );
    world.github.review(number, "alice", ReviewState::Approved);
    let merge = world.github.merge(number);

    let before = memory_limit(&world.api());
    world.cluster.follow_spec(Duration::from_millis(200));
    faults.add(Fault::new("POST", "*/comments", FaultKind::Status(500)));
    faults.add(Fault::new("POST", "*/statuses/*", FaultKind::Status(503)).times(2));
    faults.add(Fault::new(
        "GET",
        "*/pulls/*/reviews",
        FaultKind::RateLimit { reset_in: 1 },
    ));
    let reconciled = world.reconcile(&merge);
    assert_eq!(reconciled.status.code(), Some(0), "{}", text(&reconciled));
    assert!(
        text(&reconciled).contains("healthy"),
        "{}",
        text(&reconciled)
    );
    let after = memory_limit(&world.api());
    assert_ne!(after, before, "the memory limit was raised");
    assert_eq!(
        world.writes("/deployments/api"),
        2,
        "one apply before, one for the merge"
    );

    let comments = world.github.comments(number);
    let outcome: Vec<_> = comments
        .iter()
        .filter(|c| c.body.contains("applied and healthy"))
        .collect();
    assert_eq!(outcome.len(), 1, "{comments:?}");
    assert!(
        outcome[0]
            .body
            .contains("`Deployment/shop-dev/api` | configured"),
        "{}",
        outcome[0].body
    );
    assert!(
        outcome[0].body.contains("**After** (health)"),
        "{}",
        outcome[0].body
    );
    assert_eq!(last_status(&world.github, &merge), "success");

    let history = world.run(&["history", "--object", "Deployment/shop-dev/api"]);
    let shown = text(&history);
    assert_eq!(history.status.code(), Some(0), "{shown}");
    let order = ["proposed", "policy", "approval", "applied", "verified"];
    let positions: Vec<usize> = order
        .iter()
        .map(|e| {
            shown
                .find(&format!(" {e} "))
                .unwrap_or_else(|| panic!("{e} missing:\n{shown}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{shown}");
    assert!(shown.contains(&format!("#{number}")), "{shown}");

    // Again for the same commit: nothing to do, nothing written.
    let rerun = world.reconcile(&merge);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));
    assert!(
        text(&rerun).contains("already done: verified"),
        "{}",
        text(&rerun)
    );
    assert_eq!(world.writes("/deployments/api"), 2);

    // A rollback on request: a revert commit on main, the old limit back, healthy.
    let rolled = world.run(&["rollback", "--commit", &merge, "--env", "dev"]);
    assert_eq!(rolled.status.code(), Some(0), "{}", text(&rolled));
    assert_eq!(memory_limit(&world.api()), before);
    let main = world.github.branch_head("main").unwrap();
    let repo = git2::Repository::open_bare(&world.remote.bare).unwrap();
    let message = repo
        .find_commit(git2::Oid::from_str(&main).unwrap())
        .unwrap()
        .message()
        .unwrap()
        .to_owned();
    assert!(message.contains(&format!("Reverts: {merge}")), "{message}");
    let id = world.last("proposed")["remediation"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains(&format!("Remediation-Id: {id}")),
        "the remediation's own id: {message}"
    );
    assert!(
        message.contains(&format!("Reverts-Pull-Request: #{number}")),
        "{message}"
    );
    assert!(
        world
            .github
            .comments(number)
            .iter()
            .any(|c| c.body.contains("rolled back"))
    );
}

#[test]
fn a_merge_without_the_approvals_it_needs_is_refused_and_nothing_is_applied() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_merge_without_the_approvals_it_needs_is_refused_and_nothing_is_applied",
    ) {
        return;
    }
    let world = World::new(None);
    let (number, merge) = world.proposed_and_merged(&[]);
    let before = memory_limit(&world.api());
    world.cluster.follow_spec(Duration::from_millis(200));
    let refused = |why: &str| {
        let out = world.reconcile(&merge);
        assert_eq!(out.status.code(), Some(1), "{why}: {}", text(&out));
        assert!(
            text(&out).contains("refused, nothing applied"),
            "{why}: {}",
            text(&out)
        );
        assert!(
            text(&out).contains("needs 1 approval"),
            "{why}: {}",
            text(&out)
        );
        assert_eq!(memory_limit(&world.api()), before, "{why}");
        assert_eq!(last_status(&world.github, &merge), "failure", "{why}");
    };
    refused("no approval");
    world.github.review(number, BOT_USER, ReviewState::Approved);
    refused("the author's own approval");
    world.github.review(number, "alice", ReviewState::Approved);
    world
        .github
        .review(number, "alice", ReviewState::ChangesRequested);
    refused("an approval withdrawn");
    world.github.set_labels(number, &["remediator", "risk/low"]);
    refused("the risk label edited down");
    assert_eq!(world.writes("/deployments/api"), 1, "only the first apply");
    let comments = world.github.comments(number);
    let refusal: Vec<_> = comments
        .iter()
        .filter(|c| c.body.contains("**refused**"))
        .collect();
    assert_eq!(refusal.len(), 1, "one comment, updated in place");
    let refusals = world.events().iter().filter(|e| *e == "refused").count();
    assert_eq!(refusals, 4);

    world.github.review(number, "bob", ReviewState::Approved);
    let applied = world.reconcile(&merge);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert_ne!(memory_limit(&world.api()), before);
}

#[test]
fn a_required_check_that_failed_on_the_merged_head_refuses_the_merge_whether_run_or_status() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_required_check_that_failed_on_the_merged_head_refuses_the_merge_whether_run_or_status",
    ) {
        return;
    }
    let world = World::new(None);
    reconfigure(&world, "Require ci/test", |text| {
        text.replace("approvals:\n", "approvals:\n  requiredChecks: [ci/test]\n")
    });
    let (number, merge) = world.proposed_and_merged(&["bob"]);
    let head = world.github.pull(number).head_sha.unwrap();
    let before = memory_limit(&world.api());
    let refused = |why: &str, reason: &str| {
        let out = world.reconcile(&merge);
        assert_eq!(out.status.code(), Some(1), "{why}: {}", text(&out));
        assert!(
            text(&out).contains("refused, nothing applied"),
            "{why}: {}",
            text(&out)
        );
        assert!(text(&out).contains(reason), "{why}: {}", text(&out));
        assert_eq!(memory_limit(&world.api()), before, "{why}");
    };
    refused(
        "nothing reported",
        "the required check `ci/test` has not reported on the merged head",
    );
    world.github.add_check_run(&head, "ci/test", "failure");
    refused(
        "a failed check run",
        "the required check run `ci/test` is failing (failure)",
    );
    world.github.add_check_run(&head, "ci/test", "success");
    world.github.add_status(&head, "ci/test", "error");
    refused(
        "a passing check run and a failing status",
        "the required commit status `ci/test` is failing (error)",
    );
    world.github.add_status(&head, "ci/test", "success");
    world.cluster.follow_spec(Duration::from_millis(200));
    let applied = world.reconcile(&merge);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert_ne!(memory_limit(&world.api()), before);
    let approval = world.last("approval");
    assert_eq!(
        approval["detail"]["checks"].as_array().unwrap().len(),
        2,
        "{approval}"
    );
}

/// web's live image.
fn web_image(world: &World) -> String {
    let web = world
        .cluster
        .object("Deployment", "default", "web")
        .unwrap();
    web["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Runs `run` while a controller fails every rollout of web:2 and completes those of web:1;
/// returns what `run` gave and whether a rollout of web:2 was failed. As the Deployment
/// controller does, it first observes each new generation alone, keeping a deadline exceeded
/// on an earlier revision, and completes the rollout of web:1 half a second later.
fn with_web_2_failing<T>(world: &World, run: impl FnOnce() -> T) -> (T, bool) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let controller = scope.spawn(|| {
            let mut failed = false;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let web = world
                    .cluster
                    .object("Deployment", "default", "web")
                    .unwrap();
                if web["metadata"]["generation"] != web["status"]["observedGeneration"] {
                    let set = |rollout| {
                        world
                            .cluster
                            .set_rollout("Deployment", "default", "web", rollout)
                            .unwrap();
                    };
                    set(Rollout::Observed);
                    if web_image(world) == "web:2" {
                        failed = true;
                        set(Rollout::Failed);
                    } else {
                        std::thread::sleep(Duration::from_millis(500));
                        set(Rollout::Done);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            failed
        });
        let out = run();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (out, controller.join().unwrap())
    })
}

/// A bump of web to web:2, proposed, approved by alice and merged: its pull request and merge
/// commit.
fn web_bump_merged(world: &World) -> (u64, String) {
    push_branch(world, "bump-web", "image: web:1", "image: web:2");
    let number = world
        .github
        .open_pull("bump-web", "main", "Bump web to 2", "dev");
    world.github.review(number, "alice", ReviewState::Approved);
    (number, world.github.merge(number))
}

#[test]
fn a_failing_rollout_is_reverted_on_main_and_the_old_state_applied() {
    let world = running_web();
    let (number, merge) = web_bump_merged(&world);
    let (out, failed) =
        with_web_2_failing(&world, || world.run(&["reconcile", "--commit", &merge]));
    assert!(failed, "the merged revision was failed");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("ProgressDeadlineExceeded"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("; healthy"), "{}", text(&out));
    assert_eq!(web_image(&world), "web:1", "the reverted state is live");

    let main = world.github.branch_head("main").unwrap();
    let repo = git2::Repository::open_bare(&world.remote.bare).unwrap();
    let revert = repo
        .find_commit(git2::Oid::from_str(&main).unwrap())
        .unwrap();
    assert_eq!(
        revert.parent_id(0).unwrap().to_string(),
        merge,
        "the revert is on top of the merge"
    );
    let message = revert.message().unwrap();
    assert!(message.contains(&format!("Reverts: {merge}")), "{message}");
    assert!(
        message.contains(&format!("Reverts-Pull-Request: #{number}")),
        "{message}"
    );
    // A change that is not a remediation: its chain is its commit's.
    assert!(
        message.contains(&format!("Remediation-Id: {merge}")),
        "{message}"
    );
    let file = revert
        .tree()
        .unwrap()
        .get_path(Path::new("web.yaml"))
        .unwrap()
        .to_object(&repo)
        .unwrap();
    assert!(
        String::from_utf8_lossy(file.as_blob().unwrap().content())
            .contains("image: web:1 # the tag")
    );
    let comments = world.github.comments(number);
    assert!(
        comments.iter().any(|c| c.body.contains("**not healthy**")),
        "{comments:?}"
    );
    assert!(
        comments
            .iter()
            .any(|c| c.body.contains(&format!("is reverted by {}", &main[..12]))),
        "{comments:?}"
    );
    assert_eq!(last_status(&world.github, &merge), "failure");
    assert_eq!(last_status(&world.github, &main), "success");
    let events = world.events();
    assert!(
        events.contains(&"failed".to_owned()) && events.contains(&"rolled-back".to_owned()),
        "{events:?}"
    );
    let history = text(&world.run(&["history", "--object", "Deployment/default/web"]));
    assert!(
        history.contains(&main[..12]) && history.contains(&merge[..12]),
        "{history}"
    );
    let rerun = world.run(&["reconcile", "--commit", &merge]);
    assert!(
        text(&rerun).contains("already done: rolled-back"),
        "{}",
        text(&rerun)
    );
    let revert_run = world.run(&["reconcile", "--commit", &main]);
    assert!(
        text(&revert_run).contains("already done: rolled-back"),
        "{}",
        text(&revert_run)
    );
}

/// Rewrites the world's remediator.yaml with `edit`, commits it as `message` and pushes it to
/// main, where the gate reads it.
fn reconfigure(world: &World, message: &str, edit: impl FnOnce(String) -> String) {
    let config = world.remote.work.join("remediator.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, edit(text)).unwrap();
    common::commit_all(&world.remote.work, message);
    common::push(&world.remote.work, "refs/heads/main:refs/heads/main");
}

/// Rollbacks become pull requests, as on a protected base branch.
fn roll_back_by_pull_request(world: &World) {
    reconfigure(world, "Roll back through pull requests", |text| {
        text.replace("reconcile:\n", "reconcile:\n  rollback: pull-request\n")
    });
}

/// Commits an edit of web.yaml and pushes it as `branch`; the local main stays where it was.
fn push_branch(world: &World, branch: &str, from: &str, to: &str) {
    let before = common::branch_head(&world.remote.work, "main").unwrap();
    push_change_to(
        world,
        from,
        to,
        &format!("refs/heads/main:refs/heads/{branch}"),
    );
    let repo = git2::Repository::open(&world.remote.work).unwrap();
    let commit = repo.find_object(before, None).unwrap();
    repo.reset(&commit, git2::ResetType::Hard, None).unwrap();
}

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: web:1 # the tag
";

fn web_world() -> World {
    let world = World::new(Some(&[("web.yaml", WEB)]));
    world.cluster.follow_spec(Duration::from_millis(200));
    world
}

/// The web repository, applied and rolled out.
fn running_web() -> World {
    let world = World::new(Some(&[("web.yaml", WEB)]));
    let applied = world.run(&["apply", "--path", "."]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    world
        .cluster
        .set_rollout("Deployment", "default", "web", Rollout::Done)
        .unwrap();
    world
}

/// Commits an edit of web.yaml directly on main and pushes it.
fn push_change(world: &World, from: &str, to: &str) -> String {
    push_change_to(world, from, to, "refs/heads/main:refs/heads/main")
}

fn push_change_to(world: &World, from: &str, to: &str, refspec: &str) -> String {
    let file = world.remote.work.join("web.yaml");
    let text = std::fs::read_to_string(&file).unwrap().replace(from, to);
    std::fs::write(&file, text).unwrap();
    let commit = common::commit_all(&world.remote.work, &format!("web: {to}"));
    common::push(&world.remote.work, refspec);
    commit.to_string()
}

#[test]
fn an_argo_cd_object_is_left_to_argo_cd_and_its_sync_is_awaited() {
    let world = web_world();
    let mut live: Value = serde_saphyr::from_str(WEB).unwrap();
    live["metadata"]["annotations"] =
        serde_json::json!({"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:default/web"});
    world.cluster.create(live, "argocd-controller").unwrap();
    let commit = push_change(&world, "image: web:1", "image: web:2");
    let out = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_secs(1));
            let mut synced = world
                .cluster
                .object("Deployment", "default", "web")
                .unwrap();
            synced["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2".into();
            argo_sync(&world.cluster, synced);
        });
        world.run(&["reconcile", "--commit", &commit])
    });
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("Deployment/default/web skipped"),
        "{}",
        text(&out)
    );
    assert_eq!(
        world.writes("/deployments/web"),
        0,
        "remediator wrote nothing"
    );
    let handed = world
        .audit()
        .into_iter()
        .find(|r| r["event"] == "handed-off")
        .unwrap();
    assert!(
        handed["message"]
            .as_str()
            .unwrap()
            .contains("synced by their GitOps tool"),
        "{handed}"
    );
}

/// Runs `future` to its end on a runtime of its own, for a test that is not async.
fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Argo CD's sync: an update of the whole object by its own manager.
fn argo_sync(cluster: &TestCluster, object: Value) {
    block_on(async {
        let client = cluster.client();
        let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
            client,
            "default",
            &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
                "apps",
                "v1",
                "Deployment",
            )),
        );
        let object: kube::api::DynamicObject = serde_json::from_value(object).unwrap();
        let params = kube::api::PostParams {
            field_manager: Some("argocd-controller".into()),
            ..Default::default()
        };
        api.replace("web", &params, &object).await.unwrap();
    });
}

#[test]
fn a_reconcile_that_stops_midway_is_finished_by_the_next_without_a_second_write() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_reconcile_that_stops_midway_is_finished_by_the_next_without_a_second_write",
    ) {
        return;
    }
    let world = World::new(None);
    let (number, merge) = world.proposed_and_merged(&["alice"]);
    world.cluster.follow_spec(Duration::from_millis(200));
    world
        .github
        .faults()
        .add(Fault::new("POST", "*/comments", FaultKind::Status(500)).times(1000));
    let crashed = world.reconcile(&merge);
    assert_eq!(crashed.status.code(), Some(2), "{}", text(&crashed));
    assert!(
        text(&crashed).contains("GitHub answered 500"),
        "{}",
        text(&crashed)
    );
    assert_eq!(world.writes("/deployments/api"), 2);
    assert!(!world.events().contains(&"verified".to_owned()));
    world.github.faults().clear();
    let finished = world.reconcile(&merge);
    assert_eq!(finished.status.code(), Some(0), "{}", text(&finished));
    assert_eq!(world.writes("/deployments/api"), 2, "nothing applied twice");
    assert!(
        world
            .github
            .comments(number)
            .iter()
            .any(|c| c.body.contains("applied and healthy"))
    );
    assert_eq!(world.events().last().map(String::as_str), Some("verified"));
}

#[test]
fn of_two_reconciles_racing_on_one_object_only_the_lock_holder_applies() {
    let world = running_web();
    let first = push_change(&world, "replicas: 2", "replicas: 3");
    let second = push_change(&world, "image: web:1", "image: web:2");
    let lease = {
        let object =
            remediator::model::ObjectRef::new("apps/v1", "Deployment", Some("default"), "web");
        remediator::cluster::lock::lease_name(&object)
    };
    let (first_out, second_out, holder_name) = std::thread::scope(|scope| {
        let holder = scope.spawn(|| world.run(&["reconcile", "--commit", &first]));
        let deadline = Instant::now() + Duration::from_secs(20);
        let holder_name = loop {
            let held = world
                .cluster
                .object("Lease", "default", &lease)
                .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned));
            if let Some(name) = held {
                break name;
            }
            assert!(
                Instant::now() < deadline,
                "the first reconcile never took the lock"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let second_out = world.run(&["reconcile", "--commit", &second]);
        // Now let the first rollout finish.
        world
            .cluster
            .set_rollout("Deployment", "default", "web", Rollout::Done)
            .unwrap();
        (holder.join().unwrap(), second_out, holder_name)
    });
    assert_eq!(first_out.status.code(), Some(0), "{}", text(&first_out));
    assert_eq!(second_out.status.code(), Some(1), "{}", text(&second_out));
    // The holder is the first process, by its name: the host's, and a suffix of its own.
    assert!(
        text(&second_out).contains(&format!("locked by {holder_name} ")),
        "{}",
        text(&second_out)
    );
    let live = world
        .cluster
        .object("Deployment", "default", "web")
        .unwrap();
    assert_eq!(live["spec"]["replicas"], 3);
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"], "web:1",
        "the second applied nothing"
    );
    let lease = world.cluster.object("Lease", "default", &lease).unwrap();
    assert!(
        lease["spec"]["holderIdentity"].is_null(),
        "released: {lease}"
    );
    assert_eq!(
        lease["spec"]["leaseDurationSeconds"], 60,
        "renewed while held, so a dead holder's lock is free within a minute"
    );
    // Once the lock is free the second goes through.
    world.cluster.follow_spec(Duration::from_millis(200));
    let retried = world.run(&["reconcile", "--commit", &second]);
    assert_eq!(retried.status.code(), Some(0), "{}", text(&retried));
    let live = world
        .cluster
        .object("Deployment", "default", "web")
        .unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        "web:2"
    );
}

#[test]
fn history_without_records_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_remediator"))
        .args(["history", "--repo", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no records in"), "{}", text(&out));
}

const DRAIN: &str = "# An imperative action: remediator executes it when this change is merged.
apiVersion: remediator.dev/v1alpha1
kind: Remediation
metadata:
  name: drain-node-n1
spec:
  action: drain-node
  target: {kind: Node, name: n1}
  finding: node-not-ready
  options: {ignoreDaemonSets: true, timeout: 20s}
  undo: {action: uncordon-node, note: pods moved away do not move back on their own}
";

/// Creates a PodDisruptionBudget for the pods labelled `app: NAME` that allows `allowed`
/// disruptions.
fn budget(cluster: &TestCluster, name: &str, allowed: i64) {
    let pdb = serde_json::json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": name}}}});
    cluster.create(pdb, "kubectl").unwrap();
    let status = serde_json::json!({"disruptionsAllowed": allowed, "desiredHealthy": 1,
        "currentHealthy": 1 + allowed, "expectedPods": 1 + allowed, "observedGeneration": 1});
    cluster
        .set_status("PodDisruptionBudget", "default", name, status)
        .unwrap();
}

#[test]
fn a_merged_drain_record_is_carried_out_once_approved_and_undone_by_its_rollback() {
    let world = World::new(Some(&[("web.yaml", WEB)]));
    let node = serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {}});
    world.cluster.create(node, "kubelet").unwrap();
    world
        .cluster
        .create(common::pod_on("n1", "app", None), "kube-controller-manager")
        .unwrap();
    budget(&world.cluster, "app", 1);
    world
        .cluster
        .create(
            common::pod_on("n1", "agent-x", Some("DaemonSet")),
            "kube-controller-manager",
        )
        .unwrap();
    world
        .cluster
        .create(
            common::pod_on("n2", "elsewhere", None),
            "kube-controller-manager",
        )
        .unwrap();
    common::write_files(&world.remote.work, &[("actions/drain-node-n1.yaml", DRAIN)]);
    let before = common::branch_head(&world.remote.work, "main").unwrap();
    common::commit_all(
        &world.remote.work,
        "Drain node n1\n\nRemediation-Id: 0123456789ab\nFinding: node-not-ready\nAction: drain-node\n",
    );
    common::push(
        &world.remote.work,
        "refs/heads/main:refs/heads/remediator/node-not-ready/n1",
    );
    let repo = git2::Repository::open(&world.remote.work).unwrap();
    repo.reset(
        &repo.find_object(before, None).unwrap(),
        git2::ResetType::Hard,
        None,
    )
    .unwrap();
    let number = world.github.open_pull(
        "remediator/node-not-ready/n1",
        "main",
        "Drain node n1",
        BOT_USER,
    );
    world.github.review(number, "alice", ReviewState::Approved);
    world.github.review(number, "bob", ReviewState::Approved);
    let merge = world.github.merge(number);

    let refused = world.run(&["reconcile", "--commit", &merge]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("an approval from team `security` (carol) is required"),
        "{}",
        text(&refused)
    );
    assert!(world.cluster.object("Node", "", "n1").unwrap()["spec"]["unschedulable"].is_null());

    world.github.review(number, "carol", ReviewState::Approved);
    let drained = world.run(&["reconcile", "--commit", &merge]);
    assert_eq!(drained.status.code(), Some(0), "{}", text(&drained));
    assert_eq!(
        world.cluster.object("Node", "", "n1").unwrap()["spec"]["unschedulable"],
        true
    );
    assert!(
        world.cluster.object("Pod", "default", "app").is_none(),
        "evicted"
    );
    let used = world
        .cluster
        .object("PodDisruptionBudget", "default", "app")
        .unwrap();
    assert_eq!(
        used["status"]["disruptionsAllowed"], 0,
        "the eviction used the budget"
    );
    assert!(
        world.cluster.object("Pod", "default", "agent-x").is_some(),
        "DaemonSet pods stay"
    );
    assert!(
        world
            .cluster
            .object("Pod", "default", "elsewhere")
            .is_some(),
        "other nodes untouched"
    );
    let executed = world
        .audit()
        .into_iter()
        .find(|r| r["event"] == "executed")
        .unwrap();
    assert_eq!(executed["detail"]["undo"]["action"], "uncordon-node");
    let done = executed["detail"]["done"].to_string();
    assert!(
        done.contains("cordoned Node/n1") && done.contains("evicted Pod/default/app"),
        "{done}"
    );
    assert!(
        done.contains("left Pod/default/agent-x (DaemonSet)"),
        "{done}"
    );
    let comment = world
        .github
        .comments(number)
        .into_iter()
        .find(|c| c.body.contains("applied and healthy"))
        .unwrap();
    assert!(
        comment
            .body
            .contains("| action record | evicted Pod/default/app |"),
        "{}",
        comment.body
    );

    let undone = world.run(&["rollback", "--commit", &merge]);
    assert_eq!(undone.status.code(), Some(0), "{}", text(&undone));
    assert_eq!(
        world.cluster.object("Node", "", "n1").unwrap()["spec"]["unschedulable"],
        false
    );
}

#[test]
fn a_repository_given_by_url_is_cloned_once_and_fetched_again() {
    let world = web_world();
    let cache = tempfile::tempdir().unwrap();
    let url = format!("file://{}", world.remote.bare.display());
    let reconcile = |commit: &str| {
        Command::new(env!("CARGO_BIN_EXE_remediator"))
            .args(["reconcile", "--repo", &url, "--commit", commit])
            .args(["--kubeconfig", world.cluster.kubeconfig().to_str().unwrap()])
            .env("GITHUB_TOKEN", BOT_TOKEN)
            .env("XDG_CACHE_HOME", cache.path())
            .output()
            .unwrap()
    };
    let first = push_change(&world, "replicas: 2", "replicas: 3");
    let out = reconcile(&first);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let second = push_change(&world, "image: web:1", "image: web:2");
    let out = reconcile(&second);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let live = world
        .cluster
        .object("Deployment", "default", "web")
        .unwrap();
    assert_eq!(live["spec"]["replicas"], 3);
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        "web:2"
    );
    let clones: Vec<_> = std::fs::read_dir(cache.path().join("remediator/clones"))
        .unwrap()
        .collect();
    assert_eq!(clones.len(), 1, "one clone, reused");
    let clone = clones[0].as_ref().unwrap().path();
    let log = std::fs::read_to_string(clone.join(".git/remediator/audit.jsonl")).unwrap();
    assert_eq!(log.matches("\"verified\"").count(), 2, "{log}");
}

#[test]
fn a_pull_request_whose_finding_has_cleared_is_closed_with_a_comment() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_pull_request_whose_finding_has_cleared_is_closed_with_a_comment",
    ) {
        return;
    }
    let world = World::new(None);
    world.crash_looping();
    let proposed = world.run(&["propose", "--forge", "github"]);
    assert_eq!(proposed.status.code(), Some(0), "{}", text(&proposed));
    let number = world.github.pulls()[0].number;
    // The pods recover by themselves: the next run finds nothing to fix.
    let names = block_on(async {
        let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
            kube::Api::namespaced(world.cluster.client(), "shop-dev");
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .filter(|n| n.starts_with("api-"))
            .collect::<Vec<_>>()
    });
    assert!(!names.is_empty());
    for name in &names {
        world
            .cluster
            .set_pod_state("shop-dev", name, &PodState::Running)
            .unwrap();
    }
    // A kind that could not be listed in this run: nothing is closed on what was not read.
    world
        .cluster
        .faults()
        .add(Fault::new("GET", "/api/v1/nodes", FaultKind::Status(403)).times(2));
    let partial = world.run(&["propose", "--forge", "github"]);
    assert_eq!(partial.status.code(), Some(0), "{}", text(&partial));
    assert!(text(&partial).contains("cannot list"), "{}", text(&partial));
    assert!(!text(&partial).contains("closed #"), "{}", text(&partial));
    assert_eq!(world.github.pull(number).state, "open");
    // The pull request says why it stays open.
    let kept: Vec<_> = world
        .github
        .comments(number)
        .into_iter()
        .filter(|c| c.body.contains("stays open"))
        .collect();
    assert_eq!(kept.len(), 1, "one comment");
    assert!(
        kept[0].body.contains("not everything was read") && kept[0].body.contains("nodes"),
        "{}",
        kept[0].body
    );
    let again = world.run(&["propose", "--forge", "github"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains(&format!("closed #{number}")),
        "{}",
        text(&again)
    );
    let pull = world.github.pull(number);
    assert_eq!(pull.state, "closed");
    assert!(!pull.merged);
    let comments = world.github.comments(number);
    assert!(
        comments
            .iter()
            .any(|c| c.body.contains("is no longer seen in the cluster")),
        "{comments:?}"
    );
    assert!(world.events().contains(&"closed".to_owned()));
}

#[test]
fn on_a_protected_branch_the_rollback_is_a_pull_request() {
    let world = running_web();
    roll_back_by_pull_request(&world);
    push_branch(&world, "bump-web", "image: web:1", "image: web:2");
    let number = world
        .github
        .open_pull("bump-web", "main", "Bump web to 2", "dev");
    let merge = world.github.merge(number);
    let main_before = world.github.branch_head("main").unwrap();
    // web:2 never progresses.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let out = std::thread::scope(|scope| {
        let controller = scope.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let web = world
                    .cluster
                    .object("Deployment", "default", "web")
                    .unwrap();
                if web["metadata"]["generation"] != web["status"]["observedGeneration"] {
                    world
                        .cluster
                        .set_rollout("Deployment", "default", "web", Rollout::Failed)
                        .unwrap();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let out = world.run(&["reconcile", "--commit", &merge]);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        controller.join().unwrap();
        out
    });
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        world.github.branch_head("main").unwrap(),
        main_before,
        "main is not pushed to"
    );
    let pulls = world.github.pulls();
    let rollback = pulls
        .iter()
        .find(|p| p.head.starts_with("remediator/revert-"))
        .unwrap();
    assert_eq!(rollback.state, "open");
    assert!(rollback.labels.contains(&"rollback".to_owned()));
    let revert_head = world.github.branch_head(&rollback.head).unwrap();
    let repo = git2::Repository::open_bare(&world.remote.bare).unwrap();
    let revert = repo
        .find_commit(git2::Oid::from_str(&revert_head).unwrap())
        .unwrap();
    let message = revert.message().unwrap();
    for trailer in [
        format!("Reverts: {merge}"),
        format!("Reverts-Pull-Request: #{number}"),
        format!("Remediation-Id: {merge}"),
    ] {
        assert!(message.contains(&trailer), "{trailer:?} not in {message}");
    }
    assert!(
        rollback.title.starts_with("Revert \"Bump web to 2\""),
        "{}",
        rollback.title
    );
    assert!(
        text(&out).contains(&format!("rollback proposed in #{}", rollback.number)),
        "{}",
        text(&out)
    );
    let comments = world.github.comments(number);
    assert!(
        comments.iter().any(|c| c
            .body
            .contains(&format!("proposed in #{}", rollback.number))),
        "{comments:?}"
    );
}

#[test]
fn a_drain_waits_for_a_disruption_budget_and_gives_up_when_it_never_allows() {
    let cluster = TestCluster::start();
    let node = serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {}});
    cluster.create(node, "kubelet").unwrap();
    cluster
        .create(
            common::pod_on("n1", "guarded", None),
            "kube-controller-manager",
        )
        .unwrap();
    budget(&cluster, "guarded", 0);
    let mut record: Value = serde_saphyr::from_str(DRAIN).unwrap();
    record["spec"]["options"]["timeout"] = "1s".into();
    let started = Instant::now();
    let error = block_on(async {
        // As the binary builds it: no retry layer of kube's own under ours.
        let mut config = cluster.config();
        config.default_retry = false;
        remediator::cluster::imperative::execute(
            &kube::Client::try_from(config).unwrap(),
            &record,
            false,
            &remediator::cluster::RetryPolicy::none(),
        )
        .await
    })
    .unwrap_err()
    .to_string();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it waited for the budget"
    );
    assert_eq!(
        error,
        "Pod/default/guarded: evict failed: Cannot evict pod as it would violate the pod's disruption budget. (TooManyRequests)"
    );
    assert!(
        cluster.object("Pod", "default", "guarded").is_some(),
        "not deleted"
    );
    assert_eq!(
        cluster.object("Node", "", "n1").unwrap()["spec"]["unschedulable"],
        true,
        "cordoned first"
    );
}

/// One audit record, as the log writes it.
fn record(time: &str, event: &str, remediation: &str, object: &str, detail: Value) -> String {
    serde_json::json!({"time": time, "event": event, "remediation": remediation,
        "objects": [object], "message": event, "detail": detail})
    .to_string()
}

/// The weekly report over a recorded audit trail: MTTD and MTTR as computed by hand, and the
/// report kept as one GitHub issue however often it is published.
#[test]
fn the_weekly_report_measures_mttd_and_mttr_and_keeps_one_issue() {
    let world = World::new(None);
    let api = "Deployment/shop/api";
    let opened = |code: &str, first: Option<&str>| {
        let (action, cause) = match code {
            "crash-loop-oom" => ("raise-memory", Some("out of memory")),
            "high-cpu" => ("tune-hpa", None),
            _ => ("expand-pvc", None),
        };
        serde_json::json!({"finding": code, "firstSeen": first, "opened": true,
            "branch": format!("remediator/{code}/x"), "action": action, "cause": cause})
    };
    let none = Value::Null;
    let lines = [
        // The week before: api OOM, seen 00:00, proposed 00:20, verified 02:00.
        record(
            "2026-11-15T00:20:00Z",
            "proposed",
            "r0",
            api,
            opened("crash-loop-oom", Some("2026-11-15T00:00:00Z")),
        ),
        record("2026-11-15T02:00:00Z", "verified", "r0", api, none.clone()),
        // This week. r1: 4 minutes to detect, 2h 10m to repair; its later update is no opening.
        record(
            "2026-11-21T10:04:00Z",
            "proposed",
            "r1",
            api,
            opened("crash-loop-oom", Some("2026-11-21T10:00:00Z")),
        ),
        record(
            "2026-11-21T11:00:00Z",
            "proposed",
            "r1",
            api,
            serde_json::json!({"finding": "crash-loop-oom", "opened": false}),
        ),
        record("2026-11-21T12:00:00Z", "applied", "r1", api, none.clone()),
        record("2026-11-21T12:10:00Z", "verified", "r1", api, none.clone()),
        // r2: 2 minutes to detect; closed when it cleared.
        record(
            "2026-11-22T08:02:00Z",
            "proposed",
            "r2",
            "Deployment/shop/web",
            opened("high-cpu", Some("2026-11-22T08:00:00Z")),
        ),
        record(
            "2026-11-22T09:00:00Z",
            "closed",
            "r2",
            "Deployment/shop/web",
            none.clone(),
        ),
        // r3: api again, 10 minutes to detect; failed and rolled back.
        record(
            "2026-11-24T00:10:00Z",
            "proposed",
            "r3",
            api,
            opened("crash-loop-oom", Some("2026-11-24T00:00:00Z")),
        ),
        record("2026-11-24T01:00:00Z", "applied", "r3", api, none.clone()),
        record("2026-11-24T01:04:00Z", "failed", "r3", api, none.clone()),
        record(
            "2026-11-24T01:05:00Z",
            "rolled-back",
            "r3",
            api,
            none.clone(),
        ),
        // r4: no earlier sign in the cluster (detected as proposed); verified 30 minutes on.
        record(
            "2026-11-25T00:00:00Z",
            "proposed",
            "r4",
            "PersistentVolumeClaim/shop/data",
            opened("pvc-filling-up", None),
        ),
        record(
            "2026-11-25T00:10:00Z",
            "applied",
            "r4",
            "PersistentVolumeClaim/shop/data",
            none.clone(),
        ),
        record(
            "2026-11-25T00:30:00Z",
            "verified",
            "r4",
            "PersistentVolumeClaim/shop/data",
            none.clone(),
        ),
    ];
    // Recorded as the merge path records them: in the repository's notes, pushed.
    let repo = remediator::git::ConfigRepo::open(&world.remote.work).unwrap();
    let config = remediator::config::Config::load(&world.remote.work).unwrap();
    let log = remediator::workspace::audit_log(&world.remote.work, &config, Some(&repo)).unwrap();
    let append = |line: &str| {
        let record: remediator::audit::Record = serde_json::from_str(line).unwrap();
        log.append(&record).unwrap();
    };
    lines.iter().for_each(|l| append(l));
    let now = "2026-11-27T00:00:00Z";

    let out = world.run(&["report", "weekly", "--now", now, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let week = &report["week"];
    // By hand: MTTD samples 4m, 2m, 10m, 0 → median (lower middle) 2m, mean 4m; MTTR samples
    // 2h 10m and 30m → median 30m, mean 1h 20m.
    assert_eq!(
        (
            week["opened"].as_u64(),
            week["merged"].as_u64(),
            week["closed"].as_u64()
        ),
        (Some(4), Some(3), Some(1))
    );
    assert_eq!(
        (
            week["verified"].as_u64(),
            week["rolled_back"].as_u64(),
            week["refused"].as_u64()
        ),
        (Some(2), Some(1), Some(0))
    );
    assert_eq!(week["mttd"]["median_seconds"], 120);
    assert_eq!(week["mttd"]["mean_seconds"], 240);
    assert_eq!(week["mttr"]["median_seconds"], 1800);
    assert_eq!(week["mttr"]["mean_seconds"], 4800);
    let before = &report["before"];
    assert_eq!(before["opened"], 1);
    assert_eq!(before["mttd"]["mean_seconds"], 1200);
    assert_eq!(before["mttr"]["mean_seconds"], 7200);
    assert_eq!(
        report["by_code"],
        serde_json::json!([{"code": "crash-loop-oom", "count": 2}, {"code": "high-cpu", "count": 1}, {"code": "pvc-filling-up", "count": 1}])
    );
    assert_eq!(
        report["recurring"],
        serde_json::json!([{"code": "crash-loop-oom", "object": api, "count": 3}])
    );

    // The runbook of this history: api's OOM three times, raised each time, held twice.
    let out = world.run(&["report", "runbook", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let runbook: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        runbook["sections"][0],
        serde_json::json!({"code": "crash-loop-oom", "opened": 3,
            "causes": [["out of memory", 3]],
            "remedies": [{"action": "raise-memory", "proposed": 3, "held": 2, "rolled_back": 1}],
            "objects": [[api, 3]]})
    );

    // Published twice: one issue, updated.
    let publish = || world.run(&["report", "weekly", "--now", now, "--publish", "github"]);
    let first = publish();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(text(&first).contains("MTTD"), "{}", text(&first));
    append(&record(
        "2026-11-26T00:00:00Z",
        "proposed",
        "r5",
        "Deployment/shop/worker",
        opened("image-pull-backoff", None),
    ));
    let second = publish();
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let issues = world.github.issues();
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].labels, ["remediator-report"]);
    assert!(
        issues[0].body.contains("image-pull-backoff"),
        "{}",
        issues[0].body
    );
    assert!(
        issues[0].body.contains("| Pull requests opened | 5 | 1 |"),
        "{}",
        issues[0].body
    );
}

/// Where a reconcile of a merged remediation ended: the audit events, the writes of the
/// Deployment, the comments on the pull request, the statuses of the merge, the live memory
/// limit, and the commits on main.
#[derive(Debug, PartialEq)]
struct End {
    events: Vec<String>,
    /// The details of the `applied` records after the first: what a rerun applied again.
    reapplied: Vec<String>,
    writes: usize,
    comments: Vec<String>,
    statuses: Vec<String>,
    limit: Value,
    commits: usize,
}

/// Merges the crash-loop remediation and reconciles it, first dying at `point` when one is
/// given (and reached), then again without; returns the end state and whether it died.
fn drill(point: Option<&str>) -> (End, bool) {
    let drilled = drill_with(point.map(Disturbance::Crash));
    (drilled.end, drilled.stopped)
}

/// What disturbs the first reconcile of a drill.
enum Disturbance<'a> {
    /// The process dies at this failpoint.
    Crash(&'a str),
    /// The fake GitHub (`github`) or the test API server answers one request with a fault.
    Fault { github: bool, fault: Fault },
}

/// A drill's outcome.
struct Drilled {
    /// Where it ended after the rerun.
    end: End,
    /// Whether the first run stopped short (died, or ended with an error).
    stopped: bool,
    /// What the first run printed.
    first: String,
    /// The requests of the first run.
    calls: Calls,
}

/// [`drill`] with any disturbance: a crash at a failpoint, or a fault on one request. A first
/// run that stops short must have said why; the rerun must finish.
fn drill_with(disturbance: Option<Disturbance>) -> Drilled {
    let world = World::new(None);
    let (number, merge) = world.proposed_and_merged(&["alice"]);
    world.cluster.follow_spec(Duration::from_millis(200));
    world.cluster.faults().clear_log();
    world.github.faults().clear_log();
    let mut stopped = false;
    let mut first = String::new();
    let disturbed = disturbance.is_some();
    match disturbance {
        None => {}
        Some(Disturbance::Crash(point)) => {
            let crashed = world.run_env(
                &["reconcile", "--commit", &merge, "--env", "dev"],
                &[("REMEDIATOR_FAILPOINTS", point)],
            );
            first = text(&crashed);
            stopped = crashed.status.code() == Some(86);
            assert!(
                stopped || crashed.status.code() == Some(0),
                "{point}: {first}"
            );
        }
        Some(Disturbance::Fault { github, fault }) => {
            let faults = if github {
                world.github.faults()
            } else {
                world.cluster.faults()
            };
            faults.add(fault);
            let faulted = world.run_env(
                &["reconcile", "--commit", &merge, "--env", "dev"],
                &[common::faults::REQUEST_TIMEOUT],
            );
            first = text(&faulted);
            stopped = faulted.status.code() != Some(0);
            if stopped {
                assert!(first.contains("error:"), "a stop without a reason: {first}");
            }
        }
    }
    let logged = |world: &World| logged(Some(&world.cluster), &world.github);
    let mut calls = logged(&world);
    if stopped {
        expire_locks(&world);
    }
    let finished = world.reconcile(&merge);
    assert_eq!(
        finished.status.code(),
        Some(0),
        "{first}\n{}",
        text(&finished)
    );
    if !disturbed {
        calls = logged(&world);
    }
    let api = world
        .cluster
        .object("Deployment", "shop-dev", "api")
        .unwrap();
    let repo = git2::Repository::open_bare(&world.remote.bare).unwrap();
    let mut walk = repo.revwalk().unwrap();
    walk.push(repo.revparse_single("refs/heads/main").unwrap().id())
        .unwrap();
    let mut comments: Vec<String> = world
        .github
        .comments(number)
        .iter()
        .map(|c| {
            // The marker names the merge commit, which differs from world to world.
            let marker = c.body.lines().next().unwrap_or_default();
            marker
                .trim_end_matches(" -->")
                .trim_end_matches(|ch: char| ch.is_ascii_hexdigit())
                .to_owned()
        })
        .collect();
    comments.sort();
    let applied: Vec<String> = world
        .audit()
        .iter()
        .filter(|r| r["event"] == "applied")
        .map(|r| r["detail"].to_string())
        .collect();
    let end = End {
        reapplied: applied.into_iter().skip(1).collect(),
        events: world.events(),
        writes: world.writes("/deployments/api"),
        comments,
        statuses: world
            .github
            .statuses(&merge)
            .iter()
            .map(|s| s.state.clone())
            .collect(),
        limit: memory_limit(&api),
        commits: walk.count(),
    };
    Drilled {
        end,
        stopped,
        first,
        calls,
    }
}

/// Lets the locks of a run that died run out, as they do once their duration (10 minutes)
/// passes without renewal: the rerun comes after that.
fn expire_locks(world: &World) {
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::api::{Api, ListParams, Patch, PatchParams};
    block_on(async {
        let leases: Api<Lease> = Api::namespaced(world.cluster.client(), "default");
        for lease in leases.list(&ListParams::default()).await.unwrap() {
            let name = lease.metadata.name.unwrap();
            let stale = serde_json::json!({"spec": {"renewTime": "2020-01-01T00:00:00.000000Z",
                "acquireTime": "2020-01-01T00:00:00.000000Z"}});
            leases
                .patch(&name, &PatchParams::default(), &Patch::Merge(&stale))
                .await
                .unwrap();
        }
    });
}

/// The crash drill: for every point a healthy merge's reconcile passes, the process dies there
/// and a second run for the same commit ends where an uncrashed run ends: the same live object,
/// the same writes (nothing applied twice), one comment per purpose, no extra commit, and an
/// audit chain with each step once and complete.
#[test]
fn a_crash_at_every_step_of_a_healthy_merge_ends_as_an_uncrashed_run() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_crash_at_every_step_of_a_healthy_merge_ends_as_an_uncrashed_run",
    ) {
        return;
    }
    let (clean, _) = drill(None);
    assert_eq!(clean.events.last().map(String::as_str), Some("verified"));
    assert!(clean.reapplied.is_empty());
    // The reconcile's own records (the proposal's came before the merge).
    let mut points: Vec<String> = clean
        .events
        .iter()
        .filter(|e| *e != "proposed")
        .map(|e| format!("after-{e}"))
        .collect();
    points.dedup();
    // The steps between the records: the dry-run, the apply's stage of the Deployment, the
    // health wait, and the commit status.
    points.extend(
        [
            "after-dry-run",
            "after-stage-objects",
            "after-health-wait",
            "after-status",
        ]
        .map(String::from),
    );
    let ends: Vec<(String, End, bool)> = std::thread::scope(|scope| {
        let runs: Vec<_> = points
            .iter()
            .map(|point| {
                scope.spawn(move || {
                    let (end, died) = drill(Some(point));
                    (point.clone(), end, died)
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for (point, end, died) in &ends {
        assert!(died, "{point} was never reached");
        assert_same_end(point, end, &clean);
    }
    println!("crash drill: {} failpoints of a healthy merge", ends.len());
}

/// The fault matrix of a merge: every call kind a clean reconcile of a merged remediation
/// makes, to the API server and to GitHub, read from that run's request log (so a new call
/// path is covered without a new test), gets a fault on its first request. Each run either
/// retries to the clean run's end, with nothing done twice, or stops with an error that says
/// why, and a rerun ends as the clean run.
#[test]
fn a_fault_on_any_call_of_a_merge_is_retried_or_stops_cleanly_and_a_rerun_finishes() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_fault_on_any_call_of_a_merge_is_retried_or_stops_cleanly_and_a_rerun_finishes",
    ) {
        return;
    }
    let clean = drill_with(None);
    let kinds = fault_matrix("reconcile", &clean.calls, false, |label, github, fault| {
        let drilled = drill_with(Some(Disturbance::Fault { github, fault }));
        assert_same_end(label, &drilled.end, &clean.end);
        (drilled.stopped, drilled.first)
    });
    assert_eq!(
        kinds, 32,
        "call kinds of a reconcile (the README quotes the count)"
    );
}

/// Where `propose --forge github` left GitHub: each pull request's title, branch, state and
/// body, the comments on them, and the branches pushed.
#[derive(Debug, PartialEq)]
struct Proposed {
    pulls: Vec<(String, String, String, String)>,
    comments: usize,
    branches: Vec<String>,
}

/// Proposes for the crash-looping api with `fault` on the first run (when given), then again
/// without; returns where it ended, whether the first run stopped short, what it said, and
/// the requests of the first run.
fn propose_drill(fault: Option<(bool, Fault)>) -> (Proposed, bool, String, Calls) {
    let world = World::new(None);
    world.crash_looping();
    world.cluster.faults().clear_log();
    world.github.faults().clear_log();
    let disturbed = fault.is_some();
    let (mut stopped, mut first) = (false, String::new());
    if let Some((github, fault)) = fault {
        let faults = if github {
            world.github.faults()
        } else {
            world.cluster.faults()
        };
        faults.add(fault);
        let out = world.run_env(
            &["propose", "--forge", "github"],
            &[common::faults::REQUEST_TIMEOUT],
        );
        first = text(&out);
        stopped = out.status.code() != Some(0);
        if stopped {
            assert!(first.contains("error:"), "a stop without a reason: {first}");
        }
    }
    let logged = |world: &World| logged(Some(&world.cluster), &world.github);
    let mut calls = logged(&world);
    let out = world.run(&["propose", "--forge", "github"]);
    assert_eq!(out.status.code(), Some(0), "{first}\n{}", text(&out));
    if !disturbed {
        calls = logged(&world);
    }
    let pulls = world.github.pulls();
    let comments = pulls
        .iter()
        .map(|p| world.github.comments(p.number).len())
        .sum();
    let repo = git2::Repository::open_bare(&world.remote.bare).unwrap();
    let mut branches: Vec<String> = repo
        .branches(Some(git2::BranchType::Local))
        .unwrap()
        .map(|b| b.unwrap().0.name().unwrap().unwrap().to_owned())
        .collect();
    branches.sort();
    let end = Proposed {
        pulls: pulls
            .into_iter()
            .map(|p| (p.title, p.head, p.state, steady(&p.body)))
            .collect(),
        comments,
        branches,
    };
    (end, stopped, first, calls)
}

/// The fault matrix of `propose --forge github` on a live cluster: every call kind of a clean
/// run gets a fault, and each run ends with the one pull request, branch and body of the clean
/// run: never a second pull request or comment.
#[test]
fn a_fault_on_any_call_of_a_proposal_never_opens_a_second_pull_request() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_fault_on_any_call_of_a_proposal_never_opens_a_second_pull_request",
    ) {
        return;
    }
    let (clean, _, _, calls) = propose_drill(None);
    assert_eq!(clean.pulls.len(), 1, "{clean:?}");
    let kinds = fault_matrix("propose", &calls, false, |label, github, fault| {
        let (end, stopped, first, _) = propose_drill(Some((github, fault)));
        assert_eq!(end, clean, "{label}: {first}");
        (stopped, first)
    });
    assert_eq!(
        kinds, 31,
        "call kinds of a propose (the README quotes the count)"
    );
}

/// A disturbed run (`label`) ended as the clean one: the same live object, the same writes
/// (nothing applied twice), one comment per purpose, no extra commit, and an audit chain with
/// each step once and complete.
fn assert_same_end(point: &str, end: &End, clean: &End) {
    assert_eq!(end.limit, clean.limit, "{point}");
    assert_eq!(
        end.writes, clean.writes,
        "{point}: a write twice or missing"
    );
    assert_eq!(end.comments, clean.comments, "{point}");
    assert_eq!(end.commits, clean.commits, "{point}");
    assert_eq!(end.statuses.last(), clean.statuses.last(), "{point}");
    // Each step that changes something recorded once and in order, and the chain
    // complete. A rerun judges the merge again (`policy` and `approval` may repeat) and
    // applies again what is not applied yet: after a crash past the apply, nothing (its
    // record says every object unchanged, and no write was sent, as `writes` shows).
    for again in &end.reapplied {
        assert!(
            !again.contains("\"created\"") && !again.contains("\"configured\""),
            "{point}: applied twice: {again}"
        );
    }
    let changes = |events: &[String]| -> Vec<String> {
        let mut kept: Vec<String> = events
            .iter()
            .filter(|e| !["policy", "approval"].contains(&e.as_str()))
            .cloned()
            .collect();
        kept.dedup();
        kept
    };
    assert_eq!(changes(&end.events), changes(&clean.events), "{point}");
    assert!(
        clean.events.iter().all(|e| end.events.contains(e)),
        "{point}: {:?}",
        end.events
    );
}

/// Where a failed merge of web's bump ended after its rollback: the audit events, the live
/// image, the revert commits on main, the comments, and the merge's last status.
#[derive(Debug, PartialEq)]
struct Undone {
    events: Vec<String>,
    /// The details of the `applied` records of the merge after its first (the revert's own
    /// apply has a record of its own, on the revert commit).
    reapplied: Vec<String>,
    image: String,
    reverts: usize,
    comments: usize,
    status: String,
}

/// Merges a bump of web whose rollout fails, reconciles it, first dying at `point` when one is
/// given (and reached), then again without; returns where it ended and whether it died.
fn rollback_drill(point: Option<&str>) -> (Undone, bool) {
    let world = running_web();
    let (number, merge) = web_bump_merged(&world);
    let (died, _) = with_web_2_failing(&world, || {
        let mut died = false;
        if let Some(point) = point {
            let crashed = world.run_env(
                &["reconcile", "--commit", &merge],
                &[("REMEDIATOR_FAILPOINTS", point)],
            );
            died = crashed.status.code() == Some(86);
            assert!(
                died || crashed.status.code() == Some(1),
                "{point}: {}",
                text(&crashed)
            );
            if died {
                expire_locks(&world);
            }
        }
        let finished = world.run(&["reconcile", "--commit", &merge]);
        assert!(
            finished.status.code() == Some(1)
                || text(&finished).contains("already done: rolled-back"),
            "{point:?}: {}",
            text(&finished)
        );
        died
    });
    let repo = git2::Repository::open_bare(&world.remote.bare).unwrap();
    let mut walk = repo.revwalk().unwrap();
    walk.push(repo.revparse_single("refs/heads/main").unwrap().id())
        .unwrap();
    let reverts = walk
        .filter_map(|id| repo.find_commit(id.unwrap()).ok())
        .filter(|c| c.message().unwrap_or_default().contains("Reverts: "))
        .count();
    let applied: Vec<String> = world
        .audit()
        .iter()
        .filter(|r| r["event"] == "applied" && r["commit"] == merge.as_str())
        .map(|r| r["detail"].to_string())
        .collect();
    let undone = Undone {
        reapplied: applied.into_iter().skip(1).collect(),
        events: world.events(),
        image: web_image(&world),
        reverts,
        comments: world.github.comments(number).len(),
        status: last_status(&world.github, &merge),
    };
    (undone, died)
}

/// The crash drill of a rollback: for every point a failed merge's reconcile passes (the
/// failure, the revert commit made and pushed, the rollback recorded), the process dies there
/// and a rerun ends where an uncrashed run ends: the old image live, one revert commit, the
/// same comments and status, every changing step recorded once.
#[test]
fn a_crash_at_every_step_of_a_rollback_ends_as_an_uncrashed_run() {
    let (clean, _) = rollback_drill(None);
    assert_eq!(clean.image, "web:1");
    assert_eq!(clean.reverts, 1);
    let points = [
        "after-health-wait",
        "after-failed",
        "after-revert-commit",
        "after-revert-pushed",
        "after-revert-applied",
        "after-rolled-back",
    ];
    let ends: Vec<(&str, Undone, bool)> = std::thread::scope(|scope| {
        let runs: Vec<_> = points
            .iter()
            .map(|point| {
                scope.spawn(move || {
                    let (end, died) = rollback_drill(Some(point));
                    (*point, end, died)
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for (point, end, died) in &ends {
        assert!(died, "{point} was never reached");
        assert_eq!(end.image, clean.image, "{point}");
        assert_eq!(end.reverts, 1, "{point}: one revert commit at most");
        assert_eq!(end.comments, clean.comments, "{point}");
        assert_eq!(end.status, clean.status, "{point}");
        // The rollback once (a record on the merge and one on its revert), nothing verified,
        // the chain ending as the uncrashed one. A rerun
        // past the failure checks health again before it rolls back (the merge may have come
        // good meanwhile), so its `applied` (of nothing) and `failed` may repeat.
        let count = |events: &[String], event: &str| events.iter().filter(|e| *e == event).count();
        for step in ["rolled-back", "verified"] {
            assert_eq!(
                count(&end.events, step),
                count(&clean.events, step),
                "{point}: {step} in {:?}",
                end.events
            );
        }
        assert_eq!(end.events.last(), clean.events.last(), "{point}");
        assert!(
            clean.events.iter().all(|e| end.events.contains(e)),
            "{point}: {:?}",
            end.events
        );
        for again in &end.reapplied {
            assert!(
                !again.contains("\"created\"") && !again.contains("\"configured\""),
                "{point}: applied twice: {again}"
            );
        }
    }
}

/// An autoscaler takes web's replicas, as kube-controller-manager does through the scale
/// subresource.
fn autoscale_web(cluster: &TestCluster, replicas: i64) {
    block_on(async {
        let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
            kube::Api::namespaced(cluster.client(), "default");
        let params = kube::api::PatchParams {
            field_manager: Some("kube-controller-manager".into()),
            ..Default::default()
        };
        let scale = serde_json::json!({"spec": {"replicas": replicas}});
        api.patch_scale("web", &params, &kube::api::Patch::Merge(&scale))
            .await
            .unwrap();
    });
}

fn web_replicas(world: &World) -> i64 {
    world
        .cluster
        .object("Deployment", "default", "web")
        .unwrap()["spec"]["replicas"]
        .as_i64()
        .unwrap()
}

/// A merge that sets web's replicas (owned by an autoscaler) and its image, reconciled with
/// `conflicts` as `reconcile.conflicts` (the default when `None`).
fn merge_against_the_autoscaler(conflicts: Option<&str>) -> (World, String, std::process::Output) {
    let world = running_web();
    autoscale_web(&world.cluster, 5);
    if let Some(mode) = conflicts {
        reconfigure(&world, "Decide conflicts", |text| {
            text.replace(
                "reconcile:\n",
                &format!("reconcile:\n  conflicts: {mode}\n"),
            )
        });
    }
    // The branch scales web and moves its image, so something besides the replicas changes.
    let work = &world.remote.work;
    let main = common::branch_head(work, "main").unwrap();
    let file = work.join("web.yaml");
    let web = std::fs::read_to_string(&file).unwrap();
    let web = web
        .replace("replicas: 2", "replicas: 3")
        .replace("image: web:1", "image: web:3");
    std::fs::write(&file, web).unwrap();
    common::commit_all(work, "Scale web and move it to web:3");
    common::push(work, "refs/heads/main:refs/heads/scale-web");
    let repo = git2::Repository::open(work).unwrap();
    let main = repo.find_object(main, None).unwrap();
    repo.reset(&main, git2::ResetType::Hard, None).unwrap();
    let number = world
        .github
        .open_pull("scale-web", "main", "Scale web", "dev");
    world.github.review(number, "alice", ReviewState::Approved);
    let merge = world.github.merge(number);
    world.cluster.follow_spec(Duration::from_millis(200));
    let out = world.run(&["reconcile", "--commit", &merge]);
    (world, merge, out)
}

#[test]
fn a_field_an_autoscaler_owns_is_refused_left_or_taken_as_the_configuration_says() {
    // By default a controller's field is refused: nothing is applied, the reason names the
    // manager and the field, and the merge is rolled back.
    let (world, merge, out) = merge_against_the_autoscaler(None);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("`.spec.replicas` is owned by kube-controller-manager"),
        "{said}"
    );
    assert_eq!(web_replicas(&world), 5, "the autoscaler keeps its replicas");
    let failed = world.last("failed");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("refused: Deployment/default/web"),
        "{failed}"
    );
    assert_eq!(
        web_image(&world),
        "web:1",
        "nothing of the change is applied"
    );
    assert_eq!(last_status(&world.github, &merge), "failure");
    let number = world.github.pulls()[0].number;
    let comments = world.github.comments(number);
    assert!(
        comments
            .iter()
            .any(|c| c.body.contains("was **not applied**")
                && c.body
                    .contains("`.spec.replicas` is owned by kube-controller-manager")),
        "{comments:?}"
    );

    // skip-field: the rest of the change is applied, the replicas are left to the autoscaler.
    let (world, _, out) = merge_against_the_autoscaler(Some("skip-field"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(web_replicas(&world), 5);
    assert_eq!(
        web_image(&world),
        "web:3",
        "the rest of the change is applied"
    );
    let applied = world.last("applied");
    assert_eq!(
        applied["detail"]["entries"][0]["contested"],
        serde_json::json!([{"field": ".spec.replicas", "manager": "kube-controller-manager", "outcome": "left to"}]),
        "{applied}"
    );

    // force: the reviewed value is taken over.
    let (world, _, out) = merge_against_the_autoscaler(Some("{controllers: force}"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(web_replicas(&world), 3);
    assert_eq!(web_image(&world), "web:3");
    let applied = world.last("applied");
    assert_eq!(
        applied["detail"]["entries"][0]["contested"][0]["outcome"], "taken over from",
        "{applied}"
    );
}

/// Runs git in the world's work clone; its standard output.
fn git_in(world: &World, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=dev", "-c", "user.email=dev@example.com"])
        .args(args)
        .current_dir(&world.remote.work)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// web.yaml with `image` and `replicas`, and `more` files, merged on top of the remote's main
/// by a pull request approved by `approvers`; the merge commit.
fn merge_web(
    world: &World,
    (image, replicas): (&str, u32),
    more: &[(&str, &str)],
    approvers: &[&str],
) -> String {
    git_in(world, &["fetch", "-q", "origin", "main"]);
    git_in(world, &["reset", "-q", "--hard", "FETCH_HEAD"]);
    let web = WEB
        .replace("image: web:1", &format!("image: {image}"))
        .replace("replicas: 2", &format!("replicas: {replicas}"));
    let branch = format!("web-{}-{replicas}", image.replace(':', "-"));
    let mut files = vec![("web.yaml", web.as_str())];
    files.extend_from_slice(more);
    world.merge_change_approved(&branch, &branch, &files, approvers)
}

#[test]
fn a_forged_verified_note_is_refused_by_the_cluster_s_record_and_marked_by_history() {
    let world = web_world();
    reconfigure(&world, "Sign the audit trail", |text| {
        format!("{text}audit:\n  signingKey: {{env: REMEDIATOR_AUDIT_KEY}}\n")
    });
    let config = world.remote.work.join("remediator.yaml");
    let key = [("REMEDIATOR_AUDIT_KEY", "s3cret")];
    let reconcile = |commit: &str| world.run_env(&["reconcile", "--commit", commit], &key);
    let live = || {
        let web = world
            .cluster
            .object("Deployment", "default", "web")
            .unwrap();
        (
            web["spec"]["template"]["spec"]["containers"][0]["image"].clone(),
            web["spec"]["replicas"].clone(),
        )
    };
    // A key the configuration names but the environment does not give is an error.
    let first = merge_web(&world, ("web:1", 3), &[], &["alice"]);
    let keyless = world.run(&["reconcile", "--commit", &first]);
    assert_eq!(keyless.status.code(), Some(2), "{}", text(&keyless));
    assert!(
        text(&keyless).contains("audit.signingKey: environment variable REMEDIATOR_AUDIT_KEY"),
        "{}",
        text(&keyless)
    );
    let out = reconcile(&first);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(live(), (json!("web:1"), json!(3)));
    // web:evil with a change of the configuration and no approval: refused.
    let edited = std::fs::read_to_string(&config).unwrap() + "# web:evil\n";
    let refused = merge_web(
        &world,
        ("web:evil", 3),
        &[("remediator.yaml", &edited)],
        &[],
    );
    let out = reconcile(&refused);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("refused"), "{}", text(&out));
    // Anyone who can push writes a "verified" note on the refused commit.
    let forged = json!({"time": "2026-12-07T10:00:00Z", "event": "verified", "commit": refused,
        "objects": ["Deployment/default/web"], "message": "healthy",
        "signature": "sha256=0000"})
    .to_string();
    git_in(
        &world,
        &[
            "fetch",
            "-q",
            "origin",
            "+refs/notes/remediator:refs/notes/remediator",
        ],
    );
    git_in(
        &world,
        &[
            "notes",
            "--ref=remediator",
            "append",
            "-m",
            &forged,
            &refused,
        ],
    );
    git_in(&world, &["push", "-q", "origin", "refs/notes/remediator"]);
    // The next low-risk merge of the same object would carry web:evil along: nothing is
    // reconciled, and the disagreement is named.
    let next = merge_web(&world, ("web:evil", 4), &[], &["alice"]);
    let out = reconcile(&next);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(2), "{printed}");
    assert!(
        printed.contains(&format!(
            "the audit trail's notes disagree with cluster default's record: the notes say {} as the last commit finished here (all), the cluster records {} (verified",
            &refused[..12],
            &first[..12]
        )),
        "{printed}"
    );
    assert_eq!(live(), (json!("web:1"), json!(3)), "nothing applied");
    // history shows the forged record as such, and the signed ones plainly.
    let history = text(&world.run_env(&["history"], &key));
    let line = |commit: &str, event: &str| {
        history
            .lines()
            .find(|l| l.contains(&commit[..12]) && l.contains(&format!(" {event} ")))
            .unwrap_or_else(|| panic!("no {event} of {commit}:\n{history}"))
            .to_owned()
    };
    assert!(
        line(&refused, "verified").contains("[BAD SIGNATURE"),
        "{history}"
    );
    assert!(!line(&first, "verified").contains('['), "{history}");
    assert!(!line(&refused, "refused").contains('['), "{history}");
}

/// A commit on top of `branch` of the remote with the same tree, authored and committed as
/// alice (her GitHub no-reply address), which anyone can write; not pushed anywhere yet.
fn commit_as_alice(world: &World, branch: &str) -> String {
    let repo = git2::Repository::open_bare(&world.remote.bare).unwrap();
    let head = repo
        .find_reference(&format!("refs/heads/{branch}"))
        .unwrap()
        .peel_to_commit()
        .unwrap();
    let alice = git2::Signature::now("Alice", "alice@users.noreply.github.com").unwrap();
    let tree = head.tree().unwrap();
    let commit = repo
        .commit(None, &alice, &alice, "Tidy up", &tree, &[&head])
        .unwrap();
    commit.to_string()
}

#[test]
fn a_head_its_pusher_authored_as_someone_else_is_not_approved_by_that_pusher() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_head_its_pusher_authored_as_someone_else_is_not_approved_by_that_pusher",
    ) {
        return;
    }
    // mallory pushes a head authored as alice, then approves it herself.
    let pushed_by_mallory = |timeline: bool| {
        let world = World::new(None);
        world.crash_looping();
        world.cluster.follow_spec(Duration::from_millis(200));
        let proposed = world.run(&["propose", "--forge", "github"]);
        assert_eq!(proposed.status.code(), Some(0), "{}", text(&proposed));
        let pull = world.github.pulls()[0].clone();
        let head = commit_as_alice(&world, &pull.head);
        if timeline {
            world.github.force_push(pull.number, "mallory", &head);
        } else {
            let repo = git2::Repository::open_bare(&world.remote.bare).unwrap();
            let oid = git2::Oid::from_str(&head).unwrap();
            repo.reference(&format!("refs/heads/{}", pull.head), oid, true, "push")
                .unwrap();
            world.github.publish_pull_refs();
        }
        world.github.protect("main", false);
        world
            .github
            .review(pull.number, "mallory", ReviewState::Approved);
        let merge = world.github.merge(pull.number);
        let out = world.reconcile(&merge);
        (world, out)
    };
    // GitHub's timeline says mallory pushed it: her approval does not count.
    let (world, out) = pushed_by_mallory(true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("needs 1 approval of the merged head from reviewers other than the author and the last pusher; it has 0"),
        "{}",
        text(&out)
    );
    let approval = world.last("approval");
    assert_eq!(approval["detail"]["pushersFrom"], "timeline", "{approval}");
    assert_eq!(approval["detail"]["pushers"], json!(["mallory", "alice"]));
    assert!(
        approval["message"]
            .as_str()
            .unwrap()
            .ends_with("the last pusher from GitHub's timeline"),
        "{approval}"
    );
    let notes = approval["detail"]["notes"].to_string();
    assert!(
        notes.contains("does not require approval of the most recent reviewable push"),
        "{notes}"
    );
    // Without a push in the timeline, the e-mails are all there is: the decision says so.
    let (world, out) = pushed_by_mallory(false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let approval = world.last("approval");
    assert_eq!(approval["detail"]["pushersFrom"], "emails", "{approval}");
    assert_eq!(
        approval["message"],
        "approved by mallory; the last pusher taken from the head commit's e-mails"
    );
    assert!(
        approval["detail"]["notes"]
            .to_string()
            .contains("GitHub's timeline names no push of it"),
        "{approval}"
    );
}

#[test]
fn a_rollback_asked_for_an_older_merge_never_moves_the_cluster_s_record_back() {
    let world = web_world();
    roll_back_by_pull_request(&world);
    let older = merge_web(&world, ("web:1", 3), &[], &["alice"]);
    let out = world.run(&["reconcile", "--commit", &older]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let newer = merge_web(&world, ("web:2", 3), &[], &["alice"]);
    let out = world.run(&["reconcile", "--commit", &newer]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The older merge's revert is proposed: the cluster still runs the newer one.
    let rolled = world.run(&["rollback", "--commit", &older]);
    assert!(
        text(&rolled).contains("rollback proposed"),
        "{}",
        text(&rolled)
    );
    let record = world
        .cluster
        .object("ConfigMap", "default", "remediator-trail")
        .unwrap();
    let all: Value = serde_json::from_str(record["data"]["all"].as_str().unwrap()).unwrap();
    assert_eq!(all["commit"], newer.as_str(), "{all}");
    // And the next merge goes through, the notes agreeing with the cluster.
    let next = merge_web(&world, ("web:2", 4), &[], &["alice"]);
    let out = world.run(&["reconcile", "--commit", &next]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        world
            .cluster
            .object("Deployment", "default", "web")
            .unwrap()["spec"]["replicas"],
        4
    );
}
