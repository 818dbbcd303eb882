//! The headless runner (`stage2-tui run --headless`), for the systemd unit and scripts.
//!
//! One line per log line, prefixed with its step; a start and an end line per step; a summary
//! table; exit 0 on success, non-zero with the failed step named in the last line.

use std::io::Write;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::Deployconfig;
use crate::engine::Engine;
use crate::logformat::LiveGate;
use crate::logformat::{LogLine, Stream};
use crate::pipeline::{Command, Event, Finish, Plan, RunState, Runner};
use crate::text::visible;

/// Exit code when the operator (or systemd) detached us with a signal.
pub use crate::exit::DETACHED as EXIT_DETACHED;

use crate::text::duration as hms;

/// Text safe to print: secrets masked, control bytes made visible.
/// Masked, control bytes made visible, line by line (a message of several lines stays so).
fn redact(s: &str, secrets: &[String]) -> String {
    s.lines()
        .map(|l| visible(&crate::text::mask(l, secrets)).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn clock() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

/// Prints events as they come. Returns the last state seen.
/// Log lines are printed through a buffer flushed after each event (not a write per line), and
/// `gate` is told when a batch is out, so a flood never piles up in memory.
async fn print_events(
    mut rx: mpsc::UnboundedReceiver<Event>,
    width: usize,
    secrets: Vec<String>,
    gate: LiveGate,
) -> Option<RunState> {
    let mut p = Printer {
        width,
        masker: crate::text::Masker::new(&secrets),
        printed: Default::default(),
        last_cluster: None,
        last_state: None,
    };
    let stdout = std::io::stdout();
    while let Some(ev) = rx.recv().await {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
        let lines = match &ev {
            Event::Log { lines, .. } => lines.len(),
            _ => 0,
        };
        let _ = p.print(&mut out, ev);
        let _ = out.flush();
        if lines > 0 {
            gate.done(lines);
        }
    }
    p.last_state
}

/// What printing remembers between events.
struct Printer {
    /// The widest step id.
    width: usize,
    masker: crate::text::Masker,
    /// Lines printed of each step's attempt (attempt, printed, still to skip): a reattach of the
    /// same attempt (after the engine went away, or the disk filled) reads its log again from
    /// the start, and those lines were printed already.
    printed: std::collections::HashMap<String, (u32, usize, usize)>,
    /// The last cluster line (a line is printed when the cluster changes, not at every look).
    last_cluster: Option<String>,
    last_state: Option<RunState>,
}

impl Printer {
    fn print(&mut self, out: &mut impl Write, ev: Event) -> std::io::Result<()> {
        match ev {
            Event::RunStarted { run_id, how } => writeln!(out, "{} run {run_id}: {how}", clock()),
            Event::StepStarted {
                step,
                attempt,
                detail,
            } => {
                let e = self.printed.entry(step.clone()).or_insert((attempt, 0, 0));
                *e = if e.0 == attempt {
                    (attempt, e.1, e.1)
                } else {
                    (attempt, 0, 0)
                };
                let again = if attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                writeln!(out, "{} ==> {step}{again}: {detail}", clock())
            }
            Event::Log { step, lines } => self.log(out, &step, &lines),
            Event::Trouble(Some(t)) => writeln!(out, "{} !!! {t}", clock()),
            Event::Trouble(None) | Event::Driver(_) | Event::Resync | Event::Finished(_) => Ok(()),
            Event::StepFinished {
                step,
                status,
                exit_code,
                duration,
                error,
            } => {
                let code = exit_code
                    .map(|c| format!(" (exit {c})"))
                    .unwrap_or_default();
                let why = error
                    .map(|e| format!(": {}", visible(&e)))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{} <== {step}: {} in {}{code}{why}",
                    clock(),
                    status.word(),
                    hms(duration)
                )
            }
            Event::Window {
                step,
                url,
                ends_at,
                waiting_for,
            } => window(out, &step, url, ends_at, waiting_for),
            Event::Note(n) => writeln!(out, "{} --- {}", clock(), visible(&n)),
            Event::Cluster(c) => {
                let line = match &c.error {
                    Some(e) if c.nodes.is_empty() => {
                        format!("the cluster's API does not answer yet ({})", visible(e))
                    }
                    _ => format!("{}; {}", c.nodes_line(), c.operators_line()),
                };
                if self.last_cluster.as_deref() == Some(line.as_str()) {
                    return Ok(());
                }
                let r = writeln!(out, "{} --- cluster: {line}", clock());
                self.last_cluster = Some(line);
                r
            }
            Event::State(s) => {
                self.last_state = Some(*s);
                Ok(())
            }
        }
    }

    /// A batch of a step's log lines, masked and made visible; the web server's fetches said.
    fn log(&mut self, out: &mut impl Write, step: &str, lines: &[LogLine]) -> std::io::Result<()> {
        let n = lines.len();
        let (_, count, skip) = self.printed.entry(step.to_string()).or_insert((0, 0, 0));
        let drop_first = (*skip).min(n);
        *skip -= drop_first;
        *count += n - drop_first;
        let lines = &lines[drop_first..];
        // The web server's own evidence: who fetched bootstrap.ign, when.
        for f in
            crate::pipeline::diagnosis::bootstrap_fetches(lines.iter().map(|l| l.text.as_str()))
        {
            writeln!(out, "{} --- {step}: {}", clock(), f.describe())?;
        }
        let width = self.width;
        for l in lines {
            let mark = if l.stream == Stream::Stderr { '!' } else { '|' };
            writeln!(
                out,
                "{step:<width$} {mark} {}",
                // Borrowed when nothing needs masking: no allocation per line.
                visible(&self.masker.mask(&l.text))
            )?;
        }
        Ok(())
    }
}

/// A service window's line: when it closes, or what it waits for.
fn window(
    out: &mut impl Write,
    step: &str,
    url: Option<String>,
    ends_at: chrono::DateTime<chrono::Utc>,
    waiting_for: Option<String>,
) -> std::io::Result<()> {
    let left = (ends_at - chrono::Utc::now()).num_seconds().max(0);
    let url = url.map(|u| format!("serving {u}, ")).unwrap_or_default();
    let at = ends_at.with_timezone(&chrono::Local).format("%H:%M:%S");
    match waiting_for {
        Some(anchor) => writeln!(
            out,
            "{} --- {step}: {url}the window starts when {anchor} succeeds (the engine ends the service at {at} at the latest)",
            clock()
        ),
        None => writeln!(
            out,
            "{} --- {step}: {url}window closes in {}m{:02}s (at {at})",
            clock(),
            left / 60,
            left % 60,
        ),
    }
}

/// Prints the per-step summary table. TIME is the latest attempt's (a service: how long it
/// served); the last line gives **work** (every attempt of every step, serving time excluded)
/// and **wall** (the run's start to its end).
pub fn summary(state: &RunState, pipeline: &crate::pipeline::Pipeline) -> String {
    let w = state
        .steps
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:<w$}  {:<9}  {:>8}  {:>4}  {}\n",
        "STEP", "STATUS", "TIME", "EXIT", "ATTEMPTS"
    );
    for s in &state.steps {
        let service = pipeline
            .steps
            .iter()
            .any(|p| p.id == s.id && p.is_service());
        let (time, exit) = match s.last() {
            Some(a) => (
                a.duration()
                    .and_then(|d| d.to_std().ok())
                    .map(|d| {
                        if service {
                            format!("served {}", hms(d))
                        } else {
                            hms(d)
                        }
                    })
                    .unwrap_or_else(|| "-".into()),
                a.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
            ),
            None => ("-".into(), "-".into()),
        };
        out += &format!(
            "{:<w$}  {:<9}  {:>8}  {:>4}  {}\n",
            s.id,
            s.status.word(),
            time,
            exit,
            s.attempts.len()
        );
    }
    let (work, wall) = state.work_and_wall(pipeline, chrono::Utc::now());
    out += &format!(
        "{:<w$}  {:<9}  {:>8}        (wall clock {}; work is every attempt, serving time excluded)\n",
        "work",
        "",
        hms(work.to_std().unwrap_or_default()),
        hms(wall.to_std().unwrap_or_default())
    );
    out
}

