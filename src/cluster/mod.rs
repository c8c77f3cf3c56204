//! The Kubernetes boundary. This part is pure: per-kind health ([`health`]) and who manages a live
//! object ([`ownership`]); both read objects as the API server returns them and perform no I/O.

pub mod health;
pub mod ownership;
