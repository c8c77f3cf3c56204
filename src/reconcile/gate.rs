//! The approval gate: the policies weigh the change as merged (never the labels on the pull
//! request), and the approvals on the pull request are counted against what they require. Pure.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::changes::ObjectChange;
use crate::assess::{Assessment, Policies, environment_input};
use crate::config::Config;
use crate::forge::{PullInfo, approvers};
use crate::git::trailer;
use crate::model::Action;

/// The policy input for one changed object. The commit's `Action` and `Finding` trailers name
/// the remediation when the change is one of ours; anything else is a `manifest-change` of
/// finding `manual-change`. A merged commit does not carry the finding's severity: it is null.
pub fn input(change: &ObjectChange, trailers: &[(String, String)], config: &Config) -> Value {
    let action = trailer(trailers, "Action").and_then(Action::from_name);
    let action = match action {
        Some(action) => {
            let spec = action.spec();
            json!({"name": spec.name, "baseRisk": spec.base_risk, "reversible": spec.reversible, "imperative": spec.imperative})
        }
        None => {
            json!({"name": "manifest-change", "baseRisk": "low", "reversible": true, "imperative": false})
        }
    };
    let environment = change
        .environment
        .as_deref()
        .map(|name| environment_input(name, config));
    json!({
        "finding": {"code": trailer(trailers, "Finding").unwrap_or("manual-change"), "severity": null},
        "action": action,
        "target": {
            "kind": change.object.kind,
            "namespace": change.object.namespace,
            "name": change.object.name,
            "labels": change.labels(),
        },
        "environment": environment,
        "change": {"fields": change.fields},
    })
}

/// The policies' verdict on every object, combined: the highest risk, every denial (named by
/// object), the most approvals and every team any object asks for.
pub fn assess(
    policies: &mut Policies,
    changes: &[ObjectChange],
    trailers: &[(String, String)],
    config: &Config,
) -> crate::assess::Result<Assessment> {
    let mut combined = Assessment::none();
    for change in changes {
        let one = policies.evaluate(&input(change, trailers, config))?;
        combine(&mut combined, &one, &change.object.to_string());
    }
    Ok(combined)
}

/// Adds one object's verdict to the combined one: the higher risk, its denials (named by
/// `object`), the more approvals, its teams and reasons.
pub fn combine(combined: &mut Assessment, one: &Assessment, object: &str) {
    combined.risk = combined.risk.max(one.risk);
    combined.escalated |= one.escalated;
    combined.approvals.count = combined.approvals.count.max(one.approvals.count);
    for team in &one.approvals.teams {
        if !combined.approvals.teams.contains(team) {
            combined.approvals.teams.push(team.clone());
        }
    }
    combined
        .denials
        .extend(one.denials.iter().map(|d| format!("{object}: {d}")));
    for reason in &one.reasons {
        if !combined.reasons.contains(reason) {
            combined.reasons.push(reason.clone());
        }
    }
}

/// The gate's decision.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// The combined assessment.
    pub assessment: Assessment,
    /// Who approved (latest decisive review, author left out).
    pub approvers: Vec<String>,
    /// Why the change may not be applied; empty when it may.
    pub refusals: Vec<String>,
}

impl Decision {
    /// Whether the change may be applied.
    pub fn allowed(&self) -> bool {
        self.refusals.is_empty()
    }
}

