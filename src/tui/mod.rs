//! The full-screen TUI: terminal set-up and restore, the event loop, and the task that drives
//! the pipeline for it. The loop redraws only when something changed, at most every 33 ms, and
//! at once after input.

use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine as _;
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as TermEvent, KeyEventKind,
};
use crossterm::execute;
use futures_util::StreamExt;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use crate::app::setup::SetupMsg;
use crate::app::{App, Effect, Header, Keymap, UrlCheck};
use crate::config::Deployconfig;
use crate::engine::Engine;
use crate::pipeline::{Command, Event, Finish, Outcome, Plan, Runner};
use crate::ui::{self, Hits, theme::Theme};

mod external;
mod tasks;
use tasks::spawn_setup_task;
pub use tasks::{check_url, secret_values};

/// How the TUI was asked to start.
#[derive(Debug, Clone, Default)]
pub struct TuiOptions {
    /// A plan to start with; `None`: continue a run in progress, else just show the last run.
    pub plan: Option<Plan>,
    /// Theme name.
    pub theme: Option<String>,
    /// Open the setup flow first when no run is in progress.
    pub setup: bool,
    /// `--tls-verify=false` for this run's pulls (`None`: as the run had it).
    pub tls_verify: Option<bool>,
    /// `run --force`: re-runs that undo the deployment go on (the operator said so knowingly).
    pub force: bool,
}

pub use crate::control::Control;

/// Owns the runner (and so the deployconfig lock) while the TUI lives.
async fn supervise(
    mut runner: Runner,
    initial: Option<Plan>,
    mut cmds: UnboundedReceiver<Command>,
    mut ctl: UnboundedReceiver<Control>,
    events: UnboundedSender<Event>,
) {
    let mut next = initial;
    loop {
        if let Some(plan) = next.take() {
            while cmds.try_recv().is_ok() {}
            if let Ok(Finish::Detached { .. }) = runner.run(plan, &mut cmds).await {
                return;
            }
        }
        let next_ctl = if runner.has_windows() {
            tokio::select! {
                r = runner.serve_windows(&mut cmds) => {
                    if let Ok(true) = r {
                        return;
                    }
                    continue;
                }
                c = ctl.recv() => c,
            }
        } else {
            tokio::select! {
                c = cmds.recv() => match c {
                    Some(Command::Detach) | None => return,
                    // Nothing runs: stop/skip/window commands have nothing to act on.
                    Some(_) => continue,
                },
                c = ctl.recv() => c,
            }
        };
        match next_ctl {
            Some(Control::Start(p)) => next = Some(p),
            Some(Control::TlsVerify(v)) => runner.set_tls_verify(v),
            Some(Control::AllowRerun(id)) => runner.allow_hazard(Some(id)),
            Some(Control::Skip(id)) => match runner.skip_step(&id) {
                Ok(()) => next = Some(Plan::Continue),
                Err(e) => {
                    let _ = events.send(Event::Note(e.to_string()));
                }
            },
            None => return,
        }
    }
}

/// Raw mode, alternate screen, mouse capture and bracketed paste; all undone on drop and on panic.
struct TerminalGuard {
    terminal: ratatui::DefaultTerminal,
}

impl TerminalGuard {
    fn new(mouse: bool) -> std::io::Result<Self> {
        let terminal = ratatui::init();
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = execute!(
                std::io::stdout(),
                DisableMouseCapture,
                DisableBracketedPaste
            );
            prev(info);
        }));
        execute!(std::io::stdout(), EnableBracketedPaste)?;
        if mouse {
            execute!(std::io::stdout(), EnableMouseCapture)?;
        }
        Ok(Self { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(
            std::io::stdout(),
            DisableMouseCapture,
            DisableBracketedPaste
        );
        ratatui::restore();
    }
}

