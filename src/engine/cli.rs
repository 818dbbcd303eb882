//! The podman CLI engine: the same operations as the API engine, done by running the `podman`
//! binary. For podman 1.x (RHEL 7's extras), which has no REST API. It uses only subcommands and
//! flags podman 1.6.4 has (`tests/podman-1.6.4/flags.txt`; the test suite runs it through a
//! wrapper that refuses anything else), always as `--flag=value`.
//!
//! Every call is bounded: a `podman` that hangs (a stuck storage lock) or cannot run is treated
//! like an API that went away ([`EngineError::Unreachable`]): the runner holds and retries, and
//! never fails a step for it. What 1.6 lacks, and what takes its place:
//! - no create-time run limit (`--timeout`): the window guard alone ends a web server's window;
//! - no events stream worth following: `podman wait`, checked by a bounded `inspect` every few
//!   seconds (a wait that hangs is noticed);
//! - no registry tag listing (`search --list-tags`): `check` says it cannot ask, the pull tells;
//! - credentials go in a private auth file (`--authfile`), never on a command line others can read,
//!   and the environment in a private `--env-file`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use super::{ContainerSpec, ContainerState, Engine, EngineError, Result};

/// The endpoint name of the CLI engine (`--engine cli`, `STAGE2_ENGINE=cli`).
pub const CLI_ENDPOINT: &str = "cli";

/// The `podman` binary the CLI engine runs, and how long one call may take.
#[derive(Debug)]
pub struct Podman {
    /// The binary (`STAGE2_PODMAN`, else `podman` on the PATH).
    pub bin: PathBuf,
    /// The bound on one short call (`STAGE2_PODMAN_TIMEOUT` seconds, default 60).
    pub limit: Duration,
}

