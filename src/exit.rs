//! Exit codes, in one place: what scripts, the systemd unit and the README rely on.

/// Success: the run completed (or a command did what it was asked).
pub const OK: i32 = 0;
/// A step failed or was stopped; `check` found errors.
pub const FAILED: i32 = 1;
/// stage2-tui could not start (the message says why); `status --json`: no run yet.
pub const CANNOT_START: i32 = 2;
/// Detached (Ctrl-C, SIGTERM, SIGHUP or quit while a step runs): the run goes on in the engine.
pub const DETACHED: i32 = 130;
