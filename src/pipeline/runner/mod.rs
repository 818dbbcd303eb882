//! Drives the steps: start, follow, record, reattach; obeys operator commands.

use crate::pipeline::error::PipelineError;
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use super::diagnosis::{Catalogue, Context as DiagnosisContext, Diagnosis};
use super::host;
use super::lock::RunLock;
use super::spec::{Kind, Pipeline, Source, Step};
use super::state::{Attempt, Outcome, RunState, StepStatus};
use super::window_task::{self, WindowCtl, WindowReport};
use crate::config::{Deployconfig, PipelineConfig};
use crate::engine::logs::CaptureMode;
use crate::engine::{ContainerSpec, Engine, Mount, labels};
use crate::logformat::{LiveFn, LogLine, LogSink, Stream, now_ts, parse_saved_line};

mod contracts;
mod hold;
mod prepare;
mod steps;
mod types;
mod windows;
pub use steps::is_tls_error;
pub use types::{Command, Event, Finish, LiveGate, Plan};

/// A task stopped when this is dropped.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

/// Why a step's body ended without a result.
#[derive(Debug)]
pub(super) enum StepFail {
    /// A real failure of the step (or of starting it).
    Error(PipelineError),
    /// The engine went away: the step keeps running there; reconnect and reattach.
    Unreachable(String),
    /// The disk holding the log filled up: the step keeps running; wait for space, re-read.
    DiskFull(String),
}

impl From<PipelineError> for StepFail {
    fn from(e: PipelineError) -> Self {
        if e.is_unreachable() {
            StepFail::Unreachable(e.to_string())
        } else if e.is_disk_full() {
            StepFail::DiskFull(e.to_string())
        } else {
            StepFail::Error(e)
        }
    }
}

impl From<crate::engine::EngineError> for StepFail {
    fn from(e: crate::engine::EngineError) -> Self {
        PipelineError::from(e).into()
    }
}

type Body = Pin<Box<dyn Future<Output = Result<Option<i64>, StepFail>> + Send>>;

enum StepEnd {
    Next,
    Halt(Finish),
}

/// Drives one deployconfig's pipeline. Holds the deployconfig lock while it exists.
pub struct Runner {
    engine: Engine,
    dc: Deployconfig,
    pipeline: Pipeline,
    source: Source,
    state: Option<RunState>,
    events: UnboundedSender<Event>,
    windows: HashMap<String, UnboundedSender<WindowCtl>>,
    win_tx: UnboundedSender<(String, WindowReport)>,
    win_rx: UnboundedReceiver<(String, WindowReport)>,
    halt: Option<Finish>,
    secrets: Vec<String>,
    live_gate: Option<LiveGate>,
    tls_verify: Option<bool>,
    /// `run --force`: re-runs that undo the deployment go on.
    force: bool,
    /// Steps whose next run the operator allowed although it undoes the deployment.
    allowed: std::collections::HashSet<String>,
    _lock: RunLock,
}

/// The line of a saved log to quote in failure messages: the last one that looks like an error
/// in the last 8 KiB, else the last non-empty one.
fn last_log_line(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(8192))).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let texts: Vec<&[u8]> = buf
        .split(|b| *b == b'\n')
        .filter_map(parse_saved_line)
        .map(|(_, _, t)| t)
        .filter(|t| !t.trim_ascii().is_empty())
        .collect();
    let pick = texts
        .iter()
        .rev()
        .find(|t| crate::logfile::looks_like_error(t))
        .or(texts.last())?;
    Some(
        String::from_utf8_lossy(pick)
            .trim()
            .chars()
            .take(300)
            .collect(),
    )
}

