//! Sustained high CPU: raise the ceiling of the autoscaler that manages the workload when it is
//! at its ceiling, or scale the replicas of a workload no autoscaler manages. A forecast daily
//! peak: raise the ceiling, or the replicas of a workload with no autoscaler, to what the peak
//! needs. A workload with an autoscaler never gets a replica edit: the autoscaler owns that
//! field. Pure.

use serde_json::Value;

use super::{Declared, Draft, RemedyResult, Situation, Stop};
use crate::manifests::path::FieldPath;
use crate::model::{Action, Finding, ObjectRef};

pub(super) fn high_cpu(finding: &Finding, ctx: &Situation) -> RemedyResult {
    let target = finding.target().clone();
    let declared = ctx.declared(&target)?;
    if let Some(values) = &declared.helm {
        return scale_release(finding, ctx, &target, &declared, values);
    }
    match autoscaler(ctx, &declared, &target) {
        Some(hpa) => tune_hpa(finding, ctx, &target, &hpa),
        None => scale(finding, ctx, &target, &declared),
    }
}

/// The autoscaler declared beside the workload (same unit) that targets it.
fn autoscaler(ctx: &Situation, declared: &Declared, target: &ObjectRef) -> Option<ObjectRef> {
    ctx.index
        .objects
        .iter()
        .filter(|o| o.unit == declared.object.unit && o.id.kind == "HorizontalPodAutoscaler")
        .find(|o| {
            let scale_target = &ctx.index.declaration(o).value["spec"]["scaleTargetRef"];
            scale_target["kind"] == target.kind.as_str()
                && scale_target["name"] == target.name.as_str()
        })
        .map(|o| o.id.clone())
}

/// The forecast daily peak needs more replicas than the autoscaler's ceiling: the ceiling is
/// raised to what the forecast needs (the finding's `replicas needed`), before the peak. With
/// no autoscaler, the replicas are: the floor the peak needs, set ahead of it.
pub(super) fn ahead_of_peak(finding: &Finding, ctx: &Situation) -> RemedyResult {
    let target = finding.target().clone();
    let declared = ctx.declared(&target)?;
    let needed: i64 = finding
        .fact("replicas needed")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Stop::Diagnosis("the forecast names no replica count".into()))?;
    let hpa = match &declared.helm {
        Some(_) => None,
        None => autoscaler(ctx, &declared, &target),
    };
    let (action, object, declared, (location, doc, path, current), summary, rollback) = match hpa {
        None => {
            let field = match &declared.helm {
                Some(values) => release_replicas(ctx, &target, &declared, values)?,
                None => replicas_field(ctx, &target, &declared),
            };
            let current = field.3;
            (
                Action::ScaleReplicas,
                target.clone(),
                declared,
                field,
                format!("Scale {target} from {current} to {needed} replicas"),
                format!(
                    "{target} goes back to {current} replicas, and the peak is served by {current}."
                ),
            )
        }
        Some(hpa) => {
            let declared = ctx.declared(&hpa)?;
            let (path, location, doc, max) = ceiling(ctx, &declared, &hpa)?;
            (
                Action::TuneHpa,
                hpa.clone(),
                declared,
                (location, doc, path, max),
                format!(
                    "Raise the ceiling of {hpa} (which scales {target}) from {max} to {needed} replicas"
                ),
                format!(
                    "the ceiling goes back to {max}, and the peak is served by at most {max} replicas."
                ),
            )
        }
    };
    if needed <= current {
        return Err(Stop::Diagnosis(format!(
            "{object} may already run {current} replicas, enough for the forecast {needed}"
        )));
    }
    let mut draft = Draft::new(
        finding,
        action,
        object,
        Some(&declared),
        format!("{summary} ahead of the forecast daily peak"),
        format!("Revert the commit: {rollback}"),
    );
    draft.set(&location, &doc, path, Value::from(needed));
    Ok(draft.finish())
}

/// Where an autoscaler's `maxReplicas` is set for its unit, and its value there.
fn ceiling(
    ctx: &Situation,
    declared: &Declared,
    hpa: &ObjectRef,
) -> Result<(FieldPath, crate::manifests::Location, Value, i64), Stop> {
    let path: FieldPath = "spec.maxReplicas".parse().expect("a valid path");
    let (location, doc) = ctx.field_location(declared, &path);
    let max = path
        .get(&doc)
        .and_then(Value::as_i64)
        .ok_or_else(|| Stop::Diagnosis(format!("{hpa} has no maxReplicas")))?;
    Ok((path, location, doc, max))
}

