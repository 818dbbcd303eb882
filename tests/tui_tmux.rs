//! The real binary in tmux against a real podman: what an operator sees and types.

mod common;

use std::process::Command;
use std::time::Duration;

use common::tmux::*;
use common::*;

#[test]
fn an_operator_watches_a_failure_retries_and_finishes() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dc");
    // The operator's own key map (XDG_CONFIG_HOME/stage2-tui/keys.toml) rebinds Retry to R.
    std::fs::create_dir_all(tmp.path().join("stage2-tui")).unwrap();
    std::fs::write(
        tmp.path().join("stage2-tui/keys.toml"),
        "[dashboard]\nretry = [\"R\"]\n",
    )
    .unwrap();
    let cmd = tui_cmd(
        tmp.path(),
        &format!(
            "demo --dir {} --fail 7.terraform-deploy --pace 0.01 --window 4 --wait 1 --csr-interval 1 --cluster-secs 4 --settle 1",
            dir.display()
        ),
    );
    let t = Tmux::start("retry", &cmd);
    let s = t.wait_for("Retry R", Duration::from_secs(180));
    assert!(s.contains("✘ 7.terraform-deploy"), "{s}");
    assert!(
        s.contains("Error: error cloning virtual machine"),
        "the failed step's pane shows its log:\n{s}"
    );
    assert!(s.contains("stage 2 failed at 7.terraform-deploy"), "{s}");
    // The failure is diagnosed above its log: what it means, what to do.
    assert!(
        s.contains("✚ A VM named 'master-1' already exists in vCenter")
            && s.contains("→ If it is left from an earlier attempt"),
        "the diagnosis shows in the failed step's pane:\n{s}"
    );
    assert!(
        s.contains("Consuming") || s.contains("config.json updated"),
        "other panes fill too:\n{s}"
    );
    // `r` is no longer bound to retry. Keys are handled in order: once the help that `?` opens
    // is on screen, `r` has been handled too, so the check below cannot pass by being early.
    t.keys(&["r", "?"]);
    t.wait_for("Keys can be changed", Duration::from_secs(10));
    t.keys(&["Escape"]);
    t.wait_for("Retry R", Duration::from_secs(10));
    assert_eq!(
        state(&dir)["outcome"],
        "failed",
        "r is no longer bound to retry"
    );
    t.keys(&["R"]);
    let s = t.wait_for("stage 2 completed successfully", Duration::from_secs(180));
    assert!(s.contains("✔ 9.post-deployment"), "{s}");
    // The cluster took shape in its pane.
    assert!(
        s.contains(" Cluster ")
            && s.contains("nodes 6/6 Ready")
            && s.contains("operators 31/31 available"),
        "{s}"
    );
    // A support bundle from the dashboard, in the private state folder: never into the
    // deployconfig, which every stage container reads.
    t.keys(&["B"]);
    t.wait_for("support bundle written to", Duration::from_secs(30));
    let bundles: Vec<_> = std::fs::read_dir(state_dir(&dir).join("bundles"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        bundles.len() == 1 && bundles[0].starts_with("stage2-bundle-ocp4demo-"),
        "{bundles:?}"
    );
    assert!(
        !std::fs::read_dir(&dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("stage2-bundle")),
        "a bundle was written into the deployconfig"
    );
    let st = state(&dir);
    assert_eq!(st["outcome"], "succeeded");
    assert_eq!(
        step(&st, "7.terraform-deploy")["attempts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The retried step says it ran twice; its log view reaches both attempts.
    assert!(s.contains("7.terraform-deploy ×2"), "{s}");
    t.keys(&["g", "j", "j", "j", "j", "j", "Enter"]);
    t.wait_for("attempt 2 of 2", Duration::from_secs(10));
    t.keys(&["["]);
    // The lines come when the log is read (off the update loop).
    let l = t.wait_for("error cloning virtual machine", Duration::from_secs(10));
    assert!(
        l.contains("attempt 1 of 2"),
        "the failed attempt's log:\n{l}"
    );
    // (Escape and G sent together would read as Alt-G.)
    t.keys(&["Escape"]);
    t.wait_for(" Steps ", Duration::from_secs(10));
    t.keys(&["G"]);
    // The full log view of the selected step, with search.
    t.keys(&["Enter"]);
    t.wait_for(" attempt 1  lines ", Duration::from_secs(10));
    t.keys(&["/", "o", "k", ":", "Enter"]);
    t.wait_for("\"ok:\"", Duration::from_secs(10));
    t.keys(&["Escape"]);
    t.wait_for("Steps", Duration::from_secs(10));
    // The run is complete: `q` quits at once, with no question.
    t.keys(&["q"]);
    t.wait_exited(Duration::from_secs(10));
    remove_containers_of(&dir);
}

#[test]
fn killing_the_tui_mid_step_and_starting_it_again_reattaches() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dc");
    prepare_demo(&dir, &[]);
    set_pipeline(
        &dir,
        &oneshot(
            "slow-step",
            "echo run >> /tmp/workingdir/starts; echo begin; sleep 5; seq 1 20000; echo the-end",
        ),
    );
    let first = Tmux::start(
        "first",
        &tui_cmd(tmp.path(), &format!("run --deployconfig {}", dir.display())),
    );
    first.wait_for("begin", Duration::from_secs(60));
    let run_id = state(&dir)["run_id"].clone();
    // SIGKILL: no chance to clean up, like a dropped SSH session taking the process down.
    unsafe_kill(first.pid());
    drop(first);
    assert_eq!(
        podman_inspect(&container_name("slow-step"))["State"]["Running"],
        true,
        "the step keeps running in the engine"
    );

    // Plain `stage2-tui`: a run is in progress, so it opens the dashboard on it.
    let second = Tmux::start(
        "second",
        &tui_cmd(tmp.path(), &format!("--deployconfig {}", dir.display())),
    );
    let s = second.wait_for("stage 2 completed successfully", Duration::from_secs(120));
    assert!(
        s.contains("the-end"),
        "the pane shows the step's output:\n{s}"
    );
    let st = state(&dir);
    assert_eq!(st["run_id"], run_id, "the same run");
    assert_eq!(
        std::fs::read_to_string(dir.join("starts")).unwrap(),
        "run\n",
        "started once"
    );
    let (out, _) = saved_log(&dir, &st, "slow-step", 1);
    assert_eq!(out.len(), 20002, "no line lost");
    second.keys(&["q"]);
    remove_containers_of(&dir);
}

fn unsafe_kill(pid: i32) {
    let ok = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -9 {pid}");
}

#[test]
fn escape_sequences_in_logs_do_not_reach_the_terminal() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dc");
    prepare_demo(&dir, &[]);
    set_pipeline(
        &dir,
        &oneshot(
            "hostile",
            r"printf '\033]0;pwned\007\033[2J\033[3;1Hhijack \033[31mred\033[0m \033[?1049l\n'; echo done",
        ),
    );
    let t = Tmux::start(
        "hostile",
        &tui_cmd(tmp.path(), &format!("run --deployconfig {}", dir.display())),
    );
    let s = t.wait_for("stage 2 completed successfully", Duration::from_secs(60));
    assert!(
        s.contains("^[]0;pwned^G^[[2J^[[3;1Hhijack red ^[[?1049l"),
        "shown, not obeyed:\n{s}"
    );
    assert_ne!(t.title(), "pwned", "the terminal title changed");
    assert!(
        s.lines().next().unwrap_or("").starts_with(" stage2-tui"),
        "the screen was cleared or moved:\n{s}"
    );
    t.keys(&["Enter"]);
    // The lines come when the log is read (off the update loop).
    let s = t.wait_for(" attempt 1  lines 1-2 of 2", Duration::from_secs(10));
    assert!(s.contains("^[]0;pwned^G"), "{s}");
    assert_ne!(t.title(), "pwned");
    t.keys(&["q", "q"]);
    remove_containers_of(&dir);
}

