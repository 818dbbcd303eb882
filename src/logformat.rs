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

/// Where lines go while they are captured: a listener that receives batches (about every 50 ms
/// while output flows), and, for a consumer that can fall behind, the gate that bounds the lines
/// in flight to it.
pub struct Live {
    send: Box<dyn FnMut(Vec<LogLine>) + Send>,
    gate: Option<LiveGate>,
}

impl Live {
    /// A listener that takes every batch at once.
    pub fn new(send: impl FnMut(Vec<LogLine>) + Send + 'static) -> Self {
        Self {
            send: Box::new(send),
            gate: None,
        }
    }

    /// Bounds the lines in flight by `gate` (none: unbounded).
    pub fn gated(mut self, gate: Option<LiveGate>) -> Self {
        self.gate = gate;
        self
    }
}

/// Bounds the log lines in flight to a slow consumer (headless printing to a pipe), so memory
/// stays flat under a flood and no line is dropped: a batch counts as in flight from when the
/// capture sends it until the consumer calls [`LiveGate::done`]. A capture with more than
/// `limit` lines in flight waits for room between the lines it reads: on the API path it awaits
/// [`LiveGate::room`] (nothing blocks a runtime worker), and on the file path, which runs on a
/// blocking thread of its own, it blocks that thread.
#[derive(Clone, Debug)]
pub struct LiveGate {
    inner: std::sync::Arc<Gate>,
    limit: usize,
}

#[derive(Debug, Default)]
struct Gate {
    queued: std::sync::atomic::AtomicUsize,
    freed: tokio::sync::Notify,
    /// Times a capture found no room and waited.
    waits: std::sync::atomic::AtomicUsize,
}

