//! The GitHub forge (octocrab) against the fake GitHub: pull requests opened once and updated in
//! place, labels kept and replaced, long bodies split, one comment per marker, reviews, the pull
//! request of a merge commit, statuses, closing, paging, and retries on 5xx and rate limits
//! without duplicates.

mod common;

use testkit::github::{BOT_TOKEN, BOT_USER, FakeGitHub, ReviewState as Fake};
use testkit::{Fault, FaultKind};

use remediator::cluster::RetryPolicy;
use remediator::forge::{
    CommitStatus, Forge, GitHub, MergedPull, PullRequestSpec, ReviewState, StatusState, Upserted,
    labels,
};

fn quick() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        initial: std::time::Duration::from_millis(20),
        max: std::time::Duration::from_secs(3),
        deadline: std::time::Duration::from_secs(30),
    }
}

/// The client is built inside the runtime: octocrab spawns its request buffer on it.
fn setup() -> (
    common::GitRemote,
    FakeGitHub,
    GitHub,
    tokio::runtime::Runtime,
) {
    let remote = common::git_remote(None, &[("a.yaml", "x: 1\n")]);
    // The branch holds one commit main does not: a pull request always has one.
    let main = common::branch_head(&remote.work, "main").unwrap();
    common::write_files(&remote.work, &[("a.yaml", "x: 2\n")]);
    common::commit_all(&remote.work, "Fix a");
    common::push(&remote.work, "refs/heads/main:refs/heads/remediator/fix/a");
    let repo = git2::Repository::open(&remote.work).unwrap();
    let main = repo.find_object(main, None).unwrap();
    repo.reset(&main, git2::ResetType::Hard, None).unwrap();
    let github = FakeGitHub::start("acme/config", &remote.bare);
    let rt = runtime();
    let client = {
        let _entered = rt.enter();
        GitHub::new(Some(github.url()), BOT_TOKEN, "acme/config")
            .unwrap()
            .with_retry(quick())
    };
    (remote, github, client, rt)
}