impl Runner {
    /// Opens a deployconfig for driving: takes its lock, loads the pipeline and any saved run.
    pub fn open(
        engine: Engine,
        dc: Deployconfig,
        events: UnboundedSender<Event>,
    ) -> Result<Self, PipelineError> {
        if !dc.dir.is_dir() {
            return Err(PipelineError::Refused(format!(
                "deployconfig folder {} does not exist: pass --deployconfig DIR (or set STAGE2_DEPLOYCONFIG)",
                dc.dir.display()
            )));
        }
        let state_dir = dc.prepare_state_dir().map_err(|source| PipelineError::Io {
            action: "prepare the state folder",
            path: dc.state_dir(),
            source,
        })?;
        let lock = RunLock::acquire(&state_dir)?;
        let (pipeline, source) = Pipeline::load(&dc.pipeline_file())?;
        crate::pipeline::accept::require(&dc, &pipeline, &source)?;
        let state = RunState::load(&dc.state_dir())?;
        let (win_tx, win_rx) = mpsc::unbounded_channel();
        let secrets = crate::config::secret_values(&dc);
        Ok(Self {
            secrets,
            engine,
            dc,
            pipeline,
            source,
            state,
            events,
            windows: HashMap::new(),
            win_tx,
            win_rx,
            halt: None,
            live_gate: None,
            tls_verify: None,
            force: false,
            allowed: Default::default(),
            _lock: lock,
        })
    }

    /// Makes log capture wait for a slow consumer (see [`LiveGate`]).
    pub fn set_live_gate(&mut self, gate: LiveGate) {
        self.live_gate = Some(gate);
    }

    /// Text safe to show, print or store: every secrets.json value masked, control bytes made
    /// visible.
    /// The diagnosis of a failed step from its log and error, secrets masked.
    fn diagnose(&self, step: &str, log: &Path, error: Option<&str>) -> Option<Diagnosis> {
        let (catalogue, problem) = Catalogue::load();
        if let Some(p) = problem {
            self.emit(Event::Note(p));
        }
        let web_logs = self
            .pipeline
            .steps
            .iter()
            .filter(|s| s.kind == Kind::Service)
            .filter_map(|s| self.state.as_ref()?.step(&s.id))
            .flat_map(|s| s.attempts.iter().map(|a| self.dc.state_dir().join(&a.log)))
            .collect();
        let ctx = DiagnosisContext {
            deployconfig: Some(self.dc.dir.clone()),
            config: crate::config::read_json(&self.dc.config_json()).ok(),
            web_logs,
        };
        let mut d = catalogue.diagnose_log(step, log, error, &ctx)?;
        d.cause = self.redact(&d.cause);
        d.fix = self.redact(&d.fix);
        d.text = d.text.map(|t| self.redact(&t));
        Some(d)
    }

    pub(super) fn redact(&self, s: &str) -> String {
        crate::text::visible(&crate::text::mask(s, &self.secrets)).into_owned()
    }

    /// The pipeline being driven.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Where the pipeline came from.
    pub fn pipeline_source(&self) -> &Source {
        &self.source
    }

    /// The saved run, if any.
    pub fn state(&self) -> Option<&RunState> {
        self.state.as_ref()
    }

    /// Sends an event; every text in it is redacted first (log lines are masked by whoever
    /// shows them, and kept exact in the root-only raw log).
    fn emit(&self, e: Event) {
        let r = |s: String| self.redact(&s);
        let e = match e {
            Event::Note(n) => Event::Note(r(n)),
            Event::Trouble(t) => Event::Trouble(t.map(r)),
            Event::StepStarted {
                step,
                attempt,
                detail,
            } => Event::StepStarted {
                step,
                attempt,
                detail: r(detail),
            },
            Event::StepFinished {
                step,
                status,
                exit_code,
                duration,
                error,
            } => Event::StepFinished {
                step,
                status,
                exit_code,
                duration,
                error: error.map(r),
            },
            Event::Window {
                step,
                url,
                ends_at,
                waiting_for,
            } => Event::Window {
                step,
                url: url.map(r),
                ends_at,
                waiting_for,
            },
            Event::Finished(Err(e)) => Event::Finished(Err(r(e))),
            other => other,
        };
        trace_event(&e);
        let _ = self.events.send(e);
    }

    fn st(&mut self) -> Result<&mut RunState, PipelineError> {
        self.state
            .as_mut()
            .ok_or_else(|| PipelineError::State("no run state".into()))
    }

    fn save(&mut self) -> Result<(), PipelineError> {
        let dir = self.dc.state_dir();
        let state = self
            .state
            .as_ref()
            .ok_or(PipelineError::State("no run state".into()))?;
        state.save(&dir).map_err(|source| PipelineError::Io {
            action: "save the run state in",
            path: dir.clone(),
            source,
        })?;
        self.emit(Event::State(Box::new(state.clone())));
        Ok(())
    }

