//! The security posture: Rego rules (`policies/security/`, replaceable with a directory of
//! one's own) run over every object the repository declares, with its file and line, and over
//! the live or recorded workloads, each finding with its rule, severity, field and fix. Pods
//! that a workload owns are judged through the workload, once. Pure but for the rules' engine.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::assess::Policies;
use crate::manifests::RepoIndex;
use crate::model::Snapshot;

/// The default rules and their tests.
pub const DEFAULT_RULES: &[(&str, &str)] = &[
    (
        "security.rego",
        include_str!("../../policies/security/security.rego"),
    ),
    (
        "security_test.rego",
        include_str!("../../policies/security/security_test.rego"),
    ),
];

/// The rule whose value is the findings of one object.
const FINDINGS: &str = "data.remediator.security.findings";

/// The severities, worst first.
const SEVERITIES: [&str; 4] = ["critical", "high", "medium", "low"];

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecurityFinding {
    /// The rule (`run-as-root`).
    pub rule: String,
    /// `critical`, `high`, `medium` or `low`.
    pub severity: String,
    /// `Kind/namespace/name`.
    pub object: String,
    /// `repository` or `cluster`.
    pub source: String,
    /// The declaring file, for the repository's objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Its line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The field concerned.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub fix: String,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Security {
    /// Findings per rule, most first.
    pub by_rule: Vec<(String, usize)>,
    /// Findings per severity, worst first.
    pub by_severity: Vec<(String, usize)>,
    /// Every finding, worst first.
    pub findings: Vec<SecurityFinding>,
}

/// The rules: the embedded ones, or the `.rego` files of a directory.
pub fn rules(dir: Option<&std::path::Path>) -> crate::assess::Result<Policies> {
    match dir {
        Some(dir) => Policies::from_dir(dir),
        None => Policies::from_files(
            DEFAULT_RULES
                .iter()
                .map(|(name, text)| (PathBuf::from(name), (*text).to_owned()))
                .collect(),
        ),
    }
}

/// An object's pod spec and where it sits.
fn pod_of(object: &Value) -> Option<(&Value, &'static str)> {
    let kind = object["kind"].as_str()?;
    let (spec, path) = match kind {
        "Pod" => (&object["spec"], "spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            (&object["spec"]["template"]["spec"], "spec.template.spec")
        }
        "CronJob" => (
            &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            "spec.jobTemplate.spec.template.spec",
        ),
        _ => return None,
    };
    spec.is_object().then_some((spec, path))
}

/// The findings of one object.
fn judge(
    rules: &mut Policies,
    object: &Value,
    namespace: Option<&str>,
) -> crate::assess::Result<Vec<Value>> {
    let (pod, pod_path) = match pod_of(object) {
        Some((pod, path)) => (pod.clone(), Value::from(path)),
        None => (Value::Null, Value::Null),
    };
    let input = serde_json::json!({
        "kind": object["kind"],
        "namespace": namespace,
        "name": object["metadata"]["name"],
        "object": object,
        "pod": pod,
        "podPath": pod_path,
    });
    // Rules that do not define the findings (a replaced directory missing them) are an error,
    // never a clean report.
    match rules.query(FINDINGS, &input)? {
        Value::Array(found) => Ok(found),
        other => Err(crate::assess::Error::Eval(format!(
            "{FINDINGS} is not a set of findings: {other}"
        ))),
    }
}

fn finding(
    value: &Value,
    object: String,
    source: &str,
    at: Option<(String, usize)>,
) -> SecurityFinding {
    let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
    SecurityFinding {
        rule: text("rule"),
        severity: text("severity"),
        object,
        source: source.to_owned(),
        file: at.as_ref().map(|(file, _)| file.clone()),
        line: at.map(|(_, line)| line),
        path: text("path"),
        message: text("message"),
        fix: text("fix"),
    }
}

/// The findings of every object the repository declares, with file and line.
pub fn scan_repository(
    rules: &mut Policies,
    index: &RepoIndex,
) -> crate::assess::Result<Vec<SecurityFinding>> {
    let mut out = Vec::new();
    for declaration in &index.declarations {
        let namespace = declaration.id.namespace.as_deref();
        for value in judge(rules, &declaration.value, namespace)? {
            let at = (
                declaration.location.file.display().to_string(),
                declaration.location.line,
            );
            out.push(finding(
                &value,
                declaration.id.to_string(),
                "repository",
                Some(at),
            ));
        }
    }
    Ok(out)
}

