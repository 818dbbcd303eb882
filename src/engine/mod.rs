//! The only code that talks to the container engine (podman or Docker): through its API with
//! bollard, or, for podman 1.x which has no API, through the `podman` binary ([`cli`]).
//!
//! Everything above this module sees typed operations ([`Engine`]) and typed errors
//! ([`EngineError`]); the podman 4.3.1 quirks measured in `ENGINE-NOTES.md` are handled here.

pub mod cli;
mod connect;
mod containers;
mod images;
pub mod logs;
mod models;
mod probe;

use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;

use crate::http::{self, HttpError};

/// How long an engine API call may take (a pull has its own limit).
pub(crate) const API_LIMIT: Duration = Duration::from_secs(60);

pub use connect::{ConnectOptions, connect};
pub use containers::{ContainerSpec, ContainerState, Mount, labels};
pub use images::{BuildContext, PullCredentials};
pub use probe::Installer;

/// Errors from the engine, each with enough context to tell the operator what to do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No engine endpoint answered; `tried` lists every candidate and why it failed.
    #[error(
        "no container engine answered.\n{tried}\nFix: start the engine's API service (root: `systemctl enable --now podman.socket`; rootless: `systemctl --user enable --now podman.socket`), or pass `--engine unix:///path/to/podman.sock` (also STAGE2_ENGINE); podman 1.x (RHEL 7) has no API: `--engine cli` drives its command line."
    )]
    NotFound {
        /// One line per candidate endpoint and the reason it was not used.
        tried: String,
    },
    /// The image is not in the engine's local storage.
    #[error(
        "image {image} is not present in the engine: pull it first (the pipeline's pull step does), or check registryurl and imagetag in config.json"
    )]
    MissingImage {
        /// Fully qualified image reference.
        image: String,
    },
    /// The deployconfig folder does not exist (podman would silently create an empty one).
    #[error(
        "deployconfig folder {0} does not exist: pass --deployconfig DIR (or STAGE2_DEPLOYCONFIG)"
    )]
    MissingDeployconfig(String),
    /// A container with the wanted name is running and is not ours to remove.
    #[error(
        "container {name} is already running and was not started by this run; stop it (`podman stop {name}`) and try again"
    )]
    NameInUse {
        /// The container name.
        name: String,
    },
    /// The engine stopped answering (its API service restarted, the socket went away). The
    /// containers keep running in the engine: reconnect and reattach, never fail a step for it.
    #[error("the engine is unreachable ({context}: {detail})")]
    Unreachable {
        /// What we were doing.
        context: String,
        /// What the connection said.
        detail: String,
    },
    /// A container of that name exists that stage2-tui did not create: never removed.
    #[error(
        "a container named {name} exists that stage2-tui did not create (it has no stage2-tui labels); it is left alone. Remove it yourself if it is not needed (`podman rm -f {name}`), then try again"
    )]
    Foreign {
        /// The container name.
        name: String,
    },
    /// The name is held by a container that exists only in podman's storage (no API object,
    /// so no labels): buildah's, or the half of a create the engine lost.
    #[error(
        "the name {name} is held by a container that exists only in podman's storage (a buildah container, or what an interrupted create left); stage2-tui does not remove what it cannot tell is its own. If it is not needed: `buildah rm {name}` (or `podman rm --storage {name}`), then retry"
    )]
    StorageOnly {
        /// The container name.
        name: String,
    },
    /// A container of that name belongs to another deployconfig's run: it is left alone.
    #[error(
        "container {name} belongs to the run {run} of another deployconfig, {deployconfig} ({}); stage2-tui never stops, replaces or removes another deployconfig's containers. Finish or stop that run first (`stage2-tui status --deployconfig {deployconfig}`), or give this pipeline's step another `name`",
        if *running { "running now" } else { "exited" }
    )]
    OwnedElsewhere {
        /// The container name.
        name: String,
        /// The deployconfig its labels name.
        deployconfig: String,
        /// Its run id.
        run: String,
        /// Whether it runs now.
        running: bool,
    },
    /// Any other API failure, with what we were doing.
    #[error("{context}: {source}")]
    Api {
        /// What we were doing when it failed.
        context: String,
        /// The bollard error.
        #[source]
        source: bollard::errors::Error,
    },
    /// Local I/O (log files, build context).
    #[error("{context}: {source}")]
    Io {
        /// What we were doing when it failed.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand for engine results.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

pub(crate) fn api(
    context: impl Into<String>,
) -> impl FnOnce(bollard::errors::Error) -> EngineError {
    use bollard::errors::Error as B;
    let context = context.into();
    move |source| match source {
        B::IOError { .. }
        | B::HyperResponseError { .. }
        | B::HyperLegacyError { .. }
        | B::SocketNotFoundError(_)
        | B::RequestTimeoutError => EngineError::Unreachable {
            context,
            detail: source.to_string(),
        },
        source => EngineError::Api { context, source },
    }
}

impl EngineError {
    /// The engine went away (as opposed to answering with an error).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, EngineError::Unreachable { .. })
    }
    /// The registry's certificate (or protocol) failed verification: a TLS problem that
    /// `--tls-verify=false` gets past. Classified here, where the engines' wordings are known.
    pub fn is_tls(&self) -> bool {
        tls_message(&self.to_string())
    }
    /// A start the engine refused because what it was making already exists (a start that an
    /// API restart interrupted half-way).
    pub fn is_already_exists(&self) -> bool {
        !self.is_unreachable() && self.to_string().contains("already exists")
    }
    /// A local disk filled up (writing a step's log).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, EngineError::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull)
    }
}

