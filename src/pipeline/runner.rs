//! Drives the steps: start, follow, record, reattach; obeys operator commands.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use chrono::Utc;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use super::host;
use super::lock::RunLock;
use super::spec::{Kind, Pipeline, Source, Step};
use super::state::{Attempt, Outcome, RunState, StepStatus};
use super::window::{self, WindowCtl, WindowReport};
use crate::config::{Deployconfig, PipelineConfig};
use crate::engine::logs::{CaptureMode, LiveFn, LogLine, LogSink, Stream, parse_saved_line};
use crate::engine::{ContainerSpec, Engine, Mount, labels};

/// Where a run should start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Reattach to a run in progress, or start the first run.
    Continue,
    /// Run this step and everything after it again (retry / resume from here).
    From(String),
    /// Start a brand-new run.
    Restart,
}

/// Operator commands while a run is being driven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Stop the running step (kills its container); the run halts there.
    Stop,
    /// Stop the running step and go on with the next.
    Skip,
    /// Add seconds to a service step's window.
    ExtendWindow {
        /// The service step.
        step: String,
        /// Seconds to add.
        secs: u64,
    },
    /// End a service step's window now.
    EndWindow {
        /// The service step.
        step: String,
    },
    /// Leave; running steps keep running in the engine.
    Detach,
}

/// What the runner reports while it works.
#[derive(Debug, Clone)]
pub enum Event {
    /// The run is being driven (new, resumed or reattached).
    RunStarted {
        /// Run id.
        run_id: String,
        /// How it started, for display.
        how: String,
    },
    /// A step started (or was reattached).
    StepStarted {
        /// Step id.
        step: String,
        /// Attempt number.
        attempt: u32,
        /// What runs, for display.
        detail: String,
    },
    /// Captured log lines of a step.
    Log {
        /// Step id.
        step: String,
        /// The lines.
        lines: Vec<LogLine>,
    },
    /// A step finished.
    StepFinished {
        /// Step id.
        step: String,
        /// New status.
        status: StepStatus,
        /// Exit code, if any.
        exit_code: Option<i64>,
        /// How long it ran.
        duration: std::time::Duration,
        /// What went wrong.
        error: Option<String>,
    },
    /// A service window opened or changed.
    Window {
        /// Step id.
        step: String,
        /// What it serves.
        url: Option<String>,
        /// When it closes.
        ends_at: chrono::DateTime<Utc>,
    },
    /// Something the operator should know.
    Note(String),
    /// A fresh copy of the run state after each save.
    State(Box<RunState>),
    /// Driving ended (or could not start: the error says why).
    Finished(Result<Finish, String>),
}

/// How driving the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Every step succeeded or was skipped.
    Succeeded,
    /// A step failed; the run halted there.
    Failed {
        /// Step id.
        step: String,
        /// What went wrong.
        error: String,
    },
    /// The operator stopped a step.
    Stopped {
        /// Step id.
        step: String,
    },
    /// We detached; these steps keep running in the engine.
    Detached {
        /// Steps still running.
        running: Vec<String>,
    },
    /// The last run already completed; nothing to do.
    AlreadyDone,
}

type Body = Pin<Box<dyn Future<Output = Result<Option<i64>, String>> + Send>>;

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
    _lock: RunLock,
}

