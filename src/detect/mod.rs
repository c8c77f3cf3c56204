//! Detection: a snapshot in, findings out. One file per family (pods, rollouts, usage, nodes,
//! storage). Pure: "now" is passed in, so a recorded snapshot gives the same findings on any day.
//!
//! Findings of the same problem on several pods of one workload are merged into one, with the
//! number of pods as evidence: one problem, one pull request.

mod forecast;
pub mod logs;
mod nodes;
pub mod owners;
mod pods;
pub mod predict;
mod rollouts;
mod storage;
pub(crate) mod usage;

use std::collections::HashMap;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::model::{Finding, FindingCode, Snapshot};

/// Thresholds of detection.
#[derive(Debug, Clone)]
pub struct DetectOptions {
    /// The moment of the snapshot.
    pub now: Timestamp,
    /// Restarts from which a container that keeps failing is in a crash loop.
    pub crash_loop_restarts: i32,
    /// How recent the last failure must be to count.
    pub recent: SignedDuration,
    /// CPU at or above this share of the request is high...
    pub high_cpu_ratio: f64,
    /// ...when it lasts this long.
    pub high_cpu_for: SignedDuration,
    /// How far ahead a forecast (a volume full, memory at its limit) makes a finding.
    pub forecast_horizon: SignedDuration,
    /// Days of history a daily profile needs before it forecasts a peak.
    pub peak_min_days: f64,
    /// p95 below this share of the request is over-provisioned...
    pub over_provisioned_ratio: f64,
    /// ...over at least this much history.
    pub over_provisioned_history: SignedDuration,
    /// p95 above this share of the limit is under-provisioned.
    pub under_provisioned_ratio: f64,
    /// A volume used above this share of its capacity is filling up.
    pub volume_full_ratio: f64,
    /// A pod terminating this long past its grace period is stuck.
    pub stuck_terminating: SignedDuration,
}

impl DetectOptions {
    /// The defaults, at `now`.
    pub fn at(now: Timestamp) -> Self {
        Self {
            now,
            crash_loop_restarts: 3,
            recent: SignedDuration::from_hours(1),
            high_cpu_ratio: 0.7,
            high_cpu_for: SignedDuration::from_mins(5),
            forecast_horizon: SignedDuration::from_hours(7 * 24),
            peak_min_days: 3.0,
            over_provisioned_ratio: 0.5,
            over_provisioned_history: SignedDuration::from_hours(7 * 24),
            under_provisioned_ratio: 0.8,
            volume_full_ratio: 0.85,
            stuck_terminating: SignedDuration::from_mins(10),
        }
    }
}

/// Every finding in `snapshot`, most severe first.
pub fn detect(snapshot: &Snapshot, options: &DetectOptions) -> Vec<Finding> {
    let owners = owners::Owners::new(snapshot);
    let mut findings = pods::detect(snapshot, &owners, options);
    findings.extend(rollouts::detect(snapshot, options));
    findings.extend(usage::detect(snapshot, options));
    findings.extend(forecast::detect(snapshot, options));
    findings.extend(nodes::detect(snapshot));
    findings.extend(storage::detect(snapshot, options));
    logs::annotate(&mut findings, snapshot);
    let mut findings = merge(findings);
    reconcile_findings(&mut findings);
    fold_forecasts(&mut findings);
    onset(&mut findings, snapshot, options.now);
    findings.sort_by_cached_key(|f| {
        (
            std::cmp::Reverse(f.severity),
            f.code,
            f.target().to_string(),
        )
    });
    findings
}

/// Merges findings of one code on one workload's container seen on several pods.
fn merge(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let mut seen: HashMap<(FindingCode, String, Option<String>), usize> = HashMap::new();
    for finding in findings {
        let key = (
            finding.code,
            finding.target().to_string(),
            finding.container.clone(),
        );
        match seen.get(&key) {
            Some(&i) if finding.owner.is_some() => {
                let merged = &mut out[i];
                let count = merged
                    .fact("pods affected")
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(1);
                merged.evidence.retain(|e| e.label != "pods affected");
                merged.evidence.push(crate::model::Evidence {
                    label: "pods affected".into(),
                    value: (count + 1).to_string(),
                });
            }
            _ => {
                seen.insert(key, out.len());
                out.push(finding);
            }
        }
    }
    out
}

