//! What setup-flow actions do.

use super::setup::{
    AfterSave, InputFor, Page, Row, SaveFailed, SaveRequest, Saved, Saving, Setup, SetupMsg,
    SetupTask,
};
use super::{Action, App, Effect, Overlay, Screen};
use crate::pipeline::{Outcome, Plan};

impl App {
    /// Opens the setup flow on a deployconfig (and starts the pre-flight checks).
    pub fn open_setup(&mut self, dc: crate::config::Deployconfig) -> Vec<Effect> {
        let files = crate::app::setup::read_again(&dc);
        self.open_setup_on(dc, files)
    }

    /// Asks for the setup flow from the dashboard: its files are read off the update, and it
    /// opens when they come ([`Self::open_setup_on`]).
    pub(super) fn want_setup(&mut self, dc: crate::config::Deployconfig) {
        self.status = Some("opening the setup flow…".into());
        self.setup_wanted = Some(dc);
    }

    /// Opens the setup flow on files already read (and starts the pre-flight checks).
    pub(super) fn open_setup_on(
        &mut self,
        dc: crate::config::Deployconfig,
        files: crate::app::setup::Reloaded,
    ) -> Vec<Effect> {
        self.screen = Screen::Setup(Box::new(Setup::with_files(dc, self.keys.clone(), files)));
        self.status = None;
        self.dirty = true;
        vec![Effect::Setup(SetupTask::Checks)]
    }

    /// A background result for the setup flow.
    pub fn on_setup_msg(&mut self, m: SetupMsg) -> Vec<Effect> {
        self.dirty = true;
        let Some(s) = self.screen.setup_mut() else {
            return vec![];
        };
        let ask = matches!(&m, SetupMsg::Candidate(Ok(_)));
        let next = s.on_msg(m);
        s.look_around();
        if ask && let Some((from, Some(version))) = s.installer.candidate.clone() {
            let dst = s.dc.installer_override();
            let mut body = vec![format!("{from} runs in the installer image:")];
            body.extend(version.lines().take(4).map(|l| format!("  {l}")));
            body.push(if s.installer.override_present {
                format!(
                    "It replaces {} (disconnected installs use it).",
                    dst.display()
                )
            } else {
                format!(
                    "It becomes {} (the override, for disconnected installs).",
                    dst.display()
                )
            });
            self.overlay = Some(Overlay::Confirm(super::Confirm {
                title: "Copy this openshift-install in?".into(),
                body,
                then: vec![],
                act: Some(Action::UseOverride),
            }));
            return vec![];
        }
        match next {
            Some(SetupTask::Tags) => self.tags_task(),
            Some(t) => vec![Effect::Setup(t)],
            None => vec![],
        }
    }

    fn tags_task(&self) -> Vec<Effect> {
        if self.screen.setup().is_some() {
            vec![Effect::Setup(SetupTask::Tags)]
        } else {
            vec![]
        }
    }

    pub(super) fn submit_setup_input(&mut self) -> Vec<Effect> {
        let Some(s) = self.screen.setup_mut() else {
            return vec![];
        };
        let Some((what, text)) = s.input.take() else {
            return vec![];
        };
        match what {
            InputFor::PullTag if !text.trim().is_empty() => {
                s.tag.pulling = Some(format!("pulling {}…", text.trim()));
                s.tag.last_pull = Some(text.trim().to_string());
                vec![Effect::Setup(SetupTask::Pull(text.trim().to_string()))]
            }
            InputFor::OverridePath => s
                .copy_override(&text)
                .map(|t| vec![Effect::Setup(t)])
                .unwrap_or_default(),
            _ => vec![],
        }
    }

    fn plan_after_setup(&self) -> (Plan, String) {
        match self.run.as_ref() {
            None => (Plan::Continue, "start stage 2".into()),
            Some(r) => match (r.outcome, r.halted_at()) {
                (Outcome::Failed | Outcome::Stopped, Some(h)) => (
                    Plan::From(h.id.clone()),
                    format!("resume the last run from {}", h.id),
                ),
                _ => (Plan::Restart, "start a new run of stage 2".into()),
            },
        }
    }

