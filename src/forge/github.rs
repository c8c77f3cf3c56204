//! GitHub through octocrab: each request authenticated here, with a token or a GitHub App's
//! installation token renewed before it expires (octocrab's own App support signs with
//! jsonwebtoken, which needs aws-lc-rs or RustCrypto; the stack is ring only, see [`super::app`]),
//! every GET conditional on the ETag of its last answer (a `304` costs no rate limit), the rate
//! limit read from every answer, and pages followed by their `Link` header. REST calls read into
//! octocrab's typed models (a field GitHub documents as always there and that is missing is an
//! error, never a default), retried on 5xx, on the primary rate limit (until
//! `x-ratelimit-reset`) and on the secondary one (after `Retry-After`). A create that may have
//! happened before its answer was lost is never sent twice blindly: the pull request or comment
//! is looked for again first. I/O: HTTPS to the API.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::jiff::Timestamp;

use octocrab::models::Label;
use octocrab::models::issues::Comment as IssueComment;
use octocrab::models::pulls::PullRequest;
use octocrab::models::repos::RepoCommit;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::checks::{
    ANNOTATIONS_PER_REQUEST, Annotation, CheckKind, CheckResult, CheckRun, ReportedAs, run_verdict,
    status_verdict,
};
use super::models::{decode, label_names, required, review_state, summary};
use super::session::{AppCredentials, Conditional, Credentials, InstallationToken, RateLimit};
use super::split::{GITHUB_LIMIT, split};
use super::{
    CommitStatus, Error, Forge, MergedPull, PullInfo, PullRequestSpec, PullSummary, PushersFrom,
    Result, Review, Upserted, marker_line,
};
use crate::cluster::RetryPolicy;

/// Room kept under the limit for the continuation note and the marker.
const SPLIT_RESERVE: usize = 300;

/// GitHub or GitHub Enterprise, for one repository. Clones share the credentials, the
/// installation token, the ETags and the rate limit; [`GitHub::for_run`] starts a run whose
/// answers are kept until it writes.
#[derive(Clone)]
pub struct GitHub {
    client: octocrab::Octocrab,
    repository: String,
    retry: RetryPolicy,
    session: Arc<Session>,
    /// The answers of this run, when it is one ([`GitHub::for_run`]).
    run: Option<Arc<Mutex<HashMap<String, Answer>>>>,
}

/// What the clones of a client share.
struct Session {
    credentials: Credentials,
    installation: tokio::sync::Mutex<Option<InstallationToken>>,
    conditional: Mutex<Conditional<Answer>>,
    limits: Mutex<BTreeMap<String, RateLimit>>,
    warned_low: Mutex<BTreeMap<String, u64>>,
    statuses_only: AtomicBool,
    requests: AtomicU64,
    not_modified: AtomicU64,
}

/// An answer: its body, and whether a `Link` header points to a next page (`None`: a `304`
/// that did not say).
#[derive(Clone)]
struct Answer {
    value: Value,
    next: Option<bool>,
}

/// The requests a client sent, and how many GitHub answered `304 Not Modified`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    /// Requests sent.
    pub sent: u64,
    /// Of those, answered `304` (free of rate limit).
    pub not_modified: u64,
}

/// One REST call.
#[derive(Clone, Copy)]
struct Call<'a> {
    /// What is being done, for errors.
    what: &'a str,
    /// GET, POST, PATCH or PUT.
    method: &'a str,
    /// Path and query, under the API's base URL.
    path: &'a str,
    /// JSON body.
    body: Option<&'a Value>,
    /// Whether it creates something, so that a lost answer must be looked into, not retried.
    creates: bool,
    /// The bearer to send instead of the client's own (an App's JWT).
    bearer: Option<&'a str>,
}

/// GitHub's rate-limit headers of an answer.
struct Limits {
    retry_after: Option<String>,
    remaining: Option<String>,
    reset: Option<String>,
}

/// What an error answer means: the primary rate limit waits for its reset, the secondary one
/// (and 429) for `Retry-After`, 5xx retries (a create is looked for first), the rest is final.
fn failure(call: &Call<'_>, status: u16, answer: &Value, limits: &Limits) -> Failure {
    let what = call.what.to_owned();
    let message = answer["message"]
        .as_str()
        .unwrap_or("no message")
        .to_owned();
    let seconds = |text: &Option<String>| text.as_ref().and_then(|t| t.trim().parse::<u64>().ok());
    // The primary limit, which GitHub documents as 403 or 429 with no requests remaining.
    if (status == 403 || status == 429) && limits.remaining.as_deref() == Some("0") {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let wait =
            seconds(&limits.reset).map(|r| Duration::from_secs(r.saturating_sub(now).max(1)));
        return Failure::Retry(wait, Error::RateLimited { what, message });
    }
    let secondary = limits.retry_after.is_some() || message.contains("secondary rate limit");
    if status == 429 || (status == 403 && secondary) {
        let wait = seconds(&limits.retry_after).unwrap_or(60);
        return Failure::Retry(
            Some(Duration::from_secs(wait)),
            Error::RateLimited { what, message },
        );
    }
    let error = Error::Api {
        what,
        status,
        message,
    };
    match status {
        500..=504 if call.creates => Failure::MaybeDone(error),
        500..=504 => Failure::Retry(None, error),
        _ => Failure::Final(error),
    }
}

