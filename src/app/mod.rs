//! The TUI's state and its update: events in, effects out. No terminal and no engine here, so
//! every screen state can be built and tested directly.

pub mod action;
mod buttons;
mod events;
mod filter;
pub mod hit;
pub mod keymap;
mod logview;
mod logwork;
mod questions;
pub mod setup;
mod setup_actions;
pub mod theme;
pub mod work;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

pub use action::Action;
pub use filter::Filter;
pub use keymap::{Keymap, Scope};
pub use logview::{LogView, Search, Timestamps};
pub use logwork::{LogDone, LogJob, LogWork, SaveTo};

use crate::logformat::LogLine;
use crate::pipeline::{Command, Event, Finish, Pipeline, Plan, RunState, StepStatus};
use hit::Hit;
use theme::Theme;

/// Lines kept in memory per step for the dashboard panes (the full log is on disk).
pub const TAIL_LINES: usize = 500;

/// What the app asks the outside world to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send a command to the run being driven.
    Send(Command),
    /// Start driving with this plan (only when idle).
    Start(Plan),
    /// Mark a step skipped, then go on.
    SkipThenContinue(String),
    /// Leave the TUI (stages keep running).
    Quit,
    /// Turn mouse capture on or off.
    SetMouse(bool),
    /// Put text on the clipboard (OSC 52).
    Clipboard(String),
    /// Background work for the setup flow.
    Setup(setup::SetupTask),
    /// File work, run off the loop; its answer comes back as [`work::Msg::Done`].
    Work(work::Job),
    /// See whether the web server's URL answers (the answer comes back as
    /// [`work::Msg::UrlChecked`]).
    CheckUrl {
        /// The serving step.
        step: String,
        /// Its URL.
        url: String,
    },
    /// Write a support bundle beside the deployconfig's files.
    Bundle,
    /// Pull with (`true`) or without (`false`) checking the registry's certificate, for the run.
    TlsVerify(bool),
    /// Let the next run of this step go on although it undoes the deployment (confirmed).
    AllowRerun(String),
    /// Remember this theme for the next start (the user's config folder).
    RememberTheme(String),
    /// Step aside for an interactive program on the terminal (a shell, `$PAGER`), then come
    /// back as it was.
    External(External),
}

/// What the TUI steps aside for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum External {
    /// A shell in this running container.
    Shell {
        /// The step (for messages).
        step: String,
        /// Container id or name.
        container: String,
    },
    /// The engine's description of this container, in `$PAGER`.
    Inspect {
        /// The step.
        step: String,
        /// Container id or name.
        container: String,
    },
    /// A shell in this (failed) container's image, with its mounts.
    DebugShell {
        /// The step.
        step: String,
        /// Container id or name.
        container: String,
    },
    /// A saved log (masked) in `$PAGER`.
    Pager {
        /// The step.
        step: String,
        /// The log file.
        log: PathBuf,
    },
}

/// Which screen is showing, owning the state only that screen has (so a log view without the
/// log screen, or setup state behind the dashboard, cannot exist).
pub enum Screen {
    /// The run dashboard.
    Dashboard,
    /// One step's full log.
    Log(Box<LogView>),
    /// The setup flow before a run.
    Setup(Box<setup::Setup>),
}

impl Screen {
    /// The log view, when it is the screen.
    pub fn log(&self) -> Option<&LogView> {
        match self {
            Screen::Log(v) => Some(v),
            _ => None,
        }
    }
    /// The log view, when it is the screen.
    pub fn log_mut(&mut self) -> Option<&mut LogView> {
        match self {
            Screen::Log(v) => Some(v),
            _ => None,
        }
    }
    /// The setup flow, when it is the screen.
    pub fn setup(&self) -> Option<&setup::Setup> {
        match self {
            Screen::Setup(s) => Some(s),
            _ => None,
        }
    }
    /// The setup flow, when it is the screen.
    pub fn setup_mut(&mut self) -> Option<&mut setup::Setup> {
        match self {
            Screen::Setup(s) => Some(s),
            _ => None,
        }
    }
}

/// A yes/no question before something destructive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    /// The question.
    pub title: String,
    /// What will happen.
    pub body: Vec<String>,
    /// What "yes" does.
    pub then: Vec<Effect>,
    /// An action of this app that "yes" does (discarding edits, say), after `then`.
    pub act: Option<Action>,
}

