//! `serve:` in `remediator.yaml`: where the service listens, the environment whose cluster it
//! runs in, its debounce, resync and queue, and where its secrets are (an environment variable
//! or a file, never the configuration itself), plus alert mappings that extend the built-in
//! table. Validated once, at the edge; the secrets are read when the service starts.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SecretSource;

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawServe {
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    debounce_seconds: Option<u64>,
    #[serde(default)]
    debounce_max_seconds: Option<u64>,
    #[serde(default)]
    resync_seconds: Option<u64>,
    #[serde(default)]
    queue: Option<usize>,
    #[serde(default)]
    github_webhook_secret: Option<SecretSource>,
    #[serde(default)]
    alertmanager_token: Option<SecretSource>,
    #[serde(default)]
    alerts: Vec<Mapping>,
    #[serde(default)]
    lease_seconds: Option<u64>,
    #[serde(default)]
    lease_namespace: Option<String>,
    #[serde(default)]
    advertise: Option<String>,
    #[serde(default)]
    metrics_interval_seconds: Option<u64>,
}

/// The validated section.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeSettings {
    /// The address the HTTP server listens on.
    pub listen: SocketAddr,
    /// The environment whose cluster the service runs in; every environment when `None`.
    pub environment: Option<String>,
    /// The quiet period: detection runs once the cluster has not changed for this long.
    pub debounce: Duration,
    /// The longest detection waits for a quiet period while changes keep coming.
    pub debounce_max: Duration,
    /// How often detection runs without a change (and the watches' bookmarks are trusted).
    pub resync: Duration,
    /// Jobs waiting at most; a full queue answers 503 (back-pressure), never grows.
    pub queue: usize,
    /// Where GitHub's webhook secret is; without it, GitHub deliveries are refused.
    pub github_webhook_secret: Option<SecretSource>,
    /// Where Alertmanager's bearer token is; without it, `serve` does not start unless
    /// [`unauthenticated_alerts`](Self::unauthenticated_alerts) is set.
    pub alertmanager_token: Option<SecretSource>,
    /// The operator's explicit choice (`serve --unauthenticated-alerts`, never the file) to
    /// take alerts without a token.
    pub unauthenticated_alerts: bool,
    /// The alert table: the built-in mappings, then the configuration's (which win).
    pub alerts: Vec<Mapping>,
    /// How long the leader's lease lasts without renewal.
    pub lease: Duration,
    /// The namespace of the leader's Lease: the pod's own (`POD_NAMESPACE`) when not given.
    pub lease_namespace: String,
    /// The address other replicas reach this one at (`POD_IP:port`); the listen address when
    /// not given.
    pub advertise: Option<String>,
    /// How often metrics.k8s.io is sampled into the usage history.
    pub metrics_interval: Duration,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            environment: None,
            debounce: Duration::from_secs(2),
            debounce_max: Duration::from_secs(8),
            resync: Duration::from_secs(300),
            queue: 256,
            github_webhook_secret: None,
            alertmanager_token: None,
            unauthenticated_alerts: false,
            alerts: builtin(),
            lease: Duration::from_secs(15),
            lease_namespace: std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".to_owned()),
            advertise: None,
            metrics_interval: Duration::from_secs(30),
        }
    }
}

impl RawServe {
    /// Validates the section; an error names the key.
    pub fn validate(self) -> Result<ServeSettings, (String, String)> {
        let defaults = ServeSettings::default();
        let listen = match self.listen {
            None => defaults.listen,
            Some(text) => text.parse().map_err(|_| {
                (
                    "serve.listen".to_owned(),
                    format!("`{text}` is not an address and port (0.0.0.0:8080)"),
                )
            })?,
        };
        let queue = self.queue.unwrap_or(defaults.queue);
        if queue == 0 {
            return Err(("serve.queue".into(), "must be at least 1".into()));
        }
        for (i, m) in self.alerts.iter().enumerate() {
            let known = crate::model::FindingCode::ALL
                .iter()
                .any(|c| c.to_string() == m.finding);
            if !known {
                return Err((
                    format!("serve.alerts[{i}].finding"),
                    format!("`{}` is not a finding code", m.finding),
                ));
            }
        }
        let mut alerts = defaults.alerts;
        alerts.extend(self.alerts);
        Ok(ServeSettings {
            listen,
            environment: self.environment,
            debounce: self
                .debounce_seconds
                .map_or(defaults.debounce, Duration::from_secs),
            debounce_max: match self.debounce_max_seconds {
                None => defaults.debounce_max,
                Some(0) => {
                    return Err((
                        "serve.debounceMaxSeconds".into(),
                        "must be at least 1".into(),
                    ));
                }
                Some(seconds) => Duration::from_secs(seconds),
            },
            resync: self
                .resync_seconds
                .map_or(defaults.resync, Duration::from_secs),
            queue,
            github_webhook_secret: self.github_webhook_secret,
            alertmanager_token: self.alertmanager_token,
            unauthenticated_alerts: false,
            alerts,
            lease: match self.lease_seconds {
                None => defaults.lease,
                Some(0) => {
                    return Err(("serve.leaseSeconds".into(), "must be at least 1".into()));
                }
                Some(seconds) => Duration::from_secs(seconds),
            },
            lease_namespace: self.lease_namespace.unwrap_or(defaults.lease_namespace),
            advertise: self.advertise,
            metrics_interval: match self.metrics_interval_seconds {
                None => defaults.metrics_interval,
                Some(0) => {
                    return Err((
                        "serve.metricsIntervalSeconds".into(),
                        "must be at least 1".into(),
                    ));
                }
                Some(seconds) => Duration::from_secs(seconds),
            },
        })
    }
}

/// How an alert maps to a finding: its code, and the label naming the subject with its kind.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mapping {
    /// The alert's name.
    pub alert: String,
    /// The finding it becomes.
    pub finding: String,
    /// The subject's kind (`Pod`, `Deployment`, `Node`, ...).
    pub kind: String,
    /// The label that names the subject (`pod`, `deployment`, `node`).
    pub label: String,
}

/// kubernetes-mixin's alerts that name a pod, workload, volume or node.
pub fn builtin() -> Vec<Mapping> {
    [
        ("KubePodCrashLooping", "crash-loop", "Pod", "pod"),
        ("KubePodNotReady", "replicas-not-ready", "Pod", "pod"),
        ("KubeContainerWaiting", "crash-loop", "Pod", "pod"),
        ("CPUThrottlingHigh", "high-cpu", "Pod", "pod"),
        (
            "KubeDeploymentReplicasMismatch",
            "replicas-not-ready",
            "Deployment",
            "deployment",
        ),
        (
            "KubeHpaMaxedOut",
            "high-cpu",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscaler",
        ),
        (
            "KubePersistentVolumeFillingUp",
            "pvc-filling-up",
            "PersistentVolumeClaim",
            "persistentvolumeclaim",
        ),
        ("KubeNodeNotReady", "node-not-ready", "Node", "node"),
    ]
    .into_iter()
    .map(|(alert, finding, kind, label)| Mapping {
        alert: alert.into(),
        finding: finding.into(),
        kind: kind.into(),
        label: label.into(),
    })
    .collect()
}
