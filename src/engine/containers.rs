//! Creating, starting, waiting for, stopping and finding stage containers.

use std::collections::HashMap;

use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::{Engine, EngineError, Result, api};
use crate::http;

/// How long one wait for a container's exit lasts before it is asked again (after an inspect).
const WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Label keys we put on every container we create, so we can find them again.
pub mod labels {
    /// Always `stage2-tui`.
    pub const TOOL: &str = "stage2-tui.tool";
    /// The run id.
    pub const RUN: &str = "stage2-tui.run";
    /// The step id (`4.run-installer`, …).
    pub const STEP: &str = "stage2-tui.step";
    /// The attempt number of the step within the run, from 1.
    pub const ATTEMPT: &str = "stage2-tui.attempt";
    /// Absolute path of the deployconfig folder.
    pub const DEPLOYCONFIG: &str = "stage2-tui.deployconfig";
}

/// A bind mount: host path to container path, with options (`z`, `ro`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Absolute host path.
    pub source: String,
    /// Path inside the container.
    pub target: String,
    /// Mount options, comma-separated (`z`).
    pub options: String,
}

impl Mount {
    /// The `-v`-style bind string (`/src:/dst:z`).
    pub fn bind(&self) -> String {
        if self.options.is_empty() {
            format!("{}:{}", self.source, self.target)
        } else {
            format!("{}:{}:{}", self.source, self.target, self.options)
        }
    }
}

/// Everything needed to create one stage container.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// Fully qualified image reference.
    pub image: String,
    /// Entrypoint override.
    pub entrypoint: Option<Vec<String>>,
    /// Command (arguments) override.
    pub cmd: Option<Vec<String>>,
    /// `KEY=value` environment.
    pub env: Vec<String>,
    /// Bind mounts.
    pub mounts: Vec<Mount>,
    /// `host` for host networking.
    pub network_mode: Option<String>,
    /// Labels identifying tool, run and step.
    pub labels: HashMap<String, String>,
    /// A run limit the engine itself enforces (podman's `--timeout`): the container is killed
    /// this many seconds after it starts, whether or not stage2-tui is still running.
    pub run_limit_secs: Option<u64>,
}

