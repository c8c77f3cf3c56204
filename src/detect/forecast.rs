//! Forecasts from usage history, each stating its method, window, inputs and uncertainty:
//! `peak-forecast` (a workload's daily CPU profile, from seasonal medians, needs more replicas at
//! its peak than its autoscaler may run at its target utilisation, or, with no autoscaler, than it
//! runs at the high-CPU threshold) and `memory-growth` (a
//! container's working set rising steadily, by a Theil–Sen fit, reaches its limit within the
//! horizon). Anomalies (robust z-scores) are attached to them as evidence. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

use super::DetectOptions;
use super::predict::{
    anomalies, daily_profile, describe_anomalies, theil_sen, time_to, weekday_of, weekday_profile,
};
use super::usage::pod_specs;
use crate::model::quantity::{cpu_millis, format_cpu, format_memory, memory_bytes};
use crate::model::{ContainerUsage, Finding, FindingCode, ObjectRef, Severity, Snapshot};

/// Findings of both forecasts.
pub fn detect(snapshot: &Snapshot, options: &DetectOptions) -> Vec<Finding> {
    let mut findings = peaks(snapshot, options);
    findings.extend(growth(snapshot, options));
    findings
}

fn workload_ref(series: &ContainerUsage) -> ObjectRef {
    ObjectRef::new(
        "apps/v1",
        &series.workload.kind,
        Some(&series.namespace),
        &series.workload.name,
    )
}

/// The autoscaler of `workload`: its ceiling and its CPU utilisation target (percent).
fn autoscaler<'s>(
    snapshot: &'s Snapshot,
    workload: &ObjectRef,
) -> Option<(&'s HorizontalPodAutoscaler, i32, i32)> {
    snapshot.hpas.iter().find_map(|hpa| {
        let spec = &hpa.spec;
        let target = &spec.scale_target_ref;
        if hpa.metadata.namespace != workload.namespace
            || target.kind != workload.kind
            || target.name != workload.name
        {
            return None;
        }
        let utilisation = spec.metrics.as_ref()?.iter().find_map(|m| {
            let resource = m.resource.as_ref()?;
            (resource.name == "cpu").then_some(resource.target.average_utilization?)
        })?;
        Some((hpa, spec.max_replicas, utilisation))
    })
}

/// What serves a workload's peak: its autoscaler up to its ceiling, or, with none, the replicas
/// it runs.
enum Capacity {
    Autoscaler { name: String, ceiling: i32 },
    Fixed { replicas: i32 },
}

/// The replicas a Deployment or StatefulSet declares (one when unset); none for other kinds.
fn fixed_replicas(snapshot: &Snapshot, workload: &ObjectRef) -> Option<i32> {
    let matches = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        meta.namespace == workload.namespace && meta.name.as_deref() == Some(&workload.name)
    };
    match workload.kind.as_str() {
        "Deployment" => snapshot
            .deployments
            .iter()
            .find(|d| matches(&d.metadata))
            .map(|d| d.spec.replicas.unwrap_or(1)),
        "StatefulSet" => snapshot
            .stateful_sets
            .iter()
            .find(|d| matches(&d.metadata))
            .map(|d| d.spec.replicas.unwrap_or(1)),
        _ => None,
    }
}

