//! The cluster edge against the test API server: dry-run with field owners and masked diffs.
//! When `REMEDIATOR_E2E_KUBECONFIG` is set these tests also run against that cluster.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use remediator::cluster::dryrun::{DryRunOptions, dry_run};
use remediator::model::ChangeAction;
use serde_json::{Value, json};
use testkit::TestCluster;

fn deployment(replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}})
}

/// Clients to run against: the test API server, and the real cluster when one is configured.
async fn clients(cluster: &TestCluster) -> Vec<(String, kube::Client)> {
    let mut out = vec![("test API server".to_string(), cluster.client())];
    match std::env::var("REMEDIATOR_E2E_KUBECONFIG") {
        Ok(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig");
            let options = kube::config::KubeConfigOptions::default();
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .expect("kubeconfig");
            out.push((
                format!("cluster of {path}"),
                kube::Client::try_from(config).unwrap(),
            ));
        }
        Err(_) => eprintln!(
            "note: REMEDIATOR_E2E_KUBECONFIG is not set; these tests run against the test API server only"
        ),
    }
    out
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