fn tune_hpa(
    finding: &Finding,
    ctx: &Situation,
    target: &ObjectRef,
    hpa: &ObjectRef,
) -> RemedyResult {
    let declared = ctx.declared(hpa)?;
    let (path, location, doc, max) = ceiling(ctx, &declared, hpa)?;
    let live = ctx.snapshot.hpas.iter().find(|h| {
        h.metadata.name.as_deref() == Some(hpa.name.as_str())
            && h.metadata.namespace == hpa.namespace
    });
    let current = live
        .and_then(|h| h.status.as_ref())
        .and_then(|s| s.current_replicas);
    if let Some(current) = current.filter(|c| i64::from(*c) < max) {
        return Err(Stop::Diagnosis(format!(
            "{hpa} runs {current} of at most {max} replicas: it still has room to scale, so its ceiling is not the limit"
        )));
    }
    let new = grown(finding, max);
    let mut draft = Draft::new(
        finding,
        Action::TuneHpa,
        hpa.clone(),
        Some(&declared),
        format!("Raise the ceiling of {hpa} (which scales {target}) from {max} to {new} replicas"),
        format!(
            "Revert the commit: the ceiling goes back to {max}; the autoscaler scales down within its policy."
        ),
    );
    draft.set(&location, &doc, path, Value::from(new));
    Ok(draft.finish())
}

/// Scales a workload no autoscaler manages by half again.
fn scale(
    finding: &Finding,
    ctx: &Situation,
    target: &ObjectRef,
    declared: &Declared,
) -> RemedyResult {
    let (location, doc, path, current) = replicas_field(ctx, target, declared);
    Ok(scaled(
        finding,
        target,
        declared,
        (&location, &doc, path, current),
    ))
}

/// Where a workload's replicas are set for its unit (a kustomization's `replicas` entry, else
/// the object's `spec.replicas`), the document and the count there (one when unset).
fn replicas_field(
    ctx: &Situation,
    target: &ObjectRef,
    declared: &Declared,
) -> (crate::manifests::Location, Value, FieldPath, i64) {
    let overlay = declared.kustomization.and_then(|k| {
        let entry = k
            .kustomization
            .replicas
            .iter()
            .find(|r| r.name == target.name)?;
        let path: FieldPath = format!("replicas[name={}].count", target.name)
            .parse()
            .ok()?;
        let doc = serde_json::to_value(&k.kustomization).ok()?;
        Some((k.location.clone(), doc, path, entry.count))
    });
    match overlay {
        Some(found) => found,
        None => {
            let path: FieldPath = "spec.replicas".parse().expect("a valid path");
            let (location, doc) = ctx.field_location(declared, &path);
            let current = path.get(&doc).and_then(Value::as_i64).unwrap_or(1);
            (location, doc, path, current)
        }
    }
}

/// A workload a Helm release makes: its `replicaCount`, unless an autoscaler (made by the chart)
/// owns the replicas.
fn scale_release(
    finding: &Finding,
    ctx: &Situation,
    target: &ObjectRef,
    declared: &Declared,
    values: &super::helm::HelmValues,
) -> RemedyResult {
    let (location, doc, path, current) = release_replicas(ctx, target, declared, values)?;
    Ok(scaled(
        finding,
        target,
        declared,
        (&location, &doc, path, current),
    ))
}

/// Where a Helm release sets a workload's replicas (`replicaCount`), unless an autoscaler the
/// chart makes owns them.
fn release_replicas(
    ctx: &Situation,
    target: &ObjectRef,
    declared: &Declared,
    values: &super::helm::HelmValues,
) -> Result<(crate::manifests::Location, Value, FieldPath, i64), Stop> {
    let autoscaled = ctx.snapshot.hpas.iter().any(|h| {
        h.metadata.namespace == target.namespace
            && h.spec.scale_target_ref.kind == target.kind
            && h.spec.scale_target_ref.name == target.name
    });
    if autoscaled {
        return Err(Stop::Diagnosis(format!(
            "an autoscaler made by {} owns the replicas of {target}; raise its ceiling in the release's values (commonly `autoscaling.maxReplicas`)",
            values.release
        )));
    }
    let path = values.path("replicaCount").map_err(Stop::Diagnosis)?;
    let (location, doc) = ctx.field_location(declared, &path);
    let live = ctx.snapshot.deployments.iter().find(|d| {
        d.metadata.name.as_deref() == Some(target.name.as_str())
            && d.metadata.namespace == target.namespace
    });
    let current = path
        .get(&doc)
        .and_then(Value::as_i64)
        .or_else(|| live.and_then(|d| d.spec.replicas).map(i64::from))
        .unwrap_or(1);
    Ok((location, doc, path, current))
}

/// Half again of `count` (at least one more), or what the daily peak forecast beside the finding
/// needs when that is more.
fn grown(finding: &Finding, count: i64) -> i64 {
    let half_again = ((count as f64) * 1.5).ceil().max((count + 1) as f64) as i64;
    let needed = finding
        .fact("replicas needed")
        .and_then(|n| n.parse::<i64>().ok())
        .unwrap_or(0);
    half_again.max(needed)
}

