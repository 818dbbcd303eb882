//! The saved-log format, shared by the engine (which writes step logs), the runner, the views and
//! the log files: one whole line per record, `<timestamp> <stdout|stderr> <text>\n`.
//!
//! [`LogSink`] writes it (whole lines, written through at least once a second, cut back to the
//! last whole line when a write fails) and forwards batches to a live listener;
//! [`parse_saved_line`] reads it back.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// The word used in saved log files.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One whole log line, for live display.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogLine {
    /// Source stream.
    pub stream: Stream,
    /// Engine timestamp as the engine wrote it.
    pub ts: String,
    /// The text, without the newline (invalid UTF-8 replaced).
    pub text: String,
}

/// Receives batches of lines as they are captured (about every 50 ms while output flows).
pub type LiveFn = Box<dyn FnMut(Vec<LogLine>) + Send>;

/// Writes whole lines to a log file and forwards batches to an optional live listener.
///
/// Lines reach the file whole: records are gathered in memory and written at least once a
/// second (and every 256 KiB), so `tail -f` and the log view see a running step. A write that
/// fails (disk full) is cut back to the last whole line, so no partial record is ever left.
/// The file is created 0600 (raw step logs keep exact bytes, secrets included), without
/// following a link.
pub struct LogSink {
    out: File,
    buf: Vec<u8>,
    /// File length after the last successful write.
    durable: u64,
    last_write: Instant,
    pub(crate) live: Option<LiveFn>,
    batch: Vec<LogLine>,
    last_flush: Instant,
    /// Lines written so far, per stream (stdout, stderr).
    pub counts: [u64; 2],
    /// Lines per stream that were already forwarded live by an earlier pass (not sent again).
    pub(crate) live_skip: [u64; 2],
    /// Bytes of text written.
    pub bytes: u64,
}

const BATCH_LINES: usize = 4096;
pub(crate) const BATCH_AGE: Duration = Duration::from_millis(50);
const WRITE_BYTES: usize = 256 * 1024;
const WRITE_AGE: Duration = Duration::from_secs(1);

/// The text of a log line as a `String`: checked as UTF-8 at its fast speed, and only a line
/// that is not UTF-8 pays for the lossy conversion.
fn owned_text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

impl LogSink {
    /// Creates (truncates) the log file at `path`, its folders private (0700).
    pub fn create(path: &Path, live: Option<LiveFn>) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            crate::safefs::private_dir(dir)?;
        }
        Ok(Self {
            out: crate::safefs::create_private_file(path)?,
            buf: Vec::with_capacity(WRITE_BYTES + 4096),
            durable: 0,
            last_write: Instant::now(),
            live,
            batch: Vec::new(),
            last_flush: Instant::now(),
            counts: [0; 2],
            live_skip: [0; 2],
            bytes: 0,
        })
    }

    /// Writes one whole line.
    pub fn line(&mut self, stream: Stream, ts: &[u8], text: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(ts);
        self.buf.push(b' ');
        self.buf.extend_from_slice(stream.as_str().as_bytes());
        self.buf.push(b' ');
        self.buf.extend_from_slice(text);
        self.buf.push(b'\n');
        let i = stream.index();
        self.counts[i] += 1;
        self.bytes += text.len() as u64;
        // The clock is read every 64 lines, not for each one (a flood is a million lines).
        let every_64 = (self.counts[0] + self.counts[1]) % 64 == 1;
        if self.buf.len() >= WRITE_BYTES || (every_64 && self.last_write.elapsed() >= WRITE_AGE) {
            self.write_through()?;
        }
        if self.live.is_some() && self.counts[i] > self.live_skip[i] {
            self.batch.push(LogLine {
                stream,
                ts: owned_text(ts),
                text: owned_text(text),
            });
            if self.batch.len() >= BATCH_LINES
                || (self.batch.len() % 64 == 1 && self.last_flush.elapsed() >= BATCH_AGE)
            {
                self.flush_live();
            }
        }
        Ok(())
    }

    /// Writes the gathered whole lines to the file. On failure the file is cut back to its last
    /// whole line and the error (disk full: `StorageFull`) returned.
    pub fn write_through(&mut self) -> io::Result<()> {
        use std::io::{Seek, SeekFrom};
        self.last_write = Instant::now();
        if self.buf.is_empty() {
            return Ok(());
        }
        match self.out.write_all(&self.buf) {
            Ok(()) => {
                self.durable += self.buf.len() as u64;
                self.buf.clear();
                Ok(())
            }
            Err(e) => {
                let _ = self.out.set_len(self.durable);
                let _ = self.out.seek(SeekFrom::Start(self.durable));
                Err(e)
            }
        }
    }

    /// Sends the pending batch to the live listener.
    pub fn flush_live(&mut self) {
        self.last_flush = Instant::now();
        if self.batch.is_empty() {
            return;
        }
        if let Some(live) = self.live.as_mut() {
            live(std::mem::take(&mut self.batch));
        }
    }

    /// Output is idle: forwards the live batch and writes the file through.
    pub fn idle(&mut self) -> io::Result<()> {
        self.flush_live();
        self.write_through()
    }

    /// Flushes the file and the live batch.
    pub fn finish(&mut self) -> io::Result<()> {
        self.flush_live();
        self.write_through()?;
        self.out.sync_data()
    }
}

/// Now, as the timestamp the engine writes on log lines (RFC 3339, nanoseconds, UTC).
pub fn now_ts() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Parses one line of a saved log file into (timestamp, stream, text).
pub fn parse_saved_line(line: &[u8]) -> Option<(&[u8], Stream, &[u8])> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let sp = memchr::memchr(b' ', line)?;
    let rest = &line[sp + 1..];
    let (stream, text) = if let Some(r) = rest.strip_prefix(b"stdout") {
        (Stream::Stdout, r)
    } else if let Some(r) = rest.strip_prefix(b"stderr") {
        (Stream::Stderr, r)
    } else {
        return None;
    };
    Some((&line[..sp], stream, text.strip_prefix(b" ").unwrap_or(text)))
}
