//! A fake OpenAI-compatible chat endpoint on 127.0.0.1: `POST /v1/chat/completions` answers a
//! chat completion whose message is the configured text, or waits, or fails with an HTTP status
//! and an OpenAI-style error body, and records every request body it was sent.
//!
//! I/O: a listening socket ([`Background`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::background::Background;

/// How the fake answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// A completion with this message.
    Answer(String),
    /// This long a wait, then the answer.
    Slow(Duration, String),
    /// This status and an error body with this message.
    Fail(u16, String),
}

struct Data {
    behaviour: Behaviour,
    sent: Vec<Value>,
}

/// A running fake endpoint. Stops when dropped.
pub struct FakeLlm {
    data: Arc<Mutex<Data>>,
    url: String,
    _server: Background,
}

impl FakeLlm {
    /// Starts one that behaves as `behaviour`.
    pub fn start(behaviour: Behaviour) -> FakeLlm {
        let data = Arc::new(Mutex::new(Data {
            behaviour,
            sent: vec![],
        }));
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(data.clone());
        let server = Background::start("llm", app);
        FakeLlm {
            data,
            url: format!("{}/v1", server.url()),
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT/v1`, the base URL a client is configured with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request body sent, in order.
    pub fn sent(&self) -> Vec<Value> {
        self.data.lock().expect("fake LLM data").sent.clone()
    }
}

async fn complete(State(data): State<Arc<Mutex<Data>>>, body: axum::body::Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let behaviour = {
        let mut data = data.lock().expect("fake LLM data");
        data.sent.push(request.clone());
        data.behaviour.clone()
    };
    let text = match behaviour {
        Behaviour::Answer(text) => text,
        Behaviour::Slow(wait, text) => {
            tokio::time::sleep(wait).await;
            text
        }
        Behaviour::Fail(status, message) => {
            let status = axum::http::StatusCode::from_u16(status)
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
            let body = json!({"error": {"message": message, "type": "server_error"}});
            return (
                status,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response();
        }
    };
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0,
        "model": request["model"],
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": text}}],
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}
