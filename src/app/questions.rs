//! The questions asked before what cannot be undone: a re-run that makes later steps stale or
//! would undo the VMs, a skip, a stop, ending the web server's window, quitting while it runs.

use super::{Action, App, Confirm, Effect, Overlay};
use crate::pipeline::contract::Hazard;
use crate::pipeline::spec::Step;
use crate::pipeline::{Command, Plan, StepStatus};

/// What the question before a re-run needs from the deployconfig's files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RerunFacts {
    /// Steps from there on that would undo the VMs a terraform state lists.
    pub hazards: Vec<Hazard>,
    /// config.json says `bootstrap_complete`.
    pub bootstrap_complete: bool,
}

impl RerunFacts {
    /// Reads them (blocking file I/O: a job's work).
    pub fn read(dir: &std::path::Path, steps: &[Step]) -> Self {
        let bootstrap_complete = steps.iter().any(Self::clears_bootstrap)
            && crate::config::read_json(&dir.join("config.json"))
                .is_ok_and(|c| c.get("bootstrap_complete").is_some());
        Self {
            hazards: crate::pipeline::contract::hazards_of(dir, steps.iter()),
            bootstrap_complete,
        }
    }

    /// The step's contract looks at the deployconfig's files before it runs again.
    fn looks_at_files(s: &Step) -> bool {
        s.contract().is_some_and(|c| c.refuse_while_state.is_some()) || Self::clears_bootstrap(s)
    }

    /// The step runs terraform's apply (its image's own command) and clears `bootstrap_complete`.
    fn clears_bootstrap(s: &Step) -> bool {
        s.container().is_some_and(|c| {
            c.entrypoint.is_none()
                && c.contract
                    .clears_keys
                    .iter()
                    .any(|k| k == "bootstrap_complete")
        })
    }
}

/// The re-run job: not wanted, wanted, or reading.
#[derive(Debug, Default)]
pub(super) enum RerunLook {
    /// Nothing asked.
    #[default]
    Idle,
    /// Asked for, not started yet.
    Wanted(Box<super::work::Job>),
    /// Running.
    Reading,
}

impl App {
    /// Later steps that already ran and will run again.
    pub(super) fn made_stale(&self, from: usize) -> Vec<String> {
        (from + 1..self.pipeline.steps.len())
            .filter(|i| {
                self.run
                    .as_ref()
                    .and_then(|r| r.steps.get(*i))
                    .is_some_and(|s| !s.attempts.is_empty())
            })
            .map(|i| self.pipeline.steps[i].id.clone())
            .collect()
    }

    /// Services before `from` whose window closed but whose anchor runs again: they serve
    /// again, for a new window (the bootstrap VM is made again).
    pub(super) fn restarted_services(&self, from: usize) -> Vec<(String, String, u64)> {
        self.pipeline
            .steps
            .iter()
            .enumerate()
            .take(from)
            .filter_map(|(k, s)| {
                let w = s.window()?;
                let anchor = w.starts_after.as_ref()?;
                let ai = self.pipeline.index_of(anchor)?;
                let st = self.run.as_ref()?.steps.get(k)?;
                let closed = !st.attempts.is_empty()
                    && !matches!(st.status, StepStatus::Serving | StepStatus::Pending);
                (ai >= from && closed).then(|| (s.id.clone(), anchor.clone(), w.ttl_secs))
            })
            .collect()
    }

    /// Running again from the selected step (`verb`: "Retry" or "Run again from"). A question
    /// comes first when that changes something done; when a step from there on has a contract
    /// that looks at the deployconfig's files, a job reads them first and the question (or the
    /// start) comes with its answer: the update reads no file.
    pub(super) fn rerun(&mut self, verb: &'static str) -> Vec<Effect> {
        let from = self.selected;
        let Some(step) = self.pipeline.steps.get(from).map(|s| s.id.clone()) else {
            return vec![];
        };
        let steps = self.pipeline.steps[from..].to_vec();
        if !steps.iter().any(RerunFacts::looks_at_files) {
            return self.ask_rerun(verb, &step, &RerunFacts::default());
        }
        if matches!(self.rerun, RerunLook::Idle) {
            self.rerun = RerunLook::Wanted(Box::new(super::work::Job::Rerun {
                verb,
                step,
                dir: std::path::PathBuf::from(&self.header.deployconfig),
                steps,
            }));
        }
        vec![]
    }

    /// The answer of the re-run job: the question, or the start when there is nothing to ask.
    /// Dropped when the operator has moved on meanwhile (another screen or question).
    pub(super) fn ask_rerun(&mut self, verb: &str, step: &str, facts: &RerunFacts) -> Vec<Effect> {
        self.rerun = RerunLook::Idle;
        let Some(from) = self.pipeline.index_of(step) else {
            return vec![];
        };
        if self.overlay.is_some() || !matches!(self.screen, super::Screen::Dashboard) {
            return vec![];
        }
        let c = self.rerun_question(verb, from, facts);
        self.ask(c, vec![Effect::Start(Plan::From(step.to_string()))])
    }

    /// When running from step `from` runs terraform's apply again while config.json says
    /// `bootstrap_complete` (remove-bootstrap set it): the key goes first, so terraform makes the
    /// bootstrap VM again. The sentence that says so.
    fn bootstrap_made_again(&self, from: usize, facts: &RerunFacts) -> Option<String> {
        if !facts.bootstrap_complete {
            return None;
        }
        let step = self
            .pipeline
            .steps
            .iter()
            .skip(from)
            .find(|s| RerunFacts::clears_bootstrap(s))?;
        Some(format!(
            "config.json says bootstrap_complete (remove-bootstrap set it): stage2-tui removes it before {} runs, so terraform makes the bootstrap VM again.",
            step.id
        ))
    }

