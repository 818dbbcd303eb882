//! Loading and saving the deployconfig's JSON files safely: atomic replace (temp file, fsync,
//! rename), a backup of the previous version, permissions kept, and no silent clobbering of a
//! file that changed on disk since it was loaded (stage 6 rewrites config.json).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What the file looked like when it was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    len: u64,
    hash: u64,
}

impl Stamp {
    fn of(bytes: &[u8]) -> Self {
        let mut h = DefaultHasher::new();
        bytes.hash(&mut h);
        Self {
            len: bytes.len() as u64,
            hash: h.finish(),
        }
    }
}

/// A file's text as loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The file.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
    /// Its stamp when loaded.
    pub stamp: Stamp,
}

/// Why a save did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Someone else changed the file since it was loaded.
    #[error(
        "{0} changed on disk since it was loaded (a stage may have rewritten it): reload it, or keep your version"
    )]
    ChangedOnDisk(String),
    /// I/O failure; the file on disk is untouched.
    #[error("cannot save {path}: {source} (the file on disk is unchanged)")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Reads a file for editing.
pub fn load(path: &Path) -> std::io::Result<Loaded> {
    let bytes = crate::safefs::read_file(path)?;
    let stamp = Stamp::of(&bytes);
    Ok(Loaded {
        path: path.to_path_buf(),
        text: String::from_utf8_lossy(&bytes).into_owned(),
        stamp,
    })
}

/// True when the file on disk is no longer what was loaded.
pub fn changed_on_disk(l: &Loaded) -> bool {
    crate::safefs::read_file(&l.path)
        .map(|b| Stamp::of(&b) != l.stamp)
        .unwrap_or(true)
}

/// The backup of `path`'s previous version: `.<name>.stage2-tui.bak` beside it.
pub fn backup_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.stage2-tui.bak"))
}

/// Saves `text` over `l.path` atomically, keeping a backup and the file's permissions. Refuses
/// when the file changed on disk since it was loaded, unless `overwrite`.
pub fn save(l: &Loaded, text: &str, overwrite: bool) -> Result<Loaded, SaveError> {
    let io = |source| SaveError::Io {
        path: l.path.display().to_string(),
        source,
    };
    if !overwrite && changed_on_disk(l) {
        return Err(SaveError::ChangedOnDisk(l.path.display().to_string()));
    }
    let dir = l.path.parent().unwrap_or(Path::new("."));
    let name = l.path.file_name().unwrap_or_default();
    let write = || -> std::io::Result<()> {
        // Every file is opened on the folder's descriptor without following links: a link a
        // stage container planted as config.json or its backup is refused, never written through.
        let folder = crate::safefs::Dir::open(dir)?;
        let old = match folder.open_file(name) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let mode = match &old {
            Some(f) => f.metadata()?.permissions().mode() & 0o7777,
            None => 0o600,
        };
        if let Some(mut f) = old {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut bytes)?;
            let bak = backup_path(&l.path);
            folder.write_atomic(bak.file_name().unwrap_or_default(), &bytes, mode)?;
        }
        folder.write_atomic(name, text.as_bytes(), mode)
    };
    write().map_err(io)?;
    Ok(Loaded {
        path: l.path.clone(),
        text: text.to_string(),
        stamp: Stamp::of(text.as_bytes()),
    })
}
