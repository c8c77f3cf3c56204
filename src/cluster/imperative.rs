//! Imperative action records (`remediator.dev/v1alpha1` `Remediation`) carried out on merge:
//! cordon, uncordon or drain a node (evicting its pods, so disruption budgets hold), delete a
//! pod, expand a claim. A record's `spec.undo` is what its revert carries out. Each returns one
//! line per thing it did. I/O: the objects acted on.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::retry::{RetryPolicy, with_retry};
use super::{Error, Result};

/// The API version of action records.
pub const RECORD_API_VERSION: &str = crate::remedy::RECORD_API_VERSION;

/// Whether an object is an action record rather than something to apply.
pub fn is_record(object: &Value) -> bool {
    object["apiVersion"] == RECORD_API_VERSION && object["kind"] == "Remediation"
}

fn failed(record: &str, message: impl Into<String>) -> Error {
    Error::Imperative {
        record: record.to_owned(),
        message: message.into(),
    }
}

/// Carries out a record's action, or its undo when `undo` is set.
pub async fn execute(
    client: &kube::Client,
    record: &Value,
    undo: bool,
    retry: &RetryPolicy,
) -> Result<Vec<String>> {
    let name = record["metadata"]["name"]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    let spec = &record["spec"];
    let action = if undo {
        &spec["undo"]["action"]
    } else {
        &spec["action"]
    };
    let action = action.as_str().unwrap_or("none");
    let target = &spec["target"];
    let target_name = target["name"].as_str().unwrap_or_default();
    let namespace = target["namespace"].as_str().unwrap_or("default");
    let options = &spec["options"];
    let api_error = |verb: &'static str, what: String| {
        move |source| Error::Api {
            object: what.clone(),
            verb,
            source,
        }
    };
    let patch = PatchParams::default();
    match action {
        "cordon-node" | "uncordon-node" | "drain-node" => {
            let nodes: Api<Node> = Api::all(client.clone());
            let unschedulable = action != "uncordon-node";
            let body = Patch::Merge(json!({"spec": {"unschedulable": unschedulable}}));
            with_retry(retry, || nodes.patch(target_name, &patch, &body))
                .await
                .map_err(api_error("cordon", format!("Node/{target_name}")))?;
            let verb = if unschedulable {
                "cordoned"
            } else {
                "uncordoned"
            };
            let mut done = vec![format!("{verb} Node/{target_name}")];
            if action == "drain-node" {
                done.extend(drain(client, &name, target_name, options, retry).await?);
            }
            Ok(done)
        }
        "delete-pod" => {
            let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
            let grace = options["gracePeriodSeconds"].as_u64().map(|g| g as u32);
            let params = DeleteParams {
                grace_period_seconds: grace,
                ..DeleteParams::default()
            };
            delete_pod(&pods, namespace, target_name, &params, retry).await?;
            Ok(vec![format!("deleted Pod/{namespace}/{target_name}")])
        }
        "expand-pvc" => {
            let storage = options["storage"]
                .as_str()
                .ok_or_else(|| failed(&name, "expand-pvc needs spec.options.storage"))?;
            let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
            let body =
                Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": storage}}}}));
            with_retry(retry, || claims.patch(target_name, &patch, &body))
                .await
                .map_err(api_error(
                    "expand",
                    format!("PersistentVolumeClaim/{namespace}/{target_name}"),
                ))?;
            Ok(vec![format!(
                "expanded PersistentVolumeClaim/{namespace}/{target_name} to {storage}"
            )])
        }
        "none" => {
            let note = spec["undo"]["note"].as_str().unwrap_or("nothing to undo");
            Ok(vec![format!("nothing to do: {note}")])
        }
        other => Err(failed(&name, format!("unknown action `{other}`"))),
    }
}

