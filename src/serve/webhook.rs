//! GitHub webhook deliveries: authenticated before anything is parsed (HMAC-SHA256 of the raw
//! body against `X-Hub-Signature-256`, compared in constant time; replays are refused by
//! [`super::replays`]), and each event turned into the job it asks for: a `push` to the base
//! branch reconciles, a pull request opened or synchronized is checked, a review re-weighs the
//! gate. Pure.

use serde_json::Value;

/// Why a delivery is refused (401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No `X-Hub-Signature-256`.
    #[error("the delivery is not signed (no X-Hub-Signature-256)")]
    Unsigned,
    /// The signature does not match the body.
    #[error("the signature does not match the body")]
    BadSignature,
    /// No `X-GitHub-Delivery`.
    #[error("the delivery has no X-GitHub-Delivery id")]
    NoDelivery,
}

/// Checks `signature` (`sha256=<hex>`) against the HMAC-SHA256 of `body` under `secret`.
pub fn verify(secret: &[u8], body: &[u8], signature: Option<&str>) -> Result<(), Refused> {
    let signature = signature.ok_or(Refused::Unsigned)?;
    let hex = signature
        .strip_prefix("sha256=")
        .ok_or(Refused::BadSignature)?;
    let tag = decode_hex(hex).ok_or(Refused::BadSignature)?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    ring::hmac::verify(&key, body, &tag).map_err(|_| Refused::BadSignature)
}

/// The signature GitHub would send for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What a delivery asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// Reconcile the base branch up to this commit.
    Reconcile {
        /// The pushed head.
        after: String,
    },
    /// Check a pull request and update its one comment.
    Check {
        /// Its number.
        pull: u64,
        /// Its base branch.
        base: String,
        /// Its head commit.
        head: String,
        /// Its head branch.
        branch: String,
    },
    /// A review changed: weigh a pending merge's gate again.
    Review {
        /// The pull request.
        pull: u64,
    },
}

/// The job of an authenticated delivery of `event` (`X-GitHub-Event`); `None` for events that
/// ask for nothing (answered 202). A body that is not the event's JSON is an error.
pub fn job(event: &str, body: &[u8], base_branch: &str) -> Result<Option<Asked>, String> {
    if event == "ping" {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the {event} payload is not JSON: {e}"))?;
    let text = |p: &str| value.pointer(p).and_then(Value::as_str);
    Ok(match event {
        "push" => {
            let wanted = format!("refs/heads/{base_branch}");
            match (text("/ref"), text("/after")) {
                (Some(r), Some(after)) if r == wanted && value["deleted"] != Value::Bool(true) => {
                    Some(Asked::Reconcile {
                        after: after.to_owned(),
                    })
                }
                _ => None,
            }
        }
        "pull_request" => match text("/action") {
            Some("opened" | "synchronize" | "reopened") => {
                let pull = value["pull_request"]["number"]
                    .as_u64()
                    .ok_or("a pull_request event without its number")?;
                Some(Asked::Check {
                    pull,
                    base: text("/pull_request/base/ref")
                        .unwrap_or(base_branch)
                        .to_owned(),
                    head: text("/pull_request/head/sha")
                        .ok_or("a pull_request event without its head commit")?
                        .to_owned(),
                    branch: text("/pull_request/head/ref")
                        .ok_or("a pull_request event without its head branch")?
                        .to_owned(),
                })
            }
            _ => None,
        },
        "pull_request_review" => value["pull_request"]["number"]
            .as_u64()
            .map(|pull| Asked::Review { pull }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_signature_of_the_whole_body_passes() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let signature = sign(b"s3cret", body);
        assert_eq!(verify(b"s3cret", body, Some(&signature)), Ok(()));
        assert_eq!(verify(b"s3cret", body, None), Err(Refused::Unsigned));
        assert_eq!(
            verify(b"other", body, Some(&signature)),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(b"s3cret", &body[..body.len() - 1], Some(&signature)),
            Err(Refused::BadSignature),
            "a truncated body"
        );
        assert_eq!(
            verify(
                b"s3cret",
                body,
                Some(&signature.replace("sha256=", "sha1="))
            ),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(b"s3cret", body, Some("sha256=zz")),
            Err(Refused::BadSignature)
        );
    }

    #[test]
    fn events_become_jobs() {
        let push = br#"{"ref":"refs/heads/main","after":"abc","deleted":false}"#;
        assert_eq!(
            job("push", push, "main"),
            Ok(Some(Asked::Reconcile {
                after: "abc".into()
            }))
        );
        assert_eq!(job("push", push, "release"), Ok(None), "another branch");
        let pr = br#"{"action":"synchronize","pull_request":{"number":7,"base":{"ref":"main"},"head":{"sha":"def","ref":"fix"}}}"#;
        assert_eq!(
            job("pull_request", pr, "main"),
            Ok(Some(Asked::Check {
                pull: 7,
                base: "main".into(),
                head: "def".into(),
                branch: "fix".into()
            }))
        );
        let closed = br#"{"action":"closed","pull_request":{"number":7}}"#;
        assert_eq!(job("pull_request", closed, "main"), Ok(None));
        let review = br#"{"action":"submitted","pull_request":{"number":7}}"#;
        assert_eq!(
            job("pull_request_review", review, "main"),
            Ok(Some(Asked::Review { pull: 7 }))
        );
        assert_eq!(job("issues", b"{}", "main"), Ok(None));
        assert_eq!(job("ping", b"not json", "main"), Ok(None));
        assert!(job("push", b"{", "main").is_err());
    }
}
