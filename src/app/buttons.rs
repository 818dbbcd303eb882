//! What each action does, which buttons apply now, and the questions asked before destructive ones.

use super::{Action, App, Confirm, Effect, External, LogView, Overlay, Screen};
use crate::app::Scope;
use crate::pipeline::{Command, StepStatus};

const EXTEND_SECS: u64 = 300;

impl App {
    /// The dashboard buttons that apply to the selected step right now, in display order.
    pub fn buttons(&self) -> Vec<Action> {
        let st = self.status_of(self.selected);
        let idle = !self.driving;
        let has_log = self
            .run
            .as_ref()
            .and_then(|r| r.steps.get(self.selected))
            .is_some_and(|s| !s.attempts.is_empty());
        let mut b = Vec::new();
        if idle && matches!(st, StepStatus::Failed | StepStatus::Stopped) {
            b.push(Action::Retry);
        }
        if (idle
            && matches!(
                st,
                StepStatus::Failed | StepStatus::Stopped | StepStatus::Pending | StepStatus::Stale
            ))
            || (self.driving && st == StepStatus::Running)
        {
            b.push(Action::Skip);
        }
        if self.driving && st == StepStatus::Running {
            b.push(Action::Stop);
        }
        if idle
            && self.run.is_some()
            && !matches!(
                st,
                StepStatus::Failed
                    | StepStatus::Stopped
                    | StepStatus::Serving
                    | StepStatus::Running
            )
        {
            b.push(Action::ResumeFrom);
        }
        if has_log {
            b.push(Action::OpenLog);
        }
        if let Some(w) = &self.window {
            // A window still waiting for its anchor has no countdown to extend.
            if w.waiting_for.is_none() {
                b.push(Action::ExtendWindow);
            }
            b.push(Action::EndWindow);
        }
        b
    }

    /// What happens to an open web-server window when this TUI leaves.
    pub fn window_note(&self) -> Option<String> {
        let w = self.window.as_ref()?;
        let ends = w.ends_at.with_timezone(&chrono::Local).format("%H:%M:%S");
        Some(match &w.waiting_for {
            // No countdown yet: the end shown is the engine's own limit, and nothing moves
            // the run on while no stage2-tui drives it.
            Some(anchor) => format!(
                "{} keeps serving; its countdown starts when {anchor} succeeds, and with no stage2-tui driving, the run does not get past {anchor} until you start stage2-tui again. The engine ends {} at {ends} at the latest.",
                w.step, w.step
            ),
            None => format!(
                "{} keeps serving until {ends} (its window); the window guard then stops it, with or without stage2-tui.",
                w.step
            ),
        })
    }

    pub(super) fn step_id(&self) -> String {
        self.pipeline
            .steps
            .get(self.selected)
            .map(|s| s.id.clone())
            .unwrap_or_default()
    }

    /// A shell, inspect, debug shell or pager for the selected step, when it applies; else a
    /// status line that says why not.
    fn external_for(&mut self, a: Action) -> Vec<Effect> {
        let step = self.step_id();
        let st = self.status_of(self.selected);
        let last = self
            .run
            .as_ref()
            .and_then(|r| r.steps.get(self.selected))
            .and_then(|s| s.last())
            .cloned();
        let container = last
            .as_ref()
            .and_then(|a| a.container_id.clone().or_else(|| a.container.clone()));
        let refuse = |app: &mut Self, why: String| {
            app.status = Some(why);
            vec![]
        };
        let ext = match (a, container) {
            (Action::Pager, _) => match last {
                Some(at) => External::Pager {
                    step,
                    log: self.state_dir.join(&at.log),
                },
                None => return refuse(self, format!("{step} has no log yet")),
            },
            (_, None) => {
                return refuse(
                    self,
                    format!("{step} has no container (not run yet, or not a container step)"),
                );
            }
            (Action::Shell, Some(c)) if st == StepStatus::Running || st == StepStatus::Serving => {
                External::Shell { step, container: c }
            }
            (Action::Shell, Some(_)) => {
                return refuse(
                    self,
                    format!(
                        "{step} is not running: a shell needs its container running ({} opens a debug shell in its image)",
                        self.key(Scope::Dashboard, Action::DebugShell)
                    ),
                );
            }
            (Action::DebugShell, Some(c))
                if matches!(st, StepStatus::Failed | StepStatus::Stopped) =>
            {
                External::DebugShell { step, container: c }
            }
            (Action::DebugShell, Some(_)) => {
                return refuse(
                    self,
                    format!("{step} did not fail: a debug shell is for a failed or stopped step"),
                );
            }
            (_, Some(c)) => External::Inspect { step, container: c },
        };
        vec![Effect::External(ext)]
    }

