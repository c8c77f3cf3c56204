//! A fake Prometheus HTTP API on 127.0.0.1: `/api/v1/query_range` and `/api/v1/query` answer
//! in the documented format (`status`, `data.resultType` `matrix` or `vector`, `warnings`;
//! `errorType` and `error` on failure) from series the test adds. It does not evaluate PromQL:
//! a query selects the series whose metric name it mentions and whose labels match its
//! `label="value"` matchers, and a test adds a `rate()`'s result under the counter's name. A
//! range query samples each series at every step as Prometheus does (the latest point at or
//! before the step, looking back five minutes); an instant query takes the latest point at or
//! before its time (any age for `last_over_time`; the highest point at or before it for
//! `max_over_time`). Every query is recorded.
//!
//! I/O: a listening socket ([`Background`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::background::Background;

/// One series the fake holds.
#[derive(Debug, Clone)]
pub struct FakeSeries {
    /// The metric name (`container_memory_working_set_bytes`).
    pub metric: String,
    /// Its labels, besides the name.
    pub labels: BTreeMap<String, String>,
    /// `(unix seconds, value)`, oldest first.
    pub points: Vec<(f64, f64)>,
}

/// One query the fake was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct SentQuery {
    /// `query_range` or `query`.
    pub endpoint: String,
    /// The PromQL.
    pub query: String,
    /// A range query's start, end and step; an instant query's time as `start`.
    pub start: f64,
    /// End of a range.
    pub end: f64,
    /// Step of a range, seconds.
    pub step: f64,
}

#[derive(Default)]
struct Data {
    series: Vec<FakeSeries>,
    sent: Vec<SentQuery>,
    failure: Option<(u16, String, String)>,
    /// `warnings` every successful answer carries.
    warnings: Vec<String>,
}

/// A running fake Prometheus. Stops when dropped.
pub struct FakePrometheus {
    data: Arc<Mutex<Data>>,
    server: Background,
}

impl FakePrometheus {
    /// Starts one with no series.
    pub fn start() -> FakePrometheus {
        let data = Arc::new(Mutex::new(Data::default()));
        let app = axum::Router::new()
            .route("/api/v1/query_range", get(range))
            .route("/api/v1/query", get(instant))
            .with_state(data.clone());
        FakePrometheus {
            data,
            server: Background::start("prometheus", app),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// Adds a series of `metric` with `labels`.
    pub fn add(&self, metric: &str, labels: &[(&str, &str)], points: Vec<(f64, f64)>) {
        self.lock().series.push(FakeSeries {
            metric: metric.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            points,
        });
    }

    /// From now on every query fails with HTTP `status`, `errorType` and `error`.
    pub fn fail(&self, status: u16, error_type: &str, error: &str) {
        self.lock().failure = Some((status, error_type.to_owned(), error.to_owned()));
    }

    /// From now on every successful answer carries `warnings`, as Thanos or Mimir do when a
    /// store did not answer: the data is partial.
    pub fn warn(&self, warning: &str) {
        self.lock().warnings.push(warning.to_owned());
    }

    /// Drops every point before `t` (unix seconds), as a short retention would.
    pub fn keep_after(&self, t: f64) {
        for series in &mut self.lock().series {
            series.points.retain(|p| p.0 >= t);
        }
    }

    /// Drops the points between `from` and `to` (unix seconds) of every series of pod `pod`.
    pub fn cut(&self, pod: &str, from: f64, to: f64) {
        for series in &mut self.lock().series {
            if series.labels.get("pod").map(String::as_str) == Some(pod) {
                series.points.retain(|p| p.0 < from || p.0 > to);
            }
        }
    }

    /// Every query sent, in order.
    pub fn sent(&self) -> Vec<SentQuery> {
        self.lock().sent.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().expect("fake Prometheus data")
    }
}

type Shared = Arc<Mutex<Data>>;

/// The `label="value"` matchers of a query (`!=` and regex matchers are not checked).
fn matchers(query: &str) -> Vec<(String, String)> {
    let pattern = regex::Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"([^"]*)""#).expect("regex");
    pattern
        .captures_iter(query)
        .filter(|c| {
            let start = c.get(0).map_or(0, |m| m.start());
            !query[..start].ends_with('!') && !query[..start].ends_with('=')
        })
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .collect()
}

