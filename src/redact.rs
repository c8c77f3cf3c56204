//! Redaction of text read from a cluster (container logs, event messages) before anything keeps
//! or shows it: bearer tokens, passwords in URLs, AWS, GCP and GitHub key patterns,
//! `password=`/`secret=`/`token=` values, JWTs, private keys, and any value of a Secret the pod
//! can read, matched by value. What is removed becomes `[REDACTED]`, so a reader still sees
//! that something was there. Pure.

use std::sync::LazyLock;

use regex::Regex;

/// What replaces a secret.
pub const MASK: &str = "[REDACTED]";

/// Secret values shorter than this are not matched by value: three characters or fewer would
/// cut ordinary words out of every line, and are no secret worth the name.
const SHORTEST_VALUE: usize = 4;

/// The patterns, each with the group to keep before the secret (if any).
static PATTERNS: LazyLock<Vec<(Regex, bool)>> = LazyLock::new(|| {
    let keep_prefix = [
        // `Authorization: Bearer x`, `bearer=x`.
        r"(?i)(\bbearer[\s:=]+)[A-Za-z0-9._~+/=-]{8,}",
        r"(?i)(\bbasic\s+)[A-Za-z0-9+/=]{8,}",
        // scheme://user:password@host
        r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^@\s/]+(@)",
        // password=x, secret: "x", api_key=x, token=x, PGPASSWORD=x
        r#"(?i)((?:pass(?:word|wd)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)["']?\s*[:=]\s*["']?)[^\s"',;&]+"#,
    ];
    let whole = [
        // AWS access key ids and secret keys after their name.
        r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b",
        // GCP API keys and service-account private key ids.
        r"\bAIza[0-9A-Za-z_-]{35}\b",
        // GitHub tokens (classic and fine-grained).
        r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",
        r"\bgithub_pat_[A-Za-z0-9_]{40,}\b",
        // JWTs: three base64url parts, the first a JSON header.
        r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}",
        // PEM private keys.
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
    ];
    keep_prefix
        .iter()
        .map(|p| (Regex::new(p).expect("a valid pattern"), true))
        .chain(
            whole
                .iter()
                .map(|p| (Regex::new(p).expect("a valid pattern"), false)),
        )
        .collect()
});

/// Redacts text with the patterns and with the given secret values.
#[derive(Default)]
pub struct Redactor {
    values: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secret values)", self.values.len())
    }
}

impl Redactor {
    /// A redactor that also removes each of `values` (a Secret's decoded values) wherever it
    /// appears, longest first so that a value containing another goes whole.
    pub fn with_values(values: impl IntoIterator<Item = String>) -> Self {
        let mut values: Vec<String> = values
            .into_iter()
            .flat_map(|v| {
                // A value is often logged with its trailing newline cut, or line by line.
                let lines: Vec<String> = v.lines().map(str::to_owned).collect();
                std::iter::once(v.trim_end().to_owned()).chain(lines)
            })
            .filter(|v| v.trim().len() >= SHORTEST_VALUE)
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor { values }
    }

    /// Adds the decoded values of one Secret.
    pub fn add(&mut self, values: impl IntoIterator<Item = String>) {
        let mut all = std::mem::take(&mut self.values);
        all.extend(values);
        *self = Redactor::with_values(all);
    }

    /// Also removes every value `other` removes.
    pub fn absorb(&mut self, other: Redactor) {
        self.add(other.values);
    }

    /// Whether it knows no secret value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with each of the secret values in it replaced by [`MASK`], and nothing else.
    pub fn redact_values(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), MASK);
            }
        }
        out
    }

    /// `text` with every secret in it replaced by [`MASK`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = self.redact_values(text);
        for (pattern, keeps_prefix) in PATTERNS.iter() {
            if !pattern.is_match(&out) {
                continue;
            }
            out = pattern
                .replace_all(&out, |c: &regex::Captures| {
                    if !keeps_prefix {
                        return MASK.to_owned();
                    }
                    let prefix = c.get(1).map_or("", |m| m.as_str());
                    let suffix = c.get(2).map_or("", |m| m.as_str());
                    format!("{prefix}{MASK}{suffix}")
                })
                .into_owned();
        }
        out
    }
}

/// The decoded values of a Secret (`data` and `stringData`), to redact by.
pub fn secret_values(secret: k8s_openapi::api::core::v1::Secret) -> Vec<String> {
    let data = secret
        .data
        .into_iter()
        .flatten()
        .map(|(_, v)| String::from_utf8_lossy(&v.0).into_owned());
    let strings = secret.string_data.into_iter().flatten().map(|(_, v)| v);
    data.chain(strings).collect()
}

/// `text` with the patterns' secrets replaced (no Secret values known).
pub fn redact(text: &str) -> String {
    Redactor::default().redact(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_secret_is_masked_and_the_rest_of_the_line_kept() {
        let planted = [
            (
                "Authorization: Bearer abcdef0123456789xyz",
                "Authorization: Bearer [REDACTED]",
            ),
            (
                "connecting to postgres://app:s3cr3tpw@db:5432/shop",
                "connecting to postgres://app:[REDACTED]@db:5432/shop",
            ),
            (
                "aws key AKIAIOSFODNN7EXAMPLE loaded",
                "aws key [REDACTED] loaded",
            ),
            (
                "key=AIzaSyA1234567890abcdefghijklmnopqrstuv",
                "key=[REDACTED]",
            ),
            (
                "using ghp_0123456789abcdefghijABCDEFGHIJ012345 for clone",
                "using [REDACTED] for clone",
            ),
            (
                "DB_PASSWORD=hunter22 user=app",
                "DB_PASSWORD=[REDACTED] user=app",
            ),
            ("client secret: 'xyzzy-42'", "client secret: '[REDACTED]'"),
            (
                "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U rejected",
                "token [REDACTED] rejected",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
                "[REDACTED]",
            ),
        ];
        for (line, want) in planted {
            assert_eq!(redact(line), want, "{line}");
        }
        // Ordinary lines pass untouched.
        for line in [
            "dial tcp 10.0.0.7:5432: connect: connection refused",
            "listening on :8080",
            "password reset email sent",
        ] {
            assert_eq!(redact(line), line);
        }
    }

    #[test]
    fn a_secret_s_values_are_masked_wherever_they_appear() {
        let redactor = Redactor::with_values(["Zq9-pLm4\n".to_owned(), "ab".to_owned()]);
        assert_eq!(
            redactor.redact("login with Zq9-pLm4 failed (ab)"),
            "login with [REDACTED] failed (ab)"
        );
        assert_eq!(format!("{redactor:?}"), "Redactor(1 secret values)");
    }
}
