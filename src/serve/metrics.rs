//! The service's metrics, in Prometheus' text format (prometheus-client): findings by code,
//! proposals by outcome, reconciles by outcome, rollbacks, gate refusals, webhook deliveries by
//! source and result, each operation's duration and errors, the clone's freshness, and queue
//! depth. Every family is there from the start, each known label at zero, so that dashboards
//! and alerts read it before the first event. Pure.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A label: one value.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Label {
    /// Its value.
    pub value: String,
}

/// Two labels: where and what.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Delivery {
    /// `github` or `alertmanager`.
    pub source: String,
    /// `accepted`, `ignored`, `refused`, `invalid`, `busy`.
    pub result: String,
}

/// One of the service's operations.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Operation {
    /// One of [`OPERATIONS`].
    pub operation: String,
}

/// The operations timed and counted: a detection (reading the cluster and planning), its
/// publication to GitHub, a pull request's check, a reconcile of the base branch, the
/// promotions, the fetch of the base branch, and the watches.
pub const OPERATIONS: &[&str] = &[
    "detect",
    "publish",
    "check",
    "reconcile",
    "promote",
    "fetch",
    "watch",
];

/// Proposal outcomes.
const PROPOSALS: &[&str] = &["opened", "updated", "closed", "failed"];

/// Reconcile outcomes.
pub const RECONCILES: &[&str] = &[
    "already-done",
    "no-changes",
    "healthy",
    "rolled-back",
    "refused",
    "failed",
    "waiting",
];

/// Delivery sources and results.
const DELIVERIES: (&[&str], &[&str]) = (
    &["github", "alertmanager"],
    &[
        "accepted",
        "ignored",
        "refused",
        "invalid",
        "busy",
        "forwarded",
    ],
);

fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// A GitHub rate-limit resource.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Resource {
    /// `core`, `graphql`…
    pub resource: String,
}

