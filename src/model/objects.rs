//! The kinds a snapshot holds most of, pods, ReplicaSets and events, with only the fields
//! remediator reads, in Kubernetes' shape and names. `k8s_openapi`'s full `Pod` gives every
//! optional field its room whether set or not: a crash-looping pod with one container took about
//! 9.5 KB in it. A pod no controller owns keeps its whole object too, for the checks that judge
//! a workload by its full spec. Pure.

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use serde::Deserialize;
use serde_json::Value;

/// The metadata of a pod or an event, as far as remediator reads it: no labels or annotations,
/// which a large cluster's pods have many of and nothing reads from a pod.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// The object's name.
    pub name: Option<String>,
    /// Its namespace.
    pub namespace: Option<String>,
    /// The objects that own it.
    pub owner_references: Option<Vec<OwnerReference>>,
    /// When its deletion was asked for.
    pub deletion_timestamp: Option<Time>,
    /// How long it has to end after that, in seconds.
    pub deletion_grace_period_seconds: Option<i64>,
}

/// A pod: its metadata, the parts of its spec detection and log redaction read, and its status.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Pod {
    /// The pod's name, namespace and owners.
    pub metadata: Meta,
    /// What the pod runs.
    pub spec: Option<PodSpec>,
    /// How it is doing.
    pub status: Option<PodStatus>,
    /// The whole object, for a pod no controller owns: its controller's spec speaks for every
    /// other pod.
    #[serde(skip)]
    pub whole: Option<Box<Value>>,
}

impl Pod {
    /// The pod read from a whole object, which it keeps when no controller owns the pod.
    pub fn from_value(value: Value) -> Result<Pod, serde_json::Error> {
        let mut pod = Pod::deserialize(&value)?;
        if pod.metadata.owner_references.is_none() {
            pod.whole = Some(Box::new(value));
        }
        Ok(pod)
    }
}

/// The parts of a pod's spec remediator reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// The node it runs on.
    pub node_name: Option<String>,
    /// Its containers.
    pub containers: Vec<Container>,
    /// Its init containers.
    pub init_containers: Option<Vec<Container>>,
    /// Its volumes.
    pub volumes: Option<Vec<Volume>>,
}

/// The parts of a container remediator reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// The container's name.
    pub name: String,
    /// Its image.
    pub image: Option<String>,
    /// Its requests and limits.
    pub resources: Option<core::ResourceRequirements>,
    /// Its environment variables, for the Secrets they read.
    pub env: Option<Vec<EnvVar>>,
    /// Its environment sources, for the Secrets they read.
    pub env_from: Option<Vec<EnvFromSource>>,
}

/// An environment variable, as far as the Secret it reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    /// Where its value comes from.
    pub value_from: Option<EnvVarSource>,
}

/// Where an environment variable's value comes from, as far as a Secret.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVarSource {
    /// A key of a Secret.
    pub secret_key_ref: Option<NameRef>,
}

/// A source of environment variables, as far as a Secret.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvFromSource {
    /// Every key of a Secret.
    pub secret_ref: Option<NameRef>,
}

/// A reference to an object by name.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NameRef {
    /// The object's name.
    pub name: String,
}

/// A pod's volume, as far as the claim or Secrets behind it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// The volume's name.
    pub name: String,
    /// A PersistentVolumeClaim.
    pub persistent_volume_claim: Option<ClaimSource>,
    /// A Secret.
    pub secret: Option<SecretSource>,
    /// Several sources, Secrets among them.
    pub projected: Option<ProjectedSource>,
}

/// A volume from a PersistentVolumeClaim.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSource {
    /// The claim's name.
    pub claim_name: String,
}

/// A volume from a Secret.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretSource {
    /// The Secret's name.
    pub secret_name: Option<String>,
}

/// A projected volume.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProjectedSource {
    /// Its sources.
    pub sources: Option<Vec<Projection>>,
}

/// One source of a projected volume, as far as a Secret.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Projection {
    /// A Secret.
    pub secret: Option<NameRef>,
}

/// The parts of a pod's status remediator reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
    pub phase: Option<String>,
    /// Why the pod is in this phase (`Evicted`).
    pub reason: Option<String>,
    /// A message about the phase.
    pub message: Option<String>,
    /// Its conditions.
    pub conditions: Option<Vec<core::PodCondition>>,
    /// Its containers' statuses.
    pub container_statuses: Option<Vec<ContainerStatus>>,
    /// Its init containers' statuses.
    pub init_container_statuses: Option<Vec<ContainerStatus>>,
}

/// The parts of a container's status remediator reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    /// The container's name.
    pub name: String,
    /// The image it runs.
    pub image: String,
    /// Whether it passes its readiness probe.
    pub ready: bool,
    /// How often it restarted.
    pub restart_count: i32,
    /// What it is doing now.
    pub state: Option<ContainerState>,
    /// How its previous run ended.
    pub last_state: Option<ContainerState>,
}

/// A container's state: one of waiting, running and terminated.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerState {
    /// Waiting to run.
    pub waiting: Option<core::ContainerStateWaiting>,
    /// Running.
    pub running: Option<core::ContainerStateRunning>,
    /// Ended.
    pub terminated: Option<core::ContainerStateTerminated>,
}

/// A ReplicaSet, as far as the Deployment that owns it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReplicaSet {
    /// Its name, namespace and owners.
    pub metadata: Meta,
}

