//! remediator turns Kubernetes problems into reviewed Git pull requests, and merged pull requests
//! back into a healthy cluster.
//!
//! Data flows one way; only the boundaries (`cluster`, `forge`, `git`) talk to the outside world:
//!
//! ```text
//! cluster snapshot / alert ──► detect ──► remedy ──► manifests (edit + diff) ──► assess (Rego risk)
//!         ──► cluster dry-run ──► forge (branch, PR)            … review and merge …
//! merged commit ──► gate (approvals) ──► cluster apply (staged SSA) ──► verify (health) ──► rollback (revert)
//! ```
//!
//! The modules form layers: each imports only modules of the layers below it, so none imports
//! itself back through others (`tests/imports.rs` keeps it so, and checks this list).
//!
//! - layer 0: [`model`] (the shared nouns), [`crd`] (CRD compatibility), [`redact`] (masking
//!   secrets), [`http`] (an HTTPS client), [`failpoint`] (fault injection for tests),
//!   [`parallel`] (work spread over the cores)
//! - layer 1: [`manifests`] (where each object is declared in the config repository, lossless
//!   edits, diffs)
//! - layer 2: [`config`] (`remediator.yaml`), [`git`] (the Git boundary), [`snapshot`]
//!   (recorded cluster state)
//! - layer 3: [`detect`] (findings), [`render`] (kustomize and helm, as GitOps renders),
//!   [`audit`] (the audit trail), [`explain`] (plain-words explanations)
//! - layer 4: [`remedy`] (the action catalog)
//! - layer 5: [`assess`] (Rego policies), [`cluster`] (the Kubernetes boundary: live snapshot,
//!   dry-run, staged apply, health wait, ownership, locks), [`changes`] (what a merge changes),
//!   [`prove`] (rendering every environment an edit reaches)
//! - layer 6: [`forge`] (the pull-request boundary: GitHub), [`report`] (health, capacity and security reports)
//! - layer 7: [`gate`] (risk against approvals), [`workspace`] (a run's inputs)
//! - layer 8: [`check`] (a pull request, judged before merge)
//! - layer 9: [`views`] (pull requests, comments and reports from templates)
//! - layer 10: the two pipelines, [`propose`] (findings → pull requests) and [`reconcile`]
//!   (merged commit → gate → apply → verify → rollback)
//! - layer 11: [`promote`] (the next environment), [`publish`] (proposals to GitHub)
//! - layer 12: [`serve`] (the in-cluster service)
//! - layer 13: [`fuzz`] (fuzzing entry points)

pub mod assess;
pub mod audit;
pub mod changes;
pub mod check;
pub mod cluster;
pub mod config;
pub mod crd;
pub mod detect;
pub mod explain;
pub mod failpoint;
pub mod forge;
pub mod fuzz;
pub mod gate;
pub mod git;
pub mod http;
pub mod manifests;
pub mod model;
pub mod parallel;
pub mod promote;
pub mod propose;
pub mod prove;
pub mod publish;
pub mod reconcile;
pub mod redact;
pub mod remedy;
pub mod render;
pub mod report;
pub mod serve;
pub mod snapshot;
pub mod views;
pub mod workspace;
