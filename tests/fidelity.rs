//! Faithful to a real bastion, against the real engine: the web server's window counts from the
//! step that makes the bootstrap VM, with the server's own evidence of who fetched its ignition.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

/// A web server (the demo's nginx stand-in) whose 3 s window starts after `slow` (5 s).
fn anchored_pipeline(port: u16) -> String {
    format!(
        r#"[[step]]
id = "web"
kind = "service"
image = "5.ign-webserver"
name = "ign-webserver"
network = "host"
mounts = [{{ source = "{{deployconfig}}/bootstrap.ign", target = "/usr/share/nginx/html/bootstrap.ign" }}]
env = ["PORT={port}"]
ttl_secs = 3
window_starts_after = "slow"
max_serve_secs = 90
url = "http://127.0.0.1:{port}/bootstrap.ign"

[[step]]
id = "slow"
kind = "oneshot"
image = "4.run-installer"
entrypoint = ["/bin/sh", "-c", "sleep 5; echo made the bootstrap VM"]
"#
    )
}

#[test]
fn the_window_counts_from_its_anchor_shows_who_fetched_and_serves_again_when_the_anchor_reruns() {
    let _g = engine_lock();
    let (_tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    std::fs::write(
        dir.join("bootstrap.ign"),
        "{\"ignition\":{\"version\":\"3.2.0\"}}\n",
    )
    .unwrap();
    let port = free_port();
    set_pipeline(&dir, &anchored_pipeline(port));
    let runner = bin()
        .args(["run", "--headless", "--deployconfig", d])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // While `slow` runs, the window waits for it: the engine's limit is the only end.
    wait_for("the web server to serve", Duration::from_secs(60), || {
        state_dir(&dir).join("state.json").exists()
            && step(&state(&dir), "web")["status"] == "serving"
    });
    let st = state(&dir);
    assert_eq!(step(&st, "web")["window_waiting_for"], "slow", "{st}");
    // The bootstrap VM fetches its ignition: the server's own log says so.
    assert!(http_get(port, "/bootstrap.ign").starts_with(b"{\"ignition\""));
    let out = runner.wait_with_output().unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("--- web: serving http://127.0.0.1:")
            && all.contains("the window starts when slow succeeds"),
        "{all}"
    );
    assert!(
        all.contains(
            "web: slow succeeded, so the bootstrap VM can boot: the 1-minute window starts now"
        ),
        "{all}"
    );
    assert!(
        all.contains("--- web: served bootstrap.ign to 127.0.0.1 "),
        "{all}"
    );
    assert!(all.contains(", 200, 1 KB"), "{all}");
    // It served from its start until 3 s after `slow` (5 s) succeeded: not 3 s from its own start.
    let st = state(&dir);
    let a = &step(&st, "web")["attempts"][0];
    let served = chrono::DateTime::parse_from_rfc3339(a["finished_at"].as_str().unwrap()).unwrap()
        - chrono::DateTime::parse_from_rfc3339(a["started_at"].as_str().unwrap()).unwrap();
    assert!(served.num_milliseconds() >= 7500, "served {served}");
    let slow_end = chrono::DateTime::parse_from_rfc3339(
        step(&st, "slow")["attempts"][0]["finished_at"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let web_end = chrono::DateTime::parse_from_rfc3339(a["finished_at"].as_str().unwrap()).unwrap();
    let after = (web_end - slow_end).num_milliseconds();
    assert!(
        (2500..9000).contains(&after),
        "closed {after} ms after its anchor"
    );

    // Running the anchor again after the window closed serves again, for a new window.
    let o = run(&["run", "--headless", "--from", "slow", "--deployconfig", d]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("==> web (attempt 2)"), "{all}");
    let st = state(&dir);
    assert_eq!(step(&st, "web")["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(step(&st, "slow")["attempts"].as_array().unwrap().len(), 2);
    for n in ["ign-webserver", "slow"] {
        podman(&["rm", "-f", n]);
    }
}

#[test]
fn the_core_user_can_read_the_kubeconfig_through_its_group_never_through_a_link() {
    use std::os::unix::fs::MetadataExt;
    let (_tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    for f in ["oc", "kubectl"] {
        std::fs::write(dir.join(f), "#!/bin/sh\n").unwrap();
    }
    std::fs::create_dir_all(dir.join("auth")).unwrap();
    std::fs::write(dir.join("auth/kubeconfig"), "apiVersion: v1\n").unwrap();
    let pipeline = "[[step]]\nid = \"install-clients\"\nkind = \"host\"\naction = \"install-clients\"\nbin_dir = \"{deployconfig}/host/bin\"\nprofile_dir = \"{deployconfig}/host/profile.d\"\nshare_with = \"nobody\"\n";
    set_pipeline(&dir, pipeline);
    let o = run(&["run", "--headless", "--deployconfig", d]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("nobody can read auth/kubeconfig"), "{all}");
    let gid = {
        let o = std::process::Command::new("id")
            .args(["-g", "nobody"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    let k = std::fs::metadata(dir.join("auth/kubeconfig")).unwrap();
    assert_eq!((k.gid(), k.mode() & 0o777), (gid, 0o640));
    let a = std::fs::metadata(dir.join("auth")).unwrap();
    assert_eq!((a.gid(), a.mode() & 0o777), (gid, 0o750));
    assert!(
        std::fs::read_to_string(dir.join("host/profile.d/stage2-kubeconfig.sh"))
            .unwrap()
            .contains("export KUBECONFIG=")
    );
    // A stage that plants auth/kubeconfig as a link to a root file gets nothing shared.
    std::fs::remove_file(dir.join("auth/kubeconfig")).unwrap();
    let target = dir.join("root-only");
    std::fs::write(&target, "secret").unwrap();
    std::os::unix::fs::symlink(&target, dir.join("auth/kubeconfig")).unwrap();
    let o = run(&["run", "--headless", "--restart", "--deployconfig", d]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("symbolic link"), "{all}");
    assert_ne!(std::fs::metadata(&target).unwrap().gid(), gid);
}

#[test]
fn an_engine_without_an_init_binary_runs_the_steps_without_one_and_says_so() {
    let _g = engine_lock();
    let tmp = tempfile::tempdir().unwrap();
    // The engine's own containers.conf, with an init binary that is not there (catatonit
    // missing, as it may be on RHEL 8).
    let base = std::env::var("CONTAINERS_CONF")
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let conf = if base.contains("[engine]") {
        base.replace(
            "[engine]",
            "[engine]\ninit_path = \"/nonexistent/catatonit\"",
        )
    } else {
        format!("{base}\n[engine]\ninit_path = \"/nonexistent/catatonit\"\n")
    };
    let conf_path = tmp.path().join("containers.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let sock = tmp.path().join("podman.sock");
    let mut svc = std::process::Command::new("podman")
        .args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", sock.display()))
        .env("CONTAINERS_CONF", &conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the API socket", Duration::from_secs(20), || sock.exists());
    let (_dtmp, dir) = demo_dc(&[]);
    set_pipeline(&dir, &oneshot("noinit", "echo ran without an init"));
    let o = bin()
        .env("STAGE2_ENGINE", format!("unix://{}", sock.display()))
        .args(["run", "--headless", "--deployconfig", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = svc.kill();
    let _ = svc.wait();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(
        all.contains("no container init binary (catatonit is not installed)"),
        "{all}"
    );
    assert!(all.contains("ran without an init"), "{all}");
    assert_eq!(podman_inspect_init("noinit"), "false");
    podman(&["rm", "-f", "noinit"]);
}

fn podman_inspect_init(name: &str) -> String {
    let o = podman(&["inspect", "--format", "{{.HostConfig.Init}}", name]);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}
