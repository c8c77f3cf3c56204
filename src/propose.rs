//! The propose pipeline: findings → remediations → edited files and diffs → assessment →
//! rendered pull requests, then published to a forge. [`plan`] reads the files it edits and
//! nothing else; [`publish_local`] writes branches.

use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::assess::{Assessment, Policies};
use crate::config::Config;
use crate::detect::{DetectOptions, detect};
use crate::git::{Author, BranchOutcome, ConfigRepo};
use crate::manifests::Build;
use crate::manifests::diff::{FileChange, patch};
use crate::manifests::edit::apply;
use crate::manifests::{Location, RepoIndex, parse_file};
use crate::model::{Finding, FindingCode, ObjectRef, Snapshot};
use crate::remedy::{Change, Remediation};
use crate::remedy::{Remedy, Situation, ValueHistory, remediate};
use crate::render::{Renderer, identity};
use crate::views::{PullRequestView, Templates};

/// How to plan.
#[derive(Debug, Clone)]
pub struct ProposeOptions {
    /// Only targets applied in this environment.
    pub environment: Option<String>,
    /// The moment of the snapshot; the latest time it shows when not given.
    pub now: Option<Timestamp>,
    /// Where action records go in the repository.
    pub actions_dir: PathBuf,
    /// The dry-run section of pull requests.
    pub dry_run: String,
}

impl Default for ProposeOptions {
    fn default() -> Self {
        Self {
            environment: None,
            now: None,
            actions_dir: PathBuf::from("remediations"),
            dry_run: "Not run: offline (no cluster was given).".to_owned(),
        }
    }
}

/// What planning reads.
pub struct Inputs<'a> {
    /// The config repository's directory.
    pub repo: &'a Path,
    /// Its index.
    pub index: &'a RepoIndex,
    /// Its configuration.
    pub config: &'a Config,
    /// The cluster.
    pub snapshot: &'a Snapshot,
    /// Git history of the repository.
    pub history: &'a dyn ValueHistory,
    /// The templates.
    pub templates: &'a Templates,
    /// Renders each proposal's builds before and after its edit, to prove it; `None` leaves
    /// proposals unproven.
    pub renderer: Option<&'a crate::render::Renderer>,
}

/// One pull request to be.
#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    /// The remediation.
    pub remediation: Remediation,
    /// The policies' verdict.
    pub assessment: Assessment,
    /// Files before and after.
    #[serde(skip)]
    pub files: Vec<FileChange>,
    /// Their unified diff, Secret values masked.
    pub diff: String,
    /// `remediator/<code>/<namespace>-<name>`.
    pub branch: String,
    /// Pull request title.
    pub title: String,
    /// Pull request body.
    pub body: String,
    /// The dry-run section of the body.
    #[serde(skip)]
    pub dry_run: String,
    /// The explanation in plain words, when an endpoint was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plain_words: Option<crate::explain::Explanation>,
}

impl Proposal {
    /// Replaces the dry-run section of the body.
    pub fn set_dry_run(&mut self, templates: &Templates, section: String) -> Result<(), String> {
        self.dry_run = section;
        self.fill(templates)
    }

    /// Puts the explanation in plain words into the body.
    pub fn set_plain_words(
        &mut self,
        templates: &Templates,
        explanation: crate::explain::Explanation,
    ) -> Result<(), String> {
        self.plain_words = Some(explanation);
        self.fill(templates)
    }

    fn fill(&mut self, templates: &Templates) -> Result<(), String> {
        let mut view = PullRequestView::new(
            &self.remediation,
            &self.assessment,
            self.diff.clone(),
            self.dry_run.clone(),
        );
        view.plain_words = self.plain_words.clone();
        let (title, body) = templates.pull_request(&view).map_err(|e| e.to_string())?;
        (self.title, self.body) = (title, body);
        Ok(())
    }

