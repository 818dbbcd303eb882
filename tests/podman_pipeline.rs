//! The pipeline against a real podman, through the real binary.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Stdio;
use std::time::Duration;

use common::*;

#[test]
fn demo_runs_end_to_end_and_matches_the_real_script() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dc");
    let port = free_port();
    let d = dir.to_str().unwrap().to_string();
    let port_s = port.to_string();
    let child = bin()
        .args([
            "demo",
            "--headless",
            "--dir",
            &d,
            "--pace",
            "0",
            "--window",
            "12",
            "--wait",
            "1",
            "--cluster-secs",
            "2",
            "--settle",
            "1",
        ])
        .args([
            "--csr-interval",
            "1",
            "--web-port",
            &port_s,
            "--disconnected",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // While the window is open: the web server really serves bootstrap.ign, and is created as
    // the script creates it.
    wait_for("5.ign-webserver to serve", Duration::from_secs(120), || {
        state_dir(&dir).join("state.json").exists()
            && step(&state(&dir), "5.ign-webserver")["status"] == "serving"
    });
    let served = http_get(port, "/bootstrap.ign");
    assert_eq!(served, std::fs::read(dir.join("bootstrap.ign")).unwrap());
    // The demo's names never clash with a real install's (or another demo's).
    let web_name = container_of(&dir, "5.ign-webserver");
    assert!(
        web_name.starts_with("stage2-demo-") && web_name.ends_with("-ign-webserver"),
        "{web_name}"
    );
    let web = podman_inspect(&web_name);
    assert_eq!(web["Name"], web_name.as_str());
    assert_eq!(web["HostConfig"]["NetworkMode"], "host");
    let binds: Vec<String> = serde_json::from_value(web["HostConfig"]["Binds"].clone()).unwrap();
    assert!(
        binds.iter().any(|b| b.starts_with(&format!(
            "{d}/bootstrap.ign:/usr/share/nginx/html/bootstrap.ign"
        ))),
        "{binds:?}"
    );

    let out = child.wait_with_output().unwrap();
    let all = text(&out);
    assert!(out.status.success(), "demo failed\n{all}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Disconnected openshift-install is being used"),
        "{all}"
    );
    assert!(stdout.contains("Apply complete! Resources:"), "{all}");
    assert!(
        stdout.contains("\"GET /bootstrap.ign HTTP/1.1\" 200"),
        "nginx access line missing\n{all}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with("stage 2 completed successfully"),
        "{all}"
    );

    // The cluster took shape instead of fixed sleeps: CSRs approved until every declared node
    // was Ready, then operators waited for; status --json says where the cluster stands.
    assert!(
        stdout.contains(
            "approve-csrs       | every declared node is Ready (6/6) and no node CSR is pending"
        ),
        "{all}"
    );
    assert!(
        stdout.contains("wait-operators     | operators 31/31 available"),
        "{all}"
    );
    assert!(
        stdout.contains("--- cluster: nodes 6/6 Ready, 0 CSRs pending, 1 CSR not a node's, left alone; operators 31/31 available"),
        "{all}"
    );
    let js = status(&dir).1;
    let c = &js["cluster"];
    assert_eq!(
        (c["nodes_ready"].as_u64(), c["nodes_declared"].as_u64()),
        (Some(6), Some(6)),
        "{js}"
    );
    assert_eq!(c["csrs_pending"], 0, "{js}");
    assert_eq!(c["csrs_approved"], 6, "{js}");
    assert_eq!(c["operators"]["available"], 31, "{js}");
    assert_eq!(c["operators"]["degraded"], 0, "{js}");

    let st = state(&dir);
    assert_eq!(st["outcome"], "succeeded");
    for s in st["steps"].as_array().unwrap() {
        assert_eq!(s["status"], "succeeded", "step {} did not succeed", s["id"]);
        assert_eq!(
            s["attempts"].as_array().unwrap().len(),
            1,
            "step {} ran more than once",
            s["id"]
        );
    }
    for f in [
        "bootstrap.ign",
        "master.ign",
        "worker.ign",
        "infra.ign",
        "auth/kubeconfig",
        "auth/kubeadmin-password",
        "metadata.json",
        "oc",
        "kubectl",
        "svc.ign",
        ".config.json.add-ignbak",
        "terraform.tfstate",
        "demo-host/usr/local/bin/oc",
        "demo-host/usr/local/bin/kubectl",
        "demo-host/etc/profile.d/stage2-kubeconfig.sh",
    ] {
        assert!(dir.join(f).is_file(), "{f} was not produced");
    }
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        cfg["ignition"]["bootstrap_ignition_url"],
        "http://10.50.1.254/bootstrap.ign"
    );
    assert!(cfg["ignition"]["master_ignition"].as_str().unwrap().len() > 100);
    let tf: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("terraform.tfstate")).unwrap()).unwrap();
    assert_eq!(tf["version"], 4);

    // The web server is stopped and removed when its window ends.
    assert!(
        !podman(&[
            "container",
            "exists",
            &container_of(&dir, "5.ign-webserver")
        ])
        .status
        .success(),
        "ign-webserver was not removed"
    );

    // Containers are created as the script creates them, plus labels, init and no tty.
    for (id, entrypoint) in [
        ("4.run-installer", None),
        (
            "wait-for-bootstrap",
            Some("/usr/local/4.run-installer/waitforcomplete.sh"),
        ),
        ("remove-bootstrap", Some("./removebootstrap.sh")),
    ] {
        let c = podman_inspect(&container_of(&dir, id));
        let binds: Vec<String> = serde_json::from_value(c["HostConfig"]["Binds"].clone()).unwrap();
        // (`:z` relabels and is then not listed by podman; the bind string is unit-tested.)
        assert!(
            binds
                .iter()
                .any(|b| b.starts_with(&format!("{d}:/tmp/workingdir:"))),
            "{id}: {binds:?}"
        );
        assert_eq!(c["Config"]["Tty"], false, "{id}");
        // The real images' working directories: terraform's relative entrypoints depend on it.
        let workdir = if id == "remove-bootstrap" {
            "/usr/share/terraform"
        } else {
            "/tmp/workingdir"
        };
        assert_eq!(c["Config"]["WorkingDir"], workdir, "{id}");
        assert_eq!(c["HostConfig"]["Init"], true, "{id}");
        let labels = &c["Config"]["Labels"];
        assert_eq!(labels["stage2-tui.tool"], "stage2-tui");
        assert_eq!(labels["stage2-tui.step"], id);
        assert_eq!(labels["stage2-tui.run"], st["run_id"]);
        assert_eq!(labels["stage2-tui.deployconfig"], d.as_str());
        if let Some(ep) = entrypoint {
            // podman shows the entrypoint as a string, Docker as an array.
            let got = &c["Config"]["Entrypoint"];
            assert!(got == ep || got[0] == ep, "{id}: entrypoint {got}");
        }
        assert!(
            c["Config"]["Image"]
                .as_str()
                .unwrap()
                .starts_with("localhost/stage2-demo/"),
            "{id}"
        );
    }
    // Every container step's saved log equals `podman logs`, stream by stream.
    for id in [
        "4.run-installer",
        "6.add-ignition",
        "7.terraform-deploy",
        "8.configure-svcs",
        "wait-for-bootstrap",
        "9.post-deployment",
    ] {
        assert_log_matches_podman(&dir, &st, id);
    }
    let (_, installer_err) = saved_log(&dir, &st, "4.run-installer", 1);
    assert!(
        installer_err
            .iter()
            .any(|l| l.starts_with(b"level=info msg=\"Consuming Install Config")),
        "openshift-install logs to stderr"
    );
    remove_containers_of(&dir);
}

