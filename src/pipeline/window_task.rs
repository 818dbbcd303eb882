//! A service step's time window (the ign-webserver): keeps its log, ends it on time.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::engine::Engine;
use crate::engine::logs::CaptureMode;
use crate::logformat::Live;

/// Operator controls for an open window.
#[derive(Debug, Clone)]
pub enum WindowCtl {
    /// Add seconds to the window.
    Extend(u64),
    /// Stop the service now.
    End,
    /// The anchor step succeeded: the window now ends at this time (at most the hard end).
    Anchor(DateTime<Utc>),
    /// Stop the service now, for this reason.
    Close(String),
}

/// A window's times.
#[derive(Debug, Clone)]
pub struct Times {
    /// When it closes (while waiting for its anchor: the hard end).
    pub ends_at: DateTime<Utc>,
    /// The engine's own limit: extensions and anchors stop there.
    pub hard_end: DateTime<Utc>,
    /// The step whose success starts the countdown, while it has not succeeded.
    pub waiting_for: Option<String>,
}

/// What a window task reports back to the runner.
#[derive(Debug, Clone)]
pub enum WindowReport {
    /// The window now ends at this time.
    Extended(DateTime<Utc>),
    /// The service was stopped and removed, as planned or on request.
    Closed {
        /// Why it closed.
        reason: String,
    },
    /// Something the operator should know (a failed stop, the engine away).
    Note(String),
    /// The service exited on its own before its window ended.
    Died {
        /// Its exit code.
        exit_code: Option<i64>,
        /// Error text.
        error: String,
    },
}

/// Runs until the service container is gone; reports on `report` tagged with the step id.
///
/// The engine going away is not the service dying: the capture is redone once the engine
/// answers, and a stop that did not go through is retried every 5 s (and reported) while the
/// controls stay live. The hard end is the engine's own run limit: extensions stop there.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    engine: Engine,
    step: String,
    container_id: String,
    log: PathBuf,
    mut live: impl FnMut() -> Live,
    times: Times,
    mut ctl: UnboundedReceiver<WindowCtl>,
    report: UnboundedSender<(String, WindowReport)>,
) {
    let mut w = Watch {
        engine,
        step,
        id: container_id,
        ends_at: times.ends_at,
        hard_end: times.hard_end,
        waiting_for: times.waiting_for,
        closing: None,
        stopped: true,
        report,
    };
    let (engine, id) = (w.engine.clone(), w.id.clone());
    let msg = loop {
        let capture = engine.capture(&id, &log, Some(live()), CaptureMode::Auto);
        tokio::pin!(capture);
        let result = loop {
            let left = (w.ends_at - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                r = &mut capture => break r,
                _ = tokio::time::sleep(left), if w.closing.is_none() => w.close("window ended".into()),
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)), if !w.stopped => {}
                c = ctl.recv(), if w.closing.is_none() => match c {
                    Some(c) => w.on_ctl(c),
                    // The runner went away (detach): leave the service to the next runner; the
                    // window guard and the engine's limit still end it on time.
                    None => return,
                },
            }
            w.stop_if_due().await;
        };
        match result {
            Err(e) if e.is_unreachable() => {
                if !w.wait_for_engine(&e, &ctl).await {
                    return;
                }
            }
            r => match w.outcome(r, &ctl).await {
                Some(m) => break m,
                None => return,
            },
        }
    };
    let _ = w.report.send((w.step, msg));
}

/// A window being watched.
struct Watch {
    engine: Engine,
    step: String,
    /// The service's container.
    id: String,
    ends_at: DateTime<Utc>,
    hard_end: DateTime<Utc>,
    waiting_for: Option<String>,
    /// Why it is being closed, once it is.
    closing: Option<String>,
    /// The stop went through (or nothing to stop yet).
    stopped: bool,
    report: UnboundedSender<(String, WindowReport)>,
}

impl Watch {
    fn say(&self, m: String) {
        let _ = self.report.send((self.step.clone(), WindowReport::Note(m)));
    }

    fn extended(&self) {
        let _ = self
            .report
            .send((self.step.clone(), WindowReport::Extended(self.ends_at)));
    }

