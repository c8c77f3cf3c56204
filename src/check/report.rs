//! A check's report: Markdown for the pull request comment and the job summary, from
//! `templates/check.md.j2` (one collapsible block per object, cut to fit GitHub's comment
//! limit), and SARIF 2.1.0 for code scanning (policy
//! denials, breaking CRD changes, high and critical risk). Secret values were masked before they
//! got here. Pure.

use serde::Serialize;
use serde_json::{Value, json};

use super::{CheckReport, ObjectReport};
use crate::forge::split::{GITHUB_LIMIT, split};
use crate::model::RiskLevel;
use crate::render::Templates;

/// The marker of the one comment `check --comment` keeps up to date.
pub const COMMENT_MARKER: &str = "check";

fn approvals(report: &CheckReport) -> String {
    let a = &report.assessment.approvals;
    let plural = if a.count == 1 { "" } else { "s" };
    let teams = if a.teams.is_empty() {
        String::new()
    } else {
        format!(", including {}", a.teams.join(", "))
    };
    format!("{} approval{plural}{teams}", a.count)
}

/// One breaking change with its object, for the template.
#[derive(Debug, Serialize)]
pub struct BreakingView<'a> {
    /// The CRD.
    pub object: &'a str,
    /// Its version.
    pub version: &'a str,
    /// The path.
    pub path: &'a str,
    /// What changed.
    pub change: &'a str,
}

/// What `templates/check.md.j2` shows.
#[derive(Debug, Serialize)]
pub struct CheckView<'a> {
    /// The report.
    pub report: &'a CheckReport,
    /// The merge base, 12 digits.
    pub base: &'a str,
    /// The head, 12 digits.
    pub head: &'a str,
    /// The approvals needed, in words (`2 approvals, including security`).
    pub approvals: String,
    /// Every breaking CRD change.
    pub breaking: Vec<BreakingView<'a>>,
    /// The dry-run section, when a cluster was given.
    pub dry_run: Option<&'a str>,
}

/// The Markdown report; `dry_run` is the rendered dry-run section when a cluster was given.
/// Kept under GitHub's comment limit: what does not fit is cut, and says so.
pub fn markdown(
    templates: &Templates,
    report: &CheckReport,
    dry_run: Option<&str>,
) -> crate::render::Result<String> {
    let view = CheckView {
        report,
        base: &report.base[..report.base.len().min(12)],
        head: &report.head[..report.head.len().min(12)],
        approvals: approvals(report),
        breaking: report
            .breaking()
            .map(|(o, b)| BreakingView {
                object: &o.object,
                version: &b.version,
                path: &b.path,
                change: &b.change,
            })
            .collect(),
        dry_run,
    };
    let out = templates.check(&view)?;
    let pieces = split(&out, GITHUB_LIMIT - 500);
    Ok(match pieces.len() {
        1 => out,
        n => format!(
            "{}\n\n*The report is cut here ({} more parts did not fit in one comment); the job summary and `--output json` have all of it.*\n",
            pieces[0],
            n - 1
        ),
    })
}

fn result(rule: &str, level: &str, text: String, o: &ObjectReport) -> Value {
    json!({
        "ruleId": rule,
        "level": level,
        "message": {"text": text},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": o.file.to_string_lossy().replace('\\', "/")},
            "region": {"startLine": o.line.max(1)},
        }}],
    })
}

/// SARIF 2.1.0: one result per policy denial and breaking CRD change (errors), and per object
/// of high or critical risk (warnings).
pub fn sarif(report: &CheckReport) -> Value {
    let mut results = Vec::new();
    for o in &report.objects {
        for denial in &o.assessment.denials {
            results.push(result(
                "policy-denial",
                "error",
                format!("{}: {denial}", o.object),
                o,
            ));
        }
        for b in &o.breaking {
            let text = format!("{} {} {}: {}", o.object, b.version, b.path, b.change);
            results.push(result("crd-breaking-change", "error", text, o));
        }
        if o.assessment.risk >= RiskLevel::High {
            let text = format!(
                "{}: {} risk ({})",
                o.object,
                o.assessment.risk,
                o.assessment.reasons.join("; ")
            );
            results.push(result("high-risk-change", "warning", text, o));
        }
    }
    let rule = |id: &str, text: &str| json!({"id": id, "shortDescription": {"text": text}});
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "remediator",
                "informationUri": "https://github.com/remediator/remediator",
                "rules": [
                    rule("policy-denial", "A policy refuses this change"),
                    rule("crd-breaking-change", "A CustomResourceDefinition change breaks existing resources or clients"),
                    rule("high-risk-change", "A change of high or critical risk"),
                ],
            }},
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::Assessment;
    use crate::check::{Breaking, Kind};

    fn object(name: &str, risk: RiskLevel, diff: String) -> ObjectReport {
        ObjectReport {
            object: format!("ConfigMap/shop/{name}"),
            environment: None,
            file: format!("apps/{name}.yaml").into(),
            line: 3,
            change: Kind::Modified,
            deletes: false,
            applier: None,
            pruner: None,
            unrendered: None,
            assessment: Assessment {
                risk,
                ..Assessment::none()
            },
            fields: vec![],
            diff,
            breaking: vec![],
        }
    }

    fn report(objects: Vec<ObjectReport>) -> CheckReport {
        CheckReport {
            base: "a".repeat(40),
            head: "b".repeat(40),
            objects,
            not_rendered: vec![],
            renderer: None,
            unused: vec![],
            assessment: Assessment::none(),
        }
    }

    #[test]
    fn a_report_too_long_for_a_comment_is_cut_and_says_so() {
        let diff: String = (0..400)
            .map(|i| format!("+  key{i}: {}\n", "v".repeat(60)))
            .collect();
        let objects = (0..20)
            .map(|i| object(&format!("c{i}"), RiskLevel::Low, diff.clone()))
            .collect();
        let templates = Templates::load(None).unwrap();
        let text = markdown(&templates, &report(objects), None).unwrap();
        assert!(text.chars().count() <= GITHUB_LIMIT, "{}", text.len());
        assert!(
            text.contains("*The report is cut here ("),
            "the cut is said"
        );
        assert_eq!(text.matches("```").count() % 2, 0, "no fence left open");
        let short = markdown(
            &templates,
            &report(vec![object("one", RiskLevel::Low, "+a: 1\n".into())]),
            Some("### Dry-run"),
        )
        .unwrap();
        assert!(!short.contains("cut here"));
        assert!(short.ends_with("</details>\n\n### Dry-run\n"), "{short}");
    }

    #[test]
    fn sarif_has_a_result_for_each_denial_breaking_change_and_risky_object() {
        let mut denied = object("a", RiskLevel::Medium, String::new());
        denied.assessment.denials.push("no".into());
        let mut crd = object("b", RiskLevel::Critical, String::new());
        crd.breaking.push(Breaking {
            version: "v1".into(),
            path: ".spec.x".into(),
            change: "field removed".into(),
        });
        let calm = object("c", RiskLevel::Low, String::new());
        let value = sarif(&report(vec![denied, crd, calm]));
        let results = value["runs"][0]["results"].as_array().unwrap();
        let rules: Vec<&str> = results
            .iter()
            .map(|r| r["ruleId"].as_str().unwrap())
            .collect();
        assert_eq!(
            rules,
            ["policy-denial", "crd-breaking-change", "high-risk-change"]
        );
        assert_eq!(
            results[1]["message"]["text"],
            "ConfigMap/shop/b v1 .spec.x: field removed"
        );
        assert_eq!(
            results[0]["locations"][0]["physicalLocation"]["region"]["startLine"],
            3
        );
    }
}
