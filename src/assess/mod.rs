//! Assessment: Rego policies (regorus) weigh a remediation and say its risk, what is denied, and
//! the approvals a merge needs, with their reasons. The default policies in `policies/` are
//! embedded; a directory of `.rego` files replaces them. Pure once the policies are loaded.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::Config;
use crate::model::RiskLevel;
use crate::remedy::Remediation;

/// The embedded default policies and their tests, by file name.
pub const DEFAULT_POLICIES: &[(&str, &str)] = &[
    (
        "remediator.rego",
        include_str!("../../policies/remediator.rego"),
    ),
    (
        "remediator_test.rego",
        include_str!("../../policies/remediator_test.rego"),
    ),
    ("power.rego", include_str!("../../policies/power.rego")),
    (
        "power_test.rego",
        include_str!("../../policies/power_test.rego"),
    ),
];

/// The rule every policy set must define.
const DECISION: &str = "data.remediator.decision";

/// What can go wrong loading or evaluating policies.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A policy file cannot be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A policy does not parse.
    #[error("{}: {message}", file.display())]
    Parse {
        /// The file.
        file: PathBuf,
        /// regorus' message, with line and column.
        message: String,
    },
    /// Evaluation failed, or the decision is not of the expected shape.
    #[error(
        "policies: {0}; `{DECISION}` must be {{risk, denials, approvals: {{count, teams}}, escalated, reasons}}"
    )]
    Eval(String),
}

/// Result of assessment.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The policies' verdict on one remediation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// The risk.
    pub risk: RiskLevel,
    /// Why the change is refused; empty when it is not.
    pub denials: Vec<String>,
    /// Approvals a merge needs.
    pub approvals: Approvals,
    /// Whether the risk is above what the environment tolerates.
    pub escalated: bool,
    /// Every reason behind the risk, `level: reason`.
    pub reasons: Vec<String>,
}

impl Assessment {
    /// The verdict on no change at all: low risk, nothing denied, no approvals; the start of a
    /// combined verdict.
    pub fn none() -> Self {
        Assessment {
            risk: RiskLevel::Low,
            denials: vec![],
            approvals: Approvals {
                count: 0,
                teams: vec![],
            },
            escalated: false,
            reasons: vec![],
        }
    }
}

/// Approvals a merge needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approvals {
    /// Distinct approving reviews.
    pub count: u32,
    /// Teams that must be among the approvers.
    pub teams: Vec<String>,
}

/// Loaded policies, ready to evaluate.
#[derive(Clone)]
pub struct Policies {
    engine: regorus::Engine,
    files: Vec<(PathBuf, String)>,
}

impl Policies {
    /// The embedded default policies.
    pub fn embedded() -> Self {
        let files = DEFAULT_POLICIES
            .iter()
            .map(|(name, text)| (PathBuf::from(name), (*text).to_owned()))
            .collect();
        Self::from_texts(files).expect("the embedded policies parse")
    }

    /// Every `.rego` file of `dir`, instead of the embedded ones.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let read_error = |source| Error::Read {
            file: dir.to_owned(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_error)? {
            let path = entry.map_err(read_error)?.path();
            if path.extension().is_some_and(|e| e == "rego") {
                let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
                    file: path.clone(),
                    source,
                })?;
                files.push((path, text));
            }
        }
        files.sort();
        Self::from_texts(files)
    }

    /// The `.rego` files among `files` (name and text), as read from a commit.
    pub fn from_files(files: Vec<(PathBuf, String)>) -> Result<Self> {
        let files = files
            .into_iter()
            .filter(|(path, _)| path.extension().is_some_and(|e| e == "rego"))
            .collect();
        Self::from_texts(files)
    }

    fn from_texts(files: Vec<(PathBuf, String)>) -> Result<Self> {
        let mut engine = regorus::Engine::new();
        for (path, text) in &files {
            engine
                .add_policy(path.display().to_string(), text.clone())
                .map_err(|e| Error::Parse {
                    file: path.clone(),
                    message: e.to_string(),
                })?;
        }
        Ok(Self { engine, files })
    }

    /// Evaluates the decision for `input`.
    pub fn evaluate(&mut self, input: &Value) -> Result<Assessment> {
        let decision = self.query(DECISION, input)?;
        serde_json::from_value(decision.clone())
            .map_err(|e| Error::Eval(format!("{e} in {decision}")))
    }

    /// The value of `rule` (`data.package.name`) for `input`, as JSON.
    pub fn query(&mut self, rule: &str, input: &Value) -> Result<Value> {
        let input = regorus::Value::from_json_str(&input.to_string())
            .map_err(|e| Error::Eval(e.to_string()))?;
        self.engine.set_input(input);
        let value = self
            .engine
            .eval_rule(rule.to_owned())
            .map_err(|e| Error::Eval(format!("{rule}: {e}")))?;
        let json = value
            .to_json_str()
            .map_err(|e| Error::Eval(e.to_string()))?;
        serde_json::from_str(&json).map_err(|e| Error::Eval(format!("{e} in {json}")))
    }

    /// Assesses a remediation.
    pub fn assess(&mut self, remediation: &Remediation, config: &Config) -> Result<Assessment> {
        self.evaluate(&input(remediation, config))
    }

    /// Runs every `test_` rule of the loaded policies; returns each rule and whether it held.
    pub fn run_tests(&mut self) -> Result<Vec<(String, bool)>> {
        let mut results = Vec::new();
        for (_, text) in self.files.clone() {
            let Some(package) = text.lines().find_map(|l| l.strip_prefix("package ")) else {
                continue;
            };
            let tests = text
                .lines()
                .filter_map(|l| l.strip_prefix("test_"))
                .filter_map(|rest| {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    (!name.is_empty()).then(|| format!("test_{name}"))
                });
            for test in tests {
                let rule = format!("data.{}.{test}", package.trim());
                let value = self
                    .engine
                    .eval_rule(rule.clone())
                    .map_err(|e| Error::Eval(format!("{rule}: {e}")))?;
                results.push((rule, value == regorus::Value::from(true)));
            }
        }
        Ok(results)
    }
}

