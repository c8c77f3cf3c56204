//! The live snapshot: the same [`Snapshot`] the offline path reads from `kubectl get` files,
//! listed from the cluster (pods, workloads, ReplicaSets, events, nodes, HPAs, PVCs, jobs) in
//! pages, plus current usage from metrics.k8s.io when the cluster serves it, as one sample per
//! container averaged over a workload's pods, and the tail of each failing container's log,
//! redacted as it arrives. A kind that cannot be listed (not served, not allowed) is a problem
//! and the rest still loads. I/O: the Kubernetes API.

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::retry::{RetryPolicy, with_retry};
use super::{Error, Result, to_value};
use crate::detect::owners::Owners;
use crate::model::objects::Tighten;
use crate::model::quantity::{cpu_millis, memory_bytes};
use crate::model::{ContainerUsage, Snapshot, UsageHistory, WorkloadRef};
use crate::snapshot::{Loaded, Problem};

/// Options of a live snapshot.
#[derive(Clone, Debug)]
pub struct SnapshotOptions {
    /// Only this namespace (nodes are always listed); every namespace when `None`.
    pub namespace: Option<String>,
    /// Read usage from metrics.k8s.io when it is served.
    pub metrics: bool,
    /// Objects per page.
    pub page_size: u32,
    /// Retries of failed calls.
    pub retry: RetryPolicy,
    /// Read the logs of failing containers.
    pub logs: bool,
}

/// Lines of a failing container's log read, at most.
const LOG_TAIL_LINES: i64 = 100;
/// Bytes of a failing container's log read, at most.
const LOG_LIMIT_BYTES: i64 = 32 * 1024;
/// Failing containers whose logs one snapshot reads, at most.
const LOG_CONTAINERS: usize = 50;
/// Log reads in flight.
const LOG_CONCURRENCY: usize = 8;

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            namespace: None,
            metrics: true,
            page_size: 500,
            retry: RetryPolicy::default(),
            logs: true,
        }
    }
}

/// Lists every page of one kind, `page_size` objects a page, passing each object through `keep`
/// as its page arrives (to drop what the caller will not read before the next page comes).
pub(crate) async fn pages<K, T>(
    api: &Api<K>,
    page_size: u32,
    retry: &RetryPolicy,
    mut keep: impl FnMut(K) -> T,
) -> std::result::Result<Vec<T>, kube::Error>
where
    K: Clone + DeserializeOwned + Debug,
{
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(page_size);
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        let page = with_retry(retry, || api.list(&params)).await?;
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        items.extend(page.items.into_iter().map(&mut keep));
        if token.is_none() {
            return Ok(items);
        }
    }
}

/// Drops what detection never reads and what makes up much of a listed object: the field
/// managers and kubectl's copy of the last applied configuration. Who owns a field is read
/// from the live object when a change is assessed, not from the snapshot.
fn unread<K: kube::Resource>(mut object: K) -> K {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    object
}

/// Lists one kind into `into`, each object read by `read`; a kind not served or not allowed
/// becomes a problem.
async fn collect<K, T>(
    api: Api<K>,
    what: &str,
    options: &SnapshotOptions,
    into: &mut Vec<T>,
    problems: &mut Vec<Problem>,
    read: impl Fn(K) -> serde_json::Result<T>,
) -> Result<()>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
    T: Tighten,
{
    let listed = pages(&api, options.page_size, &options.retry, |k| {
        let mut object = read(unread(k))?;
        object.tighten();
        Ok(object)
    })
    .await;
    let failed = |source| Error::Api {
        object: what.to_owned(),
        verb: "list",
        source,
    };
    match listed {
        Ok(items) => {
            for item in items {
                into.push(item.map_err(|e| failed(kube::Error::SerdeError(e)))?);
            }
            Ok(())
        }
        Err(kube::Error::Api(status)) if matches!(status.code, 403 | 404) => {
            problems.push(Problem::Unavailable {
                what: what.to_owned(),
                message: format!("{} ({})", status.message, status.reason),
            });
            Ok(())
        }
        Err(source) => Err(failed(source)),
    }
}

