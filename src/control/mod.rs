//! One process drives a run; any number of TUIs attach to it.
//!
//! The driver (the headless runner under systemd, or a TUI) listens on `control.sock` in the
//! run's root-only state folder (0600; peers checked with `SO_PEERCRED`: root or the driver's own
//! user). The protocol is JSON lines, versioned by [`PROTO`]: the client says hello, the driver
//! answers with who it is and the pipeline, replays what a new viewer needs (the run state, the
//! open window, a banner), then streams every runner event. The client sends requests (stop,
//! skip, extend, end the window, retry / resume), which the driver carries out and announces to
//! everyone (and to the journal: "retry of X requested by uid 1000 on pts/2").
//!
//! A world-readable pointer `/run/stage2-tui/<deployconfig id>` names the driver's uid and pid
//! (no secrets), so another user is told to use `sudo` instead of starting a second install.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::config::Deployconfig;
use crate::pipeline::{Command, Event, Pipeline, Plan};

mod client;
mod fanout;
mod pointer;
pub use client::{AttachError, Attached, Relay, attach, attach_at};
pub use fanout::{CLIENT_QUEUE_BYTES, MAX_CLIENTS, MAX_REQUEST_LINE};
use fanout::{Fanout, Queue, read_request};
use pointer::write_pointer;
pub use pointer::{Pointer, not_yours, pointer_path};

/// Protocol version. A peer speaking another one is told so, never misread. 3: a run's end
/// carries a typed error (`RunError`), and the pipeline is sent with its defaults written out.
pub const PROTO: u32 = 3;

/// File name of the socket in the state folder.
pub const SOCKET: &str = "control.sock";

/// Requests that change what the driver drives (not commands to a running step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// Start driving with this plan (retry, resume from here).
    Start(Plan),
    /// Mark this step skipped and go on.
    Skip(String),
    /// Pull with (`true`) or without (`false`: `--tls-verify=false`) checking the registry's
    /// certificate from now on in this run.
    TlsVerify(bool),
    /// The operator confirmed that the next run of this step may undo the deployment (a re-run
    /// of 4.run-installer while terraform.tfstate lists VMs).
    AllowRerun(String),
}

/// Who drives a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverInfo {
    /// Process id.
    pub pid: u32,
    /// User id.
    pub uid: u32,
    /// User name.
    pub user: String,
    /// `headless` or `tui`.
    pub how: String,
    /// The systemd unit it runs in, if any (`stage2-tui.service`).
    pub unit: Option<String>,
    /// When it started driving.
    pub since: chrono::DateTime<chrono::Utc>,
    /// stage2-tui version.
    pub version: String,
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn user_name(uid: u32) -> String {
    if uid == 0 {
        return "root".into();
    }
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// The systemd service this process runs in, from its cgroup.
fn systemd_unit() -> Option<String> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    cg.lines()
        .filter_map(|l| l.rsplit('/').next())
        .find(|n| n.ends_with(".service") && !n.starts_with("user@") && !n.starts_with("session-"))
        .map(str::to_string)
}

