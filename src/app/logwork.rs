//! The log view's file work, detached from the view so it runs on a blocking thread: what is
//! asked ([`LogWork`]), the job ([`LogJob`]), its answer ([`LogDone`]), and how far it got.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::logfile::{LineIndex, Progress};
use crate::logformat::parse_saved_line;

/// Most matches kept per search.
pub const MAX_MATCHES: usize = 100_000;

/// How log timestamps are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timestamps {
    /// Not shown.
    #[default]
    Off,
    /// Seconds in local time (`14:03:07`).
    Local,
    /// The engine's full RFC 3339 value.
    Full,
}

impl Timestamps {
    /// The next mode (the toggle cycles off → local → full → off).
    pub fn next(self) -> Self {
        match self {
            Timestamps::Off => Timestamps::Local,
            Timestamps::Local => Timestamps::Full,
            Timestamps::Full => Timestamps::Off,
        }
    }
    /// The word for the title.
    pub fn word(self) -> &'static str {
        match self {
            Timestamps::Off => "off",
            Timestamps::Local => "local",
            Timestamps::Full => "full",
        }
    }
    /// A saved line's timestamp as shown (`None` when off).
    pub fn show(self, ts: &[u8]) -> Option<String> {
        let raw = String::from_utf8_lossy(ts);
        match self {
            Timestamps::Off => None,
            Timestamps::Full => Some(raw.into_owned()),
            Timestamps::Local => Some(
                chrono::DateTime::parse_from_rfc3339(raw.trim())
                    .map(|t| {
                        t.with_timezone(&chrono::Local)
                            .format("%H:%M:%S")
                            .to_string()
                    })
                    .unwrap_or_else(|_| raw.into_owned()),
            ),
        }
    }
}

/// File work the log view asks for. None of it runs in the update: the loop takes it as a
/// [`LogJob`], runs it on a blocking thread and hands the [`LogDone`] back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogWork {
    /// Index the lines appended since the last look (the whole file when the view opens).
    Index,
    /// Find every line containing this text.
    Search(String),
    /// Find the first line that looks like an error.
    FirstError,
    /// Write the whole log as text beside the deployconfig's files.
    Save,
}

impl LogWork {
    /// What it is doing, for the status line.
    pub(super) fn doing(&self) -> String {
        match self {
            LogWork::Index => "reading the log".into(),
            LogWork::Search(q) => format!("searching for \"{q}\""),
            LogWork::FirstError => "looking for the first error".into(),
            LogWork::Save => "saving the log".into(),
        }
    }
}

/// Where a save goes, and what it masks.
#[derive(Debug, Clone)]
pub struct SaveTo {
    /// The deployconfig folder (the save never follows a link inside it).
    pub root: PathBuf,
    /// The folder the file goes into.
    pub dir: PathBuf,
    /// Secret values to mask.
    pub secrets: Vec<String>,
}

/// Work in flight for a view.
#[derive(Debug, Clone)]
pub struct Busy {
    /// What.
    pub work: LogWork,
    /// How far, and the flag that stops it.
    pub progress: Arc<Progress>,
    /// Bytes it will read in all (for a percentage; 0 when unknown).
    pub total: u64,
}

impl Busy {
    /// "searching for "x"… 43%".
    pub fn describe(&self) -> String {
        let done = self.progress.bytes.load(Ordering::Relaxed);
        match (done.min(self.total) * 100).checked_div(self.total) {
            Some(pct) => format!("{}… {pct}%", self.work.doing()),
            None => format!("{}… {} MB", self.work.doing(), done / 1_000_000),
        }
    }
}

/// One piece of file work, detached from the app so it can run on another thread.
#[derive(Debug, Clone)]
pub struct LogJob {
    /// The view that asked (a view opened later ignores the answer).
    pub view: u64,
    /// A copy of the view's index (cheap: one offset per 256 lines).
    pub index: LineIndex,
    /// What to do.
    pub work: LogWork,
    /// Shared progress and cancel flag.
    pub progress: Arc<Progress>,
    /// For a save: where, and the view's timestamp mode and file name.
    pub save: Option<(SaveTo, Timestamps, String)>,
}

/// The same job: one progress handle is made for each job.
impl PartialEq for LogJob {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.progress, &other.progress)
    }
}

