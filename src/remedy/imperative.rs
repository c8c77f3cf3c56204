//! Imperative actions (cordon or drain a node, delete a stuck pod, expand a claim that no
//! manifest declares) are written as a small `Remediation` record of remediator's own API group
//! in the repository; the merge path executes the record. A claim the repository declares is
//! expanded in its manifest instead. Pure.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::Change;
use super::{Draft, RemedyResult, Situation, Stop};
use crate::manifests::path::FieldPath;
use crate::model::quantity::format_storage;
use crate::model::{Action, FieldChange, Finding, ObjectRef};

/// API version of action records.
pub const RECORD_API_VERSION: &str = "remediator.dev/v1alpha1";

pub(super) fn node(finding: &Finding, ctx: &Situation, action: Action) -> RemedyResult {
    let node = finding.subject.clone();
    let options = match action {
        Action::DrainNode => {
            json!({"ignoreDaemonSets": true, "deleteEmptyDirData": false, "respectPodDisruptionBudgets": true, "timeout": "10m"})
        }
        _ => json!({}),
    };
    let verb = if action == Action::DrainNode {
        "Drain"
    } else {
        "Cordon"
    };
    let record = Record {
        action,
        target: &node,
        finding,
        options,
        undo: json!({"action": "uncordon-node", "note": "pods moved away do not move back on their own"}),
    };
    Ok(record.into_remediation(
        ctx,
        format!("{verb} node `{}`", node.name),
        format!("Merge a revert of this change: remediator uncordons `{}`. Evicted pods stay where they were rescheduled.", node.name),
    ))
}

pub(super) fn delete_pod(finding: &Finding, ctx: &Situation) -> RemedyResult {
    let pod = finding.subject.clone();
    let record = Record {
        action: Action::DeletePod,
        target: &pod,
        finding,
        options: json!({"gracePeriodSeconds": 0}),
        undo: json!({"action": "none", "note": "the pod's controller creates its replacement"}),
    };
    Ok(record.into_remediation(
        ctx,
        format!("Delete stuck pod {pod} with a zero grace period"),
        "Nothing to undo: a deleted pod is replaced by its controller.".into(),
    ))
}

pub(super) fn expand_pvc(finding: &Finding, ctx: &Situation) -> RemedyResult {
    let claim = finding.subject.clone();
    let capacity = finding
        .usage
        .first()
        .and_then(|u| u.request)
        .ok_or_else(|| Stop::Diagnosis("the claim's capacity is unknown".into()))?;
    let size = format_storage(capacity * 1.5);
    match ctx.declared(&claim) {
        Ok(declared) => {
            let path: FieldPath = "spec.resources.requests.storage"
                .parse()
                .expect("a valid path");
            let (location, doc) = ctx.field_location(&declared, &path);
            let old = path
                .get(&doc)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_default();
            let mut draft = Draft::new(
                finding,
                Action::ExpandPvc,
                claim.clone(),
                Some(&declared),
                format!("Expand {claim} from {old} to {size}"),
                "A volume cannot shrink: reverting the commit leaves the volume at its new size."
                    .into(),
            );
            draft.set(&location, &doc, path, Value::String(size));
            Ok(draft.finish())
        }
        // Claims made from a StatefulSet's volumeClaimTemplates are in no manifest, and the
        // templates are immutable: expand the claim itself.
        Err(Stop::Unmanaged(_)) => {
            let record = Record {
                action: Action::ExpandPvc,
                target: &claim,
                finding,
                options: json!({"storage": size}),
                undo: json!({"action": "none", "note": "a volume cannot shrink"}),
            };
            Ok(record.into_remediation(
                ctx,
                format!("Expand {claim} to {size} (a claim no manifest declares)"),
                "A volume cannot shrink: nothing to undo.".into(),
            ))
        }
        Err(stop) => Err(stop),
    }
}

/// An action record before it is written.
struct Record<'r> {
    action: Action,
    target: &'r ObjectRef,
    finding: &'r Finding,
    options: Value,
    undo: Value,
}

