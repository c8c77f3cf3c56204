//! Views: pull request titles and bodies, the merge path's comments, the check report and the
//! reports, filled from templates in `templates/` (embedded at build time, replaced file by file
//! from a directory), each from one typed view ([`check`], [`reconcile`], [`DryRunView`], ...)
//! that the pipelines produce. Pure once the templates are loaded.

pub mod check;
pub mod reconcile;

use std::path::{Path, PathBuf};

use minijinja::Environment;
use serde::Serialize;

use crate::assess::Assessment;
use crate::cluster::DryRunResult;
use crate::cluster::conflicts::{is_controller, manager_name};
use crate::config::{ConflictMode, ConflictPolicy};
use crate::model::quantity::{format_cpu, format_memory};
use crate::model::{Evidence, UsageFacts};
use crate::remedy::Remediation;

/// The embedded templates, by name.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "pr_title.txt.j2",
        include_str!("../../templates/pr_title.txt.j2"),
    ),
    (
        "pr_body.md.j2",
        include_str!("../../templates/pr_body.md.j2"),
    ),
    (
        "dry_run.md.j2",
        include_str!("../../templates/dry_run.md.j2"),
    ),
    (
        "report_weekly.md.j2",
        include_str!("../../templates/report_weekly.md.j2"),
    ),
    (
        "report_security.md.j2",
        include_str!("../../templates/report_security.md.j2"),
    ),
    (
        "report_capacity.md.j2",
        include_str!("../../templates/report_capacity.md.j2"),
    ),
    (
        "report_runbook.md.j2",
        include_str!("../../templates/report_runbook.md.j2"),
    ),
    ("check.md.j2", include_str!("../../templates/check.md.j2")),
    (
        "reconcile.md.j2",
        include_str!("../../templates/reconcile.md.j2"),
    ),
];

/// What can go wrong rendering.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An override file cannot be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A template does not parse or does not render.
    #[error("template {name}: {message}")]
    Template {
        /// The template.
        name: String,
        /// minijinja's message, with the line.
        message: String,
    },
}

/// Result of rendering.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The loaded templates.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The embedded templates, each replaced by the file of the same name in `overrides` when
    /// there is one.
    pub fn load(overrides: Option<&Path>) -> Result<Self> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| Error::Template {
                name: "(syntax)".into(),
                message: e.to_string(),
            })?;
        env.set_syntax(syntax);
        for (name, text) in TEMPLATES {
            let text = match overrides.map(|dir| dir.join(name)).filter(|p| p.is_file()) {
                Some(file) => {
                    std::fs::read_to_string(&file).map_err(|source| Error::Read { file, source })?
                }
                None => (*text).to_owned(),
            };
            env.add_template_owned(*name, text)
                .map_err(|e| Error::Template {
                    name: (*name).to_owned(),
                    message: describe(&e),
                })?;
        }
        Ok(Self { env })
    }

    fn fill(&self, name: &str, view: &impl Serialize) -> Result<String> {
        let template = self.env.get_template(name).map_err(|e| Error::Template {
            name: name.into(),
            message: describe(&e),
        })?;
        template
            .render(minijinja::value::Serde(view))
            .map_err(|e| Error::Template {
                name: name.into(),
                message: describe(&e),
            })
    }

    /// The title and body of the pull request for one proposal.
    pub fn pull_request(&self, view: &PullRequestView) -> Result<(String, String)> {
        Ok((
            short(self.fill("pr_title.txt.j2", view)?.trim(), 120),
            self.fill("pr_body.md.j2", view)?,
        ))
    }

    /// The dry-run section of a pull request.
    pub fn dry_run(&self, view: &DryRunView) -> Result<String> {
        Ok(self.fill("dry_run.md.j2", view)?.trim_end().to_owned())
    }

    /// A comment of the merge path on the pull request it merged.
    pub fn reconcile(&self, view: &reconcile::CommentView) -> Result<String> {
        self.fill("reconcile.md.j2", view)
    }

    /// A report of `remediator report` (`weekly`, `security`).
    pub fn report(&self, kind: &str, view: &impl Serialize) -> Result<String> {
        self.fill(&format!("report_{kind}.md.j2"), view)
    }

    /// The report of `remediator check`.
    pub fn check(&self, view: &check::CheckView) -> Result<String> {
        self.fill("check.md.j2", view)
    }
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
fn short(text: &str, max: usize) -> String {
    match text.char_indices().nth(max - 1) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn describe(e: &minijinja::Error) -> String {
    match e.line() {
        Some(line) => format!("line {line}: {e}"),
        None => e.to_string(),
    }
}

/// What the dry-run section shows.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunView {
    /// The cluster (kubeconfig context or server).
    pub cluster: String,
    /// The field manager the apply will use.
    pub field_manager: String,
    /// Each object's result.
    pub objects: Vec<DryRunObjectView>,
    /// Why the dry-run could not run, when it could not.
    pub error: Option<String>,
    /// Objects not dry-run, each group with why (an environment without a cluster).
    pub skipped: Vec<String>,
}

