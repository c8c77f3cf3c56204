//! Where a secret is: an environment variable or a file, never the configuration itself. Read
//! when the part that needs it starts; an unset or empty source is an error naming it.

use std::path::PathBuf;

use serde::Deserialize;

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file (a mounted Secret), its content trimmed.
    File(PathBuf),
}

impl SecretSource {
    /// The secret; an empty or missing one is an error naming where it was looked for.
    pub fn read(&self) -> Result<String, String> {
        let value = match self {
            SecretSource::Env(name) => std::env::var(name)
                .map_err(|_| format!("environment variable {name} is not set"))?,
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        };
        let value = value.trim().to_owned();
        if value.is_empty() {
            return Err(format!("{self:?} is empty"));
        }
        Ok(value)
    }
}
