//! Simulation hooks: what kubelets and controllers would write. Tests set a pod's state
//! (running, crash-looping with a reason, OOMKilled, image pull failure, ...), drive a workload's
//! rollout to done, stuck or failed, create the ReplicaSet and pods of a Deployment, or let
//! workload status follow spec on its own after a delay.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::server::Shared;
use crate::status::ApiError;
use crate::store::{Key, Store, now};
use crate::write::{self, WriteOptions};

/// The state a simulated kubelet reports for every container of a pod.
#[derive(Clone, Debug, PartialEq)]
pub enum PodState {
    /// Accepted, not started.
    Pending,
    /// Running and ready.
    Running,
    /// Restarting after each exit; the last exit had this reason (`Error`, `OOMKilled`, ...).
    CrashLoop {
        /// `reason` of the last termination.
        reason: String,
        /// Exit code of the last termination.
        exit_code: i64,
        /// Restarts so far.
        restarts: u64,
    },
    /// The image cannot be pulled.
    ImagePullBackOff,
    /// A referenced ConfigMap or Secret is missing.
    CreateContainerConfigError {
        /// The kubelet's message.
        message: String,
    },
    /// No node fits.
    Unschedulable {
        /// The scheduler's message.
        message: String,
    },
    /// Ran to completion.
    Succeeded,
}

impl PodState {
    /// Crash-looping after being OOMKilled (exit code 137).
    pub fn oom_killed(restarts: u64) -> PodState {
        PodState::CrashLoop {
            reason: "OOMKilled".into(),
            exit_code: 137,
            restarts,
        }
    }
}

/// How a simulated rollout ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// Every replica updated and available; observedGeneration caught up.
    Done,
    /// Progressing, one replica short, forever.
    Stuck,
    /// `Progressing=False` with `ProgressDeadlineExceeded`.
    Failed,
    /// The controller has observed the new generation and nothing more: `observedGeneration`
    /// caught up, every other field as it was. A Deployment past its progress deadline keeps
    /// that condition, naming the ReplicaSet of the failed revision, until its rollout
    /// completes (kube-controller-manager's `DeploymentTimedOut` keeps a timed-out condition),
    /// and the ReplicaSet of its new template exists.
    Observed,
}

/// The ReplicaSet a Deployment's controller gives its current template: the Deployment's name
/// and a hash of the template, so that a template put back finds its ReplicaSet again.
pub fn replica_set_name(deployment: &Value) -> String {
    let name = deployment
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let template = deployment
        .pointer("/spec/template")
        .map(Value::to_string)
        .unwrap_or_default();
    let hash = template.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{name}-{:010x}", hash & 0xff_ffff_ffff)
}

/// Creates the ReplicaSet of the Deployment's current template ([`replica_set_name`]) when it
/// does not exist, owned by the Deployment, with no pods.
pub fn ensure_replica_set(store: &mut Store, deployment: &Value) -> Result<(), ApiError> {
    let namespace = deployment
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = replica_set_name(deployment);
    let (_, key) = key_for(store, "ReplicaSet", namespace, &name)?;
    if store.get(&key).is_some() {
        return Ok(());
    }
    let hash = name.rsplit('-').next().unwrap_or_default().to_owned();
    let mut template = deployment
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = deployment
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or(json!({}));
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": namespace,
            "labels": template["metadata"]["labels"].clone(),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                "name": deployment["metadata"]["name"], "uid": deployment["metadata"]["uid"],
                "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"replicas": 0, "selector": selector, "template": template}});
    create(store, rs, "kube-controller-manager").map(|_| ())
}

