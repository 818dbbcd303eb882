//! Fault injection against the real engine: the API service killed and restarted mid-step,
//! planted links, foreign containers, secrets printed by a failing stage, a full disk, detaching
//! with an open web-server window, a million-line flood, and hostile config files.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// A podman API service of the test's own, on its own socket, that the test may kill.
struct Service {
    socket: PathBuf,
    child: Option<Child>,
}

impl Service {
    fn start(dir: &Path) -> Self {
        let mut s = Self {
            socket: dir.join("podman.sock"),
            child: None,
        };
        s.restart();
        s
    }
    fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
    fn restart(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let child = Command::new("podman")
            .args(["system", "service", "--time=0"])
            .arg(self.url())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start podman system service");
        self.child = Some(child);
        wait_for("the API socket", Duration::from_secs(20), || {
            self.socket.exists()
        });
    }
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

fn lines_of(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

#[test]
fn killing_the_api_service_mid_step_neither_fails_nor_restarts_the_step() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    let mut svc = Service::start(tmp.path());
    let dir = tmp.path().join("dc");
    let d = dir.to_str().unwrap();
    prepare_demo(&dir, &[]);
    set_pipeline(
        &dir,
        &oneshot(
            "long-step",
            "echo started >> /tmp/workingdir/starts; i=1; while [ $i -le 301 ]; do echo line $i; i=$((i+1)); sleep 0.04; done",
        ),
    );
    let out = tmp.path().join("out.txt");
    let mut runner = bin()
        .env("STAGE2_ENGINE", svc.url())
        .args(["run", "--headless", "--deployconfig", d])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    wait_for("the step to print", Duration::from_secs(60), || {
        lines_of(&out, "long-step | line") >= 40
    });
    svc.kill();
    std::thread::sleep(Duration::from_secs(3));
    svc.restart();
    let status = runner.wait().unwrap();
    let printed = std::fs::read_to_string(&out).unwrap();
    assert_eq!(status.code(), Some(0), "{printed}");
    assert!(
        printed.contains("engine unreachable, retrying"),
        "{printed}"
    );
    assert!(printed.contains("the engine answers again"), "{printed}");
    let st = state(&dir);
    let s = step(&st, "long-step");
    assert_eq!(s["status"], "succeeded");
    assert_eq!(s["attempts"].as_array().unwrap().len(), 1, "started once");
    assert_eq!(
        std::fs::read_to_string(dir.join("starts")).unwrap(),
        "started\n"
    );
    let (saved, _) = saved_log(&dir, &st, "long-step", 1);
    assert_eq!(saved.len(), 301, "the saved log is complete");
    assert_log_matches_podman(&dir, &st, "long-step");
    // Every line printed once: the re-read after the reconnect prints none again.
    let once: Vec<&str> = printed
        .lines()
        .filter(|l| l.starts_with("long-step | line "))
        .collect();
    assert_eq!(
        once.len(),
        301,
        "lines printed again after the reconnect:\n{printed}"
    );
    remove_containers_of(&dir);
}

#[test]
fn links_planted_by_a_stage_are_refused_and_state_lives_outside_the_deployconfig() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    // A root-only file the stage points `oc` at, and a folder that must stay empty.
    let secret = tmp.path().join("root-only");
    std::fs::write(&secret, "root secret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let bin_dir = tmp.path().join("bin");
    let profile_dir = tmp.path().join("profile");
    let plant = format!(
        "ln -s {} /tmp/workingdir/oc; echo kubectl > /tmp/workingdir/kubectl; ln -s /etc/passwd /tmp/workingdir/.config.json.stage2-tui.bak; mkdir -p /tmp/workingdir/.stage2-tui; ln -s /etc/profile.d/x.sh /tmp/workingdir/.stage2-tui/lock",
        secret.display()
    );
    set_pipeline(
        &dir,
        &format!(
            "{}\n[[step]]\nid = \"install-clients\"\nkind = \"host\"\naction = \"install-clients\"\nbin_dir = \"{}\"\nprofile_dir = \"{}\"\n",
            oneshot("plant", &plant),
            bin_dir.display(),
            profile_dir.display()
        ),
    );
    let o = run(&["run", "--headless", "--deployconfig", d]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!("{d}/oc is a symbolic link")),
        "the refusal names the link\n{all}"
    );
    assert!(!bin_dir.join("oc").exists(), "nothing was copied");
    assert!(!Path::new("/etc/profile.d/x.sh").exists());

