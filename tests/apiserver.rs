//! The real kube client against the test API server: server-side apply with conflicts and force,
//! dry-run, keyed lists merged across managers, CRD then custom resource, watch events,
//! subresources, patches, lists, simulation hooks and every kind of injected fault.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::{ApiResource, Discovery};
use serde_json::{Value, json};
use testkit::{Fault, FaultKind, PodState, Rollout, TestCluster};

fn deployment(name: &str, replicas: i64, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}}}})
}

fn apply(manager: &str) -> PatchParams {
    PatchParams::apply(manager)
}

fn api_error(error: kube::Error) -> kube::core::Status {
    match error {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn managers(object: &impl kube::ResourceExt) -> Vec<String> {
    object
        .managed_fields()
        .iter()
        .map(|e| e.manager.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn apply_conflicts_with_another_manager_until_forced() {
    let cluster = TestCluster::start();
    let api: Api<Deployment> = Api::default_namespaced(cluster.client());
    let created = api
        .patch(
            "api",
            &apply("gitops"),
            &Patch::Apply(deployment("api", 2, "nginx:1.27")),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some());

    let error = api
        .patch(
            "api",
            &apply("remediator"),
            &Patch::Apply(deployment("api", 5, "nginx:1.27")),
        )
        .await
        .unwrap_err();
    let status = api_error(error);
    assert_eq!(status.code, 409);
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"gitops\": .spec.replicas"
    );

    let shared = api
        .patch(
            "api",
            &apply("remediator"),
            &Patch::Apply(deployment("api", 2, "nginx:1.27")),
        )
        .await
        .unwrap();
    assert_eq!(managers(&shared).len(), 2, "same values share ownership");

    let forced = api
        .patch(
            "api",
            &apply("remediator").force(),
            &Patch::Apply(deployment("api", 6, "nginx:1.27")),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.replicas, Some(6));
    assert_eq!(forced.metadata.generation, Some(2));
    let gitops = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|e| e.manager.as_deref() == Some("gitops"))
        .unwrap();
    let fields = serde_json::to_value(gitops.fields_v1.unwrap()).unwrap();
    assert!(
        fields["f:spec"].get("f:replicas").is_none(),
        "force took replicas: {fields}"
    );

    let back = api
        .patch(
            "api",
            &apply("gitops"),
            &Patch::Apply(deployment("api", 2, "nginx:1.27")),
        )
        .await
        .unwrap_err();
    assert!(
        api_error(back)
            .message
            .contains("conflict with \"remediator\"")
    );
}

#[tokio::test]
async fn dry_run_answers_without_storing() {
    let cluster = TestCluster::start();
    let api: Api<Deployment> = Api::default_namespaced(cluster.client());
    let live = api
        .patch(
            "dry",
            &apply("gitops"),
            &Patch::Apply(deployment("dry", 1, "nginx:1.27")),
        )
        .await
        .unwrap();
    let preview = api
        .patch(
            "dry",
            &apply("gitops").dry_run(),
            &Patch::Apply(deployment("dry", 9, "nginx:1.28")),
        )
        .await
        .unwrap();
    assert_eq!(preview.spec.replicas, Some(9));
    assert_eq!(
        preview.metadata.resource_version,
        live.metadata.resource_version
    );
    let stored = api.get("dry").await.unwrap();
    assert_eq!(stored.spec.replicas, Some(1));

    let new = api
        .patch(
            "dry-new",
            &apply("gitops").dry_run(),
            &Patch::Apply(deployment("dry-new", 1, "nginx")),
        )
        .await
        .unwrap();
    assert!(new.metadata.resource_version.is_none());
    assert_eq!(api_error(api.get("dry-new").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn keyed_lists_merge_across_managers() {
    let cluster = TestCluster::start();
    let api: Api<Deployment> = Api::default_namespaced(cluster.client());
    let mut team_a = deployment("merge", 1, "nginx:1.27");
    team_a["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "A", "value": "1"}]);
    api.patch("merge", &apply("team-a"), &Patch::Apply(&team_a))
        .await
        .unwrap();
    let mut team_b = deployment("merge", 1, "busybox:1.36");
    team_b["spec"].as_object_mut().unwrap().remove("replicas");
    team_b["spec"]["template"]["spec"]["containers"][0]["name"] = json!("side");
    let merged = api
        .patch("merge", &apply("team-b"), &Patch::Apply(&team_b))
        .await
        .unwrap();
    let names = |d: &Deployment| -> Vec<String> {
        d.spec
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers
            .iter()
            .map(|c| c.name.clone())
            .collect()
    };
    assert_eq!(names(&merged), ["app", "side"]);
    let app = &merged.spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        app.env.as_ref().unwrap()[0].name,
        "A",
        "team-b's apply kept team-a's env"
    );

    team_b["spec"]["template"]["spec"]["containers"][0] =
        json!({"name": "app", "image": "nginx:1.27"});
    let after = api
        .patch("merge", &apply("team-b"), &Patch::Apply(&team_b))
        .await
        .unwrap();
    assert_eq!(
        names(&after),
        ["app"],
        "the sidecar's only owner dropped it"
    );
    assert_eq!(
        after.spec.template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some("nginx:1.27")
    );
}

#[tokio::test]
async fn crd_then_custom_resource_with_schema_validation() {
    let cluster = TestCluster::start();
    let client = cluster.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 10},
                        "color": {"type": "string", "enum": ["red", "green"]},
                        "code": {"type": "string", "pattern": "^[a-z]+$"}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}});
    let applied = crds
        .patch("widgets.example.com", &apply("gitops"), &Patch::Apply(&crd))
        .await
        .unwrap();
    let conditions = applied.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (resource, _) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .expect("the new kind is discovered");
    let widgets: Api<DynamicObject> = Api::default_namespaced_with(client.clone(), &resource);
    let widget = |spec: Value| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": spec})
    };
    let created = widgets
        .patch(
            "w1",
            &apply("gitops"),
            &Patch::Apply(widget(json!({"size": 3, "color": "red", "extra": 1}))),
        )
        .await
        .unwrap();
    assert_eq!(
        created.data["spec"],
        json!({"size": 3, "color": "red"}),
        "unknown fields pruned"
    );

    let cases = [
        (
            json!({"size": 0}),
            "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1",
        ),
        (
            json!({"size": 11}),
            "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
        ),
        (json!({"color": "red"}), "spec.size: Required value"),
        (
            json!({"size": "big"}),
            "spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\"",
        ),
        (
            json!({"size": 1, "color": "blue"}),
            "spec.color: Unsupported value: \"blue\": supported values: \"red\", \"green\"",
        ),
        (
            json!({"size": 1, "code": "A1"}),
            "spec.code: Invalid value: \"A1\": spec.code in body should match '^[a-z]+$'",
        ),
    ];
    for (spec, message) in cases {
        let body = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w2"}, "spec": spec});
        let status = api_error(
            widgets
                .patch("w2", &apply("gitops"), &Patch::Apply(body))
                .await
                .unwrap_err(),
        );
        assert_eq!(status.code, 422);
        assert_eq!(
            status.message,
            format!("Widget.example.com \"w2\" is invalid: {message}")
        );
    }
    let conflict = widgets
        .patch(
            "w1",
            &apply("other"),
            &Patch::Apply(widget(json!({"size": 5}))),
        )
        .await
        .unwrap_err();
    assert!(
        api_error(conflict)
            .message
            .contains("conflict with \"gitops\": .spec.size")
    );

    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    let gone = widgets.get("w1").await.unwrap_err();
    assert_eq!(api_error(gone).code, 404);
}

