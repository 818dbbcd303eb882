//! Stepping aside for an interactive program — a shell in a step's container, a debug shell in
//! a failed step's image, `$PAGER` on a log or a container's description — and coming back as
//! it was. Terminal input is read on a thread of its own that pauses meanwhile, so the program
//! gets every keystroke.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossterm::event::Event as TermEvent;
use tokio::sync::mpsc;

use crate::app::External;
use crate::engine::Engine;

/// The input thread's switches.
#[derive(Clone)]
pub struct Input {
    paused: Arc<AtomicBool>,
    idle: Arc<AtomicBool>,
}

/// Reads terminal events on a thread that [`Input::pause`] stops reading (it polls in short
/// slices, so a pause takes effect within ~25 ms and never swallows a keystroke).
pub fn input() -> (
    Input,
    impl futures_util::Stream<Item = std::io::Result<TermEvent>> + Unpin,
) {
    let handle = Input {
        paused: Arc::new(AtomicBool::new(false)),
        idle: Arc::new(AtomicBool::new(false)),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let h = handle.clone();
    std::thread::spawn(move || {
        loop {
            if h.paused.load(Ordering::Acquire) {
                h.idle.store(true, Ordering::Release);
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            match crossterm::event::poll(Duration::from_millis(25)) {
                Ok(true) => {
                    // Paused while polling: leave the bytes to the program.
                    if h.paused.load(Ordering::Acquire) {
                        continue;
                    }
                    if tx.send(crossterm::event::read()).is_err() {
                        return;
                    }
                }
                Ok(false) => {
                    if tx.is_closed() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (handle, Box::pin(stream))
}

impl Input {
    /// Stops reading the terminal; returns once the thread no longer reads.
    pub fn pause(&self) {
        self.idle.store(false, Ordering::Release);
        self.paused.store(true, Ordering::Release);
        for _ in 0..100 {
            if self.idle.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Reads the terminal again.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::Release);
    }
}

/// The engine's own command-line client, pointed at the engine stage2-tui uses.
fn client(engine: &Engine) -> Vec<String> {
    let info = engine.info();
    if let Some(bin) = engine.podman_binary() {
        vec![bin.display().to_string()]
    } else if info.is_podman {
        vec!["podman".into(), "--url".into(), info.endpoint.clone()]
    } else {
        vec!["docker".into(), "-H".into(), info.endpoint.clone()]
    }
}

/// `$PAGER`, else `less -R` or `more` where installed, else the file and a wait for Enter; as
/// a program and its arguments (the file is added last).
fn pager() -> Vec<String> {
    if let Ok(p) = std::env::var("PAGER")
        && !p.trim().is_empty()
    {
        return p.split_whitespace().map(str::to_string).collect();
    }
    let found = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(name).is_file()))
    };
    if found("less") {
        vec!["less".into(), "-R".into()]
    } else if found("more") {
        vec!["more".into()]
    } else {
        [
            "sh",
            "-c",
            "cat \"$1\"; printf '\\n(Enter goes back to stage2-tui) '; read -r _",
            "pager",
        ]
        .map(String::from)
        .to_vec()
    }
}

/// Writes `text` to a private temporary file in `dir` (0600), for a pager.
fn private_temp(
    dir: &std::path::Path,
    name: &str,
    text: &str,
) -> std::io::Result<std::path::PathBuf> {
    crate::safefs::private_dir(dir)?;
    let path = dir.join(format!("{name}.{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut f = crate::safefs::create_private_file(&path)?;
    f.write_all(text.as_bytes())?;
    Ok(path)
}

/// What to run for `ext`: the program and its arguments, a temporary file to remove after,
/// and the line said before it starts. Err: why it cannot.
pub async fn prepare(
    ext: &External,
    engine: &Engine,
    state_dir: &std::path::Path,
    secrets: &[String],
) -> Result<(Vec<String>, Option<std::path::PathBuf>, String), String> {
    let tmp = state_dir.join("tmp");
    match ext {
        External::Shell { step, container } => {
            let mut cmd = client(engine);
            // Long flags, one each: podman 1.6.4 (the CLI engine on RHEL 7) has all of them.
            cmd.extend(["exec", "--interactive", "--tty", container, "/bin/sh"].map(String::from));
            Ok((
                cmd,
                None,
                format!("a shell in {step}'s container; `exit` comes back to stage2-tui"),
            ))
        }
        External::Inspect { step, container } => {
            let v = engine
                .inspect_json(container)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{step}'s container is gone"))?;
            let text = serde_json::to_string_pretty(&v).unwrap_or_default();
            let text = crate::text::mask(&text, secrets).into_owned();
            let file = private_temp(&tmp, "inspect", &text).map_err(|e| e.to_string())?;
            let mut cmd = pager();
            cmd.push(file.display().to_string());
            Ok((
                cmd,
                Some(file),
                format!("{step}'s container, as the engine describes it"),
            ))
        }
        External::DebugShell { step, container } => debug_shell(engine, step, container).await,
        External::Pager { step, log } => {
            let raw = std::fs::read(log).map_err(|e| format!("{}: {e}", log.display()))?;
            let mut text = String::with_capacity(raw.len());
            for line in raw.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let t = crate::logformat::parse_saved_line(line).map_or(line, |(_, _, t)| t);
                text.push_str(&crate::text::visible(&String::from_utf8_lossy(t)));
                text.push('\n');
            }
            let text = crate::text::mask(&text, secrets).into_owned();
            let file = private_temp(&tmp, "log", &text).map_err(|e| e.to_string())?;
            let mut cmd = pager();
            cmd.push(file.display().to_string());
            Ok((cmd, Some(file), format!("{step}'s log (secrets masked)")))
        }
    }
}

/// A debug shell: a new container of the step's image with its bind mounts (and host network),
/// removed on exit.
async fn debug_shell(
    engine: &Engine,
    step: &str,
    container: &str,
) -> Result<(Vec<String>, Option<std::path::PathBuf>, String), String> {
    let v = engine
        .inspect_json(container)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{step}'s container is gone: nothing to copy its mounts from"))?;
    let image = v["ImageName"]
        .as_str()
        .or_else(|| v["Config"]["Image"].as_str())
        .unwrap_or_default()
        .to_string();
    if image.is_empty() {
        return Err(format!("{step}'s container names no image"));
    }
    let mut cmd = client(engine);
    cmd.extend(
        [
            "run",
            "--rm",
            "--interactive",
            "--tty",
            "--entrypoint=/bin/sh",
        ]
        .map(String::from),
    );
    let binds: Vec<String> = v["HostConfig"]["Binds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b.as_str().map(str::to_string))
        .collect();
    // An inspect without Binds (older podman): the bind mounts it lists.
    let binds = if binds.is_empty() {
        v["Mounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["Type"] == "bind")
            .filter_map(|m| {
                let (src, dst) = (m["Source"].as_str()?, m["Destination"].as_str()?);
                let ro = if m["RW"] == false { ":ro" } else { "" };
                Some(format!("{src}:{dst}{ro}"))
            })
            .collect()
    } else {
        binds
    };
    for b in binds {
        cmd.push(format!("--volume={b}"));
    }
    if let Some(n) = v["HostConfig"]["NetworkMode"]
        .as_str()
        .filter(|n| *n == "host")
    {
        cmd.push(format!("--network={n}"));
    }
    cmd.push(image);
    Ok((
        cmd,
        None,
        format!(
            "a debug shell in {step}'s image with its mounts (a new container, removed on exit); `exit` comes back to stage2-tui"
        ),
    ))
}

/// Leaves the TUI's screen, runs `cmd` on the terminal, and comes back; the exit status, or
/// why it did not run.
pub fn run_on_terminal(input: &Input, cmd: &[String], said: &str) -> Result<i32, String> {
    input.pause();
    let _ = crossterm::execute!(
        std::io::stdout(),
        crossterm::event::DisableMouseCapture,
        crossterm::event::DisableBracketedPaste
    );
    ratatui::restore();
    let mut out = std::io::stdout();
    let _ = writeln!(out, "stage2-tui: {said}");
    let _ = out.flush();
    let status = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .status()
        .map_err(|e| format!("cannot run {}: {e}", cmd[0]));
    // Back: the same modes as before (the caller redraws everything).
    let _ = crossterm::terminal::enable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        crossterm::terminal::EnterAlternateScreen,
        crossterm::event::EnableBracketedPaste
    );
    input.resume();
    status.map(|s| s.code().unwrap_or(-1))
}
