//! Complete, whole-line log capture from stage containers into one file per step run.
//!
//! Two readers feed the same [`LogSink`]:
//! - **file**: podman's own `k8s-file` log (`LogPath`, CRI format), read directly. Faster than the
//!   API (which the podman service bottlenecks at ~80k lines/s) and immune to follow mode dropping
//!   the tail on podman 4.3.1, because we read the file to its end after the container exits.
//! - **api**: `logs(follow)` through the engine, then a non-follow re-read after exit that
//!   reconciles whatever follow dropped (Docker, remote engines, unreadable log files).
//!
//! Saved line format: `<timestamp> <stdout|stderr> <text>\n`, one whole line per record.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;

use super::{Engine, Result, api, io as io_err};
use crate::logformat::{BATCH_AGE, Live, LogSink, Stream};

/// Joins partial records (`P`, or API fragments without a newline) into whole lines.
#[derive(Default)]
struct Reassembler {
    partial: [Vec<u8>; 2],
    partial_ts: [Vec<u8>; 2],
}

impl Reassembler {
    fn push(
        &mut self,
        sink: &mut LogSink,
        stream: Stream,
        ts: &[u8],
        text: &[u8],
        complete: bool,
    ) -> io::Result<()> {
        let i = stream.index();
        if complete {
            if self.partial[i].is_empty() {
                return sink.line(stream, ts, text);
            }
            self.partial[i].extend_from_slice(text);
            let line = std::mem::take(&mut self.partial[i]);
            let ts = std::mem::take(&mut self.partial_ts[i]);
            return sink.line(stream, &ts, &line);
        }
        if self.partial[i].is_empty() {
            self.partial_ts[i].clear();
            self.partial_ts[i].extend_from_slice(ts);
        }
        self.partial[i].extend_from_slice(text);
        Ok(())
    }

    /// Emits unterminated last lines (a program that exits without a final newline).
    fn finish(&mut self, sink: &mut LogSink) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let i = stream.index();
            if !self.partial[i].is_empty() {
                let line = std::mem::take(&mut self.partial[i]);
                let ts = std::mem::take(&mut self.partial_ts[i]);
                sink.line(stream, &ts, &line)?;
            }
        }
        Ok(())
    }
}

/// Parses one CRI log line: `<ts> <stdout|stderr> <P|F> <text>`.
fn parse_cri(line: &[u8]) -> Option<(&[u8], Stream, bool, &[u8])> {
    let sp = memchr::memchr(b' ', line)?;
    let ts = &line[..sp];
    let rest = &line[sp + 1..];
    let (stream, rest) = if let Some(r) = rest.strip_prefix(b"stdout") {
        (Stream::Stdout, r)
    } else if let Some(r) = rest.strip_prefix(b"stderr") {
        (Stream::Stderr, r)
    } else {
        return None;
    };
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let (complete, text) = match rest {
        [b'P'] => (false, &rest[1..]),
        [b'F'] => (true, &rest[1..]),
        [b'P', b' ', text @ ..] => (false, text),
        [b'F', b' ', text @ ..] => (true, text),
        other => (true, other),
    };
    Some((ts, stream, complete, text))
}

/// True when `path` is readable and holds CRI-format lines (or nothing yet).
fn is_cri_file(path: &Path) -> bool {
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut first = [0u8; 1];
    match f.read(&mut first) {
        Ok(0) => true,
        Ok(_) => first[0].is_ascii_digit(),
        Err(_) => false,
    }
}