    // The state folder is outside the deployconfig, private, and so are the step logs.
    let sd = state_dir(&dir);
    assert!(!sd.starts_with(&dir), "{}", sd.display());
    assert_eq!(std::fs::metadata(&sd).unwrap().mode() & 0o777, 0o700);
    let st = state(&dir);
    let log = sd.join(step(&st, "plant")["attempts"][0]["log"].as_str().unwrap());
    assert_eq!(std::fs::metadata(&log).unwrap().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(log.parent().unwrap()).unwrap().mode() & 0o777,
        0o700
    );
    let root = state_root();
    assert!(
        sd.starts_with(&root),
        "{} is not under {}",
        sd.display(),
        root.display()
    );

    // A save in the setup flow refuses the planted backup link and leaves /etc/passwd alone.
    let before = std::fs::read("/etc/passwd").unwrap();
    let loaded = stage2_tui::config::save::load(&dir.join("config.json")).unwrap();
    let edited = loaded.text.replace("ocp4demo", "ocp4demo2");
    let e = stage2_tui::config::save::save(&loaded, &edited, false).unwrap_err();
    assert!(e.to_string().contains("is a symbolic link"), "{e}");
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), before);

    // Once the link is gone, install-clients copies a regular file with a quoted profile path.
    std::fs::remove_file(dir.join("oc")).unwrap();
    std::fs::write(dir.join("oc"), "#!/bin/sh\n").unwrap();
    set_pipeline(
        &dir,
        &format!(
            "[[step]]\nid = \"install-clients\"\nkind = \"host\"\naction = \"install-clients\"\nbin_dir = \"{}\"\nprofile_dir = \"{}\"\n",
            bin_dir.display(),
            profile_dir.display()
        ),
    );
    let o = run(&["run", "--headless", "--restart", "--deployconfig", d]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        std::fs::metadata(bin_dir.join("oc")).unwrap().mode() & 0o777,
        0o755
    );
    let profile = std::fs::read_to_string(profile_dir.join("stage2-kubeconfig.sh")).unwrap();
    assert!(
        profile.contains(&format!("export KUBECONFIG='{d}/auth/kubeconfig'")),
        "{profile}"
    );
    remove_containers_of(&dir);
}

