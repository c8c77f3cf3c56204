//! What `templates/check.md.j2` shows: the report of `remediator check` and, for each changed
//! CustomResourceDefinition, the operator-upgrade block. The check pipeline fills them. Pure.

use serde::Serialize;

use crate::check::CheckReport;
use crate::check::crd::Breaking;

/// One changed CustomResourceDefinition, for the operator-upgrade block.
#[derive(Debug, Serialize)]
pub struct CrdView<'a> {
    /// The CRD.
    pub object: &'a str,
    /// Its findings that break objects or clients.
    pub breaking: Vec<&'a Breaking>,
    /// Its behaviour changes (defaults).
    pub warnings: Vec<&'a Breaking>,
    /// Its versions before and after, and whether they stay readable, in words.
    pub versions: Option<String>,
    /// Whether every version stays readable.
    pub readable: bool,
    /// Its live objects against the new schema, in words; none without a cluster.
    pub existing: Option<String>,
    /// Each failure of the live objects with the objects that have it.
    pub failures: Vec<String>,
    /// CEL rules that could not be evaluated on the live objects.
    pub unevaluated: Vec<String>,
}

/// What `templates/check.md.j2` shows.
#[derive(Debug, Serialize)]
pub struct CheckView<'a> {
    /// The report.
    pub report: &'a CheckReport,
    /// The merge base, 12 digits.
    pub base: &'a str,
    /// The head, 12 digits.
    pub head: &'a str,
    /// The approvals needed, in words (`2 approvals, including security`).
    pub approvals: String,
    /// Every changed CRD: what breaks, its versions, its live objects.
    pub crds: Vec<CrdView<'a>>,
    /// The dry-run section, when a cluster was given.
    pub dry_run: Option<&'a str>,
}
