//! The attached TUI's end of the control socket.

use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use tokio::sync::mpsc;

use super::{ClientMsg, Control, DriverInfo, PROTO, SOCKET, ServerMsg, line};
use crate::pipeline::{Command, Event, Pipeline};

/// A connection of an attached TUI to a driver.
pub struct Attached {
    /// Who drives, and the pipeline.
    pub driver: DriverInfo,
    /// The pipeline.
    pub pipeline: Pipeline,
    lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    pub(super) write: tokio::net::unix::OwnedWriteHalf,
}

/// Why a terminal could not attach to the driver; each says what happened.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The control socket does not answer (no driver, or it is ending).
    #[error("cannot reach the driver's control socket {} ({source})", path.display())]
    Unreachable {
        /// The socket.
        path: std::path::PathBuf,
        /// What connecting said.
        #[source]
        source: std::io::Error,
    },
    /// The driver said no (not root or its user, too many terminals, ending).
    #[error("the driver refused: {0}")]
    Refused(String),
    /// The driver is another version of stage2-tui.
    #[error("the driver (stage2-tui {theirs}) speaks protocol {proto}, this stage2-tui {} speaks {PROTO}: use the same version", env!("CARGO_PKG_VERSION"))]
    Version {
        /// The driver's version.
        theirs: String,
        /// The protocol it speaks.
        proto: u32,
    },
    /// The conversation broke off, or made no sense.
    #[error("{0}")]
    Broken(String),
}

/// Connects to the driver of the run in `state_dir`.
pub async fn attach(state_dir: &Path) -> Result<Attached, AttachError> {
    attach_at(&state_dir.join(SOCKET)).await
}

/// Connects to the control socket at `path`.
pub async fn attach_at(path: &Path) -> Result<Attached, AttachError> {
    let conn = UnixStream::connect(&path)
        .await
        .map_err(|source| AttachError::Unreachable {
            path: path.to_path_buf(),
            source,
        })?;
    let (read, mut write) = conn.into_split();
    let tty = std::fs::read_link("/proc/self/fd/0")
        .ok()
        .map(|p| {
            p.display()
                .to_string()
                .trim_start_matches("/dev/")
                .to_string()
        })
        .filter(|t| t.starts_with("pts/") || t.starts_with("tty"));
    let hello = ClientMsg::Hello {
        proto: PROTO,
        version: env!("CARGO_PKG_VERSION").into(),
        tty,
    };
    // A refusal may already be waiting (the driver closes after saying why): read it either way.
    let sent = write.write_all(line(&hello).as_bytes()).await;
    let mut lines = BufReader::new(read).lines();
    let broken = |what: String| AttachError::Broken(what);
    if let Err(e) = sent {
        return Err(match lines.next_line().await {
            Ok(Some(l)) => match serde_json::from_str::<ServerMsg>(&l) {
                Ok(ServerMsg::Refused { reason }) => AttachError::Refused(reason),
                _ => broken(format!("cannot talk to the driver: {e}")),
            },
            _ => broken(format!("cannot talk to the driver: {e}")),
        });
    }
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
        .await
        .map_err(|_| broken("the driver did not answer within 10 s".into()))?
        .map_err(|e| broken(format!("cannot read from the driver: {e}")))?
        .ok_or_else(|| broken("the driver closed the connection".into()))?;
    match serde_json::from_str::<ServerMsg>(&first) {
        Ok(ServerMsg::Hello {
            proto: PROTO,
            driver,
            pipeline,
        }) => Ok(Attached {
            driver,
            pipeline,
            lines,
            write,
        }),
        Ok(ServerMsg::Hello { proto, driver, .. }) => Err(AttachError::Version {
            theirs: driver.version,
            proto,
        }),
        Ok(ServerMsg::Refused { reason }) => Err(AttachError::Refused(reason)),
        _ => Err(broken(format!(
            "the driver answered something this stage2-tui (protocol {PROTO}) does not understand; is it another version? ({})",
            first.chars().take(120).collect::<String>()
        ))),
    }
}

impl Attached {
    /// Relays events to `events` and requests from `commands`/`control` until the driver goes
    /// away. A `Detach` is never sent: leaving an attached TUI never affects the run.
    pub async fn relay(
        mut self,
        events: &mpsc::UnboundedSender<Event>,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        control: &mut mpsc::UnboundedReceiver<Control>,
    ) -> Relay {
        loop {
            tokio::select! {
                l = self.lines.next_line() => match l {
                    Ok(Some(l)) => {
                        if let Ok(ServerMsg::Event { event }) = serde_json::from_str::<ServerMsg>(&l) {
                            let _ = events.send(event);
                        }
                    }
                    _ => return Relay::DriverGone,
                },
                c = commands.recv() => match c {
                    Some(Command::Detach) | None => return Relay::Left,
                    Some(command) => { let _ = self.write.write_all(line(&ClientMsg::Command { command }).as_bytes()).await; }
                },
                c = control.recv() => match c {
                    Some(control) => { let _ = self.write.write_all(line(&ClientMsg::Control { control }).as_bytes()).await; }
                    None => return Relay::Left,
                },
            }
        }
    }
}

/// How relaying ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Relay {
    /// The driver exited (or its socket closed).
    DriverGone,
    /// This TUI is leaving.
    Left,
}
