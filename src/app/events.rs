//! What the runner and the background checks tell the app: run events, the last run's state,
//! the web server's URL checks.

use super::*;

impl App {
    /// Applies a runner event.
    pub fn on_runner(&mut self, ev: Event) {
        self.dirty = true;
        match ev {
            Event::RunStarted { how, .. } => {
                self.driving = true;
                self.finish = None;
                self.status = Some(format!("run: {how}"));
            }
            Event::StepStarted {
                step,
                detail,
                attempt,
            } => {
                if let Some(t) = self.tails.get_mut(&step) {
                    t.clear();
                }
                let again = if attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                self.status = Some(format!("{step}{again}: {detail}"));
            }
            Event::Log { step, lines } => self.on_log(step, lines),
            Event::StepFinished {
                step,
                status,
                error,
                ..
            } => self.on_step_finished(step, status, error),
            Event::Window {
                step,
                url,
                ends_at,
                waiting_for,
            } => self.on_window(step, url, ends_at, waiting_for),
            Event::Note(n) => self.status = Some(n),
            Event::Trouble(t) => self.trouble = t,
            // Another driver (or none): whatever the old one was doing, it no longer does (its
            // last events may not have arrived); the new one's replay says what runs.
            Event::Driver(d) => {
                if d != self.driven_by {
                    self.driving = false;
                }
                self.driven_by = d;
            }
            // Lines were dropped while this terminal did not read: the panes re-read their
            // tails from the log files (see `work`).
            Event::Resync => {
                self.tails.clear();
                if let Some(v) = self.screen.log_mut() {
                    v.refresh();
                }
            }
            Event::Cluster(c) => self.cluster = Some(*c),
            Event::State(s) => self.on_state(*s),
            Event::Finished(f) => self.on_finished(f),
        }
    }

    fn on_log(&mut self, step: String, lines: Vec<crate::logformat::LogLine>) {
        if let Some(w) = self.window.as_mut().filter(|w| w.step == step) {
            w.fetches
                .extend(crate::pipeline::diagnosis::bootstrap_fetches(
                    lines.iter().map(|l| l.text.as_str()),
                ));
        }
        let tail = self.tails.entry(step.clone()).or_default();
        for l in lines {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(l);
        }
        if let Some(v) = self.screen.log_mut().filter(|v| v.step == step) {
            v.refresh();
        }
    }

    fn on_step_finished(&mut self, step: String, status: StepStatus, error: Option<String>) {
        if self.window.as_ref().is_some_and(|w| w.step == step) {
            self.window = None;
        }
        let text = match error {
            Some(e) => format!("{step} {}: {e}", status.word()),
            None => format!("{step} {}", status.word()),
        };
        // After the run halted, a window closing later must not hide why it halted:
        // the status keeps the failure, the history gets the note.
        if matches!(
            self.finish,
            Some(Ok(Finish::Failed { .. } | Finish::Stopped { .. }))
        ) && !self.driving
        {
            self.messages.push((chrono::Local::now(), text));
        } else {
            self.status = Some(text);
        }
        if let Some(v) = self.screen.log_mut().filter(|v| v.step == step) {
            v.refresh();
        }
    }