fn peaks(snapshot: &Snapshot, options: &DetectOptions) -> Vec<Finding> {
    let mut by_workload: BTreeMap<String, Vec<&ContainerUsage>> = BTreeMap::new();
    for series in &snapshot.usage.containers {
        by_workload
            .entry(workload_ref(series).to_string())
            .or_default()
            .push(series);
    }
    let mut findings = Vec::new();
    let specs = pod_specs(snapshot);
    for all in by_workload.values() {
        let workload = workload_ref(all[0]);
        let (capacity, utilisation) = match autoscaler(snapshot, &workload) {
            Some((hpa, ceiling, utilisation)) => (
                Capacity::Autoscaler {
                    name: hpa.metadata.name.clone().unwrap_or_default(),
                    ceiling,
                },
                utilisation,
            ),
            None => match fixed_replicas(snapshot, &workload) {
                Some(replicas) if replicas > 0 => (
                    Capacity::Fixed { replicas },
                    (options.high_cpu_ratio * 100.0).round() as i32,
                ),
                _ => continue,
            },
        };
        let ceiling = match capacity {
            Capacity::Autoscaler { ceiling, .. } => ceiling,
            Capacity::Fixed { replicas } => replicas,
        };
        let Some(spec) = specs.get(&workload.to_string()) else {
            continue;
        };
        // HPA utilisation is against the pod's request: every container's.
        let request: f64 = spec
            .containers
            .iter()
            .filter_map(|c| {
                let q = c.resources.as_ref()?.requests.as_ref()?.get("cpu")?;
                cpu_millis(&q.0)
            })
            .sum::<f64>()
            / 1000.0;
        if request <= 0.0 {
            continue;
        }
        // The workload's total CPU at each step: the containers' averages times the pods.
        let mut products: Vec<(i64, f64)> = Vec::new();
        for series in all {
            // The pods at each CPU sample: the replicas series is sorted by time.
            let pods_at = |t: f64| {
                let at = series.replicas.partition_point(|p| p.0 < t);
                series.replicas.get(at).filter(|p| p.0 == t).map(|p| p.1)
            };
            products.extend(
                series
                    .cpu
                    .iter()
                    .filter_map(|(t, cores)| Some((*t as i64, cores * pods_at(*t)?))),
            );
        }
        products.sort_unstable_by_key(|p| p.0);
        let mut points: Vec<(f64, f64)> = Vec::with_capacity(products.len());
        for (t, v) in products {
            match points.last_mut() {
                Some(last) if last.0 == t as f64 => last.1 += v,
                _ => points.push((t as f64, v)),
            }
        }
        // The next 24 hours from now: the rest of today and the start of tomorrow. With two
        // weeks or more, each hour is read from its own weekday's profile (a Friday-afternoon
        // peak shows on Friday morning); with less, from the typical day.
        let daily = daily_profile(&points);
        if daily.days < options.peak_min_days {
            continue;
        }
        let (profile, method) = if daily.days >= 14.0 {
            match next_day(&points, options.now.as_second() as f64, daily.days) {
                Some(next) => (
                    next,
                    "seasonal medians of the next 24 hours, each hour by its own weekday",
                ),
                None => (daily, "seasonal medians by hour of day"),
            }
        } else {
            (daily, "seasonal medians by hour of day")
        };
        let Some((hour, peak)) = profile.peak() else {
            continue;
        };
        let per_replica = request * f64::from(utilisation) / 100.0;
        let needed = (peak / per_replica).ceil() as i64;
        if needed <= i64::from(ceiling) {
            continue;
        }
        let (low, high) = profile.spread[hour].unwrap_or((peak, peak));
        let served = match &capacity {
            Capacity::Autoscaler { name, ceiling } => format!(
                "At the autoscaler's {utilisation} % target of a {} request, that is {needed} replicas, and `{name}` may \
                 run at most {ceiling}",
                format_cpu(request * 1000.0)
            ),
            Capacity::Fixed { replicas } => format!(
                "At {utilisation} % of a {} request (the high-CPU threshold), that is {needed} replicas, and {workload} runs \
                 {replicas} with no autoscaler",
                format_cpu(request * 1000.0)
            ),
        };
        let explanation = format!(
            "Over {:.1} days, {workload} used {} of CPU in all at its daily peak ({hour:02}:00 UTC, the median of that hour; \
             it ranged {} to {} in 80 % of days). {served}: the peak will run hot or queue. Method: {method} over the \
             whole window; inputs: the CPU rate of every container times the pods at each step.",
            profile.days,
            format_cpu(peak * 1000.0),
            format_cpu(low * 1000.0),
            format_cpu(high * 1000.0),
        );
        let mut finding = Finding::new(
            FindingCode::PeakForecast,
            Severity::Warning,
            workload.clone(),
            explanation,
        )
        .with(
            "forecast peak",
            format!("{} at {hour:02}:00 UTC", format_cpu(peak * 1000.0)),
        )
        .with(
            "peak range (p10–p90)",
            format!(
                "{} – {}",
                format_cpu(low * 1000.0),
                format_cpu(high * 1000.0)
            ),
        )
        .with("replicas needed", needed)
        .with(
            match capacity {
                Capacity::Autoscaler { .. } => "ceiling",
                Capacity::Fixed { .. } => "replicas",
            },
            ceiling,
        )
        .with("method", method)
        .with(
            "window",
            format!(
                "{:.1} days, {}",
                profile.days,
                crate::model::counted(points.len() as u64, "point")
            ),
        );
        let odd = anomalies(&points);
        if let Some(last) = odd.last() {
            finding = finding.with(
                "anomalies",
                describe_anomalies(
                    odd.len(),
                    points.len(),
                    &format_cpu(last.1 * 1000.0),
                    last.2,
                ),
            );
        }
        // The chart: the last two days hour by hour, then the forecast day, against what the
        // ceiling serves.
        let end = points.last().map_or(0.0, |p| p.0);
        let start = (end - 2.0 * 86_400.0).max(points[0].0);
        let mut chart: Vec<(f64, f64)> = Vec::new();
        let mut hour_start = start;
        while hour_start < end {
            let values: Vec<f64> = points
                .iter()
                .filter(|p| p.0 >= hour_start && p.0 < hour_start + 3600.0)
                .map(|p| p.1)
                .collect();
            if !values.is_empty() {
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                chart.push((hour_start - start, mean * 1000.0));
            }
            hour_start += 3600.0;
        }
        let measured = hour_start - start;
        for h in 0..24 {
            let at = end + f64::from(h) * 3600.0;
            let hour = ((at.rem_euclid(86_400.0)) / 3600.0) as usize;
            if let Some(v) = profile.hours[hour.min(23)] {
                chart.push((measured + f64::from(h) * 3600.0, v * 1000.0));
            }
        }
        finding.usage = vec![crate::model::UsageFacts {
            resource: "cpu".into(),
            p95: peak * 1000.0,
            max: peak * 1000.0,
            request: Some(f64::from(ceiling) * per_replica * 1000.0),
            limit: None,
            forecast_from: Some(measured),
            chart,
        }];
        finding.owner = Some(workload);
        findings.push(finding);
    }
    findings
}

