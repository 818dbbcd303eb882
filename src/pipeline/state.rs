//! The run's state: what each step did, saved atomically in the deployconfig's state folder.

use crate::pipeline::error::PipelineError;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::spec::Pipeline;

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// Not run yet in this run.
    Pending,
    /// Running now (or when we were last attached).
    Running,
    /// A service step whose window is open.
    Serving,
    /// Finished with exit 0 (a service: its window ended normally).
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Stopped by the operator.
    Stopped,
    /// Skipped by the operator.
    Skipped,
    /// Succeeded earlier, but an earlier step ran again since (e.g. a new install CA): must rerun.
    Stale,
}

impl StepStatus {
    /// Done for the purpose of moving on.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded | StepStatus::Skipped | StepStatus::Serving
        )
    }
    /// Lowercase word for display.
    pub fn word(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Serving => "serving",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Stopped => "stopped",
            StepStatus::Skipped => "skipped",
            StepStatus::Stale => "stale",
        }
    }
}

/// One execution of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1-based attempt number within the run.
    pub n: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Container name (container steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Container id once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Image reference (container steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// What went wrong, for the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Log file, relative to the state folder.
    pub log: PathBuf,
    /// What the failure means and what to do, when the diagnosis catalogue knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<super::diagnosis::Diagnosis>,
}

impl Attempt {
    /// Duration, clamped at zero (podman's FinishedAt can precede StartedAt).
    pub fn duration(&self) -> Option<chrono::Duration> {
        self.finished_at
            .map(|f| (f - self.started_at).max(chrono::Duration::zero()))
    }
}

/// A step's record in the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepState {
    /// Step id (matches the pipeline).
    pub id: String,
    /// Status.
    pub status: StepStatus,
    /// Executions, oldest first.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// For an open service window: when it closes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ends_at: Option<DateTime<Utc>>,
    /// For an open service window whose countdown has not started: the step it waits for
    /// (`window_starts_after`); `window_ends_at` is then the engine's own limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_waiting_for: Option<String>,
}

impl StepState {
    /// The latest attempt.
    pub fn last(&self) -> Option<&Attempt> {
        self.attempts.last()
    }
}

/// How the run as a whole stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Steps are running or still to run.
    InProgress,
    /// Every step succeeded or was skipped.
    Succeeded,
    /// A step failed; the run halted.
    Failed,
    /// The operator stopped a step; the run halted.
    Stopped,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// Format version.
    pub version: u32,
    /// Run id (also on every container's labels).
    pub run_id: String,
    /// When the run was created.
    pub created_at: DateTime<Utc>,
    /// When it last finished (succeeded or halted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Outcome so far.
    pub outcome: Outcome,
    /// One record per pipeline step, in order.
    pub steps: Vec<StepState>,
    /// A hash of the pipeline the run started with: a pipeline file changed mid-run (stage
    /// containers can write the deployconfig) is not taken without a new run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_hash: Option<String>,
    /// `false` when the run pulls with `--tls-verify=false` (remembered for the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_verify: Option<bool>,
}

/// The largest state.json stage2-tui reads (a real one is a few KB).
pub const MAX_STATE_BYTES: u64 = 16 << 20;
/// The most steps a run state may hold.
pub const MAX_STEPS: usize = 1000;
/// The most attempts of one step a run state may hold (rounds are bounded at 10,000).
pub const MAX_ATTEMPTS: usize = 10_000;
/// The earliest time a state may hold.
pub const EARLIEST: &str = "2000-01-01T00:00:00Z";
/// The latest time a state may hold.
pub const LATEST: &str = "2200-01-01T00:00:00Z";

fn check_time(what: &str, t: DateTime<Utc>) -> Result<(), String> {
    let bound = |s: &str| s.parse::<DateTime<Utc>>().unwrap_or_default();
    if t < bound(EARLIEST) || t > bound(LATEST) {
        return Err(format!("{what}: time {t} is outside {EARLIEST}..{LATEST}"));
    }
    Ok(())
}

fn cut(s: &str) -> String {
    s.chars().take(80).collect()
}

/// A run id, step id or container name: 1–128 of letters, digits, `_`, `-` (and `.` when
/// `dots`), not starting with `.` or `-`, and never `.` or `..`.
pub fn is_name(s: &str, dots: bool) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with(['.', '-'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || (dots && c == '.'))
}

