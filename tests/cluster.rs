//! The cluster edge against the test API server: dry-run with field owners and masked diffs.
//! When `REMEDIATOR_E2E_KUBECONFIG` is set these tests also run against that cluster.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use remediator::cluster::dryrun::{DryRunOptions, dry_run};
use remediator::model::ChangeAction;
use serde_json::{Value, json};
use testkit::TestCluster;

mod common;
use common::clients;

fn deployment(replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}})
}

#[tokio::test]
async fn dry_run_names_the_autoscaler_that_owns_replicas() {
    let cluster = TestCluster::start();
    for (target, client) in clients(&cluster).await {
        let api: Api<Deployment> = Api::default_namespaced(client.clone());
        let gitops = PatchParams::apply("remediator").force();
        api.patch("api", &gitops, &Patch::Apply(deployment(2)))
            .await
            .unwrap();
        let options = DryRunOptions::default();

        let own = dry_run(&client, &[deployment(3)], &options).await.unwrap();
        assert_eq!(own[0].action, ChangeAction::Configured, "{target}");
        assert!(
            own[0].conflicts.is_empty(),
            "{target}: our own earlier apply is no conflict"
        );
        assert!(
            own[0].diff.contains("-  replicas: 2") && own[0].diff.contains("+  replicas: 3"),
            "{target}: {}",
            own[0].diff
        );

        let scale = json!({"spec": {"replicas": 4}});
        let autoscaler = PatchParams {
            field_manager: Some("kube-controller-manager".into()),
            ..Default::default()
        };
        api.patch_scale("api", &autoscaler, &Patch::Merge(&scale))
            .await
            .unwrap();
        let contested = dry_run(&client, &[deployment(3)], &options).await.unwrap();
        assert_eq!(contested[0].conflicts.len(), 1, "{target}");
        let conflict = &contested[0].conflicts[0];
        assert_eq!(conflict.field, ".spec.replicas", "{target}");
        assert!(
            conflict.manager.contains("\"kube-controller-manager\""),
            "{target}: {}",
            conflict.manager
        );
        let stored = api.get("api").await.unwrap();
        assert_eq!(
            stored.spec.replicas,
            Some(4),
            "{target}: a dry-run stores nothing"
        );

        let unchanged = dry_run(&client, &[deployment(4)], &options).await.unwrap();
        assert_eq!(
            unchanged[0].action,
            ChangeAction::Unchanged,
            "{target}: {}",
            unchanged[0].diff
        );
        assert!(unchanged[0].diff.is_empty());
    }
}

#[tokio::test]
async fn dry_run_of_a_secret_never_shows_its_values() {
    let cluster = TestCluster::start();
    let client = cluster.client();
    let secret = |value: &str| {
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "default"}, "stringData": {"password": value}})
    };
    let created = dry_run(&client, &[secret("hunter2")], &DryRunOptions::default())
        .await
        .unwrap();
    assert_eq!(created[0].action, ChangeAction::Created);
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::default_namespaced(client.clone());
    api.patch(
        "creds",
        &PatchParams::apply("remediator"),
        &Patch::Apply(secret("hunter2")),
    )
    .await
    .unwrap();
    let changed = dry_run(
        &client,
        &[secret("correct-horse")],
        &DryRunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(changed[0].action, ChangeAction::Configured);
    let rendered = format!("{created:?}{}{}", created[0].diff, changed[0].diff);
    for secret_text in [
        "hunter2",
        "aHVudGVyMg==",
        "correct-horse",
        "Y29ycmVjdC1ob3JzZQ==",
    ] {
        assert!(
            !rendered.contains(secret_text),
            "{secret_text} leaked: {rendered}"
        );
    }
    assert!(changed[0].diff.contains("***"), "{}", changed[0].diff);
}