/// The findings with a safe edit on the objects the repository applies, as `insecure-workload`
/// findings for the propose path: one per object and rule, its edits as `edit` evidence
/// (`PATH = JSON`), each applied object (one per environment) on its own.
pub fn hardening(
    rules: &mut Policies,
    index: &RepoIndex,
) -> crate::assess::Result<Vec<crate::model::Finding>> {
    use crate::model::{Evidence, Finding, FindingCode, Severity};
    let mut judged: HashMap<usize, Vec<Value>> = HashMap::new();
    let mut out = Vec::new();
    for object in &index.objects {
        let declaration = index.declaration(object);
        let found = match judged.entry(object.declaration) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(judge(
                rules,
                &declaration.value,
                declaration.id.namespace.as_deref(),
            )?),
        };
        let mut by_rule: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for found in found.iter() {
            if found["edit"].is_object() {
                let rule = found["rule"].as_str().unwrap_or_default().to_owned();
                by_rule.entry(rule).or_default().push(found);
            }
        }
        for (rule, found) in by_rule {
            let first = found[0];
            let text = |key: &str| first[key].as_str().unwrap_or_default().to_owned();
            let severity = match first["severity"].as_str() {
                Some("critical" | "high") => Severity::Critical,
                _ => Severity::Warning,
            };
            let messages: Vec<String> = found
                .iter()
                .filter_map(|f| f["message"].as_str().map(str::to_owned))
                .collect();
            let mut finding = Finding::new(
                FindingCode::InsecureWorkload,
                severity,
                object.id.clone(),
                format!(
                    "The security rule `{rule}` finds {}: {}. The fix: {}.",
                    object.id,
                    messages.join("; "),
                    text("fix")
                ),
            );
            finding.owner = Some(object.id.clone());
            finding.evidence.push(Evidence {
                label: "rule".into(),
                value: rule.clone(),
            });
            finding.evidence.push(Evidence {
                label: "declared at".into(),
                value: format!(
                    "{}:{}",
                    declaration.location.file.display(),
                    declaration.location.line
                ),
            });
            for f in &found {
                // An edit decides what is applied: one a rule gives without a field path or a
                // value is an error in the rule, never an edit of nothing.
                let (Some(path), Some(value)) =
                    (f["edit"]["path"].as_str(), f["edit"].get("value"))
                else {
                    return Err(crate::assess::Error::Eval(format!(
                        "rule `{rule}` gives an edit without a path and a value: {}",
                        f["edit"]
                    )));
                };
                finding.evidence.push(Evidence {
                    label: "edit".into(),
                    value: format!("{path} = {value}"),
                });
            }
            out.push(finding);
        }
    }
    Ok(out)
}

/// The findings of the snapshot's workloads; a pod a controller owns is judged through it.
pub fn scan_snapshot(
    rules: &mut Policies,
    snapshot: &Snapshot,
) -> crate::assess::Result<Vec<SecurityFinding>> {
    let mut objects: Vec<Value> = Vec::new();
    let mut add = |value: Result<Value, serde_json::Error>, kind: &str, api: &str| {
        if let Ok(mut value) = value {
            value["kind"] = kind.into();
            value["apiVersion"] = api.into();
            objects.push(value);
        }
    };
    // A pod no controller owns has its whole object kept; an owned one is judged through its
    // controller.
    for pod in snapshot.pods.iter().filter_map(|p| p.whole.as_deref()) {
        add(Ok(pod.clone()), "Pod", "v1");
    }
    for d in &snapshot.deployments {
        add(serde_json::to_value(d), "Deployment", "apps/v1");
    }
    for s in &snapshot.stateful_sets {
        add(serde_json::to_value(s), "StatefulSet", "apps/v1");
    }
    for d in &snapshot.daemon_sets {
        add(serde_json::to_value(d), "DaemonSet", "apps/v1");
    }
    for j in snapshot
        .jobs
        .iter()
        .filter(|j| j.metadata.owner_references.is_none())
    {
        add(serde_json::to_value(j), "Job", "batch/v1");
    }
    let mut out = Vec::new();
    for object in &objects {
        let namespace = object["metadata"]["namespace"].as_str();
        let id = format!(
            "{}/{}{}",
            object["kind"].as_str().unwrap_or_default(),
            namespace.map(|n| format!("{n}/")).unwrap_or_default(),
            object["metadata"]["name"].as_str().unwrap_or_default()
        );
        for value in judge(rules, object, namespace)? {
            out.push(finding(&value, id.clone(), "cluster", None));
        }
    }
    Ok(out)
}