impl Record<'_> {
    fn name(&self) -> String {
        let object = match &self.target.namespace {
            Some(ns) => format!("{ns}-{}", self.target.name),
            None => self.target.name.clone(),
        };
        format!("{}-{object}", self.action.spec().name)
    }

    fn path(&self, ctx: &Situation) -> PathBuf {
        let dir = match ctx.environment {
            Some(env) => ctx.actions_dir.join(env),
            None => ctx.actions_dir.clone(),
        };
        dir.join(format!("{}.yaml", self.name()))
    }

    fn content(&self) -> String {
        let target = match &self.target.namespace {
            Some(ns) => {
                json!({"kind": self.target.kind, "namespace": ns, "name": self.target.name})
            }
            None => json!({"kind": self.target.kind, "name": self.target.name}),
        };
        let record = json!({
            "apiVersion": RECORD_API_VERSION,
            "kind": "Remediation",
            "metadata": {"name": self.name()},
            "spec": {
                "action": self.action.spec().name,
                "target": target,
                "finding": self.finding.code.as_str(),
                "options": self.options,
                "undo": self.undo,
            },
        });
        let header = "# An imperative action: remediator executes it when this change is merged.\n";
        format!("{header}{}", crate::manifests::emit_block(&record))
    }

    fn into_remediation(
        self,
        ctx: &Situation,
        summary: String,
        rollback: String,
    ) -> super::Remediation {
        let path = self.path(ctx);
        let content = self.content();
        let mut draft = Draft::new(
            self.finding,
            self.action,
            self.target.clone(),
            None,
            summary,
            rollback,
        );
        draft.changes.push(Change::Create {
            path: path.clone(),
            content,
        });
        draft.fields.push(FieldChange {
            file: path,
            path: "spec.action".into(),
            old: None,
            new: Some(Value::String(self.action.spec().name.into())),
            ratio: None,
        });
        let mut remediation = draft.finish();
        remediation.environment = ctx.environment.map(str::to_owned);
        remediation
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{Situation, remediate};
    use crate::model::{Finding, FindingCode, ObjectRef, Severity, Snapshot, UsageFacts};
    use crate::remedy::Change;

    #[test]
    fn a_not_ready_node_gets_a_drain_record() {
        let (index, config) = example();
        let snapshot = Snapshot::default();
        let ctx = Situation {
            environment: Some("prod"),
            ..context(&index, &config, &snapshot)
        };
        let f = Finding::new(
            FindingCode::NodeNotReady,
            Severity::Critical,
            ObjectRef::new("v1", "Node", None, "pool-b-3"),
            "x".into(),
        );
        let r = proposal(remediate(&f, &ctx));
        let [Change::Create { path, content }] = r.changes.as_slice() else {
            panic!("{:?}", r.changes)
        };
        assert_eq!(
            path.to_str(),
            Some("remediations/prod/drain-node-pool-b-3.yaml")
        );
        let record: serde_json::Value = serde_saphyr::from_str(content).unwrap();
        assert_eq!(record["kind"], "Remediation");
        assert_eq!(record["spec"]["action"], "drain-node");
        assert_eq!(record["spec"]["target"]["name"], "pool-b-3");
        assert_eq!(record["spec"]["undo"]["action"], "uncordon-node");
    }

    #[test]
    fn a_claim_from_a_volume_template_is_expanded_by_record() {
        let (index, config) = example();
        let snapshot = Snapshot::default();
        let ctx = context(&index, &config, &snapshot);
        let mut f = Finding::new(
            FindingCode::PvcFillingUp,
            Severity::Warning,
            ObjectRef::new("v1", "PersistentVolumeClaim", Some("shop"), "data-redis-0"),
            "x".into(),
        );
        f.usage = vec![UsageFacts {
            forecast_from: None,
            resource: "storage".into(),
            p95: 9e9,
            max: 9e9,
            request: Some(10737418240.0),
            limit: None,
            chart: vec![],
        }];
        let r = proposal(remediate(&f, &ctx));
        let [Change::Create { content, .. }] = r.changes.as_slice() else {
            panic!()
        };
        assert!(content.contains("storage: 15Gi"), "{content}");
        assert!(!r.action.spec().reversible);
    }
}