/// `error`, saying that GitHub's wait would pass the deadline when that is why it is final.
fn past_deadline(error: Error, wait: Option<Duration>, retry: &RetryPolicy) -> Error {
    match (error, wait) {
        (Error::RateLimited { what, message }, Some(wait)) if wait > Duration::ZERO => {
            Error::RateLimited {
                what,
                message: format!(
                    "{message} (GitHub asks to wait {}s, past the {}s this call may take)",
                    wait.as_secs(),
                    retry.deadline.as_secs()
                ),
            }
        }
        (error, _) => error,
    }
}

/// A lock whose holder never panics while holding it; a poisoned one is taken as it is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// An App's JWT refused: says what to look at, never quoting the key.
fn app_refused(error: Error, app: u64) -> Error {
    match error {
        Error::Api {
            what,
            status: 401,
            message,
        } => Error::Api {
            what,
            status: 401,
            message: format!(
                "{message}: the JWT of GitHub App {app} was refused; is the private key the App's own, and the id its id?"
            ),
        },
        Error::Api {
            what,
            status: 404,
            message,
        } => Error::Api {
            what,
            status: 404,
            message: format!(
                "{message}: GitHub App {app} is not installed there, or the installation id is wrong"
            ),
        },
        other => other,
    }
}

/// What a failed call means for trying again.
enum Failure {
    /// Try again after this long.
    Retry(Option<Duration>, Error),
    /// The write may have happened: look before trying again.
    MaybeDone(Error),
    /// Give up.
    Final(Error),
}

impl Failure {
    /// The error, whatever trying again would have meant.
    fn into_error(self) -> Error {
        match self {
            Failure::Retry(_, e) | Failure::MaybeDone(e) | Failure::Final(e) => e,
        }
    }
}

impl GitHub {
    /// A client for `repository` (`owner/name`) with `token`; `api_url` for GitHub Enterprise or
    /// a test server, GitHub's own API when `None`. Call it inside the tokio runtime that will
    /// run its requests: octocrab starts a task there.
    pub fn new(api_url: Option<&str>, token: &str, repository: &str) -> Result<Self> {
        Self::with_credentials(api_url, Credentials::Token(token.to_owned()), repository)
    }

