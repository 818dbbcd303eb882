//! Service windows (the ign-webserver): opening, reattaching, extending, closing.

use crate::pipeline::error::PipelineError;
use std::path::PathBuf;

use chrono::Utc;
use tokio::sync::mpsc::{self, UnboundedReceiver};

use super::*;

impl Runner {
    /// True while a service window is open.
    pub fn has_windows(&self) -> bool {
        !self.windows.is_empty()
    }

    /// When no run is being driven (it halted): keeps open service windows on time and obeys
    /// their commands. Returns when none is left; `Ok(true)` if told to detach.
    pub async fn serve_windows(
        &mut self,
        cmds: &mut UnboundedReceiver<Command>,
    ) -> Result<bool, PipelineError> {
        self.serve_windows_until_closed(cmds, false).await
    }

    /// Keeps the open windows on time and obeys their commands until none is left; `Ok(true)`
    /// when told to detach. With `stop_ends`, Stop and Skip end every window.
    pub(super) async fn serve_windows_until_closed(
        &mut self,
        cmds: &mut UnboundedReceiver<Command>,
        stop_ends: bool,
    ) -> Result<bool, PipelineError> {
        while !self.windows.is_empty() {
            tokio::select! {
                Some((step, rep)) = self.win_rx.recv() => self.on_window(&step, rep)?,
                c = cmds.recv() => match c {
                    Some(Command::Detach) | None => return Ok(true),
                    Some(c @ (Command::ExtendWindow { .. } | Command::EndWindow { .. })) => self.window_command(c),
                    Some(Command::Stop | Command::Skip) if stop_ends => {
                        for tx in self.windows.values() {
                            let _ = tx.send(WindowCtl::End);
                        }
                    }
                    Some(Command::Stop | Command::Skip) => {}
                },
            }
        }
        Ok(false)
    }

    /// The anchor a service's window still waits for (`window_starts_after` not succeeded yet).
    pub(super) fn anchor_pending(&mut self, w: &Window) -> Result<Option<String>, PipelineError> {
        let Some(anchor) = &w.starts_after else {
            return Ok(None);
        };
        let done = self
            .st()?
            .step(anchor)
            .is_some_and(|s| s.status == StepStatus::Succeeded);
        Ok((!done).then(|| anchor.clone()))
    }

    /// `anchor` succeeded: the windows that waited for it (or counted from an earlier success of
    /// it, before a retry) count their `ttl_secs` from now.
    pub(super) fn start_anchored_windows(&mut self, anchor: &str) -> Result<(), PipelineError> {
        let services: Vec<(String, u64)> = self
            .pipeline
            .steps
            .iter()
            .filter(|s| self.windows.contains_key(&s.id))
            .filter_map(|s| {
                let w = s.window()?;
                (w.starts_after.as_deref() == Some(anchor)).then(|| (s.id.clone(), w.ttl_secs))
            })
            .collect();
        for (id, ttl) in services {
            let ends_at = Utc::now() + chrono::Duration::seconds(ttl as i64);
            // Both at once: a reader (the window guard, status --json) never sees a counting
            // window that still ends at the engine's limit.
            // While it waited, its end was the engine's own limit: the countdown stays under it
            // (the window's task bounds a re-anchored one the same way and reports the end).
            let mut ends_at = ends_at;
            if let Some(st) = self.st()?.step_mut(&id) {
                if st.window_waiting_for.take().is_some()
                    && let Some(limit) = st.window_ends_at
                {
                    ends_at = ends_at.min(limit);
                }
                st.window_ends_at = Some(ends_at);
            }
            self.save()?;
            self.emit(Event::Note(format!(
                "{}: {anchor} succeeded, so the bootstrap VM can boot: the {} starts now (it closes at {})",
                id,
                crate::text::window_words(ttl),
                ends_at.with_timezone(&chrono::Local).format("%H:%M:%S")
            )));
            self.window_ctl(&id, WindowCtl::Anchor(ends_at));
        }
        Ok(())
    }

