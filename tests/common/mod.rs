//! Helpers for tests that drive the real binary against a real podman.
#![allow(dead_code)]

pub mod tmux;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Container names are per machine: tests that run containers take turns.
static ENGINE: Mutex<()> = Mutex::new(());

/// A test's turn at the engine ([`engine_lock`]). When the test fails (panics), the containers
/// of this test process (named `*-t<pid>`, [`container_name`]) are removed as the turn ends,
/// before the next test of the process takes its turn: a failing test's leftovers never hold
/// the names the next one uses, and nothing is left behind.
pub struct EngineTurn(MutexGuard<'static, ()>);

impl Drop for EngineTurn {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let suffix = format!("-t{}", std::process::id());
        let o = podman(&["ps", "-a", "--format", "{{.Names}}"]);
        for name in String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|n| n.ends_with(&suffix))
        {
            podman(&["rm", "-f", name]);
        }
    }
}

pub fn engine_lock() -> EngineTurn {
    EngineTurn(ENGINE.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The engine the binary is pointed at: the API socket scripts/test.sh started, or `cli` (the
/// podman command line through the 1.6.4 wrapper) when the suite's second pass sets
/// `STAGE2_TEST_ENGINE=cli`.
pub fn engine_url() -> String {
    if cli_pass() {
        return "cli".into();
    }
    std::env::var("STAGE2_ENGINE").expect(
        "STAGE2_ENGINE is not set: run the suite with scripts/test.sh, which starts a podman API service",
    )
}

/// True in the suite's pass on the podman command-line engine.
pub fn cli_pass() -> bool {
    std::env::var("STAGE2_TEST_ENGINE").as_deref() == Ok("cli")
}

/// The wrapper that lets through only what podman 1.6.4 has.
pub fn podman_164() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/podman-1.6.4/podman")
}

/// Where the tests' runs keep their state: scripts/test.sh gives a temporary folder of its own
/// (removed at the end); a bare `cargo test` keeps it under target/tmp, never in /var/lib.
pub fn state_root() -> PathBuf {
    std::env::var_os("STAGE2_STATE_ROOT")
        .filter(|r| !r.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("stage2-state"))
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stage2-tui"));
    c.env("STAGE2_ENGINE", engine_url())
        .env("STAGE2_PODMAN", podman_164())
        .env("STAGE2_STATE_ROOT", state_root())
        .env_remove("STAGE2_DEPLOYCONFIG");
    c
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run stage2-tui")
}

pub fn text(o: &Output) -> String {
    format!(
        "--- exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Writes a demo deployconfig (folder + images) without running it.
pub fn prepare_demo(dir: &Path, extra: &[&str]) {
    let d = dir.to_str().unwrap();
    let mut args = vec!["demo", "--dir", d, "--prepare-only", "--pace", "0"];
    // The fake cluster comes up in 2 s (not the demo's 12): tests wait on it, not watch it.
    if !extra.contains(&"--cluster-secs") {
        args.extend_from_slice(&["--cluster-secs", "2", "--settle", "1"]);
    }
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(
        o.status.success(),
        "demo --prepare-only failed\n{}",
        text(&o)
    );
}

/// `stage2-tui status --json` of a deployconfig (exit code, document).
pub fn status(dir: &Path) -> (i32, Value) {
    let o = run(&["status", "--json", "--deployconfig", dir.to_str().unwrap()]);
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e})\n{}", text(&o)));
    (o.status.code().unwrap_or(-1), v)
}

/// The run's state folder (outside the deployconfig), as `status --json` names it.
pub fn state_dir(dir: &Path) -> PathBuf {
    PathBuf::from(status(dir).1["state_dir"].as_str().expect("state_dir"))
}

/// A temp folder with a prepared demo deployconfig `dc` in it.
pub fn demo_dc(extra: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dc");
    prepare_demo(&dir, extra);
    (tmp, dir)
}

/// Waits until step `id`'s first attempt has a container (it runs).
pub fn wait_running(dir: &Path, id: &str) {
    wait_for(&format!("{id} to run"), Duration::from_secs(60), || {
        std::fs::read_to_string(state_dir(dir).join("state.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .is_some_and(|st| {
                st["steps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| s["id"] == id && s["attempts"][0]["container_id"].is_string())
            })
    });
}

pub fn state(dir: &Path) -> Value {
    let s = std::fs::read_to_string(state_dir(dir).join("state.json")).expect("state.json");
    serde_json::from_str(&s).expect("state.json parses")
}

pub fn step<'a>(state: &'a Value, id: &str) -> &'a Value {
    state["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The container name of step `id`'s last attempt (the demo prefixes its names).
pub fn container_of(dir: &Path, id: &str) -> String {
    let st = state(dir);
    let a = step(&st, id)["attempts"].as_array().unwrap().clone();
    a.last()
        .and_then(|a| a["container"].as_str())
        .unwrap_or_else(|| panic!("{id} has no container"))
        .to_string()
}

/// Removes every container of a deployconfig's runs (found by its label), whatever state.
pub fn remove_containers_of(dir: &Path) {
    let canon = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let o = podman(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=stage2-tui.deployconfig={}", canon.display()),
    ]);
    for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
        podman(&["rm", "-f", id]);
    }
}

pub fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(args)
        .output()
        .expect("run podman")
}

