//! Pod problems: crash loops (OOM and others) with the last termination, image pull failures,
//! missing config, unschedulable pods, pods stuck terminating. Pure.

use crate::model::objects::{ContainerStatus, Pod};
use k8s_openapi::jiff::SignedDuration;

use super::owners::{Owners, pod_ref};
use super::{DetectOptions, human};
use crate::model::{Finding, FindingCode, Severity, Snapshot};

/// Findings on every pod.
pub fn detect(snapshot: &Snapshot, owners: &Owners, options: &DetectOptions) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in &snapshot.pods {
        let owner = owners.of_pod(pod);
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        for status in statuses.into_iter().flatten() {
            if let Some(finding) = container(pod, status, options) {
                findings.push(Finding {
                    owner: owner.clone(),
                    ..finding
                });
            }
        }
        if let Some(finding) = unschedulable(pod, snapshot) {
            findings.push(Finding {
                owner: owner.clone(),
                ..finding
            });
        }
        if let Some(finding) = stuck_terminating(pod, options) {
            findings.push(Finding { owner, ..finding });
        }
    }
    findings
}

fn container(pod: &Pod, status: &ContainerStatus, options: &DetectOptions) -> Option<Finding> {
    let waiting = status.state.as_ref().and_then(|s| s.waiting.as_ref());
    let waiting_reason = waiting.and_then(|w| w.reason.as_deref());
    let message = waiting
        .and_then(|w| w.message.as_deref())
        .unwrap_or_default();
    let subject = pod_ref(pod);
    let base = |code, severity, explanation: String| {
        let mut f = Finding::new(code, severity, subject.clone(), explanation);
        f.container = Some(status.name.clone());
        f
    };
    match waiting_reason {
        Some("ImagePullBackOff" | "ErrImagePull" | "InvalidImageName") => {
            let image = &status.image;
            let explanation = format!(
                "Container `{}` cannot start because image `{image}` cannot be pulled ({}). \
                 The tag may not exist, the registry may refuse the credentials, or the registry may be \
                 down. If a new tag was just rolled out, rolling back to the previous tag restores service \
                 while the image is fixed.",
                status.name,
                message.trim()
            );
            return Some(
                base(
                    FindingCode::ImagePullBackoff,
                    Severity::Critical,
                    explanation,
                )
                .with("image", image)
                .with("reason", waiting_reason.unwrap_or_default())
                .with("message", message),
            );
        }
        Some("CreateContainerConfigError") => {
            let explanation = format!(
                "Container `{}` cannot be created: {}. A ConfigMap, Secret or key it references is \
                 missing. Create the missing object or key, or fix the reference; no change to resources \
                 or replicas will help.",
                status.name,
                message.trim()
            );
            return Some(
                base(
                    FindingCode::CreateContainerConfigError,
                    Severity::Critical,
                    explanation,
                )
                .with("message", message),
            );
        }
        _ => {}
    }
    let last = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())?;
    let finished = last.finished_at.as_ref().map(|t| t.0)?;
    let age = options.now.duration_since(finished);
    let recent = age <= options.recent;
    let reason = last.reason.as_deref().unwrap_or("Error");
    let looping = status.restart_count >= options.crash_loop_restarts
        && (waiting_reason == Some("CrashLoopBackOff") || recent);
    let oom = reason == "OOMKilled" && recent;
    if !looping && !oom {
        return None;
    }
    let code = if reason == "OOMKilled" {
        FindingCode::CrashLoopOom
    } else {
        FindingCode::CrashLoop
    };
    let severity = if looping {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let explanation = match code {
        FindingCode::CrashLoopOom => format!(
            "Container `{}` was killed for using more memory than its limit (OOMKilled, exit code {}) and \
             has restarted {}; the last kill was {} ago. Each restart drops in-flight work. Raising \
             the memory limit stops the kills; if usage keeps growing after that, look for a leak.",
            status.name,
            last.exit_code,
            crate::model::counted(status.restart_count.max(0) as u64, "time"),
            human(age)
        ),
        _ => format!(
            "Container `{}` keeps exiting ({reason}, exit code {}) and has restarted {}; the last exit \
             was {} ago. This is not a resource problem remediator can size away: read the container's \
             logs from before the restart (`kubectl logs --previous`) and follow the runbook.",
            status.name,
            last.exit_code,
            crate::model::counted(status.restart_count.max(0) as u64, "time"),
            human(age)
        ),
    };
    Some(
        base(code, severity, explanation)
            .with("restarts", status.restart_count)
            .with(
                "last termination",
                format!("{reason}, exit code {}", last.exit_code),
            )
            .with("last termination at", finished)
            .with("state", waiting_reason.unwrap_or("Running")),
    )
}

