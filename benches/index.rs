//! Indexing speed: a generated repository of 10,000 objects in 2,000 files (five a file: a
//! Deployment, a Service, a ConfigMap, an HPA and a PDB), plain directories and kustomize builds.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use remediator::manifests::{IndexOptions, RepoIndex};

const FILES: usize = 2_000;

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
fn generate(root: &Path) {
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

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
    assert!(
        index.errors.is_empty(),
        "{} errors, the first: {}",
        index.errors.len(),
        index.errors[0]
    );
    assert_eq!(index.objects.len(), FILES * 5);
    let mut group = c.benchmark_group("index");
    group.sample_size(10);
    group.bench_function("10k objects in 2k files", |b| {
        // Freeing the index is left out: it is not part of building it.
        b.iter_with_large_drop(|| RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
