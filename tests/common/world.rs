//! A world for the merge path's end-to-end tests: a work clone with a bare `origin`, a fake
//! GitHub serving it, a test API server, and the binary run against them with the bot's token.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use testkit::TestCluster;
use testkit::github::{BOT_TOKEN, FakeGitHub};

/// The repository, its GitHub and its cluster.
pub struct World {
    /// The work clone and its bare origin.
    pub remote: super::GitRemote,
    /// The `--policies` directory given to propose, reconcile and rollback.
    pub policies: PathBuf,
    /// The fake GitHub serving `acme/config`.
    pub github: FakeGitHub,
    /// The test API server.
    pub cluster: TestCluster,
}

/// The shop team's own rule on top of the default policies: every change to shop-dev needs a
/// review.
pub const SHOP_POLICY: &str = "
reasons contains {\"level\": \"medium\", \"reason\": \"the shop team reviews every change to shop-dev\"} if input.target.namespace == \"shop-dev\"
";

/// The merge path's settings every world's remediator.yaml carries.
pub const RECONCILE: &str = "reconcile:\n  healthTimeoutSeconds: 20\n  lockWaitSeconds: 0\napprovals:\n  teams:\n    security: [carol]\n";

impl World {
    /// The example repository (or `files`) in a work clone with an `origin`, remediator.yaml
    /// pointing at the fake GitHub.
    pub fn new(files: Option<&[(&str, &str)]>) -> World {
        let remote = match files {
            None => super::git_remote(Some(&super::example_repo()), &[]),
            Some(files) => super::git_remote(None, files),
        };
        let github = FakeGitHub::start("acme/config", &remote.bare);
        let cluster = TestCluster::start();
        let config_file = remote.work.join("remediator.yaml");
        // Every environment reaches the test cluster.
        let kubeconfig = cluster.kubeconfig();
        let config = std::fs::read_to_string(&config_file).unwrap_or_default();
        let config = super::example_config_on(&config, kubeconfig, kubeconfig);
        let config = match config.find("forge:") {
            Some(at) => config[..at].to_owned(),
            None => config,
        };
        let config = format!(
            "{config}forge:\n  type: github\n  repository: acme/config\n  apiUrl: {}\n{RECONCILE}",
            github.url()
        );
        std::fs::write(&config_file, config).unwrap();
        super::commit_all(&remote.work, "Publish to GitHub");
        super::push(&remote.work, "refs/heads/main:refs/heads/main");
        let policies = remote.dir.path().join("policies");
        std::fs::create_dir_all(&policies).unwrap();
        let rego = remediator::assess::DEFAULT_POLICIES[0].1.to_owned() + SHOP_POLICY;
        std::fs::write(policies.join("remediator.rego"), rego).unwrap();
        World {
            remote,
            policies,
            github,
            cluster,
        }
    }

    /// A world of `files` whose environment `dev` (`dev/**`) reaches the world's cluster and
    /// `prod` (`prod/**`) reaches `prod`, with `more` environments (YAML list items) after them;
    /// the configuration is pushed to main before any merge, so the gate reads it.
    pub fn dev_and_prod(files: &[(&str, &str)], prod: &TestCluster, more: &str) -> World {
        let world = World::new(Some(files));
        let config_file = world.remote.work.join("remediator.yaml");
        let config = std::fs::read_to_string(&config_file).unwrap();
        let environments = format!(
            "environments:\n  - name: dev\n    paths: [\"dev/**\"]\n    context: testkit\n    kubeconfig: {}\n  - name: prod\n    paths: [\"prod/**\"]\n    context: testkit\n    kubeconfig: {}\n{more}",
            world.cluster.kubeconfig().display(),
            prod.kubeconfig().display()
        );
        std::fs::write(&config_file, format!("{environments}{config}")).unwrap();
        super::commit_all(&world.remote.work, "Environments and their clusters");
        super::push(&world.remote.work, "refs/heads/main:refs/heads/main");
        world
    }

    /// The work clone's path.
    pub fn work(&self) -> &str {
        self.remote.work.to_str().unwrap()
    }

    /// `remediator ARGS --repo WORK [--kubeconfig K] [--policies P]` with the bot's token;
    /// propose reads each environment from the cluster the configuration gives it.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    /// [`World::run`] with `env` set (`REMEDIATOR_FAILPOINTS`, say).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_remediator"));
        command.envs(env.iter().copied());
        command.args(args).args(["--repo", self.work()]);
        if !["history", "propose"].contains(&args[0]) {
            command.args(["--kubeconfig", self.cluster.kubeconfig().to_str().unwrap()]);
        }
        if ["propose", "reconcile", "rollback"].contains(&args[0]) {
            command.args(["--policies", self.policies.to_str().unwrap()]);
        }
        command
            .env("GITHUB_TOKEN", BOT_TOKEN)
            .env_remove("GITHUB_API_URL")
            .output()
            .unwrap()
    }

    /// `reconcile --commit COMMIT --env dev`.
    pub fn reconcile(&self, commit: &str) -> Output {
        self.run(&["reconcile", "--commit", commit, "--env", "dev"])
    }

    /// `reconcile --commit COMMIT EXTRA...` with each environment on the cluster the
    /// configuration gives it, unless `extra` names one.
    pub fn reconcile_routed(&self, commit: &str, extra: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_remediator"))
            .args(["reconcile", "--commit", commit, "--repo", self.work()])
            .args(["--policies", self.policies.to_str().unwrap()])
            .args(extra)
            .env("GITHUB_TOKEN", BOT_TOKEN)
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .output()
            .unwrap()
    }

    /// A pull request by mallory writing `files` (path, text), approved by alice, merged;
    /// returns the merge commit.
    pub fn merge_change(&self, branch: &str, files: &[(&str, &str)]) -> String {
        self.merge_change_as(branch, branch, files)
    }

    /// [`World::merge_change`] with the commit message `message` (trailers included).
    pub fn merge_change_as(&self, branch: &str, message: &str, files: &[(&str, &str)]) -> String {
        self.merge_change_approved(branch, message, files, &["alice"])
    }

    /// [`World::merge_change_as`], approved by each of `approvers`.
    pub fn merge_change_approved(
        &self,
        branch: &str,
        message: &str,
        files: &[(&str, &str)],
        approvers: &[&str],
    ) -> String {
        let work = &self.remote.work;
        let main = super::branch_head(work, "main").unwrap();
        super::write_files(work, files);
        super::commit_all(work, message);
        super::push(work, &format!("refs/heads/main:refs/heads/{branch}"));
        let repo = git2::Repository::open(work).unwrap();
        repo.reset(
            &repo.find_object(main, None).unwrap(),
            git2::ResetType::Hard,
            None,
        )
        .unwrap();
        let number = self.github.open_pull(branch, "main", branch, "mallory");
        for approver in approvers {
            self.github
                .review(number, approver, testkit::github::ReviewState::Approved);
        }
        self.github.merge(number)
    }

    /// Writes by remediator (server-side apply, not dry-run) to an object's path.
    pub fn writes(&self, path_end: &str) -> usize {
        self.cluster
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.ends_with(path_end))
            .filter(|r| r.query.contains("fieldManager=remediator") && !r.query.contains("dryRun"))
            .filter(|r| r.status.is_some_and(|s| s < 300))
            .count()
    }

    /// The audit records, oldest first.
    pub fn audit(&self) -> Vec<Value> {
        let log = self.remote.work.join(".git/remediator/audit.jsonl");
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The last audit record of `event`.
    pub fn last(&self, event: &str) -> Value {
        self.audit()
            .into_iter()
            .rfind(|r| r["event"] == event)
            .unwrap_or_else(|| panic!("no {event} record: {:?}", self.events()))
    }

    /// The audit records' events, oldest first.
    pub fn events(&self) -> Vec<String> {
        self.audit()
            .iter()
            .map(|r| r["event"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// What a run printed, both streams.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
