//! GitHub as an App against the fake GitHub: the JWT is verified with the App's public key, the
//! installation is found by repository, its token is renewed when it expires or nears its end,
//! and a wrong key or installation is a clear error. Check runs carry their annotations 50 a
//! request; a token that may not write checks falls back to statuses and says so once;
//! conditional requests answered 304 cost no rate limit.

mod common;

use std::sync::Arc;
use std::time::Duration;

use testkit::github::{BOT_TOKEN, FakeGitHub};

use remediator::cluster::RetryPolicy;
use remediator::forge::app::AppKey;
use remediator::forge::checks::{Annotation, CheckRun, Conclusion, Level, ReportedAs};
use remediator::forge::{AppCredentials, Credentials, Forge, GitHub, StatusState};

const KEY: &str = include_str!("fixtures/github-app/app-key.pem");
const OTHER_KEY: &str = include_str!("fixtures/github-app/other-key.pem");
const APP_ID: u64 = 4242;

fn quick() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        deadline: Duration::from_secs(10),
    }
}

struct Setup {
    _remote: common::GitRemote,
    github: FakeGitHub,
    rt: tokio::runtime::Runtime,
    installation: u64,
    head: String,
}

/// The fake GitHub with the App installed on `acme/config` with `permissions`.
fn setup(permissions: &[(&str, &str)]) -> Setup {
    let remote = common::git_remote(None, &[("a.yaml", "x: 1\n")]);
    let head = common::branch_head(&remote.work, "main")
        .unwrap()
        .to_string();
    let github = FakeGitHub::start("acme/config", &remote.bare);
    let key = AppKey::from_pem(KEY).unwrap();
    let installation = github.add_app(APP_ID, "remediator", key.public_key(), permissions);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    Setup {
        _remote: remote,
        github,
        rt,
        installation,
        head,
    }
}

fn app_client(setup: &Setup, pem: &str, installation: Option<u64>) -> GitHub {
    let _entered = setup.rt.enter();
    let credentials = Credentials::App(AppCredentials {
        id: APP_ID,
        key: Arc::new(AppKey::from_pem(pem).unwrap()),
        installation,
    });
    GitHub::with_credentials(Some(setup.github.url()), credentials, "acme/config")
        .unwrap()
        .with_retry(quick())
}

fn unauthorized(github: &FakeGitHub) -> usize {
    github
        .requests()
        .iter()
        .filter(|r| r.status == Some(401))
        .count()
}

#[test]
fn an_app_finds_its_installation_and_renews_a_token_that_expired_or_nears_its_end() {
    let setup = setup(&[("pull_requests", "write"), ("checks", "write")]);
    let client = app_client(&setup, KEY, None);
    let rt = &setup.rt;
    rt.block_on(client.open_pulls("remediator")).unwrap();
    rt.block_on(client.open_pulls("remediator")).unwrap();
    assert_eq!(setup.github.token_exchanges(), 1, "one token, used twice");
    let paths: Vec<String> = setup
        .github
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths[0], "/repos/acme/config/installation", "{paths:?}");
    assert_eq!(
        paths[1],
        format!("/app/installations/{}/access_tokens", setup.installation)
    );
    // Expired at GitHub while the client still holds it: refused once, renewed, and on.
    setup.github.expire_installation_tokens();
    rt.block_on(client.open_pulls("remediator")).unwrap();
    assert_eq!(setup.github.token_exchanges(), 2);
    assert_eq!(unauthorized(&setup.github), 1);
    // A token that lives less than the five minutes kept in hand is renewed before each use,
    // and never refused.
    setup.github.set_token_lifetime(Duration::from_secs(240));
    setup.github.expire_installation_tokens();
    rt.block_on(client.open_pulls("remediator")).unwrap();
    rt.block_on(client.open_pulls("remediator")).unwrap();
    assert_eq!(unauthorized(&setup.github), 2, "the one expired token");
    assert_eq!(setup.github.token_exchanges(), 4);
    // Git pushes with the same installation token.
    let token = rt.block_on(client.git_token()).unwrap().unwrap();
    assert!(token.starts_with("ghs_"), "{token}");
}

