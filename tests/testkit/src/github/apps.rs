//! The fake GitHub's Apps and accounting: Apps with their public keys, whose RS256 JWTs are
//! verified as GitHub verifies them (signature, `iss`, `iat`, `exp` at most ten minutes on);
//! installations with permissions, whose tokens expire; tokens with permissions (an Actions
//! token); the primary rate limit per identity, where a `304` is free; and check runs with
//! their annotations.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::{Value, json};

/// An App.
#[derive(Clone, Debug)]
pub(crate) struct App {
    pub(crate) slug: String,
    /// `RSAPublicKey`, DER.
    pub(crate) public_key: Vec<u8>,
    /// Its installation on the repository, when installed.
    pub(crate) installation: Option<u64>,
    /// What the installation may do (`checks` → `write`).
    pub(crate) permissions: BTreeMap<String, String>,
}

/// A token with its identity, its permissions (`None`: a person's token, which may not write
/// check runs) and its end.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub(crate) login: String,
    pub(crate) permissions: Option<BTreeMap<String, String>>,
    pub(crate) expires_at: Option<i64>,
    /// The requests it spends from, for the rate limit.
    pub(crate) limit: u64,
}

/// A check run.
#[derive(Clone, Debug)]
pub struct CheckRun {
    /// Id.
    pub id: u64,
    /// `remediator/check`.
    pub name: String,
    /// The commit.
    pub head_sha: String,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    /// When completed.
    pub conclusion: Option<String>,
    /// The output's title.
    pub title: String,
    /// The output's summary.
    pub summary: String,
    /// Every annotation sent, in order.
    pub annotations: Vec<Value>,
    /// Who wrote it.
    pub app: String,
    /// The requests that wrote it.
    pub writes: usize,
}

impl CheckRun {
    pub(crate) fn json(&self, api: &str) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "head_sha": self.head_sha,
            "status": self.status,
            "conclusion": self.conclusion,
            "output": {"title": self.title, "summary": self.summary, "annotations_count": self.annotations.len()},
            "app": {"slug": self.app},
            "url": format!("{api}/check-runs/{}", self.id),
        })
    }
}

/// The Apps, tokens, rate limits and check runs.
#[derive(Debug, Default)]
pub(crate) struct Apps {
    pub(crate) apps: HashMap<u64, App>,
    pub(crate) grants: HashMap<String, Grant>,
    /// Seconds an installation token lives.
    pub(crate) token_lifetime: i64,
    /// Installation tokens handed out.
    pub(crate) exchanges: usize,
    /// Requests counted against each login's limit.
    pub(crate) used: HashMap<String, u64>,
    /// When the window started.
    pub(crate) window_start: i64,
    pub(crate) check_runs: Vec<CheckRun>,
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(crate) fn rfc3339(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn decode(part: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()
}

impl Apps {
    pub(crate) fn new() -> Apps {
        Apps {
            token_lifetime: 3600,
            window_start: now(),
            ..Apps::default()
        }
    }

    /// The App a JWT proves, or GitHub's message for why not.
    pub(crate) fn verify_jwt(&self, jwt: &str) -> Result<u64, String> {
        let bad = || "A JSON web token could not be decoded".to_owned();
        let parts: Vec<&str> = jwt.split('.').collect();
        let [header, claims, signature] = parts.as_slice() else {
            return Err(bad());
        };
        let header: Value =
            serde_json::from_slice(&decode(header).ok_or_else(bad)?).map_err(|_| bad())?;
        if header["alg"] != "RS256" {
            return Err(bad());
        }
        let claims: Value =
            serde_json::from_slice(&decode(claims).ok_or_else(bad)?).map_err(|_| bad())?;
        let issuer = match &claims["iss"] {
            Value::String(s) => s.parse::<u64>().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
        .ok_or_else(|| "'Issuer' claim ('iss') must be an Integer".to_owned())?;
        let app = self
            .apps
            .get(&issuer)
            .ok_or_else(|| format!("Integration not found: {issuer}"))?;
        let signed = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &app.public_key)
            .verify(signed.as_bytes(), &decode(signature).ok_or_else(bad)?)
            .map_err(|_| {
                "A JSON web token could not be decoded: signature verification failed".to_owned()
            })?;
        let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
            return Err("'Issued at' and 'Expiration time' claims are required".into());
        };
        let now = now();
        if exp <= now {
            return Err("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires".into());
        }
        if iat > now + 60 || exp - iat > 600 {
            return Err("'Expiration time' claim ('exp') is too far in the future".into());
        }
        Ok(issuer)
    }

    /// The installation of the repository for an App.
    pub(crate) fn installation(&self, app: u64) -> Option<u64> {
        self.apps.get(&app).and_then(|a| a.installation)
    }

    /// A new token for installation `id` of `app`.
    pub(crate) fn exchange(&mut self, app: u64, id: u64) -> Result<Value, (u16, String)> {
        let found = self
            .apps
            .get(&app)
            .filter(|a| a.installation == Some(id))
            .cloned()
            .ok_or((404, "Not Found".to_owned()))?;
        self.exchanges += 1;
        let token = format!("ghs_{app}_{id}_{}", self.exchanges);
        let expires_at = now() + self.token_lifetime;
        self.grants.insert(
            token.clone(),
            Grant {
                login: format!("{}[bot]", found.slug),
                permissions: Some(found.permissions.clone()),
                expires_at: Some(expires_at),
                limit: 15_000,
            },
        );
        Ok(json!({
            "token": token,
            "expires_at": rfc3339(expires_at),
            "permissions": found.permissions,
            "repository_selection": "selected",
        }))
    }

    /// Whether `grant` may `level` (`read`, `write`) the permission `name`.
    pub(crate) fn may(grant: &Grant, name: &str, level: &str) -> Result<(), (u16, String)> {
        let Some(permissions) = &grant.permissions else {
            return Err((403, "You must authenticate via a GitHub App.".to_owned()));
        };
        match (permissions.get(name).map(String::as_str), level) {
            (Some("write"), _) | (Some("read"), "read") => Ok(()),
            _ => Err((403, "Resource not accessible by integration".to_owned())),
        }
    }

    /// Counts one request of `login`; returns the limit's headers.
    pub(crate) fn spend(
        &mut self,
        login: &str,
        limit: u64,
        counted: bool,
    ) -> Vec<(String, String)> {
        let now = now();
        if now - self.window_start >= 3600 {
            self.window_start = now;
            self.used.clear();
        }
        let used = self.used.entry(login.to_owned()).or_insert(0);
        if counted {
            *used += 1;
        }
        let used = *used;
        vec![
            ("x-ratelimit-limit".into(), limit.to_string()),
            (
                "x-ratelimit-remaining".into(),
                limit.saturating_sub(used).to_string(),
            ),
            ("x-ratelimit-used".into(), used.to_string()),
            (
                "x-ratelimit-reset".into(),
                (self.window_start + 3600).to_string(),
            ),
            ("x-ratelimit-resource".into(), "core".into()),
        ]
    }
}
