//! Which clusters each environment's objects go to: each environment reaches only its own
//! clusters (`environments[].context`, or `clusters` by name), in wave order, and an environment
//! with none configured reaches none. Pure: the clients are built by the caller.

use std::collections::BTreeMap;

/// The clusters a run may reach, by environment, each with its name.
#[derive(Debug)]
pub struct Clusters<C> {
    by_environment: BTreeMap<String, Vec<(String, C)>>,
    /// The clusters of objects outside every environment; of every object in `single` mode.
    default: Vec<(String, C)>,
    /// Every object to `default`: a run limited to one environment (`--env`), or a
    /// configuration that names no environments.
    single: bool,
}

impl<C> Clusters<C> {
    /// Every object to one cluster.
    pub fn single(cluster: C) -> Self {
        Self::single_named(vec![("default".to_owned(), cluster)])
    }

    /// Every object to these clusters (one environment's, by name, in wave order).
    pub fn single_named(clusters: Vec<(String, C)>) -> Self {
        Clusters {
            by_environment: BTreeMap::new(),
            default: clusters,
            single: true,
        }
    }

    /// Each environment's objects to its own clusters (named, in wave order), and objects
    /// outside every environment to `default` (none when `None`).
    pub fn routed(by_environment: BTreeMap<String, Vec<(String, C)>>, default: Option<C>) -> Self {
        Clusters {
            by_environment: by_environment
                .into_iter()
                .filter(|(_, clusters)| !clusters.is_empty())
                .collect(),
            default: default
                .map(|c| ("default".to_owned(), c))
                .into_iter()
                .collect(),
            single: false,
        }
    }

    /// The first cluster of `environment`'s objects (`None`: objects outside every
    /// environment); `None` when that environment has no cluster.
    pub fn get(&self, environment: Option<&str>) -> Option<&C> {
        self.all(environment).first().map(|(_, c)| c)
    }

    /// Every cluster of `environment`'s objects, by name, in wave order; empty when it has
    /// none.
    pub fn all(&self, environment: Option<&str>) -> &[(String, C)] {
        match environment {
            Some(name) if !self.single => {
                self.by_environment.get(name).map_or(&[][..], Vec::as_slice)
            }
            _ => &self.default,
        }
    }

    /// Every cluster once, by name: each environment's and the default ones.
    pub fn every(&self) -> Vec<&(String, C)> {
        let mut out: Vec<&(String, C)> = Vec::new();
        for cluster in self.by_environment.values().flatten().chain(&self.default) {
            if out.iter().all(|(name, _)| *name != cluster.0) {
                out.push(cluster);
            }
        }
        out
    }

    /// The same routing over other clients (a connection's client, say).
    pub fn map<D>(self, mut f: impl FnMut(C) -> D) -> Clusters<D> {
        let mut each = |all: Vec<(String, C)>| -> Vec<(String, D)> {
            all.into_iter().map(|(name, c)| (name, f(c))).collect()
        };
        Clusters {
            by_environment: self
                .by_environment
                .into_iter()
                .map(|(name, all)| (name, each(all)))
                .collect(),
            default: each(self.default),
            single: self.single,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_environment_reaches_only_its_own_cluster() {
        let one = |name: &str, c| vec![(name.to_owned(), c)];
        let routed = Clusters::routed(
            BTreeMap::from([
                ("dev".to_owned(), one("dev", "kind-dev")),
                (
                    "prod".to_owned(),
                    vec![("eu".to_owned(), "gke-eu"), ("us".to_owned(), "gke-us")],
                ),
            ]),
            None,
        );
        assert_eq!(routed.get(Some("dev")), Some(&"kind-dev"));
        assert_eq!(routed.get(Some("prod")), Some(&"gke-eu"));
        let prod: Vec<&str> = routed.all(Some("prod")).iter().map(|c| c.1).collect();
        assert_eq!(prod, ["gke-eu", "gke-us"]);
        assert!(routed.all(None).is_empty());
        assert_eq!(routed.get(Some("staging")), None);
        assert_eq!(routed.get(None), None);
        let single = Clusters::single("ctx");
        assert_eq!(single.get(Some("prod")), Some(&"ctx"));
        assert_eq!(single.get(None), Some(&"ctx"));
    }
}
