//! The fake GitHub's HTTP side: authentication by token, injected faults with GitHub's own
//! headers, and the REST routes remediator uses, with GitHub's paging (`per_page`, `page`, a
//! `Link` header) and its validation errors.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as Extract;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, header};
use serde_json::{Value, json};

use super::Hub;
use super::apps::Grant;
use super::state::{
    Comment, Issue, MergeMethod, Pull, ReviewState, State, Status, label_json, user_json,
};
use crate::faults::{FaultKind, LoggedRequest};

type Answer = Result<(u16, Value), (u16, String)>;

pub(crate) fn router(hub: Arc<Hub>) -> Router {
    Router::new().fallback(handle).with_state(hub)
}

async fn handle(
    Extract(hub): Extract<Arc<Hub>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let path = uri.path().to_owned();
    let fault = hub.faults.take(method.as_str(), &path);
    let index = hub.faults.record(LoggedRequest {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().unwrap_or("").to_owned(),
        status: None,
        fault: fault.clone(),
        user_agent: headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
    });
    let response = match fault {
        None => route(&hub, &method, &uri, &headers, &body),
        Some(FaultKind::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            route(&hub, &method, &uri, &headers, &body)
        }
        Some(kind) => fault_response(&kind),
    };
    hub.faults.answered(index, response.status().as_u16());
    response
}

fn route(
    hub: &Hub,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<Body> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, token)| token.trim().to_owned());
    let mut state = hub.state.lock().expect("fake GitHub state");
    // Branches are pushed to the bare repository directly: GitHub's pull refs follow them.
    state.publish_pull_refs();
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    // An App authenticates with its JWT to find its installation and get its tokens.
    let app_route = matches!(segments.as_slice(), ["app", ..])
        || matches!(segments.as_slice(), ["repos", owner, name, "installation"] if format!("{owner}/{name}") == state.repository);
    if app_route {
        let answer = match token.as_deref().map(|jwt| state.apps.verify_jwt(jwt)) {
            None => Err((401, "A JSON web token could not be decoded".to_owned())),
            Some(Err(message)) => Err((401, message)),
            Some(Ok(app)) => app_answer(&mut state, app, method, &segments),
        };
        return match answer {
            Ok((code, value)) => json_response(code, &value, None),
            Err((code, message)) => json_response(code, &error_body(code, &message), None),
        };
    }
    let grant = token.and_then(|t| state.grant(&t));
    let Some(grant) = grant else {
        return json_response(401, &json!({"message": "Bad credentials"}), None);
    };
    let user = grant.login.clone();
    let mut response = answer_for(&mut state, &grant, method, uri, body, &segments);
    // A GET whose answer did not change since the ETag it names: 304, free of the rate limit.
    let unchanged = *method == Method::GET
        && response.status() == StatusCode::OK
        && headers
            .get(header::IF_NONE_MATCH)
            .zip(response.headers().get(header::ETAG))
            .is_some_and(|(asked, etag)| asked == etag);
    if unchanged {
        // GitHub's 304 carries the headers of the answer, the pages' `Link` among them.
        let kept = response.headers().clone();
        response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        for name in [header::ETAG, header::LINK] {
            if let Some(value) = kept.get(&name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
    }
    for (name, value) in state.apps.spend(&user, grant.limit, !unchanged) {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The routes an App's JWT may call: its installation on the repository, and a token of it.
fn app_answer(state: &mut State, app: u64, method: &Method, segments: &[&str]) -> Answer {
    match (method.as_str(), segments) {
        ("GET", ["repos", _, _, "installation"]) => match state.apps.installation(app) {
            Some(id) => Ok((
                200,
                json!({"id": id, "app_id": app, "target_type": "Organization"}),
            )),
            None => Err((404, "Not Found".to_owned())),
        },
        ("POST", ["app", "installations", id, "access_tokens"]) => {
            let id = number(id)?;
            state.apps.exchange(app, id).map(|token| (201, token))
        }
        ("GET", ["app"]) => Ok((200, json!({"id": app}))),
        _ => Err((404, "Not Found".to_owned())),
    }
}

/// What a token's request gets.
fn answer_for(
    state: &mut State,
    grant: &Grant,
    method: &Method,
    uri: &Uri,
    body: &[u8],
    segments: &[&str],
) -> Response<Body> {
    let user = grant.login.as_str();
    let query: HashMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(e) => {
                return json_response(
                    400,
                    &json!({"message": format!("Problems parsing JSON: {e}")}),
                    None,
                );
            }
        }
    };
    let answer = match segments {
        ["user"] => Ok((200, user_json(user))),
        ["repos", owner, name, "check-runs", rest @ ..]
            if format!("{owner}/{name}") == state.repository =>
        {
            super::checks::check_runs(state, grant, method, rest, &body)
        }
        ["repos", owner, name, "commits", sha, "check-runs"]
            if format!("{owner}/{name}") == state.repository =>
        {
            super::checks::of_commit(state, grant, sha, &query)
        }
        ["repos", owner, name, rest @ ..] if format!("{owner}/{name}") == state.repository => {
            repository(state, user, method, rest, &query, &body)
        }
        ["repos", owner, name, rest @ ..]
            if state.former_name.as_deref() == Some(&format!("{owner}/{name}")) =>
        {
            return moved(&state.repository, rest, uri.query(), method);
        }
        ["orgs", org, "teams", slug, "members"] if method == Method::GET => {
            match state.teams.get(&format!("{org}/{slug}")) {
                Some(members) => Ok((
                    200,
                    Value::Array(members.iter().map(|m| user_json(m)).collect()),
                )),
                None => Err((404, "Not Found".to_owned())),
            }
        }
        _ => Err((404, "Not Found".to_owned())),
    };
    match answer {
        Ok((code, Value::Array(items))) => page(code, items, &query, uri.path()),
        Ok((code, value)) => json_response(code, &value, None),
        Err((code, message)) => json_response(code, &error_body(code, &message), None),
    }
}

/// GitHub's error body: the message, `errors` for a validation failure, and where the
/// documentation is.
fn error_body(code: u16, message: &str) -> Value {
    let mut body = json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": code.to_string(),
    });
    if code == 422 {
        body["errors"] = json!([{"resource": "Issue", "code": "custom", "message": message}]);
    }
    body
}

