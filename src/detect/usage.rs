//! Usage problems from usage history: sustained high CPU against the request, requests far above
//! what a week of use needs, and use close to the limit. Gaps in the history are measured and
//! shown, never filled in. Pure.

use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::jiff::SignedDuration;

use super::{DetectOptions, human};
use crate::model::quantity::{cpu_millis, format_cpu, format_memory, memory_bytes};
use crate::model::{
    ContainerUsage, Finding, FindingCode, ObjectRef, Severity, Snapshot, UsageFacts,
};

/// Findings on every container series of the usage history.
pub fn detect(snapshot: &Snapshot, options: &DetectOptions) -> Vec<Finding> {
    let mut findings = Vec::new();
    let specs = pod_specs(snapshot);
    for series in &snapshot.usage.containers {
        let workload = ObjectRef::new(
            "apps/v1",
            &series.workload.kind,
            Some(&series.namespace),
            &series.workload.name,
        );
        let Some(spec) = specs.get(&workload.to_string()) else {
            continue;
        };
        let Some(container) = spec.containers.iter().find(|c| c.name == series.container) else {
            continue;
        };
        let resources = container.resources.clone().unwrap_or_default();
        let cpu = Resource::cpu(series, &resources);
        let memory = Resource::memory(series, &resources);
        let base = |code, severity, explanation: String, usage: Vec<UsageFacts>| {
            let mut f = Finding::new(code, severity, workload.clone(), explanation);
            f.owner = Some(workload.clone());
            f.container = Some(series.container.clone());
            f.usage = usage;
            // Anomalies against the container's own history are evidence, never a finding.
            for (resource, points) in [("cpu", &series.cpu), ("memory", &series.memory)] {
                let odd = super::predict::anomalies(points);
                if let Some(last) = odd.last() {
                    let value = if resource == "cpu" {
                        format_cpu(last.1 * 1000.0)
                    } else {
                        format_memory(last.1)
                    };
                    f = f.with(
                        &format!("{resource} anomalies"),
                        super::predict::describe_anomalies(odd.len(), points.len(), &value, last.2),
                    );
                }
            }
            f
        };
        let coverage = Coverage::of(&series.cpu, &series.memory);
        if let Some(finding) = high_cpu(&cpu, options) {
            findings.push(
                base(
                    FindingCode::HighCpu,
                    Severity::Warning,
                    finding.0,
                    vec![cpu.facts()],
                )
                .with("cpu", finding.1),
            );
        }
        let over: Vec<&Resource> = [&cpu, &memory]
            .into_iter()
            .filter(|r| r.history() >= options.over_provisioned_history)
            .filter(|r| {
                r.request
                    .is_some_and(|req| r.p95 < req * options.over_provisioned_ratio)
            })
            .collect();
        if !over.is_empty() {
            let lines: Vec<String> = over
                .iter()
                .map(|r| r.describe("request", r.request))
                .collect();
            let explanation = format!(
                "Over {} of history, container `{}` used far less than it requests: {}. The scheduler \
                 reserves the full request on a node, so the difference is capacity nobody can use. \
                 Requests sized to the p95 plus 30 % keep headroom and free the rest.",
                human(cpu.history().max(memory.history())),
                series.container,
                lines.join("; ")
            );
            let facts = over.iter().map(|r| r.facts()).collect();
            findings.push(coverage.annotate(base(
                FindingCode::OverProvisioned,
                Severity::Info,
                explanation,
                facts,
            )));
        } else {
            // Over-sized on what there is, but with less history than right-sizing needs: said,
            // with how much there is, and not right-sized. Under a day is not worth saying.
            let young: Vec<&Resource> = [&cpu, &memory]
                .into_iter()
                .filter(|r| r.history() < options.over_provisioned_history)
                .filter(|r| r.history() >= SignedDuration::from_hours(24))
                .filter(|r| {
                    r.request
                        .is_some_and(|req| r.p95 < req * options.over_provisioned_ratio)
                })
                .collect();
            if !young.is_empty() {
                let history = human(cpu.history().max(memory.history()));
                let needed = human(options.over_provisioned_history);
                let lines: Vec<String> = young
                    .iter()
                    .map(|r| r.describe("request", r.request))
                    .collect();
                let explanation = format!(
                    "Container `{}` used far less than it requests over the {history} of history there is ({}), but \
                     right-sizing needs {needed}: a week holds the busy days a shorter window may miss. It is not \
                     right-sized until then.",
                    series.container,
                    lines.join("; ")
                );
                findings.push(
                    coverage.annotate(
                        base(
                            FindingCode::OverProvisioned,
                            Severity::Info,
                            explanation,
                            vec![],
                        )
                        .with(
                            "too little history",
                            format!("{history} of the {needed} needed"),
                        ),
                    ),
                );
            }
        }
        let near_limit: Vec<&Resource> = [&cpu, &memory]
            .into_iter()
            .filter(|r| {
                r.limit
                    .is_some_and(|lim| r.p95 > lim * options.under_provisioned_ratio)
            })
            .collect();
        // A p95 of a handful of samples is no p95: said, with how many there are, and not
        // resized.
        let (under, few): (Vec<&Resource>, Vec<&Resource>) = near_limit
            .into_iter()
            .partition(|r| r.samples.len() >= UNDER_PROVISIONED_POINTS);
        if under.is_empty() && !few.is_empty() {
            let samples = few.iter().map(|r| r.samples.len()).max().unwrap_or(0);
            let counted = match samples {
                1 => "1 sample".to_owned(),
                n => format!("{n} samples"),
            };
            let lines: Vec<String> = few.iter().map(|r| r.describe("limit", r.limit)).collect();
            let explanation = format!(
                "Container `{}` ran close to its limit in the {counted} there is ({}), but a p95 needs \
                 {UNDER_PROVISIONED_POINTS} samples at least. Its limits are not resized until there are.",
                series.container,
                lines.join("; ")
            );
            findings.push(
                coverage.annotate(
                    base(
                        FindingCode::UnderProvisioned,
                        Severity::Info,
                        explanation,
                        vec![],
                    )
                    .with(
                        "too little history",
                        format!("{counted} of the {UNDER_PROVISIONED_POINTS} needed"),
                    ),
                ),
            );
        }
        if !under.is_empty() {
            let lines: Vec<String> = under.iter().map(|r| r.describe("limit", r.limit)).collect();
            let explanation = format!(
                "Container `{}` runs close to its limit: {}. Memory at the limit ends in an OOM kill, CPU \
                 at the limit in throttling. Limits sized to the p95 plus 30 % leave room for peaks.",
                series.container,
                lines.join("; ")
            );
            let facts = under.iter().map(|r| r.facts()).collect();
            findings.push(coverage.annotate(base(
                FindingCode::UnderProvisioned,
                Severity::Warning,
                explanation,
                facts,
            )));
        }
    }
    findings
}