fn ts_now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
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
    ) -> Result<Self, String> {
        if !dc.dir.is_dir() {
            return Err(format!(
                "deployconfig folder {} does not exist: pass --deployconfig DIR (or set STAGE2_DEPLOYCONFIG)",
                dc.dir.display()
            ));
        }
        let lock = RunLock::acquire(&dc.state_dir())?;
        let (pipeline, source) = Pipeline::load(&dc.pipeline_file())?;
        let state = RunState::load(&dc.state_dir())?;
        let (win_tx, win_rx) = mpsc::unbounded_channel();
        Ok(Self {
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
            _lock: lock,
        })
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

    fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    fn st(&mut self) -> Result<&mut RunState, String> {
        self.state
            .as_mut()
            .ok_or_else(|| "no run state".to_string())
    }

    fn save(&mut self) -> Result<(), String> {
        let dir = self.dc.state_dir();
        let state = self.state.as_ref().ok_or("no run state")?;
        state
            .save(&dir)
            .map_err(|e| format!("cannot save the run state in {}: {e}", dir.display()))?;
        self.emit(Event::State(Box::new(state.clone())));
        Ok(())
    }

    fn live(&self, step: &str) -> LiveFn {
        let tx = self.events.clone();
        let step = step.to_string();
        Box::new(move |lines| {
            let _ = tx.send(Event::Log {
                step: step.clone(),
                lines,
            });
        })
    }

    /// Marks a step skipped so the run can go on past it (it must not be running).
    pub fn skip_step(&mut self, id: &str) -> Result<(), String> {
        let st = self.st()?;
        let s = st.step_mut(id).ok_or_else(|| format!("no step {id}"))?;
        if matches!(s.status, StepStatus::Running | StepStatus::Serving) {
            return Err(format!("{id} is running; stop it first"));
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
    ) -> Result<Finish, String> {
        let r = self.run_inner(plan, cmds).await;
        self.emit(Event::Finished(r.clone()));
        r
    }

    /// True while a service window is open.
    pub fn has_windows(&self) -> bool {
        !self.windows.is_empty()
    }

    /// When no run is being driven (it halted): keeps open service windows on time and obeys
    /// their commands. Returns when none is left; `Ok(true)` if told to detach.
    pub async fn serve_windows(
        &mut self,
        cmds: &mut UnboundedReceiver<Command>,
    ) -> Result<bool, String> {
        while !self.windows.is_empty() {
            tokio::select! {
                Some((step, rep)) = self.win_rx.recv() => self.on_window(&step, rep)?,
                c = cmds.recv() => match c {
                    Some(Command::Detach) | None => return Ok(true),
                    Some(Command::ExtendWindow { step, secs }) => self.window_ctl(&step, WindowCtl::Extend(secs)),
                    Some(Command::EndWindow { step }) => self.window_ctl(&step, WindowCtl::End),
                    Some(Command::Stop | Command::Skip) => {}
                },
            }
        }
        Ok(false)
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
    ) -> Result<Finish, String> {
        // A service that died while no run was driven is already recorded as failed.
        self.halt = None;
        let cfg = PipelineConfig::load(&self.dc).map_err(|e| e.to_string())?;
        let how = self.prepare(&plan).await?;
        let Some(how) = how else {
            return Ok(Finish::AlreadyDone);
        };
        let pipeline = self.pipeline.clone();
        self.st()?.align(&pipeline);
        self.save()?;
        let run_id = self.st()?.run_id.clone();
        self.emit(Event::RunStarted { run_id, how });

        // Windows left open by an earlier process are picked up again; ones this runner still
        // watches (a retry after a halt, in the same process) are already in hand.
        for i in 0..pipeline.steps.len() {
            let open_here = self.windows.contains_key(&pipeline.steps[i].id);
            if self.st()?.steps[i].status == StepStatus::Serving && !open_here {
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
        while !self.windows.is_empty() {
            tokio::select! {
                Some((step, rep)) = self.win_rx.recv() => self.on_window(&step, rep)?,
                c = cmds.recv() => match c {
                    Some(Command::Detach) | None => return Ok(self.detached()),
                    Some(Command::ExtendWindow { step, secs }) => self.window_ctl(&step, WindowCtl::Extend(secs)),
                    Some(Command::EndWindow { step }) => self.window_ctl(&step, WindowCtl::End),
                    Some(Command::Stop | Command::Skip) => {
                        for tx in self.windows.values() { let _ = tx.send(WindowCtl::End); }
                    }
                },
            }
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

    fn halted(&mut self, f: Finish) -> Result<Finish, String> {
        let st = self.st()?;
        st.outcome = match f {
            Finish::Stopped { .. } => Outcome::Stopped,
            _ => Outcome::Failed,
        };
        st.finished_at = Some(Utc::now());
        self.save()?;
        Ok(f)
    }

    /// Sets up the state for `plan`; `None` when there is nothing to do.
    async fn prepare(&mut self, plan: &Plan) -> Result<Option<String>, String> {
        match (plan, &self.state) {
            (Plan::Restart, _) | (Plan::Continue, None) => {
                if let Some(old) = self.state.take() {
                    self.end_old_services(&old).await;
                    let archive = self.dc.state_dir().join("runs");
                    let _ = std::fs::create_dir_all(&archive);
                    let _ = std::fs::rename(
                        self.dc.state_dir().join(super::state::STATE_FILE),
                        archive.join(format!("{}.json", old.run_id)),
                    );
                }
                self.state = Some(RunState::new(&self.pipeline));
                Ok(Some("new run".into()))
            }
            (Plan::Continue, Some(st)) => match st.outcome {
                Outcome::InProgress => Ok(Some("reattached to the run in progress".into())),
                Outcome::Succeeded => Ok(None),
                Outcome::Failed | Outcome::Stopped => {
                    let at = st.halted_at().map(|s| s.id.clone()).unwrap_or_default();
                    Err(format!(
                        "the last run {} at {at}. Fix the cause, then resume with `--from {at}` (or start over with `--restart`).",
                        if st.outcome == Outcome::Failed {
                            "failed"
                        } else {
                            "was stopped"
                        }
                    ))
                }
            },
            (Plan::From(id), _) => {
                let idx = self.pipeline.index_of(id).ok_or_else(|| {
                    format!(
                        "no step `{id}` in the pipeline; steps are: {}",
                        self.pipeline.ids()
                    )
                })?;
                match self.state.take() {
                    None => {
                        let mut st = RunState::new(&self.pipeline);
                        for s in st.steps.iter_mut().take(idx) {
                            s.status = StepStatus::Skipped;
                        }
                        self.state = Some(st);
                    }
                    Some(mut st) => {
                        if let Some(r) = st.steps.iter().find(|s| s.status == StepStatus::Running) {
                            let msg = format!(
                                "{} is still running in the engine; reattach without --from (or stop it first)",
                                r.id
                            );
                            self.state = Some(st);
                            return Err(msg);
                        }
                        // A service window inside the rerun range restarts with fresh inputs.
                        for s in st
                            .steps
                            .iter_mut()
                            .skip(idx)
                            .filter(|s| s.status == StepStatus::Serving)
                        {
                            if let Some(name) = s.last().and_then(|a| a.container_id.clone()) {
                                let _ = self.engine.stop(&name, 10).await;
                                let _ = self.engine.remove(&name, true).await;
                            }
                            s.window_ends_at = None;
                        }
                        st.rewind_to(idx);
                        self.state = Some(st);
                    }
                }
                Ok(Some(format!("resuming from {id}")))
            }
        }
    }

    async fn end_old_services(&self, old: &RunState) {
        for s in old.steps.iter().filter(|s| s.status == StepStatus::Serving) {
            if let Some(id) = s.last().and_then(|a| a.container_id.clone()) {
                let _ = self.engine.stop(&id, 10).await;
                let _ = self.engine.remove(&id, true).await;
            }
        }
    }

    fn window_ctl(&self, step: &str, ctl: WindowCtl) {
        match self.windows.get(step) {
            Some(tx) => {
                let _ = tx.send(ctl);
            }
            None => self.emit(Event::Note(format!("{step} has no open window"))),
        }
    }

    fn on_window(&mut self, step: &str, rep: WindowReport) -> Result<(), String> {
        let url = self
            .pipeline
            .steps
            .iter()
            .find(|s| s.id == step)
            .and_then(|s| s.url.clone());
        let st = self.st()?;
        let Some(s) = st.step_mut(step) else {
            return Ok(());
        };
        let mut finished = None;
        match rep {
            WindowReport::Extended(t) => {
                s.window_ends_at = Some(t);
                self.save()?;
                self.emit(Event::Window {
                    step: step.into(),
                    url,
                    ends_at: t,
                });
                return Ok(());
            }
            WindowReport::Closed { reason } => {
                s.status = StepStatus::Succeeded;
                s.window_ends_at = None;
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

    fn labels(&self, step: &str, attempt: u32) -> Result<HashMap<String, String>, String> {
        let run = self.state.as_ref().ok_or("no run state")?.run_id.clone();
        Ok(HashMap::from([
            (labels::TOOL.to_string(), "stage2-tui".to_string()),
            (labels::RUN.to_string(), run),
            (labels::STEP.to_string(), step.to_string()),
            (labels::ATTEMPT.to_string(), attempt.to_string()),
            (
                labels::DEPLOYCONFIG.to_string(),
                self.dc.dir.display().to_string(),
            ),
        ]))
    }

    fn expand(&self, s: &str, cfg: &PipelineConfig) -> String {
        s.replace("{deployconfig}", &self.dc.dir.display().to_string())
            .replace("{bastion_ip}", &cfg.bastion_ip)
    }

    fn container_spec(
        &self,
        step: &Step,
        cfg: &PipelineConfig,
        attempt: u32,
    ) -> Result<ContainerSpec, String> {
        let mut mounts = vec![workdir_mount(&self.dc)];
        mounts.extend(step.mounts.iter().map(|m| Mount {
            source: self.expand(&m.source, cfg),
            target: m.target.clone(),
            options: m.options.clone(),
        }));
        Ok(ContainerSpec {
            name: step.container_name().to_string(),
            image: cfg.image(step.image.as_deref().unwrap_or(&step.id)),
            entrypoint: step.entrypoint.clone(),
            cmd: step
                .command
                .as_ref()
                .map(|c| c.iter().map(|a| self.expand(a, cfg)).collect()),
            env: step.env.iter().map(|e| self.expand(e, cfg)).collect(),
            mounts,
            network_mode: step.network.clone(),
            labels: self.labels(&step.id, attempt)?,
        })
    }

    /// Finds this attempt's container by its labels.
    async fn find_container(&self, step: &str, attempt: u32) -> Result<Option<String>, String> {
        let run = self.state.as_ref().ok_or("no run state")?.run_id.clone();
        let n = attempt.to_string();
        let ids = self
            .engine
            .find_by_labels(&[
                (labels::RUN, &run),
                (labels::STEP, step),
                (labels::ATTEMPT, &n),
            ])
            .await
            .map_err(|e| e.to_string())?;
        Ok(ids.into_iter().next())
    }

    fn new_attempt(
        &mut self,
        i: usize,
        container: Option<String>,
        image: Option<String>,
    ) -> Result<(u32, PathBuf), String> {
        let st = self.st()?;
        let run = st.run_id.clone();
        let s = &mut st.steps[i];
        let n = s.attempts.len() as u32 + 1;
        let log = PathBuf::from(format!("logs/{run}/{}.{n}.log", s.id));
        s.status = StepStatus::Running;
        s.attempts.push(Attempt {
            n,
            started_at: Utc::now(),
            finished_at: None,
            container,
            container_id: None,
            image,
            exit_code: None,
            error: None,
            log: log.clone(),
        });
        self.save()?;
        Ok((n, self.dc.state_dir().join(log)))
    }

    fn set_container_id(&mut self, i: usize, id: &str) -> Result<(), String> {
        if let Some(a) = self.st()?.steps[i].attempts.last_mut() {
            a.container_id = Some(id.to_string());
        }
        self.save()
    }

    /// Runs (or reattaches to) step `i`, handling operator commands while it runs.
    async fn drive(
        &mut self,
        i: usize,
        cfg: &PipelineConfig,
        cmds: &mut UnboundedReceiver<Command>,
    ) -> Result<StepEnd, String> {
        let step = self.pipeline.steps[i].clone();
        let reattach = self.st()?.steps[i].status == StepStatus::Running;
        let started = self.start_body(i, &step, cfg, reattach).await;
        let (body, container) = match started {
            Ok(Some(x)) => x,
            Ok(None) => return Ok(StepEnd::Next),
            Err(error) => return self.finish_step(i, Err(error), None),
        };
        let mut body = body;
        let mut requested: Option<StepStatus> = None;
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
                                self.engine.stop(id, 10).await.map_err(|e| e.to_string())?;
                            }
                            None => break Err("stopped by the operator".into()),
                        }
                    }
                    Some(Command::Stop | Command::Skip) => {}
                    Some(Command::ExtendWindow { step, secs }) => self.window_ctl(&step, WindowCtl::Extend(secs)),
                    Some(Command::EndWindow { step }) => self.window_ctl(&step, WindowCtl::End),
                    Some(Command::Detach) | None => return Ok(StepEnd::Halt(Finish::Detached { running: vec![] })),
                },
            }
        };
        drop(body);
        self.finish_step(i, result, requested)
    }

    fn finish_step(
        &mut self,
        i: usize,
        result: Result<Option<i64>, String>,
        requested: Option<StepStatus>,
    ) -> Result<StepEnd, String> {
        let state_dir = self.dc.state_dir();
        let st = self.st()?;
        let s = &mut st.steps[i];
        let id = s.id.clone();
        let Some(a) = s.attempts.last_mut() else {
            return Err(format!("{id}: no attempt recorded"));
        };
        a.finished_at = Some(Utc::now());
        let (status, error) = match (&result, requested) {
            (_, Some(req)) => (req, Some(format!("{} by the operator", req.word()))),
            (Ok(None | Some(0)), None) => (StepStatus::Succeeded, None),
            (Ok(Some(code)), None) => {
                let tail = last_log_line(&state_dir.join(&a.log))
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default();
                (StepStatus::Failed, Some(format!("exit code {code}{tail}")))
            }
            (Err(e), None) => (StepStatus::Failed, Some(e.clone())),
        };
        if let Ok(code) = result {
            a.exit_code = code;
        }
        a.error = error.clone();
        s.status = status;
        let exit_code = a.exit_code;
        let duration = a
            .duration()
            .and_then(|d| d.to_std().ok())
            .unwrap_or_default();
        self.save()?;
        self.emit(Event::StepFinished {
            step: id.clone(),
            status,
            exit_code,
            duration,
            error: error.clone(),
        });
        Ok(match status {
            StepStatus::Failed => StepEnd::Halt(Finish::Failed {
                step: id,
                error: error.unwrap_or_default(),
            }),
            StepStatus::Stopped => StepEnd::Halt(Finish::Stopped { step: id }),
            _ => StepEnd::Next,
        })
    }

    /// Starts step `i` (or picks up its running container) and returns what to wait on.
    /// `Ok(None)`: nothing to wait on (a service now in its window).
    async fn start_body(
        &mut self,
        i: usize,
        step: &Step,
        cfg: &PipelineConfig,
        reattach: bool,
    ) -> Result<Option<(Body, Option<String>)>, String> {
        match step.kind {
            Kind::Oneshot | Kind::Service => {
                self.start_container_step(i, step, cfg, reattach).await
            }
            Kind::Pull => {
                let (n, log) = self.new_attempt(i, None, None)?;
                self.emit(Event::StepStarted {
                    step: step.id.clone(),
                    attempt: n,
                    detail: format!("checking {} images for tag {}", step.images.len(), cfg.tag),
                });
                let engine = self.engine.clone();
                let images: Vec<String> = step.images.iter().map(|s| cfg.image(s)).collect();
                let creds = cfg.credentials(&self.dc).map_err(|e| e.to_string())?;
                let always = step.always;
                let live = self.live(&step.id);
                Ok(Some((
                    Box::pin(pull_images(engine, images, creds, always, log, live)),
                    None,
                )))
            }
            Kind::Wait => {
                let secs = step.secs.unwrap_or(0);
                let started_at = match (reattach, self.st()?.steps[i].last()) {
                    (true, Some(a)) => a.started_at,
                    _ => {
                        self.new_attempt(i, None, None)?;
                        Utc::now()
                    }
                };
                let n = self.st()?.steps[i].attempts.len() as u32;
                let log = self
                    .dc
                    .state_dir()
                    .join(&self.st()?.steps[i].attempts[n as usize - 1].log);
                let ends = started_at + chrono::Duration::seconds(secs as i64);
                let left = (ends - Utc::now()).to_std().unwrap_or_default();
                let reason = if step.description.is_empty() {
                    "wait".to_string()
                } else {
                    step.description.clone()
                };
                self.emit(Event::StepStarted {
                    step: step.id.clone(),
                    attempt: n,
                    detail: format!("waiting {} s: {reason}", left.as_secs_f64().ceil()),
                });
                let live = self.live(&step.id);
                Ok(Some((
                    Box::pin(async move {
                        let mut sink =
                            LogSink::create(&log, Some(live)).map_err(|e| e.to_string())?;
                        let write = |sink: &mut LogSink, t: &str| {
                            sink.line(Stream::Stdout, ts_now().as_bytes(), t.as_bytes())
                                .map_err(|e| e.to_string())
                        };
                        write(
                            &mut sink,
                            &format!("waiting {} s: {reason}", left.as_secs_f64().ceil()),
                        )?;
                        sink.flush_live();
                        tokio::time::sleep(left).await;
                        write(&mut sink, "done")?;
                        sink.finish().map_err(|e| e.to_string())?;
                        Ok(None)
                    }),
                    None,
                )))
            }
            Kind::Host => {
                if reattach {
                    self.emit(Event::Note(format!(
                        "{}: a host step was interrupted when stage2-tui stopped; running it again",
                        step.id
                    )));
                }
                let (n, log) = self.new_attempt(i, None, None)?;
                self.emit(Event::StepStarted {
                    step: step.id.clone(),
                    attempt: n,
                    detail: step.description.clone(),
                });
                let step = step.clone();
                let dc = self.dc.dir.clone();
                let live = self.live(&step.id);
                Ok(Some((
                    Box::pin(async move {
                        let mut sink =
                            LogSink::create(&log, Some(live)).map_err(|e| e.to_string())?;
                        let r = host::run(&step, &dc, &mut sink).await;
                        sink.finish().map_err(|e| e.to_string())?;
                        r.map(|()| None)
                    }),
                    None,
                )))
            }
        }
    }

    async fn start_container_step(
        &mut self,
        i: usize,
        step: &Step,
        cfg: &PipelineConfig,
        reattach: bool,
    ) -> Result<Option<(Body, Option<String>)>, String> {
        let mut existing = None;
        if reattach && let Some(a) = self.st()?.steps[i].last().cloned() {
            match self.find_container(&step.id, a.n).await? {
                Some(id) => existing = Some((a.n, id, self.dc.state_dir().join(&a.log))),
                None if a.container_id.is_some() => {
                    return Err(format!(
                        "its container {} disappeared while stage2-tui was away (removed by hand?); retry the step",
                        a.container.unwrap_or_default()
                    ));
                }
                // Killed before the container was created: nothing ran, start it now.
                None => {}
            }
        }
        let (n, id, log) = match existing {
            Some((n, id, log)) => {
                let state = self.engine.inspect(&id).await.map_err(|e| e.to_string())?;
                if state.as_ref().is_some_and(|s| s.never_started) {
                    self.emit(Event::Note(format!(
                        "{}: its container was created but not started; starting it",
                        step.id
                    )));
                    self.engine.start(&id).await.map_err(|e| e.to_string())?;
                } else {
                    self.emit(Event::Note(format!("{}: reattached to container {} (it kept running while stage2-tui was away)", step.id, step.container_name())));
                }
                self.set_container_id(i, &id)?;
                (n, id, log)
            }
            None => {
                let (n, log) = self.new_attempt(
                    i,
                    Some(step.container_name().into()),
                    Some(cfg.image(step.image.as_deref().unwrap_or(&step.id))),
                )?;
                let spec = self.container_spec(step, cfg, n)?;
                let service = step.kind == Kind::Service;
                let id = self
                    .engine
                    .create_container(&spec, |_| service)
                    .await
                    .map_err(|e| e.to_string())?;
                self.set_container_id(i, &id)?;
                self.engine.start(&id).await.map_err(|e| e.to_string())?;
                (n, id, log)
            }
        };
        let image = self.st()?.steps[i]
            .last()
            .and_then(|a| a.image.clone())
            .unwrap_or_default();
        self.emit(Event::StepStarted {
            step: step.id.clone(),
            attempt: n,
            detail: format!("container {} from {image}", step.container_name()),
        });
        if step.kind == Kind::Service {
            let ttl = step.ttl_secs.unwrap_or(600) as i64;
            let ends_at = self.st()?.steps[i]
                .window_ends_at
                .unwrap_or_else(|| Utc::now() + chrono::Duration::seconds(ttl));
            self.open_window(i, step, cfg, id, log, ends_at)?;
            return Ok(None);
        }
        let engine = self.engine.clone();
        let live = self.live(&step.id);
        let cid = id.clone();
        let body: Body = Box::pin(async move {
            engine
                .capture(&cid, &log, Some(live), CaptureMode::Auto)
                .await
                .map(|c| Some(c.exit_code))
                .map_err(|e| e.to_string())
        });
        Ok(Some((body, Some(id))))
    }

    fn open_window(
        &mut self,
        i: usize,
        step: &Step,
        cfg: &PipelineConfig,
        id: String,
        log: PathBuf,
        ends_at: chrono::DateTime<Utc>,
    ) -> Result<(), String> {
        let st = self.st()?;
        st.steps[i].status = StepStatus::Serving;
        st.steps[i].window_ends_at = Some(ends_at);
        self.save()?;
        let url = step.url.as_ref().map(|u| self.expand(u, cfg));
        self.emit(Event::Window {
            step: step.id.clone(),
            url,
            ends_at,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        self.windows.insert(step.id.clone(), tx);
        let live = self.live(&step.id);
        tokio::spawn(window::run(
            self.engine.clone(),
            step.id.clone(),
            id,
            log,
            live,
            ends_at,
            rx,
            self.win_tx.clone(),
        ));
        Ok(())
    }

    /// A service was serving when we last left: pick its window up again.
    async fn reopen_window(&mut self, i: usize, cfg: &PipelineConfig) -> Result<(), String> {
        let step = self.pipeline.steps[i].clone();
        let Some(a) = self.st()?.steps[i].last().cloned() else {
            return Ok(());
        };
        let ends_at = self.st()?.steps[i].window_ends_at.unwrap_or_else(Utc::now);
        let found = self.find_container(&step.id, a.n).await?;
        let running = match &found {
            Some(id) => self
                .engine
                .inspect(id)
                .await
                .map_err(|e| e.to_string())?
                .is_some_and(|s| s.running),
            None => false,
        };
        match found {
            Some(id) if running => {
                self.emit(Event::Note(format!(
                    "{}: reattached to {}; its window continues",
                    step.id,
                    step.container_name()
                )));
                self.open_window(i, &step, cfg, id, self.dc.state_dir().join(&a.log), ends_at)
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
                        error: format!("{} stopped before its window ended", step.container_name()),
                    }
                };
                self.on_window(&step.id, rep)
            }
        }
    }
}

/// Every stage container gets the deployconfig at `/tmp/workingdir`, SELinux-relabelled (`:z`).
fn workdir_mount(dc: &Deployconfig) -> Mount {
    Mount {
        source: dc.dir.display().to_string(),
        target: "/tmp/workingdir".into(),
        options: "z".into(),
    }
}

async fn pull_images(
    engine: Engine,
    images: Vec<String>,
    creds: Option<crate::engine::PullCredentials>,
    always: bool,
    log: PathBuf,
    live: LiveFn,
) -> Result<Option<i64>, String> {
    let mut sink = LogSink::create(&log, Some(live)).map_err(|e| e.to_string())?;
    let mut failed = Vec::new();
    for image in &images {
        let present = engine
            .image_exists(image)
            .await
            .map_err(|e| e.to_string())?;
        let say = |sink: &mut LogSink, stream: Stream, t: &str| {
            let _ = sink.line(stream, ts_now().as_bytes(), t.as_bytes());
        };
        if present && !always {
            say(
                &mut sink,
                Stream::Stdout,
                &format!("{image}: present locally"),
            );
            continue;
        }
        say(&mut sink, Stream::Stdout, &format!("{image}: pulling"));
        sink.flush_live();
        let r = engine
            .pull(image, creds.as_ref(), |l| say(&mut sink, Stream::Stdout, l))
            .await;
        match r {
            Ok(()) => say(&mut sink, Stream::Stdout, &format!("{image}: pulled")),
            Err(e) => {
                say(&mut sink, Stream::Stderr, &format!("{image}: {e}"));
                failed.push(image.clone());
            }
        }
        sink.flush_live();
    }
    sink.finish().map_err(|e| e.to_string())?;
    if failed.is_empty() {
        Ok(None)
    } else {
        Err(format!(
            "could not pull {}: check registryurl/imagetag in config.json and that the registry is reachable (log has the engine's message)",
            failed.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployconfig_is_mounted_like_the_script_does() {
        let dc = Deployconfig::new("/home/core/deployconfig");
        assert_eq!(
            workdir_mount(&dc).bind(),
            "/home/core/deployconfig:/tmp/workingdir:z"
        );
    }
}