/// Overlays drawn above the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// Every key of the current screen.
    Help,
    /// Every message so far, whole, with its time; the number is how far scrolled up.
    Messages(usize),
    /// A question.
    Confirm(Confirm),
}

/// Result of checking the web server's URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlCheck {
    /// Not checked yet.
    Unknown,
    /// Answered with this status and body size.
    Answered {
        /// HTTP status.
        status: u16,
        /// Content-Length, if given.
        bytes: Option<u64>,
    },
    /// Did not answer.
    Failed(String),
}

/// An open service window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowInfo {
    /// Step id.
    pub step: String,
    /// URL served.
    pub url: Option<String>,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
    /// When it closes.
    pub ends_at: DateTime<Utc>,
    /// Latest URL check.
    pub check: UrlCheck,
    /// The step whose success starts the countdown, while it has not succeeded.
    pub waiting_for: Option<String>,
    /// Fetches of bootstrap.ign in the web server's own access log.
    pub fetches: Vec<crate::pipeline::diagnosis::Fetch>,
}

/// Header facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// Deployconfig folder.
    pub deployconfig: String,
    /// Engine description.
    pub engine: String,
}

/// Everything the views draw.
pub struct App {
    /// The pipeline.
    pub pipeline: Pipeline,
    /// The run as last saved.
    pub run: Option<RunState>,
    /// Header facts.
    pub header: Header,
    /// Current screen and its state.
    pub screen: Screen,
    /// Overlay, if any.
    pub overlay: Option<Overlay>,
    /// Selected step index.
    pub selected: usize,
    /// Selection follows the running step until the operator moves it.
    pub follow_running: bool,
    /// Recent lines per step.
    pub tails: HashMap<String, VecDeque<LogLine>>,
    /// The open service window.
    pub window: Option<WindowInfo>,
    /// A run is being driven right now.
    pub driving: bool,
    /// How the last drive ended.
    pub finish: Option<Result<Finish, crate::pipeline::RunError>>,
    /// Last note for the status line.
    pub status: Option<String>,
    /// Available themes.
    pub themes: Vec<Theme>,
    /// Index of the theme in use.
    pub theme: usize,
    /// Mouse capture on.
    pub mouse: bool,
    /// Key bindings.
    pub keys: Keymap,
    /// "Now", set by the loop (fixed in snapshots).
    pub now: DateTime<Utc>,
    /// Animation frame.
    pub tick: u64,
    /// State folder (for log paths).
    pub state_dir: PathBuf,
    /// Where saved logs go.
    pub export_dir: PathBuf,
    /// Plain icons (the Linux console has no braille or check marks).
    pub ascii: bool,
    /// Set when anything visible changed.
    pub dirty: bool,
    /// Terminal rows, from the last resize.
    pub rows: u16,
    /// Secret values (from secrets.json) masked wherever logs are shown.
    pub secrets: Vec<String>,
    /// What keeps the run from going on by itself (engine unreachable, disk full): a banner.
    pub trouble: Option<String>,
    /// Set when another process drives the run and this TUI is attached to it.
    pub driven_by: Option<String>,
    /// Every status message, error and engine event so far, whole, with its local time.
    pub messages: Vec<(DateTime<chrono::Local>, String)>,
    last_recorded: [Option<String>; 4],
    /// The last lines of logs on disk are being read.
    tails_loading: bool,
    /// The setup flow asked for from the dashboard: its files are being read off the update.
    setup_wanted: Option<crate::config::Deployconfig>,
    /// The re-run question's job (what it needs from disk).
    rerun: questions::RerunLook,
    /// When the serving step's URL is looked at next.
    url_due: std::time::Instant,
    /// The last look at the cluster (nodes, CSRs, operators), once it could be asked.
    pub cluster: Option<crate::pipeline::cluster::Snapshot>,
    /// `/` on the dashboard: only the steps that match are listed.
    pub step_filter: Option<Filter>,
    /// Tab on the dashboard: which log pane has the movement keys (0: the selected step's), and
    /// how many lines it is scrolled up from its end.
    pub pane_focus: Option<(usize, usize)>,
    /// `/` in the message history: only the messages that match are shown.
    pub messages_filter: Option<Filter>,
}

/// Messages kept in the history.
pub const MESSAGES_KEPT: usize = 2000;

