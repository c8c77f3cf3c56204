//! The approval gate: the policies weigh the change as merged (never the labels on the pull
//! request), and the approvals on the pull request are counted against what they require. Pure.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::assess::{Assessment, Policies, environment_input};
use crate::changes::ObjectChange;
use crate::config::Config;
use crate::crd::{self, Breaking};
use crate::forge::{PullInfo, PushersFrom, approvers};
use crate::git::trailer;
use crate::model::Action;

/// The policy input for one changed object, as a change of `action` (`None`: a
/// `manifest-change` of finding `manual-change`). A merged commit does not carry the finding's
/// severity: it is null.
pub fn input(
    change: &ObjectChange,
    action: Option<Action>,
    finding: &str,
    config: &Config,
) -> Value {
    let environment = change
        .environment
        .as_deref()
        .map(|name| environment_input(name, config));
    json!({
        "finding": {"code": finding, "severity": null},
        "action": action_input(action),
        "target": {
            "kind": change.object.kind,
            "namespace": change.object.namespace,
            "name": change.object.name,
            "labels": change.labels(),
        },
        "environment": environment,
        "change": {
            "kind": change_kind(change),
            "fields": change.fields,
            "trust": [],
            "deletes": change.deletes(),
            "applier": change.pruner().or_else(|| change.applier.as_ref().map(|a| a.name.clone())),
            "skipsWave": change.skips.is_some(),
            "earlierWave": change.skips,
        },
    })
}

/// `added`, `modified` or `removed`.
fn change_kind(change: &ObjectChange) -> &'static str {
    match (&change.before, &change.after) {
        (None, _) => "added",
        (_, None) => "removed",
        _ => "modified",
    }
}

fn action_input(action: Option<Action>) -> Value {
    match action {
        Some(action) => {
            let spec = action.spec();
            json!({"name": spec.name, "baseRisk": spec.base_risk, "reversible": spec.reversible, "imperative": spec.imperative})
        }
        None => {
            json!({"name": "manifest-change", "baseRisk": "low", "reversible": true, "imperative": false})
        }
    }
}

/// The policy input for a commit that changes the files the gate itself reads: the
/// configuration and the policies (`change.trust`). Their change takes effect only for later
/// merges, so it is weighed like any other change, by the policies before it.
pub fn trust_input(files: &[String]) -> Value {
    whole_change_input(
        "RemediatorConfiguration",
        "remediator",
        json!({"fields": [], "trust": files}),
    )
}

/// A policy input about the change as a whole rather than one object.
pub fn whole_change_input(kind: &str, name: &str, change: Value) -> Value {
    json!({
        "finding": {"code": "manual-change", "severity": null},
        "action": action_input(None),
        "target": {"kind": kind, "namespace": null, "name": name, "labels": {}},
        "environment": null,
        "change": change,
    })
}

/// The input that weighs builds whose change could not be rendered: the change is unknown.
pub fn unrendered_input(builds: &[crate::render::NotRendered]) -> Value {
    let builds: Vec<Value> = builds
        .iter()
        .map(|b| json!({"build": crate::manifests::display_dir(&b.build), "reason": b.reason}))
        .collect();
    whole_change_input(
        "Build",
        "builds",
        json!({"fields": [], "unrendered": builds}),
    )
}

