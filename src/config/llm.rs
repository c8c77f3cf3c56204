//! `llm:` in `remediator.yaml`: the OpenAI-compatible endpoint that explains findings. Read by
//! [`crate::explain`].

use std::path::PathBuf;

use serde::Deserialize;

use super::SecretSource;

/// `llm:` as configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LlmSettings {
    /// The API's base URL, before `/chat/completions` (`https://api.openai.com/v1`, a vLLM or
    /// Ollama server's `/v1`).
    pub url: String,
    /// The model asked.
    pub model: String,
    /// The API key, from the environment or a file; none for a local server.
    #[serde(default)]
    pub api_key: Option<SecretSource>,
    /// Seconds one explanation may take.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// A PEM file of the CA that signs the endpoint's certificate, besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_timeout() -> u64 {
    20
}
