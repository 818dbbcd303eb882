//! State of the full-screen log view: position, follow, search, toggles.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::logwork::{Busy, LogDone, LogJob, LogWork, SaveTo};
use crate::logfile::{LineIndex, Progress};
use crate::logformat::parse_saved_line;

/// Search results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    /// What was searched.
    pub query: String,
    /// Matching line numbers.
    pub matches: Vec<usize>,
    /// Index into `matches` of the current one.
    pub current: usize,
    /// More matches exist than were kept.
    pub truncated: bool,
}

pub use super::logwork::Timestamps;

/// Views are numbered so an answer for a closed one is dropped.
static NEXT_VIEW: AtomicU64 = AtomicU64::new(1);

/// One step attempt's log on screen.
#[derive(Debug, Clone)]
pub struct LogView {
    /// Step id.
    pub step: String,
    /// Attempt number.
    pub attempt: u32,
    /// How many attempts the step has (`[` / `]` switch between them).
    pub attempts: u32,
    /// Line index of the file.
    pub index: LineIndex,
    /// First visible line.
    pub top: usize,
    /// Stick to the end as lines arrive.
    pub follow: bool,
    /// Wrap long lines.
    pub wrap: bool,
    /// How timestamps are shown.
    pub timestamps: Timestamps,
    /// Line numbers in a gutter (`#`).
    pub numbers: bool,
    /// The first error line, once `E` found it (marked in the gutter).
    pub first_error_line: Option<usize>,
    /// Rows available for lines (set from the terminal size).
    pub height: usize,
    /// The lines from `top` (at most `height`), taken from `cache` after every move.
    pub visible: Vec<Vec<u8>>,
    /// The lines around the view, read in blocks: a scroll key reads nothing from disk.
    pub cache: crate::logfile::LineCache,
    /// Search results, if any.
    pub search: Option<Search>,
    /// Search text being typed.
    pub input: Option<String>,
    /// A message for the status line.
    pub message: Option<String>,
    /// This view's number (answers carry it).
    pub id: u64,
    /// File work asked for and not started yet, in order.
    pub wanted: VecDeque<LogWork>,
    /// File work running now.
    pub busy: Option<Busy>,
    /// The first index has not come back yet.
    pub opening: bool,
}

impl LogView {
    /// Opens a log file (following its end). Nothing is read here: the index is asked for,
    /// and the lines appear when it comes back.
    pub fn open(step: &str, attempt: u32, path: &Path, height: usize) -> Self {
        Self {
            step: step.to_string(),
            attempt,
            attempts: attempt,
            index: LineIndex::new(path),
            top: 0,
            follow: true,
            wrap: false,
            timestamps: Timestamps::Off,
            numbers: false,
            first_error_line: None,
            height: height.max(1),
            visible: Vec::new(),
            cache: Default::default(),
            search: None,
            input: None,
            message: None,
            id: NEXT_VIEW.fetch_add(1, Ordering::Relaxed),
            wanted: VecDeque::from([LogWork::Index]),
            busy: None,
            opening: true,
        }
    }

    /// The next piece of file work to start, if none is running (one at a time, in order).
    pub fn next_job(&mut self, save_to: Option<SaveTo>) -> Option<LogJob> {
        if self.busy.is_some() {
            return None;
        }
        let work = self.wanted.pop_front()?;
        let progress = Arc::new(Progress::default());
        let total = match work {
            LogWork::Index => 0,
            _ => self.index.indexed_bytes(),
        };
        self.busy = Some(Busy {
            work: work.clone(),
            progress: progress.clone(),
            total,
        });
        let save = (work == LogWork::Save).then(|| {
            // Named by run, step and attempt (the log file's folder is its run); a file of that
            // name already there is kept: the save takes the next free `-N`.
            let run = self
                .index
                .path()
                .parent()
                .and_then(|p| p.file_name())
                .map(|r| format!("{}-", r.to_string_lossy()))
                .unwrap_or_default();
            let name = format!("{run}{}-attempt{}.log", self.step, self.attempt);
            save_to.map(|to| (to, self.timestamps, name))
        });
        Some(LogJob {
            view: self.id,
            index: self.index.clone(),
            work,
            progress,
            save: save.flatten(),
        })
    }

