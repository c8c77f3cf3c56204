//! Pure nouns shared by every stage of the pipeline. Nothing here performs I/O.

mod object_ref;
mod risk;

pub use object_ref::{ObjectRef, ParseRefError, RefQuery, split_api_version};
pub use risk::RiskLevel;
