//! The report of `remediator check`: the view `templates/check.md.j2` shows (with, for each
//! changed CustomResourceDefinition, the operator-upgrade block), filled from the check's
//! report; the Markdown for the pull request comment and the job summary (one collapsible block
//! per object, cut to fit GitHub's comment limit); SARIF 2.1.0 for code scanning (policy
//! denials, breaking CRD changes, high and critical risk); and the check run with its
//! annotations. Secret values were masked before they got here. Pure.

use serde::Serialize;
use serde_json::{Value, json};

use super::Templates;
use crate::check::existing::{Existing, NAMED};
use crate::check::{CheckReport, ObjectReport};
use crate::crd::{Breaking, Readability};
use crate::forge::checks::{Annotation, CheckRun, Conclusion, Level};
use crate::forge::split::{GITHUB_LIMIT, split};
use crate::model::RiskLevel;

/// One changed CustomResourceDefinition, for the operator-upgrade block.
#[derive(Debug, Serialize)]
pub struct CrdView<'a> {
    /// The CRD.
    pub object: &'a str,
    /// Its findings that break objects or clients.
    pub breaking: Vec<&'a Breaking>,
    /// Its behaviour changes (defaults).
    pub warnings: Vec<&'a Breaking>,
    /// Its versions before and after, and whether they stay readable, in words.
    pub versions: Option<String>,
    /// Whether every version stays readable.
    pub readable: bool,
    /// Its live objects against the new schema, in words; none without a cluster.
    pub existing: Option<String>,
    /// Each failure of the live objects with the objects that have it.
    pub failures: Vec<String>,
    /// CEL rules that could not be evaluated on the live objects.
    pub unevaluated: Vec<String>,
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
    /// Every changed CRD: what breaks, its versions, its live objects.
    pub crds: Vec<CrdView<'a>>,
    /// The dry-run section, when a cluster was given.
    pub dry_run: Option<&'a str>,
}

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

fn listed(names: &[String]) -> String {
    names.join(", ")
}

fn versions_text(r: &Readability) -> String {
    let arrow = |a: String, b: String| {
        if a == b { a } else { format!("{a} → {b}") }
    };
    let stored = match &r.stored {
        Some(stored) => format!("; objects stored at {} (live)", listed(stored)),
        None => String::new(),
    };
    let verdict = if r.readable {
        "they stay readable"
    } else {
        "**not all stay readable**"
    };
    format!(
        "served {}; storage {}{stored}: {verdict}.",
        arrow(listed(&r.served_before), listed(&r.served_after)),
        arrow(
            r.storage_before.clone().unwrap_or_else(|| "none".into()),
            r.storage_after.clone().unwrap_or_else(|| "none".into())
        ),
    )
}

fn existing_text(e: &Existing) -> String {
    let (invalid, total) = (e.invalid(), e.total());
    let kind = &e.kind;
    if !e.live {
        "not in the cluster yet: no objects to break.".to_owned()
    } else if total == 0 {
        format!("no `{kind}` objects in the cluster.")
    } else if invalid == 0 && e.unchecked() {
        format!(
            "unchecked: none of the {total} `{kind}` objects fails what could be checked, but not every rule could be evaluated here, so whether they pass is unknown."
        )
    } else if invalid == 0 {
        format!("all {total} `{kind}` objects pass the new schema.")
    } else {
        format!(
            "**{invalid} of {total} `{kind}` objects would fail the new schema.** They can still be read, but not updated until they are fixed (the API server lets unchanged invalid values through only where validation ratcheting applies)."
        )
    }
}

fn failures(e: &Existing) -> Vec<String> {
    let mut out = Vec::new();
    for v in &e.versions {
        if let Some(error) = &v.error {
            out.push(format!("{}: not checked: {error}", v.version));
        }
        for (message, objects) in v.validation.grouped() {
            let shown = &objects[..objects.len().min(NAMED)];
            let more = if objects.len() > NAMED { ", …" } else { "" };
            out.push(format!(
                "`{message}` ({}): {}{more} ({} object{})",
                v.version,
                shown.join(", "),
                objects.len(),
                if objects.len() == 1 { "" } else { "s" }
            ));
        }
    }
    out
}

