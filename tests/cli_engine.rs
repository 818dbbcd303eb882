//! The podman command-line engine (podman 1.x on RHEL 7 has no API): always through the wrapper
//! that refuses what podman 1.6.4 lacks. The pipeline tests of the other files run on it too, in
//! scripts/test.sh's second pass (STAGE2_TEST_ENGINE=cli, with the API service stopped).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// The binary on the CLI engine whatever the pass, with podman calls bounded at 3 s.
fn cli_bin() -> std::process::Command {
    let mut c = bin();
    c.env("STAGE2_ENGINE", "cli")
        .env("STAGE2_PODMAN_TIMEOUT", "3");
    c
}

#[test]
fn a_hung_podman_holds_the_step_and_the_run_finishes_once_podman_answers() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    let id = format!("hang-{}", std::process::id());
    set_pipeline(
        &dir,
        &oneshot(&id, "echo started; sleep 6; echo finished; exit 0"),
    );
    let hang = tmp.path().join("hang");
    let mut child = cli_bin()
        .env("STAGE2_PODMAN_HANG", &hang)
        .args(["run", "--headless", "--deployconfig", d])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);
    let mut seen = Vec::new();
    let wait_line = |what: &str, secs: u64, seen: &mut Vec<String>| {
        assert!(
            line_within(&rx, what, Duration::from_secs(secs), seen),
            "no line with {what:?} within {secs} s:\n{}",
            seen.join("\n")
        );
    };
    wait_line("started", 60, &mut seen);
    // podman hangs: every call from now on blocks until the file goes.
    std::fs::write(&hang, "").unwrap();
    wait_line("engine unreachable", 30, &mut seen);
    std::thread::sleep(Duration::from_secs(7));
    std::fs::remove_file(&hang).unwrap();
    wait_line("the engine answers again", 60, &mut seen);
    let o = child.wait_with_output().unwrap();
    let all = format!("{}\n{}", seen.join("\n"), text(&o));
    assert_eq!(o.status.code(), Some(0), "{all}");
    let st = state(&dir);
    let s = step(&st, &id);
    assert_eq!(s["status"], "succeeded", "{all}");
    assert_eq!(
        s["attempts"].as_array().unwrap().len(),
        1,
        "ran twice: {all}"
    );
    let (out, _) = saved_log(&dir, &st, &id, 1);
    let out: Vec<String> = out
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    assert_eq!(out, ["started", "finished"], "{all}");
    assert_log_matches_podman(&dir, &st, &id);
    remove_containers_of(&dir);
}

