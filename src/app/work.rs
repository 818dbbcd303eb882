//! The update's one way in and one way out: [`App::update`] takes a [`Msg`] (a key, an event of
//! the run, a job's answer…) and returns [`Effect`]s, among them the file work it now wants
//! ([`Effect::Work`]): indexing, searching and saving the log on screen, reading the last lines
//! of logs already on disk, reading and writing the setup flow's files, and what a re-run
//! question needs from disk. The update never does file work itself: the loop runs each
//! [`Job`] on a blocking thread and hands its [`Done`] back as [`Msg::Done`]; tests and fixed
//! scenes call [`App::settle`].

use std::collections::VecDeque;
use std::path::PathBuf;

use crossterm::event::{KeyEvent, MouseEvent};

use super::logwork::{LogDone, LogJob, SaveTo};
use super::questions::{RerunFacts, RerunLook};
use super::setup::{Saving, SetupMsg};
use super::{App, Effect, TAIL_LINES, UrlCheck};
use crate::logformat::LogLine;
use crate::pipeline::Event;

/// What the update takes: everything that happens to the app comes in as one of these.
#[derive(Debug)]
pub enum Msg<'a> {
    /// A key.
    Key(KeyEvent),
    /// A mouse event, with what was clickable in the last frame.
    Mouse(MouseEvent, &'a [(ratatui::layout::Rect, super::Hit)]),
    /// The terminal's new size (columns, rows).
    Resize(u16, u16),
    /// An event of the run.
    Run(Event),
    /// A step's URL was checked.
    UrlChecked(String, UrlCheck),
    /// A [`Job`] is done.
    Done(Done),
    /// A setup task's answer.
    Setup(SetupMsg),
    /// The clock (every 250 ms while something moves on screen).
    Tick,
}

/// A piece of file work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// For the log view.
    Log(LogJob),
    /// The last lines of these steps' logs (step id, log file).
    Tails(Vec<(String, PathBuf)>),
    /// Read a deployconfig's files to open the setup flow on them.
    OpenSetup(crate::config::Deployconfig),
    /// Write the setup flow's changed files (over files changed on disk when `overwrite`).
    Save {
        /// The files.
        files: Vec<crate::app::setup::SaveFile>,
        /// Write over a file changed on disk.
        overwrite: bool,
    },
    /// What the question before running again from `step` needs from disk: the terraform
    /// states that list VMs, and whether config.json says `bootstrap_complete`.
    Rerun {
        /// "Retry" or "Run again from".
        verb: &'static str,
        /// The step to run again from.
        step: String,
        /// The deployconfig folder.
        dir: PathBuf,
        /// That step and the steps after it.
        steps: Vec<crate::pipeline::spec::Step>,
    },
}

/// What a [`Job`] found.
#[derive(Debug)]
pub enum Done {
    /// For the log view with this number.
    Log(u64, LogDone),
    /// Recent lines per step.
    Tails(Vec<(String, VecDeque<LogLine>)>),
    /// The setup flow's files were saved (or not).
    Saved(crate::app::setup::Saved),
    /// A deployconfig's files, read to open the setup flow on them.
    SetupFiles(
        crate::config::Deployconfig,
        Box<crate::app::setup::Reloaded>,
    ),
    /// What a re-run question needs, read from disk.
    Rerun {
        /// "Retry" or "Run again from".
        verb: &'static str,
        /// The step to run again from.
        step: String,
        /// What was found.
        facts: RerunFacts,
    },
}

impl Job {
    /// Does the work (blocking file I/O).
    pub fn run(self) -> Done {
        match self {
            Job::Log(j) => {
                let (view, done) = j.run();
                Done::Log(view, done)
            }
            Job::OpenSetup(dc) => {
                let files = crate::app::setup::read_again(&dc);
                Done::SetupFiles(dc, Box::new(files))
            }
            Job::Save { files, overwrite } => {
                Done::Saved(crate::app::setup::write_files(files, overwrite))
            }
            Job::Rerun {
                verb,
                step,
                dir,
                steps,
            } => Done::Rerun {
                verb,
                step,
                facts: RerunFacts::read(&dir, &steps),
            },
            Job::Tails(steps) => Done::Tails(
                steps
                    .into_iter()
                    .map(|(id, path)| (id, read_tail(path)))
                    .collect(),
            ),
        }
    }
}

/// The last [`TAIL_LINES`] lines of a saved log (empty when it cannot be read).
fn read_tail(path: PathBuf) -> VecDeque<LogLine> {
    let mut idx = crate::logfile::LineIndex::new(path);
    if idx.refresh().is_err() {
        return VecDeque::new();
    }
    let start = idx.len().saturating_sub(TAIL_LINES);
    idx.read_lines(start, TAIL_LINES)
        .unwrap_or_default()
        .iter()
        .filter_map(|l| crate::logformat::parse_saved_line(l))
        .map(|(ts, stream, text)| LogLine {
            stream,
            ts: String::from_utf8_lossy(ts).into_owned(),
            text: String::from_utf8_lossy(text).into_owned(),
        })
        .collect()
}