    fn on_window(
        &mut self,
        step: String,
        url: Option<String>,
        ends_at: chrono::DateTime<chrono::Utc>,
        waiting_for: Option<String>,
    ) {
        let prev = self.window.take().filter(|w| w.step == step);
        let spec = self.pipeline.steps.iter().find(|s| s.id == step);
        let window = spec.and_then(|s| s.window());
        let ttl = chrono::Duration::seconds(
            window.map_or(crate::pipeline::spec::DEFAULT_TTL_SECS, |w| w.ttl_secs) as i64,
        );
        let anchored = window.is_some_and(|w| w.starts_after.is_some());
        // The gauge counts from when the countdown started: the service's start, or
        // its anchor's success.
        let opened_at = match (&prev, &waiting_for) {
            (Some(p), None) if p.waiting_for.is_none() => p.opened_at,
            (_, None) if anchored => ends_at - ttl,
            (Some(p), _) => p.opened_at,
            // A reattach: the countdown began when the service started, not now.
            (None, None) => self
                .run
                .as_ref()
                .and_then(|r| r.step(&step)?.last().map(|a| a.started_at))
                .filter(|t| *t <= ends_at)
                .unwrap_or(self.now),
            (None, _) => self.now,
        };
        let (check, fetches) = prev
            .map(|p| (p.check, p.fetches))
            .unwrap_or((UrlCheck::Unknown, Vec::new()));
        let mut w = WindowInfo {
            step,
            url,
            opened_at,
            ends_at,
            check,
            waiting_for,
            fetches,
        };
        if w.fetches.is_empty()
            && let Some(tail) = self.tails.get(&w.step)
        {
            w.fetches =
                crate::pipeline::diagnosis::bootstrap_fetches(tail.iter().map(|l| l.text.as_str()));
        }
        self.window = Some(w);
    }

    fn on_state(&mut self, s: RunState) {
        let anchored = |id: &str| {
            self.pipeline
                .steps
                .iter()
                .any(|p| p.id == id && p.starts_after().is_some())
        };
        if let Some(w) = self.window.as_ref().filter(|w| !anchored(&w.step))
            && let Some(a) = s.step(&w.step).and_then(|x| x.last())
        {
            let started = a.started_at;
            if let Some(w) = self.window.as_mut() {
                w.opened_at = started;
            }
        }
        // Tails of logs already on disk are read off the loop (see `work`).
        self.run = Some(s);
        if self.follow_running
            && let Some(i) = self.running_step()
        {
            self.selected = i;
        }
    }

    fn on_finished(&mut self, f: Result<Finish, crate::pipeline::RunError>) {
        self.driving = false;
        self.status = Some(match &f {
            Ok(Finish::Succeeded) => "stage 2 completed successfully".into(),
            Ok(Finish::AlreadyDone) => "stage 2 already completed".into(),
            Ok(Finish::Failed { step, error }) => {
                format!("stage 2 failed at {step}: {error}")
            }
            Ok(Finish::Stopped { step }) => format!("stage 2 stopped at {step}"),
            Ok(Finish::Detached { .. }) => "detached".into(),
            Err(e) => e.message.clone(),
        });
        if let Ok(Finish::Failed { step, .. } | Finish::Stopped { step }) = &f
            && let Some(i) = self.pipeline.index_of(step)
        {
            self.selected = i;
        }
        self.finish = Some(f);
    }

    /// Shows how the last run ended when the TUI opens on it without driving (halted,
    /// failed, completed): the outcome, what to press, and the step where it halted selected.
    pub fn show_last_run(&mut self, st: &RunState) {
        self.finish = Some(Ok(match st.halted_at() {
            Some(s) if st.outcome == crate::pipeline::Outcome::Failed => Finish::Failed {
                step: s.id.clone(),
                error: s.last().and_then(|a| a.error.clone()).unwrap_or_default(),
            },
            Some(s) => Finish::Stopped { step: s.id.clone() },
            None => Finish::Succeeded,
        }));
        let k = |a| self.key(Scope::Dashboard, a);
        self.status = Some(match st.halted_at() {
            Some(s) => format!(
                "the last run halted at {}: press {} to retry it, {} to skip it, {} to change the configuration first",
                s.id,
                k(Action::Retry),
                k(Action::Skip),
                k(Action::Setup)
            ),
            None => format!(
                "stage 2 completed; {} on a step runs again from there",
                k(Action::ResumeFrom)
            ),
        });
        if let Some(i) = st.halted_at().and_then(|s| self.pipeline.index_of(&s.id)) {
            self.selected = i;
        }
    }

    /// The web server check answered.
    pub fn on_url_check(&mut self, step: &str, check: UrlCheck) {
        if let Some(w) = self.window.as_mut().filter(|w| w.step == step)
            && w.check != check
        {
            w.check = check;
            self.dirty = true;
        }
    }
}