/// Reads a CRI log file from the start into `sink`, following it until `done` is set and the
/// file has stopped growing.
/// `abort` ends it at once (the engine went away; the capture will be redone from the start).
fn follow_cri_file(
    path: &Path,
    sink: &mut LogSink,
    done: &AtomicBool,
    abort: &AtomicBool,
) -> io::Result<()> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0usize;
    let mut asm = Reassembler::default();
    let mut quiet_reads_after_done = 0;
    loop {
        if abort.load(Ordering::Acquire) {
            return Ok(());
        }
        if filled == buf.len() {
            // One record longer than the buffer: grow it.
            buf.resize(buf.len() * 2, 0);
        }
        let n = file.read(&mut buf[filled..])?;
        if n == 0 {
            sink.idle()?;
            let pause = if done.load(Ordering::Acquire) {
                // The engine reports the exit once conmon has drained the output; two more
                // quiet reads 10 ms apart make sure nothing still trickles in.
                quiet_reads_after_done += 1;
                if quiet_reads_after_done > 2 {
                    break;
                }
                10
            } else {
                50
            };
            std::thread::sleep(Duration::from_millis(pause));
            continue;
        }
        quiet_reads_after_done = 0;
        filled += n;
        let mut start = 0;
        while let Some(nl) = memchr::memchr(b'\n', &buf[start..filled]) {
            let line = &buf[start..start + nl];
            if let Some((ts, stream, complete, text)) = parse_cri(line) {
                asm.push(sink, stream, ts, text, complete)?;
                if sink.over() {
                    sink.room_blocking();
                }
            }
            start += nl + 1;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
    }
    asm.finish(sink)
}

/// Splits API log records (timestamps on) into whole lines.
#[derive(Default)]
struct ApiLines {
    asm: Reassembler,
}

impl ApiLines {
    fn record(&mut self, sink: &mut LogSink, item: LogOutput) -> io::Result<()> {
        let (stream, msg) = match item {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (Stream::Stdout, message)
            }
            LogOutput::StdErr { message } => (Stream::Stderr, message),
            LogOutput::StdIn { .. } => return Ok(()),
        };
        let (ts, mut body) = match memchr::memchr(b' ', &msg) {
            Some(sp) => (&msg[..sp], &msg[sp + 1..]),
            None => (&msg[..0], &msg[..]),
        };
        while let Some(nl) = memchr::memchr(b'\n', body) {
            self.asm.push(sink, stream, ts, &body[..nl], true)?;
            body = &body[nl + 1..];
        }
        if !body.is_empty() {
            self.asm.push(sink, stream, ts, body, false)?;
        }
        Ok(())
    }
}

/// How a capture read the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureMode {
    /// Use podman's log file when readable, else the API.
    Auto,
    /// Always the API (benchmarks, and engines whose files we cannot read).
    Api,
}

/// Result of capturing a container's log to its end.
#[derive(Debug, Clone)]
pub struct Capture {
    /// Exit code of the container.
    pub exit_code: i64,
    /// Lines saved per stream (stdout, stderr).
    pub lines: [u64; 2],
    /// Text bytes saved.
    pub bytes: u64,
    /// `file` or `api`.
    pub via: &'static str,
}

impl Engine {
    /// Captures the whole log of container `id` into `path` (from its first line, truncating
    /// the file), following it while it runs, and returns once it has exited.
    pub async fn capture(
        &self,
        id: &str,
        path: &Path,
        live: Option<Live>,
        mode: CaptureMode,
    ) -> Result<Capture> {
        let state = self.inspect(id).await?;
        // podman's compat API calls its k8s-file driver "json-file"; the file itself tells.
        let file_source = match (&state, mode) {
            (Some(s), mode)
                if self.info().is_podman && (mode == CaptureMode::Auto || self.cli().is_some()) =>
            {
                s.log_path.clone().filter(|p| is_cri_file(Path::new(p)))
            }
            _ => None,
        };
        let exited = state
            .as_ref()
            .is_some_and(|s| !s.running && !s.never_started);
        match file_source {
            Some(source) => {
                self.capture_file(id, PathBuf::from(source), path, live)
                    .await
            }
            None if self.cli().is_some() => Err(io_err(format!("reading the log of {id}"))(
                io::Error::other(format!(
                    "podman keeps this container's log where stage2-tui cannot read it ({}); the podman command-line engine needs its k8s-file log (check that {} is readable)",
                    state
                        .as_ref()
                        .and_then(|s| s.log_driver.clone())
                        .unwrap_or_else(|| "no log driver reported".into()),
                    state
                        .as_ref()
                        .and_then(|s| s.log_path.clone())
                        .unwrap_or_else(|| "its log file".into()),
                )),
            )),
            None => self.capture_api(id, path, live, exited).await,
        }
    }