impl DriverInfo {
    /// This process, driving as `how`.
    pub fn me(how: &str) -> Self {
        let uid = euid();
        Self {
            pid: std::process::id(),
            uid,
            user: user_name(uid),
            how: how.into(),
            unit: systemd_unit(),
            since: chrono::Utc::now(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    /// "driven by stage2-tui.service, pid 812, since 09:14" (or "by the headless runner of root, …").
    pub fn describe(&self) -> String {
        let who = match &self.unit {
            Some(u) => u.clone(),
            None if self.how == "tui" => format!("a stage2-tui of {}", self.user),
            None => format!("a headless stage2-tui of {}", self.user),
        };
        format!(
            "driven by {who}, pid {}, since {}",
            self.pid,
            self.since.with_timezone(&chrono::Local).format("%H:%M")
        )
    }
}

/// What the driver sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// First line: who drives, and the pipeline.
    Hello {
        /// Protocol version.
        proto: u32,
        /// The driver.
        driver: DriverInfo,
        /// The pipeline it drives.
        pipeline: Pipeline,
    },
    /// A runner event.
    Event {
        /// The event.
        event: Event,
    },
    /// The connection is refused (another uid, another protocol version).
    Refused {
        /// Why, for the operator.
        reason: String,
    },
}

/// What a client sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// First line.
    Hello {
        /// Protocol version.
        proto: u32,
        /// stage2-tui version.
        version: String,
        /// The client's terminal (`pts/2`), for the audit trail.
        tty: Option<String>,
    },
    /// A command to the running step or window.
    Command {
        /// The command.
        command: Command,
    },
    /// A change of what is driven (retry, resume, skip).
    Control {
        /// The request.
        control: Control,
    },
}

fn line<T: Serialize>(msg: &T) -> String {
    let mut s = serde_json::to_string(msg).unwrap_or_default();
    s.push('\n');
    s
}

/// What a newly attached TUI needs to see at once.
#[derive(Default)]
struct Snapshot {
    started: Option<Event>,
    state: Option<Event>,
    window: Option<Event>,
    trouble: Option<Event>,
    finished: Option<Event>,
}

impl Snapshot {
    fn note(&mut self, e: &Event) {
        match e {
            Event::RunStarted { .. } => {
                self.started = Some(e.clone());
                self.finished = None;
            }
            Event::State(_) => self.state = Some(e.clone()),
            Event::Window { .. } => self.window = Some(e.clone()),
            Event::StepFinished { step, .. } if matches!(&self.window, Some(Event::Window { step: w, .. }) if w == step) => {
                self.window = None
            }
            Event::Trouble(_) => self.trouble = Some(e.clone()),
            Event::Finished(_) => self.finished = Some(e.clone()),
            _ => {}
        }
    }
    fn replay(&self) -> Vec<Event> {
        [
            &self.started,
            &self.state,
            &self.window,
            &self.trouble,
            &self.finished,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }
}

/// A running control server; stops listening (and removes its socket) when dropped. Attached
/// clients still get every event the runner sent before it went away, then their connection
/// closes.
pub struct Server {
    path: PathBuf,
    inode: (u64, u64),
    accept: tokio::task::JoinHandle<()>,
    fanout: std::sync::Arc<Fanout>,
}

impl Server {
    /// Once the runner is gone: waits (at most `max`) until every attached terminal has been
    /// sent the last events, so a driver that exits does not leave them with a stale view.
    pub async fn drained(&self, max: std::time::Duration) {
        let end = tokio::time::Instant::now() + max;
        while tokio::time::Instant::now() < end {
            let busy = self
                .fanout
                .queues
                .lock()
                .map(|qs| qs.iter().any(|q| std::sync::Arc::strong_count(q) > 1))
                .unwrap_or(false);
            if !busy {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        self.accept.abort();
        // Only our own socket: a driver that took over may have bound its own there already.
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Everything a driver hands the server.
pub struct Wiring {
    /// Events from the runner (the server forwards each to `local` and to every client).
    pub events: mpsc::UnboundedReceiver<Event>,
    /// A sender into the same stream, for the audit notes.
    pub inject: mpsc::UnboundedSender<Event>,
    /// The driver's own consumer (headless printer, the TUI's loop).
    pub local: mpsc::UnboundedSender<Event>,
    /// Commands to the runner.
    pub commands: mpsc::UnboundedSender<Command>,
    /// Changes of what is driven; `None` for a headless driver, which exits when it halts.
    pub control: Option<mpsc::UnboundedSender<Control>>,
}

/// Starts the control server of a driver. The socket is `control.sock` in `state_dir`.
pub fn serve(
    dc: &Deployconfig,
    state_dir: &Path,
    info: DriverInfo,
    pipeline: Pipeline,
    wiring: Wiring,
) -> Result<Server, (std::io::Error, Wiring)> {
    use std::os::unix::fs::PermissionsExt;
    let path = state_dir.join(SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path).and_then(|l| {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map(|()| l)
    }) {
        Ok(l) => l,
        Err(e) => return Err((e, wiring)),
    };
    write_pointer(dc, &info);
    let fanout = std::sync::Arc::new(Fanout::default());
    let snapshot = std::sync::Arc::new(std::sync::Mutex::new(Snapshot::default()));
    let Wiring {
        mut events,
        inject,
        local,
        commands,
        control,
    } = wiring;
    // The tee: every event to the driver's own consumer and to every client, in order. It ends
    // when the runner's senders are gone, after forwarding everything.
    let tee = {
        let fanout = fanout.clone();
        let snapshot = snapshot.clone();
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if let Ok(mut s) = snapshot.lock() {
                    s.note(&e);
                }
                fanout.send(&e);
                let _ = local.send(e);
            }
            fanout.close();
        })
    };
    let hello = ServerMsg::Hello {
        proto: PROTO,
        driver: info.clone(),
        pipeline,
    };
    // Weak: the stream ends when the runner's senders are gone, whoever is attached.
    let inject = inject.downgrade();
    let client = move |queue| Client {
        hello: hello.clone(),
        snapshot: snapshot.clone(),
        queue,
        inject: inject.clone(),
        commands: commands.clone(),
        control: control.clone(),
        driver_uid: info.uid,
    };
    let accept = tokio::spawn(accept_clients(listener, fanout.clone(), client));
    // The tee is not aborted on drop: it drains the runner's last events on its own.
    drop(tee);
    let inode = {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(&path)
            .map(|m| (m.dev(), m.ino()))
            .unwrap_or_default()
    };
    Ok(Server {
        path,
        inode,
        accept,
        fanout,
    })
}

/// Accepts attaching terminals for as long as the driver runs: each gets its own bounded
/// queue of the events, or is told why not.
async fn accept_clients(
    listener: UnixListener,
    fanout: std::sync::Arc<Fanout>,
    client: impl Fn(std::sync::Arc<Queue>) -> Client,
) {
    let mut backoff = std::time::Duration::from_millis(50);
    loop {
        let conn = match listener.accept().await {
            Ok((conn, _)) => {
                backoff = std::time::Duration::from_millis(50);
                conn
            }
            // Out of file descriptors (EMFILE) or another passing error: wait instead of
            // spinning, and let the run go on.
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(2));
                continue;
            }
        };
        let queue = match fanout.join() {
            Ok(q) => q,
            // Too many clients already, or this driver is ending: say so and close.
            Err(reason) => {
                tokio::spawn(async move {
                    let (_, mut w) = conn.into_split();
                    let _ = w
                        .write_all(line(&ServerMsg::Refused { reason }).as_bytes())
                        .await;
                });
                continue;
            }
        };
        tokio::spawn(client(queue).serve(conn));
    }
}

/// Starts the control server, or (when the socket cannot be made) forwards the events to the
/// driver's own consumer without one, saying so.
pub fn serve_or_forward(
    dc: &Deployconfig,
    state_dir: &Path,
    info: DriverInfo,
    pipeline: Pipeline,
    wiring: Wiring,
) -> Option<Server> {
    match serve(dc, state_dir, info, pipeline, wiring) {
        Ok(s) => Some(s),
        Err((e, w)) => {
            let Wiring {
                mut events, local, ..
            } = w;
            let _ = local.send(Event::Note(format!(
                "no control socket in {} ({e}): other terminals cannot attach to this run",
                state_dir.display()
            )));
            tokio::spawn(async move {
                while let Some(e) = events.recv().await {
                    let _ = local.send(e);
                }
            });
            None
        }
    }
}

struct Client {
    hello: ServerMsg,
    snapshot: std::sync::Arc<std::sync::Mutex<Snapshot>>,
    queue: std::sync::Arc<Queue>,
    inject: mpsc::WeakUnboundedSender<Event>,
    commands: mpsc::UnboundedSender<Command>,
    control: Option<mpsc::UnboundedSender<Control>>,
    driver_uid: u32,
}

impl Client {
    fn audit(&self, note: String) {
        if let Some(tx) = self.inject.upgrade() {
            let _ = tx.send(Event::Note(note));
        }
    }
}

impl Client {
    async fn serve(self, conn: UnixStream) {
        let uid = conn.peer_cred().map(|c| c.uid()).unwrap_or(u32::MAX);
        let (read, mut write) = conn.into_split();
        if uid != 0 && uid != self.driver_uid {
            let reason = format!(
                "uid {uid} may not attach: only root and the driver's own user (uid {}) may",
                self.driver_uid
            );
            let _ = write.write_all(refused(reason).as_bytes()).await;
            return;
        }
        let (mut requests, _reader) = read_requests(read);
        let Some(who) = self.greet(&mut write, &mut requests, uid).await else {
            return;
        };
        loop {
            tokio::select! {
                () = self.queue.ready.notified() => {
                    let Some((out, closed)) = self.take_queued() else { return };
                    if !out.is_empty() && write.write_all(out.as_bytes()).await.is_err() {
                        return;
                    }
                    if closed {
                        return;
                    }
                }
                r = requests.recv() => match r {
                    Some(Ok(l)) => self.on_request(&l, &who),
                    Some(Err(e)) => {
                        self.audit(format!("a request from {who} was refused and its connection closed: {e}"));
                        return;
                    }
                    None => return,
                },
            }
        }
    }