fn spec(body: &str, risk: &str) -> PullRequestSpec {
    PullRequestSpec {
        head: "remediator/fix/a".into(),
        base: "main".into(),
        title: "Fix a".into(),
        body: body.into(),
        labels: labels(risk, "crash-loop-oom"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_branch_gets_one_pull_request_updated_in_place_with_labels_kept() {
    let (_remote, github, client, rt) = setup();
    let (first, how) = rt
        .block_on(client.open_or_update(&spec("one", "high")))
        .unwrap();
    assert_eq!(how, Upserted::Opened);
    assert_eq!(
        first.labels,
        ["remediator", "risk/high", "finding/crash-loop-oom"]
    );
    github.set_labels(
        first.number,
        &[
            "remediator",
            "risk/high",
            "finding/crash-loop-oom",
            "team/shop",
        ],
    );
    let (again, how) = rt
        .block_on(client.open_or_update(&spec("two", "medium")))
        .unwrap();
    assert_eq!((again.number, how), (first.number, Upserted::Updated));
    assert_eq!(github.pulls().len(), 1);
    let pull = github.pull(first.number);
    assert_eq!(pull.body, "two");
    assert_eq!(pull.user, BOT_USER);
    assert_eq!(
        pull.labels,
        [
            "remediator",
            "finding/crash-loop-oom",
            "team/shop",
            "risk/medium"
        ]
    );
    let open = rt.block_on(client.open_pulls("remediator")).unwrap();
    assert_eq!(open.len(), 1);
    rt.block_on(client.close(first.number, "cleared")).unwrap();
    assert!(
        rt.block_on(client.open_pulls("remediator"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(github.pull(first.number).state, "closed");
    assert!(github.comments(first.number)[0].body.ends_with("cleared"));
}

#[test]
fn a_long_body_is_split_into_the_body_and_comments_under_the_limit() {
    let (_remote, github, client, rt) = setup();
    let mut body = String::from("# Fix\n\n<details><summary>diff</summary>\n\n```diff\n");
    for i in 0..6000 {
        body.push_str(&format!(
            "+ line {i} of a very long diff that goes on and on\n"
        ));
    }
    body.push_str("```\n</details>\n");
    let (pull, _) = rt
        .block_on(client.open_or_update(&spec(&body, "low")))
        .unwrap();
    let stored = github.pull(pull.number);
    assert!(stored.body.chars().count() <= 65_536);
    let parts = github.comments(pull.number);
    assert!(!parts.is_empty());
    for part in &parts {
        assert!(part.body.chars().count() <= 65_536);
        assert_eq!(
            part.body.matches("```").count() % 2,
            0,
            "a fence is left open"
        );
    }
    assert!(parts.last().unwrap().body.contains("line 5999 of"));
    // The same body again edits nothing and adds no comment.
    rt.block_on(client.open_or_update(&spec(&body, "low")))
        .unwrap();
    assert_eq!(github.comments(pull.number).len(), parts.len());
}

#[test]
fn comments_are_upserted_by_marker_and_reviews_statuses_and_merges_are_read() {
    let (_remote, github, client, rt) = setup();
    let (pull, _) = rt
        .block_on(client.open_or_update(&spec("body", "medium")))
        .unwrap();
    rt.block_on(client.upsert_comment(pull.number, "outcome", "first"))
        .unwrap();
    rt.block_on(client.upsert_comment(pull.number, "outcome", "second"))
        .unwrap();
    rt.block_on(client.upsert_comment(pull.number, "other", "third"))
        .unwrap();
    let comments = github.comments(pull.number);
    assert_eq!(comments.len(), 2);
    assert!(comments[0].body.ends_with("second"));
    github.review(pull.number, "alice", Fake::Approved);
    github.review(pull.number, "bob", Fake::ChangesRequested);
    let merge = github.merge(pull.number);
    let info = rt.block_on(client.pull(pull.number)).unwrap();
    assert!(info.merged);
    assert_eq!(info.author, BOT_USER);
    assert_eq!(info.merge_commit.as_deref(), Some(merge.as_str()));
    assert_eq!(info.reviews.len(), 2);
    assert_eq!(info.reviews[1].state, ReviewState::ChangesRequested);
    assert_eq!(info.head_sha, github.pull(pull.number).head_sha.unwrap());
    assert_eq!(
        info.reviews[0].commit.as_deref(),
        Some(info.head_sha.as_str())
    );
    assert_eq!(
        rt.block_on(client.pull_for_commit(&merge, "main")).unwrap(),
        Some(MergedPull {
            number: pull.number,
            merge_commit: merge.clone()
        })
    );
    // Merged into main, it is no pull request of another branch.
    assert_eq!(
        rt.block_on(client.pull_for_commit(&merge, "release"))
            .unwrap(),
        None
    );
    assert_eq!(
        rt.block_on(client.pull_for_commit(&"0".repeat(40), "main"))
            .unwrap(),
        None
    );
    let status = CommitStatus {
        state: StatusState::Failure,
        context: "remediator/reconcile".into(),
        description: "x".repeat(300),
    };
    rt.block_on(client.set_status(&merge, &status)).unwrap();
    let statuses = github.statuses(&merge);
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].state, "failure");
    assert_eq!(statuses[0].description.len(), 140);
}

#[test]
fn many_comments_are_read_across_pages() {
    let (_remote, github, client, rt) = setup();
    let (pull, _) = rt
        .block_on(client.open_or_update(&spec("body", "low")))
        .unwrap();
    for i in 0..230 {
        rt.block_on(client.upsert_comment(pull.number, &format!("m{i}"), "x"))
            .unwrap();
    }
    // The comment on the third page is found and edited, not added again.
    rt.block_on(client.upsert_comment(pull.number, "m225", "edited"))
        .unwrap();
    let comments = github.comments(pull.number);
    assert_eq!(comments.len(), 230);
    assert!(comments[225].body.ends_with("edited"));
}

#[test]
fn server_errors_and_rate_limits_are_retried_without_duplicates() {
    let (_remote, github, client, rt) = setup();
    let faults = github.faults();
    common::publishing_faults(faults);
    faults.add(Fault::new("POST", "*/comments", FaultKind::Status(500)));
    faults.add(Fault::new("POST", "*/statuses/*", FaultKind::Status(503)).times(2));
    let started = std::time::Instant::now();
    let (pull, _) = rt
        .block_on(client.open_or_update(&spec("body", "low")))
        .unwrap();
    rt.block_on(client.upsert_comment(pull.number, "outcome", "done"))
        .unwrap();
    let status = CommitStatus {
        state: StatusState::Success,
        context: "c".into(),
        description: "ok".into(),
    };
    rt.block_on(client.set_status("abc", &status)).unwrap();
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "the limits' waits were honoured"
    );
    assert_eq!(github.pulls().len(), 1);
    assert_eq!(github.comments(pull.number).len(), 1);
    assert_eq!(github.statuses("abc").len(), 1);
    let hit = github
        .requests()
        .iter()
        .filter(|r| r.fault.is_some())
        .count();
    assert_eq!(hit, 6);

    faults.add(Fault::new("GET", "*", FaultKind::Status(500)).times(100));
    let error = rt
        .block_on(client.pull(pull.number))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!("read #{}: GitHub answered 500", pull.number)),
        "{error}"
    );
}

/// GitHub's limits in each documented form, waited out in full: the primary limit as 429
/// (until `x-ratelimit-reset`), the secondary with a `Retry-After` longer than the backoff's
/// cap, and the secondary with no header ("wait at least a minute"), which here passes the
/// deadline and ends the call with an error rather than an early retry.
#[test]
fn github_s_rate_limits_are_waited_out_in_full_or_end_the_call() {
    let (_remote, github, client, rt) = setup();
    let faults = github.faults();
    let sent = || {
        github
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/pulls"))
            .count()
    };
    // Primary, as 429 with no requests remaining: wait for the reset (about 2 s). Secondary,
    // asking for 4 s where the backoff is capped at 3 s: the 4 s are waited.
    for (fault, waited, requests) in [
        (FaultKind::RateLimitAs429 { reset_in: 2 }, 1, 2),
        (FaultKind::SecondaryRateLimit { retry_after: 4 }, 4, 4),
    ] {
        faults.add(Fault::new("GET", "*/pulls", fault));
        let started = std::time::Instant::now();
        rt.block_on(client.open_pulls("remediator")).unwrap();
        let elapsed = started.elapsed();
        assert!(
            elapsed >= std::time::Duration::from_secs(waited),
            "{elapsed:?}"
        );
        assert_eq!(sent(), requests);
    }
    // Secondary with no header means a minute; a call allowed 5 s fails at once, saying why.
    let _entered = rt.enter();
    let impatient = GitHub::new(Some(github.url()), BOT_TOKEN, "acme/config")
        .unwrap()
        .with_retry(RetryPolicy {
            deadline: std::time::Duration::from_secs(5),
            ..quick()
        });
    faults.add(Fault::new(
        "GET",
        "*/pulls",
        FaultKind::SecondaryRateLimitWithoutHeader,
    ));
    let started = std::time::Instant::now();
    let error = rt
        .block_on(impatient.open_pulls("remediator"))
        .unwrap_err()
        .to_string();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(error.contains("secondary rate limit"), "{error}");
    assert!(
        error.contains("GitHub asks to wait 60s, past the 5s"),
        "{error}"
    );
    assert_eq!(sent(), 5, "no early retry");
}

#[test]
fn a_bad_token_is_refused_with_githubs_message() {
    let (_remote, github, _, rt) = setup();
    let _entered = rt.enter();
    let client = GitHub::new(Some(github.url()), "wrong", "acme/config").unwrap();
    let error = rt
        .block_on(client.open_pulls("remediator"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "list open pull requests: GitHub answered 401: Bad credentials"
    );
}

#[test]
fn an_answer_missing_a_documented_field_is_an_error_never_a_default() {
    let (_remote, github, client, rt) = setup();
    let (pull, _) = rt
        .block_on(client.open_or_update(&spec("body", "low")))
        .unwrap();
    let mut answer = github.pulls_json()[0].clone();
    answer.as_object_mut().unwrap().remove("user");
    let path = format!("/repos/acme/config/pulls/{}", pull.number);
    github.faults().add(Fault::new(
        "GET",
        &path,
        FaultKind::Answer {
            status: 200,
            body: answer,
        },
    ));
    let error = rt
        .block_on(client.pull(pull.number))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("unexpected answer from GitHub: no `user`"),
        "{error}"
    );
    let mut nameless = github.pulls_json()[0].clone();
    nameless.as_object_mut().unwrap().remove("number");
    github.faults().add(Fault::new(
        "GET",
        &path,
        FaultKind::Answer {
            status: 200,
            body: nameless,
        },
    ));
    let error = rt
        .block_on(client.pull(pull.number))
        .unwrap_err()
        .to_string();
    assert!(error.contains("missing field `number`"), "{error}");
    // A review without its reviewer is no approval by nobody.
    github.review(pull.number, "alice", Fake::Approved);
    github.faults().add(Fault::new(
        "GET",
        &format!("{path}/reviews"),
        FaultKind::Answer {
            status: 200,
            body: serde_json::json!([{"id": 1, "node_id": "R", "html_url": "https://github.test/r", "state": "APPROVED", "commit_id": "x"}]),
        },
    ));
    let error = rt
        .block_on(client.pull(pull.number))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("missing field `user`") || error.contains("no `user`"),
        "{error}"
    );
}

