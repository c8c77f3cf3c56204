//! With a cluster, what a CustomResourceDefinition change does to what is already there: the
//! change judged against the live CRD (with its `status.storedVersions`), and every live custom
//! resource of each version served before and after checked against the new schema. The
//! result goes back to the policies, so that failing objects make the change critical.
//! I/O: reads the cluster through [`Cluster`].

use serde::Serialize;
use serde_json::{Value, json};

use super::{CheckReport, ObjectReport};
use crate::crd::validate::{Validation, Validator};
use crate::crd::{self, Breaking, Readability, versions};
use git2::Oid;

use crate::assess::Policies;
use crate::cluster::{self, Cluster, ListOptions};
use crate::gate;
use crate::git::ConfigRepo;
use crate::model::ObjectRef;

/// How many objects a failure names in the report before it says how many more.
pub const NAMED: usize = 5;

/// What the cluster says about one changed CRD.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Existing {
    /// `CustomResourceDefinition/name`, as the report names it.
    pub object: String,
    /// The custom resources' kind (`Gadget`).
    pub kind: String,
    /// Whether the CRD is in the cluster; without it there are no objects to break.
    pub live: bool,
    /// The change judged against the live CRD.
    pub breaking: Vec<Breaking>,
    /// Whether the live versions stay readable.
    pub readability: Option<Readability>,
    /// Each version served before and after, with its objects checked.
    pub versions: Vec<VersionCheck>,
}

/// The live objects of one version against its new schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionCheck {
    /// The version.
    pub version: String,
    /// What the check found.
    pub validation: Validation,
    /// Why the new schema could not check them, when it could not.
    pub error: Option<String>,
}

impl VersionCheck {
    /// Whether the version stays unchecked: its schema could not be compiled, or a CEL rule of
    /// it could not be evaluated here. An unevaluated rule is never a passed one.
    pub fn unchecked(&self) -> bool {
        self.error.is_some() || !self.validation.unevaluated.is_empty()
    }
}

impl Existing {
    /// Whether any version stays unchecked (see [`VersionCheck::unchecked`]).
    pub fn unchecked(&self) -> bool {
        self.versions.iter().any(VersionCheck::unchecked)
    }

    /// How many live objects fail the new schema, at any version.
    pub fn invalid(&self) -> usize {
        let mut names: Vec<&str> = self
            .versions
            .iter()
            .flat_map(|v| v.validation.invalid.iter().map(|i| i.object.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    }

    /// How many live objects there are (the most any version listed).
    pub fn total(&self) -> usize {
        self.versions
            .iter()
            .map(|v| v.validation.total)
            .max()
            .unwrap_or(0)
    }
}

/// A field every CRD has; its absence is an error naming the CRD, since the custom resources
/// could not be found without it.
fn text<'a>(value: &'a Value, pointer: &str) -> cluster::Result<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| cluster::Error::Unreadable {
            object: format!(
                "CustomResourceDefinition/{}",
                value
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("(unnamed)")
            ),
            message: format!("{pointer} is missing; its custom resources cannot be listed"),
        })
}

/// Examines each changed CRD (as the head applies it) in `cluster`. A live CRD or list that
/// cannot be read is an error, never an empty answer.
pub async fn examine<C: Cluster>(
    cluster: &C,
    crds: &[Value],
    options: &ListOptions,
) -> cluster::Result<Vec<Existing>> {
    let mut out = Vec::new();
    for new in crds {
        let name = text(new, "/metadata/name")?;
        let reference = ObjectRef::new(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            name,
        );
        let kind = text(new, "/spec/names/kind")?.to_owned();
        let Some(live) = cluster.get(&reference).await? else {
            out.push(Existing {
                object: reference.to_string(),
                kind,
                live: false,
                breaking: vec![],
                readability: None,
                versions: vec![],
            });
            continue;
        };
        let stored: Vec<String> = live
            .pointer("/status/storedVersions")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .ok_or_else(|| cluster::Error::Unreadable {
                object: reference.to_string(),
                message: "the live CRD has no status.storedVersions; which versions hold objects cannot be told".to_owned(),
            })?;
        let breaking = crd::compare(&live, new, Some(&stored));
        let readability = crd::readability(&live, new, Some(&stored), &breaking);
        let group = text(new, "/spec/group")?;
        let mut checks = Vec::new();
        for (version, _, schema) in versions::served_pairs(&live, new) {
            let objects = cluster
                .list(&format!("{group}/{version}"), &kind, options)
                .await?;
            checks.push(check_version(version, schema, &objects));
        }
        out.push(Existing {
            object: reference.to_string(),
            kind,
            live: true,
            breaking,
            readability: Some(readability),
            versions: checks,
        });
    }
    Ok(out)
}