    /// The objects this proposal changes, as they will be applied: each edited declaration read
    /// back from the edited file (in a kustomize build, the build rendered by kustomize with the
    /// edited files), and the Kubernetes objects of created files. An edit of a kustomization or
    /// a patch file changes no object on its own and gives none; a build that cannot be rendered
    /// is an error.
    pub fn changed_objects(
        &self,
        index: &RepoIndex,
        renderer: &Renderer,
    ) -> Result<Vec<Value>, String> {
        let build = self.target_build(index);
        let mut out = Vec::new();
        if let Some(build) = build {
            let edits: Vec<(&Path, &str)> = self
                .files
                .iter()
                .map(|f| (f.path.as_path(), f.new.as_str()))
                .collect();
            let rendered = renderer
                .render_edited(&index.root, build, &edits)
                .map_err(|e| e.to_string())?;
            out.extend(
                rendered
                    .into_iter()
                    .map(|r| r.value)
                    .filter(|v| identity(v, &index.scopes) == self.remediation.target),
            );
        }
        for change in &self.remediation.changes {
            match change {
                Change::Edit { location, .. } if build.is_none() => {
                    if let Some(value) = self.edited_object(index, location) {
                        out.push(value);
                    }
                }
                Change::Edit { .. } => {}
                Change::Create { path, content } => {
                    if build.is_some_and(|b| b.reads(path)) {
                        continue;
                    }
                    let parsed = parse_file(path, content.as_bytes());
                    out.extend(
                        parsed
                            .documents
                            .into_iter()
                            .map(|d| d.value)
                            .filter(is_kubernetes_object),
                    );
                }
            }
        }
        Ok(out)
    }

    /// The kustomize build the target is applied by, when it reads every file the proposal
    /// changes.
    fn target_build<'i>(&self, index: &'i RepoIndex) -> Option<&'i Build> {
        let files: Vec<&Path> = self.files.iter().map(|f| f.path.as_path()).collect();
        index
            .objects
            .iter()
            .filter(|o| o.id == self.remediation.target)
            .filter_map(|o| {
                let unit = index.unit(o);
                unit.kustomization.as_ref()?;
                index.builds.iter().find(|b| b.dir == unit.path)
            })
            .find(|b| files.iter().all(|f| b.reads(f)))
    }

    /// The object declared at `location` in a plain directory, edited, as it is applied.
    fn edited_object(&self, index: &RepoIndex, location: &Location) -> Option<Value> {
        let declaration = index
            .declarations
            .iter()
            .position(|d| d.location == *location)?;
        let object = index
            .objects
            .iter()
            .find(|o| o.declaration == declaration)?;
        let file = self.files.iter().find(|f| f.path == location.file)?;
        let parsed = parse_file(&file.path, file.new.as_bytes());
        let document = parsed
            .documents
            .into_iter()
            .find(|d| d.document == location.document)?;
        let mut value = match location.item {
            Some(item) => document.value["items"][item].clone(),
            None => document.value,
        };
        if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut)
            && let Some(namespace) = &object.id.namespace
        {
            metadata.insert("namespace".into(), Value::from(namespace.clone()));
        }
        Some(value)
    }
}

/// A Kubernetes object (not one of remediator's own records).
fn is_kubernetes_object(value: &Value) -> bool {
    let api_version = value["apiVersion"].as_str().unwrap_or_default();
    !api_version.is_empty()
        && !api_version.starts_with("remediator.dev/")
        && value["kind"].is_string()
        && value
            .pointer("/metadata/name")
            .is_some_and(Value::is_string)
}

/// A finding and why it gets no pull request.
#[derive(Debug, Clone, Serialize)]
pub struct Reported {
    /// The finding.
    pub finding: Finding,
    /// Why there is no change.
    pub reason: String,
}

