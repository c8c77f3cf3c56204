//! `metrics.prometheus:` in `remediator.yaml`: where Prometheus answers, how remediator signs
//! in, and how much history it reads. Read by [`crate::cluster::prometheus`].

use std::collections::BTreeMap;

use serde::Deserialize;

use super::SecretSource;

/// `metrics.prometheus` as configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusSettings {
    /// The base URL (`http://prometheus.monitoring:9090`, a Thanos or Mimir query frontend).
    pub url: String,
    /// A bearer token, from the environment or a file.
    #[serde(default)]
    pub bearer_token: Option<SecretSource>,
    /// Basic auth.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// A PEM file of the CA that signs Prometheus's certificate, besides the system's.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Label matchers added to every selector (`cluster: prod-eu-1` for a multi-cluster
    /// Thanos or Mimir); `{cluster}` in a value stands for the name of the cluster read.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Days of history read.
    #[serde(default = "default_window_days")]
    pub window_days: u64,
    /// Seconds between points; the finest step that keeps one query under 11,000 points
    /// when not given.
    #[serde(default)]
    pub step_seconds: Option<u64>,
    /// Queries in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// The least part of the window, in percent, the answers must cover (from the earliest point to now);
    /// less is partial data (a short retention, a store missing), and no usage finding is made
    /// from it.
    #[serde(default = "default_min_coverage")]
    pub min_coverage_percent: u8,
    /// The most of a series' span, in percent, its gaps may cover; more is partial data, and
    /// that workload's usage is not read.
    #[serde(default = "default_max_gap")]
    pub max_gap_percent: u8,
}

/// Basic auth of Prometheus.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuth {
    /// The user.
    pub username: String,
    /// The password, from the environment or a file.
    pub password: SecretSource,
}

fn default_window_days() -> u64 {
    14
}

fn default_concurrency() -> usize {
    8
}

fn default_min_coverage() -> u8 {
    50
}

fn default_max_gap() -> u8 {
    20
}
