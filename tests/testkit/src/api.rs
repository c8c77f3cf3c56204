//! Resource requests: reads the URL (`/api/v1/namespaces/NS/pods/NAME/status`), finds the served
//! type, and dispatches to get, list, watch, create, update, patch, apply or delete. Discovery
//! documents are answered here too. Runs under the server's lock; watches leave it with a plan.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::resources::{self, ResourceType};
use crate::select::{self, Selector};
use crate::status::ApiError;
use crate::store::{Event, Key, Store};
use crate::write::{self, Answer, WriteOptions};

/// A request as the handlers need it.
pub struct Request<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// URL path.
    pub path: &'a str,
    /// Decoded query parameters.
    pub query: HashMap<String, String>,
    /// `Content-Type` without parameters.
    pub content_type: String,
    /// `User-Agent`.
    pub user_agent: String,
    /// The body.
    pub body: &'a [u8],
}

/// What to send back.
pub enum Reply {
    /// A JSON document with a status code.
    Json(u16, Value),
    /// An error Status.
    Error(ApiError),
    /// A stream of watch events.
    Watch(WatchPlan),
    /// Plain text (a container's log).
    Text(String),
    /// The plain-text `404 page not found` of a path no handler serves: a group only CRDs
    /// define, at a resource or scope it does not have.
    PageNotFound,
}

impl From<Answer> for Reply {
    fn from(answer: Answer) -> Self {
        match answer {
            Ok((code, body)) => Reply::Json(code, body),
            Err(error) => Reply::Error(error),
        }
    }
}

/// A watch, prepared under the lock: the events to send first and the feed of later ones.
pub struct WatchPlan {
    /// Lines sent before any live event.
    pub initial: Vec<String>,
    /// Later events.
    pub feed: broadcast::Receiver<Arc<Event>>,
    /// Which events belong to this watch.
    pub filter: WatchFilter,
    /// When to end the stream.
    pub timeout: Option<Duration>,
}

/// Which events a watch receives.
pub struct WatchFilter {
    group: String,
    plural: String,
    namespace: Option<String>,
    labels: Selector,
    fields: Selector,
    after: u64,
}

impl WatchFilter {
    /// The line to send for an event, if this watch wants it.
    pub fn line(&self, event: &Event) -> Option<String> {
        let key = &event.key;
        let wanted = event.revision > self.after
            && key.group == self.group
            && key.plural == self.plural
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| *ns == key.namespace)
            && self.labels.matches(|k| select::label(&event.object, k))
            && self.fields.matches(|k| select::field(&event.object, k));
        wanted.then(|| json!({"type": event.kind, "object": event.object}).to_string() + "\n")
    }
}

/// Where a resource URL points.
struct Target {
    group: String,
    version: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_target(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => (String::new(), version.to_string(), rest),
        ["apis", group, version, rest @ ..] => (group.to_string(), version.to_string(), rest),
        _ => return None,
    };
    let owned = |s: &&str| s.to_string();
    let (namespace, rest) = match rest {
        ["namespaces", namespace, plural, more @ ..]
            if !matches!(*plural, "status" | "finalize") =>
        {
            (Some(namespace.to_string()), [&[*plural][..], more].concat())
        }
        _ => (None, rest.to_vec()),
    };
    match rest.as_slice() {
        [plural] => Some(Target {
            group,
            version,
            plural: plural.to_string(),
            namespace,
            name: None,
            subresource: None,
        }),
        [plural, name, more @ ..] if more.len() <= 1 => Some(Target {
            group,
            version,
            plural: plural.to_string(),
            namespace,
            name: Some(name.to_string()),
            subresource: more.first().map(owned),
        }),
        _ => None,
    }
}

/// Answers discovery paths: `/api`, `/apis`, `/api/v1`, `/apis/G/V`.
pub fn discovery(store: &Store, path: &str, address: &str) -> Option<Value> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api"] => Some(resources::core_versions(address)),
        ["apis"] => Some(resources::group_list(&store.types)),
        ["api", version] => resources::resource_list(&store.types, "", version),
        ["apis", group, version] => resources::resource_list(&store.types, group, version),
        ["openapi", "v3"] => Some(resources::openapi_root(&store.types)),
        ["openapi", "v3", rest @ ..] => {
            resources::openapi_group_version(&store.types, &rest.join("/"))
        }
        _ => None,
    }
}