#[test]
fn injected_failure_stops_the_run_and_resume_completes_it() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dc");
    let d = dir.to_str().unwrap();
    let o = run(&[
        "demo",
        "--headless",
        "--dir",
        d,
        "--pace",
        "0",
        "--window",
        "2",
        "--wait",
        "1",
        "--cluster-secs",
        "2",
        "--settle",
        "1",
        "--fail",
        "7.terraform-deploy",
    ]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let last = stdout.trim_end().lines().last().unwrap();
    assert!(
        last.contains("7.terraform-deploy") && last.contains("failed"),
        "last line must name the failed step: {last}"
    );
    assert!(
        stdout.contains("Error: error cloning virtual machine"),
        "{all}"
    );
    let st = state(&dir);
    assert_eq!(st["outcome"], "failed");
    assert_eq!(step(&st, "7.terraform-deploy")["status"], "failed");
    assert_eq!(
        step(&st, "7.terraform-deploy")["attempts"][0]["exit_code"],
        1
    );
    for later in [
        "wait-svcs",
        "8.configure-svcs",
        "install-clients",
        "wait-for-bootstrap",
        "9.post-deployment",
    ] {
        assert_eq!(
            step(&st, later)["status"],
            "pending",
            "{later} must not start"
        );
        assert!(
            step(&st, later)["attempts"].as_array().unwrap().is_empty(),
            "{later} must not start"
        );
    }
    assert!(!dir.join("terraform.tfstate").exists());

    // The failure is diagnosed: headless says what it means and what to do, and status --json
    // carries it with the log line that matched.
    assert!(
        stdout.contains("diagnosis (log line ")
            && stdout.contains("A VM named 'master-1' already exists in vCenter")
            && stdout.contains("what to do: If it is left from an earlier attempt"),
        "{all}"
    );
    let js = status(&dir).1;
    let tf = js["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "7.terraform-deploy")
        .unwrap();
    assert_eq!(tf["diagnosis"]["id"], "vsphere-vm-exists", "{js}");
    assert!(
        tf["diagnosis"]["fix"]
            .as_str()
            .unwrap()
            .contains("masters[1].hostname"),
        "{js}"
    );
    let n = tf["diagnosis"]["line"].as_u64().unwrap() as usize;
    let log = std::fs::read_to_string(tf["log"].as_str().unwrap()).unwrap();
    assert!(
        log.lines()
            .nth(n - 1)
            .unwrap()
            .contains("The name 'master-1' already exists"),
        "line {n} of {log}"
    );
    // Steps that did not fail carry none.
    let ok = js["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "4.run-installer")
        .unwrap();
    assert!(ok["diagnosis"].is_null(), "{js}");

    // A plain `run` refuses and says how to resume.
    let o = run(&["run", "--headless", "--deployconfig", d]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--from 7.terraform-deploy"),
        "{}",
        text(&o)
    );

    let o = run(&[
        "run",
        "--headless",
        "--deployconfig",
        d,
        "--from",
        "7.terraform-deploy",
    ]);
    assert!(o.status.success(), "resume failed\n{}", text(&o));
    let st = state(&dir);
    assert_eq!(st["outcome"], "succeeded");
    assert_eq!(
        step(&st, "7.terraform-deploy")["attempts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        step(&st, "4.run-installer")["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "earlier steps are not rerun"
    );
    assert!(dir.join("terraform.tfstate").is_file());

    // Once complete, `run` says so and does nothing.
    let o = run(&["run", "--headless", "--deployconfig", d]);
    assert!(o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("already completed"),
        "{}",
        text(&o)
    );
    remove_containers_of(&dir);
}

fn slow_pipeline() -> String {
    format!(
        r#"
[[step]]
id = "slow-step"
kind = "oneshot"
image = "4.run-installer"
name = "{}"
entrypoint = ["/bin/sh", "-c", "echo run >> /tmp/workingdir/starts; echo begin; i=0; while [ ! -f /tmp/workingdir/go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; seq 1 30000; echo oops >&2; echo end"]

[[step]]
id = "after"
kind = "oneshot"
image = "2.create-config"
name = "{}"
"#,
        container_name("slow-step"),
        container_name("after")
    )
}

#[test]
fn killed_runner_reattaches_without_starting_twice_or_losing_lines() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dc");
    let d = dir.to_str().unwrap();
    prepare_demo(&dir, &[]);
    set_pipeline(&dir, &slow_pipeline());

    let mut first = bin()
        .args(["run", "--headless", "--deployconfig", d])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("slow-step to run", Duration::from_secs(60), || {
        state_dir(&dir).join("state.json").exists()
            && step(&state(&dir), "slow-step")["attempts"][0]["container_id"].is_string()
            && dir.join("starts").exists()
    });
    // A second runner is refused while the first holds the deployconfig.
    let o = run(&["run", "--headless", "--deployconfig", d]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("pid {}", first.id())),
        "{}",
        text(&o)
    );

    first.kill().unwrap(); // SIGKILL, like a dropped SSH session taking the process down hard
    first.wait().unwrap();
    let c = podman_inspect(&container_name("slow-step"));
    assert_eq!(
        c["State"]["Running"], true,
        "the step must keep running in the engine"
    );

    // The step waits for `go` (not a clock, which a loaded machine outruns): it is still running
    // when the second runner reattaches, and finishes while that one follows it.
    let mut second = bin()
        .args(["run", "--headless", "--deployconfig", d])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `go` only once the second runner says it follows the running container: what it saves
    // after that it read live.
    let rx = stdout_lines(&mut second);
    let mut seen = Vec::new();
    let reattached = line_within(
        &rx,
        "reattached to container slow-step",
        Duration::from_secs(60),
        &mut seen,
    );
    assert!(
        podman_inspect(&container_name("slow-step"))["State"]["Running"] == true,
        "the step ended before the second runner followed it"
    );
    std::fs::write(dir.join("go"), "").unwrap();
    let o = second.wait_with_output().unwrap();
    seen.extend(rx.iter());
    let stdout = seen.join("\n") + "\n";
    let all = format!("{stdout}{}", text(&o));
    assert!(
        reattached,
        "the second runner never said it reattached:\n{all}"
    );
    assert!(o.status.success(), "{all}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("slow-step ") && l.ends_with("| end")),
        "the line printed after the reattach was not followed live:\n{all}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("starts")).unwrap(),
        "run\n",
        "the step was started twice"
    );
    let st = state(&dir);
    assert_eq!(st["outcome"], "succeeded");
    assert_eq!(
        step(&st, "slow-step")["attempts"].as_array().unwrap().len(),
        1
    );
    let (out, err) = saved_log(&dir, &st, "slow-step", 1);
    assert_eq!(out.len(), 30002, "begin + 30000 + end");
    assert_eq!(err, vec![b"oops".to_vec()]);
    assert_log_matches_podman(&dir, &st, "slow-step");
    remove_containers_of(&dir);
}

#[test]
fn a_flood_right_before_exit_is_saved_completely() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dc");
    let d = dir.to_str().unwrap();
    prepare_demo(&dir, &[]);
    set_pipeline(
        &dir,
        &oneshot(
            "flood",
            r"seq 1 200000; seq 1 5000 >&2; head -c 20000 /dev/zero | tr '\0' x; echo; printf 'no newline at exit'",
        ),
    );
    let o = run(&["run", "--headless", "--deployconfig", d]);
    assert!(o.status.success(), "{}", text(&o));
    let st = state(&dir);
    let (out, err) = saved_log(&dir, &st, "flood", 1);
    assert_eq!(out.len(), 200_002);
    for (i, l) in out.iter().take(200_000).enumerate() {
        assert_eq!(l, (i + 1).to_string().as_bytes(), "line {i}");
    }
    assert_eq!(
        out[200_000],
        vec![b'x'; 20_000],
        "a 20,000-byte line is reassembled whole"
    );
    assert_eq!(out[200_001], b"no newline at exit");
    assert_eq!(err.len(), 5000);
    assert_log_matches_podman(&dir, &st, "flood");
    remove_containers_of(&dir);
}

