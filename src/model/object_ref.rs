//! `ObjectRef`: the identity of a Kubernetes object (group, kind, namespace, name), how it is
//! written on a command line (`Deployment/prod/api`) and how it is shown in messages.

use std::fmt;

use serde::Serialize;

/// The identity of one Kubernetes object.
///
/// The API version is kept for display and apply, but it is not part of the identity: the same
/// object can be served in several versions, as the API server does.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectRef {
    /// API group; empty for the core group (`v1`).
    pub group: String,
    /// API version within the group (`v1`, `v2beta1`).
    pub version: String,
    /// Kind, as written in manifests (`Deployment`).
    pub kind: String,
    /// Namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectRef {
    /// Builds a reference from an `apiVersion` string (`apps/v1`, `v1`).
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        let (group, version) = split_api_version(api_version);
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    /// `apiVersion` as written in a manifest.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The same object in another namespace.
    pub fn with_namespace(&self, namespace: Option<&str>) -> Self {
        Self {
            namespace: namespace.map(str::to_owned),
            ..self.clone()
        }
    }

    /// Whether this object is what `query` asks for: kind matched case-insensitively, and the
    /// query's group, when it names one, equal to ours.
    pub fn matches(&self, query: &RefQuery) -> bool {
        self.kind.eq_ignore_ascii_case(&query.kind)
            && query
                .group
                .as_ref()
                .is_none_or(|g| g.eq_ignore_ascii_case(&self.group))
            && self.namespace == query.namespace
            && self.name == query.name
    }
}

impl PartialEq for ObjectRef {
    fn eq(&self, other: &Self) -> bool {
        self.group == other.group
            && self.kind == other.kind
            && self.namespace == other.namespace
            && self.name == other.name
    }
}

impl Eq for ObjectRef {}

impl std::hash::Hash for ObjectRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.group.hash(state);
        self.kind.hash(state);
        self.namespace.hash(state);
        self.name.hash(state);
    }
}

impl fmt::Display for ObjectRef {
    /// `Kind/namespace/name`, or `Kind/name` when cluster-scoped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.rsplit_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// An object asked for on the command line: `KIND/NAMESPACE/NAME`, or `KIND/NAME` for a
/// cluster-scoped object. `KIND` may carry its group (`HelmRelease.helm.toolkit.fluxcd.io`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefQuery {
    /// Kind, compared case-insensitively.
    pub kind: String,
    /// Group, when the query names one.
    pub group: Option<String>,
    /// Namespace; `None` asks for a cluster-scoped object.
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
}

/// A `KIND/NAMESPACE/NAME` argument that could not be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{input}` is not an object reference: {reason}; write KIND/NAMESPACE/NAME, or KIND/NAME for a cluster-scoped object"
)]
pub struct ParseRefError {
    input: String,
    reason: &'static str,
}

impl std::str::FromStr for RefQuery {
    type Err = ParseRefError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| ParseRefError {
            input: input.to_owned(),
            reason,
        };
        let parts: Vec<&str> = input.split('/').collect();
        let (kind, namespace, name) = match parts.as_slice() {
            [kind, name] => (*kind, None, *name),
            [kind, ns, name] => (*kind, Some(*ns), *name),
            _ => return Err(fail("expected two or three parts separated by `/`")),
        };
        if kind.is_empty() || name.is_empty() || namespace.is_some_and(str::is_empty) {
            return Err(fail("a part is empty"));
        }
        let (kind, group) = match kind.split_once('.') {
            Some((kind, group)) => (kind, Some(group.to_owned())),
            None => (kind, None),
        };
        Ok(Self {
            kind: kind.to_owned(),
            group,
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for RefQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        if let Some(group) = &self.group {
            write!(f, ".{group}")?;
        }
        if let Some(ns) = &self.namespace {
            write!(f, "/{ns}")?;
        }
        write!(f, "/{}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_ignores_version() {
        let a = ObjectRef::new(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            Some("p"),
            "web",
        );
        let b = ObjectRef::new(
            "autoscaling/v1",
            "HorizontalPodAutoscaler",
            Some("p"),
            "web",
        );
        assert_eq!(a, b);
        assert_eq!(a.api_version(), "autoscaling/v2");
        assert_eq!(
            ObjectRef::new("v1", "Service", Some("p"), "web").api_version(),
            "v1"
        );
    }

    #[test]
    fn displays_kind_namespace_name() {
        let d = ObjectRef::new("apps/v1", "Deployment", Some("prod"), "api");
        assert_eq!(d.to_string(), "Deployment/prod/api");
        let n = ObjectRef::new("v1", "Namespace", None, "prod");
        assert_eq!(n.to_string(), "Namespace/prod");
    }

    #[test]
    fn parses_queries() {
        let q: RefQuery = "deployment/prod/api".parse().unwrap();
        assert_eq!(
            (q.kind.as_str(), q.namespace.as_deref(), q.name.as_str()),
            ("deployment", Some("prod"), "api")
        );
        let q: RefQuery = "HelmRelease.helm.toolkit.fluxcd.io/flux-system/podinfo"
            .parse()
            .unwrap();
        assert_eq!(q.group.as_deref(), Some("helm.toolkit.fluxcd.io"));
        let d = ObjectRef::new(
            "helm.toolkit.fluxcd.io/v2",
            "HelmRelease",
            Some("flux-system"),
            "podinfo",
        );
        assert!(d.matches(&q));
        let q: RefQuery = "Namespace/prod".parse().unwrap();
        assert_eq!(q.namespace, None);
        assert!("Deployment".parse::<RefQuery>().is_err());
        assert!("Deployment//api".parse::<RefQuery>().is_err());
        assert!("a/b/c/d".parse::<RefQuery>().is_err());
    }
}
