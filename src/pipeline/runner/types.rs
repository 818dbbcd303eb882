//! What the runner takes (a [`Plan`], [`Command`]s) and gives ([`Event`]s, a [`Finish`]), and
//! the gate that keeps a slow consumer's lines bounded.

use super::super::state::{RunState, StepStatus};
use crate::logformat::LogLine;
use chrono::Utc;

/// Where a run should start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// Reattach to a run in progress, or start the first run.
    Continue,
    /// Run this step and everything after it again (retry / resume from here).
    From(String),
    /// Start a brand-new run.
    Restart,
}

/// Operator commands while a run is being driven.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Stop the running step (kills its container); the run halts there.
    Stop,
    /// Stop the running step and go on with the next.
    Skip,
    /// Add seconds to a service step's window.
    ExtendWindow {
        /// The service step.
        step: String,
        /// Seconds to add.
        secs: u64,
    },
    /// End a service step's window now.
    EndWindow {
        /// The service step.
        step: String,
    },
    /// Leave; running steps keep running in the engine.
    Detach,
}

/// What the runner reports while it works (also what a driver streams to attached TUIs).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The run is being driven (new, resumed or reattached).
    RunStarted {
        /// Run id.
        run_id: String,
        /// How it started, for display.
        how: String,
    },
    /// A step started (or was reattached).
    StepStarted {
        /// Step id.
        step: String,
        /// Attempt number.
        attempt: u32,
        /// What runs, for display.
        detail: String,
    },
    /// Captured log lines of a step.
    Log {
        /// Step id.
        step: String,
        /// The lines.
        lines: Vec<LogLine>,
    },
    /// A step finished.
    StepFinished {
        /// Step id.
        step: String,
        /// New status.
        status: StepStatus,
        /// Exit code, if any.
        exit_code: Option<i64>,
        /// How long it ran.
        duration: std::time::Duration,
        /// What went wrong.
        error: Option<String>,
    },
    /// A service window opened or changed.
    Window {
        /// Step id.
        step: String,
        /// What it serves.
        url: Option<String>,
        /// When it closes (while it waits for its anchor: the engine's own limit).
        ends_at: chrono::DateTime<Utc>,
        /// The step whose success starts the countdown, while it has not succeeded.
        #[serde(default)]
        waiting_for: Option<String>,
    },
    /// Something the operator should know.
    Note(String),
    /// Something keeps the run from going on by itself (the engine is unreachable, the disk is
    /// full): shown as a banner until `None` clears it. The steps keep running in the engine.
    Trouble(Option<String>),
    /// A fresh copy of the run state after each save.
    State(Box<RunState>),
    /// Driving ended (or could not start: the error says why).
    Finished(Result<Finish, crate::pipeline::error::RunError>),
    /// Who drives the run, for a TUI attached to another process's run (`None`: nobody now;
    /// this TUI can take over).
    Driver(Option<String>),
    /// A fresh look at the cluster (nodes, CSRs, operators), once it can be asked.
    Cluster(Box<crate::pipeline::cluster::Snapshot>),
    /// Events were dropped for this attached terminal (it did not read for a while): it must
    /// re-read its log panes from the files.
    Resync,
}

/// How driving the run ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// Every step succeeded or was skipped.
    Succeeded,
    /// A step failed; the run halted there.
    Failed {
        /// Step id.
        step: String,
        /// What went wrong.
        error: String,
    },
    /// The operator stopped a step.
    Stopped {
        /// Step id.
        step: String,
    },
    /// We detached; these steps keep running in the engine.
    Detached {
        /// Steps still running.
        running: Vec<String>,
    },
    /// The last run already completed; nothing to do.
    AlreadyDone,
}
