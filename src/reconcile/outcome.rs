//! The pull-request comments of the merge path (refused, healthy, unhealthy, rolled back) with
//! their evidence: the dry-run diff from before applying and each object's health after. Pure.

use serde_json::{Value, json};

use super::changes::short;
use super::{Subject, Verified};

fn changes_table(verified: &Verified) -> String {
    let mut out = String::from("| object | result |\n|---|---|\n");
    for entry in &verified.changes.entries {
        out.push_str(&format!("| `{}` | {} |\n", entry.subject, entry.action));
    }
    for line in &verified.executed {
        out.push_str(&format!("| action record | {line} |\n"));
    }
    out
}

fn health_table(verified: &Verified) -> String {
    if verified.health.is_empty() {
        return String::new();
    }
    let mut out =
        String::from("\n**After** (health):\n\n| object | health | message |\n|---|---|---|\n");
    for (object, health) in &verified.health {
        out.push_str(&format!(
            "| `{object}` | {} | {} |\n",
            health.status,
            health.message.replace('|', "\\|")
        ));
    }
    out
}

fn before(verified: &Verified) -> String {
    let diffs: Vec<&(String, String)> = verified
        .before
        .iter()
        .filter(|(_, d)| !d.trim().is_empty())
        .collect();
    if diffs.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n<details><summary><b>Before</b>: live diff from the server-side dry-run</summary>\n\n",
    );
    for (object, diff) in diffs {
        out.push_str(&format!(
            "`{object}`\n\n```diff\n{}\n```\n\n",
            diff.trim_end()
        ));
    }
    out.push_str("</details>\n");
    out
}

/// Refused by the gate or a lock.
pub(super) fn refused(subject: &Subject, reasons: &[String]) -> String {
    let mut out = format!(
        "### remediator: not applied\n\nThe merge of {} was **refused**; nothing was applied to the cluster.\n\n",
        short(subject.commit)
    );
    for reason in reasons {
        out.push_str(&format!("- {reason}\n"));
    }
    out.push_str(
        "\nApprove and merge a new pull request with the same change, or apply it by hand.\n",
    );
    out
}

/// Applied and healthy.
pub(super) fn healthy(subject: &Subject, verified: &Verified) -> String {
    format!(
        "### remediator: applied and healthy\n\nThe merge of {} is applied and every object is healthy.\n\n{}{}{}",
        short(subject.commit),
        changes_table(verified),
        before(verified),
        health_table(verified)
    )
}

/// Applied but not healthy.
pub(super) fn unhealthy(subject: &Subject, verified: &Verified, reason: &str) -> String {
    format!(
        "### remediator: not healthy\n\nThe merge of {} was applied but is **not healthy**: {reason}\n\n{}{}{}",
        short(subject.commit),
        changes_table(verified),
        before(verified),
        health_table(verified)
    )
}

/// Rolled back with a revert commit (or a pull request of one).
pub(super) fn rolled_back(
    subject: &Subject,
    revert: &str,
    pull: Option<u64>,
    verified: Option<&Verified>,
    left: &[String],
) -> String {
    let mut out = format!(
        "### remediator: rolled back\n\n{} is reverted by {revert}",
        short(subject.commit)
    );
    match (pull, verified) {
        (Some(number), _) => out.push_str(&format!(
            ", proposed in #{number} because the base branch takes no direct pushes; merge it to roll back.\n"
        )),
        (None, Some(v)) if v.failure.is_none() => {
            out.push_str(", pushed to the base branch and applied; the reverted state is **healthy**.\n\n");
            out.push_str(&changes_table(v));
            out.push_str(&health_table(v));
        }
        (None, Some(v)) => {
            out.push_str(&format!(
                ", pushed to the base branch and applied, but the reverted state is **not healthy** either: {}\n\n",
                v.failure.as_deref().unwrap_or_default()
            ));
            out.push_str(&changes_table(v));
            out.push_str(&health_table(v));
        }
        (None, None) => out.push('\n'),
    }
    if !left.is_empty() {
        out.push_str(&format!(
            "\nCreated by the merge and left in the cluster (delete them by hand if they should go): {}\n",
            left.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    out
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