/// Lists the snapshot; see the module documentation.
pub async fn snapshot(client: &kube::Client, options: &SnapshotOptions) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    let (s, problems) = (&mut loaded.snapshot, &mut loaded.problems);
    macro_rules! namespaced {
        ($what:literal, $into:expr) => {{
            let api = match &options.namespace {
                Some(namespace) => Api::namespaced(client.clone(), namespace),
                None => Api::all(client.clone()),
            };
            collect(api, $what, options, $into, problems, Ok).await?;
        }};
    }
    // Pods are read whole, to keep the whole object of a pod no controller owns.
    let pods = ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&());
    let api = match &options.namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &pods),
        None => Api::all_with(client.clone(), &pods),
    };
    let read = |pod| crate::model::objects::Pod::from_value(to_value(pod));
    collect(api, "pods", options, &mut s.pods, problems, read).await?;
    namespaced!("deployments", &mut s.deployments);
    namespaced!("statefulsets", &mut s.stateful_sets);
    namespaced!("daemonsets", &mut s.daemon_sets);
    // ReplicaSets and events are kept in compact types of their own, read from the listed ones.
    macro_rules! compact {
        ($what:literal, $listed:ty, $into:expr) => {{
            let api = match &options.namespace {
                Some(namespace) => Api::namespaced(client.clone(), namespace),
                None => Api::all(client.clone()),
            };
            let read =
                |object: $listed| serde_json::to_value(object).and_then(serde_json::from_value);
            collect(api, $what, options, $into, problems, read).await?;
        }};
    }
    compact!(
        "replicasets",
        k8s_openapi::api::apps::v1::ReplicaSet,
        &mut s.replica_sets
    );
    compact!("events", k8s_openapi::api::core::v1::Event, &mut s.events);
    namespaced!("horizontalpodautoscalers", &mut s.hpas);
    namespaced!("persistentvolumeclaims", &mut s.pvcs);
    namespaced!("jobs", &mut s.jobs);
    collect(
        Api::all(client.clone()),
        "nodes",
        options,
        &mut s.nodes,
        problems,
        Ok,
    )
    .await?;
    // Argo CD's settings, where it runs: how it marks what it applies. Not being allowed to
    // read them leaves every tracking method accepted, and says so.
    let settings: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), "argocd");
    match with_retry(&options.retry, || settings.get_opt("argocd-cm")).await {
        Ok(found) => {
            s.argo_tracking =
                found.map(|cm| crate::model::ArgoTracking::from_data(&cm.data.unwrap_or_default()));
        }
        Err(kube::Error::Api(status)) if status.code == 403 => problems.push(Problem::Setting {
            what: "ConfigMap argocd/argocd-cm".into(),
            message: format!("{} ({})", status.message, status.reason),
        }),
        Err(source) => {
            return Err(Error::Api {
                object: "ConfigMap argocd/argocd-cm".into(),
                verb: "get",
                source,
            });
        }
    }
    if options.logs {
        read_logs(client, &mut loaded, options).await;
    }
    let (s, problems) = (&mut loaded.snapshot, &mut loaded.problems);
    if options.metrics {
        let resource = pod_metrics();
        let api = match &options.namespace {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        match metrics_pages(&api, options).await {
            Ok(items) => {
                let items: Vec<Value> = items.into_iter().map(to_value).collect();
                s.usage = usage(s, &items)?;
            }
            // metrics-server is not installed: there is no usage to read.
            Err(kube::Error::Api(status)) if matches!(status.code, 404 | 503) => {}
            Err(kube::Error::Api(status)) => problems.push(Problem::Unavailable {
                what: "metrics.k8s.io pods".into(),
                message: format!("{} ({})", status.message, status.reason),
            }),
            Err(source) => {
                return Err(Error::Api {
                    object: "metrics.k8s.io pods".into(),
                    verb: "list",
                    source,
                });
            }
        }
    }
    Ok(loaded)
}

/// The failing containers of `pods`: (namespace, pod, container, whether the failed run is the
/// previous one). A container that restarted after a failure failed in its previous run; one
/// that is terminated with an error and not restarted failed in this one.
fn failing(pods: &[crate::model::objects::Pod]) -> Vec<(String, String, String, bool)> {
    let mut out = Vec::new();
    for pod in pods {
        let (Some(namespace), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
            continue;
        };
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        for status in statuses.into_iter().flatten() {
            let failed_before = status.restart_count > 0
                && status
                    .last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .is_some_and(|t| t.exit_code != 0);
            let failed_now = status
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|t| t.exit_code != 0);
            if failed_before || failed_now {
                out.push((
                    namespace.clone(),
                    name.clone(),
                    status.name.clone(),
                    failed_before,
                ));
            }
        }
    }
    out
}

