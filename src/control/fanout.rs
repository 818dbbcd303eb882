//! The driver's side of its attached terminals: one bounded queue each, every event serialized
//! once and shared; and request lines read with a length cap.

use tokio::io::AsyncBufReadExt;

use crate::pipeline::Event;

/// The most terminals attached to one driver at once.
pub const MAX_CLIENTS: usize = 32;
/// The most bytes of events queued for one attached terminal that does not read (stopped by
/// Ctrl-Z, a frozen SSH session): past it, its queue is dropped and it catches up from the run
/// state and the log files instead ([`Event::Resync`]), so the driver's memory stays bounded.
pub const CLIENT_QUEUE_BYTES: usize = 4 << 20;
/// The longest request line a client may send.
pub const MAX_REQUEST_LINE: usize = 64 << 10;

/// One attached terminal's queue of serialized event lines.
#[derive(Default)]
pub(super) struct Queue {
    pub(super) inner: std::sync::Mutex<QueueInner>,
    pub(super) ready: tokio::sync::Notify,
}

#[derive(Default)]
pub(super) struct QueueInner {
    pub(super) lines: std::collections::VecDeque<std::sync::Arc<str>>,
    pub(super) bytes: usize,
    pub(super) lagged: bool,
    pub(super) closed: bool,
}

/// Every attached terminal's queue: each event is serialized once and shared.
#[derive(Default)]
pub(super) struct Fanout {
    pub(super) queues: std::sync::Mutex<Vec<std::sync::Arc<Queue>>>,
    closed: std::sync::atomic::AtomicBool,
}

impl Fanout {
    pub(super) fn join(&self) -> Result<std::sync::Arc<Queue>, String> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err("this driver has ended; attach again in a moment".into());
        }
        let mut qs = self
            .queues
            .lock()
            .map_err(|_| "the driver is failing".to_string())?;
        qs.retain(|q| std::sync::Arc::strong_count(q) > 1);
        if qs.len() >= MAX_CLIENTS {
            return Err(format!(
                "{MAX_CLIENTS} terminals are attached already; close one first"
            ));
        }
        let q = std::sync::Arc::new(Queue::default());
        qs.push(q.clone());
        Ok(q)
    }
    pub(super) fn send(&self, e: &Event) {
        let Ok(mut qs) = self.queues.lock() else {
            return;
        };
        // Terminals that left.
        qs.retain(|q| std::sync::Arc::strong_count(q) > 1);
        if qs.is_empty() {
            return;
        }
        // `ServerMsg::Event`'s line, serialized from the borrowed event: a log batch is not
        // copied to be sent.
        let Ok(event) = serde_json::to_string(e) else {
            return;
        };
        let text: std::sync::Arc<str> =
            format!("{{\"type\":\"event\",\"event\":{event}}}\n").into();
        for q in qs.iter() {
            if let Ok(mut i) = q.inner.lock() {
                if i.lagged {
                    continue;
                }
                if i.bytes + text.len() > CLIENT_QUEUE_BYTES {
                    i.lines.clear();
                    i.bytes = 0;
                    i.lagged = true;
                } else {
                    i.bytes += text.len();
                    i.lines.push_back(text.clone());
                }
            }
            q.ready.notify_one();
        }
    }
    pub(super) fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        let Ok(qs) = self.queues.lock() else { return };
        for q in qs.iter() {
            if let Ok(mut i) = q.inner.lock() {
                i.closed = true;
            }
            q.ready.notify_one();
        }
    }
}

/// Reads one request line of at most `max` bytes (without the newline); `None` at the end.
pub(super) async fn read_request<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok((!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned()));
        }
        if let Some(i) = avail.iter().position(|b| *b == b'\n') {
            buf.extend_from_slice(&avail[..i]);
            r.consume(i + 1);
            break;
        }
        let n = avail.len();
        buf.extend_from_slice(avail);
        r.consume(n);
        if buf.len() > max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a request line longer than {max} bytes"),
            ));
        }
    }
    if buf.len() > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a request line longer than {max} bytes"),
        ));
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}
