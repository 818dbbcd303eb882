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
    let say = |m: &str| {
        eprintln!(
            "{} window-guard {step} ({container}): {m}",
            Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    };
    let lock = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(state_dir.join(format!("guard-{step}.lock")));
    let lock = match lock {
        Ok(f) => f,
        Err(e) => {
            say(&format!("cannot open its lock: {e}"));
            return crate::exit::CANNOT_START;
        }
    };
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return 0,
        Err(TryLockError::Error(e)) => {
            say(&format!("cannot lock: {e}"));
            return crate::exit::CANNOT_START;
        }
    }
    let mut engine: Option<Engine> = None;
    let mut told = false;
    let mut looked = std::time::Instant::now();
    loop {
        // Past the engine's own run limit the service has ended anyway: a guard never retries
        // for ever.
        if hard_end.is_some_and(|h| Utc::now() > h + chrono::Duration::seconds(60)) {
            say("the engine's own run limit has ended the service; the guard leaves");
            return 0;
        }
        let st = match RunState::load(state_dir) {
            Ok(Some(st)) => st,
            Ok(None) => return 0,
            Err(e) => {
                say(&e.to_string());
                return crate::exit::CANNOT_START;
            }
        };
        let Some(s) = st.step(step) else { return 0 };
        let ours = s.last().and_then(|a| a.container_id.as_deref()) == Some(container);
        if s.status != StepStatus::Serving || !ours {
            return 0;
        }
        let ends = s.window_ends_at.unwrap_or_else(Utc::now);
        if Utc::now() >= ends {
            if engine.is_none() {
                engine = connect(endpoint.clone()).await;
            }
            match &engine {
                Some(e) => match e.stop(container, 10).await {
                    Ok(()) => {
                        say("window ended with no runner left; service stopped");
                        return 0;
                    }
                    Err(err) => {
                        if !told {
                            say(&format!("stopping failed ({err}); retrying every 5 s"));
                            told = true;
                        }
                        if err.is_unreachable() {
                            engine = None;
                        }
                    }
                },
                None if !told => {
                    say("the engine is unreachable; retrying every 5 s");
                    told = true;
                }
                None => {}
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        }
        // Every 10 s: is the service still there? A guard whose container is gone (it ended,
        // someone removed it) has nothing left to guard.
        if looked.elapsed() >= Duration::from_secs(10) {
            looked = std::time::Instant::now();
            if engine.is_none() {
                engine = connect(endpoint.clone()).await;
            }
            if let Some(e) = &engine {
                match e.inspect(container).await {
                    Ok(None) => {
                        say("the service's container is gone; the guard leaves");
                        return 0;
                    }
                    Ok(Some(c)) if !c.running && !c.never_started => {
                        say("the service has exited; the guard leaves");
                        return 0;
                    }
                    Ok(Some(_)) => {}
                    Err(err) if err.is_unreachable() => engine = None,
                    Err(_) => {}
                }
            }
        }
        let left = (ends - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(left.min(Duration::from_secs(2))).await;
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
