//! Which remote sources a render may fetch: the hosts (or host and path prefixes) that the
//! trusted configuration lists in `render.allowRemote`, and nothing else. A pull request under
//! review cannot add to the list: it is read from the commit before the merge. Pure.

/// The remote sources a render may fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowRemote {
    /// `host` or `host/path-prefix` entries.
    entries: Vec<String>,
}

impl AllowRemote {
    /// Allows the sources under each of `entries` (`github.com/my-org`, `charts.example.com`).
    pub fn new(entries: Vec<String>) -> Self {
        let entries = entries
            .into_iter()
            .map(|e| e.trim_end_matches('/').to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        AllowRemote { entries }
    }

    /// Whether nothing remote is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `url` may be fetched: its host and path are under one of the entries.
    pub fn allows(&self, url: &str) -> bool {
        let Some(location) = location(url) else {
            return false;
        };
        self.entries.iter().any(|entry| {
            location == *entry
                || location
                    .strip_prefix(entry.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

/// `host/path` of a remote source, lower-cased host, without scheme, user, port, query or
/// kustomize's `//subdir` and `?ref=`; `None` when no host can be told.
pub fn location(url: &str) -> Option<String> {
    let url = url.trim().trim_start_matches("git::");
    let rest = match url.split_once("://") {
        Some((_, rest)) => rest,
        None => match url.strip_prefix("git@") {
            // scp-like: git@host:org/repo
            Some(rest) => {
                let (host, path) = rest.split_once(':')?;
                return Some(format!("{}/{}", host.to_ascii_lowercase(), clean(path)?));
            }
            None => url,
        },
    };
    let rest = rest.split(['?', '#']).next()?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = authority.rsplit('@').next()?;
    let host = host.split(':').next()?.to_ascii_lowercase();
    if host.is_empty() || !host.contains('.') && host != "localhost" {
        return None;
    }
    let path = clean(path)?;
    Some(if path.is_empty() {
        host
    } else {
        format!("{host}/{path}")
    })
}

/// A path without `//subdir`, `.git` and empty parts; `None` when it climbs with `..`, which
/// a server may resolve to a place outside the prefix the entry allows.
fn clean(path: &str) -> Option<String> {
    let path = path.split("//").next().unwrap_or_default();
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(|p| p.trim_end_matches(".git"))
        .collect();
    if parts.iter().any(|p| *p == ".." || p.contains("%2")) {
        return None;
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_read_as_host_and_path() {
        for (url, expected) in [
            ("https://Example.com/x.yaml", Some("example.com/x.yaml")),
            (
                "https://user:pw@example.com:8443/a/b?ref=v1",
                Some("example.com/a/b"),
            ),
            ("oci://ghcr.io/org/charts", Some("ghcr.io/org/charts")),
            ("git@github.com:org/repo.git", Some("github.com/org/repo")),
            (
                "github.com/org/repo//deploy?ref=v1",
                Some("github.com/org/repo"),
            ),
            (
                "git::https://gitlab.com/org/repo.git//x",
                Some("gitlab.com/org/repo"),
            ),
            ("http://127.0.0.1:8080/x", Some("127.0.0.1/x")),
            ("https:///x", None),
        ] {
            assert_eq!(location(url).as_deref(), expected, "{url}");
        }
    }

    #[test]
    fn only_listed_hosts_and_prefixes_are_allowed() {
        let allow = AllowRemote::new(vec![
            "github.com/fluxcd".into(),
            "charts.example.com".into(),
        ]);
        assert!(allow.allows("https://github.com/fluxcd/flux2//manifests"));
        assert!(allow.allows("oci://charts.example.com/web"));
        assert!(!allow.allows("https://github.com/fluxcd-evil/x"));
        assert!(!allow.allows("https://github.com/other/x"));
        assert!(!allow.allows("https://charts.example.com.evil.io/web"));
        assert!(!allow.allows("https://github.com/fluxcd/../other/x"));
        assert!(!allow.allows("https://github.com/fluxcd/%2e%2e/other/x"));
        assert!(!AllowRemote::default().allows("https://github.com/fluxcd/x"));
    }
}