    /// Saves; a full disk holds the run (as it does mid-step) until there is room again,
    /// instead of ending it. `Ok(false)`: the operator detached meanwhile.
    async fn save_or_hold(
        &mut self,
        step: &str,
        cmds: &mut UnboundedReceiver<Command>,
    ) -> Result<bool, PipelineError> {
        loop {
            match self.save() {
                Ok(()) => return Ok(true),
                Err(e) if e.is_disk_full() => {
                    let mut none = None;
                    if self
                        .hold(step, StepFail::DiskFull(e.to_string()), cmds, &mut none)
                        .await?
                    {
                        return Ok(false);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn live(&self, step: &str) -> LiveFn {
        (self.live_factory(step))()
    }

    /// Makes live listeners for a step (a window's capture makes a new one each time it is redone).
    fn live_factory(&self, step: &str) -> impl FnMut() -> LiveFn + Send + 'static {
        let tx = self.events.clone();
        let step = step.to_string();
        let gate = self.live_gate.clone();
        move || {
            let tx = tx.clone();
            let step = step.clone();
            let gate = gate.clone();
            Box::new(move |lines: Vec<LogLine>| {
                if let Some(g) = &gate {
                    g.wait_room(lines.len());
                }
                let _ = tx.send(Event::Log {
                    step: step.clone(),
                    lines,
                });
            })
        }
    }

    /// Marks a step skipped so the run can go on past it (it must not be running).
    pub fn skip_step(&mut self, id: &str) -> Result<(), PipelineError> {
        let st = self.st()?;
        let s = st
            .step_mut(id)
            .ok_or_else(|| PipelineError::Refused(format!("no step {id}")))?;
        if matches!(s.status, StepStatus::Running | StepStatus::Serving) {
            return Err(PipelineError::Refused(format!(
                "{id} is running; stop it first"
            )));
        }
        s.status = StepStatus::Skipped;
        if st.halted_at().is_none() {
            st.outcome = Outcome::InProgress;
            st.finished_at = None;
        }
        self.save()
    }

    /// Drives the run per `plan` until it succeeds, halts, or the operator detaches; ends with
    /// an [`Event::Finished`] either way.
    pub async fn run(
        &mut self,
        plan: Plan,
        cmds: &mut UnboundedReceiver<Command>,
    ) -> Result<Finish, PipelineError> {
        let r = self.run_inner(plan, cmds).await;
        self.emit(Event::Finished(
            r.as_ref().map(Clone::clone).map_err(ToString::to_string),
        ));
        r
    }

    /// Starts watching the cluster (every `interval` up to 12 s) once `oc` and the kubeconfig
    /// exist: each look goes to the state folder's `cluster.json` and out as an event.
    fn watch_cluster(&self) -> AbortOnDrop {
        let steps = &self.pipeline.steps;
        let Some(bin_dir) = steps
            .iter()
            .find(|s| s.action == Some(super::spec::HostAction::InstallClients))
            .or_else(|| steps.iter().find(|s| s.bin_dir.is_some()))
            .map(|s| s.bin_dir.as_deref().unwrap_or("/usr/local/bin"))
        else {
            return AbortOnDrop(None);
        };
        let every = steps
            .iter()
            .filter_map(|s| s.interval_secs)
            .min()
            .unwrap_or(12)
            .clamp(1, 12);
        let dc = self.dc.dir.clone();
        let oc = super::cluster::Oc::new(
            std::path::Path::new(&bin_dir.replace("{deployconfig}", &dc.display().to_string())),
            &dc,
        );
        let state_dir = self.dc.state_dir();
        let events = self.events.clone();
        let secrets = self.secrets.clone();
        AbortOnDrop(Some(tokio::spawn(async move {
            loop {
                if oc.usable() {
                    let declared = crate::config::read_json(&dc.join("config.json"))
                        .map(|c| super::cluster::declared_nodes(&c))
                        .unwrap_or_default();
                    let mut snap = oc.snapshot(declared).await;
                    let clean = |e: &str| {
                        crate::text::visible(&crate::text::mask(e, &secrets)).into_owned()
                    };
                    snap.error = snap.error.as_deref().map(clean);
                    snap.csr_other = snap.csr_other.iter().map(|c| clean(c)).collect();
                    if let Ok(text) = serde_json::to_vec_pretty(&snap) {
                        let _ = crate::safefs::Dir::open(&state_dir)
                            .and_then(|d| d.write_atomic("cluster.json".as_ref(), &text, 0o600));
                    }
                    if events.send(Event::Cluster(Box::new(snap))).is_err() {
                        return;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_secs(every)).await;
            }
        })))
    }

    /// Pull with (`true`) or without (`false`, `--tls-verify=false`) checking the registry's
    /// certificate, from now on in this run.
    pub fn set_tls_verify(&mut self, verify: bool) {
        self.tls_verify = Some(verify);
    }

    /// Sends the current state as an event (for a UI that starts before any run).
    pub fn announce(&self) {
        if let Some(s) = &self.state {
            self.emit(Event::State(Box::new(s.clone())));
        }
    }

    async fn run_inner(
        &mut self,
        plan: Plan,
        cmds: &mut UnboundedReceiver<Command>,
    ) -> Result<Finish, PipelineError> {
        // A service that died while no run was driven is already recorded as failed.
        self.halt = None;
        self.secrets = crate::config::secret_values(&self.dc);
        let cfg = PipelineConfig::load(&self.dc)?;
        // Before anything changes: a re-run that would undo the deployment is refused.
        self.refuse_hazards(&plan)?;
        let how = self.prepare(&plan).await?;
        let Some(how) = how else {
            return Ok(Finish::AlreadyDone);
        };
        // `--tls-verify=false` (or the setup flow's choice) is remembered for the run.
        if let Some(v) = self.tls_verify {
            self.st()?.tls_verify = (!v).then_some(false);
        }
        let pipeline = self.pipeline.clone();
        self.st()?.align(&pipeline);
        self.save()?;
        let run_id = self.st()?.run_id.clone();
        self.emit(Event::RunStarted { run_id, how });
        // Ends with this function: the cluster is watched while the run is driven.
        let _watch = self.watch_cluster();

        for i in 0..pipeline.steps.len() {
            if self.st()?.steps[i].status == StepStatus::Serving {
                self.reopen_window(i, &cfg).await?;
            }
        }
        loop {
            if let Some(f) = self.halt.take() {
                return self.halted(f);
            }
            let Some(i) = self.st()?.steps.iter().position(|s| !s.status.is_done()) else {
                break;
            };
            match self.drive(i, &cfg, cmds).await? {
                StepEnd::Next => {}
                StepEnd::Halt(Finish::Detached { .. }) => return Ok(self.detached()),
                StepEnd::Halt(f) => return self.halted(f),
            }
        }
        // Every step is done; services may still be inside their window.
        if self.serve_windows_until_closed(cmds, true).await? {
            return Ok(self.detached());
        }
        if let Some(f) = self.halt.take() {
            return self.halted(f);
        }
        let st = self.st()?;
        st.outcome = Outcome::Succeeded;
        st.finished_at = Some(Utc::now());
        self.save()?;
        Ok(Finish::Succeeded)
    }

    fn detached(&self) -> Finish {
        let running = self
            .state
            .iter()
            .flat_map(|s| &s.steps)
            .filter(|s| matches!(s.status, StepStatus::Running | StepStatus::Serving))
            .map(|s| s.id.clone())
            .collect();
        Finish::Detached { running }
    }

    fn halted(&mut self, f: Finish) -> Result<Finish, PipelineError> {
        let st = self.st()?;
        st.outcome = match f {
            Finish::Stopped { .. } => Outcome::Stopped,
            _ => Outcome::Failed,
        };
        st.finished_at = Some(Utc::now());
        self.save()?;
        Ok(f)
    }

    /// Runs (or reattaches to) step `i`, handling operator commands while it runs. When the
    /// engine goes away or the log's disk fills, the step is not failed: the runner waits
    /// ([`Runner::hold`]) and reattaches to the same container, re-reading its whole log.
    async fn drive(
        &mut self,
        i: usize,
        cfg: &PipelineConfig,
        cmds: &mut UnboundedReceiver<Command>,
    ) -> Result<StepEnd, PipelineError> {
        let step = self.pipeline.steps[i].clone();
        let mut reattach = self.st()?.steps[i].status == StepStatus::Running;
        let mut requested: Option<StepStatus> = None;
        if !reattach && let Err(why) = self.before_step(&step) {
            self.refuse_start(i, &step, &why)?;
            return self.finish_step(i, Err(why), None, cmds).await;
        }
        loop {
            let started = self.start_body(i, &step, cfg, reattach).await;
            let (body, container) = match started {
                Ok(Some(x)) => x,
                Ok(None) => return Ok(StepEnd::Next),
                Err(StepFail::Error(error)) => {
                    return self.finish_step(i, Err(error), requested, cmds).await;
                }
                Err(hold @ (StepFail::Unreachable(_) | StepFail::DiskFull(_))) => {
                    if self.hold(&step.id, hold, cmds, &mut requested).await? {
                        return Ok(StepEnd::Halt(Finish::Detached { running: vec![] }));
                    }
                    reattach = self.st()?.steps[i].status == StepStatus::Running;
                    continue;
                }
            };
            let mut body = body;
            // A stop asked for while the engine was away is sent now.
            if requested.is_some()
                && let Some(id) = &container
                && let Err(e) = self.engine.stop(id, 10).await
            {
                self.emit(Event::Note(format!("{}: cannot stop it yet: {e}", step.id)));
            }
            let result = loop {
                tokio::select! {
                    r = &mut body => break r,
                    Some((s, rep)) = self.win_rx.recv() => self.on_window(&s, rep)?,
                    c = cmds.recv() => match c {
                        Some(Command::Stop | Command::Skip) if requested.is_none() => {
                            requested = Some(if c == Some(Command::Stop) { StepStatus::Stopped } else { StepStatus::Skipped });
                            match &container {
                                Some(id) => {
                                    self.emit(Event::Note(format!("{}: stopping container {}", step.id, step.container_name())));
                                    if let Err(e) = self.engine.stop(id, 10).await {
                                        self.emit(Event::Note(format!("{}: the stop did not go through ({e}); it is sent again once the engine answers", step.id)));
                                    }
                                }
                                None => break Err(StepFail::Error(PipelineError::Step("stopped by the operator".into()))),
                            }
                        }
                        Some(Command::Stop | Command::Skip) => {}
                        Some(c @ (Command::ExtendWindow { .. } | Command::EndWindow { .. })) => self.window_command(c),
                        Some(Command::Detach) | None => return Ok(StepEnd::Halt(Finish::Detached { running: vec![] })),
                    },
                }
            };
            drop(body);
            // The times come from the engine: a step that ended while no stage2-tui watched
            // (the driver was killed, another one took over) ended when the engine says.
            if let Some(id) = &container
                && let Ok(Some(c)) = self.engine.inspect(id).await
            {
                self.engine_times(i, c.started_at, c.finished_at)?;
            }
            match result {
                Ok(code) => return self.finish_step(i, Ok(code), requested, cmds).await,
                Err(StepFail::Error(e)) => {
                    return self.finish_step(i, Err(e), requested, cmds).await;
                }
                Err(hold) => {
                    if self.hold(&step.id, hold, cmds, &mut requested).await? {
                        return Ok(StepEnd::Halt(Finish::Detached { running: vec![] }));
                    }
                    reattach = true;
                }
            }
        }
    }

    /// Takes the attempt's start and end from the engine's clock, when the engine knows them
    /// and they make sense (the end after the start, neither in the future).
    fn engine_times(
        &mut self,
        i: usize,
        started: Option<DateTime<Utc>>,
        finished: Option<DateTime<Utc>>,
    ) -> Result<(), PipelineError> {
        let now = Utc::now() + chrono::Duration::seconds(5);
        let st = self.st()?;
        let Some(a) = st.steps[i].attempts.last_mut() else {
            return Ok(());
        };
        if let Some(s) =
            started.filter(|s| *s <= now && *s >= a.started_at - chrono::Duration::hours(1))
        {
            a.started_at = s;
        }
        if let Some(f) = finished.filter(|f| *f <= now && *f >= a.started_at) {
            a.finished_at = Some(f);
        }
        Ok(())
    }

    async fn finish_step(
        &mut self,
        i: usize,
        result: Result<Option<i64>, PipelineError>,
        requested: Option<StepStatus>,
        cmds: &mut UnboundedReceiver<Command>,
    ) -> Result<StepEnd, PipelineError> {
        let state_dir = self.dc.state_dir();
        let st = self.st()?;
        let s = &mut st.steps[i];
        let id = s.id.clone();
        let Some(a) = s.attempts.last_mut() else {
            return Err(PipelineError::Refused(format!("{id}: no attempt recorded")));
        };
        if a.finished_at.is_none() {
            a.finished_at = Some(Utc::now());
        }
        let log = a.log.clone();
        let (status, error) = match (&result, requested) {
            (_, Some(req)) => (req, Some(format!("{} by the operator", req.word()))),
            // An exit code of 0 is not trusted: the step must also have kept its contract.
            (Ok(None | Some(0)), None) => match self.contract_broken(i) {
                None => (StepStatus::Succeeded, None),
                Some(broken) => (StepStatus::Failed, Some(broken)),
            },
            (Ok(Some(code)), None) => {
                let tail = last_log_line(&state_dir.join(&log))
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default();
                (StepStatus::Failed, Some(format!("exit code {code}{tail}")))
            }
            (Err(e), None) => (StepStatus::Failed, Some(e.to_string())),
        };
        // The error is stored in state.json and shown everywhere: never a secret in it.
        let error = error.map(|e| self.redact(&e));
        let st = self
            .state
            .as_mut()
            .ok_or(PipelineError::State("no run state".into()))?;
        let s = &mut st.steps[i];
        let Some(a) = s.attempts.last_mut() else {
            return Err(PipelineError::Refused(format!("{id}: no attempt recorded")));
        };
        if let Ok(code) = result {
            a.exit_code = code;
        }
        a.error = error.clone();
        s.status = status;
        if status == StepStatus::Failed {
            let log = state_dir.join(&a.log);
            let diagnosis = self.diagnose(&id, &log, error.as_deref());
            let st = self
                .state
                .as_mut()
                .ok_or(PipelineError::State("no run state".into()))?;
            if let Some(a) = st.steps[i].attempts.last_mut() {
                a.diagnosis = diagnosis;
            }
        }
        let st = self
            .state
            .as_mut()
            .ok_or(PipelineError::State("no run state".into()))?;
        let s = &mut st.steps[i];
        let Some(a) = s.attempts.last_mut() else {
            return Err(PipelineError::Refused(format!("{id}: no attempt recorded")));
        };
        let exit_code = a.exit_code;
        let duration = a
            .duration()
            .and_then(|d| d.to_std().ok())
            .unwrap_or_default();
        if !self.save_or_hold(&id, cmds).await? {
            return Ok(StepEnd::Halt(Finish::Detached { running: vec![] }));
        }
        self.emit(Event::StepFinished {
            step: id.clone(),
            status,
            exit_code,
            duration,
            error: error.clone(),
        });
        if status == StepStatus::Succeeded {
            self.start_anchored_windows(&id)?;
        }
        Ok(match status {
            StepStatus::Failed => StepEnd::Halt(Finish::Failed {
                step: id,
                error: error.unwrap_or_default(),
            }),
            StepStatus::Stopped => StepEnd::Halt(Finish::Stopped { step: id }),
            _ => StepEnd::Next,
        })
    }
}

/// What the run does, for the debug log (`STAGE2_LOG`); texts are already masked.
fn trace_event(e: &Event) {
    match e {
        Event::Note(n) => tracing::info!(note = %n),
        Event::Trouble(Some(t)) => tracing::warn!(trouble = %t),
        Event::Trouble(None) => tracing::info!("trouble over"),
        Event::StepStarted {
            step,
            attempt,
            detail,
        } => tracing::info!(%step, attempt, %detail, "step started"),
        Event::StepFinished {
            step,
            status,
            exit_code,
            error,
            ..
        } => tracing::info!(%step, ?status, ?exit_code, ?error, "step finished"),
        Event::Finished(r) => tracing::info!(finished = ?r.as_ref().err(), "run ended"),
        _ => {}
    }
}
