//! Step contracts in the runner: what happens before a container step starts (consumed inputs
//! put back, keys cleared, a destroying re-run refused, inputs checked) and the check of what it
//! left behind when it exits 0.

use super::{Event, Plan, Runner};
use crate::logformat::{LogSink, Stream, now_ts};
use crate::pipeline::contract::{self, Contract, hazards_of as hazards};
use crate::pipeline::error::PipelineError;
use crate::pipeline::spec::{Container, Step};
use crate::pipeline::state::StepStatus;

impl Runner {
    /// Lets the next run of `step` go on although it would undo the deployment (the operator
    /// confirmed the consequence); `None`: every step (`run --force`).
    pub fn allow_hazard(&mut self, step: Option<String>) {
        match step {
            Some(s) => {
                self.allowed.insert(s);
            }
            None => self.force = true,
        }
    }

    /// The steps `plan` would run, in order.
    fn steps_to_run(&self, plan: &Plan) -> Vec<&Step> {
        let steps = &self.pipeline.steps;
        let from = match plan {
            Plan::Restart => 0,
            Plan::From(id) => self.pipeline.index_of(id).unwrap_or(steps.len()),
            Plan::Continue => {
                return match &self.state {
                    None => steps.iter().collect(),
                    Some(st) => steps
                        .iter()
                        .filter(|s| {
                            st.step(&s.id).is_none_or(|x| {
                                !x.status.is_done() && x.status != StepStatus::Running
                            })
                        })
                        .collect(),
                };
            }
        };
        steps.iter().skip(from).collect()
    }

    /// Refuses a plan that would run a step whose re-run undoes the deployment (before anything
    /// changes), unless forced or confirmed for that step.
    pub(super) fn refuse_hazards(&self, plan: &Plan) -> Result<(), PipelineError> {
        if self.force {
            return Ok(());
        }
        let found = hazards(&self.dc.dir, self.steps_to_run(plan).into_iter());
        match found.into_iter().find(|h| !self.allowed.contains(&h.step)) {
            None => Ok(()),
            Some(h) => Err(PipelineError::Refused(format!(
                "nothing started: {}. {}: {}.",
                h.consequence(),
                "What to do",
                h.remedy()
            ))),
        }
    }

    /// Before container step `i` starts (not on a reattach): a consumed input put back, copies
    /// kept, keys cleared, a destroying re-run refused, inputs checked. An error: the step does
    /// not start, and fails with it.
    pub(super) fn before_step(&mut self, step: &Step) -> Result<(), PipelineError> {
        let Some(container) = step.container() else {
            return Ok(());
        };
        let c = &container.contract;
        if c.is_empty() {
            return Ok(());
        }
        let dc = self.dc.dir.clone();
        if !self.force
            && !self.allowed.contains(&step.id)
            && let Some(h) = hazards(&dc, std::iter::once(step)).into_iter().next()
        {
            return Err(PipelineError::Refused(format!(
                "not started: {}. What to do: {}",
                h.consequence(),
                h.remedy()
            )));
        }
        self.allowed.remove(&step.id);
        self.back_up(step, c)?;
        self.keep_inputs(step, c)?;
        self.clear_keys(step, container)?;
        let missing = contract::missing_inputs(&dc, c);
        if !missing.is_empty() {
            let makers: Vec<String> = self
                .pipeline
                .steps
                .iter()
                .filter(|s| {
                    s.contract().is_some_and(|c| {
                        c.makes
                            .iter()
                            .chain(&c.fills)
                            .any(|m| missing.iter().any(|x| x.contains(m.as_str())))
                    })
                })
                .map(|s| s.id.clone())
                .collect();
            return Err(PipelineError::Step(format!(
                "not started: its inputs are missing: {}{}",
                missing.join("; "),
                if makers.is_empty() {
                    String::new()
                } else {
                    format!(" (made by {}: run it first)", makers.join(", "))
                }
            )));
        }
        Ok(())
    }

    /// Copies the files the step makes again into `backups/<run>/<step>-<attempt>/` of the
    /// private state folder, saying where.
    fn back_up(&mut self, step: &Step, c: &Contract) -> Result<(), PipelineError> {
        if c.backs_up.is_empty() {
            return Ok(());
        }
        let dc = self.dc.dir.clone();
        let Some(i) = self.pipeline.index_of(&step.id) else {
            return Ok(());
        };
        let st = self.st()?;
        let rel = std::path::PathBuf::from("backups")
            .join(&st.run_id)
            .join(format!("{}-{}", step.id, st.steps[i].attempts.len() + 1));
        let folder = self.dc.state_dir().join(&rel);
        let mut kept = Vec::new();
        for name in &c.backs_up {
            let Ok(bytes) = contract::read_in(&dc, name, 16 << 20) else {
                continue;
            };
            let io = |source| PipelineError::Io {
                action: "back up into",
                path: folder.clone(),
                source,
            };
            crate::safefs::private_dir(&folder).map_err(io)?;
            crate::safefs::Dir::open(&folder)
                .and_then(|d| d.write_atomic(contract::flat_name(name).as_ref(), &bytes, 0o600))
                .map_err(io)?;
            kept.push(name.as_str());
        }
        if !kept.is_empty() {
            self.emit(Event::Note(format!(
                "{}: the old {} kept in {} before it makes them again",
                step.id,
                kept.join(" and "),
                folder.display()
            )));
        }
        Ok(())
    }

