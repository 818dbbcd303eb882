//! TUI cost benchmark (run: `cargo bench --bench tui`, or scripts/bench-tui.sh for all figures).
//! - opening a 1,000,000-line log: time to the first screen, and memory;
//! - frame render time at 200x60 with that log in view (and the dashboard);
//! - key-to-frame latency while 50,000 log lines per second flood in;
//! - key-to-frame latency while a search scans the 1,000,000-line log, warm and cold cache.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use stage2_tui::app::{LogView, Screen};
use stage2_tui::logformat::{LogLine, Stream};
use stage2_tui::pipeline::Event;
use stage2_tui::ui::{self, Hits, scenes};

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (p(0.5), p(0.95), v[v.len() - 1])
}

/// A flushed frame: when, whether the help overlay was on it, and whether a search had just
/// answered "no match".
struct Frame {
    at: Instant,
    help: bool,
    no_match: bool,
}

/// TestBackend that records each flushed frame.
struct Probe {
    inner: TestBackend,
    frames: Arc<Mutex<Vec<Frame>>>,
}

impl Backend for Probe {
    type Error = <TestBackend as Backend>::Error;
    fn draw<'a, I: Iterator<Item = (u16, u16, &'a Cell)>>(
        &mut self,
        content: I,
    ) -> Result<(), Self::Error> {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, p: P) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(p)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }
    fn clear_region(&mut self, t: ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(t)
    }
    fn size(&self) -> Result<Size, Self::Error> {
        self.inner.size()
    }
    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        let buf = self.inner.buffer();
        let w = buf.area.width as usize;
        let rows: Vec<String> = buf
            .content()
            .chunks(w)
            .map(|row| row.iter().map(|c| c.symbol()).collect())
            .collect();
        let help = rows.iter().any(|r| r.contains("Help (Esc closes)"));
        let no_match = rows.iter().any(|r| r.contains("no match for"));
        if let Ok(mut f) = self.frames.lock() {
            f.push(Frame {
                at: Instant::now(),
                help,
                no_match,
            });
        }
        self.inner.flush()
    }
}

