//! Replays the exchanges recorded from a real kube-apiserver v1.36 (`../shared/apiserver-transcripts`)
//! against the test API server and compares the answers as that folder's README says: status
//! codes; Status reason, code, message and causes; and for objects `spec`, labels, annotations,
//! `data` and managedFields (manager, operation, subresource, apiVersion, fieldsV1).
//!
//! Deliberate differences, each normalised away on both sides before comparing:
//! - The deployment controller of kube-controller-manager does not run in the test server, so the
//!   managedFields entry it writes (`controller-manager`, subresource `status`) and its
//!   `deployment.kubernetes.io/revision` annotation are left out; `status` written by controllers
//!   is not compared (the README allows it), pod status written by the requests themselves is.
//! - The ServiceAccount admission plugin mounts a token volume with a random name
//!   (`kube-api-access-xxxxx`); the recording's cluster also added a distribution-specific
//!   `openshift-service-ca.crt` source to it. The test server adds no such volume, so that volume
//!   and its mount are left out.
//! - managedFields are compared as a set keyed by manager, operation and subresource: the server
//!   orders entries by their `time`, which differs between runs.
//!
//! One precondition is reproduced rather than normalised: the CRD already existed when the `crd`
//! scenario was recorded (its creationTimestamp precedes the run), so its first apply answered
//! 200. The replay applies the same CRD once before that scenario.

use std::path::PathBuf;

use http_body_util::BodyExt;
use serde_json::{Value, json};
use testkit::TestCluster;

fn transcript() -> Option<Vec<Value>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/apiserver-transcripts/kube-apiserver-v1.36.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "note: {} is absent; the conformance replay is skipped",
            path.display()
        );
        return None;
    };
    Some(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("transcript line is JSON"))
            .collect(),
    )
}

async fn send(client: &kube::Client, request: &Value) -> (u16, Value) {
    let method = request["method"].as_str().unwrap();
    let path = request["path"].as_str().unwrap();
    let body = match &request["body"] {
        Value::Null => Vec::new(),
        Value::String(text) => text.clone().into_bytes(),
        other => serde_json::to_vec(other).unwrap(),
    };
    let mut builder = http::Request::builder().method(method).uri(path);
    if let Some(content_type) = request["content_type"].as_str() {
        builder = builder.header("content-type", content_type);
    }
    let response = client
        .send(builder.body(kube::client::Body::from(body)).unwrap())
        .await
        .expect("request reaches the test server");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}

/// managedFields as a set, without the entries of controllers the test server does not run.
fn managed_fields(object: &Value) -> Vec<Value> {
    let mut entries: Vec<Value> = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["manager"] != "controller-manager")
        .map(|e| {
            json!({"manager": e["manager"], "operation": e["operation"],
                "subresource": e["subresource"], "apiVersion": e["apiVersion"],
                "fieldsV1": e["fieldsV1"]})
        })
        .collect();
    entries.sort_by_key(|e| format!("{}/{}/{}", e["manager"], e["operation"], e["subresource"]));
    entries
}

fn annotations(object: &Value) -> Value {
    let mut annotations = object
        .pointer("/metadata/annotations")
        .cloned()
        .unwrap_or(json!({}));
    if let Some(map) = annotations.as_object_mut() {
        map.shift_remove("deployment.kubernetes.io/revision");
    }
    annotations
}

fn spec(object: &Value) -> Value {
    let mut spec = object.get("spec").cloned().unwrap_or(Value::Null);
    let is_token = |v: &Value| {
        v["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("kube-api-access-"))
    };
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        volumes.retain(|v| !is_token(v));
        if volumes.is_empty() {
            spec.as_object_mut().unwrap().shift_remove("volumes");
        }
    }
    for container in spec
        .get_mut("containers")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let mounts = container
            .get_mut("volumeMounts")
            .and_then(Value::as_array_mut);
        if let Some(mounts) = mounts {
            mounts.retain(|m| !is_token(m));
            if mounts.is_empty() {
                container
                    .as_object_mut()
                    .unwrap()
                    .shift_remove("volumeMounts");
            }
        }
    }
    spec
}

