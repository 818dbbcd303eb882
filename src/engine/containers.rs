//! Creating, starting, waiting for, stopping and finding stage containers.

use std::collections::HashMap;

use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::{Engine, EngineError, Result, api};

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
}

fn is_not_found(e: &BollardError) -> bool {
    matches!(e, BollardError::DockerResponseServerError { status_code: 404, .. })
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
        if let Some(old) = self.inspect(&spec.name).await? {
            if old.running && !may_replace(&old) {
                return Err(EngineError::NameInUse {
                    name: spec.name.clone(),
                });
            }
            self.remove(&spec.name, true).await?;
        }
        let binds = spec
            .mounts
            .iter()
            .map(|m| {
                if m.options.is_empty() {
                    format!("{}:{}", m.source, m.target)
                } else {
                    format!("{}:{}:{}", m.source, m.target, m.options)
                }
            })
            .collect();
        let host_config = HostConfig {
            binds: Some(binds),
            network_mode: spec.network_mode.clone(),
            // catatonit/tini as PID 1: a stop takes ~0.1 s instead of the full timeout.
            init: Some(true),
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
        let opts = CreateContainerOptionsBuilder::default().name(&spec.name).build();
        let created = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(api(format!("creating container {}", spec.name)))?;
        Ok(created.id)
    }

    /// Starts a created container.
    pub async fn start(&self, id: &str) -> Result<()> {
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(api(format!("starting container {id}")))
    }

    /// Waits until the container is not running and returns its exit code.
    /// Uses `not-running`, which also answers at once for a container that already exited.
    pub async fn wait_exit(&self, id: &str) -> Result<i64> {
        let opts = WaitContainerOptionsBuilder::default().condition("not-running").build();
        let mut stream = self.streams.wait_container(id, Some(opts));
        let code = match stream.next().await {
            Some(Ok(resp)) => resp.status_code,
            // bollard turns a non-zero exit into an error; the code is in the variant.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(api(format!("waiting for container {id}"))(e)),
            None => -1,
        };
        // podman reports -1 when asked too early; inspect is authoritative.
        match self.inspect(id).await? {
            Some(ContainerState {
                exit_code: Some(c), ..
            }) => Ok(c),
            _ => Ok(code),
        }
    }

    /// Stops a container (SIGTERM, then SIGKILL after `timeout_secs`). Not an error if it is gone.
    pub async fn stop(&self, id: &str, timeout_secs: i32) -> Result<()> {
        let opts = StopContainerOptionsBuilder::default().t(timeout_secs).build();
        match self.docker.stop_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 304: already stopped.
            Err(BollardError::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            Err(e) => Err(api(format!("stopping container {id}"))(e)),
        }
    }

    /// Removes a container (forcing if asked). Not an error if it is gone.
    pub async fn remove(&self, id: &str, force: bool) -> Result<()> {
        let opts = RemoveContainerOptionsBuilder::default().force(force).build();
        match self.docker.remove_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api(format!("removing container {id}"))(e)),
        }
    }

    /// Inspects a container by id or name; `None` if it does not exist.
    pub async fn inspect(&self, id: &str) -> Result<Option<ContainerState>> {
        let resp = match self
            .docker
            .inspect_container(id, None::<bollard::query_parameters::InspectContainerOptions>)
            .await
        {
            Ok(r) => r,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(api(format!("inspecting container {id}"))(e)),
        };
        let state = resp.state.unwrap_or_default();
        let running = state.running.unwrap_or(false);
        let started = state
            .started_at
            .as_deref()
            .is_some_and(|s| !s.is_empty() && !s.starts_with("0001-"));
        let finished = state
            .finished_at
            .as_deref()
            .is_some_and(|s| !s.is_empty() && !s.starts_with("0001-"));
        let never_started = !running && !started && !finished;
        Ok(Some(ContainerState {
            id: resp.id.unwrap_or_default(),
            running,
            never_started,
            exit_code: (!running && !never_started).then_some(state.exit_code.unwrap_or(0)),
            error: state.error.filter(|e| !e.is_empty()),
            log_path: resp.log_path.filter(|p| !p.is_empty()),
            log_driver: resp
                .host_config
                .and_then(|h| h.log_config)
                .and_then(|l| l.typ),
            labels: resp.config.and_then(|c| c.labels).unwrap_or_default(),
        }))
    }

    /// Ids of all containers (running or not) carrying every one of `want` labels.
    pub async fn find_by_labels(&self, want: &[(&str, &str)]) -> Result<Vec<String>> {
        let filters: HashMap<String, Vec<String>> = HashMap::from([(
            "label".to_string(),
            want.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        )]);
        let opts = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(api("listing containers"))?;
        // Filter again here: engines differ in how they combine several label filters.
        Ok(list
            .into_iter()
            .filter(|c| {
                let labels = c.labels.clone().unwrap_or_default();
                want.iter().all(|(k, v)| labels.get(*k).is_some_and(|x| x == v))
            })
            .filter_map(|c| c.id)
            .collect())
    }
}