/// metrics.k8s.io served the way metrics-server's aggregated API answers, as a CRD of the test
/// server (PodMetrics keep `timestamp`, `window` and `containers` at the top level).
fn pod_metrics_crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "pods.metrics.k8s.io"},
        "spec": {"group": "metrics.k8s.io", "scope": "Namespaced",
            "names": {"plural": "pods", "singular": "podmetrics", "kind": "PodMetrics", "listKind": "PodMetricsList"},
            "versions": [{"name": "v1beta1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "timestamp": {"type": "string"}, "window": {"type": "string"},
                    "containers": {"type": "array", "items": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}}}}]}})
}

#[tokio::test]
async fn the_live_snapshot_lists_workloads_pods_and_usage() {
    use remediator::cluster::{ApplyOptions, Cluster, KubeCluster, SnapshotOptions};
    let cluster = TestCluster::start();
    let kube = KubeCluster::new(cluster.client());
    kube.apply(&[deployment(2)], &ApplyOptions::default())
        .await
        .unwrap();
    let pods = cluster
        .add_pods("default", "api", 2, &testkit::PodState::oom_killed(4))
        .unwrap();

    let without_metrics = kube.snapshot(&SnapshotOptions::default()).await.unwrap();
    assert_eq!(without_metrics.snapshot.pods.len(), 2);
    assert_eq!(without_metrics.snapshot.deployments.len(), 1);
    assert_eq!(without_metrics.snapshot.replica_sets.len(), 1);
    assert!(without_metrics.snapshot.usage.containers.is_empty());
    assert!(
        without_metrics.problems.is_empty(),
        "metrics.k8s.io not served is no problem: {:?}",
        without_metrics.problems
    );

    kube.apply(&[pod_metrics_crd()], &ApplyOptions::default())
        .await
        .unwrap();
    // metrics-server reports CPU in nanocores.
    for (pod, (cpu, memory)) in pods
        .iter()
        .zip([("250000000n", "100Mi"), ("250m", "300Mi")])
    {
        let metrics = json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
            "metadata": {"name": pod, "namespace": "default"},
            "timestamp": "2026-11-22T10:00:00Z", "window": "30s",
            "containers": [{"name": "app", "usage": {"cpu": cpu, "memory": memory}}]});
        cluster.create(metrics, "metrics-server").unwrap();
    }
    let loaded = kube.snapshot(&SnapshotOptions::default()).await.unwrap();
    let usage = &loaded.snapshot.usage.containers;
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert_eq!(usage[0].workload.kind, "Deployment");
    assert_eq!(usage[0].workload.name, "api");
    assert_eq!(usage[0].container, "app");
    assert_eq!(usage[0].cpu, vec![(1_795_341_600.0, 0.25)]);
    assert_eq!(
        usage[0].memory,
        vec![(1_795_341_600.0, 200.0 * 1024.0 * 1024.0)]
    );

    let findings = remediator::detect::detect(
        &loaded.snapshot,
        &remediator::detect::DetectOptions::at(loaded.snapshot.taken_at().unwrap()),
    );
    assert!(
        findings
            .iter()
            .any(|f| f.code.to_string() == "crash-loop-oom"),
        "{findings:?}"
    );

    let scoped = kube
        .snapshot(&SnapshotOptions {
            namespace: Some("kube-system".into()),
            ..SnapshotOptions::default()
        })
        .await
        .unwrap();
    assert!(scoped.snapshot.pods.is_empty());

    // A sample that cannot be read is an error naming the pod, never a zero.
    let bad = json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetricsList",
        "metadata": {"resourceVersion": "1"},
        "items": [{"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
            "metadata": {"name": pods[0], "namespace": "default"},
            "timestamp": "2026-11-22T10:00:00Z", "window": "30s",
            "containers": [{"name": "app", "usage": {"cpu": "lots", "memory": "1Mi"}}]}]});
    cluster.faults().add(testkit::Fault::new(
        "GET",
        "/apis/metrics.k8s.io/v1beta1/pods",
        testkit::FaultKind::Answer {
            status: 200,
            body: bad,
        },
    ));
    let error = kube
        .snapshot(&SnapshotOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!("PodMetrics/default/{}", pods[0]))
            && error.contains("cpu usage Some(\"lots\") is not a quantity"),
        "{error}"
    );
}