/// What one finding does to another on the same workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The other is dropped: one problem, one pull request.
    Suppresses,
    /// The other stays, carrying this one as its evidence `suspected leak`, which its remedy
    /// states in the title.
    Qualifies,
}

/// Which findings act on a finding: those it is found beside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beside {
    /// Findings of this code.
    Code(FindingCode),
    /// Any finding of another code.
    AnyOther,
    /// Any finding about a pod.
    AnyPod,
}

/// One row of [`INTERACTIONS`]: what `finding` is found `beside`, on the same target (and the
/// same container when `same_container`), acts on it.
#[derive(Clone, Copy, Debug)]
pub struct Interaction {
    /// The finding acted on.
    pub finding: FindingCode,
    /// What acts on it.
    pub beside: Beside,
    /// Only when both name the same container.
    pub same_container: bool,
    /// What happens.
    pub effect: Effect,
}

/// How findings on one workload are reconciled before remedies run, in one place:
///
/// | finding | beside | effect |
/// | --- | --- | --- |
/// | `replicas-not-ready` | any other finding | suppressed: the other is its cause |
/// | `rollout-stuck` | any pod finding | suppressed: the pods say why |
/// | `under-provisioned` | `crash-loop-oom` of the container | suppressed: the OOM raise sizes it |
/// | `under-provisioned` | `memory-growth` of the container | suppressed: a leak is not fixed by a higher limit |
/// | `over-provisioned` | `memory-growth` of the container | suppressed: a leak's usage is no size to fit |
/// | `crash-loop-oom` | `memory-growth` of the container | raised only with the leak in its title |
pub const INTERACTIONS: &[Interaction] = {
    use FindingCode::*;
    &[
        Interaction {
            finding: ReplicasNotReady,
            beside: Beside::AnyOther,
            same_container: false,
            effect: Effect::Suppresses,
        },
        Interaction {
            finding: RolloutStuck,
            beside: Beside::AnyPod,
            same_container: false,
            effect: Effect::Suppresses,
        },
        Interaction {
            finding: UnderProvisioned,
            beside: Beside::Code(CrashLoopOom),
            same_container: true,
            effect: Effect::Suppresses,
        },
        Interaction {
            finding: UnderProvisioned,
            beside: Beside::Code(MemoryGrowth),
            same_container: true,
            effect: Effect::Suppresses,
        },
        Interaction {
            finding: OverProvisioned,
            beside: Beside::Code(MemoryGrowth),
            same_container: true,
            effect: Effect::Suppresses,
        },
        Interaction {
            finding: CrashLoopOom,
            beside: Beside::Code(MemoryGrowth),
            same_container: true,
            effect: Effect::Qualifies,
        },
    ]
};

