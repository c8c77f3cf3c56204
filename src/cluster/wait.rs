//! The health wait loop, after kube-runtime's `wait` and fluxcd/pkg `ssa.WaitForSet`: reads each
//! object every `interval` and judges it with the pure [`super::health`] rules until all are
//! healthy, one has failed, or the timeout passes. It fails fast on a Degraded object (a rollout
//! past its progress deadline, a failed Job) and on the new pods of a workload crash-looping or
//! failing to pull their image; pods of the old revision, still failing as they were, do not
//! count. I/O: the Kubernetes API, and sleeps.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;

use super::dryrun::live;
use super::health::{health, pod_health};
use super::retry::{RetryPolicy, with_retry};
use super::{Error, Resolver, Result, to_value};
use crate::model::{Health, HealthStatus, ObjectRef};

/// Options of a wait.
#[derive(Clone, Debug)]
pub struct WaitOptions {
    /// How long the objects get to become healthy.
    pub timeout: Duration,
    /// Time between two reads.
    pub interval: Duration,
    /// Stop at the first Degraded object or failing new pod instead of waiting out the timeout.
    pub fail_fast: bool,
    /// Retries of failed calls.
    pub retry: RetryPolicy,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            timeout: Duration::from_secs(300),
            interval: Duration::from_secs(2),
            fail_fast: true,
            retry: RetryPolicy::default(),
        }
    }
}

/// How a wait ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum WaitOutcome {
    /// Every object is healthy (or suspended on purpose).
    Healthy,
    /// An object failed and will not recover by waiting.
    Failed {
        /// The object.
        object: ObjectRef,
        /// What failed.
        message: String,
    },
    /// Time ran out with objects still not healthy.
    TimedOut,
}

/// The last health read of every object, and how the wait ended.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WaitReport {
    /// How it ended.
    pub outcome: WaitOutcome,
    /// Each object's last health.
    pub health: Vec<(ObjectRef, Health)>,
    /// How long it took.
    pub elapsed: Duration,
}

/// Waits for `objects`; see the module documentation. API failures that outlast the retries are
/// errors; an unhealthy object is an outcome.
pub async fn wait(
    client: &kube::Client,
    objects: &[ObjectRef],
    options: &WaitOptions,
) -> Result<WaitReport> {
    let resolver = Resolver::new(client).await?;
    let apis = objects
        .iter()
        .map(|o| resolver.api_for(client, o))
        .collect::<Result<Vec<_>>>()?;
    let start = Instant::now();
    loop {
        let mut report = Vec::with_capacity(objects.len());
        for (object, api) in objects.iter().zip(&apis) {
            let health = match live(api, object, &options.retry).await? {
                None => Health::new(HealthStatus::Missing, "not found"),
                Some(value) => judge(client, object, &value, options).await?,
            };
            report.push((object.clone(), health));
        }
        let failed = report
            .iter()
            .find(|(_, h)| h.status == HealthStatus::Degraded);
        let outcome = match failed {
            Some((object, health)) if options.fail_fast => Some(WaitOutcome::Failed {
                object: object.clone(),
                message: health.message.clone(),
            }),
            _ if report.iter().all(|(_, h)| done(h)) => Some(WaitOutcome::Healthy),
            _ if start.elapsed() >= options.timeout => Some(WaitOutcome::TimedOut),
            _ => None,
        };
        if let Some(outcome) = outcome {
            return Ok(WaitReport {
                outcome,
                health: report,
                elapsed: start.elapsed(),
            });
        }
        let left = options.timeout.saturating_sub(start.elapsed());
        tokio::time::sleep(options.interval.min(left)).await;
    }
}

fn done(health: &Health) -> bool {
    matches!(
        health.status,
        HealthStatus::Healthy | HealthStatus::Suspended
    )
}