    /// A client for `repository` that authenticates with `credentials`.
    pub fn with_credentials(
        api_url: Option<&str>,
        credentials: Credentials,
        repository: &str,
    ) -> Result<Self> {
        // Authentication is added to each request here: a token, or an App's installation
        // token renewed as it nears its end.
        let mut builder = octocrab::Octocrab::builder();
        if let Some(url) = api_url {
            builder = builder
                .base_uri(url)
                .map_err(|e| Error::Setup(format!("{url}: {e}")))?;
        }
        let timeout = crate::http::request_timeout().map_err(Error::Setup)?;
        if timeout.is_some() {
            builder = builder.set_read_timeout(timeout).set_write_timeout(timeout);
        }
        let client = builder.build().map_err(|e| Error::Setup(e.to_string()))?;
        Ok(GitHub {
            client,
            repository: repository.to_owned(),
            retry: RetryPolicy::default(),
            session: Arc::new(Session {
                credentials,
                installation: tokio::sync::Mutex::new(None),
                conditional: Mutex::new(Conditional::default()),
                limits: Mutex::new(BTreeMap::new()),
                warned_low: Mutex::new(BTreeMap::new()),
                statuses_only: AtomicBool::new(false),
                requests: AtomicU64::new(0),
                not_modified: AtomicU64::new(0),
            }),
            run: None,
        })
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The same client for one run (a job of `serve`): a GET answered in the run is not asked
    /// again until the run writes something. The ETags, the token and the rate limit are shared.
    pub fn for_run(&self) -> Self {
        GitHub {
            run: Some(Arc::new(Mutex::new(HashMap::new()))),
            ..self.clone()
        }
    }

    /// The rate limits GitHub last reported, by resource.
    pub fn rate_limits(&self) -> Vec<RateLimit> {
        lock(&self.session.limits).values().cloned().collect()
    }

    /// The requests sent so far by this client and its clones.
    pub fn request_counts(&self) -> RequestCounts {
        RequestCounts {
            sent: self.session.requests.load(Ordering::Relaxed),
            not_modified: self.session.not_modified.load(Ordering::Relaxed),
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/repos/{}/{rest}", self.repository)
    }

    /// The token Git should push with over HTTPS: a fresh installation token for an App;
    /// `None` for a token, which Git already has from the environment.
    pub async fn git_token(&self) -> Result<Option<String>> {
        match self.session.credentials {
            Credentials::Token(_) => Ok(None),
            Credentials::App(_) => self.bearer().await.map(Some),
        }
    }

    /// The `Authorization` header's bearer: the token, or a fresh installation token.
    async fn bearer(&self) -> Result<String> {
        let app = match &self.session.credentials {
            Credentials::Token(token) => return Ok(token.clone()),
            Credentials::App(app) => app,
        };
        let mut held = self.session.installation.lock().await;
        let now = now_seconds();
        if let Some(token) = held.as_ref().filter(|t| t.fresh(now)) {
            return Ok(token.token.clone());
        }
        let token = Box::pin(self.installation_token(app, now)).await?;
        let bearer = token.token.clone();
        *held = Some(token);
        Ok(bearer)
    }

    /// Exchanges the App's JWT for a token of its installation on the repository.
    async fn installation_token(
        &self,
        app: &AppCredentials,
        now: i64,
    ) -> Result<InstallationToken> {
        let jwt = app
            .key
            .jwt(app.id, now)
            .map_err(|e| Error::Setup(e.to_string()))?;
        let installation = match app.installation {
            Some(id) => id,
            None => {
                let what = format!(
                    "find the installation of GitHub App {} on {}",
                    app.id, self.repository
                );
                let answer = self
                    .call_with(&what, "GET", &self.path("installation"), None, Some(&jwt))
                    .await
                    .map_err(|e| app_refused(e, app.id))?;
                answer["id"].as_u64().ok_or_else(|| Error::Decode {
                    what,
                    message: "no installation `id`".into(),
                })?
            }
        };
        let what = format!(
            "get a token of installation {installation} of GitHub App {}",
            app.id
        );
        let answer = self
            .call_with(
                &what,
                "POST",
                &format!("/app/installations/{installation}/access_tokens"),
                None,
                Some(&jwt),
            )
            .await
            .map_err(|e| app_refused(e, app.id))?;
        let token = answer["token"].as_str().ok_or_else(|| Error::Decode {
            what: what.clone(),
            message: "no `token`".into(),
        })?;
        let expires_at = answer["expires_at"]
            .as_str()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .ok_or_else(|| Error::Decode {
                what: what.clone(),
                message: "no `expires_at` timestamp".into(),
            })?;
        tracing::debug!(installation, expires_at = %expires_at, "GitHub App installation token");
        Ok(InstallationToken {
            token: token.to_owned(),
            expires_at: expires_at.as_second(),
        })
    }

    /// Records the rate limit an answer reports, warning once a window when a fifth is left.
    fn note_limits(&self, header: impl Fn(&str) -> Option<String>) {
        let Some(limit) = RateLimit::from_headers(header) else {
            return;
        };
        if limit.low() {
            let mut warned = lock(&self.session.warned_low);
            if warned.get(&limit.resource) != Some(&limit.reset) {
                warned.insert(limit.resource.clone(), limit.reset);
                tracing::warn!(
                    resource = %limit.resource,
                    remaining = limit.remaining,
                    limit = limit.limit,
                    reset = limit.reset,
                    "GitHub rate limit: a fifth or less is left"
                );
            }
        }
        lock(&self.session.limits).insert(limit.resource.clone(), limit);
    }

    /// Keeps a GET's answer for the rest of the run.
    fn remember(&self, path: &str, answer: &Answer) {
        if let Some(run) = &self.run {
            lock(run).insert(path.to_owned(), answer.clone());
        }
    }

    /// One try.
    async fn send(&self, call: &Call<'_>) -> Result<Answer, Failure> {
        let Call {
            what,
            method,
            path,
            body,
            creates,
            bearer,
        } = *call;
        let transport = |source| Error::Transport {
            what: what.to_owned(),
            source,
        };
        let get = method == "GET";
        if let Some(run) = &self.run {
            let mut kept = lock(run);
            if !get {
                // A write may change any answer of the run.
                kept.clear();
            } else if let Some(answer) = kept.get(path) {
                return Ok(answer.clone());
            }
        }
        let bearer = match bearer {
            Some(jwt) => jwt.to_owned(),
            None => self.bearer().await.map_err(Failure::Final)?,
        };
        let authorization = http::HeaderValue::from_str(&format!("Bearer {bearer}"))
            .map(|mut value| {
                value.set_sensitive(true);
                value
            })
            .map_err(|_| {
                Failure::Final(Error::Setup(
                    "the GitHub token is not a valid header value".into(),
                ))
            })?;
        // A renamed repository answers with a redirect: GET ones the client follows itself,
        // the rest (307, 308) are sent again, body and all, to where they point.
        let mut target = path.to_owned();
        let mut hops = 0;
        let response = loop {
            let etag = get
                .then(|| {
                    lock(&self.session.conditional)
                        .etag(&target)
                        .map(str::to_owned)
                })
                .flatten();
            let mut request = http::Request::builder()
                .method(method)
                .uri(target.as_str())
                .header(http::header::AUTHORIZATION, authorization.clone());
            if let Some(etag) = &etag {
                request = request.header(http::header::IF_NONE_MATCH, etag.as_str());
            }
            let request = self
                .client
                .build_request(request, body)
                .map_err(|source| Failure::Final(transport(source)))?;
            self.session.requests.fetch_add(1, Ordering::Relaxed);
            let response = match self.client.execute(request).await {
                Ok(response) => response,
                Err(source) if creates => return Err(Failure::MaybeDone(transport(source))),
                Err(source) => return Err(Failure::Retry(None, transport(source))),
            };
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match (response.status().as_u16(), location) {
                (307 | 308, Some(location)) if hops < 5 => {
                    hops += 1;
                    target = location;
                }
                _ => break response,
            }
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        self.note_limits(header);
        let (retry_after, remaining, reset) = (
            header("retry-after"),
            header("x-ratelimit-remaining"),
            header("x-ratelimit-reset"),
        );
        let etag = header("etag");
        let link = header("link");
        let next = link.as_deref().is_some_and(|l| l.contains("rel=\"next\""));
        if status == 304 {
            self.session.not_modified.fetch_add(1, Ordering::Relaxed);
            let kept = lock(&self.session.conditional).answer(&target);
            return match kept {
                Some(mut answer) => {
                    // The body is the same; the pages after it may not be.
                    answer.next = link.is_some().then_some(next);
                    self.remember(path, &answer);
                    Ok(answer)
                }
                None => {
                    // Nothing to read the 304 with: ask again, unconditionally.
                    lock(&self.session.conditional).forget(&target);
                    Err(Failure::Retry(
                        Some(Duration::ZERO),
                        Error::Decode {
                            what: what.to_owned(),
                            message: "304 for an answer not kept".into(),
                        },
                    ))
                }
            };
        }
        let text = self
            .client
            .body_to_string(response)
            .await
            .map_err(|source| Failure::Retry(None, transport(source)))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| {
                Failure::Final(Error::Decode {
                    what: what.to_owned(),
                    message: format!("{e} (HTTP {status})"),
                })
            })?
        };
        if (200..300).contains(&status) {
            let answer = Answer {
                value,
                next: Some(next),
            };
            if get {
                if let Some(etag) = etag {
                    lock(&self.session.conditional).keep(&target, etag, &answer);
                }
                self.remember(path, &answer);
            }
            return Ok(answer);
        }
        let limits = Limits {
            retry_after,
            remaining,
            reset,
        };
        Err(failure(call, status, &value, &limits))
    }

    /// A call, retried while the policy allows. A create (`creates`) that may have been done
    /// comes back as `Err(Failure::MaybeDone)` for the caller to look before trying again.
    /// A wait GitHub asks for is waited in full; one that would pass the policy's deadline
    /// ends the call with an error saying so, never an early retry. An App's installation token
    /// that GitHub no longer takes is renewed once.
    async fn call_raw(&self, call: &Call<'_>) -> Result<Answer, Failure> {
        let (started, mut attempt) = (std::time::Instant::now(), 1);
        let mut renewed = false;
        loop {
            match self.send(call).await {
                Err(Failure::Retry(wait, error)) => {
                    attempt += 1;
                    match self.retry.next_wait(started, attempt, wait) {
                        Some(pause) => tokio::time::sleep(pause).await,
                        None => {
                            return Err(Failure::Final(past_deadline(error, wait, &self.retry)));
                        }
                    }
                }
                Err(Failure::Final(Error::Api { status: 401, .. }))
                    if !renewed
                        && call.bearer.is_none()
                        && matches!(self.session.credentials, Credentials::App(_)) =>
                {
                    renewed = true;
                    tracing::info!("GitHub refused the installation token; renewing it");
                    *self.session.installation.lock().await = None;
                }
                other => return other,
            }
        }
    }

    async fn call_with(
        &self,
        what: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
        bearer: Option<&str>,
    ) -> Result<Value> {
        let call = Call {
            what,
            method,
            path,
            body,
            creates: false,
            bearer,
        };
        self.call_raw(&call)
            .await
            .map(|a| a.value)
            .map_err(Failure::into_error)
    }

    async fn call(
        &self,
        what: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        self.call_with(what, method, path, body, None).await
    }

    /// A call whose answer is read into octocrab's model of it: a missing field is an error.
    async fn get<T: DeserializeOwned>(&self, what: &str, path: &str) -> Result<T> {
        decode(what, self.call(what, "GET", path, None).await?)
    }

    /// Every item of a listing, 100 a page while the `Link` header names a next one, each read
    /// into octocrab's model of it.
    async fn list<T: DeserializeOwned>(&self, what: &str, path: &str) -> Result<Vec<T>> {
        let mut items = Vec::new();
        let separator = if path.contains('?') { '&' } else { '?' };
        for page in 1.. {
            let call = Call {
                what,
                method: "GET",
                path: &format!("{path}{separator}per_page=100&page={page}"),
                body: None,
                creates: false,
                bearer: None,
            };
            let answer = self.call_raw(&call).await.map_err(Failure::into_error)?;
            let batch: Vec<T> = decode(what, answer.value)?;
            // A full page whose next is not known is followed by a look at the next one.
            let done = match answer.next {
                Some(next) => !next || batch.is_empty(),
                None => batch.len() < 100,
            };
            items.extend(batch);
            if done {
                break;
            }
        }
        Ok(items)
    }

    /// Creates with a POST unless `find` finds it first; after an answer that may hide a done
    /// write, looks again before another POST. Returns the found or created item and whether it
    /// was created.
    async fn find_or_create<T, F, Fut>(
        &self,
        what: &str,
        path: &str,
        body: &Value,
        find: F,
    ) -> Result<(T, bool)>
    where
        T: DeserializeOwned,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        let mut attempt = 1;
        loop {
            if let Some(found) = find().await? {
                return Ok((found, false));
            }
            let call = Call {
                what,
                method: "POST",
                path,
                body: Some(body),
                creates: true,
                bearer: None,
            };
            match self.call_raw(&call).await {
                Ok(created) => return Ok((decode(what, created.value)?, true)),
                Err(Failure::MaybeDone(_)) if attempt < self.retry.attempts => {
                    attempt += 1;
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                }
                Err(failure) => return Err(failure.into_error()),
            }
        }
    }