    /// Takes a job's answer.
    pub fn apply(&mut self, done: LogDone) {
        self.busy = None;
        match done {
            LogDone::Indexed(index) => {
                // Written again from its start (a capture redone): what was read is stale.
                if index.len() < self.index.len()
                    || index.indexed_bytes() < self.index.indexed_bytes()
                {
                    self.cache.clear();
                }
                self.index = index;
                self.opening = false;
                self.reload();
            }
            LogDone::Found {
                query,
                matches,
                truncated,
            } => {
                let current = matches.iter().position(|m| *m >= self.top).unwrap_or(0);
                if let Some(m) = matches.get(current) {
                    let m = *m;
                    self.jump(m);
                    self.message = None;
                } else {
                    self.message = Some(format!("no match for \"{query}\""));
                }
                self.search = Some(Search {
                    query,
                    matches,
                    current,
                    truncated,
                });
            }
            LogDone::FirstError(Some(l)) => {
                self.first_error_line = Some(l);
                self.jump(l);
                self.message = Some(format!("first error at line {}", l + 1));
            }
            LogDone::FirstError(None) => self.message = Some("no error line found".into()),
            LogDone::Saved(p) => self.message = Some(format!("saved to {}", p.display())),
            LogDone::Cancelled(w) => self.message = Some(format!("stopped {}", w.doing())),
            LogDone::Failed(e) => {
                self.opening = false;
                self.message = Some(e);
            }
        }
    }

    /// Does every piece of asked-for work here and now (tests, benchmarks and fixed scenes;
    /// the TUI runs them off its loop).
    pub fn settle(&mut self, save_to: Option<SaveTo>) {
        while let Some(job) = self.next_job(save_to.clone()) {
            let (_, done) = job.run();
            self.apply(done);
        }
    }

    /// Stops a running search or error scan; true if one was running.
    pub fn cancel(&mut self) -> bool {
        let had = self
            .wanted
            .iter()
            .any(|w| matches!(w, LogWork::Search(_) | LogWork::FirstError));
        self.wanted
            .retain(|w| !matches!(w, LogWork::Search(_) | LogWork::FirstError));
        match &self.busy {
            Some(b) if matches!(b.work, LogWork::Search(_) | LogWork::FirstError) => {
                b.progress.cancel.store(true, Ordering::Relaxed);
                true
            }
            _ => had,
        }
    }

