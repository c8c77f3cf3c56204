//! Commands of the binary that do more than call one library function.

pub mod propose;
