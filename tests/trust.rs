//! Trust, second pass (issue 18), against the real engine: nothing a stage container can plant is
//! adopted, no state file reaches a path outside the state folder, one deployconfig has one
//! identity, and a pipeline file runs only once accepted.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// Every file under `root` with its bytes and mode, and every folder with its mode: a decoy tree
/// that must not change.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    fn walk(p: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, u32)>) {
        let m = std::fs::symlink_metadata(p).unwrap();
        if m.is_dir() {
            out.insert(p.to_path_buf(), (Vec::new(), m.mode()));
            for e in std::fs::read_dir(p).unwrap() {
                walk(&e.unwrap().path(), out);
            }
        } else {
            out.insert(p.to_path_buf(), (std::fs::read(p).unwrap(), m.mode()));
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &mut out);
    out
}

/// A decoy tree standing in for /etc: a 0640 `shadow`, a 0600 `secret`, an empty `profile.d/`
/// (0755), each with content that must never be read, truncated, chmodded or written.
fn decoy(tmp: &Path) -> PathBuf {
    let d = tmp.join("decoy");
    std::fs::create_dir_all(d.join("profile.d")).unwrap();
    std::fs::set_permissions(d.join("profile.d"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(d.join("shadow"), "root:DECOY-SHADOW-HASH:19000::::::\n").unwrap();
    std::fs::set_permissions(d.join("shadow"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(d.join("secret"), "DECOY-PRIVATE-KEY\n").unwrap();
    std::fs::set_permissions(d.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    d
}

fn attempt(n: u32, log: &str, at: &str) -> Value {
    json!({"n": n, "started_at": at, "container": "trust-x", "log": log})
}

/// A state as a hostile container would write it, with `attempts` on a running wait step and
/// on 4.run-installer.
fn planted_state(run_id: &str, attempts: Vec<Value>) -> Value {
    json!({
        "version": 1,
        "run_id": run_id,
        "created_at": "2026-11-30T08:00:00Z",
        "outcome": "in-progress",
        "steps": [
            {"id": "4.run-installer", "status": "failed", "attempts": attempts.clone()},
            {"id": "wait-svcs", "status": "running", "attempts": attempts},
        ]
    })
}

/// `stage2-tui bundle --out` into `tmp`; the extracted files' text, all of it.
fn bundle_text(dir: &Path, tmp: &Path, name: &str) -> (std::process::Output, String) {
    let out = tmp.join(format!("{name}.tar.gz"));
    let o = run(&[
        "bundle",
        "--deployconfig",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let x = tmp.join(format!("{name}-x"));
    std::fs::create_dir_all(&x).unwrap();
    if out.exists() {
        let ok = std::process::Command::new("tar")
            .args(["xzf", out.to_str().unwrap(), "-C", x.to_str().unwrap()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
    let mut all = String::new();
    fn walk(p: &Path, all: &mut String) {
        for e in std::fs::read_dir(p).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, all);
            } else {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
            }
        }
    }
    walk(&x, &mut all);
    (o, all)
}

fn quick_pipeline(dir: &Path, name: &str) {
    set_pipeline(dir, &oneshot(name, "echo quick step done"));
}

type Snapshot = BTreeMap<PathBuf, (Vec<u8>, u32)>;

/// A demo deployconfig with a quick one-step pipeline, and a decoy tree beside it with its
/// snapshot.
fn planted_setup(what: &str) -> (tempfile::TempDir, PathBuf, PathBuf, Snapshot, String) {
    let (tmp, dir) = demo_dc(&[]);
    let decoy = decoy(tmp.path());
    let before = snapshot(&decoy);
    let name = format!("trust-{what}-{}", std::process::id());
    quick_pipeline(&dir, &name);
    (tmp, dir, decoy, before, name)
}

#[test]
fn a_state_planted_in_the_deployconfig_is_never_adopted() {
    let _g = engine_lock();
    let (tmp, dir, decoy, before, _name) = planted_setup("legacy");
    let d = dir.to_str().unwrap();
    // What an older stage2-tui kept in the deployconfig, where any stage can write it.
    let legacy = dir.join(".stage2-tui");
    std::fs::create_dir_all(legacy.join("logs")).unwrap();
    let s = planted_state(
        "20261130-080000-0001",
        vec![attempt(
            1,
            &decoy.join("shadow").to_string_lossy(),
            "2026-11-30T08:00:00Z",
        )],
    );
    std::fs::write(legacy.join("state.json"), s.to_string()).unwrap();
    std::os::unix::fs::symlink(decoy.join("secret"), legacy.join("logs/x.log")).unwrap();

    // status: no run (the planted one is not this deployconfig's run).
    let (code, st) = status(&dir);
    assert_eq!(code, 2, "{st}");
    assert_eq!(st["status"], "none");
    // A run starts afresh and completes; the bundle carries nothing of the decoy.
    let o = run(&["run", "--headless", "--deployconfig", d]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (code, st) = status(&dir);
    assert_eq!(code, 0);
    assert_ne!(st["run"], "20261130-080000-0001");
    let (o, all) = bundle_text(&dir, tmp.path(), "legacy");
    assert!(o.status.success(), "{}", text(&o));
    assert!(!all.contains("DECOY"), "the bundle holds a decoy file");
    assert_eq!(
        snapshot(&decoy),
        before,
        "a file outside the state folder changed"
    );
    assert!(
        legacy.join("state.json").is_file(),
        "the planted file is left alone"
    );
    remove_containers_of(&dir);
}

#[test]
fn a_hostile_private_state_is_refused_and_touches_nothing_outside_its_folder() {
    let _g = engine_lock();
    let (tmp, dir, decoy, before, name) = planted_setup("private");
    let d = dir.to_str().unwrap();
    let sd = state_dir(&dir);
    std::fs::create_dir_all(&sd).unwrap();
    let shadow = decoy.join("shadow").to_string_lossy().into_owned();
    let up = "../".repeat(sd.components().count() + 2);
    let profile = format!("logs/r/{up}{}", decoy.join("profile.d/x.sh").display());
    let far: Vec<Value> = (1..=700)
        .map(|n| {
            let t = if n % 2 == 0 {
                "9999-12-31T23:59:59Z"
            } else {
                "0001-01-01T00:00:00Z"
            };
            attempt(n, &format!("logs/r/x.{n}.log"), t)
        })
        .collect();
    let cases: Vec<(&str, Value)> = vec![
        (
            "an absolute log path",
            planted_state("r1", vec![attempt(1, &shadow, "2026-11-30T08:00:00Z")]),
        ),
        (
            "a log path climbing out with ..",
            planted_state("r2", vec![attempt(1, &profile, "2026-11-30T08:00:00Z")]),
        ),
        (
            "a run id climbing out",
            planted_state(
                &format!("{up}{}", decoy.display()),
                vec![attempt(1, "logs/r/x.1.log", "2026-11-30T08:00:00Z")],
            ),
        ),
        ("700 attempts at ±8000 years", planted_state("r4", far)),
    ];
    let state_file = sd.join("state.json");
    for (what, s) in &cases {
        std::fs::write(&state_file, s.to_string()).unwrap();
        let o = run(&["status", "--json", "--deployconfig", d]);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", text(&o));
        assert!(text(&o).contains("is damaged"), "{what}: {}", text(&o));
        let o = run(&["run", "--headless", "--deployconfig", d]);
        assert_eq!(o.status.code(), Some(2), "{what}: {}", text(&o));
        assert!(text(&o).contains("is damaged"), "{what}: {}", text(&o));
        let (o, all) = bundle_text(&dir, tmp.path(), "private");
        assert!(o.status.success(), "{what}: {}", text(&o));
        assert!(
            !all.contains("DECOY"),
            "{what}: the bundle holds a decoy file"
        );
        assert_eq!(
            snapshot(&decoy),
            before,
            "{what}: a file outside the state folder changed"
        );
    }

    // A named pipe as state.json: status and bundle answer at once instead of hanging.
    std::fs::remove_file(&state_file).unwrap();
    let fifo = std::ffi::CString::new(state_file.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let started = Instant::now();
    let o = run(&["status", "--json", "--deployconfig", d]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("named pipe"), "{}", text(&o));
    let (o, _) = bundle_text(&dir, tmp.path(), "fifo");
    assert!(o.status.success(), "{}", text(&o));
    assert!(started.elapsed() < Duration::from_secs(30));
    // A 1 GiB sparse state.json is not read.
    std::fs::remove_file(&state_file).unwrap();
    let f = std::fs::File::create(&state_file).unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    let o = run(&["status", "--json", "--deployconfig", d]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("bytes, more than"), "{}", text(&o));
    std::fs::remove_file(&state_file).unwrap();

    // Back to a real run: a valid state whose log became a 1 GiB sparse file is bundled by
    // its last 64 MiB, not read whole.
    let o = run(&["run", "--headless", "--deployconfig", d]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let st = state(&dir);
    let log = sd.join(step(&st, &name)["attempts"][0]["log"].as_str().unwrap());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let out = tmp.path().join("sparse.tar.gz");
    let o = run(&[
        "bundle",
        "--deployconfig",
        d,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let listing = std::process::Command::new("tar")
        .args(["tzvf", out.to_str().unwrap()])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let size: u64 = listing
        .lines()
        .find(|l| l.contains(&format!("{name}.1.log")))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no log in {listing}"));
    assert_eq!(size, 64 << 20, "{listing}");
    assert_eq!(snapshot(&decoy), before);
    remove_containers_of(&dir);
}

#[test]
fn one_deployconfig_has_one_identity_however_it_is_spelled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dc");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&dir, tmp.path().join("link")).unwrap();
    let want = state_dir(&dir);
    for spelling in [
        format!("{}/", dir.display()),
        format!("{}/.", dir.display()),
        format!("{}/../dc//", dir.display()),
        format!("{}/link", tmp.path().display()),
    ] {
        let (code, st) = status(Path::new(&spelling));
        assert_eq!(code, 2);
        assert_eq!(
            st["state_dir"].as_str().map(PathBuf::from),
            Some(want.clone()),
            "{spelling}"
        );
        assert_eq!(
            st["deployconfig"],
            dir.canonicalize().unwrap().to_str().unwrap(),
            "{spelling}"
        );
    }
    // The unit names the canonical path, whatever was typed.
    let root = tmp.path().join("root");
    let o = run(&[
        "install-service",
        "--dry-run",
        "--root",
        root.to_str().unwrap(),
        "--deployconfig",
        &format!("{}/", dir.display()),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "deployconfig {})",
            dir.canonicalize().unwrap().display()
        )),
        "{}",
        text(&o)
    );
}

#[test]
fn install_service_refuses_a_binary_someone_else_can_replace() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("stage2-tui");
    std::fs::copy(env!("CARGO_BIN_EXE_stage2-tui"), &exe).unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Owned by a user (nobody) instead of root.
    let chown = std::process::Command::new("chown")
        .args(["65534", exe.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(chown.success());
    let root = tmp.path().join("root");
    let o = std::process::Command::new(&exe)
        .args(["install-service", "--root", root.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("belongs to uid 65534"), "{}", text(&o));
    assert!(!root.join("etc/systemd/system/stage2-tui.service").exists());
}

#[test]
fn a_pipeline_file_runs_only_once_accepted_and_again_after_any_change() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    let name = format!("trust-accept-{}", std::process::id());
    quick_pipeline(&dir, &name);
    let o = run(&["run", "--headless", "--deployconfig", d]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A container (here: the test) rewrites the file after a completed run: the next run,
    // --from included, refuses it and says what it changes and how to accept it.
    let victim = tmp.path().join("written-by-root");
    let evil = format!(
        "{}mounts = [{{ source = \"/\", target = \"/host\", options = \"rw\" }}]\n",
        oneshot(&name, &format!("echo pwned > /host{}", victim.display()))
    );
    std::fs::write(dir.join("stage2-pipeline.toml"), &evil).unwrap();
    for args in [
        vec!["run", "--headless", "--from", name.as_str()],
        vec!["run", "--headless"],
    ] {
        let mut a = args.clone();
        a.extend(["--deployconfig", d]);
        let o = run(&a);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{t}");
        assert!(t.contains("stage2-pipeline.toml is not accepted"), "{t}");
        assert!(t.contains("mounts"), "{t}");
        assert!(t.contains("/host"), "{t}");
        assert!(
            t.contains(&format!(
                "stage2-tui pipeline accept --deployconfig '{}'",
                dir.display()
            )),
            "{t}"
        );
    }
    assert!(!victim.exists());
    // `pipeline accept` without --yes and without a typed yes accepts nothing.
    let o = bin()
        .args(["pipeline", "accept", "--deployconfig", d])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("step"), "{}", text(&o));
    let o = run(&["run", "--headless", "--deployconfig", d]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // Accepted, it runs (the operator's choice); changed again by one byte, it is refused again.
    let safe = oneshot(&name, "echo accepted");
    std::fs::write(dir.join("stage2-pipeline.toml"), &safe).unwrap();
    accept_pipeline(&dir);
    let o = run(&["run", "--headless", "--restart", "--deployconfig", d]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::write(dir.join("stage2-pipeline.toml"), format!("{safe}\n")).unwrap();
    let o = run(&["run", "--headless", "--restart", "--deployconfig", d]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    remove_containers_of(&dir);
}

#[test]
fn a_run_never_touches_another_deployconfigs_container_nor_a_storage_only_one() {
    let _g = engine_lock();
    let name = format!("trust-shared-{}", std::process::id());
    // Deployconfig A runs a step that keeps its container busy.
    let (_ta, a) = demo_dc(&[]);
    set_pipeline(&a, &oneshot(&name, "sleep 60"));
    let mut driver = bin()
        .args(["run", "--headless", "--deployconfig", a.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_running(&a, &name);
    let id = step(&state(&a), &name)["attempts"][0]["container_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Deployconfig B's pipeline gives a step the same container name, as a service (which
    // replaces its own running containers) and as a oneshot.
    let (_tb, b) = demo_dc(&[]);
    for kind in ["service", "oneshot"] {
        let toml = match kind {
            "service" => oneshot(&name, "sleep 5")
                .replace("kind = \"oneshot\"", "kind = \"service\"\nttl_secs = 5"),
            _ => oneshot(&name, "echo b"),
        };
        set_pipeline(&b, &toml);
        let o = run(&[
            "run",
            "--headless",
            "--restart",
            "--deployconfig",
            b.to_str().unwrap(),
        ]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{kind}: {t}");
        assert!(
            t.contains(&format!(
                "container {} belongs to the run",
                container_name(&name)
            )) && t.contains(&format!("of another deployconfig, {}", a.display()))
                && t.contains("running now"),
            "{kind}: {t}"
        );
        // A's container is the same one, still running.
        let v = podman(&[
            "inspect",
            "--format",
            "{{.Id}} {{.State.Running}}",
            &container_name(&name),
        ]);
        assert_eq!(
            String::from_utf8_lossy(&v.stdout).trim(),
            format!("{id} true"),
            "{kind}"
        );
    }
    let _ = driver.kill();
    let _ = driver.wait();
    remove_containers_of(&a);

    // A container that exists only in podman's storage (buildah's) holding a stage's name is
    // not "the leftover of an interrupted create": it is left alone, and the error says so.
    let image = format!("localhost/stage2-demo/{DEMO_IMAGE}:demo");
    let o = std::process::Command::new("buildah")
        .args(["from", "--name", &container_name(&name), &image])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "buildah from: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    set_pipeline(&b, &oneshot(&name, "echo b"));
    let o = run(&[
        "run",
        "--headless",
        "--restart",
        "--deployconfig",
        b.to_str().unwrap(),
    ]);
    let t = text(&o);
    let listed = std::process::Command::new("buildah")
        .args(["containers", "--format", "{{.ContainerName}}"])
        .output()
        .unwrap();
    let still = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .any(|l| l == container_name(&name));
    let _ = std::process::Command::new("buildah")
        .args(["rm", &container_name(&name)])
        .output();
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(!t.contains("removed the leftover"), "{t}");
    assert!(still, "the buildah container was removed\n{t}");
}

#[test]
fn run_refuses_what_check_refuses_unless_forced() {
    let _g = engine_lock();
    let (_tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    let name = format!("trust-valid-{}", std::process::id());
    quick_pipeline(&dir, &name);
    let good = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_str(&good).unwrap();
        f(&mut v);
        std::fs::write(
            dir.join("config.json"),
            serde_json::to_string_pretty(&v).unwrap(),
        )
        .unwrap();
    };
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "masters[0].ipaddress",
            Box::new(|v: &mut Value| v["masters"][0]["ipaddress"] = json!("10.50.1.999")),
        ),
        (
            "imagetag",
            Box::new(|v: &mut Value| v["imagetag"] = json!(4.14)),
        ),
    ];
    for (path, f) in &cases {
        edit(f.as_ref());
        let c = run(&["check", "--deployconfig", d]);
        assert_eq!(c.status.code(), Some(1), "{path}: {}", text(&c));
        assert!(text(&c).contains(path), "{path}: {}", text(&c));
        let o = run(&["run", "--headless", "--deployconfig", d]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{path}: {t}");
        assert!(
            t.contains("nothing started") && t.contains(path) && t.contains("--force"),
            "{t}"
        );
        assert_eq!(status(&dir).0, 2, "{path}: a run was started");
    }
    // --force runs anyway (an address the stages do not use here).
    edit(cases[0].1.as_ref());
    let o = run(&["run", "--headless", "--force", "--deployconfig", d]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    remove_containers_of(&dir);
}

/// A raw control-socket client, as a hostile or broken peer would be.
struct Peer {
    r: std::io::BufReader<std::os::unix::net::UnixStream>,
    w: std::os::unix::net::UnixStream,
}

impl Peer {
    fn connect(dir: &Path) -> Self {
        let s =
            std::os::unix::net::UnixStream::connect(state_dir(dir).join("control.sock")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut p = Peer {
            r: std::io::BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        // A refused peer may find the connection closed already: the refusal is still there.
        use std::io::Write;
        let hello = json!({"type": "hello", "proto": stage2_tui::control::PROTO, "version": "test", "tty": null});
        let _ = writeln!(p.w, "{hello}");
        p
    }
    fn send(&mut self, v: &Value) {
        use std::io::Write;
        writeln!(self.w, "{v}").unwrap();
    }
    fn first_line(&mut self) -> String {
        use std::io::BufRead;
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l
    }
}

fn window_end(dir: &Path, step_id: &str) -> chrono::DateTime<chrono::Utc> {
    step(&state(dir), step_id)["window_ends_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_control_socket_bounds_every_request_and_the_driver_still_exits() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let pid = std::process::id();
    let (web, long) = (format!("trust-web-{pid}"), format!("trust-long-{pid}"));
    let service = oneshot(&web, "sleep 600")
        .replace("kind = \"oneshot\"", "kind = \"service\"\nttl_secs = 60");
    set_pipeline(&dir, &format!("{service}\n{}", oneshot(&long, "sleep 600")));
    let out = tmp.path().join("driver.txt");
    let mut driver = bin()
        .args(["run", "--headless", "--deployconfig", dir.to_str().unwrap()])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_running(&dir, &long);
    let before = window_end(&dir, &web);
    let mut p = Peer::connect(&dir);
    assert!(p.first_line().contains("\"hello\""));
    // 2^64 - 100 seconds: bounded, never wrapped round to a shorter window.
    p.send(&json!({"type": "command", "command": {"extend_window": {"step": web, "secs": u64::MAX - 100}}}));
    wait_for("the extension", Duration::from_secs(20), || {
        window_end(&dir, &web) > before
    });
    let extended = window_end(&dir, &web);
    assert!(
        extended <= before + chrono::Duration::seconds(60 + 1800),
        "{extended}"
    );
    // 10^15 seconds: no panic, the window is where it was.
    p.send(&json!({"type": "command", "command": {"extend_window": {"step": web, "secs": 1_000_000_000_000_000u64}}}));
    std::thread::sleep(Duration::from_secs(1));
    assert!(driver.try_wait().unwrap().is_none(), "the driver died");
    assert_eq!(window_end(&dir, &web), extended);
    // A request line of 8 MiB with no end: the connection is closed, the driver's memory stays.
    let mut big = Peer::connect(&dir);
    big.first_line();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..8 {
        use std::io::Write;
        if big.w.write_all(&chunk).is_err() {
            break;
        }
    }
    wait_for(
        "the long line's connection to close",
        Duration::from_secs(20),
        || {
            use std::io::Read;
            let mut b = [0u8; 65536];
            matches!(big.r.read(&mut b), Ok(0) | Err(_))
        },
    );
    let rss: u64 = std::fs::read_to_string(format!("/proc/{}/status", driver.id()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    assert!(rss < 64 * 1024, "driver peak RSS {rss} kB");
    // More terminals than the driver takes are told so, not left hanging.
    let mut many: Vec<_> = (0..31).map(|_| Peer::connect(&dir)).collect();
    for m in &mut many {
        assert!(m.first_line().contains("\"hello\""));
    }
    let mut extra = Peer::connect(&dir);
    let l = extra.first_line();
    assert!(
        l.contains("refused") && l.contains("attached already"),
        "{l}"
    );
    drop(many);
    // Stop the running step, then end the window: the driver exits (1: a stopped run).
    p.send(&json!({"type": "command", "command": "stop"}));
    wait_for("the step to stop", Duration::from_secs(30), || {
        step(&state(&dir), &long)["status"] == "stopped"
    });
    p.send(&json!({"type": "command", "command": {"end_window": {"step": web}}}));
    let started = Instant::now();
    let code = loop {
        if let Some(s) = driver.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the driver did not exit:\n{}",
            std::fs::read_to_string(&out).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, Some(1), "{}", std::fs::read_to_string(&out).unwrap());
    remove_containers_of(&dir);
}

#[test]
fn three_attached_terminals_that_never_read_keep_the_driver_under_64_mb_and_catch_up() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let name = format!("trust-flood-{}", std::process::id());
    let after = format!("{name}-after");
    let flood = "sleep 2; seq 1 1000000 | sed 's/^/flood line padded to look like terraform output number /'";
    set_pipeline(
        &dir,
        &format!("{}\n{}", oneshot(&name, flood), oneshot(&after, "sleep 8")),
    );
    let out = tmp.path().join("out.txt");
    let rss = tmp.path().join("rss.txt");
    let mut driver = timed_headless(&dir, &rss, &out).spawn().unwrap();
    wait_running(&dir, &name);
    wait_for("the control socket", Duration::from_secs(20), || {
        state_dir(&dir).join("control.sock").exists()
    });
    // Three terminals attach and do not read (Ctrl-Z, a frozen SSH session) during the flood.
    let mut stalled: Vec<Peer> = (0..3).map(|_| Peer::connect(&dir)).collect();
    wait_running(&dir, &after);
    // Reading again, each is told to catch up from the run state and the log files (a resync)
    // instead of being fed every line it missed.
    for p in &mut stalled {
        use std::io::BufRead;
        let mut resync = false;
        let mut l = String::new();
        while !resync && p.r.read_line(&mut l).unwrap_or(0) > 0 {
            resync |= l.contains("\"resync\"");
            l.clear();
        }
        assert!(resync, "no resync sent to a terminal that fell behind");
    }
    assert!(
        driver.wait().unwrap().success(),
        "{}",
        std::fs::read_to_string(&out).unwrap_or_default()
    );
    let kib = peak_kib(&rss);
    eprintln!(
        "peak RSS of the driver with 3 stalled terminals over 1,000,000 lines: {} MB",
        kib / 1024
    );
    assert!(kib < 64 * 1024, "peak RSS {kib} KiB");
    remove_containers_of(&dir);
}

#[test]
fn a_secret_is_masked_in_every_form_it_takes_everywhere_it_goes() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    let secret = "p@ss\"w\\rd-Zq9 x";
    let mut secrets: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("secrets.json")).unwrap()).unwrap();
    secrets["vsphere_password"] = json!(secret);
    std::fs::write(
        dir.join("secrets.json"),
        serde_json::to_string_pretty(&secrets).unwrap(),
    )
    .unwrap();
    let forms = stage2_tui::config::encoded_forms(secret);
    let split = "p@ss\x1b[1m\"w\\rd-Zq9 x";
    let mut printed = format!("raw {secret}\nsplit {split}\n");
    for f in &forms {
        printed.push_str(&format!("form {f}\n"));
    }
    // The last line carries it too: it goes into the step's error and the diagnosis.
    printed.push_str(&format!("Error: login failed for {secret}\n"));
    std::fs::write(dir.join("forms.txt"), &printed).unwrap();
    let name = format!("trust-mask-{}", std::process::id());
    set_pipeline(
        &dir,
        &oneshot(
            &name,
            "cat /tmp/workingdir/forms.txt; cat /tmp/workingdir/forms.txt >&2; exit 3",
        ),
    );
    let o = run(&["run", "--headless", "--deployconfig", d]);
    let headless = text(&o);
    assert_eq!(o.status.code(), Some(1), "{headless}");
    let status_text = run(&["status", "--json", "--deployconfig", d]);
    let state_text = std::fs::read_to_string(state_dir(&dir).join("state.json")).unwrap();
    let (bo, bundle) = bundle_text(&dir, tmp.path(), "mask");
    assert!(bo.status.success(), "{}", text(&bo));
    let mut needles: Vec<String> = forms.clone();
    needles.push(secret.into());
    needles.push("rd-Zq9".into());
    for (what, hay) in [
        ("headless output", headless.as_str()),
        ("status --json", &text(&status_text)),
        ("state.json", &state_text),
        ("the bundle", &bundle),
    ] {
        for n in &needles {
            assert!(!hay.contains(n.as_str()), "{what} shows {n:?}:\n{hay}");
        }
    }
    assert!(
        headless.contains("raw ••••••") && headless.contains("split ••••••"),
        "{headless}"
    );
    // The raw log keeps the exact bytes (root only).
    let st = state(&dir);
    let log = state_dir(&dir).join(step(&st, &name)["attempts"][0]["log"].as_str().unwrap());
    assert!(std::fs::read_to_string(log).unwrap().contains(secret));

    // A secrets.json that does not parse: the bundle masks every string it finds in it and
    // says so, instead of claiming every value is masked.
    let broken = serde_json::to_string_pretty(&secrets)
        .unwrap()
        .replacen(",", "", 1);
    std::fs::write(dir.join("secrets.json"), broken).unwrap();
    let (bo, bundle) = bundle_text(&dir, tmp.path(), "broken");
    assert!(bo.status.success(), "{}", text(&bo));
    assert!(
        text(&bo).contains("secrets.json does not parse"),
        "{}",
        text(&bo)
    );
    assert!(
        !text(&bo).contains("every secrets.json value is masked"),
        "{}",
        text(&bo)
    );
    for n in &needles {
        assert!(!bundle.contains(n.as_str()), "the bundle shows {n:?}");
    }
    remove_containers_of(&dir);
}

#[test]
fn a_closed_pipe_never_panics_and_a_guard_leaves_once_its_container_is_gone() {
    use std::io::BufRead;
    let _g = engine_lock();
    let (_tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    let pid = std::process::id();
    let (web, quick) = (format!("trust-guard-{pid}"), format!("trust-pipe-{pid}"));
    set_pipeline(&dir, &oneshot(&quick, "seq 1 20000"));
    // `run --headless | head -1`: the reader goes away after one line; the run completes.
    let mut child = bin()
        .args(["run", "--headless", "--deployconfig", d])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(step(&state(&dir), &quick)["status"], "succeeded");
    // `status --json | head -c 1`.
    let mut child = bin()
        .args(["status", "--json", "--deployconfig", d])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(0));

    // A service with a long window; its driver is killed, so its guard takes over the window.
    let service = oneshot(&web, "sleep 600")
        .replace("kind = \"oneshot\"", "kind = \"service\"\nttl_secs = 600");
    set_pipeline(
        &dir,
        &format!("{service}\n{}", oneshot(&format!("{quick}-2"), "sleep 600")),
    );
    let mut driver = bin()
        .args(["run", "--headless", "--restart", "--deployconfig", d])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_running(&dir, &format!("{quick}-2"));
    let sd = state_dir(&dir);
    let guards = || {
        let o = std::process::Command::new("pgrep")
            .args(["-f", &format!("window-guard --state-dir {}", sd.display())])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).lines().count()
    };
    wait_for("the window guard", Duration::from_secs(20), || {
        guards() == 1
    });
    let log = sd.join("window-guard.log");
    assert_eq!(std::fs::metadata(&log).unwrap().mode() & 0o777, 0o600);
    driver.kill().unwrap();
    driver.wait().unwrap();
    remove_containers_of(&dir);
    // Its container is gone: the guard leaves within seconds, not at the window's end.
    wait_for("the guard to leave", Duration::from_secs(30), || {
        guards() == 0
    });
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("container is gone")
    );
}

#[test]
fn stage2_tuis_own_url_checks_are_not_evidence_that_the_vm_fetched_its_ignition() {
    let _g = engine_lock();
    let (_tmp, dir) = demo_dc(&[]);
    std::fs::write(
        dir.join("bootstrap.ign"),
        "{\"ignition\":{\"version\":\"3.2.0\"}}\n",
    )
    .unwrap();
    let port = free_port();
    let web = container_name("web");
    set_pipeline(
        &dir,
        &format!(
            "[[step]]\nid = \"web\"\nkind = \"service\"\nimage = \"5.ign-webserver\"\nname = \"{web}\"\nnetwork = \"host\"\n\
             mounts = [{{ source = \"{{deployconfig}}/bootstrap.ign\", target = \"/usr/share/nginx/html/bootstrap.ign\" }}]\n\
             env = [\"PORT={port}\"]\nttl_secs = 60\nurl = \"http://127.0.0.1:{port}/bootstrap.ign\"\n\n{}",
            oneshot("hold", "sleep 30")
        ),
    );
    let mut driver = bin()
        .args(["run", "--headless", "--deployconfig", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_running(&dir, "hold");
    let url = format!("http://127.0.0.1:{port}/bootstrap.ign");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The dashboard's check, three times: the server answers, and logs it.
    for _ in 0..3 {
        let c = rt.block_on(stage2_tui::tui::check_url(&url));
        assert!(
            matches!(c, stage2_tui::app::UrlCheck::Answered { status: 200, .. }),
            "{c:?}"
        );
    }
    let log = state_dir(&dir).join(
        step(&state(&dir), "web")["attempts"][0]["log"]
            .as_str()
            .unwrap(),
    );
    let texts = || -> Vec<String> {
        std::fs::read(&log)
            .unwrap_or_default()
            .split(|b| *b == b'\n')
            .filter_map(stage2_tui::logformat::parse_saved_line)
            .map(|(_, _, t)| String::from_utf8_lossy(t).into_owned())
            .collect()
    };
    wait_for(
        "the checks in the web server's log",
        Duration::from_secs(10),
        || {
            texts()
                .iter()
                .filter(|l| l.contains("stage2-tui-url-check"))
                .count()
                == 3
        },
    );
    let fetches =
        stage2_tui::pipeline::diagnosis::bootstrap_fetches(texts().iter().map(String::as_str));
    assert!(fetches.is_empty(), "{fetches:?}");
    // The bootstrap VM's fetch (a GET) counts.
    http_get(port, "/bootstrap.ign");
    wait_for("the VM's fetch in the log", Duration::from_secs(10), || {
        stage2_tui::pipeline::diagnosis::bootstrap_fetches(texts().iter().map(String::as_str)).len()
            == 1
    });
    let _ = driver.kill();
    let _ = driver.wait();
    remove_containers_of(&dir);
}

#[test]
fn status_follows_the_container_not_only_the_recorded_state() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    let service = oneshot("web", "sleep 600")
        .replace("kind = \"oneshot\"", "kind = \"service\"\nttl_secs = 600");
    set_pipeline(
        &dir,
        &format!("{service}\n{}", oneshot("hold", "sleep 600")),
    );
    let mut driver = bin()
        .args(["run", "--headless", "--deployconfig", d])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_running(&dir, "hold");
    driver.kill().unwrap();
    driver.wait().unwrap();
    // With no stage2-tui watching, the web server exits and the step's container goes.
    podman(&["stop", "-t", "1", &container_name("web")]);
    podman(&["rm", "-f", &container_name("hold")]);
    let (code, st) = status(&dir);
    assert_eq!(code, 0);
    let web = step(&st, "web");
    assert_eq!(web["recorded_status"], "serving", "{st}");
    assert_eq!(web["status"], "exited", "{st}");
    assert_eq!(step(&st, "hold")["status"], "gone", "{st}");
    // The bundle's status says the same.
    let (o, all) = bundle_text(&dir, tmp.path(), "follows");
    assert!(o.status.success(), "{}", text(&o));
    assert!(all.contains("\"status\": \"exited\""), "{all}");
    remove_containers_of(&dir);
}

#[test]
fn the_tui_shows_what_an_unaccepted_pipeline_changes_and_only_a_typed_yes_accepts_it() {
    use common::tmux::{Tmux, tui_cmd};
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    let name = format!("trust-ask-{}", std::process::id());
    std::fs::write(
        dir.join("stage2-pipeline.toml"),
        oneshot(&name, "echo asked"),
    )
    .unwrap();
    // Enter alone refuses: nothing runs.
    let t = Tmux::start(
        "ask-no",
        &tui_cmd(tmp.path(), &format!("run --deployconfig {d}")),
    );
    let s = t.wait_for("type yes:", Duration::from_secs(30));
    assert!(
        s.contains("accepted yet") && s.contains(&format!("step {name}: added")),
        "{s}"
    );
    t.keys(&["Enter"]);
    t.wait_for("was not accepted; nothing ran", Duration::from_secs(10));
    assert_eq!(status(&dir).0, 2, "a run started");
    drop(t);
    // A typed yes accepts exactly that file, and the run goes.
    let t = Tmux::start(
        "ask-yes",
        &tui_cmd(tmp.path(), &format!("run --deployconfig {d}")),
    );
    t.wait_for("type yes:", Duration::from_secs(30));
    t.keys(&["yes", "Enter"]);
    t.wait_for("stage 2 completed successfully", Duration::from_secs(60));
    t.keys(&["q"]);
    let o = run(&["pipeline", "accept", "--deployconfig", d]);
    assert!(text(&o).contains("is already accepted"), "{}", text(&o));
    remove_containers_of(&dir);
}

/// User plus system CPU time of a process so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime): 12 and 13 after the command name.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

#[test]
fn a_driver_out_of_file_descriptors_backs_off_and_finishes_its_run() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    set_pipeline(
        &dir,
        &format!(
            "{}\n{}",
            oneshot("hold", "sleep 6"),
            oneshot("after", "echo after")
        ),
    );
    let out = tmp.path().join("out.txt");
    let mut driver = std::process::Command::new("prlimit")
        .arg("--nofile=64:64")
        .arg(env!("CARGO_BIN_EXE_stage2-tui"))
        .env("STAGE2_ENGINE", engine_url())
        .args(["run", "--headless", "--deployconfig", d])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_running(&dir, "hold");
    let sock = state_dir(&dir).join("control.sock");
    wait_for("the control socket", Duration::from_secs(20), || {
        sock.exists()
    });
    // Connections that never say hello, until the driver has no descriptor left.
    let conns: Vec<_> = (0..80)
        .filter_map(|_| std::os::unix::net::UnixStream::connect(&sock).ok())
        .collect();
    assert!(conns.len() > 40, "{} connections", conns.len());
    let before = cpu_ticks(driver.id());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(driver.id()) - before;
    // 100 ticks a second: a spinning accept loop takes most of them.
    assert!(
        used < 40,
        "the driver used {used} ticks in 2 s with no descriptor left"
    );
    drop(conns);
    let status = driver.wait().unwrap();
    let printed = std::fs::read_to_string(&out).unwrap();
    assert_eq!(status.code(), Some(0), "{printed}");
    assert!(printed.contains("after | after"), "{printed}");
    remove_containers_of(&dir);
}

#[test]
fn the_goodbye_never_says_a_step_keeps_running_in_the_engine_when_it_does_not() {
    use common::tmux::{Tmux, tui_cmd_code};
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    // A wait runs on the bastion, in stage2-tui itself: it stops when stage2-tui does.
    set_pipeline(
        &dir,
        "[[step]]\nid = \"pause\"\nkind = \"wait\"\nsecs = 120\ndescription = \"a pause\"\n",
    );
    let code = tmp.path().join("code");
    let t = Tmux::start(
        "goodbye",
        &tui_cmd_code(tmp.path(), &format!("run --deployconfig {d}"), &code),
    );
    t.wait_for("waiting 120 s", Duration::from_secs(30));
    t.keys(&["q"]);
    std::thread::sleep(Duration::from_millis(500));
    t.keys(&["y"]);
    t.wait_exited(Duration::from_secs(20));
    // The goodbye is on the normal screen, above tmux's own last line.
    let s = String::from_utf8_lossy(
        &t.tmux(&["capture-pane", "-p", "-S", "-100", "-t", "s"])
            .stdout,
    )
    .into_owned();
    assert_eq!(std::fs::read_to_string(&code).unwrap().trim(), "130");
    assert!(!s.contains("running in the engine"), "{s}");
    assert!(
        s.contains("pause ran on this machine, in stage2-tui, and stopped with it"),
        "{s}"
    );
    remove_containers_of(&dir);
}

#[test]
fn the_private_api_service_is_stopped_with_its_whole_process_group() {
    let (tmp, dir) = demo_dc(&[]);
    let runtime = tmp.path().join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    // No engine named: stage2-tui looks for one and, finding none, starts its own.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_stage2-tui"))
        .env_remove("STAGE2_ENGINE")
        .env_remove("CONTAINER_HOST")
        .env_remove("DOCKER_HOST")
        .env("XDG_RUNTIME_DIR", &runtime)
        .args(["check", "--deployconfig", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let t = text(&o);
    let Some(pid) = t
        .split("podman API service at ")
        .nth(1)
        .and_then(|r| r.split("(pid ").nth(1))
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse::<i32>().ok())
    else {
        eprintln!("an engine socket of this machine answered; no private service to check:\n{t}");
        return;
    };
    let socket = runtime.join("stage2-tui/podman.sock");
    // Neither the service nor anything it started (a rootless one re-executes itself in a user
    // namespace) is left, once stage2-tui has exited.
    let left = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains("system service") && c.contains(socket.to_str().unwrap()))
            .collect::<Vec<_>>()
    };
    wait_for("the private service to go", Duration::from_secs(10), || {
        left().is_empty()
    });
    // SAFETY: signal 0 only asks whether the process group exists.
    assert_ne!(
        unsafe { libc::kill(-pid, 0) },
        0,
        "its process group is still there"
    );
}
