//! Starting steps: containers (new or reattached), pulls, waits, host actions.

use crate::pipeline::error::PipelineError;
use std::collections::HashMap;
use std::path::PathBuf;

use chrono::Utc;

use super::*;

impl Runner {
    pub(super) fn labels(
        &self,
        step: &str,
        attempt: u32,
    ) -> Result<HashMap<String, String>, PipelineError> {
        let run = self
            .state
            .as_ref()
            .ok_or(PipelineError::State("no run state".into()))?
            .run_id
            .clone();
        Ok(HashMap::from([
            (labels::TOOL.to_string(), "stage2-tui".to_string()),
            (labels::RUN.to_string(), run),
            (labels::STEP.to_string(), step.to_string()),
            (labels::ATTEMPT.to_string(), attempt.to_string()),
            (
                labels::DEPLOYCONFIG.to_string(),
                self.dc.dir.display().to_string(),
            ),
        ]))
    }

    pub(super) fn expand(&self, s: &str, cfg: &PipelineConfig) -> String {
        s.replace("{deployconfig}", &self.dc.dir.display().to_string())
            .replace("{bastion_ip}", &cfg.bastion_ip)
    }

    pub(super) fn container_spec(
        &self,
        id: &str,
        c: &Container,
        window: Option<&Window>,
        cfg: &PipelineConfig,
        attempt: u32,
    ) -> Result<ContainerSpec, PipelineError> {
        let mut mounts = Vec::new();
        if c.workdir {
            mounts.push(workdir_mount(&self.dc));
        }
        for m in &c.mounts {
            let source = self.expand(&m.source, cfg);
            mount_source_ok(&self.dc.dir, Path::new(&source))?;
            mounts.push(Mount {
                source,
                target: m.target.clone(),
                options: m.options.clone(),
            });
        }
        Ok(ContainerSpec {
            name: c.name.clone(),
            image: cfg.image(&c.image),
            entrypoint: c.entrypoint.clone(),
            cmd: c
                .command
                .as_ref()
                .map(|c| c.iter().map(|a| self.expand(a, cfg)).collect()),
            env: c.env.iter().map(|e| self.expand(e, cfg)).collect(),
            mounts,
            network_mode: c.network.clone(),
            labels: self.labels(id, attempt)?,
            // A service's window holds even with no stage2-tui left: the engine ends it.
            run_limit_secs: window.map(Window::serve_limit_secs),
        })
    }

    /// Finds this attempt's container by its labels.
    pub(super) async fn find_container(
        &self,
        step: &str,
        attempt: u32,
    ) -> Result<Option<String>, crate::engine::EngineError> {
        let run = self
            .state
            .as_ref()
            .map(|s| s.run_id.clone())
            .unwrap_or_default();
        let n = attempt.to_string();
        let ids = self
            .engine
            .find_by_labels(&[
                (labels::RUN, &run),
                (labels::STEP, step),
                (labels::ATTEMPT, &n),
            ])
            .await?;
        Ok(ids.into_iter().next())
    }

    pub(super) fn new_attempt(
        &mut self,
        i: usize,
        container: Option<String>,
        image: Option<String>,
    ) -> Result<(u32, PathBuf), PipelineError> {
        let st = self.st()?;
        let run = st.run_id.clone();
        let s = &mut st.steps[i];
        let n = s.attempts.len() as u32 + 1;
        let log = PathBuf::from(format!("logs/{run}/{}.{n}.log", s.id));
        s.status = StepStatus::Running;
        s.attempts.push(Attempt {
            n,
            started_at: Utc::now(),
            finished_at: None,
            container,
            container_id: None,
            image,
            exit_code: None,
            error: None,
            log: log.clone(),
            diagnosis: None,
        });
        self.save()?;
        Ok((n, self.dc.state_dir().join(log)))
    }

    pub(super) fn set_container_id(&mut self, i: usize, id: &str) -> Result<(), PipelineError> {
        if let Some(a) = self.st()?.steps[i].attempts.last_mut() {
            a.container_id = Some(id.to_string());
        }
        self.save()
    }

