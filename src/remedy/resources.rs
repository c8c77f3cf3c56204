//! Container resources: raise the memory limit after OOM kills (sized from usage when known,
//! else by a bounded factor), and right-size requests and limits to the p95 plus 30 % (with a
//! bump for memory when the container has been OOM-killed). Pure.

use serde_json::Value;

use super::{Declared, Draft, RemedyResult, Situation, Stop, container_path, helm};
use crate::model::quantity::{cpu_millis, format_cpu, format_memory, memory_bytes};
use crate::model::{Action, Finding, FindingCode, UsageFacts};

/// Headroom over the p95 that sizing adds.
const HEADROOM: f64 = 1.3;
/// Factor on the current limit after an OOM kill when usage is unknown.
const OOM_FACTOR: f64 = 1.5;
/// Extra memory for containers that have been OOM-killed.
const OOM_BUMP: f64 = 1.25;

pub(super) fn raise_memory(finding: &Finding, ctx: &Situation) -> RemedyResult {
    let target = finding.target().clone();
    let container = finding
        .container
        .clone()
        .ok_or_else(|| Stop::Diagnosis("the finding names no container".into()))?;
    let declared = ctx.declared(&target)?;
    let limit_path = path(&declared, &container, "resources.limits.memory")?;
    ctx.known(&declared, &limit_path)?;
    let (location, doc) = ctx.field_location(&declared, &limit_path);
    let Some(current) = limit_path
        .get(&doc)
        .and_then(quantity)
        .and_then(|q| memory_bytes(&q))
    else {
        return first_limit(finding, ctx, &declared, &container);
    };
    // The cluster is the truth for what runs: a raise starts from the live limit. When the
    // repository says otherwise (a merge the gate refused, or one not applied yet), the raise
    // never compounds on that unapplied value, and the title names the gap.
    let live = live_memory_limit(ctx, &target, &container);
    let runs = live.unwrap_or(current);
    let peak = memory_peak(ctx, finding, &container);
    let (new, sizing) = match peak {
        Some(peak) => (
            (peak * HEADROOM).max(runs * 1.25),
            format!(
                "the peak of {} seen in usage history plus 30 %",
                format_memory(peak)
            ),
        ),
        None => (
            runs * OOM_FACTOR,
            "the running limit × 1.5 (no usage history for this container)".to_owned(),
        ),
    };
    let gap = live.filter(|live| (live - current).abs() > 0.5);
    if let Some(live) = gap
        && new <= current
    {
        return Err(Stop::Diagnosis(format!(
            "`{container}` in {target} runs with a memory limit of {}, but the repository already sets {}: that change is not applied (the gate refused its merge, or it waits to be reconciled). Get it applied rather than raising the limit again",
            format_memory(live),
            format_memory(current)
        )));
    }
    let (old_text, new_text) = (format_memory(current), format_memory(new));
    let from = match gap {
        Some(live) => format!(
            "{} (running; the repository's {old_text} is not applied)",
            format_memory(live)
        ),
        None => old_text.clone(),
    };
    let mut draft = Draft::new(
        finding,
        Action::RaiseMemory,
        target.clone(),
        Some(&declared),
        match finding.fact("suspected leak") {
            // The raise buys time; the title says what it does not fix.
            Some(_) => format!(
                "Suspected leak: raise the memory limit of `{container}` in {target} from {from} to {new_text}, which only delays the next OOM kill"
            ),
            None => format!(
                "Raise the memory limit of `{container}` in {target} from {from} to {new_text}"
            ),
        },
        format!(
            "Revert the commit: the limit goes back to {old_text}, and the OOM kills come back with it."
        ),
    );
    draft.set(&location, &doc, limit_path, Value::String(new_text.clone()));
    // A request equal to the limit (Guaranteed QoS) moves with it.
    let request_path = path(&declared, &container, "resources.requests.memory")?;
    let (request_location, request_doc) = ctx.field_location(&declared, &request_path);
    if request_path
        .get(&request_doc)
        .and_then(quantity)
        .and_then(|q| memory_bytes(&q))
        == Some(current)
    {
        draft.set(
            &request_location,
            &request_doc,
            request_path,
            Value::String(new_text),
        );
    }
    let mut remediation = draft.finish();
    remediation.finding = remediation.finding.with("sized from", sizing);
    Ok(remediation)
}

