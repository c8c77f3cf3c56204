//! How many server-side applies per second the test API server answers: 1,000 ConfigMaps a batch,
//! each a new object (create-on-apply) followed by a changed re-apply (merge, conflict check and
//! managedFields update), 16 requests in flight, through the real kube client over HTTP. The
//! project's own apply speed is measured against this server, so it must never be the bottleneck.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use testkit::TestCluster;

const BATCH: usize = 1_000;
const IN_FLIGHT: usize = 16;

async fn apply_batch(api: &Api<ConfigMap>, first: usize) {
    let params = PatchParams::apply("bench");
    futures::stream::iter(0..BATCH)
        .map(|i| {
            let name = format!("cm-{}", first + i / 2);
            let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "labels": {"app": "bench"}},
                "data": {"key": format!("value-{}", i % 2), "other": "constant"}});
            let (api, params) = (api.clone(), params.clone());
            async move {
                api.patch(&name, &params, &Patch::Apply(body))
                    .await
                    .expect("apply")
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .for_each(|_| async {})
        .await;
}

fn bench(c: &mut Criterion) {
    let cluster = TestCluster::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let api: Api<ConfigMap> = runtime.block_on(async { Api::default_namespaced(cluster.client()) });
    let next = AtomicUsize::new(0);
    let mut group = c.benchmark_group("apiserver");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("server-side apply, 16 in flight", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let first = next.fetch_add(BATCH, Ordering::Relaxed);
                let started = Instant::now();
                runtime.block_on(apply_batch(&api, first));
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