#[tokio::test]
async fn watch_streams_added_modified_and_deleted_in_order() {
    let cluster = TestCluster::start();
    let api: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    let first = api
        .patch(
            "seen",
            &apply("t"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "seen"}, "data": {"a": "1"}})),
        )
        .await
        .unwrap();
    let version = first.metadata.resource_version.clone().unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(10), "0")
        .await
        .unwrap()
        .boxed();
    let writer = api.clone();
    let writes = tokio::spawn(async move {
        let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seen"}, "data": data});
        writer
            .patch("seen", &apply("t"), &Patch::Apply(cm(json!({"a": "2"}))))
            .await
            .unwrap();
        writer
            .delete("seen", &DeleteParams::default())
            .await
            .unwrap();
    });
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(cm) => seen.push(("ADDED", cm.metadata.resource_version.unwrap())),
            WatchEvent::Modified(cm) => {
                seen.push(("MODIFIED", cm.metadata.resource_version.unwrap()))
            }
            WatchEvent::Deleted(cm) => {
                seen.push(("DELETED", cm.metadata.resource_version.unwrap()))
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    writes.await.unwrap();
    assert_eq!(
        seen.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        ["ADDED", "MODIFIED", "DELETED"]
    );
    assert_eq!(seen[0].1, version);
    let numbers: Vec<u64> = seen.iter().map(|(_, v)| v.parse().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");

    let mut resumed = api
        .watch(&WatchParams::default().timeout(5), &version)
        .await
        .unwrap()
        .boxed();
    let next = resumed.try_next().await.unwrap().unwrap();
    assert!(
        matches!(next, WatchEvent::Modified(_)),
        "resuming replays later events"
    );
}

#[tokio::test]
async fn lists_select_page_and_subresources_update() {
    let cluster = TestCluster::start();
    let client = cluster.client();
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    for (name, team) in [("a", "x"), ("b", "y"), ("c", "x")] {
        let mut object = deployment(name, 1, "nginx:1.27");
        object["metadata"]["labels"] = json!({"team": team});
        api.patch(name, &apply("gitops"), &Patch::Apply(object))
            .await
            .unwrap();
    }
    let names = |list: kube::core::ObjectList<Deployment>| -> Vec<String> {
        list.items
            .into_iter()
            .map(|d| d.metadata.name.unwrap())
            .collect()
    };
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("team=x"))
                .await
                .unwrap()
        ),
        ["a", "c"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=b"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    let page = api.list(&ListParams::default().limit(2)).await.unwrap();
    let token = page.metadata.continue_.clone().unwrap();
    assert_eq!(page.metadata.remaining_item_count, Some(1));
    assert_eq!(names(page), ["a", "b"]);
    assert_eq!(
        names(
            api.list(&ListParams::default().limit(2).continue_token(&token))
                .await
                .unwrap()
        ),
        ["c"]
    );

    let scale = api.get_scale("a").await.unwrap();
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=a"));
    let scaled = api
        .patch_scale(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(4));
    let stored = api.get("a").await.unwrap();
    assert_eq!(stored.spec.replicas, Some(4));
    assert!(
        stored
            .managed_fields()
            .iter()
            .any(|e| e.subresource.as_deref() == Some("scale"))
    );

    let status = api
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": 2}, "spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(status.status.unwrap().observed_generation, Some(2));
    assert_eq!(
        status.spec.replicas,
        Some(4),
        "the status subresource ignores spec"
    );

    let patched = api
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec":
            {"containers": [{"name": "side", "image": "busybox"}]}}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.template.spec.unwrap().containers.len(), 2);

    let request =
        http::Request::patch("/apis/apps/v1/namespaces/default/deployments/c?fieldManager=ops")
            .header("content-type", "application/json-patch+json")
            .body(kube::client::Body::from(
                br#"[{"op":"replace","path":"/spec/replicas","value":3}]"#.to_vec(),
            ))
            .unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(api.get("c").await.unwrap().spec.replicas, Some(3));

    let moved = json!({"apiVersion": "apps/v1",
        "kind": "Deployment", "metadata": {"name": "c"}, "spec": {"selector": {"matchLabels": {"app": "other"}},
        "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}});
    let refused = api.patch("c", &apply("gitops"), &Patch::Apply(moved)).await;
    let status = api_error(refused.unwrap_err());
    assert!(status.message.ends_with("spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"other\"}}: field is immutable"), "{}", status.message);
}

#[tokio::test]
async fn secrets_fold_string_data_namespaces_must_exist_and_updates_check_versions() {
    let cluster = TestCluster::start();
    let client = cluster.client();
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let secret = secrets
        .patch(
            "creds",
            &apply("gitops"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds"}, "stringData": {"password": "hunter2"}})),
        )
        .await
        .unwrap();
    let data = secret.data.unwrap();
    assert_eq!(data["password"].0, b"hunter2");
    assert!(secret.string_data.is_none());

    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "missing");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    let status = api_error(
        elsewhere
            .patch("x", &apply("t"), &Patch::Apply(&cm))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (status.code, status.message.as_str()),
        (404, "namespaces \"missing\" not found")
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            "missing",
            &apply("t"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "missing"}}),
            ),
        )
        .await
        .unwrap();
    elsewhere
        .patch("x", &apply("t"), &Patch::Apply(&cm))
        .await
        .unwrap();

    let mut current = elsewhere.get("x").await.unwrap();
    let stale = current.clone();
    current.data = Some([("k".to_string(), "v".to_string())].into());
    let replaced = elsewhere
        .replace("x", &Default::default(), &current)
        .await
        .unwrap();
    assert_eq!(replaced.data.unwrap()["k"], "v");
    let refused = api_error(
        elsewhere
            .replace("x", &Default::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code, 409);
    assert!(
        refused.message.contains("the object has been modified"),
        "{}",
        refused.message
    );
    elsewhere
        .delete("x", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_error(elsewhere.get("x").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn simulated_pods_and_rollouts_show_in_status() {
    let cluster = TestCluster::start();
    let client = cluster.client();
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    api.patch(
        "web",
        &apply("gitops"),
        &Patch::Apply(deployment("web", 2, "nginx:1.27")),
    )
    .await
    .unwrap();
    let pods = cluster
        .add_pods("default", "web", 2, &PodState::oom_killed(4))
        .unwrap();
    let pod_api: Api<Pod> = Api::default_namespaced(client.clone());
    let pod = pod_api.get(&pods[0]).await.unwrap();
    let status = pod.status.unwrap().container_statuses.unwrap().remove(0);
    assert_eq!(
        status.state.unwrap().waiting.unwrap().reason.as_deref(),
        Some("CrashLoopBackOff")
    );
    assert_eq!(
        status
            .last_state
            .unwrap()
            .terminated
            .unwrap()
            .reason
            .as_deref(),
        Some("OOMKilled")
    );
    assert_eq!(status.restart_count, 4);
    let owner = &pod.metadata.owner_references.unwrap()[0];
    assert_eq!(owner.kind, "ReplicaSet");
    let listed = pod_api
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);

    cluster
        .set_pod_state("default", &pods[1], &PodState::ImagePullBackOff)
        .unwrap();
    let waiting = pod_api.get(&pods[1]).await.unwrap().status.unwrap();
    assert_eq!(waiting.phase.as_deref(), Some("Pending"));

    cluster
        .set_rollout("Deployment", "default", "web", Rollout::Failed)
        .unwrap();
    let failed = api.get("web").await.unwrap().status.unwrap();
    let progressing = failed
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_.as_deref() == Some("Progressing"))
        .unwrap();
    assert_eq!(
        progressing.reason.as_deref(),
        Some("ProgressDeadlineExceeded")
    );

    cluster.follow_spec(Duration::from_millis(50));
    api.patch(
        "web",
        &apply("gitops"),
        &Patch::Apply(deployment("web", 3, "nginx:1.28")),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let current = api.get("web").await.unwrap();
        let status = current.status.clone().unwrap_or_default();
        if status.observed_generation == current.metadata.generation
            && status.available_replicas == Some(3)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status never followed spec: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get_raw(
    client: &kube::Client,
    path: &str,
) -> Result<(u16, http::HeaderMap, Value), kube::Error> {
    let request = http::Request::get(path)
        .body(kube::client::Body::empty())
        .unwrap();
    let response = client.send(request).await?;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    Ok((
        parts.status.as_u16(),
        parts.headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

#[tokio::test]
async fn every_fault_kind_is_injected_and_logged() {
    let cluster = TestCluster::start();
    let mut config = cluster.config();
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let path = "/api/v1/namespaces/default/configmaps";
    for code in [500, 503] {
        cluster
            .faults()
            .add(Fault::new("GET", path, FaultKind::Status(code)));
        let (status, _, body) = get_raw(&client, path).await.unwrap();
        assert_eq!(
            (status, body["code"].as_u64()),
            (code, Some(u64::from(code)))
        );
    }
    cluster
        .faults()
        .add(Fault::new("GET", path, FaultKind::TooManyRequests { retry_after: 7 }).times(2));
    for _ in 0..2 {
        let (status, headers, body) = get_raw(&client, path).await.unwrap();
        assert_eq!(status, 429);
        assert_eq!(headers["retry-after"], "7");
        assert_eq!(body["reason"], "TooManyRequests");
    }
    assert_eq!(
        get_raw(&client, path).await.unwrap().0,
        200,
        "the rule ran out"
    );

    cluster.faults().add(Fault::new(
        "*",
        "/api/v1/*",
        FaultKind::Delay(Duration::from_millis(300)),
    ));
    let started = Instant::now();
    assert_eq!(get_raw(&client, path).await.unwrap().0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    cluster
        .faults()
        .add(Fault::new("GET", path, FaultKind::Drop));
    assert!(
        get_raw(&client, path).await.is_err(),
        "a dropped connection is an error"
    );
    assert_eq!(get_raw(&client, path).await.unwrap().0, 200);

    let log = cluster.requests();
    let statuses: Vec<Option<u16>> = log.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            Some(500),
            Some(503),
            Some(429),
            Some(429),
            Some(200),
            Some(200),
            None,
            Some(200)
        ]
    );
    assert_eq!(
        log[5].fault,
        Some(FaultKind::Delay(Duration::from_millis(300)))
    );
    assert_eq!(log[6].fault, Some(FaultKind::Drop));

    let api: Api<ConfigMap> = Api::default_namespaced(client);
    cluster.faults().add(Fault::new(
        "PATCH",
        "*/configmaps/*",
        FaultKind::Status(500),
    ));
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    assert_eq!(
        api_error(
            api.patch("x", &apply("t"), &Patch::Apply(&cm))
                .await
                .unwrap_err()
        )
        .code,
        500
    );
    api.patch("x", &apply("t"), &Patch::Apply(&cm))
        .await
        .unwrap();
}

#[tokio::test]
async fn kube_retries_throttled_requests_after_the_servers_retry_after() {
    let cluster = TestCluster::start();
    let api: Api<ConfigMap> = Api::default_namespaced(cluster.client());
    cluster.faults().add(Fault::new(
        "PATCH",
        "*/configmaps/y",
        FaultKind::TooManyRequests { retry_after: 1 },
    ));
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}});
    let started = Instant::now();
    api.patch("y", &apply("t"), &Patch::Apply(&cm))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the client waited as asked"
    );
    let statuses: Vec<Option<u16>> = cluster.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(429), Some(201)]);
}

#[tokio::test]
async fn discovery_finds_every_builtin_kind() {
    let cluster = TestCluster::start();
    let discovery = Discovery::new(cluster.client()).run().await.unwrap();
    let kinds: Vec<String> = discovery
        .groups()
        .flat_map(|g| {
            g.recommended_resources()
                .into_iter()
                .map(|(r, _): (ApiResource, _)| r.kind)
        })
        .collect();
    for kind in [
        "Namespace",
        "Pod",
        "ConfigMap",
        "Secret",
        "Service",
        "ServiceAccount",
        "Node",
        "Event",
        "PersistentVolumeClaim",
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Ingress",
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "Lease",
        "CustomResourceDefinition",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} is not discovered: {kinds:?}"
        );
    }
    let pods: Api<Pod> = Api::default_namespaced(cluster.client());
    let stream = pods.list(&ListParams::default()).await.unwrap();
    assert!(stream.items.is_empty());
}
