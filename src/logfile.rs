//! Reading saved step logs without loading them: a sparse line index and windowed reads, so
//! memory stays flat however long the log (a 1,000,000-line log indexes in ~4,000 offsets).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Every STRIDE-th line start is remembered.
const STRIDE: usize = 256;

/// The lines of a log around where it is viewed, read in one block: moving within them (a
/// scroll key) reads nothing from disk. Logs only grow, so lines once read stay true; a view
/// whose file was written again from its start clears it ([`LineCache::clear`]).
#[derive(Debug, Clone, Default)]
pub struct LineCache {
    /// Line number of `lines[0]`.
    start: usize,
    lines: Vec<Vec<u8>>,
    /// Blocks read from disk so far.
    pub reads: u64,
}

impl LineCache {
    /// Lines `start..start + count` of `index` (fewer at its end): from the block held, or from
    /// a new block read around them (four screens and some).
    pub fn get(
        &mut self,
        index: &LineIndex,
        start: usize,
        count: usize,
    ) -> io::Result<Vec<Vec<u8>>> {
        let end = (start + count).min(index.len());
        if start >= end {
            return Ok(Vec::new());
        }
        let held = self.start..self.start + self.lines.len();
        if !(held.contains(&start) && end <= held.end) {
            let block = count * 4 + 256;
            let from = start.saturating_sub(block / 2);
            self.lines = index.read_lines(from, block)?;
            self.start = from;
            self.reads += 1;
        }
        let have = (self.start + self.lines.len()).min(end);
        Ok(self
            .lines
            .get(start - self.start..have.max(start) - self.start)
            .map(<[Vec<u8>]>::to_vec)
            .unwrap_or_default())
    }

    /// Forgets what it holds.
    pub fn clear(&mut self) {
        self.start = 0;
        self.lines.clear();
    }
}

/// A growing log file's line index.
#[derive(Debug, Clone)]
pub struct LineIndex {
    path: PathBuf,
    /// Byte offset of line `i * STRIDE`.
    checkpoints: Vec<u64>,
    /// Complete lines seen.
    lines: usize,
    /// Bytes scanned (the end of the last complete line).
    scanned: u64,
}