/// Samples a p95 near the limit needs before limits are resized (a p95 of fewer is one of the
/// highest samples, not a percentile).
pub const UNDER_PROVISIONED_POINTS: usize = 10;

/// The pod templates of the snapshot's Deployments, StatefulSets and DaemonSets, by
/// `Kind/namespace/name`: looked up once per series instead of searched.
pub fn pod_specs(snapshot: &Snapshot) -> std::collections::HashMap<String, &PodSpec> {
    let deployments = snapshot
        .deployments
        .iter()
        .map(|d| ("Deployment", &d.metadata, d.spec.template.spec.as_ref()));
    let stateful = snapshot
        .stateful_sets
        .iter()
        .map(|d| ("StatefulSet", &d.metadata, d.spec.template.spec.as_ref()));
    let daemons = snapshot
        .daemon_sets
        .iter()
        .map(|d| ("DaemonSet", &d.metadata, d.spec.template.spec.as_ref()));
    deployments
        .chain(stateful)
        .chain(daemons)
        .filter_map(|(kind, meta, spec)| {
            let key = ObjectRef::new(
                "apps/v1",
                kind,
                meta.namespace.as_deref(),
                meta.name.as_deref()?,
            );
            Some((key.to_string(), spec?))
        })
        .collect()
}

/// One resource of one container: its samples and its request and limit.
struct Resource<'u> {
    name: &'static str,
    samples: &'u [(f64, f64)],
    values: Vec<f64>,
    p95: f64,
    request: Option<f64>,
    limit: Option<f64>,
}

