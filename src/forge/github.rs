//! GitHub through octocrab: REST calls read into octocrab's typed models (a field GitHub
//! documents as always there and that is missing is an error, never a default), retried on 5xx, on the primary
//! rate limit (until `x-ratelimit-reset`) and on the secondary one (after `Retry-After`). A create
//! that may have happened before its answer was lost is never sent twice blindly: the pull request
//! or comment is looked for again first. I/O: HTTPS to the API.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use octocrab::models::Label;
use octocrab::models::issues::Comment as IssueComment;
use octocrab::models::pulls::PullRequest;
use octocrab::models::repos::RepoCommit;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::models::{decode, label_names, required, review_state, summary};
use super::split::{GITHUB_LIMIT, split};
use super::{
    CommitStatus, Error, Forge, MergedPull, PullInfo, PullRequestSpec, PullSummary, Result, Review,
    Upserted, marker_line,
};
use crate::cluster::RetryPolicy;

/// Room kept under the limit for the continuation note and the marker.
const SPLIT_RESERVE: usize = 300;

/// GitHub or GitHub Enterprise, for one repository.
#[derive(Clone)]
pub struct GitHub {
    client: octocrab::Octocrab,
    repository: String,
    retry: RetryPolicy,
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

/// What a failed call means for trying again.
enum Failure {
    /// Try again after this long.
    Retry(Option<Duration>, Error),
    /// The write may have happened: look before trying again.
    MaybeDone(Error),
    /// Give up.
    Final(Error),
}

impl GitHub {
    /// A client for `repository` (`owner/name`) with `token`; `api_url` for GitHub Enterprise or
    /// a test server, GitHub's own API when `None`. Call it inside the tokio runtime that will
    /// run its requests: octocrab starts a task there.
    pub fn new(api_url: Option<&str>, token: &str, repository: &str) -> Result<Self> {
        let mut builder = octocrab::Octocrab::builder().personal_token(token.to_owned());
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
        })
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    fn path(&self, rest: &str) -> String {
        format!("/repos/{}/{rest}", self.repository)
    }

    /// One try.
    async fn send(&self, call: &Call<'_>) -> Result<Value, Failure> {
        let Call {
            what,
            method,
            path,
            body,
            creates,
        } = *call;
        let transport = |source| Error::Transport {
            what: what.to_owned(),
            source,
        };
        // A renamed repository answers with a redirect: GET ones the client follows itself,
        // the rest (307, 308) are sent again, body and all, to where they point.
        let mut path = path.to_owned();
        let mut hops = 0;
        let response = loop {
            let response = match method {
                "GET" => self.client._get(&path).await,
                "POST" => self.client._post(&path, body).await,
                "PATCH" => self.client._patch(&path, body).await,
                _ => self.client._put(&path, body).await,
            };
            let response = match response {
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
                    path = location;
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
        let (retry_after, remaining, reset) = (
            header("retry-after"),
            header("x-ratelimit-remaining"),
            header("x-ratelimit-reset"),
        );
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
            return Ok(value);
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
    /// ends the call with an error saying so, never an early retry.
    async fn call_raw(&self, call: &Call<'_>) -> Result<Value, Failure> {
        let (started, mut attempt) = (std::time::Instant::now(), 1);
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
                other => return other,
            }
        }
    }

    async fn call(
        &self,
        what: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let call = Call {
            what,
            method,
            path,
            body,
            creates: false,
        };
        self.call_raw(&call).await.map_err(|f| match f {
            Failure::Retry(_, e) | Failure::MaybeDone(e) | Failure::Final(e) => e,
        })
    }

    /// A call whose answer is read into octocrab's model of it: a missing field is an error.
    async fn get<T: DeserializeOwned>(&self, what: &str, path: &str) -> Result<T> {
        decode(what, self.call(what, "GET", path, None).await?)
    }

    /// Every item of a listing, 100 a page, each read into octocrab's model of it.
    async fn list<T: DeserializeOwned>(&self, what: &str, path: &str) -> Result<Vec<T>> {
        let mut items = Vec::new();
        let separator = if path.contains('?') { '&' } else { '?' };
        for page in 1.. {
            let batch: Vec<T> = self
                .get(what, &format!("{path}{separator}per_page=100&page={page}"))
                .await?;
            let done = batch.len() < 100;
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
            };
            match self.call_raw(&call).await {
                Ok(created) => return Ok((decode(what, created)?, true)),
                Err(Failure::MaybeDone(_)) if attempt < self.retry.attempts => {
                    attempt += 1;
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                }
                Err(Failure::Retry(_, e) | Failure::MaybeDone(e) | Failure::Final(e)) => {
                    return Err(e);
                }
            }
        }
    }

    fn owner(&self) -> &str {
        self.repository
            .split_once('/')
            .map_or(self.repository.as_str(), |(owner, _)| owner)
    }

    async fn find_pull(&self, head: &str) -> Result<Option<PullRequest>> {
        let pulls: Vec<PullRequest> = self
            .list(
                &format!("find the pull request of {head}"),
                &self.path(&format!("pulls?state=open&head={}:{head}", self.owner())),
            )
            .await?;
        Ok(pulls.into_iter().find(|p| p.head.ref_field == head))
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

    /// The logins that authored or committed the head commit of pull request `number`.
    async fn pushers(&self, number: u64, head: &str) -> Result<Vec<String>> {
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
        Ok(PullInfo {
            summary: summary(&pull)?,
            author: required(&what, "user", pull.user.as_ref())?.login.clone(),
            base: pull.base.ref_field.clone(),
            merged: pull.merged_at.is_some(),
            merge_commit: pull.merge_commit_sha.clone(),
            pushers: self.pushers(number, &head_sha).await?,
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
}
