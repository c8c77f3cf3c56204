//! Staged server-side apply against the test API server (and a real cluster when
//! `REMEDIATOR_E2E_KUBECONFIG` is set): CRDs before their custom resources, the partial change
//! set on a failure, retries under injected faults proven by the request log, unchanged objects
//! left unwritten, and GitOps-managed objects left to their tool.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use remediator::cluster::{ApplyOptions, Cluster, Error, KubeCluster, RetryPolicy};
use remediator::model::ChangeAction;
use serde_json::{Value, json};
use testkit::{Fault, FaultKind, TestCluster};

mod common;
use common::clients;

fn crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.remediator.dev"},
        "spec": {"group": "example.remediator.dev", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer", "minimum": 1}}}}}}}]}})
}

fn widget(namespace: &str, size: i64) -> Value {
    json!({"apiVersion": "example.remediator.dev/v1", "kind": "Widget",
        "metadata": {"name": "gear", "namespace": namespace}, "spec": {"size": size}})
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn config_map(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"}, "data": {"key": value}})
}

fn actions(changes: &remediator::model::ChangeSet) -> Vec<(String, ChangeAction)> {
    changes
        .entries
        .iter()
        .map(|e| (e.subject.to_string(), e.action))
        .collect()
}

/// Whether every object got `action`.
fn every(changes: &remediator::model::ChangeSet, action: ChangeAction) -> bool {
    changes.entries.iter().all(|e| e.action == action)
}

/// A client that does not retry by itself, so that every fault reaches our own retries.
fn client_without_retries(cluster: &TestCluster) -> kube::Client {
    let mut config = cluster.config();
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 6,
        initial: Duration::from_millis(5),
        max: Duration::from_secs(2),
        deadline: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn a_crd_backed_class_applies_after_its_crd_is_established_in_one_call() {
    let cluster = TestCluster::start();
    let class_crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgetclasses.example.remediator.dev"},
        "spec": {"group": "example.remediator.dev", "scope": "Cluster",
            "names": {"plural": "widgetclasses", "singular": "widgetclass", "kind": "WidgetClass", "listKind": "WidgetClassList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    let class = json!({"apiVersion": "example.remediator.dev/v1", "kind": "WidgetClass",
        "metadata": {"name": "fast"}, "spec": {"controller": "example.remediator.dev/gears"}});
    // The workload and the class come first on purpose: staging puts the CRD before them.
    let objects = vec![config_map("uses-fast", "fast"), class, class_crd];
    let kube = KubeCluster::new(cluster.client());
    let changes = kube
        .apply(&objects, &ApplyOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        actions(&changes),
        vec![
            (
                "CustomResourceDefinition/widgetclasses.example.remediator.dev".to_string(),
                ChangeAction::Created
            ),
            ("WidgetClass/fast".to_string(), ChangeAction::Created),
            (
                "ConfigMap/default/uses-fast".to_string(),
                ChangeAction::Created
            ),
        ]
    );
    // Discovery now knows the new kind's scope, which the repository's files alone would not.
    let scopes = remediator::cluster::Resolver::new(&cluster.client())
        .await
        .unwrap()
        .scopes();
    use remediator::manifests::Scope;
    assert_eq!(scopes.of("WidgetClass"), Scope::Cluster);
    assert_eq!(scopes.of("ConfigMap"), Scope::Namespaced);
    assert_eq!(scopes.of("Gadget"), Scope::Unknown);
    assert_eq!(
        remediator::manifests::Scopes::default().of("WidgetClass"),
        Scope::Unknown
    );
}

#[tokio::test]
async fn a_crd_and_its_custom_resource_apply_in_one_call() {
    let cluster = TestCluster::start();
    for (target, client) in clients(&cluster).await {
        let ns = "remediator-e2e-widgets";
        // The custom resource comes first on purpose: staging puts the CRD before it.
        let objects = vec![widget(ns, 3), crd(), namespace(ns)];
        let kube = KubeCluster::new(client.clone());
        let changes = kube
            .apply(&objects, &ApplyOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        assert_eq!(
            actions(&changes),
            vec![
                (
                    "CustomResourceDefinition/widgets.example.remediator.dev".to_string(),
                    ChangeAction::Created
                ),
                (format!("Namespace/{ns}"), ChangeAction::Created),
                (format!("Widget/{ns}/gear"), ChangeAction::Created),
            ],
            "{target}"
        );
        let stored = kube
            .get(&changes.entries[2].subject)
            .await
            .unwrap()
            .expect("the widget exists");
        assert_eq!(stored["spec"]["size"], 3, "{target}");

        let again = kube
            .apply(&objects, &ApplyOptions::default())
            .await
            .unwrap();
        assert!(
            every(&again, ChangeAction::Unchanged),
            "{target}: {:?}",
            actions(&again)
        );
        let changed = kube
            .apply(&[widget(ns, 5)], &ApplyOptions::default())
            .await
            .unwrap();
        assert_eq!(changed.entries[0].action, ChangeAction::Configured);
    }
}

#[tokio::test]
async fn unchanged_objects_are_not_written() {
    let cluster = TestCluster::start();
    let kube = KubeCluster::new(cluster.client());
    // Three objects are read one by one; twelve of one namespace with one list.
    for (prefix, count, gets) in [("few", 3, 3), ("many", 12, 0)] {
        let objects: Vec<Value> = (0..count)
            .map(|i| config_map(&format!("{prefix}{i}"), "v"))
            .collect();
        kube.apply(&objects, &ApplyOptions::default())
            .await
            .unwrap();
        cluster.faults().clear_log();
        let again = kube
            .apply(&objects, &ApplyOptions::default())
            .await
            .unwrap();
        assert!(
            every(&again, ChangeAction::Unchanged),
            "{:?}",
            actions(&again)
        );
        let log = cluster.requests();
        let writes: Vec<_> = log
            .iter()
            .filter(|r| r.method == "PATCH" && !r.query.contains("dryRun"))
            .collect();
        assert!(
            writes.is_empty(),
            "unchanged objects were written: {writes:?}"
        );
        let single_gets = log
            .iter()
            .filter(|r| r.method == "GET" && r.path.contains("/configmaps/"))
            .count();
        assert_eq!(single_gets, gets, "{prefix}");
    }
}

#[tokio::test]
async fn a_failure_midway_returns_the_partial_change_set() {
    let cluster = TestCluster::start();
    let kube = KubeCluster::new(cluster.client());
    let broken = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "broken", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "b"}},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}});
    let after = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "later", "namespace": "default"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "a"}}}});
    let objects = vec![
        after,
        broken,
        config_map("first", "1"),
        config_map("second", "2"),
    ];
    let options = ApplyOptions {
        concurrency: 1,
        ..ApplyOptions::default()
    };
    let stopped = kube.apply(&objects, &options).await.unwrap_err();
    assert_eq!(
        actions(&stopped.changes),
        vec![
            ("ConfigMap/default/first".to_string(), ChangeAction::Created),
            (
                "ConfigMap/default/second".to_string(),
                ChangeAction::Created
            ),
            (
                "Deployment/default/broken".to_string(),
                ChangeAction::Failed
            ),
        ]
    );
    let message = stopped.to_string();
    assert!(
        message.starts_with("Deployment/default/broken: apply failed:"),
        "{message}"
    );
    assert!(message.contains("(Invalid)"), "{message}");
    assert!(message.contains("selector"), "{message}");
    assert!(matches!(stopped.error, Error::Api { verb: "apply", .. }));
    assert_eq!(stopped.error.status(), Some(422));
    assert!(cluster.object("ConfigMap", "default", "second").is_some());
    assert!(
        cluster
            .object("PodDisruptionBudget", "default", "later")
            .is_none(),
        "nothing after the failure is started"
    );
}

