//! Writes: server-side apply, create, update, the three other patch types, the `status` and
//! `scale` subresources and delete, each as the API server runs them: merge or patch, default,
//! prepare, validate, record field ownership, then store (or, for `dryRun=All`, answer without
//! storing). Runs under the server's lock.

use serde_json::{Value, json};

use crate::defaults;
use crate::managed::{Managed, ManagerId, Operation};
use crate::resources::ResourceType;
use crate::schema::Schema;
use crate::select::selector_string;
use crate::status::{ApiError, Cause};
use crate::store::{Key, Store, assemble, generation_content, now, strip};
use crate::validate;

/// Result of a request handler: status code and body, or an error Status.
pub type Answer = Result<(u16, Value), ApiError>;

/// Options every write carries.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// `fieldManager`, or the user agent's product for non-apply writes.
    pub manager: String,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `force=true` (apply only).
    pub force: bool,
    /// `status` or `scale`, or none for the main resource.
    pub subresource: Option<String>,
}

impl WriteOptions {
    fn id(&self, resource: &ResourceType, operation: Operation) -> ManagerId {
        ManagerId {
            manager: self.manager.clone(),
            operation,
            api_version: resource.api_version(),
            subresource: self.subresource.clone(),
        }
    }
}

/// Parses a request body as JSON, or as YAML for apply patches.
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return Ok(value);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

fn check_identity(resource: &ResourceType, key: &Key, object: &Value) -> Result<(), ApiError> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name != key.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({})",
            key.name
        )));
    }
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    if resource.namespaced && namespace.is_some_and(|ns| ns != key.namespace) {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn require_namespace(store: &Store, resource: &ResourceType, key: &Key) -> Result<(), ApiError> {
    if resource.namespaced && !store.namespace_exists(&key.namespace) {
        return Err(ApiError::namespace_not_found(&key.namespace));
    }
    Ok(())
}

/// The part of a configuration a subresource write may touch.
fn scope(resource: &ResourceType, subresource: Option<&str>, mut config: Value) -> Value {
    match subresource {
        None => {
            if resource.status
                && let Some(fields) = config.as_object_mut()
            {
                fields.shift_remove("status");
            }
            config
        }
        Some("scale") => {
            let replicas = config.pointer("/spec/replicas").cloned();
            replicas.map_or(json!({}), |r| json!({"spec": {"replicas": r}}))
        }
        Some(_) => {
            let status = config.get("status").cloned();
            status.map_or(json!({}), |s| json!({"status": s}))
        }
    }
}

/// Server-side apply (`PATCH` with `application/apply-patch+yaml`).
pub fn apply(
    store: &mut Store,
    resource: &ResourceType,
    key: &Key,
    body: &[u8],
    options: &WriteOptions,
) -> Answer {
    if options.manager.is_empty() {
        let cause = Cause {
            reason: "FieldValueRequired",
            field: "fieldManager".into(),
            message: "Required value: is required for apply patch".into(),
        };
        return Err(ApiError::invalid(
            "PatchOptions.meta.k8s.io",
            "meta.k8s.io",
            "",
            &[cause],
        ));
    }
    let config = parse_body(body)?;
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "the apply configuration must be an object",
        ));
    }
    if options.subresource.is_none() {
        check_identity(resource, key, &config)?;
    }
    require_namespace(store, resource, key)?;
    let live = store.get(key).cloned();
    if options.subresource.is_some() && live.is_none() {
        return Err(ApiError::not_found(resource, &key.name));
    }
    let config = scope(resource, options.subresource.as_deref(), strip(&config));
    let live_body = live.as_ref().map(strip).unwrap_or_else(|| json!({}));
    let mut managed = live.as_ref().map(Managed::read).unwrap_or_default();
    let id = options.id(resource, Operation::Apply);
    let merged = managed
        .apply(
            &resource.schema,
            &live_body,
            &config,
            &id,
            options.force,
            &now(),
        )
        .map_err(|conflicts| ApiError::apply_conflict(&conflicts))?;
    let object = prepared(resource, key, live.as_ref(), merged);
    finish(store, resource, key, live, object, managed, options.dry_run)
}

