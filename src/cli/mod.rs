//! Commands of the binary that do more than call one library function.

pub mod apply;
pub mod check;
pub mod cluster;
pub mod diff;
pub mod promote;
pub mod propose;
pub mod reconcile;
pub mod report;
pub mod serve;