/// What the engine says about a container now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// Container id.
    pub id: String,
    /// Still running.
    pub running: bool,
    /// Created but never started (a start that failed, or we were killed in between).
    pub never_started: bool,
    /// Exit code once it has exited.
    pub exit_code: Option<i64>,
    /// The engine's error text (failed start), if any.
    pub error: Option<String>,
    /// Log file path, when the engine keeps one we can read (podman k8s-file).
    pub log_path: Option<String>,
    /// Log driver.
    pub log_driver: Option<String>,
    /// Labels on the container.
    pub labels: HashMap<String, String>,
    /// When the engine started it (the engine's own clock).
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it exited, by the engine's clock.
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Engine {
    /// Creates a container as specified. An exited container with the same name is removed
    /// first; a running one that `may_replace` does not accept is an error.
    pub async fn create_container(
        &self,
        spec: &ContainerSpec,
        may_replace: impl Fn(&ContainerState) -> bool,
    ) -> Result<String> {
        self.require_image(&spec.image).await?;
        for m in &spec.mounts {
            if !std::path::Path::new(&m.source).exists() {
                return Err(EngineError::MissingDeployconfig(m.source.clone()));
            }
        }
        let existing = match self.inspect(&spec.name).await {
            // Half a container (in podman's database but not its storage, or the reverse), left
            // by an API restart in the middle of a create: clear it, it is not a stage's work.
            Err(e) if self.info().is_podman && e.to_string().contains("container not known") => {
                self.libpod_force_remove(&spec.name).await?;
                None
            }
            r => r?,
        };
        if let Some(old) = existing {
            if !old.labels.contains_key(labels::TOOL) {
                return Err(EngineError::Foreign {
                    name: spec.name.clone(),
                });
            }
            // Another deployconfig's run (a real install while a demo runs, or the reverse):
            // never stopped, replaced or removed from here.
            let ours = spec.labels.get(labels::DEPLOYCONFIG);
            let theirs = old.labels.get(labels::DEPLOYCONFIG);
            if theirs != ours {
                return Err(EngineError::OwnedElsewhere {
                    name: spec.name.clone(),
                    deployconfig: theirs.cloned().unwrap_or_else(|| "(none recorded)".into()),
                    run: old.labels.get(labels::RUN).cloned().unwrap_or_default(),
                    running: old.running,
                });
            }
            if old.running && !may_replace(&old) {
                return Err(EngineError::NameInUse {
                    name: spec.name.clone(),
                });
            }
            self.remove(&spec.name, true).await?;
        }
        // An engine without an init binary (catatonit missing on RHEL 8) refuses `init`: the
        // container is created without one, and every later one too.
        let created = match self.create_once(spec).await {
            Err(e) if !self.without_init() && self.note_no_init(&e) => self.create_once(spec).await,
            r => r,
        };
        match created {
            // The name is held, yet the API knows no container of that name: one that exists
            // only in podman's storage (buildah's, or half of an interrupted create).
            Err(e)
                if self.info().is_podman
                    && e.to_string().contains("already in use")
                    && matches!(self.inspect(&spec.name).await, Ok(None)) =>
            {
                Err(EngineError::StorageOnly {
                    name: spec.name.clone(),
                })
            }
            r => r,
        }
    }

    async fn create_once(&self, spec: &ContainerSpec) -> Result<String> {
        tracing::debug!(name = %spec.name, image = %spec.image, "creating a container");
        // podman 1.x has no run limit: the window guard alone ends a service's window there.
        if let Some(p) = self.cli() {
            return self.cli_create(p, spec).await;
        }
        if let Some(limit) = spec.run_limit_secs.filter(|_| self.info().is_podman) {
            return self.create_libpod(spec, limit).await;
        }
        let binds = spec.mounts.iter().map(Mount::bind).collect();
        let host_config = HostConfig {
            binds: Some(binds),
            network_mode: spec.network_mode.clone(),
            // catatonit/tini as PID 1: a stop takes ~0.1 s instead of the full timeout.
            init: Some(!self.without_init()),
            // k8s-file keeps a local log file we can read faster than the API (podman only).
            log_config: self.info().is_podman.then(|| HostConfigLogConfig {
                typ: Some("k8s-file".into()),
                config: None,
            }),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.cmd.clone(),
            env: Some(spec.env.clone()),
            labels: Some(spec.labels.clone()),
            tty: Some(false),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            host_config: Some(host_config),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let (docker, _) = self.clients("creating a container")?;
        let created = docker
            .create_container(Some(opts), body)
            .await
            .map_err(api(format!("creating container {}", spec.name)))?;
        Ok(created.id)
    }

    /// Creates through podman's own endpoint, which takes a run limit the engine enforces
    /// (ENGINE-NOTES 21); the compat endpoint has no such field.
    async fn create_libpod(&self, spec: &ContainerSpec, limit: u64) -> Result<String> {
        let context = format!("creating container {}", spec.name);
        let env: serde_json::Map<String, serde_json::Value> = spec
            .env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.into()),
                None => (e.clone(), "".into()),
            })
            .collect();
        let mounts: Vec<serde_json::Value> = spec
            .mounts
            .iter()
            .map(|m| {
                let options: Vec<&str> = m.options.split(',').filter(|o| !o.is_empty()).collect();
                serde_json::json!({"destination": m.target, "source": m.source, "type": "bind", "options": options})
            })
            .collect();
        let mut body = serde_json::json!({
            "name": spec.name,
            "image": spec.image,
            "env": env,
            "labels": spec.labels,
            "mounts": mounts,
            "init": !self.without_init(),
            "terminal": false,
            "log_configuration": {"driver": "k8s-file"},
            "timeout": limit,
        });
        if let Some(ep) = &spec.entrypoint {
            body["entrypoint"] = serde_json::json!(ep);
        }
        if let Some(cmd) = &spec.cmd {
            body["command"] = serde_json::json!(cmd);
        }
        if spec.network_mode.as_deref() == Some("host") {
            body["netns"] = serde_json::json!({"nsmode": "host"});
        }
        let bytes =
            serde_json::to_vec(&body).map_err(|e| super::io(&context)(std::io::Error::other(e)))?;
        let req = http::Request {
            json: Some(&bytes),
            ..http::Request::new("POST", "/v4.0.0/libpod/containers/create")
        };
        let a = http::unix(self.socket(), req, super::API_LIMIT)
            .await
            .map_err(|e| super::http_error(&context, e))?;
        let (status, answer) = (a.status, a.body);
        let text = String::from_utf8_lossy(&answer);
        if status != 201 && status != 200 {
            return Err(super::io(&context)(std::io::Error::other(format!(
                "engine answered {status}: {}",
                text.trim()
            ))));
        }
        let v: serde_json::Value = serde_json::from_slice(&answer)
            .map_err(|e| super::io(&context)(std::io::Error::other(e)))?;
        v.get("Id")
            .and_then(|i| i.as_str())
            .map(str::to_string)
            .ok_or_else(|| super::io(&context)(std::io::Error::other(format!("no Id in {text}"))))
    }

    /// Removes what a create interrupted by an API restart can leave: a container that exists
    /// only in podman's storage (no API object, so no labels to check) and holds `name`. Podman
    /// only; `Ok(false)` when there was nothing to remove.
    pub async fn remove_storage_leftover(&self, name: &str) -> Result<bool> {
        if !self.info().is_podman || self.inspect(name).await?.is_some() {
            return Ok(false);
        }
        self.libpod_force_remove(name).await
    }

    /// `DELETE /libpod/containers/{name}?force=true`, which also clears storage-only containers.
    async fn libpod_force_remove(&self, name: &str) -> Result<bool> {
        let context = format!("removing the leftover of an interrupted create of {name}");
        if let Some(p) = self.cli() {
            let a = vec!["rm".to_string(), "--force".into(), name.to_string()];
            let out = p.call(&a, &context, p.limit).await?;
            return match (out.ok, super::cli::is_missing(&out.stderr)) {
                (true, _) => Ok(true),
                (false, true) => Ok(false),
                (false, false) => Err(super::cli::failed(&context, &out.stderr)),
            };
        }
        let path = format!(
            "/v4.0.0/libpod/containers/{}?force=true",
            http::encode(name)
        );
        let a = http::unix(
            self.socket(),
            http::Request::new("DELETE", &path),
            super::API_LIMIT,
        )
        .await
        .map_err(|e| super::http_error(&context, e))?;
        let (status, body) = (a.status, a.body);
        match status {
            200 | 204 => Ok(true),
            404 => Ok(false),
            s => Err(super::io(&context)(std::io::Error::other(format!(
                "engine answered {s}: {}",
                String::from_utf8_lossy(&body).trim()
            )))),
        }
    }

    /// Starts a created container.
    pub async fn start(&self, id: &str) -> Result<()> {
        if let Some(p) = self.cli() {
            let context = format!("starting container {id}");
            return p
                .run(&["start".to_string(), id.to_string()], &context)
                .await
                .map(drop);
        }
        let (docker, _) = self.clients("starting a container")?;
        docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(api(format!("starting container {id}")))
    }

    /// Waits until the container is not running and returns its exit code.
    /// Uses `not-running`, which also answers at once for a container that already exited.
    pub async fn wait_exit(&self, id: &str) -> Result<i64> {
        if let Some(p) = self.cli() {
            return self.cli_wait(p, id).await;
        }
        loop {
            let code = self.wait_once(id).await?;
            // The wait answer is not trusted alone: podman can answer early (-1 before start, or
            // a spurious 0 under load). Inspect decides; a container still running is waited on again.
            match self.inspect(id).await? {
                Some(ContainerState { running: true, .. }) => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Some(ContainerState {
                    exit_code: Some(c), ..
                }) => return Ok(c),
                Some(_) => return Ok(code),
                // Removed under us (`podman rm -f`): whatever the wait said is not its exit code.
                None => {
                    return Err(super::io(format!("waiting for container {id}"))(
                        std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "the container no longer exists",
                        ),
                    ));
                }
            }
        }
    }

    /// One wait for the container to stop: the code the engine says (not trusted alone).
    async fn wait_once(&self, id: &str) -> Result<i64> {
        let context = format!("waiting for container {id}");
        if self.info().is_podman {
            // libpod's own wait answers within about 70 ms of the exit; the Docker-compatible
            // one took 0.5 s and more on podman 4.3 (measured), which every step paid.
            let path = format!(
                "/v4.0.0/libpod/containers/{}/wait?condition=stopped&condition=exited&interval=250ms",
                http::encode(id)
            );
            return match http::unix(self.socket(), http::Request::new("POST", &path), WAIT_LIMIT)
                .await
            {
                Ok(a) if a.status == 200 => Ok(String::from_utf8_lossy(&a.body)
                    .trim()
                    .parse()
                    .unwrap_or(-1)),
                // Gone, or no answer for a long time: inspect decides.
                Ok(a) if a.status == 404 => Ok(-1),
                Err(http::HttpError::TimedOut(_)) => Ok(-1),
                Ok(a) => Err(super::io(&context)(std::io::Error::other(format!(
                    "engine answered {}: {}",
                    a.status,
                    String::from_utf8_lossy(&a.body).trim()
                )))),
                Err(e) => Err(super::http_error(&context, e)),
            };
        }
        let (_, streams) = self.clients("waiting for a container")?;
        let opts = WaitContainerOptionsBuilder::default()
            .condition("not-running")
            .build();
        let mut stream = streams.wait_container(id, Some(opts));
        match stream.next().await {
            Some(Ok(resp)) => Ok(resp.status_code),
            // bollard turns a non-zero exit into an error; the code is in the variant.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(api(context)(e)),
            None => Ok(-1),
        }
    }

    /// Stops a container (SIGTERM, then SIGKILL after `timeout_secs`). Not an error if it is gone.
    pub async fn stop(&self, id: &str, timeout_secs: i32) -> Result<()> {
        tracing::debug!(%id, timeout_secs, "stopping a container");
        if let Some(p) = self.cli() {
            let a = vec![
                "stop".to_string(),
                format!("--time={}", timeout_secs.max(0)),
                id.to_string(),
            ];
            return self.cli_simple(p, "stopping", a, id).await;
        }
        let (docker, _) = self.clients("stopping a container")?;
        let opts = StopContainerOptionsBuilder::default()
            .t(timeout_secs)
            .build();
        match docker.stop_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 304: already stopped.
            Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(api(format!("stopping container {id}"))(e)),
        }
    }

    /// Removes a container (forcing if asked). Not an error if it is gone.
    pub async fn remove(&self, id: &str, force: bool) -> Result<()> {
        tracing::debug!(%id, force, "removing a container");
        if let Some(p) = self.cli() {
            let mut a = vec!["rm".to_string()];
            if force {
                a.push("--force".into());
            }
            a.push(id.to_string());
            return self.cli_simple(p, "removing", a, id).await;
        }
        let (docker, _) = self.clients("removing a container")?;
        let opts = RemoveContainerOptionsBuilder::default()
            .force(force)
            .build();
        match docker.remove_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api(format!("removing container {id}"))(e)),
        }
    }

    /// Inspects a container by id or name; `None` if it does not exist.
    pub async fn inspect(&self, id: &str) -> Result<Option<ContainerState>> {
        let resp = match self.cli() {
            Some(p) => self.cli_inspect(p, id).await?,
            None => {
                let path = format!("/containers/{}/json", http::encode(id));
                self.get_json::<super::models::Inspect>(
                    &path,
                    &format!("inspecting container {id}"),
                )
                .await?
            }
        };
        let Some(resp) = resp else {
            return Ok(None);
        };
        let set = |s: &str| !s.is_empty() && !s.starts_with("0001-");
        let time = |s: &str| {
            set(s)
                .then(|| chrono::DateTime::parse_from_rfc3339(s).ok())
                .flatten()
                .map(|t| t.with_timezone(&chrono::Utc))
        };
        let state = resp.state;
        let running = state.running;
        let never_started = !running && !set(&state.started_at) && !set(&state.finished_at);
        Ok(Some(ContainerState {
            id: resp.id,
            running,
            never_started,
            exit_code: (!running && !never_started).then_some(state.exit_code),
            error: Some(state.error).filter(|e| !e.is_empty()),
            log_path: resp.log_path.filter(|p| !p.is_empty()).or(resp
                .host_config
                .log_config
                .path
                .filter(|p| !p.is_empty())),
            log_driver: Some(resp.host_config.log_config.typ).filter(|t| !t.is_empty()),
            labels: resp.config.labels.unwrap_or_default(),
            started_at: time(&state.started_at),
            finished_at: time(&state.finished_at),
        }))
    }

    /// Ids of all containers (running or not) carrying every one of `want` labels.
    pub async fn find_by_labels(&self, want: &[(&str, &str)]) -> Result<Vec<String>> {
        if let Some(p) = self.cli() {
            return self.cli_find(p, want).await;
        }
        let filters = serde_json::json!({ "label": want.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>() });
        let path = format!(
            "/containers/json?all=true&filters={}",
            http::encode(&filters.to_string())
        );
        let list: Vec<super::models::Summary> = self
            .get_json(&path, "listing containers")
            .await?
            .unwrap_or_default();
        // Filter again here: engines differ in how they combine several label filters.
        Ok(list
            .into_iter()
            .filter(|c| {
                let labels = c.labels.clone().unwrap_or_default();
                want.iter()
                    .all(|(k, v)| labels.get(*k).is_some_and(|x| x == v))
            })
            .map(|c| c.id)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_strings_carry_selinux_relabel() {
        let m = Mount {
            source: "/home/core/deployconfig".into(),
            target: "/tmp/workingdir".into(),
            options: "z".into(),
        };
        assert_eq!(m.bind(), "/home/core/deployconfig:/tmp/workingdir:z");
    }
}
