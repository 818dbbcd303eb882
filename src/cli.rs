//! Command-line interface and dispatch.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::config::{DEFAULT_DEPLOYCONFIG, Deployconfig};
use crate::engine::{self, ConnectOptions};
use crate::pipeline::Plan;

/// Install the second stage of an OpenShift 4 cluster from its bastion.
#[derive(Debug, Parser)]
#[command(
    name = "stage2-tui",
    version,
    about,
    long_about = "stage2-tui runs the second stage of an OpenShift 4 installation on vSphere from the bastion \
that stage 1 built, in place of stage2-containers.sh: it checks and edits config.json and \
secrets.json, picks the openshift-install binary and the image tag, then runs the stage \
containers (2.create-config, 4.run-installer, the ign-webserver window, 6.add-ignition, \
7.terraform-deploy, 8.configure-svcs, the CSR approvals and operator waits, 9.post-deployment) \
through podman or Docker, with a live dashboard, logs, diagnosis of failures, retry, skip and stop. \
Each step is judged by what it must leave behind, not by its exit code, and re-runs that would \
undo the deployment are refused. The stages run in the engine: the TUI can leave and come back, \
and the same runner works headless (run --headless) for the systemd unit (install-service)."
)]
pub struct Cli {
    /// Engine API socket (unix:///run/podman/podman.sock), or `cli` for the podman command line
    /// (podman 1.x on RHEL 7; binary from STAGE2_PODMAN); only this one is tried
    #[arg(long, global = true, env = "STAGE2_ENGINE", value_name = "URL")]
    pub engine: Option<String>,
    /// The deployconfig folder (for `demo`: the demo folder it writes, as --dir)
    #[arg(long, global = true, env = "STAGE2_DEPLOYCONFIG", value_name = "DIR")]
    pub deployconfig: Option<PathBuf>,
    /// Colour theme: dark, light, high-contrast, basic16 (NO_COLOR turns colours off)
    #[arg(long, global = true, env = "STAGE2_THEME", value_name = "NAME")]
    pub theme: Option<String>,
    /// `--tls-verify=false`: pull stage images without checking the registry's certificate
    /// (self-signed, or plain HTTP), as the old script did; remembered for the run
    #[arg(
        long = "tls-verify",
        global = true,
        env = "STAGE2_TLS_VERIFY",
        value_name = "BOOL"
    )]
    pub tls_verify: Option<bool>,
    /// What to do (default: open the dashboard)
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