    fn owner(&self) -> &str {
        self.repository
            .split_once('/')
            .map_or(self.repository.as_str(), |(owner, _)| owner)
    }

    /// The open pull request of the branch `head` of this repository (not a fork's branch of
    /// the same name), found in the listing of open pull requests: one conditional listing
    /// serves every branch of a run.
    async fn find_pull(&self, head: &str) -> Result<Option<PullRequest>> {
        let pulls: Vec<PullRequest> = self
            .list("list open pull requests", &self.path("pulls?state=open"))
            .await?;
        let label = format!("{}:{head}", self.owner());
        Ok(pulls.into_iter().find(|p| {
            p.head.ref_field == head && p.head.label.as_deref().is_none_or(|l| l == label)
        }))
    }

    async fn find_comment(&self, number: u64, marker: &str) -> Result<Option<IssueComment>> {
        let line = marker_line(marker);
        let comments: Vec<IssueComment> = self
            .list(
                &format!("read the comments of #{number}"),
                &self.path(&format!("issues/{number}/comments")),
            )
            .await?;
        Ok(comments
            .into_iter()
            .find(|c| c.body.as_deref().is_some_and(|b| b.contains(&line))))
    }

    async fn set_labels(&self, pull: &PullRequest, wanted: &[String]) -> Result<Vec<String>> {
        let number = pull.number;
        let what = format!("label #{number}");
        let current = label_names(&what, pull.labels.as_deref())?;
        let ours = |l: &str| l.starts_with("risk/") || l.starts_with("finding/");
        let mut labels: Vec<String> = current
            .iter()
            .filter(|l| !ours(l) || wanted.contains(l))
            .cloned()
            .collect();
        for label in wanted {
            if !labels.contains(label) {
                labels.push(label.clone());
            }
        }
        if labels == current {
            return Ok(labels);
        }
        let answer = self
            .call(
                &what,
                "PUT",
                &self.path(&format!("issues/{number}/labels")),
                Some(&json!({ "labels": labels })),
            )
            .await?;
        let answer: Vec<Label> = decode(&what, answer)?;
        Ok(answer.into_iter().map(|l| l.name).collect())
    }

