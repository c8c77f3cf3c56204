//! Workload problems: rollouts past their progress deadline, and fewer ready replicas than wanted.
//! Pure.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::DetectOptions;
use crate::model::{Finding, FindingCode, ObjectRef, Severity, Snapshot};

/// Findings on every Deployment, StatefulSet and DaemonSet.
pub fn detect(snapshot: &Snapshot, _options: &DetectOptions) -> Vec<Finding> {
    let mut findings = Vec::new();
    for d in &snapshot.deployments {
        findings.extend(stuck(d));
        let status = d.status.as_ref();
        let wanted = d.spec.replicas.unwrap_or(1);
        let ready = status.and_then(|s| s.ready_replicas).unwrap_or(0);
        findings.extend(not_ready(
            &d.metadata,
            "apps/v1",
            "Deployment",
            wanted,
            ready,
        ));
    }
    for s in &snapshot.stateful_sets {
        let wanted = s.spec.replicas.unwrap_or(1);
        let ready = s
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        findings.extend(not_ready(
            &s.metadata,
            "apps/v1",
            "StatefulSet",
            wanted,
            ready,
        ));
    }
    for d in &snapshot.daemon_sets {
        let status = d.status.as_ref();
        let wanted = status.map_or(0, |s| s.desired_number_scheduled);
        let ready = status.map_or(0, |s| s.number_ready);
        findings.extend(not_ready(
            &d.metadata,
            "apps/v1",
            "DaemonSet",
            wanted,
            ready,
        ));
    }
    findings
}

/// `Kind/namespace/name` of a workload.
pub fn workload_ref(meta: &ObjectMeta, api_version: &str, kind: &str) -> ObjectRef {
    ObjectRef::new(
        api_version,
        kind,
        meta.namespace.as_deref(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

fn stuck(d: &Deployment) -> Option<Finding> {
    let conditions = d.status.as_ref()?.conditions.as_ref()?;
    let progressing = conditions
        .iter()
        .find(|c| c.type_.as_deref() == Some("Progressing"))?;
    let deadline = progressing.reason.as_deref() == Some("ProgressDeadlineExceeded");
    if progressing.status.as_deref() != Some("False") || !deadline {
        return None;
    }
    let message = progressing.message.clone().unwrap_or_default();
    let spec = d.spec.template.spec.as_ref()?;
    let images: Vec<String> = spec
        .containers
        .iter()
        .filter_map(|c| c.image.clone())
        .collect();
    let subject = workload_ref(&d.metadata, "apps/v1", "Deployment");
    let explanation = format!(
        "The rollout of {subject} has made no progress within its deadline ({message}). The new pods do \
         not become ready; the old ones keep serving. Rolling back to the previous image ends the stalled \
         rollout; the pod findings say why the new pods fail."
    );
    let mut finding = Finding::new(
        FindingCode::RolloutStuck,
        Severity::Critical,
        subject.clone(),
        explanation,
    )
    .with("condition", message)
    .with("images", images.join(", "));
    finding.owner = Some(subject);
    Some(finding)
}

fn not_ready(
    meta: &ObjectMeta,
    api_version: &str,
    kind: &str,
    wanted: i32,
    ready: i32,
) -> Option<Finding> {
    if ready >= wanted {
        return None;
    }
    let subject = workload_ref(meta, api_version, kind);
    let explanation = format!(
        "{subject} wants {wanted} ready replicas and has {ready}. Nothing else in the snapshot says why: \
         look at its pods' events and the nodes they are scheduled on."
    );
    let severity = if ready == 0 {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut finding = Finding::new(
        FindingCode::ReplicasNotReady,
        severity,
        subject.clone(),
        explanation,
    )
    .with("ready", format!("{ready}/{wanted}"));
    finding.owner = Some(subject);
    Some(finding)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::*;
    use super::super::{DetectOptions, detect};
    use crate::model::FindingCode;

    #[test]
    fn a_rollout_past_its_deadline_is_stuck() {
        let mut d = deployment("worker", 2, json!({}));
        d["status"]["readyReplicas"] = json!(2);
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"worker-7c9\" has timed out progressing."}]);
        let findings = detect(&snapshot(vec![d]), &DetectOptions::at(now()));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].code, FindingCode::RolloutStuck);
        assert_eq!(findings[0].fact("images"), Some("app:2"));
    }

    #[test]
    fn a_rollout_stuck_on_image_pulls_is_one_finding() {
        let mut d = deployment("worker", 2, json!({}));
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]);
        let p = pod(
            "worker-5d4f8-a",
            "worker",
            waiting("ImagePullBackOff", "not found"),
        );
        let findings = detect(&snapshot(vec![d, p]), &DetectOptions::at(now()));
        assert_eq!(
            findings.iter().map(|f| f.code).collect::<Vec<_>>(),
            [FindingCode::ImagePullBackoff]
        );
    }

    #[test]
    fn missing_replicas_are_reported_unless_explained() {
        let mut d = deployment("api", 3, json!({}));
        d["status"]["readyReplicas"] = json!(1);
        let findings = detect(&snapshot(vec![d.clone()]), &DetectOptions::at(now()));
        assert_eq!(findings[0].code, FindingCode::ReplicasNotReady);
        assert_eq!(findings[0].fact("ready"), Some("1/3"));
        // With the crash loop that explains it, only the crash loop is reported.
        let p = pod(
            "api-5d4f8-a",
            "api",
            crashed(4, "OOMKilled", 137, 30, Some("CrashLoopBackOff")),
        );
        let findings = detect(&snapshot(vec![d, p]), &DetectOptions::at(now()));
        let codes: Vec<_> = findings.iter().map(|f| f.code).collect();
        assert_eq!(codes, [FindingCode::CrashLoopOom]);
        // All ready: nothing.
        assert!(
            detect(
                &snapshot(vec![deployment("ok", 2, json!({}))]),
                &DetectOptions::at(now())
            )
            .is_empty()
        );
    }
}