    /// What Start will do, for the review screen.
    pub fn start_description(&self) -> String {
        self.plan_after_setup().1
    }

    fn start_after_setup(&mut self, overwrite: bool) -> Vec<Effect> {
        let (plan, what) = self.plan_after_setup();
        let Some(s) = self.screen.setup_mut() else {
            return vec![];
        };
        let blocking = s.blocking();
        if !blocking.is_empty() {
            s.message = Some(format!(
                "{} problem(s) block the start; the first: {}",
                blocking.len(),
                blocking[0]
            ));
            s.step = Page::Config;
            s.next_problem();
            return vec![];
        }
        s.ask_to_save(overwrite, AfterSave::Start { plan, what });
        vec![]
    }

    /// A save came back: say so, and start the run when that was asked for.
    pub(super) fn on_saved(&mut self, r: Saved) -> Vec<Effect> {
        let Some(s) = self.screen.setup_mut() else {
            return vec![];
        };
        let after = match std::mem::take(&mut s.saving) {
            Saving::Writing(after) => after,
            _ => AfterSave::Nothing,
        };
        let result = s.saved(r);
        // What the loop masks: the secrets as saved (from memory, not read back).
        let secrets = crate::config::secret_values_in(&s.secrets.value);
        s.look_around();
        match (result, after) {
            (Err(SaveFailed { message, conflict }), after) => {
                // An overwrite then does what this save was for, no more.
                if conflict {
                    s.saving = Saving::Conflict(after);
                }
                s.message = Some(message);
                vec![]
            }
            (Ok(saved), AfterSave::Nothing) => {
                s.message = Some(if saved.is_empty() {
                    "nothing to save: no file changed".into()
                } else {
                    format!(
                        "saved {} (atomically, with a backup beside each); nothing was started",
                        saved.join(", ")
                    )
                });
                self.secrets = secrets;
                vec![Effect::Setup(SetupTask::Checks)]
            }
            (Ok(saved), AfterSave::Start { plan, what }) => {
                self.status = Some(if saved.is_empty() {
                    what
                } else {
                    format!("saved {} (backups beside them); {what}", saved.join(", "))
                });
                self.secrets = secrets;
                self.screen = Screen::Dashboard;
                vec![Effect::Start(plan)]
            }
        }
    }

    /// What a question the setup flow asked does once answered yes.
    pub(super) fn act_confirmed(&mut self, a: Action) -> Vec<Effect> {
        let Some(s) = self.screen.setup_mut() else {
            return vec![];
        };
        match a {
            Action::Reload => task(s.reload()),
            Action::Quit => vec![Effect::Quit],
            Action::Back => {
                self.screen = Screen::Dashboard;
                vec![]
            }
            Action::Overwrite => {
                let after = match std::mem::take(&mut s.saving) {
                    Saving::Conflict(after) => after,
                    other => {
                        s.saving = other;
                        AfterSave::Nothing
                    }
                };
                s.ask_to_save(true, after);
                vec![]
            }
            Action::SaveOnly => {
                s.ask_to_save(false, AfterSave::Nothing);
                vec![]
            }
            Action::UseOverride => s
                .adopt_candidate()
                .map(|t| vec![Effect::Setup(t)])
                .unwrap_or_default(),
            _ => vec![],
        }
    }

    /// Asks before `a` would lose unsaved edits (quit, reload); `None` when nothing would be lost.
    fn ask_before_losing(&mut self, a: Action) -> Option<Vec<Effect>> {
        let s = self.screen.setup()?;
        let lost = s.unsaved();
        if lost.is_empty() {
            return None;
        }
        let (title, what) = match a {
            Action::Quit => ("Quit and lose your changes?", "quitting"),
            Action::Back => (
                "Go back to the dashboard and lose your changes?",
                "going back",
            ),
            _ => ("Reload and lose your changes?", "reloading from disk"),
        };
        let mut body = vec![format!("These unsaved changes are lost by {what}:")];
        body.extend(lost);
        if let Some(k) = self
            .keys
            .key_for(super::keymap::Scope::Confirm, Action::SaveOnly)
        {
            body.push(format!(
                "{k} saves them instead (nothing starts, nothing is lost), and stays here."
            ));
        }
        self.overlay = Some(Overlay::Confirm(super::Confirm {
            title: title.into(),
            body,
            then: vec![],
            act: Some(a),
        }));
        Some(vec![])
    }