/// One object's verdict: the change weighed as what it is (a `manifest-change`, with its
/// breaking CustomResourceDefinition changes in `change.breaking`), and again as the action the
/// commit's `Action` and `Finding` trailers claim, when they claim one. The trailers are written
/// by whoever made the commit: they may raise the risk, never lower it. Returns the verdict and
/// the breaking changes.
pub fn weigh(
    policies: &mut Policies,
    change: &ObjectChange,
    trailers: &[(String, String)],
    config: &Config,
) -> crate::assess::Result<(Assessment, Vec<Breaking>)> {
    let breaking = match (&change.before, &change.after) {
        (Some(old), Some(new)) if old["kind"] == "CustomResourceDefinition" => {
            crd::compare(old, new, None)
        }
        // A new CRD breaks nothing stored, but one the API server refuses cannot be applied.
        (None, Some(new)) if new["kind"] == "CustomResourceDefinition" => {
            crd::versions::invalid(new)
        }
        _ => vec![],
    };
    let claimed = trailer(trailers, "Action").and_then(Action::from_name);
    let finding = trailer(trailers, "Finding").unwrap_or("manual-change");
    let object = change.object.to_string();
    let mut weighed = Assessment::none();
    let mut ways = vec![(None, "manual-change")];
    if claimed.is_some() || finding != "manual-change" {
        ways.push((claimed, finding));
    }
    for (action, finding) in ways {
        let mut input = input(change, action, finding, config);
        input["change"]["breaking"] = json!(breaking);
        if let Some(reason) = &change.unrendered {
            input["change"]["unrendered"] = json!([{"build": object, "reason": reason}]);
        }
        let one = policies.evaluate(&input)?;
        combine(&mut weighed, &one, &object);
    }
    // `combine` names denials by object; one object's verdict names none.
    let prefix = format!("{object}: ");
    for denial in &mut weighed.denials {
        if let Some(rest) = denial.strip_prefix(&prefix) {
            *denial = rest.to_owned();
        }
    }
    weighed.denials.dedup();
    Ok((weighed, breaking))
}

/// The policies' verdict on every object, combined: the highest risk, every denial (named by
/// object), the most approvals and every team any object asks for; each object as [`weigh`]s
/// it. `trust` lists the changed files the gate reads (configuration, policies), weighed as one
/// more change.
pub fn assess(
    policies: &mut Policies,
    changes: &[ObjectChange],
    trailers: &[(String, String)],
    trust: &[String],
    config: &Config,
) -> crate::assess::Result<Assessment> {
    let mut combined = Assessment::none();
    for change in changes {
        let (one, _) = weigh(policies, change, trailers, config)?;
        combine(&mut combined, &one, &change.object.to_string());
    }
    if !trust.is_empty() {
        let one = policies.evaluate(&trust_input(trust))?;
        combine(&mut combined, &one, "remediator configuration");
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
    /// What the decision relied on that a reviewer should know (where the last pusher was
    /// learned, a branch protection that does not back it).
    pub notes: Vec<String>,
}

impl Decision {
    /// Whether the change may be applied.
    pub fn allowed(&self) -> bool {
        self.refusals.is_empty()
    }
}

/// A team's members as the gate knows them: listed in `approvals.teams`, resolved from the
/// forge (`@org/slug`), or why they could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamMembers {
    /// The logins of its members.
    Known(Vec<String>),
    /// Why its members could not be read; the team then approves nothing.
    Unresolved(String),
}

