//! Live objects read a namespace at a time: before a stage writes, the members that share a
//! resource and namespace with enough others are read with one paged list instead of one get
//! each. I/O: the Kubernetes API.

use std::collections::{BTreeMap, HashMap};

use kube::api::{Api, DynamicObject};
use kube::discovery::{ApiResource, Scope};
use serde_json::Value;

use super::live::pages;
use super::retry::RetryPolicy;
use super::{Error, Resolver, Result, subject, to_value};
use crate::model::ObjectRef;

/// Members of one resource in one namespace that make a list worth it.
pub const LIST_THRESHOLD: usize = 8;

/// What the lists found: every covered member, with its live object or `None`.
pub(crate) type Prefetched = HashMap<ObjectRef, Option<Value>>;

/// Lists the resources and namespaces that at least [`LIST_THRESHOLD`] members share.
pub(crate) async fn prefetch(
    client: &kube::Client,
    resolver: &Resolver,
    members: &[&Value],
    default_namespace: &str,
    retry: &RetryPolicy,
) -> Result<Prefetched> {
    let mut groups: BTreeMap<(String, Option<String>), (ApiResource, Vec<ObjectRef>)> =
        BTreeMap::new();
    for object in members {
        let Ok(named) = subject(object, default_namespace) else {
            continue;
        };
        let Some((resource, capabilities)) = resolver.resolve(&named.api_version(), &named.kind)
        else {
            continue;
        };
        let namespace = match capabilities.scope {
            Scope::Cluster => None,
            Scope::Namespaced => Some(
                named
                    .namespace
                    .clone()
                    .unwrap_or_else(|| default_namespace.to_owned()),
            ),
        };
        let named = named.with_namespace(namespace.as_deref());
        let key = (
            resource.api_version.clone() + "/" + &resource.plural,
            namespace,
        );
        groups
            .entry(key)
            .or_insert_with(|| (resource, Vec::new()))
            .1
            .push(named);
    }
    let mut found = Prefetched::new();
    for ((_, namespace), (resource, refs)) in groups {
        if refs.len() < LIST_THRESHOLD {
            continue;
        }
        let api: Api<DynamicObject> = match &namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let items = pages(&api, 500, retry, |object| object)
            .await
            .map_err(|source| Error::Api {
                object: format!(
                    "{}/{}",
                    resource.kind,
                    namespace.as_deref().unwrap_or_default()
                ),
                verb: "list",
                source,
            })?;
        let mut live: HashMap<String, Value> = HashMap::new();
        for item in items {
            let mut value = to_value(item);
            // Items of a list carry no type; the comparison with the dry-run needs it.
            value["apiVersion"] = Value::from(resource.api_version.clone());
            value["kind"] = Value::from(resource.kind.clone());
            let name = value.pointer("/metadata/name").and_then(Value::as_str);
            if let Some(name) = name.map(str::to_owned) {
                live.insert(name, value);
            }
        }
        for named in refs {
            let value = live.get(&named.name).cloned();
            found.insert(named, value);
        }
    }
    Ok(found)
}