/// Everything planning found.
#[derive(Debug, Default, Serialize)]
pub struct Plan {
    /// How many findings detection made.
    pub findings: usize,
    /// Changes to propose.
    pub proposals: Vec<Proposal>,
    /// Findings with a diagnosis and no safe change.
    pub diagnoses: Vec<Reported>,
    /// Findings on objects the repository does not declare.
    pub unmanaged: Vec<Reported>,
    /// Findings whose change could not be made or assessed.
    pub failures: Vec<Reported>,
}

impl Plan {
    /// Adds another plan's findings (another environment's, read from its own cluster); two
    /// proposals with one branch name get their ids added.
    pub fn absorb(&mut self, other: Plan) {
        self.findings += other.findings;
        self.proposals.extend(other.proposals);
        self.diagnoses.extend(other.diagnoses);
        self.unmanaged.extend(other.unmanaged);
        self.failures.extend(other.failures);
        dedupe_branches(&mut self.proposals);
    }
}

/// Detects, remedies, edits, assesses and renders. Never stops on one finding's failure.
pub fn plan(inputs: &Inputs, policies: &mut Policies, options: &ProposeOptions) -> Plan {
    plan_with(inputs, policies, options, Vec::new())
}

/// [`plan`], with findings from elsewhere (Alertmanager's alerts) beside detection's. A finding
/// from elsewhere about a subject detection already has a finding for (on it or its owner) adds
/// its evidence to that finding rather than a second proposal.
pub fn plan_with(
    inputs: &Inputs,
    policies: &mut Policies,
    options: &ProposeOptions,
    extra: Vec<Finding>,
) -> Plan {
    let now = options
        .now
        .or_else(|| inputs.snapshot.taken_at())
        .unwrap_or_else(wall_clock);
    let mut findings = detect(inputs.snapshot, &DetectOptions::at(now));
    for finding in extra {
        // A security rule's finding is a problem of its own, beside whatever else the workload has.
        if finding.code == FindingCode::InsecureWorkload {
            findings.push(finding);
            continue;
        }
        let about = |f: &Finding| {
            f.subject == finding.subject || f.owner.as_ref() == Some(&finding.subject)
        };
        match findings.iter_mut().find(|f| about(f)) {
            Some(known) => known.evidence.extend(finding.evidence),
            None => findings.push(finding),
        }
    }
    let ctx = Situation {
        index: inputs.index,
        config: inputs.config,
        snapshot: inputs.snapshot,
        environment: options.environment.as_deref(),
        history: inputs.history,
        actions_dir: options.actions_dir.clone(),
        lookups: Default::default(),
    };
    let mut plan = Plan {
        findings: findings.len(),
        ..Plan::default()
    };
    // Each finding's remedy, in order; then the edits, and the proofs, which run kustomize and
    // helm, side by side; then the assessments, in order again.
    let mut remedied = Vec::new();
    for finding in &findings {
        match remediate(finding, &ctx) {
            Remedy::Proposal(remediation) => remedied.push((finding, *remediation)),
            Remedy::Diagnosis { finding, reason } => {
                plan.diagnoses.push(Reported { finding, reason })
            }
            Remedy::Unmanaged { finding, reason } => {
                plan.unmanaged.push(Reported { finding, reason })
            }
        }
    }
    // The edits read and write only their own files' text: made side by side.
    let edited = crate::parallel::map(&remedied, 0, |(_, remediation)| {
        apply_changes(inputs.repo, remediation).and_then(|files| {
            if files.iter().all(FileChange::is_empty) {
                Err("the repository already holds this change".to_owned())
            } else {
                Ok(files)
            }
        })
    });
    let drafts: Vec<Draft> = remedied
        .into_iter()
        .zip(edited)
        .map(|((finding, remediation), edited)| (finding, remediation, edited))
        .collect();
    let proven = prove_all(inputs, &drafts);
    for ((finding, remediation, edited), proof) in drafts.into_iter().zip(proven) {
        let proposal = edited.and_then(|files| {
            let mut remediation = remediation;
            if let Some(said) = proof? {
                remediation.finding = remediation.finding.clone().with("rendered", said);
            }
            propose(inputs, policies, remediation, files, options)
        });
        match proposal {
            Ok(proposal) => plan.proposals.push(proposal),
            Err(reason) => plan.failures.push(Reported {
                finding: finding.clone(),
                reason,
            }),
        }
    }
    dedupe_branches(&mut plan.proposals);
    plan
}