fn unschedulable(pod: &Pod, snapshot: &Snapshot) -> Option<Finding> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let scheduled = conditions.iter().find(|c| c.type_ == "PodScheduled")?;
    if scheduled.status != "False" || scheduled.reason.as_deref() != Some("Unschedulable") {
        return None;
    }
    let name = pod.metadata.name.as_deref()?;
    let event = snapshot.events.iter().rev().find(|e| {
        e.reason.as_deref() == Some("FailedScheduling")
            && e.involved_object.name.as_deref() == Some(name)
    });
    let message = event
        .and_then(|e| e.message.as_deref())
        .or(scheduled.message.as_deref())
        .unwrap_or("no message")
        .to_owned();
    let cause = if message.contains("Insufficient cpu") {
        "not enough free CPU on any node"
    } else if message.contains("Insufficient memory") {
        "not enough free memory on any node"
    } else if message.contains("taint") {
        "every node has a taint the pod does not tolerate"
    } else if message.contains("affinity") || message.contains("selector") {
        "no node matches the pod's node selector or affinity"
    } else {
        "the scheduler found no fitting node"
    };
    let explanation = format!(
        "The pod cannot be scheduled: {cause} ({message}). Lower its requests if they are larger than it \
         needs, add capacity, or fix its selector and tolerations."
    );
    Some(
        Finding::new(
            FindingCode::Unschedulable,
            Severity::Critical,
            pod_ref(pod),
            explanation,
        )
        .with("scheduler", message),
    )
}

