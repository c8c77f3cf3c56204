//! Progressive delivery across three environments and five clusters (test API servers): an
//! environment's canary cluster is changed first and alone, then the rest; a failure on any
//! cluster reverts the merge and restores every cluster it reached; a crash or an unreachable
//! cluster halts the wave, and the next run resumes without applying a verified cluster again;
//! a change proven in one environment is proposed for the next by its own pull request, after
//! the soak, with the evidence.

mod common;

use std::time::Duration;

use common::world::{World, text};
use serde_json::{Value, json};
use testkit::TestCluster;

fn deployment(env: &str, memory: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
  labels: {{app: api, tier: {env}}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: api}}
  template:
    metadata:
      labels: {{app: api}}
    spec:
      containers:
        - name: api
          image: registry.example.com/api:1.4.2
          resources:
            requests: {{memory: 128Mi}}
            limits: {{memory: {memory}}}
"
    )
}

/// The world: dev on the world's own cluster, staging on two, prod on two; every cluster runs
/// the api as the repository declares it, its rollouts following spec.
struct Fleet {
    world: World,
    /// stg-eu, stg-us, prod-eu, prod-us.
    others: Vec<TestCluster>,
}

impl Fleet {
    fn new(soak_seconds: u64) -> Fleet {
        Fleet::with(soak_seconds, ["256Mi"; 3])
    }

