//! Storage problems: claims that stay Pending, and volumes filling up (from usage history). Pure.

use super::DetectOptions;
use super::predict::{theil_sen, time_to};
use super::usage::percentile;
use crate::model::quantity::{format_storage, memory_bytes};
use crate::model::{Finding, FindingCode, ObjectRef, Severity, Snapshot, UsageFacts};

/// Findings on every PersistentVolumeClaim.
pub fn detect(snapshot: &Snapshot, options: &DetectOptions) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pvc in &snapshot.pvcs {
        let meta = &pvc.metadata;
        let phase = pvc.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase != Some("Pending") {
            continue;
        }
        let name = meta.name.as_deref().unwrap_or_default();
        let subject = ObjectRef::new(
            "v1",
            "PersistentVolumeClaim",
            meta.namespace.as_deref(),
            name,
        );
        let event = snapshot.events.iter().rev().find(|e| {
            e.involved_object.kind.as_deref() == Some("PersistentVolumeClaim")
                && e.involved_object.name.as_deref() == Some(name)
        });
        let message = event
            .and_then(|e| e.message.clone())
            .unwrap_or_else(|| "no event recorded".into());
        let class = pvc
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.clone())
            .unwrap_or_else(|| "(default)".into());
        let explanation = format!(
            "Claim `{name}` is not bound to a volume ({message}). Its pods cannot start. Check that storage \
             class `{class}` exists and can provision in the pod's zone; with WaitForFirstConsumer the claim \
             binds only once a pod using it is scheduled."
        );
        findings.push(
            Finding::new(
                FindingCode::PvcPending,
                Severity::Critical,
                subject,
                explanation,
            )
            .with("storage class", class)
            .with("event", message),
        );
    }
    for volume in &snapshot.usage.volumes {
        let used: Vec<f64> = volume.used.iter().map(|(_, v)| *v).collect();
        let p95 = percentile(&used, 0.95);
        let last = used.last().copied().unwrap_or(0.0);
        let ratio = last.max(p95) / volume.capacity_bytes;
        if volume.capacity_bytes <= 0.0 {
            continue;
        }
        // When the robust trend reaches the capacity within the horizon, the volume is filling
        // up whatever its level today.
        let now = options.now.as_second() as f64;
        let eta = theil_sen(&volume.used)
            .filter(|t| t.points >= 12)
            .and_then(|t| Some((t, time_to(&t, volume.capacity_bytes, now)?)))
            .filter(|(_, eta)| eta.seconds <= options.forecast_horizon.as_secs() as f64);
        if ratio < options.volume_full_ratio && eta.is_none() {
            continue;
        }
        let subject = ObjectRef::new(
            "v1",
            "PersistentVolumeClaim",
            Some(&volume.namespace),
            &volume.pvc,
        );
        let requested = snapshot
            .pvcs
            .iter()
            .find(|p| {
                p.metadata.name.as_deref() == Some(volume.pvc.as_str())
                    && p.metadata.namespace.as_deref() == Some(volume.namespace.as_str())
            })
            .and_then(|p| {
                p.spec
                    .as_ref()?
                    .resources
                    .as_ref()?
                    .requests
                    .as_ref()?
                    .get("storage")
                    .and_then(|q| memory_bytes(&q.0))
            });
        let days = |s: f64| {
            if s.is_finite() {
                format!("{:.1} days", s / 86_400.0)
            } else {
                "never".to_owned()
            }
        };
        let forecast = eta.map(|(trend, eta)| {
            let span = volume.used.last().map_or(0.0, |l| l.0) - volume.used.first().map_or(0.0, |f| f.0);
            format!(
                " At the rate it has grown over {:.1} days ({} a day, a Theil–Sen fit of {}; 95 % interval {} to {} a day), \
                 it is full in about {} (between {} and {}).",
                span / 86_400.0,
                format_storage(trend.slope * 86_400.0),
                crate::model::counted(trend.points as u64, "point"),
                format_storage(trend.slope_low * 86_400.0),
                format_storage(trend.slope_high * 86_400.0),
                days(eta.seconds),
                days(eta.earliest),
                days(eta.latest)
            )
        });
        let explanation = format!(
            "Volume `{}` is {:.0} % full ({} of {}).{} A full volume stops writes; expanding the claim \
             (its storage class must allow volume expansion) gives it room.",
            volume.pvc,
            100.0 * ratio,
            format_storage(last),
            format_storage(volume.capacity_bytes),
            forecast.clone().unwrap_or_default()
        );
        let start = volume.used.first().map_or(0.0, |s| s.0);
        let mut finding = Finding::new(
            FindingCode::PvcFillingUp,
            Severity::Warning,
            subject,
            explanation,
        )
        .with("used", format!("{:.0} %", 100.0 * ratio));
        if let Some((_, eta)) = eta {
            finding = finding
                .with("full in", days(eta.seconds))
                .with("method", "Theil–Sen trend of used bytes");
        }
        finding.usage = vec![UsageFacts {
            forecast_from: None,
            resource: "storage".into(),
            p95,
            max: used.iter().copied().fold(0.0, f64::max),
            request: requested.or(Some(volume.capacity_bytes)),
            limit: None,
            chart: volume.used.iter().map(|(t, v)| (t - start, *v)).collect(),
        }];
        findings.push(finding);
    }
    findings
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::*;
    use super::super::{DetectOptions, detect};
    use crate::model::FindingCode;

    #[test]
    fn pending_claims_and_full_volumes() {
        let pending = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "shop"}, "spec": {"storageClassName": "fast"},
            "status": {"phase": "Pending"}});
        let bound = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "logs", "namespace": "shop"},
            "spec": {"resources": {"requests": {"storage": "10Gi"}}}, "status": {"phase": "Bound"}});
        let usage = json!({"kind": "UsageHistory", "volumes": [
            {"namespace": "shop", "pvc": "logs", "capacityBytes": 10737418240.0, "used": [[0, 9e9], [60, 9.5e9]]}]});
        let findings = detect(
            &snapshot(vec![pending, bound, usage]),
            &DetectOptions::at(now()),
        );
        let codes: Vec<_> = findings
            .iter()
            .map(|f| (f.code, f.subject.name.as_str()))
            .collect();
        assert_eq!(
            codes,
            [
                (FindingCode::PvcPending, "data"),
                (FindingCode::PvcFillingUp, "logs")
            ]
        );
        assert_eq!(findings[1].usage[0].request, Some(10737418240.0));
    }

    #[test]
    fn a_volume_forecast_to_fill_within_the_horizon_is_filling_up_before_any_threshold() {
        let end = now().as_second() as f64;
        let capacity = 10737418240.0;
        // 20 % to 50 % over three days, hourly: full in about five more days.
        let used = |rate_days: f64| -> Vec<serde_json::Value> {
            (0..=72)
                .map(|h| {
                    let t = end - 3.0 * 86_400.0 + f64::from(h) * 3600.0;
                    json!([
                        t,
                        capacity * (0.5 - 0.3 * (72.0 - f64::from(h)) / 72.0 * 3.0 / rate_days)
                    ])
                })
                .collect()
        };
        let volume = |points: Vec<serde_json::Value>| {
            json!({"kind": "UsageHistory", "volumes": [
                {"namespace": "shop", "pvc": "logs", "capacityBytes": capacity, "used": points}]})
        };
        let found = detect(
            &snapshot(vec![volume(used(3.0))]),
            &DetectOptions::at(now()),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].code, FindingCode::PvcFillingUp);
        let days: f64 = found[0]
            .fact("full in")
            .unwrap()
            .trim_end_matches(" days")
            .parse()
            .unwrap();
        assert!((days - 5.0).abs() <= 0.5, "{days}");
        assert!(
            found[0].explanation.contains("Theil–Sen"),
            "{}",
            found[0].explanation
        );
        // Half as fast: full in about 11 days, beyond the 7-day horizon, and only 50 % full.
        let slow = detect(
            &snapshot(vec![volume(used(6.0))]),
            &DetectOptions::at(now()),
        );
        assert!(slow.is_empty(), "{slow:?}");
    }
}