fn stuck_terminating(pod: &Pod, options: &DetectOptions) -> Option<Finding> {
    let deleted = pod.metadata.deletion_timestamp.as_ref()?.0;
    let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(30);
    let overdue = options.now.duration_since(deleted) - SignedDuration::from_secs(grace);
    if overdue < options.stuck_terminating {
        return None;
    }
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_else(|| "?".into());
    let explanation = format!(
        "The pod was deleted {} ago and is still terminating on node `{node}`, {} past its grace period. \
         Its node may be gone or its finalizers stuck; deleting it with a zero grace period frees its \
         name and volumes.",
        human(options.now.duration_since(deleted)),
        human(overdue)
    );
    Some(
        Finding::new(
            FindingCode::PodStuckTerminating,
            Severity::Warning,
            pod_ref(pod),
            explanation,
        )
        .with("deleted at", deleted)
        .with("node", node),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::*;
    use super::super::{DetectOptions, detect};
    use crate::model::FindingCode;

    fn codes(objects: Vec<serde_json::Value>) -> Vec<(FindingCode, String)> {
        let findings = detect(&snapshot(objects), &DetectOptions::at(now()));
        findings
            .iter()
            .map(|f| (f.code, f.target().to_string()))
            .collect()
    }

    #[test]
    fn oom_crash_loop_names_the_deployment_and_the_last_termination() {
        let snap = snapshot(vec![
            pod(
                "api-5d4f8-a",
                "api",
                crashed(7, "OOMKilled", 137, 60, Some("CrashLoopBackOff")),
            ),
            pod(
                "api-5d4f8-b",
                "api",
                crashed(5, "OOMKilled", 137, 120, Some("CrashLoopBackOff")),
            ),
        ]);
        let findings = detect(&snap, &DetectOptions::at(now()));
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(
            (f.code, f.target().to_string()),
            (FindingCode::CrashLoopOom, "Deployment/shop/api".into())
        );
        assert_eq!(f.fact("last termination"), Some("OOMKilled, exit code 137"));
        assert_eq!(f.fact("pods affected"), Some("2"));
        assert!(
            f.explanation.contains("restarted 7 times"),
            "{}",
            f.explanation
        );
    }

    #[test]
    fn a_pod_that_restarted_once_long_ago_is_not_a_crash_loop() {
        assert!(
            codes(vec![pod(
                "api-5d4f8-a",
                "api",
                crashed(1, "Error", 1, 3 * 86400, None)
            )])
            .is_empty()
        );
        // Many restarts, but the last one days ago and running since: not a loop either.
        assert!(
            codes(vec![pod(
                "api-5d4f8-a",
                "api",
                crashed(9, "Error", 1, 3 * 86400, None)
            )])
            .is_empty()
        );
        // An old OOM kill is history, not a finding.
        assert!(
            codes(vec![pod(
                "api-5d4f8-a",
                "api",
                crashed(1, "OOMKilled", 137, 86400, None)
            )])
            .is_empty()
        );
    }

    #[test]
    fn a_crash_loop_of_another_kind_is_diagnosed() {
        let found = codes(vec![pod(
            "w-5d4f8-a",
            "worker",
            crashed(4, "Error", 2, 30, Some("CrashLoopBackOff")),
        )]);
        assert_eq!(
            found,
            [(FindingCode::CrashLoop, "Deployment/shop/worker".into())]
        );
    }

    #[test]
    fn image_pull_and_config_errors() {
        let found = codes(vec![
            pod(
                "w-5d4f8-a",
                "worker",
                waiting("ImagePullBackOff", "Back-off pulling image \"app:2\""),
            ),
            pod(
                "c-5d4f8-a",
                "cart",
                waiting("CreateContainerConfigError", "secret \"db\" not found"),
            ),
        ]);
        assert!(
            found.contains(&(
                FindingCode::ImagePullBackoff,
                "Deployment/shop/worker".into()
            )),
            "{found:?}"
        );
        assert!(
            found.contains(&(
                FindingCode::CreateContainerConfigError,
                "Deployment/shop/cart".into()
            )),
            "{found:?}"
        );
        assert!(
            codes(vec![pod(
                "w-5d4f8-a",
                "worker",
                waiting("ContainerCreating", "")
            )])
            .is_empty()
        );
    }

    #[test]
    fn unschedulable_uses_the_scheduler_event() {
        let mut p = pod("big-5d4f8-a", "big", waiting("ContainerCreating", ""));
        p["status"] = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "lastTransitionTime": ago(60)}]});
        let event = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "shop"},
            "involvedObject": {"kind": "Pod", "name": "big-5d4f8-a", "namespace": "shop"},
            "reason": "FailedScheduling", "message": "0/3 nodes are available: 3 Insufficient memory.",
            "lastTimestamp": ago(30)});
        let snap = snapshot(vec![p, event]);
        let findings = detect(&snap, &DetectOptions::at(now()));
        assert_eq!(findings[0].code, FindingCode::Unschedulable);
        assert!(
            findings[0].explanation.contains("not enough free memory"),
            "{}",
            findings[0].explanation
        );
    }

    #[test]
    fn pods_stuck_terminating() {
        let mut p = pod("old-5d4f8-a", "old", waiting("Terminating", ""));
        p["metadata"]["deletionTimestamp"] = json!(ago(3600));
        p["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        assert_eq!(
            codes(vec![p.clone()]),
            [(
                FindingCode::PodStuckTerminating,
                "Deployment/shop/old".into()
            )]
        );
        p["metadata"]["deletionTimestamp"] = json!(ago(60));
        assert!(codes(vec![p]).is_empty());
    }
}
