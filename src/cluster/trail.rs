//! The cluster's own record of what it runs: for each scope of reconcile runs (an environment,
//! or `all` for a run over every one), the last commit that reached a final state there and its
//! outcome, in the ConfigMap `remediator-trail` of remediator's namespace, which only its
//! service account may write. In the spirit of Flux's `status.lastAppliedRevision`; the Git
//! notes stay the readable history and are checked against it. I/O: the Kubernetes API.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::retry::{RetryPolicy, with_retry};
use super::{Error, Result};

/// The ConfigMap the records live in.
pub const NAME: &str = "remediator-trail";

/// The record of `scope` in `namespace`, as written; `None` when there is none.
pub async fn read(client: &kube::Client, namespace: &str, scope: &str) -> Result<Option<String>> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let found = with_retry(&RetryPolicy::default(), || api.get_opt(NAME))
        .await
        .map_err(|source| Error::Api {
            object: format!("ConfigMap/{namespace}/{NAME}"),
            verb: "get",
            source,
        })?;
    Ok(found
        .and_then(|map| map.data)
        .and_then(|mut data| data.remove(scope)))
}

/// Sets the record of `scope` in `namespace` to `value`, by server-side apply of that one key.
pub async fn write(client: &kube::Client, namespace: &str, scope: &str, value: &str) -> Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let patch = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": NAME, "namespace": namespace},
        "data": {scope: value},
    });
    let params = PatchParams::apply(&format!("remediator-trail-{scope}")).force();
    let patch = Patch::Apply(&patch);
    with_retry(&RetryPolicy::default(), || api.patch(NAME, &params, &patch))
        .await
        .map(|_| ())
        .map_err(|source| Error::Api {
            object: format!("ConfigMap/{namespace}/{NAME}"),
            verb: "apply",
            source,
        })
}
