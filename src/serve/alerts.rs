//! Alertmanager intake: the webhook payload (version 4), alerts de-duplicated by fingerprint and
//! grouped by `groupKey`, each firing alert that names a pod or a workload turned into a finding
//! with the alert as evidence, by a table of kubernetes-mixin's alerts that `remediator.yaml` can
//! extend; resolved alerts end their episode. Unknown alerts are kept, not dropped. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::serve::Mapping;
use crate::detect::owners::Owners;
use crate::model::{Evidence, Finding, FindingCode, ObjectRef, Severity, Snapshot};

/// The webhook payload.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// `4`.
    pub version: String,
    /// The group's key.
    pub group_key: String,
    /// The alerts.
    pub alerts: Vec<Alert>,
}

/// One alert of a payload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Its labels (`alertname`, `namespace`, `pod`, ...).
    pub labels: BTreeMap<String, String>,
    /// Its annotations (`summary`, `description`).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When it started firing.
    #[serde(default)]
    pub starts_at: String,
    /// Alertmanager's identity of the alert.
    pub fingerprint: String,
}

/// Reads a payload; anything but version 4 is refused.
pub fn parse(body: &[u8]) -> Result<Payload, String> {
    let payload: Payload = serde_json::from_slice(body)
        .map_err(|e| format!("not an Alertmanager webhook payload: {e}"))?;
    if payload.version != "4" {
        return Err(format!(
            "Alertmanager webhook payload version {} (only 4 is read)",
            payload.version
        ));
    }
    Ok(payload)
}

/// The alerts firing now, by fingerprint, with the group each came in.
#[derive(Debug, Default)]
pub struct Episodes {
    firing: BTreeMap<String, (String, Alert)>,
}

/// What a payload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Fingerprints that started firing.
    pub started: Vec<String>,
    /// Fingerprints whose episode ended.
    pub resolved: Vec<String>,
    /// Alerts seen again while firing.
    pub repeated: usize,
}

impl Episodes {
    /// Takes in a payload.
    pub fn receive(&mut self, payload: Payload) -> Received {
        let mut out = Received::default();
        for alert in payload.alerts {
            let key = alert.fingerprint.clone();
            if alert.status == "resolved" {
                if self.firing.remove(&key).is_some() {
                    out.resolved.push(key);
                }
            } else if self
                .firing
                .insert(key.clone(), (payload.group_key.clone(), alert))
                .is_some()
            {
                out.repeated += 1;
            } else {
                out.started.push(key);
            }
        }
        out
    }

    /// How many alerts are firing.
    pub fn len(&self) -> usize {
        self.firing.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.firing.is_empty()
    }

    /// The firing alerts' findings, by `mappings`; alerts no mapping knows, or that name no
    /// subject, are returned apart.
    pub fn findings(&self, mappings: &[Mapping]) -> (Vec<Finding>, Vec<&Alert>) {
        let mut findings = Vec::new();
        let mut unknown = Vec::new();
        for (group, alert) in self.firing.values() {
            match finding(alert, group, mappings) {
                Some(f) => findings.push(f),
                None => unknown.push(alert),
            }
        }
        (findings, unknown)
    }
}

fn code(name: &str) -> Option<FindingCode> {
    FindingCode::ALL.into_iter().find(|c| c.to_string() == name)
}

/// The finding an alert stands for, with the alert as evidence.
pub fn finding(alert: &Alert, group: &str, mappings: &[Mapping]) -> Option<Finding> {
    let name = alert.labels.get("alertname")?;
    let mapping = mappings.iter().rev().find(|m| &m.alert == name)?;
    let code = code(&mapping.finding)?;
    let subject_name = alert.labels.get(&mapping.label)?;
    let namespace = alert.labels.get("namespace").map(String::as_str);
    let namespace = (mapping.kind != "Node").then_some(namespace).flatten();
    let (api_version, kind) = match mapping.kind.as_str() {
        "Deployment" | "StatefulSet" | "DaemonSet" => ("apps/v1", mapping.kind.as_str()),
        "HorizontalPodAutoscaler" => ("autoscaling/v2", "HorizontalPodAutoscaler"),
        other => ("v1", other),
    };
    let subject = ObjectRef::new(api_version, kind, namespace, subject_name);
    let what = alert
        .annotations
        .get("description")
        .or_else(|| alert.annotations.get("summary"))
        .cloned()
        .unwrap_or_else(|| format!("{name} is firing"));
    let mut found = Finding::new(
        code,
        Severity::Warning,
        subject,
        format!("Alertmanager reports {name}: {what}"),
    );
    found.container = alert.labels.get("container").cloned();
    found.evidence = vec![
        Evidence {
            label: "alert".into(),
            value: format!("{name} (firing since {})", alert.starts_at),
        },
        Evidence {
            label: "alert group".into(),
            value: group.to_owned(),
        },
    ];
    Some(found)
}