/// Memory headroom over the peak for a first limit: KRR's simple strategy (its default
/// `--memory_buffer_percentage 15`).
const KRR_MEMORY_BUFFER: f64 = 1.15;

/// An OOM kill of a container with no memory limit: the node ran out of memory and the kernel
/// chose it. With usage history, a request and a limit from the observed peak, by KRR's simple
/// strategy (both the peak plus 15 %, never below the request it has); without any, a
/// diagnosis naming what is missing.
fn first_limit(
    finding: &Finding,
    ctx: &Situation,
    declared: &Declared,
    container: &str,
) -> RemedyResult {
    let target = finding.target().clone();
    let Some(peak) = memory_peak(ctx, finding, container) else {
        return Err(Stop::Diagnosis(format!(
            "container `{container}` has no memory limit in the repository, so the kill came from the node running \
             out of memory; no usage history of it (Prometheus in `metrics.prometheus`, metrics-server samples, or a \
             UsageHistory document in the snapshot) shows its peak to size a limit from: set a limit and a matching request"
        )));
    };
    let request_path = path(declared, container, "resources.requests.memory")?;
    let limit_path = path(declared, container, "resources.limits.memory")?;
    let (request_location, request_doc) = ctx.field_location(declared, &request_path);
    let (limit_location, limit_doc) = ctx.field_location(declared, &limit_path);
    // A request that is written but cannot be read is no zero: the limit must not fall below it.
    let request = match request_path.get(&request_doc) {
        None | Some(Value::Null) => 0.0,
        Some(written) => quantity(written)
            .and_then(|q| memory_bytes(&q))
            .ok_or_else(|| {
                Stop::Diagnosis(format!(
                    "the memory request of `{container}` ({written}) is no quantity the API server accepts"
                ))
            })?,
    };
    let sized = (peak * KRR_MEMORY_BUFFER).max(request);
    let text = format_memory(sized);
    let mut draft = Draft::new(
        finding,
        Action::RaiseMemory,
        target.clone(),
        Some(declared),
        format!("Set a memory request and limit of {text} on `{container}` in {target}"),
        "Revert the commit: the container runs without a memory limit again, and the node's OOM killer chooses among its pods.".to_owned(),
    );
    draft.set(
        &request_location,
        &request_doc,
        request_path,
        Value::String(text.clone()),
    );
    draft.set(&limit_location, &limit_doc, limit_path, Value::String(text));
    let mut remediation = draft.finish();
    remediation.finding = remediation.finding.with(
        "sized from",
        format!(
            "the peak of {} seen in usage history plus 15 %, request equal to limit (KRR's simple strategy for memory)",
            format_memory(peak)
        ),
    );
    Ok(remediation)
}

