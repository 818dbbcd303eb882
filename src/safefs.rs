//! File access that a stage container cannot redirect.
//!
//! Every stage container has the deployconfig mounted read-write, and stage2-tui runs as root:
//! a container can plant a symbolic link where stage2-tui will later write (`config.json`'s
//! backup, `oc`, a saved log) and make root write or copy through it. Everything here opens
//! paths *inside* a trusted folder one component at a time with `openat(O_NOFOLLOW)` on a
//! directory descriptor, so no link is ever followed, and refuses a link (or anything but a
//! regular file / folder) where one is expected, naming it. Writes are atomic: a fresh temp file
//! (`O_CREAT|O_EXCL|O_NOFOLLOW`), fsync, `renameat` over the target, fsync of the folder.
//!
//! The private folders of stage2-tui itself (run state, logs) are created `0700`, their files
//! `0600`.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

fn cstr(name: &std::ffi::OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a file name"))
}

/// The error for a link (or another kind of entry) found where a file or folder was expected.
pub fn refused(path: &Path, what: &str) -> io::Error {
    let msg = if what == "a symbolic link" {
        format!(
            "{} is a symbolic link; stage2-tui never follows links inside the deployconfig (a stage container may have planted it): remove it and try again",
            path.display()
        )
    } else {
        format!(
            "{} is {what}, not what was expected there: remove or rename it and try again",
            path.display()
        )
    };
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn kind_of(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFLNK => "a symbolic link",
        libc::S_IFDIR => "a folder",
        libc::S_IFREG => "a regular file",
        libc::S_IFIFO => "a named pipe",
        libc::S_IFSOCK => "a socket",
        _ => "a device",
    }
}

