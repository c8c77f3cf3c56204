//! Fault injection and the request log: tests make the next N requests that match a method and a
//! path pattern fail (500, 503, 429 with `Retry-After`), wait, or lose their connection, and then
//! assert on every request the server saw.

use std::sync::Mutex;
use std::time::Duration;

/// What happens to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this status code (500, 503, ...) and an error Status.
    Status(u16),
    /// Answer 503 with a `Retry-After` of this many seconds.
    Unavailable {
        /// Seconds the client is asked to wait.
        retry_after: u64,
    },
    /// Answer 429 with a `Retry-After` of this many seconds.
    TooManyRequests {
        /// Seconds the client is asked to wait.
        retry_after: u64,
    },
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
    /// GitHub's primary rate limit: 403 with `x-ratelimit-remaining: 0` and a reset this many
    /// seconds ahead (the test API server answers 429).
    RateLimit {
        /// Seconds until the limit resets.
        reset_in: u64,
    },
    /// GitHub's secondary rate limit: 403 with `Retry-After` (the test API server answers 429).
    SecondaryRateLimit {
        /// Seconds the client is asked to wait.
        retry_after: u64,
    },
    /// GitHub's primary rate limit as its other documented form: 429 with
    /// `x-ratelimit-remaining: 0` and a reset this many seconds ahead (the test API server
    /// answers 429 with that wait).
    RateLimitAs429 {
        /// Seconds until the limit resets.
        reset_in: u64,
    },
    /// GitHub's secondary rate limit with no header: 403 and "wait at least a minute" (the test
    /// API server answers 429 asking for 60 seconds).
    SecondaryRateLimitWithoutHeader,
    /// Answer with this status and this JSON body as it is: an answer missing a field, or of
    /// the wrong shape.
    Answer {
        /// The status code.
        status: u16,
        /// The body.
        body: serde_json::Value,
    },
}

/// A rule: the next `times` requests matching `method` and `path` get `kind`.
#[derive(Clone, Debug)]
pub struct Fault {
    method: Option<String>,
    path: String,
    kind: FaultKind,
    times: usize,
    skip: usize,
    fired: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Fault {
    /// Matches requests of `method` (`*` for any) whose path (without query) matches `path`,
    /// where `*` stands for any run of characters.
    pub fn new(method: &str, path: &str, kind: FaultKind) -> Fault {
        Fault {
            method: (method != "*").then(|| method.to_ascii_uppercase()),
            path: path.to_string(),
            kind,
            times: 1,
            skip: 0,
            fired: Default::default(),
        }
    }

    /// How many requests the rule has hit so far, shared by its clones: a test keeps it to
    /// show that the fault it added really fired.
    pub fn fired(&self) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
        self.fired.clone()
    }

    /// Lets the first `skip` matching requests through before it applies.
    pub fn after(mut self, skip: usize) -> Fault {
        self.skip = skip;
        self
    }

    /// Applies to the next `times` matching requests (default 1).
    pub fn times(mut self, times: usize) -> Fault {
        self.times = times;
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.times > 0
            && self.method.as_deref().is_none_or(|m| m == method)
            && glob(&self.path, path)
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(index) => rest = &rest[index + part.len()..],
            None => return false,
        }
    }
    true
}

/// One request the server saw.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    /// HTTP method.
    pub method: String,
    /// Path without query.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The status answered; `None` when the connection was dropped.
    pub status: Option<u16>,
    /// The fault applied, if any.
    pub fault: Option<FaultKind>,
    /// The client's `User-Agent`: which process sent it.
    pub user_agent: String,
}

/// The rules and the log, shared by every connection.
#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<Fault>>,
    log: Mutex<Vec<LoggedRequest>>,
}

impl Faults {
    /// Adds a rule; rules are tried in the order they were added.
    pub fn add(&self, fault: Fault) {
        self.rules.lock().expect("fault rules").push(fault);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules.lock().expect("fault rules").clear();
    }

    /// Takes one use of the first rule matching a request.
    pub(crate) fn take(&self, method: &str, path: &str) -> Option<FaultKind> {
        let mut rules = self.rules.lock().expect("fault rules");
        let rule = rules.iter_mut().find(|r| r.matches(method, path))?;
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        rule.times -= 1;
        rule.fired.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(rule.kind.clone())
    }

    /// Records a request; returns its index in the log.
    pub(crate) fn record(&self, entry: LoggedRequest) -> usize {
        let mut log = self.log.lock().expect("request log");
        log.push(entry);
        log.len() - 1
    }

    /// Sets the status answered to a logged request.
    pub(crate) fn answered(&self, index: usize, status: u16) {
        if let Some(entry) = self.log.lock().expect("request log").get_mut(index) {
            entry.status = Some(status);
        }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.log.lock().expect("request log").clone()
    }

    /// Forgets the requests logged so far.
    pub fn clear_log(&self) {
        self.log.lock().expect("request log").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob(
            "/apis/apps/v1/*",
            "/apis/apps/v1/namespaces/a/deployments/b"
        ));
        assert!(glob(
            "*/deployments/*",
            "/apis/apps/v1/namespaces/a/deployments/b"
        ));
        assert!(!glob(
            "*/pods/*",
            "/apis/apps/v1/namespaces/a/deployments/b"
        ));
        assert!(glob("/version", "/version"));
    }

    #[test]
    fn a_rule_after_n_lets_n_requests_through_first() {
        let faults = Faults::default();
        faults.add(Fault::new("PATCH", "/x", FaultKind::Drop).after(2));
        assert_eq!(faults.take("PATCH", "/x"), None);
        assert_eq!(faults.take("GET", "/x"), None);
        assert_eq!(faults.take("PATCH", "/x"), None);
        assert_eq!(faults.take("PATCH", "/x"), Some(FaultKind::Drop));
        assert_eq!(faults.take("PATCH", "/x"), None);
    }

    #[test]
    fn a_rule_fires_only_as_often_as_asked() {
        let faults = Faults::default();
        faults.add(Fault::new("PATCH", "*", FaultKind::Status(503)).times(2));
        assert_eq!(faults.take("GET", "/x"), None);
        assert_eq!(faults.take("PATCH", "/x"), Some(FaultKind::Status(503)));
        assert_eq!(faults.take("PATCH", "/x"), Some(FaultKind::Status(503)));
        assert_eq!(faults.take("PATCH", "/x"), None);
    }
}