    pub(super) fn ask(&mut self, c: Option<Confirm>, otherwise: Vec<Effect>) -> Vec<Effect> {
        match c {
            Some(c) => {
                self.overlay = Some(Overlay::Confirm(c));
                vec![]
            }
            None => otherwise,
        }
    }

    /// Does what an action asks, if it applies now: an open overlay takes it first, then the
    /// actions that mean the same on every screen, then the screen's own handler.
    pub fn act(&mut self, a: Action) -> Vec<Effect> {
        self.dirty = true;
        if self.overlay.is_some() {
            return self.act_overlay(a);
        }
        if let Some(effects) = self.act_global(a) {
            return effects;
        }
        match self.screen {
            Screen::Dashboard => self.act_dashboard(a),
            Screen::Log(_) => self.act_log(a),
            Screen::Setup(_) => self.act_setup(a),
        }
    }

    /// An action while a question, the help or the message history is open.
    fn act_overlay(&mut self, a: Action) -> Vec<Effect> {
        match self.overlay.take() {
            Some(Overlay::Confirm(c)) => match a {
                Action::Confirm => {
                    let mut out = c.then;
                    if let Some(act) = c.act {
                        out.extend(self.act_confirmed(act));
                    }
                    out
                }
                Action::Cancel | Action::Quit => vec![],
                // A question about losing unsaved setup edits: save them instead, as it says.
                Action::SaveOnly
                    if matches!(c.act, Some(Action::Quit | Action::Reload | Action::Back))
                        && self.screen.setup().is_some() =>
                {
                    self.act_confirmed(Action::SaveOnly)
                }
                _ => {
                    self.overlay = Some(Overlay::Confirm(c));
                    vec![]
                }
            },
            Some(Overlay::Messages(up)) => {
                self.overlay = match a {
                    Action::Cancel | Action::Messages | Action::Quit | Action::Help => {
                        self.messages_filter = None;
                        None
                    }
                    Action::Up => Some(Overlay::Messages(
                        (up + 1).min(self.messages.len().saturating_sub(1)),
                    )),
                    Action::Down => Some(Overlay::Messages(up.saturating_sub(1))),
                    Action::Search => {
                        self.messages_filter = Some(super::Filter::typing());
                        Some(Overlay::Messages(0))
                    }
                    _ => Some(Overlay::Messages(up)),
                };
                vec![]
            }
            Some(Overlay::Help) => {
                self.overlay = match a {
                    Action::Cancel | Action::Help | Action::Quit => None,
                    Action::Messages => Some(Overlay::Messages(0)),
                    _ => Some(Overlay::Help),
                };
                vec![]
            }
            None => vec![],
        }
    }

    /// Actions that mean the same on every screen: help, the message history, mouse, theme.
    fn act_global(&mut self, a: Action) -> Option<Vec<Effect>> {
        Some(match a {
            Action::Messages => {
                self.overlay = Some(Overlay::Messages(0));
                vec![]
            }
            Action::Help => {
                self.overlay = Some(Overlay::Help);
                vec![]
            }
            Action::ToggleMouse => {
                self.mouse = !self.mouse;
                self.status = Some(if self.mouse {
                    "mouse on: click buttons and steps".into()
                } else {
                    "mouse off: the terminal selects text (m turns it back on)".into()
                });
                vec![Effect::SetMouse(self.mouse)]
            }
            Action::CycleTheme => {
                self.theme = (self.theme + 1) % self.themes.len();
                let name = self.theme().name.clone();
                self.status = Some(format!("theme: {name} (remembered for the next start)"));
                vec![Effect::RememberTheme(name)]
            }
            _ => return None,
        })
    }