    /// Ends the windows still waiting for their anchor (a headless run that halted before it:
    /// nothing will make the bootstrap VM, and no one is left to retry). A retry of the anchor
    /// starts the web server again. Returns how many it ended.
    pub fn end_waiting_windows(&mut self) -> usize {
        let waiting: Vec<(String, String)> = self
            .state
            .as_ref()
            .map(|st| {
                st.steps
                    .iter()
                    .filter(|s| self.windows.contains_key(&s.id))
                    .filter_map(|s| Some((s.id.clone(), s.window_waiting_for.clone()?)))
                    .collect()
            })
            .unwrap_or_default();
        for (step, anchor) in &waiting {
            self.window_ctl(
                step,
                WindowCtl::Close(format!(
                    "the run halted before {anchor} made the bootstrap VM, so nothing will fetch bootstrap.ign; retrying {anchor} starts the web server again"
                )),
            );
        }
        waiting.len()
    }

    /// +5 min or End window, from whichever loop received it.
    pub(super) fn window_command(&self, c: Command) {
        match c {
            Command::ExtendWindow { step, secs } => self.window_ctl(&step, WindowCtl::Extend(secs)),
            Command::EndWindow { step } => self.window_ctl(&step, WindowCtl::End),
            _ => {}
        }
    }

    pub(super) fn window_ctl(&self, step: &str, ctl: WindowCtl) {
        match self.windows.get(step) {
            Some(tx) => {
                let _ = tx.send(ctl);
            }
            None => self.emit(Event::Note(format!("{step} has no open window"))),
        }
    }

    pub(super) fn on_window(&mut self, step: &str, rep: WindowReport) -> Result<(), PipelineError> {
        let url = self
            .pipeline
            .steps
            .iter()
            .find(|s| s.id == step)
            .and_then(|s| s.window()?.url.clone());
        let st = self.st()?;
        let Some(s) = st.step_mut(step) else {
            return Ok(());
        };
        let mut finished = None;
        match rep {
            WindowReport::Note(n) => {
                self.emit(Event::Note(format!("{step}: {n}")));
                return Ok(());
            }
            WindowReport::Extended(t) => {
                s.window_ends_at = Some(t);
                let waiting_for = s.window_waiting_for.clone();
                self.save()?;
                self.emit(Event::Window {
                    step: step.into(),
                    url,
                    ends_at: t,
                    waiting_for,
                });
                return Ok(());
            }
            WindowReport::Closed { reason } => {
                s.status = StepStatus::Succeeded;
                s.window_ends_at = None;
                s.window_waiting_for = None;
                self.windows.remove(step);
                self.emit(Event::Note(format!(
                    "{step}: {reason}; service stopped and removed"
                )));
                let st = self.st()?;
                if let Some(s) = st.step_mut(step)
                    && let Some(a) = s.attempts.last_mut()
                {
                    a.finished_at = Some(Utc::now());
                    finished = Some((StepStatus::Succeeded, None, a.duration()));
                }
            }
            WindowReport::Died { exit_code, error } => {
                s.status = StepStatus::Failed;
                s.window_ends_at = None;
                s.window_waiting_for = None;
                if let Some(a) = s.attempts.last_mut() {
                    a.finished_at = Some(Utc::now());
                    a.exit_code = exit_code;
                    a.error = Some(error.clone());
                    finished = Some((StepStatus::Failed, Some(error.clone()), a.duration()));
                }
                self.windows.remove(step);
                self.halt = Some(Finish::Failed {
                    step: step.into(),
                    error,
                });
            }
        }
        self.save()?;
        if let Some((status, error, d)) = finished {
            let exit_code = self
                .state
                .as_ref()
                .and_then(|st| st.step(step))
                .and_then(|s| s.last())
                .and_then(|a| a.exit_code);
            self.emit(Event::StepFinished {
                step: step.into(),
                status,
                exit_code,
                duration: d.and_then(|d| d.to_std().ok()).unwrap_or_default(),
                error,
            });
        }
        Ok(())
    }

