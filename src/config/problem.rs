//! A problem found in config.json or secrets.json: what `check`, the schema and the form share.

use serde::Serialize;

/// How bad a problem is: errors block Start, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Blocks the run.
    Error,
    /// Worth a look.
    Warning,
}

/// One problem in the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// JSON path, like `masters[1].ipaddress`.
    pub path: String,
    /// What is wrong, quoting the value.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}