/// A renamed repository: GET is moved permanently (301), anything else temporarily (307), to
/// the same route under the new name.
fn moved(repository: &str, rest: &[&str], query: Option<&str>, method: &Method) -> Response<Body> {
    let mut location = format!("/repos/{repository}/{}", rest.join("/"));
    if let Some(query) = query {
        location = format!("{location}?{query}");
    }
    let code = if method == Method::GET { 301 } else { 307 };
    let mut response = json_response(
        code,
        &json!({"message": "Moved Permanently", "url": location, "documentation_url": "https://docs.github.com/rest/guides/best-practices-for-using-the-rest-api#follow-redirects"}),
        None,
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn repository(
    state: &mut State,
    user: &str,
    method: &Method,
    rest: &[&str],
    query: &HashMap<String, String>,
    body: &Value,
) -> Answer {
    let ask = Ask {
        user,
        method,
        rest,
        query,
        body,
    };
    match rest.first() {
        Some(&"pulls") => pulls(state, &ask),
        Some(&"issues") => issues(state, &ask),
        Some(&"statuses" | &"commits") => commits(state, &ask),
        Some(&"branches") => match (method.as_str(), rest) {
            ("GET", ["branches", branch, "protection"]) => match state.protection.get(*branch) {
                Some(last_push) => Ok((
                    200,
                    json!({"required_pull_request_reviews": {
                        "dismiss_stale_reviews": true,
                        "require_last_push_approval": last_push}}),
                )),
                None => Err((404, "Branch not protected".to_owned())),
            },
            _ => Err((404, "Not Found".to_owned())),
        },
        _ => Err((404, "Not Found".to_owned())),
    }
}

/// A request to a repository's routes.
#[derive(Clone, Copy)]
struct Ask<'a> {
    user: &'a str,
    method: &'a Method,
    rest: &'a [&'a str],
    query: &'a HashMap<String, String>,
    body: &'a Value,
}