/// A step log's path as the runner makes it: `logs/<run id>/<file>`, relative, each part a
/// plain name.
pub fn is_log_path(p: &Path) -> bool {
    let parts: Vec<_> = p.components().collect();
    parts.len() == 3
        && parts[0] == std::path::Component::Normal("logs".as_ref())
        && parts[1..].iter().all(|c| match c {
            std::path::Component::Normal(n) => n.to_str().is_some_and(|n| is_name(n, true)),
            _ => false,
        })
}

/// File name of the state inside the state folder.
pub const STATE_FILE: &str = "state.json";

impl RunState {
    /// A fresh run for `pipeline`.
    pub fn new(pipeline: &Pipeline) -> Self {
        let now = Utc::now();
        let run_id = format!(
            "{}-{:04x}",
            now.format("%Y%m%d-%H%M%S"),
            (now.timestamp_subsec_nanos() ^ std::process::id()) & 0xffff
        );
        let mut state = Self {
            version: 1,
            run_id,
            created_at: now,
            finished_at: None,
            outcome: Outcome::InProgress,
            steps: Vec::new(),
            pipeline_hash: Some(pipeline.hash()),
            tls_verify: None,
        };
        state.align(pipeline);
        state
    }

    /// Loads the state from `state_dir`, `None` if there is none yet.
    ///
    /// Nothing in it is trusted: the file is read with [`crate::safefs::read_private`] (no
    /// link, no pipe, ours, at most [`MAX_STATE_BYTES`]) and then [`RunState::check`]ed, so no
    /// state file can make stage2-tui touch a path outside `state_dir`, overflow a time
    /// computation or name a container by something that is not a name.
    pub fn load(state_dir: &Path) -> Result<Option<Self>, PipelineError> {
        let path = state_dir.join(STATE_FILE);
        let damaged = |why: String| {
            PipelineError::State(format!(
                "{} is damaged ({why}); move it aside to start a new run",
                path.display()
            ))
        };
        match crate::safefs::read_private(&path, MAX_STATE_BYTES, false) {
            Ok(Some(bytes)) => {
                let st: Self =
                    serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
                st.check().map_err(damaged)?;
                Ok(Some(st))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(PipelineError::State(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// Checks every value a path, a name or a computation is built from: ids by pattern, log
    /// paths relative and inside `logs/`, times within [`EARLIEST`]..[`LATEST`], counts bounded.
    pub fn check(&self) -> Result<(), String> {
        if self.version != 1 {
            return Err(format!("format version {} is not 1", self.version));
        }
        if !is_name(&self.run_id, false) {
            return Err(format!("run id {:?} is not a run id", cut(&self.run_id)));
        }
        if self.steps.len() > MAX_STEPS {
            return Err(format!("{} steps (at most {MAX_STEPS})", self.steps.len()));
        }
        check_time("created_at", self.created_at)?;
        if let Some(t) = self.finished_at {
            check_time("finished_at", t)?;
        }
        for s in &self.steps {
            if !is_name(&s.id, true) {
                return Err(format!("step id {:?} is not a step id", cut(&s.id)));
            }
            if s.attempts.len() > MAX_ATTEMPTS {
                return Err(format!(
                    "{}: {} attempts (at most {MAX_ATTEMPTS})",
                    s.id,
                    s.attempts.len()
                ));
            }
            if let Some(t) = s.window_ends_at {
                check_time("window_ends_at", t)?;
            }
            if let Some(w) = &s.window_waiting_for
                && !is_name(w, true)
            {
                return Err(format!("{}: window_waiting_for {:?}", s.id, cut(w)));
            }
            for (k, a) in s.attempts.iter().enumerate() {
                let at = format!("{} attempt {}", s.id, k + 1);
                if a.n as usize != k + 1 {
                    return Err(format!("{at}: numbered {}", a.n));
                }
                check_time(&at, a.started_at)?;
                if let Some(t) = a.finished_at {
                    check_time(&at, t)?;
                }
                if let Some(c) = &a.container
                    && !is_name(c, true)
                {
                    return Err(format!("{at}: container name {:?}", cut(c)));
                }
                if let Some(c) = &a.container_id
                    && !(c.len() <= 128
                        && !c.is_empty()
                        && c.bytes().all(|b| b.is_ascii_hexdigit()))
                {
                    return Err(format!("{at}: container id {:?}", cut(c)));
                }
                if !is_log_path(&a.log) {
                    return Err(format!(
                        "{at}: log {:?} is not a file inside the state folder's logs/",
                        cut(&a.log.to_string_lossy())
                    ));
                }
            }
        }
        Ok(())
    }
    /// Saves atomically: temp file, fsync, rename, fsync of the folder.
    /// The file is 0600 in a 0700 folder; a failed save leaves no temp file behind.
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        crate::safefs::private_dir(state_dir)?;
        let mut bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        crate::safefs::Dir::open(state_dir)?.write_atomic(STATE_FILE.as_ref(), &bytes, 0o600)
    }

    /// The run's two figures. **work**: the time steps spent working, every attempt of every
    /// step, without a service's serving time (a window is waiting, not work). **wall**: from the
    /// run's creation to its end (or `now`).
    pub fn work_and_wall(
        &self,
        pipeline: &Pipeline,
        now: DateTime<Utc>,
    ) -> (chrono::Duration, chrono::Duration) {
        let service = |id: &str| pipeline.steps.iter().any(|s| s.id == id && s.is_service());
        let work = self
            .steps
            .iter()
            .filter(|s| !service(&s.id))
            .flat_map(|s| &s.attempts)
            .map(|a| (a.finished_at.unwrap_or(now) - a.started_at).max(chrono::Duration::zero()))
            .fold(chrono::Duration::zero(), |t, d| {
                t.checked_add(&d).unwrap_or(chrono::Duration::MAX)
            });
        let wall =
            (self.finished_at.unwrap_or(now) - self.created_at).max(chrono::Duration::zero());
        (work, wall)
    }

    /// Lines up the step records with `pipeline` (by id), keeping what matches.
    pub fn align(&mut self, pipeline: &Pipeline) {
        let mut old = std::mem::take(&mut self.steps);
        self.steps = pipeline
            .steps
            .iter()
            .map(|s| match old.iter().position(|o| o.id == s.id) {
                Some(i) => old.swap_remove(i),
                None => StepState {
                    id: s.id.clone(),
                    status: StepStatus::Pending,
                    attempts: Vec::new(),
                    window_ends_at: None,
                    window_waiting_for: None,
                },
            })
            .collect();
    }

    /// Step record by id.
    pub fn step(&self, id: &str) -> Option<&StepState> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Mutable step record by id.
    pub fn step_mut(&mut self, id: &str) -> Option<&mut StepState> {
        self.steps.iter_mut().find(|s| s.id == id)
    }

    /// The first step that failed or was stopped.
    pub fn halted_at(&self) -> Option<&StepState> {
        self.steps
            .iter()
            .find(|s| matches!(s.status, StepStatus::Failed | StepStatus::Stopped))
    }

    /// Makes the run start again at step `idx`: that step and every later one that had run
    /// become stale (or pending), and the run is in progress again.
    pub fn rewind_to(&mut self, idx: usize) {
        for s in self.steps.iter_mut().skip(idx) {
            s.status = match s.status {
                StepStatus::Pending => StepStatus::Pending,
                _ if s.attempts.is_empty() => StepStatus::Pending,
                _ => StepStatus::Stale,
            };
        }
        self.outcome = Outcome::InProgress;
        self.finished_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pipeline::default_pipeline().unwrap();
        let mut s = RunState::new(&p);
        s.steps[1].status = StepStatus::Failed;
        s.save(dir.path()).unwrap();
        assert_eq!(RunState::load(dir.path()).unwrap(), Some(s));
        assert!(!dir.path().join(".state.json.tmp").exists());
    }

    #[test]
    fn rewind_marks_later_steps_stale() {
        let p = Pipeline::default_pipeline().unwrap();
        let mut s = RunState::new(&p);
        for st in s.steps.iter_mut().take(4) {
            st.status = StepStatus::Succeeded;
            st.attempts.push(Attempt {
                n: 1,
                started_at: Utc::now(),
                finished_at: None,
                container: None,
                container_id: None,
                image: None,
                exit_code: Some(0),
                error: None,
                log: PathBuf::new(),
                diagnosis: None,
            });
        }
        s.outcome = Outcome::Failed;
        s.rewind_to(1);
        let st: Vec<_> = s.steps.iter().map(|x| x.status).take(5).collect();
        assert_eq!(
            st,
            [
                StepStatus::Succeeded,
                StepStatus::Stale,
                StepStatus::Stale,
                StepStatus::Stale,
                StepStatus::Pending
            ]
        );
        assert_eq!(s.outcome, Outcome::InProgress);
    }
}