#[test]
fn a_first_time_operator_fixes_the_config_picks_a_tag_and_starts() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dc");
    prepare_demo(
        &dir,
        &["--window", "3", "--wait", "1", "--csr-interval", "1"],
    );
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        cfg.replace("\"10.50.1.11\"", "\"10.50.2.11\""),
    )
    .unwrap();

    let t = Tmux::start(
        "setup",
        &tui_cmd(tmp.path(), &format!("--deployconfig {}", dir.display())),
    );
    let s = t.wait_for("Pre-flight checks", Duration::from_secs(30));
    assert!(s.contains("1 Pre-flight"), "{s}");
    t.wait_for("is outside 10.50.1.0/24", Duration::from_secs(30));
    t.keys(&["Tab", "E", "Enter"]);
    t.wait_for("masters[1].ipaddress", Duration::from_secs(10));
    for _ in 0..10 {
        t.keys(&["BSpace"]);
    }
    t.keys(&["-l", "10.50.1.11"]);
    t.keys(&["Enter"]);
    t.wait_for("config.json is valid", Duration::from_secs(10));
    t.keys(&["Tab"]);
    t.wait_for("openshift-install 4.14.0-demo", Duration::from_secs(60));
    t.keys(&["Tab"]);
    t.wait_for("7/7 stage images present", Duration::from_secs(60));
    t.keys(&["Enter", "Tab"]);
    let s = t.wait_for("S saves the changes and starts", Duration::from_secs(10));
    assert!(
        s.contains("+       \"ipaddress\": \"10.50.1.11\""),
        "the review shows the change:\n{s}"
    );
    t.keys(&["S"]);
    t.wait_for("stage 2 completed successfully", Duration::from_secs(180));
    let saved = std::fs::read_to_string(dir.join("config.json")).unwrap();
    assert!(saved.contains("\"10.50.1.11\"") && !saved.contains("10.50.2.11"));
    assert!(
        std::fs::read_to_string(dir.join(".config.json.stage2-tui.bak"))
            .unwrap()
            .contains("10.50.2.11")
    );
    assert_eq!(state(&dir)["outcome"], "succeeded");
    t.keys(&["q"]);
    remove_containers_of(&dir);
}