/// The Secrets a pod can read: its volumes (direct and projected), `envFrom` and `env`
/// references.
fn secrets_of(pod: &crate::model::objects::Pod) -> Vec<String> {
    let Some(spec) = &pod.spec else {
        return vec![];
    };
    let mut names: Vec<String> = Vec::new();
    for volume in spec.volumes.iter().flatten() {
        names.extend(volume.secret.as_ref().and_then(|s| s.secret_name.clone()));
        let projected = volume.projected.as_ref().and_then(|p| p.sources.as_ref());
        names.extend(
            projected
                .into_iter()
                .flatten()
                .filter_map(|s| s.secret.as_ref().map(|s| s.name.clone())),
        );
    }
    for container in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        for from in container.env_from.iter().flatten() {
            names.extend(from.secret_ref.as_ref().map(|r| r.name.clone()));
        }
        for env in container.env.iter().flatten() {
            let key = env
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref());
            names.extend(key.map(|k| k.name.clone()));
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Reads the tails of failing containers' logs into the snapshot, redacted by pattern and by
/// the values of the Secrets each pod can read. A pod whose Secrets cannot be read has its logs
/// withheld (a problem says so): a log is never kept unredacted. A log that cannot be read is
/// a problem; a previous container the kubelet no longer has is nothing to read.
async fn read_logs(client: &kube::Client, loaded: &mut Loaded, options: &SnapshotOptions) {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::{Pod, Secret};
    let mut wanted = failing(&loaded.snapshot.pods);
    if wanted.len() > LOG_CONTAINERS {
        loaded.problems.push(Problem::Log {
            what: "container logs".into(),
            message: format!(
                "{} containers are failing; the logs of the first {LOG_CONTAINERS} are read",
                wanted.len()
            ),
        });
        wanted.truncate(LOG_CONTAINERS);
    }
    let secrets: BTreeMap<(String, String), Vec<String>> = wanted
        .iter()
        .filter_map(|(namespace, pod, _, _)| {
            let found = loaded.snapshot.pods.iter().find(|p| {
                p.metadata.namespace.as_ref() == Some(namespace)
                    && p.metadata.name.as_ref() == Some(pod)
            })?;
            Some(((namespace.clone(), pod.clone()), secrets_of(found)))
        })
        .collect();
    let mut needed: Vec<(String, String)> = secrets
        .iter()
        .flat_map(|((namespace, _), names)| names.iter().map(|n| (namespace.clone(), n.clone())))
        .collect();
    needed.sort();
    needed.dedup();
    let retry = &options.retry;
    let read_secret = |(namespace, name): (String, String)| async move {
        let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        let read = with_retry(retry, || api.get(&name)).await;
        ((namespace, name), read)
    };
    let read: Vec<_> = futures::stream::iter(needed)
        .map(read_secret)
        .buffer_unordered(LOG_CONCURRENCY)
        .collect()
        .await;
    let mut values: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut unreadable: BTreeMap<(String, String), String> = BTreeMap::new();
    for (key, result) in read {
        match result {
            Ok(secret) => {
                values.insert(key, crate::redact::secret_values(secret));
            }
            // A Secret that is gone cannot be in the log by value.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => {
                unreadable.insert(key, error.to_string());
            }
        }
    }
    let read_log = |(namespace, pod, container, previous): (String, String, String, bool)| async move {
        let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let params = kube::api::LogParams {
            container: Some(container.clone()),
            previous,
            tail_lines: Some(LOG_TAIL_LINES),
            limit_bytes: Some(LOG_LIMIT_BYTES),
            ..Default::default()
        };
        let text = with_retry(retry, || api.logs(&pod, &params)).await;
        ((namespace, pod, container, previous), text)
    };
    let mut logs: Vec<_> = futures::stream::iter(wanted)
        .map(read_log)
        .buffer_unordered(LOG_CONCURRENCY)
        .collect()
        .await;
    logs.sort_by(|a, b| a.0.cmp(&b.0));
    for ((namespace, pod, container, previous), text) in logs {
        let names = secrets
            .get(&(namespace.clone(), pod.clone()))
            .cloned()
            .unwrap_or_default();
        if let Some((secret, error)) = names.iter().find_map(|n| {
            unreadable
                .get(&(namespace.clone(), n.clone()))
                .map(|e| (n, e))
        }) {
            loaded.problems.push(Problem::Log {
                what: format!("log of {namespace}/{pod} container {container}"),
                message: format!(
                    "withheld: Secret {secret}, which the pod can read, could not be read to redact it ({error})"
                ),
            });
            continue;
        }
        let text = match text {
            Ok(text) => text,
            // The kubelet no longer has the previous container: there is no log to read.
            Err(kube::Error::Api(status)) if status.code == 400 => continue,
            Err(error) => {
                loaded.problems.push(Problem::Log {
                    what: format!("log of {namespace}/{pod} container {container}"),
                    message: error.to_string(),
                });
                continue;
            }
        };
        let redactor = crate::redact::Redactor::with_values(
            names
                .iter()
                .filter_map(|n| values.get(&(namespace.clone(), n.clone())))
                .flatten()
                .cloned(),
        );
        loaded.snapshot.logs.push(crate::model::ContainerLog {
            api_version: None,
            kind: None,
            namespace,
            pod,
            container,
            previous,
            text: redactor.redact(&text),
        });
    }
}

