//! CustomResourceDefinition compatibility on a large real pair: the Prometheus operator's
//! `prometheuses` CRD at v0.80.0 and v0.93.0 (`benches/fixtures`, descriptions removed), about
//! 1,800 properties; the same pair served as three versions side by side (over 5,000 properties
//! per CRD, with every pair of served versions compared too); and 10,000 live custom resources
//! checked against the new schema.

use criterion::{Criterion, criterion_group, criterion_main};
use remediator::crd::{self, validate::Validator};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = format!("{}/benches/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// How many named properties a schema declares, at any depth.
fn properties(schema: &Value) -> usize {
    let Some(node) = schema.as_object() else {
        return 0;
    };
    let named = node
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.len() + p.values().map(properties).sum::<usize>())
        .unwrap_or(0);
    let nested: usize = ["items", "additionalProperties"]
        .iter()
        .filter_map(|k| node.get(*k))
        .map(properties)
        .sum();
    named + nested
}

fn total(crd: &Value) -> usize {
    crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| properties(&v["schema"]["openAPIV3Schema"]))
        .sum()
}

/// The CRD with its one version served as v1, v2 and v3 (storage v3), conversion None.
fn three_versions(crd: &Value) -> Value {
    let mut out = crd.clone();
    let one = crd["spec"]["versions"][0].clone();
    out["spec"]["versions"] = json!(
        ["v1", "v2", "v3"]
            .iter()
            .map(|name| {
                let mut v = one.clone();
                v["name"] = json!(name);
                v["storage"] = json!(*name == "v3");
                v
            })
            .collect::<Vec<_>>()
    );
    out
}

fn prometheus(i: usize) -> Value {
    json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
        "metadata": {"name": format!("p{i}"), "namespace": format!("team-{}", i % 50)},
        "spec": {"replicas": 2, "shards": 1, "retention": "15d", "scrapeInterval": "30s",
            "serviceMonitorSelector": {"matchLabels": {"team": format!("t{}", i % 50)}},
            "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}},
            "remoteWrite": [{"url": "https://mimir.example.com/api/v1/push",
                "writeRelabelConfigs": [{"action": "drop", "regex": "go_.*",
                    "sourceLabels": ["__name__"]}]}],
            "minReadySeconds": if i.is_multiple_of(1000) { -1 } else { 10 }}})
}

fn bench(c: &mut Criterion) {
    let old = fixture("prometheuses-v0.80.0.json");
    let new = fixture("prometheuses-v0.93.0.json");
    let (wide_old, wide_new) = (three_versions(&old), three_versions(&new));
    eprintln!(
        "prometheuses: {} → {} properties; served as three versions: {} → {}",
        total(&old),
        total(&new),
        total(&wide_old),
        total(&wide_new)
    );
    assert!(total(&wide_new) > 5000);
    let found = crd::compare(&old, &new, None);
    assert!(
        found.iter().any(|b| b.path == ".spec.minReadySeconds"),
        "{found:?}"
    );
    let mut group = c.benchmark_group("crd");
    group.bench_function("compare prometheuses v0.80.0 → v0.93.0", |b| {
        b.iter(|| crd::compare(&old, &new, None))
    });
    group.bench_function("compare, three versions served (5,000+ properties)", |b| {
        b.iter(|| crd::compare(&wide_old, &wide_new, None))
    });
    let objects: Vec<Value> = (0..10_000).map(prometheus).collect();
    let schema = &new["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut validator = Validator::new(schema).unwrap();
    let checked = validator.check_all(&objects);
    assert_eq!(checked.invalid.len(), 10, "{:?}", checked.invalid.first());
    group.sample_size(10);
    group.bench_function(
        "10,000 live Prometheus objects against the new schema",
        |b| b.iter(|| validator.check_all(&objects)),
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