    /// Saving over a file someone else changed: shows what is dropped, and only `y` saves
    /// (then does what the interrupted save was for: a `w` never starts the run).
    fn ask_overwrite(&mut self) -> Vec<Effect> {
        let Some(s) = self.screen.setup() else {
            return vec![];
        };
        let starts = matches!(s.saving, Saving::Conflict(AfterSave::Start { .. }));
        let mut body = vec![
            "The file changed on disk since you loaded it (a stage, or someone else, rewrote it). Saving yours over it drops what changed there:".to_string(),
        ];
        body.extend(s.overwrite_diff(8));
        body.push(format!(
            "{} reloads it from disk instead (your edits are dropped).",
            s.key(Action::Reload)
        ));
        self.overlay = Some(Overlay::Confirm(super::Confirm {
            title: if starts {
                "Save yours over the change on disk, then start?".into()
            } else {
                "Save yours over the change on disk (nothing starts)?".into()
            },
            body,
            then: vec![],
            act: Some(Action::Overwrite),
        }));
        vec![]
    }

    /// Saves the changed files without starting.
    fn save_only(&mut self) -> Vec<Effect> {
        let Some(s) = self.screen.setup_mut() else {
            return vec![];
        };
        if s.form.raw.is_some() && !s.close_raw() {
            return vec![];
        }
        s.ask_to_save(false, AfterSave::Nothing);
        vec![]
    }

    /// Does a setup-flow action.
    pub(super) fn act_setup(&mut self, a: Action) -> Vec<Effect> {
        if matches!(a, Action::Quit | Action::Reload | Action::Back) {
            if let Some(e) = self.ask_before_losing(a) {
                return e;
            }
            if a == Action::Quit {
                return vec![Effect::Quit];
            }
            // Esc: back to the dashboard (the run's, or the pipeline before any run; `c` comes
            // back here).
            if a == Action::Back {
                self.screen = Screen::Dashboard;
                self.dirty = true;
                return vec![];
            }
        }
        if a == Action::SaveOnly {
            return self.save_only();
        }
        if a == Action::StartRun {
            return self.start_after_setup(false);
        }
        if a == Action::Overwrite && self.screen.setup().is_some_and(Setup::conflict) {
            return self.ask_overwrite();
        }
        let Some(s) = self.screen.setup_mut() else {
            return vec![];
        };
        s.message = None;
        match (s.step, a) {
            (_, Action::NextStep | Action::PrevStep) => s.turn_page(a == Action::NextStep),
            (_, Action::Reload) => task(s.reload()),
            (_, Action::Undo) => {
                s.undo();
                vec![]
            }
            (Page::Checks | Page::Review, Action::Fix) => {
                s.apply_fix().map(task).unwrap_or_default()
            }
            (Page::Checks, Action::Recheck) => {
                s.preflight.results = None;
                task(SetupTask::Checks)
            }
            (Page::Config, _) => s.act_config(a),
            (Page::Installer, _) => s.act_installer(a),
            (Page::Tag, _) => s.act_tag(a),
            _ => vec![],
        }
    }
}

fn task(t: SetupTask) -> Vec<Effect> {
    vec![Effect::Setup(t)]
}

/// The setup flow's own actions, page by page.
impl Setup {
    /// Asks for the changed files to be saved (the loop writes them off the update and hands
    /// the result to [`App::on_saved`]); one save at a time.
    fn ask_to_save(&mut self, overwrite: bool, after: AfterSave) {
        if matches!(self.saving, Saving::Asked(_) | Saving::Writing(_)) {
            self.message = Some("saving…".into());
            return;
        }
        self.message = Some(match after {
            AfterSave::Nothing => "saving…".into(),
            AfterSave::Start { .. } => "saving, then starting…".into(),
        });
        self.saving = Saving::Asked(SaveRequest { overwrite, after });
    }