    /// An action on the dashboard.
    fn act_dashboard(&mut self, a: Action) -> Vec<Effect> {
        let applies = |b: &Vec<Action>| b.contains(&a);
        let buttons = self.buttons();
        let id = self.step_id();
        match a {
            Action::Quit => self.quit_question(),
            Action::Bundle => {
                self.status = Some("writing a support bundle…".into());
                vec![Effect::Bundle]
            }
            Action::Shell | Action::Inspect | Action::DebugShell | Action::Pager => {
                self.external_for(a)
            }
            Action::Setup => self.setup_from_dashboard(),
            Action::FocusPane => {
                self.focus_next_pane();
                vec![]
            }
            Action::Up
            | Action::Down
            | Action::Top
            | Action::Bottom
            | Action::PageUp
            | Action::PageDown
                if self.pane_focus.is_some() =>
            {
                self.scroll_focused_pane(a);
                vec![]
            }
            Action::Search => {
                self.step_filter = Some(super::Filter::typing());
                vec![]
            }
            Action::Up
            | Action::Down
            | Action::Top
            | Action::Bottom
            | Action::PageUp
            | Action::PageDown => {
                // Among the listed steps (a `/` filter may hide some).
                self.selected =
                    super::filter::move_within(&self.listed_steps(), self.selected, a, 1);
                self.follow_running = false;
                vec![]
            }
            Action::OpenLog if applies(&buttons) => {
                self.open_log();
                vec![]
            }
            Action::Retry if applies(&buttons) => self.rerun("Retry"),
            Action::ResumeFrom if applies(&buttons) => self.rerun("Run again from"),
            Action::Skip if applies(&buttons) => {
                let c = self.skip_question(&id);
                self.ask(Some(c), vec![])
            }
            Action::Stop if applies(&buttons) => {
                let c = self.stop_question(&id);
                self.ask(Some(c), vec![])
            }
            Action::ExtendWindow => self.extend_window(applies(&buttons)),
            Action::EndWindow if applies(&buttons) => {
                let c = self.end_window_question();
                self.ask(Some(c), vec![])
            }
            _ => vec![],
        }
    }

    /// Setup, from the dashboard: only while no run is driven.
    fn setup_from_dashboard(&mut self) -> Vec<Effect> {
        if self.driving {
            self.status =
                Some("setup is for before a run: wait until the run halts or completes".into());
            return vec![];
        }
        let dc = crate::config::Deployconfig::new(&self.header.deployconfig);
        self.want_setup(dc);
        vec![]
    }

    /// The keys go to the next log pane (or back to the step list after the last).
    fn focus_next_pane(&mut self) {
        let n = self.pane_count();
        self.pane_focus = match self.pane_focus {
            None => Some((0, 0)),
            Some((k, _)) if k + 1 < n => Some((k + 1, 0)),
            Some(_) => None,
        };
        self.status = Some(match self.pane_focus {
            Some(_) => format!(
                "a log pane has the keys: j/k and PgUp/PgDn scroll it, G goes to its end; {} moves on, Esc gives the keys back",
                self.key(Scope::Dashboard, Action::FocusPane)
            ),
            None => "pane focus off: the keys move the step selection again".into(),
        });
    }

    /// The focused pane scrolls in place, within the lines it keeps.
    fn scroll_focused_pane(&mut self, a: Action) {
        if let Some((_, up)) = self.pane_focus.as_mut() {
            let page = 10;
            *up = match a {
                Action::Up => *up + 1,
                Action::Down => up.saturating_sub(1),
                Action::PageUp => *up + page,
                Action::PageDown => up.saturating_sub(page),
                Action::Top => super::TAIL_LINES,
                _ => 0,
            }
            .min(super::TAIL_LINES);
        }
    }

    /// More time for the web server's window (`offered`: the button is there), or why not.
    fn extend_window(&mut self, offered: bool) -> Vec<Effect> {
        let Some(w) = self.window.as_ref() else {
            return vec![];
        };
        if let Some(anchor) = &w.waiting_for {
            self.status = Some(format!(
                "the web server's window has not started: its countdown starts when {anchor} succeeds"
            ));
            return vec![];
        }
        if !offered {
            return vec![];
        }
        vec![Effect::Send(Command::ExtendWindow {
            step: w.step.clone(),
            secs: EXTEND_SECS,
        })]
    }

