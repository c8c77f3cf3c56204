//! Findings: what is wrong in the cluster, as data. Each has a stable kebab-case code, a
//! severity, the object it was seen on and the workload that owns it, the evidence, and an
//! explanation a person can act on. Pure.

use serde::Serialize;

use super::ObjectRef;

/// Every kind of finding, with a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingCode {
    /// A container keeps being OOM-killed.
    CrashLoopOom,
    /// A container keeps crashing for another reason.
    CrashLoop,
    /// An image cannot be pulled.
    ImagePullBackoff,
    /// A container cannot start: a ConfigMap, Secret or key it references is missing.
    CreateContainerConfigError,
    /// A pod cannot be scheduled.
    Unschedulable,
    /// A rollout exceeded its progress deadline.
    RolloutStuck,
    /// Fewer replicas are ready than wanted.
    ReplicasNotReady,
    /// CPU has stayed at or above 70 % of the request.
    HighCpu,
    /// Usage has stayed well below the request for a week.
    OverProvisioned,
    /// Usage comes close to the limit.
    UnderProvisioned,
    /// A node is not ready.
    NodeNotReady,
    /// A node reports memory pressure.
    NodeMemoryPressure,
    /// A node reports disk pressure.
    NodeDiskPressure,
    /// A PersistentVolumeClaim is not bound.
    PvcPending,
    /// A volume is nearly full.
    PvcFillingUp,
    /// The CPU a workload's daily peak is forecast to need exceeds its autoscaler's ceiling.
    PeakForecast,
    /// A container's memory keeps growing toward its limit: a suspected leak.
    MemoryGrowth,
    /// A pod has been terminating for too long.
    PodStuckTerminating,
    /// A security rule with a safe edit finds a workload's setting weak.
    InsecureWorkload,
}

impl FindingCode {
    /// Every code.
    pub const ALL: [FindingCode; 19] = [
        Self::CrashLoopOom,
        Self::CrashLoop,
        Self::ImagePullBackoff,
        Self::CreateContainerConfigError,
        Self::Unschedulable,
        Self::RolloutStuck,
        Self::ReplicasNotReady,
        Self::HighCpu,
        Self::OverProvisioned,
        Self::UnderProvisioned,
        Self::NodeNotReady,
        Self::NodeMemoryPressure,
        Self::NodeDiskPressure,
        Self::PvcPending,
        Self::PvcFillingUp,
        Self::PodStuckTerminating,
        Self::PeakForecast,
        Self::MemoryGrowth,
        Self::InsecureWorkload,
    ];

    /// The stable code (`crash-loop-oom`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CrashLoopOom => "crash-loop-oom",
            Self::CrashLoop => "crash-loop",
            Self::ImagePullBackoff => "image-pull-backoff",
            Self::CreateContainerConfigError => "create-container-config-error",
            Self::Unschedulable => "unschedulable",
            Self::RolloutStuck => "rollout-stuck",
            Self::ReplicasNotReady => "replicas-not-ready",
            Self::HighCpu => "high-cpu",
            Self::OverProvisioned => "over-provisioned",
            Self::UnderProvisioned => "under-provisioned",
            Self::NodeNotReady => "node-not-ready",
            Self::NodeMemoryPressure => "node-memory-pressure",
            Self::NodeDiskPressure => "node-disk-pressure",
            Self::PvcPending => "pvc-pending",
            Self::PvcFillingUp => "pvc-filling-up",
            Self::PeakForecast => "peak-forecast",
            Self::MemoryGrowth => "memory-growth",
            Self::PodStuckTerminating => "pod-stuck-terminating",
            Self::InsecureWorkload => "insecure-workload",
        }
    }

    /// One line describing the finding.
    pub fn description(self) -> &'static str {
        match self {
            Self::CrashLoopOom => {
                "A container is killed for exceeding its memory limit, again and again."
            }
            Self::CrashLoop => "A container keeps exiting and being restarted.",
            Self::ImagePullBackoff => "The container image cannot be pulled.",
            Self::CreateContainerConfigError => {
                "A ConfigMap, Secret or key the container needs is missing."
            }
            Self::Unschedulable => "No node can run the pod.",
            Self::RolloutStuck => "The rollout stopped making progress.",
            Self::ReplicasNotReady => "Fewer replicas are ready than the workload wants.",
            Self::HighCpu => "CPU use has stayed at or above 70 % of the request.",
            Self::OverProvisioned => "Usage has stayed well below the request for a week.",
            Self::UnderProvisioned => "Usage comes close to the limit.",
            Self::NodeNotReady => "The node is not ready.",
            Self::NodeMemoryPressure => "The node is short of memory and evicts pods.",
            Self::NodeDiskPressure => "The node is short of disk and evicts pods.",
            Self::PvcPending => "The volume claim is not bound to a volume.",
            Self::PvcFillingUp => "The volume is nearly full, or will be within the horizon.",
            Self::PeakForecast => {
                "The next daily peak needs more replicas than the autoscaler may run."
            }
            Self::MemoryGrowth => "Memory keeps growing toward the limit: a suspected leak.",
            Self::PodStuckTerminating => {
                "The pod has been terminating far longer than its grace period."
            }
            Self::InsecureWorkload => {
                "A security rule finds a workload's setting weak, and has a safe edit for it."
            }
        }
    }

    /// The runbook section for this finding, in docs/runbook.md.
    pub fn runbook(self) -> String {
        format!("docs/runbook.md#{}", self.as_str())
    }
}