impl LineIndex {
    /// An index of `path` (empty until [`refresh`](Self::refresh)).
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            checkpoints: vec![0],
            lines: 0,
            scanned: 0,
        }
    }

    /// The file indexed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Complete lines indexed.
    pub fn len(&self) -> usize {
        self.lines
    }

    /// True when no line is indexed.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// Indexes lines appended since the last call; true if there are new ones. A file that
    /// shrank (rewritten on reattach) is indexed again from the start.
    pub fn refresh(&mut self) -> io::Result<bool> {
        self.refresh_with(&Progress::default())
    }

    /// [`refresh`](Self::refresh) that reports the bytes read to `progress` and stops early
    /// (with the lines indexed so far) when it is cancelled.
    pub fn refresh_with(&mut self, progress: &Progress) -> io::Result<bool> {
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        if len < self.scanned {
            *self = Self::new(&self.path);
        }
        if len == self.scanned {
            return Ok(false);
        }
        f.seek(SeekFrom::Start(self.scanned))?;
        let before = self.lines;
        let mut buf = vec![0u8; 1 << 20];
        let mut pos = self.scanned;
        let before_bytes = self.scanned;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            for nl in memchr::memchr_iter(b'\n', &buf[..n]) {
                self.lines += 1;
                let next = pos + nl as u64 + 1;
                if self.lines.is_multiple_of(STRIDE) {
                    self.checkpoints.push(next);
                }
                self.scanned = next;
            }
            pos += n as u64;
            progress.bytes.store(pos - before_bytes, Ordering::Relaxed);
            if progress.cancel.load(Ordering::Relaxed) {
                break;
            }
        }
        Ok(self.lines > before)
    }

    /// Reads up to `count` whole lines from line `start` (without their newlines).
    pub fn read_lines(&self, start: usize, count: usize) -> io::Result<Vec<Vec<u8>>> {
        let mut out = Vec::with_capacity(count.min(4096));
        if start >= self.lines || count == 0 {
            return Ok(out);
        }
        let mut f = File::open(&self.path)?;
        let cp = start / STRIDE;
        f.seek(SeekFrom::Start(self.checkpoints[cp]))?;
        let mut skip = start - cp * STRIDE;
        let want = count.min(self.lines - start);
        let mut reader = io::BufReader::with_capacity(64 * 1024, f);
        let mut line = Vec::new();
        while out.len() < want {
            line.clear();
            if io::BufRead::read_until(&mut reader, b'\n', &mut line)? == 0 {
                break;
            }
            if skip > 0 {
                skip -= 1;
                continue;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            out.push(line.clone());
        }
        Ok(out)
    }

    /// Bytes indexed (the end of the last complete line): what a scan reads.
    pub fn indexed_bytes(&self) -> u64 {
        self.scanned
    }

    /// Line numbers whose text contains `needle` (ASCII case-insensitive), at most `limit`.
    pub fn search(&self, needle: &str, limit: usize) -> io::Result<Vec<usize>> {
        Ok(self
            .search_with(needle, limit, &Progress::default())?
            .unwrap_or_default())
    }

    /// [`search`](Self::search) that reports the bytes read to `progress` and stops (`None`)
    /// when it is cancelled.
    pub fn search_with(
        &self,
        needle: &str,
        limit: usize,
        progress: &Progress,
    ) -> io::Result<Option<Vec<usize>>> {
        let lower = needle.to_ascii_lowercase();
        let finder = memchr::memmem::Finder::new(lower.as_bytes());
        let mut buf = Vec::new();
        self.scan(limit, progress, |text| {
            if text.len() < lower.len() {
                return false;
            }
            buf.clear();
            buf.extend(text.iter().map(u8::to_ascii_lowercase));
            finder.find(&buf).is_some()
        })
    }

    /// The first line that looks like an error in the formats the stages use.
    pub fn first_error(&self) -> io::Result<Option<usize>> {
        Ok(self
            .first_error_with(&Progress::default())?
            .and_then(|v| v.first().copied()))
    }

    /// [`first_error`](Self::first_error) with progress and cancelling: `None` when cancelled,
    /// else the line found (if any) as a one-element list.
    pub fn first_error_with(&self, progress: &Progress) -> io::Result<Option<Vec<usize>>> {
        self.scan(1, progress, looks_like_error)
    }

    fn scan(
        &self,
        limit: usize,
        progress: &Progress,
        mut pred: impl FnMut(&[u8]) -> bool,
    ) -> io::Result<Option<Vec<usize>>> {
        let mut out = Vec::new();
        let f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(out)),
            Err(e) => return Err(e),
        };
        let mut reader = io::BufReader::with_capacity(1 << 20, f.take(self.scanned));
        let mut line = Vec::new();
        let mut i = 0;
        let mut read = 0u64;
        while out.len() < limit {
            line.clear();
            let n = io::BufRead::read_until(&mut reader, b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            read += n as u64;
            // Every 4,096 lines: say how far, and stop if asked to.
            if i % 4096 == 0 {
                progress.bytes.store(read, Ordering::Relaxed);
                if progress.cancel.load(Ordering::Relaxed) {
                    return Ok(None);
                }
            }
            let text = crate::logformat::parse_saved_line(&line)
                .map(|(_, _, t)| t)
                .unwrap_or(&line);
            if pred(text) {
                out.push(i);
            }
            i += 1;
        }
        progress.bytes.store(read, Ordering::Relaxed);
        Ok(Some(out))
    }
}

/// How far a scan has read, and a flag that stops it: shared between the update loop (which
/// shows the one and sets the other) and the thread that scans.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes read so far.
    pub bytes: AtomicU64,
    /// Set to stop the scan.
    pub cancel: AtomicBool,
}