/// Handles one resource request.
pub fn handle(store: &mut Store, request: &Request) -> Reply {
    let Some(target) = parse_target(request.path) else {
        return Reply::Error(ApiError::no_resource());
    };
    // A group of built-in types answers a Status; one only CRDs define is served by the
    // apiextensions handler, which passes what it does not serve on to the plain-text 404.
    let missing = || {
        if resources::is_builtin_group(&target.group) {
            Reply::Error(ApiError::no_resource())
        } else {
            Reply::PageNotFound
        }
    };
    let Some(resource) = store
        .find(&target.group, &target.version, &target.plural)
        .cloned()
    else {
        return missing();
    };
    if resource.namespaced != target.namespace.is_some() && target.name.is_some() {
        return missing();
    }
    if !resource.namespaced && target.namespace.is_some() {
        return missing();
    }
    let subresource = target.subresource.clone();
    let served = match subresource.as_deref() {
        None => true,
        Some("status") => resource.status,
        Some("scale") => resource.scale,
        Some("eviction" | "log") => resource.plural == "pods",
        Some(_) => false,
    };
    if !served {
        return Reply::Error(ApiError::no_resource());
    }
    let query = |name: &str| request.query.get(name).map(String::as_str);
    let options = WriteOptions {
        manager: match query("fieldManager") {
            Some(manager) => manager.to_string(),
            None if request.content_type == "application/apply-patch+yaml" => String::new(),
            None => request
                .user_agent
                .split('/')
                .next()
                .unwrap_or("unknown")
                .to_string(),
        },
        dry_run: query("dryRun") == Some("All"),
        force: query("force") == Some("true"),
        subresource: subresource.clone(),
    };
    let Some(name) = target.name.clone() else {
        let namespace = target.namespace.as_deref();
        return match request.method {
            "GET" if matches!(query("watch"), Some("true" | "1")) => {
                watch(store, &resource, namespace, request)
            }
            "GET" => list(store, &resource, namespace, request).into(),
            "POST" => write::create(
                store,
                &resource,
                namespace.unwrap_or(""),
                request.body,
                &options,
            )
            .into(),
            "DELETE" => delete_collection(store, &resource, namespace, request).into(),
            _ => Reply::Error(ApiError::method_not_allowed()),
        };
    };
    let key = Key {
        group: resource.group.clone(),
        plural: resource.plural.clone(),
        namespace: target.namespace.clone().unwrap_or_default(),
        name,
    };
    match (request.method, subresource.as_deref()) {
        ("GET", Some("log")) => log(store, &resource, &key, request),
        ("GET", Some("scale")) => match store.get(&key) {
            Some(object) => Reply::Json(200, write::scale(object)),
            None => Reply::Error(ApiError::not_found(&resource, &key.name)),
        },
        ("GET", _) => match read(store, &resource, &key) {
            Some(object) => Reply::Json(200, object.clone()),
            None => Reply::Error(ApiError::not_found(&resource, &key.name)),
        },
        ("PUT", _) => write::replace(store, &resource, &key, request.body, &options).into(),
        ("PATCH", sub) if request.content_type == "application/apply-patch+yaml" => {
            if sub == Some("scale") {
                write::apply_scale(store, &resource, &key, request.body, &options).into()
            } else {
                write::apply(store, &resource, &key, request.body, &options).into()
            }
        }
        ("PATCH", _) => write::patch(
            store,
            &resource,
            &key,
            &request.content_type,
            request.body,
            &options,
        )
        .into(),
        ("DELETE", None) => {
            let options_body: Value = if request.body.is_empty() {
                json!({})
            } else {
                match serde_json::from_slice(request.body) {
                    Ok(body) => body,
                    Err(e) => return Reply::Error(ApiError::bad_request(e.to_string())),
                }
            };
            write::delete_with(store, &resource, &key, options.dry_run, &options_body).into()
        }
        ("POST", Some("eviction")) => write::evict(store, &resource, &key, options.dry_run).into(),
        _ => Reply::Error(ApiError::method_not_allowed()),
    }
}

