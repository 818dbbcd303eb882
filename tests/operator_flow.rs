//! What a first-time operator meets, in tmux against the real engine: a realistic deployconfig
//! with a missing comma fixed and saved at 80×24, no edit lost to q, the message history, and
//! coming back to a failed run.

mod common;

use std::path::Path;
use std::time::Duration;

use common::tmux::*;
use common::*;

fn exit_code(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn wait_code(path: &Path) -> i32 {
    let mut code = None;
    wait_for("the TUI to exit", Duration::from_secs(20), || {
        code = exit_code(path);
        code.is_some()
    });
    code.unwrap_or(-1)
}

#[test]
fn a_missing_comma_is_fixed_and_saved_at_80x24_without_losing_anything() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    // The real example's mistake: a comma missing at the end of a line.
    let cfg = dir.join("config.json");
    let good = std::fs::read_to_string(&cfg).unwrap();
    let broken = good.replacen(
        "\"basedomain\": \"demo.example.internal\",",
        "\"basedomain\": \"demo.example.internal\"",
        1,
    );
    assert_ne!(broken, good);
    std::fs::write(&cfg, &broken).unwrap();
    let code = tmp.path().join("code");
    let t = Tmux::start_sized(
        "comma",
        &tui_cmd_code(tmp.path(), &format!("--deployconfig {d}"), &code),
        80,
        24,
    );
    // It opens in the raw editor at the parser's line; every setup step is visible at 80 columns.
    let s = t.wait_for("invalid JSON at line", Duration::from_secs(60));
    assert!(s.contains("5 Review"), "short tabs fit:\n{s}");
    // The cursor is at the next key: the comma goes at the end of the line above.
    t.keys(&["Up", "End", ","]);
    t.keys(&["Escape"]);
    t.wait_for("config.json (changed, not saved)", Duration::from_secs(10));
    // q asks and Enter means no: the edit stays.
    t.keys(&["q"]);
    // (Waiting for the last line drawn: a capture may catch the dialog half written.)
    let s = t.wait_for("Esc, Enter", Duration::from_secs(10));
    assert!(
        s.contains("Quit and lose your changes?"),
        "the dialog says what means no:\n{s}"
    );
    t.keys(&["Enter"]);
    t.wait_for("config.json (changed, not saved)", Duration::from_secs(10));
    assert!(exit_code(&code).is_none(), "still running");
    // w saves without starting.
    t.keys(&["w"]);
    t.wait_for("saved config.json", Duration::from_secs(10));
    let saved = std::fs::read_to_string(&cfg).unwrap();
    assert_eq!(saved, good, "only the comma changed");
    assert_eq!(
        std::fs::read_to_string(dir.join(".config.json.stage2-tui.bak")).unwrap(),
        broken
    );
    let (status, _) = status(&dir);
    assert_eq!(status, 2, "nothing was started");
    // The message history keeps what was said.
    t.keys(&["M"]);
    let s = t.wait_for("Messages (", Duration::from_secs(10));
    assert!(s.contains("saved config.json"), "{s}");
    t.keys(&["Escape"]);
    // Nothing unsaved now: q quits at once, exit 0 (nothing ran).
    t.keys(&["q"]);
    assert_eq!(wait_code(&code), 0);
    remove_containers_of(&dir);
}

#[test]
fn a_failed_run_exits_1_says_how_to_come_back_and_reopens_on_its_dashboard() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&["--fail", "6.add-ignition", "--window", "2", "--wait", "1"]);
    let d = dir.to_str().unwrap();
    let code = tmp.path().join("code");
    let t = Tmux::start_sized(
        "failed",
        &tui_cmd_code(tmp.path(), &format!("run --deployconfig {d}"), &code),
        120,
        32,
    );
    t.wait_for("stage 2 failed at 6.add-ignition", Duration::from_secs(120));
    t.wait_for("Retry r", Duration::from_secs(10));
    // Its log, live and whole, and the step row.
    t.keys(&["q"]);
    let c = wait_code(&code);
    let s = t.screen();
    assert_eq!(c, 1, "{s}");
    assert!(
        s.contains(&format!("stage2-tui --deployconfig {d}")),
        "the exact command to come back:\n{s}"
    );
    drop(t);
    // Coming back: the dashboard of the failed run, not the setup flow; setup is one key away.
    let _ = std::fs::remove_file(&code);
    let t = Tmux::start_sized(
        "again",
        &tui_cmd_code(tmp.path(), &format!("--deployconfig {d}"), &code),
        120,
        32,
    );
    let s = t.wait_for(
        "the last run halted at 6.add-ignition",
        Duration::from_secs(60),
    );
    assert!(s.contains("press r to retry it"), "{s}");
    t.keys(&["c"]);
    t.wait_for("Pre-flight", Duration::from_secs(30));
    t.keys(&["q"]);
    assert_eq!(wait_code(&code), 1, "{}", t.screen());
    remove_containers_of(&dir);
}