#[test]
fn a_container_stage2_tui_did_not_create_is_never_removed() {
    let _g = engine_lock();
    let (_tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    let image = "localhost/stage2-demo/4.run-installer:demo";
    podman(&["rm", "-f", "someone-elses"]);
    let o = podman(&["create", "--name", "someone-elses", image, "/bin/true"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    set_pipeline(
        &dir,
        &oneshot("x", "true").replace(
            &format!("name = \"{}\"", container_name("x")),
            "name = \"someone-elses\"",
        ),
    );
    let o = run(&["run", "--headless", "--deployconfig", d]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("podman rm -f someone-elses"), "{all}");
    assert!(
        podman(&["container", "exists", "someone-elses"])
            .status
            .success(),
        "the foreign container is still there"
    );
    podman(&["rm", "-f", "someone-elses"]);
    remove_containers_of(&dir);
}

#[test]
fn secrets_printed_by_a_failing_stage_never_leave_the_raw_log() {
    let _g = engine_lock();
    let (_tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    set_pipeline(
        &dir,
        &oneshot(
            "leaky",
            "echo logging in with demo-password; echo 'auth failed for demo-secret' >&2; exit 3",
        ),
    );
    let o = run(&["run", "--headless", "--deployconfig", d]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("auth failed for ••••••"), "{all}");
    let secrets = stage2_tui::config::secret_values(&stage2_tui::config::Deployconfig::new(&dir));
    assert!(secrets.contains(&"demo-password".to_string()));
    let sd = state_dir(&dir);
    let state_text = std::fs::read_to_string(sd.join("state.json")).unwrap();
    let (code, status) = status(&dir);
    assert_eq!(code, 0);
    assert_eq!(status["status"], "failed");
    assert_eq!(step(&status, "leaky")["exit_code"], 3);
    assert_eq!(step(&status, "leaky")["attempts"], 1);
    let status_text = status.to_string();
    for s in &secrets {
        assert!(!all.contains(s.as_str()), "{s} printed:\n{all}");
        assert!(!state_text.contains(s.as_str()), "{s} in state.json");
        assert!(!status_text.contains(s.as_str()), "{s} in status --json");
    }
    // The raw log keeps the exact bytes, readable by root only.
    let log = PathBuf::from(step(&status, "leaky")["log"].as_str().unwrap());
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("demo-password")
    );
    assert_eq!(std::fs::metadata(&log).unwrap().mode() & 0o777, 0o600);

    // A pipeline file rewritten mid-run (a stage could do it) is not taken until accepted.
    std::fs::write(
        dir.join("stage2-pipeline.toml"),
        oneshot("leaky", "cat /etc/shadow"),
    )
    .unwrap();
    let o = run(&["run", "--headless", "--from", "leaky", "--deployconfig", d]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is not accepted"), "{}", text(&o));
    assert!(text(&o).contains("cat /etc/shadow"), "{}", text(&o));
    assert!(
        text(&o).contains("stage2-tui pipeline accept --deployconfig"),
        "{}",
        text(&o)
    );
    remove_containers_of(&dir);
}

#[test]
fn a_full_disk_holds_the_step_and_completes_its_log_once_space_is_back() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("state-fs");
    let _tmpfs = Tmpfs::mount(&root);
    let dir = tmp.path().join("dc");
    let d = dir.to_str().unwrap();
    prepare_demo(&dir, &[]);
    // Leave ~150 KB free; the stage prints ~400 KB, then waits for the test to free space.
    let filler = root.join("filler");
    let fill = vec![b'x'; 2 * 1024 * 1024 - 150 * 1024];
    let _ = std::fs::write(&filler, &fill);
    set_pipeline(
        &dir,
        &oneshot(
            "chatty",
            "i=1; while [ $i -le 4000 ]; do echo \"line $i of a chatty stage that fills the disk with its log output\"; i=$((i+1)); done; while [ ! -e /tmp/workingdir/go ]; do sleep 0.2; done; echo done",
        ),
    );
    // Accepted where this run keeps its state.
    accept_at(&root, d);
    let out = tmp.path().join("out.txt");
    let mut runner = bin()
        .env("STAGE2_STATE_ROOT", &root)
        .args(["run", "--headless", "--deployconfig", d])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    wait_for("the disk-full message", Duration::from_secs(60), || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("disk full")
    });
    let printed = std::fs::read_to_string(&out).unwrap();
    assert!(
        printed.contains(&root.display().to_string()),
        "names the disk\n{printed}"
    );
    assert!(
        runner.try_wait().unwrap().is_none(),
        "the run waits, the step runs on"
    );
    std::fs::remove_file(&filler).unwrap();
    std::fs::write(dir.join("go"), "").unwrap();
    let status = runner.wait().unwrap();
    let printed = std::fs::read_to_string(&out).unwrap();
    assert_eq!(status.code(), Some(0), "{printed}");
    assert!(printed.contains("disk space is back"), "{printed}");
    assert!(
        printed.contains("STEP"),
        "the summary is printed\n{printed}"
    );
    let sd = PathBuf::from(
        String::from_utf8(
            bin()
                .env("STAGE2_STATE_ROOT", &root)
                .args(["status", "--json", "--deployconfig", d])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .split("\"state_dir\": \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap(),
    );
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sd.join("state.json")).unwrap()).unwrap();
    let log = sd.join(step(&st, "chatty")["attempts"][0]["log"].as_str().unwrap());
    let saved = std::fs::read_to_string(&log).unwrap();
    assert_eq!(saved.lines().count(), 4001, "every line, none partial");
    assert!(
        saved
            .lines()
            .all(|l| l.ends_with("output") || l.ends_with("done"))
    );
    let leftovers: Vec<_> = walk(&sd)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.contains(".tmp") || name.ends_with(".reconcile")
        })
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    assert_eq!(step(&st, "chatty")["attempts"].as_array().unwrap().len(), 1);
    remove_containers_of(&dir);
}