/// A number in a path.
fn number(text: &str) -> Result<u64, (u16, String)> {
    text.parse::<u64>()
        .map_err(|_| (404, "Not Found".to_owned()))
}

/// Pull requests, their reviews and merges.
fn pulls(state: &mut State, ask: &Ask) -> Answer {
    let Ask {
        user,
        method,
        rest,
        query,
        body,
    } = *ask;
    match (method.as_str(), rest) {
        ("GET", ["pulls"]) => Ok((200, list_pulls(state, query))),
        ("POST", ["pulls"]) => create_pull(state, user, body),
        ("GET", ["pulls", n]) => {
            let pull = state.pull(number(n)?).ok_or((404, "Not Found".into()))?;
            Ok((200, state.pull_json(pull)))
        }
        ("PATCH", ["pulls", n]) => update_pull(state, number(n)?, body),
        ("GET", ["pulls", n, "commits"]) => {
            let pull = state.pull(number(n)?).ok_or((404, "Not Found".into()))?;
            let commits = state.pull_commits(pull).map_err(|e| (500, e))?;
            Ok((200, Value::Array(commits)))
        }
        ("GET", ["pulls", n, "reviews"]) => {
            let n = number(n)?;
            let reviews = state.reviews.iter().filter(|r| r.pull == n);
            Ok((
                200,
                Value::Array(reviews.map(|r| state.review_json(r)).collect()),
            ))
        }
        ("POST", ["pulls", n, "reviews"]) => {
            let review = match body["event"].as_str() {
                Some("APPROVE") => ReviewState::Approved,
                Some("REQUEST_CHANGES") => ReviewState::ChangesRequested,
                _ => ReviewState::Commented,
            };
            let n = number(n)?;
            state.pull(n).ok_or((404, "Not Found".to_owned()))?;
            state.add_review(n, user, review);
            let review = state
                .reviews
                .last()
                .cloned()
                .ok_or((500, "no review".to_owned()))?;
            Ok((200, state.review_json(&review)))
        }
        ("PUT", ["pulls", n, "merge"]) => {
            let method = match body["merge_method"].as_str() {
                None | Some("merge") => MergeMethod::Merge,
                Some("squash") => MergeMethod::Squash,
                Some("rebase") => MergeMethod::Rebase,
                Some(other) => return Err((422, format!("merge_method {other} is not valid"))),
            };
            match state.merge(number(n)?, user, method) {
                Ok(sha) => Ok((
                    200,
                    json!({"sha": sha, "merged": true, "message": "Pull Request successfully merged"}),
                )),
                Err(message) => Err((405, message)),
            }
        }
        _ => Err((404, "Not Found".to_owned())),
    }
}

