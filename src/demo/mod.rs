//! `stage2-tui demo`: a realistic deployconfig, demo stage images built offline, and a real run.

pub mod files;
mod images;

use std::path::{Path, PathBuf};

use clap::Args;
use color_eyre::eyre::{WrapErr, bail};

use crate::config::Deployconfig;
use crate::engine::labels;
use crate::pipeline::spec::{Host, HostAction, Pipeline, Wait, Work};
use crate::pipeline::{Plan, RunLock};

pub use files::{config_json, secrets_json};
pub use images::find_static_busybox;

/// Registry prefix of the demo images (local only; never pulled).
pub const DEMO_REGISTRY: &str = "localhost/stage2-demo";
/// Image tag of the demo images.
pub const DEMO_TAG: &str = "demo";

/// Options of `stage2-tui demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Demo deployconfig folder (wiped and rewritten if it is an earlier demo)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Make this step fail once with a realistic error (repeatable)
    #[arg(long, value_name = "STEP")]
    pub fail: Vec<String>,
    /// No terminal UI: log lines to stdout
    #[arg(long)]
    pub headless: bool,
    /// Seconds the ign-webserver window stays open (the real one: 600)
    #[arg(long, default_value_t = 20, value_name = "SECS")]
    pub window: u64,
    /// Seconds of the wait before 8.configure-svcs (the real one: 80)
    #[arg(long, default_value_t = 3, value_name = "SECS")]
    pub wait: u64,
    /// Seconds between demo output lines (0 for as fast as possible)
    #[arg(long, default_value_t = 0.08, value_name = "SECS")]
    pub pace: f64,
    /// Seconds between looks at the cluster while approving CSRs and waiting for operators
    /// (the real ones: 15)
    #[arg(long, default_value_t = 1, value_name = "SECS")]
    pub csr_interval: u64,
    /// Seconds the demo cluster takes to have every node Ready and every operator Available
    #[arg(long, default_value_t = 12, value_name = "SECS")]
    pub cluster_secs: u64,
    /// Seconds the operators must stay settled before 9.post-deployment (the real one: 120)
    #[arg(long, default_value_t = 2, value_name = "SECS")]
    pub settle: u64,
    /// Port for the demo web server (default: a free one; the real one uses 80)
    #[arg(long, value_name = "PORT")]
    pub web_port: Option<u16>,
    /// Put a disconnected openshift-install override in the folder
    #[arg(long)]
    pub disconnected: bool,
    /// Only write the folder and build the images; do not run
    #[arg(long)]
    pub prepare_only: bool,
    /// Walk through the setup flow (checks, config editor, pickers) before starting
    #[arg(long, conflicts_with = "headless")]
    pub setup: bool,
}

/// Where the demo's host steps install oc and kubectl (inside the demo folder).
const DEMO_BIN: &str = "{deployconfig}/demo-host/usr/local/bin";

fn default_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("stage2-tui/demo")
}

fn free_port() -> color_eyre::Result<u16> {
    let l = std::net::TcpListener::bind("0.0.0.0:0")
        .wrap_err("finding a free port for the demo web server")?;
    Ok(l.local_addr()?.port())
}

/// The demo pipeline: the built-in one with short timings, a free web port, host steps kept
/// inside the demo folder.
pub fn demo_pipeline(args: &DemoArgs, port: u16) -> color_eyre::Result<Pipeline> {
    let mut p = Pipeline::default_pipeline().map_err(color_eyre::eyre::Error::msg)?;
    let dir = crate::config::canonical(&args.dir.clone().unwrap_or_else(default_dir));
    let prefix = container_prefix(&dir);
    let cluster_timeout = args.cluster_secs * 4 + 60;
    for s in &mut p.steps {
        match &mut s.work {
            Work::Oneshot(c) => c.name = format!("{prefix}{}", c.name),
            Work::Service(c, w) => {
                c.name = format!("{prefix}{}", c.name);
                c.env = vec![format!("PORT={port}")];
                w.ttl_secs = args.window;
                w.url = Some(format!("http://127.0.0.1:{port}/bootstrap.ign"));
            }
            Work::Wait(Wait::Until(u)) => {
                u.bin_dir = DEMO_BIN.into();
                u.interval_secs = args.csr_interval.max(1);
                u.stable_secs = args.settle;
                u.timeout_secs = cluster_timeout;
            }
            Work::Wait(Wait::Clock { secs }) => *secs = args.wait,
            Work::Host(Host::InstallClients {
                bin_dir,
                profile_dir,
                ..
            }) => {
                *bin_dir = DEMO_BIN.into();
                *profile_dir = "{deployconfig}/demo-host/etc/profile.d".into();
            }
            Work::Host(Host::ApproveCsrs {
                bin_dir,
                interval_secs,
                timeout_secs,
            }) => {
                *bin_dir = DEMO_BIN.into();
                *interval_secs = args.csr_interval.max(1);
                *timeout_secs = cluster_timeout;
            }
            Work::Pull(_) => {}
        }
    }
    Ok(p)
}