    /// Who pushed `head`, the head commit of pull request `number`, and where that was learned: the timeline's force push to it (its
    /// actor), else its author's and committer's logins (see [`GitHub::committers`]); the
    /// committers are kept beside the timeline's actor.
    async fn pushers(&self, number: u64, head: &str) -> Result<(Vec<String>, PushersFrom)> {
        let mut logins = self.committers(number, head).await?;
        let what = format!("read the timeline of #{number}");
        let timeline: Vec<Value> = self
            .list(&what, &self.path(&format!("issues/{number}/timeline")))
            .await?;
        let pushed = timeline
            .iter()
            .filter(|e| e["event"] == "head_ref_force_pushed" && e["commit_id"] == head)
            .map(|e| {
                e["actor"]["login"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Error::Decode {
                        what: what.clone(),
                        message: "a force push without its actor's login".to_owned(),
                    })
            })
            .collect::<Result<Vec<String>>>()?;
        if pushed.is_empty() {
            return Ok((logins, PushersFrom::Emails));
        }
        for login in pushed {
            if !logins.contains(&login) {
                logins.insert(0, login);
            }
        }
        Ok((logins, PushersFrom::Timeline))
    }

    /// The logins the head commit's author and committer e-mails belong to, as GitHub maps
    /// them.
    async fn committers(&self, number: u64, head: &str) -> Result<Vec<String>> {
        let what = format!("read the commits of #{number}");
        let commits: Vec<RepoCommit> = self
            .list(&what, &self.path(&format!("pulls/{number}/commits")))
            .await?;
        let last = commits
            .into_iter()
            .find(|c| c.sha == head)
            .ok_or_else(|| Error::Decode {
                what: what.clone(),
                message: format!("the head commit {head} is not among the pull request's commits"),
            })?;
        let mut logins: Vec<String> = [last.author, last.committer]
            .into_iter()
            .flatten()
            .map(|a| a.login)
            .filter(|login| login != "web-flow")
            .collect();
        logins.dedup();
        Ok(logins)
    }
}