    async fn capture_file(
        &self,
        id: &str,
        source: PathBuf,
        path: &Path,
        live: Option<Live>,
    ) -> Result<Capture> {
        let mut sink =
            LogSink::create(path, live).map_err(io_err(format!("creating {}", path.display())))?;
        let done = Arc::new(AtomicBool::new(false));
        let done2 = done.clone();
        let abort = Arc::new(AtomicBool::new(false));
        let abort2 = abort.clone();
        let mut reader = tokio::task::spawn_blocking(move || {
            let r =
                follow_cri_file(&source, &mut sink, &done2, &abort2).and_then(|()| sink.finish());
            (r, sink.counts, sink.bytes)
        });
        let joined = |j: std::result::Result<_, tokio::task::JoinError>| {
            j.map_err(|e| io_err("log reader")(io::Error::other(e.to_string())))
        };
        // The reader can fail (disk full) while the container runs on: say so at once rather
        // than after the container exits.
        let exit = tokio::select! {
            exit = self.wait_exit(id) => exit,
            r = &mut reader => {
                let (r, _, _) = joined(r)?;
                r.map_err(io_err(format!("writing the log of {id}")))?;
                // The reader only ends after `done`; reaching here means it failed.
                return Err(io_err(format!("reading the log of {id}"))(io::Error::other("the log reader stopped early")));
            }
        };
        if exit.is_err() {
            abort.store(true, Ordering::Release);
        }
        done.store(true, Ordering::Release);
        let (r, lines, bytes) = joined(reader.await)?;
        let exit = exit?;
        r.map_err(io_err(format!("writing the log of {id}")))?;
        Ok(Capture {
            exit_code: exit,
            lines,
            bytes,
            via: "file",
        })
    }

    async fn capture_api(
        &self,
        id: &str,
        path: &Path,
        live: Option<Live>,
        exited: bool,
    ) -> Result<Capture> {
        if exited {
            // Nothing more will be written: one non-follow read is complete.
            let sink = LogSink::create(path, live)
                .map_err(io_err(format!("creating {}", path.display())))?;
            let never = AtomicBool::new(false);
            let sink = self.read_api(id, sink, false, &never).await?;
            let sink = sink
                .finish_blocking()
                .await
                .map_err(io_err("flushing the log"))?;
            return Ok(Capture {
                exit_code: self.wait_exit(id).await?,
                lines: sink.counts,
                bytes: sink.bytes,
                via: "api",
            });
        }
        let sink =
            LogSink::create(path, live).map_err(io_err(format!("creating {}", path.display())))?;
        let stop = Arc::new(AtomicBool::new(false));
        let follower = {
            let engine = self.clone();
            let id = id.to_string();
            let stop = stop.clone();
            // Spawned: polling the stream from the caller's task halves throughput (ENGINE-NOTES 8).
            tokio::spawn(async move { engine.read_api(&id, sink, true, &stop).await })
        };
        let exit = self.wait_exit(id).await?;
        stop.store(true, Ordering::Release);
        let sink = follower
            .await
            .map_err(|e| io_err("log follower")(io::Error::other(e.to_string())))??;
        let mut sink = sink
            .finish_blocking()
            .await
            .map_err(io_err("flushing the log"))?;
        // Follow mode on podman 4.3.1 drops lines unread when the container exits: re-read the
        // whole log without follow (which is complete) and send on only the lines follow missed.
        let tmp = path.with_extension("reconcile");
        let mut full = LogSink::create(&tmp, sink.live.take())
            .map_err(io_err(format!("creating {}", tmp.display())))?;
        full.live_skip = sink.counts;
        let never = AtomicBool::new(false);
        let full = self.read_api(id, full, false, &never).await?;
        let full = full
            .finish_blocking()
            .await
            .map_err(io_err("flushing the log"))?;
        std::fs::rename(&tmp, path).map_err(io_err(format!("replacing {}", path.display())))?;
        Ok(Capture {
            exit_code: exit,
            lines: full.counts,
            bytes: full.bytes,
            via: "api",
        })
    }

