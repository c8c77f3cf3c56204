//! The pull-request comments of the merge path (refused, healthy, unhealthy, rolled back) with
//! their evidence: the dry-run diff from before applying and each object's health after. Each is
//! one [`CommentView`] rendered by `templates/reconcile.md.j2`. Pure.

use serde_json::{Value, json};

use super::{Subject, Verified};
use crate::changes::short;
use crate::views::Templates;
use crate::views::reconcile::{ChangeRow, CommentView, DiffView, HealthRow};

impl CommentView {
    fn evidence(kind: &'static str, subject: &Subject, verified: &Verified) -> CommentView {
        let mut changes: Vec<ChangeRow> = verified
            .changes
            .entries
            .iter()
            .map(|e| ChangeRow {
                object: format!("`{}`", e.subject),
                result: std::iter::once(e.action.to_string())
                    .chain(
                        e.contested
                            .iter()
                            .map(|c| format!("`{}` {} {}", c.field, c.outcome, c.manager)),
                    )
                    .collect::<Vec<_>>()
                    .join("; "),
            })
            .collect();
        changes.extend(verified.executed.iter().map(|line| ChangeRow {
            object: "action record".to_owned(),
            result: line.clone(),
        }));
        CommentView {
            kind,
            commit: short(subject.commit),
            changes,
            before: verified
                .before
                .iter()
                .filter(|(_, d)| !d.trim().is_empty())
                .map(|(object, diff)| DiffView {
                    object: object.clone(),
                    diff: diff.trim_end().to_owned(),
                })
                .collect(),
            health: verified
                .health
                .iter()
                .map(|(object, health)| HealthRow {
                    object: object.to_string(),
                    status: health.status.to_string(),
                    message: health.message.replace('|', "\\|"),
                })
                .collect(),
            ..CommentView::default()
        }
    }
}

fn fill(templates: &Templates, view: &CommentView) -> String {
    templates
        .reconcile(view)
        .unwrap_or_else(|e| format!("remediator: {} ({e})", view.kind))
}

/// Refused by the gate or a lock.
pub(super) fn refused(templates: &Templates, subject: &Subject, reasons: &[String]) -> String {
    let view = CommentView {
        kind: "refused",
        commit: short(subject.commit),
        reasons: reasons.to_vec(),
        ..CommentView::default()
    };
    fill(templates, &view)
}

/// Applied and healthy.
pub(super) fn healthy(templates: &Templates, subject: &Subject, verified: &Verified) -> String {
    fill(
        templates,
        &CommentView::evidence("healthy", subject, verified),
    )
}

/// Applied but not healthy.
pub(super) fn unhealthy(
    templates: &Templates,
    subject: &Subject,
    verified: &Verified,
    reason: &str,
) -> String {
    let view = CommentView {
        reason: Some(reason.to_owned()),
        ..CommentView::evidence("unhealthy", subject, verified)
    };
    fill(templates, &view)
}

/// How a rollback went.
pub(super) struct Rollback<'a> {
    /// The revert commit, 12 digits.
    pub(super) revert: String,
    /// The rollback pull request, when there is one.
    pub(super) pull: Option<u64>,
    /// The reverted state applied and verified, when it was.
    pub(super) verified: Option<&'a Verified>,
    /// Objects the merge created, left in the cluster.
    pub(super) left: &'a [String],
}

/// Rolled back with a revert commit (or a pull request of one).
pub(super) fn rolled_back(templates: &Templates, subject: &Subject, rollback: &Rollback) -> String {
    let evidence = match rollback.verified {
        Some(verified) => CommentView::evidence("rolled-back", subject, verified),
        None => CommentView {
            kind: "rolled-back",
            commit: short(subject.commit),
            ..CommentView::default()
        },
    };
    let view = CommentView {
        revert: Some(rollback.revert.clone()),
        revert_pull: rollback.pull,
        failure: rollback.verified.and_then(|v| v.failure.clone()),
        left: rollback.left.to_vec(),
        // The diff from before the rollback repeats the merge's own comment.
        before: vec![],
        ..evidence
    };
    fill(templates, &view)
}

/// The audit detail of a verification.
pub(super) fn health_detail(verified: &Verified) -> Value {
    json!({
        "changes": verified.changes,
        "health": verified.health.iter().map(|(o, h)| json!({"object": o.to_string(), "status": h.status.to_string(), "message": h.message})).collect::<Vec<_>>(),
        "unsynced": verified.unsynced,
        "failure": verified.failure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> Templates {
        Templates::load(None).unwrap()
    }

    #[test]
    fn each_kind_of_comment_says_what_happened() {
        let refused = fill(
            &templates(),
            &CommentView {
                kind: "refused",
                commit: "0123456789ab".into(),
                reasons: vec!["needs 1 approval".into(), "denied by policy: no".into()],
                ..CommentView::default()
            },
        );
        assert!(
            refused.starts_with(
                "### remediator: not applied\n\nThe merge of 0123456789ab was **refused**"
            ),
            "{refused}"
        );
        assert!(
            refused.contains("\n- needs 1 approval\n- denied by policy: no\n"),
            "{refused}"
        );

        let healthy = CommentView {
            kind: "healthy",
            commit: "0123456789ab".into(),
            changes: vec![ChangeRow {
                object: "`ConfigMap/a/b`".into(),
                result: "configured".into(),
            }],
            before: vec![DiffView {
                object: "ConfigMap/a/b".into(),
                diff: "-x: 1\n+x: 2".into(),
            }],
            health: vec![HealthRow {
                object: "ConfigMap/a/b".into(),
                status: "Healthy".into(),
                message: "a \\| b".into(),
            }],
            ..CommentView::default()
        };
        let text = fill(&templates(), &healthy);
        assert!(
            text.contains("| `ConfigMap/a/b` | configured |\n"),
            "{text}"
        );
        assert!(text.contains("```diff\n-x: 1\n+x: 2\n```"), "{text}");
        assert!(
            text.contains("| `ConfigMap/a/b` | Healthy | a \\| b |\n"),
            "{text}"
        );

        let rolled = CommentView {
            kind: "rolled-back",
            revert: Some("fedcba987654".into()),
            revert_pull: Some(9),
            left: vec!["ConfigMap/a/new".into(), "Secret/a/new".into()],
            ..healthy
        };
        let text = fill(&templates(), &rolled);
        assert!(
            text.contains("0123456789ab is reverted by fedcba987654, proposed in #9"),
            "{text}"
        );
        assert!(text.contains("left in the cluster (delete them by hand if they should go): `ConfigMap/a/new`, `Secret/a/new`"), "{text}");
    }
}