/// One object of the dry-run section.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunObjectView {
    /// `Kind/namespace/name`.
    pub object: String,
    /// created, configured or unchanged.
    pub action: String,
    /// The live diff, Secret values masked.
    pub diff: String,
    /// Other managers of the fields it sets, and what the merge will do with each.
    pub conflicts: Vec<ConflictView>,
    /// Whether another manager owns `.spec.replicas`.
    pub replicas_owned: bool,
    /// Whether a field is refused: the merge will apply nothing of the change.
    pub refused: bool,
    /// The GitOps tool the object is left to, which syncs it (its conflicts are that tool's).
    pub synced_by: Option<String>,
}

/// A field another manager owns, as the dry-run section shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConflictView {
    /// The manager's name.
    pub manager: String,
    /// The field, `.spec.replicas`.
    pub field: String,
    /// `force`, `skip-field` or `refuse`, from `reconcile.conflicts`.
    pub mode: ConflictMode,
    /// Whether the manager is a controller.
    pub controller: bool,
}

impl DryRunView {
    /// The view of a dry-run's results, each conflict with what `policy` will do with it.
    pub fn new(
        cluster: &str,
        field_manager: &str,
        results: &[DryRunResult],
        policy: &ConflictPolicy,
    ) -> Self {
        let objects = results
            .iter()
            .map(|r| {
                let conflicts: Vec<ConflictView> = r
                    .conflicts
                    .iter()
                    .map(|c| ConflictView {
                        manager: manager_name(&c.manager).to_owned(),
                        field: c.field.clone(),
                        mode: crate::cluster::conflicts::decide(policy, c),
                        controller: is_controller(manager_name(&c.manager)),
                    })
                    .collect();
                DryRunObjectView {
                    object: r.object.to_string(),
                    action: r.action.to_string(),
                    diff: r.diff.clone(),
                    replicas_owned: r.conflicts.iter().any(|c| c.field == ".spec.replicas"),
                    refused: r.synced_by.is_none()
                        && conflicts.iter().any(|c| c.mode == ConflictMode::Refuse),
                    synced_by: r.synced_by.clone(),
                    conflicts,
                }
            })
            .collect();
        DryRunView {
            cluster: cluster.to_owned(),
            field_manager: field_manager.to_owned(),
            objects,
            error: None,
            skipped: vec![],
        }
    }

    /// The view of a dry-run that failed.
    pub fn failed(cluster: &str, field_manager: &str, error: String) -> Self {
        DryRunView {
            error: Some(error),
            ..DryRunView::new(cluster, field_manager, &[], &ConflictPolicy::default())
        }
    }
}

