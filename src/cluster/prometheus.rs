//! Usage history from Prometheus (`metrics.prometheus`): CPU (the rate of cAdvisor's
//! `container_cpu_usage_seconds_total`) and working-set memory per container, and volume use
//! from the kubelet's `kubelet_volume_stats_*`, over a window (14 days by default), through the
//! HTTP API (`/api/v1/query_range`, `/api/v1/query`). Pods are attributed to their workloads by
//! kube-state-metrics' `kube_pod_owner` and `kube_replicaset_owner`, never by their names.
//!
//! The step keeps every query under Prometheus's 11,000 points a series; a configured step
//! finer than that splits the window into several queries. Namespaces are queried concurrently,
//! at most `concurrency` at once, and an answer is cached for the run. An unreachable or
//! failing Prometheus is an error: usage decides findings, so it never becomes an empty
//! history. I/O: HTTP.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use http_body_util::Full;
use serde_json::Value;

use crate::config::PrometheusSettings;
use crate::model::{ContainerUsage, UsageHistory, VolumeUsage, WorkloadRef};

/// Prometheus's limit of points a series per query.
pub const MAX_POINTS: u64 = 11_000;

/// What can go wrong reading Prometheus.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings cannot be used (a secret not readable, a CA that does not load).
    #[error("metrics.prometheus: {0}")]
    Settings(String),
    /// Prometheus could not be reached.
    #[error("Prometheus at {url} cannot be reached: {message}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// Why.
        message: String,
    },
    /// Prometheus answered, with warnings that its data is partial (a store down, a limit
    /// hit): what it returned is not the usage, and is not read as such.
    #[error("Prometheus answered `{query}` with warnings, so its data may be partial: {warnings}")]
    Partial {
        /// The query.
        query: String,
        /// Its `warnings`, joined.
        warnings: String,
    },
    /// The answers cover too little of the window (a short retention, a store missing).
    #[error(
        "Prometheus holds {days:.1} days of the {window} asked, less than metrics.prometheus.minCoveragePercent ({percent} %) of them: its data is partial"
    )]
    Short {
        /// Days the answers cover.
        days: f64,
        /// Days asked.
        window: u64,
        /// The least part configured, in percent.
        percent: u8,
    },
    /// Prometheus answered with an error.
    #[error("Prometheus refused `{query}`: {kind}: {message}")]
    Query {
        /// The query.
        query: String,
        /// Its `errorType`, or the HTTP status.
        kind: String,
        /// Its `error`.
        message: String,
    },
}

/// The step of a window of `seconds` as `settings` give it: the configured one, else the finest
/// whole minute that keeps it under [`MAX_POINTS`].
fn step_for(settings: &PrometheusSettings, seconds: u64) -> u64 {
    settings
        .step_seconds
        .unwrap_or_else(|| (seconds / (MAX_POINTS - 1) + 1).div_ceil(60) * 60)
        .max(1)
}

/// Result of Prometheus calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One series of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// `(unix seconds, value)`, oldest first.
    pub values: Vec<(f64, f64)>,
}

/// A Prometheus HTTP API client for one run, with its answers cached.
pub struct Prometheus {
    settings: PrometheusSettings,
    authorization: Option<String>,
    client: crate::http::HttpsClient,
    cache: Mutex<HashMap<String, Vec<Series>>>,
}