/// A finding's remediation and its edited files, or why the edit could not be made.
type Draft<'f> = (&'f Finding, Remediation, Result<Vec<FileChange>, String>);

/// What rendering said of a draft (`None`: nothing, or nothing to prove), or why it disproves
/// the edit.
type Proof = Result<Option<String>, String>;

/// What rendering says of each draft whose edit could be made. Drafts are proven on as many
/// threads as there are cores, as each proof waits on kustomize or helm.
fn prove_all(inputs: &Inputs, drafts: &[Draft]) -> Vec<Proof> {
    let (index, config, renderer) = (inputs.index, inputs.config, inputs.renderer);
    let one = |(_, remediation, edited): &Draft| {
        let (Some(renderer), Ok(files)) = (renderer, edited) else {
            return Ok(None);
        };
        let said = crate::prove::prove(index, config, renderer, remediation, files)?;
        Ok((!said.is_empty()).then(|| said.join("; ")))
    };
    // Without a renderer there is nothing to wait on.
    let threads = if renderer.is_some() { 0 } else { 1 };
    crate::parallel::map(drafts, threads, one)
}

/// The current time, for a snapshot that shows none.
fn wall_clock() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Timestamp::from_second(secs as i64).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The proposal of a proven edit: assessed, with its pull request.
fn propose(
    inputs: &Inputs,
    policies: &mut Policies,
    remediation: Remediation,
    files: Vec<FileChange>,
    options: &ProposeOptions,
) -> Result<Proposal, String> {
    let assessment = policies
        .assess(&remediation, inputs.config)
        .map_err(|e| e.to_string())?;
    let diff = patch(&files, false);
    let view = PullRequestView::new(
        &remediation,
        &assessment,
        diff.clone(),
        options.dry_run.clone(),
    );
    let (title, body) = inputs
        .templates
        .pull_request(&view)
        .map_err(|e| e.to_string())?;
    Ok(Proposal {
        branch: branch_name(&remediation),
        remediation,
        assessment,
        files,
        diff,
        title,
        body,
        dry_run: options.dry_run.clone(),
        plain_words: None,
    })
}

/// Asks the explainer about each proposal, a few at a time, and puts the answer (or why there
/// is none) into its body. Nothing else reads the answer.
pub async fn explain(
    plan: &mut Plan,
    templates: &Templates,
    explainer: Result<&crate::explain::Explainer, &str>,
) {
    use futures::StreamExt;
    let answers: Vec<crate::explain::Explanation> = match explainer {
        Ok(explainer) => {
            futures::stream::iter(&plan.proposals)
                .map(|p| explainer.explain(&p.remediation.finding, &p.remediation.summary))
                .buffered(4)
                .collect()
                .await
        }
        Err(reason) => plan
            .proposals
            .iter()
            .map(|_| crate::explain::Explanation::Unavailable {
                reason: reason.to_owned(),
            })
            .collect(),
    };
    for (proposal, answer) in plan.proposals.iter_mut().zip(answers) {
        if let Err(error) = proposal.set_plain_words(templates, answer) {
            tracing::warn!(branch = %proposal.branch, %error, "explanation not rendered");
        }
    }
}

/// The cluster a plan was read from, for its proposals' dry-runs: its name as the pull
/// requests show it, and its client.
pub struct LiveCluster<'a> {
    /// The environment's cluster name in `remediator.yaml`, else the context or the server.
    pub name: &'a str,
    /// The cluster.
    pub cluster: &'a crate::cluster::KubeCluster,
}

