//! The health wait loop against the test API server: for each kind, done (healthy), timed out
//! (still progressing) and fail-fast (failed) cases; and fail-fast on the new pods of a rollout
//! while the old revision's failing pods do not count.

use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use remediator::cluster::{ApplyOptions, Cluster, KubeCluster, WaitOptions, WaitOutcome};
use remediator::model::ObjectRef;
use serde_json::{Value, json};
use testkit::{PodState, Rollout, TestCluster};

fn quick(timeout_ms: u64) -> WaitOptions {
    WaitOptions {
        timeout: Duration::from_millis(timeout_ms),
        interval: Duration::from_millis(20),
        ..WaitOptions::default()
    }
}

fn reference(object: &Value) -> ObjectRef {
    ObjectRef::new(
        object["apiVersion"].as_str().unwrap(),
        object["kind"].as_str().unwrap(),
        object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str),
        object["metadata"]["name"].as_str().unwrap(),
    )
}

fn pod_template(image: &str, memory: &str) -> Value {
    json!({"metadata": {"labels": {"app": "api"}},
        "spec": {"containers": [{"name": "app", "image": image,
            "resources": {"limits": {"memory": memory}}}]}})
}

fn workload(kind: &str, name: &str, template: Value) -> Value {
    let mut object = json!({"apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": template}});
    match kind {
        "Job" => {
            object["apiVersion"] = json!("batch/v1");
            object["spec"] = json!({"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "job", "image": "busybox"}]}}});
        }
        "StatefulSet" => object["spec"]["serviceName"] = json!(name),
        "Deployment" => object["spec"]["replicas"] = json!(2),
        _ => {}
    }
    object
}

async fn outcome(kube: &KubeCluster, object: &Value, timeout_ms: u64) -> WaitOutcome {
    kube.wait(&[reference(object)], &quick(timeout_ms))
        .await
        .unwrap()
        .outcome
}

fn is_failed(outcome: &WaitOutcome) -> bool {
    matches!(outcome, WaitOutcome::Failed { .. })
}

#[tokio::test]
async fn workloads_are_done_time_out_or_fail_fast_by_their_rollout() {
    let cluster = TestCluster::start();
    let kube = KubeCluster::new(cluster.client());
    // (kind, whether a failed rollout is visible in its status)
    for (kind, fails_visibly) in [
        ("Deployment", true),
        ("StatefulSet", false),
        ("DaemonSet", false),
        ("ReplicaSet", false),
        ("Job", true),
    ] {
        let name = kind.to_lowercase();
        let object = workload(kind, &name, pod_template("nginx:1.27", "64Mi"));
        kube.apply(std::slice::from_ref(&object), &ApplyOptions::default())
            .await
            .unwrap();

        cluster
            .set_rollout(kind, "default", &name, Rollout::Stuck)
            .unwrap();
        assert_eq!(
            outcome(&kube, &object, 150).await,
            WaitOutcome::TimedOut,
            "{kind} stuck"
        );

        cluster
            .set_rollout(kind, "default", &name, Rollout::Failed)
            .unwrap();
        let failed = outcome(&kube, &object, 150).await;
        assert_eq!(
            is_failed(&failed),
            fails_visibly,
            "{kind} failed: {failed:?}"
        );

        cluster
            .set_rollout(kind, "default", &name, Rollout::Done)
            .unwrap();
        assert_eq!(
            outcome(&kube, &object, 5_000).await,
            WaitOutcome::Healthy,
            "{kind} done"
        );
    }
}

#[tokio::test]
async fn pods_and_crds_are_done_time_out_or_fail_fast() {
    let cluster = TestCluster::start();
    let kube = KubeCluster::new(cluster.client());
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "solo", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}});
    kube.apply(std::slice::from_ref(&pod), &ApplyOptions::default())
        .await
        .unwrap();
    cluster
        .set_pod_state("default", "solo", &PodState::Pending)
        .unwrap();
    assert_eq!(outcome(&kube, &pod, 150).await, WaitOutcome::TimedOut);
    cluster
        .set_pod_state("default", "solo", &PodState::ImagePullBackOff)
        .unwrap();
    assert!(is_failed(&outcome(&kube, &pod, 60_000).await));
    cluster
        .set_pod_state("default", "solo", &PodState::Running)
        .unwrap();
    assert_eq!(outcome(&kube, &pod, 5_000).await, WaitOutcome::Healthy);

    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.remediator.dev"},
        "spec": {"group": "example.remediator.dev", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
    kube.apply(std::slice::from_ref(&crd), &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(outcome(&kube, &crd, 5_000).await, WaitOutcome::Healthy);
}

#[tokio::test]
async fn a_deployment_failing_its_progress_deadline_fails_at_once() {
    let cluster = TestCluster::start();
    let kube = KubeCluster::new(cluster.client());
    let object = workload("Deployment", "api", pod_template("nginx:1.27", "64Mi"));
    kube.apply(std::slice::from_ref(&object), &ApplyOptions::default())
        .await
        .unwrap();
    cluster
        .set_rollout("Deployment", "default", "api", Rollout::Failed)
        .unwrap();
    let report = kube
        .wait(&[reference(&object)], &quick(60_000))
        .await
        .unwrap();
    match &report.outcome {
        WaitOutcome::Failed { object, message } => {
            assert_eq!(object.to_string(), "Deployment/default/api");
            assert!(message.contains("ProgressDeadlineExceeded"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(report.elapsed < Duration::from_secs(60));
}

#[tokio::test]
async fn a_deployment_past_its_deadline_on_its_current_replica_set_fails_and_on_an_earlier_one_waits()
 {
    let cluster = TestCluster::start();
    let kube = KubeCluster::new(cluster.client());
    let set = |name: &str, rollout| {
        cluster
            .set_rollout("Deployment", "default", name, rollout)
            .unwrap();
    };
    let apply = |object: &Value| {
        let object = object.clone();
        let kube = &kube;
        async move {
            kube.apply(&[object], &ApplyOptions::default())
                .await
                .unwrap();
        }
    };
    // The controller observes the current ReplicaSet's own failure: failed at once.
    let failing = workload("Deployment", "failing", pod_template("web:2", "64Mi"));
    apply(&failing).await;
    set("failing", Rollout::Observed);
    set("failing", Rollout::Failed);
    assert!(is_failed(&outcome(&kube, &failing, 60_000).await));
    // A revert, 50 times, with the controller's delay varied: before it observes the reverted
    // generation, and while it keeps the failed revision's deadline, the wait goes on; once the
    // rollout completes, healthy.
    for run in 0..50u64 {
        let name = format!("web-{run}");
        let good = workload("Deployment", &name, pod_template("web:1", "64Mi"));
        apply(&good).await;
        set(&name, Rollout::Observed);
        set(&name, Rollout::Done);
        let bad = workload("Deployment", &name, pod_template("web:2", "64Mi"));
        apply(&bad).await;
        set(&name, Rollout::Observed);
        set(&name, Rollout::Failed);
        apply(&good).await;
        let controller = async {
            tokio::time::sleep(Duration::from_millis(run % 5 * 20)).await;
            set(&name, Rollout::Observed);
            tokio::time::sleep(Duration::from_millis(60)).await;
            set(&name, Rollout::Done);
        };
        let (targets, options) = ([reference(&good)], quick(10_000));
        let (report, ()) = tokio::join!(kube.wait(&targets, &options), controller);
        let report = report.unwrap();
        assert_eq!(
            report.outcome,
            WaitOutcome::Healthy,
            "run {run}: {report:?}"
        );
    }
}

#[tokio::test]
async fn a_deployment_waits_for_its_rollout_to_finish() {
    let cluster = TestCluster::start();
    cluster.follow_spec(Duration::from_millis(150));
    let kube = KubeCluster::new(cluster.client());
    let object = workload("Deployment", "api", pod_template("nginx:1.27", "64Mi"));
    kube.apply(std::slice::from_ref(&object), &ApplyOptions::default())
        .await
        .unwrap();
    let report = kube
        .wait(&[reference(&object)], &quick(10_000))
        .await
        .unwrap();
    assert_eq!(report.outcome, WaitOutcome::Healthy, "{report:?}");
}

#[tokio::test]
async fn new_pods_crash_looping_fail_fast_and_old_ones_do_not_count() {
    let cluster = TestCluster::start();
    let kube = KubeCluster::new(cluster.client());
    let old = workload("Deployment", "api", pod_template("nginx:1.27", "64Mi"));
    kube.apply(std::slice::from_ref(&old), &ApplyOptions::default())
        .await
        .unwrap();
    cluster
        .add_pods("default", "api", 2, &PodState::oom_killed(5))
        .unwrap();

    // The fix: more memory, a new template, a new ReplicaSet whose pod starts.
    let new = workload("Deployment", "api", pod_template("nginx:1.27", "256Mi"));
    kube.apply(std::slice::from_ref(&new), &ApplyOptions::default())
        .await
        .unwrap();
    let pods = cluster
        .add_pods("default", "api", 1, &PodState::Running)
        .unwrap();
    cluster
        .set_rollout("Deployment", "default", "api", Rollout::Stuck)
        .unwrap();
    assert_eq!(
        outcome(&kube, &new, 200).await,
        WaitOutcome::TimedOut,
        "the old revision's crash-looping pods are not the new rollout's failure"
    );

    cluster
        .set_pod_state("default", &pods[0], &PodState::ImagePullBackOff)
        .unwrap();
    match outcome(&kube, &new, 60_000).await {
        WaitOutcome::Failed { object, message } => {
            assert_eq!(object.to_string(), "Deployment/default/api");
            assert!(message.contains(&pods[0]), "{message}");
            assert!(message.contains("ImagePullBackOff"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    let patient = WaitOptions {
        fail_fast: false,
        ..quick(150)
    };
    let report = kube.wait(&[reference(&new)], &patient).await.unwrap();
    assert_eq!(report.outcome, WaitOutcome::TimedOut);
}

async fn set_status(client: &kube::Client, object: &Value, status: Value) {
    let (group, version) = object["apiVersion"]
        .as_str()
        .unwrap()
        .split_once('/')
        .unwrap_or(("", object["apiVersion"].as_str().unwrap()));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, object["kind"].as_str().unwrap());
    let (resource, _) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
    let api: Api<DynamicObject> = match object.pointer("/metadata/namespace") {
        Some(ns) => Api::namespaced_with(client.clone(), ns.as_str().unwrap(), &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let params = PatchParams {
        field_manager: Some("test-controller".into()),
        ..PatchParams::default()
    };
    api.patch_status(
        object["metadata"]["name"].as_str().unwrap(),
        &params,
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn objects_judged_by_their_status_are_done_time_out_or_fail_fast() {
    let cluster = TestCluster::start();
    let client = cluster.client();
    let kube = KubeCluster::new(client.clone());
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "caches.example.remediator.dev"},
        "spec": {"group": "example.remediator.dev", "scope": "Namespaced",
            "names": {"plural": "caches", "singular": "cache", "kind": "Cache", "listKind": "CacheList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}});
    kube.apply(std::slice::from_ref(&crd), &ApplyOptions::default())
        .await
        .unwrap();
    let condition = |kind: &str, status: &str| {
        json!({"conditions": [{"type": kind, "status": status, "reason": "Test",
            "message": format!("{kind} is {status}")}]})
    };
    // (object, progressing status, healthy status, failed status)
    let cases = [
        (
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data", "namespace": "default"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
            json!({"phase": "Pending"}),
            json!({"phase": "Bound"}),
            Some(json!({"phase": "Lost"})),
        ),
        (
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "api", "namespace": "default"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                    "minReplicas": 1, "maxReplicas": 3}}),
            json!({"currentReplicas": 1, "desiredReplicas": 1}),
            condition("AbleToScale", "True"),
            Some(condition("AbleToScale", "False")),
        ),
        (
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "edge", "namespace": "default"},
                "spec": {"type": "LoadBalancer", "selector": {"app": "api"},
                    "ports": [{"port": 80, "targetPort": 8080}]}}),
            json!({"loadBalancer": {}}),
            json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}),
            None,
        ),
        (
            json!({"apiVersion": "example.remediator.dev/v1", "kind": "Cache",
                "metadata": {"name": "hot", "namespace": "default"}, "spec": {"size": 1}}),
            condition("Ready", "Unknown"),
            condition("Ready", "True"),
            Some(condition("Ready", "False")),
        ),
    ];
    for (object, progressing, healthy, failed) in cases {
        let kind = object["kind"].as_str().unwrap().to_owned();
        kube.apply(std::slice::from_ref(&object), &ApplyOptions::default())
            .await
            .unwrap();
        set_status(&client, &object, progressing).await;
        assert_eq!(
            outcome(&kube, &object, 150).await,
            WaitOutcome::TimedOut,
            "{kind} progressing"
        );
        if let Some(failed) = failed {
            set_status(&client, &object, failed).await;
            let result = outcome(&kube, &object, 60_000).await;
            assert!(is_failed(&result), "{kind} failed: {result:?}");
        }
        set_status(&client, &object, healthy).await;
        assert_eq!(
            outcome(&kube, &object, 5_000).await,
            WaitOutcome::Healthy,
            "{kind} healthy"
        );
    }
    let missing = ObjectRef::new("v1", "ConfigMap", Some("default"), "never-made");
    let report = kube.wait(&[missing], &quick(100)).await.unwrap();
    assert_eq!(report.outcome, WaitOutcome::TimedOut);
    assert_eq!(report.health[0].1.status.to_string(), "Missing");
}
