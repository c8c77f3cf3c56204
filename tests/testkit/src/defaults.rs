//! Server-side defaulting and preparation, as the API server's defaulters, admission plugins and
//! create strategies fill them in: pod specs, workloads, Services, Secrets (`stringData` folded into
//! `data`), Namespaces and CRDs. Pure data.

use base64::Engine;
use serde_json::{Map, Value, json};

fn fields(value: &mut Value) -> Option<&mut Map<String, Value>> {
    value.as_object_mut()
}

fn default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if !map.contains_key(key) {
        map.insert(key.into(), value);
    }
}

/// Fills in defaults for an object of `kind`.
pub fn apply(kind: &str, object: &mut Value) {
    match kind {
        // The counts are plain integers in the API: a new budget shows zeros until the
        // disruption controller settles it.
        "PodDisruptionBudget" => {
            if let Some(object) = fields(object) {
                default(
                    object,
                    "status",
                    json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}),
                );
            }
        }
        "Pod" => {
            if let Some(spec) = object.get_mut("spec") {
                pod_spec(spec);
                pod_admission(spec);
            }
        }
        "Deployment" => {
            if let Some(spec) = object.get_mut("spec").and_then(fields) {
                default(spec, "replicas", json!(1));
                default(
                    spec,
                    "strategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
                );
                default(spec, "revisionHistoryLimit", json!(10));
                default(spec, "progressDeadlineSeconds", json!(600));
            }
            template(object);
        }
        "ReplicaSet" => {
            if let Some(spec) = object.get_mut("spec").and_then(fields) {
                default(spec, "replicas", json!(1));
            }
            template(object);
        }
        "StatefulSet" => {
            if let Some(spec) = object.get_mut("spec").and_then(fields) {
                default(spec, "replicas", json!(1));
                default(spec, "podManagementPolicy", json!("OrderedReady"));
                default(
                    spec,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
                default(spec, "revisionHistoryLimit", json!(10));
                default(
                    spec,
                    "persistentVolumeClaimRetentionPolicy",
                    json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                );
            }
            template(object);
        }
        "DaemonSet" => {
            if let Some(spec) = object.get_mut("spec").and_then(fields) {
                default(
                    spec,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
                );
                default(spec, "revisionHistoryLimit", json!(10));
            }
            template(object);
        }
        "Job" => {
            if let Some(spec) = object.get_mut("spec").and_then(fields) {
                default(spec, "parallelism", json!(1));
                default(spec, "completions", json!(1));
                default(spec, "backoffLimit", json!(6));
                default(spec, "completionMode", json!("NonIndexed"));
                default(spec, "suspend", json!(false));
            }
            template(object);
        }
        "CronJob" => {
            if let Some(spec) = object.get_mut("spec").and_then(fields) {
                default(spec, "concurrencyPolicy", json!("Allow"));
                default(spec, "suspend", json!(false));
                default(spec, "successfulJobsHistoryLimit", json!(3));
                default(spec, "failedJobsHistoryLimit", json!(1));
            }
            if let Some(spec) = object.pointer_mut("/spec/jobTemplate/spec/template/spec") {
                pod_spec(spec);
            }
        }
        "Service" => service(object),
        "Secret" => {
            if let Some(secret) = fields(object) {
                default(secret, "type", json!("Opaque"));
            }
        }
        "PersistentVolumeClaim" => {
            if let Some(spec) = object.get_mut("spec").and_then(fields) {
                default(spec, "volumeMode", json!("Filesystem"));
            }
        }
        "Namespace" => {
            if let Some(namespace) = fields(object) {
                default(namespace, "spec", json!({"finalizers": ["kubernetes"]}));
            }
        }
        "CustomResourceDefinition" => {
            if let Some(names) = object.pointer_mut("/spec/names").and_then(fields)
                && let Some(kind) = names.get("kind").and_then(Value::as_str)
            {
                let list_kind = format!("{kind}List");
                default(names, "listKind", json!(list_kind));
            }
            if let Some(spec) = object.get_mut("spec").and_then(fields) {
                default(spec, "conversion", json!({"strategy": "None"}));
            }
        }
        _ => {}
    }
}

fn template(object: &mut Value) {
    if let Some(spec) = object.pointer_mut("/spec/template/spec") {
        pod_spec(spec);
    }
}

fn pod_spec(spec: &mut Value) {
    let Some(spec) = fields(spec) else {
        return;
    };
    for list in ["initContainers", "containers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            containers.iter_mut().for_each(container);
        }
    }
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
}

