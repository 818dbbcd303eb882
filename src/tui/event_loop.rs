//! The TUI loop: terminal input, engine events and background work in, frames out. It redraws
//! only when something changed, at most every 33 ms, and at once after input.

use super::*;

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
    let (bg, mut pending, input_ctl) = match background {
        Some(b) => (Some((b.engine, b.dc)), b.first, b.input),
        None => (None, vec![], None),
    };
    for e in std::mem::take(&mut pending) {
        if let (Effect::Setup(task), Some((engine, dc))) = (e, &bg) {
            spawn_setup_task(task, app, engine, dc, &setup_tx);
        }
    }
    let mut hits = Hits::new();
    let frame_gap = Duration::from_millis(33);
    let mut last_draw = Instant::now() - frame_gap;
    let mut now_draw = true;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (url_tx, mut url_rx) = mpsc::unbounded_channel::<(String, UrlCheck)>();
    // File work (log indexing, search, save; tails of old logs) runs on blocking threads.
    let (work_tx, mut work_rx) = mpsc::unbounded_channel::<crate::app::work::Done>();
    let (note_tx, mut note_rx) = mpsc::unbounded_channel::<String>();
    let mut url_due = Instant::now();
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let size = terminal
        .size()
        .map_err(|e| color_eyre::eyre::eyre!("terminal size: {e}"))?;
    app.resize(size.width, size.height);
    loop {
        while let Some(job) = app.next_job() {
            let tx = work_tx.clone();
            tokio::task::spawn_blocking(move || {
                let _ = tx.send(job.run());
            });
        }
        app.record_messages();
        if app.dirty && (now_draw || last_draw.elapsed() >= frame_gap) {
            app.now = chrono::Utc::now();
            if let Err(e) = terminal.draw(|f| ui::draw(f, app, &mut hits)) {
                // The terminal is gone (SSH dropped): leave; the stages keep running.
                return Err(color_eyre::eyre::eyre!("drawing failed: {e}"));
            }
            app.dirty = false;
            now_draw = false;
            last_draw = Instant::now();
        }
        if let Some(w) = app.window.as_ref().filter(|_| Instant::now() >= url_due)
            && let Some(url) = w.url.clone()
        {
            url_due = Instant::now() + Duration::from_secs(2);
            let (tx, step) = (url_tx.clone(), w.step.clone());
            tokio::spawn(async move {
                let _ = tx.send((step, check_url(&url).await));
            });
        }
        let next_frame = tokio::time::Instant::from_std(last_draw + frame_gap);
        let effects = tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => { now_draw = true; app.on_key(k) }
                Some(Ok(TermEvent::Mouse(m))) => { now_draw = true; app.on_mouse(m, &hits) }
                Some(Ok(TermEvent::Resize(w, h))) => { now_draw = true; app.resize(w, h); vec![] }
                Some(Ok(_)) => vec![],
                Some(Err(_)) | None => return Ok(0),
            },
            Some(e) = ev_rx.recv() => {
                app.on_runner(e);
                // Drain what is queued so a flood costs one frame, not one per batch.
                let mut n = 0;
                while n < 256 {
                    match ev_rx.try_recv() { Ok(e) => { app.on_runner(e); n += 1; } Err(_) => break }
                }
                vec![]
            }
            Some((step, c)) = url_rx.recv() => { app.on_url_check(&step, c); vec![] }
            Some(d) = work_rx.recv() => app.on_done(d),
            Some(m) = setup_rx.recv() => app.on_setup_msg(m),
            Some(n) = note_rx.recv() => { app.on_runner(Event::Note(n)); vec![] }
            _ = tick.tick(), if app.animating() => { app.tick += 1; app.dirty = true; vec![] }
            _ = tokio::time::sleep_until(next_frame), if app.dirty => vec![],
            _ = hup.recv() => return Ok(crate::exit::DETACHED),
            _ = term.recv() => return Ok(crate::exit::DETACHED),
        };
        pending.extend(effects);
        for e in std::mem::take(&mut pending) {
            match e {
                Effect::Send(c) => {
                    let _ = cmd_tx.send(c);
                }
                Effect::Start(p) => {
                    let _ = ctl_tx.send(Control::Start(p));
                }
                Effect::SkipThenContinue(id) => {
                    let _ = ctl_tx.send(Control::Skip(id));
                }
                Effect::Quit => return Ok(0),
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
                    if let Some((engine, dc)) = &bg {
                        spawn_setup_task(task, app, engine, dc, &setup_tx);
                    }
                }
                Effect::RememberTheme(name) => {
                    // Off the loop: a small write into the user's config folder.
                    tokio::task::spawn_blocking(move || {
                        if let Some(d) = crate::config::user_config_dir() {
                            let _ = std::fs::create_dir_all(&d);
                            let _ = crate::safefs::Dir::open(&d).and_then(|dir| {
                                dir.write_atomic(
                                    "theme".as_ref(),
                                    format!("{name}\n").as_bytes(),
                                    0o644,
                                )
                            });
                        }
                    });
                }
                Effect::AllowRerun(id) => {
                    let _ = ctl_tx.send(Control::AllowRerun(id));
                }
                Effect::TlsVerify(v) => {
                    let _ = ctl_tx.send(Control::TlsVerify(v));
                }
                Effect::External(ext) => {
                    let (Some((engine, _)), Some(input)) = (bg.as_ref(), input_ctl.as_ref()) else {
                        continue;
                    };
                    let said =
                        match external::prepare(&ext, engine, &app.state_dir, &app.secrets).await {
                            Err(e) => {
                                app.status = Some(e);
                                app.dirty = true;
                                continue;
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
                    now_draw = true;
                }
                Effect::Bundle => {
                    let Some((engine, dc)) = bg.clone() else {
                        continue;
                    };
                    let tx = note_tx.clone();
                    tokio::spawn(async move {
                        let written = match crate::bundle::private_bundle_dir(&dc) {
                            Ok(d) => {
                                let path = crate::bundle::default_path(&dc, &d);
                                crate::bundle::write_blocking(Some(engine), dc, path).await
                            }
                            Err(e) => Err(format!("cannot make its folder: {e}")),
                        };
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
        }
    }
}
