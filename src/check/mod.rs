//! `check` for any pull request: the objects that change between the merge base and the head,
//! each weighed by the policies (with CustomResourceDefinition compatibility in the input, so a
//! breaking CRD change is critical), with a Secret-safe diff; the whole pull request's risk and
//! the approvals it needs. [`crd`] finds breaking CRD changes, [`report`] renders Markdown, JSON
//! and SARIF. I/O: reads the Git repository (through [`crate::changes`]).

pub mod existing;

use std::path::PathBuf;

use git2::Oid;
use serde::Serialize;
use serde_json::Value;

use crate::assess::{Assessment, Policies};
use crate::changes::{self, ObjectChange};
use crate::config::Config;
use crate::crd::{self, Breaking, Readability};
use crate::gate;
use crate::git::{ConfigRepo, trailers};
use crate::manifests::{diff, emit_block};
use crate::model::FieldChange;
use crate::redact::Redactor;
use crate::render::{NotRendered, Renderer};
use existing::Existing;

/// What can stop a check.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The change could not be worked out.
    #[error(transparent)]
    Changes(#[from] changes::Error),
    /// Git failed.
    #[error(transparent)]
    Git(#[from] crate::git::Error),
    /// The policies failed.
    #[error(transparent)]
    Assess(#[from] crate::assess::Error),
}

/// How an object changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// New.
    Added,
    /// Changed.
    Modified,
    /// Gone from the repository: deleted from the cluster when what applies it prunes
    /// ([`ObjectReport::deletes`]), else left there.
    Removed,
}

impl std::fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Removed => "removed",
        })
    }
}

/// One changed object.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectReport {
    /// `Kind/namespace/name`.
    pub object: String,
    /// Its environment, when the config names one.
    pub environment: Option<String>,
    /// The declaring file.
    pub file: PathBuf,
    /// The 1-based line the object starts on.
    pub line: usize,
    /// How it changes.
    pub change: ChangeKind,
    /// For a removal: whether it is deleted from the cluster (what applies it prunes).
    pub deletes: bool,
    /// The Flux Kustomization or Argo CD Application that applies it, when the repository
    /// declares one.
    pub applier: Option<String>,
    /// For a removal that deletes: what deletes it.
    pub pruner: Option<String>,
    /// For a Helm release: why the objects its chart makes are not rendered.
    pub unrendered: Option<String>,
    /// The policies' verdict.
    pub assessment: Assessment,
    /// The fields that change; a Secret's values are `***`.
    pub fields: Vec<FieldChange>,
    /// Unified diff of the object as applied; a Secret's values are `***`.
    pub diff: String,
    /// For a CustomResourceDefinition: what it breaks, and what it changes in behaviour
    /// (warnings).
    pub breaking: Vec<Breaking>,
    /// For a modified CustomResourceDefinition: whether its versions stay readable.
    pub readability: Option<Readability>,
    /// For a CustomResourceDefinition, with a cluster: its live objects against the new schema.
    pub existing: Option<Existing>,
}

/// The whole pull request.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The merge base.
    pub base: String,
    /// The head.
    pub head: String,
    /// Every changed object.
    pub objects: Vec<ObjectReport>,
    /// The builds the change touches that could not be rendered: their change is unknown.
    pub not_rendered: Vec<NotRendered>,
    /// The program that rendered the builds, with its version.
    pub renderer: Option<String>,
    /// Manifest files the change touches that no build and no plain directory reads.
    pub unused: Vec<PathBuf>,
    /// Kinds of changed objects without a namespace whose scope is unknown offline: neither
    /// built in nor declared by a CRD of the repository.
    pub unknown_scope: Vec<String>,
    /// Files whose objects change only in how values are spelled: no change for Kubernetes.
    pub formatting: Vec<PathBuf>,
    /// The highest risk, every denial, the most approvals and every team.
    pub assessment: Assessment,
}

impl CheckReport {
    /// Whether any policy denies the change.
    pub fn denied(&self) -> bool {
        !self.assessment.denials.is_empty()
    }