    /// Starts step `i` (or picks up its running container) and returns what to wait on.
    /// `Ok(None)`: nothing to wait on (a service now in its window).
    pub(super) async fn start_body(
        &mut self,
        i: usize,
        step: &Step,
        cfg: &PipelineConfig,
        reattach: bool,
    ) -> Result<Option<(Body, Option<String>)>, StepFail> {
        match &step.work {
            Work::Oneshot(c) => {
                self.start_container_step(i, step, c, None, cfg, reattach)
                    .await
            }
            Work::Service(c, w) => {
                self.start_container_step(i, step, c, Some(w), cfg, reattach)
                    .await
            }
            Work::Pull(pull) => self.start_pull(i, step, pull, cfg),
            Work::Wait(Wait::Until(u)) => {
                self.start_host_step(i, step, host::Job::Until(u.clone()), reattach)
            }
            Work::Wait(Wait::Clock { secs }) => self.start_clock(i, step, *secs, reattach),
            Work::Host(h) => self.start_host_step(i, step, host::Job::Action(h.clone()), reattach),
        }
    }

    /// A pull step: checks (and pulls) every stage image of the tag.
    fn start_pull(
        &mut self,
        i: usize,
        step: &Step,
        pull: &crate::pipeline::spec::Pull,
        cfg: &PipelineConfig,
    ) -> Result<Option<(Body, Option<String>)>, StepFail> {
        let (n, log) = self.new_attempt(i, None, None)?;
        self.emit(Event::StepStarted {
            step: step.id.clone(),
            attempt: n,
            detail: format!("checking {} images for tag {}", pull.images.len(), cfg.tag),
        });
        let engine = self.engine.clone();
        let images: Vec<String> = pull.images.iter().map(|s| cfg.image(s)).collect();
        let creds = cfg
            .credentials(&self.dc)
            .map_err(PipelineError::from)?
            .map(|(username, password)| crate::engine::PullCredentials { username, password });
        let always = pull.always;
        let tls_verify = self.st()?.tls_verify.unwrap_or(true);
        if !tls_verify {
            self.emit(Event::Note(format!(
                "{}: pulling with --tls-verify=false: the registry's certificate is not checked (as the old script did)",
                step.id
            )));
        }
        let live = self.live(&step.id);
        Ok(Some((
            Box::pin(async move {
                pull_images(engine, images, creds, always, tls_verify, log, live)
                    .await
                    .map_err(StepFail::Error)
            }),
            None,
        )))
    }

    /// A pause of `secs`, counted from the attempt's start (a reattach waits only what is left).
    fn start_clock(
        &mut self,
        i: usize,
        step: &Step,
        secs: u64,
        reattach: bool,
    ) -> Result<Option<(Body, Option<String>)>, StepFail> {
        let started_at = match (reattach, self.st()?.steps[i].last()) {
            (true, Some(a)) => a.started_at,
            _ => {
                self.new_attempt(i, None, None)?;
                Utc::now()
            }
        };
        let n = self.st()?.steps[i].attempts.len() as u32;
        let log = self
            .dc
            .state_dir()
            .join(&self.st()?.steps[i].attempts[n as usize - 1].log);
        let ends = started_at + chrono::Duration::seconds(secs as i64);
        let left = (ends - Utc::now()).to_std().unwrap_or_default();
        let reason = if step.description.is_empty() {
            "wait".to_string()
        } else {
            step.description.clone()
        };
        self.emit(Event::StepStarted {
            step: step.id.clone(),
            attempt: n,
            detail: format!("waiting {} s: {reason}", left.as_secs_f64().ceil()),
        });
        let live = self.live(&step.id);
        Ok(Some((
            Box::pin(async move {
                let mut sink = LogSink::create(&log, Some(live)).map_err(PipelineError::Log)?;
                let write = |sink: &mut LogSink, t: &str| -> Result<(), StepFail> {
                    sink.line(Stream::Stdout, now_ts().as_bytes(), t.as_bytes())
                        .map_err(|e| StepFail::Error(PipelineError::Log(e)))
                };
                write(
                    &mut sink,
                    &format!("waiting {} s: {reason}", left.as_secs_f64().ceil()),
                )?;
                sink.idle().map_err(PipelineError::Log)?;
                tokio::time::sleep(left).await;
                write(&mut sink, "done")?;
                sink.finish_blocking().await.map_err(PipelineError::Log)?;
                Ok::<_, StepFail>(None)
            }),
            None,
        )))
    }

