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
                done.extend(drain(client, target_name, options, retry).await?);
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
            with_retry(retry, || pods.delete(target_name, &params))
                .await
                .map_err(api_error(
                    "delete",
                    format!("Pod/{namespace}/{target_name}"),
                ))?;
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

/// `options.timeout` (`10m`, `30s`, `1h`), ten minutes when not given or not understood.
fn timeout(options: &Value) -> Duration {
    let text = options["timeout"].as_str().unwrap_or("10m");
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let seconds = match (number.parse::<u64>(), unit) {
        (Ok(n), "s" | "") => n,
        (Ok(n), "m") => n * 60,
        (Ok(n), "h") => n * 3600,
        _ => 600,
    };
    Duration::from_secs(seconds)
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

/// Drains a cordoned node: evicts its pods, leaving DaemonSet and mirror pods.
async fn drain(
    client: &kube::Client,
    node: &str,
    options: &Value,
    retry: &RetryPolicy,
) -> Result<Vec<String>> {
    let pods: Api<Pod> = Api::all(client.clone());
    let params = ListParams::default();
    let list = with_retry(retry, || pods.list(&params))
        .await
        .map_err(|source| Error::Api {
            object: format!("pods on Node/{node}"),
            verb: "list",
            source,
        })?;
    let skip_daemons = options["ignoreDaemonSets"].as_bool().unwrap_or(true);
    let mut done = Vec::new();
    for pod in list.items {
        if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node) {
            continue;
        }
        let meta = &pod.metadata;
        let daemon = meta
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "DaemonSet");
        let mirror = meta
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
        let (Some(name), Some(namespace)) = (&meta.name, &meta.namespace) else {
            continue;
        };
        if mirror || (daemon && skip_daemons) {
            done.push(format!(
                "left Pod/{namespace}/{name} ({})",
                if mirror { "mirror pod" } else { "DaemonSet" }
            ));
            continue;
        }
        let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
        evict(&api, namespace, name, timeout(options), retry).await?;
        done.push(format!("evicted Pod/{namespace}/{name}"));
    }
    Ok(done)
}