impl Prometheus {
    /// A client as `settings` say; a secret or CA that cannot be read is an error.
    pub fn new(settings: PrometheusSettings) -> Result<Self> {
        let authorization = match (&settings.bearer_token, &settings.basic_auth) {
            (Some(token), _) => Some(format!("Bearer {}", token.read().map_err(Error::Settings)?)),
            (None, Some(basic)) => {
                let password = basic.password.read().map_err(Error::Settings)?;
                Some(format!(
                    "Basic {}",
                    base64(format!("{}:{password}", basic.username).as_bytes())
                ))
            }
            (None, None) => None,
        };
        let client = crate::http::client(settings.ca_file.as_deref()).map_err(Error::Settings)?;
        Ok(Prometheus {
            settings,
            authorization,
            client,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The step of a window of `seconds`: the configured one, else the finest whole minute
    /// that keeps it under [`MAX_POINTS`].
    pub fn step(&self, seconds: u64) -> u64 {
        step_for(&self.settings, seconds)
    }

    /// The label matchers the settings add, as `,a="b"` (empty when none).
    fn matchers(&self) -> String {
        self.settings
            .labels
            .iter()
            .map(|(k, v)| format!(",{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect()
    }

    /// `query` over `[start, end]` at `step` seconds, split into queries of at most
    /// [`MAX_POINTS`] points, the series of the parts joined.
    pub async fn range(&self, query: &str, start: u64, end: u64, step: u64) -> Result<Vec<Series>> {
        let span = MAX_POINTS.saturating_sub(1) * step;
        let mut parts = Vec::new();
        let mut from = start;
        while from <= end {
            let to = (from + span).min(end);
            parts.push((from, to));
            if to == end {
                break;
            }
            from = to + step;
        }
        let mut joined: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        for (from, to) in parts {
            let path = format!(
                "/api/v1/query_range?query={}&start={from}&end={to}&step={step}",
                encode(query)
            );
            for series in self.get(&path, query).await? {
                joined
                    .entry(series.labels)
                    .or_default()
                    .extend(series.values);
            }
        }
        Ok(joined
            .into_iter()
            .map(|(labels, values)| Series { labels, values })
            .collect())
    }

    /// `query` at `at`.
    pub async fn instant(&self, query: &str, at: u64) -> Result<Vec<Series>> {
        let path = format!("/api/v1/query?query={}&time={at}", encode(query));
        self.get(&path, query).await
    }

    async fn get(&self, path: &str, query: &str) -> Result<Vec<Series>> {
        if let Some(cached) = self.cache.lock().ok().and_then(|c| c.get(path).cloned()) {
            return Ok(cached);
        }
        let url = format!("{}{path}", self.settings.url.trim_end_matches('/'));
        let unreachable = |message: String| Error::Unreachable {
            url: self.settings.url.clone(),
            message,
        };
        let mut request = http::Request::get(&url);
        if let Some(value) = &self.authorization {
            request = request.header("authorization", value);
        }
        let request = request
            .body(Full::new(bytes::Bytes::new()))
            .map_err(|e| unreachable(e.to_string()))?;
        let (status, body) = crate::http::send(&self.client, request, Duration::from_secs(60))
            .await
            .map_err(unreachable)?;
        let value: Value = serde_json::from_slice(&body).map_err(|e| Error::Query {
            query: query.to_owned(),
            kind: format!("HTTP {status}"),
            message: format!("not the API's JSON: {e}"),
        })?;
        if value["status"] != "success" {
            return Err(Error::Query {
                query: query.to_owned(),
                kind: value["errorType"]
                    .as_str()
                    .map_or_else(|| format!("HTTP {status}"), str::to_owned),
                message: value["error"].as_str().unwrap_or_default().to_owned(),
            });
        }
        let warnings: Vec<String> = value["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| w.as_str().map_or_else(|| w.to_string(), str::to_owned))
            .collect();
        if !warnings.is_empty() {
            return Err(Error::Partial {
                query: query.to_owned(),
                warnings: warnings.join("; "),
            });
        }
        let series = parse(&value["data"]).map_err(|message| Error::Query {
            query: query.to_owned(),
            kind: "bad_data".into(),
            message,
        })?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(path.to_owned(), series.clone());
        }
        Ok(series)
    }

    /// The usage history of `namespaces` up to `now` (unix seconds): each workload container's
    /// CPU and memory averaged over its pods at each step, and each claim's used bytes.
    pub async fn usage(&self, namespaces: &[String], now: u64) -> Result<UsageHistory> {
        let window = self.settings.window_days * 86_400;
        let (start, step) = (now.saturating_sub(window), self.step(window));
        let l = self.matchers();
        let owners = self.owners(now).await?;
        let per_namespace = |namespace: &String| {
            let ns = format!(",namespace=\"{namespace}\"");
            let cpu = format!(
                "sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{{container!=\"\",container!=\"POD\"{ns}{l}}}[5m]))"
            );
            let memory = format!(
                "max by (namespace, pod, container) (container_memory_working_set_bytes{{container!=\"\",container!=\"POD\"{ns}{l}}})"
            );
            let used = format!(
                "max by (namespace, persistentvolumeclaim) (kubelet_volume_stats_used_bytes{{{}}})",
                &format!("{ns}{l}")[1..]
            );
            let capacity = format!(
                "max by (namespace, persistentvolumeclaim) (kubelet_volume_stats_capacity_bytes{{{}}})",
                &format!("{ns}{l}")[1..]
            );
            let oom = format!(
                "max by (namespace, pod, container) (max_over_time(kube_pod_container_status_last_terminated_reason{{reason=\"OOMKilled\"{ns}{l}}}[{}d]))",
                self.settings.window_days
            );
            async move {
                Ok::<_, Error>((
                    self.range(&cpu, start, now, step).await?,
                    self.range(&memory, start, now, step).await?,
                    self.range(&used, start, now, step).await?,
                    self.instant(&capacity, now).await?,
                    self.instant(&oom, now).await?,
                ))
            }
        };
        let answers: Vec<_> = futures::stream::iter(namespaces)
            .map(per_namespace)
            .buffer_unordered(self.settings.concurrency.max(1))
            .try_collect()
            .await?;
        let mut history = UsageHistory::default();
        let mut sums: BTreeMap<(String, String, String, String), Sums> = BTreeMap::new();
        for (cpu, memory, used, capacity, oom) in answers {
            for series in &oom {
                let label = |k: &str| series.labels.get(k).cloned().unwrap_or_default();
                let (namespace, pod) = (label("namespace"), label("pod"));
                let killed = series.values.last().is_some_and(|v| v.1 >= 1.0);
                let Some((kind, name)) = owners.get(&(namespace.clone(), pod)).filter(|_| killed)
                else {
                    continue;
                };
                sums.entry((namespace, kind.clone(), name.clone(), label("container")))
                    .or_default()
                    .oom_killed_pods += 1;
            }
            for (series, is_cpu) in cpu
                .iter()
                .map(|s| (s, true))
                .chain(memory.iter().map(|s| (s, false)))
            {
                let label = |k: &str| series.labels.get(k).cloned().unwrap_or_default();
                let (namespace, pod) = (label("namespace"), label("pod"));
                let Some((kind, name)) = owners.get(&(namespace.clone(), pod)) else {
                    continue;
                };
                let entry = sums
                    .entry((namespace, kind.clone(), name.clone(), label("container")))
                    .or_default();
                let into = if is_cpu {
                    &mut entry.cpu
                } else {
                    &mut entry.memory
                };
                for (t, v) in &series.values {
                    let slot = into.entry(*t as i64).or_insert((0.0, 0));
                    slot.0 += v;
                    slot.1 += 1;
                }
            }
            for series in &used {
                let label = |k: &str| series.labels.get(k).cloned().unwrap_or_default();
                let claim = label("persistentvolumeclaim");
                let capacity = capacity
                    .iter()
                    .find(|c| c.labels.get("persistentvolumeclaim") == Some(&claim))
                    .and_then(|c| c.values.last().map(|v| v.1));
                let Some(capacity_bytes) = capacity else {
                    continue;
                };
                history.volumes.push(VolumeUsage {
                    namespace: label("namespace"),
                    pvc: claim,
                    capacity_bytes,
                    used: series.values.clone(),
                });
            }
        }
        let mean = |points: BTreeMap<i64, (f64, usize)>| -> Vec<(f64, f64)> {
            points
                .into_iter()
                .map(|(t, (sum, n))| (t as f64, sum / n as f64))
                .collect()
        };
        for ((namespace, kind, name, container), s) in sums {
            let replicas = s
                .cpu
                .iter()
                .map(|(t, (_, n))| (*t as f64, *n as f64))
                .collect();
            history.containers.push(ContainerUsage {
                namespace,
                workload: WorkloadRef { kind, name },
                container,
                cpu: mean(s.cpu),
                memory: mean(s.memory),
                replicas,
                oom_killed_pods: s.oom_killed_pods,
            });
        }
        Ok(history)
    }

    /// Each pod's workload over the window, from kube-state-metrics: a ReplicaSet's pods
    /// belong to its Deployment.
    async fn owners(&self, now: u64) -> Result<HashMap<(String, String), (String, String)>> {
        let l = &self.matchers();
        let window = self.settings.window_days;
        let selector = if l.is_empty() {
            String::new()
        } else {
            l[1..].to_owned()
        };
        let pods = self
            .instant(
                &format!("max by (namespace, pod, owner_kind, owner_name) (last_over_time(kube_pod_owner{{{selector}}}[{window}d]))"),
                now,
            )
            .await?;
        let sets = self
            .instant(
                &format!("max by (namespace, replicaset, owner_kind, owner_name) (last_over_time(kube_replicaset_owner{{{selector}}}[{window}d]))"),
                now,
            )
            .await?;
        let set_owner: HashMap<(String, String), (String, String)> = sets
            .iter()
            .filter_map(|s| {
                let l = |k: &str| s.labels.get(k).cloned();
                Some((
                    (l("namespace")?, l("replicaset")?),
                    (l("owner_kind")?, l("owner_name")?),
                ))
            })
            .collect();
        Ok(pods
            .iter()
            .filter_map(|s| {
                let l = |k: &str| s.labels.get(k).cloned();
                let (namespace, pod) = (l("namespace")?, l("pod")?);
                let (kind, name) = (l("owner_kind")?, l("owner_name")?);
                let owner = match kind.as_str() {
                    "ReplicaSet" => set_owner
                        .get(&(namespace.clone(), name.clone()))
                        .cloned()
                        .unwrap_or((kind, name)),
                    "<none>" | "" => return None,
                    _ => (kind, name),
                };
                Some(((namespace, pod), owner))
            })
            .collect())
    }
}

#[derive(Default)]
struct Sums {
    cpu: BTreeMap<i64, (f64, usize)>,
    memory: BTreeMap<i64, (f64, usize)>,
    oom_killed_pods: u32,
}

/// The series of a `data` object (`resultType` `matrix` or `vector`).
fn parse(data: &Value) -> std::result::Result<Vec<Series>, String> {
    let kind = data["resultType"].as_str().unwrap_or_default();
    let results = data["result"].as_array().ok_or("no `result` list")?;
    let point = |p: &Value| -> std::result::Result<(f64, f64), String> {
        let t = p[0]
            .as_f64()
            .ok_or_else(|| format!("time {} is not a number", p[0]))?;
        let v = p[1]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(|| format!("value {} is not a number", p[1]))?;
        Ok((t, v))
    };
    results
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            let values = match kind {
                "matrix" => r["values"]
                    .as_array()
                    .ok_or("a matrix series without `values`")?
                    .iter()
                    .map(point)
                    .filter(|p| p.as_ref().map_or(true, |(_, v)| v.is_finite()))
                    .collect::<std::result::Result<Vec<_>, _>>()?,
                "vector" => vec![point(&r["value"])?],
                other => return Err(format!("resultType `{other}` is not a matrix or vector")),
            };
            Ok(Series { labels, values })
        })
        .collect()
}

/// Percent-encodes a query for a URL.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Replaces `loaded`'s usage with Prometheus's, when `settings` name one: the namespaces of
/// its pods and claims, up to now, `{cluster}` in a label value standing for `cluster` (one
/// Thanos or Mimir for several clusters). A Prometheus that cannot be used or answers with an
/// error, or a `{cluster}` label with no cluster to name, leaves no usage and a problem saying
/// why, so that nothing is judged (or closed as cleared) on a history that was not read.
pub async fn load_usage(
    settings: Option<&PrometheusSettings>,
    cluster: Option<&str>,
    loaded: &mut crate::snapshot::Loaded,
    now: Option<k8s_openapi::jiff::Timestamp>,
) {
    let Some(settings) = settings else {
        return;
    };
    let mut settings = settings.clone();
    for (key, value) in &mut settings.labels {
        if !value.contains("{cluster}") {
            continue;
        }
        match cluster {
            Some(name) => *value = value.replace("{cluster}", name),
            None => {
                loaded.snapshot.usage = UsageHistory::default();
                loaded.problems.push(crate::snapshot::Problem::Unavailable {
                    what: "usage history from Prometheus".into(),
                    message: format!(
                        "label {key}=\"{value}\" names the cluster, and this run reads one no configuration names"
                    ),
                });
                return;
            }
        }
    }
    let settings = &settings;
    let snapshot = &loaded.snapshot;
    let mut namespaces: Vec<String> = snapshot
        .pods
        .iter()
        .filter_map(|p| p.metadata.namespace.clone())
        .chain(
            snapshot
                .pvcs
                .iter()
                .filter_map(|p| p.metadata.namespace.clone()),
        )
        .collect();
    namespaces.sort();
    namespaces.dedup();
    // `--now` ends the range too, so that a run can be replayed.
    let now = now
        .unwrap_or_else(k8s_openapi::jiff::Timestamp::now)
        .as_second()
        .max(0) as u64;
    let read = match Prometheus::new(settings.clone()) {
        Ok(prometheus) => prometheus.usage(&namespaces, now).await,
        Err(error) => Err(error),
    };
    // Answers that cover less than the configured share of the window are partial data.
    let read = read.and_then(|history| {
        let window = (settings.window_days * 86_400) as f64;
        let earliest = history
            .containers
            .iter()
            .flat_map(|c| c.cpu.iter().chain(&c.memory))
            .map(|p| p.0)
            .fold(f64::INFINITY, f64::min);
        let covered = if earliest.is_finite() {
            (now as f64 - earliest).max(0.0)
        } else {
            window
        };
        if covered < window * f64::from(settings.min_coverage_percent.min(100)) / 100.0 {
            return Err(Error::Short {
                days: covered / 86_400.0,
                window: settings.window_days,
                percent: settings.min_coverage_percent,
            });
        }
        Ok(history)
    });
    // A series whose gaps cover more than the configured part of its span is partial too: that
    // workload container's usage is not read, and the run says so.
    let step = step_for(settings, settings.window_days * 86_400) as f64;
    let mut gappy: Vec<String> = Vec::new();
    let read = read.map(|mut history| {
        history.containers.retain(|c| {
            let share = crate::detect::predict::gap_share(&c.cpu, step)
                .max(crate::detect::predict::gap_share(&c.memory, step));
            let keep = share * 100.0 <= f64::from(settings.max_gap_percent);
            if !keep {
                gappy.push(format!(
                    "{} {}/{} container {} ({:.0} %)",
                    c.workload.kind,
                    c.namespace,
                    c.workload.name,
                    c.container,
                    share * 100.0
                ));
            }
            keep
        });
        history
    });
    if !gappy.is_empty() {
        loaded.problems.push(crate::snapshot::Problem::Unavailable {
            what: format!("usage history of {}", gappy.join(", ")),
            message: format!(
                "gaps cover more than metrics.prometheus.maxGapPercent ({} %) of the series: partial data, not read as usage",
                settings.max_gap_percent
            ),
        });
    }
    match read {
        Ok(history) => loaded.snapshot.usage = history,
        Err(error) => {
            loaded.snapshot.usage = UsageHistory::default();
            loaded.problems.push(crate::snapshot::Problem::Unavailable {
                what: "usage history from Prometheus".into(),
                message: format!("{error}; usage findings (high-cpu, over- and under-provisioned, pvc-filling-up, forecasts) are not looked for"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fourteen_day_window_stays_under_the_point_limit_in_one_query() {
        let settings: PrometheusSettings =
            serde_json::from_value(serde_json::json!({"url": "http://p"})).unwrap();
        let prometheus = Prometheus::new(settings).unwrap();
        let window = 14 * 86_400;
        let step = prometheus.step(window);
        assert_eq!(step, 120);
        assert!(window / step < MAX_POINTS);
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(encode("a{b=\"c\"}"), "a%7Bb%3D%22c%22%7D");
    }

    #[test]
    fn answers_parse_and_errors_name_their_type() {
        let matrix = serde_json::json!({"resultType": "matrix", "result": [
            {"metric": {"pod": "a"}, "values": [[1.0, "0.5"], [2.0, "NaN"], [3.0, "0.7"]]}]});
        let series = parse(&matrix).unwrap();
        assert_eq!(series[0].values, [(1.0, 0.5), (3.0, 0.7)]);
        let vector = serde_json::json!({"resultType": "vector", "result": [
            {"metric": {}, "value": [5.0, "12"]}]});
        assert_eq!(parse(&vector).unwrap()[0].values, [(5.0, 12.0)]);
        let bad = serde_json::json!({"resultType": "matrix", "result": [
            {"metric": {}, "values": [[1.0, "x"]]}]});
        assert!(parse(&bad).unwrap_err().contains("not a number"));
    }
}