/// `options.timeout` as a Go duration, the form Kubernetes writes (`90s`, `10m`, `1h30m`,
/// `1.5h`); ten minutes when not given. Anything else is an error naming the field and value.
fn timeout(record: &str, options: &Value) -> Result<Duration> {
    match &options["timeout"] {
        Value::Null => Ok(Duration::from_secs(600)),
        Value::String(text) => go_duration(text).ok_or_else(|| {
            failed(
                record,
                format!(
                    "spec.options.timeout: `{text}` is not a duration; write it as 90s, 10m or 1h30m"
                ),
            )
        }),
        other => Err(failed(
            record,
            format!("spec.options.timeout: {other} is not a duration; write it as 90s, 10m or 1h30m"),
        )),
    }
}

/// A Go duration (`time.ParseDuration`): a sequence of decimal numbers, each with a unit (`ns`,
/// `us`, `µs`, `ms`, `s`, `m`, `h`), or `0`. Negative durations are no timeout: `None`.
pub fn go_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return None;
    }
    let mut seconds = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        seconds += value * scale;
        rest = next;
    }
    Duration::try_from_secs_f64(seconds).ok()
}

/// Evicts a pod through the Eviction API, so its PodDisruptionBudget is respected: while the
/// budget allows no disruption (429) it tries again, until `timeout`.
async fn evict(
    api: &Api<Pod>,
    namespace: &str,
    name: &str,
    timeout: Duration,
    retry: &RetryPolicy,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let params = EvictParams::default();
    loop {
        match api.evict(name, &params).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
            Err(kube::Error::Api(status))
                if status.code == 429 && tokio::time::Instant::now() < deadline =>
            {
                let wait = Duration::from_secs(5).min(deadline - tokio::time::Instant::now());
                tokio::time::sleep(wait.max(Duration::from_millis(100))).await;
            }
            Err(error)
                if super::retry::retriable(&error).is_some()
                    && retry.attempts > 1
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(retry.delay(2, None)).await;
            }
            Err(source) => {
                return Err(Error::Api {
                    object: format!("Pod/{namespace}/{name}"),
                    verb: "evict",
                    source,
                });
            }
        }
    }
}

/// Drains a cordoned node as `kubectl drain` does: lists the node's pods (a `spec.nodeName`
/// field selector), leaves mirror pods, leaves DaemonSet pods when `ignoreDaemonSets` (the
/// default) and refuses otherwise, refuses pods with local storage (`emptyDir`) unless
/// `deleteEmptyDirData`, then evicts the rest (so disruption budgets hold) and waits until
/// each is gone, up to the record's timeout. Every refusal is found before any pod is evicted.
async fn drain(
    client: &kube::Client,
    record: &str,
    node: &str,
    options: &Value,
    retry: &RetryPolicy,
) -> Result<Vec<String>> {
    let timeout = timeout(record, options)?;
    let skip_daemons = flag(record, options, "ignoreDaemonSets", true)?;
    let delete_local = flag(record, options, "deleteEmptyDirData", false)?;
    let pods: Api<Pod> = Api::all(client.clone());
    let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let list = with_retry(retry, || pods.list(&params))
        .await
        .map_err(|source| Error::Api {
            object: format!("pods on Node/{node}"),
            verb: "list",
            source,
        })?;
    let mut done = Vec::new();
    let mut refused = Vec::new();
    let mut evict_these = Vec::new();
    for pod in &list.items {
        let meta = &pod.metadata;
        let (Some(name), Some(namespace)) = (&meta.name, &meta.namespace) else {
            continue;
        };
        let object = format!("Pod/{namespace}/{name}");
        let daemon = meta
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "DaemonSet");
        let mirror = meta
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
        let local = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .is_some_and(|v| v.iter().any(|v| v.empty_dir.is_some()));
        if mirror {
            done.push(format!("left {object} (mirror pod)"));
        } else if daemon && skip_daemons {
            done.push(format!("left {object} (DaemonSet)"));
        } else if daemon {
            refused.push(format!("{object} is a DaemonSet's (set ignoreDaemonSets)"));
        } else if local && !delete_local {
            refused.push(format!(
                "{object} has local storage (emptyDir), lost when evicted (set deleteEmptyDirData)"
            ));
        } else {
            evict_these.push((namespace.clone(), name.clone(), meta.uid.clone()));
        }
    }
    if !refused.is_empty() {
        return Err(failed(
            record,
            format!("Node/{node} cannot be drained: {}", refused.join("; ")),
        ));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    for (namespace, name, _) in &evict_these {
        let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        evict(&api, namespace, name, left, retry).await?;
        done.push(format!("evicted Pod/{namespace}/{name}"));
    }
    for (namespace, name, uid) in &evict_these {
        let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
        wait_gone(&api, namespace, name, uid.as_deref(), deadline, retry).await?;
    }
    Ok(done)
}

