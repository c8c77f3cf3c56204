//! GitHub delivery ids kept beyond a restart: a ConfigMap (`remediator-deliveries`) in the
//! service's namespace holds each id with the second it came, for the replay window (an hour,
//! at most 10,000 ids). A delivery whose id is there is a replay, whichever replica saw it
//! first and however often the service restarted since. Written with optimistic concurrency:
//! a conflict reads the ConfigMap again. A ConfigMap that cannot be read or written refuses the
//! delivery (503, so that it can be delivered again), never admits it blind. I/O: the
//! ConfigMap.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};

/// How long a delivery id is kept: a delivery received again within it is a replay.
pub const WINDOW: Duration = Duration::from_secs(3600);

/// The ConfigMap's name.
pub const CONFIG_MAP: &str = "remediator-deliveries";

/// Its key holding the ids, a JSON object of id to the second it came.
const KEY: &str = "deliveries.json";

/// Why a delivery is not admitted.
#[derive(Debug, thiserror::Error)]
pub enum NotAdmitted {
    /// Its id came within the window.
    #[error("delivery {0} was already received")]
    Replayed(String),
    /// The ConfigMap could not be read or written.
    #[error("the delivery ids (ConfigMap {CONFIG_MAP}) cannot be read or written: {0}")]
    Unavailable(String),
}

/// The ids of one namespace.
pub struct Store {
    api: Api<ConfigMap>,
    window: Duration,
    capacity: usize,
}

impl Store {
    /// The ids in `namespace`, kept for `window`, at most `capacity` of them.
    pub fn new(client: kube::Client, namespace: &str, window: Duration, capacity: usize) -> Self {
        Store {
            api: Api::namespaced(client, namespace),
            window,
            capacity: capacity.max(1),
        }
    }

    /// Records `id` as received at `now` (seconds since the epoch); a replay when the
    /// ConfigMap holds it within the window.
    pub async fn admit(&self, id: &str, now: i64) -> Result<(), NotAdmitted> {
        let unavailable = |e: kube::Error| NotAdmitted::Unavailable(e.to_string());
        for _ in 0..5 {
            let existing = self.api.get_opt(CONFIG_MAP).await.map_err(unavailable)?;
            let mut ids = match &existing {
                Some(map) => read(map)?,
                None => BTreeMap::new(),
            };
            let window = i64::try_from(self.window.as_secs()).unwrap_or(i64::MAX);
            if ids.get(id).is_some_and(|at| now - at <= window) {
                return Err(NotAdmitted::Replayed(id.to_owned()));
            }
            ids.insert(id.to_owned(), now);
            keep(&mut ids, now, window, self.capacity);
            let text =
                serde_json::to_string(&ids).map_err(|e| NotAdmitted::Unavailable(e.to_string()))?;
            let data = BTreeMap::from([(KEY.to_owned(), text)]);
            let written = match existing {
                Some(mut map) => {
                    map.data = Some(data);
                    self.api
                        .replace(CONFIG_MAP, &PostParams::default(), &map)
                        .await
                }
                None => {
                    let map = ConfigMap {
                        metadata: ObjectMeta {
                            name: Some(CONFIG_MAP.to_owned()),
                            ..ObjectMeta::default()
                        },
                        data: Some(data),
                        ..ConfigMap::default()
                    };
                    self.api.create(&PostParams::default(), &map).await
                }
            };
            match written {
                Ok(_) => return Ok(()),
                // Another replica wrote first: read again.
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(error) => return Err(unavailable(error)),
            }
        }
        Err(NotAdmitted::Unavailable(
            "five writes in a row met another's".into(),
        ))
    }
}

/// The ids a ConfigMap holds; one that does not read is an error, not an empty list.
fn read(map: &ConfigMap) -> Result<BTreeMap<String, i64>, NotAdmitted> {
    match map.data.as_ref().and_then(|d| d.get(KEY)) {
        None => Ok(BTreeMap::new()),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| NotAdmitted::Unavailable(format!("{KEY} does not read: {e}"))),
    }
}

/// Drops the ids older than the window, then the oldest past `capacity`.
fn keep(ids: &mut BTreeMap<String, i64>, now: i64, window: i64, capacity: usize) {
    ids.retain(|_, at| now - *at <= window);
    if ids.len() > capacity {
        let mut ages: Vec<(i64, String)> = ids.iter().map(|(id, at)| (*at, id.clone())).collect();
        ages.sort();
        for (_, id) in ages.into_iter().take(ids.len() - capacity) {
            ids.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_ids_go_first_and_the_newest_stay_within_capacity() {
        let mut ids: BTreeMap<String, i64> = [("a", 50), ("b", 3000), ("c", 3500), ("d", 3600)]
            .into_iter()
            .map(|(id, at)| (id.to_owned(), at))
            .collect();
        keep(&mut ids, 3700, 3600, 10);
        assert_eq!(ids.keys().collect::<Vec<_>>(), ["b", "c", "d"]);
        keep(&mut ids, 3700, 3600, 2);
        assert_eq!(ids.keys().collect::<Vec<_>>(), ["c", "d"]);
    }

    #[test]
    fn a_config_map_that_does_not_read_is_an_error() {
        let map = ConfigMap {
            data: Some(BTreeMap::from([(KEY.to_owned(), "[not json".to_owned())])),
            ..ConfigMap::default()
        };
        assert!(matches!(read(&map), Err(NotAdmitted::Unavailable(_))));
        assert!(read(&ConfigMap::default()).unwrap().is_empty());
    }
}