/// The object's own health, made Degraded by a failing pod of its current revision.
async fn judge(
    client: &kube::Client,
    object: &ObjectRef,
    value: &Value,
    options: &WaitOptions,
) -> Result<Health> {
    let own = health(value);
    // A progress deadline the controller keeps from an earlier revision (it does not clear a
    // timed-out condition until the next rollout completes) says nothing of the current one.
    let timed_out = (object.kind == "Deployment" && own.status == HealthStatus::Degraded)
        .then(|| timed_out_replica_set(&own.message))
        .flatten();
    if timed_out.is_none()
        && (!options.fail_fast || own.status == HealthStatus::Degraded || done(&own))
    {
        return Ok(own);
    }
    let Some(namespace) = &object.namespace else {
        return Ok(own);
    };
    let Some(selector) = selector(value) else {
        return Ok(own);
    };
    let list = |kind: &'static str, api: Api<DynamicObject>| {
        let selector = selector.clone();
        let retry = &options.retry;
        async move {
            let params = ListParams::default().labels(&selector);
            with_retry(retry, || api.list(&params))
                .await
                .map(|l| l.items.into_iter().map(to_value).collect::<Vec<_>>())
                .map_err(|source| Error::Api {
                    object: format!("{kind}/{namespace}"),
                    verb: "list",
                    source,
                })
        }
    };
    let api = |resource: ApiResource| Api::namespaced_with(client.clone(), namespace, &resource);
    let replica_sets = if object.kind == "Deployment" {
        list("ReplicaSet", api(ApiResource::erase::<ReplicaSet>(&()))).await?
    } else {
        Vec::new()
    };
    if let Some(named) = timed_out {
        let current = current_replica_set(value, &replica_sets)
            .and_then(|rs| rs.pointer("/metadata/name"))
            .and_then(Value::as_str);
        return Ok(match current {
            Some(current) if current != named => Health::new(
                HealthStatus::Progressing,
                format!(
                    "waiting for ReplicaSet {current}: the progress deadline passed for {named}, of an earlier revision"
                ),
            ),
            _ => own,
        });
    }
    let pods = list("Pod", api(ApiResource::erase::<Pod>(&()))).await?;
    let current = current_pods(&object.kind, value, &replica_sets, &pods);
    for pod in current {
        // Items of a list carry no `kind`: read them as pods.
        let Ok(typed) = serde_json::from_value::<Pod>(pod.clone()) else {
            continue;
        };
        let pod_health = pod_health(&typed);
        if pod_health.status == HealthStatus::Degraded {
            let name = pod.pointer("/metadata/name").and_then(Value::as_str);
            return Ok(Health::new(
                HealthStatus::Degraded,
                format!("pod {}: {}", name.unwrap_or("?"), pod_health.message),
            ));
        }
    }
    Ok(own)
}

/// `spec.selector.matchLabels` as a label selector string.
fn selector(workload: &Value) -> Option<String> {
    let labels = workload
        .pointer("/spec/selector/matchLabels")?
        .as_object()?;
    let parts: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?)))
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

fn label<'v>(object: &'v Value, key: &str) -> Option<&'v str> {
    object.pointer("/metadata/labels")?.get(key)?.as_str()
}

fn owned_by(object: &Value, owner: &Value) -> bool {
    let uid = owner.pointer("/metadata/uid");
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|r| r["controller"] == true && Some(&r["uid"]) == uid)
}

/// The ReplicaSet `ReplicaSet "web-5df96d6b75" has timed out progressing` names, in a
/// Deployment's health message.
fn timed_out_replica_set(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("ProgressDeadlineExceeded: ")?
        .strip_prefix("ReplicaSet \"")?;
    let (name, rest) = rest.split_once('"')?;
    rest.contains("timed out").then_some(name)
}

/// The Deployment's ReplicaSet whose template is the Deployment's (the hash label aside).
fn current_replica_set<'r>(deployment: &Value, replica_sets: &'r [Value]) -> Option<&'r Value> {
    let template = deployment.pointer("/spec/template");
    replica_sets.iter().find(|rs| {
        let mut rs_template = rs.pointer("/spec/template").cloned();
        if let Some(labels) = rs_template
            .as_mut()
            .and_then(|t| t.pointer_mut("/metadata/labels"))
            .and_then(Value::as_object_mut)
        {
            labels.remove("pod-template-hash");
        }
        owned_by(rs, deployment)
            && rs_template
                .as_ref()
                .map(|t| (&t["spec"], &t["metadata"]["labels"]))
                == template.map(|t| (&t["spec"], &t["metadata"]["labels"]))
    })
}

/// The pods of the workload's current revision: for a Deployment, those of the ReplicaSet whose
/// template is the Deployment's (the hash label aside); for a StatefulSet, those at its
/// `updateRevision`; for a DaemonSet, those of its current `pod-template-generation`.
pub fn current_pods<'p>(
    kind: &str,
    workload: &Value,
    replica_sets: &[Value],
    pods: &'p [Value],
) -> Vec<&'p Value> {
    let owned = |pod: &&Value| owned_by(pod, workload);
    match kind {
        "Deployment" => match current_replica_set(workload, replica_sets) {
            Some(rs) => pods.iter().filter(|p| owned_by(p, rs)).collect(),
            None => Vec::new(),
        },
        "StatefulSet" => {
            let revision = workload
                .pointer("/status/updateRevision")
                .and_then(Value::as_str);
            pods.iter()
                .filter(owned)
                .filter(|p| revision.is_none() || label(p, "controller-revision-hash") == revision)
                .collect()
        }
        "DaemonSet" => {
            let generation = workload
                .pointer("/metadata/generation")
                .map(|g| g.to_string());
            pods.iter()
                .filter(owned)
                .filter(|p| {
                    let at = label(p, "pod-template-generation");
                    at.is_none() || at.map(str::to_owned) == generation
                })
                .collect()
        }
        _ => pods.iter().filter(owned).collect(),
    }
}