fn container_status(container: &Value, pod: &str, state: &PodState, time: &str) -> Value {
    let name = container["name"].clone();
    let image = container["image"].clone();
    let mut status = json!({"name": name, "image": image, "imageID": "", "ready": false,
        "restartCount": 0, "started": false});
    match state {
        PodState::Running => {
            status["ready"] = json!(true);
            status["started"] = json!(true);
            status["state"] = json!({"running": {"startedAt": time}});
        }
        PodState::CrashLoop {
            reason,
            exit_code,
            restarts,
        } => {
            let message = format!(
                "back-off 5m0s restarting failed container={} pod={pod}",
                name.as_str().unwrap_or_default()
            );
            status["restartCount"] = json!(restarts);
            status["state"] =
                json!({"waiting": {"reason": "CrashLoopBackOff", "message": message}});
            status["lastState"] = json!({"terminated": {"exitCode": exit_code, "reason": reason,
                "startedAt": time, "finishedAt": time}});
        }
        PodState::ImagePullBackOff => {
            let message = format!("Back-off pulling image {image}");
            status["state"] =
                json!({"waiting": {"reason": "ImagePullBackOff", "message": message}});
        }
        PodState::CreateContainerConfigError { message } => {
            status["state"] =
                json!({"waiting": {"reason": "CreateContainerConfigError", "message": message}});
        }
        PodState::Succeeded => {
            status["state"] = json!({"terminated": {"exitCode": 0, "reason": "Completed",
                "startedAt": time, "finishedAt": time}});
        }
        PodState::Pending | PodState::Unschedulable { .. } => {
            status["state"] = json!({"waiting": {"reason": "ContainerCreating"}});
        }
    }
    status
}

/// The status a kubelet (or the scheduler) would report for a pod in `state`.
pub fn pod_status(pod: &Value, state: &PodState) -> Value {
    let time = now();
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let qos = pod
        .pointer("/status/qosClass")
        .cloned()
        .unwrap_or(json!("BestEffort"));
    if let PodState::Unschedulable { message } = state {
        return json!({"phase": "Pending", "qosClass": qos, "conditions": [{"type": "PodScheduled",
            "status": "False", "lastTransitionTime": time, "reason": "Unschedulable", "message": message}]});
    }
    let containers: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .map(|c| container_status(c, name, state, &time))
                .collect()
        })
        .unwrap_or_default();
    let (phase, ready) = match state {
        PodState::Running => ("Running", true),
        PodState::CrashLoop { .. } => ("Running", false),
        PodState::Succeeded => ("Succeeded", false),
        _ => ("Pending", false),
    };
    let flag = |b: bool| if b { "True" } else { "False" };
    json!({"phase": phase, "qosClass": qos, "hostIP": "10.0.0.10", "podIP": "10.244.0.10",
        "startTime": time,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": time},
            {"type": "Initialized", "status": "True", "lastTransitionTime": time},
            {"type": "ContainersReady", "status": flag(ready), "lastTransitionTime": time},
            {"type": "Ready", "status": flag(ready), "lastTransitionTime": time}
        ],
        "containerStatuses": containers})
}

