//! Finding and connecting to an engine endpoint.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bollard::{API_DEFAULT_VERSION, Docker};

use super::{Engine, EngineError, EngineInfo, Result};
use crate::http::{self, HttpError};

/// How the caller asked us to find the engine.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// `--engine` (or `STAGE2_ENGINE`): when set, only this endpoint is tried.
    pub explicit: Option<String>,
    /// Whether we may start a private `podman system service` when nothing answers.
    pub allow_private_service: bool,
}

/// A `podman system service` we started for this process; stopped when dropped.
#[derive(Debug)]
pub struct PrivateService {
    child: Child,
    /// Socket path it listens on.
    pub socket: PathBuf,
}

impl Drop for PrivateService {
    fn drop(&mut self) {
        // The whole process group: a rootless service re-executes itself in a user namespace,
        // and killing only the first process would leave that child serving.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill has no memory effects; -pid is the group made at spawn.
            unsafe {
                libc::kill(-pid, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                // Reaped, the leader no longer counts as a member of its group.
                let _ = self.child.try_wait();
                if !group_alive(pid) || Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // SAFETY: as above.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// True while any process of group `pgid` lives (the reaped leader aside).
fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks that the group exists.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

fn socket_path(endpoint: &str) -> Option<&str> {
    endpoint
        .strip_prefix("unix://")
        .or_else(|| endpoint.starts_with('/').then_some(endpoint))
}

/// The endpoints to try, in order, each with where the suggestion came from.
fn candidates() -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for var in ["CONTAINER_HOST", "DOCKER_HOST"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            out.push((
                v,
                if var == "DOCKER_HOST" {
                    "DOCKER_HOST"
                } else {
                    "CONTAINER_HOST"
                },
            ));
        }
    }
    if let Ok(xdg) = std::env::var("XDG_RUNTIME_DIR")
        && !xdg.is_empty()
    {
        out.push((
            format!("unix://{xdg}/podman/podman.sock"),
            "rootless podman",
        ));
    }
    out.push(("unix:///run/podman/podman.sock".into(), "rootful podman"));
    out.push(("unix:///var/run/docker.sock".into(), "Docker"));
    out.push((
        format!("unix://{}", private_socket_path().display()),
        "private podman service from an earlier stage2-tui",
    ));
    out
}

/// Where our private podman service listens (stable, so a later process can reuse it): a 0700
/// folder in `$XDG_RUNTIME_DIR`, or `/run` for root.
fn private_socket_path() -> PathBuf {
    private_runtime_dir().join("podman.sock")
}

/// stage2-tui's private runtime folder for the engine (its API socket, the CLI engine's auth
/// and env files): 0700, in `$XDG_RUNTIME_DIR`, or `/run` for root.
pub(crate) fn private_runtime_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    match std::env::var("XDG_RUNTIME_DIR") {
        Ok(x) if !x.is_empty() => PathBuf::from(x).join("stage2-tui"),
        // Not /run/stage2-tui: that folder holds the world-readable driver pointers.
        _ if uid == 0 => PathBuf::from("/run/stage2-tui-engine"),
        _ => PathBuf::from(format!("/tmp/stage2-tui-{uid}")),
    }
}

/// Why an endpoint found on the fallback list is not to be trusted, if it is not: the socket
/// and its folder must belong to root or to us, the folder must not be writable by others (who
/// could swap the socket), and a socket others can write must sit where others cannot reach it.
fn distrust(socket: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let ok_owner = |uid: u32| uid == 0 || uid == me;
    let meta = std::fs::symlink_metadata(socket).ok()?;
    if !ok_owner(meta.uid()) {
        return Some(format!(
            "not trusted: the socket belongs to uid {}, neither root nor this user",
            meta.uid()
        ));
    }
    let dir = socket.parent()?;
    let dmeta = std::fs::metadata(dir).ok()?;
    if !ok_owner(dmeta.uid()) {
        return Some(format!(
            "not trusted: its folder {} belongs to uid {}, neither root nor this user",
            dir.display(),
            dmeta.uid()
        ));
    }
    if dmeta.mode() & 0o002 != 0 {
        return Some(format!(
            "not trusted: its folder {} is writable by every user",
            dir.display()
        ));
    }
    if meta.mode() & 0o002 != 0 && dmeta.mode() & 0o001 != 0 {
        return Some("not trusted: every user can write to the socket".into());
    }
    None
}

async fn try_endpoint(endpoint: &str) -> std::result::Result<(Docker, EngineInfo), String> {
    let Some(path) = socket_path(endpoint) else {
        return Err("only unix:// sockets are supported".into());
    };
    if !Path::new(path).exists() {
        return Err("no socket at that path".into());
    }
    // `/_ping` tells the product and the API version in its headers. `/version` says the same
    // but costs podman 4.3 about half a second (it asks conmon and the OCI runtime for their
    // versions): it is asked only of an engine whose ping does not say.
    let ping = http::unix(
        path,
        http::Request::new("GET", "/_ping"),
        Duration::from_secs(5),
    );
    let (product, version, api_version) = match ping.await {
        Err(HttpError::TimedOut(_)) => {
            return Err("socket exists but the service did not answer within 5 s".into());
        }
        Err(HttpError::Unreachable(e) | HttpError::Protocol(e)) => {
            return Err(format!("socket exists but ping failed: {e}"));
        }
        Ok(a) if a.status != 200 => {
            return Err(format!("socket exists but ping answered HTTP {}", a.status));
        }
        Ok(a) => match from_ping(&a.headers) {
            Some(p) => p,
            None => {
                let docker = Docker::connect_with_unix(path, 30, API_DEFAULT_VERSION)
                    .map_err(|e| e.to_string())?;
                let v = docker.version().await.map_err(|e| e.to_string())?;
                let product = v
                    .components
                    .as_ref()
                    .and_then(|c| c.first())
                    .map(|c| c.name.clone())
                    .or(v.platform.as_ref().map(|p| p.name.clone()))
                    .unwrap_or_else(|| "container engine".into());
                (
                    product,
                    v.version.unwrap_or_default(),
                    v.api_version.unwrap_or_default(),
                )
            }
        },
    };
    // The client speaks the lower of the server's API and bollard's default, as
    // `negotiate_version` would (without asking `/version` again).
    let speak = match client_version(&api_version) {
        Some(server) if server < *API_DEFAULT_VERSION => server,
        _ => *API_DEFAULT_VERSION,
    };
    let docker = Docker::connect_with_unix(path, 30, &speak).map_err(|e| e.to_string())?;
    let is_podman = product.to_ascii_lowercase().contains("podman");
    let warning = version_check(is_podman, &version, &api_version)?;
    let info = EngineInfo {
        endpoint: format!("unix://{path}"),
        product,
        version,
        api_version,
        is_podman,
        private_service: None,
        warning,
    };
    Ok((docker, info))
}

/// (product, version, API version) from `/_ping`'s headers: podman says `Server: Libpod/4.3.1
/// (linux)`, Docker `Server: Docker/24.0.7 (linux)`; both `Api-Version: 1.41`.
fn from_ping(headers: &[(String, String)]) -> Option<(String, String, String)> {
    let get = |k: &str| {
        headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let api = get("api-version").filter(|v| !v.is_empty())?;
    let (name, rest) = get("server")?.split_once('/')?;
    let version = rest.split_whitespace().next()?.to_string();
    let product = match name.to_ascii_lowercase().as_str() {
        "libpod" => "Podman Engine".to_string(),
        "docker" => "Docker Engine - Community".to_string(),
        _ => return None,
    };
    Some((product, version, api.to_string()))
}

/// "1.41" as a client version.
fn client_version(api: &str) -> Option<bollard::ClientVersion> {
    let (major, minor) = api.trim().split_once('.')?;
    Some(bollard::ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

/// The podman version stage2-tui is tested with (the oldest): older ones get a warning.
pub const TESTED_PODMAN: (u32, u32) = (4, 3);

fn major_minor(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim().trim_start_matches('v').split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// An engine too old to drive is an error naming its version and what to install; one older
/// than what stage2-tui is tested with is a warning.
pub fn version_check(
    is_podman: bool,
    version: &str,
    api_version: &str,
) -> std::result::Result<Option<String>, String> {
    if is_podman {
        let Some(v) = major_minor(version) else {
            return Ok(Some(format!(
                "podman reports version {version:?}, which stage2-tui cannot read; it is tested with podman {}.{}",
                TESTED_PODMAN.0, TESTED_PODMAN.1
            )));
        };
        if v.0 < 2 {
            return Err(format!(
                "podman {version} has no REST API that stage2-tui can drive (it arrived with podman 2.0). Install podman {}.{} or newer: on RHEL 8 or 9 `dnf install podman`; RHEL 7's podman 1.6 from extras has none, so use a RHEL 8/9 bastion",
                TESTED_PODMAN.0, TESTED_PODMAN.1
            ));
        }
        if v < TESTED_PODMAN {
            return Ok(Some(format!(
                "podman {version} is older than {}.{}, the oldest podman stage2-tui is tested with; it may work, but `dnf update podman` (RHEL 8.8+ and 9 ship 4.4 or newer) is the safe path",
                TESTED_PODMAN.0, TESTED_PODMAN.1
            )));
        }
        return Ok(None);
    }
    match major_minor(api_version) {
        Some(v) if v < (1, 25) => Err(format!(
            "Docker {version} (API {api_version}) is too old for stage2-tui (it needs API 1.25 or newer); install a current Docker or podman"
        )),
        Some(v) if v < (1, 41) => Ok(Some(format!(
            "Docker {version} (API {api_version}) is older than Docker 20.10 (API 1.41), the oldest stage2-tui is tested with"
        ))),
        _ => Ok(None),
    }
}

pub(crate) fn which(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

async fn start_private_service(podman: &Path) -> std::result::Result<PrivateService, String> {
    let socket = private_socket_path();
    if let Some(dir) = socket.parent() {
        crate::safefs::private_dir(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&socket);
    let mut cmd = Command::new(podman);
    cmd.args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", socket.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Its own process group: Ctrl-C in the operator's terminal must not kill the service
    // while we are still detaching cleanly.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", podman.display()))?;
    let mut service = PrivateService { child, socket };
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = service.child.try_wait() {
            return Err(format!("`podman system service` exited at once ({status})"));
        }
        if service.socket.exists() {
            return Ok(service);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("`podman system service` did not create its socket within 15 s".into())
}

/// Connects to the engine: the explicit endpoint only, or the usual candidates in order, and as
/// a last resort a private `podman system service` (announced on stderr).
pub async fn connect(opts: &ConnectOptions) -> Result<Engine> {
    let mut tried = String::new();
    if opts.explicit.as_deref() == Some(super::cli::CLI_ENDPOINT) {
        let podman = super::cli::Podman::from_env();
        let bin = podman.bin.display().to_string();
        return super::cli::connect_cli(podman)
            .await
            .map_err(|why| EngineError::NotFound {
                tried: format!("Tried:\n  - the podman command line ({bin}): {why}"),
            });
    }
    let list = match &opts.explicit {
        Some(e) => vec![(e.clone(), "--engine / STAGE2_ENGINE")],
        None => candidates(),
    };
    for (endpoint, origin) in &list {
        if opts.explicit.is_none()
            && let Some(why) = socket_path(endpoint).and_then(|p| distrust(Path::new(p)))
        {
            let _ = writeln!(tried, "  - {endpoint} ({origin}): {why}");
            continue;
        }
        match try_endpoint(endpoint).await {
            Ok((docker, info)) => {
                tracing::info!(%endpoint, version = %info.version, "engine connected");
                return Ok(Engine::new(docker, info));
            }
            Err(why) => {
                tracing::debug!(%endpoint, %why, "engine endpoint not used");
                let _ = writeln!(tried, "  - {endpoint} ({origin}): {why}");
            }
        }
    }
    // podman 1.x has no API to start: it is driven through its command line. Its version is
    // asked once, within 10 s (a podman that hangs here is left for the private service to try).
    if opts.explicit.is_none() {
        let podman = super::cli::Podman::from_env();
        if let Ok(version) = podman.version(Duration::from_secs(10)).await
            && major_minor(&version).is_some_and(|v| v.0 < 2)
        {
            eprintln!(
                "stage2-tui: podman {version} has no API service; driving it through the podman command (--engine cli)"
            );
            return Ok(super::cli::cli_engine(podman, version));
        }
    }
    if opts.explicit.is_none() && opts.allow_private_service {
        match private_engine().await {
            Ok(engine) => return Ok(engine),
            Err(why) => {
                let _ = writeln!(tried, "  - {why}");
            }
        }
    }
    Err(EngineError::NotFound {
        tried: format!("Tried:\n{}", tried.trim_end()),
    })
}

/// No socket answered: a podman API service of stage2-tui's own, for this session; or what
/// went wrong, for the list of what was tried.
async fn private_engine() -> std::result::Result<Engine, String> {
    let Some(podman) = which("podman") else {
        return Err("private `podman system service`: podman is not on the PATH".into());
    };
    let service = start_private_service(&podman)
        .await
        .map_err(|why| format!("private `podman system service`: {why}"))?;
    let endpoint = format!("unix://{}", service.socket.display());
    let checked = match distrust(&service.socket) {
        Some(why) => Err(why),
        None => try_endpoint(&endpoint).await,
    };
    let (docker, mut info) =
        checked.map_err(|why| format!("private podman service at {endpoint}: {why}"))?;
    eprintln!(
        "stage2-tui: no engine socket answered; started a private podman API service at {endpoint} (pid {}) for this session",
        service.child.id()
    );
    info.private_service = Some(service);
    Ok(Engine::new(docker, info))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_ping_headers_name_the_engine() {
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            from_ping(&h(&[
                ("api-version", "1.41"),
                ("libpod-api-version", "4.3.1"),
                ("server", "Libpod/4.3.1 (linux)")
            ])),
            Some(("Podman Engine".into(), "4.3.1".into(), "1.41".into()))
        );
        assert_eq!(
            from_ping(&h(&[
                ("api-version", "1.43"),
                ("server", "Docker/24.0.7 (linux)")
            ])),
            Some((
                "Docker Engine - Community".into(),
                "24.0.7".into(),
                "1.43".into()
            ))
        );
        // An engine that does not say: asked through /version instead.
        assert_eq!(from_ping(&h(&[("server", "nginx")])), None);
        assert_eq!(
            client_version("1.41").map(|v| (v.major_version, v.minor_version)),
            Some((1, 41))
        );
    }

    #[test]
    fn old_engines_are_named_with_what_to_install() {
        let e = version_check(true, "1.6.4", "").unwrap_err();
        assert!(
            e.contains("podman 1.6.4 has no REST API") && e.contains("dnf install podman"),
            "{e}"
        );
        let w = version_check(true, "3.4.4", "1.40").unwrap().unwrap();
        assert!(
            w.contains("podman 3.4.4 is older than 4.3") && w.contains("dnf update podman"),
            "{w}"
        );
        assert_eq!(version_check(true, "4.3.1", "1.41").unwrap(), None);
        assert_eq!(version_check(true, "5.2.2", "1.41").unwrap(), None);
        assert!(version_check(false, "19.03.1", "1.24").is_err());
        assert!(version_check(false, "19.03.1", "1.40").unwrap().is_some());
        assert_eq!(version_check(false, "27.1.0", "1.46").unwrap(), None);
    }

    #[test]
    fn sockets_others_can_swap_or_write_are_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("podman.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(
            distrust(&sock),
            None,
            "a 0666 socket in a 0700 folder is private"
        );
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(distrust(&sock).unwrap().contains("every user can write"));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(distrust(&sock).unwrap().contains("writable by every user"));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}