    /// Whether it needs more than `default` approvals, or a team's.
    pub fn needs_approvals_beyond(&self, default: u32) -> bool {
        self.assessment.approvals.count > default || !self.assessment.approvals.teams.is_empty()
    }

    /// Every breaking CRD change (not the warnings), with its object.
    pub fn breaking(&self) -> impl Iterator<Item = (&ObjectReport, &Breaking)> {
        self.objects.iter().flat_map(|o| {
            o.breaking
                .iter()
                .filter(|b| b.breaks())
                .map(move |b| (o, b))
        })
    }
}

const MASK: &str = "***";

/// Puts each CRD finding at its line in the file that declares the CRD at `head`.
fn place(
    repo: &ConfigRepo,
    head: Oid,
    change: &ObjectChange,
    found: &mut [Breaking],
) -> Result<(), Error> {
    let (file, start) = &change.declared;
    if let Some(text) = repo.file_at(head, file)? {
        for b in found {
            b.line = Some(crd::lines::line(&text, *start, b));
        }
    }
    Ok(())
}

fn is_crd(change: &ObjectChange) -> bool {
    change.object.kind == "CustomResourceDefinition"
        && change.object.group == "apiextensions.k8s.io"
}

fn is_secret(change: &ObjectChange) -> bool {
    change.object.kind == "Secret" && change.object.group.is_empty()
}

/// The annotation `kubectl apply` keeps the whole object in: on a Secret, its data.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `change` as it may be shown: a Secret's `last-applied-configuration` annotation masked, and
/// every Secret value of the repository (substituted by Flux, copied by a generator) masked
/// wherever it appears in any object. Its fields are worked out again from what is shown.
fn masked(change: &ObjectChange, secrets: &Redactor) -> ObjectChange {
    let secret = is_secret(change);
    let mask = |value: &Option<Value>| {
        value.as_ref().map(|v| {
            let mut v = redact_strings(v, secrets);
            // A Secret's own values are masked where they are shown, which tells a changed
            // value from an unchanged one.
            for field in ["data", "stringData"] {
                if secret && let Some(own) = value.as_ref().and_then(|o| o.get(field)) {
                    v[field] = own.clone();
                }
            }
            if secret
                && let Some(annotation) = v
                    .pointer_mut("/metadata/annotations")
                    .and_then(Value::as_object_mut)
                    .and_then(|a| a.get_mut(LAST_APPLIED))
            {
                *annotation = Value::from(MASK);
            }
            v
        })
    };
    let (before, after) = (mask(&change.before), mask(&change.after));
    let mut fields = Vec::new();
    changes::diff_values(
        &change.declared.0,
        "",
        before.as_ref().unwrap_or(&Value::Null),
        after.as_ref().unwrap_or(&Value::Null),
        &mut fields,
    );
    ObjectChange {
        before,
        after,
        fields,
        ..change.clone()
    }
}