impl std::fmt::Display for FindingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth fixing; nothing is broken.
    Info,
    /// Degraded or at risk.
    Warning,
    /// Broken now.
    Critical,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        })
    }
}

/// One fact behind a finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// What it is (`restarts`, `last termination`).
    pub label: String,
    /// Its value, as shown to a person.
    pub value: String,
}

/// Usage numbers a finding rests on, for sizing a fix and for the chart in the pull request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageFacts {
    /// `cpu` or `memory` (or `storage`).
    pub resource: String,
    /// 95th percentile of the samples, in millicores or bytes.
    pub p95: f64,
    /// Highest sample.
    pub max: f64,
    /// Where the chart's forecast starts (seconds from its first point): the points after it
    /// are predicted, not measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forecast_from: Option<f64>,
    /// The current request, when set.
    pub request: Option<f64>,
    /// The current limit, when set.
    pub limit: Option<f64>,
    /// Samples for the chart: (seconds since the first sample, value).
    pub chart: Vec<(f64, f64)>,
}

/// What is wrong, where, and why we think so.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The stable code.
    pub code: FindingCode,
    /// How bad it is.
    pub severity: Severity,
    /// Where it was seen (a Pod, a Node, a PVC, a workload).
    pub subject: ObjectRef,
    /// The workload that owns the subject (Pod → ReplicaSet → Deployment), when there is one.
    pub owner: Option<ObjectRef>,
    /// The container concerned, when there is one.
    pub container: Option<String>,
    /// The facts.
    pub evidence: Vec<Evidence>,
    /// What is happening and what to do, in a paragraph.
    pub explanation: String,
    /// Usage numbers, when the finding comes from usage history: one per resource concerned.
    pub usage: Vec<UsageFacts>,
    /// When the cluster first showed it (RFC 3339), when the cluster says: the earliest Event
    /// about it or a condition's transition. MTTD and MTTR are measured from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
}

impl Finding {
    /// A finding with no evidence yet.
    pub fn new(
        code: FindingCode,
        severity: Severity,
        subject: ObjectRef,
        explanation: String,
    ) -> Self {
        Self {
            code,
            severity,
            subject,
            owner: None,
            container: None,
            evidence: vec![],
            explanation,
            usage: vec![],
            first_seen: None,
        }
    }

    /// The object a fix would change: the owner when known, else the subject.
    pub fn target(&self) -> &ObjectRef {
        self.owner.as_ref().unwrap_or(&self.subject)
    }

    /// Adds a fact.
    pub fn with(mut self, label: &str, value: impl ToString) -> Self {
        self.evidence.push(Evidence {
            label: label.to_owned(),
            value: value.to_string(),
        });
        self
    }

    /// The value of a fact, when present.
    pub fn fact(&self, label: &str) -> Option<&str> {
        self.evidence
            .iter()
            .find(|e| e.label == label)
            .map(|e| e.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_runbook_section_and_serializes_as_itself() {
        let runbook = include_str!("../../docs/runbook.md");
        for code in FindingCode::ALL {
            assert!(
                runbook.contains(&format!("\n## {code}\n")),
                "no runbook section for {code}"
            );
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
            assert!(code.runbook().ends_with(&format!("#{code}")));
        }
    }
}
