//! Health per kind, pure: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, Pod, PVC, HPA, CRD,
//! Services of type LoadBalancer, and any other object by its `Ready`/`Available`/`Stalled`
//! conditions and `observedGeneration`. The rules follow Argo CD's `pkg/health` and kstatus.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::{Health, HealthStatus};

/// Container waiting reasons that will not clear on their own.
pub const FAILING_REASONS: [&str; 7] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

fn typed<T: DeserializeOwned>(object: &Value, check: fn(&T) -> Health) -> Health {
    match serde_json::from_value::<T>(object.clone()) {
        Ok(value) => check(&value),
        Err(error) => Health::new(HealthStatus::Unknown, format!("unreadable status: {error}")),
    }
}

/// The health of a live object of any kind.
pub fn health(object: &Value) -> Health {
    match object["kind"].as_str().unwrap_or_default() {
        "Deployment" => typed(object, deployment_health),
        "StatefulSet" => typed(object, statefulset_health),
        "DaemonSet" => typed(object, daemonset_health),
        "ReplicaSet" => typed(object, replicaset_health),
        "Job" => typed(object, job_health),
        "Pod" => typed(object, pod_health),
        "PersistentVolumeClaim" => typed(object, pvc_health),
        "HorizontalPodAutoscaler" => typed(object, hpa_health),
        "Service" => typed(object, service_health),
        "CustomResourceDefinition" => crd_health(object),
        _ => generic_health(object),
    }
}

fn behind(generation: Option<i64>, observed: Option<i64>) -> bool {
    matches!((generation, observed), (Some(g), Some(o)) if o < g)
        || (generation.is_some() && observed.is_none())
}

/// A Deployment is healthy when every replica runs the new template and is available.
pub fn deployment_health(deployment: &Deployment) -> Health {
    let spec = &deployment.spec;
    if spec.paused == Some(true) {
        return Health::new(HealthStatus::Suspended, "Deployment is paused");
    }
    let Some(status) = &deployment.status else {
        return Health::new(
            HealthStatus::Progressing,
            "waiting for the controller to observe the Deployment",
        );
    };
    if behind(deployment.metadata.generation, status.observed_generation) {
        return Health::new(
            HealthStatus::Progressing,
            "waiting for rollout to finish: observed deployment generation less than desired generation",
        );
    }
    let conditions = status.conditions.as_deref().unwrap_or_default();
    if let Some(stalled) = conditions.iter().find(|c| {
        c.type_.as_deref() == Some("Progressing")
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    }) {
        let message = stalled.message.clone().unwrap_or_default();
        return Health::new(
            HealthStatus::Degraded,
            format!("ProgressDeadlineExceeded: {message}"),
        );
    }
    let wanted = spec.replicas.unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let current = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < wanted {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "waiting for rollout to finish: {updated} out of {wanted} new replicas have been updated"
            ),
        );
    }
    if current > updated {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "waiting for rollout to finish: {} old replicas are pending termination",
                current - updated
            ),
        );
    }
    if available < updated {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "waiting for rollout to finish: {available} of {updated} updated replicas are available"
            ),
        );
    }
    Health::healthy()
}

/// A StatefulSet is healthy when every replica is ready on the update revision.
pub fn statefulset_health(set: &StatefulSet) -> Health {
    let Some(status) = &set.status else {
        return Health::new(
            HealthStatus::Progressing,
            "waiting for the controller to observe the StatefulSet",
        );
    };
    if behind(set.metadata.generation, status.observed_generation) {
        return Health::new(
            HealthStatus::Progressing,
            "waiting for statefulset spec update to be observed",
        );
    }
    let wanted = set.spec.replicas.unwrap_or(1);
    let ready = status.ready_replicas.unwrap_or(0);
    if ready < wanted {
        return Health::new(
            HealthStatus::Progressing,
            format!("waiting for {} pods to be ready", wanted - ready),
        );
    }
    let updated = status.updated_replicas.unwrap_or(0);
    if status.update_revision.is_some()
        && status.current_revision != status.update_revision
        && updated < wanted
    {
        return Health::new(
            HealthStatus::Progressing,
            format!("waiting for rollout to finish: {updated} of {wanted} pods updated"),
        );
    }
    Health::healthy()
}