/// Issue comments and labels.
fn issues(state: &mut State, ask: &Ask) -> Answer {
    let Ask {
        user,
        method,
        rest,
        body,
        ..
    } = *ask;
    match (method.as_str(), rest) {
        ("GET", ["issues", n, "timeline"]) => {
            let pull = state.pull(number(n)?).ok_or((404, "Not Found".into()))?;
            let events = state.timeline(pull).map_err(|e| (500, e))?;
            Ok((200, Value::Array(events)))
        }
        // Issues proper, and pull requests as issues (with `pull_request`), as GitHub lists them.
        ("GET", ["issues"]) => {
            let wanted = ask.query.get("state").map_or("open", String::as_str);
            let labels: Vec<&str> = ask
                .query
                .get("labels")
                .map(|l| l.split(',').collect())
                .unwrap_or_default();
            let fits = |state: &str, have: &[String]| {
                (wanted == "all" || state == wanted)
                    && labels.iter().all(|l| have.iter().any(|h| h == l))
            };
            let mut all: Vec<(u64, Value)> = state
                .issues
                .iter()
                .filter(|i| fits(&i.state, &i.labels))
                .map(|i| (i.number, state.issue_json(i)))
                .collect();
            for pull in state.pulls.iter().filter(|p| fits(&p.state, &p.labels)) {
                let mut json = state.pull_json(pull);
                json["pull_request"] = json!({"url": json["url"].clone()});
                json["comments"] = json!(0);
                json["repository_url"] = json!(state.api_url());
                json["labels_url"] = json!(format!(
                    "{}/labels{{/name}}",
                    json["issue_url"].as_str().unwrap_or_default()
                ));
                json["events_url"] = json!(format!(
                    "{}/events",
                    json["issue_url"].as_str().unwrap_or_default()
                ));
                json["url"] = json["issue_url"].clone();
                all.push((pull.number, json));
            }
            all.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
            Ok((200, Value::Array(all.into_iter().map(|(_, j)| j).collect())))
        }
        ("POST", ["issues"]) => {
            let issue = Issue {
                number: state.next_number(),
                title: text(body, "title")?,
                body: body["body"].as_str().unwrap_or_default().to_owned(),
                state: "open".into(),
                user: user.to_owned(),
                labels: body["labels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect(),
            };
            let json = state.issue_json(&issue);
            state.issues.push(issue);
            Ok((201, json))
        }
        ("GET" | "PATCH", ["issues", n])
            if state
                .issues
                .iter()
                .any(|i| Some(i.number) == n.parse().ok()) =>
        {
            let n = number(n)?;
            let issue = state
                .issues
                .iter_mut()
                .find(|i| i.number == n)
                .ok_or((404, "Not Found".to_owned()))?;
            if method == Method::PATCH {
                for (field, slot) in [
                    ("title", &mut issue.title),
                    ("body", &mut issue.body),
                    ("state", &mut issue.state),
                ] {
                    if let Some(value) = body[field].as_str() {
                        *slot = value.to_owned();
                    }
                }
            }
            let issue = issue.clone();
            Ok((200, state.issue_json(&issue)))
        }
        ("GET", ["issues", n, "comments"]) => {
            let n = number(n)?;
            state.pull(n).ok_or((404, "Not Found".to_owned()))?;
            let comments = state.comments.iter().filter(|c| c.issue == n);
            Ok((
                200,
                Value::Array(comments.map(|c| state.comment_json(c)).collect()),
            ))
        }
        ("POST", ["issues", n, "comments"]) => {
            let issue = number(n)?;
            state.pull(issue).ok_or((404, "Not Found".into()))?;
            let id = state.next_id();
            let comment = Comment {
                id,
                issue,
                user: user.to_owned(),
                body: text(body, "body")?,
            };
            let json = state.comment_json(&comment);
            state.comments.push(comment);
            Ok((201, json))
        }
        ("PATCH", ["issues", "comments", id]) => {
            let id = number(id)?;
            let text = text(body, "body")?;
            let comment = state
                .comments
                .iter_mut()
                .find(|c| c.id == id)
                .ok_or((404, "Not Found".to_owned()))?;
            comment.body = text;
            let comment = comment.clone();
            Ok((200, state.comment_json(&comment)))
        }
        ("PUT" | "POST", ["issues", n, "labels"]) => {
            let labels: Vec<String> = body["labels"]
                .as_array()
                .ok_or((422, "labels must be an array".to_owned()))?
                .iter()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect();
            let pull = state
                .pull_mut(number(n)?)
                .ok_or((404, "Not Found".to_owned()))?;
            if method == Method::PUT {
                pull.labels.clear();
            }
            for label in labels {
                if !pull.labels.contains(&label) {
                    pull.labels.push(label);
                }
            }
            let labels = pull.labels.iter().map(|l| label_json(l)).collect();
            Ok((200, Value::Array(labels)))
        }
        _ => Err((404, "Not Found".to_owned())),
    }
}

/// Commit statuses and the pull requests of a commit.
fn commits(state: &mut State, ask: &Ask) -> Answer {
    let Ask {
        method, rest, body, ..
    } = *ask;
    match (method.as_str(), rest) {
        ("POST", ["statuses", sha]) => {
            let state_text = text(body, "state")?;
            if !["pending", "success", "failure", "error"].contains(&state_text.as_str()) {
                return Err((
                    422,
                    format!("state {state_text} is not included in the list"),
                ));
            }
            let description = body["description"].as_str().unwrap_or_default().to_owned();
            if description.chars().count() > 140 {
                return Err((
                    422,
                    "description is too long (maximum is 140 characters)".into(),
                ));
            }
            let status = Status {
                sha: (*sha).to_owned(),
                state: state_text,
                context: body["context"].as_str().unwrap_or("default").to_owned(),
                description,
            };
            let id = state.next_id();
            let json = state.status_json(&status, id);
            state.statuses.push(status);
            Ok((201, json))
        }
        ("GET", ["commits", sha, "statuses"]) => {
            let statuses = state.statuses.iter().rev().filter(|s| s.sha == *sha);
            Ok((
                200,
                Value::Array(
                    statuses
                        .enumerate()
                        .map(|(i, s)| state.status_json(s, i as u64 + 1))
                        .collect(),
                ),
            ))
        }
        ("GET", ["commits", sha, "pulls"]) => {
            // The pull requests a commit is associated with: the one it merged, and those whose
            // commits include it.
            let mut found = Vec::new();
            for pull in &state.pulls {
                let contains = state
                    .pull_commits(pull)
                    .map_err(|e| (500, e))?
                    .iter()
                    .any(|c| c["sha"] == *sha);
                let rebased = pull.rebased.iter().any(|c| c == sha);
                if pull.merge_commit_sha.as_deref() == Some(*sha) || contains || rebased {
                    found.push(state.pull_json(pull));
                }
            }
            Ok((200, Value::Array(found)))
        }
        _ => Err((404, "Not Found".to_owned())),
    }
}

fn text(body: &Value, field: &str) -> Result<String, (u16, String)> {
    body[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| (422, format!("Invalid request: `{field}` wasn't supplied.")))
}

fn list_pulls(state: &State, query: &HashMap<String, String>) -> Value {
    let wanted = query.get("state").map_or("open", String::as_str);
    let head = query
        .get("head")
        .map(|h| h.split_once(':').map_or(h.as_str(), |(_, branch)| branch));
    let pulls = state
        .pulls
        .iter()
        .filter(|p| (wanted == "all" || p.state == wanted) && head.is_none_or(|h| p.head == h));
    Value::Array(pulls.map(|p| state.pull_json(p)).collect())
}

fn create_pull(state: &mut State, user: &str, body: &Value) -> Answer {
    let (title, head, base) = (
        text(body, "title")?,
        text(body, "head")?,
        text(body, "base")?,
    );
    let invalid = |field: &str| {
        (
            422,
            format!(
                "Validation Failed: {{\"resource\":\"PullRequest\",\"field\":\"{field}\",\"code\":\"invalid\"}}"
            ),
        )
    };
    if state.branch_head(&head).is_none() {
        return Err(invalid("head"));
    }
    if state.branch_head(&base).is_none() {
        return Err(invalid("base"));
    }
    if state
        .pulls
        .iter()
        .any(|p| p.head == head && p.state == "open")
    {
        let owner = state
            .repository
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        return Err((
            422,
            format!("Validation Failed: A pull request already exists for {owner}:{head}."),
        ));
    }
    let number = state.next_number();
    let pull = Pull {
        number,
        title,
        body: body["body"].as_str().unwrap_or_default().to_owned(),
        head,
        base,
        state: "open".into(),
        merged: false,
        merge_commit_sha: None,
        head_sha: None,
        base_sha: None,
        rebased: vec![],
        user: user.to_owned(),
        labels: vec![],
    };
    let json = state.pull_json(&pull);
    state.pulls.push(pull);
    state.publish_pull_refs();
    Ok((201, json))
}

fn update_pull(state: &mut State, number: u64, body: &Value) -> Answer {
    let pull = state
        .pull_mut(number)
        .ok_or((404, "Not Found".to_owned()))?;
    if let Some(title) = body["title"].as_str() {
        pull.title = title.to_owned();
    }
    if let Some(text) = body["body"].as_str() {
        if text.chars().count() > 65_536 {
            return Err((
                422,
                "Validation Failed: body is too long (maximum is 65536 characters)".into(),
            ));
        }
        pull.body = text.to_owned();
    }
    if let Some(wanted) = body["state"].as_str() {
        if wanted == "closed" && pull.state == "open" {
            pull.head_sha = None;
        }
        pull.state = wanted.to_owned();
    }
    let pull = pull.clone();
    Ok((200, state.pull_json(&pull)))
}

fn page(
    code: u16,
    items: Vec<Value>,
    query: &HashMap<String, String>,
    path: &str,
) -> Response<Body> {
    let per_page = query
        .get("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = query
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let total = items.len();
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let link = (page * per_page < total).then(|| {
        let mut next: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| k.as_str() != "page")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        next.push(("page".into(), (page + 1).to_string()));
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(next)
            .finish();
        format!("<{path}?{query}>; rel=\"next\"")
    });
    json_response(code, &Value::Array(slice), link)
}

pub(crate) fn json_response(code: u16, body: &Value, link: Option<String>) -> Response<Body> {
    let text = body.to_string();
    let mut response = Response::new(Body::from(text.clone()));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert("x-ratelimit-limit", HeaderValue::from_static("5000"));
    headers.insert("x-ratelimit-remaining", HeaderValue::from_static("4999"));
    if let Some(link) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LINK, link);
    }
    if (200..300).contains(&code) {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut hasher);
        if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{:016x}\"", hasher.finish())) {
            headers.insert(header::ETAG, etag);
        }
    }
    response
}