    /// Stops whatever runs (the view is closing).
    pub fn close(&self) {
        if let Some(b) = &self.busy {
            b.progress.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// True when what runs can be stopped (a search or an error scan).
    pub fn stoppable(&self) -> bool {
        self.busy
            .as_ref()
            .is_some_and(|b| matches!(b.work, LogWork::Search(_) | LogWork::FirstError))
    }

    /// What runs now, for the status line.
    pub fn working(&self) -> Option<String> {
        self.busy
            .as_ref()
            .map(|b| b.describe())
            .or_else(|| self.wanted.front().map(|w| format!("{}…", w.doing())))
    }

    fn max_top(&self) -> usize {
        self.index.len().saturating_sub(self.height)
    }

    /// Re-reads the visible window (after a move, a resize or new lines).
    pub fn reload(&mut self) {
        if self.follow {
            self.top = self.max_top();
        }
        self.top = self.top.min(self.max_top());
        match self.cache.get(&self.index, self.top, self.height) {
            Ok(v) => self.visible = v,
            Err(e) => self.message = Some(format!("cannot read the log: {e}")),
        }
    }

    /// New lines may have arrived: asks for the index to be brought up to date (once, however
    /// many batches arrive before it runs).
    pub fn refresh(&mut self) {
        if !self.wanted.contains(&LogWork::Index) {
            self.wanted.push_front(LogWork::Index);
        }
    }

    /// Sets the viewport height.
    pub fn resize(&mut self, height: usize) {
        if height.max(1) != self.height {
            self.height = height.max(1);
            self.reload();
        }
    }

    /// Scrolls by `delta` lines; reaching the end turns follow back on.
    pub fn scroll(&mut self, delta: isize) {
        let max = self.max_top();
        let top = (self.top as isize + delta).clamp(0, max as isize) as usize;
        self.top = top;
        self.follow = top >= max;
        self.reload();
    }

    /// Jumps so that `line` is in view (a third from the top).
    pub fn jump(&mut self, line: usize) {
        self.follow = false;
        self.top = line.saturating_sub(self.height / 3).min(self.max_top());
        self.reload();
    }

    /// Goes to the top.
    pub fn top(&mut self) {
        self.follow = false;
        self.top = 0;
        self.reload();
    }

    /// Goes to the end and follows.
    pub fn bottom(&mut self) {
        self.follow = true;
        self.reload();
    }

    /// Asks for a search (one already running stops); the view jumps to the first match at
    /// or after the top when it comes back.
    pub fn run_search(&mut self, query: String) {
        self.cancel();
        if query.is_empty() {
            self.search = None;
            return;
        }
        self.wanted.push_back(LogWork::Search(query));
    }

    /// Next (`forward`) or previous match, wrapping around.
    pub fn next_match(&mut self, forward: bool) {
        let Some(s) = self.search.as_mut() else {
            self.message = Some("no search yet: press / to search".into());
            return;
        };
        if s.matches.is_empty() {
            return;
        }
        let n = s.matches.len();
        s.current = if forward {
            (s.current + 1) % n
        } else {
            (s.current + n - 1) % n
        };
        let m = s.matches[s.current];
        self.jump(m);
    }

    /// Asks for the first error line (the view jumps there when it is found).
    pub fn first_error(&mut self) {
        if !self.wanted.contains(&LogWork::FirstError) {
            self.wanted.push_back(LogWork::FirstError);
        }
    }

    /// Asks for the whole log to be saved as text.
    pub fn save(&mut self) {
        if !self.wanted.contains(&LogWork::Save) {
            self.wanted.push_back(LogWork::Save);
        }
    }

    /// The visible lines as plain text (for copying).
    pub fn visible_text(&self) -> String {
        let mut out = String::new();
        for l in &self.visible {
            let text = parse_saved_line(l).map(|(_, _, t)| t).unwrap_or(l);
            out.push_str(&String::from_utf8_lossy(text));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: usize) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let mut text = String::new();
        for i in 0..lines {
            text.push_str(&format!("2026-11-27T12:00:00Z stdout line {i}\n"));
        }
        text.push_str("2026-11-27T12:00:00Z stderr Error: boom\n");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn scroll_keys_read_nothing_from_disk() {
        let (_dir, p) = log(5000);
        let mut v = LogView::open("s", 1, &p, 30);
        let (_, d) = v.next_job(None).unwrap().run();
        v.apply(d);
        let after_open = v.cache.reads;
        assert_eq!(v.visible.len(), 30);
        for _ in 0..20 {
            v.scroll(-1);
        }
        v.scroll(-30);
        v.scroll(30);
        assert_eq!(
            v.cache.reads, after_open,
            "scrolling near the view reads nothing"
        );
        let top = v.top;
        assert_eq!(
            v.visible[0],
            format!("2026-11-27T12:00:00Z stdout line {top}").into_bytes()
        );
        v.top();
        assert_eq!(
            v.cache.reads,
            after_open + 1,
            "the top of the file is another block"
        );
    }

    #[test]
    fn a_saved_log_is_named_by_run_and_never_overwrites_an_earlier_save() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("state/logs/20261130-101500-ab12");
        std::fs::create_dir_all(&logs).unwrap();
        let p = logs.join("7.terraform-deploy.1.log");
        std::fs::write(&p, "2026-11-27T12:00:00Z stdout hello\n").unwrap();
        let dc = dir.path().join("dc");
        std::fs::create_dir_all(&dc).unwrap();
        let to = SaveTo {
            root: dc.clone(),
            dir: dc.join("stage2-logs"),
            secrets: vec![],
        };
        let mut v = LogView::open("7.terraform-deploy", 1, &p, 10);
        let (_, d) = v.next_job(None).unwrap().run();
        v.apply(d);
        for _ in 0..2 {
            v.save();
            let (_, d) = v.next_job(Some(to.clone())).unwrap().run();
            v.apply(d);
        }
        let mut names: Vec<String> = std::fs::read_dir(dc.join("stage2-logs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "20261130-101500-ab12-7.terraform-deploy-attempt1-2.log",
                "20261130-101500-ab12-7.terraform-deploy-attempt1.log"
            ]
        );
        assert!(
            v.message
                .as_deref()
                .unwrap_or_default()
                .contains("attempt1-2.log")
        );
    }

    #[test]
    fn opening_reads_nothing_until_the_index_comes_back() {
        let (_d, p) = log(1000);
        let mut v = LogView::open("s", 1, &p, 10);
        assert!(v.opening && v.index.is_empty() && v.visible.is_empty());
        let job = v.next_job(None).unwrap();
        assert_eq!(job.work, LogWork::Index);
        assert!(v.next_job(None).is_none(), "one job at a time");
        // A search asked for meanwhile waits for the index.
        v.run_search("line 99".into());
        let (id, done) = job.run();
        assert_eq!(id, v.id);
        v.apply(done);
        assert_eq!(v.index.len(), 1001);
        assert_eq!(v.visible.len(), 10);
        let job = v.next_job(None).unwrap();
        assert_eq!(job.work, LogWork::Search("line 99".into()));
        v.apply(job.run().1);
        assert_eq!(v.search.as_ref().unwrap().matches.len(), 11);
    }

    #[test]
    fn a_running_search_is_stopped_and_a_new_one_replaces_a_queued_one() {
        let (_d, p) = log(5000);
        let mut v = LogView::open("s", 1, &p, 10);
        v.settle(None);
        v.run_search("line 1".into());
        let job = v.next_job(None).unwrap();
        assert!(v.stoppable());
        // Esc while it runs: the flag is set, the scan stops and says so.
        assert!(v.cancel());
        let (_, done) = job.run();
        assert!(
            matches!(done, LogDone::Cancelled(LogWork::Search(_))),
            "{done:?}"
        );
        v.apply(done);
        assert!(v.message.as_deref().unwrap().contains("stopped searching"));
        assert!(v.search.is_none());
        // Two searches typed before either ran: only the last runs.
        v.run_search("line 2".into());
        v.run_search("boom".into());
        v.settle(None);
        assert_eq!(v.search.as_ref().unwrap().query, "boom");
        assert_eq!(v.search.as_ref().unwrap().matches, vec![5000]);
    }

    #[test]
    fn progress_counts_the_bytes_read() {
        let (_d, p) = log(20_000);
        let mut v = LogView::open("s", 1, &p, 10);
        v.settle(None);
        v.first_error();
        let job = v.next_job(None).unwrap();
        let progress = job.progress.clone();
        assert!(v.working().unwrap().contains("0%"), "{:?}", v.working());
        v.apply(job.run().1);
        assert_eq!(
            progress.bytes.load(Ordering::Relaxed),
            v.index.indexed_bytes()
        );
        assert_eq!(v.message.as_deref(), Some("first error at line 20001"));
    }
}