#[test]
fn clear_errors_for_missing_engine_image_and_deployconfig() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();

    // No engine at the given endpoint.
    let o = bin()
        .env("STAGE2_ENGINE", "unix:///nonexistent/podman.sock")
        .args([
            "run",
            "--headless",
            "--deployconfig",
            tmp.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(err.contains("no container engine answered"), "{err}");
    assert!(
        err.contains("unix:///nonexistent/podman.sock") && err.contains("no socket at that path"),
        "{err}"
    );
    assert!(
        err.contains("systemctl enable --now podman.socket"),
        "{err}"
    );

    // Missing deployconfig: said plainly, nothing created.
    let missing = tmp.path().join("nope");
    let o = run(&[
        "run",
        "--headless",
        "--deployconfig",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not exist: pass --deployconfig"),
        "{}",
        text(&o)
    );
    assert!(!missing.exists());

    // Missing image: the step fails naming the image and what to check.
    let dir = tmp.path().join("dc");
    let d = dir.to_str().unwrap();
    prepare_demo(&dir, &[]);
    set_pipeline(
        &dir,
        "[[step]]\nid = \"ghost\"\nkind = \"oneshot\"\nimage = \"no-such-stage\"\n",
    );
    let o = run(&["run", "--headless", "--deployconfig", d]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains("image localhost/stage2-demo/no-such-stage:demo is not present"),
        "{all}"
    );
    assert!(
        all.contains("registryurl and imagetag in config.json"),
        "{all}"
    );
    assert!(!podman(&["container", "exists", "ghost"]).status.success());

    // A pull of a tag that does not exist fails the pull step, naming the images.
    set_pipeline(
        &dir,
        "[[step]]\nid = \"pull\"\nkind = \"pull\"\nimages = [\"4.run-installer\"]\n",
    );
    let cfg = std::fs::read_to_string(dir.join("config.json"))
        .unwrap()
        .replace("\"imagetag\": \"demo\"", "\"imagetag\": \"nosuchtag\"");
    std::fs::write(dir.join("config.json"), cfg).unwrap();
    let o = run(&["run", "--headless", "--deployconfig", d, "--restart"]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains("could not pull localhost/stage2-demo/4.run-installer:nosuchtag"),
        "{all}"
    );
    remove_containers_of(&dir);
}

#[test]
fn check_reports_problems_by_path_as_text_and_json() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dc");
    let d = dir.to_str().unwrap();
    prepare_demo(&dir, &[]);
    let o = run(&["check", "--deployconfig", d]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("all 7 stage images for tag demo are present"),
        "{}",
        text(&o)
    );

    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        cfg.replace("\"10.50.1.11\"", "\"10.50.2.11\""),
    )
    .unwrap();
    std::fs::write(dir.join("bootstrap.ign"), "{}").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(30 * 3600);
    std::fs::File::options()
        .write(true)
        .open(dir.join("bootstrap.ign"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let o = run(&["check", "--deployconfig", d, "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let msgs: Vec<String> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "error")
        .map(|c| {
            format!(
                "{}: {}",
                c["check"].as_str().unwrap(),
                c["message"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        msgs.contains(
            &"config.json: masters[1].ipaddress: \"10.50.2.11\" is outside 10.50.1.0/24"
                .to_string()
        ),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("bootstrap.ign: is 30 h old")),
        "{msgs:?}"
    );

    // The public example's mistake: a missing comma, reported with line and column.
    let broken = std::fs::read_to_string(dir.join("config.json"))
        .unwrap()
        .replacen("\"demo-activation-key\",", "\"demo-activation-key\"", 1);
    let line = broken
        .lines()
        .position(|l| l.contains("demo-activation-key"))
        .unwrap()
        + 2;
    std::fs::write(dir.join("config.json"), broken).unwrap();
    let o = run(&["check", "--deployconfig", d]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!(
            "config.json          invalid JSON at line {line}, column 3: expected `,` or `}}`"
        )),
        "{out}"
    );
    remove_containers_of(&dir);
}

/// Log capture with a slow live listener behind a gate (as headless printing to a pipe has):
/// the capture waits for room instead of piling lines up, and no line is lost, neither in the
/// saved log nor live. On the API engine the capture reads through the engine's API (the path
/// for Docker and for logs we cannot read), where the wait is awaited on the runtime: following
/// the running container, then the pass after its exit that reconciles what follow dropped. On
/// the podman command-line engine, which always reads podman's log file, it is the file reader
/// waiting on its own thread.
#[test]
fn a_capture_waits_for_a_slow_live_listener_and_loses_no_line() {
    let _g = engine_lock();
    let (_tmp, _dir) = demo_dc(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let name = container_name("gated");
    // The listener takes 10,000 lines a second: 30,000 lines keep it busy for 3 s, far slower
    // than the capture reads them.
    let lines = 30_000;
    podman(&["rm", "-f", &name]);
    let o = podman(&[
        "run",
        "-d",
        "--name",
        &name,
        "--entrypoint",
        "/bin/sh",
        "localhost/stage2-demo/4.run-installer:demo",
        "-c",
        &format!("sleep 1; seq 1 {lines} | sed 's/^/gated line /'"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A folder everyone may write to, as /tmp: saving into it leaves its mode alone.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = tmp.path().join("gated.log");
    let mut args = vec![
        "capture-log",
        name.as_str(),
        "--out",
        out.to_str().unwrap(),
        "--live",
        "--gate",
        "5000",
    ];
    if !cli_pass() {
        args.push("--api");
    }
    let o = run(&args);
    podman(&["rm", "-f", &name]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let said = String::from_utf8_lossy(&o.stdout);
    let field = |k: &str| -> String {
        said.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k}= in {all}"))
            .to_string()
    };
    assert_eq!(
        field("via"),
        if cli_pass() { "file" } else { "api" },
        "{all}"
    );
    assert_eq!(field("exit"), "0", "{all}");
    assert_eq!(field("lines"), lines.to_string(), "{all}");
    assert_eq!(
        field("live_lines"),
        lines.to_string(),
        "every line reached the listener: {all}"
    );
    let most: usize = field("most_in_flight").parse().unwrap();
    let waits: usize = field("gate_waits").parse().unwrap();
    assert!(
        waits > 0,
        "the capture, far faster than the listener, waited for room: {all}"
    );
    assert!(
        most <= 5000 + 2 * 4096,
        "at most the gate and a batch or two in flight, not the flood: {all}"
    );
    assert_eq!(
        std::fs::metadata(tmp.path()).unwrap().mode() & 0o7777,
        0o1777,
        "the folder --out names keeps its mode"
    );
    assert_eq!(std::fs::metadata(&out).unwrap().mode() & 0o777, 0o600);
    let saved = std::fs::read_to_string(&out).unwrap();
    let texts: Vec<&str> = saved
        .lines()
        .filter_map(|l| l.split_once(" stdout ").map(|(_, t)| t))
        .collect();
    assert_eq!(texts.len(), lines, "every line saved");
    assert!(
        texts
            .iter()
            .enumerate()
            .all(|(i, t)| *t == format!("gated line {}", i + 1)),
        "in order"
    );
}
