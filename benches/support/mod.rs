//! Generated inputs for the benchmarks: a config repository of 10,000 objects in 2,000 files
//! (five a file: a Deployment, a Service, a ConfigMap, an HPA and a PDB) in plain directories and
//! kustomize builds, and a snapshot of the matching cluster with 10,000 pods.
#![allow(dead_code)]

use std::path::Path;

use serde_json::{Value, json};

/// Files in the generated repository; each declares five objects.
pub const FILES: usize = 2_000;

/// One file: five documents for app `i`.
fn app(i: usize) -> String {
    TEMPLATE.replace("{i}", &i.to_string())
}

const TEMPLATE: &str = r#"# app {i}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
  labels: {app: app-{i}}
spec:
  replicas: 2 # at least two
  selector:
    matchLabels: {app: app-{i}}
  template:
    metadata:
      labels: {app: app-{i}}
    spec:
      containers:
        - name: app
          image: "registry.example.com/app-{i}:1.0.{i}"
          ports:
            - containerPort: 8080
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits:
              memory: 256Mi
---
apiVersion: v1
kind: Service
metadata:
  name: app-{i}
spec:
  selector: {app: app-{i}}
  ports:
    - port: 80
      targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-{i}
data:
  LOG_LEVEL: info
  FEATURES: 'a,b,c'
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: app-{i}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: app-{i}}
  minReplicas: 2
  maxReplicas: 10
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: app-{i}
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: app-{i}}
"#;

/// Writes the repository: 100 directories of 20 files; every other directory is a kustomize
/// build with a namespace.
pub fn generate(root: &Path) {
    for dir in 0..FILES / 20 {
        let path = root.join(format!("apps/team-{dir}"));
        std::fs::create_dir_all(&path).unwrap();
        let names: Vec<String> = (0..20)
            .map(|f| format!("app-{}.yaml", dir * 20 + f))
            .collect();
        for (f, name) in names.iter().enumerate() {
            std::fs::write(path.join(name), app(dir * 20 + f)).unwrap();
        }
        if dir % 2 == 0 {
            let kustomization = format!(
                "namespace: team-{dir}\nresources:\n{}",
                names
                    .iter()
                    .map(|n| format!("  - {n}\n"))
                    .collect::<String>()
            );
            std::fs::write(path.join("kustomization.yaml"), kustomization).unwrap();
        }
    }
}

/// Pods per app in the snapshot.
pub const PODS_PER_APP: usize = 5;

/// The objects of a snapshot of the generated repository's cluster: 2,000 Deployments with their
/// ReplicaSets and 10,000 pods, 20 nodes (one NotReady), and usage history. Every 50th app is
/// OOM-killed in a loop, every 70th cannot pull its image, every 40th has a week of usage far
/// below its requests.
pub fn snapshot_objects() -> Vec<(&'static str, Value)> {
    let mut pods = Vec::new();
    let mut workloads = Vec::new();
    for i in 0..FILES {
        let ns = if (i / 20) % 2 == 0 {
            format!("team-{}", i / 20)
        } else {
            "default".to_owned()
        };
        let labels = json!({"app": format!("app-{i}")});
        workloads.push(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": format!("app-{i}"), "namespace": ns},
            "spec": {"replicas": 5, "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app",
                    "image": format!("registry.example.com/app-{i}:1.0.{i}"),
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}}]}}},
            "status": {"replicas": 5, "readyReplicas": 5, "updatedReplicas": 5, "availableReplicas": 5}}));
        let owner = |kind: &str, name: String| json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u", "controller": true}]);
        workloads.push(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("app-{i}-5d4f8"), "namespace": ns, "ownerReferences": owner("Deployment", format!("app-{i}"))},
            "spec": {"replicas": 5, "selector": {"matchLabels": labels}}}));
        for p in 0..PODS_PER_APP {
            let status = if i % 50 == 0 {
                json!({"name": "app", "image": "img", "imageID": "", "ready": false, "restartCount": 9,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": "2026-11-20T11:59:00Z"}}})
            } else if i % 70 == 0 {
                json!({"name": "app", "image": "img", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}})
            } else {
                json!({"name": "app", "image": "img", "imageID": "", "ready": true, "restartCount": 0,
                    "state": {"running": {"startedAt": "2026-11-19T12:00:00Z"}}})
            };
            pods.push(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("app-{i}-5d4f8-{p}"), "namespace": ns,
                    "labels": {"app": format!("app-{i}"), "pod-template-hash": "5d4f8"},
                    "ownerReferences": owner("ReplicaSet", format!("app-{i}-5d4f8"))},
                "spec": {"nodeName": format!("node-{}", (i + p) % 20), "containers": [{"name": "app", "image": "img"}]},
                "status": {"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-19T12:00:00Z"}],
                    "containerStatuses": [status]}}));
        }
    }
    let nodes: Vec<Value> = (0..20)
        .map(|n| {
            let ready = if n == 7 { "Unknown" } else { "True" };
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("node-{n}")},
                "status": {"conditions": [{"type": "Ready", "status": ready, "lastHeartbeatTime": "2026-11-20T11:59:30Z"}]}})
        })
        .collect();
    let start = 1_763_035_200.0;
    let containers: Vec<Value> = (0..FILES)
        .step_by(40)
        .map(|i| {
            let ns = if (i / 20) % 2 == 0 { format!("team-{}", i / 20) } else { "default".to_owned() };
            let cpu: Vec<[f64; 2]> = (0..192).map(|h| [start + 3600.0 * f64::from(h), 0.02]).collect();
            let memory: Vec<[f64; 2]> = (0..192).map(|h| [start + 3600.0 * f64::from(h), 30.0 * 1048576.0]).collect();
            json!({"namespace": ns, "workload": {"kind": "Deployment", "name": format!("app-{i}")}, "container": "app", "cpu": cpu, "memory": memory})
        })
        .collect();
    let list = |items: Vec<Value>| json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items});
    vec![
        ("pods", list(pods)),
        ("workloads", list(workloads)),
        ("nodes", list(nodes)),
        (
            "usage",
            json!({"apiVersion": "remediator.dev/v1alpha1", "kind": "UsageHistory", "containers": containers}),
        ),
    ]
}

/// Writes the snapshot into `dir` as `kubectl get -o json` writes it.
pub fn snapshot(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, value) in snapshot_objects() {
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_string_pretty(&value).unwrap(),
        )
        .unwrap();
    }
}

/// Writes the snapshot into `dir` as `kubectl get -o yaml` writes it (block style).
pub fn snapshot_yaml(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, value) in snapshot_objects() {
        std::fs::write(
            dir.join(format!("{name}.yaml")),
            remediator::manifests::emit_block(&value),
        )
        .unwrap();
    }
}
