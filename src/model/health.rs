//! Health: how a live object is doing after a change, as an ordered status with a message.

use std::fmt;

use serde::Serialize;

/// A health status, ordered from best to worst (Argo CD's order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "PascalCase")]
pub enum HealthStatus {
    /// Running as its spec asks.
    Healthy,
    /// Paused or suspended on purpose.
    Suspended,
    /// Not there yet, still moving.
    Progressing,
    /// Not found in the cluster.
    Missing,
    /// Failed, or will not get there without help.
    Degraded,
    /// Its status cannot be read.
    Unknown,
}

impl HealthStatus {
    /// Whether `self` is worse than `other`.
    pub fn is_worse(self, other: HealthStatus) -> bool {
        self > other
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            HealthStatus::Healthy => "Healthy",
            HealthStatus::Suspended => "Suspended",
            HealthStatus::Progressing => "Progressing",
            HealthStatus::Missing => "Missing",
            HealthStatus::Degraded => "Degraded",
            HealthStatus::Unknown => "Unknown",
        };
        f.write_str(text)
    }
}

/// A status and what it rests on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The status.
    pub status: HealthStatus,
    /// Why, in the words of the object's own status where it has them.
    pub message: String,
}

impl Health {
    /// A status with a message.
    pub fn new(status: HealthStatus, message: impl Into<String>) -> Self {
        Health {
            status,
            message: message.into(),
        }
    }

    /// Healthy, with no more to say.
    pub fn healthy() -> Self {
        Health::new(HealthStatus::Healthy, "")
    }

    /// Whether the object is where it should be.
    pub fn is_healthy(&self) -> bool {
        self.status == HealthStatus::Healthy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_order_from_best_to_worst() {
        assert!(HealthStatus::Degraded.is_worse(HealthStatus::Progressing));
        assert!(HealthStatus::Progressing.is_worse(HealthStatus::Healthy));
        assert!(!HealthStatus::Healthy.is_worse(HealthStatus::Suspended));
        assert!(HealthStatus::Unknown.is_worse(HealthStatus::Degraded));
    }
}