#[test]
fn with_no_api_answering_podman_1_6_is_driven_through_its_command_line_and_says_so() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    let id = format!("auto-{}", std::process::id());
    set_pipeline(&dir, &oneshot(&id, "echo hello from podman one"));
    // A podman that says it is 1.6.4 (and is the real one, through the 1.6.4 wrapper), first on
    // the PATH; no API socket anywhere stage2-tui looks.
    let shim = tmp.path().join("bin");
    std::fs::create_dir(&shim).unwrap();
    let real = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v podman"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::fs::write(
        shim.join("podman"),
        format!(
            "#!/bin/sh\nif [ \"$1 $2\" = \"version --format=json\" ]; then echo '{{\"Version\":\"1.6.4\",\"RemoteAPIVersion\":1,\"GoVersion\":\"go1.12.12\"}}'; exit 0; fi\nSTAGE2_REAL_PODMAN={} exec {} \"$@\"\n",
            real.trim(),
            podman_164().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(shim.join("podman"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let runtime = tmp.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = format!(
        "{}:{}",
        shim.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = bin()
        .env_remove("STAGE2_ENGINE")
        .env_remove("STAGE2_PODMAN")
        .env_remove("CONTAINER_HOST")
        .env(
            "DOCKER_HOST",
            format!("unix://{}/none.sock", runtime.display()),
        )
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("PATH", &path)
        .args(["run", "--headless", "--deployconfig", d])
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("has no API service"))
        .collect();
    assert_eq!(
        said,
        [
            "stage2-tui: podman 1.6.4 has no API service; driving it through the podman command (--engine cli)"
        ],
        "{all}"
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("hello from podman one"),
        "{all}"
    );
    remove_containers_of(&dir);
}

#[test]
fn secrets_reach_the_container_and_the_registry_without_showing_on_a_command_line() {
    let _g = engine_lock();
    let (tmp, dir) = demo_dc(&[]);
    let d = dir.to_str().unwrap();
    let id = format!("env-{}", std::process::id());
    // Every podman command line stage2-tui runs, as other users would see it in `ps`.
    let seen = tmp.path().join("argv");
    let spy = tmp.path().join("podman");
    std::fs::write(
        &spy,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\nexec {} \"$@\"\n",
            seen.display(),
            podman_164().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&spy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let step = oneshot(&id, "echo \"token is ${REGISTRY_TOKEN:-unset}\"").replace(
        "entrypoint =",
        "env = [\"REGISTRY_TOKEN=s3cr3t-Tok3n-value\"]\nentrypoint =",
    );
    set_pipeline(&dir, &step);
    // With the debug log on: it says what was run, and keeps no secret either.
    let debug_log = tmp.path().join("logs/debug.log");
    let o = cli_bin()
        .env("STAGE2_PODMAN", &spy)
        .env("STAGE2_LOG", "debug")
        .env("STAGE2_LOG_FILE", &debug_log)
        .args(["run", "--headless", "--deployconfig", d])
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let st = state(&dir);
    let (out, _) = saved_log(&dir, &st, &id, 1);
    assert_eq!(
        out,
        [b"token is s3cr3t-Tok3n-value".to_vec()],
        "the container got its environment: {all}"
    );
    let argv = std::fs::read_to_string(&seen).unwrap();
    assert!(argv.contains("create "), "{argv}");
    assert!(!argv.contains("s3cr3t-Tok3n-value"), "{argv}");
    assert!(argv.contains("--env-file="), "{argv}");
    // The env file is gone once the container is made.
    let env_file = argv
        .split_whitespace()
        .find_map(|a| a.strip_prefix("--env-file="))
        .unwrap();
    assert!(!std::path::Path::new(env_file).exists(), "{env_file}");
    let debug = std::fs::read_to_string(&debug_log).unwrap();
    assert_eq!(
        std::fs::metadata(&debug_log).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        debug.contains(" podman ") && debug.contains("\"create\""),
        "{debug}"
    );
    assert!(
        debug.contains("step finished") && debug.contains(&id),
        "{debug}"
    );
    assert!(!debug.contains("s3cr3t-Tok3n-value"), "{debug}");
    // The support bundle takes the debug log along, masked like the rest.
    let bundle = tmp.path().join("b.tar.gz");
    let o = cli_bin()
        .env("STAGE2_LOG_FILE", &debug_log)
        .args([
            "bundle",
            "--deployconfig",
            d,
            "--out",
            bundle.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let x = tmp.path().join("b");
    std::fs::create_dir_all(&x).unwrap();
    assert!(
        std::process::Command::new("tar")
            .args(["xzf", bundle.to_str().unwrap(), "-C", x.to_str().unwrap()])
            .status()
            .unwrap()
            .success()
    );
    let inside = std::fs::read_dir(&x)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("stage2-tui-debug.log");
    let kept = std::fs::read_to_string(&inside).unwrap();
    assert!(
        kept.contains("step finished") && kept.contains(&id),
        "{kept}"
    );
    assert!(!kept.contains("s3cr3t-Tok3n-value"), "{kept}");
    remove_containers_of(&dir);
}

#[test]
fn the_1_6_4_wrapper_refuses_what_podman_1_6_4_lacks_and_records_it() {
    let tmp = tempfile::tempdir().unwrap();
    let refused = tmp.path().join("refused");
    let wrapper = |args: &[&str]| {
        std::process::Command::new(podman_164())
            .args(args)
            .env("STAGE2_PODMAN_REFUSED", &refused)
            .output()
            .unwrap()
    };
    // Newer than 1.6.4: the create-time run limit, the REST API service, a separated value.
    for (args, why) in [
        (
            &["create", "--timeout=3", "img"][..],
            "no flag '--timeout' for 'create'",
        ),
        (
            &["system", "service", "--time=0"][..],
            "no subcommand 'system service'",
        ),
        (&["stop", "--time", "3", "x"][..], "'--time' takes a value"),
        (
            &["search", "--list-tags", "x"][..],
            "no flag '--list-tags' for 'search'",
        ),
    ] {
        let o = wrapper(args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(why),
            "{}",
            text(&o)
        );
    }
    assert_eq!(
        std::fs::read_to_string(&refused).unwrap().lines().count(),
        4
    );
    // What 1.6.4 has goes through to the real podman.
    let o = wrapper(&["version", "--format=json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(&refused).unwrap().lines().count(),
        4
    );
}