    /// Keeps a copy of each consumed input that is there, and puts back one that is gone.
    fn keep_inputs(&mut self, step: &Step, c: &Contract) -> Result<(), PipelineError> {
        let dc = self.dc.dir.clone();
        let state_dir = self.dc.state_dir();
        for rel in &c.keeps {
            let kept = contract::kept_path(&state_dir, rel);
            let io = |action, source| PipelineError::Io {
                action,
                path: kept.clone(),
                source,
            };
            match contract::read_in(&dc, rel, 16 << 20) {
                Ok(bytes) => {
                    crate::safefs::private_dir(&state_dir.join("kept"))
                        .map_err(|e| io("create", e))?;
                    crate::safefs::Dir::open(&state_dir.join("kept"))
                        .and_then(|d| {
                            d.write_atomic(kept.file_name().unwrap_or_default(), &bytes, 0o600)
                        })
                        .map_err(|e| io("keep a copy in", e))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let Ok(Some(bytes)) = crate::safefs::read_private(&kept, 16 << 20, false)
                    else {
                        continue;
                    };
                    crate::safefs::write_inside(&dc, &dc.join(rel), &bytes, 0o600).map_err(
                        |source| PipelineError::Io {
                            action: "put back",
                            path: dc.join(rel),
                            source,
                        },
                    )?;
                    self.emit(Event::Note(format!(
                        "{}: put {rel} back from stage2-tui's copy ({} bytes, as it was before the step last ran: the step consumes it)",
                        step.id,
                        bytes.len()
                    )));
                }
                Err(e) => {
                    return Err(PipelineError::Step(format!(
                        "not started: {rel} cannot be read ({e})"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Removes the contract's `clears_keys` lines from config.json, saying what went.
    fn clear_keys(&mut self, step: &Step, container: &Container) -> Result<(), PipelineError> {
        let c = &container.contract;
        if c.clears_keys.is_empty() {
            return Ok(());
        }
        let dc = self.dc.dir.clone();
        let Ok(bytes) = contract::read_in(&dc, "config.json", 64 << 20) else {
            return Ok(());
        };
        let Ok(mut text) = String::from_utf8(bytes) else {
            return Ok(());
        };
        let mut gone = Vec::new();
        for key in &c.clears_keys {
            let (t, n) = contract::without_key_lines(&text, key);
            if n > 0 {
                text = t;
                gone.push(format!("{key} ({n} line{})", if n == 1 { "" } else { "s" }));
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        let path = dc.join("config.json");
        let mode = std::fs::symlink_metadata(&path)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
            .unwrap_or(0o644);
        crate::safefs::write_inside(&dc, &path, text.as_bytes(), mode).map_err(|source| {
            PipelineError::Io {
                action: "rewrite",
                path: path.clone(),
                source,
            }
        })?;
        self.emit(Event::Note(format!(
            "{}: removed {} from config.json before it runs{}",
            step.id,
            gone.join(", "),
            if c.clears_keys.iter().any(|k| k == "bootstrap_complete")
                && container.entrypoint.is_none()
            {
                ": terraform makes the bootstrap VM again"
            } else {
                ": the step adds it once"
            }
        )));
        Ok(())
    }

    /// Fails step `i` before it started: an attempt with no container whose log says why.
    pub(super) fn refuse_start(
        &mut self,
        i: usize,
        step: &Step,
        why: &PipelineError,
    ) -> Result<(), PipelineError> {
        let (n, log) = self.new_attempt(i, None, None)?;
        self.emit(Event::StepStarted {
            step: step.id.clone(),
            attempt: n,
            detail: "checking its inputs".into(),
        });
        let text = self.redact(&why.to_string());
        let mut sink =
            LogSink::create(&log, Some(self.live(&step.id))).map_err(PipelineError::Log)?;
        sink.line(Stream::Stderr, now_ts().as_bytes(), text.as_bytes())
            .map_err(PipelineError::Log)?;
        sink.finish().map_err(PipelineError::Log)
    }

    /// When step `i` exited 0: how it broke its contract, if it did.
    pub(super) fn contract_broken(&self, i: usize) -> Option<String> {
        let c = self.pipeline.steps.get(i)?.contract()?;
        if c.makes.is_empty() && c.fills.is_empty() && c.states.is_empty() && c.fails_on.is_empty()
        {
            return None;
        }
        let st = self.state.as_ref()?;
        let a = st.steps.get(i)?.attempts.last()?;
        let since: std::time::SystemTime = a.started_at.into();
        let log = self.dc.state_dir().join(&a.log);
        let broken = contract::broken(&self.dc.dir, c, since, &log);
        (!broken.is_empty()).then(|| format!("exited 0 but {}", broken.join("; ")))
    }
}