/// The remediation that scales `target` from `current` replicas by half again (at least one
/// more, or what the forecast peak needs), at the location, in the document and at the path
/// given.
fn scaled(
    finding: &Finding,
    target: &ObjectRef,
    declared: &Declared,
    (location, doc, path, current): (&crate::manifests::Location, &Value, FieldPath, i64),
) -> super::Remediation {
    let new = grown(finding, current);
    let mut draft = Draft::new(
        finding,
        Action::ScaleReplicas,
        target.clone(),
        Some(declared),
        format!("Scale {target} from {current} to {new} replicas"),
        format!("Revert the commit: {target} goes back to {current} replicas."),
    );
    draft.set(location, doc, path, Value::from(new));
    draft.finish()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::*;
    use super::super::{Remedy, Situation, remediate};
    use crate::detect::fixtures;
    use crate::model::{Finding, FindingCode, ObjectRef, Severity};

    fn high_cpu(kind: &str, name: &str) -> Finding {
        let target = ObjectRef::new("apps/v1", kind, Some("shop"), name);
        let mut f = Finding::new(
            FindingCode::HighCpu,
            Severity::Warning,
            target.clone(),
            "x".into(),
        );
        f.owner = Some(target);
        f.container = Some(name.into());
        f
    }

    fn hpa_status(current: i32) -> serde_json::Value {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 6},
            "status": {"currentReplicas": current, "desiredReplicas": current}})
    }

    #[test]
    fn an_autoscaled_workload_gets_a_higher_ceiling_not_a_replica_edit() {
        let (index, config) = example();
        let snapshot = fixtures::snapshot(vec![hpa_status(6)]);
        let ctx = prod(&index, &config, &snapshot);
        let r = proposal(remediate(&high_cpu("Deployment", "web"), &ctx));
        assert_eq!(
            edits(&r),
            ["clusters/prod/patches/horizontalpodautoscaler-web-patch.yaml: spec.maxReplicas = 9"]
        );
        assert!(
            r.fields
                .iter()
                .all(|f| !f.path.contains("replicas[") && f.path != "spec.replicas")
        );
        // Below its ceiling, the autoscaler has room: no change.
        let snapshot = fixtures::snapshot(vec![hpa_status(4)]);
        let ctx = Situation {
            snapshot: &snapshot,
            ..ctx
        };
        assert!(matches!(
            remediate(&high_cpu("Deployment", "web"), &ctx),
            Remedy::Diagnosis { .. }
        ));
    }

    #[test]
    fn replicas_set_by_the_overlay_are_scaled_there() {
        let (index, config) = example();
        let snapshot = crate::model::Snapshot::default();
        let ctx = prod(&index, &config, &snapshot);
        let r = proposal(remediate(&high_cpu("Deployment", "api"), &ctx));
        assert_eq!(
            edits(&r),
            ["clusters/prod/kustomization.yaml: replicas[name=api].count = 5"]
        );
        // In dev the overlay sets 1: 1 → 2.
        let ctx = Situation {
            environment: Some("dev"),
            ..ctx
        };
        let mut f = high_cpu("Deployment", "api");
        f.owner = Some(ObjectRef::new(
            "apps/v1",
            "Deployment",
            Some("shop-dev"),
            "api",
        ));
        assert_eq!(
            edits(&proposal(remediate(&f, &ctx))),
            ["clusters/dev/kustomization.yaml: replicas[name=api].count = 2"]
        );
    }

    fn peak(name: &str, needed: i64) -> Finding {
        let mut f = high_cpu("Deployment", name);
        f.code = FindingCode::PeakForecast;
        f.with("replicas needed", needed)
    }

    #[test]
    fn a_forecast_peak_raises_the_ceiling_or_the_replicas_to_what_it_needs() {
        let (index, config) = example();
        let snapshot = crate::model::Snapshot::default();
        let ctx = prod(&index, &config, &snapshot);
        // An autoscaler: its ceiling, to exactly what the peak needs.
        let r = proposal(remediate(&peak("web", 11), &ctx));
        assert_eq!(
            edits(&r),
            ["clusters/prod/patches/horizontalpodautoscaler-web-patch.yaml: spec.maxReplicas = 11"]
        );
        // None: the replicas the overlay sets (3), to the floor the peak needs.
        let r = proposal(remediate(&peak("api", 7), &ctx));
        assert_eq!(
            edits(&r),
            ["clusters/prod/kustomization.yaml: replicas[name=api].count = 7"]
        );
        assert!(
            r.summary.contains("ahead of the forecast daily peak"),
            "{}",
            r.summary
        );
        // Replicas that already serve it: a diagnosis, no edit.
        assert!(matches!(
            remediate(&peak("api", 3), &ctx),
            Remedy::Diagnosis { .. }
        ));
    }
}
