//! The fake GitHub's check runs: created and updated by a token that may write checks (an App's
//! installation, an Actions token), at most 50 annotations a request as the API requires, and
//! listed by commit, the latest of each name.

use std::collections::HashMap;

use axum::http::Method;
use serde_json::{Value, json};

use super::apps::{Apps, CheckRun, Grant};
use super::state::State;

type Answer = Result<(u16, Value), (u16, String)>;

/// `POST check-runs`, `PATCH check-runs/{id}`, `GET check-runs/{id}[/annotations]`.
pub(crate) fn check_runs(
    state: &mut State,
    grant: &Grant,
    method: &Method,
    rest: &[&str],
    body: &Value,
) -> Answer {
    let api = state.api_url();
    match (method.as_str(), rest) {
        ("POST", []) => {
            Apps::may(grant, "checks", "write")?;
            let (Some(name), Some(head_sha)) = (body["name"].as_str(), body["head_sha"].as_str())
            else {
                return Err((422, "name and head_sha are required".into()));
            };
            let id = state.next_id();
            let mut run = CheckRun {
                id,
                name: name.to_owned(),
                head_sha: head_sha.to_owned(),
                status: "queued".into(),
                conclusion: None,
                title: String::new(),
                summary: String::new(),
                annotations: vec![],
                app: grant.login.clone(),
                writes: 0,
            };
            apply(&mut run, body)?;
            let answer = run.json(&api);
            state.apps.check_runs.push(run);
            Ok((201, answer))
        }
        ("PATCH", [id]) => {
            Apps::may(grant, "checks", "write")?;
            let id: u64 = id.parse().map_err(|_| (404, "Not Found".to_owned()))?;
            let run = state
                .apps
                .check_runs
                .iter_mut()
                .find(|r| r.id == id)
                .ok_or((404, "Not Found".to_owned()))?;
            apply(run, body)?;
            Ok((200, run.json(&api)))
        }
        ("GET", [id, rest @ ..]) => {
            let id: u64 = id.parse().map_err(|_| (404, "Not Found".to_owned()))?;
            let run = state
                .apps
                .check_runs
                .iter()
                .find(|r| r.id == id)
                .ok_or((404, "Not Found".to_owned()))?;
            match rest {
                [] => Ok((200, run.json(&api))),
                ["annotations"] => Ok((200, Value::Array(run.annotations.clone()))),
                _ => Err((404, "Not Found".to_owned())),
            }
        }
        _ => Err((404, "Not Found".to_owned())),
    }
}

/// A create's or an update's fields, validated as GitHub does.
fn apply(run: &mut CheckRun, body: &Value) -> Result<(), (u16, String)> {
    let annotations = body["output"]["annotations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if annotations.len() > 50 {
        return Err((422, "Only 50 annotations are allowed per request".into()));
    }
    for a in &annotations {
        let complete = ["path", "annotation_level", "message"]
            .iter()
            .all(|f| a[*f].is_string())
            && a["start_line"].is_u64()
            && a["end_line"].is_u64();
        if !complete {
            return Err((422, format!("Invalid annotation: {a}")));
        }
        if !matches!(
            a["annotation_level"].as_str(),
            Some("notice" | "warning" | "failure")
        ) {
            return Err((
                422,
                "annotation_level is not notice, warning or failure".into(),
            ));
        }
    }
    if let Some(status) = body["status"].as_str() {
        run.status = status.to_owned();
    }
    if let Some(conclusion) = body["conclusion"].as_str() {
        run.conclusion = Some(conclusion.to_owned());
        run.status = "completed".into();
    }
    if run.status == "completed" && run.conclusion.is_none() {
        return Err((
            422,
            "conclusion is required when status is completed".into(),
        ));
    }
    if let Some(title) = body["output"]["title"].as_str() {
        run.title = title.to_owned();
    }
    if let Some(summary) = body["output"]["summary"].as_str() {
        if summary.chars().count() > 65_535 {
            return Err((
                422,
                "summary is too long (maximum is 65535 characters)".into(),
            ));
        }
        run.summary = summary.to_owned();
    }
    run.annotations.extend(annotations);
    run.writes += 1;
    Ok(())
}

/// `GET commits/{sha}/check-runs`: by `check_name`, the latest of each name unless
/// `filter=all`.
pub(crate) fn of_commit(
    state: &mut State,
    _grant: &Grant,
    sha: &str,
    query: &HashMap<String, String>,
) -> Answer {
    let api = state.api_url();
    let mut runs: Vec<&CheckRun> = state
        .apps
        .check_runs
        .iter()
        .filter(|r| r.head_sha == sha)
        .filter(|r| query.get("check_name").is_none_or(|n| *n == r.name))
        .collect();
    runs.reverse();
    if query.get("filter").map(String::as_str) != Some("all") {
        let mut seen = std::collections::BTreeSet::new();
        runs.retain(|r| seen.insert(r.name.clone()));
    }
    Ok((
        200,
        json!({
            "total_count": runs.len(),
            "check_runs": runs.iter().map(|r| r.json(&api)).collect::<Vec<_>>(),
        }),
    ))
}