/// The status a workload controller would report for a rollout in `rollout`.
pub fn workload_status(kind: &str, object: &Value, rollout: Rollout) -> Value {
    let generation = object
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let replicas = object
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let updated = if rollout == Rollout::Done {
        replicas
    } else {
        replicas.saturating_sub(1)
    };
    let time = now();
    if rollout == Rollout::Observed {
        let mut status = object.get("status").cloned().unwrap_or(json!({}));
        status["observedGeneration"] = generation;
        return status;
    }
    let name = if kind == "Deployment" {
        replica_set_name(object)
    } else {
        name.to_owned()
    };
    match kind {
        "Deployment" => {
            let (progressing, reason, message) = match rollout {
                Rollout::Done => (
                    "True",
                    "NewReplicaSetAvailable",
                    format!("ReplicaSet \"{name}\" has successfully progressed."),
                ),
                Rollout::Stuck => (
                    "True",
                    "ReplicaSetUpdated",
                    format!("ReplicaSet \"{name}\" is progressing."),
                ),
                Rollout::Failed | Rollout::Observed => (
                    "False",
                    "ProgressDeadlineExceeded",
                    format!("ReplicaSet \"{name}\" has timed out progressing."),
                ),
            };
            let available = updated >= replicas.min(1);
            let (available_status, available_reason) = if available {
                ("True", "MinimumReplicasAvailable")
            } else {
                ("False", "MinimumReplicasUnavailable")
            };
            let mut status = json!({"observedGeneration": generation, "replicas": replicas,
            "updatedReplicas": updated, "readyReplicas": updated, "availableReplicas": updated,
            "conditions": [
                {"type": "Available", "status": available_status, "lastUpdateTime": time,
                 "lastTransitionTime": time, "reason": available_reason,
                 "message": if available { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." }},
                {"type": "Progressing", "status": progressing, "lastUpdateTime": time,
                 "lastTransitionTime": time, "reason": reason, "message": message}
            ]});
            if updated < replicas {
                status["unavailableReplicas"] = json!(replicas - updated);
            }
            status
        }
        "StatefulSet" => json!({"observedGeneration": generation, "replicas": replicas,
            "readyReplicas": updated, "currentReplicas": updated, "updatedReplicas": updated,
            "availableReplicas": updated, "currentRevision": format!("{name}-1"),
            "updateRevision": format!("{name}-1")}),
        "DaemonSet" => json!({"observedGeneration": generation, "desiredNumberScheduled": 2,
            "currentNumberScheduled": 2, "numberReady": if rollout == Rollout::Done { 2 } else { 1 },
            "updatedNumberScheduled": if rollout == Rollout::Done { 2 } else { 1 },
            "numberAvailable": if rollout == Rollout::Done { 2 } else { 1 },
            "numberMisscheduled": 0}),
        "Job" => match rollout {
            Rollout::Done => json!({"succeeded": 1, "startTime": time, "completionTime": time,
                "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": time, "lastTransitionTime": time}]}),
            Rollout::Stuck => json!({"active": 1, "startTime": time}),
            Rollout::Failed | Rollout::Observed => json!({"failed": 1, "startTime": time,
                "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit", "lastProbeTime": time, "lastTransitionTime": time}]}),
        },
        _ => json!({"observedGeneration": generation, "replicas": replicas,
            "fullyLabeledReplicas": updated, "readyReplicas": updated, "availableReplicas": updated}),
    }
}

/// The served type of `kind` and the key of one of its objects.
pub fn key_for(
    store: &Store,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<(crate::resources::ResourceType, Key), ApiError> {
    let resource = store
        .types
        .iter()
        .find(|t| t.kind == kind)
        .cloned()
        .ok_or_else(ApiError::no_resource)?;
    let key = Key {
        group: resource.group.clone(),
        plural: resource.plural.clone(),
        namespace: if resource.namespaced {
            namespace.into()
        } else {
            String::new()
        },
        name: name.into(),
    };
    Ok((resource, key))
}

/// Writes `status` of an object as `manager` would, through the `status` subresource.
pub fn write_status(
    store: &mut Store,
    kind: &str,
    namespace: &str,
    name: &str,
    manager: &str,
    status: impl FnOnce(&Value) -> Value,
) -> Result<Value, ApiError> {
    let (resource, key) = key_for(store, kind, namespace, name)?;
    let live = store
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&resource, name))?;
    let mut new = live.clone();
    new["status"] = status(&live);
    let options = WriteOptions {
        manager: manager.into(),
        subresource: Some("status".into()),
        ..WriteOptions::default()
    };
    write::update(store, &resource, &key, Some(live), new, &options).map(|(_, object)| object)
}

