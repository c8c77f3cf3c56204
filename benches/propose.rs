//! Propose speed on a generated 10,000-object repository and a 10,000-pod snapshot: detection,
//! one policy evaluation, planning (remedy, edit, assess, render), the whole command without
//! Git writes (index, snapshot, plan), and loading the snapshot as JSON and as YAML.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use remediator::assess::Policies;
use remediator::config::Config;
use remediator::detect::{DetectOptions, detect};
use remediator::manifests::{IndexOptions, RepoIndex};
use remediator::model::Snapshot;
use remediator::propose::{Inputs, ProposeOptions, plan};
use remediator::remedy::NoHistory;
use remediator::views::Templates;

mod support;

fn load(path: &Path) -> Snapshot {
    let loaded = remediator::snapshot::load(path).expect("the bench snapshot loads");
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems.first());
    loaded.snapshot
}

fn propose(
    repo: &Path,
    snapshot: &Path,
    config: &Config,
    templates: &Templates,
    options: &ProposeOptions,
) -> usize {
    let index = RepoIndex::build(repo, &IndexOptions::default()).unwrap();
    let snapshot = load(snapshot);
    let inputs = Inputs {
        repo,
        index: &index,
        config,
        snapshot: &snapshot,
        history: &NoHistory,
        templates,
        // Planning alone: rendering is kustomize's time, not ours.
        renderer: None,
    };
    plan(&inputs, &mut Policies::embedded(), options)
        .proposals
        .len()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (repo, snapshot_dir) = (dir.path().join("repo"), dir.path().join("snapshot"));
    support::generate(&repo);
    support::snapshot(&snapshot_dir);
    let config = Config::default();
    let index = RepoIndex::build(&repo, &IndexOptions::default()).unwrap();
    let snapshot = load(&snapshot_dir);
    assert_eq!(snapshot.pods.len(), support::FILES * support::PODS_PER_APP);
    let now = "2026-11-20T12:00:00Z".parse().unwrap();
    let options = ProposeOptions {
        now: Some(now),
        ..ProposeOptions::default()
    };
    let templates = Templates::load(None).unwrap();
    let inputs = Inputs {
        repo: &repo,
        index: &index,
        config: &config,
        snapshot: &snapshot,
        history: &NoHistory,
        templates: &templates,
        // Planning alone: rendering is kustomize\'s time, not ours.
        renderer: None,
    };
    let planned = plan(&inputs, &mut Policies::embedded(), &options);
    assert!(
        planned.failures.is_empty(),
        "{:?}",
        planned.failures.first()
    );
    assert!(
        planned.proposals.len() >= 80,
        "{} proposals",
        planned.proposals.len()
    );
    println!(
        "{} findings, {} proposals",
        planned.findings,
        planned.proposals.len()
    );

    let mut group = c.benchmark_group("propose");
    group.sample_size(10);
    group.bench_function("detect, 10k pods", |b| {
        b.iter(|| detect(&snapshot, &DetectOptions::at(now)))
    });
    let mut policies = Policies::embedded();
    let remediation = &planned.proposals[0].remediation;
    group.bench_function("assess, one proposal", |b| {
        b.iter(|| policies.assess(remediation, &config).unwrap())
    });
    group.bench_function("plan (remedy, edit, assess, render), no git writes", |b| {
        b.iter(|| plan(&inputs, &mut Policies::embedded(), &options))
    });
    group.bench_function(
        "whole propose (index, snapshot, plan), no git writes",
        |b| b.iter(|| propose(&repo, &snapshot_dir, &config, &templates, &options)),
    );
    group.bench_function("load the 10k-pod snapshot, kubectl -o json", |b| {
        b.iter_with_large_drop(|| load(&snapshot_dir))
    });
    let yaml_dir = dir.path().join("snapshot-yaml");
    support::snapshot_yaml(&yaml_dir);
    assert_eq!(load(&yaml_dir).pods.len(), snapshot.pods.len());
    group.bench_function("load the 10k-pod snapshot, kubectl -o yaml", |b| {
        b.iter_with_large_drop(|| load(&yaml_dir))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
