//! Generated inputs for the benchmarks: a config repository of one file per app (five objects a
//! file: a Deployment, a Service, a ConfigMap, an HPA and a PDB) in plain directories and
//! kustomize builds, and a snapshot of the matching cluster with five pods per app, their
//! ReplicaSets, events, HPAs, claims and usage history. 2,000 apps (10,000 objects, 10,000 pods)
//! unless a size is given; `benches/scale.rs` goes from 1,000 to 100,000 pods.
#![allow(dead_code)]

pub mod figures;

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
    generate_apps(root, FILES);
}

/// Writes a repository of `apps` files (five objects each) in directories of 20; every other
/// directory is a kustomize build with a namespace.
pub fn generate_apps(root: &Path, apps: usize) {
    for dir in 0..apps.div_ceil(20) {
        let path = root.join(format!("apps/team-{dir}"));
        std::fs::create_dir_all(&path).unwrap();
        let names: Vec<String> = (dir * 20..apps.min(dir * 20 + 20))
            .map(|i| format!("app-{i}.yaml"))
            .collect();
        for (f, name) in names.iter().enumerate() {
            std::fs::write(path.join(name), app(dir * 20 + f)).unwrap();
        }
        if dir.is_multiple_of(2) {
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

/// The namespace of app `i`: its directory's for a kustomize build, `default` otherwise.
fn namespace(i: usize) -> String {
    if (i / 20).is_multiple_of(2) {
        format!("team-{}", i / 20)
    } else {
        "default".to_owned()
    }
}

/// The objects of a snapshot of the generated repository's cluster: 2,000 Deployments with their
/// ReplicaSets and 10,000 pods, as [`snapshot_of`] makes them.
pub fn snapshot_objects() -> Vec<(&'static str, Value)> {
    snapshot_of(FILES)
        .into_iter()
        .map(|(name, items)| match items {
            Items::List(items) => (name, list(items)),
            Items::One(value) => (name, value),
        })
        .collect()
}

/// What one file of a snapshot holds: a `List` of these items, or one object.
pub enum Items {
    /// The items of a `List`.
    List(Vec<Value>),
    /// One object.
    One(Value),
}

fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items})
}

