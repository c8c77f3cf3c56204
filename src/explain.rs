//! An optional explanation in plain words, from an OpenAI-compatible chat endpoint (`llm:` in
//! `remediator.yaml`). It is given only the redacted finding (code, explanation, evidence) and
//! the change's one-line summary, and its answer is shown labelled as generated. It never
//! chooses or changes the action, the risk or a policy outcome: it is asked after all of them
//! are decided, and nothing reads its answer but the pull request body. Without the endpoint, or
//! when it fails or is slow, everything works the same and the body says the explanation was
//! not available. I/O: the endpoint.

use std::time::Duration;

use http_body_util::Full;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::LlmSettings;
use crate::model::Finding;
use crate::redact::redact;

/// Characters of an answer shown, at most.
const ANSWER_CHARS: usize = 1500;

const SYSTEM: &str = "You explain Kubernetes problems to the engineers who review a pull request \
that fixes them. In at most five plain sentences, say what is wrong, why the evidence shows it, and \
what the proposed change does about it. Do not propose other changes, do not judge the risk, and \
do not invent facts that are not in the evidence.";

/// What the endpoint gave for one pull request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum Explanation {
    /// Its answer, redacted again and cut to length.
    Generated {
        /// The model that wrote it.
        model: String,
        /// The answer.
        text: String,
    },
    /// No answer: why.
    Unavailable {
        /// What failed.
        reason: String,
    },
}

/// A client of the chat endpoint.
pub struct Explainer {
    settings: LlmSettings,
    key: Option<String>,
    client: crate::http::HttpsClient,
}

impl Explainer {
    /// A client as `settings` say; an unreadable key or CA is an error naming it.
    pub fn new(settings: LlmSettings) -> Result<Self, String> {
        let key = match &settings.api_key {
            Some(source) => Some(source.read().map_err(|e| format!("llm.apiKey: {e}"))?),
            None => None,
        };
        let client =
            crate::http::client(settings.ca_file.as_deref()).map_err(|e| format!("llm.{e}"))?;
        Ok(Explainer {
            settings,
            key,
            client,
        })
    }

    /// The explanation of `finding`, whose change is `summary`.
    pub async fn explain(&self, finding: &Finding, summary: &str) -> Explanation {
        match self.ask(&prompt(finding, summary)).await {
            Ok(text) => Explanation::Generated {
                model: self.settings.model.clone(),
                text,
            },
            Err(reason) => Explanation::Unavailable {
                reason: redact(&reason),
            },
        }
    }

    async fn ask(&self, prompt: &str) -> Result<String, String> {
        let url = format!(
            "{}/chat/completions",
            self.settings.url.trim_end_matches('/')
        );
        let body = json!({
            "model": self.settings.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": prompt},
            ],
        });
        let mut request = http::Request::post(&url).header("content-type", "application/json");
        if let Some(key) = &self.key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let request = request
            .body(Full::new(bytes::Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        let timeout = Duration::from_secs(self.settings.timeout_seconds.max(1));
        let (status, body) = crate::http::send(&self.client, request, timeout).await?;
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("HTTP {status}: not a chat completion: {e}"))?;
        if !status.is_success() {
            let message = value["error"]["message"]
                .as_str()
                .or(value["error"].as_str())
                .unwrap_or("no message");
            return Err(format!("HTTP {status}: {message}"));
        }
        let text = value["choices"][0]["message"]["content"]
            .as_str()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or("the answer holds no message")?;
        let text = redact(text);
        Ok(match text.char_indices().nth(ANSWER_CHARS) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        })
    }
}

/// What the endpoint is told: the finding and the change, redacted.
pub fn prompt(finding: &Finding, summary: &str) -> String {
    let mut text = format!(
        "Finding: {} ({}) on {}\n\n{}\n\nEvidence:\n",
        finding.code, finding.severity, finding.subject, finding.explanation
    );
    for evidence in &finding.evidence {
        text.push_str(&format!("- {}: {}\n", evidence.label, evidence.value));
    }
    text.push_str(&format!("\nProposed change: {summary}\n"));
    redact(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FindingCode, ObjectRef, Severity};

    #[test]
    fn the_prompt_holds_the_finding_and_no_secret() {
        let finding = Finding::new(
            FindingCode::CrashLoop,
            Severity::Critical,
            ObjectRef::new("v1", "Pod", Some("shop"), "api-1"),
            "Container `api` keeps exiting.".into(),
        )
        .with(
            "log",
            "password=hunter22 dial tcp db:5432: connection refused",
        );
        let prompt = prompt(&finding, "Roll back the image");
        assert!(prompt.contains("crash-loop"), "{prompt}");
        assert!(prompt.contains("connection refused"), "{prompt}");
        assert!(prompt.contains("Roll back the image"), "{prompt}");
        assert!(!prompt.contains("hunter22"), "{prompt}");
    }
}
