//! Drives the steps: start, follow, record, reattach; obeys operator commands.

use crate::pipeline::error::{PipelineError, RunError};
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use super::diagnosis::{Catalogue, Context as DiagnosisContext, Diagnosis};
use super::host;
use super::lock::RunLock;
use super::spec::{Container, Host, Pipeline, Source, Step, Wait, Window, Work};
use super::state::{Attempt, Outcome, RunState, StepStatus};
use super::window_task::{self, WindowCtl, WindowReport};
use crate::config::{Deployconfig, PipelineConfig};
use crate::engine::logs::CaptureMode;
use crate::engine::{ContainerSpec, Engine, Mount, labels};
use crate::logformat::{Live, LiveGate, LogLine, LogSink, Stream, now_ts, parse_saved_line};

mod contracts;
mod drive;
mod hold;
mod prepare;
mod steps;
mod types;
mod windows;
pub use types::{Command, Event, Finish, Plan};

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
            .filter(|s| s.is_service())
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
            Event::Finished(Err(e)) => Event::Finished(Err(RunError {
                message: r(e.message),
                ..e
            })),
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

    fn live(&self, step: &str) -> Live {
        (self.live_factory(step))()
    }

    /// Makes live listeners for a step (a window's capture makes a new one each time it is redone).
    fn live_factory(&self, step: &str) -> impl FnMut() -> Live + Send + 'static {
        let tx = self.events.clone();
        let step = step.to_string();
        let gate = self.live_gate.clone();
        move || {
            let tx = tx.clone();
            let step = step.clone();
            Live::new(move |lines: Vec<LogLine>| {
                let _ = tx.send(Event::Log {
                    step: step.clone(),
                    lines,
                });
            })
            .gated(gate.clone())
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
