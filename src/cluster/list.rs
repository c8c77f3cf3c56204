//! Listing every object of a kind across namespaces, a page at a time, as the API server
//! returns them (for checking existing custom resources against a new schema). I/O: reads the
//! cluster.

use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;

use super::{Error, KubeCluster, Result, RetryPolicy, retry, to_value};
use crate::model::ObjectRef;

/// How to list.
#[derive(Debug, Clone)]
pub struct ListOptions {
    /// Objects per page.
    pub page: u32,
    /// Retries of a page that fails with a transient error.
    pub retry: RetryPolicy,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            page: 500,
            retry: RetryPolicy::default(),
        }
    }
}

impl KubeCluster {
    /// Every object of `kind` at `api_version`, in every namespace; an empty list only when
    /// the cluster serves the kind and has none.
    pub(super) async fn list_objects(
        &self,
        api_version: &str,
        kind: &str,
        options: &ListOptions,
    ) -> Result<Vec<Value>> {
        let mut found = self.resolver(false).await?.resolve(api_version, kind);
        if found.is_none() {
            found = self.resolver(true).await?.resolve(api_version, kind);
        }
        let Some((resource, _)) = found else {
            let what = ObjectRef::new(api_version, kind, None, "*");
            return Err(Error::UnknownKind(what.to_string()));
        };
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = ListParams::default().limit(options.page);
            if let Some(token) = &token {
                params = params.continue_token(token);
            }
            let page = retry::with_retry(&options.retry, || api.list(&params))
                .await
                .map_err(|source| Error::Api {
                    object: format!("{kind}.{api_version}"),
                    verb: "list",
                    source,
                })?;
            token = page.metadata.continue_.clone().filter(|t| !t.is_empty());
            out.extend(page.items.into_iter().map(|item| {
                let mut value = to_value(item);
                // Items of a list carry no apiVersion and kind of their own.
                value["apiVersion"] = Value::from(api_version);
                value["kind"] = Value::from(kind);
                value
            }));
            if token.is_none() {
                return Ok(out);
            }
        }
    }
}
