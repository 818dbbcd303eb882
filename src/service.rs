//! `stage2-tui install-service`: writes and enables the systemd unit that runs stage 2 headless
//! at boot, and disables the old script's `stage2-containers.service`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The unit, as shipped in `scripts/systemd/stage2-tui.service`.
const UNIT: &str = include_str!("../scripts/systemd/stage2-tui.service");
/// Its file name.
pub const UNIT_NAME: &str = "stage2-tui.service";
/// The old script's unit.
pub const OLD_UNIT: &str = "stage2-containers.service";

/// The unit text for `exe` (its `ExecStart` names the binary that installs it) and `deployconfig`.
pub fn unit_text(exe: &Path, deployconfig: &Path) -> String {
    UNIT.lines()
        .map(|l| {
            if l.starts_with("ExecStart=") {
                let exe = exe.display().to_string();
                if exe.contains(char::is_whitespace) {
                    format!("ExecStart=\"{exe}\" run --headless")
                } else {
                    format!("ExecStart={exe} run --headless")
                }
            } else if l.starts_with("Environment=STAGE2_DEPLOYCONFIG=") {
                format!("Environment=STAGE2_DEPLOYCONFIG={}", deployconfig.display())
            } else if l.starts_with("ConditionPathExists=") {
                format!(
                    "ConditionPathExists={}",
                    deployconfig.join("config.json").display()
                )
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// What `install` does (or would do, with `dry_run`), line by line.
pub struct Plan {
    /// Lines for the operator.
    pub lines: Vec<String>,
}

/// Why the unit was not installed; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The binary, or a folder above it, could be replaced by someone other than root.
    #[error("{} {why}: a root unit must not run a binary that someone else can replace. Install the RPM, or copy it: `sudo install -o root -g root -m 0755 {} /usr/local/bin/stage2-tui` and run `sudo /usr/local/bin/stage2-tui install-service`", path.display(), exe.display())]
    Untrusted {
        /// The binary or folder.
        path: std::path::PathBuf,
        /// Who owns it, or who may write it.
        why: String,
        /// The binary.
        exe: std::path::PathBuf,
    },
    /// The old stage 2 is at work (its unit or script).
    #[error("{0}")]
    OldInstaller(String),
    /// A file or folder could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was done.
        action: &'static str,
        /// The file or folder.
        path: std::path::PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// systemctl could not be run, or failed.
    #[error("{0}")]
    Systemctl(String),
}

fn systemctl(
    root: &Path,
    args: &[&str],
    dry_run: bool,
    lines: &mut Vec<String>,
) -> Result<(), ServiceError> {
    let bin = std::env::var("STAGE2_SYSTEMCTL").unwrap_or_else(|_| "systemctl".into());
    let mut all: Vec<String> = Vec::new();
    if root != Path::new("/") {
        all.push(format!("--root={}", root.display()));
    }
    all.extend(args.iter().map(|a| a.to_string()));
    let shown = format!("systemctl {}", all.join(" "));
    if dry_run {
        lines.push(format!("would run: {shown}"));
        return Ok(());
    }
    let out = Command::new(&bin)
        .args(&all)
        .output()
        .map_err(|e| ServiceError::Systemctl(format!("cannot run {bin}: {e}")))?;
    if !out.status.success() {
        return Err(ServiceError::Systemctl(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    lines.push(format!("ran: {shown}"));
    Ok(())
}

/// The old stage 2 at work: its unit active (stage 1's `init_bastion.yaml` starts it), or its
/// script running as a process. Two installers on one deployconfig undo each other's work, so
/// `run`, the TUI and `install-service` start nothing while this says something.
pub fn old_installer_running() -> Option<String> {
    let bin = std::env::var("STAGE2_SYSTEMCTL").unwrap_or_else(|_| "systemctl".into());
    let state = Command::new(&bin)
        .args(["is-active", OLD_UNIT])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if matches!(state.as_str(), "active" | "activating" | "reloading") {
        return Some(format!(
            "the old stage-2 script's {OLD_UNIT} is {state} (stage 1 starts it): two installers must not run at once. Stop and disable it first: `systemctl stop {OLD_UNIT} && systemctl disable {OLD_UNIT}`"
        ));
    }
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .take(3)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_script = args.iter().take(2).any(|a| {
            Path::new(a)
                .file_name()
                .is_some_and(|n| n == "stage2-containers.sh")
        });
        if is_script {
            return Some(format!(
                "the old stage-2 script runs as process {pid} ({}): two installers must not run at once. Stop it first: `systemctl stop {OLD_UNIT}` (or `kill {pid}` if it was started by hand)",
                crate::text::visible(&args.join(" "))
            ));
        }
    }
    None
}

/// The unit runs `exe` as root at every boot: the binary and every folder above it must belong
/// to root and be writable by no one else, or whoever owns them could make root run anything.
fn trusted_binary(exe: &Path) -> Result<(), ServiceError> {
    use std::os::unix::fs::MetadataExt;
    let mut at = Some(exe);
    while let Some(p) = at {
        let meta = std::fs::metadata(p).map_err(|source| ServiceError::Io {
            action: "inspect",
            path: p.to_path_buf(),
            source,
        })?;
        let others_write =
            meta.mode() & 0o022 != 0 && !(meta.is_dir() && meta.mode() & 0o1000 != 0);
        if meta.uid() != 0 || others_write {
            let why = if meta.uid() != 0 {
                format!("belongs to uid {}", meta.uid())
            } else {
                format!("can be written by others (mode {:o})", meta.mode() & 0o7777)
            };
            return Err(ServiceError::Untrusted {
                path: p.to_path_buf(),
                why,
                exe: exe.to_path_buf(),
            });
        }
        at = p.parent().filter(|q| !q.as_os_str().is_empty());
    }
    Ok(())
}

/// Writes the unit (unless it is up to date), saying what it did in `lines`.
fn write_unit(
    root: &Path,
    exe: &Path,
    deployconfig: &Path,
    dry_run: bool,
    lines: &mut Vec<String>,
) -> Result<(), ServiceError> {
    let dir = root.join("etc/systemd/system");
    let path = dir.join(UNIT_NAME);
    let text = unit_text(exe, deployconfig);
    let current = std::fs::read_to_string(&path).ok();
    match (current.as_deref() == Some(text.as_str()), dry_run) {
        (true, _) => lines.push(format!("{} is already up to date", path.display())),
        (false, true) => lines.push(format!(
            "would write {} (ExecStart={} run --headless, deployconfig {})",
            path.display(),
            exe.display(),
            deployconfig.display()
        )),
        (false, false) => {
            std::fs::create_dir_all(&dir).map_err(|source| ServiceError::Io {
                action: "create",
                path: dir.clone(),
                source,
            })?;
            crate::safefs::Dir::open(&dir)
                .and_then(|d| d.write_atomic(UNIT_NAME.as_ref(), text.as_bytes(), 0o644))
                .map_err(|source| ServiceError::Io {
                    action: "write",
                    path: path.clone(),
                    source,
                })?;
            lines.push(format!(
                "{} {}",
                if current.is_some() {
                    "updated"
                } else {
                    "wrote"
                },
                path.display()
            ));
        }
    }
    Ok(())
}

/// Disables the old script's unit where it is installed (its file is left in place).
fn disable_old_unit(
    root: &Path,
    dry_run: bool,
    lines: &mut Vec<String>,
) -> Result<(), ServiceError> {
    let old: Vec<PathBuf> = [
        "etc/systemd/system",
        "usr/lib/systemd/system",
        "lib/systemd/system",
    ]
    .iter()
    .map(|d| root.join(d).join(OLD_UNIT))
    .filter(|p| p.exists())
    .collect();
    if let Some(p) = old.first() {
        systemctl(root, &["disable", OLD_UNIT], dry_run, lines)?;
        lines.push(format!(
            "{} the old script's {OLD_UNIT} ({} is left in place)",
            if dry_run { "would disable" } else { "disabled" },
            p.display()
        ));
    } else {
        lines.push(format!("no {OLD_UNIT} here: nothing to disable"));
    }
    Ok(())
}

/// Writes the unit under `root` (normally `/`), reloads systemd, enables it, and disables the old
/// script's unit when it is there. With `dry_run` nothing changes: the lines say what would.
pub fn install(
    root: &Path,
    exe: &Path,
    deployconfig: &Path,
    dry_run: bool,
) -> Result<Plan, ServiceError> {
    let mut lines = Vec::new();
    trusted_binary(exe)?;
    // On this machine (not an image being prepared under another root): not while the old
    // script runs.
    if root == Path::new("/")
        && let Some(why) = old_installer_running()
    {
        return Err(ServiceError::OldInstaller(why));
    }
    write_unit(root, exe, deployconfig, dry_run, &mut lines)?;
    if root == Path::new("/") {
        systemctl(root, &["daemon-reload"], dry_run, &mut lines)?;
    }
    systemctl(root, &["enable", UNIT_NAME], dry_run, &mut lines)?;
    disable_old_unit(root, dry_run, &mut lines)?;
    if dry_run {
        lines.push("dry run: nothing was changed".into());
    } else {
        lines.push(format!(
            "stage 2 runs headless at the next boot; watch it with `journalctl -fu stage2-tui` or attach with `sudo {}`",
            exe.display()
        ));
    }
    Ok(Plan { lines })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_names_the_binary_and_the_deployconfig() {
        let t = unit_text(
            Path::new("/usr/bin/stage2-tui"),
            Path::new("/home/core/deployconfig"),
        );
        assert!(
            t.contains("\nExecStart=/usr/bin/stage2-tui run --headless\n"),
            "{t}"
        );
        assert!(t.contains("ConditionPathExists=/home/core/deployconfig/config.json"));
        assert!(t.contains("SuccessExitStatus=130"));
    }
}
