//! The world-readable pointer that names the driver (uid, pid, no secrets), so another user is
//! told to use `sudo` instead of starting a second install.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{DriverInfo, euid, line, user_name};
use crate::config::Deployconfig;

/// Where a driver's world-readable pointer lives (`/run/stage2-tui/<id>`).
pub fn pointer_path(dc: &Deployconfig) -> PathBuf {
    let root = std::env::var_os("STAGE2_POINTER_DIR")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/stage2-tui"));
    root.join(dc.id())
}

/// The pointer a driver left: whose run this deployconfig is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pointer {
    /// Driver's uid.
    pub uid: u32,
    /// Driver's user name.
    pub user: String,
    /// Driver's pid (it may have exited since).
    pub pid: u32,
    /// The deployconfig.
    pub deployconfig: String,
}

pub(super) fn write_pointer(dc: &Deployconfig, info: &DriverInfo) {
    use std::os::unix::fs::DirBuilderExt;
    let path = pointer_path(dc);
    let Some(dir) = path.parent() else { return };
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir);
    // Readable by every user (that is its point), writable by root only.
    if euid() == 0 {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    }
    let p = Pointer {
        uid: info.uid,
        user: info.user.clone(),
        pid: info.pid,
        deployconfig: dc.dir.display().to_string(),
    };
    if let Ok(d) = crate::safefs::Dir::open(dir) {
        let _ = d.write_atomic(
            path.file_name().unwrap_or_default(),
            line(&p).as_bytes(),
            0o644,
        );
    }
}

/// For a user who is not the one whose stage 2 this is: the message that stops them (`None`:
/// go ahead). Root may always go ahead.
pub fn not_yours(dc: &Deployconfig) -> Option<String> {
    let me = euid();
    if me == 0 {
        return None;
    }
    let text = std::fs::read_to_string(pointer_path(dc)).ok()?;
    let p: Pointer = serde_json::from_str(&text).ok()?;
    if p.uid == me {
        return None;
    }
    let alive = Path::new(&format!("/proc/{}", p.pid)).exists();
    let how = if alive {
        format!("is driven by {} (pid {})", p.user, p.pid)
    } else {
        format!("belongs to {} (last driven by pid {})", p.user, p.pid)
    };
    let sudo = if p.uid == 0 {
        "sudo stage2-tui".to_string()
    } else {
        format!("sudo -u {} stage2-tui", p.user)
    };
    Some(format!(
        "stage 2 for {} {how}; attach with `{sudo}`. Starting stages as {} would run a second install against the same VMs, so this stage2-tui starts nothing.",
        dc.dir.display(),
        user_name(me)
    ))
}
