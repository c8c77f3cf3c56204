//! The capacity report, from a snapshot and its usage history: requests against use per
//! namespace; allocatable against requests per node pool (the headroom); containers whose
//! memory peaks near their limit; the forecasts detection makes (a volume full, a daily peak
//! beyond the ceiling, memory growing to its limit); and the largest right-sizing savings, in
//! cores and GiB. Pure.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::detect::owners::Owners;
use crate::detect::{DetectOptions, detect};
use crate::model::quantity::{cpu_millis, format_cpu, format_memory, memory_bytes};
use crate::model::{FindingCode, Snapshot};

/// A peak above this share of the limit is reported.
const NEAR_LIMIT: f64 = 0.9;
/// Right-sizing keeps this much over the p95, as the remedy does.
const HEADROOM: f64 = 1.3;
/// Labels that name a node's pool, by provider; `default` when none is set.
const POOL_LABELS: [&str; 5] = [
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "karpenter.sh/nodepool",
    "kubernetes.azure.com/agentpool",
    "node.kubernetes.io/instance-type",
];

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capacity {
    /// Per namespace.
    pub namespaces: Vec<Namespace>,
    /// Per node pool.
    pub pools: Vec<Pool>,
    /// Containers whose memory peak is close to their limit.
    pub near_limit: Vec<NearLimit>,
    /// Forecasts (`pvc-filling-up`, `peak-forecast`, `memory-growth`), one line each.
    pub forecasts: Vec<String>,
    /// The largest right-sizing savings, most first.
    pub savings: Vec<Saving>,
    /// The savings in all: cores and GiB.
    pub total_saving: String,
}

/// One namespace's requests and use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Namespace {
    /// Its name.
    pub name: String,
    /// CPU requested by its running pods, millicores.
    pub cpu_requested: f64,
    /// CPU used: the sum of each workload container's p95 times its pods, millicores.
    pub cpu_used: f64,
    /// Memory requested, bytes.
    pub memory_requested: f64,
    /// Memory used at the peak, bytes.
    pub memory_used: f64,
    /// For people: `2.5 of 4 cores (62 %)`.
    pub cpu: String,
    /// For people.
    pub memory: String,
}

/// One node pool's allocatable and requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pool {
    /// Its name.
    pub name: String,
    /// Nodes.
    pub nodes: usize,
    /// For people: requested of allocatable, and the headroom.
    pub cpu: String,
    /// For people.
    pub memory: String,
    /// CPU left to request, millicores.
    pub cpu_headroom: f64,
    /// Memory left to request, bytes.
    pub memory_headroom: f64,
}

/// A container near its memory limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearLimit {
    /// `Kind/namespace/name`.
    pub workload: String,
    /// The container.
    pub container: String,
    /// For people: `930Mi of 1Gi (91 %)`.
    pub memory: String,
}

/// A right-sizing saving.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Saving {
    /// `Kind/namespace/name`.
    pub workload: String,
    /// The container.
    pub container: String,
    /// Cores freed.
    pub cores: f64,
    /// GiB freed.
    pub gib: f64,
}

fn share(used: f64, of: f64) -> String {
    if of > 0.0 {
        format!(" ({:.0} %)", used / of * 100.0)
    } else {
        String::new()
    }
}

/// The CPU and memory its containers' `resources` request, summed.
fn requests<'c>(
    resources: impl Iterator<Item = Option<&'c k8s_openapi::api::core::v1::ResourceRequirements>>,
) -> (f64, f64) {
    resources.fold((0.0, 0.0), |(cpu, memory), r| {
        let requests = r.and_then(|r| r.requests.as_ref());
        let get = |key: &str| requests.and_then(|r| r.get(key)).map(|q| q.0.clone());
        (
            cpu + get("cpu").and_then(|q| cpu_millis(&q)).unwrap_or(0.0),
            memory + get("memory").and_then(|q| memory_bytes(&q)).unwrap_or(0.0),
        )
    })
}

fn running(pod: &crate::model::objects::Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed")) && pod.metadata.deletion_timestamp.is_none()
}

