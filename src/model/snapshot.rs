//! A snapshot of a cluster: the objects detection looks at, and optional usage history. The same
//! snapshot comes from `kubectl get -o yaml` files or from a live cluster. Pure.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim};

use super::objects::{Event, Pod, ReplicaSet};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The objects of one cluster at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Pods, with status.
    pub pods: Vec<Pod>,
    /// Deployments, with status.
    pub deployments: Vec<Deployment>,
    /// StatefulSets, with status.
    pub stateful_sets: Vec<StatefulSet>,
    /// DaemonSets, with status.
    pub daemon_sets: Vec<DaemonSet>,
    /// ReplicaSets, to find a Pod's Deployment.
    pub replica_sets: Vec<ReplicaSet>,
    /// Core v1 Events.
    pub events: Vec<Event>,
    /// Nodes, with conditions.
    pub nodes: Vec<Node>,
    /// HorizontalPodAutoscalers (autoscaling/v2).
    pub hpas: Vec<HorizontalPodAutoscaler>,
    /// PersistentVolumeClaims.
    pub pvcs: Vec<PersistentVolumeClaim>,
    /// Jobs.
    pub jobs: Vec<Job>,
    /// Usage history, when given.
    pub usage: UsageHistory,
    /// The tails of failing containers' logs, redacted.
    pub logs: Vec<ContainerLog>,
    /// How Argo CD marks what it applies, from its `argocd-cm` ConfigMap, when the snapshot has
    /// it.
    pub argo_tracking: Option<ArgoTracking>,
}

/// Argo CD's resource tracking settings (`argocd-cm`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArgoTracking {
    /// `application.resourceTrackingMethod`: `annotation`, `annotation+label` or `label`;
    /// `None` when unset (Argo CD 3 takes `annotation`, Argo CD 2 `label`).
    pub method: Option<String>,
    /// `application.instanceLabelKey` (`app.kubernetes.io/instance` when unset).
    pub label_key: Option<String>,
}

impl ArgoTracking {
    /// The settings in `argocd-cm`'s data.
    pub fn from_data(data: &std::collections::BTreeMap<String, String>) -> Self {
        let read = |key: &str| {
            data.get(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        ArgoTracking {
            method: read("application.resourceTrackingMethod"),
            label_key: read("application.instanceLabelKey"),
        }
    }
}

/// The tail of one container's log, redacted, as `pods/NAME/log` gives it. In a snapshot
/// directory it is a document of its own (`kind: ContainerLog`); the file format is documented
/// by `schemas/container-log.schema.json`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerLog {
    /// `remediator.dev/v1alpha1`.
    #[serde(default)]
    pub api_version: Option<String>,
    /// `ContainerLog`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Namespace of the pod.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container.
    pub container: String,
    /// Whether this is the log of the container before its last restart.
    #[serde(default)]
    pub previous: bool,
    /// The last lines.
    pub text: String,
}

/// Usage samples over time, as a Prometheus range query or repeated metrics.k8s.io reads give
/// them. The file format is documented by `schemas/usage-history.schema.json`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageHistory {
    /// `remediator.dev/v1alpha1`.
    #[serde(default)]
    pub api_version: Option<String>,
    /// `UsageHistory`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Free-form metadata (`name`, where the samples came from).
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    /// Per-container CPU and memory series.
    #[serde(default)]
    pub containers: Vec<ContainerUsage>,
    /// Per-volume used-bytes series.
    #[serde(default)]
    pub volumes: Vec<VolumeUsage>,
}

/// A workload by kind and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadRef {
    /// `Deployment`, `StatefulSet` or `DaemonSet`.
    pub kind: String,
    /// Its name.
    pub name: String,
}

/// One container of one workload over time; values are per-pod averages at each timestamp.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerUsage {
    /// Namespace of the workload.
    pub namespace: String,
    /// The workload.
    pub workload: WorkloadRef,
    /// Container name.
    pub container: String,
    /// `[unix seconds, cores]` pairs.
    #[serde(default)]
    pub cpu: Vec<(f64, f64)>,
    /// `[unix seconds, bytes]` pairs (working set).
    #[serde(default)]
    pub memory: Vec<(f64, f64)>,
    /// `[unix seconds, pods]` pairs: how many pods the averages are over, when known; the
    /// workload's total is the average times this.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<(f64, f64)>,
    /// Pods whose container was OOM-killed within the window, when the source knows (the
    /// pods' own statuses show only their last termination).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub oom_killed_pods: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One PersistentVolumeClaim's usage over time.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeUsage {
    /// Namespace of the claim.
    pub namespace: String,
    /// Claim name.
    pub pvc: String,
    /// Capacity of the volume in bytes.
    pub capacity_bytes: f64,
    /// `[unix seconds, used bytes]` pairs.
    pub used: Vec<(f64, f64)>,
}

