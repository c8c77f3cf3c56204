//! Sustained high CPU: raise the ceiling of the autoscaler that manages the workload when it is
//! at its ceiling, or scale the replicas of a workload no autoscaler manages. A workload with an
//! autoscaler never gets a replica edit: the autoscaler owns that field. Pure.

use serde_json::Value;

use super::{Context, Declared, Draft, RemedyResult, Stop};
use crate::manifests::path::FieldPath;
use crate::model::{Action, Finding, ObjectRef};

pub(super) fn high_cpu(finding: &Finding, ctx: &Context) -> RemedyResult {
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
fn autoscaler(ctx: &Context, declared: &Declared, target: &ObjectRef) -> Option<ObjectRef> {
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
/// raised to what the forecast needs (the finding's `replicas needed`), before the peak.
pub(super) fn ahead_of_peak(finding: &Finding, ctx: &Context) -> RemedyResult {
    let target = finding.target().clone();
    let declared = ctx.declared(&target)?;
    let needed: i64 = finding
        .fact("replicas needed")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Stop::Diagnosis("the forecast names no replica count".into()))?;
    let Some(hpa) = autoscaler(ctx, &declared, &target) else {
        return Err(Stop::Diagnosis(format!(
            "{target} has no autoscaler declared beside it; size its replicas for the forecast peak ({needed}) by hand, or add one"
        )));
    };
    let declared = ctx.declared(&hpa)?;
    let (path, location, doc, max) = ceiling(ctx, &declared, &hpa)?;
    if needed <= max {
        return Err(Stop::Diagnosis(format!(
            "{hpa} may already run {max} replicas, enough for the forecast {needed}"
        )));
    }
    let mut draft = Draft::new(
        finding,
        Action::TuneHpa,
        hpa.clone(),
        Some(&declared),
        format!(
            "Raise the ceiling of {hpa} (which scales {target}) from {max} to {needed} replicas ahead of the forecast daily peak"
        ),
        format!(
            "Revert the commit: the ceiling goes back to {max}, and the peak is served by at most {max} replicas."
        ),
    );
    draft.set(&location, &doc, path, Value::from(needed));
    Ok(draft.finish())
}

/// Where an autoscaler's `maxReplicas` is set for its unit, and its value there.
fn ceiling(
    ctx: &Context,
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

fn tune_hpa(finding: &Finding, ctx: &Context, target: &ObjectRef, hpa: &ObjectRef) -> RemedyResult {
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
    let new = ((max as f64) * 1.5).ceil().max((max + 1) as f64) as i64;
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

fn scale(
    finding: &Finding,
    ctx: &Context,
    target: &ObjectRef,
    declared: &Declared,
) -> RemedyResult {
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
    let (location, doc, path, current) = match overlay {
        Some(found) => found,
        None => {
            let path: FieldPath = "spec.replicas".parse().expect("a valid path");
            let (location, doc) = ctx.field_location(declared, &path);
            let current = path.get(&doc).and_then(Value::as_i64).unwrap_or(1);
            (location, doc, path, current)
        }
    };
    Ok(scaled(
        finding,
        target,
        declared,
        (&location, &doc, path, current),
    ))
}

/// A workload a Helm release makes: its `replicaCount`, unless an autoscaler (made by the chart)
/// owns the replicas.
fn scale_release(
    finding: &Finding,
    ctx: &Context,
    target: &ObjectRef,
    declared: &Declared,
    values: &super::helm::HelmValues,
) -> RemedyResult {
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
    Ok(scaled(
        finding,
        target,
        declared,
        (&location, &doc, path, current),
    ))
}

/// The remediation that scales `target` from `current` replicas by half again (at least one
/// more), at the location, in the document and at the path given.
fn scaled(
    finding: &Finding,
    target: &ObjectRef,
    declared: &Declared,
    (location, doc, path, current): (&crate::manifests::Location, &Value, FieldPath, i64),
) -> crate::model::Remediation {
    let new = ((current as f64) * 1.5).ceil().max((current + 1) as f64) as i64;
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
    use super::super::{Context, Outcome, remediate};
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
        let ctx = Context {
            environment: Some("prod"),
            actions_dir: "r".into(),
            ..context(&index, &config, &snapshot)
        };
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
        let ctx = Context {
            snapshot: &snapshot,
            ..ctx
        };
        assert!(matches!(
            remediate(&high_cpu("Deployment", "web"), &ctx),
            Outcome::Diagnosis { .. }
        ));
    }

    #[test]
    fn replicas_set_by_the_overlay_are_scaled_there() {
        let (index, config) = example();
        let snapshot = crate::model::Snapshot::default();
        let ctx = Context {
            environment: Some("prod"),
            actions_dir: "r".into(),
            ..context(&index, &config, &snapshot)
        };
        let r = proposal(remediate(&high_cpu("Deployment", "api"), &ctx));
        assert_eq!(
            edits(&r),
            ["clusters/prod/kustomization.yaml: replicas[name=api].count = 5"]
        );
        // In dev the overlay sets 1: 1 → 2.
        let ctx = Context {
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
}
