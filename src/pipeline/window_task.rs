//! A service step's time window (the ign-webserver): keeps its log, ends it on time.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::engine::Engine;
use crate::engine::logs::CaptureMode;
use crate::logformat::LiveFn;

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
    mut live: impl FnMut() -> LiveFn,
    times: Times,
    mut ctl: UnboundedReceiver<WindowCtl>,
    report: UnboundedSender<(String, WindowReport)>,
) {
    let Times {
        mut ends_at,
        hard_end,
        mut waiting_for,
    } = times;
    let say = |m: String| {
        let _ = report.send((step.clone(), WindowReport::Note(m)));
    };
    let mut closing: Option<String> = None;
    // The stop went through (or nothing to stop yet).
    let mut stopped = true;
    let try_stop = |engine: &Engine, id: &str| {
        let engine = engine.clone();
        let id = id.to_string();
        async move { engine.stop(&id, 10).await }
    };
    let msg = loop {
        let capture = engine.capture(&container_id, &log, Some(live()), CaptureMode::Auto);
        tokio::pin!(capture);
        let result = loop {
            let left = (ends_at - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                r = &mut capture => break r,
                _ = tokio::time::sleep(left), if closing.is_none() => {
                    closing = Some("window ended".into());
                    stopped = false;
                }
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)), if !stopped => {}
                c = ctl.recv(), if closing.is_none() => match c {
                    Some(WindowCtl::Extend(_)) if waiting_for.is_some() => say(format!(
                        "the window has not started: it starts when {} succeeds",
                        waiting_for.as_deref().unwrap_or_default()
                    )),
                    Some(WindowCtl::Anchor(t)) => {
                        waiting_for = None;
                        ends_at = t.min(hard_end);
                        let _ = report.send((step.clone(), WindowReport::Extended(ends_at)));
                    }
                    Some(WindowCtl::Extend(secs)) => {
                        // Any number a request carries: bounded (7 days) and added without
                        // overflow, so a huge one cannot wrap round or panic.
                        let secs = secs.min(crate::pipeline::spec::MAX_SECS) as i64;
                        let want = ends_at
                            .max(Utc::now())
                            .checked_add_signed(chrono::Duration::seconds(secs))
                            .unwrap_or(hard_end);
                        if want > hard_end {
                            say(format!(
                                "the window cannot go past {} (the engine's own limit for this service, ttl_secs + max_extend_secs)",
                                hard_end.with_timezone(&chrono::Local).format("%H:%M:%S")
                            ));
                        }
                        ends_at = want.min(hard_end);
                        let _ = report.send((step.clone(), WindowReport::Extended(ends_at)));
                    }
                    Some(WindowCtl::End) => {
                        closing = Some("ended early by the operator".into());
                        stopped = false;
                    }
                    Some(WindowCtl::Close(why)) => {
                        closing = Some(why);
                        stopped = false;
                    }
                    // The runner went away (detach): leave the service to the next runner; the
                    // window guard and the engine's limit still end it on time.
                    None => return,
                },
            }
            if !stopped {
                match try_stop(&engine, &container_id).await {
                    Ok(()) => stopped = true,
                    Err(e) => say(format!(
                        "stopping the service failed ({e}); retrying every 5 s"
                    )),
                }
            }
        };
        match result {
            Err(e) if e.is_unreachable() => {
                say(format!(
                    "engine unreachable ({e}); the window is kept and the service reattached when the engine answers"
                ));
                while !engine.ping().await {
                    if ctl.is_closed() {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    if closing.is_none() && Utc::now() >= ends_at {
                        closing = Some("window ended".into());
                        stopped = false;
                    }
                }
                say("the engine answers again; the window goes on".into());
                if !stopped && try_stop(&engine, &container_id).await.is_ok() {
                    stopped = true;
                }
                continue;
            }
            r => {
                // Ended by us, by the window guard, or by the engine's limit at the window's end.
                let on_time = Utc::now() + chrono::Duration::seconds(2) >= ends_at;
                let reason = closing
                    .clone()
                    .or_else(|| on_time.then(|| "window ended".to_string()));
                break match (reason, r) {
                    (Some(reason), _) => {
                        let mut tries = 0;
                        while let Err(e) = engine.remove(&container_id, true).await {
                            tries += 1;
                            if tries == 1 {
                                say(format!("removing the service failed ({e}); retrying"));
                            }
                            if ctl.is_closed() {
                                return;
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
                };
            }
        }
    };
    let _ = report.send((step, msg));
}