/// What a finished `podman` call printed.
pub(crate) struct Out {
    pub ok: bool,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Podman {
    /// The binary and bound from the environment.
    pub fn from_env() -> Self {
        let bin = std::env::var_os("STAGE2_PODMAN")
            .filter(|b| !b.is_empty())
            .map(PathBuf::from)
            .or_else(|| super::connect::which("podman"))
            .unwrap_or_else(|| PathBuf::from("podman"));
        let limit = std::env::var("STAGE2_PODMAN_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(60));
        Self { bin, limit }
    }

    /// Runs `podman args…` within `limit`. A podman that cannot be run, hangs, or dies of a
    /// signal is an outage; any other failure comes back as `Out { ok: false, .. }`.
    pub(crate) async fn call(
        &self,
        args: &[String],
        context: &str,
        limit: Duration,
    ) -> Result<Out> {
        let gone = |detail: String| EngineError::Unreachable {
            context: context.to_string(),
            detail,
        };
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| gone(format!("cannot run {}: {e}", self.bin.display())))?;
        let out = match tokio::time::timeout(limit, child.wait_with_output()).await {
            Ok(r) => r.map_err(|e| gone(format!("{}: {e}", self.bin.display())))?,
            Err(_) => {
                tracing::warn!(?args, secs = limit.as_secs(), "podman did not answer");
                return Err(gone(format!(
                    "`podman {}` did not answer within {} s",
                    args.first().map(String::as_str).unwrap_or_default(),
                    limit.as_secs()
                )));
            }
        };
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        tracing::debug!(?args, code = ?out.status.code(), %stderr, "podman");
        match out.status.code() {
            None => Err(gone(format!("podman was killed ({})", out.status))),
            // 126/127: the binary cannot be executed or is not there.
            Some(126 | 127) => Err(gone(stderr)),
            Some(c) => Ok(Out {
                ok: c == 0,
                stdout: out.stdout,
                stderr,
            }),
        }
    }

    /// Runs a short call; its stdout on success, an error naming `context` otherwise.
    pub(crate) async fn run(&self, args: &[String], context: &str) -> Result<Vec<u8>> {
        let out = self.call(args, context, self.limit).await?;
        if out.ok {
            Ok(out.stdout)
        } else {
            Err(failed(context, &out.stderr))
        }
    }
}

/// A podman call that answered with an error.
pub(crate) fn failed(context: &str, stderr: &str) -> EngineError {
    super::io(context)(std::io::Error::other(
        stderr
            .trim()
            .trim_start_matches("Error: ")
            .trim_start_matches("error: ")
            .to_string(),
    ))
}

/// True when podman's error says the object does not exist (1.6 and 4.x wordings).
pub(crate) fn is_missing(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    [
        "no such container",
        "no such image",
        "no such object",
        "no container with name or id",
        "image not known",
        "no such pod",
    ]
    .iter()
    .any(|m| s.contains(m))
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A private folder for the auth and env files (0700, the engine's own runtime folder).
fn private_file(name: &str, bytes: &[u8]) -> Result<PrivateFile> {
    let dir = super::connect::private_runtime_dir();
    let context = format!("writing a private file in {}", dir.display());
    crate::safefs::private_dir(&dir).map_err(super::io(&context))?;
    let path = dir.join(format!(
        "{name}.{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    let mut f = crate::safefs::create_private_file(&path).map_err(super::io(&context))?;
    f.write_all(bytes).map_err(super::io(&context))?;
    Ok(PrivateFile(path))
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A file removed when dropped.
struct PrivateFile(PathBuf);

impl Drop for PrivateFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl PrivateFile {
    fn flag(&self, flag: &str) -> String {
        format!("{flag}={}", self.0.display())
    }
}

/// `podman version`'s own version, from its JSON (4.x nests it under `Client`).
pub(crate) fn version_of(json: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    v.get("Client")
        .and_then(|c| c.get("Version"))
        .or_else(|| v.get("Version"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// The first element of a JSON array answer (`podman inspect`).
fn first(json: &[u8]) -> Option<serde_json::Value> {
    match serde_json::from_slice::<serde_json::Value>(json).ok()? {
        serde_json::Value::Array(mut a) if !a.is_empty() => Some(a.swap_remove(0)),
        _ => None,
    }
}

impl Engine {
    pub(super) async fn cli_create(&self, podman: &Podman, spec: &ContainerSpec) -> Result<String> {
        let context = format!("creating container {}", spec.name);
        let mut a = args(&["create"]);
        a.push(format!("--name={}", spec.name));
        let mut labels: Vec<_> = spec.labels.iter().collect();
        labels.sort();
        for (k, v) in labels {
            a.push(format!("--label={k}={v}"));
        }
        for m in &spec.mounts {
            a.push(format!("--volume={}", m.bind()));
        }
        if let Some(n) = &spec.network_mode {
            a.push(format!("--network={n}"));
        }
        if !self.without_init() {
            a.push("--init".into());
        }
        a.push("--log-driver=k8s-file".into());
        // The environment in a private file: values never show in `ps` to other users.
        let env_file = if spec.env.is_empty() {
            None
        } else {
            if spec.env.iter().any(|e| e.contains('\n')) {
                return Err(failed(
                    &context,
                    "an environment value has a line break, which podman's --env-file cannot carry",
                ));
            }
            Some(private_file(
                "env",
                (spec.env.join("\n") + "\n").as_bytes(),
            )?)
        };
        if let Some(f) = &env_file {
            a.push(f.flag("--env-file"));
        }
        if let Some(ep) = &spec.entrypoint {
            a.push(format!(
                "--entrypoint={}",
                serde_json::to_string(ep).unwrap_or_default()
            ));
        }
        a.push(spec.image.clone());
        a.extend(spec.cmd.iter().flatten().cloned());
        let out = podman.run(&a, &context).await?;
        let id = String::from_utf8_lossy(&out)
            .trim()
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        if id.is_empty() {
            return Err(failed(&context, "podman printed no container id"));
        }
        Ok(id)
    }

    pub(super) async fn cli_inspect_json(
        &self,
        podman: &Podman,
        kind: &str,
        id: &str,
    ) -> Result<Option<serde_json::Value>> {
        let context = format!("inspecting {kind} {id}");
        let out = podman
            .call(
                &[
                    "inspect".to_string(),
                    format!("--type={kind}"),
                    id.to_string(),
                ],
                &context,
                podman.limit,
            )
            .await?;
        if !out.ok {
            return if is_missing(&out.stderr) {
                Ok(None)
            } else {
                Err(failed(&context, &out.stderr))
            };
        }
        Ok(first(&out.stdout))
    }

    pub(super) async fn cli_inspect(
        &self,
        podman: &Podman,
        id: &str,
    ) -> Result<Option<super::models::Inspect>> {
        let Some(v) = self.cli_inspect_json(podman, "container", id).await? else {
            return Ok(None);
        };
        serde_json::from_value(v)
            .map(Some)
            .map_err(|e| failed(&format!("inspecting container {id}"), &e.to_string()))
    }

    pub(super) async fn cli_simple(
        &self,
        podman: &Podman,
        what: &str,
        a: Vec<String>,
        id: &str,
    ) -> Result<()> {
        let context = format!("{what} container {id}");
        let out = podman
            .call(&a, &context, podman.limit + Duration::from_secs(30))
            .await?;
        if out.ok || is_missing(&out.stderr) {
            Ok(())
        } else {
            Err(failed(&context, &out.stderr))
        }
    }

    /// Waits for the exit with `podman wait`, checking every few seconds with a bounded inspect
    /// that the container still runs and the engine still answers.
    pub(super) async fn cli_wait(&self, podman: &Podman, id: &str) -> Result<i64> {
        let context = format!("waiting for container {id}");
        let gone = || {
            super::io(&context)(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the container no longer exists",
            ))
        };
        let wait_args = ["wait".to_string(), id.to_string()];
        loop {
            let waiting = podman.call(&wait_args, &context, Duration::from_secs(24 * 3600));
            tokio::pin!(waiting);
            loop {
                tokio::select! {
                    _ = &mut waiting => break,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {
                        match self.inspect(id).await? {
                            None => return Err(gone()),
                            Some(ContainerState { running: true, .. }) => {}
                            Some(_) => break,
                        }
                    }
                }
            }
            // The wait's answer is not trusted alone (as on the API engine): inspect decides.
            match self.inspect(id).await? {
                None => return Err(gone()),
                Some(ContainerState {
                    exit_code: Some(c), ..
                }) => return Ok(c),
                Some(ContainerState { running: true, .. }) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Some(_) => return Ok(-1),
            }
        }
    }

    pub(super) async fn cli_find(
        &self,
        podman: &Podman,
        want: &[(&str, &str)],
    ) -> Result<Vec<String>> {
        let mut a = args(&["ps", "--all", "--no-trunc", "--format={{.ID}}"]);
        // One label filter (engines differ in how they combine several); the rest is checked on
        // each container's own labels.
        if let Some((k, v)) = want.first() {
            a.push(format!("--filter=label={k}={v}"));
        }
        let out = podman.run(&a, "listing containers").await?;
        let mut ids = Vec::new();
        for id in String::from_utf8_lossy(&out).split_whitespace() {
            if let Some(c) = self.inspect(id).await?
                && want
                    .iter()
                    .all(|(k, v)| c.labels.get(*k).is_some_and(|x| x == v))
            {
                ids.push(c.id);
            }
        }
        Ok(ids)
    }

    pub(super) async fn cli_image_exists(&self, podman: &Podman, image: &str) -> Result<bool> {
        let context = format!("inspecting image {image}");
        let out = podman
            .call(&args(&["image", "exists", image]), &context, podman.limit)
            .await?;
        match (out.ok, out.stderr.is_empty()) {
            (true, _) => Ok(true),
            // `image exists` says no with exit 1 and nothing on stderr.
            (false, true) => Ok(false),
            (false, false) if is_missing(&out.stderr) => Ok(false),
            (false, false) => Err(failed(&context, &out.stderr)),
        }
    }

    pub(super) async fn cli_image_label(
        &self,
        podman: &Podman,
        image: &str,
        key: &str,
    ) -> Result<Option<String>> {
        let Some(v) = self.cli_inspect_json(podman, "image", image).await? else {
            return Ok(None);
        };
        let label = |l: Option<&serde_json::Value>| {
            l.and_then(|l| l.get(key))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        Ok(label(v.get("Labels")).or_else(|| label(v.get("Config").and_then(|c| c.get("Labels")))))
    }

    pub(super) async fn cli_pull(
        &self,
        podman: &Podman,
        image: &str,
        creds: Option<&super::PullCredentials>,
        tls_verify: bool,
        progress: &mut impl FnMut(&str),
    ) -> Result<()> {
        let context = format!("pulling {image}");
        let mut a = args(&["pull"]);
        if !tls_verify {
            a.push("--tls-verify=false".into());
        }
        // Credentials in a private auth file: `--creds` would show the token in `ps`.
        let auth = match creds {
            Some(c) => {
                use base64::Engine as _;
                let host = image.split('/').next().unwrap_or_default();
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password));
                let doc = serde_json::json!({"auths": {host: {"auth": token}}});
                Some(private_file("auth", doc.to_string().as_bytes())?)
            }
            None => None,
        };
        if let Some(f) = &auth {
            a.push(f.flag("--authfile"));
        }
        a.push(image.to_string());
        let out = podman.call(&a, &context, Duration::from_secs(3600)).await?;
        for line in String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(out.stderr.lines())
            .filter(|l| !l.trim().is_empty())
        {
            progress(line.trim_end());
        }
        if out.ok {
            Ok(())
        } else {
            Err(failed(&context, &out.stderr))
        }
    }

    pub(super) async fn cli_build(
        &self,
        podman: &Podman,
        tag: &str,
        ctx: super::BuildContext,
        progress: &mut impl FnMut(&str),
    ) -> Result<()> {
        let context = format!("building {tag}");
        let dir = super::connect::private_runtime_dir().join(format!(
            "build.{}.{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        crate::safefs::private_dir(&dir).map_err(super::io(&context))?;
        let unpacked = tar::Archive::new(ctx.tar.as_slice())
            .unpack(&dir)
            .map_err(super::io(&context));
        let result = async {
            unpacked?;
            let a = vec![
                "build".to_string(),
                format!("--tag={tag}"),
                format!("--file={}", dir.join("Containerfile").display()),
                dir.display().to_string(),
            ];
            let out = podman.call(&a, &context, Duration::from_secs(1800)).await?;
            for l in String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.is_empty())
            {
                progress(l);
            }
            if out.ok {
                Ok(())
            } else {
                Err(failed(&context, &out.stderr))
            }
        }
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        result?;
        self.require_image(tag).await
    }

    pub(super) async fn cli_local_tags(&self, podman: &Podman, repo: &str) -> Result<Vec<String>> {
        let out = podman
            .run(
                &args(&["images", "--noheading", "--format={{.Repository}}:{{.Tag}}"]),
                "listing images",
            )
            .await?;
        let prefix = format!("{repo}:");
        let mut tags: Vec<String> = String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|t| t.trim().strip_prefix(&prefix).map(String::from))
            .collect();
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// Everything a container printed, stdout and stderr together (`podman logs`).
    pub(super) async fn cli_logs(&self, podman: &Podman, id: &str) -> Result<String> {
        let context = format!("reading the output of {id}");
        let out = podman
            .call(&args(&["logs", id]), &context, podman.limit)
            .await?;
        if !out.ok {
            return Err(failed(&context, &out.stderr));
        }
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&out.stderr);
        Ok(text)
    }

    /// `podman version` and `podman info` as JSON, for the support bundle.
    pub(super) async fn cli_json(
        &self,
        podman: &Podman,
        what: &str,
    ) -> Result<Option<serde_json::Value>> {
        let out = podman
            .run(
                &[what.to_string(), "--format=json".into()],
                &format!("podman {what}"),
            )
            .await?;
        serde_json::from_slice(&out)
            .map(Some)
            .map_err(|e| failed(&format!("podman {what}"), &e.to_string()))
    }

    /// The engine answers: a bounded `podman ps` (it takes podman's storage lock, which is what
    /// hangs when podman is stuck).
    pub(super) async fn cli_ping(&self, podman: &Podman) -> bool {
        podman
            .call(
                &args(&["ps", "--all", "--quiet", "--filter=label=stage2-tui.ping=1"]),
                "asking podman",
                Duration::from_secs(5).max(podman.limit.min(Duration::from_secs(15))),
            )
            .await
            .is_ok_and(|o| o.ok)
    }
}

impl Podman {
    /// `podman version`'s own version, asked within `limit`.
    pub(crate) async fn version(&self, limit: Duration) -> std::result::Result<String, String> {
        let out = self
            .call(
                &args(&["version", "--format=json"]),
                "podman version",
                limit,
            )
            .await
            .map_err(|e| e.to_string())?;
        if !out.ok {
            return Err(format!(
                "`{} version` failed: {}",
                self.bin.display(),
                out.stderr
            ));
        }
        version_of(&out.stdout)
            .ok_or_else(|| format!("`{} version` printed no version", self.bin.display()))
    }
}

/// The CLI engine on `podman`, whose `podman version` said `version`.
pub(crate) fn cli_engine(podman: Podman, version: String) -> Engine {
    let info = super::EngineInfo {
        endpoint: CLI_ENDPOINT.into(),
        product: "podman (command line)".into(),
        version,
        api_version: String::new(),
        is_podman: true,
        private_service: None,
        warning: None,
    };
    Engine::with_cli(podman, info)
}

/// Connects the CLI engine: `podman version` must answer.
pub(crate) async fn connect_cli(podman: Podman) -> std::result::Result<Engine, String> {
    let version = podman.version(podman.limit).await?;
    Ok(cli_engine(podman, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_from_both_shapes() {
        assert_eq!(
            version_of(br#"{"Version":"1.6.4","RemoteAPIVersion":1}"#).as_deref(),
            Some("1.6.4")
        );
        assert_eq!(
            version_of(br#"{"Client":{"APIVersion":"4.3.1","Version":"4.3.1"}}"#).as_deref(),
            Some("4.3.1")
        );
        assert_eq!(version_of(b"podman version 1.6.4"), None);
    }

    #[test]
    fn missing_objects_in_both_wordings() {
        assert!(is_missing(
            "Error: error looking up container \"x\": no container with name or ID x found: no such container"
        ));
        assert!(is_missing("Error: no such container x"));
        assert!(is_missing(
            "Error: inspecting object: no such object: \"x\""
        ));
        assert!(!is_missing(
            "Error: container-init binary not found on the host"
        ));
    }
}