/// Puts each proposal's server-side dry-run on `live`, with the other owners of the fields it
/// sets, into its body. A dry-run that fails says so in the body; the proposal still stands.
/// `propose` and `serve` both call it, so that their pull requests read the same.
pub async fn add_dry_runs(
    plan: &mut Plan,
    index: &RepoIndex,
    templates: &Templates,
    live: &LiveCluster<'_>,
    config: &Config,
) {
    use crate::cluster::Cluster;
    let (field_manager, conflicts) = (&config.field_manager, &config.reconcile.conflicts);
    let options = crate::cluster::DryRunOptions {
        field_manager: field_manager.to_owned(),
        ..crate::cluster::DryRunOptions::default()
    };
    let renderer = Renderer::for_config(config);
    for proposal in &mut plan.proposals {
        let results = match proposal.changed_objects(index, &renderer) {
            Ok(objects) => live
                .cluster
                .dry_run(&objects, &options)
                .await
                .map_err(|e| e.to_string()),
            Err(error) => Err(error),
        };
        let view = match results {
            Ok(results) => {
                crate::views::DryRunView::new(live.name, field_manager, &results, conflicts)
            }
            Err(error) => crate::views::DryRunView::failed(live.name, field_manager, error),
        };
        let section = templates.dry_run(&view).unwrap_or_else(|e| e.to_string());
        if let Err(error) = proposal.set_dry_run(templates, section) {
            tracing::warn!(branch = %proposal.branch, %error, "dry-run not rendered");
        }
    }
}

/// Explains each proposal in plain words when `remediator.yaml` names an `llm:` endpoint;
/// nothing otherwise.
pub async fn explain_configured(plan: &mut Plan, templates: &Templates, config: &Config) {
    let Some(settings) = &config.llm else {
        return;
    };
    let explainer = crate::explain::Explainer::new(settings.clone());
    explain(plan, templates, explainer.as_ref().map_err(String::as_str)).await;
}

/// The files a remediation changes, before and after. Edits of one file are applied from its end
/// to its start, so that each location's span is still where the index found it.
pub fn apply_changes(repo: &Path, remediation: &Remediation) -> Result<Vec<FileChange>, String> {
    apply_edits(repo, &remediation.changes, &remediation.target.to_string())
}

/// The files `changes` make, before and after; `what` names the change in errors.
pub fn apply_edits(repo: &Path, changes: &[Change], what: &str) -> Result<Vec<FileChange>, String> {
    let mut out: Vec<FileChange> = Vec::new();
    let mut edits: Vec<(&Location, &Vec<crate::manifests::edit::Edit>)> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Edit { location, edits } => Some((location, edits)),
            Change::Create { .. } => None,
        })
        .collect();
    edits.sort_by(|a, b| {
        (&a.0.file, std::cmp::Reverse(a.0.span.start))
            .cmp(&(&b.0.file, std::cmp::Reverse(b.0.span.start)))
    });
    for (location, list) in edits {
        let position = out.iter().position(|c| c.path == location.file);
        let text = match position {
            Some(i) => out[i].new.clone(),
            None => std::fs::read_to_string(repo.join(&location.file))
                .map_err(|e| format!("{}: cannot read: {e}", location.file.display()))?,
        };
        let new = apply(&text, location, list).map_err(|e| format!("{what} ({location}): {e}"))?;
        match position {
            Some(i) => out[i].new = new,
            None => out.push(FileChange {
                path: location.file.clone(),
                old: text,
                new,
            }),
        }
    }
    for change in changes {
        if let Change::Create { path, content } = change {
            let old = std::fs::read_to_string(repo.join(path)).unwrap_or_default();
            out.push(FileChange {
                path: path.clone(),
                old,
                new: content.clone(),
            });
        }
    }
    Ok(out)
}