/// Assembles, defaults and prepares a new version of an object from its stripped body.
fn prepared(resource: &ResourceType, key: &Key, live: Option<&Value>, body: Value) -> Value {
    let identity = live.cloned().unwrap_or_else(|| {
        let mut metadata = json!({"name": key.name});
        if resource.namespaced {
            metadata["namespace"] = json!(key.namespace);
        }
        json!({"metadata": metadata})
    });
    let mut object = assemble(resource, &identity, body);
    defaults::apply(&resource.kind, &mut object);
    defaults::prepare(&resource.kind, &mut object, live.is_none());
    if let Schema::Custom(root) = &resource.schema {
        for part in ["spec", "status"] {
            if let (Some(node), Some(value)) = (
                root.pointer(&format!("/properties/{part}")).cloned(),
                object.get_mut(part),
            ) {
                validate::prune_unknown(&node, value);
            }
        }
    }
    object
}

/// A non-apply write: the new object (from a body or a patch) is defaulted, validated and
/// recorded as an Update operation of `options.manager`.
pub fn update(
    store: &mut Store,
    resource: &ResourceType,
    key: &Key,
    live: Option<Value>,
    new: Value,
    options: &WriteOptions,
) -> Answer {
    require_namespace(store, resource, key)?;
    let mut body = strip(&new);
    let old_body = live.as_ref().map(strip).unwrap_or_else(|| json!({}));
    match options.subresource.as_deref() {
        None if resource.status => {
            if let Some(fields) = body.as_object_mut() {
                fields.shift_remove("status");
                if let Some(status) = old_body.get("status") {
                    fields.insert("status".into(), status.clone());
                }
            }
        }
        Some("status") => {
            let status = body.get("status").cloned();
            body = old_body.clone();
            if let (Some(fields), Some(status)) = (body.as_object_mut(), status) {
                fields.insert("status".into(), status);
            }
        }
        _ => {}
    }
    let object = prepared(resource, key, live.as_ref(), body);
    let mut managed = live.as_ref().map(Managed::read).unwrap_or_default();
    let id = options.id(resource, Operation::Update);
    managed.update(&resource.schema, &old_body, &strip(&object), &id, &now());
    finish(store, resource, key, live, object, managed, options.dry_run)
}

fn without_times(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(entries) = out
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
    {
        for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
            entry.shift_remove("time");
        }
    }
    out
}

/// Validates, stamps and stores (or for a dry run, only answers with) the new version.
fn finish(
    store: &mut Store,
    resource: &ResourceType,
    key: &Key,
    live: Option<Value>,
    mut object: Value,
    managed: Managed,
    dry_run: bool,
) -> Answer {
    let causes = validate::object(&resource.kind, &resource.schema, &object, live.as_ref());
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            &resource.qualified_kind(),
            &resource.group,
            &key.name,
            &causes,
        ));
    }
    managed.write(&mut object);
    let Some(live) = live else {
        store.stamp(&mut object, resource.generation.then_some(1));
        if dry_run {
            return Ok((201, object));
        }
        let stored = store.put(key.clone(), object);
        return Ok((201, after_store(store, resource, key, stored)));
    };
    if without_times(&object) == without_times(&live) {
        return Ok((200, live));
    }
    if resource.generation && generation_content(&object) != generation_content(&live) {
        let generation = live
            .pointer("/metadata/generation")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        object["metadata"]["generation"] = json!(generation + 1);
    }
    if dry_run {
        return Ok((200, object));
    }
    let stored = store.put(key.clone(), object);
    Ok((200, after_store(store, resource, key, stored)))
}

/// What the API server itself does after a write: a CRD is established and served.
fn after_store(store: &mut Store, resource: &ResourceType, key: &Key, stored: Value) -> Value {
    if resource.kind != "CustomResourceDefinition" {
        return stored;
    }
    let established = stored
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Established"));
    let stored = if established {
        stored
    } else {
        establish(store, resource, key, stored)
    };
    store.serve_crd(&stored);
    stored
}

