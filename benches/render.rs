//! Rendering cost on `check`'s path: a generated repository of 50 kustomize builds (overlays of
//! one shared base of five apps), with one commit that changes one overlay's patch and one that
//! changes the shared base. Only the builds whose inputs differ are rendered, each once per
//! tree; the second case renders all 50 twice, which gives the time per build.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use remediator::changes;
use remediator::config::Config;
use remediator::git::ConfigRepo;
use remediator::render::Renderer;

const BUILDS: usize = 50;
const APPS: usize = 5;

fn write(root: &Path, path: &str, text: &str) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}

fn commit(repo: &git2::Repository, message: &str) -> git2::Oid {
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("bench", "bench@example.com").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap()
}

fn base(root: &Path, image_tag: &str) {
    let mut resources = String::from("resources:\n");
    for app in 0..APPS {
        resources += &format!("  - app-{app}.yaml\n");
        write(
            root,
            &format!("apps/base/app-{app}.yaml"),
            &format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{app}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: app-{app}}}}}\n  template:\n    metadata: {{labels: {{app: app-{app}}}}}\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/app-{app}:{image_tag}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: app-{app}\nspec:\n  selector: {{app: app-{app}}}\n  ports: [{{port: 80}}]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{app}\ndata:\n  level: info\n"
            ),
        );
    }
    write(root, "apps/base/kustomization.yaml", &resources);
}

fn overlay(root: &Path, i: usize, replicas: usize) {
    write(
        root,
        &format!("clusters/c{i}/kustomization.yaml"),
        &format!("namespace: c{i}\nresources: [../../apps/base]\npatches:\n  - path: patch.yaml\n"),
    );
    write(
        root,
        &format!("clusters/c{i}/patch.yaml"),
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-0\nspec:\n  replicas: {replicas}\n"
        ),
    );
}

fn bench(c: &mut Criterion) {
    if remediator::render::Kustomize::find().is_err() {
        eprintln!("neither kustomize nor kubectl is on PATH: nothing to measure");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(dir.path()).unwrap();
    base(dir.path(), "1.0");
    for i in 0..BUILDS {
        overlay(dir.path(), i, 2);
    }
    let first = commit(&repo, "50 builds");
    overlay(dir.path(), 7, 3);
    let one = commit(&repo, "one overlay's patch");
    base(dir.path(), "1.1");
    let all = commit(&repo, "the shared base");
    let config_repo = ConfigRepo::open(dir.path()).unwrap();
    let config = Config::default();
    let check = |from, to| {
        let renderer = Renderer::from_path(Default::default());
        changes::between(&config_repo, &config, &renderer, from, to, None).unwrap()
    };
    assert_eq!(check(first, one).objects.len(), 1);
    assert_eq!(check(one, all).objects.len(), BUILDS * APPS);
    let mut group = c.benchmark_group("render");
    group.sample_size(10);
    group.bench_function("check, 50 builds, one overlay changed (2 renders)", |b| {
        b.iter(|| check(first, one))
    });
    group.bench_function("check, 50 builds, shared base changed (100 renders)", |b| {
        b.iter(|| check(one, all))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