/// Creates an object as `manager` would (an Update operation).
pub fn create(store: &mut Store, object: Value, manager: &str) -> Result<Value, ApiError> {
    let api_version = object["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let resource = store
        .find_kind(&api_version, &kind)
        .cloned()
        .ok_or_else(ApiError::no_resource)?;
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let options = WriteOptions {
        manager: manager.into(),
        ..WriteOptions::default()
    };
    let body = serde_json::to_vec(&object).unwrap_or_default();
    write::create(store, &resource, namespace, &body, &options).map(|(_, object)| object)
}

/// Creates the ReplicaSet of a Deployment and `count` pods of it in `state`; returns the pod
/// names.
pub fn add_pods(
    store: &mut Store,
    namespace: &str,
    deployment: &str,
    count: usize,
    state: &PodState,
) -> Result<Vec<String>, ApiError> {
    let (resource, key) = key_for(store, "Deployment", namespace, deployment)?;
    let owner = store
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&resource, deployment))?;
    let generation = owner
        .pointer("/metadata/generation")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let hash = format!(
        "{:x}",
        0x5f00_0000u64 + generation * 0x1_0001 + deployment.len() as u64
    );
    let template = owner
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    let mut labels = template
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    labels["pod-template-hash"] = json!(hash);
    let rs_name = format!("{deployment}-{hash}");
    let owner_ref = |kind: &str, api: &str, object: &Value| {
        json!([{"apiVersion": api, "kind": kind, "name": object["metadata"]["name"],
            "uid": object["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}])
    };
    let (_, rs_key) = key_for(store, "ReplicaSet", namespace, &rs_name)?;
    let replica_set = match store.get(&rs_key).cloned() {
        Some(existing) => existing,
        None => {
            let mut selector = owner
                .pointer("/spec/selector")
                .cloned()
                .unwrap_or(json!({}));
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "namespace": namespace, "labels": labels,
                    "ownerReferences": owner_ref("Deployment", "apps/v1", &owner)},
                "spec": {"replicas": count, "selector": selector,
                    "template": {"metadata": {"labels": labels}, "spec": template["spec"]}}});
            create(store, rs, "kube-controller-manager")?
        }
    };
    let mut names = Vec::new();
    for index in 0..count {
        let pod_name = format!("{rs_name}-{}", pod_suffix(index));
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name, "namespace": namespace, "labels": labels,
                "ownerReferences": owner_ref("ReplicaSet", "apps/v1", &replica_set)},
            "spec": template["spec"]});
        create(store, pod, "kube-controller-manager")?;
        write_status(store, "Pod", namespace, &pod_name, "kubelet", |pod| {
            pod_status(pod, state)
        })?;
        names.push(pod_name);
    }
    Ok(names)
}

fn pod_suffix(index: usize) -> String {
    const LETTERS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = index + 7 * 31;
    (0..5)
        .map(|_| {
            let c = LETTERS[n % LETTERS.len()] as char;
            n = n / LETTERS.len() + 13;
            c
        })
        .collect()
}

/// Makes workload status follow spec: `delay` after a workload's generation changes its rollout
/// is marked done, and new pods start running.
pub async fn follow_spec(shared: Arc<Shared>, delay: Duration) {
    let mut feed = shared.store.lock().expect("store lock").subscribe();
    while let Ok(event) = feed.recv().await {
        if event.kind == "DELETED" {
            continue;
        }
        let object = &event.object;
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let namespace = event.key.namespace.clone();
        let name = event.key.name.clone();
        let generation = object.pointer("/metadata/generation").cloned();
        let observed = object.pointer("/status/observedGeneration").cloned();
        let workload = matches!(
            kind.as_str(),
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
        );
        let fresh_pod = kind == "Pod" && object.pointer("/status/containerStatuses").is_none();
        let rollout_due = workload && generation != observed;
        if !rollout_due && !fresh_pod {
            continue;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut store = shared.store.lock().expect("store lock");
            let (_, key) = match key_for(&store, &kind, &namespace, &name) {
                Ok(found) => found,
                Err(_) => return,
            };
            let Some(current) = store.get(&key).cloned() else {
                return;
            };
            if kind == "Pod" {
                let _ = write_status(&mut store, "Pod", &namespace, &name, "kubelet", |pod| {
                    pod_status(pod, &PodState::Running)
                });
            } else if current.pointer("/metadata/generation").cloned() == generation {
                let _ = write_status(
                    &mut store,
                    &kind,
                    &namespace,
                    &name,
                    "kube-controller-manager",
                    |object| workload_status(&kind, object, Rollout::Done),
                );
            }
        });
    }
}
