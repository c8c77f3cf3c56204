//! Indexing speed: a generated repository of 10,000 objects in 2,000 files (five a file: a
//! Deployment, a Service, a ConfigMap, an HPA and a PDB), plain directories and kustomize builds.

use criterion::{Criterion, criterion_group, criterion_main};
use remediator::manifests::{IndexOptions, RepoIndex};

mod support;

use support::{FILES, generate};

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