impl<'u> Resource<'u> {
    fn cpu(series: &'u ContainerUsage, resources: &ResourceRequirements) -> Self {
        let values = series.cpu.iter().map(|(_, cores)| cores * 1000.0).collect();
        Self::of("cpu", &series.cpu, values, resources, cpu_millis)
    }

    fn memory(series: &'u ContainerUsage, resources: &ResourceRequirements) -> Self {
        let values = series.memory.iter().map(|(_, bytes)| *bytes).collect();
        Self::of("memory", &series.memory, values, resources, memory_bytes)
    }

    /// The resource `name`, its request and limit read from `resources` with `parse`.
    fn of(
        name: &'static str,
        samples: &'u [(f64, f64)],
        values: Vec<f64>,
        resources: &ResourceRequirements,
        parse: fn(&str) -> Option<f64>,
    ) -> Self {
        let read = |m: Option<&std::collections::BTreeMap<String, Quantity>>| {
            m.and_then(|m| m.get(name)).and_then(|q| parse(&q.0))
        };
        Self::new(
            name,
            samples,
            values,
            read(resources.requests.as_ref()),
            read(resources.limits.as_ref()),
        )
    }

    fn new(
        name: &'static str,
        samples: &'u [(f64, f64)],
        values: Vec<f64>,
        request: Option<f64>,
        limit: Option<f64>,
    ) -> Self {
        let p95 = percentile(&values, 0.95);
        Self {
            name,
            samples,
            values,
            p95,
            request,
            limit,
        }
    }

    fn history(&self) -> SignedDuration {
        match (self.samples.first(), self.samples.last()) {
            (Some(first), Some(last)) => SignedDuration::from_secs((last.0 - first.0) as i64),
            _ => SignedDuration::ZERO,
        }
    }

    fn format(&self, value: f64) -> String {
        if self.name == "cpu" {
            format_cpu(value)
        } else {
            format_memory(value)
        }
    }

    /// `cpu p95 170m of a 2 request (8 %)`: the p95 against `bound` (a request or a limit).
    fn describe(&self, what: &str, bound: Option<f64>) -> String {
        let bound = bound.unwrap_or_default();
        let (p95, formatted) = (self.format(self.p95), self.format(bound));
        format!(
            "{} p95 {p95} of a {formatted} {what} ({:.0} %)",
            self.name,
            100.0 * self.p95 / bound
        )
    }

    fn facts(&self) -> UsageFacts {
        let start = self.samples.first().map_or(0.0, |s| s.0);
        let step = (self.samples.len() / 60).max(1);
        let last = self.samples.len().saturating_sub(1);
        // Every step-th sample for the chart, and always the last one.
        let values = self
            .samples
            .iter()
            .zip(&self.values)
            .enumerate()
            .filter(|(i, _)| i % step == 0 || *i == last)
            .map(|(_, p)| p);
        UsageFacts {
            forecast_from: None,
            resource: self.name.to_owned(),
            p95: self.p95,
            max: self.values.iter().copied().fold(0.0, f64::max),
            request: self.request,
            limit: self.limit,
            chart: values.map(|((t, _), v)| (t - start, *v)).collect(),
        }
    }
}