#[test]
fn demo_setup_walks_through_the_flow_before_starting() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dc");
    let cmd = tui_cmd(
        tmp.path(),
        &format!(
            "demo --setup --dir {} --pace 0 --window 2 --wait 1 --csr-interval 1 --cluster-secs 2 --settle 1",
            dir.display()
        ),
    );
    let t = Tmux::start("demo-setup", &cmd);
    t.wait_for("Nothing blocks the run", Duration::from_secs(120));
    assert!(
        !state_dir(&dir).join("state.json").exists(),
        "nothing runs before Start"
    );
    t.keys(&["BTab"]);
    t.wait_for("S saves the changes and starts", Duration::from_secs(10));
    t.keys(&["S"]);
    t.wait_for("stage 2 completed successfully", Duration::from_secs(180));
    t.keys(&["q"]);
    remove_containers_of(&dir);
}

#[test]
fn a_shell_in_a_running_steps_container_and_back_to_the_dashboard_as_it_was() {
    let _g = engine_lock();
    // The demo, slowed down: 4.run-installer prints a line a second.
    let (tmp, dir) = demo_dc(&[]);
    std::fs::write(dir.join(".demo/pace"), "1\n").unwrap();
    let d = dir.to_str().unwrap();
    // `cat` as the pager: it shows the file and comes straight back.
    let cmd = tui_cmd(tmp.path(), &format!("run --deployconfig {d}")).replacen(
        "exec env ",
        "exec env PAGER=cat ",
        1,
    );
    let t = Tmux::start("shell", &cmd);
    t.wait_for("openshift-install v4.14.0-demo", Duration::from_secs(90));
    // E: a shell in the running step's container; the TUI steps aside. Back: the dashboard as
    // it was, the step still running, and a line that says so.
    let (s, seen) =
        list_the_workingdir_from(&t, &dir, "E", "a shell in 4.run-installer's container");
    assert!(
        s.contains(" Steps ") && s.contains("4.run-installer"),
        "{s}"
    );
    assert!(
        s.contains("openshift-install v4.14.0-demo"),
        "the pane shows the log again:\n{s}"
    );
    assert!(s.contains("(exit 0)"), "{s}");
    assert!(seen.lines().any(|l| l == "config.json"), "{seen}");
    // Keys work again: i shows the container as the engine describes it, in the pager.
    t.keys(&["i"]);
    t.wait_for(
        "back from 4.run-installer's container, as the engine describes it (exit 0)",
        Duration::from_secs(20),
    );
    t.keys(&["x"]);
    t.wait_for("Stop", Duration::from_secs(10));
    t.keys(&["y"]);
    t.wait_for("stopped", Duration::from_secs(30));
    t.keys(&["q"]);
    t.wait_exited(Duration::from_secs(20));
    remove_containers_of(&dir);
}

