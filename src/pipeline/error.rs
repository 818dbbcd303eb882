//! The pipeline's errors, typed: the runner can tell an engine that went away (hold and
//! reattach) from a missing image or a name clash (fail the step), and every message still says
//! what to do.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::engine::EngineError;

/// Why the pipeline could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The engine said no, or went away (see [`EngineError::is_unreachable`]).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// config.json or secrets.json cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file or folder of the run could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("save the run state in", "create").
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The step's log could not be written.
    #[error("writing the step log: {0}")]
    Log(#[source] std::io::Error),
    /// The pipeline file is wrong (the message names the file and the field).
    #[error("{0}")]
    Definition(String),
    /// Another process drives this deployconfig, or its lock cannot be taken.
    #[error("{0}")]
    Locked(String),
    /// The saved run state is damaged or missing.
    #[error("{0}")]
    State(String),
    /// The run cannot go on as asked; the message says what to do instead.
    #[error("{0}")]
    Refused(String),
    /// The deployconfig's pipeline file is not the one the operator accepted.
    #[error("{file} is not accepted: a stage container can write the deployconfig, so stage2-tui uses a pipeline file only once you have reviewed it. What it changes against the built-in pipeline:{}\nReview it, then accept it with `{command}` (or remove the file to use the built-in pipeline).", if changes.is_empty() { "\n  no difference".to_string() } else { changes.iter().map(|c| format!("\n  {c}")).collect::<String>() })]
    NotAccepted {
        /// The file.
        file: String,
        /// What it changes, one line each.
        changes: Vec<String>,
        /// The command that accepts it.
        command: String,
        /// SHA-256 of the bytes reviewed.
        digest: String,
    },
    /// A host step or a wait failed; the message says why.
    #[error("{0}")]
    Step(String),
}

impl PipelineError {
    /// True when the engine went away (the step keeps running there: hold, then reattach).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, PipelineError::Engine(e) if e.is_unreachable())
    }
    /// True when a disk filled up (the engine's, a step log's, or the run state's).
    pub fn is_disk_full(&self) -> bool {
        let full = |e: &std::io::Error| {
            matches!(
                e.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        };
        match self {
            PipelineError::Engine(e) => e.is_disk_full(),
            PipelineError::Io { source, .. } | PipelineError::Log(source) => full(source),
            _ => false,
        }
    }
}

/// Why driving ended with no outcome (it could not start, or an error stopped it), as it
/// travels to the TUI and every attached terminal: its kind, and its message (secrets masked).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RunError {
    /// What kind of trouble.
    pub kind: RunErrorKind,
    /// What happened and what to do.
    pub message: String,
}

/// The kinds of [`RunError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunErrorKind {
    /// The engine went away.
    EngineUnreachable,
    /// A disk filled up.
    DiskFull,
    /// Another process drives this deployconfig.
    Locked,
    /// The pipeline file is not the accepted one, or is wrong.
    Pipeline,
    /// config.json or secrets.json cannot be used.
    Config,
    /// The saved run state is damaged.
    State,
    /// The run cannot go on as asked.
    Refused,
    /// Anything else (the engine said no, a file could not be written).
    Other,
}

impl From<&PipelineError> for RunError {
    fn from(e: &PipelineError) -> Self {
        let kind = if e.is_unreachable() {
            RunErrorKind::EngineUnreachable
        } else if e.is_disk_full() {
            RunErrorKind::DiskFull
        } else {
            match e {
                PipelineError::Locked(_) => RunErrorKind::Locked,
                PipelineError::NotAccepted { .. } | PipelineError::Definition(_) => {
                    RunErrorKind::Pipeline
                }
                PipelineError::Config(_) => RunErrorKind::Config,
                PipelineError::State(_) => RunErrorKind::State,
                PipelineError::Refused(_) => RunErrorKind::Refused,
                PipelineError::Engine(_)
                | PipelineError::Io { .. }
                | PipelineError::Log(_)
                | PipelineError::Step(_) => RunErrorKind::Other,
            }
        };
        RunError {
            kind,
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_that_went_away_is_told_from_a_missing_image_or_a_name_clash() {
        let gone = PipelineError::from(EngineError::Unreachable {
            context: "waiting".into(),
            detail: "connection refused".into(),
        });
        let missing = PipelineError::from(EngineError::MissingImage {
            image: "r/4.run-installer:1".into(),
        });
        let clash = PipelineError::from(EngineError::NameInUse {
            name: "ign-webserver".into(),
        });
        assert!(gone.is_unreachable());
        assert!(!missing.is_unreachable() && !clash.is_unreachable());
        assert!(matches!(
            missing,
            PipelineError::Engine(EngineError::MissingImage { .. })
        ));
        assert!(matches!(
            clash,
            PipelineError::Engine(EngineError::NameInUse { .. })
        ));
        // The message still says what to do.
        assert!(
            clash.to_string().contains("podman stop ign-webserver"),
            "{clash}"
        );
    }
}