#[test]
fn a_wrong_key_or_installation_is_a_clear_error_that_quotes_no_key() {
    let setup = setup(&[("checks", "write")]);
    let rt = &setup.rt;
    let wrong = app_client(&setup, OTHER_KEY, None);
    let error = rt
        .block_on(wrong.open_pulls("remediator"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("GitHub answered 401"), "{error}");
    assert!(error.contains("signature verification failed"), "{error}");
    assert!(
        error.contains("is the private key the App's own, and the id its id?"),
        "{error}"
    );
    assert!(!error.contains("PRIVATE KEY"), "{error}");
    assert_eq!(setup.github.token_exchanges(), 0);
    let elsewhere = app_client(&setup, KEY, Some(setup.installation + 1));
    let error = rt
        .block_on(elsewhere.open_pulls("remediator"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!(
            "get a token of installation {} of GitHub App {APP_ID}",
            setup.installation + 1
        )),
        "{error}"
    );
    assert!(error.contains("not installed there"), "{error}");
}

/// One POST over HTTP/1.1; the status.
fn post(url: &str, path: &str, token: &str, body: &str) -> u16 {
    use std::io::{Read, Write};
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

fn annotations(n: usize) -> Vec<Annotation> {
    (0..n)
        .map(|i| Annotation {
            path: "apps/api.yaml".into(),
            line: i + 1,
            level: Level::Warning,
            title: format!("finding {i}"),
            message: "look".into(),
        })
        .collect()
}

fn run(head: &str, n: usize, conclusion: Option<Conclusion>) -> CheckRun {
    CheckRun {
        name: "remediator/check".into(),
        head_sha: head.into(),
        conclusion,
        title: "high risk".into(),
        summary: "## remediator check".into(),
        annotations: annotations(n),
    }
}

#[test]
fn a_hundred_and_twenty_annotations_go_out_in_three_requests_and_an_update_finishes_the_run() {
    let setup = setup(&[("checks", "write")]);
    let client = app_client(&setup, KEY, None);
    let rt = &setup.rt;
    let reported = rt
        .block_on(client.report_check(&run(&setup.head, 120, None)))
        .unwrap();
    let ReportedAs::CheckRun { id, requests } = reported else {
        panic!("{reported:?}");
    };
    assert_eq!(requests, 3);
    let writes: Vec<String> = setup
        .github
        .requests()
        .iter()
        .filter(|r| r.path.contains("/check-runs") && r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.status.unwrap_or(0)))
        .collect();
    assert_eq!(writes, ["POST 201", "PATCH 200", "PATCH 200"]);
    let runs = setup.github.check_runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, id);
    assert_eq!(runs[0].annotations.len(), 120);
    assert_eq!(runs[0].annotations[119]["start_line"], 120);
    assert_eq!(runs[0].status, "in_progress");
    // The unfinished run is completed in place, not a second one.
    let done = rt
        .block_on(client.report_check(&run(&setup.head, 0, Some(Conclusion::Failure))))
        .unwrap();
    assert_eq!(done, ReportedAs::CheckRun { id, requests: 1 });
    let runs = setup.github.check_runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].conclusion.as_deref(), Some("failure"));
    // The fake holds GitHub's limit: 51 annotations in one request are refused.
    setup
        .github
        .add_token_with_permissions("raw", "raw[bot]", &[("checks", "write")]);
    let body = serde_json::json!({"name": "x", "head_sha": setup.head, "output": {"title": "t", "summary": "s",
        "annotations": annotations(51).iter().map(Annotation::json).collect::<Vec<_>>()}});
    let status = post(
        setup.github.url(),
        "/repos/acme/config/check-runs",
        "raw",
        &body.to_string(),
    );
    assert_eq!(status, 422);
}

#[test]
fn a_token_that_may_not_write_checks_falls_back_to_statuses_and_says_so_once() {
    let setup = setup(&[]);
    let rt = &setup.rt;
    setup.github.add_token_with_permissions(
        "actions",
        "github-actions[bot]",
        &[("statuses", "write")],
    );
    for token in [BOT_TOKEN, "actions"] {
        let client = {
            let _entered = rt.enter();
            GitHub::new(Some(setup.github.url()), token, "acme/config").unwrap()
        };
        let first = rt
            .block_on(client.report_check(&run(&setup.head, 3, Some(Conclusion::Failure))))
            .unwrap();
        assert_eq!(first, ReportedAs::Status { first: true }, "{token}");
        let again = rt
            .block_on(client.report_check(&run(&setup.head, 3, Some(Conclusion::Success))))
            .unwrap();
        assert_eq!(again, ReportedAs::Status { first: false }, "{token}");
    }
    let statuses = setup.github.statuses(&setup.head);
    let states: Vec<&str> = statuses.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(states, ["failure", "success", "failure", "success"]);
    assert!(statuses.iter().all(|s| s.context == "remediator/check"));
    assert!(setup.github.check_runs().is_empty());
    // The fallback says so once a client: one refused write each, then straight to statuses.
    let refused = setup
        .github
        .requests()
        .iter()
        .filter(|r| r.status == Some(403))
        .count();
    assert_eq!(refused, 2);
    assert_eq!(
        run(&setup.head, 0, Some(Conclusion::ActionRequired))
            .status()
            .state,
        StatusState::Pending
    );
}

#[test]
fn a_repeated_get_carries_its_etag_and_a_304_costs_no_rate_limit() {
    let setup = setup(&[("pull_requests", "write")]);
    let client = app_client(&setup, KEY, None);
    let rt = &setup.rt;
    for _ in 0..5 {
        rt.block_on(client.open_pulls("remediator")).unwrap();
    }
    let counts = client.request_counts();
    assert_eq!(counts.not_modified, 4, "{counts:?}");
    assert_eq!(
        setup.github.rate_used("remediator[bot]"),
        1,
        "only the first listing counts"
    );
    let limits = client.rate_limits();
    assert_eq!(limits.len(), 1);
    assert_eq!(limits[0].limit, 15_000);
    assert_eq!(limits[0].remaining, 14_999);
    // Within a run, the answer is not asked for again at all.
    let run = client.for_run();
    rt.block_on(run.open_pulls("remediator")).unwrap();
    rt.block_on(run.open_pulls("remediator")).unwrap();
    assert_eq!(client.request_counts().sent, counts.sent + 1);
}