/// Picks the themes: NO_COLOR gives the monochrome one only.
pub fn themes(wanted: Option<&str>) -> Result<(Vec<Theme>, usize, Vec<String>), String> {
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return Ok((vec![Theme::monochrome()], 0, vec![]));
    }
    let (themes, problems) = Theme::load_all();
    // No theme asked for: the one chosen last time with `t` (remembered in the config folder).
    let remembered = crate::config::user_config_dir()
        .and_then(|d| crate::safefs::read_settings_file(&d.join("theme")).ok())
        .map(|t| t.trim().to_string())
        .filter(|t| themes.iter().any(|x| x.name == *t));
    let idx = match wanted {
        None => remembered
            .and_then(|t| themes.iter().position(|x| x.name == t))
            .unwrap_or(0),
        Some(name) => themes.iter().position(|t| t.name == name).ok_or_else(|| {
            format!(
                "no theme `{name}`; themes are: {}",
                themes
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?,
    };
    Ok((themes, idx, problems))
}

/// Runs the TUI on a deployconfig. Returns the process exit code.
pub async fn run(engine: Engine, dc: Deployconfig, opts: TuiOptions) -> color_eyre::Result<i32> {
    let Some(looks) = Looks::load(opts.theme.as_deref()) else {
        return Ok(crate::exit::CANNOT_START);
    };
    let state_dir = dc.state_dir();
    // Another process drives this run (the systemd unit, a colleague's TUI): attach to it.
    if let Some(holder) = crate::pipeline::RunLock::holder(&state_dir) {
        return run_attached(engine, dc, looks, holder).await;
    }
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let (raw_tx, raw_rx) = mpsc::unbounded_channel();
    let mut runner = match crate::pipeline::accept::open_asking(&engine, &dc, raw_tx.clone()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("stage2-tui: {e}");
            return Ok(crate::exit::CANNOT_START);
        }
    };
    if let Some(v) = opts.tls_verify {
        runner.set_tls_verify(v);
    }
    if opts.force {
        runner.allow_hazard(None);
    }
    let server = crate::control::serve_or_forward(
        &dc,
        &state_dir,
        crate::control::DriverInfo::me("tui"),
        runner.pipeline().clone(),
        crate::control::Wiring {
            events: raw_rx,
            inject: raw_tx.clone(),
            local: ev_tx.clone(),
            commands: cmd_tx.clone(),
            control: Some(ctl_tx.clone()),
        },
    );
    drop(raw_tx);
    // A run that exists (in progress, halted, failed, completed) opens on its dashboard; the
    // setup flow is one key away there. Setup opens first only before any run.
    let setup = opts.setup && opts.plan.is_none() && runner.state().is_none();
    let initial = if setup {
        None
    } else {
        opts.plan
            .clone()
            .or_else(|| match runner.state().map(|s| s.outcome) {
                None | Some(Outcome::InProgress) => Some(Plan::Continue),
                Some(_) => None,
            })
    };
    let mut app = looks.app(runner.pipeline().clone(), &engine, &dc);
    runner.announce();
    if initial.is_none()
        && let Some(st) = runner.state()
    {
        app.show_last_run(st);
    }
    let first = if setup {
        let first = app.open_setup(dc.clone());
        if let Some(s) = app.screen.setup_mut() {
            s.tls_verify = opts.tls_verify.unwrap_or(true);
        }
        first
    } else {
        vec![]
    };
    let supervisor = tokio::spawn(async move {
        supervise(runner, initial, cmd_rx, ctl_rx, ev_tx).await;
        drop(server);
    });
    finish_tui(app, engine, dc, ev_rx, cmd_tx, ctl_tx, first, supervisor).await
}

/// The themes and the key map, and the first problem loading them (shown in the status line).
struct Looks {
    themes: Vec<Theme>,
    theme: usize,
    keys: Keymap,
    problems: Vec<String>,
}

impl Looks {
    /// Loads them; `None` (after saying why) when the asked-for theme does not exist.
    fn load(wanted: Option<&str>) -> Option<Self> {
        let (themes, theme, problems) = match themes(wanted) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("stage2-tui: {e}");
                return None;
            }
        };
        let (keys, key_problem) = match Keymap::load_user() {
            Ok(k) => (k, None),
            Err(e) => (
                Keymap::builtin(),
                Some(format!("key map not loaded ({e}); using the defaults")),
            ),
        };
        Some(Self {
            themes,
            theme,
            keys,
            problems: key_problem.into_iter().chain(problems).collect(),
        })
    }

    /// A new app with these looks.
    fn app(self, pipeline: crate::pipeline::Pipeline, engine: &Engine, dc: &Deployconfig) -> App {
        let mut app = new_app(pipeline, engine, dc, self.keys, self.themes, self.theme);
        app.startup_problems(self.problems);
        app.secrets = secret_values(dc);
        app
    }
}

