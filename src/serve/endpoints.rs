//! The service's HTTP side: `/healthz` (the process), `/readyz` (the watches synced, GitHub
//! reached, and the last fetch of the base branch done), `/metrics`, and the two webhooks. A
//! webhook's body must be JSON (415 otherwise, saying what to set) of at most 2 MiB (413,
//! axum's default limit). A GitHub delivery is authenticated before its body is read as
//! anything; an Alertmanager notification needs the bearer token when one is configured. A
//! full queue answers 503, so the sender retries later.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{Job, Shared, alerts, replays, webhook};

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/webhooks/github", post(github_delivery))
        .route("/webhooks/alertmanager", post(alertmanager))
        .with_state(shared)
}

async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    if shared.ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        let mut why = format!(
            "not ready after {}s: watches synced {}, GitHub reached {}",
            shared.started.elapsed().as_secs(),
            shared.synced.load(std::sync::atomic::Ordering::SeqCst),
            shared.reachable.load(std::sync::atomic::Ordering::SeqCst)
        );
        if let Some(stale) = shared.stale_reason() {
            why.push_str(&format!(", the clone is stale: {stale}"));
        }
        (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.encode(),
    )
        .into_response()
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A body's content type must be JSON (`application/json`, any parameters); anything else is
/// answered 415 with `hint`, what to set where the sender is configured.
fn not_json(headers: &HeaderMap, hint: &str) -> Option<Response> {
    let given = header_text(headers, "content-type").unwrap_or("");
    let essence = given.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return None;
    }
    let given = if given.is_empty() { "none" } else { given };
    let why = format!("the content type is {given}, not application/json: {hint}");
    Some((StatusCode::UNSUPPORTED_MEDIA_TYPE, why).into_response())
}

async fn github_delivery(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let refuse = |why: String| {
        shared.metrics.delivery("github", "refused");
        (StatusCode::UNAUTHORIZED, why).into_response()
    };
    if let Some(answer) = not_json(
        &headers,
        "set the webhook's Content type to application/json (the repository's Settings → Webhooks)",
    ) {
        shared.metrics.delivery("github", "invalid");
        return answer;
    }
    let Some(secret) = &shared.github_secret else {
        return refuse("no webhook secret is configured (serve.githubWebhookSecret)".into());
    };
    let signature = header_text(&headers, "x-hub-signature-256");
    if let Err(why) = webhook::verify(secret, &body, signature) {
        return refuse(why.to_string());
    }
    if let Some(answer) = forwarded(&shared, "/webhooks/github", &headers, &body).await {
        shared.metrics.delivery("github", "forwarded");
        return answer;
    }
    let Some(delivery) = header_text(&headers, "x-github-delivery").filter(|d| !d.is_empty())
    else {
        return refuse(webhook::Refused::NoDelivery.to_string());
    };
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    match shared.replays.admit(delivery, now).await {
        Ok(()) => {}
        Err(replayed @ replays::NotAdmitted::Replayed(_)) => return refuse(replayed.to_string()),
        Err(unavailable) => {
            shared.metrics.delivery("github", "busy");
            tracing::error!(error = %unavailable, "delivery not admitted");
            return (StatusCode::SERVICE_UNAVAILABLE, unavailable.to_string()).into_response();
        }
    }
    let event = header_text(&headers, "x-github-event").unwrap_or("");
    match webhook::job(event, &body, &shared.base_branch) {
        Err(why) => {
            shared.metrics.delivery("github", "invalid");
            (StatusCode::BAD_REQUEST, why).into_response()
        }
        Ok(None) => {
            shared.metrics.delivery("github", "ignored");
            (StatusCode::ACCEPTED, "nothing to do").into_response()
        }
        Ok(Some(job)) => {
            if shared.push(Job::GitHub(job)) {
                shared.metrics.delivery("github", "accepted");
                (StatusCode::ACCEPTED, "queued").into_response()
            } else {
                shared.metrics.delivery("github", "busy");
                (StatusCode::SERVICE_UNAVAILABLE, "the queue is full").into_response()
            }
        }
    }
}

/// The header a replica sets on a delivery it forwards, so that it is never forwarded twice.
const FORWARDED: &str = "x-remediator-forwarded";