fn establish(store: &mut Store, resource: &ResourceType, key: &Key, stored: Value) -> Value {
    let names = stored.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let storage: Vec<Value> = stored
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|v| {
            v.iter()
                .filter(|v| v["storage"] == true)
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    let time = now();
    let mut before = stored.clone();
    before["status"] = json!({"conditions": [], "acceptedNames": {}, "storedVersions": storage});
    let mut after = before.clone();
    let accepted = [
        "plural",
        "singular",
        "shortNames",
        "kind",
        "listKind",
        "categories",
    ];
    after["status"]["acceptedNames"] = pick(&names, &accepted);
    after["status"]["conditions"] = json!([
        {"type": "NamesAccepted", "status": "True", "lastTransitionTime": time,
         "reason": "NoConflicts", "message": "no conflicts found"},
        {"type": "Established", "status": "True", "lastTransitionTime": time,
         "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
    ]);
    let mut managed = Managed::read(&stored);
    let id = ManagerId {
        manager: "apiserver".into(),
        operation: Operation::Update,
        api_version: resource.api_version(),
        subresource: Some("status".into()),
    };
    managed.update(
        &resource.schema,
        &strip(&before),
        &strip(&after),
        &id,
        &time,
    );
    managed.write(&mut after);
    store.put(key.clone(), after)
}

/// `POST` to a collection.
pub fn create(
    store: &mut Store,
    resource: &ResourceType,
    namespace: &str,
    body: &[u8],
    options: &WriteOptions,
) -> Answer {
    let object = parse_body(body)?;
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            let prefix = object
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)?;
            Some(format!("{prefix}{}", &store.uid()[..5]))
        });
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        let cause = Cause {
            reason: "FieldValueRequired",
            field: "metadata.name".into(),
            message: "Required value: name or generateName is required".into(),
        };
        return Err(ApiError::invalid(
            &resource.qualified_kind(),
            &resource.group,
            "",
            &[cause],
        ));
    };
    let key = Key {
        group: resource.group.clone(),
        plural: resource.plural.clone(),
        namespace: if resource.namespaced {
            namespace.to_string()
        } else {
            String::new()
        },
        name,
    };
    if store.get(&key).is_some() {
        return Err(ApiError::already_exists(resource, &key.name));
    }
    let mut object = object;
    object["metadata"]["name"] = json!(key.name);
    check_identity(resource, &key, &object)?;
    if resource.status
        && let Some(fields) = object.as_object_mut()
    {
        fields.shift_remove("status");
    }
    update(store, resource, &key, None, object, options)
}

/// The stored object, or NotFound.
fn stored(store: &Store, resource: &ResourceType, key: &Key) -> Result<Value, ApiError> {
    store
        .get(key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(resource, &key.name))
}

/// `PUT` of an object or its `status`.
pub fn replace(
    store: &mut Store,
    resource: &ResourceType,
    key: &Key,
    body: &[u8],
    options: &WriteOptions,
) -> Answer {
    let new = parse_body(body)?;
    let live = stored(store, resource, key)?;
    if options.subresource.as_deref() == Some("scale") {
        return scale_write(store, resource, key, live, new, options);
    }
    check_identity(resource, key, &new)?;
    let wanted = new
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str);
    let current = live
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str);
    if wanted.is_some_and(|w| Some(w) != current) {
        return Err(ApiError::stale(resource, &key.name));
    }
    update(store, resource, key, Some(live), new, options)
}

/// `PATCH` with a merge, JSON or strategic merge patch.
pub fn patch(
    store: &mut Store,
    resource: &ResourceType,
    key: &Key,
    content_type: &str,
    body: &[u8],
    options: &WriteOptions,
) -> Answer {
    let patch = parse_body(body)?;
    let live = stored(store, resource, key)?;
    let is_scale = options.subresource.as_deref() == Some("scale");
    let target = if is_scale { scale(&live) } else { live.clone() };
    let patched = match content_type {
        "application/merge-patch+json" => crate::patch::merge_patch(&target, &patch),
        "application/json-patch+json" => {
            crate::patch::json_patch(&target, &patch).map_err(|e| ApiError {
                code: 422,
                reason: "Invalid",
                message: e,
                details: None,
                retry_after: None,
            })?
        }
        "application/strategic-merge-patch+json" => {
            if matches!(resource.schema, Schema::Custom(_)) {
                return Err(ApiError::unsupported_media_type(content_type));
            }
            crate::patch::strategic(&resource.schema, &target, &patch)
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if is_scale {
        return scale_write(store, resource, key, live, patched, options);
    }
    check_identity(resource, key, &patched)?;
    update(store, resource, key, Some(live), patched, options)
}

/// The given fields of a map, those it has.
fn pick(source: &Value, fields: &[&str]) -> Value {
    let mut out = serde_json::Map::new();
    for field in fields {
        if let Some(value) = source.get(*field) {
            out.insert((*field).to_string(), value.clone());
        }
    }
    Value::Object(out)
}

/// The `scale` subresource of a workload.
pub fn scale(object: &Value) -> Value {
    let identity = [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ];
    let meta = pick(&object["metadata"], &identity);
    let replicas = object
        .pointer("/spec/replicas")
        .cloned()
        .unwrap_or(json!(0));
    let current = object
        .pointer("/status/replicas")
        .cloned()
        .unwrap_or(json!(0));
    let selector = object
        .pointer("/spec/selector")
        .map(selector_string)
        .unwrap_or_default();
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
        "spec": {"replicas": replicas}, "status": {"replicas": current, "selector": selector}})
}

