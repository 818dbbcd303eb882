//! What the setup flow and the TUI loop say to each other: the background tasks it asks for,
//! their answers, and where saving stands.

use std::path::PathBuf;

use super::JsonFile;
use crate::check::Check;

/// Background results the setup flow waits for.
#[derive(Debug, Clone)]
pub enum SetupMsg {
    /// Pre-flight results.
    Checks(Vec<Check>),
    /// `openshift-install version` of the embedded binary and of the override.
    Versions {
        /// Embedded binary.
        embedded: Result<String, TaskError>,
        /// The override, when present.
        overridden: Option<Result<String, TaskError>>,
    },
    /// Local tags of the installer image, with the stages present for each.
    Tags(Result<Vec<TagInfo>, TaskError>),
    /// A pull status line.
    PullProgress(String),
    /// `version` of an openshift-install to copy in.
    Candidate(Result<String, TaskError>),
    /// The checked candidate was copied in as the override (what was done), or not (why).
    Adopted(Result<String, TaskError>),
    /// The pull ended.
    PullDone(Result<String, PullFailure>),
    /// A file operation ended.
    File(FileDone),
    /// The files were read again.
    Reloaded(Box<Reloaded>),
    /// Something to tell the operator (a background job that stopped).
    Note(String),
}

/// Why a setup task gave no answer, as the operator reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// The engine could not do it (unreachable, image missing, refused).
    #[error("{0}")]
    Engine(String),
    /// The program ran and failed.
    #[error("exit {code}: {output}")]
    Exited {
        /// Its exit code.
        code: i64,
        /// What it printed.
        output: String,
    },
    /// A file could not be read, copied or written.
    #[error("{0}")]
    File(String),
}

impl From<crate::engine::EngineError> for TaskError {
    fn from(e: crate::engine::EngineError) -> Self {
        TaskError::Engine(e.to_string())
    }
}

/// Why a pull from the setup flow failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullFailure {
    /// The image and the engine's message.
    pub message: String,
    /// The registry's certificate was not trusted (`T` pulls without checking it).
    pub tls: bool,
}

/// What the setup flow asks the loop to do in the background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupTask {
    /// Run the pre-flight checks.
    Checks,
    /// Ask both installers for their version.
    Versions,
    /// List local tags.
    Tags,
    /// Pull every stage image of this tag.
    Pull(String),
    /// Copy this openshift-install aside (to the private state folder) and run its `version`.
    CheckCandidate(PathBuf),
    /// Copy the checked candidate in as the override (from where the operator named).
    AdoptCandidate(String),
    /// Change a file of the deployconfig (off the update; the answer says what was done).
    File(FileOp),
    /// Read config.json and secrets.json again from disk (dropping unsaved edits).
    Reload,
}

/// Both files read again from disk, and what the installer files look like.
#[derive(Clone)]
pub struct Reloaded {
    /// config.json.
    pub config: JsonFile,
    /// secrets.json.
    pub secrets: JsonFile,
    /// An override is there.
    pub override_present: bool,
    /// One is set aside.
    pub override_aside: bool,
}

impl std::fmt::Debug for Reloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The files' text holds secrets: not shown.
        f.write_str("Reloaded { .. }")
    }
}

/// A change to a file of the deployconfig that the setup flow asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    /// Move the override aside (reversibly): the embedded installer is used. `back` names the
    /// key that brings it back.
    SetAside {
        /// The key that brings it back.
        back: String,
    },
    /// Bring the moved-aside override back.
    PutBack,
    /// Make the deployconfig's key private (chmod 600); `what` says the fix.
    KeyPrivate(String),
    /// Remove a checked candidate nobody wanted.
    DropCandidate(PathBuf),
}

/// What a file operation did, and what the installer files look like after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDone {
    /// What to tell the operator (`None`: nothing to say).
    pub said: Option<String>,
    /// An override is there.
    pub override_present: bool,
    /// One is set aside.
    pub override_aside: bool,
    /// What to do next (the versions again after a move, the checks after a fix).
    pub then: Option<SetupTask>,
}

/// `openshift-install version` outputs: the embedded binary, and the override if present.
pub type Versions = (Result<String, TaskError>, Option<Result<String, TaskError>>);

/// A local tag: (tag, stage images present, stage images in all).
pub type TagInfo = (String, usize, usize);

/// What a save is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterSave {
    /// Only saving (`w`).
    Nothing,
    /// Saving, then starting the run with this plan (Start), saying `what` it does.
    Start {
        /// The plan.
        plan: crate::pipeline::Plan,
        /// What it does, for the status line.
        what: String,
    },
}

/// A save asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveRequest {
    /// Write over a file that changed on disk.
    pub overwrite: bool,
    /// What follows.
    pub after: AfterSave,
}

/// Where saving stands: one save at a time, and a conflict remembered with what it was for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Saving {
    /// Nothing asked.
    #[default]
    Idle,
    /// Asked for and not started yet (the loop writes the files off the update).
    Asked(SaveRequest),
    /// Being written; what follows it.
    Writing(AfterSave),
    /// The last save found a file changed on disk: what it was for (an overwrite does that, no
    /// more).
    Conflict(AfterSave),
}

/// Why a save did not write everything: the message, and whether a file changed on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveFailed {
    /// What to tell the operator.
    pub message: String,
    /// A file changed on disk since it was loaded (an overwrite can save over it).
    pub conflict: bool,
}