/// Everything the pull request templates show.
#[derive(Debug, Clone, Serialize)]
pub struct PullRequestView {
    /// Remediation id.
    pub id: String,
    /// One line: what changes.
    pub summary: String,
    /// Finding code.
    pub code: String,
    /// Finding severity.
    pub severity: String,
    /// Where the finding was seen.
    pub subject: String,
    /// The workload that owns the subject, when known.
    pub owner: Option<String>,
    /// The object the change applies to.
    pub target: String,
    /// Its environment.
    pub environment: Option<String>,
    /// The finding's explanation.
    pub explanation: String,
    /// The finding's evidence.
    pub evidence: Vec<Evidence>,
    /// Usage charts.
    pub charts: Vec<ChartView>,
    /// The unified diff, Secret values masked.
    pub diff: String,
    /// Risk level.
    pub risk: String,
    /// Whether the risk is above the environment's tolerance.
    pub escalated: bool,
    /// Reasons behind the risk.
    pub reasons: Vec<String>,
    /// Approvals required.
    pub approvals: u32,
    /// Teams required among the approvers.
    pub teams: Vec<String>,
    /// Policy denials.
    pub denials: Vec<String>,
    /// The dry-run section.
    pub dry_run: String,
    /// How to undo it.
    pub rollback: String,
    /// The catalog entry of the action.
    pub action: crate::model::ActionSpec,
    /// Link to the runbook section.
    pub runbook: String,
    /// The explanation in plain words, when an endpoint was asked.
    pub plain_words: Option<crate::explain::Explanation>,
}

impl PullRequestView {
    /// The view of a remediation, its assessment and its diff.
    pub fn new(
        remediation: &Remediation,
        assessment: &Assessment,
        diff: String,
        dry_run: String,
    ) -> Self {
        let finding = &remediation.finding;
        Self {
            id: remediation.id.clone(),
            summary: remediation.summary.clone(),
            code: finding.code.to_string(),
            severity: finding.severity.to_string(),
            subject: finding.subject.to_string(),
            owner: finding.owner.as_ref().map(ToString::to_string),
            target: remediation.target.to_string(),
            environment: remediation.environment.clone(),
            explanation: finding.explanation.clone(),
            evidence: finding.evidence.clone(),
            charts: finding
                .usage
                .iter()
                .filter(|u| u.chart.len() >= 2)
                .map(ChartView::new)
                .collect(),
            diff,
            risk: assessment.risk.to_string(),
            escalated: assessment.escalated,
            reasons: assessment.reasons.clone(),
            approvals: assessment.approvals.count,
            teams: assessment.approvals.teams.clone(),
            denials: assessment.denials.clone(),
            dry_run,
            rollback: remediation.rollback.clone(),
            action: remediation.action.spec(),
            runbook: finding.code.runbook(),
            plain_words: None,
        }
    }
}

/// A Mermaid line chart of one resource's usage, with its request as a second line.
#[derive(Debug, Clone, Serialize)]
pub struct ChartView {
    /// `cpu`, `memory` or `storage`.
    pub resource: String,
    /// `millicores` or `MiB`.
    pub unit: String,
    /// How long the samples span.
    pub span: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Largest x value.
    pub x_max: u64,
    /// Largest y value shown.
    pub y_max: u64,
    /// The samples, in `unit`.
    pub values: Vec<u64>,
    /// The request at every sample, when set.
    pub request: Option<Vec<u64>>,
    /// p95, formatted.
    pub p95: String,
    /// Peak, formatted.
    pub max: String,
    /// Request, formatted.
    pub request_label: Option<String>,
    /// Limit, formatted.
    pub limit_label: Option<String>,
    /// Where the forecast starts, in x-axis units, when the chart carries one.
    pub forecast_from: Option<u64>,
}