    fn rerun_question(&self, verb: &str, from: usize, facts: &RerunFacts) -> Option<Confirm> {
        let id = self.pipeline.steps.get(from)?.id.clone();
        let stale = self.made_stale(from);
        let ca = id == "4.run-installer";
        let restarted = self.restarted_services(from);
        // A re-run that undoes the deployment (a terraform state that lists VMs): the question
        // names the consequence, and only its `y` lets the runner go on.
        let hazards = &facts.hazards;
        let bootstrap_again = self.bootstrap_made_again(from, facts);
        if stale.is_empty()
            && !ca
            && restarted.is_empty()
            && hazards.is_empty()
            && bootstrap_again.is_none()
        {
            return None;
        }
        let mut body = Vec::new();
        body.extend(bootstrap_again);
        // The VM names come from a file a stage writes: masked like any log.
        for h in hazards {
            body.push(
                crate::text::mask(&format!("DANGER: {}.", h.consequence()), &self.secrets)
                    .into_owned(),
            );
            body.push(format!("Safer: {}.", h.remedy()));
        }
        if !hazards.is_empty() {
            let mut then: Vec<Effect> = hazards
                .iter()
                .map(|h| Effect::AllowRerun(h.step.clone()))
                .collect();
            then.push(Effect::Start(Plan::From(id.clone())));
            return Some(Confirm {
                title: format!(
                    "{verb} {id} although {} lists VMs? (y: yes, knowing the consequence)",
                    hazards[0].state_file
                ),
                body,
                then,
                act: None,
            });
        }
        for (svc, anchor, ttl) in &restarted {
            body.push(format!(
                "{svc}'s window has closed: it starts again, for a new {} that counts from {anchor}'s success.",
                crate::text::window_words(*ttl)
            ));
        }
        if ca {
            body.push(
                "4.run-installer regenerates the install CA and the ignition files:".to_string(),
            );
            body.push("everything after it must run again.".to_string());
        }
        if !stale.is_empty() {
            body.push(format!(
                "These steps already ran and become stale: {}.",
                stale.join(", ")
            ));
        }
        Some(Confirm {
            title: format!("{verb} {id}?"),
            body,
            then: vec![Effect::Start(Plan::From(id))],
            act: None,
        })
    }

    /// Quitting: a question first while this TUI drives a run (attached, leaving never affects
    /// the run, so no question).
    pub(super) fn quit_question(&mut self) -> Vec<Effect> {
        if !self.driving || self.driven_by.is_some() {
            return vec![Effect::Quit];
        }
        let running: Vec<String> = (0..self.pipeline.steps.len())
            .filter(|i| {
                matches!(
                    self.status_of(*i),
                    StepStatus::Running | StepStatus::Serving
                )
            })
            .map(|i| self.pipeline.steps[i].id.clone())
            .collect();
        let mut body = if running.is_empty() {
            vec!["The run goes on from where it is when you start stage2-tui again.".into()]
        } else {
            vec![
                format!(
                    "{} {} running in the engine (podman).",
                    running.join(", "),
                    if running.len() == 1 { "keeps" } else { "keep" }
                ),
                "Run stage2-tui again to reattach; nothing is lost.".into(),
            ]
        };
        if let Some(w) = self.window_note() {
            body.push(w);
        }
        self.overlay = Some(Overlay::Confirm(Confirm {
            title: "Quit stage2-tui?".into(),
            body,
            then: vec![Effect::Quit],
            act: None,
        }));
        vec![]
    }

    /// The question before skipping step `id`.
    pub(super) fn skip_question(&self, id: &str) -> Confirm {
        let next = self
            .pipeline
            .steps
            .get(self.selected + 1)
            .map(|s| s.id.clone())
            .unwrap_or_else(|| "the end of the run".into());
        let (body, then) = if self.driving {
            (
                vec![
                    format!("Its container is stopped and the run goes on with {next}."),
                    "Later steps may fail if they need its output.".into(),
                ],
                vec![Effect::Send(Command::Skip)],
            )
        } else {
            (
                vec![
                    format!("The run goes on with {next} as if {id} had succeeded."),
                    "Later steps may fail if they need its output.".into(),
                ],
                vec![Effect::SkipThenContinue(id.to_string())],
            )
        };
        Confirm {
            title: format!("Skip {id}?"),
            body,
            then,
            act: None,
        }
    }

    /// The question before stopping the running step `id`.
    pub(super) fn stop_question(&self, id: &str) -> Confirm {
        Confirm {
            title: format!("Stop {id}?"),
            body: vec![
                format!("Its container is killed and the run halts at {id}."),
                format!(
                    "You can retry it ({}) or skip it ({}) afterwards.",
                    self.key(super::Scope::Dashboard, Action::Retry),
                    self.key(super::Scope::Dashboard, Action::Skip)
                ),
            ],
            then: vec![Effect::Send(Command::Stop)],
            act: None,
        }
    }

    /// The question before ending the web server's window early.
    pub(super) fn end_window_question(&self) -> Confirm {
        let step = self
            .window
            .as_ref()
            .map(|w| w.step.clone())
            .unwrap_or_default();
        Confirm {
            title: "End the ign-webserver window now?".into(),
            body: vec![
                format!("The web server ({step}) is stopped and removed now."),
                "A bootstrap VM that has not fetched bootstrap.ign yet cannot boot.".into(),
            ],
            then: vec![Effect::Send(Command::EndWindow { step })],
            act: None,
        }
    }
}