/// `remediator/<code>/<namespace>-<name>`, or `remediator/<code>/<name>` when cluster-scoped.
pub fn branch_name(remediation: &Remediation) -> String {
    branch_for(&remediation.finding.code.to_string(), &remediation.target)
}

/// Whether `branch` is the branch of a finding of `code` on `target`: its name exactly, or with
/// the six-character id that tells two remediations of one target apart.
pub fn is_branch_of(branch: &str, code: &str, target: &ObjectRef) -> bool {
    let name = branch_for(code, target);
    match branch.strip_prefix(&name) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('-')
            .is_some_and(|id| id.len() == 6 && id.bytes().all(|b| b.is_ascii_hexdigit())),
        None => false,
    }
}

/// The branch name of a finding of `code` on `target`.
fn branch_for(code: &str, target: &ObjectRef) -> String {
    let object = match &target.namespace {
        Some(ns) => format!("{ns}-{}", target.name),
        None => target.name.clone(),
    };
    let clean: String = object
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("remediator/{code}/{}", clean.to_lowercase())
}

/// Two remediations with one branch name (two containers of one workload) get the id added.
fn dedupe_branches(proposals: &mut [Proposal]) {
    for i in 1..proposals.len() {
        if proposals[..i]
            .iter()
            .any(|p| p.branch == proposals[i].branch)
        {
            proposals[i].branch = format!(
                "{}-{}",
                proposals[i].branch,
                &proposals[i].remediation.id[..6]
            );
        }
    }
}

/// The commit message of a proposal: title, summary and the trailers that link the branch back
/// to its remediation.
pub fn commit_message(proposal: &Proposal) -> String {
    let r = &proposal.remediation;
    format!(
        "{}\n\n{}\n\nRemediation-Id: {}\nFinding: {}\nAction: {}\nRisk: {}\n",
        proposal.title, r.summary, r.id, r.finding.code, r.action, proposal.assessment.risk
    )
}

/// What publishing a proposal did.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// The branch.
    pub branch: String,
    /// What happened to it, or why it failed.
    pub outcome: Result<BranchOutcome, String>,
    /// Its pull request and what happened to it (`#3 opened`), when published to a forge.
    pub pull: Option<String>,
}

/// Writes each proposal to its branch in the local repository, on top of `base`.
pub fn publish_local(
    repo: &ConfigRepo,
    base: git2::Oid,
    proposals: &[Proposal],
    author: &Author,
) -> Vec<Published> {
    proposals
        .iter()
        .map(|p| {
            let files: Vec<(PathBuf, String)> = p
                .files
                .iter()
                .map(|f| (f.path.clone(), f.new.clone()))
                .collect();
            let outcome = repo
                .commit_branch(&p.branch, base, &files, &commit_message(p), author)
                .map(|(o, _)| o)
                .map_err(|e| e.to_string());
            Published {
                branch: p.branch.clone(),
                outcome,
                pull: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_branch_belongs_to_a_finding_by_its_exact_name() {
        let api = ObjectRef::new("apps/v1", "Deployment", Some("shop"), "api");
        let api_gateway = ObjectRef::new("apps/v1", "Deployment", Some("shop"), "api-gateway");
        assert!(is_branch_of(
            "remediator/crash-loop/shop-api",
            "crash-loop",
            &api
        ));
        assert!(is_branch_of(
            "remediator/crash-loop/shop-api-1a2b3c",
            "crash-loop",
            &api
        ));
        // A name that merely contains another is not its branch.
        assert!(!is_branch_of(
            "remediator/crash-loop/shop-api-gateway",
            "crash-loop",
            &api
        ));
        assert!(is_branch_of(
            "remediator/crash-loop/shop-api-gateway",
            "crash-loop",
            &api_gateway
        ));
        assert!(!is_branch_of(
            "remediator/crash-loop-oom/shop-api",
            "crash-loop",
            &api
        ));
    }
}