/// `pipeline accept` where a run keeps its state under `root`.
fn accept_at(root: &Path, d: &str) {
    let o = bin()
        .env("STAGE2_STATE_ROOT", root)
        .args(["pipeline", "accept", "--yes", "--deployconfig", d])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn a_hangup_mid_window_detaches_and_the_window_still_ends_on_time() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dc");
    let d = dir.to_str().unwrap();
    prepare_demo(&dir, &["--window", "8", "--wait", "60"]);
    let runner = bin()
        .args(["run", "--headless", "--deployconfig", d])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The countdown runs once terraform has made the bootstrap VM (during the 60 s wait).
    wait_for("the window's countdown", Duration::from_secs(120), || {
        state_dir(&dir).join("state.json").exists() && {
            let st = state(&dir);
            let web = step(&st, "5.ign-webserver");
            web["status"] == "serving" && web["window_waiting_for"].is_null()
        }
    });
    let ends = step(&state(&dir), "5.ign-webserver")["window_ends_at"]
        .as_str()
        .unwrap()
        .to_string();
    let web_name = container_of(&dir, "5.ign-webserver");
    unsafe_kill(runner.id(), "HUP");
    let out = runner.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    // No stage2-tui runner is left; the window must still end on time.
    let ends = chrono::DateTime::parse_from_rfc3339(&ends).unwrap();
    let left = (ends.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    // A counting window ends 8 s after terraform, never at the engine's 2-hour limit.
    assert!(
        left < Duration::from_secs(30),
        "the window ends in {left:?}"
    );
    std::thread::sleep(left);
    wait_for(
        "ign-webserver to stop after its window",
        Duration::from_secs(15),
        || {
            let v = podman(&["inspect", "--format", "{{.State.Running}}", &web_name]);
            !v.status.success() || String::from_utf8_lossy(&v.stdout).trim() == "false"
        },
    );
    remove_containers_of(&dir);
}

fn unsafe_kill(pid: u32, sig: &str) {
    Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
}

#[test]
fn a_million_line_flood_stays_under_64_mb_headless_with_no_line_dropped() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    set_pipeline(
        &dir,
        &oneshot(
            "flood",
            "seq 1 1000000 | sed 's/^/flood line padded to look like terraform output number /'",
        ),
    );
    let out = tmp.path().join("out.txt");
    let rss = tmp.path().join("rss.txt");
    let status = timed_headless(&dir, &rss, &out).status().unwrap();
    assert!(status.success());
    let kib = peak_kib(&rss);
    assert_eq!(lines_of(&out, "flood | flood line"), 1_000_000);
    eprintln!(
        "peak RSS of run --headless over 1,000,000 lines: {} MB",
        kib / 1024
    );
    assert!(kib < 64 * 1024, "peak RSS {kib} KiB");
    remove_containers_of(&dir);
}