/// Every metric, registered.
pub struct Metrics {
    registry: Registry,
    /// Findings seen by detection, by code.
    pub findings: Family<Label, Counter>,
    /// Proposals by outcome (`opened`, `updated`, `closed`, `failed`).
    pub proposals: Family<Label, Counter>,
    /// Reconciles by outcome.
    pub reconciles: Family<Label, Counter>,
    /// Rollbacks done.
    pub rollbacks: Counter,
    /// Merges the gate refused.
    pub refusals: Counter,
    /// Webhook deliveries by source and result.
    pub deliveries: Family<Delivery, Counter>,
    /// Seconds each operation took.
    pub latency: Family<Operation, Histogram, fn() -> Histogram>,
    /// Failed operations.
    pub errors: Family<Operation, Counter>,
    /// 1 while the clone follows the remote's base branch, 0 after a fetch failed.
    pub clone_fresh: Gauge,
    /// When the base branch was last fetched, in seconds since the epoch.
    pub clone_fetched: Gauge,
    /// Jobs waiting.
    pub queue: Gauge,
    /// Alerts firing.
    pub alerts: Gauge,
    /// 1 while this replica leads.
    pub leader: Gauge,
    /// GitHub's rate limit per window, by resource (`x-ratelimit-limit`).
    pub rate_limit: Family<Resource, Gauge>,
    /// Requests left in the window (`x-ratelimit-remaining`).
    pub rate_remaining: Family<Resource, Gauge>,
    /// When the window resets, in seconds since the epoch (`x-ratelimit-reset`).
    pub rate_reset: Family<Resource, Gauge>,
    /// Requests sent to GitHub.
    pub github_requests: Counter,
    /// Of those, answered `304 Not Modified` (free of the rate limit).
    pub github_not_modified: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("remediator");
        let metrics = Metrics {
            findings: Family::default(),
            proposals: Family::default(),
            reconciles: Family::default(),
            rollbacks: Counter::default(),
            refusals: Counter::default(),
            deliveries: Family::default(),
            latency: Family::new_with_constructor(latency),
            errors: Family::default(),
            clone_fresh: Gauge::default(),
            clone_fetched: Gauge::default(),
            queue: Gauge::default(),
            alerts: Gauge::default(),
            leader: Gauge::default(),
            rate_limit: Family::default(),
            rate_remaining: Family::default(),
            rate_reset: Family::default(),
            github_requests: Counter::default(),
            github_not_modified: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "findings",
            "Findings seen, by code",
            metrics.findings.clone(),
        );
        registry.register(
            "proposals",
            "Pull requests opened, updated, closed or failed",
            metrics.proposals.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles of merged commits, by outcome",
            metrics.reconciles.clone(),
        );
        registry.register("rollbacks", "Merges rolled back", metrics.rollbacks.clone());
        registry.register(
            "gate_refusals",
            "Merges the gate refused",
            metrics.refusals.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries, by source and result",
            metrics.deliveries.clone(),
        );
        registry.register(
            "operation_duration_seconds",
            "Duration of each operation (detect, publish, check, reconcile, promote, fetch)",
            metrics.latency.clone(),
        );
        registry.register(
            "operation_errors",
            "Failed operations (detect, publish, check, reconcile, promote, fetch, watch)",
            metrics.errors.clone(),
        );
        registry.register(
            "clone_fresh",
            "1 while the clone follows the remote's base branch, 0 after its fetch failed",
            metrics.clone_fresh.clone(),
        );
        registry.register(
            "clone_fetched_seconds",
            "When the base branch was last fetched, in seconds since the epoch",
            metrics.clone_fetched.clone(),
        );
        registry.register("queue_depth", "Jobs waiting", metrics.queue.clone());
        registry.register(
            "alerts_firing",
            "Alertmanager alerts firing",
            metrics.alerts.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica leads",
            metrics.leader.clone(),
        );
        registry.register(
            "github_rate_limit",
            "GitHub's requests per window, by resource",
            metrics.rate_limit.clone(),
        );
        registry.register(
            "github_rate_remaining",
            "GitHub requests left in the window, by resource",
            metrics.rate_remaining.clone(),
        );
        registry.register(
            "github_rate_reset_seconds",
            "When GitHub's rate-limit window resets, in seconds since the epoch",
            metrics.rate_reset.clone(),
        );
        registry.register(
            "github_requests",
            "Requests sent to GitHub",
            metrics.github_requests.clone(),
        );
        registry.register(
            "github_not_modified",
            "GitHub requests answered 304 Not Modified, free of the rate limit",
            metrics.github_not_modified.clone(),
        );
        for &operation in OPERATIONS {
            let key = Operation {
                operation: operation.into(),
            };
            // Created at zero; the guard each returns is let go at once.
            drop(metrics.latency.get_or_create(&key));
            metrics.errors.get_or_create(&key).inc_by(0);
        }
        for code in crate::model::FindingCode::ALL {
            metrics
                .findings
                .get_or_create(&Label {
                    value: code.to_string(),
                })
                .inc_by(0);
        }
        for (family, values) in [
            (&metrics.proposals, PROPOSALS),
            (&metrics.reconciles, RECONCILES),
        ] {
            for &value in values {
                family
                    .get_or_create(&Label {
                        value: value.into(),
                    })
                    .inc_by(0);
            }
        }
        for source in DELIVERIES.0 {
            for result in DELIVERIES.1 {
                metrics
                    .deliveries
                    .get_or_create(&Delivery {
                        source: (*source).into(),
                        result: (*result).into(),
                    })
                    .inc_by(0);
            }
        }
        Metrics {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    /// Counts one delivery.
    pub fn delivery(&self, source: &str, result: &str) {
        self.deliveries
            .get_or_create(&Delivery {
                source: source.into(),
                result: result.into(),
            })
            .inc();
    }

    /// Counts one failure of `operation`.
    pub fn failed(&self, operation: &str) {
        self.errors
            .get_or_create(&Operation {
                operation: operation.into(),
            })
            .inc();
    }

    /// Records how long one `operation` took.
    pub fn took(&self, operation: &str, seconds: f64) {
        self.latency
            .get_or_create(&Operation {
                operation: operation.into(),
            })
            .observe(seconds);
    }

    /// Counts one of a family.
    pub fn count(family: &Family<Label, Counter>, value: &str) {
        family
            .get_or_create(&Label {
                value: value.into(),
            })
            .inc();
    }

    /// GitHub's rate limit and the requests sent, as the client last saw them.
    pub fn github(&self, forge: &crate::forge::GitHub) {
        for limit in forge.rate_limits() {
            let resource = Resource {
                resource: limit.resource.clone(),
            };
            let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            self.rate_limit
                .get_or_create(&resource)
                .set(gauge(limit.limit));
            self.rate_remaining
                .get_or_create(&resource)
                .set(gauge(limit.remaining));
            self.rate_reset
                .get_or_create(&resource)
                .set(gauge(limit.reset));
        }
        let counts = forge.request_counts();
        let sent = counts.sent.saturating_sub(self.github_requests.get());
        self.github_requests.inc_by(sent);
        let not_modified = counts
            .not_modified
            .saturating_sub(self.github_not_modified.get());
        self.github_not_modified.inc_by(not_modified);
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_there_from_the_start_with_its_labels_at_zero() {
        let text = Metrics::default().encode();
        for family in [
            "findings",
            "proposals",
            "reconciles",
            "rollbacks",
            "gate_refusals",
            "webhook_deliveries",
            "operation_duration_seconds",
            "operation_errors",
            "clone_fresh",
            "queue_depth",
            "leader",
        ] {
            assert!(
                text.contains(&format!("# HELP remediator_{family} ")),
                "{family}: {text}"
            );
        }
        for &operation in OPERATIONS {
            assert!(
                text.contains(&format!(
                    "remediator_operation_errors_total{{operation=\"{operation}\"}} 0"
                )),
                "{operation}"
            );
            assert!(text.contains(&format!(
                "remediator_operation_duration_seconds_count{{operation=\"{operation}\"}} 0"
            )));
        }
        assert!(text.contains("remediator_findings_total{value=\"crash-loop-oom\"} 0"));
        assert!(text.contains(
            "remediator_webhook_deliveries_total{source=\"github\",result=\"refused\"} 0"
        ));
    }
}