/// Applies [`INTERACTIONS`]: each finding is looked at against every other on its target, all
/// against the findings as detected (a suppressed finding still acts on others).
fn reconcile_findings(findings: &mut Vec<Finding>) {
    let acts = |row: &Interaction, finding: &Finding, cause: &Finding| {
        row.finding == finding.code
            && cause.code != finding.code
            && cause.target() == finding.target()
            && (!row.same_container || cause.container == finding.container)
            && match row.beside {
                Beside::Code(code) => cause.code == code,
                Beside::AnyOther => true,
                Beside::AnyPod => cause.subject.kind == "Pod",
            }
    };
    let mut keep = vec![true; findings.len()];
    let mut qualified: Vec<(usize, String)> = Vec::new();
    // Only findings on one target act on each other.
    let mut by_target: HashMap<&crate::model::ObjectRef, Vec<usize>> = HashMap::new();
    for (i, finding) in findings.iter().enumerate() {
        by_target.entry(finding.target()).or_default().push(i);
    }
    for (i, finding) in findings.iter().enumerate() {
        let beside = &by_target[finding.target()];
        for cause in beside.iter().map(|&j| &findings[j]) {
            for row in INTERACTIONS.iter().filter(|row| acts(row, finding, cause)) {
                match row.effect {
                    Effect::Suppresses => keep[i] = false,
                    Effect::Qualifies => qualified.push((
                        i,
                        match cause.fact("time to limit") {
                            Some(eta) => format!(
                                "{}: memory keeps growing, and reaches its limit in about {eta}",
                                cause.code
                            ),
                            None => format!("{}: memory keeps growing", cause.code),
                        },
                    )),
                }
            }
        }
    }
    for (i, note) in qualified {
        findings[i].evidence.push(crate::model::Evidence {
            label: "suspected leak".into(),
            value: note,
        });
    }
    let mut keep = keep.into_iter();
    findings.retain(|_| keep.next().unwrap_or(true));
}

/// A workload that runs hot now and whose daily peak needs more replicas is one problem: the
/// forecast's numbers become evidence on `high-cpu`, whose remedy sizes for the peak.
fn fold_forecasts(findings: &mut Vec<Finding>) {
    let peaks: Vec<Finding> = findings
        .iter()
        .filter(|f| f.code == FindingCode::PeakForecast)
        .cloned()
        .collect();
    let mut folded: Vec<String> = Vec::new();
    for peak in peaks {
        let target = peak.target().to_string();
        let Some(hot) = findings
            .iter_mut()
            .find(|f| f.code == FindingCode::HighCpu && f.target().to_string() == target)
        else {
            continue;
        };
        for label in ["forecast peak", "replicas needed", "method"] {
            if let Some(value) = peak.fact(label) {
                hot.evidence.push(crate::model::Evidence {
                    label: label.into(),
                    value: value.to_owned(),
                });
            }
        }
        folded.push(target);
    }
    findings.retain(|f| {
        f.code != FindingCode::PeakForecast || !folded.contains(&f.target().to_string())
    });
}

/// When the cluster first showed each finding (`first_seen`): the earliest Event about its
/// subject or its workload, or a condition's `since`; not later than now. None when the
/// cluster does not say: the finding is then first seen when it is first proposed. A value
/// outside the body, so that a pull request does not change from one run to the next.
fn onset(findings: &mut [Finding], snapshot: &Snapshot, now: Timestamp) {
    // The earliest Event of each object, by kind, namespace and name: one pass over the events.
    let mut earliest: HashMap<(&str, Option<&str>, &str), Timestamp> = HashMap::new();
    for event in &snapshot.events {
        let o = &event.involved_object;
        let (Some(kind), Some(name)) = (o.kind.as_deref(), o.name.as_deref()) else {
            continue;
        };
        let Some(at) = event
            .first_timestamp
            .as_ref()
            .map(|t| t.0)
            .or(event.event_time.as_ref().map(|t| t.0))
        else {
            continue;
        };
        earliest
            .entry((kind, o.namespace.as_deref(), name))
            .and_modify(|t| *t = (*t).min(at))
            .or_insert(at);
    }
    for finding in findings.iter_mut() {
        let from_events = std::iter::once(&finding.subject)
            .chain(finding.owner.as_ref())
            .filter_map(|s| {
                earliest
                    .get(&(s.kind.as_str(), s.namespace.as_deref(), s.name.as_str()))
                    .copied()
            })
            .min();
        let from_condition = finding
            .fact("since")
            .and_then(|t| t.parse::<Timestamp>().ok());
        finding.first_seen = [from_events, from_condition]
            .into_iter()
            .flatten()
            .min()
            .map(|first| first.min(now).to_string());
    }
}