/// Argo CD's `argocd-cm` says how it tracks what it applies: read into the snapshot when it is
/// there, and when reading it is not allowed, said, with every method accepted.
#[tokio::test]
async fn the_live_snapshot_reads_how_argo_cd_tracks() {
    use remediator::cluster::{Cluster, KubeCluster, SnapshotOptions};
    let cluster = TestCluster::start();
    let kube = KubeCluster::new(cluster.client());
    let without = kube.snapshot(&SnapshotOptions::default()).await.unwrap();
    assert_eq!(without.snapshot.argo_tracking, None, "no Argo CD here");
    assert!(without.problems.is_empty(), "{:?}", without.problems);
    let settings = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm", "namespace": "argocd"},
        "data": {"application.resourceTrackingMethod": "label",
            "application.instanceLabelKey": "argocd.argoproj.io/instance"}});
    let namespace =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}});
    cluster.create(namespace, "argocd").unwrap();
    cluster.create(settings, "argocd").unwrap();
    let loaded = kube.snapshot(&SnapshotOptions::default()).await.unwrap();
    assert_eq!(
        loaded.snapshot.argo_tracking,
        Some(remediator::model::ArgoTracking {
            method: Some("label".into()),
            label_key: Some("argocd.argoproj.io/instance".into()),
        })
    );
    cluster.faults().add(testkit::Fault::new(
        "GET",
        "/api/v1/namespaces/argocd/configmaps/argocd-cm",
        testkit::FaultKind::Answer {
            status: 403,
            body: json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "configmaps \"argocd-cm\" is forbidden", "reason": "Forbidden",
                "code": 403}),
        },
    ));
    let forbidden = kube.snapshot(&SnapshotOptions::default()).await.unwrap();
    assert_eq!(forbidden.snapshot.argo_tracking, None);
    let said: Vec<String> = forbidden.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        said,
        ["ConfigMap argocd/argocd-cm: not read: configmaps \"argocd-cm\" is forbidden (Forbidden)"]
    );
    assert!(
        forbidden.problems.iter().all(|p| !p.unread()),
        "no object went unread"
    );
}

/// A held lock is renewed while its holder works, so another holder waits however long the
/// work takes, and is free once given back. (A holder that dies stops renewing: the crash
/// drills in `tests/merge.rs` rerun after its lock has expired.)
#[tokio::test]
async fn a_held_lock_is_renewed_while_its_holder_works() {
    use remediator::cluster::lock::{LockOptions, acquire, release};
    use remediator::model::ObjectRef;
    let cluster = TestCluster::start();
    let client = cluster.client();
    let object = ObjectRef::new("apps/v1", "Deployment", Some("default"), "api");
    let options = |holder: &str| LockOptions {
        holder: holder.to_owned(),
        duration: std::time::Duration::from_secs(2),
        wait: std::time::Duration::ZERO,
        ..LockOptions::default()
    };
    let first = acquire(&client, std::slice::from_ref(&object), &options("first"))
        .await
        .unwrap();
    // Past two durations: without renewal the lock would have expired.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let refused = acquire(&client, std::slice::from_ref(&object), &options("second")).await;
    assert!(
        matches!(refused, Err(remediator::cluster::Error::LockHeld { .. })),
        "{refused:?}"
    );
    release(&client, &first).await.unwrap();
    let second = acquire(&client, std::slice::from_ref(&object), &options("second"))
        .await
        .unwrap();

    // The renewal shows on the Lease.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "default");
    let name = &second.leases[0];
    let renewed = |lease: k8s_openapi::api::coordination::v1::Lease| {
        lease.spec.unwrap().renew_time.unwrap().0
    };
    let before = renewed(leases.get(name).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        renewed(leases.get(name).await.unwrap()) > before,
        "renewed while held"
    );
    release(&client, &second).await.unwrap();
    let third = acquire(&client, std::slice::from_ref(&object), &options("third"))
        .await
        .unwrap();
    assert_eq!(third.holder, "third");
}