/// What the demo's container names start with: `stage2-demo-` and a hash of its folder, so a
/// demo never touches a real install's `ign-webserver` (or another demo's containers).
pub fn container_prefix(dir: &Path) -> String {
    format!(
        "stage2-demo-{:06x}-",
        crate::config::fnv1a(dir.to_string_lossy().as_bytes()) & 0xff_ffff
    )
}

/// Steps a demo can make fail.
fn can_fail(p: &Pipeline, id: &str) -> bool {
    p.steps.iter().any(|s| {
        s.id == id
            && match &s.work {
                Work::Oneshot(_) => true,
                Work::Host(h) => h.action() == HostAction::ApproveCsrs,
                Work::Pull(_) | Work::Service(..) | Work::Wait(_) => false,
            }
    })
}

/// Prepares the folder: refuses a non-demo folder, stops an earlier demo's containers, wipes it.
async fn reset_dir(engine: &crate::engine::Engine, dir: &Path) -> color_eyre::Result<()> {
    if dir.exists() {
        let is_demo = dir.join(".demo/marker").exists();
        let empty = std::fs::read_dir(dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !is_demo && !empty {
            bail!(
                "{} exists and is not a stage2-tui demo folder; choose another --dir",
                dir.display()
            );
        }
        let dc = Deployconfig::new(dir);
        // Fails with who holds it when a runner is driving this demo right now.
        let lock = RunLock::acquire(&dc.state_dir()).map_err(color_eyre::eyre::Error::msg)?;
        let path = dc.dir.display().to_string();
        for id in engine
            .find_by_labels(&[(labels::DEPLOYCONFIG, &path)])
            .await?
        {
            engine.remove(&id, true).await?;
        }
        // The demo's run state lives outside the folder (where no container reaches it).
        let _ = std::fs::remove_dir_all(dc.state_dir());
        drop(lock);
        std::fs::remove_dir_all(dir).wrap_err_with(|| format!("clearing {}", dir.display()))?;
    } else {
        // A new demo folder where an old one was (removed by hand): its old run state goes too.
        let dc = Deployconfig::new(dir);
        if dc.state_dir().exists() {
            let lock = RunLock::acquire(&dc.state_dir()).map_err(color_eyre::eyre::Error::msg)?;
            let _ = std::fs::remove_dir_all(dc.state_dir());
            drop(lock);
        }
    }
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))
}

/// The global options `demo` honours.
pub struct Globals {
    /// `--theme`.
    pub theme: Option<String>,
    /// `--tls-verify`.
    pub tls_verify: Option<bool>,
}

/// Runs `stage2-tui demo`; `connect` reaches the engine (once the arguments are checked).
pub async fn run<F, Fut>(args: &DemoArgs, cli: Globals, connect: F) -> color_eyre::Result<i32>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<
            Output = std::result::Result<crate::engine::Engine, crate::engine::EngineError>,
        >,
{
    let dir = args.dir.clone().unwrap_or_else(default_dir);
    let port = match args.web_port {
        Some(p) => p,
        None => free_port()?,
    };
    let pipeline = demo_pipeline(args, port)?;
    for f in &args.fail {
        if !can_fail(&pipeline, f) {
            let ids: Vec<_> = pipeline
                .steps
                .iter()
                .filter(|s| can_fail(&pipeline, &s.id))
                .map(|s| s.id.as_str())
                .collect();
            bail!(
                "--fail {f}: not a step the demo can fail; choose one of {}",
                ids.join(", ")
            );
        }
    }
    images::find_static_busybox()?;
    let engine = connect().await?;
    crate::outln!("engine: {}", engine.describe());
    reset_dir(&engine, &dir).await?;
    let dc = Deployconfig::new(&dir);
    files::write_all(&dc, args, &pipeline)?;
    crate::outln!("demo deployconfig written to {}", dc.dir.display());
    images::build_all(&engine, DEMO_REGISTRY, DEMO_TAG).await?;
    if args.prepare_only {
        crate::outln!(
            "prepared; run it with: stage2-tui run --headless --deployconfig {}",
            dc.dir.display()
        );
        return Ok(0);
    }
    if args.headless {
        crate::headless::run(engine, dc, Plan::Continue, cli.tls_verify, false).await
    } else {
        let opts = crate::tui::TuiOptions {
            plan: (!args.setup).then_some(Plan::Continue),
            theme: cli.theme.clone(),
            setup: args.setup,
            tls_verify: cli.tls_verify,
            force: false,
        };
        crate::tui::run(engine, dc, opts).await
    }
}
