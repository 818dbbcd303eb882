//! One runner per deployconfig: an advisory file lock that says who holds it.

use crate::pipeline::error::PipelineError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Held while this process drives the deployconfig; released on drop (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    file: File,
}

fn holder_description() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| {
            // SAFETY: getuid has no preconditions and cannot fail.
            format!("uid {}", unsafe { libc::getuid() })
        });
    let args: Vec<String> = std::env::args().collect();
    format!(
        "pid {} (user {user} on {}, since {}, `{}`)",
        std::process::id(),
        host.trim(),
        chrono::Local::now().format("%Y-%m-%d %H:%M:%S"),
        args.join(" ")
    )
}

impl RunLock {
    /// Takes the lock in `state_dir`, or says who holds it.
    pub fn acquire(state_dir: &Path) -> Result<Self, PipelineError> {
        crate::safefs::private_dir(state_dir).map_err(|e| {
            PipelineError::Locked(format!("cannot create {}: {e}", state_dir.display()))
        })?;
        let path = state_dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| PipelineError::Locked(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "another process"
                } else {
                    holder
                };
                return Err(PipelineError::Locked(format!(
                    "another stage2-tui is already driving {}: {holder}. Wait for it to finish, or stop it, then try again.",
                    state_dir.parent().unwrap_or(state_dir).display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(PipelineError::Locked(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{}", holder_description());
        let _ = file.sync_data();
        Ok(Self { file })
    }
}

impl RunLock {
    /// Who holds the lock in `state_dir` now, without taking it; `None` when nobody drives.
    pub fn holder(state_dir: &Path) -> Option<String> {
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(state_dir.join("lock"))
            .ok()?;
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                None
            }
            Err(_) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                Some(holder.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .or(Some("another process".into()))
            }
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_told_who_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".stage2-tui");
        let first = RunLock::acquire(&state).unwrap();
        let err = RunLock::acquire(&state).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        RunLock::acquire(&state).unwrap();
    }
}
