//! The usage history the service builds itself: metrics.k8s.io sampled on an interval, each
//! sample averaged per workload container as a live snapshot reads it, kept for a window and at
//! most a bounded number of points per container, so that usage findings (`high-cpu`: 70 % of
//! the request for 5 minutes) fire from the live service. A later source (Prometheus) can fill
//! the same history. Pure.

use std::collections::BTreeMap;

use crate::model::{ContainerUsage, UsageHistory};

type Key = (String, String, String, String);

/// Samples per workload container, oldest first.
#[derive(Debug)]
pub struct History {
    window: f64,
    points: usize,
    containers: BTreeMap<Key, ContainerUsage>,
}

fn key(c: &ContainerUsage) -> Key {
    (
        c.namespace.clone(),
        c.workload.kind.clone(),
        c.workload.name.clone(),
        c.container.clone(),
    )
}

/// Appends the samples after the last one kept, then drops what is older than `since` and what
/// is beyond `points`.
fn merge(into: &mut Vec<(f64, f64)>, from: &[(f64, f64)], since: f64, points: usize) {
    let last = into.last().map_or(f64::MIN, |p| p.0);
    into.extend(from.iter().copied().filter(|p| p.0 > last));
    into.retain(|p| p.0 >= since);
    if into.len() > points {
        into.drain(..into.len() - points);
    }
}

impl History {
    /// Keeps `window_seconds` of samples, at most `points` per series.
    pub fn new(window_seconds: u64, points: usize) -> Self {
        History {
            window: window_seconds as f64,
            points: points.max(1),
            containers: BTreeMap::new(),
        }
    }

    /// Takes in a sample (or a history); containers gone from the cluster age out with the window.
    pub fn absorb(&mut self, usage: &UsageHistory) {
        let newest = usage
            .containers
            .iter()
            .flat_map(|c| c.cpu.iter().chain(&c.memory).map(|p| p.0))
            .fold(f64::MIN, f64::max);
        for sample in &usage.containers {
            let kept = self
                .containers
                .entry(key(sample))
                .or_insert_with(|| ContainerUsage {
                    cpu: vec![],
                    memory: vec![],
                    replicas: vec![],
                    ..sample.clone()
                });
            let since = newest - self.window;
            merge(&mut kept.cpu, &sample.cpu, since, self.points);
            merge(&mut kept.memory, &sample.memory, since, self.points);
        }
        if newest > f64::MIN {
            let since = newest - self.window;
            self.containers.retain(|_, c| {
                c.cpu.retain(|p| p.0 >= since);
                c.memory.retain(|p| p.0 >= since);
                !c.cpu.is_empty() || !c.memory.is_empty()
            });
        }
    }

    /// The history kept, as detection reads it.
    pub fn history(&self) -> UsageHistory {
        UsageHistory {
            api_version: Some("remediator.dev/v1alpha1".into()),
            kind: Some("UsageHistory".into()),
            metadata: Some(serde_json::json!({"name": "remediator serve: metrics.k8s.io samples"})),
            containers: self.containers.values().cloned().collect(),
            volumes: vec![],
        }
    }

    /// How many series are kept.
    pub fn len(&self) -> usize {
        self.containers.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::WorkloadRef;

    fn sample(at: f64, cores: f64) -> UsageHistory {
        UsageHistory {
            containers: vec![ContainerUsage {
                namespace: "shop".into(),
                workload: WorkloadRef {
                    kind: "Deployment".into(),
                    name: "api".into(),
                },
                container: "api".into(),
                cpu: vec![(at, cores)],
                memory: vec![(at, 1e8)],
                replicas: vec![],
                oom_killed_pods: 0,
            }],
            ..UsageHistory::default()
        }
    }

    #[test]
    fn samples_accumulate_within_the_window_and_the_bound() {
        let mut history = History::new(600, 5);
        for i in 0..4 {
            history.absorb(&sample(1000.0 + 60.0 * i as f64, 0.5));
        }
        // The same sample again adds nothing.
        history.absorb(&sample(1180.0, 0.5));
        let kept = history.history();
        assert_eq!(kept.containers.len(), 1);
        assert_eq!(kept.containers[0].cpu.len(), 4);
        for i in 4..10 {
            history.absorb(&sample(1000.0 + 60.0 * i as f64, 0.9));
        }
        let kept = history.history();
        assert_eq!(kept.containers[0].cpu.len(), 5, "at most five points");
        assert_eq!(kept.containers[0].cpu[4], (1540.0, 0.9));
        // A workload gone for longer than the window ages out.
        let mut other = sample(5000.0, 0.1);
        other.containers[0].workload.name = "web".into();
        history.absorb(&other);
        assert_eq!(history.len(), 1);
        assert_eq!(history.history().containers[0].workload.name, "web");
    }
}