    /// Closes the window for `why`: the service is stopped (until that goes through).
    fn close(&mut self, why: String) {
        self.closing = Some(why);
        self.stopped = false;
    }

    /// A control from the operator or the runner.
    fn on_ctl(&mut self, c: WindowCtl) {
        match c {
            WindowCtl::Extend(_) if self.waiting_for.is_some() => self.say(format!(
                "the window has not started: it starts when {} succeeds",
                self.waiting_for.as_deref().unwrap_or_default()
            )),
            WindowCtl::Anchor(t) => {
                self.waiting_for = None;
                self.ends_at = t.min(self.hard_end);
                self.extended();
            }
            WindowCtl::Extend(secs) => {
                // Any number a request carries: bounded (7 days) and added without overflow, so a
                // huge one cannot wrap round or panic.
                let secs = secs.min(crate::pipeline::spec::MAX_SECS) as i64;
                let want = self
                    .ends_at
                    .max(Utc::now())
                    .checked_add_signed(chrono::Duration::seconds(secs))
                    .unwrap_or(self.hard_end);
                if want > self.hard_end {
                    self.say(format!(
                        "the window cannot go past {} (the engine's own limit for this service, ttl_secs + max_extend_secs)",
                        self.hard_end.with_timezone(&chrono::Local).format("%H:%M:%S")
                    ));
                }
                self.ends_at = want.min(self.hard_end);
                self.extended();
            }
            WindowCtl::End => self.close("ended early by the operator".into()),
            WindowCtl::Close(why) => self.close(why),
        }
    }

    /// Stops the service when a stop is due and has not gone through.
    async fn stop_if_due(&mut self) {
        if self.stopped {
            return;
        }
        match self.engine.stop(&self.id, 10).await {
            Ok(()) => self.stopped = true,
            Err(e) => self.say(format!(
                "stopping the service failed ({e}); retrying every 5 s"
            )),
        }
    }

    /// The engine went away: waits until it answers (the window still closes on time). False
    /// when the runner went away meanwhile.
    async fn wait_for_engine(
        &mut self,
        e: &crate::engine::EngineError,
        ctl: &UnboundedReceiver<WindowCtl>,
    ) -> bool {
        self.say(format!(
            "engine unreachable ({e}); the window is kept and the service reattached when the engine answers"
        ));
        while !self.engine.ping().await {
            if ctl.is_closed() {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            if self.closing.is_none() && Utc::now() >= self.ends_at {
                self.close("window ended".into());
            }
        }
        self.say("the engine answers again; the window goes on".into());
        if !self.stopped && self.engine.stop(&self.id, 10).await.is_ok() {
            self.stopped = true;
        }
        true
    }

    /// The service's container ended: closed as planned (removed), or died before its time.
    /// `None` when the runner went away while the removal was retried.
    async fn outcome(
        &self,
        r: crate::engine::Result<crate::engine::logs::Capture>,
        ctl: &UnboundedReceiver<WindowCtl>,
    ) -> Option<WindowReport> {
        // Ended by us, by the window guard, or by the engine's limit at the window's end.
        let on_time = Utc::now() + chrono::Duration::seconds(2) >= self.ends_at;
        let reason = self
            .closing
            .clone()
            .or_else(|| on_time.then(|| "window ended".to_string()));
        Some(match (reason, r) {
            (Some(reason), _) => {
                let mut tries = 0;
                while let Err(e) = self.engine.remove(&self.id, true).await {
                    tries += 1;
                    if tries == 1 {
                        self.say(format!("removing the service failed ({e}); retrying"));
                    }
                    if ctl.is_closed() {
                        return None;
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                }
                WindowReport::Closed { reason }
            }
            (None, Ok(c)) => WindowReport::Died {
                exit_code: Some(c.exit_code),
                error: format!(
                    "the service exited with code {} before its window ended",
                    c.exit_code
                ),
            },
            (None, Err(e)) => WindowReport::Died {
                exit_code: None,
                error: format!("lost the service: {e}"),
            },
        })
    }
}