impl GitHub {
    /// Keeps one open issue for `marker` (a report kind): updates the one whose body carries the
    /// marker, or opens it with `label`, as Renovate keeps its Dependency Dashboard. Returns its
    /// number and whether it was opened.
    pub async fn upsert_issue(
        &self,
        marker: &str,
        title: &str,
        body: &str,
        label: &str,
    ) -> Result<(u64, Upserted)> {
        let line = marker_line(marker);
        let mut body = format!("{line}\n{body}");
        if body.len() > GITHUB_LIMIT {
            let mut cut = GITHUB_LIMIT - 200;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
            body.push_str(
                "\n\n*The report is cut here: GitHub keeps 65,536 characters of an issue.*\n",
            );
        }
        let what = format!("keep the issue {marker}");
        let find = || async {
            let issues: Vec<octocrab::models::issues::Issue> = self
                .list(
                    &what,
                    &self.path(&format!("issues?state=open&labels={label}")),
                )
                .await?;
            Ok(issues.into_iter().find(|i| {
                i.pull_request.is_none() && i.body.as_deref().is_some_and(|b| b.contains(&line))
            }))
        };
        let create = json!({"title": title, "body": body, "labels": [label]});
        let (issue, created): (octocrab::models::issues::Issue, bool) = self
            .find_or_create(&what, &self.path("issues"), &create, find)
            .await?;
        let unchanged = issue.title == title && issue.body.as_deref().unwrap_or_default() == body;
        if !created && !unchanged {
            let answer = self
                .call(
                    &what,
                    "PATCH",
                    &self.path(&format!("issues/{}", issue.number)),
                    Some(&json!({"title": title, "body": body})),
                )
                .await?;
            decode::<octocrab::models::issues::Issue>(&what, answer)?;
        }
        let upserted = if created {
            Upserted::Opened
        } else {
            Upserted::Updated
        };
        Ok((issue.number, upserted))
    }
}

impl Forge for GitHub {
    async fn open_or_update(&self, spec: &PullRequestSpec) -> Result<(PullSummary, Upserted)> {
        let pieces = split(&spec.body, GITHUB_LIMIT - SPLIT_RESERVE);
        let mut body = pieces[0].clone();
        if pieces.len() > 1 {
            body.push_str("\n\n*The description continues in the comments below.*\n");
        }
        let what = format!("open the pull request of {}", spec.head);
        let create =
            json!({"title": spec.title, "head": spec.head, "base": spec.base, "body": body});
        let (pull, created): (PullRequest, bool) = self
            .find_or_create(&what, &self.path("pulls"), &create, || {
                self.find_pull(&spec.head)
            })
            .await?;
        let number = pull.number;
        let unchanged = pull.title.as_deref() == Some(spec.title.as_str())
            && pull.body.as_deref().unwrap_or_default() == body;
        let pull = if created || unchanged {
            pull
        } else {
            let what = format!("update #{number}");
            let answer = self
                .call(
                    &what,
                    "PATCH",
                    &self.path(&format!("pulls/{number}")),
                    Some(&json!({"title": spec.title, "body": body})),
                )
                .await?;
            decode(&what, answer)?
        };
        let labels = self.set_labels(&pull, &spec.labels).await?;
        for (i, piece) in pieces.iter().enumerate().skip(1) {
            let text = format!(
                "*Description, part {} of {}*\n\n{piece}",
                i + 1,
                pieces.len()
            );
            self.upsert_comment(number, &format!("body-part-{}", i + 1), &text)
                .await?;
        }
        let mut summary = summary(&pull)?;
        summary.labels = labels;
        let upserted = if created {
            Upserted::Opened
        } else {
            Upserted::Updated
        };
        Ok((summary, upserted))
    }

    async fn open_pulls(&self, label: &str) -> Result<Vec<PullSummary>> {
        let pulls: Vec<PullRequest> = self
            .list("list open pull requests", &self.path("pulls?state=open"))
            .await?;
        let mut found = Vec::new();
        for pull in &pulls {
            let summary = summary(pull)?;
            if summary.labels.iter().any(|l| l == label) {
                found.push(summary);
            }
        }
        Ok(found)
    }