/// Checks the approvals of `pull` (none when no pull request merged the commit) against what
/// `assessment` requires; `teams` maps a team to its members' logins.
pub fn decide(
    assessment: Assessment,
    pull: Option<&PullInfo>,
    teams: &BTreeMap<String, Vec<String>>,
) -> Decision {
    let approvers = pull.map_or_else(Vec::new, |p| approvers(&p.reviews, &p.author));
    let mut refusals: Vec<String> = assessment
        .denials
        .iter()
        .map(|d| format!("denied by policy: {d}"))
        .collect();
    let needed = assessment.approvals.count as usize;
    let plural = if needed == 1 { "" } else { "s" };
    if needed > 0 && pull.is_none() {
        refusals.push(format!(
            "a {} risk change needs {needed} approval{plural}, and no pull request merged this commit",
            assessment.risk
        ));
    } else if approvers.len() < needed {
        let who = if approvers.is_empty() {
            String::new()
        } else {
            format!(" ({})", approvers.join(", "))
        };
        refusals.push(format!(
            "a {} risk change needs {needed} approval{plural} from reviewers other than the author; it has {}{who}",
            assessment.risk,
            approvers.len()
        ));
    }
    for team in &assessment.approvals.teams {
        match teams.get(team) {
            None => refusals.push(format!(
                "an approval from team `{team}` is required, and remediator.yaml does not list its members under approvals.teams"
            )),
            Some(members) if !approvers.iter().any(|a| members.contains(a)) => refusals.push(
                format!("an approval from team `{team}` ({}) is required", members.join(", ")),
            ),
            Some(_) => {}
        }
    }
    Decision {
        assessment,
        approvers,
        refusals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::Approvals;
    use crate::forge::{PullSummary, Review, ReviewState};
    use crate::model::RiskLevel;

    fn assessment(risk: RiskLevel, count: u32, teams: &[&str]) -> Assessment {
        Assessment {
            risk,
            denials: vec![],
            approvals: Approvals {
                count,
                teams: teams.iter().map(|t| (*t).to_owned()).collect(),
            },
            escalated: false,
            reasons: vec![],
        }
    }

    fn pull(reviews: &[(&str, ReviewState)]) -> PullInfo {
        PullInfo {
            summary: PullSummary {
                number: 1,
                head: "h".into(),
                title: "t".into(),
                url: String::new(),
                labels: vec![],
            },
            author: "bot".into(),
            base: "main".into(),
            merged: true,
            merge_commit: None,
            reviews: reviews
                .iter()
                .map(|(u, s)| Review {
                    user: (*u).into(),
                    state: *s,
                })
                .collect(),
        }
    }

    #[test]
    fn approvals_are_counted_against_the_tier() {
        use ReviewState::*;
        let teams = BTreeMap::from([("security".to_owned(), vec!["carol".to_owned()])]);
        let low = decide(assessment(RiskLevel::Low, 0, &[]), None, &teams);
        assert!(low.allowed(), "{:?}", low.refusals);
        let medium = decide(
            assessment(RiskLevel::Medium, 1, &[]),
            Some(&pull(&[("bot", Approved)])),
            &teams,
        );
        assert_eq!(medium.refusals.len(), 1, "{:?}", medium.refusals);
        assert!(
            medium.refusals[0].contains("needs 1 approval"),
            "{:?}",
            medium.refusals
        );
        let direct = decide(assessment(RiskLevel::Medium, 1, &[]), None, &teams);
        assert!(
            direct.refusals[0].contains("no pull request"),
            "{:?}",
            direct.refusals
        );
        let approved = decide(
            assessment(RiskLevel::Medium, 1, &[]),
            Some(&pull(&[("alice", Approved)])),
            &teams,
        );
        assert!(approved.allowed());
        let critical = assessment(RiskLevel::Critical, 2, &["security"]);
        let two = decide(
            critical.clone(),
            Some(&pull(&[("alice", Approved), ("bob", Approved)])),
            &teams,
        );
        assert_eq!(
            two.refusals,
            ["an approval from team `security` (carol) is required"]
        );
        let with_security = decide(
            critical,
            Some(&pull(&[("alice", Approved), ("carol", Approved)])),
            &teams,
        );
        assert!(with_security.allowed(), "{:?}", with_security.refusals);
    }

    #[test]
    fn denials_refuse_whatever_the_approvals() {
        let mut denied = assessment(RiskLevel::High, 2, &[]);
        denied
            .denials
            .push("Deployment/prod/api: scaling below 2".into());
        let decision = decide(
            denied,
            Some(&pull(&[
                ("alice", ReviewState::Approved),
                ("bob", ReviewState::Approved),
            ])),
            &BTreeMap::new(),
        );
        assert_eq!(
            decision.refusals,
            ["denied by policy: Deployment/prod/api: scaling below 2"]
        );
    }
}
