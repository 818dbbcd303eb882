//! Getting it onto a bastion: the tarball and the RPM `scripts/package.sh` builds (a binary for
//! RHEL 7, 8 and 9: no glibc symbol newer than 2.17; an RPM and a unit EL7's rpm 4.11 and
//! systemd 219 take), and `install-service`.

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

/// Where package.sh left its files: scripts/test.sh builds them beside the other tests
/// (`STAGE2_TEST_DIST`; this waits for that build to end), else it runs here.
enum Dist {
    Shared(std::path::PathBuf),
    Own(tempfile::TempDir),
}

impl Dist {
    fn path(&self) -> &Path {
        match self {
            Dist::Shared(p) => p,
            Dist::Own(t) => t.path(),
        }
    }
}

fn package() -> Dist {
    if let Ok(shared) = std::env::var("STAGE2_TEST_DIST") {
        let dir = std::path::PathBuf::from(shared);
        let rc = dir.join("package.rc");
        let start = std::time::Instant::now();
        while !rc.exists() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(1200),
                "package.sh did not finish within 20 minutes"
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        let log = std::fs::read_to_string(dir.join("package.log")).unwrap_or_default();
        assert_eq!(
            std::fs::read_to_string(&rc).unwrap().trim(),
            "0",
            "package.sh failed:\n{log}"
        );
        return Dist::Shared(dir);
    }
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
    Dist::Own(dist)
}

#[test]
fn the_package_script_leaves_a_tarball_and_an_rpm_that_run_on_rhel_7_8_and_9() {
    let dist = package();
    let version = env!("CARGO_PKG_VERSION");
    let tarball = dist
        .path()
        .join(format!("stage2-tui-{version}-x86_64-linux.tar.gz"));
    let rpm = dist
        .path()
        .join(format!("stage2-tui-{version}-1.x86_64.rpm"));
    assert!(
        tarball.is_file() && rpm.is_file(),
        "{}",
        dist.path().display()
    );
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
    // The RPM asks nothing of rpm that EL7's rpm 4.11 does not have: no zstd payload, no rich
    // or weak dependencies (Recommends), only rpmlib features 4.11 knows.
    let requires = sh(
        &format!("rpm -qp --requires {}", rpm.display()),
        dist.path(),
    );
    const EL7_RPMLIB: [&str; 7] = [
        "rpmlib(CompressedFileNames)",
        "rpmlib(FileDigests)",
        "rpmlib(PayloadFilesHavePrefix)",
        "rpmlib(PayloadIsXz)",
        "rpmlib(PayloadIsBzip2)",
        "rpmlib(VersionedDependencies)",
        "rpmlib(PartialHardlinkSets)",
    ];
    // The libraries rpmbuild found the binary linked against: glibc's own (and libgcc's), at
    // symbol versions glibc 2.17 has.
    const GLIBC_LIBS: [&str; 7] = [
        "ld-linux-x86-64.so.2",
        "libc.so.6",
        "libdl.so.2",
        "libm.so.6",
        "libpthread.so.0",
        "librt.so.1",
        "libgcc_s.so.1",
    ];
    for r in requires.lines().map(str::trim).filter(|r| !r.is_empty()) {
        let r = r.split_whitespace().next().unwrap();
        let lib = r.split('(').next().unwrap();
        let glibc_version = r
            .split("(GLIBC_")
            .nth(1)
            .map(|v| v.trim_end_matches(")(64bit)").to_string());
        let old_enough = glibc_version.is_none_or(|v| {
            let mut p = v.split('.').map(|x| x.parse::<u32>().unwrap_or(99));
            (p.next().unwrap_or(99), p.next().unwrap_or(0)) <= (2, 17)
        });
        assert!(
            r == "podman" || EL7_RPMLIB.contains(&r) || (GLIBC_LIBS.contains(&lib) && old_enough),
            "the RPM requires {r}, which EL7 lacks:\n{requires}"
        );
    }
    let weak = sh(
        &format!("rpm -qp --recommends {}", rpm.display()),
        dist.path(),
    );
    assert_eq!(
        weak.trim(),
        "",
        "weak dependencies EL7's rpm 4.11 does not know"
    );
    let payload = sh(
        &format!("rpm -qp --qf '%{{PAYLOADCOMPRESSOR}}' {}", rpm.display()),
        dist.path(),
    );
    assert!(
        ["gzip", "xz", "bzip2"].contains(&payload.trim()),
        "payload {payload}: EL7's rpm cannot unpack it"
    );
    // The binary: glibc 2.17 (RHEL 7's) at most, and it runs.
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
    assert!(newest <= (2, 17), "needs GLIBC {newest:?}");
    assert!(sh(&format!("{} --version", bin.display()), dist.path()).contains(version));
    let unit = std::fs::read_to_string(dist.path().join(format!(
        "stage2-tui-{version}/usr/lib/systemd/system/stage2-tui.service"
    )))
    .unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/stage2-tui run --headless"),
        "{unit}"
    );
    assert_unit_runs_on_systemd_219(&unit);
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

/// Every directive of the unit is one systemd 219 (RHEL 7) knows (systemd.unit(5),
/// systemd.service(5), systemd.exec(5), systemd.kill(5) of that release), and no time is
/// `infinity` (219 reads only numbers there; `0` means no timeout in every version).
fn assert_unit_runs_on_systemd_219(unit: &str) {
    const SYSTEMD_219: [&str; 12] = [
        "Description",
        "Wants",
        "After",
        "ConditionPathExists",
        "Type",
        "RemainAfterExit",
        "Environment",
        "ExecStart",
        "TimeoutStartSec",
        "KillMode",
        "SuccessExitStatus",
        "WantedBy",
    ];
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap();
        assert!(
            SYSTEMD_219.contains(&key),
            "{key}= is not in systemd 219:\n{unit}"
        );
        assert!(
            !value.contains("infinity"),
            "{line}: systemd 219 has no infinity"
        );
    }
}

#[test]
fn the_shipped_unit_runs_on_systemd_219() {
    let unit = stage2_tui::service::unit_text(
        Path::new("/usr/bin/stage2-tui"),
        Path::new("/home/core/deployconfig"),
    );
    assert_unit_runs_on_systemd_219(&unit);
    // It names no engine: stage2-tui finds podman's API (RHEL 8/9) or its command line (RHEL 7).
    assert!(!unit.contains("STAGE2_ENGINE"), "{unit}");
}