    async fn read_api(
        &self,
        id: &str,
        mut sink: LogSink,
        follow: bool,
        stop: &AtomicBool,
    ) -> Result<LogSink> {
        let opts = LogsOptionsBuilder::default()
            .follow(follow)
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .build();
        let (_, streams) = self.clients("reading a log")?;
        let mut stream = streams.logs(id, Some(opts));
        let mut lines = ApiLines::default();
        let mut stopped_at: Option<Instant> = None;
        loop {
            match tokio::time::timeout(BATCH_AGE, stream.next()).await {
                Ok(Some(Ok(item))) => {
                    lines
                        .record(&mut sink, item)
                        .map_err(io_err("writing the log"))?;
                    if sink.over() {
                        sink.room().await;
                    }
                }
                Ok(Some(Err(e))) => return Err(api(format!("reading the log of {id}"))(e)),
                Ok(None) => break,
                Err(_) => {
                    sink.idle().map_err(io_err("writing the log"))?;
                    if stop.load(Ordering::Acquire) {
                        // The container has exited; the reconcile pass picks up anything left.
                        let at = *stopped_at.get_or_insert_with(Instant::now);
                        if at.elapsed() > Duration::from_millis(500) {
                            break;
                        }
                    }
                }
            }
        }
        lines
            .asm
            .finish(&mut sink)
            .map_err(io_err("writing the log"))?;
        Ok(sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logformat::parse_saved_line;

    #[test]
    fn cri_lines_parse_and_partials_join() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("ctr.log");
        let long = "x".repeat(20_000);
        let content = format!(
            "2026-01-01T00:00:00.1+00:00 stdout F hello\n\
             2026-01-01T00:00:00.2+00:00 stderr P par\n\
             2026-01-01T00:00:00.3+00:00 stdout P {}\n\
             2026-01-01T00:00:00.4+00:00 stderr F tial\n\
             2026-01-01T00:00:00.5+00:00 stdout F {}\n\
             2026-01-01T00:00:00.6+00:00 stdout F \n\
             2026-01-01T00:00:00.7+00:00 stdout P no newline at exit",
            &long[..8192],
            &long[8192..]
        );
        std::fs::write(&src, content + "\n").unwrap();
        let out = dir.path().join("saved.log");
        let mut sink = LogSink::create(&out, None).unwrap();
        let done = AtomicBool::new(true);
        follow_cri_file(&src, &mut sink, &done, &AtomicBool::new(false)).unwrap();
        sink.finish().unwrap();
        let saved = std::fs::read(&out).unwrap();
        let lines: Vec<_> = saved
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| parse_saved_line(l).unwrap())
            .map(|(_, s, t)| (s, String::from_utf8_lossy(t).into_owned()))
            .collect();
        assert_eq!(
            lines,
            vec![
                (Stream::Stdout, "hello".to_string()),
                (Stream::Stderr, "partial".to_string()),
                (Stream::Stdout, long.clone()),
                (Stream::Stdout, String::new()),
                (Stream::Stdout, "no newline at exit".to_string()),
            ]
        );
        assert_eq!(sink.counts, [4, 1]);
    }

    #[test]
    fn api_records_split_and_join() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("saved.log");
        let mut sink = LogSink::create(&out, None).unwrap();
        let mut lines = ApiLines::default();
        for (msg, err) in [
            ("T1 one\n", false),
            ("T2 tw", false),
            ("T3 o\nthree\n", false),
            ("T4 oops\n", true),
        ] {
            let message = bytes::Bytes::from(msg.as_bytes().to_vec());
            let item = if err {
                LogOutput::StdErr { message }
            } else {
                LogOutput::StdOut { message }
            };
            lines.record(&mut sink, item).unwrap();
        }
        sink.finish().unwrap();
        let saved = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            saved,
            "T1 stdout one\nT2 stdout two\nT3 stdout three\nT4 stderr oops\n"
        );
    }
}