/// Drives the pipeline without a terminal UI. Returns the process exit code.
pub async fn run(
    engine: Engine,
    dc: Deployconfig,
    plan: Plan,
    tls_verify: Option<bool>,
    force: bool,
) -> color_eyre::Result<i32> {
    let (raw_tx, raw_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let Some(mut runner) = open_runner(&engine, &dc, raw_tx.clone(), tls_verify, force) else {
        return Ok(crate::exit::CANNOT_START);
    };
    let width = runner
        .pipeline()
        .steps
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(8);
    // At most ~20,000 lines in flight to the printer: memory stays flat under a flood.
    let gate = LiveGate::new(20_000);
    runner.set_live_gate(gate.clone());
    let secrets = crate::config::secret_values(&dc);
    let printer = tokio::spawn(print_events(ev_rx, width, secrets.clone(), gate));

    let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel();
    // TUIs in other terminals attach to this run through the control socket.
    let server = crate::control::serve_or_forward(
        &dc,
        &dc.state_dir(),
        crate::control::DriverInfo::me("headless"),
        runner.pipeline().clone(),
        crate::control::Wiring {
            events: raw_rx,
            inject: raw_tx.clone(),
            local: ev_tx,
            commands: cmd_tx.clone(),
            control: None,
        },
    );
    drop(raw_tx);
    let signals = tokio::spawn(detach_on_signals(cmd_tx));
    let finish = runner.run(plan, &mut cmd_rx).await;
    if let Ok(Finish::Failed { .. } | Finish::Stopped { .. }) = &finish {
        serve_halted_windows(&mut runner, &mut cmd_rx).await;
    }
    signals.abort();
    let state = runner.state().cloned();
    let pipeline = runner.pipeline().clone();
    drop(runner);
    let _ = tokio::time::timeout(Duration::from_secs(3), printer).await;
    // Attached terminals get the run's last events before the socket goes.
    if let Some(s) = &server {
        s.drained(Duration::from_secs(2)).await;
    }
    drop(server);
    let finish = match finish {
        Ok(f) => f,
        Err(e) => {
            eprintln!("stage2-tui: {}", redact(&e.to_string(), &secrets));
            return Ok(crate::exit::CANNOT_START);
        }
    };
    if let Some(st) = &state
        && !matches!(finish, Finish::Detached { .. } | Finish::AlreadyDone)
    {
        crate::out!("\n{}", summary(st, &pipeline));
    }
    Ok(conclude(&dc, finish, state.as_ref()))
}

/// The runner for this deployconfig, set up as asked and announced; `None` (said why) when it
/// cannot start.
fn open_runner(
    engine: &Engine,
    dc: &Deployconfig,
    events: mpsc::UnboundedSender<Event>,
    tls_verify: Option<bool>,
    force: bool,
) -> Option<Runner> {
    let mut runner = match Runner::open(engine.clone(), dc.clone(), events) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "stage2-tui: {}",
                redact(&e.to_string(), &crate::config::secret_values(dc))
            );
            return None;
        }
    };
    if let Some(v) = tls_verify {
        runner.set_tls_verify(v);
    }
    if force {
        runner.allow_hazard(None);
    }
    announce(engine, dc, &runner);
    Some(runner)
}

