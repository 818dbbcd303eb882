//! State of the full-screen log view: position, follow, search, toggles.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::engine::logs::parse_saved_line;
use crate::logfile::LineIndex;

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
    /// Rows available for lines (set from the terminal size).
    pub height: usize,
    /// The lines from `top` (at most `height`), read after every move.
    pub visible: Vec<Vec<u8>>,
    /// Search results, if any.
    pub search: Option<Search>,
    /// Search text being typed.
    pub input: Option<String>,
    /// A message for the status line.
    pub message: Option<String>,
}

impl LogView {
    /// Opens a log file (following its end).
    pub fn open(step: &str, attempt: u32, path: &Path, height: usize) -> Self {
        let mut v = Self {
            step: step.to_string(),
            attempt,
            attempts: attempt,
            index: LineIndex::new(path),
            top: 0,
            follow: true,
            wrap: false,
            timestamps: Timestamps::Off,
            height: height.max(1),
            visible: Vec::new(),
            search: None,
            input: None,
            message: None,
        };
        if let Err(e) = v.index.refresh() {
            v.message = Some(format!("cannot read {}: {e}", path.display()));
        }
        v.reload();
        v
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
        match self.index.read_lines(self.top, self.height) {
            Ok(v) => self.visible = v,
            Err(e) => self.message = Some(format!("cannot read the log: {e}")),
        }
    }

    /// New lines may have arrived.
    pub fn refresh(&mut self) -> bool {
        match self.index.refresh() {
            Ok(true) => {
                self.reload();
                true
            }
            Ok(false) => false,
            Err(e) => {
                self.message = Some(format!("cannot read the log: {e}"));
                true
            }
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

    /// Runs a search and jumps to the first match at or after the top.
    pub fn run_search(&mut self, query: String) {
        if query.is_empty() {
            self.search = None;
            return;
        }
        match self.index.search(&query, MAX_MATCHES + 1) {
            Ok(mut matches) => {
                let truncated = matches.len() > MAX_MATCHES;
                matches.truncate(MAX_MATCHES);
                let current = matches.iter().position(|m| *m >= self.top).unwrap_or(0);
                if let Some(m) = matches.get(current) {
                    let m = *m;
                    self.jump(m);
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
            Err(e) => self.message = Some(format!("search failed: {e}")),
        }
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

    /// Jumps to the first error line.
    pub fn first_error(&mut self) {
        match self.index.first_error() {
            Ok(Some(l)) => {
                self.jump(l);
                self.message = Some(format!("first error at line {}", l + 1));
            }
            Ok(None) => self.message = Some("no error line found".into()),
            Err(e) => self.message = Some(format!("cannot read the log: {e}")),
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

    /// Writes the whole log as plain text (like `podman logs`, timestamps if shown) into `dir`
    /// (a folder inside the deployconfig `root`): every secret masked, the file written
    /// atomically without following a link a stage container may have planted.
    pub fn save(&mut self, root: &Path, dir: &Path, secrets: &[String]) -> Result<PathBuf, String> {
        let name = format!("{}-attempt{}.log", self.step, self.attempt);
        let path = dir.join(&name);
        let rel = dir.strip_prefix(root).unwrap_or(Path::new("stage2-logs"));
        let folder = crate::safefs::Dir::open(root)
            .and_then(|d| d.subdir(rel, true))
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let index = &self.index;
        let timestamps = self.timestamps;
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
                        let (ts, _, text) = parse_saved_line(l).unwrap_or((
                            b"",
                            crate::engine::logs::Stream::Stdout,
                            l,
                        ));
                        if let Some(ts) = timestamps.show(ts) {
                            out.write_all(ts.as_bytes())?;
                            out.write_all(b" ")?;
                        }
                        let text = String::from_utf8_lossy(text);
                        out.write_all(crate::text::mask(&text, secrets).as_bytes())?;
                        out.write_all(b"\n")?;
                    }
                    start += chunk.len();
                }
                out.flush()
            })
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }
}
