//! The watches: one kube-runtime watcher per kind detection reads (Pods, Deployments,
//! StatefulSets, DaemonSets, ReplicaSets, Jobs, Nodes, HPAs, PVCs, and Warning Events), each
//! re-listing on `410 Gone` and backing off on errors as kube-runtime does. A change queues one
//! detection once the cluster has been quiet for `serve.debounceSeconds` (each change starts
//! the quiet period again), or `serve.debounceMaxSeconds` after the first change while changes
//! keep coming; the resync interval queues one anyway. The service is ready once every watch has listed its kind once.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Node, PersistentVolumeClaim, Pod};
use kube::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event as Watched};
use kube::runtime::{WatchStreamExt, watcher as watch};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::Shared;

const KINDS: usize = 10;

/// Watches one kind; each change is a notification, its first full list counts as synced.
fn spawn<K>(
    api: Api<PartialObjectMeta<K>>,
    config: watcher::Config,
    changes: mpsc::Sender<()>,
    listed: Arc<AtomicUsize>,
    shared: Arc<Shared>,
) where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    tokio::spawn(async move {
        let mut first = true;
        // Only that something changed matters here: metadata is all that is read.
        let mut stream = watch(api, config).default_backoff().boxed();
        while let Some(event) = stream.next().await {
            match event {
                Ok(Watched::InitDone) => {
                    if first {
                        first = false;
                        if listed.fetch_add(1, Ordering::SeqCst) + 1 == KINDS {
                            shared.synced.store(true, Ordering::SeqCst);
                        }
                    }
                    let _ = changes.try_send(());
                }
                Ok(Watched::Apply(_) | Watched::Delete(_)) => {
                    let _ = changes.try_send(());
                }
                Ok(Watched::Init | Watched::InitApply(_)) => {}
                Err(error) => {
                    shared.metrics.failed("watch");
                    tracing::warn!(%error, "watch");
                }
            }
        }
    });
}

pub(super) async fn run(
    client: kube::Client,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let (changes, mut changed) = mpsc::channel::<()>(1);
    let listed = Arc::new(AtomicUsize::new(0));
    let plain = watcher::Config::default;
    macro_rules! watch_all {
        ($($kind:ty),*) => {$(
            spawn(
                Api::<PartialObjectMeta<$kind>>::all(client.clone()),
                plain(),
                changes.clone(),
                listed.clone(),
                shared.clone(),
            );
        )*};
    }
    watch_all!(
        Pod,
        Deployment,
        StatefulSet,
        DaemonSet,
        ReplicaSet,
        Job,
        Node,
        HorizontalPodAutoscaler,
        PersistentVolumeClaim
    );
    spawn(
        Api::<PartialObjectMeta<Event>>::all(client.clone()),
        plain().fields("type=Warning"),
        changes.clone(),
        listed.clone(),
        shared.clone(),
    );
    let settings = &shared.settings;
    let mut resync = tokio::time::interval(settings.resync);
    resync.tick().await;
    loop {
        tokio::select! {
            Some(()) = changed.recv() => {
                // A quiet period, started again by each change and capped: one detection for
                // the whole burst, soon after it ends.
                let cap = tokio::time::sleep(settings.debounce_max);
                tokio::pin!(cap);
                loop {
                    tokio::select! {
                        more = changed.recv() => if more.is_none() { break },
                        _ = tokio::time::sleep(settings.debounce) => break,
                        _ = &mut cap => break,
                    }
                }
                shared.detect();
            }
            _ = resync.tick() => { shared.detect(); }
            _ = stopped.changed() => return,
        }
    }
}