/// A boolean option of the record, `default` when not given; anything else is an error.
fn flag(record: &str, options: &Value, key: &str, default: bool) -> Result<bool> {
    match &options[key] {
        Value::Null => Ok(default),
        Value::Bool(value) => Ok(*value),
        other => Err(failed(
            record,
            format!("spec.options.{key}: {other} is not true or false"),
        )),
    }
}

/// Whether the pod `uid` named `name` is gone: not found, or replaced by one with another uid.
async fn gone(
    api: &Api<Pod>,
    namespace: &str,
    name: &str,
    uid: Option<&str>,
    retry: &RetryPolicy,
) -> Result<bool> {
    let found = with_retry(retry, || api.get_opt(name))
        .await
        .map_err(|source| Error::Api {
            object: format!("Pod/{namespace}/{name}"),
            verb: "get",
            source,
        })?;
    Ok(match found {
        None => true,
        Some(pod) => uid.is_some() && pod.metadata.uid.as_deref() != uid,
    })
}

/// Waits until an evicted pod has terminated, as `kubectl drain` does, until `deadline`.
async fn wait_gone(
    api: &Api<Pod>,
    namespace: &str,
    name: &str,
    uid: Option<&str>,
    deadline: tokio::time::Instant,
    retry: &RetryPolicy,
) -> Result<()> {
    while !gone(api, namespace, name, uid, retry).await? {
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Imperative {
                record: format!("Pod/{namespace}/{name}"),
                message: "evicted, but still terminating when the drain's timeout ran out".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// Deletes a pod once. A call whose answer was lost is not sent again blindly: the pod is
/// looked up first, and a pod that is gone (or replaced) counts as deleted.
async fn delete_pod(
    api: &Api<Pod>,
    namespace: &str,
    name: &str,
    params: &DeleteParams,
    retry: &RetryPolicy,
) -> Result<()> {
    let object = format!("Pod/{namespace}/{name}");
    let uid = with_retry(retry, || api.get_opt(name))
        .await
        .map_err(|source| Error::Api {
            object: object.clone(),
            verb: "get",
            source,
        })?
        .and_then(|pod| pod.metadata.uid);
    let mut attempt = 1;
    loop {
        match api.delete(name, params).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
            Err(error) if super::retry::retriable(&error).is_some() && attempt < retry.attempts => {
                attempt += 1;
                tokio::time::sleep(retry.delay(attempt, None)).await;
                if gone(api, namespace, name, uid.as_deref(), retry).await? {
                    return Ok(());
                }
            }
            Err(source) => {
                return Err(Error::Api {
                    object,
                    verb: "delete",
                    source,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_read_as_go_writes_them() {
        let cases = [
            ("0", 0.0),
            ("90s", 90.0),
            ("10m", 600.0),
            ("1h30m", 5400.0),
            ("1.5h", 5400.0),
            ("300ms", 0.3),
            ("2h45m30.5s", 9930.5),
            ("+5s", 5.0),
        ];
        for (text, seconds) in cases {
            let got = go_duration(text).unwrap_or_else(|| panic!("{text} did not parse"));
            assert!(
                (got.as_secs_f64() - seconds).abs() < 1e-9,
                "{text}: {got:?}"
            );
        }
        for bad in [
            "",
            "10",
            "m",
            "1.2.3s",
            "5 s",
            "ten minutes",
            "1d",
            "-5s",
            "1h-5m",
        ] {
            assert_eq!(go_duration(bad), None, "{bad:?} parsed");
        }
    }
}