fn scale_write(
    store: &mut Store,
    resource: &ResourceType,
    key: &Key,
    live: Value,
    new_scale: Value,
    options: &WriteOptions,
) -> Answer {
    let Some(replicas) = new_scale.pointer("/spec/replicas").cloned() else {
        let cause = Cause::required("spec.replicas");
        return Err(ApiError::invalid(
            "Scale.autoscaling",
            "autoscaling",
            &key.name,
            &[cause],
        ));
    };
    let mut new = live.clone();
    new["spec"]["replicas"] = replicas;
    let (code, object) = update(store, resource, key, Some(live), new, options)?;
    Ok((code, scale(&object)))
}

/// Server-side apply to `scale`.
pub fn apply_scale(
    store: &mut Store,
    resource: &ResourceType,
    key: &Key,
    body: &[u8],
    options: &WriteOptions,
) -> Answer {
    let (code, object) = apply(store, resource, key, body, options)?;
    Ok((code, scale(&object)))
}

/// What the disruption controller writes in a PodDisruptionBudget's status: the pods its
/// selector matches (`expectedPods`), those Ready and not being deleted (`currentHealthy`), how
/// many must stay (`desiredHealthy`, from `minAvailable` or `maxUnavailable`, a percentage
/// rounded up) and the difference (`disruptionsAllowed`, never below 0).
pub fn budget_status(store: &Store, namespace: &str, budget: &Value) -> Value {
    let wanted = budget
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object);
    let pods: Vec<Value> = store
        .list("", "pods", Some(namespace))
        .map(|(_, pod)| pod.clone())
        .filter(|pod| {
            wanted.is_some_and(|w| {
                w.iter()
                    .all(|(k, v)| pod.pointer(&format!("/metadata/labels/{k}")) == Some(v))
            })
        })
        .collect();
    let expected = pods.len() as i64;
    let healthy = pods
        .iter()
        .filter(|pod| pod.pointer("/metadata/deletionTimestamp").is_none())
        .filter(|pod| {
            pod.pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .count() as i64;
    let count = |value: &Value, up: bool| -> i64 {
        match value {
            Value::String(text) => {
                let percent: f64 = text.trim_end_matches('%').parse().unwrap_or(0.0);
                let share = expected as f64 * percent / 100.0;
                if up {
                    share.ceil() as i64
                } else {
                    share.floor() as i64
                }
            }
            other => other.as_i64().unwrap_or(0),
        }
    };
    let desired = match (
        budget.pointer("/spec/minAvailable"),
        budget.pointer("/spec/maxUnavailable"),
    ) {
        (Some(min), _) => count(min, true),
        (None, Some(max)) => (expected - count(max, true)).max(0),
        (None, None) => 0,
    };
    let mut status = budget.get("status").cloned().unwrap_or(json!({}));
    status["observedGeneration"] = budget["metadata"]["generation"].clone();
    status["expectedPods"] = json!(expected);
    status["currentHealthy"] = json!(healthy);
    status["desiredHealthy"] = json!(desired);
    status["disruptionsAllowed"] = json!((healthy - desired).max(0));
    status
}

/// The budget as the disruption controller leaves it, when it runs.
pub fn settle_budget(store: &mut Store, key: &Key) {
    if !store.disruption_controller {
        return;
    }
    let Some(budget) = store.get(key).cloned() else {
        return;
    };
    let status = budget_status(store, &key.namespace, &budget);
    if budget.get("status") != Some(&status) {
        let mut settled = budget;
        settled["status"] = status;
        store.put(key.clone(), settled);
    }
}

/// `POST pods/NAME/eviction`: the pod is deleted unless a PodDisruptionBudget selecting it
/// allows no more disruptions (429, as the real server answers); an allowed eviction uses one,
/// marks the pod `DisruptionTarget` and lists it in the budget's `disruptedPods`.
pub fn evict(store: &mut Store, resource: &ResourceType, key: &Key, dry_run: bool) -> Answer {
    let pod = stored(store, resource, key)?;
    let labels = pod["metadata"]["labels"].clone();
    let keys: Vec<Key> = store
        .list("policy", "poddisruptionbudgets", Some(&key.namespace))
        .filter(|(_, pdb)| {
            pdb.pointer("/spec/selector/matchLabels")
                .and_then(Value::as_object)
                .is_some_and(|wanted| wanted.iter().all(|(k, v)| &labels[k] == v))
        })
        .map(|(k, _)| k.clone())
        .collect();
    for budget_key in keys {
        settle_budget(store, &budget_key);
        let Some(mut budget) = store.get(&budget_key).cloned() else {
            continue;
        };
        let status = &budget["status"];
        let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
        if allowed <= 0 {
            return Err(ApiError::disruption_budget(
                &budget_key.name,
                status["desiredHealthy"].as_i64().unwrap_or(0),
                status["currentHealthy"].as_i64().unwrap_or(0),
            ));
        }
        if !dry_run {
            budget["status"]["disruptionsAllowed"] = json!(allowed - 1);
            budget["status"]["disruptedPods"][&key.name] = json!(now());
            store.put(budget_key, budget);
        }
    }
    if !dry_run && store.graceful_pods {
        let mut marked = pod.clone();
        let condition = json!({"type": "DisruptionTarget", "status": "True",
            "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting",
            "lastTransitionTime": now(), "lastProbeTime": null});
        let conditions = marked["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["type"] != "DisruptionTarget")
            .chain([condition])
            .collect::<Vec<_>>();
        marked["status"]["conditions"] = json!(conditions);
        store.put(key.clone(), marked);
    }
    delete_with(store, resource, key, dry_run, &json!({}))?;
    Ok((
        201,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// `DELETE` of one object with the request's DeleteOptions: its `preconditions` (`uid`,
/// `resourceVersion`) must hold, or 409. A pod bound to a node is deleted gracefully, as the
/// real server does: it gets `deletionTimestamp` and its grace period and stays, Terminating,
/// until its kubelet confirms (when [`Store::graceful_pods`] says no kubelet confirms it).
pub fn delete_with(
    store: &mut Store,
    resource: &ResourceType,
    key: &Key,
    dry_run: bool,
    options: &Value,
) -> Answer {
    let live = stored(store, resource, key)?;
    for field in ["uid", "resourceVersion"] {
        if let Some(wanted) = options
            .pointer(&format!("/preconditions/{field}"))
            .and_then(Value::as_str)
        {
            let found = live["metadata"][field].as_str().unwrap_or_default();
            if wanted != found {
                return Err(ApiError::precondition(
                    resource, &key.name, field, wanted, found,
                ));
            }
        }
    }
    let bound = resource.kind == "Pod"
        && resource.group.is_empty()
        && live
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
    let grace = options["gracePeriodSeconds"]
        .as_i64()
        .or_else(|| {
            live.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30);
    if bound && grace > 0 && store.graceful_pods {
        if live.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok((200, live));
        }
        let mut terminating = live.clone();
        terminating["metadata"]["deletionTimestamp"] = json!(now());
        terminating["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        if !dry_run {
            return Ok((200, store.put(key.clone(), terminating)));
        }
        return Ok((200, terminating));
    }
    delete(store, resource, key, dry_run)
}

/// `DELETE` of one object, at once.
pub fn delete(store: &mut Store, resource: &ResourceType, key: &Key, dry_run: bool) -> Answer {
    let live = stored(store, resource, key)?;
    let mut shown = live.clone();
    shown["metadata"]["deletionTimestamp"] = json!(now());
    match resource.kind.as_str() {
        "CustomResourceDefinition" => {
            shown["metadata"]["finalizers"] = json!(["customresourcecleanup.apiextensions.k8s.io"]);
            if !dry_run {
                store.drop_crd(&live);
            }
        }
        "Namespace" => {
            shown["status"] = json!({"phase": "Terminating"});
            if !dry_run {
                store.drop_namespace(&key.name);
            }
        }
        _ => {}
    }
    if !dry_run {
        store.delete(key);
    }
    if matches!(
        resource.kind.as_str(),
        "CustomResourceDefinition" | "Namespace" | "Pod"
    ) {
        return Ok((200, shown));
    }
    let mut details = crate::status::object_details(resource, &key.name);
    details["uid"] = live["metadata"]["uid"].clone();
    Ok((
        200,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
    ))
}