/// Sustained high CPU: every sample of the window that ends now at or above the ratio of the
/// request, the samples covering most of the window. Samples older than the window are no
/// recent data, never evidence: stale usage neither fires nor keeps a finding alive. Returns the
/// explanation and the evidence line.
fn high_cpu(cpu: &Resource, options: &DetectOptions) -> Option<(String, String)> {
    let request = cpu.request?;
    let now = options.now.as_second() as f64;
    let window = options.high_cpu_for.as_secs() as f64;
    let in_window = |t: f64| t >= now - window && t <= now;
    let recent: Vec<(f64, f64)> = cpu
        .samples
        .iter()
        .zip(&cpu.values)
        .filter(|((t, _), _)| in_window(*t))
        .map(|((t, _), v)| (*t, *v))
        .collect();
    let (first, last) = (recent.first()?.0, recent.last()?.0);
    let covered = last - first >= window * 0.8 && recent.len() >= 3;
    let recent: Vec<f64> = recent.into_iter().map(|(_, v)| v).collect();
    let threshold = request * options.high_cpu_ratio;
    if !covered || recent.iter().any(|v| *v < threshold) {
        return None;
    }
    let average = recent.iter().sum::<f64>() / recent.len() as f64;
    let line = format!(
        "{} average over the last {} against a {} request ({:.0} %)",
        format_cpu(average),
        human(options.high_cpu_for),
        format_cpu(request),
        100.0 * average / request
    );
    let explanation = format!(
        "CPU has stayed at or above {:.0} % of the request for at least {}: {line}. Requests and \
         autoscaling targets are measured against the request, so the workload needs more replicas (or \
         a higher autoscaler ceiling) to keep latency down.",
        100.0 * options.high_cpu_ratio,
        human(options.high_cpu_for)
    );
    Some((explanation, line))
}

/// The p-th percentile (nearest rank) of `values`; 0 when there are none.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    // The rank's value alone: a selection, not a sort (two weeks of 2-minute points is 10,080).
    let mut scratch = values.to_vec();
    let rank = ((p * scratch.len() as f64).ceil() as usize).clamp(1, scratch.len());
    *scratch.select_nth_unstable_by(rank - 1, f64::total_cmp).1
}

/// How well the samples cover their span: their number and the gaps between them.
struct Coverage {
    samples: usize,
    gaps: usize,
    longest_gap: f64,
}

