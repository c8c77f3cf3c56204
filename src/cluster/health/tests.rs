use serde_json::{Value, json};

use super::health;
use crate::model::HealthStatus::{self, *};

fn deployment(generation: i64, status: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "generation": generation},
        "spec": {"replicas": 3, "selector": {}, "template": {}}, "status": status})
}

fn status_of(object: Value) -> HealthStatus {
    health(&object).status
}

#[test]
fn deployments_follow_their_rollout() {
    let done = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3});
    assert_eq!(status_of(deployment(2, done)), Healthy);
    let unobserved = json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3});
    assert_eq!(status_of(deployment(2, unobserved)), Progressing);
    let rolling = json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 2, "availableReplicas": 3});
    let rolled = health(&deployment(2, rolling));
    assert_eq!(rolled.status, Progressing);
    assert!(
        rolled.message.contains("2 out of 3 new replicas"),
        "{}",
        rolled.message
    );
    let stalled = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1,
        "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"web-1\" has timed out progressing."}]});
    let stuck = health(&deployment(2, stalled));
    assert_eq!(stuck.status, Degraded);
    assert!(stuck.message.contains("timed out progressing"));
    let mut paused = deployment(2, json!({}));
    paused["spec"]["paused"] = json!(true);
    assert_eq!(status_of(paused), Suspended);
}

#[test]
fn statefulsets_daemonsets_and_replicasets_count_ready_pods() {
    let sts = |ready: i64| {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"generation": 1}, "spec": {"replicas": 2, "selector": {}, "template": {}, "serviceName": "s"},
        "status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": ready}})
    };
    assert_eq!(status_of(sts(2)), Healthy);
    assert_eq!(status_of(sts(1)), Progressing);
    let ds = |available: i64| {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"generation": 1}, "spec": {"selector": {}, "template": {}},
        "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
            "numberMisscheduled": 0, "numberReady": available, "updatedNumberScheduled": 3, "numberAvailable": available}})
    };
    assert_eq!(status_of(ds(3)), Healthy);
    assert_eq!(status_of(ds(2)), Progressing);
    let rs = |conditions: Value| {
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"generation": 1}, "spec": {"replicas": 1, "selector": {}},
        "status": {"observedGeneration": 1, "replicas": 1, "availableReplicas": 0, "conditions": conditions}})
    };
    assert_eq!(status_of(rs(json!([]))), Progressing);
    let failure =
        json!([{"type": "ReplicaFailure", "status": "True", "message": "quota exceeded"}]);
    assert_eq!(status_of(rs(failure)), Degraded);
}

#[test]
fn pods_fail_fast_on_crash_loops_and_pull_errors() {
    let pod = |phase: &str, containers: Value, conditions: Value| {
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p"}, "status": {"phase": phase, "containerStatuses": containers, "conditions": conditions}})
    };
    let waiting = |reason: &str| {
        json!([{"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 3,
        "state": {"waiting": {"reason": reason}},
        "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}])
    };
    let crash = health(&pod("Running", waiting("CrashLoopBackOff"), json!([])));
    assert_eq!(crash.status, Degraded);
    assert_eq!(
        crash.message,
        "container app is CrashLoopBackOff (last exit: OOMKilled)"
    );
    assert_eq!(
        status_of(pod("Pending", waiting("ImagePullBackOff"), json!([]))),
        Degraded
    );
    assert_eq!(
        status_of(pod("Pending", waiting("ContainerCreating"), json!([]))),
        Progressing
    );
    let ready = json!([{"type": "Ready", "status": "True"}]);
    assert_eq!(status_of(pod("Running", json!([]), ready)), Healthy);
    assert_eq!(status_of(pod("Running", json!([]), json!([]))), Progressing);
    assert_eq!(status_of(pod("Succeeded", json!([]), json!([]))), Healthy);
    assert_eq!(status_of(pod("Failed", json!([]), json!([]))), Degraded);
}

#[test]
fn jobs_claims_autoscalers_services_and_crds() {
    let job = |conditions: Value| {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {},
        "spec": {"template": {}}, "status": {"conditions": conditions}})
    };
    assert_eq!(
        status_of(job(json!([{"type": "Complete", "status": "True"}]))),
        Healthy
    );
    assert_eq!(
        status_of(job(
            json!([{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}])
        )),
        Degraded
    );
    assert_eq!(status_of(job(json!([]))), Progressing);
    let pvc = |phase: &str| json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {}, "status": {"phase": phase}});
    assert_eq!(status_of(pvc("Bound")), Healthy);
    assert_eq!(status_of(pvc("Pending")), Progressing);
    assert_eq!(status_of(pvc("Lost")), Degraded);
    let hpa = |conditions: Value| {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {}, "spec": {"maxReplicas": 5, "scaleTargetRef": {"kind": "Deployment", "name": "web"}},
        "status": {"desiredReplicas": 2, "conditions": conditions}})
    };
    let able = json!([{"type": "AbleToScale", "status": "True"}, {"type": "ScalingActive", "status": "True"}]);
    assert_eq!(status_of(hpa(able)), Healthy);
    let blind = json!([{"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric", "message": "no metrics"}]);
    assert_eq!(status_of(hpa(blind)), Degraded);
    let service = |kind: &str, ingress: Value| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {},
        "spec": {"type": kind}, "status": {"loadBalancer": {"ingress": ingress}}})
    };
    assert_eq!(status_of(service("ClusterIP", json!([]))), Healthy);
    assert_eq!(status_of(service("LoadBalancer", json!([]))), Progressing);
    assert_eq!(
        status_of(service("LoadBalancer", json!([{"ip": "1.2.3.4"}]))),
        Healthy
    );
    let crd = |status: &str| {
        json!({"kind": "CustomResourceDefinition", "status": {"conditions": [
        {"type": "Established", "status": status}]}})
    };
    assert_eq!(status_of(crd("True")), Healthy);
    assert_eq!(status_of(crd("False")), Progressing);
}

#[test]
fn other_kinds_read_generation_and_conditions() {
    let object = |observed: i64, conditions: Value| {
        json!({"kind": "Kustomization",
        "metadata": {"generation": 2}, "status": {"observedGeneration": observed, "conditions": conditions}})
    };
    assert_eq!(
        status_of(object(2, json!([{"type": "Ready", "status": "True"}]))),
        Healthy
    );
    assert_eq!(
        status_of(object(1, json!([{"type": "Ready", "status": "True"}]))),
        Progressing
    );
    assert_eq!(
        status_of(object(
            2,
            json!([{"type": "Ready", "status": "False", "message": "apply failed"}])
        )),
        Degraded
    );
    assert_eq!(
        status_of(object(2, json!([{"type": "Ready", "status": "Unknown"}]))),
        Progressing
    );
    assert_eq!(
        status_of(object(2, json!([{"type": "Stalled", "status": "True"}]))),
        Degraded
    );
    assert_eq!(
        status_of(json!({"kind": "ConfigMap", "metadata": {}})),
        Healthy
    );
    assert_eq!(
        status_of(json!({"kind": "Deployment", "spec": "nonsense"})),
        Unknown
    );
}