    /// The next (or previous) page, starting the work it shows.
    fn turn_page(&mut self, forward: bool) -> Vec<Effect> {
        let i = Page::ALL.iter().position(|x| *x == self.step).unwrap_or(0);
        let n = Page::ALL.len();
        self.step = Page::ALL[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }];
        match self.step {
            Page::Checks if self.preflight.results.is_none() => task(SetupTask::Checks),
            // The review judges the edits as they are now.
            Page::Review => task(SetupTask::Checks),
            Page::Installer if self.installer.versions.is_none() => task(SetupTask::Versions),
            Page::Tag if self.tag.tags.is_none() => task(SetupTask::Tags),
            _ => vec![],
        }
    }

    /// An action on the config.json form.
    fn act_config(&mut self, a: Action) -> Vec<Effect> {
        match a {
            Action::RawSecrets => self.open_raw_secrets(),
            Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom => {
                // Among the listed rows (a `/` filter may hide some).
                self.form.selected = crate::app::filter::move_within(
                    &self.form.listed_rows(),
                    self.form.selected,
                    a,
                    10,
                );
            }
            Action::Search => {
                self.form.filter = Some(crate::app::Filter::typing());
            }
            Action::Edit => self.edit(),
            Action::AddRow => self.add_node(),
            Action::DeleteRow => self.remove_node(),
            Action::RawEditor => self.open_raw(),
            Action::NextProblem => self.next_problem(),
            Action::Reveal => {
                if let Some(Row::Field(f)) = self.form.rows.get(self.form.selected).cloned()
                    && f.secret
                    && !self.form.revealed.remove(&f.ptr)
                {
                    self.form.revealed.insert(f.ptr);
                }
            }
            _ => {}
        }
        vec![]
    }

    /// An action on the installer page.
    fn act_installer(&mut self, a: Action) -> Vec<Effect> {
        match a {
            Action::UseEmbedded => self.use_embedded().map(task).unwrap_or_default(),
            Action::UseOverride => self.use_override().map(task).unwrap_or_default(),
            Action::Recheck => {
                self.installer.versions = None;
                task(SetupTask::Versions)
            }
            _ => vec![],
        }
    }

    /// An action on the image tag page.
    fn act_tag(&mut self, a: Action) -> Vec<Effect> {
        match a {
            Action::Up | Action::Down => {
                let n = self
                    .tag
                    .tags
                    .as_ref()
                    .and_then(|t| t.as_ref().ok())
                    .map(Vec::len)
                    .unwrap_or(0);
                self.tag.selected = if a == Action::Up {
                    self.tag.selected.saturating_sub(1)
                } else {
                    (self.tag.selected + 1).min(n.saturating_sub(1))
                };
                vec![]
            }
            Action::Edit => {
                if let Some(Ok(tags)) = &self.tag.tags
                    && let Some((tag, have, all)) = tags.get(self.tag.selected).cloned()
                {
                    self.set_tag(&tag);
                    self.message = Some(if have == all {
                        format!("imagetag set to {tag}")
                    } else {
                        format!(
                            "imagetag set to {tag}: {have} of {all} stage images are local; the pull step fetches the rest"
                        )
                    });
                }
                vec![]
            }
            Action::PullTag => {
                self.input = Some((InputFor::PullTag, String::new()));
                vec![]
            }
            Action::NoTlsVerify => {
                self.tag.tls_verify = false;
                let again = self.tag.last_pull.clone();
                self.message = Some(
                    "pulls skip the registry's certificate check from now on (--tls-verify=false), for this run".into(),
                );
                let mut out = vec![Effect::TlsVerify(false)];
                if let Some(tag) = again {
                    self.tag.pulling = Some(format!("pulling {tag} without TLS verification…"));
                    out.push(Effect::Setup(SetupTask::Pull(tag)));
                }
                out
            }
            Action::Recheck => {
                self.tag.tags = None;
                task(SetupTask::Tags)
            }
            _ => vec![],
        }
    }
}
