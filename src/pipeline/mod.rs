//! Steps, their state machine, persistence of run state, reattach, and log files.
//!
//! No terminal code lives here: the headless runner and the TUI both drive a [`Runner`] through
//! [`Command`]s and watch its [`Event`]s.

pub mod accept;
pub mod cluster;
pub mod contract;
pub mod diagnosis;
pub mod error;
pub mod guard;
mod host;
mod lock;
mod runner;
pub mod spec;
pub mod state;
mod window_task;

pub use error::{PipelineError, RunError, RunErrorKind};
pub use lock::RunLock;
pub use runner::{Command, Event, Finish, Plan, Runner};
pub use spec::{Kind, Pipeline};
pub use state::{Outcome, RunState, StepStatus};