/// `stage2-tui pipeline …`.
#[derive(Debug, Subcommand)]
pub enum PipelineCmd {
    /// Show what stage2-pipeline.toml changes and record it as accepted
    Accept {
        /// Accept without asking (for scripts that wrote the file themselves)
        #[arg(long)]
        yes: bool,
    },
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run (or reattach to) stage 2
    Run {
        /// No terminal UI: log lines to stdout (for the systemd unit)
        #[arg(long)]
        headless: bool,
        /// Run this step and all after it again (retry / resume from here)
        #[arg(long, value_name = "STEP", conflicts_with = "restart")]
        from: Option<String>,
        /// Start a new run from the first step
        #[arg(long)]
        restart: bool,
        /// Run even though config.json or secrets.json has validation errors, or a re-run would
        /// undo the deployment (4.run-installer while terraform.tfstate lists VMs)
        #[arg(long)]
        force: bool,
    },
    /// Pre-flight checks of a deployconfig (exit 0: nothing blocks a run; 1: errors)
    Check {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Write a demo deployconfig, build demo stage images, and run them
    Demo(crate::demo::DemoArgs),
    /// Write a support bundle (tar.gz): state, every log, config, checks, engine, containers,
    /// diagnoses; every secrets.json value masked
    Bundle {
        /// The file to write (default: ./stage2-bundle-<cluster>-<time>.tar.gz)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Write and enable the systemd unit that runs stage 2 headless at boot (and disable the old
    /// stage2-containers.service); prints what it changed
    InstallService {
        /// Only print what would change
        #[arg(long)]
        dry_run: bool,
        /// Install under this root instead of / (packaging and tests)
        #[arg(long, hide = true, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Review and accept the deployconfig's stage2-pipeline.toml (prints what it changes
    /// against the built-in pipeline; a file is used only once accepted)
    Pipeline {
        /// What to do
        #[command(subcommand)]
        action: PipelineCmd,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write it and one page per subcommand into a folder
    #[command(hide = true)]
    Manpage {
        /// Write stage2-tui.1 and stage2-tui-<subcommand>.1 here
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Where a run stands, as JSON (for scripts, Ansible and support)
    Status {
        /// Print JSON (the only format for now)
        #[arg(long)]
        json: bool,
    },
    /// Ends a service window on time with no runner left (started by the runner itself)
    #[command(hide = true)]
    WindowGuard {
        /// The run's state folder
        #[arg(long)]
        state_dir: PathBuf,
        /// The service step
        #[arg(long)]
        step: String,
        /// The service's container id
        #[arg(long)]
        container: String,
        /// When the engine's own run limit ends the service (RFC 3339): the guard leaves after it
        #[arg(long)]
        hard_end: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Connects to a driver's control socket and prints who drives (diagnostics)
    #[command(hide = true)]
    ControlProbe {
        /// The socket (`<state folder>/control.sock`)
        socket: PathBuf,
    },
    /// Capture a container's complete log to a file (benchmarks, diagnostics)
    #[command(hide = true)]
    CaptureLog {
        /// Container id or name
        container: String,
        /// Output file
        #[arg(long)]
        out: PathBuf,
        /// Read through the engine API even when the log file is readable
        #[arg(long)]
        api: bool,
        /// Forward every batch to a live listener, as the runner does for its panes and output
        #[arg(long)]
        live: bool,
        /// With --live: a slow listener (10,000 lines a second) behind a gate of this many
        /// lines in flight, as headless printing has; prints the most lines it saw in flight
        #[arg(long, requires = "live")]
        gate: Option<usize>,
    },
}

impl Cli {
    fn deployconfig(&self) -> Deployconfig {
        Deployconfig::new(
            self.deployconfig
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DEPLOYCONFIG)),
        )
    }
}

/// `run` starts nothing on a config.json or secrets.json with validation errors (the ones
/// `check` reports as errors), unless `--force`; reattaching to a run in progress is never
/// refused. Returns the exit code when it refuses.
fn refuse_invalid_config(dc: &Deployconfig, plan: &Plan) -> Option<i32> {
    let in_progress = crate::pipeline::RunState::load(&dc.state_dir())
        .ok()
        .flatten()
        .is_some_and(|s| s.outcome == crate::pipeline::Outcome::InProgress);
    // Another user's stage 2, or no folder: `with_engine` says so first.
    if (in_progress && *plan == Plan::Continue)
        || !dc.dir.is_dir()
        || crate::control::not_yours(dc).is_some()
    {
        return None;
    }
    let problems = crate::check::blocking_config_problems(dc);
    if problems.is_empty() {
        return None;
    }
    let secrets = crate::config::secret_values(dc);
    eprintln!(
        "stage2-tui: nothing started: {} problem{} in the deployconfig would fail a stage:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in &problems {
        eprintln!(
            "  {}",
            crate::text::visible(&crate::text::mask(p, &secrets))
        );
    }
    eprintln!(
        "Fix them (`stage2-tui` opens the form at each one; `stage2-tui check` lists them), or run anyway with --force."
    );
    Some(crate::exit::CANNOT_START)
}

/// The subcommands a user sees (not the hidden internal ones).
fn visible_subcommands() -> Vec<String> {
    use clap::CommandFactory;
    Cli::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_string())
        .collect()
}

/// The man page of stage2-tui, or of one of its subcommands.
fn man_page(sub: Option<&str>) -> std::io::Result<String> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let page = match sub {
        None => cmd,
        Some(s) => cmd
            .find_subcommand(s)
            .cloned()
            .map(|c| {
                // clap keeps command names as &'static str: this one-shot command leaks one.
                let name: &'static str = Box::leak(format!("stage2-tui-{s}").into_boxed_str());
                c.name(name).bin_name(name)
            })
            .ok_or_else(|| std::io::Error::other(format!("no subcommand {s}")))?,
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A shell's completion script: the hidden internal subcommands are not offered, and `--from`
/// offers the built-in pipeline's step ids (bash, zsh, fish).
fn completions(shell: clap_complete::Shell) -> String {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "stage2-tui", &mut out);
    let mut text = String::from_utf8_lossy(&out).into_owned();
    let cmd = Cli::command();
    let hidden: Vec<String> = cmd
        .get_subcommands()
        .filter(|c| c.is_hide_set())
        .map(|c| c.get_name().to_string())
        .collect();
    let steps: Vec<String> = crate::pipeline::Pipeline::default_pipeline()
        .map(|p| p.steps.iter().map(|s| s.id.clone()).collect())
        .unwrap_or_default();
    let offers_hidden = |line: &str| {
        hidden.iter().any(|h| {
            line.contains(&format!("-a \"{h}\""))
                || line.trim_start().starts_with(&format!("'{h}:"))
        })
    };
    let mut kept: Vec<String> = Vec::new();
    let mut from_case = false;
    for line in text.lines() {
        if offers_hidden(line) {
            continue;
        }
        let mut line = line.to_string();
        if line.trim_start().starts_with("opts=\"") {
            for h in &hidden {
                line = line.replace(&format!(" {h} "), " ");
            }
        }
        if line.trim() == "--from)" {
            from_case = true;
        } else if from_case && line.contains("compgen -f") {
            line = line.replace(
                "compgen -f \"${cur}\"",
                &format!("compgen -W \"{}\" -- \"${{cur}}\"", steps.join(" ")),
            );
            from_case = false;
        }
        if line.contains("-l from ") && line.contains("-r") && !line.contains(" -a ") {
            line.push_str(&format!(" -f -a \"{}\"", steps.join(" ")));
        }
        if line.contains("--from=[") && line.ends_with(":STEP:_default' \\") {
            line = line.replace(":STEP:_default'", &format!(":STEP:({})'", steps.join(" ")));
        }
        kept.push(line);
    }
    text = kept.join("\n");
    text.push('\n');
    text
}

/// Connects to the engine the way every subcommand does.
pub async fn connect(cli: &Cli) -> Result<engine::Engine, engine::EngineError> {
    let opts = ConnectOptions {
        explicit: cli.engine.clone().filter(|e| !e.is_empty()),
        allow_private_service: true,
    };
    let engine = engine::connect(&opts).await?;
    if let Some(w) = &engine.info().warning {
        eprintln!("stage2-tui: warning: {w}");
    }
    Ok(engine)
}

/// Runs the parsed command line; returns the process exit code.
pub async fn dispatch(cli: Cli) -> color_eyre::Result<i32> {
    match &cli.command {
        None => {
            let opts = crate::tui::TuiOptions {
                plan: None,
                theme: cli.theme.clone(),
                setup: true,
                tls_verify: cli.tls_verify,
                force: false,
            };
            with_engine(&cli, |engine, dc| crate::tui::run(engine, dc, opts)).await
        }
        Some(Cmd::Run {
            headless,
            from,
            restart,
            force,
        }) => run(&cli, *headless, plan_of(from, *restart), *force).await,
        Some(Cmd::Demo(args)) => demo(&cli, args).await,
        Some(Cmd::Status { .. }) => status(&cli).await,
        Some(Cmd::Pipeline {
            action: PipelineCmd::Accept { yes },
        }) => Ok(crate::pipeline::accept::command(&cli.deployconfig(), *yes)),
        Some(Cmd::InstallService { dry_run, root }) => install_service(&cli, *dry_run, root),
        Some(Cmd::Completions { shell }) => {
            crate::out!("{}", completions(*shell));
            Ok(0)
        }
        Some(Cmd::Manpage { dir }) => manpages(dir.as_deref()),
        Some(Cmd::Bundle { out }) => {
            let dc = cli.deployconfig();
            let engine = connect(&cli).await;
            Ok(crate::bundle::command(engine, &dc, out.clone()).await)
        }
        Some(Cmd::ControlProbe { socket }) => Ok(control_probe(socket).await),
        Some(Cmd::WindowGuard {
            state_dir,
            step,
            container,
            hard_end,
        }) => Ok(crate::pipeline::guard::run(
            state_dir,
            step,
            container,
            *hard_end,
            cli.engine.clone(),
        )
        .await),
        Some(Cmd::Check { json }) => {
            let dc = cli.deployconfig();
            let engine = connect(&cli).await;
            Ok(crate::check::command(engine, &dc, *json, cli.tls_verify.unwrap_or(true)).await)
        }
        Some(Cmd::CaptureLog {
            container,
            out,
            api,
            live,
            gate,
        }) => capture_log(&cli, container, out, *api, live.then_some(*gate)).await,
    }
}

/// `stage2-tui run`: headless, or in the TUI (no setup flow); a config that does not validate
/// is refused unless `force`.
async fn run(cli: &Cli, headless: bool, plan: Plan, force: bool) -> color_eyre::Result<i32> {
    if !force && let Some(code) = refuse_invalid_config(&cli.deployconfig(), &plan) {
        return Ok(code);
    }
    if headless {
        return with_engine(cli, |engine, dc| {
            crate::headless::run(engine, dc, plan, cli.tls_verify, force)
        })
        .await;
    }
    let opts = crate::tui::TuiOptions {
        plan: (plan != Plan::Continue).then_some(plan),
        theme: cli.theme.clone(),
        setup: false,
        tls_verify: cli.tls_verify,
        force,
    };
    with_engine(cli, |engine, dc| crate::tui::run(engine, dc, opts)).await
}

/// `control-probe`: who drives the run behind a control socket.
async fn control_probe(socket: &Path) -> i32 {
    match crate::control::attach_at(socket).await {
        Ok(a) => {
            crate::outln!("{}", a.driver.describe());
            0
        }
        Err(e) => {
            eprintln!("stage2-tui: {e}");
            1
        }
    }
}

/// `stage2-tui demo`: `--deployconfig` given on the command line is the demo's folder.
async fn demo(cli: &Cli, args: &crate::demo::DemoArgs) -> color_eyre::Result<i32> {
    // `--deployconfig` given on the command line is the demo's folder, as `--dir` (not
    // from the environment, which names the real one). The demo refuses a folder that
    // is not a demo's.
    let mut args = args.clone();
    let from_env = std::env::var_os("STAGE2_DEPLOYCONFIG").map(PathBuf::from);
    if args.dir.is_none()
        && let Some(d) = cli
            .deployconfig
            .clone()
            .filter(|d| from_env.as_ref() != Some(d))
    {
        args.dir = Some(d);
    }
    let globals = crate::demo::Globals {
        theme: cli.theme.clone(),
        tls_verify: cli.tls_verify,
    };
    crate::demo::run(&args, globals, || connect(cli)).await
}

/// `stage2-tui status`.
async fn status(cli: &Cli) -> color_eyre::Result<i32> {
    // The engine, if it answers at once: the status then follows the containers. No
    // private service is started for a read-only look.
    let opts = ConnectOptions {
        explicit: cli.engine.clone().filter(|e| !e.is_empty()),
        allow_private_service: false,
    };
    let engine = tokio::time::timeout(std::time::Duration::from_secs(5), engine::connect(&opts))
        .await
        .ok()
        .and_then(Result::ok);
    Ok(crate::status::command(&cli.deployconfig(), engine).await)
}

/// `stage2-tui install-service`.
fn install_service(cli: &Cli, dry_run: bool, root: &Option<PathBuf>) -> color_eyre::Result<i32> {
    let root = root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let exe = std::env::current_exe()
        .map_err(|e| color_eyre::eyre::eyre!("where is this binary? {e}"))?;
    let dc = cli.deployconfig();
    let dc_dir = std::path::absolute(&dc.dir).unwrap_or(dc.dir.clone());
    match crate::service::install(&root, &exe, &dc_dir, dry_run) {
        Ok(plan) => {
            for l in plan.lines {
                crate::outln!("{l}");
            }
            Ok(0)
        }
        Err(e) => {
            eprintln!("stage2-tui: {e}");
            Ok(1)
        }
    }
}

/// `stage2-tui manpage`: to stdout, or the main page and one per subcommand into a folder.
fn manpages(dir: Option<&Path>) -> color_eyre::Result<i32> {
    match dir {
        None => {
            crate::out!("{}", man_page(None)?);
            Ok(0)
        }
        Some(dir) => {
            // The main page and one per subcommand it names (stage2-tui-run.1, …).
            std::fs::create_dir_all(dir)?;
            std::fs::write(dir.join("stage2-tui.1"), man_page(None)?)?;
            for sub in visible_subcommands() {
                std::fs::write(
                    dir.join(format!("stage2-tui-{sub}.1")),
                    man_page(Some(&sub))?,
                )?;
            }
            Ok(0)
        }
    }
}

/// `stage2-tui capture-log` (benchmarks, tests): a container's whole log through the runner's
/// capture. `live`: forward batches to a listener (`Some(Some(n))`: a slow one behind a gate of
/// `n` lines, as headless printing has).
async fn capture_log(
    cli: &Cli,
    container: &str,
    out: &Path,
    api: bool,
    live: Option<Option<usize>>,
) -> color_eyre::Result<i32> {
    let engine = connect(cli).await?;
    let mode = if api {
        engine::logs::CaptureMode::Api
    } else {
        engine::logs::CaptureMode::Auto
    };
    let gate = live.flatten().map(crate::logformat::LiveGate::new);
    // The live sink the runner uses: each batch goes to a channel whose reader (the
    // dashboard or the headless printer there; a counter here) takes it.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = {
        let gate = gate.clone();
        tokio::spawn(async move {
            let (mut n, mut most) = (0usize, 0usize);
            while let Some(crate::pipeline::Event::Log { lines, .. }) = rx.recv().await {
                n += lines.len();
                if let Some(g) = &gate {
                    most = most.max(g.in_flight());
                    // 10,000 lines a second: slower than any capture, so the gate fills.
                    let ms = lines.len() as u64 / 10;
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    g.done(lines.len());
                }
            }
            (n, most)
        })
    };
    let sink = live.map(|_| {
        crate::logformat::Live::new(move |lines| {
            let _ = tx.send(crate::pipeline::Event::Log {
                step: "capture".into(),
                lines,
            });
        })
        .gated(gate.clone())
    });
    let started = std::time::Instant::now();
    let c = engine.capture(container, out, sink, mode).await?;
    let secs = started.elapsed().as_secs_f64();
    let (live_lines, most_in_flight) = listener.await.unwrap_or_default();
    let gate_waits = gate.as_ref().map_or(0, |g| g.waits());
    let lines = c.lines[0] + c.lines[1];
    crate::outln!(
        "via={} lines={lines} live_lines={live_lines} most_in_flight={most_in_flight} gate_waits={gate_waits} stdout={} stderr={} bytes={} secs={secs:.3} lines_per_sec={:.0} exit={} peak_rss_kib={}",
        c.via,
        c.lines[0],
        c.lines[1],
        c.bytes,
        lines as f64 / secs.max(1e-9),
        c.exit_code,
        peak_rss_kib()
    );
    Ok(0)
}

fn plan_of(from: &Option<String>, restart: bool) -> Plan {
    match (from, restart) {
        (Some(step), _) => Plan::From(step.clone()),
        (None, true) => Plan::Restart,
        (None, false) => Plan::Continue,
    }
}

/// Checks the deployconfig and connects, printing plain errors (before any terminal set-up).
async fn with_engine<F, Fut>(cli: &Cli, f: F) -> color_eyre::Result<i32>
where
    F: FnOnce(engine::Engine, Deployconfig) -> Fut,
    Fut: std::future::Future<Output = color_eyre::Result<i32>>,
{
    let dc = cli.deployconfig();
    // Another user's stage 2: say whose, and start nothing.
    if let Some(msg) = crate::control::not_yours(&dc) {
        eprintln!("stage2-tui: {msg}");
        return Ok(crate::exit::CANNOT_START);
    }
    if !dc.dir.is_dir() {
        eprintln!(
            "stage2-tui: deployconfig folder {} does not exist: pass --deployconfig DIR (or set STAGE2_DEPLOYCONFIG)",
            dc.dir.display()
        );
        return Ok(crate::exit::CANNOT_START);
    }
    if let Some(why) = crate::service::old_installer_running() {
        eprintln!("stage2-tui: nothing started: {why}");
        return Ok(crate::exit::CANNOT_START);
    }
    match connect(cli).await {
        Ok(e) => f(e, dc).await,
        Err(e) => {
            eprintln!("stage2-tui: {e}");
            Ok(crate::exit::CANNOT_START)
        }
    }
}

/// This process's peak resident set size (VmHWM), in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
