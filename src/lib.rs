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
//! Modules, in pipeline order: [`config`] (`remediator.yaml`), [`model`] (the shared nouns),
//! [`manifests`] (where each object is declared in the config repository, lossless edits, diffs),
//! [`snapshot`] (recorded cluster state), [`detect`] (findings), [`remedy`] (the action catalog),
//! [`assess`] (Rego policies), [`cluster`] (the Kubernetes boundary: live snapshot, dry-run,
//! staged apply, health wait, ownership, locks), [`render`] (kustomize and helm, as GitOps
//! renders), [`views`] (pull requests, comments and reports from templates), [`forge`]
//! (the pull-request boundary: GitHub), [`git`] (the Git boundary), [`audit`] (the audit trail),
//! and the two pipelines that wire them together: [`propose`] (findings → pull requests) and
//! [`reconcile`] (merged commit → gate → apply → verify → rollback).

pub mod assess;
pub mod audit;
pub mod check;
pub mod cluster;
pub mod config;
pub mod detect;
pub mod explain;
pub mod failpoint;
pub mod forge;
pub mod fuzz;
pub mod git;
pub mod http;
pub mod manifests;
pub mod model;
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