/// The engine's (or podman's) message says the registry's certificate or protocol failed
/// verification.
fn tls_message(e: &str) -> bool {
    e.contains("x509:")
        || e.contains("tls: ")
        || e.contains("certificate signed by unknown authority")
        || e.contains("server gave HTTP response to HTTPS client")
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EngineError {
    let context = context.into();
    move |source| EngineError::Io { context, source }
}

pub(crate) fn http_error(context: &str, e: HttpError) -> EngineError {
    match e {
        HttpError::Unreachable(detail) | HttpError::TimedOut(detail) => EngineError::Unreachable {
            context: context.to_string(),
            detail,
        },
        HttpError::Protocol(m) => io(context)(std::io::Error::other(m)),
    }
}

/// Which description of itself the engine gives ([`Engine::about_json`]).
#[derive(Debug, Clone, Copy)]
pub enum About {
    /// `/version`, `podman version`.
    Version,
    /// `/info`, `podman info`.
    Info,
}

/// What we learned about the engine when connecting.
#[derive(Debug)]
pub struct EngineInfo {
    /// The endpoint used, e.g. `unix:///run/podman/podman.sock`.
    pub endpoint: String,
    /// Product name reported by the engine ("Podman Engine", "Docker Engine - Community", …).
    pub product: String,
    /// Engine version.
    pub version: String,
    /// Negotiated API version.
    pub api_version: String,
    /// True when the engine is podman (k8s-file logs, `localhost/` short names).
    pub is_podman: bool,
    /// Set when we started a private `podman system service` for this process.
    pub private_service: Option<connect::PrivateService>,
    /// Said once at connect: the engine is older than what stage2-tui is tested with.
    pub warning: Option<String>,
}

/// How the engine is reached.
#[derive(Clone)]
enum Backend {
    /// Its API socket, through bollard.
    Api {
        docker: Docker,
        /// The same client without a timeout, for streams (logs, wait) that may be silent for long.
        streams: Docker,
    },
    /// The `podman` binary (podman 1.x, no API).
    Cli(Arc<cli::Podman>),
}

/// A connected engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    backend: Backend,
    info: Arc<EngineInfo>,
    /// Set once the engine said it has no init binary (catatonit missing): containers are then
    /// created without one. The flag's second half says whether that was reported yet.
    no_init: Arc<[std::sync::atomic::AtomicBool; 2]>,
}

impl Engine {
    fn new(docker: Docker, info: EngineInfo) -> Self {
        let streams = docker.clone().with_timeout(Duration::MAX);
        Self {
            backend: Backend::Api { docker, streams },
            info: Arc::new(info),
            no_init: Arc::new(Default::default()),
        }
    }

    fn with_cli(podman: cli::Podman, info: EngineInfo) -> Self {
        Self {
            backend: Backend::Cli(Arc::new(podman)),
            info: Arc::new(info),
            no_init: Arc::new(Default::default()),
        }
    }

    /// The `podman` binary when this is the CLI engine.
    fn cli(&self) -> Option<&cli::Podman> {
        match &self.backend {
            Backend::Cli(p) => Some(p),
            Backend::Api { .. } => None,
        }
    }

    /// The podman binary the CLI engine runs; `None` on the API engine.
    pub fn podman_binary(&self) -> Option<&std::path::Path> {
        self.cli().map(|p| p.bin.as_path())
    }

    /// The API clients (the plain one, the one for streams). Every method that uses them has
    /// answered for the CLI engine before; reaching here on it is an error, never a panic.
    fn clients(&self, context: &str) -> Result<(&Docker, &Docker)> {
        match &self.backend {
            Backend::Api { docker, streams } => Ok((docker, streams)),
            Backend::Cli(_) => Err(io(context)(std::io::Error::other(
                "the podman command-line engine has no API for this",
            ))),
        }
    }