impl App {
    /// A new app for `pipeline` in a deployconfig's `state_dir`.
    pub fn new(
        pipeline: Pipeline,
        header: Header,
        state_dir: PathBuf,
        export_dir: PathBuf,
        keys: Keymap,
        themes: Vec<Theme>,
    ) -> Self {
        Self {
            pipeline,
            run: None,
            header,
            screen: Screen::Dashboard,
            overlay: None,
            selected: 0,
            follow_running: true,
            tails: HashMap::new(),
            window: None,
            driving: false,
            finish: None,
            status: None,
            themes: if themes.is_empty() {
                vec![Theme::monochrome()]
            } else {
                themes
            },
            theme: 0,
            mouse: true,
            keys,
            now: Utc::now(),
            tick: 0,
            state_dir,
            export_dir,
            ascii: false,
            dirty: true,
            rows: 24,
            secrets: Vec::new(),
            trouble: None,
            driven_by: None,
            cluster: None,
            step_filter: None,
            pane_focus: None,
            messages_filter: None,
            messages: Vec::new(),
            last_recorded: Default::default(),
            tails_loading: false,
            setup_wanted: None,
            rerun: Default::default(),
            url_due: std::time::Instant::now(),
        }
    }

    /// Problems found while starting (a key map or theme that did not load): every one goes
    /// into the message history (`M`), and the first shows at once.
    pub fn startup_problems(&mut self, problems: Vec<String>) {
        for p in &problems {
            self.messages.push((chrono::Local::now(), p.clone()));
        }
        self.status = problems.into_iter().next();
        self.last_recorded[0] = self.status.clone();
    }

    /// Adds any new status, setup, log-view or banner message to the history (called by the
    /// loop after each update; cheap when nothing changed).
    pub fn record_messages(&mut self) {
        let now = [
            self.status.as_deref(),
            self.screen.setup().and_then(|s| s.message.as_deref()),
            self.screen.log().and_then(|v| v.message.as_deref()),
            self.trouble.as_deref(),
        ];
        // Compared by reference first: this runs on every turn of the loop, so nothing is
        // cloned unless a message changed.
        for (slot, msg) in self.last_recorded.iter_mut().zip(now) {
            if slot.as_deref() != msg {
                if let Some(m) = msg {
                    self.messages.push((chrono::Local::now(), m.to_string()));
                }
                *slot = msg.map(str::to_string);
            }
        }
        if self.messages.len() > MESSAGES_KEPT {
            let extra = self.messages.len() - MESSAGES_KEPT;
            self.messages.drain(..extra);
        }
    }

    /// The key bound to `action` in `scope` (or globally), for messages that name it.
    pub fn key(&self, scope: Scope, action: Action) -> String {
        self.keys
            .key_for(scope, action)
            .unwrap_or_else(|| format!("({})", action.label()))
    }

    /// The theme in use.
    pub fn theme(&self) -> &Theme {
        &self.themes[self.theme.min(self.themes.len() - 1)]
    }

    /// Status of step `i`.
    pub fn status_of(&self, i: usize) -> StepStatus {
        self.run
            .as_ref()
            .and_then(|r| r.steps.get(i))
            .map(|s| s.status)
            .unwrap_or(StepStatus::Pending)
    }

    /// Index of the running step, if any.
    pub fn running_step(&self) -> Option<usize> {
        (0..self.pipeline.steps.len()).find(|i| self.status_of(*i) == StepStatus::Running)
    }

    /// True when something on screen moves by itself (spinner, countdown, clocks).
    pub fn animating(&self) -> bool {
        self.driving || self.window.is_some() || self.working()
    }

    /// The scope keys are looked up in.
    pub fn scope(&self) -> Scope {
        match (&self.overlay, &self.screen) {
            (Some(Overlay::Confirm(_)), _) => Scope::Confirm,
            (Some(Overlay::Help | Overlay::Messages(_)), _) => Scope::Help,
            (None, Screen::Log(_)) => Scope::Log,
            (None, Screen::Setup(_)) => Scope::Setup,
            (None, Screen::Dashboard) => Scope::Dashboard,
        }
    }