/// A core v1 Event, with the fields remediator reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The event's name and namespace.
    pub metadata: Meta,
    /// The object the event is about.
    pub involved_object: Involved,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Why, in one word.
    pub reason: Option<String>,
    /// What happened.
    pub message: Option<String>,
    /// How often it happened.
    pub count: Option<i32>,
    /// When it first happened.
    pub first_timestamp: Option<Time>,
    /// When it last happened.
    pub last_timestamp: Option<Time>,
    /// When it happened, as newer reporters say it.
    pub event_time: Option<MicroTime>,
    /// A series of the same event, as newer reporters count it.
    pub series: Option<core::EventSeries>,
}

/// The object an event is about, as far as its kind, namespace and name.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Involved {
    /// Its kind.
    pub kind: Option<String>,
    /// Its namespace.
    pub namespace: Option<String>,
    /// Its name.
    pub name: Option<String>,
}

/// Gives back the room a list read from JSON or YAML keeps beyond its items: serde grows a
/// list of unknown length to four items at its first, so that a pod's one container status
/// would take the room of four, and a Deployment's one container nearly ten kilobytes.
pub trait Tighten {
    /// Shrinks the lists of the object to their items.
    fn tighten(&mut self);
}

fn tight<T>(list: &mut Vec<T>) {
    list.shrink_to_fit();
}

fn tight_option<T>(list: &mut Option<Vec<T>>) {
    if let Some(list) = list {
        list.shrink_to_fit();
    }
}

fn tight_meta(meta: &mut ObjectMeta) {
    tight_option(&mut meta.owner_references);
    tight_option(&mut meta.finalizers);
}

/// A full pod template's spec, as workloads have it.
fn tight_pod_spec(spec: &mut core::PodSpec) {
    for container in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        tight_option(&mut container.env);
        tight_option(&mut container.env_from);
        tight_option(&mut container.ports);
        tight_option(&mut container.volume_mounts);
        tight_option(&mut container.args);
        tight_option(&mut container.command);
    }
    tight(&mut spec.containers);
    tight_option(&mut spec.init_containers);
    tight_option(&mut spec.volumes);
    tight_option(&mut spec.tolerations);
    tight_option(&mut spec.image_pull_secrets);
    tight_option(&mut spec.topology_spread_constraints);
}

fn tight_template(template: &mut core::PodTemplateSpec) {
    if let Some(meta) = &mut template.metadata {
        tight_meta(meta);
    }
    if let Some(spec) = &mut template.spec {
        tight_pod_spec(spec);
    }
}

impl Tighten for Pod {
    fn tighten(&mut self) {
        tight_option(&mut self.metadata.owner_references);
        if let Some(spec) = &mut self.spec {
            for container in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten())
            {
                tight_option(&mut container.env);
                tight_option(&mut container.env_from);
            }
            tight(&mut spec.containers);
            tight_option(&mut spec.init_containers);
            tight_option(&mut spec.volumes);
        }
        if let Some(status) = &mut self.status {
            tight_option(&mut status.conditions);
            tight_option(&mut status.container_statuses);
            tight_option(&mut status.init_container_statuses);
        }
    }
}

impl Tighten for ReplicaSet {
    fn tighten(&mut self) {
        tight_option(&mut self.metadata.owner_references);
    }
}

impl Tighten for Event {
    fn tighten(&mut self) {
        tight_option(&mut self.metadata.owner_references);
    }
}

/// A workload's metadata, pod template and conditions.
fn tight_workload<C>(
    meta: &mut ObjectMeta,
    template: Option<&mut core::PodTemplateSpec>,
    conditions: Option<&mut Option<Vec<C>>>,
) {
    tight_meta(meta);
    if let Some(template) = template {
        tight_template(template);
    }
    if let Some(conditions) = conditions {
        tight_option(conditions);
    }
}

/// Tightens the apps/v1 workloads, whose spec and pod template are always there.
macro_rules! tight_apps {
    ($($kind:ident),*) => {$(
        impl Tighten for k8s_openapi::api::apps::v1::$kind {
            fn tighten(&mut self) {
                let conditions = self.status.as_mut().map(|s| &mut s.conditions);
                let template = Some(&mut self.spec.template);
                tight_workload(&mut self.metadata, template, conditions);
            }
        }
    )*};
}

tight_apps!(Deployment, StatefulSet, DaemonSet);

impl Tighten for k8s_openapi::api::batch::v1::Job {
    fn tighten(&mut self) {
        let template = self.spec.as_mut().map(|s| &mut s.template);
        let conditions = self.status.as_mut().map(|s| &mut s.conditions);
        tight_workload(&mut self.metadata, template, conditions);
    }
}

impl Tighten for k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler {
    fn tighten(&mut self) {
        tight_meta(&mut self.metadata);
        tight_option(&mut self.spec.metrics);
        if let Some(status) = &mut self.status {
            tight_option(&mut status.conditions);
            tight_option(&mut status.current_metrics);
        }
    }
}

impl Tighten for core::Node {
    fn tighten(&mut self) {
        tight_meta(&mut self.metadata);
        if let Some(spec) = &mut self.spec {
            tight_option(&mut spec.taints);
        }
        if let Some(status) = &mut self.status {
            tight_option(&mut status.conditions);
            tight_option(&mut status.addresses);
            tight_option(&mut status.images);
        }
    }
}

impl Tighten for core::PersistentVolumeClaim {
    fn tighten(&mut self) {
        tight_meta(&mut self.metadata);
        if let Some(status) = &mut self.status {
            tight_option(&mut status.conditions);
        }
    }
}
