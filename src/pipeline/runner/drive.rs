//! The run loop: from the plan to the end of the run, one step at a time, each step's end
//! recorded (its times from the engine), and the cluster watched once it can be.

use super::*;

impl Runner {
    /// Drives the run per `plan` until it succeeds, halts, or the operator detaches; ends with
    /// an [`Event::Finished`] either way.
    pub async fn run(
        &mut self,
        plan: Plan,
        cmds: &mut UnboundedReceiver<Command>,
    ) -> Result<Finish, PipelineError> {
        let r = self.run_inner(plan, cmds).await;
        self.emit(Event::Finished(
            r.as_ref()
                .map(Clone::clone)
                .map_err(crate::pipeline::error::RunError::from),
        ));
        r
    }

    /// Starts watching the cluster (every `interval` up to 12 s) once `oc` and the kubeconfig
    /// exist: each look goes to the state folder's `cluster.json` and out as an event.
    pub(super) fn watch_cluster(&self) -> AbortOnDrop {
        let steps = &self.pipeline.steps;
        // Where install-clients puts oc, else where a step that looks at the cluster finds it.
        let installs = |s: &&Step| matches!(s.work, Work::Host(Host::InstallClients { .. }));
        let Some(bin_dir) = steps
            .iter()
            .find(installs)
            .or_else(|| steps.iter().find(|s| s.bin_dir().is_some()))
            .and_then(|s| s.bin_dir())
        else {
            return AbortOnDrop(None);
        };
        let every = steps
            .iter()
            .filter_map(|s| s.interval_secs())
            .min()
            .unwrap_or(12)
            .clamp(1, 12);
        let dc = self.dc.dir.clone();
        let oc = crate::pipeline::cluster::Oc::new(
            std::path::Path::new(&bin_dir.replace("{deployconfig}", &dc.display().to_string())),
            &dc,
        );
        let state_dir = self.dc.state_dir();
        let events = self.events.clone();
        let secrets = self.secrets.clone();
        AbortOnDrop(Some(tokio::spawn(async move {
            loop {
                if oc.usable() {
                    let declared = crate::config::read_json(&dc.join("config.json"))
                        .map(|c| crate::pipeline::cluster::declared_nodes(&c))
                        .unwrap_or_default();
                    let mut snap = oc.snapshot(declared).await;
                    let clean = |e: &str| {
                        crate::text::visible(&crate::text::mask(e, &secrets)).into_owned()
                    };
                    snap.error = snap.error.as_deref().map(clean);
                    snap.csr_other = snap.csr_other.iter().map(|c| clean(c)).collect();
                    if let Ok(text) = serde_json::to_vec_pretty(&snap) {
                        let _ = crate::safefs::Dir::open(&state_dir)
                            .and_then(|d| d.write_atomic("cluster.json".as_ref(), &text, 0o600));
                    }
                    if events.send(Event::Cluster(Box::new(snap))).is_err() {
                        return;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_secs(every)).await;
            }
        })))
    }

    pub(super) async fn run_inner(
        &mut self,
        plan: Plan,
        cmds: &mut UnboundedReceiver<Command>,
    ) -> Result<Finish, PipelineError> {
        // A service that died while no run was driven is already recorded as failed.
        self.halt = None;
        self.secrets = crate::config::secret_values(&self.dc);
        let cfg = PipelineConfig::load(&self.dc)?;
        // Before anything changes: a re-run that would undo the deployment is refused.
        self.refuse_hazards(&plan)?;
        let how = self.prepare(&plan).await?;
        let Some(how) = how else {
            return Ok(Finish::AlreadyDone);
        };
        // `--tls-verify=false` (or the setup flow's choice) is remembered for the run.
        if let Some(v) = self.tls_verify {
            self.st()?.tls_verify = (!v).then_some(false);
        }
        let pipeline = self.pipeline.clone();
        self.st()?.align(&pipeline);
        self.save()?;
        let run_id = self.st()?.run_id.clone();
        self.emit(Event::RunStarted { run_id, how });
        // Ends with this function: the cluster is watched while the run is driven.
        let _watch = self.watch_cluster();

        for i in 0..pipeline.steps.len() {
            if self.st()?.steps[i].status == StepStatus::Serving {
                self.reopen_window(i, &cfg).await?;
            }
        }
        loop {
            if let Some(f) = self.halt.take() {
                return self.halted(f);
            }
            let Some(i) = self.st()?.steps.iter().position(|s| !s.status.is_done()) else {
                break;
            };
            match self.drive(i, &cfg, cmds).await? {
                StepEnd::Next => {}
                StepEnd::Halt(Finish::Detached { .. }) => return Ok(self.detached()),
                StepEnd::Halt(f) => return self.halted(f),
            }
        }
        // Every step is done; services may still be inside their window.
        if self.serve_windows_until_closed(cmds, true).await? {
            return Ok(self.detached());
        }
        if let Some(f) = self.halt.take() {
            return self.halted(f);
        }
        let st = self.st()?;
        st.outcome = Outcome::Succeeded;
        st.finished_at = Some(Utc::now());
        self.save()?;
        Ok(Finish::Succeeded)
    }

    pub(super) fn detached(&self) -> Finish {
        let running = self
            .state
            .iter()
            .flat_map(|s| &s.steps)
            .filter(|s| matches!(s.status, StepStatus::Running | StepStatus::Serving))
            .map(|s| s.id.clone())
            .collect();
        Finish::Detached { running }
    }

    pub(super) fn halted(&mut self, f: Finish) -> Result<Finish, PipelineError> {
        let st = self.st()?;
        st.outcome = match f {
            Finish::Stopped { .. } => Outcome::Stopped,
            _ => Outcome::Failed,
        };
        st.finished_at = Some(Utc::now());
        self.save()?;
        Ok(f)
    }

    /// Runs (or reattaches to) step `i`, handling operator commands while it runs. When the
    /// engine goes away or the log's disk fills, the step is not failed: the runner waits
    /// ([`Runner::hold`]) and reattaches to the same container, re-reading its whole log.
    pub(super) async fn drive(
        &mut self,
        i: usize,
        cfg: &PipelineConfig,
        cmds: &mut UnboundedReceiver<Command>,
    ) -> Result<StepEnd, PipelineError> {
        let step = self.pipeline.steps[i].clone();
        let mut reattach = self.st()?.steps[i].status == StepStatus::Running;
        let mut requested: Option<StepStatus> = None;
        if !reattach && let Err(why) = self.before_step(&step) {
            self.refuse_start(i, &step, &why)?;
            return self.finish_step(i, Err(why), None, cmds).await;
        }
        loop {
            let started = self.start_body(i, &step, cfg, reattach).await;
            let (body, container) = match started {
                Ok(Some(x)) => x,
                Ok(None) => return Ok(StepEnd::Next),
                Err(StepFail::Error(error)) => {
                    return self.finish_step(i, Err(error), requested, cmds).await;
                }
                Err(hold @ (StepFail::Unreachable(_) | StepFail::DiskFull(_))) => {
                    if self.hold(&step.id, hold, cmds, &mut requested).await? {
                        return Ok(StepEnd::Halt(Finish::Detached { running: vec![] }));
                    }
                    reattach = self.st()?.steps[i].status == StepStatus::Running;
                    continue;
                }
            };
            let mut body = body;
            // A stop asked for while the engine was away is sent now.
            if requested.is_some()
                && let Some(id) = &container
                && let Err(e) = self.engine.stop(id, 10).await
            {
                self.emit(Event::Note(format!("{}: cannot stop it yet: {e}", step.id)));
            }
            let result = loop {
                tokio::select! {
                    r = &mut body => break r,
                    Some((s, rep)) = self.win_rx.recv() => self.on_window(&s, rep)?,
                    c = cmds.recv() => match c {
                        Some(Command::Stop | Command::Skip) if requested.is_none() => {
                            requested = Some(if c == Some(Command::Stop) { StepStatus::Stopped } else { StepStatus::Skipped });
                            if !self.stop_container(&step, container.as_deref()).await {
                                break Err(StepFail::Error(PipelineError::Step("stopped by the operator".into())));
                            }
                        }
                        Some(Command::Stop | Command::Skip) => {}
                        Some(c @ (Command::ExtendWindow { .. } | Command::EndWindow { .. })) => self.window_command(c),
                        Some(Command::Detach) | None => return Ok(StepEnd::Halt(Finish::Detached { running: vec![] })),
                    },
                }
            };
            drop(body);
            // The times come from the engine: a step that ended while no stage2-tui watched
            // (the driver was killed, another one took over) ended when the engine says.
            if let Some(id) = &container
                && let Ok(Some(c)) = self.engine.inspect(id).await
            {
                self.engine_times(i, c.started_at, c.finished_at)?;
            }
            match result {
                Ok(code) => return self.finish_step(i, Ok(code), requested, cmds).await,
                Err(StepFail::Error(e)) => {
                    return self.finish_step(i, Err(e), requested, cmds).await;
                }
                Err(hold) => {
                    if self.hold(&step.id, hold, cmds, &mut requested).await? {
                        return Ok(StepEnd::Halt(Finish::Detached { running: vec![] }));
                    }
                    reattach = true;
                }
            }
        }
    }

    /// The operator stopped or skipped the step: its container is stopped (the step ends when
    /// it exits). False when it has no container (a host step or a wait ends at once).
    async fn stop_container(&mut self, step: &Step, container: Option<&str>) -> bool {
        let Some(id) = container else {
            return false;
        };
        let name = step.container().map_or(id, |c| c.name.as_str());
        self.emit(Event::Note(format!(
            "{}: stopping container {name}",
            step.id
        )));
        if let Err(e) = self.engine.stop(id, 10).await {
            self.emit(Event::Note(format!(
                "{}: the stop did not go through ({e}); it is sent again once the engine answers",
                step.id
            )));
        }
        true
    }

    /// Takes the attempt's start and end from the engine's clock, when the engine knows them
    /// and they make sense (the end after the start, neither in the future).
    pub(super) fn engine_times(
        &mut self,
        i: usize,
        started: Option<DateTime<Utc>>,
        finished: Option<DateTime<Utc>>,
    ) -> Result<(), PipelineError> {
        let now = Utc::now() + chrono::Duration::seconds(5);
        let st = self.st()?;
        let Some(a) = st.steps[i].attempts.last_mut() else {
            return Ok(());
        };
        if let Some(s) =
            started.filter(|s| *s <= now && *s >= a.started_at - chrono::Duration::hours(1))
        {
            a.started_at = s;
        }
        if let Some(f) = finished.filter(|f| *f <= now && *f >= a.started_at) {
            a.finished_at = Some(f);
        }
        Ok(())
    }

    pub(super) async fn finish_step(
        &mut self,
        i: usize,
        result: Result<Option<i64>, PipelineError>,
        requested: Option<StepStatus>,
        cmds: &mut UnboundedReceiver<Command>,
    ) -> Result<StepEnd, PipelineError> {
        let state_dir = self.dc.state_dir();
        let st = self.st()?;
        let s = &mut st.steps[i];
        let id = s.id.clone();
        let Some(a) = s.attempts.last_mut() else {
            return Err(PipelineError::Refused(format!("{id}: no attempt recorded")));
        };
        if a.finished_at.is_none() {
            a.finished_at = Some(Utc::now());
        }
        let log = a.log.clone();
        let (status, error) = match (&result, requested) {
            (_, Some(req)) => (req, Some(format!("{} by the operator", req.word()))),
            // An exit code of 0 is not trusted: the step must also have kept its contract.
            (Ok(None | Some(0)), None) => match self.contract_broken(i) {
                None => (StepStatus::Succeeded, None),
                Some(broken) => (StepStatus::Failed, Some(broken)),
            },
            (Ok(Some(code)), None) => {
                let tail = last_log_line(&state_dir.join(&log))
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default();
                (StepStatus::Failed, Some(format!("exit code {code}{tail}")))
            }
            (Err(e), None) => (StepStatus::Failed, Some(e.to_string())),
        };
        // The error is stored in state.json and shown everywhere: never a secret in it.
        let error = error.map(|e| self.redact(&e));
        let diagnosis = (status == StepStatus::Failed)
            .then(|| self.diagnose(&id, &state_dir.join(&log), error.as_deref()));
        let s = &mut self.st()?.steps[i];
        let Some(a) = s.attempts.last_mut() else {
            return Err(PipelineError::Refused(format!("{id}: no attempt recorded")));
        };
        if let Ok(code) = result {
            a.exit_code = code;
        }
        a.error = error.clone();
        if let Some(d) = diagnosis {
            a.diagnosis = d;
        }
        s.status = status;
        let exit_code = a.exit_code;
        let duration = a
            .duration()
            .and_then(|d| d.to_std().ok())
            .unwrap_or_default();
        if !self.save_or_hold(&id, cmds).await? {
            return Ok(StepEnd::Halt(Finish::Detached { running: vec![] }));
        }
        self.emit(Event::StepFinished {
            step: id.clone(),
            status,
            exit_code,
            duration,
            error: error.clone(),
        });
        if status == StepStatus::Succeeded {
            self.start_anchored_windows(&id)?;
        }
        Ok(match status {
            StepStatus::Failed => StepEnd::Halt(Finish::Failed {
                step: id,
                error: error.unwrap_or_default(),
            }),
            StepStatus::Stopped => StepEnd::Halt(Finish::Stopped { step: id }),
            _ => StepEnd::Next,
        })
    }
}
