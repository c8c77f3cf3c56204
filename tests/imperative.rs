//! Imperative action records carried out against the test API server as `kubectl drain` would:
//! a drain lists only its node's pods, refuses DaemonSet pods it may not leave and pods with
//! local storage before evicting anything, waits for the evicted pods to go, and a record's
//! timeout that is no duration is an error naming the field; a pod deletion whose answer was
//! lost is looked up before it is sent again.

mod common;

use remediator::cluster::{Cluster, KubeCluster};
use serde_json::{Value, json};
use testkit::{Fault, FaultKind, TestCluster};

fn record(action: &str, target: Value, options: Value) -> Value {
    json!({"apiVersion": "remediator.dev/v1alpha1", "kind": "Remediation",
        "metadata": {"name": format!("{action}-x")},
        "spec": {"action": action, "target": target, "options": options}})
}

fn drain(options: Value) -> Value {
    record("drain-node", json!({"kind": "Node", "name": "n1"}), options)
}

/// Nodes n1 and n2, with `pods` (name, owner kind) on n1 and one pod on n2.
fn cluster_with(pods: &[(&str, Option<&str>)]) -> TestCluster {
    let cluster = TestCluster::start();
    for node in ["n1", "n2"] {
        let node =
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}, "spec": {}});
        cluster.create(node, "kubelet").unwrap();
    }
    for (name, owner) in pods {
        cluster
            .create(
                common::pod_on("n1", name, *owner),
                "kube-controller-manager",
            )
            .unwrap();
    }
    cluster
        .create(
            common::pod_on("n2", "elsewhere", None),
            "kube-controller-manager",
        )
        .unwrap();
    cluster
}

fn pod_exists(cluster: &TestCluster, name: &str) -> bool {
    cluster.object("Pod", "default", name).is_some()
}

#[tokio::test]
async fn a_drain_lists_its_node_s_pods_only_and_waits_for_them_to_go() {
    let cluster = cluster_with(&[("app", None), ("agent", Some("DaemonSet"))]);
    let kube = KubeCluster::new(cluster.client());
    let done = kube.execute(&drain(json!({})), false).await.unwrap();
    assert!(
        done.contains(&"evicted Pod/default/app".to_owned()),
        "{done:?}"
    );
    assert!(
        done.contains(&"left Pod/default/agent (DaemonSet)".to_owned()),
        "{done:?}"
    );
    assert!(!pod_exists(&cluster, "app"));
    assert!(pod_exists(&cluster, "agent") && pod_exists(&cluster, "elsewhere"));
    let listed: Vec<_> = cluster
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v1/pods")
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(
        listed[0].query.contains("fieldSelector=spec.nodeName%3Dn1"),
        "{:?}",
        listed[0]
    );
    let looked_up = cluster
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v1/namespaces/default/pods/app")
        .count();
    assert!(looked_up >= 1, "the evicted pod is waited for");
}

#[tokio::test]
async fn a_drain_refuses_what_kubectl_drain_refuses_before_evicting_anything() {
    let cluster = cluster_with(&[("app", None), ("agent", Some("DaemonSet"))]);
    let kube = KubeCluster::new(cluster.client());
    let error = kube
        .execute(&drain(json!({"ignoreDaemonSets": false})), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("Pod/default/agent is a DaemonSet's (set ignoreDaemonSets)"),
        "{error}"
    );
    assert!(pod_exists(&cluster, "app"), "nothing evicted");

    let cache = TestCluster::start();
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {}});
    cache.create(node, "kubelet").unwrap();
    let mut pod = common::pod_on("n1", "cache", None);
    pod["spec"]["volumes"] = json!([{"name": "scratch", "emptyDir": {}}]);
    cache.create(pod, "kube-controller-manager").unwrap();
    let kube = KubeCluster::new(cache.client());
    let error = kube
        .execute(&drain(json!({})), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("Pod/default/cache has local storage (emptyDir)"),
        "{error}"
    );
    assert!(pod_exists(&cache, "cache"));
    let done = kube
        .execute(&drain(json!({"deleteEmptyDirData": true})), false)
        .await
        .unwrap();
    assert!(
        done.contains(&"evicted Pod/default/cache".to_owned()),
        "{done:?}"
    );
}

#[tokio::test]
async fn a_timeout_that_is_no_duration_is_an_error_naming_the_field_and_value() {
    let cluster = cluster_with(&[("app", None)]);
    let kube = KubeCluster::new(cluster.client());
    for bad in [json!("ten minutes"), json!("10"), json!(600)] {
        let error = kube
            .execute(&drain(json!({"timeout": bad})), false)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("spec.options.timeout"), "{error}");
        assert!(error.contains("is not a duration"), "{error}");
    }
    assert!(pod_exists(&cluster, "app"), "nothing evicted");
    let done = kube
        .execute(&drain(json!({"timeout": "1m30s"})), false)
        .await
        .unwrap();
    assert!(
        done.contains(&"evicted Pod/default/app".to_owned()),
        "{done:?}"
    );
}

#[tokio::test]
async fn a_pod_deletion_whose_answer_was_lost_is_looked_up_before_it_is_sent_again() {
    let cluster = cluster_with(&[("stuck", None)]);
    cluster.faults().add(Fault::new(
        "DELETE",
        "/api/v1/namespaces/default/pods/stuck",
        FaultKind::Drop,
    ));
    let kube = KubeCluster::new(cluster.client());
    let delete = record(
        "delete-pod",
        json!({"kind": "Pod", "namespace": "default", "name": "stuck"}),
        json!({}),
    );
    let done = kube.execute(&delete, false).await.unwrap();
    assert_eq!(done, ["deleted Pod/default/stuck"]);
    assert!(!pod_exists(&cluster, "stuck"));
    let calls: Vec<String> = cluster
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v1/namespaces/default/pods/stuck")
        .map(|r| r.method)
        .collect();
    // Looked up, deleted (answer lost), looked up again, deleted.
    assert_eq!(calls, ["GET", "DELETE", "GET", "DELETE"], "{calls:?}");
}
