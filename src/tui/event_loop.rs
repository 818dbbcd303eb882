//! The TUI loop: terminal input, engine events and background work in, frames out. It redraws
//! only when something changed, at most every 33 ms, and at once after input.

use super::*;
use crate::app::work::{Done, Msg};

fn osc52(text: &str) -> std::io::Result<()> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let mut out = std::io::stdout();
    write!(out, "\x1b]52;c;{b64}\x07")?;
    out.flush()
}

/// What the TUI loop works with besides the terminal: the engine and deployconfig for its
/// background work, the effects to start with, and the input thread's switches (to step aside
/// for a shell or a pager).
pub struct Background {
    /// The engine.
    pub engine: Engine,
    /// The deployconfig.
    pub dc: Deployconfig,
    /// Effects to start with.
    pub first: Vec<Effect>,
    /// The input thread (`None`: the input is not the terminal's; nothing steps aside).
    pub input: Option<external::Input>,
}

/// The TUI loop, generic over the terminal backend and the input stream so benchmarks can
/// drive it. Returns the exit code when the operator quits.
pub async fn event_loop<B, S>(
    terminal: &mut ratatui::Terminal<B>,
    app: &mut App,
    mut input: S,
    ev_rx: &mut UnboundedReceiver<Event>,
    cmd_tx: &UnboundedSender<Command>,
    ctl_tx: &UnboundedSender<Control>,
    background: Option<Background>,
) -> color_eyre::Result<i32>
where
    B: ratatui::backend::Backend,
    S: futures_util::Stream<Item = std::io::Result<TermEvent>> + Unpin,
{
    let (setup_tx, mut setup_rx) = mpsc::unbounded_channel::<SetupMsg>();
    let (note_tx, mut note_rx) = mpsc::unbounded_channel::<String>();
    let (bg, first, input_ctl) = match background {
        Some(b) => (Some((b.engine, b.dc)), b.first, b.input),
        None => (None, vec![], None),
    };
    let (url_tx, mut url_rx) = mpsc::unbounded_channel::<(String, UrlCheck)>();
    // File work (log indexing, search, save; tails of old logs) runs on blocking threads.
    let (work_tx, mut work_rx) = mpsc::unbounded_channel::<Done>();
    let ctx = Effects {
        bg,
        input: input_ctl,
        cmd_tx,
        ctl_tx,
        setup_tx,
        note_tx,
        url_tx,
        work_tx,
    };
    let mut frames = Frames::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let size = terminal
        .size()
        .map_err(|e| color_eyre::eyre::eyre!("terminal size: {e}"))?;
    let mut effects = first;
    effects.extend(app.update(Msg::Resize(size.width, size.height)));
    loop {
        for e in effects.drain(..) {
            match ctx.apply(e, app, terminal).await {
                Flow::Go => {}
                Flow::Redraw => frames.now = true,
                Flow::Quit => return Ok(0),
            }
        }
        app.record_messages();
        frames.draw_if_due(terminal, app)?;
        let next_frame = frames.next();
        effects = tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => { frames.now = true; app.update(Msg::Key(k)) }
                Some(Ok(TermEvent::Mouse(m))) => { frames.now = true; app.update(Msg::Mouse(m, &frames.hits)) }
                Some(Ok(TermEvent::Resize(w, h))) => { frames.now = true; app.update(Msg::Resize(w, h)) }
                Some(Ok(_)) => vec![],
                Some(Err(_)) | None => return Ok(0),
            },
            Some(e) = ev_rx.recv() => {
                let mut effects = app.update(Msg::Run(e));
                // Drain what is queued so a flood costs one frame, not one per batch.
                for _ in 0..256 {
                    match ev_rx.try_recv() { Ok(e) => effects.extend(app.update(Msg::Run(e))), Err(_) => break }
                }
                effects
            }
            Some((step, c)) = url_rx.recv() => app.update(Msg::UrlChecked(step, c)),
            Some(d) = work_rx.recv() => app.update(Msg::Done(d)),
            Some(m) = setup_rx.recv() => app.update(Msg::Setup(m)),
            Some(n) = note_rx.recv() => app.update(Msg::Run(Event::Note(n))),
            _ = tick.tick(), if app.animating() => app.update(Msg::Tick),
            _ = tokio::time::sleep_until(next_frame), if app.dirty => vec![],
            _ = hup.recv() => return Ok(crate::exit::DETACHED),
            _ = term.recv() => return Ok(crate::exit::DETACHED),
        };
    }
}

/// When to draw: only what changed, at most every 33 ms, at once after input.
struct Frames {
    /// Click targets of the last frame.
    hits: Hits,
    gap: Duration,
    last: Instant,
    /// Draw at once (after input), not at the next frame.
    now: bool,
}

impl Frames {
    fn new() -> Self {
        let gap = Duration::from_millis(33);
        Frames {
            hits: Hits::new(),
            gap,
            last: Instant::now() - gap,
            now: true,
        }
    }

    /// Draws when something changed and a frame is due. An error: the terminal is gone.
    fn draw_if_due<B: ratatui::backend::Backend>(
        &mut self,
        terminal: &mut ratatui::Terminal<B>,
        app: &mut App,
    ) -> color_eyre::Result<()> {
        if !app.dirty || !(self.now || self.last.elapsed() >= self.gap) {
            return Ok(());
        }
        app.now = chrono::Utc::now();
        if let Err(e) = terminal.draw(|f| ui::draw(f, app, &mut self.hits)) {
            // The terminal is gone (SSH dropped): leave; the stages keep running.
            return Err(color_eyre::eyre::eyre!("drawing failed: {e}"));
        }
        app.dirty = false;
        self.now = false;
        self.last = Instant::now();
        Ok(())
    }