/// `more` after `to`'s items; taken whole when `to` is empty and has no room for it, as a file
/// that holds every pod of a large cluster would otherwise be copied once more.
fn append<T>(to: &mut Vec<T>, more: Vec<T>) {
    if to.is_empty() && to.capacity() < more.len() {
        *to = more;
    } else {
        to.extend(more);
    }
}

impl Snapshot {
    /// Adds the objects of `other` after its own (another file of the same snapshot); the
    /// Argo CD settings of `other`, when it has them, are the ones kept.
    pub fn absorb(&mut self, other: Snapshot) {
        let Snapshot {
            pods,
            deployments,
            stateful_sets,
            daemon_sets,
            replica_sets,
            events,
            nodes,
            hpas,
            pvcs,
            jobs,
            usage,
            logs,
            argo_tracking,
        } = other;
        append(&mut self.pods, pods);
        append(&mut self.deployments, deployments);
        append(&mut self.stateful_sets, stateful_sets);
        append(&mut self.daemon_sets, daemon_sets);
        append(&mut self.replica_sets, replica_sets);
        append(&mut self.events, events);
        append(&mut self.nodes, nodes);
        append(&mut self.hpas, hpas);
        append(&mut self.pvcs, pvcs);
        append(&mut self.jobs, jobs);
        append(&mut self.usage.containers, usage.containers);
        append(&mut self.usage.volumes, usage.volumes);
        append(&mut self.logs, logs);
        if argo_tracking.is_some() {
            self.argo_tracking = argo_tracking;
        }
    }

    /// Every Deployment, StatefulSet and DaemonSet as the cluster has it: its kind, its
    /// metadata and its pod template.
    pub fn workloads(
        &self,
    ) -> impl Iterator<
        Item = (
            &'static str,
            &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            &k8s_openapi::api::core::v1::PodTemplateSpec,
        ),
    > {
        let deployments = self
            .deployments
            .iter()
            .map(|d| ("Deployment", &d.metadata, &d.spec.template));
        let stateful_sets = self
            .stateful_sets
            .iter()
            .map(|s| ("StatefulSet", &s.metadata, &s.spec.template));
        let daemon_sets = self
            .daemon_sets
            .iter()
            .map(|d| ("DaemonSet", &d.metadata, &d.spec.template));
        deployments.chain(stateful_sets).chain(daemon_sets)
    }

    /// The Deployment, StatefulSet or DaemonSet `target` as the cluster has it: its metadata
    /// and its pod template; `None` for another kind or one the snapshot does not hold.
    pub fn workload(
        &self,
        target: &super::ObjectRef,
    ) -> Option<(
        &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
        &k8s_openapi::api::core::v1::PodTemplateSpec,
    )> {
        self.workloads()
            .find(|(kind, meta, _)| {
                *kind == target.kind
                    && meta.name.as_deref() == Some(target.name.as_str())
                    && meta.namespace == target.namespace
            })
            .map(|(_, meta, template)| (meta, template))
    }

    /// The latest moment the snapshot shows: detection measures "recent" from here, so that a
    /// recorded snapshot reads the same on any day.
    pub fn taken_at(&self) -> Option<Timestamp> {
        let pod_times = self.pods.iter().flat_map(|p| {
            let status = p.status.as_ref();
            let conditions = status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten();
            let condition_times =
                conditions.filter_map(|c| c.last_transition_time.as_ref().map(|t| t.0));
            let containers = status
                .and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten();
            let container_times = containers.flat_map(|c| {
                let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
                let current = c.state.as_ref();
                [
                    last.and_then(|t| t.finished_at.as_ref()).map(|t| t.0),
                    current
                        .and_then(|s| s.running.as_ref())
                        .and_then(|r| r.started_at.as_ref())
                        .map(|t| t.0),
                    current
                        .and_then(|s| s.terminated.as_ref())
                        .and_then(|t| t.finished_at.as_ref())
                        .map(|t| t.0),
                ]
            });
            condition_times
                .chain(container_times.flatten())
                .collect::<Vec<_>>()
        });
        let event_times = self.events.iter().filter_map(|e| {
            e.last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or_else(|| e.event_time.as_ref().map(|t| t.0))
        });
        let node_times = self.nodes.iter().flat_map(|n| {
            let conditions = n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten();
            conditions
                .filter_map(|c| c.last_heartbeat_time.as_ref().map(|t| t.0))
                .collect::<Vec<_>>()
        });
        let usage_times = self
            .usage
            .containers
            .iter()
            .flat_map(|c| c.cpu.iter().chain(&c.memory));
        let usage_times = usage_times
            .chain(self.usage.volumes.iter().flat_map(|v| &v.used))
            .filter_map(|(t, _)| Timestamp::from_second(*t as i64).ok());
        pod_times
            .chain(event_times)
            .chain(node_times)
            .chain(usage_times)
            .max()
    }
}