/// Error markers of openshift-install, terraform, ansible, nginx and shells.
pub fn looks_like_error(text: &[u8]) -> bool {
    const MARKERS: [&[u8]; 9] = [
        b"level=error",
        b"level=fatal",
        b"Error:",
        b"ERROR",
        b"fatal:",
        b"FAILED!",
        b"UNREACHABLE!",
        b"[emerg]",
        b"Traceback (most recent call last)",
    ];
    MARKERS
        .iter()
        .any(|m| memchr::memmem::find(text, m).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn moving_within_the_cached_block_reads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let mut f = File::create(&p).unwrap();
        for i in 0..10_000 {
            writeln!(f, "T stdout line {i}").unwrap();
        }
        f.flush().unwrap();
        let mut idx = LineIndex::new(&p);
        idx.refresh().unwrap();
        let mut cache = LineCache::default();
        let want = |from: usize, n: usize| -> Vec<Vec<u8>> {
            (from..(from + n).min(10_000))
                .map(|i| format!("T stdout line {i}").into_bytes())
                .collect()
        };
        assert_eq!(cache.get(&idx, 5000, 40).unwrap(), want(5000, 40));
        assert_eq!(cache.reads, 1);
        // Scrolling a line, a page, back up: from memory.
        for top in [5001, 5040, 4960, 4990, 5100] {
            assert_eq!(cache.get(&idx, top, 40).unwrap(), want(top, 40), "{top}");
        }
        assert_eq!(cache.reads, 1);
        // Far away: one more block.
        assert_eq!(cache.get(&idx, 9980, 40).unwrap(), want(9980, 40));
        assert_eq!(cache.reads, 2);
        assert!(cache.get(&idx, 20_000, 40).unwrap().is_empty());
        // The file grows: lines past the block are read, the old ones stay right.
        for i in 10_000..10_100 {
            writeln!(f, "T stdout line {i}").unwrap();
        }
        f.flush().unwrap();
        idx.refresh().unwrap();
        let tail: Vec<Vec<u8>> = (10_060..10_100)
            .map(|i| format!("T stdout line {i}").into_bytes())
            .collect();
        assert_eq!(cache.get(&idx, 10_060, 40).unwrap(), tail);
    }

    #[test]
    fn index_reads_windows_and_follows_growth() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let mut f = File::create(&p).unwrap();
        for i in 0..1000 {
            writeln!(f, "T stdout line {i}").unwrap();
        }
        write!(f, "T stdout partial").unwrap();
        f.flush().unwrap();
        let mut idx = LineIndex::new(&p);
        assert!(idx.refresh().unwrap());
        assert_eq!(idx.len(), 1000);
        let w = idx.read_lines(510, 3).unwrap();
        assert_eq!(
            w,
            vec![
                b"T stdout line 510".to_vec(),
                b"T stdout line 511".to_vec(),
                b"T stdout line 512".to_vec()
            ]
        );
        writeln!(f, " done").unwrap();
        writeln!(f, "T stderr Error: boom").unwrap();
        assert!(idx.refresh().unwrap());
        assert_eq!(idx.len(), 1002);
        assert_eq!(
            idx.read_lines(1000, 10).unwrap(),
            vec![
                b"T stdout partial done".to_vec(),
                b"T stderr Error: boom".to_vec()
            ]
        );
        assert_eq!(
            idx.search("LINE 99", 100).unwrap(),
            vec![99, 990, 991, 992, 993, 994, 995, 996, 997, 998, 999]
        );
        assert_eq!(idx.first_error().unwrap(), Some(1001));
        let stop = Progress::default();
        stop.cancel.store(true, Ordering::Relaxed);
        assert_eq!(
            idx.search_with("line", 10, &stop).unwrap(),
            None,
            "cancelled"
        );
        let prog = Progress::default();
        assert_eq!(
            idx.search_with("boom", 10, &prog).unwrap(),
            Some(vec![1001])
        );
        assert_eq!(prog.bytes.load(Ordering::Relaxed), idx.indexed_bytes());
        // Rewritten shorter (reattach re-copies the log): indexed again.
        std::fs::write(&p, "T stdout a\n").unwrap();
        idx.refresh().unwrap();
        assert_eq!(idx.len(), 1);
    }
}