pub(super) fn right_size(finding: &Finding, ctx: &Situation) -> RemedyResult {
    let target = finding.target().clone();
    let container = finding
        .container
        .clone()
        .ok_or_else(|| Stop::Diagnosis("the finding names no container".into()))?;
    if let Some(history) = finding.fact("too little history") {
        return Err(Stop::Diagnosis(format!(
            "too little usage history to right-size: {history}"
        )));
    }
    let declared = ctx.declared(&target)?;
    let oom = was_oom_killed(ctx, finding);
    let over = finding.code == FindingCode::OverProvisioned;
    let mut draft = Draft::new(
        finding,
        Action::RightSize,
        target.clone(),
        Some(&declared),
        String::new(),
        "Revert the commit: requests and limits go back to their current values.".into(),
    );
    let mut lines = Vec::new();
    for usage in &finding.usage {
        let bump = if oom && usage.resource == "memory" {
            OOM_BUMP
        } else {
            1.0
        };
        let sized = usage.p95 * HEADROOM * bump;
        let format = |v: f64| {
            if usage.resource == "cpu" {
                format_cpu(v)
            } else {
                format_memory(v)
            }
        };
        let parse = |s: &str| {
            if usage.resource == "cpu" {
                cpu_millis(s)
            } else {
                memory_bytes(s)
            }
        };
        let request_path = path(
            &declared,
            &container,
            &format!("resources.requests.{}", usage.resource),
        )?;
        let limit_path = path(
            &declared,
            &container,
            &format!("resources.limits.{}", usage.resource),
        )?;
        let (limit_location, limit_doc) = ctx.field_location(&declared, &limit_path);
        let limit = limit_path
            .get(&limit_doc)
            .and_then(quantity)
            .and_then(|q| parse(&q));
        if over {
            let (location, doc) = ctx.field_location(&declared, &request_path);
            let request = request_path
                .get(&doc)
                .and_then(quantity)
                .and_then(|q| parse(&q));
            draft.set(&location, &doc, request_path, Value::String(format(sized)));
            // A limit equal to the request keeps its QoS class; a limit below the new request rises to it.
            if limit.is_some() && (limit == request || limit < Some(sized)) {
                draft.set(
                    &limit_location,
                    &limit_doc,
                    limit_path,
                    Value::String(format(sized)),
                );
            }
            lines.push(format!(
                "{} request {} → {}",
                usage.resource,
                request.map(format).unwrap_or_default(),
                format(sized)
            ));
        } else {
            draft.set(
                &limit_location,
                &limit_doc,
                limit_path,
                Value::String(format(sized)),
            );
            lines.push(format!(
                "{} limit {} → {}",
                usage.resource,
                limit.map(format).unwrap_or_default(),
                format(sized)
            ));
        }
    }
    draft.summary = format!("Right-size `{container}` in {target}: {}", lines.join(", "));
    let mut remediation = draft.finish();
    if oom {
        remediation.finding = remediation.finding.with(
            "OOM bump",
            "memory × 1.25: the container has been OOM-killed",
        );
    }
    Ok(remediation)
}

/// A quantity as written: a string (`512Mi`), or a bare number (`1`, `0.5`, bytes).
fn quantity(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn path(
    declared: &Declared,
    container: &str,
    rest: &str,
) -> Result<crate::manifests::path::FieldPath, Stop> {
    if let Some(values) = &declared.helm {
        let key = helm::conventional_key(rest)
            .ok_or_else(|| Stop::Diagnosis(format!("no common chart value sets `{rest}`")))?;
        return values
            .key_for(container, &key)
            .and_then(|key| values.path(&key))
            .map_err(Stop::Diagnosis);
    }
    let kind = &declared.declaration.id.kind;
    container_path(kind, container, rest)
        .ok_or_else(|| Stop::Diagnosis(format!("{kind} has no pod template remediator can edit")))
}

/// The highest memory sample of this container in the usage history.
fn memory_peak(ctx: &Situation, finding: &Finding, container: &str) -> Option<f64> {
    let series = ctx.usage_of(finding.target(), container).first()?;
    let facts: Option<&UsageFacts> = finding.usage.iter().find(|u| u.resource == "memory");
    facts
        .map(|u| u.max)
        .or_else(|| series.memory.iter().map(|(_, v)| *v).reduce(f64::max))
}

/// The memory limit `container` of `target` runs with: its workload's pod template as the
/// cluster has it; `None` when the snapshot does not hold the workload or it sets no limit.
fn live_memory_limit(
    ctx: &Situation,
    target: &crate::model::ObjectRef,
    container: &str,
) -> Option<f64> {
    let (_, template) = ctx.workload(target)?;
    let limit = template
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == container)?
        .resources
        .as_ref()?
        .limits
        .as_ref()?
        .get("memory")?;
    memory_bytes(&limit.0)
}