/// Checks one version's objects; CEL's parser needs more stack than a runtime thread has, so
/// the check runs on a thread of its own.
fn check_version(version: &str, schema: &Value, objects: &[Value]) -> VersionCheck {
    let run = || match Validator::new(schema) {
        Ok(mut validator) => (validator.check_all(objects), None),
        Err(error) => (
            Validation {
                total: objects.len(),
                ..Validation::default()
            },
            Some(error.to_string()),
        ),
    };
    let (validation, error) = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn_scoped(scope, run)
            .map(|handle| handle.join())
    })
    .ok()
    .and_then(Result::ok)
    .unwrap_or_else(|| {
        (
            Validation {
                total: objects.len(),
                ..Validation::default()
            },
            Some("the check could not run".to_owned()),
        )
    });
    VersionCheck {
        version: version.to_owned(),
        validation,
        error,
    }
}

/// The policy input for what the cluster says of one CRD.
fn input(existing: &Existing) -> Value {
    let versions: Vec<Value> = existing
        .versions
        .iter()
        .map(|v| {
            json!({"version": v.version, "total": v.validation.total,
                "invalid": v.validation.invalid.len(), "unchecked": v.unchecked()})
        })
        .collect();
    gate::whole_change_input(
        "CustomResourceDefinition",
        &existing.object,
        json!({"fields": [], "breaking": existing.breaking, "existing": versions}),
    )
}

/// Puts what the cluster says into the report: each CRD's findings against the live CRD
/// joined to those against the repository's old version, its live objects, and the policies'
/// verdict on both.
pub fn weigh(
    report: &mut CheckReport,
    policies: &mut Policies,
    found: Vec<Existing>,
    repo: &ConfigRepo,
) -> Result<(), super::Error> {
    let head = Oid::from_str(&report.head).map_err(|source| crate::git::Error::Git {
        what: format!("reading commit {}", report.head),
        source,
    })?;
    for mut existing in found {
        let Some(object) = report
            .objects
            .iter_mut()
            .find(|o| o.object == existing.object)
        else {
            continue;
        };
        let one = policies.evaluate(&input(&existing))?;
        let mut alone = one.clone();
        alone.denials.clear();
        gate::combine(&mut object.assessment, &alone, &existing.object);
        object
            .assessment
            .denials
            .extend(one.denials.iter().cloned());
        gate::combine(&mut report.assessment, &one, &existing.object);
        if let Some(text) = repo.file_at(head, &object.file)? {
            for b in &mut existing.breaking {
                b.line = Some(crd::lines::line(&text, object.line, b));
            }
        }
        join(object, existing);
    }
    Ok(())
}

fn join(object: &mut ObjectReport, existing: Existing) {
    let same = |a: &Breaking, b: &Breaking| {
        (&a.version, &a.path, &a.rule) == (&b.version, &b.path, &b.rule)
    };
    for b in &existing.breaking {
        if !object.breaking.iter().any(|o| same(o, b)) {
            object.breaking.push(b.clone());
        }
    }
    if existing.readability.is_some() {
        object.readability = existing.readability.clone();
    }
    object.existing = Some(existing);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cel_rule_that_could_not_be_evaluated_leaves_its_version_unchecked() {
        let version = |unevaluated: Vec<String>| VersionCheck {
            version: "v1".into(),
            validation: Validation {
                total: 3,
                invalid: vec![],
                unevaluated,
            },
            error: None,
        };
        let existing = |v: VersionCheck| Existing {
            object: "CustomResourceDefinition/gadgets.example.com".into(),
            kind: "Gadget".into(),
            live: true,
            breaking: vec![],
            readability: None,
            versions: vec![v],
        };
        let passed = existing(version(vec![]));
        assert!(!passed.unchecked());
        assert_eq!(input(&passed)["change"]["existing"][0]["unchecked"], false);
        let rule = "`self.x.matches(...)`: a function this CEL does not have".to_owned();
        let open = existing(version(vec![rule]));
        assert!(open.unchecked(), "an unevaluated rule is never a pass");
        assert_eq!(input(&open)["change"]["existing"][0]["unchecked"], true);
    }
}