/// The parts of an answer the README says must match.
fn comparable(body: &Value) -> Value {
    let kind = body["kind"].as_str().unwrap_or_default();
    match kind {
        "Status" => {
            json!({"status": body["status"], "reason": body["reason"], "code": body["code"],
            "message": body["message"], "causes": body.pointer("/details/causes"),
            "details.name": body.pointer("/details/name"), "details.kind": body.pointer("/details/kind")})
        }
        "APIVersions" => json!({"versions": body["versions"]}),
        "Scale" => json!({"spec": body["spec"], "status": body["status"]}),
        k if k.ends_with("List") => {
            let names: Vec<Value> = body["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|i| i["metadata"]["name"].clone())
                        .collect()
                })
                .unwrap_or_default();
            json!({"items": names, "more": body.pointer("/metadata/continue").is_some(),
                "remainingItemCount": body.pointer("/metadata/remainingItemCount")})
        }
        _ => {
            let mut out = json!({"spec": spec(body), "labels": body.pointer("/metadata/labels"),
                "annotations": annotations(body), "data": body.get("data"),
                "managedFields": managed_fields(body)});
            if kind == "Pod" {
                out["status"] = body["status"].clone();
            }
            out
        }
    }
}

/// Discovery: every resource the test server serves must be described as the real server does.
fn discovery_differences(step: &str, ours: &Value, recorded: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(resources) = ours["resources"].as_array() {
        for resource in resources {
            let name = &resource["name"];
            let Some(real) = recorded["resources"]
                .as_array()
                .and_then(|r| r.iter().find(|r| r["name"] == *name))
            else {
                out.push(format!(
                    "{step}: {name} is served here but not by the real server"
                ));
                continue;
            };
            for field in [
                "kind",
                "namespaced",
                "singularName",
                "group",
                "version",
                "shortNames",
            ] {
                if resource.get(field) != real.get(field) {
                    out.push(format!(
                        "{step}: {name}.{field}: ours {:?}, recorded {:?}",
                        resource.get(field),
                        real.get(field)
                    ));
                }
            }
            let verbs = |v: &Value| {
                let mut verbs: Vec<String> = v["verbs"]
                    .as_array()
                    .map(|v| v.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default();
                verbs.sort();
                verbs
            };
            if verbs(resource) != verbs(real) {
                out.push(format!("{step}: {name} verbs differ"));
            }
        }
    }
    if let Some(groups) = ours["groups"].as_array() {
        for group in groups {
            let real = recorded["groups"]
                .as_array()
                .and_then(|g| g.iter().find(|g| g["name"] == group["name"]));
            match real {
                Some(real) if real["preferredVersion"] == group["preferredVersion"] => {}
                _ => out.push(format!("{step}: group {} differs", group["name"])),
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_every_recorded_exchange() {
    let Some(exchanges) = transcript() else {
        return;
    };
    let cluster = TestCluster::start();
    let client = cluster.client();
    let namespace = json!({"method": "PATCH", "path": "/api/v1/namespaces/ssa-conformance?fieldManager=setup",
        "content_type": "application/apply-patch+yaml",
        "body": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ssa-conformance"}}});
    assert_eq!(send(&client, &namespace).await.0, 201);
    let mut differences = Vec::new();
    let mut seeded = false;
    for exchange in &exchanges {
        let scenario = exchange["scenario"].as_str().unwrap();
        let step = format!("{scenario}/{}", exchange["step"].as_str().unwrap());
        if scenario == "crd" && !seeded {
            seeded = true;
            let (status, _) = send(&client, &exchange["request"]).await;
            assert_eq!(status, 201, "seeding the CRD");
        }
        let (status, body) = send(&client, &exchange["request"]).await;
        let expected = &exchange["response"];
        if status != expected["status"].as_u64().unwrap() as u16 {
            differences.push(format!(
                "{step}: status {status}, recorded {}: {body}",
                expected["status"]
            ));
            continue;
        }
        let recorded = &expected["body"];
        if scenario == "discovery" {
            differences.extend(discovery_differences(&step, &body, recorded));
            continue;
        }
        let (ours, theirs) = (comparable(&body), comparable(recorded));
        if ours != theirs {
            differences.push(format!("{step}:\n  ours:     {ours}\n  recorded: {theirs}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} exchanges differ:\n{}",
        differences.len(),
        exchanges.len(),
        differences.join("\n")
    );
}