fn render_bench(
    label: &str,
    app: &mut stage2_tui::app::App,
    frames: usize,
    mut between: impl FnMut(&mut stage2_tui::app::App),
) {
    let mut t = Terminal::new(TestBackend::new(200, 60)).unwrap_or_else(|e| panic!("{e}"));
    let mut hits = Hits::new();
    let mut times = Vec::with_capacity(frames);
    for _ in 0..frames {
        let s = Instant::now();
        between(app);
        t.draw(|f| ui::draw(f, app, &mut hits))
            .unwrap_or_else(|e| panic!("{e}"));
        times.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    let (p50, p95, max) = stats(times);
    println!("{label:<52} median {p50:.3} ms  p95 {p95:.3} ms  max {max:.3} ms");
}

fn main() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    println!("writing a 1,000,000-line log…");
    let path = scenes::log_file(d, 1_000_000).unwrap_or_else(|e| panic!("{e}"));
    let size_mb = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    let rss_before = rss_mb();
    let s = Instant::now();
    let mut app = scenes::failed(d);
    let mut view = LogView::open("7.terraform-deploy", 1, &path, ui::log_rows(60));
    view.settle(None);
    app.screen = Screen::Log(Box::new(view));
    let mut t = Terminal::new(TestBackend::new(200, 60)).unwrap_or_else(|e| panic!("{e}"));
    let mut hits = Hits::new();
    t.draw(|f| ui::draw(f, &app, &mut hits))
        .unwrap_or_else(|e| panic!("{e}"));
    let first = s.elapsed();
    println!(
        "open a 1,000,000-line log ({size_mb:.0} MB) to first screen: {:.0} ms; RSS +{:.1} MB",
        first.as_secs_f64() * 1000.0,
        rss_mb() - rss_before
    );

    render_bench(
        "frame 200x60, log view, 1M-line log (following end)",
        &mut app,
        500,
        |_| {},
    );
    render_bench(
        "frame 200x60, log view, read + draw a new page each",
        &mut app,
        500,
        |a| {
            if let Some(v) = a.screen.log_mut() {
                v.scroll(-(v.height as isize));
            }
        },
    );
    if let Some(v) = app.screen.log_mut() {
        v.wrap = true;
        v.timestamps = stage2_tui::app::Timestamps::Full;
        v.run_search("master-1".into());
        v.settle(None);
    }
    render_bench(
        "frame 200x60, log view, wrap + timestamps + search",
        &mut app,
        500,
        |_| {},
    );
    let mut dash = scenes::running(d);
    render_bench(
        "frame 200x60, dashboard while running",
        &mut dash,
        500,
        |a| a.tick += 1,
    );
    println!("RSS after all: {:.1} MB", rss_mb());

    // Key-to-frame latency under a 50,000 lines/s flood, through the real event loop.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        let frames = Arc::new(Mutex::new(Vec::new()));
        let backend = Probe { inner: TestBackend::new(200, 60), frames: frames.clone() };
        let mut term = Terminal::new(backend).unwrap_or_else(|e| panic!("{e}"));
        let mut app = scenes::running(d);
        let (ev_tx, mut ev_rx) = tokio::sync::mpsc::unbounded_channel();
        let (cmd_tx, _cmd_rx) = tokio::sync::mpsc::unbounded_channel();
        let (ctl_tx, _ctl_rx) = tokio::sync::mpsc::unbounded_channel();
        let (key_tx, key_rx) = tokio::sync::mpsc::unbounded_channel::<std::io::Result<TermEvent>>();
        let input = tokio_stream_from(key_rx);
        let flood = tokio::spawn(async move {
            let mut n = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tick.tick().await;
                let lines: Vec<LogLine> = (0..2500)
                    .map(|_| {
                        n += 1;
                        LogLine { stream: Stream::Stdout, ts: String::new(), text: format!("module.workers.vsphere_virtual_machine.vm[\"worker-{}\"]: Still creating... [{n}]", n % 40) }
                    })
                    .collect();
                if ev_tx.send(Event::Log { step: "7.terraform-deploy".into(), lines }).is_err() {
                    break;
                }
            }
        });
        let driver = {
            let frames = frames.clone();
            tokio::spawn(async move {
                let key = |c: KeyCode| Ok(TermEvent::Key(KeyEvent::new(c, KeyModifiers::NONE)));
                let mut lat = Vec::new();
                tokio::time::sleep(Duration::from_millis(500)).await;
                for i in 0..60 {
                    let (code, want) = if i % 2 == 0 { (KeyCode::Char('?'), true) } else { (KeyCode::Esc, false) };
                    let sent = Instant::now();
                    let _ = key_tx.send(key(code));
                    loop {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        let hit = frames.lock().ok().and_then(|f| f.iter().find(|fr| fr.at >= sent && fr.help == want).map(|fr| fr.at));
                        if let Some(t) = hit {
                            lat.push((t - sent).as_secs_f64() * 1000.0);
                            break;
                        }
                        if sent.elapsed() > Duration::from_secs(5) {
                            lat.push(5000.0);
                            break;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let _ = key_tx.send(key(KeyCode::Char('q')));
                let _ = key_tx.send(Ok(TermEvent::Key(KeyEvent::new(KeyCode::Char('y'), KeyModifiers::NONE))));
                lat
            })
        };
        let _ = stage2_tui::tui::event_loop(&mut term, &mut app, input, &mut ev_rx, &cmd_tx, &ctl_tx, None).await;
        flood.abort();
        let lat = driver.await.unwrap_or_default();
        let frames_drawn = frames.lock().map(|f| f.len()).unwrap_or(0);
        let (p50, p95, max) = stats(lat);
        println!("key-to-frame latency under 50,000 lines/s: median {p50:.1} ms  p95 {p95:.1} ms  max {max:.1} ms ({frames_drawn} frames drawn)");
    });
    search_latency(d, &path, false);
    search_latency(d, &path, true);
}

/// Drops the file's pages from the page cache (a cold read comes from the disk).
fn drop_cache(path: &std::path::Path) {
    use std::os::fd::AsRawFd;
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.sync_all();
        // SAFETY: a valid descriptor of an open file; the advice only drops clean cached pages.
        unsafe {
            libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        }
    }
}