/// The report of `findings`: counted by rule and severity, worst first.
pub fn report(mut findings: Vec<SecurityFinding>) -> Security {
    let rank = |s: &str| {
        SEVERITIES
            .iter()
            .position(|x| *x == s)
            .unwrap_or(SEVERITIES.len())
    };
    findings.sort_by(|a, b| {
        rank(&a.severity)
            .cmp(&rank(&b.severity))
            .then(a.rule.cmp(&b.rule))
            .then(a.object.cmp(&b.object))
            .then(a.path.cmp(&b.path))
    });
    let mut by_rule: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_severity: BTreeMap<usize, usize> = BTreeMap::new();
    for f in &findings {
        *by_rule.entry(f.rule.clone()).or_default() += 1;
        *by_severity.entry(rank(&f.severity)).or_default() += 1;
    }
    let mut by_rule: Vec<(String, usize)> = by_rule.into_iter().collect();
    by_rule.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Security {
        by_rule,
        by_severity: by_severity
            .into_iter()
            .map(|(r, n)| {
                (
                    SEVERITIES.get(r).copied().unwrap_or("unknown").to_owned(),
                    n,
                )
            })
            .collect(),
        findings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_that_define_no_findings_are_an_error_not_a_clean_report() {
        let mut rules = Policies::from_files(vec![(
            PathBuf::from("other.rego"),
            "package remediator.other\n\nx := 1\n".into(),
        )])
        .unwrap();
        let object = serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "c"}});
        let error = judge(&mut rules, &object, None).unwrap_err().to_string();
        assert!(
            error.contains("data.remediator.security.findings"),
            "{error}"
        );
    }

    #[test]
    fn an_edit_without_a_path_is_an_error_in_the_rule() {
        let rule = "package remediator.security\n\nfindings contains {\"rule\": \"r\", \"edit\": {\"value\": false}} if input.kind == \"ConfigMap\"\n";
        let mut rules = Policies::from_files(vec![(PathBuf::from("r.rego"), rule.into())]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("c.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: x}\n",
        )
        .unwrap();
        let index = RepoIndex::build(dir.path(), &Default::default()).unwrap();
        let error = hardening(&mut rules, &index).unwrap_err().to_string();
        assert!(
            error.contains("rule `r` gives an edit without a path"),
            "{error}"
        );
    }

    #[test]
    fn a_snapshot_s_pod_no_controller_owns_is_judged_whole_and_an_owned_one_through_its_owner() {
        let pod = |name: &str, owned: bool| {
            let owners = if owned {
                r#", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u", "controller": true}]"#
            } else {
                ""
            };
            format!(
                r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "{name}", "namespace": "shop", "managedFields": [{{"manager": "kubectl"}}]{owners}}},
                "spec": {{"hostNetwork": true, "containers": [{{"name": "app", "image": "app:1"}}]}}}}"#
            )
        };
        // Read from JSON and from YAML, as `kubectl get -o json` and `-o yaml` write them.
        let json = format!(
            r#"{{"apiVersion": "v1", "kind": "List", "items": [{}, {}]}}"#,
            pod("debug", false),
            pod("web-1-abc", true)
        );
        // Not JSON as a whole, so read as YAML.
        let yaml = format!("{}\n---\n{}\n", pod("debug", false), pod("web-1-abc", true));
        for (file, text) in [("pods.json", json), ("pods.yaml", yaml)] {
            let mut loaded = crate::snapshot::Loaded::default();
            loaded.read_file(std::path::Path::new(file), text.as_bytes());
            assert!(loaded.problems.is_empty(), "{file}: {:?}", loaded.problems);
            let whole = loaded.snapshot.pods[0].whole.as_deref().unwrap();
            assert!(whole["metadata"].get("managedFields").is_none(), "{whole}");
            assert!(loaded.snapshot.pods[1].whole.is_none(), "{file}");
            let found = scan_snapshot(&mut rules(None).unwrap(), &loaded.snapshot).unwrap();
            let host: Vec<_> = found.iter().filter(|f| f.rule == "host-network").collect();
            assert_eq!(host.len(), 1, "{file}: {found:?}");
            assert_eq!(host[0].object, "Pod/shop/debug");
            assert_eq!(host[0].path, "spec.hostNetwork");
        }
    }

    #[test]
    fn every_rego_test_of_the_security_rules_passes() {
        let results = rules(None).unwrap().run_tests().unwrap();
        assert!(results.len() >= 5, "{results:?}");
        for (rule, held) in results {
            assert!(held, "{rule} failed");
        }
    }
}