/// The policy input's `environment`: its name and risk tolerance (medium when the config does
/// not list it).
pub fn environment_input(name: &str, config: &Config) -> Value {
    let tolerance = config
        .environments
        .iter()
        .find(|e| e.name == name)
        .map_or(RiskLevel::Medium, |e| e.risk_tolerance);
    json!({"name": name, "riskTolerance": tolerance})
}

/// The policy input for a remediation: finding, action, target, environment and the change.
pub fn input(remediation: &Remediation, config: &Config) -> Value {
    let spec = remediation.action.spec();
    let environment = remediation
        .environment
        .as_deref()
        .map(|name| environment_input(name, config));
    json!({
        "finding": {"code": remediation.finding.code, "severity": remediation.finding.severity},
        "action": {"name": spec.name, "baseRisk": spec.base_risk, "reversible": spec.reversible, "imperative": spec.imperative},
        "target": {
            "kind": remediation.target.kind,
            "namespace": remediation.target.namespace,
            "name": remediation.target.name,
            "labels": remediation.labels,
        },
        "environment": environment,
        "change": {"fields": remediation.fields},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rego_test_of_the_default_policies_passes() {
        let results = Policies::embedded().run_tests().unwrap();
        // Every `test_` rule of the policies' test files runs, and no other.
        let declared: usize = [
            include_str!("../../policies/remediator_test.rego"),
            include_str!("../../policies/power_test.rego"),
        ]
        .iter()
        .map(|text| text.lines().filter(|l| l.starts_with("test_")).count())
        .sum();
        assert_eq!(declared, 38);
        assert_eq!(results.len(), declared, "{results:?}");
        let failed: Vec<_> = results.iter().filter(|(_, ok)| !ok).collect();
        assert!(failed.is_empty(), "failed: {failed:?}");
    }

    use crate::model::{Action, FieldChange, Finding, FindingCode, ObjectRef, Severity};

    fn remediation(
        action: Action,
        env: Option<&str>,
        namespace: &str,
        fields: Vec<(&str, Value, Value)>,
    ) -> Remediation {
        let target = ObjectRef::new("apps/v1", "Deployment", Some(namespace), "api");
        let finding = Finding::new(
            FindingCode::CrashLoopOom,
            Severity::Critical,
            target.clone(),
            String::new(),
        );
        let fields = fields
            .into_iter()
            .map(|(path, old, new)| FieldChange {
                file: "f.yaml".into(),
                path: path.into(),
                ratio: old
                    .as_f64()
                    .zip(new.as_f64())
                    .map(|(o, n)| n / o)
                    .or_else(|| {
                        let bytes =
                            |v: &Value| v.as_str().and_then(crate::model::quantity::memory_bytes);
                        bytes(&old).zip(bytes(&new)).map(|(o, n)| n / o)
                    }),
                old: Some(old),
                new: Some(new),
            })
            .collect();
        Remediation {
            id: "x".into(),
            finding,
            action,
            target,
            labels: Default::default(),
            environment: env.map(str::to_owned),
            summary: String::new(),
            fields,
            rollback: String::new(),
            changes: vec![],
        }
    }

    fn config() -> Config {
        Config::parse(
            Path::new("remediator.yaml"),
            "environments:\n  - {name: dev, paths: [d], riskTolerance: high}\n  - {name: prod, paths: [p], riskTolerance: medium}\n",
        )
        .unwrap()
    }

    fn assess(r: &Remediation) -> Assessment {
        Policies::embedded().assess(r, &config()).unwrap()
    }

    const LIMIT: &str = "spec.template.spec.containers[name=api].resources.limits.memory";

    #[test]
    fn production_raises_the_risk() {
        let dev = assess(&remediation(
            Action::RaiseMemory,
            Some("dev"),
            "shop",
            vec![(LIMIT, json!("512Mi"), json!("768Mi"))],
        ));
        assert_eq!((dev.risk, dev.approvals.count), (RiskLevel::Low, 0));
        let prod = assess(&remediation(
            Action::RaiseMemory,
            Some("prod"),
            "shop",
            vec![(LIMIT, json!("512Mi"), json!("768Mi"))],
        ));
        assert_eq!(
            (prod.risk, prod.approvals.count, prod.escalated),
            (RiskLevel::Medium, 1, false)
        );
        assert!(
            prod.reasons
                .contains(&"medium: production raises the risk one level".to_owned()),
            "{:?}",
            prod.reasons
        );
    }

    #[test]
    fn more_than_doubled_memory_is_high_and_escalated_above_tolerance() {
        let r = assess(&remediation(
            Action::RaiseMemory,
            Some("prod"),
            "shop",
            vec![(LIMIT, json!("512Mi"), json!("2Gi"))],
        ));
        assert_eq!(
            (r.risk, r.escalated, r.approvals.count),
            (RiskLevel::High, true, 3)
        );
        // In dev the tolerance is high: no escalation.
        let r = assess(&remediation(
            Action::RaiseMemory,
            Some("dev"),
            "shop",
            vec![(LIMIT, json!("512Mi"), json!("2Gi"))],
        ));
        assert_eq!(
            (r.risk, r.escalated, r.approvals.count),
            (RiskLevel::High, false, 2)
        );
    }

    #[test]
    fn fewer_than_two_replicas_in_production_is_denied() {
        let one = remediation(
            Action::ScaleReplicas,
            Some("prod"),
            "shop",
            vec![("replicas[name=api].count", json!(3), json!(1))],
        );
        assert_eq!(
            assess(&one).denials,
            [
                "scaling replicas[name=api].count below 2 replicas in production leaves no redundancy"
            ]
        );
        let dev = remediation(
            Action::ScaleReplicas,
            Some("dev"),
            "shop",
            vec![("spec.replicas", json!(3), json!(1))],
        );
        assert!(assess(&dev).denials.is_empty());
    }

    #[test]
    fn draining_a_node_is_critical_and_needs_security() {
        let r = assess(&remediation(Action::DrainNode, None, "shop", vec![]));
        assert_eq!(
            (r.risk, r.approvals.count, r.approvals.teams.as_slice()),
            (RiskLevel::Critical, 2, &["security".to_owned()][..])
        );
    }

    #[test]
    fn shrinking_a_claim_is_denied() {
        let r = assess(&remediation(
            Action::ExpandPvc,
            None,
            "shop",
            vec![(
                "spec.resources.requests.storage",
                json!("10Gi"),
                json!("5Gi"),
            )],
        ));
        assert_eq!(r.denials.len(), 1, "{r:?}");
        assert!(
            r.reasons.iter().any(|x| x.contains("cannot be undone")),
            "{:?}",
            r.reasons
        );
    }

    #[test]
    fn kube_system_is_critical() {
        let r = assess(&remediation(
            Action::RaiseMemory,
            Some("dev"),
            "kube-system",
            vec![(LIMIT, json!("512Mi"), json!("768Mi"))],
        ));
        assert_eq!(r.risk, RiskLevel::Critical);
    }

    #[test]
    fn a_failing_rego_test_is_reported() {
        let mut files: Vec<(PathBuf, String)> = DEFAULT_POLICIES
            .iter()
            .map(|(n, t)| (PathBuf::from(n), (*t).to_owned()))
            .collect();
        files.push((
            "broken_test.rego".into(),
            "package broken_test\n\ntest_wrong if { 1 == 2 }\n".into(),
        ));
        let results = Policies::from_texts(files).unwrap().run_tests().unwrap();
        assert!(
            results.contains(&("data.broken_test.test_wrong".to_owned(), false)),
            "{results:?}"
        );
    }

    #[test]
    fn a_policy_that_does_not_parse_names_its_file() {
        let err = Policies::from_texts(vec![(
            "bad.rego".into(),
            "package x\n\nallow if {\n".into(),
        )])
        .err()
        .unwrap();
        assert!(err.to_string().starts_with("bad.rego: "), "{err}");
    }
}