    pub(super) fn open_window(
        &mut self,
        i: usize,
        w: &Window,
        cfg: &PipelineConfig,
        id: String,
        log: PathBuf,
        ends_at: chrono::DateTime<Utc>,
    ) -> Result<(), PipelineError> {
        let step_id = self.pipeline.steps[i].id.clone();
        let st = self.st()?;
        st.steps[i].status = StepStatus::Serving;
        st.steps[i].window_ends_at = Some(ends_at);
        let waiting_for = st.steps[i].window_waiting_for.clone();
        self.save()?;
        let url = w.url.as_ref().map(|u| self.expand(u, cfg));
        self.emit(Event::Window {
            step: step_id.clone(),
            url,
            ends_at,
            waiting_for: waiting_for.clone(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        self.windows.insert(step_id.clone(), tx);
        let started = self.st()?.steps[i]
            .last()
            .map(|a| a.started_at)
            .unwrap_or_else(Utc::now);
        let hard_end = started + chrono::Duration::seconds(w.serve_limit_secs() as i64);
        let this = self.live_factory(&step_id);
        tokio::spawn(window_task::run(
            self.engine.clone(),
            step_id.clone(),
            id.clone(),
            log,
            this,
            window_task::Times {
                ends_at,
                hard_end,
                waiting_for,
            },
            rx,
            self.win_tx.clone(),
        ));
        self.spawn_guard(&step_id, &id, hard_end);
        Ok(())
    }

    /// A service was serving when we last left: pick its window up again.
    pub(super) async fn reopen_window(
        &mut self,
        i: usize,
        cfg: &PipelineConfig,
    ) -> Result<(), PipelineError> {
        let step = self.pipeline.steps[i].clone();
        let Work::Service(c, w) = &step.work else {
            return Ok(());
        };
        // Already watched by this runner (a retry after a halt, in the same process): a second
        // watcher would take the first one's stop for the service dying.
        if self.windows.contains_key(&step.id) {
            return Ok(());
        }
        let Some(a) = self.st()?.steps[i].last().cloned() else {
            return Ok(());
        };
        let ends_at = self.st()?.steps[i].window_ends_at.unwrap_or_else(Utc::now);
        let found = self.find_container(&step.id, a.n).await?;
        let running = match &found {
            Some(id) => self.engine.inspect(id).await?.is_some_and(|s| s.running),
            None => false,
        };
        match found {
            Some(id) if running => {
                self.emit(Event::Note(format!(
                    "{}: reattached to {}; its window continues",
                    step.id, c.name
                )));
                self.open_window(i, w, cfg, id, self.dc.state_dir().join(&a.log), ends_at)
            }
            other => {
                if let Some(id) = other {
                    let _ = self.engine.remove(&id, true).await;
                }
                let ok = ends_at <= Utc::now();
                let rep = if ok {
                    WindowReport::Closed {
                        reason: "window ended while stage2-tui was away".into(),
                    }
                } else {
                    WindowReport::Died {
                        exit_code: None,
                        error: format!("{} stopped before its window ended", c.name),
                    }
                };
                self.on_window(&step.id, rep)
            }
        }
    }

    /// Starts the window guard: a detached `stage2-tui window-guard` that stops the service at the
    /// end of its window even when no runner is left (the TUI quit, headless was stopped). It
    /// follows extensions through the state file; one guard per service (a lock file).
    fn spawn_guard(&self, step: &str, container: &str, hard_end: chrono::DateTime<Utc>) {
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        // Only the real binary (not a test harness that links the library).
        if !exe
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("stage2-tui"))
        {
            return;
        }
        let state_dir = self.dc.state_dir();
        let stderr = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(state_dir.join("window-guard.log"))
        }
        .map(std::process::Stdio::from)
        .unwrap_or_else(|_| std::process::Stdio::null());
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("window-guard")
            .arg("--state-dir")
            .arg(&state_dir)
            .args(["--step", step, "--container", container])
            .arg("--hard-end")
            .arg(hard_end.to_rfc3339())
            .arg("--engine")
            .arg(&self.engine.info().endpoint)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr);
        // Its own session: a hang-up of the operator's terminal does not reach it.
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::setsid();
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(mut child) => {
                std::thread::spawn(move || child.wait());
            }
            Err(e) => self.emit(Event::Note(format!(
                "{step}: cannot start the window guard ({e}); the engine's own limit still ends the service"
            ))),
        }
    }
}