/// On a follower, the leader's answer to the same delivery; `None` when this replica leads,
/// the delivery was forwarded already, or the leader cannot be reached (the delivery is then
/// queued here, and worked once this replica leads: none is lost).
async fn forwarded(
    shared: &Shared,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Response> {
    if headers.contains_key(FORWARDED) {
        return None;
    }
    let address = shared.forward_to()?;
    let mut request = axum::http::Request::post(format!("http://{address}{path}"));
    for name in [
        "x-hub-signature-256",
        "x-github-delivery",
        "x-github-event",
        "authorization",
        "content-type",
    ] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    let request = request
        .header(FORWARDED, "1")
        .body(http_body_util::Full::new(body.clone()))
        .ok()?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), client.request(request))
        .await
        .ok()?
        .ok()?;
    let status = answer.status();
    (!status.is_server_error()).then(|| (status, "forwarded to the leader").into_response())
}

/// Whether the request carries the token, as Alertmanager's `http_config` sends it: a bearer
/// token, or basic auth whose password is the token.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = header_text(headers, "authorization") else {
        return false;
    };
    let given = if let Some(bearer) = value.strip_prefix("Bearer ") {
        bearer.trim().to_owned()
    } else if let Some(basic) = value.strip_prefix("Basic ") {
        match decode_basic(basic.trim()) {
            Some(pair) => pair
                .split_once(':')
                .map(|(_, p)| p.to_owned())
                .unwrap_or_default(),
            None => return false,
        }
    } else {
        return false;
    };
    same(given.as_bytes(), token.as_bytes())
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn decode_basic(text: &str) -> Option<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.bytes().filter(|b| *b != b'=') {
        let value = ALPHABET.iter().position(|a| *a == byte)? as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn alertmanager(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(token) = &shared.alertmanager_token
        && !authorized(&headers, token)
    {
        shared.metrics.delivery("alertmanager", "refused");
        return (StatusCode::UNAUTHORIZED, "a bearer token is required").into_response();
    }
    if let Some(answer) = not_json(
        &headers,
        "Alertmanager's webhook_configs send JSON; is this Alertmanager?",
    ) {
        shared.metrics.delivery("alertmanager", "invalid");
        return answer;
    }
    if let Some(answer) = forwarded(&shared, "/webhooks/alertmanager", &headers, &body).await {
        shared.metrics.delivery("alertmanager", "forwarded");
        return answer;
    }
    let payload = match alerts::parse(&body) {
        Ok(payload) => payload,
        Err(why) => {
            shared.metrics.delivery("alertmanager", "invalid");
            return (StatusCode::BAD_REQUEST, why).into_response();
        }
    };
    let received = {
        let mut episodes = shared.episodes.lock().await;
        let received = episodes.receive(payload);
        shared.metrics.alerts.set(episodes.len() as i64);
        received
    };
    if received.started.is_empty() && received.resolved.is_empty() {
        shared.metrics.delivery("alertmanager", "ignored");
        return (StatusCode::OK, "nothing new").into_response();
    }
    if shared.detect() {
        shared.metrics.delivery("alertmanager", "accepted");
        (StatusCode::OK, "queued").into_response()
    } else {
        shared.metrics.delivery("alertmanager", "busy");
        (StatusCode::SERVICE_UNAVAILABLE, "the queue is full").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_is_not_json_is_answered_415_with_what_to_set() {
        let mut headers = HeaderMap::new();
        let refused = not_json(&headers, "set it to JSON").unwrap();
        assert_eq!(refused.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        headers.insert(
            "content-type",
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        assert_eq!(
            not_json(&headers, "set it to JSON").unwrap().status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        headers.insert(
            "content-type",
            "Application/JSON; charset=utf-8".parse().unwrap(),
        );
        assert!(not_json(&headers, "set it to JSON").is_none());
    }

    #[test]
    fn the_token_comes_as_a_bearer_or_as_basic_auth() {
        let mut headers = HeaderMap::new();
        assert!(!authorized(&headers, "t0k"));
        headers.insert("authorization", "Bearer t0k".parse().unwrap());
        assert!(authorized(&headers, "t0k"));
        headers.insert("authorization", "Bearer other".parse().unwrap());
        assert!(!authorized(&headers, "t0k"));
        // alertmanager:t0k
        headers.insert(
            "authorization",
            "Basic YWxlcnRtYW5hZ2VyOnQwaw==".parse().unwrap(),
        );
        assert!(authorized(&headers, "t0k"));
        assert_eq!(
            decode_basic("YWxlcnRtYW5hZ2VyOnQwaw==").unwrap(),
            "alertmanager:t0k"
        );
    }
}