    /// A host step, or a wait on a condition: runs on the bastion; started again from the top
    /// when stage2-tui was stopped in the middle (each is safe to repeat).
    fn start_host_step(
        &mut self,
        i: usize,
        step: &Step,
        job: host::Job,
        reattach: bool,
    ) -> Result<Option<(Body, Option<String>)>, StepFail> {
        if reattach {
            self.emit(Event::Note(format!(
                "{}: a host step was interrupted when stage2-tui stopped; running it again",
                step.id
            )));
        }
        let (n, log) = self.new_attempt(i, None, None)?;
        self.emit(Event::StepStarted {
            step: step.id.clone(),
            attempt: n,
            detail: step.description.clone(),
        });
        let dc = self.dc.dir.clone();
        let live = self.live(&step.id);
        Ok(Some((
            Box::pin(async move {
                let mut sink = LogSink::create(&log, Some(live)).map_err(PipelineError::Log)?;
                let r = job.run(&dc, &mut sink).await;
                sink.finish_blocking().await.map_err(PipelineError::Log)?;
                r.map(|()| None).map_err(StepFail::Error)
            }),
            None,
        )))
    }

    pub(super) async fn start_container_step(
        &mut self,
        i: usize,
        step: &Step,
        c: &Container,
        window: Option<&Window>,
        cfg: &PipelineConfig,
        reattach: bool,
    ) -> Result<Option<(Body, Option<String>)>, StepFail> {
        let (n, id, log) = match self.recover_attempt(i, step, c, reattach).await? {
            Attempting::Running { n, id, log } => {
                self.set_container_id(i, &id)?;
                (n, id, log)
            }
            Attempting::Unstarted { n, log } => {
                self.create_and_start(i, step, c, window, cfg, Some((n, log)))
                    .await?
            }
            Attempting::New => self.create_and_start(i, step, c, window, cfg, None).await?,
        };
        let image = self.st()?.steps[i]
            .last()
            .and_then(|a| a.image.clone())
            .unwrap_or_default();
        self.emit(Event::StepStarted {
            step: step.id.clone(),
            attempt: n,
            detail: format!("container {} from {image}", c.name),
        });
        if let Some(w) = window {
            self.serve(i, w, cfg, id, log)?;
            return Ok(None);
        }
        let body = self.capture_body(&step.id, &c.name, id.clone(), log);
        Ok(Some((body, Some(id))))
    }