    /// The hello exchange, then what happened so far: who the client is (`uid N on TTY`), or
    /// `None` when it may not attach (told why) or said nothing within 10 s.
    async fn greet(
        &self,
        write: &mut tokio::net::unix::OwnedWriteHalf,
        requests: &mut mpsc::Receiver<Result<String, String>>,
        uid: u32,
    ) -> Option<String> {
        let first = tokio::time::timeout(std::time::Duration::from_secs(10), requests.recv()).await;
        let Ok(Some(Ok(l))) = first else {
            return None;
        };
        let tty = match serde_json::from_str::<ClientMsg>(&l) {
            Ok(ClientMsg::Hello { proto, tty, .. }) if proto == PROTO => tty,
            Ok(ClientMsg::Hello { proto, version, .. }) => {
                let reason = format!(
                    "this driver speaks protocol {PROTO} (stage2-tui {}); the client speaks {proto} (stage2-tui {version}): use the same version",
                    env!("CARGO_PKG_VERSION")
                );
                let _ = write.write_all(refused(reason).as_bytes()).await;
                return None;
            }
            _ => {
                let reason = "expected a hello line".to_string();
                let _ = write.write_all(refused(reason).as_bytes()).await;
                return None;
            }
        };
        let tty =
            tty.map(|t| crate::text::visible(&t.chars().take(64).collect::<String>()).into_owned());
        let who = format!(
            "uid {uid}{}",
            tty.map(|t| format!(" on {t}")).unwrap_or_default()
        );
        let replay = self.snapshot.lock().map(|s| s.replay()).unwrap_or_default();
        let mut out = line(&self.hello);
        for event in replay {
            out += &line(&ServerMsg::Event { event });
        }
        if let ServerMsg::Hello { driver, .. } = &self.hello {
            let event = Event::Note(format!(
                "attached: this run is {}; Stop, Skip, Retry and the window keys are requests to it, and q leaves it running",
                driver.describe()
            ));
            out += &line(&ServerMsg::Event { event });
        }
        write.write_all(out.as_bytes()).await.ok()?;
        Some(who)
    }