impl Eq for LogJob {}

/// What a [`LogJob`] found.
#[derive(Debug)]
pub enum LogDone {
    /// The index, brought up to date.
    Indexed(LineIndex),
    /// Search results.
    Found {
        /// The text searched.
        query: String,
        /// Matching lines (at most [`MAX_MATCHES`]).
        matches: Vec<usize>,
        /// More matched than were kept.
        truncated: bool,
    },
    /// The first error line, if any.
    FirstError(Option<usize>),
    /// Saved to this file.
    Saved(PathBuf),
    /// Stopped by the operator.
    Cancelled(LogWork),
    /// Failed, with a message that says what.
    Failed(String),
}

impl LogJob {
    /// Does the work (blocking file I/O: run it off the update loop).
    pub fn run(mut self) -> (u64, LogDone) {
        let p = &self.progress;
        let done = match self.work {
            LogWork::Index => match self.index.refresh_with(p) {
                Ok(_) => LogDone::Indexed(self.index),
                Err(e) => LogDone::Failed(format!("cannot read the log: {e}")),
            },
            LogWork::Search(ref q) => match self.index.search_with(q, MAX_MATCHES + 1, p) {
                Ok(Some(mut matches)) => {
                    let truncated = matches.len() > MAX_MATCHES;
                    matches.truncate(MAX_MATCHES);
                    LogDone::Found {
                        query: q.clone(),
                        matches,
                        truncated,
                    }
                }
                Ok(None) => LogDone::Cancelled(self.work),
                Err(e) => LogDone::Failed(format!("search failed: {e}")),
            },
            LogWork::FirstError => match self.index.first_error_with(p) {
                Ok(Some(v)) => LogDone::FirstError(v.first().copied()),
                Ok(None) => LogDone::Cancelled(self.work),
                Err(e) => LogDone::Failed(format!("cannot read the log: {e}")),
            },
            LogWork::Save => match &self.save {
                Some((to, ts, name)) => match save(&self.index, to, *ts, name) {
                    Ok(path) => LogDone::Saved(path),
                    Err(e) => LogDone::Failed(format!("not saved: {e}")),
                },
                None => LogDone::Failed("not saved: no folder to save into".into()),
            },
        };
        (self.view, done)
    }
}

/// Writes the whole log as plain text (like `podman logs`, timestamps if shown) into `to.dir`
/// (a folder inside the deployconfig `to.root`): every secret masked, the file written atomically
/// without following a link a stage container may have planted.
fn save(
    index: &LineIndex,
    to: &SaveTo,
    timestamps: Timestamps,
    name: &str,
) -> Result<PathBuf, String> {
    let (root, dir) = (&to.root, &to.dir);
    let rel = dir.strip_prefix(root).unwrap_or(Path::new("stage2-logs"));
    let folder = crate::safefs::Dir::open(root)
        .and_then(|d| d.subdir(rel, true))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Never over an earlier save: `name`, else `name` with -2, -3… before `.log`.
    let stem = name.strip_suffix(".log").unwrap_or(name);
    let name = (1..10_000)
        .map(|n| {
            if n == 1 {
                name.to_string()
            } else {
                format!("{stem}-{n}.log")
            }
        })
        .find(|n| matches!(folder.entry_kind(n.as_ref()), Ok(None)))
        .ok_or_else(|| format!("no free file name for {name} in {}", dir.display()))?;
    let path = dir.join(&name);
    folder
        .write_atomic_with(name.as_ref(), 0o600, |f| {
            let mut out = std::io::BufWriter::new(f);
            let mut start = 0;
            loop {
                let chunk = index.read_lines(start, 8192)?;
                if chunk.is_empty() {
                    break;
                }
                for l in &chunk {
                    let (ts, _, text) =
                        parse_saved_line(l).unwrap_or((b"", crate::logformat::Stream::Stdout, l));
                    if let Some(ts) = timestamps.show(ts) {
                        out.write_all(ts.as_bytes())?;
                        out.write_all(b" ")?;
                    }
                    let text = String::from_utf8_lossy(text);
                    out.write_all(crate::text::mask(&text, &to.secrets).as_bytes())?;
                    out.write_all(b"\n")?;
                }
                start += chunk.len();
            }
            out.flush()
        })
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}
