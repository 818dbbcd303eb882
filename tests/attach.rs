//! One run, many terminals, against the real engine: TUIs in tmux attach to the process that
//! drives the run (headless, as under systemd, or another TUI).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::tmux::*;
use common::*;

/// A step that prints a numbered tick every 0.2 s for two minutes.
const LONG: &str = "i=0; while [ $i -lt 600 ]; do echo tick $i; i=$((i+1)); sleep 0.2; done";

/// A step that fails the first time and succeeds when retried.
const FLAKY: &str = "sleep 4; if [ -e /tmp/workingdir/second ]; then echo fixed; exit 0; fi; touch /tmp/workingdir/second; echo 'Error: flaky failure' >&2; exit 1";

/// A child process killed when the test ends, however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn headless(dir: &Path, out: &Path) -> Driver {
    Driver(
        bin()
            .args(["run", "--headless", "--deployconfig", dir.to_str().unwrap()])
            .stdout(std::fs::File::create(out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn wait_exit(child: &mut Driver, timeout: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(start.elapsed() < timeout, "the driver did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn last_tick(screen: &str) -> Option<u32> {
    screen
        .lines()
        .filter_map(|l| l.split("tick ").nth(1))
        .filter_map(|t| t.split_whitespace().next()?.parse().ok())
        .max()
}

#[test]
fn a_tui_attaches_to_a_headless_run_sees_it_live_and_its_stop_stops_the_step() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    set_pipeline(&dir, &oneshot("long", LONG));
    let out = tmp.path().join("headless.txt");
    let mut driver = headless(&dir, &out);
    wait_running(&dir, "long");
    let t = Tmux::start(
        "attach-stop",
        &tui_cmd(tmp.path(), &format!("--deployconfig {d}")),
    );
    t.wait_for(
        "driven by a headless stage2-tui of root",
        Duration::from_secs(30),
    );
    // Live: the ticks go on on screen.
    let first = t.wait_for("tick ", Duration::from_secs(20));
    let n = last_tick(&first).unwrap();
    let start = Instant::now();
    loop {
        if last_tick(&t.screen()).unwrap_or(0) >= n + 5 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no live output:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The step's log file has whole lines while it runs (written through at least once a second),
    // and the attached TUI's log view shows them.
    let log = std::path::PathBuf::from(
        step(&status(&dir).1, "long")["log"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let lines = std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(
        lines >= 5,
        "{lines} lines in {} while the step runs",
        log.display()
    );
    t.keys(&["Enter"]);
    t.wait_for("long attempt 1", Duration::from_secs(10));
    t.wait_for("tick ", Duration::from_secs(10));
    t.keys(&["Escape"]);
    t.wait_for(" Steps ", Duration::from_secs(10));
    // Root itself may.
    let sock = state_dir(&dir).join("control.sock");
    let probe = run(&["control-probe", sock.to_str().unwrap()]);
    assert!(text(&probe).contains("driven by"), "{}", text(&probe));

    // Another uid may not attach, even where it can reach the socket.
    let sd = state_dir(&dir);
    for p in [sd.parent().unwrap(), sd.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let probe = bin()
        .uid(65534)
        .gid(65534)
        .arg("control-probe")
        .arg(&sock)
        .output()
        .unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
    for p in [sd.parent().unwrap(), sd.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    assert_eq!(probe.status.code(), Some(1), "{}", text(&probe));
    assert!(
        text(&probe).contains("uid 65534 may not attach"),
        "{}",
        text(&probe)
    );
    // Stop in the attached TUI stops the step in the driver, which exits non-zero.
    t.keys(&["x"]);
    t.wait_for(" Yes (", Duration::from_secs(10));
    t.keys(&["y"]);
    let code = wait_exit(&mut driver, Duration::from_secs(60));
    let printed = std::fs::read_to_string(&out).unwrap();
    assert_eq!(code, 1, "{printed}");
    assert!(
        printed.contains("stop of the running step requested by uid 0"),
        "the journal keeps who asked\n{printed}"
    );
    assert_eq!(step(&state(&dir), "long")["status"], "stopped");
    t.wait_for("has ended", Duration::from_secs(20));
    t.keys(&["q"]);
    remove_containers_of(&dir);
}

#[test]
fn a_headless_failure_is_retried_from_an_attached_tui_after_the_driver_exits() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    set_pipeline(&dir, &oneshot("flaky", FLAKY));
    let out = tmp.path().join("headless.txt");
    let mut driver = headless(&dir, &out);
    wait_running(&dir, "flaky");
    let t = Tmux::start(
        "attach-retry",
        &tui_cmd(tmp.path(), &format!("--deployconfig {d}")),
    );
    t.wait_for("driven by", Duration::from_secs(30));
    assert_eq!(wait_exit(&mut driver, Duration::from_secs(60)), 1);
    t.wait_for("has ended", Duration::from_secs(20));
    t.wait_for("Retry", Duration::from_secs(10));
    t.keys(&["r"]);
    t.wait_for("stage 2 completed successfully", Duration::from_secs(60));
    let st = state(&dir);
    let s = step(&st, "flaky");
    assert_eq!(s["status"], "succeeded");
    assert_eq!(s["attempts"].as_array().unwrap().len(), 2);
    t.keys(&["q"]);
    remove_containers_of(&dir);
}

#[test]
fn two_tuis_on_one_run_both_see_the_retry_one_of_them_pressed() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    set_pipeline(&dir, &oneshot("flaky", FLAKY));
    let a = Tmux::start(
        "driver",
        &tui_cmd(tmp.path(), &format!("run --deployconfig {d}")),
    );
    a.wait_for("stage 2 failed at flaky", Duration::from_secs(60));
    let b = Tmux::start(
        "viewer",
        &tui_cmd(tmp.path(), &format!("--deployconfig {d}")),
    );
    b.wait_for("driven by a stage2-tui of root", Duration::from_secs(30));
    b.wait_for("Retry", Duration::from_secs(10));
    b.keys(&["r"]);
    a.wait_for("stage 2 completed successfully", Duration::from_secs(60));
    b.wait_for("stage 2 completed successfully", Duration::from_secs(30));
    // Quitting the attached TUI leaves the driver be: once b has exited, a still shows the run.
    b.keys(&["q"]);
    b.wait_exited(Duration::from_secs(10));
    a.keys(&["j"]);
    a.wait_for("stage 2 completed successfully", Duration::from_secs(5));
    a.keys(&["q"]);
    remove_containers_of(&dir);
}

#[test]
fn another_user_is_told_to_use_sudo_and_starts_nothing() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    set_pipeline(&dir, &oneshot("long", LONG));
    let out = tmp.path().join("headless.txt");
    let mut driver = headless(&dir, &out);
    wait_running(&dir, "long");
    for args in [
        vec!["run", "--headless", "--deployconfig", d],
        vec!["run", "--headless", "--restart", "--deployconfig", d],
        vec!["--deployconfig", d],
    ] {
        let o = bin().uid(65534).gid(65534).args(&args).output().unwrap();
        let all = text(&o);
        assert_eq!(o.status.code(), Some(2), "{all}");
        assert!(all.contains("is driven by root (pid"), "{all}");
        assert!(all.contains("sudo stage2-tui"), "{all}");
    }
    // Nothing was started: still the one attempt, and the driver goes on.
    assert_eq!(
        step(&state(&dir), "long")["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(driver.0.try_wait().unwrap().is_none());
    unsafe_kill_term(driver.0.id());
    assert_eq!(wait_exit(&mut driver, Duration::from_secs(30)), 130);
    remove_containers_of(&dir);
}

fn unsafe_kill_term(pid: u32) {
    std::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap();
}

/// A headless driver running `dir`'s pipeline, and two TUIs attached to it once `step` runs.
fn headless_and_two_tuis(
    tmp: &Path,
    dir: &Path,
    step_id: &str,
    name: &str,
) -> (Driver, Tmux, Tmux) {
    let d = dir.to_str().unwrap();
    let driver = headless(dir, &tmp.join("headless.txt"));
    wait_running(dir, step_id);
    let tuis: Vec<Tmux> = ["a", "b"]
        .iter()
        .map(|x| {
            Tmux::start(
                &format!("{name}-{x}"),
                &tui_cmd(tmp, &format!("--deployconfig {d}")),
            )
        })
        .collect();
    for t in &tuis {
        t.wait_for(
            "driven by a headless stage2-tui of root",
            Duration::from_secs(30),
        );
    }
    let mut tuis = tuis.into_iter();
    let (a, b) = (tuis.next().unwrap(), tuis.next().unwrap());
    (driver, a, b)
}

/// A step that runs `secs` seconds (printing a tick a second), then a quick one.
fn two_steps(first: &str, second: &str, secs: u32) -> String {
    format!(
        "{}\n{}",
        oneshot(
            first,
            &format!("i=0; while [ $i -lt {secs} ]; do echo tick $i; i=$((i+1)); sleep 1; done")
        ),
        oneshot(second, "echo after")
    )
}

#[test]
fn when_the_driver_is_killed_mid_step_exactly_one_attached_tui_takes_over_and_the_run_completes() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let pid = std::process::id();
    let (first, second) = (format!("takeover-a-{pid}"), format!("takeover-b-{pid}"));
    set_pipeline(&dir, &two_steps(&first, &second, 15));
    let (mut driver, a, b) = headless_and_two_tuis(tmp.path(), &dir, &first, "takeover");
    // The driver dies without a word (SIGKILL, as the OOM killer or `systemctl kill` would).
    driver.0.kill().unwrap();
    driver.0.wait().unwrap();
    // One of the two drives now; the other is attached to it.
    let mut drivers = 0;
    for t in [&a, &b] {
        let s = t.wait_for("stage 2 completed successfully", Duration::from_secs(90));
        if !s.contains("driven by") {
            drivers += 1;
        }
    }
    let st = state(&dir);
    assert_eq!(st["outcome"], "succeeded", "{st}");
    for id in [&first, &second] {
        assert_eq!(
            step(&st, id)["attempts"].as_array().unwrap().len(),
            1,
            "{id} ran more than once: {st}"
        );
    }
    assert_eq!(drivers, 1, "a:\n{}\nb:\n{}", a.screen(), b.screen());
    // The first step's times are the engine's: it ran ~15 s, not until the takeover noticed.
    let a0 = &step(&st, &first)["attempts"][0];
    let started: chrono::DateTime<chrono::Utc> =
        a0["started_at"].as_str().unwrap().parse().unwrap();
    let finished: chrono::DateTime<chrono::Utc> =
        a0["finished_at"].as_str().unwrap().parse().unwrap();
    let took = (finished - started).num_milliseconds();
    assert!((14_000..20_000).contains(&took), "{took} ms");
    assert_log_matches_podman(&dir, &st, &first);
    a.keys(&["q"]);
    b.keys(&["q"]);
    remove_containers_of(&dir);
}

#[test]
fn after_a_headless_failure_two_tuis_race_to_drive_and_the_losers_retry_reaches_the_winner() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let name = format!("race-flaky-{}", std::process::id());
    set_pipeline(&dir, &oneshot(&name, FLAKY));
    let (mut driver, a, b) = headless_and_two_tuis(tmp.path(), &dir, &name, "race");
    assert_eq!(wait_exit(&mut driver, Duration::from_secs(60)), 1);
    // Exactly one drives (it says the driver has ended and it drives); the other is attached
    // to it and says who drives.
    let started = Instant::now();
    let (loser, winner) = loop {
        let (sa, sb) = (a.screen(), b.screen());
        assert!(!sa.contains("already driving") && !sb.contains("already driving"));
        let attached = |s: &str| s.contains("driven by a stage2-tui of root");
        let drives = |s: &str| s.contains("drives from now") && !attached(s);
        if drives(&sa) && attached(&sb) {
            break (&b, &a);
        }
        if drives(&sb) && attached(&sa) {
            break (&a, &b);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no single driver (a pid {}, b pid {}):\na:\n{sa}\nb:\n{sb}",
            a.pid(),
            b.pid()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    loser.keys(&["r"]);
    let t0 = Instant::now();
    while !winner.screen().contains("stage 2 completed successfully") {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the retry did not complete\nwinner:\n{}\nloser:\n{}\nstate: {}",
            winner.screen(),
            loser.screen(),
            std::fs::read_to_string(state_dir(&dir).join("state.json")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    loser.wait_for("stage 2 completed successfully", Duration::from_secs(30));
    let st = state(&dir);
    assert_eq!(step(&st, &name)["attempts"].as_array().unwrap().len(), 2);
    a.keys(&["q"]);
    b.keys(&["q"]);
    remove_containers_of(&dir);
}
