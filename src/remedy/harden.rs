//! A weak security setting a rule has a safe edit for (`insecure-workload`): each field the
//! finding's `edit` evidence names (`PATH = JSON`) is set where the environment sets the
//! workload's fields, as any other edit. Pure.

use serde_json::Value;

use super::{Draft, RemedyResult, Situation, Stop};
use crate::manifests::path::FieldPath;
use crate::model::{Action, Finding};

pub(super) fn harden(finding: &Finding, ctx: &Situation) -> RemedyResult {
    let target = finding.target().clone();
    let declared = ctx.declared(&target)?;
    let edits: Vec<(FieldPath, Value)> = finding
        .evidence
        .iter()
        .filter(|e| e.label == "edit")
        .map(|e| {
            let (path, value) = e
                .value
                .split_once(" = ")
                .ok_or_else(|| Stop::Diagnosis(format!("an edit without a value: {}", e.value)))?;
            let path: FieldPath = path
                .parse()
                .map_err(|error| Stop::Diagnosis(format!("{path}: {error}")))?;
            let value: Value = serde_json::from_str(value)
                .map_err(|error| Stop::Diagnosis(format!("{value}: {error}")))?;
            Ok((path, value))
        })
        .collect::<Result<_, Stop>>()?;
    if edits.is_empty() {
        return Err(Stop::Diagnosis("the rule names no edit".into()));
    }
    let rule = finding.fact("rule").unwrap_or("a security rule");
    let mut draft = Draft::new(
        finding,
        Action::HardenWorkload,
        target.clone(),
        Some(&declared),
        format!("Harden {target}: {rule}"),
        "Revert the commit: the setting goes back, and with it what the rule warns of.".into(),
    );
    for (path, value) in edits {
        let (location, doc) = ctx.field_location(&declared, &path);
        draft.set(&location, &doc, path, value);
    }
    Ok(draft.finish())
}