fn growth(snapshot: &Snapshot, options: &DetectOptions) -> Vec<Finding> {
    let now = options.now.as_second() as f64;
    let horizon = options.forecast_horizon.as_secs() as f64;
    let mut findings = Vec::new();
    let specs = pod_specs(snapshot);
    for series in &snapshot.usage.containers {
        let Some((first, last)) = series.memory.first().zip(series.memory.last()) else {
            continue;
        };
        let span = last.0 - first.0;
        if span < 86_400.0 || series.memory.len() < 24 {
            continue;
        }
        let workload = workload_ref(series);
        let Some(spec) = specs.get(&workload.to_string()) else {
            continue;
        };
        let limit = spec
            .containers
            .iter()
            .find(|c| c.name == series.container)
            .and_then(|c| c.resources.as_ref()?.limits.as_ref()?.get("memory"))
            .and_then(|q| memory_bytes(&q.0));
        let Some(limit) = limit else {
            continue;
        };
        // Cheap first: the last tenth's median a tenth above the first tenth's, as a steady
        // rise must be; only then the fit.
        let tenth = (series.memory.len() / 10).max(1);
        let median_of = |points: &[(f64, f64)]| {
            let values: Vec<f64> = points.iter().map(|p| p.1).collect();
            super::usage::percentile(&values, 0.5)
        };
        let (early, late) = (
            median_of(&series.memory[..tenth]),
            median_of(&series.memory[series.memory.len() - tenth..]),
        );
        if late < early * 1.1 {
            continue;
        }
        let Some(trend) = theil_sen(&series.memory) else {
            continue;
        };
        // Steady: the whole interval rises, and by a tenth of the start over the window.
        if trend.slope_low <= 0.0 || trend.slope * span < 0.1 * trend.at(first.0).max(1.0) {
            continue;
        }
        let Some(eta) = time_to(&trend, limit, now) else {
            continue;
        };
        if eta.seconds > horizon {
            continue;
        }
        let days = |s: f64| {
            if s.is_finite() {
                format!("{:.1} days", s / 86_400.0)
            } else {
                "never".to_owned()
            }
        };
        let explanation = format!(
            "The working set of `{}` in {workload} has grown {} a day over {:.1} days (Theil–Sen slope, 95 % interval {} to {} a day), \
             across restarts, and reaches its {} limit in about {} (between {} and {}). Growth that does not level off is a suspected \
             leak: a higher limit only moves the OOM kill later.",
            series.container,
            format_memory(trend.slope * 86_400.0),
            span / 86_400.0,
            format_memory(trend.slope_low * 86_400.0),
            format_memory(trend.slope_high * 86_400.0),
            format_memory(limit),
            days(eta.seconds),
            days(eta.earliest),
            days(eta.latest),
        );
        let mut finding = Finding::new(
            FindingCode::MemoryGrowth,
            Severity::Warning,
            workload.clone(),
            explanation,
        )
        .with(
            "growth",
            format!("{} a day", format_memory(trend.slope * 86_400.0)),
        )
        .with("time to limit", days(eta.seconds))
        .with("method", "Theil–Sen trend of the working set")
        .with(
            "window",
            format!(
                "{:.1} days, {}",
                span / 86_400.0,
                crate::model::counted(series.memory.len() as u64, "point")
            ),
        );
        finding.owner = Some(workload);
        finding.container = Some(series.container.clone());
        findings.push(finding);
    }
    findings
}