impl App {
    /// The loop's one entry point: takes what happened and returns what to do, with the file
    /// work the app now wants as [`Effect::Work`] (one way out for every side effect).
    pub fn update(&mut self, msg: Msg<'_>) -> Vec<Effect> {
        let mut effects = match msg {
            Msg::Key(k) => self.on_key(k),
            Msg::Mouse(m, hits) => self.on_mouse(m, hits),
            Msg::Resize(w, h) => {
                self.resize(w, h);
                vec![]
            }
            Msg::Run(e) => {
                self.on_runner(e);
                vec![]
            }
            Msg::UrlChecked(step, c) => {
                self.on_url_check(&step, c);
                vec![]
            }
            Msg::Done(d) => self.on_done(d),
            Msg::Setup(m) => self.on_setup_msg(m),
            Msg::Tick => {
                self.tick += 1;
                self.dirty = true;
                self.url_check_due().into_iter().collect()
            }
        };
        effects.extend(std::iter::from_fn(|| self.next_job()).map(Effect::Work));
        effects
    }

    /// The serving step's URL is looked at every 2 s while its window is open (on the clock,
    /// which ticks while a window is open).
    fn url_check_due(&mut self) -> Option<Effect> {
        let now = std::time::Instant::now();
        let w = self.window.as_ref().filter(|_| now >= self.url_due)?;
        let url = w.url.clone()?;
        self.url_due = now + std::time::Duration::from_secs(2);
        Some(Effect::CheckUrl {
            step: w.step.clone(),
            url,
        })
    }

    /// The next piece of file work to start, if any.
    fn next_job(&mut self) -> Option<Job> {
        if matches!(self.rerun, RerunLook::Wanted(_))
            && let RerunLook::Wanted(job) = std::mem::replace(&mut self.rerun, RerunLook::Reading)
        {
            return Some(*job);
        }
        if let Some(dc) = self.setup_wanted.take() {
            return Some(Job::OpenSetup(dc));
        }
        if let Some(s) = self.screen.setup_mut()
            && let Saving::Asked(req) = &s.saving
        {
            let overwrite = req.overwrite;
            s.saving = match std::mem::take(&mut s.saving) {
                Saving::Asked(req) => Saving::Writing(req.after),
                other => other,
            };
            return Some(Job::Save {
                files: s.files_to_save(),
                overwrite,
            });
        }
        if !self.tails_loading {
            let missing = self.missing_tails();
            if !missing.is_empty() {
                self.tails_loading = true;
                return Some(Job::Tails(missing));
            }
        }
        // Called on every turn of the loop: where a save goes is worked out only for a save.
        let wants_save = self
            .screen
            .log()
            .is_some_and(|v| v.busy.is_none() && v.wanted.front() == Some(&super::LogWork::Save));
        let save_to = wants_save.then(|| SaveTo {
            root: self
                .export_dir
                .parent()
                .unwrap_or(&self.export_dir)
                .to_path_buf(),
            dir: self.export_dir.clone(),
            secrets: self.secrets.clone(),
        });
        self.screen.log_mut()?.next_job(save_to).map(Job::Log)
    }

    /// Takes a job's answer; a save may go on to start the run.
    pub fn on_done(&mut self, done: Done) -> Vec<super::Effect> {
        self.dirty = true;
        match done {
            Done::Saved(r) => return self.on_saved(r),
            Done::SetupFiles(dc, files) => return self.open_setup_on(dc, *files),
            Done::Rerun { verb, step, facts } => return self.ask_rerun(verb, &step, &facts),
            Done::Log(view, d) => {
                if let Some(v) = self.screen.log_mut().filter(|v| v.id == view) {
                    v.apply(d);
                }
            }
            Done::Tails(tails) => {
                self.tails_loading = false;
                for (id, tail) in tails {
                    // Lines that arrived live meanwhile are newer: keep them.
                    self.tails.entry(id).or_insert(tail);
                }
            }
        }
        vec![]
    }

    /// Does all asked-for file work here and now (tests and fixed scenes), returning what the
    /// answers asked for besides more file work.
    pub fn settle(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        let mut work: VecDeque<Job> = std::iter::from_fn(|| self.next_job()).collect();
        while let Some(job) = work.pop_front() {
            for e in self.update(Msg::Done(job.run())) {
                match e {
                    Effect::Work(j) => work.push_back(j),
                    e => effects.push(e),
                }
            }
        }
        effects
    }

    /// True while file work runs or waits (its progress is on screen).
    pub fn working(&self) -> bool {
        self.tails_loading
            || self.setup_wanted.is_some()
            || !matches!(self.rerun, RerunLook::Idle)
            || self
                .screen
                .setup()
                .is_some_and(|s| matches!(s.saving, Saving::Asked(_) | Saving::Writing(_)))
            || self
                .screen
                .log()
                .is_some_and(|v| v.busy.is_some() || !v.wanted.is_empty())
    }

    /// Steps that have a log on disk but nothing in memory (after a restart or an attach).
    fn missing_tails(&self) -> Vec<(String, PathBuf)> {
        let Some(run) = &self.run else {
            return Vec::new();
        };
        run.steps
            .iter()
            .filter(|s| !self.tails.contains_key(&s.id))
            .filter_map(|s| Some((s.id.clone(), self.state_dir.join(&s.last()?.log))))
            .collect()
    }
}
