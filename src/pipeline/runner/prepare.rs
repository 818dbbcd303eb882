//! Setting up the run state for a plan: a new run, reattaching, or running again from a step
//! (ending the old run's services first).

use super::{Event, Plan, Runner};
use crate::pipeline::error::PipelineError;
use crate::pipeline::spec::Source;
use crate::pipeline::state::{Outcome, RunState, StepStatus};

impl Runner {
    /// Sets up the state for `plan`; `None` when there is nothing to do.
    pub(super) async fn prepare(&mut self, plan: &Plan) -> Result<Option<String>, PipelineError> {
        if plan != &Plan::Restart {
            self.follow_pipeline_change();
        }
        match (plan, &self.state) {
            (Plan::Restart, _) | (Plan::Continue, None) => {
                self.new_run().await;
                Ok(Some("new run".into()))
            }
            (Plan::Continue, Some(st)) => match st.outcome {
                Outcome::InProgress => Ok(Some("reattached to the run in progress".into())),
                Outcome::Succeeded => Ok(None),
                Outcome::Failed | Outcome::Stopped => {
                    let at = st.halted_at().map(|s| s.id.clone()).unwrap_or_default();
                    Err(PipelineError::Refused(format!(
                        "the last run {} at {at}. Fix the cause, then resume with `--from {at}` (or start over with `--restart`).",
                        if st.outcome == Outcome::Failed {
                            "failed"
                        } else {
                            "was stopped"
                        }
                    )))
                }
            },
            (Plan::From(id), _) => {
                let idx = self.pipeline.index_of(id).ok_or_else(|| {
                    PipelineError::Refused(format!(
                        "no step `{id}` in the pipeline; steps are: {}",
                        self.pipeline.ids()
                    ))
                })?;
                self.rewind_to(idx).await?;
                Ok(Some(format!("resuming from {id}")))
            }
        }
    }

    /// A pipeline that changed since the run started: the file was accepted again (Runner::open
    /// refuses one that is not), or removed (the built-in one is trusted). Say so, and go on
    /// with it.
    fn follow_pipeline_change(&mut self) {
        let now = self.pipeline.hash();
        let Some(st) = &mut self.state else {
            return;
        };
        if st.pipeline_hash.as_ref().is_none_or(|h| *h == now) {
            return;
        }
        let what = match &self.source {
            Source::File { path, .. } => format!("{path} (accepted)"),
            Source::Default => "the built-in pipeline".into(),
        };
        let note = format!(
            "the pipeline changed since run {} started: it goes on with {what}",
            st.run_id
        );
        st.pipeline_hash = Some(now);
        st.align(&self.pipeline);
        self.emit(Event::Note(note));
    }

    /// A brand-new run: the old one's services end and its state is kept in `runs/`.
    async fn new_run(&mut self) {
        if let Some(old) = self.state.take() {
            self.end_old_services(&old).await;
            let archive = self.dc.state_dir().join("runs");
            // A link, not a rename: state.json stays in place until the new run's state
            // replaces it atomically, so `status` and attached terminals never see no run.
            let kept = crate::safefs::private_dir(&archive).and_then(|()| {
                std::fs::hard_link(
                    self.dc.state_dir().join(crate::pipeline::state::STATE_FILE),
                    archive.join(format!("{}.json", old.run_id)),
                )
            });
            if let Err(e) = kept {
                self.emit(Event::Note(format!(
                    "the state of run {} could not be kept in {} ({e}); the new run replaces it",
                    old.run_id,
                    archive.display()
                )));
            }
        }
        self.state = Some(RunState::new(&self.pipeline));
    }

    /// The run goes on from step `idx`: the steps before it stay as they are (skipped in a new
    /// run), the ones from it run again.
    async fn rewind_to(&mut self, idx: usize) -> Result<(), PipelineError> {
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
                    return Err(PipelineError::Refused(msg));
                }
                // A service window inside the rerun range restarts with fresh inputs.
                for s in st
                    .steps
                    .iter_mut()
                    .skip(idx)
                    .filter(|s| s.status == StepStatus::Serving)
                {
                    if let Some(name) = s.last().and_then(|a| a.container_id.clone()) {
                        self.end_service(&s.id, &name).await;
                    }
                    s.window_ends_at = None;
                }
                // A service whose window closed while its anchor runs again (terraform
                // makes the bootstrap VM again): it serves again, for a new window.
                for (k, spec) in self.pipeline.steps.iter().enumerate().take(idx) {
                    let anchor_again = spec
                        .starts_after()
                        .and_then(|a| self.pipeline.index_of(a))
                        .is_some_and(|ai| ai >= idx);
                    let s = &mut st.steps[k];
                    if anchor_again
                        && !s.attempts.is_empty()
                        && !matches!(s.status, StepStatus::Serving | StepStatus::Pending)
                    {
                        s.status = StepStatus::Stale;
                        s.window_ends_at = None;
                        s.window_waiting_for = None;
                    }
                }
                st.rewind_to(idx);
                self.state = Some(st);
            }
        }
        Ok(())
    }

    pub(super) async fn end_old_services(&self, old: &RunState) {
        for s in old.steps.iter().filter(|s| s.status == StepStatus::Serving) {
            if let Some(id) = s.last().and_then(|a| a.container_id.clone()) {
                self.end_service(&s.id, &id).await;
            }
        }
    }

    /// Stops and removes a service's container; a failure is reported (its window guard and the
    /// engine's own limit still end it), never swallowed.
    pub(super) async fn end_service(&self, step: &str, id: &str) {
        let r = match self.engine.stop(id, 10).await {
            Ok(()) => self.engine.remove(id, true).await,
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            self.emit(Event::Note(format!(
                "{step}: could not stop and remove its service ({e}); its window guard and the engine's own limit still end it"
            )));
        }
    }
}