fn fault_response(kind: &FaultKind) -> Response<Body> {
    let (code, message, headers): (u16, &str, Vec<(&str, String)>) = match kind {
        FaultKind::RateLimit { reset_in } | FaultKind::RateLimitAs429 { reset_in } => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            (
                if matches!(kind, FaultKind::RateLimit { .. }) {
                    403
                } else {
                    429
                },
                "API rate limit exceeded for user ID 1.",
                vec![
                    ("x-ratelimit-remaining", "0".to_owned()),
                    ("x-ratelimit-reset", (now + reset_in).to_string()),
                ],
            )
        }
        FaultKind::SecondaryRateLimitWithoutHeader => (
            403,
            "You have exceeded a secondary rate limit. Please wait at least a minute before you try again.",
            vec![],
        ),
        FaultKind::SecondaryRateLimit { retry_after } => (
            403,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            vec![("retry-after", retry_after.to_string())],
        ),
        FaultKind::Unavailable { retry_after } => (
            503,
            "Service Unavailable",
            vec![("retry-after", retry_after.to_string())],
        ),
        FaultKind::TooManyRequests { retry_after } => (
            429,
            "Too many requests",
            vec![("retry-after", retry_after.to_string())],
        ),
        FaultKind::Status(code) => (*code, "Server Error", vec![]),
        FaultKind::Answer { status, body } => return json_response(*status, body, None),
        FaultKind::Drop | FaultKind::Delay(_) => (502, "Bad Gateway", vec![]),
    };
    let mut response = json_response(code, &error_body(code, message), None);
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