fn crd_views(report: &CheckReport) -> Vec<CrdView<'_>> {
    report
        .objects
        .iter()
        .filter(|o| {
            o.object.starts_with("CustomResourceDefinition/")
                && (!o.breaking.is_empty() || o.readability.is_some() || o.existing.is_some())
        })
        .map(|o| CrdView {
            object: &o.object,
            breaking: o.breaking.iter().filter(|b| b.breaks()).collect(),
            warnings: o.breaking.iter().filter(|b| !b.breaks()).collect(),
            versions: o.readability.as_ref().map(versions_text),
            readable: o.readability.as_ref().is_none_or(|r| r.readable),
            existing: o.existing.as_ref().map(existing_text),
            failures: o.existing.as_ref().map(failures).unwrap_or_default(),
            unevaluated: o
                .existing
                .iter()
                .flat_map(|e| e.versions.iter())
                .flat_map(|v| v.validation.unevaluated.iter().cloned())
                .collect(),
        })
        .collect()
}

/// The Markdown report; `dry_run` is the rendered dry-run section when a cluster was given.
/// Kept under GitHub's comment limit: what does not fit is cut, and says so.
pub fn markdown(
    templates: &Templates,
    report: &CheckReport,
    dry_run: Option<&str>,
) -> super::Result<String> {
    let view = CheckView {
        report,
        base: &report.base[..report.base.len().min(12)],
        head: &report.head[..report.head.len().min(12)],
        approvals: approvals(report),
        crds: crd_views(report),
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
            let (rule, level) = if b.breaks() {
                ("crd-breaking-change", "error")
            } else {
                ("crd-behaviour-change", "warning")
            };
            let mut one = result(rule, level, text, o);
            if let Some(line) = b.line {
                one["locations"][0]["physicalLocation"]["region"]["startLine"] = json!(line);
            }
            results.push(one);
        }
        if let Some(e) = o.existing.as_ref().filter(|e| e.invalid() > 0) {
            let text = format!(
                "{}: {} of {} live {} objects fail the new schema",
                o.object,
                e.invalid(),
                e.total(),
                e.kind
            );
            results.push(result("crd-existing-objects-invalid", "error", text, o));
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
                    rule("crd-behaviour-change", "A CustomResourceDefinition change alters what existing resources mean (a default)"),
                    rule("crd-existing-objects-invalid", "Live custom resources fail the new CustomResourceDefinition schema"),
                    rule("high-risk-change", "A change of high or critical risk"),
                ],
            }},
            "results": results,
        }],
    })
}

/// The name of the check run `check` reports.
pub const CHECK_RUN: &str = "remediator/check";