/// The profile of the 24 hours from the hour of `now`: each hour of the day as the profile of
/// the weekday it falls on next has it. `None` when neither weekday has a point.
fn next_day(
    points: &[(f64, f64)],
    now: f64,
    days: f64,
) -> Option<crate::detect::predict::DailyProfile> {
    let this_hour = (now / 3_600.0).floor() * 3_600.0;
    let mut weekdays: [Option<Option<crate::detect::predict::DailyProfile>>; 7] =
        Default::default();
    let mut next = crate::detect::predict::DailyProfile {
        hours: [None; 24],
        spread: [None; 24],
        days,
    };
    let mut any = false;
    for k in 0..24 {
        let at = this_hour + f64::from(k) * 3_600.0;
        let hour = (at.rem_euclid(86_400.0) / 3_600.0) as usize;
        let weekday = weekday_of(at);
        let profile = weekdays[weekday].get_or_insert_with(|| weekday_profile(points, weekday));
        if let Some(profile) = profile {
            next.hours[hour] = profile.hours[hour];
            next.spread[hour] = profile.spread[hour];
            any |= profile.hours[hour].is_some();
        }
    }
    any.then_some(next)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::fixtures::*;
    use super::super::{DetectOptions, detect};
    use crate::model::FindingCode;

    const DAY: f64 = 86_400.0;

    fn web(cpu: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "web", "image": "web:1", "resources": {
                        "requests": {"cpu": cpu, "memory": "256Mi"}, "limits": {"memory": "1Gi"}}}]}}}})
    }

    fn hpa(max: i32) -> Value {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "maxReplicas": max, "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70}}}]}})
    }

    /// A week to `now` at 10-minute steps of (cpu per pod, memory per pod) on 3 pods.
    fn usage(value: impl Fn(f64) -> (f64, f64)) -> Value {
        usage_over(7, now().as_second() as f64, value)
    }

    /// `days` to `end` at 10-minute steps of (cpu per pod, memory per pod) on 3 pods.
    fn usage_over(days: u32, end: f64, value: impl Fn(f64) -> (f64, f64)) -> Value {
        let times: Vec<f64> = (0..days * 144)
            .map(|i| end - f64::from(days) * DAY + f64::from(i) * 600.0)
            .collect();
        let cpu: Vec<Value> = times.iter().map(|t| json!([t, value(*t).0])).collect();
        let memory: Vec<Value> = times.iter().map(|t| json!([t, value(*t).1])).collect();
        let replicas: Vec<Value> = times.iter().map(|t| json!([t, 3])).collect();
        json!({"kind": "UsageHistory", "containers": [{"namespace": "shop",
            "workload": {"kind": "Deployment", "name": "web"}, "container": "web",
            "cpu": cpu, "memory": memory, "replicas": replicas}]})
    }

    fn codes(objects: Vec<Value>) -> Vec<(FindingCode, String)> {
        detect(&snapshot(objects), &DetectOptions::at(now()))
            .into_iter()
            .filter(|f| {
                matches!(
                    f.code,
                    FindingCode::PeakForecast | FindingCode::MemoryGrowth
                )
            })
            .map(|f| (f.code, f.explanation))
            .collect()
    }

    #[test]
    fn a_daily_peak_beyond_the_autoscaler_s_ceiling_is_forecast_with_its_numbers() {
        // Three pods at 1.5 cores each at 15:00 UTC, 0.2 at night: 4.5 cores at the peak, 13
        // replicas of 500m at 70 %.
        let daily = |t: f64| {
            let phase = (t.rem_euclid(DAY) / DAY - 0.375) * std::f64::consts::TAU;
            (0.85 + 0.65 * phase.sin(), 300.0 * 1048576.0)
        };
        let found = codes(vec![web("500m"), hpa(4), usage(daily)]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, FindingCode::PeakForecast);
        for wanted in ["15:00 UTC", "13 replicas", "at most 4", "seasonal medians"] {
            assert!(found[0].1.contains(wanted), "{wanted:?} in {}", found[0].1);
        }
        // A ceiling that serves the peak: nothing.
        assert!(codes(vec![web("500m"), hpa(13), usage(daily)]).is_empty());
        // No autoscaler: the three replicas it runs, at the high-CPU threshold (70 %), are what
        // serve the peak.
        let fixed = codes(vec![web("500m"), usage(daily)]);
        assert_eq!(fixed.len(), 1, "{fixed:?}");
        for wanted in ["13 replicas", "runs 3 with no autoscaler"] {
            assert!(fixed[0].1.contains(wanted), "{wanted:?} in {}", fixed[0].1);
        }
        // Replicas that serve it: nothing.
        let mut wide = web("500m");
        wide["spec"]["replicas"] = 13.into();
        assert!(codes(vec![wide, usage(daily)]).is_empty());
    }

    #[test]
    fn a_friday_morning_run_forecasts_that_afternoon_s_peak() {
        // Three weeks: 4.5 cores in all from 13:00 to 16:00 UTC on Fridays, 0.6 otherwise.
        let friday_peak = |t: f64| {
            let hour = t.rem_euclid(DAY) / 3_600.0;
            // Weekday 1 is Friday (1970-01-01 was a Thursday).
            let friday = crate::detect::predict::weekday_of(t) == 1;
            let cores = if friday && (13.0..16.0).contains(&hour) {
                1.5
            } else {
                0.2
            };
            (cores, 300.0 * 1048576.0)
        };
        // Friday 2026-11-27, 09:00 UTC.
        let friday_morning = k8s_openapi::jiff::Timestamp::from_second(1_795_770_000).unwrap();
        assert_eq!(crate::detect::predict::weekday_of(1_795_770_000.0), 1);
        let objects = vec![
            web("500m"),
            hpa(4),
            usage_over(21, friday_morning.as_second() as f64, friday_peak),
        ];
        let found: Vec<_> = detect(
            &snapshot(objects.clone()),
            &DetectOptions::at(friday_morning),
        )
        .into_iter()
        .filter(|f| f.code == FindingCode::PeakForecast)
        .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .explanation
                .contains("4500m of CPU in all at its daily peak"),
            "{}",
            found[0].explanation
        );
        // On Saturday morning the next 24 hours hold no peak.
        let saturday = k8s_openapi::jiff::Timestamp::from_second(1_795_770_000 + 86_400).unwrap();
        let later = vec![
            web("500m"),
            hpa(4),
            usage_over(21, saturday.as_second() as f64, friday_peak),
        ];
        assert!(
            detect(&snapshot(later), &DetectOptions::at(saturday))
                .iter()
                .all(|f| f.code != FindingCode::PeakForecast)
        );
    }

    #[test]
    fn memory_growing_to_its_limit_is_a_suspected_leak_and_flat_memory_is_not() {
        let end = now().as_second() as f64;
        // 300 MiB a week ago, growing 100 MiB a day, with restarts' dips: 1 GiB in about 3 days.
        let growing = |t: f64| {
            let days = (t - (end - 7.0 * DAY)) / DAY;
            let dip = if (t / 3600.0) as i64 % 37 == 0 {
                0.5
            } else {
                1.0
            };
            (0.1, (300.0 + 100.0 * days) * 1048576.0 * dip)
        };
        let found = codes(vec![web("500m"), usage(growing)]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, FindingCode::MemoryGrowth);
        assert!(found[0].1.contains("suspected leak"), "{}", found[0].1);
        assert!(
            found[0].1.contains("100 MiB a day") || found[0].1.contains("100Mi"),
            "{}",
            found[0].1
        );
        assert!(codes(vec![web("500m"), usage(|_| (0.1, 300.0 * 1048576.0))]).is_empty());
    }
}