/// `1h 5m`, `3d 4h`, `45s`: a duration for people.
pub fn human(duration: SignedDuration) -> String {
    let secs = duration.as_secs().max(0);
    let (d, h, m, s) = (
        secs / 86400,
        secs % 86400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Small snapshots for detector and remedy tests.

    use k8s_openapi::jiff::Timestamp;
    use serde_json::{Value, json};

    use crate::model::Snapshot;

    /// The moment every fixture is taken at.
    pub fn now() -> Timestamp {
        "2026-11-20T12:00:00Z".parse().unwrap()
    }

    /// `now` minus `secs` seconds, RFC 3339.
    pub fn ago(secs: i64) -> String {
        (now() - k8s_openapi::jiff::SignedDuration::from_secs(secs)).to_string()
    }

    /// A Deployment's pod (through ReplicaSet `<deployment>-5d4f8`) with one container `app`
    /// whose status is `container_status`.
    pub fn pod(name: &str, deployment: &str, container_status: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": name, "namespace": "shop",
                "labels": {"pod-template-hash": "5d4f8"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": format!("{deployment}-5d4f8"), "uid": "u", "controller": true}]
            },
            "spec": {"containers": [{"name": "app", "image": "app:1"}]},
            "status": {"phase": "Running", "containerStatuses": [container_status]}
        })
    }

    /// A container status that crashed `restarts` times, last `secs_ago`, with `reason`.
    pub fn crashed(
        restarts: i32,
        reason: &str,
        exit_code: i32,
        secs_ago: i64,
        waiting: Option<&str>,
    ) -> Value {
        let state = match waiting {
            Some(reason) => {
                json!({"waiting": {"reason": reason, "message": "back-off restarting failed container"}})
            }
            None => json!({"running": {"startedAt": ago(secs_ago - 1)}}),
        };
        json!({
            "name": "app", "image": "app:1", "imageID": "", "ready": false, "restartCount": restarts,
            "state": state,
            "lastState": {"terminated": {"reason": reason, "exitCode": exit_code,
                "startedAt": ago(secs_ago + 30), "finishedAt": ago(secs_ago)}}
        })
    }

    /// A container status waiting with `reason` and `message`.
    pub fn waiting(reason: &str, message: &str) -> Value {
        json!({"name": "app", "image": "app:2", "imageID": "", "ready": false, "restartCount": 0,
               "state": {"waiting": {"reason": reason, "message": message}}})
    }

    /// A Deployment `name` with `replicas` and one container `app` with these resources.
    pub fn deployment(name: &str, replicas: i32, resources: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop", "generation": 2},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "app:2", "resources": resources}]}}},
            "status": {"observedGeneration": 2, "replicas": replicas, "readyReplicas": replicas,
                "updatedReplicas": replicas, "availableReplicas": replicas}
        })
    }

    /// A snapshot of these objects (any kinds the loader reads), with the ReplicaSet `pod` names
    /// for each Deployment's pods, as the cluster lists it beside them.
    pub fn snapshot(mut objects: Vec<Value>) -> Snapshot {
        let mut replica_sets: Vec<String> = objects
            .iter()
            .flat_map(|o| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|r| r["kind"] == "ReplicaSet")
            .filter_map(|r| r["name"].as_str().map(str::to_owned))
            .filter(|name| name.ends_with("-5d4f8"))
            .collect();
        replica_sets.sort();
        replica_sets.dedup();
        for name in replica_sets {
            let deployment = name.trim_end_matches("-5d4f8").to_owned();
            objects.push(json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": name, "namespace": "shop",
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                        "name": deployment, "uid": "d", "controller": true}]},
                "spec": {"selector": {"matchLabels": {"app": "x"}}}
            }));
        }
        let mut loaded = crate::snapshot::Loaded::default();
        let text = objects
            .iter()
            .map(|o| serde_json::to_string(o).unwrap())
            .collect::<Vec<_>>()
            .join("\n---\n");
        loaded.read_file(std::path::Path::new("fixture.yaml"), text.as_bytes());
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        loaded.snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ObjectRef, Severity};

    /// A finding of `code` on the api Deployment's `container`; about a pod when `pod`.
    fn on_api(code: FindingCode, container: &str, pod: bool) -> Finding {
        let api = ObjectRef::new("apps/v1", "Deployment", Some("shop"), "api");
        let subject = if pod {
            ObjectRef::new("v1", "Pod", Some("shop"), "api-5d4f8-a")
        } else {
            api.clone()
        };
        let mut f = Finding::new(code, Severity::Warning, subject, "x".into());
        f.owner = Some(api);
        f.container = Some(container.into());
        f
    }

    fn reconciled(findings: Vec<Finding>) -> Vec<(FindingCode, Option<String>)> {
        let mut findings = findings;
        reconcile_findings(&mut findings);
        findings
            .into_iter()
            .map(|f| {
                let leak = f.fact("suspected leak").map(str::to_owned);
                (f.code, leak)
            })
            .collect()
    }

    #[test]
    fn each_row_of_the_interaction_table_acts_on_its_own_case_only() {
        use FindingCode::*;
        let leak = || on_api(MemoryGrowth, "api", false).with("time to limit", "3.1 days");
        // A leak suppresses limit raises and right-sizing of its container.
        for sized in [UnderProvisioned, OverProvisioned] {
            assert_eq!(
                reconciled(vec![leak(), on_api(sized, "api", false)]),
                [(MemoryGrowth, None)],
                "{sized}"
            );
            // Not of another container.
            assert_eq!(
                reconciled(vec![leak(), on_api(sized, "sidecar", false)]).len(),
                2,
                "{sized}"
            );
        }
        // An OOM kill of a leaking container is raised, with the leak stated.
        let found = reconciled(vec![on_api(CrashLoopOom, "api", true), leak()]);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].0, CrashLoopOom);
        assert_eq!(
            found[0].1.as_deref(),
            Some("memory-growth: memory keeps growing, and reaches its limit in about 3.1 days")
        );
        // OOM kills suppress use close to the limit; missing replicas yield to any cause; a
        // stuck rollout yields to its pods.
        assert_eq!(
            reconciled(vec![
                on_api(UnderProvisioned, "api", false),
                on_api(CrashLoopOom, "api", true)
            ]),
            [(CrashLoopOom, None)]
        );
        assert_eq!(
            reconciled(vec![
                on_api(ReplicasNotReady, "api", false),
                on_api(CrashLoop, "api", true)
            ]),
            [(CrashLoop, None)]
        );
        assert_eq!(
            reconciled(vec![
                on_api(RolloutStuck, "api", false),
                on_api(HighCpu, "api", false)
            ])
            .len(),
            2,
            "a workload finding is not the pods'"
        );
        assert_eq!(
            reconciled(vec![
                on_api(RolloutStuck, "api", false),
                on_api(ImagePullBackoff, "api", true)
            ]),
            [(ImagePullBackoff, None)]
        );
    }

    fn on(code: FindingCode, name: &str) -> Finding {
        let workload = ObjectRef::new("apps/v1", "Deployment", Some("shop"), name);
        let mut f = Finding::new(code, Severity::Warning, workload.clone(), "x".into());
        f.owner = Some(workload);
        f
    }

    #[test]
    fn a_forecast_peak_on_a_workload_running_hot_is_evidence_not_a_second_problem() {
        let peak = |name| {
            on(FindingCode::PeakForecast, name)
                .with("replicas needed", 9)
                .with("forecast peak", "3 at 15:00 UTC")
        };
        let mut findings = vec![on(FindingCode::HighCpu, "api"), peak("api"), peak("web")];
        fold_forecasts(&mut findings);
        let codes: Vec<(FindingCode, &str)> = findings
            .iter()
            .map(|f| (f.code, f.target().name.as_str()))
            .collect();
        assert_eq!(
            codes,
            [
                (FindingCode::HighCpu, "api"),
                (FindingCode::PeakForecast, "web")
            ]
        );
        assert_eq!(findings[0].fact("replicas needed"), Some("9"));
        assert_eq!(findings[0].fact("forecast peak"), Some("3 at 15:00 UTC"));
    }
}
