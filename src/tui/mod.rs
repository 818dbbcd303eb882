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

mod attach;
mod event_loop;
mod external;
mod tasks;

use attach::run_attached;
pub use event_loop::{Background, event_loop};
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
            s.tag.tls_verify = opts.tls_verify.unwrap_or(true);
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
    let (running, on_bastion) = still_running(&app, &engine).await;
    let halted = matches!(
        app.finish,
        Some(Ok(Finish::Failed { .. } | Finish::Stopped { .. }))
    );
    parting_words(&app, &engine, &dc, &running, &on_bastion, halted);
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

/// Steps the state calls running, whose container the engine still runs (a step whose
/// container exited a moment ago does not "keep running"); and the host steps and waits that
/// were running here (no container: they stop with this process).
async fn still_running(app: &App, engine: &Engine) -> (Vec<String>, Vec<String>) {
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
    (running, on_bastion)
}

/// What the operator reads on leaving: what goes on without the TUI, and the exact command
/// that comes back to it.
fn parting_words(
    app: &App,
    engine: &Engine,
    dc: &Deployconfig,
    running: &[String],
    on_bastion: &[String],
    halted: bool,
) {
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
}