/// `value` with every string passed through `secrets` (keys too, since a Secret value could be
/// a key of a map).
fn redact_strings(value: &Value, secrets: &Redactor) -> Value {
    match value {
        Value::String(text) => Value::String(secrets.redact_values(text)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| redact_strings(i, secrets)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (secrets.redact_values(k), redact_strings(v, secrets)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The field changes to show: a Secret's `data` and `stringData` values masked.
fn shown_fields(change: &ObjectChange) -> Vec<FieldChange> {
    let secret = is_secret(change);
    change
        .fields
        .iter()
        .map(|f| {
            let hidden = secret && (f.path.starts_with("data") || f.path.starts_with("stringData"));
            let mask = |v: &Option<Value>| v.as_ref().map(|_| Value::from(MASK));
            FieldChange {
                old: if hidden { mask(&f.old) } else { f.old.clone() },
                new: if hidden { mask(&f.new) } else { f.new.clone() },
                ..f.clone()
            }
        })
        .collect()
}

fn object_diff(change: &ObjectChange) -> String {
    let text = |v: &Option<Value>| v.as_ref().map(emit_block).unwrap_or_default();
    diff::unified(
        &change.declared.0,
        &text(&change.before),
        &text(&change.after),
        false,
    )
}

/// A check: the report, and the objects as the head applies them (for a dry-run).
#[derive(Debug, Clone)]
pub struct Checked {
    /// The report.
    pub report: CheckReport,
    /// Every added or modified object, as applied, with the environment that applies it.
    pub applied: Vec<(Option<String>, Value)>,
}

/// How to check.
#[derive(Debug)]
pub struct CheckOptions<'a> {
    /// Only objects applied in this environment.
    pub environment: Option<&'a str>,
    /// Renders the builds.
    pub renderer: &'a Renderer,
}

/// Checks the change from the merge base of `base` and `head` to `head`.
/// `config` and `policies` should be those of the merge base, as the merge gate will judge the
/// pull request; `trusted` lists the files and directories the gate reads (configuration,
/// policies), whose change is weighed as the gate weighs it.
pub fn check(
    repo: &ConfigRepo,
    config: &Config,
    policies: &mut Policies,
    trusted: &[PathBuf],
    (base, head): (Oid, Oid),
    options: &CheckOptions<'_>,
) -> Result<Checked, Error> {
    let from = repo.merge_base(base, head)?;
    let trailers = trailers(&repo.message(head)?);
    let changes::Changes {
        objects: changes,
        not_rendered,
        renderer,
        unused,
        charts,
        unknown_scope,
        secret_values,
        formatting,
    } = changes::between(
        repo,
        config,
        options.renderer,
        from,
        head,
        options.environment,
    )?;
    let mut objects = Vec::new();
    let mut combined = Assessment::none();
    let trust: Vec<String> = repo
        .changed_files(from, head)?
        .into_iter()
        .filter(|file| trusted.iter().any(|t| file.starts_with(t)))
        .map(|file| file.to_string_lossy().replace('\\', "/"))
        .collect();
    if !trust.is_empty() {
        let one = policies.evaluate(&gate::trust_input(&trust))?;
        gate::combine(&mut combined, &one, "remediator configuration");
    }
    let mut not_rendered = not_rendered;
    not_rendered.extend(charts);
    if !not_rendered.is_empty() {
        let one = policies.evaluate(&gate::unrendered_input(&not_rendered))?;
        gate::combine(&mut combined, &one, "builds not rendered");
    }
    let secrets = Redactor::with_values(secret_values);
    for change in &changes {
        let (assessment, mut breaking) = gate::weigh(policies, change, &trailers, config)?;
        let shown = masked(change, &secrets);
        if !breaking.is_empty() {
            place(repo, head, change, &mut breaking)?;
        }
        gate::combine(&mut combined, &assessment, &change.object.to_string());
        objects.push(ObjectReport {
            object: change.object.to_string(),
            environment: change.environment.clone(),
            file: change.declared.0.clone(),
            line: change.declared.1,
            change: match (&change.before, &change.after) {
                (None, _) => ChangeKind::Added,
                (_, None) => ChangeKind::Removed,
                _ => ChangeKind::Modified,
            },
            deletes: change.deletes(),
            applier: change.applier.as_ref().map(|a| a.name.clone()),
            pruner: change.pruner(),
            unrendered: change.unrendered.clone(),
            assessment,
            fields: shown_fields(&shown),
            diff: object_diff(&shown),
            readability: match (&change.before, &change.after) {
                (Some(old), Some(new)) if !breaking.is_empty() || is_crd(change) => {
                    Some(crd::readability(old, new, None, &breaking))
                }
                _ => None,
            },
            breaking,
            existing: None,
        });
    }
    Ok(Checked {
        report: CheckReport {
            base: from.to_string(),
            head: head.to_string(),
            objects,
            not_rendered,
            renderer,
            unused: unused
                .into_iter()
                .filter(|file| !trusted.iter().any(|t| file.starts_with(t)))
                .collect(),
            unknown_scope: unknown_scope.into_iter().collect(),
            formatting: formatting.into_iter().collect(),
            assessment: combined,
        },
        applied: changes
            .into_iter()
            .filter_map(|c| Some((c.environment, c.after?)))
            .collect(),
    })
}
