//! Node problems: not ready, memory pressure, disk pressure. Pure.

use crate::model::{Finding, FindingCode, ObjectRef, Severity, Snapshot};

/// Findings on every node.
pub fn detect(snapshot: &Snapshot) -> Vec<Finding> {
    let mut findings = Vec::new();
    // Pods per node, counted in one pass.
    let mut on_node: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for pod in &snapshot.pods {
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            *on_node.entry(node).or_default() += 1;
        }
    }
    for node in &snapshot.nodes {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let subject = ObjectRef::new("v1", "Node", None, name);
        let pods = on_node.get(name).copied().unwrap_or(0);
        let unschedulable = node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
        for c in conditions.into_iter().flatten() {
            let (code, severity, bad, what) = match c.type_.as_str() {
                "Ready" => (
                    FindingCode::NodeNotReady,
                    Severity::Critical,
                    c.status != "True",
                    "is not ready",
                ),
                "MemoryPressure" => (
                    FindingCode::NodeMemoryPressure,
                    Severity::Warning,
                    c.status == "True",
                    "is short of memory",
                ),
                "DiskPressure" => (
                    FindingCode::NodeDiskPressure,
                    Severity::Warning,
                    c.status == "True",
                    "is short of disk",
                ),
                _ => continue,
            };
            if !bad {
                continue;
            }
            let reason = c.reason.clone().unwrap_or_default();
            let message = c.message.clone().unwrap_or_default();
            let explanation = format!(
                "Node `{name}` {what} ({reason}: {message}); {pods} pods are scheduled on it{}. Cordoning it \
                 stops new pods from landing there; draining it moves its pods elsewhere, within their \
                 disruption budgets, so that the node can be repaired or replaced.",
                if unschedulable {
                    " and it is already cordoned"
                } else {
                    ""
                }
            );
            let since = c
                .last_transition_time
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default();
            findings.push(
                Finding::new(code, severity, subject.clone(), explanation)
                    .with("condition", format!("{}={} ({reason})", c.type_, c.status))
                    .with("since", since)
                    .with("pods on node", pods)
                    .with("cordoned", unschedulable),
            );
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::*;
    use super::super::{DetectOptions, detect};
    use crate::model::FindingCode;

    fn node(conditions: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "status": {"conditions": conditions}})
    }

    #[test]
    fn node_conditions() {
        let bad = node(json!([
            {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown", "message": "Kubelet stopped posting node status."},
            {"type": "MemoryPressure", "status": "True", "reason": "KubeletHasInsufficientMemory"},
            {"type": "DiskPressure", "status": "False"}
        ]));
        let codes: Vec<_> = detect(&snapshot(vec![bad]), &DetectOptions::at(now()))
            .iter()
            .map(|f| f.code)
            .collect();
        assert_eq!(
            codes,
            [FindingCode::NodeNotReady, FindingCode::NodeMemoryPressure]
        );
        let ok = node(
            json!([{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"}]),
        );
        assert!(detect(&snapshot(vec![ok]), &DetectOptions::at(now())).is_empty());
    }
}
