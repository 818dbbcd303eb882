//! `STAGE2_LOG=debug` (or `error`, `warn`, `info`, `trace`): what stage2-tui does — every engine
//! call (API request or podman command, how long it took, how it ended), connections, step starts
//! and ends, holds — through `tracing`, to a private file: `STAGE2_LOG_FILE`, else
//! `stage2-tui-debug.log` in the state root. 0600, appended, opened without following a link.
//! Off by default; never the terminal (it would tear the dashboard).

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

/// Why the debug log could not be started.
#[derive(Debug, thiserror::Error)]
pub enum DebugLogError {
    /// `STAGE2_LOG` names no level.
    #[error("STAGE2_LOG={0:?}: say error, warn, info, debug or trace")]
    Level(String),
    /// Its folder or file could not be made, opened or made private.
    #[error("{}: {source}", path.display())]
    File {
        /// The folder or file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is another user's (in a folder like /tmp).
    #[error("{} is not a file of this user (uid {uid}): pick another STAGE2_LOG_FILE", path.display())]
    NotOurs {
        /// The file.
        path: PathBuf,
        /// This user.
        uid: u32,
    },
    /// A logger was set up already.
    #[error("{0}")]
    Subscriber(String),
}

/// Turns the debug log on when `STAGE2_LOG` asks for it; where it goes, or why it cannot.
pub fn init() -> Option<Result<PathBuf, DebugLogError>> {
    let wanted = std::env::var("STAGE2_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())?;
    Some(start(&wanted))
}

/// Where the debug log goes: `STAGE2_LOG_FILE`, else `stage2-tui-debug.log` in the state root.
pub fn path() -> PathBuf {
    std::env::var_os("STAGE2_LOG_FILE")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::config::state_root().join("stage2-tui-debug.log"))
}

fn start(wanted: &str) -> Result<PathBuf, DebugLogError> {
    let level = level_of(wanted).ok_or_else(|| DebugLogError::Level(wanted.to_string()))?;
    let at = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| DebugLogError::File { path, source }
    };
    let chosen = std::env::var_os("STAGE2_LOG_FILE")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    let path = path();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let made = if chosen.is_some() {
            // A folder the operator named (it may be /tmp): made 0700 if missing, never changed.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
        } else {
            crate::safefs::private_dir(dir)
        };
        made.map_err(at(dir))?;
    }
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(at(&path))?
    };
    // An existing file must be ours (in a folder like /tmp another user could have made it), and
    // stays private from now on.
    {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata().map_err(at(&path))?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me || !meta.is_file() {
            return Err(DebugLogError::NotOurs { path, uid: me });
        }
    }
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(at(&path))?;
    }
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init()
        .map_err(|e| DebugLogError::Subscriber(e.to_string()))?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        "debug log started"
    );
    Ok(path)
}

fn level_of(s: &str) -> Option<tracing::Level> {
    match s.trim().to_ascii_lowercase().as_str() {
        "error" => Some(tracing::Level::ERROR),
        "warn" | "warning" => Some(tracing::Level::WARN),
        "info" => Some(tracing::Level::INFO),
        "debug" | "1" | "on" => Some(tracing::Level::DEBUG),
        "trace" => Some(tracing::Level::TRACE),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_read_by_name() {
        assert_eq!(level_of("DEBUG"), Some(tracing::Level::DEBUG));
        assert_eq!(level_of(" warn "), Some(tracing::Level::WARN));
        assert_eq!(level_of("verbose"), None);
    }
}