/// A DaemonSet is healthy when every scheduled pod is updated and available.
pub fn daemonset_health(set: &DaemonSet) -> Health {
    let Some(status) = &set.status else {
        return Health::new(
            HealthStatus::Progressing,
            "waiting for the controller to observe the DaemonSet",
        );
    };
    if behind(set.metadata.generation, status.observed_generation) {
        return Health::new(
            HealthStatus::Progressing,
            "waiting for daemon set spec update to be observed",
        );
    }
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    if updated < desired {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "waiting for rollout to finish: {updated} out of {desired} new pods have been updated"
            ),
        );
    }
    if available < desired {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "waiting for rollout to finish: {available} of {desired} updated pods are available"
            ),
        );
    }
    Health::healthy()
}

/// A ReplicaSet is healthy when all its replicas are available.
pub fn replicaset_health(set: &ReplicaSet) -> Health {
    let Some(status) = &set.status else {
        return Health::new(
            HealthStatus::Progressing,
            "waiting for the controller to observe the ReplicaSet",
        );
    };
    if behind(set.metadata.generation, status.observed_generation) {
        return Health::new(
            HealthStatus::Progressing,
            "waiting for rollout to finish: observed replica set generation less than desired generation",
        );
    }
    let failure = status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|c| {
            c.type_.as_deref() == Some("ReplicaFailure") && c.status.as_deref() == Some("True")
        });
    if let Some(failure) = failure {
        return Health::new(
            HealthStatus::Degraded,
            failure.message.clone().unwrap_or_default(),
        );
    }
    let wanted = set.spec.replicas.unwrap_or(1);
    let available = status.available_replicas.unwrap_or(0);
    if available < wanted {
        return Health::new(
            HealthStatus::Progressing,
            format!(
                "waiting for rollout to finish: {available} out of {wanted} replicas are available"
            ),
        );
    }
    Health::healthy()
}

/// A Job is healthy once complete, degraded once failed.
pub fn job_health(job: &Job) -> Health {
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    for condition in conditions.iter().filter(|c| c.status == "True") {
        match condition.type_.as_str() {
            "Failed" => {
                return Health::new(
                    HealthStatus::Degraded,
                    condition.message.clone().unwrap_or_default(),
                );
            }
            "Complete" => {
                return Health::new(
                    HealthStatus::Healthy,
                    condition.message.clone().unwrap_or_default(),
                );
            }
            _ => {}
        }
    }
    if job.spec.as_ref().and_then(|s| s.suspend) == Some(true) {
        return Health::new(HealthStatus::Suspended, "Job is suspended");
    }
    Health::new(HealthStatus::Progressing, "job is running")
}

/// A Pod is healthy when ready (or done); a container stuck in a failing state degrades it.
pub fn pod_health(pod: &Pod) -> Health {
    let Some(status) = &pod.status else {
        return Health::new(HealthStatus::Progressing, "pod has no status yet");
    };
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for container in containers {
        let waiting = container.state.as_ref().and_then(|s| s.waiting.as_ref());
        if let Some(waiting) = waiting {
            let reason = waiting.reason.as_deref().unwrap_or_default();
            if FAILING_REASONS.contains(&reason) {
                let last = container
                    .last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .and_then(|t| t.reason.clone());
                let after = last
                    .map(|r| format!(" (last exit: {r})"))
                    .unwrap_or_default();
                return Health::new(
                    HealthStatus::Degraded,
                    format!("container {} is {reason}{after}", container.name),
                );
            }
        }
    }
    match status.phase.as_deref() {
        Some("Succeeded") => Health::new(HealthStatus::Healthy, "pod completed"),
        Some("Failed") => Health::new(
            HealthStatus::Degraded,
            status
                .message
                .clone()
                .unwrap_or_else(|| "pod failed".into()),
        ),
        Some("Running") => {
            let ready = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            if ready {
                Health::healthy()
            } else {
                Health::new(HealthStatus::Progressing, "pod is running but not ready")
            }
        }
        _ => {
            let unschedulable = status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.reason.as_deref() == Some("Unschedulable"));
            match unschedulable {
                Some(c) => Health::new(
                    HealthStatus::Progressing,
                    format!("Unschedulable: {}", c.message.clone().unwrap_or_default()),
                ),
                None => Health::new(HealthStatus::Progressing, "pod is pending"),
            }
        }
    }
}