/// The check run of a report on `head`: its conclusion follows the verdict (denied: failure;
/// more approvals than `default_approvals`: action required; a build that could not be
/// rendered: neutral; else success), the summary is `markdown`, and each finding is annotated
/// at its file and line: every denial, every breaking CRD field (at the field's line in the new
/// CRD) and behaviour change, live objects the new schema refuses, every object of medium risk
/// or more, and every build that could not be rendered (at its kustomization).
pub fn check_run(
    report: &CheckReport,
    head: &str,
    markdown: &str,
    default_approvals: u32,
) -> CheckRun {
    let mut annotations = Vec::new();
    let at =
        |o: &ObjectReport, line: Option<usize>, level: Level, title: String, message: String| {
            Annotation {
                path: o.file.to_string_lossy().replace('\\', "/"),
                line: line.unwrap_or(o.line).max(1),
                level,
                title,
                message,
            }
        };
    for o in &report.objects {
        for denial in &o.assessment.denials {
            annotations.push(at(
                o,
                None,
                Level::Failure,
                format!("Denied: {}", o.object),
                denial.clone(),
            ));
        }
        for b in &o.breaking {
            let (level, what) = if b.breaks() {
                (Level::Failure, "Breaking CRD change")
            } else {
                (Level::Warning, "CRD behaviour change")
            };
            let ratcheted = match b.ratcheted {
                Some(true) => {
                    " The API server ratchets it: stored objects that already break it still update."
                }
                Some(false) => {
                    " The API server does not ratchet it: stored objects that break it can no longer be updated."
                }
                None => "",
            };
            annotations.push(at(
                o,
                b.line,
                level,
                format!("{what}: {} {}", b.version, b.path),
                format!("{}: {} ({}).{ratcheted}", o.object, b.change, b.rule),
            ));
        }
        if let Some(e) = o.existing.as_ref().filter(|e| e.invalid() > 0) {
            annotations.push(at(
                o,
                None,
                Level::Failure,
                format!("Live {} objects fail the new schema", e.kind),
                format!(
                    "{}: {} of {} live {} objects fail the new schema",
                    o.object,
                    e.invalid(),
                    e.total(),
                    e.kind
                ),
            ));
        }
        if o.assessment.risk >= RiskLevel::Medium {
            let level = match o.assessment.risk {
                RiskLevel::Critical => Level::Failure,
                RiskLevel::High => Level::Warning,
                _ => Level::Notice,
            };
            annotations.push(at(
                o,
                None,
                level,
                format!("{} risk: {} ({})", o.assessment.risk, o.object, o.change),
                o.assessment.reasons.join("; "),
            ));
        }
    }
    for build in &report.not_rendered {
        let dir = build.build.to_string_lossy().replace('\\', "/");
        let path = if dir.is_empty() || dir == "." {
            "kustomization.yaml".to_owned()
        } else {
            format!("{}/kustomization.yaml", dir.trim_end_matches('/'))
        };
        annotations.push(Annotation {
            path,
            line: 1,
            level: Level::Warning,
            title: "Not rendered: its change is unknown".into(),
            message: build.reason.clone(),
        });
    }
    let risk = report.assessment.risk;
    let needed = report.assessment.approvals.count;
    let (conclusion, title) = if report.denied() {
        (
            Conclusion::Failure,
            format!(
                "Denied by policy ({} denial{})",
                report.assessment.denials.len(),
                if report.assessment.denials.len() == 1 {
                    ""
                } else {
                    "s"
                }
            ),
        )
    } else if report.needs_approvals_beyond(default_approvals) {
        (
            Conclusion::ActionRequired,
            format!(
                "{risk} risk: needs {needed} approval{}",
                if needed == 1 { "" } else { "s" }
            ),
        )
    } else if !report.not_rendered.is_empty() {
        (
            Conclusion::Neutral,
            format!(
                "{risk} risk; {} build(s) could not be rendered",
                report.not_rendered.len()
            ),
        )
    } else {
        (Conclusion::Success, format!("{risk} risk"))
    };
    CheckRun {
        name: CHECK_RUN.to_owned(),
        head_sha: head.to_owned(),
        conclusion: Some(conclusion),
        title,
        summary: markdown.to_owned(),
        annotations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::Assessment;
    use crate::check::ChangeKind;
    use crate::crd::Breaking;

    fn object(name: &str, risk: RiskLevel, diff: String) -> ObjectReport {
        ObjectReport {
            object: format!("ConfigMap/shop/{name}"),
            environment: None,
            file: format!("apps/{name}.yaml").into(),
            line: 3,
            change: ChangeKind::Modified,
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
            readability: None,
            existing: None,
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
            unknown_scope: vec![],
            formatting: vec![],
            assessment: Assessment::none(),
        }
    }

    #[test]
    fn kinds_of_unknown_scope_are_named() {
        let templates = Templates::load(None).unwrap();
        let mut unknown = report(vec![object("one", RiskLevel::Low, "+a: 1\n".into())]);
        let quiet = markdown(&templates, &unknown, None).unwrap();
        assert!(!quiet.contains("Scope unknown"), "{quiet}");
        unknown.unknown_scope = vec!["ClusterServiceVersion".into(), "Widget".into()];
        let text = markdown(&templates, &unknown, None).unwrap();
        assert!(
            text.contains("Scope unknown without a cluster: `ClusterServiceVersion`, `Widget`"),
            "{text}"
        );
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
            rule: "field-removed".into(),
            severity: crate::crd::Impact::Breaking,
            line: Some(7),
            ratcheted: None,
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
        // A CRD finding sits at its own line of the file.
        assert_eq!(
            results[1]["locations"][0]["physicalLocation"]["region"]["startLine"],
            7
        );
    }
}