/// The first lines: which engine, which deployconfig, which pipeline.
fn announce(engine: &Engine, dc: &Deployconfig, runner: &Runner) {
    crate::outln!("{} engine: {}", clock(), engine.describe());
    let source = match runner.pipeline_source() {
        crate::pipeline::spec::Source::Default => "built-in pipeline".to_string(),
        crate::pipeline::spec::Source::File { path: f, .. } => format!("pipeline from {f}"),
    };
    crate::outln!(
        "{} deployconfig {} ({source}, {} steps)",
        clock(),
        dc.dir.display(),
        runner.pipeline().steps.len()
    );
}

/// Ctrl-C, SIGTERM and SIGHUP (the SSH session dropped) detach: the stages run on.
async fn detach_on_signals(cmd_tx: mpsc::UnboundedSender<Command>) {
    use tokio::signal::unix::{SignalKind, signal};
    let wait = |kind: SignalKind| {
        let mut s = signal(kind).ok();
        async move {
            match s.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = wait(SignalKind::terminate()) => {}
        _ = wait(SignalKind::hangup()) => {}
    }
    let _ = cmd_tx.send(Command::Detach);
}

/// After the run halted: a window still waiting for its anchor ends now; an open one is kept
/// up for its window (it holds bootstrap.ign), never longer.
async fn serve_halted_windows(runner: &mut Runner, cmd_rx: &mut mpsc::UnboundedReceiver<Command>) {
    runner.end_waiting_windows();
    if !runner.has_windows() {
        return;
    }
    // Which windows, and when each ends (it may be a moment away).
    let open: Vec<String> = runner
        .state()
        .map(|st| {
            st.steps
                .iter()
                .filter(|s| s.status == crate::pipeline::StepStatus::Serving)
                .filter_map(|s| {
                    let end = s.window_ends_at?;
                    let left = (end - chrono::Utc::now()).to_std().unwrap_or_default();
                    Some(format!(
                        "{} serves until {} (in {})",
                        s.id,
                        end.with_timezone(&chrono::Local).format("%H:%M:%S"),
                        crate::text::duration(left)
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    crate::outln!(
        "{} --- the halted run still has a service window open{}; it is stopped when its window ends (after Ctrl-C the window guard still stops it on time)",
        clock(),
        if open.is_empty() {
            String::new()
        } else {
            format!(": {}", open.join(", "))
        }
    );
    if let Ok(true) = runner.serve_windows(cmd_rx).await {
        crate::outln!(
            "{} --- left the service window to its guard, which stops it when the window ends",
            clock()
        );
    }
}

/// The last lines (what happened, what to do next) and the exit code.
fn conclude(dc: &Deployconfig, finish: Finish, state: Option<&RunState>) -> i32 {
    let resume = |step: &str| {
        format!(
            "stage2-tui run --headless --deployconfig {} --from {step}",
            dc.dir.display()
        )
    };
    match finish {
        Finish::Succeeded => {
            crate::outln!("stage 2 completed successfully");
            0
        }
        Finish::AlreadyDone => {
            let when = state
                .and_then(|s| s.finished_at)
                .map(|t| {
                    t.with_timezone(&chrono::Local)
                        .format(" at %Y-%m-%d %H:%M")
                        .to_string()
                })
                .unwrap_or_default();
            crate::outln!(
                "stage 2 already completed{when}; nothing to do (use --restart to run it again, or --from STEP)"
            );
            0
        }
        Finish::Failed { step, error } => {
            crate::outln!("stage 2 FAILED at {step}: {}", visible(&error));
            let diagnosis = state
                .and_then(|s| s.step(&step))
                .and_then(|s| s.last())
                .and_then(|a| a.diagnosis.as_ref());
            if let Some(d) = diagnosis {
                let at = d
                    .line
                    .map(|n| format!(" (log line {n})"))
                    .unwrap_or_default();
                crate::outln!("diagnosis{at}: {}", visible(&d.cause));
                crate::outln!("what to do: {}", visible(&d.fix));
            }
            crate::outln!("fix the cause, then resume with: {}", resume(&step));
            crate::outln!("stage 2 failed at step {step}");
            1
        }
        Finish::Stopped { step } => {
            crate::outln!(
                "stage 2 stopped at step {step}; resume with: {}",
                resume(&step)
            );
            1
        }
        Finish::Detached { running } => {
            if running.is_empty() {
                crate::outln!(
                    "detached; no step is running. `stage2-tui run --headless` continues the run"
                );
            } else {
                crate::outln!(
                    "detached; {} keep{} running in the engine. `stage2-tui run --headless` reattaches",
                    running.join(", "),
                    if running.len() == 1 { "s" } else { "" }
                );
            }
            EXIT_DETACHED
        }
    }
}