impl LiveGate {
    /// A gate that lets at most `limit` lines be in flight before the capture waits.
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Default::default(),
            limit,
        }
    }

    /// The consumer handled `n` lines.
    pub fn done(&self, n: usize) {
        use std::sync::atomic::Ordering;
        let _ = self
            .inner
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(n))
            });
        self.inner.freed.notify_waiters();
    }

    fn sent(&self, n: usize) {
        self.inner
            .queued
            .fetch_add(n, std::sync::atomic::Ordering::AcqRel);
    }

    /// Lines sent and not yet handled.
    pub fn in_flight(&self) -> usize {
        self.inner.queued.load(std::sync::atomic::Ordering::Acquire)
    }

    fn full(&self) -> bool {
        self.in_flight() > self.limit
    }

    /// Times a capture found no room and waited.
    pub fn waits(&self) -> usize {
        self.inner.waits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until at most `limit` lines are in flight.
    pub async fn room(&self) {
        if self.full() {
            self.inner
                .waits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        loop {
            let freed = self.inner.freed.notified();
            tokio::pin!(freed);
            // Registered before the count is looked at: a `done` in between is not missed.
            freed.as_mut().enable();
            if !self.full() {
                return;
            }
            freed.await;
        }
    }

    /// [`LiveGate::room`] for a blocking thread (never a runtime worker). Without a runtime
    /// there is no consumer to wait for.
    fn room_blocking(&self) {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.block_on(self.room());
        }
    }
}

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
    pub(crate) live: Option<Live>,
    batch: Vec<LogLine>,
    /// The live gate was full after the last batch: the reader waits for room.
    over: bool,
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
    /// Creates (truncates) the log file at `path` (0600), and its missing folders private
    /// (0700). A folder already there keeps its mode: the runner's log folders are inside its
    /// private state folder, and `capture-log --out` may name any folder (`/tmp`).
    pub fn create(path: &Path, live: Option<Live>) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::safefs::missing_dirs_private(dir)?;
        }
        Ok(Self {
            out: crate::safefs::create_private_file(path)?,
            buf: Vec::with_capacity(WRITE_BYTES + 4096),
            durable: 0,
            last_write: Instant::now(),
            live,
            batch: Vec::new(),
            over: false,
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
            let batch = std::mem::take(&mut self.batch);
            if let Some(g) = &live.gate {
                // Counted before it is sent: the consumer may be done with it at once.
                g.sent(batch.len());
                self.over = g.full();
            }
            (live.send)(batch);
        }
    }

    /// The live consumer has fallen behind: the reader should wait ([`LogSink::room`]) before
    /// it reads more.
    pub fn over(&self) -> bool {
        self.over
    }

    fn gate(&self) -> Option<LiveGate> {
        self.live.as_ref().and_then(|l| l.gate.clone())
    }

    /// Waits until the live consumer has room again (async readers).
    pub async fn room(&mut self) {
        if let Some(g) = self.gate() {
            g.room().await;
        }
        self.waited();
    }

    /// Waits until the live consumer has room again, blocking this thread (the file reader,
    /// which has a blocking thread of its own).
    pub fn room_blocking(&mut self) {
        if let Some(g) = self.gate() {
            g.room_blocking();
        }
        self.waited();
    }

    /// After a wait: the batch (sent before it) counts its age from now, so the first line
    /// read after a wait does not go out as a batch of its own.
    fn waited(&mut self) {
        self.over = false;
        self.last_flush = Instant::now();
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

    /// [`LogSink::finish`] for async code: on a blocking thread, so its `fsync` never holds a
    /// runtime worker. Gives the sink back (its counts, its live listener).
    pub async fn finish_blocking(mut self) -> io::Result<Self> {
        tokio::task::spawn_blocking(move || self.finish().map(|()| self))
            .await
            .map_err(io::Error::other)?
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A sink whose batches go to a channel, gated at `limit` lines in flight.
    fn gated_sink(
        dir: &Path,
        limit: usize,
    ) -> (
        LogSink,
        LiveGate,
        tokio::sync::mpsc::UnboundedReceiver<Vec<LogLine>>,
    ) {
        let gate = LiveGate::new(limit);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let live = Live::new(move |b| {
            let _ = tx.send(b);
        })
        .gated(Some(gate.clone()));
        let sink = LogSink::create(&dir.join("x.log"), Some(live)).unwrap();
        (sink, gate, rx)
    }

    /// A consumer slower than the reader: takes each batch, waits, then says it is done.
    /// Returns every text it got and the most lines it ever saw in flight.
    fn slow_consumer(
        mut rx: tokio::sync::mpsc::UnboundedReceiver<Vec<LogLine>>,
        gate: LiveGate,
    ) -> tokio::task::JoinHandle<(Vec<String>, usize)> {
        tokio::spawn(async move {
            let (mut got, mut most) = (Vec::new(), 0);
            while let Some(b) = rx.recv().await {
                most = most.max(gate.in_flight());
                tokio::time::sleep(Duration::from_millis(1)).await;
                let n = b.len();
                got.extend(b.into_iter().map(|l| l.text));
                gate.done(n);
            }
            (got, most)
        })
    }

    fn expect(lines: usize) -> Vec<String> {
        (0..lines).map(|i| format!("line {i}")).collect()
    }

    /// On one runtime thread: if waiting for room blocked it, the consumer (on the same thread)
    /// could never free any, and the test would hang past its timeout.
    #[tokio::test(flavor = "current_thread")]
    async fn an_async_reader_waits_for_a_slow_consumer_without_blocking_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let (mut sink, gate, rx) = gated_sink(dir.path(), 5_000);
        let consumer = slow_consumer(rx, gate.clone());
        let read = async {
            let mut waits = 0;
            for i in 0..50_000 {
                sink.line(Stream::Stdout, b"ts", format!("line {i}").as_bytes())
                    .unwrap();
                if sink.over() {
                    waits += 1;
                    sink.room().await;
                }
            }
            sink.finish().unwrap();
            drop(sink);
            waits
        };
        let waits = tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .expect("the reader never got room: the runtime was blocked");
        let (got, most) = consumer.await.unwrap();
        assert!(waits > 0, "the gate never held the reader back");
        assert_eq!(got, expect(50_000), "every line, in order");
        assert!(most <= 5_000 + 4096, "{most} lines in flight");
        assert_eq!(gate.in_flight(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_file_reader_waits_on_its_own_blocking_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (sink, gate, rx) = gated_sink(dir.path(), 5_000);
        let consumer = slow_consumer(rx, gate.clone());
        let waits = Arc::new(Mutex::new(0));
        let w = waits.clone();
        let reader = tokio::task::spawn_blocking(move || {
            let mut sink = sink;
            for i in 0..50_000 {
                sink.line(Stream::Stdout, b"ts", format!("line {i}").as_bytes())
                    .unwrap();
                if sink.over() {
                    *w.lock().unwrap() += 1;
                    sink.room_blocking();
                }
            }
            sink.finish().unwrap();
        });
        tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .expect("the reader never got room")
            .unwrap();
        let (got, most) = consumer.await.unwrap();
        assert!(
            *waits.lock().unwrap() > 0,
            "the gate never held the reader back"
        );
        assert_eq!(got, expect(50_000));
        assert!(most <= 5_000 + 4096, "{most} lines in flight");
    }
}