#[test]
fn a_renamed_repository_is_followed_where_github_redirects() {
    let (_remote, github, client, rt) = setup();
    let (pull, _) = rt
        .block_on(client.open_or_update(&spec("body", "low")))
        .unwrap();
    github.rename("acme/platform-config");
    // GET is moved permanently (301), POST and PATCH temporarily (307): both are followed.
    let info = rt.block_on(client.pull(pull.number)).unwrap();
    assert_eq!(info.summary.number, pull.number);
    rt.block_on(client.upsert_comment(pull.number, "outcome", "first"))
        .unwrap();
    rt.block_on(client.upsert_comment(pull.number, "outcome", "second"))
        .unwrap();
    let comments = github.comments(pull.number);
    assert_eq!(comments.len(), 1);
    assert!(comments[0].body.ends_with("second"));
    let moved = github
        .requests()
        .iter()
        .filter(|r| r.status == Some(301) || r.status == Some(307))
        .count();
    assert!(moved >= 3, "{:?}", github.requests());
}

#[test]
fn a_github_team_is_read_and_one_that_does_not_exist_is_an_error() {
    let (_remote, github, client, rt) = setup();
    github.add_team("acme/security", &["carol", "dave"]);
    assert_eq!(
        rt.block_on(client.team_members("acme/security")).unwrap(),
        ["carol", "dave"]
    );
    let error = rt
        .block_on(client.team_members("acme/nobody"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("404"), "{error}");
}
