//! The Kubernetes boundary. [`dryrun`] talks to the API server through kube (server-side dry-run
//! with field owners); [`health`] (per-kind health) and [`ownership`] (who manages a live object)
//! are pure and read objects as the API server returns them.

pub mod dryrun;
pub mod health;
pub mod ownership;