/// The TUI attached to the process that drives the run (the systemd unit, a colleague's TUI).
async fn run_attached(
    engine: Engine,
    dc: Deployconfig,
    looks: Looks,
    holder: String,
) -> color_eyre::Result<i32> {
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let att = match crate::control::attach(&dc.state_dir()).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "stage2-tui: another stage2-tui is driving {}: {holder}. {e}",
                dc.dir.display()
            );
            return Ok(crate::exit::CANNOT_START);
        }
    };
    let mut app = looks.app(att.pipeline.clone(), &engine, &dc);
    app.driven_by = Some(att.driver.describe());
    let task = tokio::spawn(attached(
        att,
        app.keys.clone(),
        engine.clone(),
        dc.clone(),
        cmd_rx,
        ctl_rx,
        ev_tx.clone(),
    ));
    drop(ev_tx);
    finish_tui(app, engine, dc, ev_rx, cmd_tx, ctl_tx, vec![], task).await
}

fn new_app(
    pipeline: crate::pipeline::Pipeline,
    engine: &Engine,
    dc: &Deployconfig,
    keys: Keymap,
    themes: Vec<Theme>,
    theme_idx: usize,
) -> App {
    let header = Header {
        deployconfig: dc.dir.display().to_string(),
        engine: engine.describe(),
    };
    let mut app = App::new(
        pipeline,
        header,
        dc.state_dir(),
        dc.dir.join("stage2-logs"),
        keys,
        themes,
    );
    app.theme = theme_idx;
    app.ascii = std::env::var("TERM").is_ok_and(|t| t == "linux");
    // The run's last look at the cluster, read once here (a driver's watcher sends fresh ones);
    // never in the update loop.
    app.cluster = crate::pipeline::cluster::load(&dc.state_dir());
    app
}

/// An attached TUI: relays to the driver until it goes away, then drives itself on the first
/// retry / resume / skip the operator asks for (exactly as when no one drove).
async fn attached(
    att: crate::control::Attached,
    keys: Keymap,
    engine: Engine,
    dc: Deployconfig,
    mut cmds: UnboundedReceiver<Command>,
    mut ctl: UnboundedReceiver<Control>,
    events: UnboundedSender<Event>,
) {
    let mut att = att;
    // Relay to the driver; when it ends, exactly one of the attached terminals takes over (the
    // run's lock decides which) and the others attach to it.
    let (runner, raw_tx, raw_rx, driver) = loop {
        let driver = att.driver.describe();
        let _ = events.send(Event::Driver(Some(driver.clone())));
        if att.relay(&events, &mut cmds, &mut ctl).await == crate::control::Relay::Left {
            return;
        }
        match take_over(&engine, &dc, &mut cmds).await {
            TakeOver::Drive(runner, raw_tx, raw_rx) => break (*runner, raw_tx, raw_rx, driver),
            TakeOver::Attach(next) => {
                let _ = events.send(Event::Note(format!(
                    "the driver ({driver}) has ended; another stage2-tui took over: {}",
                    next.driver.describe()
                )));
                att = *next;
            }
            TakeOver::Left => return,
            TakeOver::Failed(e) => {
                let _ = events.send(Event::Driver(None));
                let _ = events.send(Event::Note(format!(
                    "the driver ({driver}) has ended, and this stage2-tui cannot drive: {e}"
                )));
                return;
            }
        }
    };
    let _ = events.send(Event::Driver(None));
    runner.announce();
    // A run the old driver left in the middle goes on at once (reattached to its running
    // container by its labels); a halted one waits for the operator, as before.
    let in_progress = runner
        .state()
        .is_some_and(|s| s.outcome == crate::pipeline::Outcome::InProgress);
    let _ = events.send(Event::Note(if in_progress {
        format!("the driver ({driver}) has ended in the middle of the run; this stage2-tui drives from now on and goes on with it")
    } else {
        format!(
            "the driver ({driver}) has ended; this stage2-tui drives from now on: {retry} retries a failed step, {from} resumes from the selected one",
            retry = keys.key_for(crate::app::Scope::Dashboard, crate::app::Action::Retry).unwrap_or_default(),
            from = keys.key_for(crate::app::Scope::Dashboard, crate::app::Action::ResumeFrom).unwrap_or_default(),
        )
    }));
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let server = crate::control::serve_or_forward(
        &dc,
        &dc.state_dir(),
        crate::control::DriverInfo::me("tui"),
        runner.pipeline().clone(),
        crate::control::Wiring {
            events: raw_rx,
            inject: raw_tx.clone(),
            local: events.clone(),
            commands: cmd_tx.clone(),
            control: Some(ctl_tx.clone()),
        },
    );
    drop(raw_tx);
    let initial = in_progress.then_some(Plan::Continue);
    // This terminal's requests now go to our own runner.
    let relay_cmds = tokio::spawn(async move {
        loop {
            tokio::select! {
                c = cmds.recv() => match c {
                    Some(c) => { let _ = cmd_tx.send(c); }
                    None => return,
                },
                c = ctl.recv() => match c {
                    Some(c) => { let _ = ctl_tx.send(c); }
                    None => return,
                },
            }
        }
    });
    supervise(runner, initial, cmd_rx, ctl_rx, events).await;
    relay_cmds.abort();
    drop(server);
}