/// The series a query selects.
fn selected(data: &Data, query: &str) -> Vec<FakeSeries> {
    let wanted = matchers(query);
    data.series
        .iter()
        .filter(|s| {
            query.contains(&s.metric)
                && wanted
                    .iter()
                    .all(|(k, v)| s.labels.get(k).is_none_or(|have| have == v))
        })
        .cloned()
        .collect()
}

fn failure(data: &Data) -> Option<Response> {
    let (status, kind, error) = data.failure.clone()?;
    let status =
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_REQUEST);
    Some(answer(
        status,
        &json!({"status": "error", "errorType": kind, "error": error}),
    ))
}

fn params(raw: Option<String>) -> BTreeMap<String, String> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn answer(status: axum::http::StatusCode, body: &Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn number(params: &BTreeMap<String, String>, key: &str) -> Option<f64> {
    params.get(key)?.parse().ok()
}

fn labels_json(series: &FakeSeries) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("__name__".into(), json!(series.metric));
    for (k, v) in &series.labels {
        labels.insert(k.clone(), json!(v));
    }
    Value::Object(labels)
}

async fn range(State(data): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let params = params(raw);
    let mut data = data.lock().expect("fake Prometheus data");
    let query = params.get("query").cloned().unwrap_or_default();
    let (Some(start), Some(end), Some(step)) = (
        number(&params, "start"),
        number(&params, "end"),
        number(&params, "step"),
    ) else {
        return answer(
            axum::http::StatusCode::BAD_REQUEST,
            &json!({"status": "error", "errorType": "bad_data", "error": "start, end and step are required"}),
        );
    };
    data.sent.push(SentQuery {
        endpoint: "query_range".into(),
        query: query.clone(),
        start,
        end,
        step,
    });
    if let Some(failed) = failure(&data) {
        return failed;
    }
    if (end - start) / step > 11_000.0 {
        return answer(
            axum::http::StatusCode::BAD_REQUEST,
            &json!({"status": "error", "errorType": "bad_data", "error": "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"}),
        );
    }
    let result: Vec<Value> = selected(&data, &query)
        .iter()
        .map(|s| {
            let mut values = Vec::new();
            let mut at = start;
            let mut i = 0;
            while at <= end {
                while i + 1 < s.points.len() && s.points[i + 1].0 <= at {
                    i += 1;
                }
                if let Some(p) = s.points.get(i).filter(|p| p.0 <= at && at - p.0 <= 300.0) {
                    values.push(json!([at, p.1.to_string()]));
                }
                at += step;
            }
            json!({"metric": labels_json(s), "values": values})
        })
        .filter(|s| s["values"].as_array().is_some_and(|v| !v.is_empty()))
        .collect();
    answer(
        axum::http::StatusCode::OK,
        &json!({"status": "success", "data": {"resultType": "matrix", "result": result},
            "warnings": data.warnings}),
    )
}

async fn instant(State(data): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let params = params(raw);
    let mut data = data.lock().expect("fake Prometheus data");
    let query = params.get("query").cloned().unwrap_or_default();
    let time = number(&params, "time").unwrap_or(f64::MAX);
    data.sent.push(SentQuery {
        endpoint: "query".into(),
        query: query.clone(),
        start: time,
        end: time,
        step: 0.0,
    });
    if let Some(failed) = failure(&data) {
        return failed;
    }
    let any_age = query.contains("last_over_time");
    let highest = query.contains("max_over_time");
    let result: Vec<Value> = selected(&data, &query)
        .iter()
        .filter_map(|s| {
            let mut before = s.points.iter().rev().filter(|p| p.0 <= time);
            let p = if highest {
                before.max_by(|a, b| a.1.total_cmp(&b.1))?
            } else {
                before.find(|p| any_age || time - p.0 <= 300.0)?
            };
            Some(json!({"metric": labels_json(s), "value": [time, p.1.to_string()]}))
        })
        .collect();
    answer(
        axum::http::StatusCode::OK,
        &json!({"status": "success", "data": {"resultType": "vector", "result": result},
            "warnings": data.warnings}),
    )
}
