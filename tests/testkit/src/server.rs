//! The HTTP side: an accept loop on 127.0.0.1 serving HTTP/1.1 connections with an axum router,
//! wrapped so injected faults can delay, fail or drop a request before it reaches the router, and
//! every request lands in the log.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use axum::routing::get;
use futures::StreamExt;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot};
use tower::ServiceExt;

use crate::api::{self, Reply, WatchPlan};
use crate::faults::{FaultKind, Faults, LoggedRequest};
use crate::status::ApiError;
use crate::store::Store;

/// State shared by every connection.
pub struct Shared {
    /// The objects.
    pub store: Mutex<Store>,
    /// Fault rules and the request log.
    pub faults: Faults,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

/// A connection dropped on purpose.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for Dropped {}

/// Accepts connections until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let router = Router::new()
        .route("/version", get(version))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .fallback(resource)
        .with_state(shared.clone());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = &mut shutdown => return,
        };
        let _ = stream.set_nodelay(true);
        let (router, shared) = (router.clone(), shared.clone());
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let (router, shared) = (router.clone(), shared.clone());
                    async move { answer(router, shared, request.map(Body::new)).await }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    router: Router,
    shared: Arc<Shared>,
    request: Request<Body>,
) -> Result<Response<Body>, Dropped> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let fault = shared.faults.take(&method, &path);
    let user_agent = request
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let index = shared.faults.record(LoggedRequest {
        method,
        path,
        query: request.uri().query().unwrap_or("").to_string(),
        status: None,
        fault: fault.clone(),
        user_agent,
    });
    let response = match fault {
        Some(FaultKind::Drop) => return Err(Dropped),
        Some(FaultKind::Status(code)) => error_response(&ApiError::injected(code, None)),
        Some(FaultKind::Unavailable { retry_after }) => {
            error_response(&ApiError::injected(503, Some(retry_after)))
        }
        Some(FaultKind::Answer { status, body }) => json_response(status, &body),
        Some(
            FaultKind::TooManyRequests { retry_after }
            | FaultKind::SecondaryRateLimit { retry_after }
            | FaultKind::RateLimit {
                reset_in: retry_after,
            }
            | FaultKind::RateLimitAs429 {
                reset_in: retry_after,
            },
        ) => error_response(&ApiError::injected(429, Some(retry_after))),
        Some(FaultKind::SecondaryRateLimitWithoutHeader) => {
            error_response(&ApiError::injected(429, Some(60)))
        }
        Some(FaultKind::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            router
                .oneshot(request)
                .await
                .unwrap_or_else(|e: Infallible| match e {})
        }
        None => router
            .oneshot(request)
            .await
            .unwrap_or_else(|e: Infallible| match e {}),
    };
    shared.faults.answered(index, response.status().as_u16());
    Ok(response)
}

async fn version() -> Response<Body> {
    json_response(
        200,
        &json!({"major": "1", "minor": "36", "emulationMajor": "1", "emulationMinor": "36",
            "gitVersion": "v1.36.2-testkit", "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean", "buildDate": "2026-11-01T00:00:00Z", "goVersion": "go1.25",
            "compiler": "gc", "platform": "linux/amd64"}),
    )
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.code, &error.body());
    if let Some(seconds) = error.retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

async fn resource(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let header_text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let content_type = header_text(header::CONTENT_TYPE);
    let content_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let query: HashMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let request = api::Request {
        method: method.as_str(),
        path: uri.path(),
        query,
        content_type,
        user_agent: header_text(header::USER_AGENT),
        body: &body,
    };
    let reply = {
        let mut store = shared.store.lock().expect("store lock");
        if method == Method::GET
            && let Some(document) = api::discovery(&store, uri.path(), &shared.address)
        {
            return json_response(200, &document);
        }
        api::handle(&mut store, &request)
    };
    match reply {
        Reply::Json(code, body) => json_response(code, &body),
        Reply::Error(error) => error_response(&error),
        Reply::Watch(plan) => watch_response(plan),
        Reply::Text(text) => {
            let mut response = Response::new(Body::from(text));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            response
        }
        Reply::PageNotFound => {
            let mut response = Response::new(Body::from("404 page not found\n"));
            *response.status_mut() = StatusCode::NOT_FOUND;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        }
    }
}

fn watch_response(plan: WatchPlan) -> Response<Body> {
    let WatchPlan {
        initial,
        feed,
        filter,
        timeout,
    } = plan;
    let lines = initial.len();
    let initial = futures::stream::iter(initial.into_iter().map(Ok::<_, Infallible>));
    let live = futures::stream::unfold((feed, filter), |(mut feed, filter)| async move {
        loop {
            match feed.recv().await {
                Ok(event) => {
                    if let Some(line) = filter.line(&event) {
                        return Some((Ok::<_, Infallible>(line), (feed, filter)));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_))
                | Err(broadcast::error::RecvError::Closed) => {
                    return None;
                }
            }
        }
    });
    let stream = initial.chain(live).map(|line| line.map(Bytes::from));
    let stream: futures::stream::BoxStream<'static, Result<Bytes, Infallible>> = match timeout {
        Some(timeout) if timeout.is_zero() => stream.take(lines).boxed(),
        Some(timeout) => {
            let deadline = tokio::time::sleep(timeout);
            stream.take_until(deadline).boxed()
        }
        None => stream.boxed(),
    };
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
