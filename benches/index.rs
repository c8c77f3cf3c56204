//! Indexing speed: a generated repository of 10,000 objects in 2,000 files (five a file: a
//! Deployment, a Service, a ConfigMap, an HPA and a PDB), plain directories and kustomize builds.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use remediator::manifests::{IndexOptions, RepoIndex};

const FILES: usize = 2_000;

fn app(i: usize) -> String {
    format!(
        "# app {i}\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  labels: {{app: app-{i}}}\n\
spec:\n  replicas: 2 # at least two\n  selector:\n    matchLabels: {{app: app-{i}}}\n  template:\n    metadata:\n      labels: {{app: app-{i}}}\n\
    spec:\n      containers:\n        - name: app\n          image: \"registry.example.com/app-{i}:1.0.{i}\"\n          ports:\n            - containerPort: 8080\n\
          resources:\n            requests: {{cpu: 100m, memory: 128Mi}}\n            limits:\n              memory: 256Mi\n---\n\
apiVersion: v1\nkind: Service\nmetadata:\n  name: app-{i}\nspec:\n  selector: {{app: app-{i}}}\n  ports:\n    - port: 80\n      targetPort: 8080\n---\n\
apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{i}\ndata:\n  LOG_LEVEL: info\n  FEATURES: 'a,b,c'\n---\n\
apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: app-{i}\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: app-{i}}}\n\
  minReplicas: 2\n  maxReplicas: 10\n  metrics:\n    - type: Resource\n      resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 70}}}}\n---\n\
apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: app-{i}\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels: {{app: app-{i}}}\n"
    )
}

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
    assert_eq!(index.objects.len(), FILES * 5);
    assert!(index.errors.is_empty(), "{:?}", index.errors.first());
    let mut group = c.benchmark_group("index");
    group.sample_size(10);
    group.bench_function("10k objects in 2k files", |b| {
        b.iter(|| RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
