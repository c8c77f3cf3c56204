//! The trust model end to end, through the binary, the fake GitHub and the test API server: the
//! gate decides on inputs the pull request under review cannot change. Each way a pull request
//! could approve itself is refused, with the reason on the pull request and in the audit log
//! and nothing written to the cluster, beside a control case in which the legitimate approval
//! applies.

mod common;

use std::time::Duration;

use common::world::{World, text};
use testkit::github::{BOT_USER, FakeGitHub, MergeMethod, ReviewState};

/// A Deployment in kube-system: any change to it is critical (two approvals, one of them the
/// security team's).
const AGENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: agent
  namespace: kube-system
spec:
  replicas: 2
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
        - name: agent
          image: agent:1
";

/// The agent applied and followed by simulated controllers; `files` beside it.
fn agent_world(files: &[(&str, &str)]) -> World {
    let mut all = vec![("agent.yaml", AGENT)];
    all.extend_from_slice(files);
    let world = World::new(Some(&all));
    let applied = world.run(&["apply", "--path", "."]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    world.cluster.follow_spec(Duration::from_millis(200));
    world
}

fn image(world: &World) -> String {
    let agent = world
        .cluster
        .object("Deployment", "kube-system", "agent")
        .unwrap();
    agent["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// An edit: in `file`, `from` becomes `to`.
type Edit<'a> = (&'a str, &'a str, &'a str);

/// Commits `edits` as the GitHub user `login` on top of the local main and pushes the commit to
/// `refspec`; the local main stays where it was. Returns the commit.
fn push_as(world: &World, edits: &[Edit<'_>], login: &str, refspec: &str) -> String {
    let work = &world.remote.work;
    let main = common::branch_head(work, "main").unwrap();
    for (file, from, to) in edits {
        let path = work.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from}");
        std::fs::write(&path, text.replace(from, to)).unwrap();
    }
    let email = format!("{login}@users.noreply.github.com");
    let commit = common::commit_all_as(work, &format!("{login}: edit"), login, &email);
    common::push(work, refspec);
    let repo = git2::Repository::open(work).unwrap();
    let main = repo.find_object(main, None).unwrap();
    repo.reset(&main, git2::ResetType::Hard, None).unwrap();
    commit.to_string()
}

/// `author` opens a pull request of `branch` (made of `edits`, pushed by the author) into main.
fn pull_request(world: &World, branch: &str, edits: &[Edit<'_>], author: &str) -> u64 {
    push_as(
        world,
        edits,
        author,
        &format!("refs/heads/main:refs/heads/{branch}"),
    );
    world.github.open_pull(branch, "main", branch, author)
}

/// Mallory's pull request of `edits`, approved by alice and carol and merged as `method`;
/// returns the commit the merge wrote last.
fn approved_merge(world: &World, branch: &str, edits: &[Edit<'_>], method: MergeMethod) -> String {
    let number = pull_request(world, branch, edits, "mallory");
    approve(&world.github, number, &["alice", "carol"]);
    world.github.merge_with(number, method)
}

/// Mallory's pull request of `edits`, merged with no approval; returns it and the merge.
fn unapproved_merge(world: &World, branch: &str, edits: &[Edit<'_>]) -> (u64, String) {
    let number = pull_request(world, branch, edits, "mallory");
    (number, world.github.merge(number))
}

fn approve(github: &FakeGitHub, number: u64, logins: &[&str]) {
    for login in logins {
        github.review(number, login, ReviewState::Approved);
    }
}

/// Reconciles `commit` (no environments: the whole repository) and asserts it was refused for
/// `reason`, with nothing applied, a failure status, and the refusal recorded.
fn assert_refused(world: &World, commit: &str, pull: Option<u64>, reason: &str) {
    let out = world.run(&["reconcile", "--commit", commit]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(printed.contains("refused, nothing applied"), "{printed}");
    assert!(printed.contains(reason), "{printed}");
    assert_eq!(image(world), "agent:1", "{printed}");
    assert_eq!(
        world.writes("/deployments/agent"),
        1,
        "only the first apply"
    );
    let status = world.github.statuses(commit);
    assert_eq!(status.last().unwrap().state, "failure");
    let refusal = world
        .audit()
        .into_iter()
        .rfind(|r| r["event"] == "refused" && r["commit"] == commit)
        .unwrap_or_else(|| panic!("no refused record: {:?}", world.events()));
    assert!(
        refusal["message"].as_str().unwrap().contains(reason),
        "{refusal}"
    );
    if let Some(number) = pull {
        let comments = world.github.comments(number);
        let comment = comments
            .iter()
            .find(|c| c.body.contains("**refused**"))
            .unwrap_or_else(|| panic!("no refusal comment on #{number}"));
        assert!(comment.body.contains(reason), "{}", comment.body);
    }
}

/// Reconciles `commit` and asserts it was applied and is healthy with `expected` live.
fn assert_applied(world: &World, commit: &str, expected: &str) {
    let out = world.run(&["reconcile", "--commit", commit]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(image(world), expected, "{}", text(&out));
}

const SECURITY_TEAM: &str = "security: [carol]";

#[test]
fn the_configuration_under_review_does_not_judge_itself() {
    let world = agent_world(&[]);
    // Mallory adds her accomplice to the security team in the same pull request.
    let number = pull_request(
        &world,
        "teams",
        &[
            ("remediator.yaml", SECURITY_TEAM, "security: [carol, eve]"),
            ("agent.yaml", "agent:1", "agent:2"),
        ],
        "mallory",
    );
    approve(&world.github, number, &["alice", "eve"]);
    let merge = world.github.merge(number);
    assert_refused(
        &world,
        &merge,
        Some(number),
        "an approval from team `security` (carol) is required",
    );
    let policy = world.last("policy");
    let reasons = policy["detail"]["reasons"].to_string();
    assert!(
        reasons.contains("remediator.yaml decides what is applied"),
        "{reasons}"
    );

    // The control: the security team as it was before the merge approves.
    approve(&world.github, number, &["carol"]);
    assert_applied(&world, &merge, "agent:2");
}

#[test]
fn an_api_url_changed_by_the_pull_request_is_never_asked() {
    let world = agent_world(&[]);
    let elsewhere = FakeGitHub::start("acme/config", &world.remote.bare);
    let url = world.github.url().to_owned();
    let (number, merge) = unapproved_merge(
        &world,
        "api",
        &[
            ("remediator.yaml", url.as_str(), elsewhere.url()),
            ("agent.yaml", "agent:1", "agent:2"),
        ],
    );
    assert_refused(
        &world,
        &merge,
        Some(number),
        "needs 2 approvals of the merged head",
    );
    assert!(
        elsewhere.requests().is_empty(),
        "the pull request's own API was asked: {:?}",
        elsewhere.requests()
    );

    approve(&world.github, number, &["alice", "carol"]);
    assert_applied(&world, &merge, "agent:2");
    assert!(elsewhere.requests().is_empty());
}

#[test]
fn policies_in_the_repository_are_read_as_they_were_before_the_merge() {
    let rego = remediator::assess::DEFAULT_POLICIES[0].1;
    let mut world = agent_world(&[("policies/remediator.rego", rego)]);
    world.policies = world.remote.work.join("policies");
    let (number, merge) = unapproved_merge(
        &world,
        "policy",
        &[
            ("policies/remediator.rego", rego, common::PERMISSIVE_POLICY),
            ("agent.yaml", "agent:1", "agent:2"),
        ],
    );
    assert_refused(
        &world,
        &merge,
        Some(number),
        "needs 2 approvals of the merged head",
    );
    let policy = world.last("policy");
    assert_eq!(policy["detail"]["risk"], "critical", "{policy}");
    assert!(
        policy["detail"]["reasons"]
            .to_string()
            .contains("policies/remediator.rego decides what is applied"),
        "{policy}"
    );

    approve(&world.github, number, &["alice", "carol"]);
    assert_applied(&world, &merge, "agent:2");
}

#[test]
fn approvals_of_an_earlier_head_do_not_count() {
    let world = agent_world(&[]);
    let number = pull_request(
        &world,
        "bump",
        &[("agent.yaml", "agent:1", "agent:2")],
        "mallory",
    );
    approve(&world.github, number, &["alice", "carol"]);
    // After the approvals, the author pushes another commit to the branch.
    let branch = common::branch_head(&world.remote.bare, "bump").unwrap();
    let repo = git2::Repository::open(&world.remote.work).unwrap();
    repo.reference("refs/heads/bump", branch, true, "test")
        .unwrap();
    repo.set_head("refs/heads/bump").unwrap();
    repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();
    push_as(
        &world,
        &[("agent.yaml", "agent:2", "agent:3")],
        "mallory",
        "refs/heads/bump:refs/heads/bump",
    );
    repo.set_head("refs/heads/main").unwrap();
    repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();
    let merge = world.github.merge(number);
    assert_refused(
        &world,
        &merge,
        Some(number),
        "needs 2 approvals of the merged head from reviewers other than the author and the last pusher; it has 0",
    );

    approve(&world.github, number, &["alice", "carol"]);
    assert_applied(&world, &merge, "agent:3");
}

#[test]
fn whoever_pushed_the_head_cannot_approve_it() {
    let world = agent_world(&[]);
    // The bot opens the pull request; carol pushed its last commit, and approves it.
    push_as(
        &world,
        &[("agent.yaml", "agent:1", "agent:2")],
        "carol",
        "refs/heads/main:refs/heads/bump",
    );
    let number = world.github.open_pull("bump", "main", "bump", BOT_USER);
    approve(&world.github, number, &["alice", "carol", "bob"]);
    let merge = world.github.merge(number);
    assert_refused(
        &world,
        &merge,
        Some(number),
        "an approval from team `security` (carol) is required",
    );
}

#[test]
fn a_direct_push_is_refused_and_what_comes_after_it_waits() {
    // The control: a change through an approved pull request.
    let (world, _) = reconciled_world();
    let direct = push_as(
        &world,
        &[("agent.yaml", "agent:2", "agent:3")],
        "mallory",
        "refs/heads/main:refs/heads/main",
    );
    let out = world.run(&["reconcile", "--commit", &direct]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("a direct push"), "{}", text(&out));
    assert_eq!(image(&world), "agent:2");

    // An approved pull request merged after it is not applied while it stands refused.
    sync_main(&world);
    let edit = ("agent.yaml", "agent:3", "agent:4");
    let merge = approved_merge(&world, "later", &[edit], MergeMethod::Merge);
    let out = world.run(&["reconcile", "--commit", &merge]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("waiting: not weighed until {direct} is resolved")),
        "{}",
        text(&out)
    );
    assert_eq!(image(&world), "agent:2");
}

/// The agent world after an approved merge set `agent:2` and was reconciled, the local main at
/// the remote's; returns it with that merge.
fn reconciled_world() -> (World, String) {
    let world = agent_world(&[]);
    let edit = ("agent.yaml", "agent:1", "agent:2");
    let merge = approved_merge(&world, "base", &[edit], MergeMethod::Merge);
    assert_applied(&world, &merge, "agent:2");
    sync_main(&world);
    (world, merge)
}

/// Moves the local main to the remote's.
fn sync_main(world: &World) {
    let repo = git2::Repository::open(&world.remote.work).unwrap();
    repo.find_remote("origin")
        .unwrap()
        .fetch(&["refs/heads/main:refs/remotes/origin/main"], None, None)
        .unwrap();
    let main = common::branch_head(&world.remote.bare, "main").unwrap();
    let commit = repo.find_object(main, None).unwrap();
    repo.reset(&commit, git2::ResetType::Hard, None).unwrap();
}

#[test]
fn squash_and_rebase_merges_are_found_and_another_branch_s_pull_request_is_not() {
    let world = agent_world(&[]);
    let edit = ("agent.yaml", "agent:1", "agent:2");
    let squash = approved_merge(&world, "squash", &[edit], MergeMethod::Squash);
    assert_applied(&world, &squash, "agent:2");

    let work = &world.remote.work;
    sync_main(&world);
    let edit = ("agent.yaml", "agent:2", "agent:3");
    let rebase = approved_merge(&world, "rebase", &[edit], MergeMethod::Rebase);
    assert_applied(&world, &rebase, "agent:3");

    // A rebase merge of two commits: the first is weighed with the second, under the pull
    // request, not refused as a push of its own.
    sync_main(&world);
    push_as(
        &world,
        &[("agent.yaml", "agent:3", "agent:3b")],
        "mallory",
        "refs/heads/main:refs/heads/two",
    );
    let repo = git2::Repository::open(work).unwrap();
    let first = common::branch_head(&world.remote.bare, "two").unwrap();
    repo.reset(
        &repo.find_object(first, None).unwrap(),
        git2::ResetType::Hard,
        None,
    )
    .unwrap();
    push_as(
        &world,
        &[("agent.yaml", "agent:3b", "agent:3c")],
        "mallory",
        "refs/heads/main:refs/heads/two",
    );
    let two = world.github.open_pull("two", "main", "two", "mallory");
    approve(&world.github, two, &["alice", "carol"]);
    let last = world.github.merge_with(two, MergeMethod::Rebase);
    assert_applied(&world, &last, "agent:3c");
    let weighed: Vec<_> = world
        .audit()
        .into_iter()
        .filter(|r| r["event"] == "policy")
        .map(|r| r["commit"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(weighed.last().unwrap(), &last, "{weighed:?}");
    assert_eq!(weighed.len(), 3, "one weighing per merge: {weighed:?}");

    // A pull request approved into `release`; its commit then reaches main without one.
    sync_main(&world);
    let main = common::branch_head(&world.remote.bare, "main").unwrap();
    common::push(work, &format!("{main}:refs/heads/release"));
    push_as(
        &world,
        &[("agent.yaml", "agent:3c", "agent:4")],
        "mallory",
        "refs/heads/main:refs/heads/hotfix",
    );
    let to_release = world
        .github
        .open_pull("hotfix", "release", "hotfix", "mallory");
    approve(&world.github, to_release, &["alice", "carol"]);
    world.github.merge(to_release);
    let hotfix = common::branch_head(&world.remote.bare, "hotfix").unwrap();
    common::push(work, &format!("{hotfix}:refs/heads/main"));
    let refused = world.run(&["reconcile", "--commit", &hotfix.to_string()]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("a direct push"),
        "{}",
        text(&refused)
    );
    assert_eq!(image(&world), "agent:3c");
}

#[test]
fn every_merged_commit_is_weighed_in_order_and_a_refused_one_stops_the_rest() {
    let (world, base) = reconciled_world();
    // Three merges whose runs were cancelled but the last; the middle one lacks security.
    let edit = ("agent.yaml", "agent:2", "agent:3");
    let first = approved_merge(&world, "first", &[edit], MergeMethod::Merge);
    sync_main(&world);
    let edit = ("agent.yaml", "agent:3", "agent:4");
    let number = pull_request(&world, "middle", &[edit], "mallory");
    approve(&world.github, number, &["alice", "bob"]);
    let middle = world.github.merge(number);
    sync_main(&world);
    let edit = ("agent.yaml", "agent:4", "agent:5");
    let last = approved_merge(&world, "last", &[edit], MergeMethod::Merge);

    let out = world.run(&["reconcile", "--commit", &last]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(printed.contains(&format!("commit {first}")), "{printed}");
    assert!(printed.contains("refused, nothing applied"), "{printed}");
    assert!(
        printed.contains(&format!("waiting: not weighed until {middle} is resolved")),
        "{printed}"
    );
    assert_eq!(image(&world), "agent:3", "the first applied, nothing after");
    let weighed = |world: &World| -> Vec<String> {
        world
            .audit()
            .into_iter()
            .filter(|r| r["event"] == "policy")
            .map(|r| r["commit"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        weighed(&world),
        [base.clone(), first.clone(), middle.clone()]
    );

    // Approved after the fact: the next run applies the middle one, then the last.
    approve(&world.github, number, &["carol"]);
    let out = world.run(&["reconcile", "--commit", &last]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(image(&world), "agent:5");
    assert_eq!(weighed(&world), [base, first, middle.clone(), middle, last]);
}

#[test]
fn the_audit_trail_travels_with_the_repository_to_a_fresh_clone() {
    let world = agent_world(&[]);
    let edit = ("agent.yaml", "agent:1", "agent:2");
    let merge = approved_merge(&world, "bump", &[edit], MergeMethod::Merge);
    assert_applied(&world, &merge, "agent:2");

    // A second clone, as a CI runner starts from: it has no local audit file.
    let second = world.remote.dir.path().join("second");
    git2::Repository::clone(&format!("file://{}", world.remote.bare.display()), &second).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_remediator"))
            .args(args)
            .args(["--repo", second.to_str().unwrap()])
            .env("GITHUB_TOKEN", testkit::github::BOT_TOKEN)
            .output()
            .unwrap()
    };
    let history = run(&["history"]);
    let printed = text(&history);
    assert_eq!(history.status.code(), Some(0), "{printed}");
    for event in ["policy", "approval", "applied", "verified"] {
        assert!(printed.contains(event), "{event}: {printed}");
    }
    assert!(!second.join(".git/remediator/audit.jsonl").exists());
    let kubeconfig = world.cluster.kubeconfig().to_str().unwrap().to_owned();
    let again = run(&["reconcile", "--commit", &merge, "--kubeconfig", &kubeconfig]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("already done: verified"),
        "{}",
        text(&again)
    );
    assert_eq!(
        world.writes("/deployments/agent"),
        2,
        "the first apply and the merge's"
    );
}

/// The agent world whose security team is the GitHub team `team`, set before any merge.
fn team_world(team: &str) -> World {
    let world = agent_world(&[]);
    push_as(
        &world,
        &[(
            "remediator.yaml",
            SECURITY_TEAM,
            &format!("security: [\"{team}\"]"),
        )],
        "admin",
        "refs/heads/main:refs/heads/main",
    );
    sync_main(&world);
    world
}

#[test]
fn a_github_team_is_read_when_a_merge_is_weighed_and_one_that_cannot_be_is_a_refusal() {
    let world = team_world("@acme/security");
    world.github.add_team("acme/security", &["carol"]);
    let edit = ("agent.yaml", "agent:1", "agent:2");
    let merge = approved_merge(&world, "bump", &[edit], MergeMethod::Merge);
    assert_applied(&world, &merge, "agent:2");

    let world = team_world("@acme/missing");
    let edit = ("agent.yaml", "agent:1", "agent:2");
    let merge = approved_merge(&world, "bump", &[edit], MergeMethod::Merge);
    let number = world.github.pulls().last().unwrap().number;
    assert_refused(
        &world,
        &merge,
        Some(number),
        "an approval from team `security` is required, and its members cannot be read: @acme/missing",
    );
}

#[test]
fn a_configuration_change_reconciled_late_is_still_judged_by_the_configuration_before_it() {
    let (world, _) = reconciled_world();
    // Two merges whose runs never came: the first adds eve to the security team, the second
    // counts on her.
    let team = ("remediator.yaml", SECURITY_TEAM, "security: [carol, eve]");
    let first = pull_request(
        &world,
        "teams",
        &[team, ("agent.yaml", "agent:2", "agent:3")],
        "mallory",
    );
    approve(&world.github, first, &["alice", "eve"]);
    let first_merge = world.github.merge(first);
    sync_main(&world);
    let second = pull_request(
        &world,
        "after",
        &[("agent.yaml", "agent:3", "agent:4")],
        "mallory",
    );
    approve(&world.github, second, &["alice", "eve"]);
    let second_merge = world.github.merge(second);

    let out = world.run(&["reconcile", "--commit", &second_merge]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("an approval from team `security` (carol) is required"),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("waiting: not weighed until {first_merge}")),
        "{printed}"
    );
    assert_eq!(image(&world), "agent:2");

    // Carol approves the first after the fact: it goes through, and the second is then judged
    // by the team as the first left it, where eve is a member.
    approve(&world.github, first, &["carol"]);
    let out = world.run(&["reconcile", "--commit", &second_merge]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(image(&world), "agent:4");
}