impl ChartView {
    fn new(usage: &UsageFacts) -> Self {
        let cpu = usage.resource == "cpu";
        let (unit, scale) = if cpu {
            ("millicores", 1.0)
        } else {
            ("MiB", 1048576.0)
        };
        let format = |v: f64| if cpu { format_cpu(v) } else { format_memory(v) };
        let span = usage.chart.last().map_or(0.0, |p| p.0);
        let (x_label, x_scale) = if span >= 2.0 * 3600.0 {
            ("hours", 3600.0)
        } else {
            ("minutes", 60.0)
        };
        let values: Vec<u64> = usage
            .chart
            .iter()
            .map(|(_, v)| (v / scale).round() as u64)
            .collect();
        let request = usage
            .request
            .map(|r| vec![(r / scale).round() as u64; values.len()]);
        let top = values
            .iter()
            .copied()
            .chain(request.iter().flatten().copied())
            .max()
            .unwrap_or(1);
        Self {
            resource: usage.resource.clone(),
            unit: unit.into(),
            span: crate::detect::human(k8s_openapi::jiff::SignedDuration::from_secs(span as i64)),
            x_label: x_label.into(),
            x_max: (span / x_scale).ceil() as u64,
            y_max: top + top / 5 + 1,
            values,
            request,
            p95: format(usage.p95),
            max: format(usage.max),
            request_label: usage.request.map(format),
            limit_label: usage.limit.map(format),
            forecast_from: usage.forecast_from.map(|f| (f / x_scale).round() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::FieldConflict;
    use crate::model::{ChangeAction, ObjectRef};

    fn result(conflicts: Vec<FieldConflict>) -> DryRunResult {
        DryRunResult {
            object: ObjectRef::new("apps/v1", "Deployment", Some("shop"), "web"),
            action: ChangeAction::Configured,
            diff: "--- a/x\n+++ b/x\n-  replicas: 2\n+  replicas: 3\n".into(),
            conflicts,
            synced_by: None,
        }
    }

    #[test]
    fn the_dry_run_section_names_other_owners_and_warns_about_autoscalers() {
        let templates = Templates::load(None).unwrap();
        let conflict = FieldConflict {
            manager: "\"kube-controller-manager\" using apps/v1".into(),
            field: ".spec.replicas".into(),
        };
        let policy = ConflictPolicy::default();
        let view = DryRunView::new(
            "prod",
            "remediator",
            &[result(vec![conflict.clone()])],
            &policy,
        );
        let text = templates.dry_run(&view).unwrap();
        assert!(
            text.contains(
                "| `Deployment/shop/web` | configured | kube-controller-manager on `.spec.replicas` (refuse) |"
            ),
            "{text}"
        );
        assert!(text.contains("> [!CAUTION]"), "{text}");
        assert!(
            text.contains("`.spec.replicas` is owned by kube-controller-manager (a controller): on merge it is **refused**"),
            "{text}"
        );
        assert!(text.contains("nothing of it is applied"), "{text}");
        assert!(
            text.contains("change the HorizontalPodAutoscaler instead"),
            "{text}"
        );
        assert!(text.contains("```diff\n--- a/x"), "{text}");

        let kubectl = FieldConflict {
            manager: "\"kubectl-edit\"".into(),
            field: ".spec.template.spec.containers[name=\"web\"].image".into(),
        };
        let taken = templates
            .dry_run(&DryRunView::new(
                "prod",
                "remediator",
                &[result(vec![kubectl])],
                &policy,
            ))
            .unwrap();
        assert!(taken.contains("> [!WARNING]"), "{taken}");
        assert!(
            taken.contains("taken over, and kubectl-edit may set it back"),
            "{taken}"
        );
        assert!(!taken.contains("nothing of it is applied"), "{taken}");
        let synced = DryRunResult {
            synced_by: Some("Argo CD application shop".into()),
            ..result(vec![conflict.clone()])
        };
        let synced = templates
            .dry_run(&DryRunView::new("prod", "remediator", &[synced], &policy))
            .unwrap();
        assert!(
            synced.contains(
                "is synced by Argo CD application shop, which applies the merged change itself"
            ),
            "{synced}"
        );
        assert!(!synced.contains("refused"), "{synced}");
        let left = ConflictPolicy::all(ConflictMode::SkipField);
        let left = templates
            .dry_run(&DryRunView::new(
                "prod",
                "remediator",
                &[result(vec![conflict])],
                &left,
            ))
            .unwrap();
        assert!(left.contains("left to it, and the rest applied"), "{left}");

        let quiet = templates
            .dry_run(&DryRunView::new(
                "prod",
                "remediator",
                &[result(vec![])],
                &policy,
            ))
            .unwrap();
        assert!(!quiet.contains("WARNING"), "{quiet}");
        assert!(quiet.contains("| configured | none |"), "{quiet}");

        let failed = DryRunView::failed("prod", "remediator", "no route".into());
        assert_eq!(
            templates.dry_run(&failed).unwrap(),
            "The server-side dry-run failed: no route"
        );
    }
}
