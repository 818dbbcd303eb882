//! Getting it onto a bastion: the tarball and the RPM `scripts/package.sh` builds (a binary for
//! RHEL 8 and 9: no glibc symbol newer than 2.28), and `install-service`.

mod common;

use std::path::Path;
use std::process::Command;

use common::text;

fn sh(cmd: &str, dir: &Path) -> String {
    let o = Command::new("sh")
        .args(["-c", cmd])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{cmd}\n{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_package_script_leaves_a_tarball_and_an_rpm_that_run_on_rhel_8_and_9() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dist = tempfile::tempdir().unwrap();
    // What this test proves (the glibc bound, the files, the RPM) does not need an optimised
    // binary: building it unoptimised takes a fraction of the time. A real package.sh run
    // optimises as usual.
    let o = Command::new("bash")
        .arg(root.join("scripts/package.sh"))
        .env("DIST", dist.path())
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "package.sh\n{}", text(&o));
    let version = env!("CARGO_PKG_VERSION");
    let tarball = dist
        .path()
        .join(format!("stage2-tui-{version}-x86_64-linux.tar.gz"));
    let rpm = dist
        .path()
        .join(format!("stage2-tui-{version}-1.x86_64.rpm"));
    assert!(tarball.is_file() && rpm.is_file(), "{}", text(&o));
    let listing = sh(&format!("tar tzf {}", tarball.display()), dist.path());
    let files = sh(&format!("rpm -qlp {}", rpm.display()), dist.path());
    for f in [
        "usr/bin/stage2-tui",
        "usr/lib/systemd/system/stage2-tui.service",
        "usr/share/bash-completion/completions/stage2-tui",
        "usr/share/zsh/site-functions/_stage2-tui",
        "usr/share/fish/vendor_completions.d/stage2-tui.fish",
        "usr/share/man/man1/stage2-tui.1.gz",
    ] {
        assert!(
            listing.contains(&format!("stage2-tui-{version}/{f}")),
            "{f} not in the tarball:\n{listing}"
        );
        assert!(
            files.contains(&format!("/{f}")),
            "{f} not in the RPM:\n{files}"
        );
    }
    // The binary: glibc 2.28 at most, and it runs.
    sh(&format!("tar xzf {}", tarball.display()), dist.path());
    let bin = dist
        .path()
        .join(format!("stage2-tui-{version}/usr/bin/stage2-tui"));
    let symbols = sh(&format!("objdump -T {}", bin.display()), dist.path());
    let newest = symbols
        .split("GLIBC_")
        .skip(1)
        .filter_map(|s| {
            let v: String = s
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let mut p = v.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
            Some((p.next()?, p.next().unwrap_or(0)))
        })
        .max()
        .unwrap();
    assert!(newest <= (2, 28), "needs GLIBC {newest:?}");
    assert!(sh(&format!("{} --version", bin.display()), dist.path()).contains(version));
    let unit = std::fs::read_to_string(dist.path().join(format!(
        "stage2-tui-{version}/usr/lib/systemd/system/stage2-tui.service"
    )))
    .unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/stage2-tui run --headless"),
        "{unit}"
    );
    let completion = std::fs::read_to_string(dist.path().join(format!(
        "stage2-tui-{version}/usr/share/bash-completion/completions/stage2-tui"
    )))
    .unwrap();
    assert!(completion.contains("install-service") && completion.contains("--tls-verify"));
    // Hidden internal commands are not offered; --from offers the steps.
    for hidden in ["window-guard", "control-probe", "capture-log", "manpage"] {
        assert!(
            !completion.contains(&format!(" {hidden} ")),
            "{hidden} offered"
        );
    }
    assert!(completion.contains("compgen -W \"pull 2.create-config 4.run-installer"));
    let man = sh(
        &format!("gzip -dc stage2-tui-{version}/usr/share/man/man1/stage2-tui.1.gz"),
        dist.path(),
    );
    assert!(
        man.contains(".TH stage2-tui") && man.contains("bundle"),
        "{man}"
    );
    // A real description, and every page it refers to is installed.
    assert!(
        man.contains("Each step is judged by what it must leave behind"),
        "{man}"
    );
    for sub in [
        "run",
        "check",
        "demo",
        "status",
        "bundle",
        "install-service",
        "pipeline",
    ] {
        assert!(
            listing.contains(&format!("usr/share/man/man1/stage2-tui-{sub}.1.gz")),
            "stage2-tui-{sub}(1) is referred to but not installed:\n{listing}"
        );
        assert!(files.contains(&format!("stage2-tui-{sub}.1.gz")), "{files}");
    }
}

#[test]
fn install_service_writes_and_enables_the_unit_and_disables_the_old_one() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
    std::fs::write(
        root.join("etc/systemd/system/stage2-containers.service"),
        "[Service]\nExecStart=/usr/local/bin/stage2-containers.sh\n",
    )
    .unwrap();
    // A systemctl that records what it is asked.
    let log = tmp.path().join("systemctl.log");
    let fake = tmp.path().join("systemctl");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$*\" >> {}\n", log.display()),
    )
    .unwrap();
    sh(&format!("chmod +x {}", fake.display()), tmp.path());
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_stage2-tui"))
            .args(args)
            .args([
                "--root",
                root.to_str().unwrap(),
                "--deployconfig",
                "/home/core/deployconfig",
            ])
            .env("STAGE2_SYSTEMCTL", &fake)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // --dry-run only prints.
    let said = run(&["install-service", "--dry-run"]);
    assert!(
        said.contains("would write")
            && said.contains("would disable the old script's stage2-containers.service"),
        "{said}"
    );
    assert!(said.contains("dry run: nothing was changed"), "{said}");
    assert!(!root.join("etc/systemd/system/stage2-tui.service").exists());
    assert!(!log.exists());
    // For real: the unit is written, enabled; the old one disabled; each change said.
    let said = run(&["install-service"]);
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/stage2-tui.service")).unwrap();
    assert!(
        unit.contains(&format!(
            "ExecStart={} run --headless",
            env!("CARGO_BIN_EXE_stage2-tui")
        )),
        "{unit}"
    );
    assert!(
        unit.contains("Environment=STAGE2_DEPLOYCONFIG=/home/core/deployconfig"),
        "{unit}"
    );
    assert!(
        said.contains("wrote")
            && said.contains("disabled the old script's stage2-containers.service"),
        "{said}"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let r = format!("--root={}", root.display());
    assert!(
        calls.contains(&format!("{r} enable stage2-tui.service")),
        "{calls}"
    );
    assert!(
        calls.contains(&format!("{r} disable stage2-containers.service")),
        "{calls}"
    );
    // Again: nothing to rewrite.
    let said = run(&["install-service"]);
    assert!(said.contains("already up to date"), "{said}");
}