/// Key-to-frame latency while searches scan a 1,000,000-line log, through the real event loop:
/// each round types a search for text that is not there (so it reads the whole file), then
/// presses keys (help on, help off) every 20 ms until the search has answered.
fn search_latency(d: &std::path::Path, path: &std::path::Path, cold: bool) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    // The old way, for comparison: the search in the update, so a key waits for all of it.
    let mut idx = stage2_tui::logfile::LineIndex::new(path);
    idx.refresh().unwrap_or_else(|e| panic!("{e}"));
    let mut blocked = Vec::new();
    for _ in 0..3 {
        if cold {
            drop_cache(path);
        }
        let s = Instant::now();
        let _ = idx.search("no such text", 100_001);
        blocked.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    rt.block_on(async {
        let frames = Arc::new(Mutex::new(Vec::new()));
        let backend = Probe { inner: TestBackend::new(200, 60), frames: frames.clone() };
        let mut term = Terminal::new(backend).unwrap_or_else(|e| panic!("{e}"));
        let mut app = scenes::failed(d);
        let mut view = LogView::open("7.terraform-deploy", 1, path, ui::log_rows(60));
        view.settle(None);
        app.screen = Screen::Log(Box::new(view));
        let (_ev_tx, mut ev_rx) = tokio::sync::mpsc::unbounded_channel();
        let (cmd_tx, _cmd_rx) = tokio::sync::mpsc::unbounded_channel();
        let (ctl_tx, _ctl_rx) = tokio::sync::mpsc::unbounded_channel();
        let (key_tx, key_rx) = tokio::sync::mpsc::unbounded_channel::<std::io::Result<TermEvent>>();
        let input = tokio_stream_from(key_rx);
        let path = path.to_path_buf();
        let driver = {
            let frames = frames.clone();
            tokio::spawn(async move {
                let key = |c: KeyCode| Ok(TermEvent::Key(KeyEvent::new(c, KeyModifiers::NONE)));
                let mut lat = Vec::new();
                let mut searches = Vec::new();
                tokio::time::sleep(Duration::from_millis(300)).await;
                for round in 0..5 {
                    if cold {
                        drop_cache(&path);
                    }
                    let _ = key_tx.send(key(KeyCode::Char('/')));
                    for c in format!("no such text {round}").chars() {
                        let _ = key_tx.send(key(KeyCode::Char(c)));
                    }
                    let started = Instant::now();
                    let _ = key_tx.send(key(KeyCode::Enter));
                    let mut help = false;
                    loop {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        let done = frames.lock().ok().is_some_and(|f| {
                            f.iter().any(|fr: &Frame| fr.at >= started && fr.no_match)
                        });
                        if done {
                            break;
                        }
                        help = !help;
                        let sent = Instant::now();
                        let _ = key_tx.send(key(if help { KeyCode::Char('?') } else { KeyCode::Esc }));
                        loop {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            let hit = frames.lock().ok().and_then(|f| {
                                f.iter().find(|fr| fr.at >= sent && fr.help == help).map(|fr| fr.at)
                            });
                            if let Some(t) = hit {
                                lat.push((t - sent).as_secs_f64() * 1000.0);
                                break;
                            }
                            if sent.elapsed() > Duration::from_secs(10) {
                                lat.push(10_000.0);
                                break;
                            }
                        }
                    }
                    searches.push(started.elapsed().as_secs_f64() * 1000.0);
                    if help {
                        let _ = key_tx.send(key(KeyCode::Esc));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let _ = key_tx.send(key(KeyCode::Char('q')));
                (lat, searches)
            })
        };
        let _ = stage2_tui::tui::event_loop(&mut term, &mut app, input, &mut ev_rx, &cmd_tx, &ctl_tx, None).await;
        let (lat, searches) = driver.await.unwrap_or_default();
        let n = lat.len();
        let mut sorted = lat.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let p99 = sorted[((n.max(1) - 1) as f64 * 0.99).round() as usize];
        let (p50, _, max) = stats(lat);
        let (s50, _, _) = stats(searches);
        let (b50, _, bmax) = stats(blocked);
        let cache = if cold { "cold cache" } else { "warm cache" };
        println!("key-to-frame latency during a 1M-line search ({cache}): median {p50:.1} ms  p99 {p99:.1} ms  max {max:.1} ms ({n} keys; searches took {s50:.0} ms median)");
        println!("  before (the search in the update, {cache}): a key waited for the whole search: {b50:.0} ms median, {bmax:.0} ms max");
    });
}

/// An mpsc receiver as a Stream.
fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Unpin {
    Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}