    async fn pull(&self, number: u64) -> Result<PullInfo> {
        let what = format!("read #{number}");
        let pull: PullRequest = self
            .get(&what, &self.path(&format!("pulls/{number}")))
            .await?;
        let reviews_what = format!("read the reviews of #{number}");
        let reviews: Vec<octocrab::models::pulls::Review> = self
            .list(
                &reviews_what,
                &self.path(&format!("pulls/{number}/reviews")),
            )
            .await?;
        let reviews = reviews
            .into_iter()
            .map(|r| {
                Ok(Review {
                    user: required(&reviews_what, "user", r.user)?.login,
                    state: review_state(&reviews_what, r.state)?,
                    commit: r.commit_id,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let head_sha = pull.head.sha.clone();
        let (pushers, pushers_from) = self.pushers(number, &head_sha).await?;
        Ok(PullInfo {
            summary: summary(&pull)?,
            author: required(&what, "user", pull.user.as_ref())?.login.clone(),
            base: pull.base.ref_field.clone(),
            merged: pull.merged_at.is_some(),
            closed: pull.closed_at.is_some() || pull.merged_at.is_some(),
            merge_commit: pull.merge_commit_sha.clone(),
            pushers,
            pushers_from,
            head_sha,
            reviews,
        })
    }

    async fn pull_for_commit(&self, commit: &str, base: &str) -> Result<Option<MergedPull>> {
        let pulls: Vec<PullRequest> = self
            .list(
                &format!("find the pull request of {commit}"),
                &self.path(&format!("commits/{commit}/pulls")),
            )
            .await?;
        let merged: Vec<(u64, &str)> = pulls
            .iter()
            .filter(|p| p.merged_at.is_some() && p.base.ref_field == base)
            .filter_map(|p| Some((p.number, p.merge_commit_sha.as_deref()?)))
            .collect();
        let found = merged
            .iter()
            .find(|(_, merge)| *merge == commit)
            .or_else(|| merged.first());
        Ok(found.map(|(number, merge)| MergedPull {
            number: *number,
            merge_commit: (*merge).to_owned(),
        }))
    }

    async fn last_push_approval(&self, branch: &str) -> Result<Option<bool>> {
        let what = format!("read the protection of {branch}");
        let path = self.path(&format!("branches/{branch}/protection"));
        match self.call(&what, "GET", &path, None).await {
            Ok(protection) => Ok(Some(
                protection["required_pull_request_reviews"]["require_last_push_approval"] == true,
            )),
            // Not protected at all.
            Err(Error::Api {
                status: 404,
                message,
                ..
            }) if message.contains("not protected") => Ok(Some(false)),
            // Reading protection needs administration rights the token may not have; GitHub
            // answers a token without them as if the branch were not there.
            Err(Error::Api {
                status: 403 | 404, ..
            }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn team_members(&self, team: &str) -> Result<Vec<String>> {
        let (org, slug) = team.split_once('/').ok_or_else(|| Error::Decode {
            what: format!("read the members of team {team}"),
            message: "a team is named `org/slug`".into(),
        })?;
        let members: Vec<octocrab::models::Author> = self
            .list(
                &format!("read the members of team @{team}"),
                &format!("/orgs/{org}/teams/{slug}/members"),
            )
            .await?;
        Ok(members.into_iter().map(|m| m.login).collect())
    }

    async fn upsert_comment(&self, number: u64, marker: &str, body: &str) -> Result<()> {
        let body = format!("{}\n{body}", marker_line(marker));
        let what = format!("comment on #{number}");
        let (found, created): (IssueComment, bool) = self
            .find_or_create(
                &what,
                &self.path(&format!("issues/{number}/comments")),
                &json!({ "body": body }),
                || self.find_comment(number, marker),
            )
            .await?;
        if !created && found.body.as_deref() != Some(body.as_str()) {
            let answer = self
                .call(
                    &what,
                    "PATCH",
                    &self.path(&format!("issues/comments/{}", found.id)),
                    Some(&json!({ "body": body })),
                )
                .await?;
            decode::<IssueComment>(&what, answer)?;
        }
        Ok(())
    }

    async fn set_status(&self, commit: &str, status: &CommitStatus) -> Result<()> {
        let description: String = status.description.chars().take(140).collect();
        let body = json!({
            "state": status.state,
            "context": status.context,
            "description": description,
        });
        let what = format!("set the status of {commit}");
        let answer = self
            .call(
                &what,
                "POST",
                &self.path(&format!("statuses/{commit}")),
                Some(&body),
            )
            .await?;
        decode::<octocrab::models::Status>(&what, answer).map(drop)
    }

    async fn close(&self, number: u64, comment: &str) -> Result<()> {
        self.upsert_comment(number, "closed", comment).await?;
        let what = format!("close #{number}");
        let answer = self
            .call(
                &what,
                "PATCH",
                &self.path(&format!("pulls/{number}")),
                Some(&json!({"state": "closed"})),
            )
            .await?;
        decode::<PullRequest>(&what, answer).map(drop)
    }

    async fn report_check(&self, run: &CheckRun) -> Result<ReportedAs> {
        if self.session.statuses_only.load(Ordering::SeqCst) {
            self.set_status(&run.head_sha, &run.status()).await?;
            return Ok(ReportedAs::Status { first: false });
        }
        match self.write_check_run(run).await {
            Err(Error::Api { status: 403, .. }) => {
                let first = !self.session.statuses_only.swap(true, Ordering::SeqCst);
                if first {
                    tracing::warn!(
                        check = %run.name,
                        "the token may not write check runs (checks: write); reporting by commit statuses instead"
                    );
                }
                self.set_status(&run.head_sha, &run.status()).await?;
                Ok(ReportedAs::Status { first })
            }
            other => other,
        }
    }

    async fn checks(&self, commit: &str) -> Result<Vec<CheckResult>> {
        let what = format!("read the check runs of {commit}");
        let mut results = Vec::new();
        for page in 1.. {
            let answer = self
                .call(
                    &what,
                    "GET",
                    &self.path(&format!(
                        "commits/{commit}/check-runs?filter=latest&per_page=100&page={page}"
                    )),
                    None,
                )
                .await?;
            let runs = answer["check_runs"]
                .as_array()
                .ok_or_else(|| Error::Decode {
                    what: what.clone(),
                    message: "no `check_runs`".into(),
                })?;
            for run in runs {
                let (Some(name), Some(status)) = (run["name"].as_str(), run["status"].as_str())
                else {
                    return Err(Error::Decode {
                        what,
                        message: "a check run without `name` or `status`".into(),
                    });
                };
                let conclusion = run["conclusion"].as_str();
                results.push(CheckResult {
                    name: name.to_owned(),
                    kind: CheckKind::CheckRun,
                    verdict: run_verdict(status, conclusion),
                    detail: conclusion.unwrap_or(status).to_owned(),
                });
            }
            let total = answer["total_count"]
                .as_u64()
                .ok_or_else(|| Error::Decode {
                    what: what.clone(),
                    message: "no `total_count`".into(),
                })?;
            if runs.len() < 100 || (page * 100) >= total {
                break;
            }
        }
        let statuses: Vec<octocrab::models::Status> = self
            .list(
                &format!("read the statuses of {commit}"),
                &self.path(&format!("commits/{commit}/statuses")),
            )
            .await?;
        // Newest first: the first of each context is its latest.
        let mut seen = std::collections::BTreeSet::new();
        for status in statuses {
            let context = required(
                &format!("read the statuses of {commit}"),
                "context",
                status.context,
            )?;
            if !seen.insert(context.clone()) {
                continue;
            }
            use octocrab::models::StatusState as State;
            let state = match status.state {
                State::Success => "success",
                State::Pending => "pending",
                State::Failure => "failure",
                _ => "error",
            }
            .to_owned();
            results.push(CheckResult {
                name: context,
                kind: CheckKind::Status,
                verdict: status_verdict(&state),
                detail: state,
            });
        }
        Ok(results)
    }
}

impl GitHub {
    /// Creates or updates the check run, its annotations in batches.
    async fn write_check_run(&self, run: &CheckRun) -> Result<ReportedAs> {
        let sha = &run.head_sha;
        let what = format!("report the check run {} on {sha}", run.name);
        let name: String = form_urlencoded_component(&run.name);
        let existing = self
            .call(
                &what,
                "GET",
                &self.path(&format!(
                    "commits/{sha}/check-runs?check_name={name}&filter=latest"
                )),
                None,
            )
            .await?;
        let unfinished = existing["check_runs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["status"].as_str() != Some("completed"))
            .and_then(|r| r["id"].as_u64());
        let summary = run.summary_text();
        let mut batches = run.annotations.chunks(ANNOTATIONS_PER_REQUEST);
        let output = |batch: Option<&[Annotation]>| {
            json!({
                "title": run.title,
                "summary": summary,
                "annotations": batch.map_or_else(Vec::new, |b| b.iter().map(Annotation::json).collect()),
            })
        };
        let mut body = json!({
            "status": if run.conclusion.is_some() { "completed" } else { "in_progress" },
            "output": output(batches.next()),
        });
        if let Some(conclusion) = run.conclusion {
            body["conclusion"] = json!(conclusion.as_str());
        }
        let answer = match unfinished {
            Some(id) => {
                self.call(
                    &what,
                    "PATCH",
                    &self.path(&format!("check-runs/{id}")),
                    Some(&body),
                )
                .await?
            }
            None => {
                body["name"] = json!(run.name);
                body["head_sha"] = json!(sha);
                self.call(&what, "POST", &self.path("check-runs"), Some(&body))
                    .await?
            }
        };
        let id = answer["id"].as_u64().ok_or_else(|| Error::Decode {
            what: what.clone(),
            message: "no check run `id`".into(),
        })?;
        let mut requests = 1;
        for batch in batches {
            self.call(
                &what,
                "PATCH",
                &self.path(&format!("check-runs/{id}")),
                Some(&json!({ "output": output(Some(batch)) })),
            )
            .await?;
            requests += 1;
        }
        Ok(ReportedAs::CheckRun { id, requests })
    }
}

/// `text` as one component of a query.
fn form_urlencoded_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