/// An open folder: every path below it is resolved without following links.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Opens a trusted folder (the deployconfig itself, `/usr/local/bin`): its own path may go
    /// through links the administrator made; nothing below it will.
    pub fn open(path: &Path) -> io::Result<Self> {
        let c = cstr(path.as_os_str())?;
        // SAFETY: `c` is a valid NUL-terminated path; the returned fd is checked.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // SAFETY: `fd` is a freshly opened descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: path.to_path_buf(),
        })
    }

    /// The folder's path (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives this folder (by its descriptor: no link is followed) group `gid` and `mode`.
    pub fn set_group_mode(&self, gid: u32, mode: u32) -> io::Result<()> {
        std::os::unix::fs::fchown(&self.fd, None, Some(gid))?;
        // SAFETY: a valid descriptor we own.
        if unsafe { libc::fchmod(self.fd.as_raw_fd(), mode as libc::mode_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn raw_openat(&self, name: &std::ffi::OsStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
        let c = cstr(name)?;
        // SAFETY: a valid dirfd and NUL-terminated name; the returned fd is checked.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: freshly opened, owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// What the entry `name` is, without following it; `None` if it does not exist.
    pub fn entry_kind(&self, name: &std::ffi::OsStr) -> io::Result<Option<u32>> {
        let c = cstr(name)?;
        // SAFETY: zeroed stat is a valid out-parameter.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid dirfd, NUL-terminated name, and a valid stat buffer.
        let r = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::NotFound {
                Ok(None)
            } else {
                Err(e)
            };
        }
        Ok(Some(st.st_mode))
    }

    /// Opens (or with `create`, creates) the sub-folder `rel` (one or more components), never
    /// following a link.
    pub fn subdir(&self, rel: &Path, create: bool) -> io::Result<Dir> {
        let mut cur = Dir {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
        };
        for comp in rel.components() {
            let Component::Normal(name) = comp else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: only plain relative paths", rel.display()),
                ));
            };
            let path = cur.path.join(name);
            if create && cur.entry_kind(name)?.is_none() {
                let c = cstr(name)?;
                // SAFETY: valid dirfd and name.
                let r = unsafe { libc::mkdirat(cur.fd.as_raw_fd(), c.as_ptr(), 0o755) };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::AlreadyExists {
                        return Err(e);
                    }
                }
            }
            let fd = match cur.raw_openat(name, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                    return Err(refused(&path, "a symbolic link"));
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                    let kind = cur.entry_kind(name)?.map(kind_of).unwrap_or("not a folder");
                    return Err(refused(&path, kind));
                }
                Err(e) => return Err(e),
            };
            cur = Dir { fd, path };
        }
        Ok(cur)
    }

    /// Opens the regular file `name` for reading; a link or anything else is refused.
    pub fn open_file(&self, name: &std::ffi::OsStr) -> io::Result<File> {
        let path = self.path.join(name);
        let fd = match self.raw_openat(name, libc::O_RDONLY | libc::O_NONBLOCK, 0) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(refused(&path, "a symbolic link"));
            }
            Err(e) => return Err(e),
        };
        let f = File::from(fd);
        let meta = f.metadata()?;
        if !meta.file_type().is_file() {
            return Err(refused(&path, kind_of(meta.mode())));
        }
        Ok(f)
    }

    /// Reads the whole regular file `name`.
    pub fn read(&self, name: &std::ffi::OsStr) -> io::Result<Vec<u8>> {
        let mut f = self.open_file(name)?;
        let mut out = Vec::new();
        f.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Replaces `name` with `bytes` atomically, with permissions `mode`. A link (or folder) at
    /// `name` is refused; nothing is written through one.
    pub fn write_atomic(&self, name: &std::ffi::OsStr, bytes: &[u8], mode: u32) -> io::Result<()> {
        self.write_atomic_with(name, mode, |f| f.write_all(bytes))
    }

    /// As [`Dir::write_atomic`], with the content written by `fill`.
    pub fn write_atomic_with(
        &self,
        name: &std::ffi::OsStr,
        mode: u32,
        fill: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> io::Result<()> {
        let path = self.path.join(name);
        if let Some(m) = self.entry_kind(name)?
            && m & libc::S_IFMT != libc::S_IFREG
        {
            return Err(refused(&path, kind_of(m)));
        }
        let tmp = std::ffi::OsString::from(format!(
            ".{}.stage2-tui.tmp.{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        // A stale temp of ours (a crash) may be in the way; remove it, never follow it.
        self.unlink(&tmp);
        let fd = self.raw_openat(
            &tmp,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            mode & 0o7777,
        )?;
        let mut f = File::from(fd);
        let r = (|| -> io::Result<()> {
            // Permissions before content: a secret is never readable by others, not even briefly.
            f.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))?;
            fill(&mut f)?;
            f.sync_all()?;
            self.rename(&tmp, name)?;
            self.sync()
        })();
        if r.is_err() {
            self.unlink(&tmp);
        }
        r
    }

    /// Renames `from` to `to` inside this folder (links are moved, never followed).
    pub fn rename(&self, from: &std::ffi::OsStr, to: &std::ffi::OsStr) -> io::Result<()> {
        let (a, b) = (cstr(from)?, cstr(to)?);
        // SAFETY: valid dirfds and NUL-terminated names.
        let r = unsafe {
            libc::renameat(
                self.fd.as_raw_fd(),
                a.as_ptr(),
                self.fd.as_raw_fd(),
                b.as_ptr(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Removes the file or link `name` (never what a link points to); errors are ignored.
    pub fn unlink(&self, name: &std::ffi::OsStr) {
        if let Ok(c) = cstr(name) {
            // SAFETY: valid dirfd and name.
            unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) };
        }
    }

    /// fsyncs the folder (so a rename is durable).
    pub fn sync(&self) -> io::Result<()> {
        // SAFETY: a valid descriptor.
        if unsafe { libc::fsync(self.fd.as_raw_fd()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Splits a path inside `root` into (its folder, relative to `root`) and its file name.
pub fn split_inside<'a>(root: &Path, path: &'a Path) -> io::Result<(PathBuf, &'a std::ffi::OsStr)> {
    let rel = path.strip_prefix(root).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not inside {}", path.display(), root.display()),
        )
    })?;
    let name = rel.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    Ok((
        rel.parent().map(Path::to_path_buf).unwrap_or_default(),
        name,
    ))
}

/// Reads the regular file `path`: its folder is trusted (the deployconfig), the file itself is
/// opened without following a link.
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    Dir::open(dir)?.read(path.file_name().unwrap_or_default())
}

/// Reads a regular file at `path` below the trusted folder `root`, following no link below it.
pub fn read_inside(root: &Path, path: &Path) -> io::Result<Vec<u8>> {
    let (dir, name) = split_inside(root, path)?;
    Dir::open(root)?.subdir(&dir, false)?.read(name)
}

/// Atomically writes `path` below the trusted folder `root` (creating its folders), following
/// no link below it.
pub fn write_inside(root: &Path, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let (dir, name) = split_inside(root, path)?;
    Dir::open(root)?
        .subdir(&dir, true)?
        .write_atomic(name, bytes, mode)
}

/// Creates a private folder (and missing parents) with mode 0700, and checks that the folder is
/// a real folder owned by us that nobody else can write.
pub fn private_dir(path: &Path) -> io::Result<()> {
    let meta = missing_dirs_private(path)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} belongs to uid {}, not to this user (uid {me}); stage2-tui keeps its state only in folders it owns",
                path.display(),
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates the folders of `path` that are missing, private (0700), and leaves the ones already
/// there as they are: a folder the operator named (`/tmp`, a home folder) is not stage2-tui's to
/// chmod, unlike its own state folders ([`private_dir`]). Refuses a `path` that is not a folder
/// (a link included); returns what it found there.
pub fn missing_dirs_private(path: &Path) -> io::Result<std::fs::Metadata> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_dir() {
        return Err(refused(path, kind_of(meta.mode())));
    }
    Ok(meta)
}

/// Creates (truncates) a private file (0600), not following a link at `path`.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                refused(path, "a symbolic link")
            } else {
                e
            }
        })?;
    if f.metadata()?.mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

