//! File work the update asks for and never does itself: indexing, searching and saving the log
//! on screen, and reading the last lines of logs already on disk when the TUI (re)opens a run.
//! The loop takes each [`Job`] with [`App::next_job`], runs it on a blocking thread and hands
//! the [`Done`] back to [`App::on_done`]; tests and fixed scenes call [`App::settle`].

use std::collections::VecDeque;
use std::path::PathBuf;

use super::logwork::{LogDone, LogJob, SaveTo};
use super::setup::Saving;
use super::{App, TAIL_LINES};
use crate::logformat::LogLine;

/// A piece of file work.
#[derive(Debug)]
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
    /// The next piece of file work to start, if any.
    pub fn next_job(&mut self) -> Option<Job> {
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
    /// answers asked for.
    pub fn settle(&mut self) -> Vec<super::Effect> {
        let mut effects = Vec::new();
        while let Some(job) = self.next_job() {
            let done = job.run();
            effects.extend(self.on_done(done));
        }
        effects
    }

    /// True while file work runs or waits (its progress is on screen).
    pub fn working(&self) -> bool {
        self.tails_loading
            || self.setup_wanted.is_some()
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
