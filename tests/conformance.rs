//! Replays the exchanges recorded from a real kube-apiserver v1.36 (`tests/fixtures/apiserver-transcripts`)
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
use std::time::Duration;

use http_body_util::BodyExt;
use serde_json::{Value, json};
use testkit::TestCluster;

/// The exchanges of one recorded file of `tests/fixtures/apiserver-transcripts`.
fn transcript(file: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/apiserver-transcripts")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("transcript line is JSON"))
        .collect()
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
    let exchanges = transcript("kube-apiserver-v1.36.jsonl");
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
        differ(
            &mut differences,
            &step,
            comparable(&body),
            comparable(recorded),
        );
    }
    assert_same(&differences, exchanges.len());
}

/// Notes `step` when what must match does not.
fn differ(differences: &mut Vec<String>, step: &str, ours: Value, theirs: Value) {
    if ours != theirs {
        differences.push(format!("{step}:\n  ours:     {ours}\n  recorded: {theirs}"));
    }
}

/// Fails listing every exchange whose answer differs from the recorded one.
fn assert_same(differences: &[String], exchanges: usize) {
    assert!(
        differences.is_empty(),
        "{} of {exchanges} exchanges differ:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

/// A message with the uids and resourceVersions it quotes taken out: they may differ. A uid is
/// taken out wherever it is; a number only where the message quotes it in parentheses.
fn masked(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        if let Some(close) = rest.find(')') {
            let inside = &rest[..close];
            let uid = inside.len() == 36 && inside.matches('-').count() == 4;
            let number = !inside.is_empty() && inside.bytes().all(|b| b.is_ascii_digit());
            if uid || number {
                out.push_str(if uid { "<uid>" } else { "<n>" });
                rest = &rest[close..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The parts of an edge answer its README says must match.
fn edge_comparable(step: &str, body: &Value) -> Value {
    if let Value::String(text) = body {
        if step.starts_with("watch/watch-stream") {
            let events: Vec<Value> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str::<Value>(l).expect("a watch event is JSON"))
                .filter(|e| e["type"] != "BOOKMARK")
                .map(|e| {
                    json!({"type": e["type"], "data": e["object"]["data"],
                        "labels": e["object"]["metadata"]["labels"]})
                })
                .collect();
            return json!(events);
        }
        return json!(text.trim());
    }
    let kind = body["kind"].as_str().unwrap_or_default();
    match kind {
        "Status" => {
            let causes: Vec<Value> = body
                .pointer("/details/causes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| json!({"reason": c["reason"], "message": masked(c["message"].as_str().unwrap_or_default())}))
                .collect();
            json!({"status": body["status"], "reason": body["reason"], "code": body["code"],
                "message": masked(body["message"].as_str().unwrap_or_default()), "causes": causes,
                "details.name": body.pointer("/details/name"), "details.kind": body.pointer("/details/kind")})
        }
        "APIResourceList" => {
            let mut resources: Vec<Value> = body["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| !r["name"].as_str().unwrap_or_default().contains('/'))
                .map(|r| json!({"name": r["name"], "kind": r["kind"], "namespaced": r["namespaced"]}))
                .collect();
            resources.sort_by_key(|r| r["name"].to_string());
            json!(resources)
        }
        k if k.ends_with("List") || body.get("items").is_some() => {
            let mut names: Vec<String> = body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| {
                    i["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect();
            names.sort();
            json!(names)
        }
        "PodDisruptionBudget" => {
            let status = &body["status"];
            json!({"spec": body["spec"], "disruptionsAllowed": status["disruptionsAllowed"],
                "currentHealthy": status["currentHealthy"], "desiredHealthy": status["desiredHealthy"],
                "expectedPods": status["expectedPods"]})
        }
        "Pod" => {
            let disruption = body
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "DisruptionTarget")
                .map(|c| json!({"status": c["status"], "reason": c["reason"]}));
            json!({"labels": body.pointer("/metadata/labels"), "nodeName": body.pointer("/spec/nodeName"),
                "deleting": body.pointer("/metadata/deletionTimestamp").is_some(),
                "grace": body.pointer("/metadata/deletionGracePeriodSeconds"),
                "disruption": disruption, "phase": body.pointer("/status/phase")})
        }
        "Lease" => json!({"spec": body["spec"]}),
        // The CRD's conditions are written by its controller, a Node's by admission and the
        // node lifecycle controller: only which object it is must match.
        "CustomResourceDefinition" | "Node" => json!({"name": body.pointer("/metadata/name")}),
        _ => json!({"kind": kind, "name": body.pointer("/metadata/name"),
            "labels": body.pointer("/metadata/labels"), "data": body.get("data"),
            "spec": body.get("spec")}),
    }
}

/// Every recorded uid and resourceVersion in `recorded`, paired with the one at the same place in
/// `ours`.
fn pair_ids(recorded: &Value, ours: &Value, ids: &mut Vec<(String, String)>) {
    for key in ["uid", "resourceVersion"] {
        if let (Some(a), Some(b)) = (
            recorded
                .pointer(&format!("/metadata/{key}"))
                .and_then(Value::as_str),
            ours.pointer(&format!("/metadata/{key}"))
                .and_then(Value::as_str),
        ) {
            ids.retain(|(r, _)| r != a);
            ids.push((a.to_owned(), b.to_owned()));
        }
    }
    if let (Some(a), Some(b)) = (
        recorded.pointer("/details/uid").and_then(Value::as_str),
        ours.pointer("/details/uid").and_then(Value::as_str),
    ) {
        ids.retain(|(r, _)| r != a);
        ids.push((a.to_owned(), b.to_owned()));
    }
}

/// The request with the recorded uids and resourceVersions it carries replaced by the replay's.
fn substituted(request: &Value, ids: &[(String, String)]) -> Value {
    let mut request = request.clone();
    let path = request["path"].as_str().unwrap().to_owned();
    let path = match path.split_once("resourceVersion=") {
        Some((head, tail)) => {
            let end = tail.find('&').unwrap_or(tail.len());
            let ours = ids
                .iter()
                .find(|(r, _)| r == &tail[..end])
                .map_or(&tail[..end], |(_, o)| o.as_str());
            format!("{head}resourceVersion={ours}{}", &tail[end..])
        }
        None => path,
    };
    request["path"] = json!(path);
    for pointer in [
        "/body/metadata/resourceVersion",
        "/body/preconditions/uid",
        "/body/preconditions/resourceVersion",
    ] {
        if let Some(slot) = request.pointer_mut(pointer)
            && let Some(ours) = ids.iter().find(|(r, _)| Some(r.as_str()) == slot.as_str())
        {
            *slot = json!(ours.1);
        }
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_every_recorded_edge_exchange() {
    let exchanges = transcript("kube-apiserver-v1.36-edge.jsonl");
    assert_eq!(exchanges.len(), 50, "the edge transcript has 50 exchanges");
    let cluster = TestCluster::start();
    // A 429 is an answer to compare, not one to retry.
    let mut config = cluster.config();
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let namespace = json!({"method": "PATCH", "path": "/api/v1/namespaces/edge-conformance?fieldManager=setup",
        "content_type": "application/apply-patch+yaml",
        "body": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "edge-conformance"}}});
    assert_eq!(send(&client, &namespace).await.0, 201);
    // As on the recorded cluster: kube-controller-manager runs, no kubelet does.
    cluster.stop_kubelets();
    cluster.run_disruption_controller();
    let mut differences = Vec::new();
    let mut ids: Vec<(String, String)> = Vec::new();
    let mut raced_before = false;
    // The watch was opened before the create and read after the delete: replayed after them.
    for exchange in &exchanges {
        let scenario = exchange["scenario"].as_str().unwrap();
        let step = format!("{scenario}/{}", exchange["step"].as_str().unwrap());
        let request = substituted(&exchange["request"], &ids);
        let answer = tokio::time::timeout(Duration::from_secs(10), send(&client, &request)).await;
        let Ok((status, body)) = answer else {
            differences.push(format!("{step}: no answer within 10 s"));
            continue;
        };
        let expected = &exchange["response"];
        let recorded = &expected["body"];
        let wanted = expected["status"].as_u64().unwrap() as u16;
        // The README: an apply right after the CRD's creation races its establishment.
        let raced = step == "crd-establish/apply-cr-immediately" && status == 201;
        // Created by the raced apply, the object is updated by the next one.
        let again = step == "crd-establish/apply-cr-again" && raced_before && status == 200;
        raced_before |= raced;
        if status != wanted && !raced && !again {
            differences.push(format!(
                "{step}: status {status}, recorded {wanted}: {body}"
            ));
            continue;
        }
        pair_ids(recorded, &body, &mut ids);
        if raced {
            continue;
        }
        differ(
            &mut differences,
            &step,
            edge_comparable(&step, &body),
            edge_comparable(&step, recorded),
        );
    }
    assert_same(&differences, exchanges.len());
}

#[test]
fn a_message_is_compared_without_the_ids_it_quotes() {
    assert_eq!(
        masked(
            "the UID in the precondition (00000000-0000-0000-0000-000000000000) does not match the UID in record (69eb0d61-be52-4b41-a5c0-6366ad96067a)"
        ),
        "the UID in the precondition (<uid>) does not match the UID in record (<uid>)"
    );
    assert_eq!(
        masked("the ResourceVersion in the precondition (1) does not match (3664)."),
        "the ResourceVersion in the precondition (<n>) does not match (<n>)."
    );
    assert_eq!(masked("needs 2 healthy pods"), "needs 2 healthy pods");
}