    /// What we know about the engine.
    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// Socket path of the engine.
    pub(crate) fn socket(&self) -> &str {
        self.info
            .endpoint
            .strip_prefix("unix://")
            .unwrap_or(&self.info.endpoint)
    }

    /// Negotiated API version, for raw requests.
    fn api_version(&self) -> &str {
        if self.info.api_version.is_empty() {
            "1.41"
        } else {
            &self.info.api_version
        }
    }

    /// GETs an API path (the version prefix is added) and parses its JSON answer; `None` on 404.
    /// Used where bollard's models reject what podman sends (see `raw`).
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        context: &str,
    ) -> Result<Option<T>> {
        self.clients(context)?;
        let fail = |e: String| io(context)(std::io::Error::other(e));
        let url = format!("/v{}{path}", self.api_version());
        let mut tries = 0;
        let (status, body) = loop {
            let a = http::unix(self.socket(), http::Request::new("GET", &url), API_LIMIT)
                .await
                .map_err(|e| http_error(context, e))?;
            let (status, body) = (a.status, a.body);
            // podman answers 500 when the container's process ends while it reads /proc for
            // the answer ("read /proc/N/cgroup: no such process"): a GET is asked again.
            tries += 1;
            if status == 500 && tries < 5 {
                tokio::time::sleep(std::time::Duration::from_millis(100 * tries)).await;
                continue;
            }
            break (status, body);
        };
        match status {
            404 => Ok(None),
            200 => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| fail(e.to_string())),
            s => Err(fail(format!(
                "engine answered {s}: {}",
                String::from_utf8_lossy(&body).trim()
            ))),
        }
    }

    /// Containers are created without an init process (the engine has none).
    pub fn without_init(&self) -> bool {
        self.no_init[0].load(std::sync::atomic::Ordering::Acquire)
    }

    /// Once, after the engine turned out to have no init binary: the line that says so.
    pub fn take_init_note(&self) -> Option<String> {
        use std::sync::atomic::Ordering;
        (self.without_init() && !self.no_init[1].swap(true, Ordering::AcqRel)).then(|| {
            "the engine has no container init binary (catatonit is not installed): containers run without one, so a stop waits up to its 10 s timeout before the kill (`dnf install catatonit` restores fast stops)".to_string()
        })
    }

    fn note_no_init(&self, e: &EngineError) -> bool {
        let missing = e.to_string().contains("container-init binary not found");
        if missing {
            self.no_init[0].store(true, std::sync::atomic::Ordering::Release);
        }
        missing
    }

    /// GETs an API path (the version prefix is added) as JSON; `None` on 404.
    async fn api_json(&self, path: &str) -> Result<Option<serde_json::Value>> {
        self.get_json(path, &format!("GET {path}")).await
    }

    /// The engine's version and system information (`/version` and `/info`, or `podman
    /// version` and `podman info`), as JSON, for the support bundle.
    pub async fn about_json(&self, what: About) -> Result<Option<serde_json::Value>> {
        let word = match what {
            About::Version => "version",
            About::Info => "info",
        };
        match self.cli() {
            Some(p) => self.cli_json(p, word).await,
            None => self.api_json(&format!("/{word}")).await,
        }
    }

    /// A container as the engine describes it (`inspect`), whole; `None` if it is gone.
    pub async fn inspect_json(&self, id: &str) -> Result<Option<serde_json::Value>> {
        match self.cli() {
            Some(p) => self.cli_inspect_json(p, "container", id).await,
            None => {
                self.api_json(&format!("/containers/{}/json", http::encode(id)))
                    .await
            }
        }
    }

    /// True when the engine answers a ping within 5 s (a bounded `podman ps` on the CLI engine).
    pub async fn ping(&self) -> bool {
        match &self.backend {
            Backend::Cli(p) => self.cli_ping(p).await,
            Backend::Api { docker, .. } => matches!(
                tokio::time::timeout(Duration::from_secs(5), docker.ping()).await,
                Ok(Ok(_))
            ),
        }
    }

    /// One line describing the engine, for logs and headers.
    pub fn describe(&self) -> String {
        match self.cli() {
            Some(p) => format!(
                "podman {} through its command line ({}, no API)",
                self.info.version,
                p.bin.display()
            ),
            None => format!(
                "{} {} (API {}) at {}",
                self.info.product, self.info.version, self.info.api_version, self.info.endpoint
            ),
        }
    }
}