    /// The events queued for this client as one write, and whether the driver is ending. A
    /// client that fell behind gets the run state and a resync instead of what was dropped.
    fn take_queued(&self) -> Option<(String, bool)> {
        let (batch, lagged, closed) = match self.queue.inner.lock() {
            Ok(mut i) => {
                i.bytes = 0;
                (
                    std::mem::take(&mut i.lines),
                    std::mem::replace(&mut i.lagged, false),
                    i.closed,
                )
            }
            Err(_) => return None,
        };
        let mut out = String::new();
        for l in &batch {
            out.push_str(l);
        }
        if lagged {
            // Events were dropped while this terminal did not read: it gets the run state now
            // and re-reads its log panes from the files.
            if let Some(state) = self.snapshot.lock().ok().and_then(|s| s.state.clone()) {
                out += &line(&ServerMsg::Event { event: state });
            }
            out += &line(&ServerMsg::Event {
                event: Event::Resync,
            });
        }
        Some((out, closed))
    }

    /// One request line from the client: a command to the runner or a change of what is
    /// driven, each recorded in the run's notes with who asked.
    fn on_request(&self, l: &str, who: &str) {
        match serde_json::from_str::<ClientMsg>(l) {
            // An attached TUI leaving never affects the run.
            Ok(ClientMsg::Command {
                command: Command::Detach,
            }) => {}
            Ok(ClientMsg::Command { command }) => {
                self.audit(format!("{} requested by {who}", describe_command(&command)));
                let _ = self.commands.send(command);
            }
            Ok(ClientMsg::Control { control }) => match &self.control {
                Some(tx) => {
                    self.audit(format!("{} requested by {who}", describe_control(&control)));
                    let _ = tx.send(control);
                }
                None => self.audit(format!(
                    "{} requested by {who}: the headless driver cannot do that while it drives; once it halts it exits, and the TUI can drive",
                    describe_control(&control)
                )),
            },
            _ => {}
        }
    }
}

/// A refusal line.
fn refused(reason: String) -> String {
    line(&ServerMsg::Refused { reason })
}

/// Reads a client's requests on a task of its own, line by line, each bounded: the serving loop
/// never waits on a half-read line, and a huge line ends the connection.
fn read_requests(
    read: tokio::net::unix::OwnedReadHalf,
) -> (mpsc::Receiver<Result<String, String>>, AbortOnDrop) {
    let (req_tx, requests) = mpsc::channel::<Result<String, String>>(16);
    let reader = tokio::spawn(async move {
        let mut r = BufReader::new(read);
        loop {
            let l = read_request(&mut r, MAX_REQUEST_LINE).await;
            let stop = !matches!(l, Ok(Some(_)));
            let msg = match l {
                Ok(Some(l)) => Ok(l),
                Ok(None) => return,
                Err(e) => Err(e.to_string()),
            };
            if req_tx.send(msg).await.is_err() || stop {
                return;
            }
        }
    });
    (requests, AbortOnDrop(reader))
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn describe_command(c: &Command) -> String {
    match c {
        Command::Stop => "stop of the running step".into(),
        Command::Skip => "skip of the running step".into(),
        Command::ExtendWindow { step, secs } => format!("+{secs} s on the window of {step}"),
        Command::EndWindow { step } => format!("end of the window of {step}"),
        Command::Detach => "detach".into(),
    }
}

fn describe_control(c: &Control) -> String {
    match c {
        Control::Start(Plan::From(step)) => format!("retry of {step}"),
        Control::Start(Plan::Continue) => "continuing the run".into(),
        Control::Start(Plan::Restart) => "a new run".into(),
        Control::Skip(step) => format!("skip of {step}"),
        Control::TlsVerify(v) => format!("pulls with --tls-verify={v}"),
        Control::AllowRerun(step) => format!("a knowing re-run of {step}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;

    #[tokio::test]
    async fn another_protocol_version_is_told_not_misread_and_requests_reach_the_runner() {
        let dir = tempfile::tempdir().unwrap();
        let dc = Deployconfig::new(dir.path().join("dc"));
        let pipeline = Pipeline::default_pipeline().unwrap();
        let (raw_tx, raw_rx) = mpsc::unbounded_channel();
        let (local_tx, mut local_rx) = mpsc::unbounded_channel();
        let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel();
        let server = serve(
            &dc,
            dir.path(),
            DriverInfo::me("headless"),
            pipeline,
            Wiring {
                events: raw_rx,
                inject: raw_tx.clone(),
                local: local_tx,
                commands: cmd_tx,
                control: None,
            },
        )
        .map_err(|(e, _)| e)
        .unwrap();
        raw_tx.send(Event::Note("before".into())).unwrap();
        assert!(matches!(local_rx.recv().await, Some(Event::Note(n)) if n == "before"));

        // A client of another protocol version is told so.
        let conn = UnixStream::connect(dir.path().join(SOCKET)).await.unwrap();
        let (r, mut w) = conn.into_split();
        w.write_all(b"{\"type\":\"hello\",\"proto\":99,\"version\":\"9.9\",\"tty\":null}\n")
            .await
            .unwrap();
        let first = BufReader::new(r)
            .lines()
            .next_line()
            .await
            .unwrap()
            .unwrap();
        assert!(
            first.contains("refused") && first.contains(&format!("protocol {PROTO}")),
            "{first}"
        );

        // This version attaches, sees events, and its stop reaches the runner; a detach does not.
        let mut att = attach(dir.path()).await.unwrap();
        assert_eq!(att.driver.how, "headless");
        w_send(
            &mut att,
            ClientMsg::Command {
                command: Command::Detach,
            },
        )
        .await;
        w_send(
            &mut att,
            ClientMsg::Command {
                command: Command::Stop,
            },
        )
        .await;
        assert_eq!(cmd_rx.recv().await, Some(Command::Stop));
        drop(server);
    }

    #[test]
    fn a_fanned_out_event_is_the_same_line_as_server_msg_event() {
        let f = Fanout::default();
        let q = f.join().unwrap();
        let e = Event::Note("x \"y\"".into());
        f.send(&e);
        let got = q.inner.lock().unwrap().lines.pop_front().unwrap();
        assert_eq!(&*got, line(&ServerMsg::Event { event: e }));
    }

    async fn w_send(att: &mut Attached, msg: ClientMsg) {
        att.write.write_all(line(&msg).as_bytes()).await.unwrap();
    }
}