#[tokio::test]
async fn faults_are_retried_and_nothing_is_lost_or_applied_twice() {
    let cluster = TestCluster::start();
    let kube = KubeCluster::new(client_without_retries(&cluster));
    let path = "/api/v1/namespaces/default/configmaps/*";
    for (kind, times) in [
        (FaultKind::TooManyRequests { retry_after: 1 }, 1),
        (FaultKind::Status(500), 2),
        (FaultKind::Status(503), 2),
        (FaultKind::Drop, 2),
    ] {
        cluster
            .faults()
            .add(Fault::new("PATCH", path, kind).times(times));
    }
    // Twenty objects of one namespace: their live state is read with one list, which fails once.
    cluster.faults().add(Fault::new(
        "GET",
        "/api/v1/namespaces/default/configmaps",
        FaultKind::Status(503),
    ));
    let objects: Vec<Value> = (0..20)
        .map(|i| config_map(&format!("cm{i:02}"), &format!("value {i}")))
        .collect();
    let options = ApplyOptions {
        retry: quick_retries(),
        ..ApplyOptions::default()
    };
    let start = Instant::now();
    let changes = kube.apply(&objects, &options).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "the 429's Retry-After was honoured"
    );
    assert_eq!(changes.entries.len(), 20);
    assert!(every(&changes, ChangeAction::Created));
    for i in 0..20 {
        let stored = cluster
            .object("ConfigMap", "default", &format!("cm{i:02}"))
            .expect("nothing lost");
        assert_eq!(stored["data"]["key"], format!("value {i}"));
        assert_eq!(
            stored["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
    let log = cluster.requests();
    let faulted: Vec<_> = log.iter().filter(|r| r.fault.is_some()).collect();
    assert_eq!(
        faulted.len(),
        8,
        "every injected fault was hit: {faulted:?}"
    );
    let mut writes: BTreeMap<&str, Vec<Option<u16>>> = BTreeMap::new();
    for r in log
        .iter()
        .filter(|r| r.method == "PATCH" && !r.query.contains("dryRun"))
    {
        writes.entry(&r.path).or_default().push(r.status);
    }
    for (path, statuses) in &writes {
        let applied = statuses
            .iter()
            .filter(|s| **s == Some(200) || **s == Some(201));
        assert_eq!(applied.count(), 1, "{path} applied once: {statuses:?}");
        if statuses.len() > 1 {
            assert_eq!(
                statuses.last(),
                Some(&Some(201)),
                "{path}: a failed write was retried until it succeeded: {statuses:?}"
            );
        }
    }
    let retried = writes.values().filter(|s| s.len() > 1).count();
    assert!(retried >= 1, "the log shows retried writes: {writes:?}");
    let retried_writes: usize = writes.values().map(|s| s.len() - 1).sum();
    assert_eq!(retried_writes, 7, "one retry per faulted write: {writes:?}");
}

#[tokio::test]
async fn retries_give_up_with_the_api_error_after_the_last_attempt() {
    let cluster = TestCluster::start();
    let kube = KubeCluster::new(client_without_retries(&cluster));
    cluster.faults().add(
        Fault::new(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/stubborn",
            FaultKind::Status(503),
        )
        .times(100),
    );
    let options = ApplyOptions {
        retry: RetryPolicy {
            attempts: 3,
            ..quick_retries()
        },
        ..ApplyOptions::default()
    };
    let stopped = kube
        .apply(&[config_map("stubborn", "x")], &options)
        .await
        .unwrap_err();
    assert_eq!(stopped.error.status(), Some(503));
    assert_eq!(
        actions(&stopped.changes),
        vec![(
            "ConfigMap/default/stubborn".to_string(),
            ChangeAction::Failed
        )]
    );
    let attempts = cluster
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(attempts, 3);
}

#[tokio::test]
async fn objects_a_gitops_tool_manages_are_left_to_it() {
    let cluster = TestCluster::start();
    let mut managed = config_map("argo-owned", "from argo");
    managed["metadata"]["annotations"] = json!({
        "argocd.argoproj.io/tracking-id": "shop:/ConfigMap:default/argo-owned"});
    cluster.create(managed, "argocd-controller").unwrap();
    let kube = KubeCluster::new(cluster.client());
    let changes = kube
        .apply(
            &[config_map("argo-owned", "from us"), config_map("ours", "x")],
            &ApplyOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        actions(&changes),
        vec![
            (
                "ConfigMap/default/argo-owned".to_string(),
                ChangeAction::Skipped
            ),
            ("ConfigMap/default/ours".to_string(), ChangeAction::Created),
        ]
    );
    let stored = cluster
        .object("ConfigMap", "default", "argo-owned")
        .unwrap();
    assert_eq!(stored["data"]["key"], "from argo");
}

#[tokio::test]
async fn a_dry_run_apply_stores_nothing() {
    let cluster = TestCluster::start();
    let kube = KubeCluster::new(cluster.client());
    let options = ApplyOptions {
        dry_run: true,
        ..ApplyOptions::default()
    };
    let objects = vec![crd(), widget("default", 2), config_map("planned", "x")];
    let changes = kube.apply(&objects, &options).await.unwrap();
    assert!(
        every(&changes, ChangeAction::Created),
        "{:?}",
        actions(&changes)
    );
    assert!(cluster.object("ConfigMap", "default", "planned").is_none());
    let writes = cluster
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && !r.query.contains("dryRun"))
        .count();
    assert_eq!(writes, 0);
}