/// The object as a GET reads it: a PodDisruptionBudget as the disruption controller leaves it.
fn read<'s>(store: &'s mut Store, resource: &ResourceType, key: &Key) -> Option<&'s Value> {
    if resource.kind == "PodDisruptionBudget" {
        write::settle_budget(store, key);
    }
    store.get(key)
}

/// `GET pods/NAME/log`: the stored log of the container named by `container` (or the pod's
/// only one), the one before its restart with `previous=true`, cut to its last `tailLines`
/// lines and then to `limitBytes`, with the real server's errors.
fn log(store: &Store, resource: &ResourceType, key: &Key, request: &Request) -> Reply {
    let Some(pod) = store.get(key) else {
        return Reply::Error(ApiError::not_found(resource, &key.name));
    };
    let names: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    let container = match request.query.get("container") {
        Some(name) => name.clone(),
        None if names.len() == 1 => names[0].clone(),
        None => {
            return Reply::Error(ApiError::bad_request(format!(
                "a container name must be specified for pod {}, choose one of: [{}]",
                key.name,
                names.join(" ")
            )));
        }
    };
    if !names.contains(&container) {
        return Reply::Error(ApiError::bad_request(format!(
            "container {container} is not valid for pod {}",
            key.name
        )));
    }
    let previous = request.query.get("previous").map(String::as_str) == Some("true");
    let stored = store.logs.get(&(
        key.namespace.clone(),
        key.name.clone(),
        container.clone(),
        previous,
    ));
    let text = match stored {
        Some(text) => text.clone(),
        None if previous => {
            return Reply::Error(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{}\" not found",
                key.name
            )));
        }
        None => String::new(),
    };
    let mut text = match request
        .query
        .get("tailLines")
        .and_then(|n| n.parse::<usize>().ok())
    {
        Some(tail) => {
            let lines: Vec<&str> = text.lines().collect();
            let kept = &lines[lines.len().saturating_sub(tail)..];
            kept.iter().map(|l| format!("{l}\n")).collect()
        }
        None => text,
    };
    if let Some(limit) = request
        .query
        .get("limitBytes")
        .and_then(|n| n.parse::<usize>().ok())
    {
        let mut cut = limit.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    Reply::Text(text)
}

fn selectors(request: &Request) -> Result<(Selector, Selector), ApiError> {
    let parse = |name: &str| {
        Selector::parse(request.query.get(name).map(String::as_str).unwrap_or(""))
            .map_err(ApiError::bad_request)
    };
    Ok((parse("labelSelector")?, parse("fieldSelector")?))
}

fn key_text(key: &Key) -> String {
    format!("{}/{}", key.namespace, key.name)
}

fn list(
    store: &Store,
    resource: &ResourceType,
    namespace: Option<&str>,
    request: &Request,
) -> Answer {
    let (labels, fields) = selectors(request)?;
    if let Some(key) = fields
        .keys()
        .into_iter()
        .find(|key| !select::field_supported(&resource.kind, key))
    {
        return Err(ApiError::bad_request(format!(
            "field label not supported: {key}"
        )));
    }
    let start = match request.query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => Some(select::read_continue(token).ok_or_else(|| {
            ApiError::bad_request("continue key is not valid: illegal base64 data")
        })?),
        None => None,
    };
    let limit: usize = request
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let builtin = matches!(resource.schema, crate::schema::Schema::Builtin(_));
    let matching: Vec<(String, Value)> = store
        .list(&resource.group, &resource.plural, namespace)
        .filter(|(key, _)| start.as_ref().is_none_or(|s| key_text(key) > *s))
        .filter(|(_, object)| labels.matches(|k| select::label(object, k)))
        .filter(|(_, object)| fields.matches(|k| select::field(object, k)))
        .map(|(key, object)| {
            let mut item = object.clone();
            if builtin && let Some(fields) = item.as_object_mut() {
                fields.shift_remove("kind");
                fields.shift_remove("apiVersion");
            }
            (key_text(key), item)
        })
        .collect();
    let total = matching.len();
    let page: Vec<(String, Value)> = matching.into_iter().take(limit).collect();
    let mut metadata = json!({"resourceVersion": store.revision().to_string()});
    if page.len() < total {
        let last = &page.last().expect("a page before more items").0;
        metadata["continue"] = json!(select::continue_token(store.revision(), last));
        metadata["remainingItemCount"] = json!(total - page.len());
    }
    let items: Vec<Value> = page.into_iter().map(|(_, item)| item).collect();
    Ok((
        200,
        json!({"kind": format!("{}List", resource.kind), "apiVersion": resource.api_version(),
            "metadata": metadata, "items": items}),
    ))
}