#[test]
fn the_chosen_theme_is_remembered_for_the_next_start() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    set_pipeline(&dir, &oneshot("waits", "echo waiting; sleep 120"));
    let start = |name: &str| {
        let t = Tmux::start(
            name,
            &tui_cmd(tmp.path(), &format!("run --deployconfig {d}")),
        );
        t.wait_for("waiting", Duration::from_secs(60));
        t
    };
    let t = start("theme1");
    t.keys(&["t"]);
    t.wait_for(
        "theme: light (remembered for the next start)",
        Duration::from_secs(10),
    );
    t.keys(&["q"]);
    t.wait_for("Quit stage2-tui?", Duration::from_secs(10));
    t.keys(&["y"]);
    t.wait_exited(Duration::from_secs(20));
    let saved = std::fs::read_to_string(tmp.path().join("stage2-tui/theme")).unwrap();
    assert_eq!(saved.trim(), "light");
    // The next start is in light: one more t goes on to the theme after it.
    let t = start("theme2");
    t.keys(&["t"]);
    let s = t.wait_for("(remembered for the next start)", Duration::from_secs(10));
    assert!(
        !s.contains("theme: light"),
        "it started in dark again:\n{s}"
    );
    t.keys(&["q"]);
    t.wait_for("Quit stage2-tui?", Duration::from_secs(10));
    t.keys(&["y"]);
    t.wait_exited(Duration::from_secs(20));
    remove_containers_of(&dir);
}

#[test]
fn a_debug_shell_in_a_failed_steps_image_sees_its_mounts() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&["--fail", "4.run-installer"]);
    let d = dir.to_str().unwrap();
    let t = Tmux::start(
        "debug",
        &tui_cmd(tmp.path(), &format!("run --deployconfig {d}")),
    );
    t.wait_for("stage 2 failed at 4.run-installer", Duration::from_secs(90));
    // The failed step is selected: D opens a shell in its image with its mounts.
    let (s, seen) =
        list_the_workingdir_from(&t, &dir, "D", "a debug shell in 4.run-installer's image");
    assert!(s.contains("(exit 0)"), "{s}");
    assert!(seen.lines().any(|l| l == "config.json"), "{seen}");
    // The debug container was removed on exit; the failed step's own container is untouched.
    let ps = podman(&["ps", "-a", "--format", "{{.Image}} {{.Labels}}"]);
    let ps = String::from_utf8_lossy(&ps.stdout).into_owned();
    assert!(
        ps.lines()
            .filter(|l| l.contains("4.run-installer"))
            .all(|l| l.contains("stage2-tui")),
        "an unlabelled debug container was left:\n{ps}"
    );
    t.keys(&["q"]);
    t.wait_exited(Duration::from_secs(20));
    remove_containers_of(&dir);
}

