//! Which cluster each environment's objects go to: each environment reaches only its own
//! cluster (`environments[].context`, `kubeconfig`), and an environment with none configured
//! reaches none. Pure: the clients are built by the caller.

use std::collections::BTreeMap;

/// The clusters a run may reach, by environment.
#[derive(Debug)]
pub struct Clusters<C> {
    by_environment: BTreeMap<String, C>,
    /// The cluster of objects outside every environment; of every object in `single` mode.
    default: Option<C>,
    /// Every object to `default`: a run limited to one environment (`--env`), or a
    /// configuration that names no environments.
    single: bool,
}

impl<C> Clusters<C> {
    /// Every object to one cluster.
    pub fn single(cluster: C) -> Self {
        Clusters {
            by_environment: BTreeMap::new(),
            default: Some(cluster),
            single: true,
        }
    }

    /// Each environment's objects to its own cluster, and objects outside every environment to
    /// `default` (none when `None`).
    pub fn routed(by_environment: BTreeMap<String, C>, default: Option<C>) -> Self {
        Clusters {
            by_environment,
            default,
            single: false,
        }
    }

    /// The cluster of `environment`'s objects (`None`: objects outside every environment);
    /// `None` when that environment has no cluster.
    pub fn get(&self, environment: Option<&str>) -> Option<&C> {
        match environment {
            Some(name) if !self.single => self.by_environment.get(name),
            _ => self.default.as_ref(),
        }
    }

    /// The same routing over other clients (a connection's client, say).
    pub fn map<D>(self, mut f: impl FnMut(C) -> D) -> Clusters<D> {
        Clusters {
            by_environment: self
                .by_environment
                .into_iter()
                .map(|(name, c)| (name, f(c)))
                .collect(),
            default: self.default.map(f),
            single: self.single,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_environment_reaches_only_its_own_cluster() {
        let routed = Clusters::routed(
            BTreeMap::from([("dev".to_owned(), "kind-dev"), ("prod".to_owned(), "gke")]),
            None,
        );
        assert_eq!(routed.get(Some("dev")), Some(&"kind-dev"));
        assert_eq!(routed.get(Some("prod")), Some(&"gke"));
        assert_eq!(routed.get(Some("staging")), None);
        assert_eq!(routed.get(None), None);
        let single = Clusters::single("ctx");
        assert_eq!(single.get(Some("prod")), Some(&"ctx"));
        assert_eq!(single.get(None), Some(&"ctx"));
    }
}
