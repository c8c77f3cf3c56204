//! What a GitHub client keeps between requests: its credentials (a token, or a GitHub App's key
//! and the installation token it was exchanged for), the ETag and answer of each GET for
//! conditional requests (a `304 Not Modified` costs no rate limit), and the rate limit GitHub
//! last reported. Pure, with the time passed in.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::app::AppKey;

/// How the client authenticates.
#[derive(Clone)]
pub enum Credentials {
    /// A personal, fine-grained or Actions token.
    Token(String),
    /// A GitHub App: its JWT is exchanged for installation tokens.
    App(AppCredentials),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token(***)"),
            Credentials::App(app) => write!(f, "App({})", app.id),
        }
    }
}

/// A GitHub App's identity.
#[derive(Clone)]
pub struct AppCredentials {
    /// The App's id.
    pub id: u64,
    /// Its private key.
    pub key: Arc<AppKey>,
    /// The installation on the repository's account; looked up by repository when `None`.
    pub installation: Option<u64>,
}

/// An installation token and when it expires (seconds since the epoch).
#[derive(Clone)]
pub struct InstallationToken {
    /// The token.
    pub token: String,
    /// When GitHub says it expires.
    pub expires_at: i64,
}

/// A token is renewed this long before it expires, so that no request meets its end.
pub const RENEW_BEFORE_SECONDS: i64 = 5 * 60;

impl InstallationToken {
    /// Whether it may still be used at `now`.
    pub fn fresh(&self, now: i64) -> bool {
        self.expires_at - now > RENEW_BEFORE_SECONDS
    }
}

/// The rate limit of one resource, as the last answer's `x-ratelimit-*` headers said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// `core`, `search`, `graphql`…
    pub resource: String,
    /// Requests allowed in the window.
    pub limit: u64,
    /// Requests left in it.
    pub remaining: u64,
    /// Requests used in it.
    pub used: u64,
    /// When the window resets (seconds since the epoch).
    pub reset: u64,
}

impl RateLimit {
    /// Reads the headers an answer carries; `None` when it has no rate limit.
    pub fn from_headers(header: impl Fn(&str) -> Option<String>) -> Option<RateLimit> {
        let number = |name: &str| header(name)?.trim().parse::<u64>().ok();
        let limit = number("x-ratelimit-limit")?;
        let remaining = number("x-ratelimit-remaining")?;
        Some(RateLimit {
            resource: header("x-ratelimit-resource").unwrap_or_else(|| "core".to_owned()),
            limit,
            remaining,
            used: number("x-ratelimit-used").unwrap_or(limit.saturating_sub(remaining)),
            reset: number("x-ratelimit-reset").unwrap_or(0),
        })
    }

    /// Whether at most a fifth of the window is left.
    pub fn low(&self) -> bool {
        self.limit > 0 && self.remaining * 5 <= self.limit
    }
}

/// The answers to GETs with their ETags, for `If-None-Match`; at most [`Conditional::CAPACITY`]
/// are kept, the oldest dropped first.
#[derive(Debug)]
pub struct Conditional<T = Value> {
    answers: HashMap<String, (String, T, u64)>,
    clock: u64,
}

impl<T> Default for Conditional<T> {
    fn default() -> Self {
        Conditional {
            answers: HashMap::new(),
            clock: 0,
        }
    }
}

impl<T: Clone> Conditional<T> {
    /// Answers kept.
    pub const CAPACITY: usize = 2048;

    /// The ETag of the answer kept for `path`.
    pub fn etag(&self, path: &str) -> Option<&str> {
        self.answers.get(path).map(|(etag, _, _)| etag.as_str())
    }

    /// The answer kept for `path`, for a `304`.
    pub fn answer(&mut self, path: &str) -> Option<T> {
        self.clock += 1;
        let clock = self.clock;
        self.answers.get_mut(path).map(|(_, value, used)| {
            *used = clock;
            value.clone()
        })
    }

    /// Keeps `value` as the answer for `path`, with its ETag.
    pub fn keep(&mut self, path: &str, etag: String, value: &T) {
        self.clock += 1;
        if self.answers.len() >= Self::CAPACITY && !self.answers.contains_key(path) {
            let oldest = self
                .answers
                .iter()
                .min_by_key(|(_, (_, _, used))| *used)
                .map(|(path, _)| path.clone());
            if let Some(oldest) = oldest {
                self.answers.remove(&oldest);
            }
        }
        self.answers
            .insert(path.to_owned(), (etag, value.clone(), self.clock));
    }

    /// Forgets `path`'s answer (a `304` for an answer no longer kept cannot be read).
    pub fn forget(&mut self, path: &str) {
        self.answers.remove(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_renewed_five_minutes_before_it_expires() {
        let token = InstallationToken {
            token: "t".into(),
            expires_at: 10_000,
        };
        assert!(token.fresh(10_000 - 301));
        assert!(!token.fresh(10_000 - 300));
        assert!(!token.fresh(10_001));
    }

    #[test]
    fn the_rate_limit_is_read_from_the_headers_and_is_low_at_a_fifth() {
        let headers = |remaining: &'static str| {
            move |name: &str| match name {
                "x-ratelimit-limit" => Some("5000".to_owned()),
                "x-ratelimit-remaining" => Some(remaining.to_owned()),
                "x-ratelimit-reset" => Some("1700000000".to_owned()),
                _ => None,
            }
        };
        let limit = RateLimit::from_headers(headers("1001")).unwrap();
        assert_eq!(
            limit,
            RateLimit {
                resource: "core".into(),
                limit: 5000,
                remaining: 1001,
                used: 3999,
                reset: 1_700_000_000,
            }
        );
        assert!(!limit.low());
        assert!(RateLimit::from_headers(headers("1000")).unwrap().low());
        assert!(RateLimit::from_headers(|_| None).is_none());
    }

    #[test]
    fn the_least_recently_used_answer_is_dropped_first() {
        let mut kept: Conditional = Conditional::default();
        for i in 0..Conditional::<Value>::CAPACITY {
            kept.keep(&format!("/p/{i}"), format!("\"{i}\""), &Value::from(i));
        }
        assert_eq!(kept.answer("/p/0"), Some(Value::from(0)));
        kept.keep("/new", "\"n\"".into(), &Value::Null);
        assert_eq!(kept.etag("/p/0"), Some("\"0\""));
        assert_eq!(kept.etag("/p/1"), None, "the oldest unused answer went");
        assert_eq!(kept.etag("/new"), Some("\"n\""));
        kept.forget("/new");
        assert_eq!(kept.answer("/new"), None);
    }
}