pub fn podman_inspect(name: &str) -> Value {
    let o = podman(&["inspect", "--type", "container", name]);
    assert!(
        o.status.success(),
        "podman inspect {name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v[0].clone()
}

/// The saved log of a step attempt, split per stream.
pub fn saved_log(
    dir: &Path,
    state: &Value,
    id: &str,
    attempt: usize,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let a = &step(state, id)["attempts"][attempt - 1];
    let path: PathBuf = state_dir(dir).join(a["log"].as_str().unwrap());
    let data = std::fs::read(&path).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    for line in data.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let (_, stream, text) =
            stage2_tui::logformat::parse_saved_line(line).expect("saved line parses");
        match stream {
            stage2_tui::logformat::Stream::Stdout => out.push(text.to_vec()),
            stage2_tui::logformat::Stream::Stderr => err.push(text.to_vec()),
        }
    }
    (out, err)
}

/// `podman logs` of a container, split per stream.
pub fn podman_logs(container: &str) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let o = podman(&["logs", container]);
    assert!(
        o.status.success(),
        "podman logs {container}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let split = |b: &[u8]| -> Vec<Vec<u8>> {
        let b = b.strip_suffix(b"\n").unwrap_or(b);
        if b.is_empty() {
            vec![]
        } else {
            b.split(|c| *c == b'\n').map(<[u8]>::to_vec).collect()
        }
    };
    (split(&o.stdout), split(&o.stderr))
}

/// Asserts the saved log of a container step equals `podman logs` of its container, per stream.
pub fn assert_log_matches_podman(dir: &Path, state: &Value, id: &str) {
    let attempts = step(state, id)["attempts"].as_array().unwrap().len();
    let container = step(state, id)["attempts"][attempts - 1]["container_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (out, err) = saved_log(dir, state, id, attempts);
    let (pout, perr) = podman_logs(&container);
    assert_eq!(
        out.len(),
        pout.len(),
        "{id}: stdout line count differs from podman logs"
    );
    assert!(out == pout, "{id}: stdout differs from podman logs");
    assert_eq!(
        err.len(),
        perr.len(),
        "{id}: stderr line count differs from podman logs"
    );
    assert!(err == perr, "{id}: stderr differs from podman logs");
}

/// Replaces the deployconfig's pipeline with `toml`.
/// The test wrote it, so it accepts it (as an operator would with `pipeline accept`); a file
/// that does not load is left for the test to see refused.
pub fn set_pipeline(dir: &Path, toml: &str) {
    std::fs::write(dir.join("stage2-pipeline.toml"), toml).unwrap();
    let _ = accept(dir);
}

fn accept(dir: &Path) -> Output {
    run(&[
        "pipeline",
        "accept",
        "--yes",
        "--deployconfig",
        dir.to_str().unwrap(),
    ])
}

/// `stage2-tui pipeline accept --yes` for a deployconfig.
pub fn accept_pipeline(dir: &Path) {
    let o = accept(dir);
    assert!(o.status.success(), "pipeline accept\n{}", text(&o));
}

/// `run --headless` of `dir` under GNU time (its peak RSS goes to `rss`), stdout to `out`.
pub fn timed_headless(dir: &Path, rss: &Path, out: &Path) -> Command {
    let mut c = Command::new("/usr/bin/time");
    c.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(rss)
        .arg(env!("CARGO_BIN_EXE_stage2-tui"))
        .env("STAGE2_ENGINE", engine_url())
        .args(["run", "--headless", "--deployconfig", dir.to_str().unwrap()])
        .stdout(std::fs::File::create(out).unwrap());
    c
}

/// The peak RSS in KiB that GNU time wrote to `rss`.
pub fn peak_kib(rss: &Path) -> u64 {
    std::fs::read_to_string(rss)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap()
}

/// A 2 MiB tmpfs mounted at `root` (the suite runs as root), unmounted when dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(root: &Path) -> Self {
        std::fs::create_dir_all(root).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(root)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount a 2 MiB tmpfs (the test suite runs as root)");
        Tmpfs(root.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

pub const DEMO_IMAGE: &str = "4.run-installer";

/// A one-step pipeline running `script` with `sh -c` in a demo image.
/// Its container is named `<id>-t<test process id>` ([`container_name`]): two suites on one
/// engine, or a container an earlier failed run left, never hold this run's names.
pub fn oneshot(id: &str, script: &str) -> String {
    let script = script.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "[[step]]\nid = \"{id}\"\nkind = \"oneshot\"\nimage = \"{DEMO_IMAGE}\"\nname = \"{}\"\nentrypoint = [\"/bin/sh\", \"-c\", \"{script}\"]\n",
        container_name(id)
    )
}

/// The container name [`oneshot`] gives step `id`.
pub fn container_name(id: &str) -> String {
    format!("{id}-t{}", std::process::id())
}

/// GET `path` from 127.0.0.1:`port` (retrying the connect for 10 s); the body of a 200.
pub fn http_get(port: u16, path: &str) -> Vec<u8> {
    // The container is up before the server in it listens: give it a few seconds.
    let start = std::time::Instant::now();
    let mut s = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if start.elapsed() > Duration::from_secs(10) => {
                panic!("connect to the web server: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let head_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP response")
        + 4;
    assert!(
        resp.starts_with(b"HTTP/1.") && resp[9..12] == *b"200",
        "{}",
        String::from_utf8_lossy(&resp[..head_end])
    );
    resp[head_end..].to_vec()
}

/// A free TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The child's stdout, line by line as it comes, on a channel (its reader thread ends at EOF).
pub fn stdout_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().expect("stdout piped");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Reads lines into `seen` until one contains `what` (true) or `timeout` passes (false).
pub fn line_within(
    rx: &std::sync::mpsc::Receiver<String>,
    what: &str,
    timeout: Duration,
    seen: &mut Vec<String>,
) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            let hit = l.contains(what);
            seen.push(l);
            if hit {
                return true;
            }
        }
    }
    false
}