#[test]
fn check_and_run_read_files_alike_and_bad_numbers_are_refused() {
    let _g = engine_lock();
    let (_tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    let cfg = dir.join("config.json");
    let good = std::fs::read(&cfg).unwrap();
    type Spoil<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Spoil)> = vec![
        (
            "byte-order mark",
            Box::new(|| {
                let mut b = vec![0xEF, 0xBB, 0xBF];
                b.extend_from_slice(&good);
                std::fs::write(&cfg, b).unwrap();
            }),
        ),
        (
            "not UTF-8",
            Box::new(|| {
                let mut b = good.clone();
                b.insert(10, 0xFF);
                std::fs::write(&cfg, b).unwrap();
            }),
        ),
        (
            "a folder",
            Box::new(|| {
                std::fs::remove_file(&cfg).unwrap();
                std::fs::create_dir(&cfg).unwrap();
            }),
        ),
    ];
    for (what, make) in cases {
        make();
        let c = run(&["check", "--deployconfig", d]);
        assert_eq!(c.status.code(), Some(1), "check, {what}\n{}", text(&c));
        assert!(
            text(&c).contains(what),
            "check names it ({what})\n{}",
            text(&c)
        );
        let r = run(&["run", "--headless", "--deployconfig", d]);
        assert_ne!(r.status.code(), Some(0), "run, {what}\n{}", text(&r));
        assert!(
            text(&r).contains(what),
            "run names it ({what})\n{}",
            text(&r)
        );
        let _ = std::fs::remove_dir(&cfg);
        std::fs::write(&cfg, &good).unwrap();
    }
    // A control byte in a config value reaches the terminal made visible.
    let hostile = String::from_utf8(good.clone()).unwrap().replacen(
        "\"ocp4demo\"",
        "\"ocp4\\u001b]0;pwned\\u0007demo\"",
        1,
    );
    std::fs::write(&cfg, hostile).unwrap();
    let c = run(&["check", "--deployconfig", d]);
    assert!(!text(&c).contains('\u{1b}'), "{}", text(&c));
    std::fs::write(&cfg, &good).unwrap();
    // Numbers a pipeline file may not hold.
    set_pipeline(
        &dir,
        "[[step]]\nid = \"w\"\nkind = \"wait\"\nsecs = 10000000000000\n",
    );
    let r = run(&["run", "--headless", "--deployconfig", d]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(
        text(&r).contains("is too large (at most 604800 seconds"),
        "{}",
        text(&r)
    );
    // No run yet: status says so with exit 2.
    let (code, v) = status(&dir);
    assert_eq!(code, 2);
    assert_eq!(v["status"], "none");
    remove_containers_of(&dir);
}

#[test]
fn a_container_removed_behind_the_runners_back_fails_the_step_saying_so() {
    let _g = engine_lock();
    let (_tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    set_pipeline(&dir, &oneshot("victim", "sleep 60"));
    let runner = bin()
        .args(["run", "--headless", "--deployconfig", d])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_running(&dir, "victim");
    std::thread::sleep(Duration::from_secs(1));
    remove_containers_of(&dir);
    let out = runner.wait_with_output().unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("was removed while it ran"), "{all}");
}

#[test]
fn the_web_server_window_survives_an_api_restart_and_still_ends_on_time() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    let mut svc = Service::start(tmp.path());
    let (_dtmp, dir) = demo_dc(&["--window", "12", "--wait", "1"]);
    let d = dir.to_str().unwrap();
    let out = tmp.path().join("out.txt");
    let mut runner = bin()
        .env("STAGE2_ENGINE", svc.url())
        .args(["run", "--headless", "--deployconfig", d])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    wait_for("the window to open", Duration::from_secs(120), || {
        state_dir(&dir).join("state.json").exists()
            && step(&state(&dir), "5.ign-webserver")["status"] == "serving"
    });
    svc.kill();
    std::thread::sleep(Duration::from_secs(3));
    svc.restart();
    let status = runner.wait().unwrap();
    let printed = std::fs::read_to_string(&out).unwrap();
    assert_eq!(status.code(), Some(0), "{printed}");
    assert!(printed.contains("engine unreachable"), "{printed}");
    let st = state(&dir);
    let web = step(&st, "5.ign-webserver");
    assert_eq!(web["status"], "succeeded", "{printed}");
    assert_eq!(web["attempts"].as_array().unwrap().len(), 1, "served once");
    for s in st["steps"].as_array().unwrap() {
        assert_eq!(
            s["attempts"].as_array().unwrap().len(),
            1,
            "{} ran twice",
            s["id"]
        );
    }
    let gone = podman(&[
        "inspect",
        "--format",
        "{{.State.Running}}",
        &container_of(&dir, "5.ign-webserver"),
    ]);
    assert!(
        !gone.status.success() || String::from_utf8_lossy(&gone.stdout).trim() == "false",
        "the window was closed"
    );
    remove_containers_of(&dir);
}

#[test]
fn a_disk_that_fills_as_a_step_ends_holds_the_run_instead_of_ending_it() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("state-fs");
    let _tmpfs = Tmpfs::mount(&root);
    let dir = tmp.path().join("dc");
    let d = dir.to_str().unwrap();
    prepare_demo(&dir, &[]);
    // A step that prints nothing: the first write after the disk fills is the state saved at
    // its end.
    set_pipeline(
        &dir,
        &format!(
            "{}\n{}",
            oneshot(
                "quiet",
                "while [ ! -e /tmp/workingdir/go ]; do sleep 0.2; done"
            ),
            oneshot("next", "echo next ran")
        ),
    );
    accept_at(&root, d);
    let out = tmp.path().join("out.txt");
    let mut runner = bin()
        .env("STAGE2_STATE_ROOT", &root)
        .args(["run", "--headless", "--deployconfig", d])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    wait_for("quiet to run", Duration::from_secs(60), || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("==> quiet")
    });
    // Fill the disk to the last byte, then let the step end.
    let filler = root.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        while f.write_all(b"x").is_ok() {}
    }
    std::fs::write(dir.join("go"), "").unwrap();
    wait_for("the disk-full hold", Duration::from_secs(60), || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("disk full")
    });
    std::fs::remove_file(&filler).unwrap();
    let status = runner.wait().unwrap();
    let printed = std::fs::read_to_string(&out).unwrap();
    assert_eq!(status.code(), Some(0), "{printed}");
    // Held (before, the run ended here: exit 2, "cannot save the run state"), then went on.
    assert!(printed.contains("disk space is back"), "{printed}");
    assert!(printed.contains("next  | next ran"), "{printed}");
    remove_containers_of(&dir);
}