    /// When the next frame may be drawn.
    fn next(&self) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.last + self.gap)
    }
}

/// Asks the web server for its URL every 2 s while a window is open (off the loop).
/// What the loop does after an effect.
enum Flow {
    /// Go on.
    Go,
    /// Go on, drawing at once (the terminal was handed back).
    Redraw,
    /// The operator quit.
    Quit,
}

/// Where the loop sends effects: the runner's command and control channels, background work.
struct Effects<'a> {
    bg: Option<(Engine, Deployconfig)>,
    input: Option<external::Input>,
    cmd_tx: &'a UnboundedSender<Command>,
    ctl_tx: &'a UnboundedSender<Control>,
    setup_tx: UnboundedSender<SetupMsg>,
    note_tx: UnboundedSender<String>,
    url_tx: UnboundedSender<(String, UrlCheck)>,
    work_tx: UnboundedSender<Done>,
}

impl Effects<'_> {
    /// Carries out one effect of the update.
    async fn apply<B: ratatui::backend::Backend>(
        &self,
        e: Effect,
        app: &mut App,
        terminal: &mut ratatui::Terminal<B>,
    ) -> Flow {
        match e {
            Effect::Send(c) => {
                let _ = self.cmd_tx.send(c);
            }
            Effect::Start(p) => {
                let _ = self.ctl_tx.send(Control::Start(p));
            }
            Effect::SkipThenContinue(id) => {
                let _ = self.ctl_tx.send(Control::Skip(id));
            }
            Effect::AllowRerun(id) => {
                let _ = self.ctl_tx.send(Control::AllowRerun(id));
            }
            Effect::TlsVerify(v) => {
                let _ = self.ctl_tx.send(Control::TlsVerify(v));
            }
            Effect::Quit => return Flow::Quit,
            Effect::SetMouse(on) => {
                let _ = if on {
                    execute!(std::io::stdout(), EnableMouseCapture)
                } else {
                    execute!(std::io::stdout(), DisableMouseCapture)
                };
            }
            Effect::Clipboard(text) => {
                let _ = osc52(&text);
            }
            Effect::Setup(task) => {
                if let Some((engine, dc)) = &self.bg {
                    spawn_setup_task(task, app, engine, dc, &self.setup_tx);
                }
            }
            Effect::RememberTheme(name) => remember_theme(name),
            Effect::External(ext) => return self.external(ext, app, terminal).await,
            Effect::Bundle => self.bundle(),
            Effect::Work(job) => {
                let tx = self.work_tx.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = tx.send(job.run());
                });
            }
            Effect::CheckUrl { step, url } => {
                let tx = self.url_tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send((step, check_url(&url).await));
                });
            }
        }
        Flow::Go
    }

    /// Hands the terminal to a shell, pager or editor, and takes it back.
    async fn external<B: ratatui::backend::Backend>(
        &self,
        ext: crate::app::External,
        app: &mut App,
        terminal: &mut ratatui::Terminal<B>,
    ) -> Flow {
        let (Some((engine, _)), Some(input)) = (self.bg.as_ref(), self.input.as_ref()) else {
            return Flow::Go;
        };
        let said = match external::prepare(&ext, engine, &app.state_dir, &app.secrets).await {
            Err(e) => {
                app.status = Some(e);
                app.dirty = true;
                return Flow::Go;
            }
            Ok((cmd, tmp, said)) => {
                let input = input.clone();
                let line = said.clone();
                let r = tokio::task::spawn_blocking(move || {
                    external::run_on_terminal(&input, &cmd, &line)
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
                if let Some(t) = tmp {
                    let _ = std::fs::remove_file(t);
                }
                match r {
                    Ok(code) => format!("back from {said} (exit {code})"),
                    Err(e) => e,
                }
            }
        };
        if app.mouse {
            let _ = execute!(std::io::stdout(), EnableMouseCapture);
        }
        let _ = terminal.clear();
        app.status = Some(said);
        app.dirty = true;
        Flow::Redraw
    }

    /// Writes a support bundle off the loop; a note says where.
    fn bundle(&self) {
        let Some((engine, dc)) = self.bg.clone() else {
            return;
        };
        let tx = self.note_tx.clone();
        tokio::spawn(async move {
            let written = crate::bundle::write_private_blocking(Some(engine), dc).await;
            let note = match written {
                Ok(w) => format!(
                    "support bundle written to {} ({} files, {} KB; {})",
                    w.path.display(),
                    w.files,
                    w.bytes.div_ceil(1024),
                    w.masking
                ),
                Err(e) => format!("support bundle not written: {e}"),
            };
            let _ = tx.send(note);
        });
    }
}

/// Remembers the theme in the user's config folder, off the loop (a small write).
fn remember_theme(name: String) {
    tokio::task::spawn_blocking(move || {
        if let Some(d) = crate::config::user_config_dir() {
            let _ = std::fs::create_dir_all(&d);
            let _ = crate::safefs::Dir::open(&d).and_then(|dir| {
                dir.write_atomic("theme".as_ref(), format!("{name}\n").as_bytes(), 0o644)
            });
        }
    });
}
