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

/// Connects to the driver of the run in `state_dir`. Err: a message for the operator.
pub async fn attach(state_dir: &Path) -> Result<Attached, String> {
    attach_at(&state_dir.join(SOCKET)).await
}

/// Connects to the control socket at `path`.
pub async fn attach_at(path: &Path) -> Result<Attached, String> {
    let conn = UnixStream::connect(&path).await.map_err(|e| {
        format!(
            "cannot reach the driver's control socket {} ({e})",
            path.display()
        )
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
    if let Err(e) = sent {
        return Err(match lines.next_line().await {
            Ok(Some(l)) => match serde_json::from_str::<ServerMsg>(&l) {
                Ok(ServerMsg::Refused { reason }) => format!("the driver refused: {reason}"),
                _ => format!("cannot talk to the driver: {e}"),
            },
            _ => format!("cannot talk to the driver: {e}"),
        });
    }
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
        .await
        .map_err(|_| "the driver did not answer within 10 s".to_string())?
        .map_err(|e| format!("cannot read from the driver: {e}"))?
        .ok_or("the driver closed the connection")?;
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
        Ok(ServerMsg::Hello { proto, driver, .. }) => Err(format!(
            "the driver (stage2-tui {}) speaks protocol {proto}, this stage2-tui {} speaks {PROTO}: use the same version",
            driver.version,
            env!("CARGO_PKG_VERSION")
        )),
        Ok(ServerMsg::Refused { reason }) => Err(format!("the driver refused: {reason}")),
        _ => Err(format!(
            "the driver answered something this stage2-tui (protocol {PROTO}) does not understand; is it another version? ({})",
            first.chars().take(120).collect::<String>()
        )),
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
