//! Stage contracts on the real engine: the demo images behave like the real ones where it
//! matters (4 and 6 exit 0 when they fail, 4 consumes install-config.yaml and moves the
//! terraform state aside, removebootstrap.sh appends its key on every run), and stage2-tui
//! judges a step by what it left behind, refuses re-runs that undo the deployment, and plays the
//! end game as a careful admin.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A prepared demo with short timings.
fn demo(extra: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let mut args = vec!["--cluster-secs", "2", "--wait", "1", "--settle", "1"];
    if !extra.contains(&"--window") {
        args.extend(["--window", "3"]);
    }
    args.extend_from_slice(extra);
    demo_dc(&args)
}

fn headless(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", "--headless", "--deployconfig", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

/// Every file under `dir` (links as their target text), for a before/after comparison.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                todo.push(p);
            } else if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(p, t.into_os_string().into_encoded_bytes());
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn attempts(st: &Value, id: &str) -> Vec<Value> {
    step(st, id)["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn log_text(dir: &Path, st: &Value, id: &str, attempt: usize) -> String {
    let (out, err) = saved_log(dir, st, id, attempt);
    out.iter()
        .chain(err.iter())
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Step `first`'s first attempt finished before step `then`'s first attempt started.
fn assert_ran_before(st: &Value, first: &str, then: &str) {
    let end = attempts(st, first)[0]["finished_at"]
        .as_str()
        .unwrap()
        .to_string();
    let start = attempts(st, then)[0]["started_at"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        end <= start,
        "{first} ended {end}, after {then} started {start}"
    );
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn an_installer_that_exits_0_after_a_fatal_line_fails_at_4_naming_what_it_did_not_make() {
    let _g = engine_lock();
    let (_tmp, dir) = demo(&["--fail", "4.run-installer"]);
    let o = headless(&dir, &[]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    let st = state(&dir);
    let four = step(&st, "4.run-installer");
    assert_eq!(four["status"], "failed", "{all}");
    let a = &attempts(&st, "4.run-installer")[0];
    // The container really exited 0: the contract failed it.
    assert_eq!(a["exit_code"], 0, "{a}");
    let error = a["error"].as_str().unwrap();
    assert!(
        error.starts_with("exited 0 but its log says: level=fatal"),
        "{error}"
    );
    assert!(
        error.contains("made no bootstrap.ign, master.ign, worker.ign, infra.ign, auth/kubeconfig, auth/kubeadmin-password, metadata.json"),
        "{error}"
    );
    assert_eq!(a["diagnosis"]["id"], "install-config-invalid", "{a}");
    // It stops at 4, not at 5 with the wrong cause.
    assert_eq!(step(&st, "5.ign-webserver")["status"], "pending");
    assert!(all.contains("stage 2 FAILED at 4.run-installer"), "{all}");
    remove_containers_of(&dir);
}

#[test]
fn add_ignition_that_exits_0_on_an_unparseable_config_fails_at_6() {
    let _g = engine_lock();
    let (_tmp, dir) = demo(&["--fail", "6.add-ignition"]);
    let o = headless(&dir, &[]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    let st = state(&dir);
    let a = &attempts(&st, "6.add-ignition")[0];
    assert_eq!(a["exit_code"], 0, "{a}");
    let error = a["error"].as_str().unwrap();
    assert!(
        error.contains("its log says: config.json cannot be parsed. Is it valid JSON?"),
        "{error}"
    );
    assert!(error.contains("made no svc.ign"), "{error}");
    assert_eq!(a["diagnosis"]["id"], "config-json-unparsable", "{a}");
    assert_eq!(step(&st, "7.terraform-deploy")["status"], "pending");
    remove_containers_of(&dir);
}

#[test]
fn a_rerun_of_4_after_the_vms_exist_is_refused_and_forced_it_finds_install_config_put_back() {
    let _g = engine_lock();
    let (_tmp, dir) = demo(&[]);
    let o = headless(&dir, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    the_end_game_was_played_as_a_careful_admin_plays_it(&dir, &text(&o));
    // 2.create-config made it, and the real 4 consumes it (backing it up first).
    assert!(!dir.join("install-config.yaml").exists());
    let original = std::fs::read(dir.join(".install-config.yaml.bak")).unwrap();
    assert!(String::from_utf8_lossy(&original).contains("baseDomain"));
    let tfstate = std::fs::read_to_string(dir.join("terraform.tfstate")).unwrap();
    assert!(tfstate.contains("master-0"), "{tfstate}");

    let before = tree(&dir);
    let state_before = std::fs::read(state_dir(&dir).join("state.json")).unwrap();
    let o = headless(&dir, &["--from", "4.run-installer"]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(all.contains("terraform.tfstate lists"), "{all}");
    assert!(all.contains("master-0"), "{all}");
    assert!(all.contains("--force"), "{all}");
    // Nothing changed: not the deployconfig, not the run.
    assert!(
        tree(&dir) == before,
        "the refused run changed the deployconfig"
    );
    assert_eq!(
        std::fs::read(state_dir(&dir).join("state.json")).unwrap(),
        state_before
    );

    // Forced knowingly: install-config.yaml is put back, byte for byte, before 4 runs.
    let o = headless(&dir, &["--from", "4.run-installer", "--force"]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(
        all.contains("4.run-installer: put install-config.yaml back from stage2-tui's copy"),
        "{all}"
    );
    let st = state(&dir);
    assert_eq!(attempts(&st, "4.run-installer").len(), 2);
    let log = log_text(&dir, &st, "4.run-installer", 2);
    assert!(log.contains("Consuming Install Config"), "{log}");
    // The image backed up what it found: the bytes it consumed the first time.
    assert_eq!(
        std::fs::read(dir.join(".install-config.yaml.bak")).unwrap(),
        original
    );
    remove_containers_of(&dir);
}

#[test]
fn remove_bootstrap_twice_leaves_one_key_and_a_retry_of_7_makes_the_bootstrap_vm_again() {
    let _g = engine_lock();
    let (_tmp, dir) = demo(&[]);
    let d = dir.to_str().unwrap();
    let o = headless(&dir, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let cfg = || std::fs::read_to_string(dir.join("config.json")).unwrap();
    assert_eq!(count(&cfg(), "\"bootstrap_complete\""), 1);

    // remove-bootstrap again: the old line goes first, so still one.
    let o = headless(&dir, &["--from", "remove-bootstrap"]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(
        all.contains("remove-bootstrap: removed bootstrap_complete (1 line) from config.json"),
        "{all}"
    );
    assert_eq!(count(&cfg(), "\"bootstrap_complete\""), 1);
    let o = run(&["check", "--deployconfig", d]);
    assert!(!text(&o).contains("duplicate key"), "{}", text(&o));

    // Retrying 7 after remove-bootstrap: the key goes, so terraform makes the bootstrap VM.
    let o = headless(&dir, &["--from", "7.terraform-deploy"]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(
        all.contains("7.terraform-deploy: removed bootstrap_complete (1 line) from config.json before it runs: terraform makes the bootstrap VM again"),
        "{all}"
    );
    let st = state(&dir);
    let log = log_text(&dir, &st, "7.terraform-deploy", 2);
    assert!(
        log.contains("module.bootstrap.vsphere_virtual_machine.vm[\"bootstrap-0\"]: Creating..."),
        "{log}"
    );
    assert_eq!(count(&cfg(), "\"bootstrap_complete\""), 1);

    // A duplicate planted by hand (what the old script left): `check` names both lines.
    let text_now = cfg();
    let dup = text_now.replacen(
        "  \"bootstrap_complete\": \"true\",\n",
        "  \"bootstrap_complete\": \"true\",\n  \"bootstrap_complete\": \"true\",\n",
        1,
    );
    std::fs::write(dir.join("config.json"), &dup).unwrap();
    let first = dup
        .lines()
        .position(|l| l.contains("bootstrap_complete"))
        .unwrap()
        + 1;
    let o = run(&["check", "--deployconfig", d]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!(
            "line {}, column 3: duplicate key \"bootstrap_complete\" (first at line {first})",
            first + 1
        )),
        "{all}"
    );
    remove_containers_of(&dir);
}

/// (In the completed run of the re-run test, to spare a run.) A CSR that is not a node's is
/// listed and never approved, and 9.post-deployment runs before the operators wait.
fn the_end_game_was_played_as_a_careful_admin_plays_it(dir: &Path, all: &str) {
    let dir = dir.to_path_buf();
    assert!(
        all.contains("not approving csr-9zk2p (requested by system:serviceaccount:default:builder"),
        "{all}"
    );
    let approved = std::fs::read_to_string(dir.join(".demo/cluster/approved")).unwrap();
    assert!(!approved.contains("csr-9zk2p"), "{approved}");
    assert!(approved.lines().filter(|l| l.starts_with("csr-")).count() >= 2);
    let (_, status) = status(&dir);
    let others = status["cluster"]["csrs_not_approved"].to_string();
    assert!(others.contains("csr-9zk2p"), "{status}");
    // 9 moves ingress and the registry to the infra nodes: it runs before the wait.
    let st = state(&dir);
    assert_ran_before(&st, "9.post-deployment", "wait-operators");
    let log = log_text(&dir, &st, "wait-operators", 1);
    assert!(log.contains("cluster version available"), "{log}");
}

#[test]
fn an_unknown_certificate_authority_fails_the_cluster_step_at_once_with_its_cause() {
    let _g = engine_lock();
    let (_tmp, dir) = demo(&[]);
    std::fs::write(dir.join(".demo/ca-changed"), "").unwrap();
    let o = headless(&dir, &[]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    let st = state(&dir);
    let a = &attempts(&st, "approve-csrs")[0];
    assert_eq!(step(&st, "approve-csrs")["status"], "failed", "{all}");
    assert_eq!(a["diagnosis"]["id"], "cluster-ca-changed", "{a}");
    let secs = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(a[k].as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    assert!(
        secs("finished_at") - secs("started_at") < 10,
        "x509 was waited out: {a}"
    );
    remove_containers_of(&dir);
}

#[test]
fn the_web_server_gets_only_bootstrap_ign_read_only() {
    let _g = engine_lock();
    // A long window, and 6 fails: the web server stays up while we look.
    let (_tmp, dir) = demo(&["--window", "60", "--fail", "6.add-ignition"]);
    let mut child = bin()
        .args(["run", "--headless", "--deployconfig", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the web server", Duration::from_secs(60), || {
        state_dir(&dir).join("state.json").exists()
            && attempts(&state(&dir), "5.ign-webserver")
                .first()
                .is_some_and(|a| a["container_id"].is_string())
    });
    let c = podman_inspect(&container_of(&dir, "5.ign-webserver"));
    let mounts = c["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(
        mounts[0]["Destination"],
        "/usr/share/nginx/html/bootstrap.ign"
    );
    assert_eq!(mounts[0]["RW"], false, "{mounts:?}");
    let canon = dir.canonicalize().unwrap();
    assert_eq!(
        mounts[0]["Source"].as_str().unwrap(),
        canon.join("bootstrap.ign").to_str().unwrap()
    );
    let _ = child.kill();
    let _ = child.wait();
    remove_containers_of(&dir);
}

#[test]
fn a_planted_link_is_never_mounted_into_a_container() {
    let _g = engine_lock();
    let (tmp, dir) = demo(&[]);
    let decoy = tmp.path().join("shadow");
    std::fs::write(&decoy, "root:$6$secret:19000::::::\n").unwrap();
    std::os::unix::fs::symlink(&decoy, dir.join("bootstrap.ign")).unwrap();
    set_pipeline(
        &dir,
        &format!(
            "[[step]]\nid = \"web\"\nkind = \"service\"\nimage = \"5.ign-webserver\"\nname = \"{}\"\nworkdir = false\nttl_secs = 5\nmounts = [{{ source = \"{{deployconfig}}/bootstrap.ign\", target = \"/usr/share/nginx/html/bootstrap.ign\", options = \"ro,z\" }}]\n",
            container_name("web")
        ),
    );
    let o = headless(&dir, &[]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("refused to mount"), "{all}");
    assert!(all.contains("symbolic link"), "{all}");
    let ps = podman(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        !String::from_utf8_lossy(&ps.stdout).contains(&container_name("web")),
        "a container was made"
    );
    remove_containers_of(&dir);
}

#[test]
fn the_old_script_or_its_unit_stops_run_before_anything_starts() {
    let _g = engine_lock();
    let (tmp, dir) = demo(&[]);
    // The old script, running (as stage 1 starts it).
    let script = tmp.path().join("stage2-containers.sh");
    std::fs::write(&script, "#!/bin/sh\nsleep 120\n").unwrap();
    let mut old = std::process::Command::new("/bin/sh")
        .arg(&script)
        .spawn()
        .unwrap();
    let o = headless(&dir, &[]);
    let _ = old.kill();
    let _ = old.wait();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(
        all.contains(&format!(
            "the old stage-2 script runs as process {}",
            old.id()
        )),
        "{all}"
    );
    assert!(!state_dir(&dir).join("state.json").exists(), "{all}");

    // Its unit, active (a systemctl that answers as systemd does on a bastion where stage 1
    // started it: this machine has no systemd).
    let fake = tmp.path().join("systemctl");
    std::fs::write(
        &fake,
        "#!/bin/sh\n[ \"$1 $2\" = \"is-active stage2-containers.service\" ] && { echo active; exit 0; }\necho unknown; exit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let o = bin()
        .args(["run", "--headless", "--deployconfig", dir.to_str().unwrap()])
        .env("STAGE2_SYSTEMCTL", &fake)
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(all.contains("stage2-containers.service is active"), "{all}");
    assert!(
        all.contains("systemctl stop stage2-containers.service"),
        "{all}"
    );
    assert!(!state_dir(&dir).join("state.json").exists(), "{all}");
    remove_containers_of(&dir);
}

#[test]
fn a_config_edit_shows_as_drift_and_the_run_makes_install_config_again_before_4() {
    let _g = engine_lock();
    let (_tmp, dir) = demo(&["--fail", "4.run-installer"]);
    let d = dir.to_str().unwrap();
    // The first run: 2.create-config makes both files, then 4 fails (and consumes nothing).
    let o = headless(&dir, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let ic = std::fs::read_to_string(dir.join("install-config.yaml")).unwrap();
    assert!(ic.contains("baseDomain: \"demo.example.internal\""), "{ic}");
    let (_, s) = status(&dir);
    assert_eq!(s["drift"], serde_json::json!([]), "{s}");

    // The operator changes the base domain: 4 and 8/9 would not see it.
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        cfg.replace(
            "\"basedomain\": \"demo.example.internal\"",
            "\"basedomain\": \"demo.example.org\"",
        ),
    )
    .unwrap();
    let (_, s) = status(&dir);
    let drift = s["drift"].to_string();
    assert!(
        drift.contains(
            "install-config.yaml baseDomain demo.example.internal ≠ config.json basedomain demo.example.org"
        ),
        "{drift}"
    );
    assert!(
        drift.contains("ansible-hosts domain_suffix=ocp4demo.demo.example.internal ≠ config.json clusterid.basedomain ocp4demo.demo.example.org"),
        "{drift}"
    );
    let o = run(&["check", "--deployconfig", d]);
    assert!(
        text(&o).contains("drift: install-config.yaml baseDomain"),
        "{}",
        text(&o)
    );

    // A new run makes both again with 2.create-config before 4; the old ones are kept.
    let o = headless(&dir, &["--restart"]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let st = state(&dir);
    assert_ran_before(&st, "2.create-config", "4.run-installer");
    // What 4 consumed (it backs it up first) has the new domain.
    let used = std::fs::read_to_string(dir.join(".install-config.yaml.bak")).unwrap();
    assert!(used.contains("baseDomain: \"demo.example.org\""), "{used}");
    let run_id = st["run_id"].as_str().unwrap();
    let old = std::fs::read_to_string(
        state_dir(&dir)
            .join("backups")
            .join(run_id)
            .join("2.create-config-1/install-config.yaml"),
    )
    .unwrap();
    assert!(
        old.contains("baseDomain: \"demo.example.internal\""),
        "{old}"
    );
    assert!(
        all.contains("2.create-config: the old install-config.yaml and ansible-hosts kept in"),
        "{all}"
    );
    let (_, s) = status(&dir);
    assert_eq!(s["drift"], serde_json::json!([]), "{s}");
    remove_containers_of(&dir);
}

#[test]
fn a_step_whose_inputs_are_missing_does_not_start() {
    let _g = engine_lock();
    let (_tmp, dir) = demo(&[]);
    let step = oneshot("maker", "echo made > /tmp/workingdir/made.txt");
    let user = oneshot("user", "cat /tmp/workingdir/needed.txt");
    set_pipeline(
        &dir,
        &format!(
            "{step}[step.contract]\nmakes = [\"made.txt\"]\n\n{user}[step.contract]\nneeds = [\"needed.txt\"]\nneeds_fields = [\"ignition.svc_ignition\"]\n"
        ),
    );
    let o = headless(&dir, &[]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    let st = state(&dir);
    assert_eq!(step_status(&st, "maker"), "succeeded", "{all}");
    let a = &attempts(&st, "user")[0];
    let error = a["error"].as_str().unwrap();
    assert_eq!(
        error,
        "not started: its inputs are missing: no needed.txt; config.json ignition.svc_ignition is empty"
    );
    // Nothing ran: no container was made for it.
    assert!(a["container_id"].is_null(), "{a}");
    let ps = podman(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        !String::from_utf8_lossy(&ps.stdout).contains(&container_name("user")),
        "a container was made"
    );
    remove_containers_of(&dir);
}

fn step_status(st: &Value, id: &str) -> String {
    step(st, id)["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn demo_writes_where_deployconfig_says_and_never_into_a_real_folder() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    let demo_dir = tmp.path().join("demo");
    let d = demo_dir.to_str().unwrap();
    let o = run(&["demo", "--deployconfig", d, "--prepare-only", "--pace", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(demo_dir.join(".demo/marker").is_file());
    // A real deployconfig named so is refused, and not a byte of it changes.
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("config.json"), "{\"clusterid\": \"mine\"}\n").unwrap();
    let before = tree(&real);
    let o = run(&[
        "demo",
        "--deployconfig",
        real.to_str().unwrap(),
        "--prepare-only",
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("is not a stage2-tui demo folder"),
        "{}",
        text(&o)
    );
    assert!(tree(&real) == before);
}