/// Opens `path` for reading without blocking on a named pipe (`O_NONBLOCK`, plus `flags`), and
/// checks it is a regular file (a link refused by `O_NOFOLLOW` is named as such). `None`: it
/// does not exist.
fn open_regular(path: &Path, flags: i32) -> io::Result<Option<(File, std::fs::Metadata)>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refused(path, "a symbolic link"));
        }
        Err(e) => return Err(e),
    };
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        return Err(refused(path, kind_of(meta.mode())));
    }
    Ok(Some((f, meta)))
}

/// Reads a file of stage2-tui's own private state (run state, cluster snapshot, a step log for
/// the bundle) without trusting it: opened with `O_NOFOLLOW|O_NONBLOCK` (a link is refused, a
/// named pipe cannot hang the reader), it must be a regular file owned by us, and at most `cap`
/// bytes are read (`Ok(None)` when it does not exist). A longer file is an error when
/// `tail_ok` is false, else its last `cap` bytes are returned.
pub fn read_private(path: &Path, cap: u64, tail_ok: bool) -> io::Result<Option<Vec<u8>>> {
    use std::io::Seek;
    let Some((f, meta)) = open_regular(path, libc::O_NOFOLLOW)? else {
        return Ok(None);
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} belongs to uid {}, not to stage2-tui's user: it is not stage2-tui's own; move it aside",
                path.display(),
                meta.uid()
            ),
        ));
    }
    let mut f = f;
    if meta.len() > cap {
        if !tail_ok {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is {} bytes, more than the {cap} stage2-tui ever writes there: move it aside",
                    path.display(),
                    meta.len()
                ),
            ));
        }
        f.seek(io::SeekFrom::Start(meta.len() - cap))?;
    }
    let mut bytes = Vec::new();
    f.take(cap).read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Reads one of the user's own settings files (key map, theme): links are followed (dotfiles
/// are often links), but it must be a regular file (a named pipe would hang the start) of at
/// most 1 MiB.
pub fn read_settings_file(path: &Path) -> io::Result<String> {
    const CAP: u64 = 1 << 20;
    let (f, meta) = open_regular(path, 0)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} does not exist", path.display()),
        )
    })?;
    if meta.len() > CAP {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is larger than 1 MiB", path.display()),
        ));
    }
    let mut text = String::new();
    f.take(CAP).read_to_string(&mut text)?;
    Ok(text)
}

/// Quotes a value for a POSIX shell (`'…'`, with `'` written as `'\''`).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A user's uid and primary gid, from the system's user database (`None`: no such user).
pub fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: zeroed passwd is a valid out-parameter; getpwnam_r writes only into `pw` and `buf`.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf's length is passed.
    let rc =
        unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    (rc == 0 && !out.is_null()).then_some((pw.pw_uid, pw.pw_gid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_are_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let victim = root.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::fs::create_dir(root.join("dc")).unwrap();
        symlink(&victim, root.join("dc/config.json")).unwrap();
        let dc = Dir::open(&root.join("dc")).unwrap();
        let e = dc
            .write_atomic("config.json".as_ref(), b"evil", 0o600)
            .unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let e = dc.read("config.json".as_ref()).unwrap_err();
        assert!(e.to_string().contains("dc/config.json"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        // A linked folder on the way is refused too.
        std::fs::create_dir(root.join("elsewhere")).unwrap();
        symlink(root.join("elsewhere"), root.join("dc/auth")).unwrap();
        let e = write_inside(&root.join("dc"), &root.join("dc/auth/x"), b"x", 0o600).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(!root.join("elsewhere/x").exists());
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(root.join("dc")).unwrap().collect();
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn atomic_write_keeps_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/f");
        write_inside(dir.path(), &p, b"one", 0o640).unwrap();
        write_inside(dir.path(), &p, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_inside(dir.path(), &p).unwrap(), b"two");
    }

    #[test]
    fn a_settings_file_that_is_a_pipe_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dark.toml");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_settings_file(&p).unwrap_err();
        assert!(e.to_string().contains("named pipe"), "{e}");
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, "x").unwrap();
        assert_eq!(read_settings_file(&p).unwrap(), "x");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("/a b/it's"), "'/a b/it'\\''s'");
    }
}