/// Checks the approvals of `pull` (none when no pull request merged the commit) against what
/// `assessment` requires; `teams` gives each team's members.
pub fn decide(
    assessment: Assessment,
    pull: Option<&PullInfo>,
    teams: &BTreeMap<String, TeamMembers>,
) -> Decision {
    let approvers = pull.map_or_else(Vec::new, approvers);
    let mut refusals: Vec<String> = assessment
        .denials
        .iter()
        .map(|d| format!("denied by policy: {d}"))
        .collect();
    let needed = assessment.approvals.count as usize;
    let plural = if needed == 1 { "" } else { "s" };
    if needed > 0 && pull.is_none() {
        refusals.push(format!(
            "a {} risk change needs {needed} approval{plural}, and no pull request merged this commit into the base branch (a direct push)",
            assessment.risk
        ));
    } else if approvers.len() < needed {
        let who = if approvers.is_empty() {
            String::new()
        } else {
            format!(" ({})", approvers.join(", "))
        };
        refusals.push(format!(
            "a {} risk change needs {needed} approval{plural} of the merged head from reviewers other than the author and the last pusher; it has {}{who}",
            assessment.risk,
            approvers.len()
        ));
    }
    for team in &assessment.approvals.teams {
        match teams.get(team) {
            None => refusals.push(format!(
                "an approval from team `{team}` is required, and remediator.yaml does not list its members under approvals.teams"
            )),
            Some(TeamMembers::Unresolved(why)) => refusals.push(format!(
                "an approval from team `{team}` is required, and its members cannot be read: {why}"
            )),
            Some(TeamMembers::Known(members)) if !approvers.iter().any(|a| members.contains(a)) => {
                refusals.push(format!(
                    "an approval from team `{team}` ({}) is required",
                    members.join(", ")
                ))
            }
            Some(TeamMembers::Known(_)) => {}
        }
    }
    let mut notes = Vec::new();
    if let Some(pull) = pull {
        let head: String = pull.head_sha.chars().take(12).collect();
        let pushers = if pull.pushers.is_empty() {
            "nobody GitHub knows".to_owned()
        } else {
            pull.pushers.join(", ")
        };
        notes.push(match pull.pushers_from {
            PushersFrom::Timeline => format!(
                "the last pusher of {head} ({pushers}) is from GitHub's timeline of the pull request"
            ),
            PushersFrom::Emails => format!(
                "the last pusher of {head} ({pushers}) is from the head commit's author and committer e-mails, which whoever made the commit set: GitHub's timeline names no push of it"
            ),
        });
    }
    Decision {
        assessment,
        approvers,
        refusals,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::Approvals;
    use crate::forge::{ReviewState, test_pull, test_review};
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
        let reviews = reviews.iter().map(|(u, s)| test_review(u, *s)).collect();
        test_pull(reviews, &[])
    }

    #[test]
    fn approvals_are_counted_against_the_tier() {
        use ReviewState::*;
        let teams = BTreeMap::from([(
            "security".to_owned(),
            TeamMembers::Known(vec!["carol".to_owned()]),
        )]);
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
        let unresolved = BTreeMap::from([(
            "security".to_owned(),
            TeamMembers::Unresolved("GitHub answered 404".to_owned()),
        )]);
        let refused = decide(
            assessment(RiskLevel::Critical, 2, &["security"]),
            Some(&pull(&[("alice", Approved), ("carol", Approved)])),
            &unresolved,
        );
        assert_eq!(
            refused.refusals,
            [
                "an approval from team `security` is required, and its members cannot be read: GitHub answered 404"
            ]
        );
    }

    /// A Deployment in `prod` whose image changed.
    fn image_change() -> ObjectChange {
        let before = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "prod"},
            "spec": {"template": {"spec": {"containers": [{"name": "api", "image": "api:1"}]}}}});
        let mut after = before.clone();
        after["spec"]["template"]["spec"]["containers"][0]["image"] = "api:2".into();
        let mut fields = Vec::new();
        crate::changes::diff_values(
            std::path::Path::new("api.yaml"),
            "",
            &before,
            &after,
            &mut fields,
        );
        ObjectChange {
            object: crate::model::ObjectRef::new("apps/v1", "Deployment", Some("prod"), "api"),
            unit: "prod".into(),
            placement: "prod/api.yaml".into(),
            declared: ("prod/api.yaml".into(), 1),
            environment: None,
            before: Some(before),
            after: Some(after),
            fields,
            applier: None,
            unrendered: None,
            skips: None,
        }
    }

    #[test]
    fn trailers_may_raise_the_risk_never_lower_it() {
        // A team that rates every change remediator did not propose as high.
        let rego = crate::assess::DEFAULT_POLICIES[0].1.to_owned()
            + "\nreasons contains {\"level\": \"high\", \"reason\": \"a change remediator did not propose\"} if input.action.name == \"manifest-change\"\n";
        let mut policies =
            Policies::from_files(vec![("team.rego".into(), rego)]).expect("the policy parses");
        let config = Config::default();
        let change = image_change();
        let human = assess(
            &mut policies,
            std::slice::from_ref(&change),
            &[],
            &[],
            &config,
        )
        .unwrap();
        assert_eq!(human.risk, RiskLevel::High);
        // A human commit claiming to be remediator's low-risk memory raise gets the same risk.
        let claimed = [
            ("Action".to_owned(), "raise-memory".to_owned()),
            ("Finding".to_owned(), "crash-loop-oom".to_owned()),
        ];
        let forged = assess(
            &mut policies,
            std::slice::from_ref(&change),
            &claimed,
            &[],
            &config,
        )
        .unwrap();
        assert_eq!(forged.risk, RiskLevel::High, "{:?}", forged.reasons);
        // A trailer naming a riskier action raises it.
        let drain = [("Action".to_owned(), "drain-node".to_owned())];
        let raised = assess(
            &mut policies,
            std::slice::from_ref(&change),
            &drain,
            &[],
            &config,
        )
        .unwrap();
        assert_eq!(raised.risk, RiskLevel::Critical, "{:?}", raised.reasons);
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
