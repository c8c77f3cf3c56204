//! Risk levels, ordered from low to critical.

use serde::{Deserialize, Serialize};

/// How risky a change is; also how much risk an environment tolerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    /// Routine; no approval beyond the default.
    Low,
    /// Needs one approval.
    Medium,
    /// Needs approvals from owners.
    High,
    /// Needs two approvals and security.
    Critical,
}

impl std::fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        })
    }
}