    /// Handles a key.
    /// The steps the dashboard lists (those the `/` filter lets through), in order.
    pub fn listed_steps(&self) -> Vec<usize> {
        (0..self.pipeline.steps.len())
            .filter(|i| {
                self.step_filter.as_ref().is_none_or(|f| {
                    f.matches(&self.pipeline.steps[*i].id) || f.matches(self.status_of(*i).word())
                })
            })
            .collect()
    }

    /// How many log panes the dashboard shows at this height (as it lays them out).
    pub fn pane_count(&self) -> usize {
        match self.rows {
            0..=23 => 1,
            24..=39 => 2,
            _ => 3,
        }
    }

    /// Keeps the selection on a listed step.
    fn select_a_match(&mut self) {
        let listed = self.listed_steps();
        if !listed.contains(&self.selected)
            && let Some(first) = listed.first()
        {
            self.selected = *first;
            self.follow_running = false;
        }
    }

    pub fn on_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        self.dirty = true;
        let effects = self.key_effects(k);
        // What the setup views show of the installer files and the pending diffs is worked
        // out here, after a key that may have changed them, not by the views on every frame.
        if let Some(s) = self.screen.setup_mut() {
            s.look_around();
        }
        effects
    }

    fn key_effects(&mut self, k: KeyEvent) -> Vec<Effect> {
        if let Some(v) = self.screen.log_mut()
            && let Some(input) = v.input.as_mut()
        {
            match k.code {
                KeyCode::Enter => {
                    let q = std::mem::take(input);
                    v.input = None;
                    v.run_search(q);
                }
                KeyCode::Esc => v.input = None,
                KeyCode::Backspace => {
                    input.pop();
                }
                KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => v.input = None,
                KeyCode::Char(c) => input.push(c),
                _ => {}
            }
            return vec![];
        }
        // A `/` filter being typed takes the keys; Esc drops a filter that is set.
        if matches!(self.overlay, Some(Overlay::Messages(_))) {
            if Filter::key(&mut self.messages_filter, &k) {
                self.overlay = Some(Overlay::Messages(0));
                return vec![];
            }
        } else if self.overlay.is_none() && matches!(self.screen, Screen::Dashboard) {
            if Filter::key(&mut self.step_filter, &k) {
                self.select_a_match();
                return vec![];
            }
            if k.code == KeyCode::Esc && self.pane_focus.take().is_some() {
                self.status = Some("pane focus off: the keys move the step selection again".into());
                return vec![];
            }
            if k.code == KeyCode::Esc && self.step_filter.take().is_some() {
                self.status = Some("filter cleared: every step is listed".into());
                return vec![];
            }
        }
        if self.overlay.is_none()
            && let Some(s) = self.screen.setup_mut()
        {
            if k.code == KeyCode::Enter && s.input.is_some() {
                return self.submit_setup_input();
            }
            if s.on_text_key(k) {
                return vec![];
            }
        }
        match self.keys.action(self.scope(), &k) {
            Some(a) => self.act(a),
            None => vec![],
        }
    }

    /// Handles a mouse event, given what was clickable in the last frame.
    pub fn on_mouse(
        &mut self,
        m: MouseEvent,
        hits: &[(ratatui::layout::Rect, Hit)],
    ) -> Vec<Effect> {
        let effects = self.mouse_effects(m, hits);
        if let Some(s) = self.screen.setup_mut() {
            s.look_around();
        }
        effects
    }

    fn mouse_effects(
        &mut self,
        m: MouseEvent,
        hits: &[(ratatui::layout::Rect, Hit)],
    ) -> Vec<Effect> {
        let pos = ratatui::layout::Position::new(m.column, m.row);
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                let Some((_, hit)) = hits.iter().rev().find(|(r, _)| r.contains(pos)) else {
                    return vec![];
                };
                self.dirty = true;
                match *hit {
                    Hit::Action(a) => self.act(a),
                    Hit::Step(i) => {
                        self.selected = i;
                        self.follow_running = false;
                        vec![]
                    }
                }
            }
            MouseEventKind::ScrollUp => self.act(Action::Up),
            MouseEventKind::ScrollDown => self.act(Action::Down),
            _ => vec![],
        }
    }

    /// Sets the log view height from the terminal size.
    pub fn resize(&mut self, _width: u16, height: u16) {
        self.rows = height;
        if let Some(v) = self.screen.log_mut() {
            v.resize(hit::log_rows(height));
        }
        self.dirty = true;
    }
}