fn delete_collection(
    store: &mut Store,
    resource: &ResourceType,
    namespace: Option<&str>,
    request: &Request,
) -> Answer {
    let (labels, fields) = selectors(request)?;
    let keys: Vec<Key> = store
        .list(&resource.group, &resource.plural, namespace)
        .filter(|(_, object)| labels.matches(|k| select::label(object, k)))
        .filter(|(_, object)| fields.matches(|k| select::field(object, k)))
        .map(|(key, _)| key.clone())
        .collect();
    let dry_run = request.query.get("dryRun").map(String::as_str) == Some("All");
    let mut items = Vec::new();
    for key in keys {
        if let Some(object) = store.get(&key).cloned() {
            write::delete(store, resource, &key, dry_run)?;
            items.push(object);
        }
    }
    Ok((
        200,
        json!({"kind": format!("{}List", resource.kind), "apiVersion": resource.api_version(),
            "metadata": {"resourceVersion": store.revision().to_string()}, "items": items}),
    ))
}

fn watch(
    store: &Store,
    resource: &ResourceType,
    namespace: Option<&str>,
    request: &Request,
) -> Reply {
    let (labels, fields) = match selectors(request) {
        Ok(selectors) => selectors,
        Err(error) => return Reply::Error(error),
    };
    let timeout = request
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs);
    let since = request
        .query
        .get("resourceVersion")
        .filter(|rv| !rv.is_empty() && *rv != "0")
        .and_then(|rv| rv.parse::<u64>().ok());
    let mut filter = WatchFilter {
        group: resource.group.clone(),
        plural: resource.plural.clone(),
        namespace: namespace.map(str::to_string),
        labels,
        fields,
        after: 0,
    };
    let mut initial = Vec::new();
    match since {
        None => {
            for (key, object) in store.list(&resource.group, &resource.plural, namespace) {
                let event = Event {
                    revision: store.revision(),
                    kind: "ADDED",
                    key: key.clone(),
                    object: object.clone(),
                };
                initial.extend(filter.line(&event));
            }
        }
        Some(revision) => match store.since(revision) {
            Some(events) => initial.extend(events.iter().filter_map(|e| filter.line(e))),
            None => {
                let status = ApiError::gone(revision).body();
                initial.push(json!({"type": "ERROR", "object": status}).to_string() + "\n");
                return Reply::Watch(WatchPlan {
                    initial,
                    feed: store.subscribe(),
                    filter,
                    timeout: Some(Duration::ZERO),
                });
            }
        },
    }
    filter.after = store.revision();
    Reply::Watch(WatchPlan {
        initial,
        feed: store.subscribe(),
        filter,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_namespace_resource_name_and_subresource() {
        let t = parse_target("/apis/apps/v1/namespaces/ns/deployments/web/scale").unwrap();
        assert_eq!(
            (
                t.group.as_str(),
                t.namespace.as_deref(),
                t.plural.as_str(),
                t.name.as_deref(),
                t.subresource.as_deref()
            ),
            (
                "apps",
                Some("ns"),
                "deployments",
                Some("web"),
                Some("scale")
            )
        );
        let t = parse_target("/api/v1/namespaces/ns").unwrap();
        assert_eq!(
            (t.plural.as_str(), t.name.as_deref(), t.namespace),
            ("namespaces", Some("ns"), None)
        );
        let t = parse_target("/api/v1/namespaces/ns/status").unwrap();
        assert_eq!(t.subresource.as_deref(), Some("status"));
        assert!(parse_target("/apis/apps").is_none());
    }
}
