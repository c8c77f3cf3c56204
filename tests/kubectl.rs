//! kubectl, a real client, against the test API server: `apply --server-side`, conflicts with
//! another field manager and `--force-conflicts`, and `get`.

mod common;

use std::process::Command;

use serde_json::{Value, json};
use testkit::TestCluster;

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs kubectl against the cluster; `None` when kubectl is not installed.
fn kubectl(cluster: &TestCluster, args: &[&str]) -> Option<Run> {
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(args)
        .output()
        .ok()?;
    Some(Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

fn manifest(replicas: u32) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {{app: web}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: app
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: shop
data:
  mode: fast
"#
    )
}

#[test]
fn kubectl_applies_server_side_meets_conflicts_and_gets() {
    if !common::tools::require(
        common::tools::Tool::Kubectl,
        "kubectl_applies_server_side_meets_conflicts_and_gets",
    ) {
        return;
    }
    let cluster = TestCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yaml");
    std::fs::write(&file, manifest(2)).unwrap();
    let file = file.to_str().unwrap();
    let applied = kubectl(&cluster, &["apply", "--server-side", "-f", file]).expect("kubectl runs");
    assert!(applied.ok, "{}", applied.stderr);
    for line in [
        "namespace/shop serverside-applied",
        "deployment.apps/web serverside-applied",
        "configmap/web-config serverside-applied",
    ] {
        assert!(applied.stdout.contains(line), "{}", applied.stdout);
    }
    let stored = cluster.object("Deployment", "shop", "web").unwrap();
    let managers: Vec<&Value> = stored["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["manager"])
        .collect();
    assert_eq!(managers, [&json!("kubectl")]);
    assert_eq!(
        stored["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
            ["k:{\"name\":\"app\"}"]["f:ports"],
        json!({"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}})
    );

    let scaled = kubectl(
        &cluster,
        &["scale", "deployment/web", "-n", "shop", "--replicas=4"],
    )
    .unwrap();
    assert!(scaled.ok, "{}", scaled.stderr);
    std::fs::write(dir.path().join("web.yaml"), manifest(3)).unwrap();
    let conflicted = kubectl(&cluster, &["apply", "--server-side", "-f", file]).unwrap();
    assert!(!conflicted.ok);
    assert!(
        conflicted
            .stderr
            .contains("conflict with \"kubectl\" with subresource \"scale\"")
            && conflicted.stderr.contains(".spec.replicas"),
        "{}",
        conflicted.stderr
    );
    let forced = kubectl(
        &cluster,
        &["apply", "--server-side", "--force-conflicts", "-f", file],
    )
    .unwrap();
    assert!(forced.ok, "{}", forced.stderr);
    let stored = cluster.object("Deployment", "shop", "web").unwrap();
    assert_eq!(stored["spec"]["replicas"], 3);

    let listed = kubectl(&cluster, &["get", "deployments", "-n", "shop"]).unwrap();
    assert!(listed.ok, "{}", listed.stderr);
    assert!(
        listed.stdout.lines().any(|l| l.starts_with("web ")),
        "{}",
        listed.stdout
    );
    let yaml = kubectl(
        &cluster,
        &[
            "get",
            "configmap",
            "web-config",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.mode}",
        ],
    )
    .unwrap();
    assert_eq!(yaml.stdout, "fast");
}