fn container(container: &mut Value) {
    let Some(container) = fields(container) else {
        return;
    };
    if let Some(ports) = container.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(fields) {
            default(port, "protocol", json!("TCP"));
        }
    }
    default(container, "resources", json!({}));
    default(
        container,
        "terminationMessagePath",
        json!("/dev/termination-log"),
    );
    default(container, "terminationMessagePolicy", json!("File"));
    let image = container.get("image").and_then(Value::as_str).unwrap_or("");
    let last = image.rsplit('/').next().unwrap_or(image);
    let tagged = last.contains(':') && !last.ends_with(":latest") || image.contains('@');
    let policy = if tagged { "IfNotPresent" } else { "Always" };
    default(container, "imagePullPolicy", json!(policy));
}

/// What the ServiceAccount, DefaultTolerationSeconds and Priority admission plugins add.
fn pod_admission(spec: &mut Value) {
    let Some(spec) = fields(spec) else {
        return;
    };
    default(spec, "serviceAccountName", json!("default"));
    let account = spec["serviceAccountName"].clone();
    default(spec, "serviceAccount", account);
    default(
        spec,
        "tolerations",
        json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        ]),
    );
    default(spec, "priority", json!(0));
    default(spec, "enableServiceLinks", json!(true));
    default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
}

fn service(object: &mut Value) {
    let Some(spec) = object.get_mut("spec").and_then(fields) else {
        return;
    };
    default(spec, "type", json!("ClusterIP"));
    default(spec, "sessionAffinity", json!("None"));
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(fields) {
            default(port, "protocol", json!("TCP"));
            if let Some(number) = port.get("port").cloned() {
                default(port, "targetPort", number);
            }
        }
    }
    if spec.get("type").and_then(Value::as_str) != Some("ExternalName") {
        default(spec, "ipFamilies", json!(["IPv4"]));
        default(spec, "ipFamilyPolicy", json!("SingleStack"));
        default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
}

/// What create and update strategies do after defaulting: Secret `stringData` becomes base64
/// `data`; new pods start Pending with their QoS class; new namespaces are Active.
pub fn prepare(kind: &str, object: &mut Value, creating: bool) {
    match kind {
        "Secret" => {
            let Some(secret) = fields(object) else {
                return;
            };
            if let Some(Value::Object(plain)) = secret.shift_remove("stringData") {
                let data = secret
                    .entry("data")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(data) = data.as_object_mut() {
                    for (key, value) in plain {
                        let text = value.as_str().unwrap_or_default().to_string();
                        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
                        data.insert(key, json!(encoded));
                    }
                }
            }
        }
        "Pod" if creating => {
            let qos = qos_class(object);
            if let Some(pod) = fields(object) {
                default(pod, "status", json!({}));
            }
            if let Some(status) = object.get_mut("status").and_then(fields) {
                default(status, "phase", json!("Pending"));
                default(status, "qosClass", json!(qos));
            }
        }
        "Namespace" if creating => {
            let name = object
                .pointer("/metadata/name")
                .cloned()
                .unwrap_or(Value::Null);
            if let Some(metadata) = object.get_mut("metadata").and_then(fields) {
                let labels = metadata
                    .entry("labels")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(labels) = labels.as_object_mut() {
                    labels.insert("kubernetes.io/metadata.name".into(), name);
                }
            }
            if let Some(namespace) = fields(object) {
                default(namespace, "status", json!({"phase": "Active"}));
            }
        }
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "CronJob"
            if creating =>
        {
            if let Some(workload) = fields(object) {
                default(workload, "status", json!({}));
            }
        }
        _ => {}
    }
}

fn qos_class(pod: &Value) -> &'static str {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for container in &containers {
        let requests = container
            .pointer("/resources/requests")
            .and_then(Value::as_object);
        let limits = container
            .pointer("/resources/limits")
            .and_then(Value::as_object);
        any |= requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty());
        let full = ["cpu", "memory"].iter().all(|r| {
            let limit = limits.and_then(|l| l.get(*r));
            let request = requests.and_then(|q| q.get(*r)).or(limit);
            limit.is_some() && request == limit
        });
        guaranteed &= full;
    }
    match (any, guaranteed) {
        (_, true) => "Guaranteed",
        (true, false) => "Burstable",
        (false, _) => "BestEffort",
    }
}
