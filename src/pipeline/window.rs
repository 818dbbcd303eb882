//! A service step's time window (the ign-webserver): keeps its log, ends it on time.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::engine::Engine;
use crate::engine::logs::{CaptureMode, LiveFn};

/// Operator controls for an open window.
#[derive(Debug, Clone, Copy)]
pub enum WindowCtl {
    /// Add seconds to the window.
    Extend(u64),
    /// Stop the service now.
    End,
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
    /// The service exited on its own before its window ended.
    Died {
        /// Its exit code.
        exit_code: Option<i64>,
        /// Error text.
        error: String,
    },
}

/// Runs until the service container is gone; reports on `report` tagged with the step id.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    engine: Engine,
    step: String,
    container_id: String,
    log: PathBuf,
    live: LiveFn,
    mut ends_at: DateTime<Utc>,
    mut ctl: UnboundedReceiver<WindowCtl>,
    report: UnboundedSender<(String, WindowReport)>,
) {
    let capture = engine.capture(&container_id, &log, Some(live), CaptureMode::Auto);
    tokio::pin!(capture);
    let mut closing: Option<String> = None;
    let result = loop {
        let left = (ends_at - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            r = &mut capture => break r,
            _ = tokio::time::sleep(left), if closing.is_none() => {
                closing = Some("window ended".into());
                let _ = engine.stop(&container_id, 10).await;
            }
            c = ctl.recv(), if closing.is_none() => match c {
                Some(WindowCtl::Extend(secs)) => {
                    ends_at = ends_at.max(Utc::now()) + chrono::Duration::seconds(secs as i64);
                    let _ = report.send((step.clone(), WindowReport::Extended(ends_at)));
                }
                Some(WindowCtl::End) => {
                    closing = Some("ended early by the operator".into());
                    let _ = engine.stop(&container_id, 10).await;
                }
                // The runner went away (detach): leave the service to the next runner.
                None => return,
            },
        }
    };
    let msg = match (closing, result) {
        (Some(reason), _) => {
            let _ = engine.remove(&container_id, true).await;
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
    let _ = report.send((step, msg));
}
