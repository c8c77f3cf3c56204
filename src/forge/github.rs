//! GitHub through octocrab: raw REST calls read into small structs, retried on 5xx, on the primary
//! rate limit (until `x-ratelimit-reset`) and on the secondary one (after `Retry-After`). A create
//! that may have happened before its answer was lost is never sent twice blindly: the pull request
//! or comment is looked for again first. I/O: HTTPS to the API.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::split::{GITHUB_LIMIT, split};
use super::{
    CommitStatus, Error, Forge, PullInfo, PullRequestSpec, PullSummary, Result, Review,
    ReviewState, Upserted, marker_line,
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
    if status == 403 && limits.remaining.as_deref() == Some("0") {
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
        let response = match method {
            "GET" => self.client._get(path).await,
            "POST" => self.client._post(path, body).await,
            "PATCH" => self.client._patch(path, body).await,
            _ => self.client._put(path, body).await,
        };
        let transport = |source| Error::Transport {
            what: what.to_owned(),
            source,
        };
        let response = match response {
            Ok(response) => response,
            Err(source) if creates => return Err(Failure::MaybeDone(transport(source))),
            Err(source) => return Err(Failure::Retry(None, transport(source))),
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
    async fn call_raw(&self, call: &Call<'_>) -> Result<Value, Failure> {
        let mut attempt = 1;
        loop {
            match self.send(call).await {
                Err(Failure::Retry(wait, error)) => {
                    if attempt >= self.retry.attempts {
                        return Err(Failure::Final(error));
                    }
                    attempt += 1;
                    tokio::time::sleep(self.retry.delay(attempt, wait)).await;
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

    /// Every item of a listing, 100 a page.
    async fn list(&self, what: &str, path: &str) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        let separator = if path.contains('?') { '&' } else { '?' };
        for page in 1.. {
            let value = self
                .call(
                    what,
                    "GET",
                    &format!("{path}{separator}per_page=100&page={page}"),
                    None,
                )
                .await?;
            let Value::Array(batch) = value else {
                return Err(Error::Decode {
                    what: what.to_owned(),
                    message: "expected a list".into(),
                });
            };
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
    async fn find_or_create<F, Fut>(
        &self,
        what: &str,
        path: &str,
        body: &Value,
        find: F,
    ) -> Result<(Value, bool)>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Value>>>,
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
                Ok(created) => return Ok((created, true)),
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

    async fn find_pull(&self, head: &str) -> Result<Option<Value>> {
        let owner = self.repository.split('/').next().unwrap_or_default();
        let pulls = self
            .list(
                &format!("find the pull request of {head}"),
                &self.path(&format!("pulls?state=open&head={owner}:{head}")),
            )
            .await?;
        Ok(pulls.into_iter().find(|p| p["head"]["ref"] == head))
    }

    async fn find_comment(&self, number: u64, marker: &str) -> Result<Option<Value>> {
        let line = marker_line(marker);
        let comments = self
            .list(
                &format!("read the comments of #{number}"),
                &self.path(&format!("issues/{number}/comments")),
            )
            .await?;
        Ok(comments
            .into_iter()
            .find(|c| c["body"].as_str().is_some_and(|b| b.contains(&line))))
    }

    async fn set_labels(&self, pull: &Value, wanted: &[String]) -> Result<Vec<String>> {
        let number = pull["number"].as_u64().unwrap_or_default();
        let ours = |l: &str| l.starts_with("risk/") || l.starts_with("finding/");
        let mut labels: Vec<String> = names(&pull["labels"])
            .into_iter()
            .filter(|l| !ours(l) || wanted.contains(l))
            .collect();
        for label in wanted {
            if !labels.contains(label) {
                labels.push(label.clone());
            }
        }
        if labels == names(&pull["labels"]) {
            return Ok(labels);
        }
        let answer = self
            .call(
                &format!("label #{number}"),
                "PUT",
                &self.path(&format!("issues/{number}/labels")),
                Some(&json!({ "labels": labels })),
            )
            .await?;
        Ok(answer
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or(labels))
    }
}

fn names(labels: &Value) -> Vec<String> {
    labels
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn summary(pull: &Value) -> PullSummary {
    PullSummary {
        number: pull["number"].as_u64().unwrap_or_default(),
        head: pull["head"]["ref"].as_str().unwrap_or_default().to_owned(),
        title: pull["title"].as_str().unwrap_or_default().to_owned(),
        url: pull["html_url"].as_str().unwrap_or_default().to_owned(),
        labels: names(&pull["labels"]),
    }
}

fn review_state(text: &str) -> ReviewState {
    match text {
        "APPROVED" => ReviewState::Approved,
        "CHANGES_REQUESTED" => ReviewState::ChangesRequested,
        "DISMISSED" => ReviewState::Dismissed,
        "PENDING" => ReviewState::Pending,
        _ => ReviewState::Commented,
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
        let (pull, created) = self
            .find_or_create(&what, &self.path("pulls"), &create, || {
                self.find_pull(&spec.head)
            })
            .await?;
        let number = pull["number"].as_u64().ok_or_else(|| Error::Decode {
            what: what.clone(),
            message: "no number".into(),
        })?;
        let pull =
            if created || (pull["title"] == spec.title.as_str() && pull["body"] == body.as_str()) {
                pull
            } else {
                self.call(
                    &format!("update #{number}"),
                    "PATCH",
                    &self.path(&format!("pulls/{number}")),
                    Some(&json!({"title": spec.title, "body": body})),
                )
                .await?
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
        let mut summary = summary(&pull);
        summary.labels = labels;
        let upserted = if created {
            Upserted::Opened
        } else {
            Upserted::Updated
        };
        Ok((summary, upserted))
    }

    async fn open_pulls(&self, label: &str) -> Result<Vec<PullSummary>> {
        let pulls = self
            .list("list open pull requests", &self.path("pulls?state=open"))
            .await?;
        Ok(pulls
            .iter()
            .map(summary)
            .filter(|p| p.labels.iter().any(|l| l == label))
            .collect())
    }

    async fn pull(&self, number: u64) -> Result<PullInfo> {
        let pull = self
            .call(
                &format!("read #{number}"),
                "GET",
                &self.path(&format!("pulls/{number}")),
                None,
            )
            .await?;
        let reviews = self
            .list(
                &format!("read the reviews of #{number}"),
                &self.path(&format!("pulls/{number}/reviews")),
            )
            .await?;
        Ok(PullInfo {
            summary: summary(&pull),
            author: pull["user"]["login"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            base: pull["base"]["ref"].as_str().unwrap_or_default().to_owned(),
            merged: pull["merged"].as_bool().unwrap_or(false),
            merge_commit: pull["merge_commit_sha"].as_str().map(str::to_owned),
            reviews: reviews
                .iter()
                .map(|r| Review {
                    user: r["user"]["login"].as_str().unwrap_or_default().to_owned(),
                    state: review_state(r["state"].as_str().unwrap_or_default()),
                })
                .collect(),
        })
    }

    async fn pull_for_commit(&self, commit: &str) -> Result<Option<u64>> {
        let pulls = self
            .list(
                &format!("find the pull request of {commit}"),
                &self.path(&format!("commits/{commit}/pulls")),
            )
            .await?;
        let merged_here = pulls.iter().find(|p| p["merge_commit_sha"] == commit);
        let merged = pulls.iter().find(|p| p["merged_at"].is_string());
        Ok(merged_here.or(merged).and_then(|p| p["number"].as_u64()))
    }

    async fn upsert_comment(&self, number: u64, marker: &str, body: &str) -> Result<()> {
        let body = format!("{}\n{body}", marker_line(marker));
        let what = format!("comment on #{number}");
        let (found, created) = self
            .find_or_create(
                &what,
                &self.path(&format!("issues/{number}/comments")),
                &json!({ "body": body }),
                || self.find_comment(number, marker),
            )
            .await?;
        if !created && found["body"] != body.as_str() {
            let id = found["id"].as_u64().unwrap_or_default();
            self.call(
                &what,
                "PATCH",
                &self.path(&format!("issues/comments/{id}")),
                Some(&json!({ "body": body })),
            )
            .await?;
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
        self.call(
            &format!("set the status of {commit}"),
            "POST",
            &self.path(&format!("statuses/{commit}")),
            Some(&body),
        )
        .await
        .map(drop)
    }

    async fn close(&self, number: u64, comment: &str) -> Result<()> {
        self.upsert_comment(number, "closed", comment).await?;
        self.call(
            &format!("close #{number}"),
            "PATCH",
            &self.path(&format!("pulls/{number}")),
            Some(&json!({"state": "closed"})),
        )
        .await
        .map(drop)
    }
}