    /// Where the step's last attempt stands when stage2-tui comes back to it (`reattach`), or a
    /// new attempt.
    async fn recover_attempt(
        &mut self,
        i: usize,
        step: &Step,
        c: &Container,
        reattach: bool,
    ) -> Result<Attempting, StepFail> {
        if !reattach {
            return Ok(Attempting::New);
        }
        let Some(a) = self.st()?.steps[i].last().cloned() else {
            return Ok(Attempting::New);
        };
        let log = self.dc.state_dir().join(&a.log);
        let id = match self.find_container(&step.id, a.n).await? {
            Some(id) => id,
            None if a.container_id.is_some() => {
                return Err(StepFail::Error(PipelineError::Step(format!(
                    "its container {} was removed behind stage2-tui's back (by hand, or by another tool) while it ran, and its exit code is lost; retry the step",
                    a.container.unwrap_or_default()
                ))));
            }
            // Its container was never created (stage2-tui was killed, or the engine went away
            // mid-create): nothing ran, so that same attempt starts now.
            None => return Ok(Attempting::Unstarted { n: a.n, log }),
        };
        let never_started = self
            .engine
            .inspect(&id)
            .await?
            .is_some_and(|s| s.never_started);
        if !never_started {
            self.emit(Event::Note(format!(
                "{}: reattached to container {} (it kept running while stage2-tui was away)",
                step.id, c.name
            )));
            return Ok(Attempting::Running { n: a.n, id, log });
        }
        self.emit(Event::Note(format!(
            "{}: its container was created but not started; starting it",
            step.id
        )));
        match self.engine.start(&id).await {
            Ok(()) => Ok(Attempting::Running { n: a.n, id, log }),
            // An engine killed in the middle of a start can leave the runtime holding a container
            // that podman still records as never started: starting it again fails with "already
            // exists". Its command never ran, so it is removed and the same attempt made anew.
            Err(e) if e.is_already_exists() => {
                self.emit(Event::Note(format!(
                    "{}: the engine went away in the middle of starting {}; its command never ran, so it is removed and created again",
                    step.id, c.name
                )));
                self.engine.remove(&id, true).await?;
                Ok(Attempting::Unstarted { n: a.n, log })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates and starts the step's container for a new attempt, or for `unstarted`, an
    /// attempt whose container was never made. Returns the attempt, the container and its log.
    async fn create_and_start(
        &mut self,
        i: usize,
        step: &Step,
        c: &Container,
        window: Option<&Window>,
        cfg: &PipelineConfig,
        unstarted: Option<(u32, PathBuf)>,
    ) -> Result<(u32, String, PathBuf), StepFail> {
        let was_unstarted = unstarted.is_some();
        let (n, log) = match unstarted {
            Some(x) => x,
            None => self.new_attempt(i, Some(c.name.clone()), Some(cfg.image(&c.image)))?,
        };
        let spec = self.container_spec(&step.id, c, window, cfg, n)?;
        let service = window.is_some();
        let id = match self.engine.create_container(&spec, |_| service).await {
            // An API restart in the middle of a create can leave the name held by a container
            // that exists only in podman's storage: clear it once, create again. Only for an
            // attempt stage2-tui began creating and never got an id for: any other storage-only
            // container (buildah's) is not ours to remove.
            Err(crate::engine::EngineError::StorageOnly { .. })
                if was_unstarted
                    && self
                        .engine
                        .remove_storage_leftover(&spec.name)
                        .await
                        .unwrap_or(false) =>
            {
                self.emit(Event::Note(format!(
                    "{}: removed the leftover of an interrupted create of {} (it existed only in podman's storage); creating it again",
                    step.id, spec.name
                )));
                self.engine.create_container(&spec, |_| service).await?
            }
            r => r?,
        };
        if let Some(note) = self.engine.take_init_note() {
            self.emit(Event::Note(note));
        }
        self.set_container_id(i, &id)?;
        self.engine.start(&id).await?;
        Ok((n, id, log))
    }

    /// A service is up: its window opens (now, or when its anchor succeeds; until then only the
    /// engine's own limit bounds it).
    fn serve(
        &mut self,
        i: usize,
        w: &Window,
        cfg: &PipelineConfig,
        id: String,
        log: PathBuf,
    ) -> Result<(), PipelineError> {
        let waiting = self.anchor_pending(w)?;
        let started = self.st()?.steps[i]
            .last()
            .map(|a| a.started_at)
            .unwrap_or_else(Utc::now);
        let ends_at = match (self.st()?.steps[i].window_ends_at, &waiting) {
            (Some(t), _) => t,
            (None, Some(_)) => started + chrono::Duration::seconds(w.serve_limit_secs() as i64),
            (None, None) => Utc::now() + chrono::Duration::seconds(w.ttl_secs as i64),
        };
        self.st()?.steps[i].window_waiting_for = waiting;
        self.open_window(i, w, cfg, id, log, ends_at)
    }

    /// What a oneshot step waits on: its whole log captured, then its exit code.
    fn capture_body(&self, step: &str, name: &str, id: String, log: PathBuf) -> Body {
        let engine = self.engine.clone();
        let live = self.live(step);
        let name = name.to_string();
        Box::pin(async move {
            match engine
                .capture(&id, &log, Some(live), CaptureMode::Auto)
                .await
            {
                Ok(c) => Ok(Some(c.exit_code)),
                Err(e) if e.is_unreachable() || e.is_disk_full() => Err(StepFail::from(e)),
                // Say it plainly when the container itself is gone.
                Err(e) => match engine.inspect(&id).await {
                    Ok(None) => Err(StepFail::Error(PipelineError::Step(format!(
                        "its container {name} was removed while it ran (by hand, or by another tool), so its exit code is lost; retry the step"
                    )))),
                    _ => Err(StepFail::from(e)),
                },
            }
        })
    }
}

/// Where a container step's attempt stands when it starts.
enum Attempting {
    /// Its container runs (reattached to, or started now).
    Running {
        /// The attempt.
        n: u32,
        /// The container.
        id: String,
        /// Its saved log.
        log: PathBuf,
    },
    /// Its container was never made (or was removed unstarted): it is made now.
    Unstarted {
        /// The attempt.
        n: u32,
        /// Its saved log.
        log: PathBuf,
    },
    /// A new attempt.
    New,
}

/// A bind mount's source inside the deployconfig, where stage containers write, must be a
/// plain file or folder reached through no link: the engine (root) would follow one and hand
/// the container whatever it points at (`bootstrap.ign` -> /etc/shadow, served on port 80).
fn mount_source_ok(dc: &Path, source: &Path) -> Result<(), PipelineError> {
    let refuse = |why: String| {
        PipelineError::Step(format!(
            "not started: refused to mount {}: {why}",
            source.display()
        ))
    };
    if source
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(refuse("the path has `..` in it".into()));
    }
    let Ok(rel) = source.strip_prefix(dc) else {
        return Ok(());
    };
    let name = rel.file_name().unwrap_or_default();
    let kind = crate::safefs::Dir::open(dc)
        .and_then(|d| d.subdir(rel.parent().unwrap_or(Path::new("")), false))
        .and_then(|d| d.entry_kind(name))
        .map_err(|e| refuse(e.to_string()))?;
    match kind.map(|m| m & libc::S_IFMT) {
        Some(libc::S_IFREG | libc::S_IFDIR) => Ok(()),
        Some(libc::S_IFLNK) => Err(refuse(
            "it is a symbolic link (a stage container may have planted it)".into(),
        )),
        Some(_) => Err(refuse("it is not a regular file or folder".into())),
        None => Err(refuse("it does not exist".into())),
    }
}

/// Every stage container gets the deployconfig at `/tmp/workingdir`, SELinux-relabelled (`:z`).
fn workdir_mount(dc: &Deployconfig) -> Mount {
    Mount {
        source: dc.dir.display().to_string(),
        target: "/tmp/workingdir".into(),
        options: "z".into(),
    }
}

async fn pull_images(
    engine: Engine,
    images: Vec<String>,
    creds: Option<crate::engine::PullCredentials>,
    always: bool,
    tls_verify: bool,
    log: PathBuf,
    live: Live,
) -> Result<Option<i64>, PipelineError> {
    let mut sink = LogSink::create(&log, Some(live)).map_err(PipelineError::Log)?;
    let mut failed = Vec::new();
    for image in &images {
        let present = engine.image_exists(image).await?;
        let say = |sink: &mut LogSink, stream: Stream, t: &str| {
            let _ = sink.line(stream, now_ts().as_bytes(), t.as_bytes());
        };
        if present && !always {
            say(
                &mut sink,
                Stream::Stdout,
                &format!("{image}: present locally"),
            );
            continue;
        }
        say(&mut sink, Stream::Stdout, &format!("{image}: pulling"));
        sink.idle().map_err(PipelineError::Log)?;
        let r = engine
            .pull(image, creds.as_ref(), tls_verify, |l| {
                say(&mut sink, Stream::Stdout, l)
            })
            .await;
        match r {
            Ok(()) => say(&mut sink, Stream::Stdout, &format!("{image}: pulled")),
            Err(e) => {
                say(&mut sink, Stream::Stderr, &format!("{image}: {e}"));
                if tls_verify && e.is_tls() {
                    say(
                        &mut sink,
                        Stream::Stderr,
                        "this is a TLS problem: the registry's certificate is not trusted (self-signed, or the registry speaks plain HTTP). Give the registry a CA the bastion trusts (/etc/containers/certs.d/<registry>/ca.crt), or run with --tls-verify=false to pull without checking it, as the old script did",
                    );
                }
                failed.push(image.clone());
            }
        }
        sink.idle().map_err(PipelineError::Log)?;
    }
    sink.finish_blocking().await.map_err(PipelineError::Log)?;
    if failed.is_empty() {
        Ok(None)
    } else {
        Err(PipelineError::Refused(format!(
            "could not pull {}: check registryurl/imagetag in config.json and that the registry is reachable (log has the engine's message)",
            failed.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployconfig_is_mounted_like_the_script_does() {
        let dc = Deployconfig::new("/home/core/deployconfig");
        assert_eq!(
            workdir_mount(&dc).bind(),
            "/home/core/deployconfig:/tmp/workingdir:z"
        );
    }
}