/// The capacity report of `snapshot` at `options.now`.
pub fn capacity(snapshot: &Snapshot, options: &DetectOptions) -> Capacity {
    let owners = Owners::new(snapshot);
    let specs = crate::detect::usage::pod_specs(snapshot);
    // Requests of running pods per namespace and per node, and pods per workload. A pod
    // recorded without its resources (a trimmed snapshot) is counted with its workload's.
    let mut by_namespace: BTreeMap<String, [f64; 4]> = BTreeMap::new();
    let mut by_node: HashMap<String, (f64, f64)> = HashMap::new();
    let mut pods_of: HashMap<String, f64> = HashMap::new();
    for pod in snapshot.pods.iter().filter(|p| running(p)) {
        let Some(spec) = &pod.spec else {
            continue;
        };
        let owner = owners.of_pod(pod);
        let (cpu, memory) = match requests(spec.containers.iter().map(|c| c.resources.as_ref())) {
            (0.0, 0.0) => owner
                .as_ref()
                .and_then(|o| specs.get(&o.to_string()))
                .map_or((0.0, 0.0), |spec| {
                    requests(spec.containers.iter().map(|c| c.resources.as_ref()))
                }),
            found => found,
        };
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let entry = by_namespace.entry(namespace).or_default();
        entry[0] += cpu;
        entry[2] += memory;
        if let Some(node) = &spec.node_name {
            let slot = by_node.entry(node.clone()).or_default();
            slot.0 += cpu;
            slot.1 += memory;
        }
        if let Some(owner) = owner {
            *pods_of.entry(owner.to_string()).or_default() += 1.0;
        }
    }
    // Use per namespace: each container's p95 CPU and peak memory, per pod, times its pods.
    let mut near_limit = Vec::new();
    for series in &snapshot.usage.containers {
        let workload = crate::model::ObjectRef::new(
            "apps/v1",
            &series.workload.kind,
            Some(&series.namespace),
            &series.workload.name,
        )
        .to_string();
        let pods = pods_of
            .get(&workload)
            .copied()
            .unwrap_or_else(|| series.replicas.last().map_or(1.0, |p| p.1));
        let cpu: Vec<f64> = series.cpu.iter().map(|p| p.1 * 1000.0).collect();
        let memory_peak = series.memory.iter().map(|p| p.1).fold(0.0, f64::max);
        let entry = by_namespace.entry(series.namespace.clone()).or_default();
        if !cpu.is_empty() {
            entry[1] += crate::detect::usage::percentile(&cpu, 0.95) * pods;
        }
        entry[3] += memory_peak * pods;
        let limit = specs
            .get(&workload)
            .and_then(|spec| spec.containers.iter().find(|c| c.name == series.container))
            .and_then(|c| {
                c.resources
                    .as_ref()?
                    .limits
                    .as_ref()?
                    .get("memory")
                    .cloned()
            })
            .and_then(|q| memory_bytes(&q.0));
        if let Some(limit) = limit.filter(|l| memory_peak >= l * NEAR_LIMIT) {
            near_limit.push(NearLimit {
                workload: workload.clone(),
                container: series.container.clone(),
                memory: format!(
                    "{} of {}{}",
                    format_memory(memory_peak),
                    format_memory(limit),
                    share(memory_peak, limit)
                ),
            });
        }
    }
    let namespaces = by_namespace
        .into_iter()
        .map(
            |(name, [cpu_requested, cpu_used, memory_requested, memory_used])| Namespace {
                cpu: format!(
                    "{} used of {} requested{}",
                    format_cpu(cpu_used),
                    format_cpu(cpu_requested),
                    share(cpu_used, cpu_requested)
                ),
                memory: format!(
                    "{} used of {} requested{}",
                    format_memory(memory_used),
                    format_memory(memory_requested),
                    share(memory_used, memory_requested)
                ),
                name,
                cpu_requested,
                cpu_used,
                memory_requested,
                memory_used,
            },
        )
        .collect();
    // Node pools: allocatable against the requests of the pods on their nodes.
    let mut pools: BTreeMap<String, (usize, f64, f64, f64, f64)> = BTreeMap::new();
    for node in &snapshot.nodes {
        let labels = node.metadata.labels.as_ref();
        let pool = POOL_LABELS
            .iter()
            .find_map(|l| labels.and_then(|m| m.get(*l)).cloned())
            .unwrap_or_else(|| "default".into());
        let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
        let get = |key: &str| allocatable.and_then(|a| a.get(key)).map(|q| q.0.clone());
        let name = node.metadata.name.clone().unwrap_or_default();
        let (cpu_req, mem_req) = by_node.get(&name).copied().unwrap_or_default();
        let slot = pools.entry(pool).or_default();
        slot.0 += 1;
        slot.1 += get("cpu").and_then(|q| cpu_millis(&q)).unwrap_or(0.0);
        slot.2 += get("memory").and_then(|q| memory_bytes(&q)).unwrap_or(0.0);
        slot.3 += cpu_req;
        slot.4 += mem_req;
    }
    let pools = pools
        .into_iter()
        .map(|(name, (nodes, cpu, memory, cpu_req, mem_req))| Pool {
            name,
            nodes,
            cpu: format!(
                "{} requested of {}{}; {} free",
                format_cpu(cpu_req),
                format_cpu(cpu),
                share(cpu_req, cpu),
                format_cpu((cpu - cpu_req).max(0.0))
            ),
            memory: format!(
                "{} requested of {}{}; {} free",
                format_memory(mem_req),
                format_memory(memory),
                share(mem_req, memory),
                format_memory((memory - mem_req).max(0.0))
            ),
            cpu_headroom: cpu - cpu_req,
            memory_headroom: memory - mem_req,
        })
        .collect();
    // Forecasts and savings from detection's own findings.
    let findings = detect(snapshot, options);
    let forecasts = findings
        .iter()
        .filter(|f| {
            matches!(
                f.code,
                FindingCode::PeakForecast | FindingCode::MemoryGrowth | FindingCode::PvcFillingUp
            )
        })
        .map(|f| format!("`{}` on `{}`: {}", f.code, f.target(), f.explanation))
        .collect();
    let mut savings: Vec<Saving> = findings
        .iter()
        .filter(|f| {
            f.code == FindingCode::OverProvisioned && f.fact("too little history").is_none()
        })
        .map(|f| {
            let workload = f.target().to_string();
            let pods = pods_of.get(&workload).copied().unwrap_or(1.0);
            let freed = |resource: &str| {
                f.usage
                    .iter()
                    .find(|u| u.resource == resource)
                    .and_then(|u| Some((u.request? - u.p95 * HEADROOM).max(0.0) * pods))
                    .unwrap_or(0.0)
            };
            Saving {
                workload,
                container: f.container.clone().unwrap_or_default(),
                cores: freed("cpu") / 1000.0,
                gib: freed("memory") / 1024f64.powi(3),
            }
        })
        .filter(|s| s.cores > 0.0 || s.gib > 0.0)
        .collect();
    savings.sort_by(|a, b| (b.cores + b.gib).total_cmp(&(a.cores + a.gib)));
    savings.truncate(10);
    let total_saving = format!(
        "{:.2} cores and {:.2} GiB",
        savings.iter().map(|s| s.cores).sum::<f64>(),
        savings.iter().map(|s| s.gib).sum::<f64>()
    );
    Capacity {
        namespaces,
        pools,
        near_limit,
        forecasts,
        savings,
        total_saving,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::detect::fixtures::{now, snapshot};

    #[test]
    fn requests_use_headroom_and_savings_add_up() {
        let node = |name: &str, pool: &str| {
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name,
                "labels": {"cloud.google.com/gke-nodepool": pool}},
                "status": {"allocatable": {"cpu": "4", "memory": "16Gi"}}})
        };
        let pod = |name: &str, node: &str, cpu: &str, memory: &str| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-1", "uid": "u", "controller": true}]},
                "spec": {"nodeName": node, "containers": [{"name": "api", "image": "api:1",
                    "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": "1Gi"}}}]},
                "status": {"phase": "Running"}})
        };
        let set = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "api-1", "namespace": "shop",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "uid": "d", "controller": true}]},
            "spec": {"selector": {}}});
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"replicas": 2, "selector": {}, "template": {"spec": {"containers": [{"name": "api", "image": "api:1",
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}}]}}}});
        // Ten days at 100m and 950 MiB per pod.
        let end = now().as_second() as f64;
        let points = |v: f64| -> Vec<serde_json::Value> {
            (0..240)
                .map(|h| json!([end - 10.0 * 86_400.0 + f64::from(h) * 3600.0, v]))
                .collect()
        };
        let usage = json!({"kind": "UsageHistory", "containers": [{"namespace": "shop",
            "workload": {"kind": "Deployment", "name": "api"}, "container": "api",
            "cpu": points(0.1), "memory": points(950.0 * 1048576.0)}]});
        let snap = snapshot(vec![
            node("n1", "general"),
            node("n2", "general"),
            pod("api-1-a", "n1", "1", "1Gi"),
            pod("api-1-b", "n2", "1", "1Gi"),
            set,
            deployment,
            usage,
        ]);
        let report = capacity(&snap, &DetectOptions::at(now()));
        let shop = &report.namespaces[0];
        // By hand: 2 pods × 1 core requested, 2 × 100m used; 2 GiB requested, 2 × 950 MiB used.
        assert_eq!((shop.cpu_requested, shop.cpu_used), (2000.0, 200.0));
        assert_eq!(shop.memory_requested, 2.0 * 1024f64.powi(3));
        assert_eq!(shop.memory_used, 2.0 * 950.0 * 1048576.0);
        // The pool: 8 cores and 32 GiB allocatable, 2 cores and 2 GiB requested.
        assert_eq!(report.pools[0].name, "general");
        assert_eq!(report.pools[0].cpu_headroom, 6000.0);
        assert_eq!(report.pools[0].memory_headroom, 30.0 * 1024f64.powi(3));
        // 950 MiB of a 1 GiB limit is near it.
        assert_eq!(report.near_limit.len(), 1, "{:?}", report.near_limit);
        assert!(
            report.near_limit[0].memory.contains("(93 %)"),
            "{:?}",
            report.near_limit
        );
        // CPU over-provisioned: (1000m - 100m × 1.3) × 2 pods = 1.74 cores freed.
        assert_eq!(report.savings.len(), 1, "{:?}", report.savings);
        assert!(
            (report.savings[0].cores - 1.74).abs() < 1e-9,
            "{:?}",
            report.savings
        );
    }
}
