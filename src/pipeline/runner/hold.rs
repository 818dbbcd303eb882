//! Holding a step while something outside it is wrong (the engine unreachable, the log's disk
//! full): the step keeps running in the engine; the runner waits, says so, and reattaches.

use super::*;
use crate::pipeline::error::PipelineError;

impl Runner {
    /// Waits out an engine that went away or a full disk, keeping windows and commands live.
    /// Says so at once (a banner), then every 30 s. `Ok(true)`: the operator detached.
    pub(super) async fn hold(
        &mut self,
        step: &str,
        why: StepFail,
        cmds: &mut UnboundedReceiver<Command>,
        requested: &mut Option<StepStatus>,
    ) -> Result<bool, PipelineError> {
        let state_dir = self.dc.state_dir();
        let unreachable = |e: &dyn std::fmt::Display| {
            format!(
                "engine unreachable, retrying ({e}). {step} keeps running in the engine; stage2-tui reattaches when the engine answers"
            )
        };
        let (banner, disk) = match &why {
            StepFail::DiskFull(e) => (
                format!(
                    "disk full: the filesystem of {} has no space left ({e}). {step} keeps running in the engine; free some space and its log is completed from the engine",
                    state_dir.display()
                ),
                true,
            ),
            StepFail::Unreachable(e) => (unreachable(e), false),
            StepFail::Error(e) => (unreachable(e), false),
        };
        self.emit(Event::Trouble(Some(banner.clone())));
        self.emit(Event::Note(banner));
        let since = std::time::Instant::now();
        let mut last_note = since;
        let mut delay = std::time::Duration::from_millis(500);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {
                    let ok = if disk {
                        free_bytes(&state_dir).is_some_and(|b| b >= 1 << 20)
                    } else {
                        self.engine.ping().await
                    };
                    if ok {
                        self.emit(Event::Trouble(None));
                        self.emit(Event::Note(format!(
                            "{} after {}; reattaching to {step}",
                            if disk { "disk space is back" } else { "the engine answers again" },
                            crate::text::duration(since.elapsed())
                        )));
                        return Ok(false);
                    }
                    delay = (delay * 2).min(std::time::Duration::from_secs(10));
                    if last_note.elapsed() >= std::time::Duration::from_secs(30) {
                        last_note = std::time::Instant::now();
                        self.emit(Event::Note(format!(
                            "still {} after {}; {step} keeps running in the engine",
                            if disk { "waiting for disk space" } else { "waiting for the engine" },
                            crate::text::duration(since.elapsed())
                        )));
                    }
                }
                Some((s, rep)) = self.win_rx.recv() => self.on_window(&s, rep)?,
                c = cmds.recv() => match c {
                    Some(Command::Detach) | None => return Ok(true),
                    Some(c @ (Command::Stop | Command::Skip)) => {
                        *requested = Some(if c == Command::Stop { StepStatus::Stopped } else { StepStatus::Skipped });
                        self.emit(Event::Note(format!("{step}: the stop is sent once the engine answers")));
                    }
                    Some(c @ (Command::ExtendWindow { .. } | Command::EndWindow { .. })) => self.window_command(c),
                },
            }
        }
    }
}

/// Free bytes for unprivileged users on the filesystem holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: zeroed statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and buffer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}