/// An alert's finding completed from the cluster: a pod's owning workload, and a crash loop
/// whose container was last OOM-killed read as the memory problem it is.
pub fn enrich(mut finding: Finding, snapshot: &Snapshot) -> Finding {
    if finding.subject.kind != "Pod" {
        return finding;
    }
    let pod = snapshot.pods.iter().find(|p| {
        p.metadata.namespace == finding.subject.namespace
            && p.metadata.name.as_deref() == Some(finding.subject.name.as_str())
    });
    let Some(pod) = pod else {
        return finding;
    };
    finding.owner = Owners::new(snapshot).of_pod(pod);
    let killed = pod
        .status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .filter(|c| {
            finding
                .container
                .as_ref()
                .is_none_or(|name| &c.name == name)
        })
        .find(|c| {
            c.last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"))
        });
    if let (FindingCode::CrashLoop, Some(container)) = (finding.code, killed) {
        finding.code = FindingCode::CrashLoopOom;
        finding.container = Some(container.name.clone());
        finding.evidence.push(Evidence {
            label: "last termination".into(),
            value: format!("{}: OOMKilled", container.name),
        });
    }
    finding
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::serve::builtin;

    fn payload(status: &str, fingerprint: &str, labels: &[(&str, &str)]) -> Payload {
        let labels: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
            .collect();
        let body = serde_json::json!({"version": "4", "groupKey": "{}:{alertname=\"X\"}",
            "status": status, "receiver": "remediator", "alerts": [{"status": status,
            "labels": labels, "annotations": {"description": "restarting"},
            "startsAt": "2026-11-26T10:00:00Z", "fingerprint": fingerprint}]});
        parse(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn alerts_are_deduplicated_by_fingerprint_and_resolved_ones_end() {
        let crash = [
            ("alertname", "KubePodCrashLooping"),
            ("namespace", "shop"),
            ("pod", "api-1"),
            ("container", "api"),
        ];
        let mut episodes = Episodes::default();
        let first = episodes.receive(payload("firing", "f1", &crash));
        assert_eq!(first.started, ["f1"]);
        let again = episodes.receive(payload("firing", "f1", &crash));
        assert_eq!(
            again,
            Received {
                repeated: 1,
                ..Received::default()
            }
        );
        let (findings, unknown) = episodes.findings(&builtin());
        assert!(unknown.is_empty());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].code, FindingCode::CrashLoop);
        assert_eq!(findings[0].subject.to_string(), "Pod/shop/api-1");
        assert_eq!(findings[0].container.as_deref(), Some("api"));
        assert_eq!(
            findings[0].evidence[0].value,
            "KubePodCrashLooping (firing since 2026-11-26T10:00:00Z)"
        );
        let done = episodes.receive(payload("resolved", "f1", &crash));
        assert_eq!(done.resolved, ["f1"]);
        assert!(episodes.is_empty());
    }

    #[test]
    fn unknown_alerts_are_kept_and_the_table_can_be_extended() {
        let mut episodes = Episodes::default();
        episodes.receive(payload(
            "firing",
            "f2",
            &[
                ("alertname", "MyAppDown"),
                ("namespace", "shop"),
                ("deployment", "api"),
            ],
        ));
        let (findings, unknown) = episodes.findings(&builtin());
        assert!(findings.is_empty());
        assert_eq!(unknown.len(), 1, "recorded, not dropped");
        let mut table = builtin();
        table.push(Mapping {
            alert: "MyAppDown".into(),
            finding: "replicas-not-ready".into(),
            kind: "Deployment".into(),
            label: "deployment".into(),
        });
        let (findings, _) = episodes.findings(&table);
        assert_eq!(findings[0].subject.to_string(), "Deployment/shop/api");
        assert!(parse(br#"{"version":"3","groupKey":"","alerts":[]}"#).is_err());
    }

    #[test]
    fn a_node_alert_names_a_cluster_scoped_node() {
        let mut episodes = Episodes::default();
        episodes.receive(payload(
            "firing",
            "n",
            &[
                ("alertname", "KubeNodeNotReady"),
                ("namespace", "monitoring"),
                ("node", "worker-1"),
            ],
        ));
        let (findings, _) = episodes.findings(&builtin());
        assert_eq!(findings[0].subject.to_string(), "Node/worker-1");
    }
}