/// Every PodMetrics the cluster serves now; `None` when metrics.k8s.io is not served (no
/// metrics-server). A sampler keeps their usage over time.
pub async fn sample_pod_metrics(
    client: &kube::Client,
    options: &SnapshotOptions,
) -> Result<Option<Vec<Value>>> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &pod_metrics());
    match metrics_pages(&api, options).await {
        Ok(items) => Ok(Some(items.into_iter().map(to_value).collect())),
        Err(kube::Error::Api(status)) if matches!(status.code, 404 | 503) => Ok(None),
        Err(source) => Err(Error::Api {
            object: "metrics.k8s.io pods".into(),
            verb: "list",
            source,
        }),
    }
}

/// Every PodMetrics `api` lists.
async fn metrics_pages(
    api: &Api<DynamicObject>,
    options: &SnapshotOptions,
) -> std::result::Result<Vec<DynamicObject>, kube::Error> {
    pages(api, options.page_size, &options.retry, unread).await
}

/// metrics.k8s.io's PodMetrics.
fn pod_metrics() -> ApiResource {
    ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "PodMetrics".into(),
        plural: "pods".into(),
    }
}

/// One usage sample per container of each workload, averaged over its pods, at the latest
/// timestamp among them. Pods no workload owns are left out.
///
/// A sample whose CPU, memory or timestamp cannot be read is an error naming the pod: usage
/// decides findings, so an unreadable value never becomes zero.
pub fn usage(snapshot: &Snapshot, pod_metrics: &[Value]) -> Result<UsageHistory> {
    let owners = Owners::new(snapshot);
    let pods: std::collections::HashMap<(&str, &str), &crate::model::objects::Pod> = snapshot
        .pods
        .iter()
        .filter_map(|p| {
            let meta = &p.metadata;
            Some(((meta.namespace.as_deref()?, meta.name.as_deref()?), p))
        })
        .collect();
    type Key = (String, String, String, String);
    let mut sums: BTreeMap<Key, (f64, f64, usize, f64)> = BTreeMap::new();
    for metrics in pod_metrics {
        let text = |p: &str| metrics.pointer(p).and_then(Value::as_str);
        let (Some(namespace), Some(name)) = (text("/metadata/namespace"), text("/metadata/name"))
        else {
            continue;
        };
        let pod = pods.get(&(namespace, name));
        let Some(workload) = pod.and_then(|p| owners.of_pod(p)) else {
            continue;
        };
        let object = format!("PodMetrics/{namespace}/{name}");
        let unreadable = |message: String| Error::Unreadable {
            object: object.clone(),
            message,
        };
        let stamp = text("/timestamp");
        let at = stamp
            .and_then(|t| t.parse::<Timestamp>().ok())
            .ok_or_else(|| unreadable(format!("timestamp {stamp:?} is not an RFC 3339 time")))?
            .as_second() as f64;
        for container in metrics["containers"].as_array().into_iter().flatten() {
            let Some(container_name) = container["name"].as_str() else {
                continue;
            };
            let usage = &container["usage"];
            let read = |field: &str, parse: fn(&str) -> Option<f64>| {
                let value = usage[field].as_str();
                value.and_then(parse).ok_or_else(|| {
                    unreadable(format!(
                        "container {container_name}: {field} usage {value:?} is not a quantity"
                    ))
                })
            };
            let cpu = read("cpu", cpu_millis)? / 1000.0;
            let memory = read("memory", memory_bytes)?;
            let key = (
                namespace.to_owned(),
                workload.kind.clone(),
                workload.name.clone(),
                container_name.to_owned(),
            );
            let entry = sums.entry(key).or_default();
            entry.0 += cpu;
            entry.1 += memory;
            entry.2 += 1;
            entry.3 = entry.3.max(at);
        }
    }
    let containers = sums
        .into_iter()
        .map(
            |((namespace, kind, name, container), (cpu, memory, pods, at))| {
                let pods = pods as f64;
                ContainerUsage {
                    namespace,
                    workload: WorkloadRef { kind, name },
                    container,
                    cpu: vec![(at, cpu / pods)],
                    memory: vec![(at, memory / pods)],
                    replicas: vec![(at, pods)],
                    oom_killed_pods: 0,
                }
            },
        )
        .collect();
    Ok(UsageHistory {
        api_version: Some("remediator.dev/v1alpha1".into()),
        kind: Some("UsageHistory".into()),
        metadata: Some(serde_json::json!({"name": "metrics.k8s.io"})),
        containers,
        volumes: Vec::new(),
    })
}