/// Presses `key` for a shell that `said` announces, lists /tmp/workingdir into a file from it,
/// exits, and waits until the TUI is back: (the screen then, what the shell listed).
fn list_the_workingdir_from(
    t: &Tmux,
    dir: &std::path::Path,
    key: &str,
    said: &str,
) -> (String, String) {
    t.keys(&[key]);
    t.wait_for(said, Duration::from_secs(20));
    let file = format!("seen-{key}.txt");
    t.keys(&[
        &format!("ls /tmp/workingdir > /tmp/workingdir/{file}; exit"),
        "Enter",
    ]);
    let s = t.wait_for(&format!("back from {said}"), Duration::from_secs(30));
    let seen = std::fs::read_to_string(dir.join(&file)).unwrap_or_default();
    (s, seen)
}

#[test]
fn the_setup_traps_have_a_way_out_in_a_real_terminal() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let cfg = dir.join("config.json");
    let t = Tmux::start(
        "traps",
        &tui_cmd(tmp.path(), &format!("--deployconfig {}", dir.display())),
    );
    t.wait_for("Pre-flight checks", Duration::from_secs(30));
    t.keys(&["Tab"]);
    t.wait_for("config.json is valid", Duration::from_secs(10));
    // The raw editor with text that does not parse: Esc asks, d discards, the form is as it was.
    t.keys(&["F2"]);
    t.wait_for("Ctrl-Y redo", Duration::from_secs(10));
    t.keys(&["-l", "}}"]);
    t.keys(&["Escape"]);
    t.wait_for("d: discard these raw edits", Duration::from_secs(10));
    t.keys(&["d"]);
    t.wait_for(
        "raw edits of config.json discarded",
        Duration::from_secs(10),
    );
    // An edit, then q: the question's w saves it, and nothing starts.
    t.keys(&["Down", "Enter"]);
    t.keys(&["-l", "x"]);
    t.keys(&["Enter"]);
    t.wait_for("(changed, not saved)", Duration::from_secs(10));
    t.keys(&["q"]);
    t.wait_for("w saves them instead", Duration::from_secs(10));
    t.keys(&["w"]);
    t.wait_for("saved config.json", Duration::from_secs(10));
    let saved = std::fs::read_to_string(&cfg).unwrap();
    // Someone else rewrites config.json; the next save stops, and O shows the change and asks.
    t.keys(&["Enter"]);
    t.keys(&["-l", "y"]);
    t.keys(&["Enter"]);
    t.wait_for("(changed, not saved)", Duration::from_secs(10));
    let theirs = saved.replacen("\"rhnorgid\": \"", "\"rhnorgid\": \"Theirs", 1);
    std::fs::write(&cfg, &theirs).unwrap();
    t.keys(&["w"]);
    t.wait_for(
        "changed on disk since it was loaded",
        Duration::from_secs(10),
    );
    t.keys(&["O"]);
    let s = t.wait_for("No (n, Esc, Enter, q)", Duration::from_secs(10));
    assert!(
        s.contains("Save yours over the change on disk (nothing starts)?"),
        "{s}"
    );
    assert!(s.contains("Theirs"), "the change on disk is shown:\n{s}");
    t.keys(&["y"]);
    t.wait_for("saved config.json", Duration::from_secs(10));
    assert!(!std::fs::read_to_string(&cfg).unwrap().contains("Theirs"));
    assert!(
        !state_dir(&dir).join("state.json").exists(),
        "nothing started"
    );
    // Esc goes back to the dashboard; setup opened again with c has its way back too.
    t.keys(&["Escape"]);
    t.wait_for(" Steps ", Duration::from_secs(10));
    t.keys(&["c"]);
    t.wait_for("Pre-flight checks", Duration::from_secs(10));
    t.keys(&["Escape"]);
    t.wait_for(" Steps ", Duration::from_secs(10));
    t.keys(&["q"]);
    t.wait_exited(Duration::from_secs(20));
}