/// The snapshot of a cluster running `apps` generated apps: each a Deployment with its
/// ReplicaSet, five pods and an HPA; one node per 100 pods (at least 20, one NotReady); an event
/// per pod and one more per failing pod; a claim for every 25th app; and usage history. Every
/// 50th app is OOM-killed in a loop, every 70th cannot pull its image, every 40th has a week of
/// usage far below its requests, every 60th HPA is at its maximum, and every 100th claim is
/// filling up.
pub fn snapshot_of(apps: usize) -> Vec<(&'static str, Items)> {
    let mut pods = Vec::with_capacity(apps * PODS_PER_APP);
    let mut workloads = Vec::with_capacity(apps * 2);
    let mut events = Vec::with_capacity(apps * PODS_PER_APP);
    let mut hpas = Vec::with_capacity(apps);
    let mut pvcs = Vec::new();
    let nodes_count = (apps * PODS_PER_APP / 100).max(20);
    for i in 0..apps {
        let ns = namespace(i);
        let labels = json!({"app": format!("app-{i}")});
        workloads.push(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": format!("app-{i}"), "namespace": ns, "generation": 3,
                "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"replicas": 5, "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app",
                    "image": format!("registry.example.com/app-{i}:1.0.{i}"),
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}}]}}},
            "status": {"observedGeneration": 3, "replicas": 5, "readyReplicas": 5, "updatedReplicas": 5, "availableReplicas": 5}}));
        let owner = |kind: &str, name: String| json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u", "controller": true}]);
        workloads.push(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("app-{i}-5d4f8"), "namespace": ns, "ownerReferences": owner("Deployment", format!("app-{i}"))},
            "spec": {"replicas": 5, "selector": {"matchLabels": labels}}}));
        let at_max = i % 60 == 0;
        hpas.push(json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": format!("app-{i}"), "namespace": ns},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("app-{i}")},
                "minReplicas": 2, "maxReplicas": 10,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]},
            "status": {"currentReplicas": if at_max { 10 } else { 5 }, "desiredReplicas": if at_max { 10 } else { 5 },
                "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageUtilization": if at_max { 140 } else { 35 }, "averageValue": "35m"}}}]}}));
        if i % 25 == 0 {
            pvcs.push(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": format!("data-app-{i}"), "namespace": ns},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
                "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}}}));
        }
        for p in 0..PODS_PER_APP {
            let pod = format!("app-{i}-5d4f8-{p}");
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
            let event = |reason: &str, kind: &str, message: &str| {
                json!({"apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": format!("{pod}.{reason}"), "namespace": ns},
                    "involvedObject": {"kind": "Pod", "name": pod, "namespace": ns},
                    "reason": reason, "type": kind, "message": message, "count": 1,
                    "lastTimestamp": "2026-11-20T11:58:00Z"})
            };
            events.push(event(
                "Pulled",
                "Normal",
                "Container image already present on machine",
            ));
            if i % 50 == 0 {
                events.push(event(
                    "BackOff",
                    "Warning",
                    "Back-off restarting failed container app",
                ));
            } else if i % 70 == 0 {
                events.push(event(
                    "Failed",
                    "Warning",
                    "Failed to pull image: not found",
                ));
            }
            pods.push(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod, "namespace": ns,
                    "labels": {"app": format!("app-{i}"), "pod-template-hash": "5d4f8"},
                    "ownerReferences": owner("ReplicaSet", format!("app-{i}-5d4f8"))},
                "spec": {"nodeName": format!("node-{}", (i * PODS_PER_APP + p) % nodes_count),
                    "containers": [{"name": "app", "image": "img"}]},
                "status": {"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-19T12:00:00Z"}],
                    "containerStatuses": [status]}}));
        }
    }
    let nodes: Vec<Value> = (0..nodes_count)
        .map(|n| {
            let ready = if n == 7 { "Unknown" } else { "True" };
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("node-{n}")},
                "status": {"conditions": [{"type": "Ready", "status": ready, "lastHeartbeatTime": "2026-11-20T11:59:30Z"}]}})
        })
        .collect();
    let start = 1_763_035_200.0;
    let hours = |value: &dyn Fn(u32) -> f64| -> Vec<[f64; 2]> {
        (0..192)
            .map(|h| [start + 3600.0 * f64::from(h), value(h)])
            .collect()
    };
    let containers: Vec<Value> = (0..apps)
        .step_by(40)
        .map(|i| {
            json!({"namespace": namespace(i), "workload": {"kind": "Deployment", "name": format!("app-{i}")}, "container": "app",
                "cpu": hours(&|_| 0.02), "memory": hours(&|_| 30.0 * 1048576.0)})
        })
        .collect();
    let volumes: Vec<Value> = (0..apps)
        .step_by(25)
        .map(|i| {
            let filling = i % 100 == 0;
            let used = move |h: u32| {
                let gib = if filling { 4.0 + f64::from(h) * 0.03 } else { 2.0 };
                gib * 1_073_741_824.0
            };
            json!({"namespace": namespace(i), "pvc": format!("data-app-{i}"), "capacityBytes": 10.0 * 1_073_741_824.0,
                "used": hours(&used)})
        })
        .collect();
    vec![
        ("pods", Items::List(pods)),
        ("workloads", Items::List(workloads)),
        ("events", Items::List(events)),
        ("hpas", Items::List(hpas)),
        ("pvcs", Items::List(pvcs)),
        ("nodes", Items::List(nodes)),
        (
            "usage",
            Items::One(
                json!({"apiVersion": "remediator.dev/v1alpha1", "kind": "UsageHistory",
                "containers": containers, "volumes": volumes}),
            ),
        ),
    ]
}

/// Writes the snapshot into `dir` as `kubectl get -o json` writes it.
pub fn snapshot(dir: &Path) {
    snapshot_apps(dir, FILES);
}

/// Writes the snapshot of `apps` apps into `dir` as `kubectl get -o json` writes it, one list
/// item at a time.
pub fn snapshot_apps(dir: &Path, apps: usize) {
    use std::io::Write;
    std::fs::create_dir_all(dir).unwrap();
    for (name, items) in snapshot_of(apps) {
        let file = std::fs::File::create(dir.join(format!("{name}.json"))).unwrap();
        let mut out = std::io::BufWriter::new(file);
        match items {
            Items::One(value) => serde_json::to_writer_pretty(&mut out, &value).unwrap(),
            Items::List(items) => {
                write!(out, "{{\n    \"apiVersion\": \"v1\",\n    \"items\": [").unwrap();
                for (n, item) in items.iter().enumerate() {
                    out.write_all(if n == 0 { b"\n" } else { b",\n" }).unwrap();
                    serde_json::to_writer_pretty(&mut out, item).unwrap();
                }
                write!(out, "\n    ],\n    \"kind\": \"List\",\n    \"metadata\": {{\n        \"resourceVersion\": \"\"\n    }}\n}}\n").unwrap();
            }
        }
        out.flush().unwrap();
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