/// What an attached terminal does when its driver ends.
enum TakeOver {
    /// It holds the run's lock now: it drives.
    Drive(
        Box<Runner>,
        mpsc::UnboundedSender<Event>,
        mpsc::UnboundedReceiver<Event>,
    ),
    /// Another stage2-tui took the lock first: attached to it.
    Attach(Box<crate::control::Attached>),
    /// The operator left meanwhile.
    Left,
    /// Neither worked (the message says why).
    Failed(String),
}

/// Takes the run's lock, or attaches to whoever took it: the lock is free once the old driver's
/// process is gone, and the winner's control socket appears a moment after it took the lock.
async fn take_over(
    engine: &Engine,
    dc: &Deployconfig,
    cmds: &mut UnboundedReceiver<Command>,
) -> TakeOver {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // A little jitter, so two terminals that saw the driver end together do not keep colliding.
    let jitter = Duration::from_millis(u64::from(std::process::id() % 97));
    loop {
        let (raw_tx, raw_rx) = mpsc::unbounded_channel();
        match Runner::open(engine.clone(), dc.clone(), raw_tx.clone()) {
            Ok(r) => return TakeOver::Drive(Box::new(r), raw_tx, raw_rx),
            Err(crate::pipeline::PipelineError::Locked(e)) => {
                if let Ok(a) = crate::control::attach(&dc.state_dir()).await {
                    return TakeOver::Attach(Box::new(a));
                }
                if tokio::time::Instant::now() >= deadline {
                    return TakeOver::Failed(format!(
                        "for 30 s neither its lock nor its driver answered ({e})"
                    ));
                }
            }
            Err(e) => return TakeOver::Failed(e.to_string()),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(150) + jitter) => {}
            c = cmds.recv() => if matches!(c, Some(Command::Detach) | None) {
                return TakeOver::Left;
            },
        }
    }
}