    /// Opens the selected step's latest log (its lines come when the index does).
    fn open_log(&mut self) {
        let Some(att) = self
            .run
            .as_ref()
            .and_then(|r| r.steps.get(self.selected))
            .and_then(|s| s.last())
        else {
            return;
        };
        let rows = super::hit::log_rows(self.rows);
        let mut v = LogView::open(&self.step_id(), att.n, &self.state_dir.join(&att.log), rows);
        v.attempts = att.n;
        self.screen = Screen::Log(Box::new(v));
    }

    fn act_log(&mut self, a: Action) -> Vec<Effect> {
        let Some(v) = self.screen.log_mut() else {
            return vec![];
        };
        v.message = None;
        let page = v.height as isize;
        match a {
            // Esc stops a search first; pressed again, it goes back.
            Action::Back if v.cancel() => {}
            Action::Back => {
                v.close();
                self.screen = Screen::Dashboard;
            }
            Action::Quit => {
                v.close();
                self.screen = Screen::Dashboard;
                return self.quit_question();
            }
            Action::Up => v.scroll(-1),
            Action::Down => v.scroll(1),
            Action::PageUp => v.scroll(-page),
            Action::PageDown => v.scroll(page),
            Action::HalfPageUp => v.scroll(-page / 2),
            Action::HalfPageDown => v.scroll(page / 2),
            Action::Top => v.top(),
            Action::Bottom | Action::Follow => v.bottom(),
            Action::Search => v.input = Some(String::new()),
            Action::NextMatch => v.next_match(true),
            Action::PrevMatch => v.next_match(false),
            Action::ToggleWrap => v.wrap = !v.wrap,
            Action::LineNumbers => v.numbers = !v.numbers,
            Action::ToggleTimestamps => v.timestamps = v.timestamps.next(),
            Action::PrevAttempt => {
                let want = v.attempt.saturating_sub(1);
                self.open_attempt(want);
            }
            Action::NextAttempt => {
                let want = v.attempt + 1;
                self.open_attempt(want);
            }
            Action::FirstError => v.first_error(),
            Action::SaveLog => v.save(),
            Action::Pager => {
                return vec![Effect::External(External::Pager {
                    step: v.step.clone(),
                    log: v.index.path().to_path_buf(),
                })];
            }
            Action::CopyLog => {
                let text = crate::text::mask(&v.visible_text(), &self.secrets).into_owned();
                // OSC 52 has no answer: say what was sent and where it can arrive.
                let n = v.visible.len();
                v.message = Some(format!(
                    "sent {n} line{} to the terminal's clipboard (OSC 52: most terminals take it; inside tmux it needs `set -g set-clipboard on`; S saves the log to a file instead)",
                    if n == 1 { "" } else { "s" }
                ));
                return vec![Effect::Clipboard(text)];
            }
            _ => {}
        }
        vec![]
    }

    /// The log view moves to attempt `want` of its step, or says there is none.
    fn open_attempt(&mut self, want: u32) {
        let Some(step) = self.screen.log_mut().map(|v| v.step.clone()) else {
            return;
        };
        let attempts = self.run.as_ref().and_then(|r| r.step(&step));
        let found = attempts.and_then(|s| s.attempts.iter().find(|x| x.n == want).cloned());
        let total = attempts.map_or(0, |s| s.attempts.len() as u32);
        let state_dir = self.state_dir.clone();
        let Some(v) = self.screen.log_mut() else {
            return;
        };
        match found {
            Some(att) => {
                let mut n = LogView::open(&step, att.n, &state_dir.join(&att.log), v.height);
                n.attempts = total;
                n.wrap = v.wrap;
                n.timestamps = v.timestamps;
                v.close();
                *v = n;
            }
            None => {
                v.message = Some(format!(
                    "{step} has {total} attempt(s); this is attempt {}",
                    v.attempt
                ))
            }
        }
    }
}