    /// The fleet with dev's, staging's and prod's memory limits.
    fn with(soak_seconds: u64, memory: [&str; 3]) -> Fleet {
        let envs = ["dev", "staging", "prod"];
        let files: Vec<(String, String)> = envs
            .iter()
            .zip(memory)
            .map(|(env, memory)| (format!("{env}/api.yaml"), deployment(env, memory)))
            .collect();
        let borrowed: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        let world = World::new(Some(&borrowed));
        let others: Vec<TestCluster> = (0..4).map(|_| TestCluster::start()).collect();
        let names = ["stg-eu", "stg-us", "prod-eu", "prod-us"];
        let mut clusters = format!(
            "clusters:\n  - {{name: dev-1, context: testkit, kubeconfig: {}}}\n",
            world.cluster.kubeconfig().display()
        );
        for (name, cluster) in names.iter().zip(&others) {
            clusters.push_str(&format!(
                "  - {{name: {name}, context: testkit, kubeconfig: {}}}\n",
                cluster.kubeconfig().display()
            ));
        }
        let config = format!(
            "{clusters}environments:\n  - {{name: dev, paths: [\"dev/**\"], clusters: [dev-1]}}\n  - {{name: staging, paths: [\"staging/**\"], clusters: [stg-eu, stg-us]}}\n  - {{name: prod, paths: [\"prod/**\"], clusters: [prod-eu, prod-us]}}\npromotion:\n  order: [dev, staging, prod]\n  soakSeconds: {soak_seconds}\n  canary: 1\n  maxParallel: 1\n"
        );
        let file = world.remote.work.join("remediator.yaml");
        let rest = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, format!("{config}{rest}")).unwrap();
        common::commit_all(&world.remote.work, "Three environments, five clusters");
        common::push(&world.remote.work, "refs/heads/main:refs/heads/main");
        let fleet = Fleet { world, others };
        for (env, cluster) in fleet.by_env() {
            let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
            cluster.create(ns, "kubectl").unwrap();
            let at = envs.iter().position(|e| *e == env).unwrap();
            let object: Value = serde_saphyr::from_str(&deployment(env, memory[at])).unwrap();
            cluster.create(object, "kubectl").unwrap();
            cluster.follow_spec(Duration::from_millis(200));
        }
        fleet
    }

    /// Each cluster with its environment: dev-1, stg-eu, stg-us, prod-eu, prod-us.
    fn by_env(&self) -> Vec<(&'static str, &TestCluster)> {
        let envs = ["dev", "staging", "staging", "prod", "prod"];
        let clusters = std::iter::once(&self.world.cluster).chain(&self.others);
        envs.into_iter().zip(clusters).collect()
    }

    fn limit(cluster: &TestCluster) -> Value {
        let api = cluster.object("Deployment", "shop", "api").unwrap();
        api["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"].clone()
    }

    fn limits(&self) -> Vec<String> {
        self.by_env()
            .iter()
            .map(|(_, c)| Self::limit(c).as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// A merged pull request raising `env`'s memory limit to `memory`; the merge commit. A change
    /// to staging or prod that dev does not run skips a wave: critical, it is approved by three,
    /// carol of the security team among them.
    fn merge(&self, env: &str, memory: &str) -> String {
        let approvers: &[&str] = match env {
            "dev" => &["alice"],
            _ => &["alice", "bob", "carol"],
        };
        self.merge_approved(env, memory, approvers)
    }

    /// [`Fleet::merge`] approved by `approvers`.
    fn merge_approved(&self, env: &str, memory: &str, approvers: &[&str]) -> String {
        // The work clone's main catches up with merges made on the remote.
        let work = &self.world.remote.work;
        for args in [
            &["fetch", "-q", "origin", "main"][..],
            &["reset", "-q", "--hard", "FETCH_HEAD"],
        ] {
            let status = std::process::Command::new("git")
                .args(args)
                .current_dir(work)
                .status()
                .unwrap();
            assert!(status.success(), "git {args:?}");
        }
        let path = format!("{env}/api.yaml");
        let branch = format!("{env}-memory-{memory}");
        self.world.merge_change_approved(
            &branch,
            &branch,
            &[(&path, &deployment(env, memory))],
            approvers,
        )
    }

    fn reconcile(&self, commit: &str) -> std::process::Output {
        self.world.reconcile_routed(commit, &[])
    }

    /// Reconciles `merge`, waits out a one-second soak, runs `promote`, and returns the body of
    /// the promotion to staging.
    fn promoted_to_staging(&self, merge: &str) -> String {
        let out = self.reconcile(merge);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        std::thread::sleep(Duration::from_millis(1100));
        let out = self.world.run(&["promote"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let github = &self.world.github;
        let pull = github
            .pulls()
            .into_iter()
            .find(|p| p.head == "remediator/promote-staging/api")
            .unwrap_or_else(|| panic!("no promotion: {}", text(&out)));
        github.pull(pull.number).body
    }

    /// The audit records of `event` naming a cluster, as `cluster` in order.
    fn clusters_of(&self, event: &str) -> Vec<String> {
        self.world
            .audit()
            .iter()
            .filter(|r| r["event"] == event)
            .filter_map(|r| r["cluster"].as_str().map(str::to_owned))
            .collect()
    }
}

#[test]
fn a_staging_merge_changes_the_canary_cluster_first_and_alone_then_the_other() {
    let fleet = Fleet::new(1);
    let merge = fleet.merge("staging", "384Mi");
    let out = fleet.reconcile(&merge);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fleet.limits(),
        ["256Mi", "384Mi", "384Mi", "256Mi", "256Mi"],
        "staging's two clusters only"
    );
    let events: Vec<(String, String)> = fleet
        .world
        .audit()
        .iter()
        .filter_map(|r| {
            Some((
                r["event"].as_str()?.to_owned(),
                r["cluster"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let at = |event: &str, cluster: &str| {
        events
            .iter()
            .position(|(e, c)| e == event && c == cluster)
            .unwrap_or_else(|| panic!("no {event} for {cluster}: {events:?}"))
    };
    assert!(
        at("cluster-verified", "stg-eu") < at("applied", "stg-us"),
        "the canary verified before the other was touched: {events:?}"
    );
    assert_eq!(fleet.world.last("verified")["message"], "healthy");
}

#[test]
fn a_failed_rollout_on_the_second_staging_cluster_reverts_and_restores_both() {
    let fleet = Fleet::new(1);
    let stg_us = &fleet.others[1];
    let merge = fleet.merge("staging", "384Mi");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let out = std::thread::scope(|scope| {
        // The new pods never come up on stg-us.
        scope.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if Fleet::limit(stg_us) == "384Mi" {
                    stg_us
                        .set_rollout("Deployment", "shop", "api", testkit::Rollout::Failed)
                        .unwrap();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let out = fleet.reconcile(&merge);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    });
    assert!(text(&out).contains("rolled back by"), "{}", text(&out));
    assert_eq!(
        fleet.limits(),
        ["256Mi", "256Mi", "256Mi", "256Mi", "256Mi"],
        "both staging clusters restored"
    );
    // The revert on main carries every trailer the README promises.
    let main = fleet.world.github.branch_head("main").unwrap();
    let repo = git2::Repository::open_bare(&fleet.world.remote.bare).unwrap();
    let revert = repo
        .find_commit(git2::Oid::from_str(&main).unwrap())
        .unwrap();
    let message = revert.message().unwrap();
    let pull = fleet.world.last("applied")["pull"].as_u64().unwrap();
    for trailer in [
        format!("Reverts: {merge}"),
        format!("Reverts-Pull-Request: #{pull}"),
        format!("Remediation-Id: {merge}"),
    ] {
        assert!(message.contains(&trailer), "{trailer:?} not in {message}");
    }
    // The revert's own record says what it reverts, not that it was reverted by itself.
    let own = fleet
        .world
        .audit()
        .into_iter()
        .find(|r| r["event"] == "rolled-back" && r["commit"] == main.as_str())
        .unwrap();
    let said = own["message"].as_str().unwrap();
    assert!(
        said.starts_with(&format!("reverts {}", &merge[..12])),
        "{said}"
    );
    let restored = fleet.clusters_of("applied");
    assert_eq!(
        restored,
        ["stg-eu", "stg-us", "stg-eu", "stg-us"],
        "applied to both, then both restored"
    );
    // No promotion to prod from a rolled-back change, however long it has been.
    std::thread::sleep(Duration::from_secs(2));
    let promote = fleet.world.run(&["promote"]);
    assert_eq!(promote.status.code(), Some(0), "{}", text(&promote));
    assert!(
        fleet
            .world
            .github
            .pulls()
            .iter()
            .all(|p| !p.head.contains("promote"))
    );
}

#[test]
fn a_crash_after_the_canary_verified_resumes_with_the_next_cluster() {
    let fleet = Fleet::new(1);
    let merge = fleet.merge("staging", "384Mi");
    let crashed = std::process::Command::new(env!("CARGO_BIN_EXE_remediator"))
        .args([
            "reconcile",
            "--commit",
            &merge,
            "--repo",
            fleet.world.work(),
        ])
        .args(["--policies", fleet.world.policies.to_str().unwrap()])
        .env("GITHUB_TOKEN", testkit::github::BOT_TOKEN)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("REMEDIATOR_FAILPOINTS", "after-cluster-verified")
        .output()
        .unwrap();
    assert_eq!(crashed.status.code(), Some(86), "{}", text(&crashed));
    assert_eq!(fleet.limits()[1..3], ["384Mi", "256Mi"], "the canary only");
    let canary_writes = common::writes_to(&fleet.others[0], "/deployments/api");
    let out = fleet.reconcile(&merge);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(fleet.limits()[1..3], ["384Mi", "384Mi"]);
    assert_eq!(
        common::writes_to(&fleet.others[0], "/deployments/api"),
        canary_writes,
        "the canary was not applied again"
    );
    assert_eq!(fleet.clusters_of("cluster-verified"), ["stg-eu", "stg-us"]);
    assert_eq!(fleet.world.last("verified")["message"], "healthy");
}

#[test]
fn an_unreachable_cluster_halts_the_wave_and_is_never_skipped() {
    let mut fleet = Fleet::new(0);
    // stg-us goes away.
    let gone = fleet.others.remove(1);
    let kubeconfig = gone.kubeconfig().to_owned();
    let saved = std::fs::read_to_string(&kubeconfig).unwrap();
    drop(gone);
    std::fs::create_dir_all(kubeconfig.parent().unwrap()).unwrap();
    std::fs::write(&kubeconfig, saved).unwrap();
    let merge = fleet.merge("staging", "384Mi");
    let out = fleet.reconcile(&merge);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let printed = text(&out);
    assert!(
        printed.contains("halted at cluster staging/stg-us"),
        "{printed}"
    );
    // Its record of the last finished commit could not be read either, and that is said.
    assert!(
        printed.contains("the last finished commit cannot be read cluster=stg-us"),
        "{printed}"
    );
    assert_eq!(
        Fleet::limit(&fleet.others[0]),
        "384Mi",
        "the canary was changed"
    );
    let halted = fleet.world.last("halted");
    assert_eq!(halted["cluster"], "stg-us");
    assert!(
        !fleet.world.events().contains(&"verified".to_owned()),
        "not finished: {:?}",
        fleet.world.events()
    );
}

#[test]
fn a_change_proven_in_dev_is_promoted_to_staging_after_the_soak_then_to_prod() {
    let fleet = Fleet::new(3);
    let world = &fleet.world;
    let merge = fleet.merge("dev", "384Mi");
    let out = fleet.reconcile(&merge);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fleet.limits(),
        ["384Mi", "256Mi", "256Mi", "256Mi", "256Mi"]
    );
    // Still soaking: no promotion yet.
    let early = world.run(&["promote"]);
    assert_eq!(early.status.code(), Some(0), "{}", text(&early));
    assert!(
        text(&early).contains("dev -> staging: soaking"),
        "{}",
        text(&early)
    );
    let promotions = || -> Vec<testkit::github::Pull> {
        world
            .github
            .pulls()
            .into_iter()
            .filter(|p| p.head.starts_with("remediator/promote-"))
            .collect()
    };
    assert!(promotions().is_empty());
    std::thread::sleep(Duration::from_secs(3));
    let due = world.run(&["promote"]);
    assert_eq!(due.status.code(), Some(0), "{}", text(&due));
    let staging = promotions();
    assert_eq!(staging.len(), 1, "{}", text(&due));
    assert_eq!(staging[0].head, "remediator/promote-staging/api");
    let body = world.github.pull(staging[0].number).body;
    for wanted in [
        "Promotion from dev to staging",
        "3s soak",
        "| dev/dev-1 | verified |",
        "Deployment/shop/api: Healthy",
        "### Risk in staging",
        "-            memory: 256Mi",
        "+            memory: 384Mi",
        "### Rendered in staging",
        "`Deployment/shop/api` `spec.template.spec.containers[name=api].resources.limits.memory`: `256Mi` → `384Mi`",
        "**staging/stg-eu**",
        "**staging/stg-us**",
    ] {
        assert!(body.contains(wanted), "{wanted:?} not in:\n{body}");
    }
    // Running again updates the same pull request, never a second.
    let again = world.run(&["promote"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(promotions().len(), 1);
    // Merged: the canary first and alone, then the other staging cluster.
    world.github.review(
        staging[0].number,
        "alice",
        testkit::github::ReviewState::Approved,
    );
    let promoted = world.github.merge(staging[0].number);
    let out = fleet.reconcile(&promoted);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fleet.limits(),
        ["384Mi", "384Mi", "384Mi", "256Mi", "256Mi"]
    );
    assert_eq!(fleet.clusters_of("cluster-verified"), ["stg-eu", "stg-us"]);
    // After staging's soak, the promotion to prod.
    std::thread::sleep(Duration::from_secs(3));
    let due = world.run(&["promote"]);
    assert_eq!(due.status.code(), Some(0), "{}", text(&due));
    let prod: Vec<_> = promotions()
        .into_iter()
        .filter(|p| p.head == "remediator/promote-prod/api")
        .collect();
    assert_eq!(prod.len(), 1, "{}", text(&due));
    let body = world.github.pull(prod[0].number).body;
    assert!(
        body.contains("staging/stg-eu") && body.contains("staging/stg-us"),
        "{body}"
    );
    assert!(
        body.contains("### Rendered in prod") && body.contains("`256Mi` → `384Mi`"),
        "{body}"
    );
    // history shows the chain across environments and clusters.
    let history = world.run(&["history"]);
    let printed = text(&history);
    let chain = printed
        .split("\n== ")
        .find(|block| block.contains("promotion from staging to prod"))
        .unwrap_or_else(|| panic!("no chain with the promotion to prod:\n{printed}"));
    for wanted in [
        "[dev-1]",
        "[stg-eu]",
        "[stg-us]",
        "promotion from dev to staging",
    ] {
        assert!(
            chain.contains(wanted),
            "{wanted:?} not in one chain:\n{printed}"
        );
    }
}

#[test]
fn a_newer_change_to_the_same_object_updates_the_open_promotion_instead_of_stacking() {
    let fleet = Fleet::new(1);
    let world = &fleet.world;
    for memory in ["384Mi", "512Mi"] {
        let merge = fleet.merge("dev", memory);
        let out = fleet.reconcile(&merge);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        std::thread::sleep(Duration::from_millis(1100));
        let out = world.run(&["promote"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let promotions: Vec<_> = world
        .github
        .pulls()
        .into_iter()
        .filter(|p| p.head.starts_with("remediator/promote-"))
        .collect();
    assert_eq!(promotions.len(), 1, "updated, not stacked");
    let body = world.github.pull(promotions[0].number).body;
    assert!(body.contains("+            memory: 512Mi"), "{body}");
    assert!(!body.contains("by hand"), "{body}");
}

#[test]
fn a_remediation_is_made_again_for_the_next_environment_s_own_declaration() {
    // Staging already runs with twice dev's limit: the same remedy raises staging's own.
    let fleet = Fleet::with(1, ["256Mi", "512Mi", "512Mi"]);
    let world = &fleet.world;
    let merge = world.merge_change_as(
        "remediator/crash-loop-oom/shop-api",
        "Raise the memory limit of api\n\nRemediation-Id: 3f2a9c\nFinding: crash-loop-oom\nAction: raise-memory\nRisk: medium\n",
        &[("dev/api.yaml", &deployment("dev", "384Mi"))],
    );
    let body = fleet.promoted_to_staging(&merge);
    assert!(
        body.contains("### The remedy, made again for staging"),
        "{body}"
    );
    assert!(
        body.contains("+            memory: 768Mi"),
        "512Mi × 1.5:\n{body}"
    );
    assert!(!body.contains("by hand"), "{body}");
    // The chain keeps the remediation's id.
    assert_eq!(world.last("promoted")["remediation"], "3f2a9c");
}

#[test]
fn a_human_change_that_does_not_map_onto_the_next_environment_asks_for_it_by_hand() {
    // Staging holds another value than dev held before the change: nothing is carried.
    let fleet = Fleet::with(1, ["256Mi", "512Mi", "512Mi"]);
    let merge = fleet.merge("dev", "384Mi");
    let body = fleet.promoted_to_staging(&merge);
    assert!(body.contains("### Not carried: to do by hand"), "{body}");
    assert!(
        body.contains("`spec.template.spec.containers[name=api].resources.limits.memory` is `512Mi` in staging"),
        "{body}"
    );
    assert!(
        body.contains(".remediator/promotions/staging-api.md"),
        "{body}"
    );
    assert!(!body.contains("+            memory: 384Mi"), "{body}");
}

/// The README's layout: one Deployment in a shared base, an overlay per environment that sets
/// its image by `images:`.
const WEB_BASE: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27.0
          resources:
            limits: {memory: 128Mi}
";

/// Canary's own memory limit, by a patch of its overlay.
const CANARY_MEMORY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    spec:
      containers:
        - name: web
          resources:
            limits: {memory: 256Mi}
";

/// An overlay of the shared base that runs nginx at `tag`, with canary's memory patch when
/// `patched`.
fn overlay(tag: &str, patched: bool) -> String {
    format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base\nimages:\n  - name: nginx\n    newTag: {tag}\n{}",
        if patched {
            "patches:\n  - path: memory.yaml\n"
        } else {
            ""
        }
    )
}

/// canary, staging and prod, a cluster each, in the layout of [`WEB_BASE`]; every cluster runs
/// web as its overlay renders it (nginx:1.27.1, 128Mi).
struct Waves {
    world: World,
    staging: TestCluster,
    prod: TestCluster,
}

impl Waves {
    fn new() -> Waves {
        let overlays: Vec<(String, String)> = ["canary", "staging", "prod"]
            .iter()
            .map(|env| {
                (
                    format!("overlays/{env}/kustomization.yaml"),
                    overlay("1.27.1", false),
                )
            })
            .collect();
        let mut files = vec![
            (
                "base/kustomization.yaml",
                "resources:\n  - deployment.yaml\n",
            ),
            ("base/deployment.yaml", WEB_BASE),
        ];
        files.extend(overlays.iter().map(|(p, t)| (p.as_str(), t.as_str())));
        let world = World::new(Some(&files));
        let (staging, prod) = (TestCluster::start(), TestCluster::start());
        let config = format!(
            "clusters:\n  - {{name: canary-1, context: testkit, kubeconfig: {}}}\n  - {{name: stg, context: testkit, kubeconfig: {}}}\n  - {{name: prod-1, context: testkit, kubeconfig: {}}}\nenvironments:\n  - {{name: canary, paths: [\"overlays/canary/**\"], clusters: [canary-1]}}\n  - {{name: staging, paths: [\"overlays/staging/**\"], clusters: [stg]}}\n  - {{name: prod, paths: [\"overlays/prod/**\"], clusters: [prod-1]}}\npromotion:\n  order: [canary, staging, prod]\n  soakSeconds: 1\n",
            world.cluster.kubeconfig().display(),
            staging.kubeconfig().display(),
            prod.kubeconfig().display()
        );
        let file = world.remote.work.join("remediator.yaml");
        let rest = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, format!("{config}{rest}")).unwrap();
        common::commit_all(&world.remote.work, "Three waves");
        common::push(&world.remote.work, "refs/heads/main:refs/heads/main");
        let waves = Waves {
            world,
            staging,
            prod,
        };
        for cluster in waves.clusters() {
            let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
            cluster.create(ns, "kubectl").unwrap();
            let running = WEB_BASE.replace("nginx:1.27.0", "nginx:1.27.1");
            let object: Value = serde_saphyr::from_str(&running).unwrap();
            cluster.create(object, "kubectl").unwrap();
            cluster.follow_spec(Duration::from_millis(200));
        }
        waves
    }

    fn clusters(&self) -> [&TestCluster; 3] {
        [&self.world.cluster, &self.staging, &self.prod]
    }

    /// Each cluster's web container: image and memory limit.
    fn running(&self) -> Vec<String> {
        self.clusters()
            .iter()
            .map(|c| {
                let web = c.object("Deployment", "shop", "web").unwrap();
                let container = &web["spec"]["template"]["spec"]["containers"][0];
                format!(
                    "{} {}",
                    container["image"].as_str().unwrap(),
                    container["resources"]["limits"]["memory"].as_str().unwrap()
                )
            })
            .collect()
    }

    /// Canary's change, merged: nginx 1.27.2 and 256Mi.
    fn merge_canary(&self) -> String {
        self.world.merge_change(
            "canary-web",
            &[
                (
                    "overlays/canary/kustomization.yaml",
                    &overlay("1.27.2", true),
                ),
                ("overlays/canary/memory.yaml", CANARY_MEMORY),
            ],
        )
    }

    fn reconcile(&self, commit: &str) {
        let out = self.world.reconcile_routed(commit, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }

    /// Runs `promote` (after the one-second soak); its output.
    fn promote(&self) -> String {
        std::thread::sleep(Duration::from_millis(1100));
        let out = self.world.run(&["promote"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        text(&out)
    }

    /// The promotion pull requests to `env`.
    fn promotions(&self, env: &str) -> Vec<testkit::github::Pull> {
        let head = format!("remediator/promote-{env}/web");
        let pulls = self.world.github.pulls();
        pulls.into_iter().filter(|p| p.head == head).collect()
    }

    /// The one promotion to `env`, approved by alice and merged by `method`; the merge commit.
    fn merge_promotion(&self, env: &str, method: testkit::github::MergeMethod) -> String {
        self.merge_promotion_approved(env, method, &["alice"])
    }

    /// [`Waves::merge_promotion`], approved by each of `approvers`.
    fn merge_promotion_approved(
        &self,
        env: &str,
        method: testkit::github::MergeMethod,
        approvers: &[&str],
    ) -> String {
        let [pull] = &self.promotions(env)[..] else {
            panic!("not one promotion to {env}: {:?}", self.promotions(env));
        };
        let github = &self.world.github;
        for approver in approvers {
            github.review(
                pull.number,
                approver,
                testkit::github::ReviewState::Approved,
            );
        }
        github.merge_with(pull.number, method)
    }
}

#[test]
fn a_shared_base_s_overlay_images_carry_the_rendered_tag_from_canary_to_staging_to_prod() {
    let waves = Waves::new();
    let world = &waves.world;
    waves.reconcile(&waves.merge_canary());
    assert_eq!(
        waves.running(),
        [
            "nginx:1.27.2 256Mi",
            "nginx:1.27.1 128Mi",
            "nginx:1.27.1 128Mi"
        ]
    );
    std::thread::sleep(Duration::from_millis(1100));
    // Only the promotions into prod: none is due.
    let only = world.run(&["promote", "--env", "prod"]);
    assert_eq!(only.status.code(), Some(0), "{}", text(&only));
    assert!(
        text(&only).contains("nothing to promote"),
        "{}",
        text(&only)
    );
    let unknown = world.run(&["promote", "--env", "qa"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(
        text(&unknown).contains("`qa` is not in promotion.order (canary, staging, prod)"),
        "{}",
        text(&unknown)
    );
    // Canary no longer healthy: held back, and the exit code says so.
    let canary = &world.cluster;
    canary
        .set_rollout("Deployment", "shop", "web", testkit::Rollout::Failed)
        .unwrap();
    let held = world.run(&["promote", "--env", "staging"]);
    assert_eq!(held.status.code(), Some(1), "{}", text(&held));
    assert!(
        text(&held).contains("canary -> staging: not promoted: canary/canary-1"),
        "{}",
        text(&held)
    );
    canary
        .set_rollout("Deployment", "shop", "web", testkit::Rollout::Done)
        .unwrap();
    waves.promote();
    let staging = waves.promotions("staging");
    assert_eq!(staging.len(), 1);
    let body = world.github.pull(staging[0].number).body;
    for wanted in [
        // The tag goes into staging's own `images:` entry, the memory into a new patch of
        // staging's overlay: the base is shared.
        "+    newTag: 1.27.2",
        "overlays/staging/kustomization.yaml",
        "### Rendered in staging",
        "`spec.template.spec.containers[name=web].image`: `nginx:1.27.1` → `nginx:1.27.2`",
        "`spec.template.spec.containers[name=web].resources.limits.memory`: `128Mi` → `256Mi`",
        "**staging/stg**",
    ] {
        assert!(body.contains(wanted), "{wanted:?} not in:\n{body}");
    }
    assert!(!body.contains("by hand"), "{body}");
    assert!(!body.contains("base/deployment.yaml"), "{body}");
    // Merged and not yet reconciled: waiting, never proposed again.
    let merged = waves.merge_promotion("staging", testkit::github::MergeMethod::Merge);
    let printed = waves.promote();
    assert!(
        printed.contains("canary -> staging: merged in #"),
        "{printed}"
    );
    assert!(printed.contains("waiting for reconcile"), "{printed}");
    assert_eq!(waves.promotions("staging").len(), 1, "{printed}");
    waves.reconcile(&merged);
    assert_eq!(
        waves.running(),
        [
            "nginx:1.27.2 256Mi",
            "nginx:1.27.2 256Mi",
            "nginx:1.27.1 128Mi"
        ]
    );
    // After staging's soak, prod: the same carry, through prod's own overlay.
    let printed = waves.promote();
    assert!(
        printed.contains("canary -> staging: promoted by #"),
        "{printed}"
    );
    assert_eq!(waves.promotions("staging").len(), 1, "{printed}");
    let prod = waves.promotions("prod");
    assert_eq!(prod.len(), 1, "{printed}");
    let body = world.github.pull(prod[0].number).body;
    for wanted in [
        "Promotion from staging to prod",
        "`nginx:1.27.1` → `nginx:1.27.2`",
        "`128Mi` → `256Mi`",
        "**prod/prod-1**",
    ] {
        assert!(body.contains(wanted), "{wanted:?} not in:\n{body}");
    }
    waves.reconcile(&waves.merge_promotion("prod", testkit::github::MergeMethod::Merge));
    assert_eq!(waves.running(), ["nginx:1.27.2 256Mi"; 3]);
    let printed = waves.promote();
    assert_eq!(waves.promotions("prod").len(), 1, "{printed}");
    let promoted: Vec<Value> = world
        .audit()
        .into_iter()
        .filter(|r| r["event"] == "promoted")
        .collect();
    assert_eq!(promoted.len(), 2, "one record per promotion: {promoted:?}");
}

/// Commits `to` in place of `from` in `file` on `branch` of the remote, as Dana.
fn commit_as_dana(world: &World, branch: &str, file: &str, from: &str, to: &str) -> String {
    let work = &world.remote.work;
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(work)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    git(&["fetch", "-q", "origin", branch]);
    git(&["checkout", "-q", "-B", "dana", "FETCH_HEAD"]);
    let path = work.join(file);
    let before = std::fs::read_to_string(&path).unwrap();
    assert!(before.contains(from), "{before}");
    std::fs::write(&path, before.replace(from, to)).unwrap();
    git(&[
        "-c",
        "user.name=Dana",
        "-c",
        "user.email=dana@example.com",
        "commit",
        "-qam",
        "Staging runs 1.27.3",
    ]);
    git(&["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")]);
    let head = git(&["rev-parse", "HEAD"]);
    git(&["checkout", "-q", "main"]);
    head
}

#[test]
fn a_person_s_commit_on_the_promotion_branch_is_left_alone_and_the_chain_stays_one() {
    let waves = Waves::new();
    let world = &waves.world;
    waves.reconcile(&waves.merge_canary());
    waves.promote();
    let branch = "remediator/promote-staging/web";
    let dana = commit_as_dana(
        world,
        branch,
        "overlays/staging/kustomization.yaml",
        "newTag: 1.27.2",
        "newTag: 1.27.3",
    );
    let number = waves.promotions("staging")[0].number;
    for _ in 0..2 {
        let printed = waves.promote();
        assert!(printed.contains("left to them"), "{printed}");
        assert_eq!(world.github.branch_head(branch).unwrap(), dana, "{printed}");
    }
    let said: Vec<_> = world
        .github
        .comments(number)
        .into_iter()
        .filter(|c| c.body.contains("remediator did not make"))
        .collect();
    assert_eq!(said.len(), 1, "one comment: {said:?}");
    assert!(said[0].body.contains("dana@example.com"), "{:?}", said[0]);
    // Canary never ran Dana's 1.27.3: the merge skips a wave, and is approved as a critical
    // change is. Squashed, the merge keeps only the title: the chain still holds.
    let merged = waves.merge_promotion_approved(
        "staging",
        testkit::github::MergeMethod::Squash,
        &["alice", "bob", "carol"],
    );
    waves.reconcile(&merged);
    let reasons = world.last("policy")["detail"]["reasons"].to_string();
    assert!(
        reasons.contains("canary does not run this yet"),
        "{reasons}"
    );
    assert_eq!(waves.running()[1], "nginx:1.27.3 256Mi");
    waves.promote();
    let chain = world.last("promoted")["remediation"].clone();
    assert!(chain.is_string(), "{chain}");
    let staging_verified = world
        .audit()
        .into_iter()
        .rfind(|r| r["event"] == "verified" && r["commit"] == merged.as_str())
        .unwrap();
    assert_eq!(staging_verified["remediation"], chain);
    let history = text(&world.run(&["history"]));
    let block = history
        .split("\n== ")
        .find(|b| b.contains("promotion from staging to prod"))
        .unwrap_or_else(|| panic!("no promotion to prod:\n{history}"));
    assert!(
        block.contains("promotion from canary to staging") && block.contains("[stg]"),
        "one chain:\n{history}"
    );
}

#[test]
fn a_change_copied_straight_to_prod_skips_a_wave_and_needs_what_a_critical_change_needs() {
    let fleet = Fleet::new(1);
    // Shaped like a promotion, but neither dev nor staging runs 384Mi.
    let message = "Promote to prod: api 384Mi\n\nPromotes: 0123456789abcdef0123456789abcdef01234567\nPromoted-From: staging\n";
    let merge = fleet.world.merge_change_as(
        "remediator/promote-prod/api",
        message,
        &[("prod/api.yaml", &deployment("prod", "384Mi"))],
    );
    let out = fleet.reconcile(&merge);
    let printed = text(&out);
    assert_ne!(out.status.code(), Some(0), "{printed}");
    assert!(
        printed.contains("an approval from team `security`"),
        "{printed}"
    );
    assert_eq!(fleet.limits(), ["256Mi"; 5], "nothing applied");
    let policy = fleet.world.last("policy");
    assert_eq!(policy["detail"]["risk"], "critical");
    let reasons = policy["detail"]["reasons"].to_string();
    assert!(
        reasons.contains("staging does not run this yet: the change skips a wave"),
        "{reasons}"
    );
    // Approved as a critical change is, it is applied.
    let github = &fleet.world.github;
    let pull = github.pulls()[0].number;
    for approver in ["bob", "carol"] {
        github.review(pull, approver, testkit::github::ReviewState::Approved);
    }
    let out = fleet.reconcile(&merge);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(fleet.limits()[3..], ["384Mi", "384Mi"]);
}

#[test]
fn promote_refuses_an_order_with_an_environment_that_reaches_no_cluster() {
    let world = World::new(Some(&[("dev/api.yaml", &deployment("dev", "256Mi"))]));
    let file = world.remote.work.join("remediator.yaml");
    let rest = std::fs::read_to_string(&file).unwrap();
    let config = format!(
        "clusters:\n  - {{name: dev-1, context: testkit, kubeconfig: {}}}\nenvironments:\n  - {{name: dev, paths: [\"dev/**\"], clusters: [dev-1]}}\n  - {{name: staging, paths: [\"staging/**\"]}}\npromotion:\n  order: [dev, staging]\n",
        world.cluster.kubeconfig().display()
    );
    std::fs::write(&file, format!("{config}{rest}")).unwrap();
    common::commit_all(&world.remote.work, "staging without a cluster");
    common::push(&world.remote.work, "refs/heads/main:refs/heads/main");
    let out = world.run(&["promote"]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(2), "{printed}");
    assert!(
        printed.contains("`staging` reaches no cluster") && printed.contains("remediator.yaml"),
        "{printed}"
    );
    assert!(world.github.pulls().is_empty());
}