/// A PersistentVolumeClaim is healthy once bound.
pub fn pvc_health(claim: &PersistentVolumeClaim) -> Health {
    match claim.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Bound") => Health::healthy(),
        Some("Lost") => Health::new(HealthStatus::Degraded, "claim lost its volume"),
        _ => Health::new(
            HealthStatus::Progressing,
            "waiting for the claim to be bound",
        ),
    }
}

/// An autoscaler is degraded when it cannot scale or cannot read its metrics.
pub fn hpa_health(hpa: &HorizontalPodAutoscaler) -> Health {
    let conditions = hpa
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    for condition in conditions.iter().filter(|c| c.status == "False") {
        let disabled = condition.reason.as_deref() == Some("ScalingDisabled");
        if condition.type_ == "AbleToScale" || (condition.type_ == "ScalingActive" && !disabled) {
            let message = condition.message.clone().unwrap_or_default();
            return Health::new(
                HealthStatus::Degraded,
                format!(
                    "{}: {message}",
                    condition.reason.clone().unwrap_or_default()
                ),
            );
        }
    }
    if conditions.is_empty() {
        return Health::new(
            HealthStatus::Progressing,
            "waiting for the autoscaler to report",
        );
    }
    Health::healthy()
}

/// A Service of type LoadBalancer is healthy once it has an address; other Services always are.
pub fn service_health(service: &Service) -> Health {
    let load_balancer =
        service.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
    if !load_balancer {
        return Health::healthy();
    }
    let ingress = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref());
    if ingress.is_some_and(|i| !i.is_empty()) {
        Health::healthy()
    } else {
        Health::new(
            HealthStatus::Progressing,
            "waiting for the load balancer's address",
        )
    }
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn crd_health(object: &Value) -> Health {
    if condition(object, "NamesAccepted").is_some_and(|c| c["status"] == "False") {
        let message = condition(object, "NamesAccepted")
            .and_then(|c| c["message"].as_str())
            .unwrap_or_default();
        return Health::new(HealthStatus::Degraded, message);
    }
    match condition(object, "Established") {
        Some(c) if c["status"] == "True" => Health::healthy(),
        _ => Health::new(
            HealthStatus::Progressing,
            "waiting for the CRD to be established",
        ),
    }
}

/// Any other object: `observedGeneration`, then `Stalled`, `Ready` and `Available` conditions.
pub fn generic_health(object: &Value) -> Health {
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    let observed = object
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    if observed.is_some() && behind(generation, observed) {
        return Health::new(
            HealthStatus::Progressing,
            "waiting for the controller to observe the latest generation",
        );
    }
    let message = |c: &Value| c["message"].as_str().unwrap_or_default().to_string();
    if let Some(stalled) = condition(object, "Stalled").filter(|c| c["status"] == "True") {
        return Health::new(HealthStatus::Degraded, message(stalled));
    }
    for kind in ["Ready", "Available"] {
        if let Some(c) = condition(object, kind) {
            return match c["status"].as_str() {
                Some("True") => Health::healthy(),
                Some("False") => Health::new(HealthStatus::Degraded, message(c)),
                _ => Health::new(HealthStatus::Progressing, message(c)),
            };
        }
    }
    Health::healthy()
}

#[cfg(test)]
mod tests;