/// Whether a pod of the finding's workload was ever OOM-killed, as far as the snapshot shows:
/// the pods' last terminations, or the usage history's count over its window.
fn was_oom_killed(ctx: &Situation, finding: &Finding) -> bool {
    let target = finding.target();
    let in_history = finding.container.as_deref().is_some_and(|container| {
        let series = ctx.usage_of(target, container);
        series.iter().any(|c| c.oom_killed_pods > 0)
    });
    in_history
        || ctx.pods_of(target).iter().any(|p| {
            let statuses = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref());
            statuses.into_iter().flatten().any(|s| {
                Some(s.name.as_str()) == finding.container.as_deref()
                    && s.last_state
                        .as_ref()
                        .and_then(|l| l.terminated.as_ref())
                        .and_then(|t| t.reason.as_deref())
                        == Some("OOMKilled")
            })
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::*;
    use super::super::{Remedy, remediate};
    use crate::detect::fixtures;
    use crate::model::{Finding, FindingCode, ObjectRef, Severity, Snapshot};

    fn finding(code: FindingCode, target: &str, container: &str) -> Finding {
        let target = ObjectRef::new(
            "apps/v1",
            target.split('/').next().unwrap(),
            Some("shop"),
            target.split('/').nth_back(0).unwrap(),
        );
        let mut f = Finding::new(code, Severity::Critical, target.clone(), "x".into());
        f.owner = Some(target);
        f.container = Some(container.into());
        f
    }

    #[test]
    fn oom_raises_the_limit_and_a_matching_request() {
        let (index, config) = example();
        let snapshot = Snapshot::default();
        let r = proposal(remediate(
            &finding(FindingCode::CrashLoopOom, "Deployment/api", "api"),
            &context(&index, &config, &snapshot),
        ));
        assert_eq!(
            edits(&r),
            [
                "clusters/prod/patches/deployment-api-patch.yaml: spec.template.spec.containers[name=api].resources.limits.memory = \"768Mi\"",
                "clusters/prod/patches/deployment-api-patch.yaml: spec.template.spec.containers[name=api].resources.requests.memory = \"768Mi\"",
            ]
        );
        assert_eq!(r.fields[0].ratio, Some(1.5));
        assert_eq!(r.environment.as_deref(), Some("prod"));
        assert!(r.summary.contains("from 512Mi to 768Mi"), "{}", r.summary);
    }

    /// The api Deployment as the cluster runs it, its api container limited to `limit`.
    fn running(limit: &str) -> Snapshot {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [
                {"name": "api", "resources": {"limits": {"memory": limit}}}]}}}});
        fixtures::snapshot(vec![deployment])
    }

    #[test]
    fn an_oom_kill_of_a_suspected_leak_is_raised_with_the_leak_in_its_title() {
        let (index, config) = example();
        let snapshot = Snapshot::default();
        let leaking = finding(FindingCode::CrashLoopOom, "Deployment/api", "api").with(
            "suspected leak",
            "memory-growth: memory keeps growing, and reaches its limit in about 3.1 days",
        );
        let r = proposal(remediate(&leaking, &context(&index, &config, &snapshot)));
        assert!(
            r.summary
                .starts_with("Suspected leak: raise the memory limit of `api`")
                && r.summary.ends_with("which only delays the next OOM kill"),
            "{}",
            r.summary
        );
    }

    #[test]
    fn a_raise_starts_from_what_runs_and_never_compounds_an_unapplied_one() {
        let (index, config) = example();
        let oom = finding(FindingCode::CrashLoopOom, "Deployment/api", "api");
        // The repository's 512Mi runs: the title says nothing more.
        let same = running("512Mi");
        let r = proposal(remediate(&oom, &context(&index, &config, &same)));
        assert!(r.summary.contains("from 512Mi to 768Mi"), "{}", r.summary);
        // 256Mi runs, the repository's 512Mi was never applied: 256Mi × 1.5 is below it, so
        // there is nothing to raise, and the diagnosis names the gap.
        let behind = running("256Mi");
        match remediate(&oom, &context(&index, &config, &behind)) {
            Remedy::Diagnosis { reason, .. } => {
                assert!(
                    reason.contains("runs with a memory limit of 256Mi")
                        && reason.contains("already sets 512Mi")
                        && reason.contains("not applied"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
        // 400Mi runs: the raise is 600Mi, from the running value, never 512Mi × 1.5.
        let lower = running("400Mi");
        let r = proposal(remediate(&oom, &context(&index, &config, &lower)));
        assert_eq!(r.fields[0].new, Some(json!("600Mi")));
        assert!(
            r.summary
                .contains("from 400Mi (running; the repository's 512Mi is not applied) to 600Mi"),
            "{}",
            r.summary
        );
    }

    #[test]
    fn too_little_history_is_not_right_sized_and_says_how_much_there_is() {
        let (index, config) = example();
        let snapshot = Snapshot::default();
        let young = finding(FindingCode::OverProvisioned, "Deployment/api", "api")
            .with("too little history", "2d 23h of the 7d 0h needed");
        match remediate(&young, &context(&index, &config, &snapshot)) {
            crate::remedy::Remedy::Diagnosis { reason, .. } => {
                assert_eq!(
                    reason,
                    "too little usage history to right-size: 2d 23h of the 7d 0h needed"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oom_sizing_follows_usage_when_known() {
        let (index, config) = example();
        let usage = json!({"kind": "UsageHistory", "containers": [{"namespace": "shop",
            "workload": {"kind": "Deployment", "name": "api"}, "container": "api",
            "memory": [[0, 500.0 * 1048576.0], [60, 900.0 * 1048576.0]]}]});
        let snapshot = fixtures::snapshot(vec![usage]);
        let r = proposal(remediate(
            &finding(FindingCode::CrashLoopOom, "Deployment/api", "api"),
            &context(&index, &config, &snapshot),
        ));
        assert_eq!(r.fields[0].new, Some(json!("1170Mi")));
        assert!(r.finding.fact("sized from").unwrap().contains("900Mi"));
    }

    #[test]
    fn right_sizing_lowers_requests_to_p95_plus_30_percent() {
        let (index, config) = example();
        let snapshot = Snapshot::default();
        let mut f = finding(FindingCode::OverProvisioned, "StatefulSet/redis", "redis");
        f.usage = vec![usage("cpu", 100.0), usage("memory", 300.0 * 1048576.0)];
        let r = proposal(remediate(&f, &context(&index, &config, &snapshot)));
        let prefix = "clusters/prod/patches/statefulset-redis-patch.yaml: spec.template.spec.containers[name=redis].resources";
        assert_eq!(
            edits(&r),
            [
                format!("{prefix}.requests.cpu = \"130m\""),
                format!("{prefix}.requests.memory = \"390Mi\""),
                format!("{prefix}.limits.memory = \"390Mi\""),
            ]
        );
    }

    #[test]
    fn an_oom_kill_within_the_history_s_window_bumps_right_sized_memory() {
        let (index, config) = example();
        let mut f = finding(FindingCode::OverProvisioned, "StatefulSet/redis", "redis");
        f.usage = vec![usage("memory", 300.0 * 1048576.0)];
        // The pods show no OOM kill now; kube-state-metrics saw one in the window.
        let killed = |pods: u32| {
            fixtures::snapshot(vec![json!({"kind": "UsageHistory", "containers": [{
                "namespace": "shop", "workload": {"kind": "StatefulSet", "name": "redis"},
                "container": "redis", "oomKilledPods": pods}]})])
        };
        let snapshot = killed(1);
        let r = proposal(remediate(&f, &context(&index, &config, &snapshot)));
        assert_eq!(r.fields[0].new, Some(json!("488Mi")), "{:?}", r.fields);
        assert!(r.finding.fact("OOM bump").is_some());
        let snapshot = killed(0);
        let r = proposal(remediate(&f, &context(&index, &config, &snapshot)));
        assert_eq!(r.fields[0].new, Some(json!("390Mi")), "{:?}", r.fields);
        assert!(r.finding.fact("OOM bump").is_none());
    }

    #[test]
    fn an_oom_without_a_limit_gets_a_first_limit_from_the_peak_or_a_diagnosis() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("apps")).unwrap();
        std::fs::write(
            dir.path().join("apps/api.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: shop}\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: api:1\n          resources:\n            requests: {cpu: 100m, memory: 256Mi}\n",
        )
        .unwrap();
        let index = crate::manifests::RepoIndex::build(dir.path(), &Default::default()).unwrap();
        let config = crate::config::Config::default();
        let f = finding(FindingCode::CrashLoopOom, "Deployment/api", "api");
        match remediate(&f, &context(&index, &config, &Snapshot::default())) {
            Remedy::Diagnosis { reason, .. } => {
                assert!(reason.contains("no memory limit"), "{reason}");
                assert!(reason.contains("no usage history"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let mib = 1048576.0;
        let snapshot = fixtures::snapshot(vec![json!({"kind": "UsageHistory", "containers": [{
            "namespace": "shop", "workload": {"kind": "Deployment", "name": "api"},
            "container": "api", "memory": [[0, 300.0 * mib], [60, 400.0 * mib], [120, 350.0 * mib]]}]})]);
        let r = proposal(remediate(&f, &context(&index, &config, &snapshot)));
        assert_eq!(
            edits(&r),
            [
                "apps/api.yaml: spec.template.spec.containers[name=api].resources.requests.memory = \"460Mi\"",
                "apps/api.yaml: spec.template.spec.containers[name=api].resources.limits.memory = \"460Mi\""
            ]
        );
        let sizing = r.finding.fact("sized from").unwrap();
        assert!(
            sizing.contains("400Mi") && sizing.contains("KRR"),
            "{sizing}"
        );
        // A request that cannot be read is not taken for none.
        let text = std::fs::read_to_string(dir.path().join("apps/api.yaml")).unwrap();
        std::fs::write(
            dir.path().join("apps/api.yaml"),
            text.replace("memory: 256Mi", "memory: lots"),
        )
        .unwrap();
        let index = crate::manifests::RepoIndex::build(dir.path(), &Default::default()).unwrap();
        match remediate(&f, &context(&index, &config, &snapshot)) {
            Remedy::Diagnosis { reason, .. } => {
                assert!(reason.contains("(\"lots\") is no quantity"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_limit_set_in_the_base_is_read_through_an_overlay_patch_of_other_fields() {
        let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: api:1\n          resources:\n            limits: {memory: 256Mi}\n";
        let image = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: api:2\n";
        let release = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: api}\nspec:\n  chart:\n    spec: {chart: api, sourceRef: {kind: HelmRepository, name: charts}}\n  values:\n    resources:\n      limits: {memory: 256Mi}\n";
        let replicas = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: api}\nspec:\n  values:\n    replicaCount: 3\n";
        for (base, patch, file, path) in [
            (
                deployment,
                image,
                "deployment.yaml",
                "spec.template.spec.containers[name=api].resources.limits.memory",
            ),
            (
                release,
                replicas,
                "release.yaml",
                "spec.values.resources.limits.memory",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            for (name, text) in [
                (
                    "base/kustomization.yaml".to_owned(),
                    format!("resources: [{file}]\n"),
                ),
                (format!("base/{file}"), base.to_owned()),
                (
                    "prod/kustomization.yaml".to_owned(),
                    "namespace: shop\nresources: [../base]\npatches:\n  - path: patch.yaml\n"
                        .to_owned(),
                ),
                ("prod/patch.yaml".to_owned(), patch.to_owned()),
                // A second overlay shares the base: the base is not edited for one of them.
                (
                    "dev/kustomization.yaml".to_owned(),
                    "namespace: shop-dev\nresources: [../base]\n".to_owned(),
                ),
            ] {
                let path = dir.path().join(name);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
            let index =
                crate::manifests::RepoIndex::build(dir.path(), &Default::default()).unwrap();
            let config = crate::config::Config::default();
            let mut f = finding(FindingCode::CrashLoopOom, "Deployment/api", "api");
            let snapshot = if base == release {
                f.usage = vec![];
                fixtures::snapshot(vec![json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "api", "namespace": "shop",
                        "labels": {"helm.toolkit.fluxcd.io/name": "api", "helm.toolkit.fluxcd.io/namespace": "shop"}},
                    "spec": {}})])
            } else {
                Snapshot::default()
            };
            let r = proposal(remediate(&f, &context(&index, &config, &snapshot)));
            assert_eq!(
                edits(&r),
                [format!("prod/patch.yaml: {path} = \"384Mi\"")],
                "the base's 256Mi, raised in the overlay's patch"
            );
            assert_eq!(r.fields[0].old, Some(json!("256Mi")));
        }
    }

    #[test]
    fn targets_outside_the_repository_are_unmanaged() {
        let (index, config) = example();
        let snapshot = Snapshot::default();
        let outcome = remediate(
            &finding(FindingCode::CrashLoopOom, "Deployment/payments", "app"),
            &context(&index, &config, &snapshot),
        );
        match outcome {
            Remedy::Unmanaged { reason, .. } => assert_eq!(
                reason,
                "Deployment/shop/payments is not declared in the repository"
            ),
            other => panic!("{other:?}"),
        }
    }
}