/// The part of the TUI both a driver and an attached TUI share: the terminal, the loop, the
/// goodbye.
#[allow(clippy::too_many_arguments)]
async fn finish_tui(
    mut app: App,
    engine: Engine,
    dc: Deployconfig,
    mut ev_rx: UnboundedReceiver<Event>,
    cmd_tx: UnboundedSender<Command>,
    ctl_tx: UnboundedSender<Control>,
    first: Vec<Effect>,
    supervisor: tokio::task::JoinHandle<()>,
) -> color_eyre::Result<i32> {
    let code = {
        let mut guard = TerminalGuard::new(app.mouse)?;
        // Input on a thread that pauses while a shell or a pager has the terminal.
        let (input, stream) = external::input();
        let r = event_loop(
            &mut guard.terminal,
            &mut app,
            stream,
            &mut ev_rx,
            &cmd_tx,
            &ctl_tx,
            Some(Background {
                engine: engine.clone(),
                dc: dc.clone(),
                first,
                input: Some(input),
            }),
        )
        .await;
        drop(guard);
        r?
    };
    let _ = cmd_tx.send(Command::Detach);
    drop(ctl_tx);
    drop(cmd_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), supervisor).await;
    // Steps the state calls running, whose container the engine still runs (a step whose
    // container exited a moment ago does not "keep running"). A host step or wait has no
    // container: it stops with this process and is not listed.
    let mut running: Vec<String> = Vec::new();
    let mut on_bastion: Vec<String> = Vec::new();
    for s in app.run.iter().flat_map(|r| &r.steps).filter(|s| {
        matches!(
            s.status,
            crate::pipeline::StepStatus::Running | crate::pipeline::StepStatus::Serving
        )
    }) {
        let Some(id) = s.last().and_then(|a| a.container_id.clone()) else {
            if app.driven_by.is_none() {
                on_bastion.push(s.id.clone());
            }
            continue;
        };
        let alive = tokio::time::timeout(Duration::from_secs(3), engine.inspect(&id))
            .await
            .map(|r| r.map(|c| c.is_some_and(|c| c.running)).unwrap_or(true))
            .unwrap_or(true);
        if alive {
            running.push(s.id.clone());
        }
    }
    // The exact command that comes back to this run.
    let again = {
        let mut c = format!("stage2-tui --deployconfig {}", dc.dir.display());
        let ep = &engine.info().endpoint;
        if engine.info().private_service.is_none()
            && ep != "unix:///run/podman/podman.sock"
            && std::env::var("STAGE2_ENGINE").ok().as_deref() != Some(ep.as_str())
        {
            c += &format!(" --engine {ep}");
        }
        c
    };
    let halted = matches!(
        app.finish,
        Some(Ok(Finish::Failed { .. } | Finish::Stopped { .. }))
    );
    // After a hang-up the terminal is gone: a failed write must not panic (println! would).
    let mut out = std::io::stdout();
    let _ = if let Some(d) = &app.driven_by {
        writeln!(out, "stage2-tui: left; the run goes on ({d}).")
    } else if !running.is_empty() && !halted {
        writeln!(
            out,
            "stage2-tui: {} {} running in the engine; `{again}` reattaches.",
            running.join(", "),
            if running.len() == 1 { "keeps" } else { "keep" }
        )
    } else if !on_bastion.is_empty() && !halted {
        writeln!(
            out,
            "stage2-tui: {} ran on this machine, in stage2-tui, and stopped with it; `{again}` goes on from there.",
            on_bastion.join(", ")
        )
    } else if halted {
        writeln!(
            out,
            "stage2-tui: {}\n`{again}` opens this run's dashboard to retry or resume.",
            crate::text::visible(app.status.as_deref().unwrap_or("the run halted"))
        )
    } else {
        writeln!(
            out,
            "stage2-tui: {}",
            crate::text::visible(app.status.as_deref().unwrap_or("bye"))
        )
    };
    if let Some(w) = app.window_note().filter(|_| app.driven_by.is_none()) {
        let _ = writeln!(out, "stage2-tui: {w}");
    }
    // Like headless: 0 only for a completed run (or when nothing ran), 1 for a failed or stopped
    // one, 130 when the run goes on without us.
    let working = app.driving
        || app
            .run
            .iter()
            .flat_map(|r| &r.steps)
            .any(|s| s.status == crate::pipeline::StepStatus::Running);
    let code = match code {
        0 if app.driven_by.is_some() => 0,
        0 if working => crate::exit::DETACHED,
        0 if halted => 1,
        c => c,
    };
    Ok(code)
}

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
                                crate::bundle::write(Some(&engine), &dc, &path).await
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