impl Coverage {
    /// The coverage of the series with the worst gaps.
    fn of(cpu: &[(f64, f64)], memory: &[(f64, f64)]) -> Self {
        [cpu, memory]
            .into_iter()
            .filter(|series| !series.is_empty())
            .map(Self::of_series)
            .max_by(|a, b| {
                (a.gaps, a.longest_gap)
                    .partial_cmp(&(b.gaps, b.longest_gap))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .unwrap_or(Self {
                samples: 0,
                gaps: 0,
                longest_gap: 0.0,
            })
    }

    /// Gaps are steps longer than three times the median step.
    fn of_series(series: &[(f64, f64)]) -> Self {
        // The median by selection, which reorders the steps; counting gaps needs no order.
        let mut steps: Vec<f64> = series.windows(2).map(|w| w[1].0 - w[0].0).collect();
        let median = match steps.len() {
            0 => 0.0,
            n => *steps.select_nth_unstable_by(n / 2, f64::total_cmp).1,
        };
        let gaps: Vec<f64> = steps.into_iter().filter(|s| *s > 3.0 * median).collect();
        Self {
            samples: series.len(),
            gaps: gaps.len(),
            longest_gap: gaps.iter().copied().fold(0.0, f64::max),
        }
    }

    /// Adds the coverage to a finding's evidence, and says so in the explanation when there are gaps.
    fn annotate(&self, mut finding: Finding) -> Finding {
        finding = finding.with("samples", self.samples);
        if self.gaps > 0 {
            let longest = human(SignedDuration::from_secs(self.longest_gap as i64));
            finding = finding.with("gaps", format!("{} (longest {longest})", self.gaps));
            finding.explanation.push_str(&format!(
                " The history has {} (the longest {longest}); percentiles are over the samples there are.",
                crate::model::counted(self.gaps as u64, "gap")
            ));
        }
        finding
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::*;
    use super::super::{DetectOptions, detect};
    use super::percentile;
    use crate::model::FindingCode;

    fn history(cpu: Vec<(f64, f64)>, memory: Vec<(f64, f64)>) -> serde_json::Value {
        json!({"apiVersion": "remediator.dev/v1alpha1", "kind": "UsageHistory", "containers": [
            {"namespace": "shop", "workload": {"kind": "Deployment", "name": "web"}, "container": "app",
             "cpu": cpu, "memory": memory}]})
    }

    fn run(
        resources: serde_json::Value,
        cpu: Vec<(f64, f64)>,
        memory: Vec<(f64, f64)>,
    ) -> Vec<crate::model::Finding> {
        let snap = snapshot(vec![deployment("web", 2, resources), history(cpu, memory)]);
        detect(&snap, &DetectOptions::at(now()))
    }

    /// `n` samples a minute apart, the last one at the snapshot's moment.
    fn minutes(n: usize, value: impl Fn(usize) -> f64) -> Vec<(f64, f64)> {
        minutes_until(now().as_second() as f64, n, value)
    }

    fn minutes_until(end: f64, n: usize, value: impl Fn(usize) -> f64) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| (end - 60.0 * (n - 1 - i) as f64, value(i)))
            .collect()
    }

    #[test]
    fn a_spike_in_the_history_is_evidence_on_the_finding_and_a_steady_history_has_none() {
        let resources = json!({"requests": {"cpu": "250m", "memory": "256Mi"}});
        let steady = |i: usize| 0.2 + 0.001 * (i % 3) as f64;
        let found = run(resources.clone(), minutes(30, steady), vec![]);
        assert!(
            found[0].fact("cpu anomalies").is_none(),
            "{:?}",
            found[0].evidence
        );
        let spiked = |i: usize| if i == 5 { 1.5 } else { steady(i) };
        let found = run(resources, minutes(30, spiked), vec![]);
        assert_eq!(found[0].code, FindingCode::HighCpu);
        let fact = found[0].fact("cpu anomalies").unwrap();
        assert!(
            fact.starts_with("1 point of 30 ") && fact.contains("1500m"),
            "{fact}"
        );
    }

    #[test]
    fn sustained_high_cpu_needs_the_whole_window() {
        let resources = json!({"requests": {"cpu": "250m", "memory": "256Mi"}});
        let found = run(
            resources.clone(),
            minutes(30, |i| if i >= 22 { 0.2 } else { 0.05 }),
            vec![],
        );
        assert_eq!(
            found.iter().map(|f| f.code).collect::<Vec<_>>(),
            [FindingCode::HighCpu]
        );
        assert!(
            found[0].fact("cpu").unwrap().starts_with("200m average"),
            "{:?}",
            found[0].evidence
        );
        // One dip below 70 % in the window: not sustained.
        let found = run(
            resources.clone(),
            minutes(30, |i| if i >= 22 && i != 28 { 0.2 } else { 0.05 }),
            vec![],
        );
        assert!(found.is_empty());
        // High, but for two minutes only.
        assert!(
            run(
                resources.clone(),
                minutes(30, |i| if i >= 28 { 0.2 } else { 0.05 }),
                vec![]
            )
            .is_empty()
        );
        // High until an hour ago, nothing since: stale data is no evidence.
        let an_hour_ago = now().as_second() as f64 - 3600.0;
        let stale = minutes_until(an_hour_ago, 30, |i| if i >= 22 { 0.2 } else { 0.05 });
        assert!(run(resources, stale, vec![]).is_empty());
    }

    #[test]
    fn over_provisioned_after_a_week_and_not_before() {
        let resources =
            json!({"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "4Gi"}});
        let week = |v: f64| {
            (0..(8 * 24))
                .map(|h| (1_700_000_000.0 + 3600.0 * h as f64, v))
                .collect::<Vec<_>>()
        };
        let found = run(resources.clone(), week(0.1), week(300.0 * 1048576.0));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].code, FindingCode::OverProvisioned);
        assert_eq!(
            found[0]
                .usage
                .iter()
                .map(|u| u.resource.as_str())
                .collect::<Vec<_>>(),
            ["cpu", "memory"]
        );
        // Three days: said, with how much history there is, and nothing to size from.
        let three_days: Vec<_> = week(0.1).into_iter().take(72).collect();
        let young = run(resources.clone(), three_days.clone(), three_days);
        assert_eq!(young.len(), 1, "{young:?}");
        assert_eq!(young[0].code, FindingCode::OverProvisioned);
        assert_eq!(
            young[0].fact("too little history"),
            Some("2d 23h of the 7d 0h needed")
        );
        assert!(young[0].usage.is_empty());
        assert!(young[0].explanation.contains("not right-sized until then"));
        // Under a day: nothing to say yet.
        let hours: Vec<_> = week(0.1).into_iter().take(12).collect();
        assert!(run(resources, hours.clone(), hours).is_empty());
    }

    #[test]
    fn gaps_are_measured_and_said() {
        let resources = json!({"requests": {"cpu": "2"}});
        let mut cpu: Vec<(f64, f64)> = (0..(8 * 24))
            .map(|h| (1_700_000_000.0 + 3600.0 * h as f64, 0.1))
            .collect();
        cpu.drain(50..60);
        let found = run(resources, cpu, vec![]);
        assert_eq!(found[0].fact("gaps"), Some("1 (longest 11h 0m)"));
        assert!(
            found[0]
                .explanation
                .contains("The history has 1 gap (the longest 11h 0m)"),
            "{}",
            found[0].explanation
        );
    }

    #[test]
    fn under_provisioned_near_the_limit() {
        let resources = json!({"requests": {"memory": "256Mi"}, "limits": {"memory": "512Mi"}});
        // One sample near the limit is no p95: said, with how many there are.
        let once = run(resources.clone(), vec![], minutes(1, |_| 480.0 * 1048576.0));
        assert_eq!(once[0].code, FindingCode::UnderProvisioned);
        assert_eq!(
            once[0].fact("too little history"),
            Some("1 sample of the 10 needed")
        );
        let found = run(resources, vec![], minutes(60, |_| 480.0 * 1048576.0));
        assert_eq!(found[0].code, FindingCode::UnderProvisioned);
        assert_eq!(found[0].fact("too little history"), None);
        assert!(
            found[0]
                .explanation
                .contains("memory p95 480Mi of a 512Mi limit (94 %)"),
            "{}",
            found[0].explanation
        );
    }

    #[test]
    fn memory_near_the_limit_yields_to_oom_kills_of_the_same_container() {
        let resources = json!({"requests": {"memory": "256Mi"}, "limits": {"memory": "512Mi"}});
        let mut history = history(vec![], minutes(60, |_| 480.0 * 1048576.0));
        history["containers"][0]["container"] = json!("app");
        let crashing = pod(
            "web-5d4f8-a",
            "web",
            crashed(5, "OOMKilled", 137, 30, Some("CrashLoopBackOff")),
        );
        let snap = snapshot(vec![deployment("web", 2, resources), history, crashing]);
        let codes: Vec<_> = detect(&snap, &DetectOptions::at(now()))
            .iter()
            .map(|f| f.code)
            .collect();
        assert_eq!(codes, [FindingCode::CrashLoopOom]);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.95), 95.0);
        assert_eq!(percentile(&[3.0], 0.95), 3.0);
        assert_eq!(percentile(&[], 0.95), 0.0);
    }
}
