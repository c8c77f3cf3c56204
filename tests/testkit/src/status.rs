//! `Status` answers: the error bodies the API server sends, with its reasons, codes, causes and
//! message wording. Pure data.

use serde_json::{Map, Value, json};

use crate::managed::{Conflict, conflict_message};
use crate::resources::ResourceType;

/// One cause of an Invalid answer.
#[derive(Clone, Debug)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, ...
    pub reason: &'static str,
    /// The field path, `spec.selector`.
    pub field: String,
    /// The message without the field.
    pub message: String,
}

impl Cause {
    /// A missing required field.
    pub fn required(field: &str) -> Cause {
        Cause {
            reason: "FieldValueRequired",
            field: field.into(),
            message: "Required value".into(),
        }
    }

    /// A field whose value is not acceptable.
    pub fn invalid(field: &str, value: &Value, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {value}: {detail}"),
        }
    }

    /// A value outside an enumeration.
    pub fn not_supported(field: &str, value: &Value, allowed: &[Value]) -> Cause {
        let allowed: Vec<String> = allowed.iter().map(Value::to_string).collect();
        Cause {
            reason: "FieldValueNotSupported",
            field: field.into(),
            message: format!(
                "Unsupported value: {value}: supported values: {}",
                allowed.join(", ")
            ),
        }
    }

    /// A change that is not allowed.
    pub fn forbidden(field: &str, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueForbidden",
            field: field.into(),
            message: format!("Forbidden: {detail}"),
        }
    }
}

/// `details` naming an object: name, group (left out for the core group) and plural.
pub fn object_details(resource: &ResourceType, name: &str) -> Value {
    let mut details = Map::new();
    details.insert("name".into(), json!(name));
    if !resource.group.is_empty() {
        details.insert("group".into(), json!(resource.group));
    }
    details.insert("kind".into(), json!(resource.plural));
    Value::Object(details)
}

/// An error answer.
#[derive(Clone, Debug)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Status reason.
    pub reason: &'static str,
    /// Status message.
    pub message: String,
    /// Status details, when the server sends them.
    pub details: Option<Box<Value>>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String, details: Option<Value>) -> Self {
        ApiError {
            code,
            reason,
            message,
            details: details.map(Box::new),
            retry_after: None,
        }
    }

    /// 404 for a path that names no served resource.
    pub fn no_resource() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            Some(json!({})),
        )
    }

    /// 404 for a missing object.
    pub fn not_found(resource: &ResourceType, name: &str) -> Self {
        let details = object_details(resource, name);
        Self::new(
            404,
            "NotFound",
            format!("{} {name:?} not found", resource.qualified_plural()),
            Some(details),
        )
    }

    /// 404 for a missing namespace.
    pub fn namespace_not_found(namespace: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("namespaces {namespace:?} not found"),
            Some(json!({"name": namespace, "kind": "namespaces"})),
        )
    }

    /// 409 when creating an object that exists.
    pub fn already_exists(resource: &ResourceType, name: &str) -> Self {
        let details = object_details(resource, name);
        Self::new(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", resource.qualified_plural()),
            Some(details),
        )
    }

    /// 409 when an update carries a stale resourceVersion.
    pub fn stale(resource: &ResourceType, name: &str) -> Self {
        let details = object_details(resource, name);
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: the object has been modified; \
                 please apply your changes to the latest version and try again",
                resource.qualified_plural()
            ),
            Some(details),
        )
    }

    /// 409 for a delete whose precondition (`uid` or `resourceVersion`) the object does not
    /// meet, worded as the registry words it.
    pub fn precondition(
        resource: &ResourceType,
        name: &str,
        field: &str,
        wanted: &str,
        found: &str,
    ) -> Self {
        let kind = if resource.group.is_empty() {
            resource.kind.clone()
        } else {
            format!("{}.{}", resource.kind, resource.group)
        };
        let (what, why) = match field {
            "uid" => ("UID", "deleted and then recreated"),
            _ => ("ResourceVersion", "modified"),
        };
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {kind} {name:?}: the {what} in the precondition ({wanted}) does not match the {what} in record ({found}). The object might have been {why}"
            ),
            Some(json!({"name": name, "kind": kind})),
        )
    }

    /// 409 for apply conflicts with other field managers.
    pub fn apply_conflict(conflicts: &[Conflict]) -> Self {
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|c| {
                json!({"reason": "FieldManagerConflict",
                    "message": format!("conflict with {}", c.manager),
                    "field": crate::fieldset::display(&c.path)})
            })
            .collect();
        Self::new(
            409,
            "Conflict",
            conflict_message(conflicts),
            Some(json!({"causes": causes})),
        )
    }

    /// 422 with field causes, for `Kind.group "name"`.
    pub fn invalid(qualified_kind: &str, group: &str, name: &str, causes: &[Cause]) -> Self {
        let texts: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if texts.len() == 1 {
            texts[0].clone()
        } else {
            format!("[{}]", texts.join(", "))
        };
        let kind = qualified_kind.split('.').next().unwrap_or(qualified_kind);
        let mut details = Map::new();
        if !name.is_empty() {
            details.insert("name".into(), json!(name));
        }
        if !group.is_empty() {
            details.insert("group".into(), json!(group));
        }
        details.insert("kind".into(), json!(kind));
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        details.insert("causes".into(), Value::Array(causes));
        Self::new(
            422,
            "Invalid",
            format!("{qualified_kind} {name:?} is invalid: {joined}"),
            Some(Value::Object(details)),
        )
    }

    /// 429 for an eviction a PodDisruptionBudget forbids.
    pub fn disruption_budget(pdb: &str, wanted: i64, healthy: i64) -> Self {
        let message = format!(
            "The disruption budget {pdb} needs {wanted} healthy pods and has {healthy} currently"
        );
        Self::new(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.".into(),
            Some(json!({"causes": [{"reason": "DisruptionBudget", "message": message}]})),
        )
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into(), None)
    }

    /// 405 for a verb the resource does not support.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".into(),
            Some(json!({})),
        )
    }

    /// 410 for a watch from a resourceVersion the server no longer remembers.
    pub fn gone(resource_version: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {resource_version}"),
            None,
        )
    }

    /// 415 for a patch type the server does not accept.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got {content_type:?}"
            ),
            None,
        )
    }

    /// An injected failure: 500, 503 or 429.
    pub fn injected(code: u16, retry_after: Option<u64>) -> Self {
        let (reason, message) = match code {
            429 => (
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
            ),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            _ => (
                "InternalError",
                "an error on the server (\"injected fault\") has prevented the request from succeeding",
            ),
        };
        let details = retry_after.map(|s| json!({"retryAfterSeconds": s}));
        let mut error = Self::new(code, reason, message.into(), details);
        error.retry_after = retry_after;
        error
    }

    /// The Status body.
    pub fn body(&self) -> Value {
        let mut out = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "reason": self.reason});
        if let Some(details) = &self.details {
            out["details"] = (**details).clone();
        }
        out["code"] = json!(self.code);
        out
    }
}
