//! The window guard (`stage2-tui window-guard`, started by the runner, detached): ends a service
//! window on time when no runner is left to do it.
//!
//! It reads the window's end from the run state (so extensions made by a later runner count),
//! stops the service once it has passed, retrying a stop that fails, and exits when the window is
//! closed by someone else. One guard per service: it holds `guard-<step>.lock`.

use std::fs::{OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;

use super::state::{RunState, StepStatus};
use crate::engine::{ConnectOptions, Engine};

/// Runs the guard; returns the process exit code.
pub async fn run(
    state_dir: &Path,
    step: &str,
    container: &str,
    hard_end: Option<chrono::DateTime<Utc>>,
    endpoint: Option<String>,
) -> i32 {
    let g = Guard {
        step,
        container,
        endpoint,
        engine: None,
        told: false,
    };
    let _lock = match g.lock(state_dir) {
        Ok(Some(l)) => l,
        // Another guard of this step is there.
        Ok(None) => return 0,
        Err(code) => return code,
    };
    g.watch(state_dir, hard_end).await
}

/// A guard's engine connection and what it said.
struct Guard<'a> {
    step: &'a str,
    container: &'a str,
    endpoint: Option<String>,
    engine: Option<Engine>,
    /// A failure was said once (it is retried quietly).
    told: bool,
}

impl Guard<'_> {
    fn say(&self, m: &str) {
        eprintln!(
            "{} window-guard {} ({}): {m}",
            Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.step,
            self.container
        )
    }

    /// This step's guard lock: `None` when another guard holds it; the exit code when it cannot
    /// be taken.
    fn lock(&self, state_dir: &Path) -> Result<Option<std::fs::File>, i32> {
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(state_dir.join(format!("guard-{}.lock", self.step)));
        let lock = match lock {
            Ok(f) => f,
            Err(e) => {
                self.say(&format!("cannot open its lock: {e}"));
                return Err(crate::exit::CANNOT_START);
            }
        };
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => {
                self.say(&format!("cannot lock: {e}"));
                return Err(crate::exit::CANNOT_START);
            }
        }
        Ok(Some(lock))
    }

    /// Watches the window until it is over: stops the service at its end, leaves when the
    /// service or the run is gone. Returns the exit code.
    async fn watch(mut self, state_dir: &Path, hard_end: Option<chrono::DateTime<Utc>>) -> i32 {
        let mut looked = std::time::Instant::now();
        loop {
            // Past the engine's own run limit the service has ended anyway: a guard never
            // retries for ever.
            if hard_end.is_some_and(|h| Utc::now() > h + chrono::Duration::seconds(60)) {
                self.say("the engine's own run limit has ended the service; the guard leaves");
                return 0;
            }
            let st = match RunState::load(state_dir) {
                Ok(Some(st)) => st,
                Ok(None) => return 0,
                Err(e) => {
                    self.say(&e.to_string());
                    return crate::exit::CANNOT_START;
                }
            };
            let Some(s) = st.step(self.step) else {
                return 0;
            };
            let ours = s.last().and_then(|a| a.container_id.as_deref()) == Some(self.container);
            if s.status != StepStatus::Serving || !ours {
                return 0;
            }
            let ends = s.window_ends_at.unwrap_or_else(Utc::now);
            if Utc::now() >= ends {
                if self.stop().await {
                    return 0;
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
            // Every 10 s: is the service still there? A guard whose container is gone (it
            // ended, someone removed it) has nothing left to guard.
            if looked.elapsed() >= Duration::from_secs(10) {
                looked = std::time::Instant::now();
                if self.service_gone().await {
                    return 0;
                }
            }
            let left = (ends - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(left.min(Duration::from_secs(2))).await;
        }
    }

    /// The engine, connected again if it went away.
    async fn engine(&mut self) -> Option<&Engine> {
        if self.engine.is_none() {
            self.engine = connect(self.endpoint.clone()).await;
        }
        self.engine.as_ref()
    }

    /// The window is over: stops the service. True once it is stopped.
    async fn stop(&mut self) -> bool {
        let container = self.container;
        let r = match self.engine().await {
            Some(e) => Some(e.stop(container, 10).await),
            None => None,
        };
        match r {
            Some(Ok(())) => {
                self.say("window ended with no runner left; service stopped");
                return true;
            }
            Some(Err(err)) => {
                if !self.told {
                    self.say(&format!("stopping failed ({err}); retrying every 5 s"));
                    self.told = true;
                }
                if err.is_unreachable() {
                    self.engine = None;
                }
            }
            None if !self.told => {
                self.say("the engine is unreachable; retrying every 5 s");
                self.told = true;
            }
            None => {}
        }
        false
    }

    /// True when the service's container is gone or has exited (said).
    async fn service_gone(&mut self) -> bool {
        let container = self.container;
        let Some(e) = self.engine().await else {
            return false;
        };
        match e.inspect(container).await {
            Ok(None) => {
                self.say("the service's container is gone; the guard leaves");
                true
            }
            Ok(Some(c)) if !c.running && !c.never_started => {
                self.say("the service has exited; the guard leaves");
                true
            }
            Ok(Some(_)) => false,
            Err(err) if err.is_unreachable() => {
                self.engine = None;
                false
            }
            Err(_) => false,
        }
    }
}

async fn connect(endpoint: Option<String>) -> Option<Engine> {
    if let Some(e) = endpoint
        && let Ok(engine) = crate::engine::connect(&ConnectOptions {
            explicit: Some(e),
            allow_private_service: false,
        })
        .await
    {
        return Some(engine);
    }
    crate::engine::connect(&ConnectOptions {
        explicit: None,
        allow_private_service: true,
    })
    .await
    .ok()
}
