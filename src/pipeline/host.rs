//! Host steps: the parts of stage 2 that run on the bastion itself, not in a container.

use crate::pipeline::error::PipelineError;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cluster::{Oc, OcError, Snapshot};
use super::spec::{Host, Until, WaitFor};
use crate::logformat::{LogSink, Stream, now_ts};

fn say(sink: &mut LogSink, stream: Stream, text: &str) -> Result<(), PipelineError> {
    sink.line(stream, now_ts().as_bytes(), text.as_bytes())
        .map_err(PipelineError::Log)
}

fn expand(s: &str, dc: &Path) -> PathBuf {
    PathBuf::from(s.replace("{deployconfig}", &dc.display().to_string()))
}

/// What runs on the bastion itself: a host action, or a wait for the cluster.
#[derive(Debug, Clone)]
pub enum Job {
    /// A host step's action.
    Action(Host),
    /// A wait step's condition.
    Until(Until),
}

impl Job {
    /// Runs the job to completion, writing its output to `sink`.
    pub async fn run(&self, dc: &Path, sink: &mut LogSink) -> Result<(), PipelineError> {
        match self {
            Job::Action(h) => run(h, dc, sink).await,
            Job::Until(u) => wait_until(u, dc, sink).await,
        }
    }
}

/// Runs a host action to completion, writing its output to `sink`.
async fn run(host: &Host, dc: &Path, sink: &mut LogSink) -> Result<(), PipelineError> {
    let bin_dir = expand(host.bin_dir(), dc);
    match host {
        Host::InstallClients {
            profile_dir,
            share_with,
            ..
        } => {
            install_clients(dc, &bin_dir, &expand(profile_dir, dc), sink)?;
            share_kubeconfig(dc, share_with, sink)
        }
        Host::ApproveCsrs {
            interval_secs,
            timeout_secs,
            ..
        } => {
            let interval = Duration::from_secs(*interval_secs);
            let timeout = Duration::from_secs(*timeout_secs);
            approve_csrs(dc, &bin_dir, interval, timeout, sink).await
        }
    }
}

fn install_clients(
    dc: &Path,
    bin_dir: &Path,
    profile_dir: &Path,
    sink: &mut LogSink,
) -> Result<(), PipelineError> {
    use crate::safefs::Dir;
    std::fs::create_dir_all(bin_dir)
        .map_err(|e| PipelineError::Step(format!("cannot create {}: {e}", bin_dir.display())))?;
    let src_dir = Dir::open(dc)
        .map_err(|e| PipelineError::Step(format!("cannot open {}: {e}", dc.display())))?;
    let dst_dir = Dir::open(bin_dir)
        .map_err(|e| PipelineError::Step(format!("cannot open {}: {e}", bin_dir.display())))?;
    for tool in ["oc", "kubectl"] {
        let src = dc.join(tool);
        // By descriptor, regular files only: a link planted as <deployconfig>/oc (to a root-only
        // file, say) is refused, never copied to a world-executable place.
        let mut from = match src_dir.open_file(tool.as_ref()) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PipelineError::Step(format!(
                    "{} is missing: 4.run-installer puts oc and kubectl in the deployconfig; rerun it",
                    src.display()
                )));
            }
            Err(e) => return Err(PipelineError::Step(format!("cannot install {tool}: {e}"))),
        };
        let dst = bin_dir.join(tool);
        // Written beside the target, then renamed: a running `oc` is never overwritten in place.
        dst_dir
            .write_atomic_with(tool.as_ref(), 0o755, |to| {
                std::io::copy(&mut from, to).map(|_| ())
            })
            .map_err(|e| PipelineError::Step(format!("cannot install {}: {e}", dst.display())))?;
        say(
            sink,
            Stream::Stdout,
            &format!("installed {} -> {}", src.display(), dst.display()),
        )?;
    }
    std::fs::create_dir_all(profile_dir).map_err(|e| {
        PipelineError::Step(format!("cannot create {}: {e}", profile_dir.display()))
    })?;
    let profile = profile_dir.join("stage2-kubeconfig.sh");
    let kubeconfig = dc.join("auth/kubeconfig");
    let text = format!(
        "# written by stage2-tui\nexport KUBECONFIG={}\n",
        crate::safefs::shell_quote(&kubeconfig.display().to_string())
    );
    Dir::open(profile_dir)
        .and_then(|d| d.write_atomic("stage2-kubeconfig.sh".as_ref(), text.as_bytes(), 0o644))
        .map_err(|e| PipelineError::Step(format!("cannot write {}: {e}", profile.display())))?;
    say(
        sink,
        Stream::Stdout,
        &format!(
            "KUBECONFIG={} set for login shells in {}",
            kubeconfig.display(),
            profile.display()
        ),
    )
}

/// Lets `user` (the bastion's `core`) read `auth/kubeconfig`: group `user`'s group, 0640, and
/// `auth/` 0750, by descriptor (a link planted there is refused). The script made them 0755/0666.
fn share_kubeconfig(dc: &Path, user: &str, sink: &mut LogSink) -> Result<(), PipelineError> {
    use crate::safefs::Dir;
    use std::os::unix::fs::PermissionsExt;
    let Some((_, gid)) = crate::safefs::lookup_user(user) else {
        return say(
            sink,
            Stream::Stdout,
            &format!("no user {user} on this bastion: auth/kubeconfig stays readable by root only"),
        );
    };
    let auth = Dir::open(dc)
        .and_then(|d| d.subdir(Path::new("auth"), false))
        .map_err(|e| PipelineError::Step(format!("cannot open {}/auth: {e}", dc.display())))?;
    let file = auth.open_file("kubeconfig".as_ref()).map_err(|e| {
        PipelineError::Step(format!("cannot open {}/auth/kubeconfig: {e}", dc.display()))
    })?;
    std::os::unix::fs::fchown(&file, None, Some(gid))
        .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(0o640)))
        .and_then(|()| auth.set_group_mode(gid, 0o750))
        .map_err(|e| {
            PipelineError::Step(format!(
                "cannot let {user} read {}/auth/kubeconfig: {e}",
                dc.display()
            ))
        })?;
    say(
        sink,
        Stream::Stdout,
        &format!(
            "{user} can read auth/kubeconfig (group {gid}, mode 0640; auth/ 0750), and its login shells get KUBECONFIG"
        ),
    )
}

fn config_nodes(dc: &Path) -> Result<Vec<String>, PipelineError> {
    let cfg = crate::config::read_json(&dc.join("config.json"))
        .map_err(|e| PipelineError::Step(format!("reading the nodes config.json declares: {e}")))?;
    let nodes = super::cluster::declared_nodes(&cfg);
    if nodes.is_empty() {
        return Err(PipelineError::Step(
            "config.json declares no nodes (masters, infras, workers): nothing to wait for".into(),
        ));
    }
    Ok(nodes)
}

fn minutes(d: Duration) -> String {
    crate::text::duration(d)
}

/// The cluster did not answer: a refusal (credentials) ends the step, anything else is said and
/// waited out (the caller tries again after `interval`).
fn not_answered(sink: &mut LogSink, e: OcError, interval: Duration) -> Result<(), PipelineError> {
    if e.fatal {
        return Err(PipelineError::Step(e.message));
    }
    say(
        sink,
        Stream::Stderr,
        &format!(
            "the cluster did not answer ({e}); trying again in {}",
            minutes(interval)
        ),
    )
}

/// Approves CSRs, round after round, until every node config.json declares is Ready and none is
/// pending, or `timeout`. An API that does not answer yet is waited for, not a failure.
async fn approve_csrs(
    dc: &Path,
    bin_dir: &Path,
    interval: Duration,
    timeout: Duration,
    sink: &mut LogSink,
) -> Result<(), PipelineError> {
    let oc = Oc::new(bin_dir, dc);
    let declared = config_nodes(dc)?;
    let started = std::time::Instant::now();
    say(
        sink,
        Stream::Stdout,
        &format!(
            "approving node CSRs until these {} nodes are Ready: {}",
            declared.len(),
            declared.join(", ")
        ),
    )?;
    let mut last = String::new();
    // CSRs that are not a node's: said once each, never approved.
    let mut told: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        let look = async {
            let nodes = oc.nodes().await?;
            let csrs = oc.csrs(&declared).await?;
            Ok::<_, OcError>((nodes, csrs))
        }
        .await;
        let mut progress = None;
        match look {
            Err(e) => not_answered(sink, e, interval)?,
            Ok((nodes, csrs)) => {
                let pending = csrs.pending.clone();
                tell_others(sink, &csrs.other, &mut told)?;
                let snap = Snapshot {
                    at: chrono::Utc::now(),
                    error: None,
                    declared: declared.clone(),
                    nodes,
                    csr_pending: pending.clone(),
                    csr_other: csrs.other.clone(),
                    csr_approved: csrs.approved,
                    operators: None,
                };
                let line = snap.nodes_line();
                if line != last {
                    say(sink, Stream::Stdout, &line)?;
                    last = line.clone();
                }
                if snap.not_ready().is_empty() && pending.is_empty() {
                    let n = declared.len();
                    let done = format!(
                        "every declared node is Ready ({n}/{n}) and no node CSR is pending"
                    );
                    return say(sink, Stream::Stdout, &done);
                }
                if !pending.is_empty() {
                    approve(&oc, &pending, sink).await?;
                }
                progress = Some(format!(
                    "{line}; not Ready: {}",
                    snap.not_ready().join(", ")
                ));
            }
        }
        if started.elapsed() >= timeout {
            return Err(PipelineError::Step(format!(
                "gave up after {}: {}",
                minutes(timeout),
                progress.unwrap_or_else(|| "the cluster never answered".into())
            )));
        }
        sink.idle().map_err(PipelineError::Log)?;
        tokio::time::sleep(interval).await;
    }
}

/// Says once each CSR that is not a node's (it is never approved), and how to approve it by hand.
fn tell_others(
    sink: &mut LogSink,
    others: &[String],
    told: &mut std::collections::HashSet<String>,
) -> Result<(), PipelineError> {
    for other in others {
        if told.insert(other.clone()) {
            let name = other.split(' ').next().unwrap_or_default();
            say(
                sink,
                Stream::Stderr,
                &format!(
                    "not approving {other}: not a node of this cluster (only node-bootstrapper client CSRs and the serving CSRs of the nodes terraform makes are approved). If you expect it, approve it yourself: oc adm certificate approve {name}"
                ),
            )?;
        }
    }
    Ok(())
}

/// Approves the pending node CSRs, saying what `oc` said; a refusal (credentials) ends the step.
async fn approve(oc: &Oc, pending: &[String], sink: &mut LogSink) -> Result<(), PipelineError> {
    match oc.approve(pending).await {
        Ok(out) => {
            for l in out.lines().filter(|l| !l.trim().is_empty()) {
                say(sink, Stream::Stdout, l)?;
            }
            Ok(())
        }
        Err(e) if e.fatal => Err(PipelineError::Step(e.message)),
        Err(e) => say(sink, Stream::Stderr, &e.message),
    }
}

/// Runs a wait step that waits on a condition (`until`), writing its progress to `sink`.
async fn wait_until(u: &Until, dc: &Path, sink: &mut LogSink) -> Result<(), PipelineError> {
    let bin_dir = expand(&u.bin_dir, dc);
    let interval = Duration::from_secs(u.interval_secs);
    match u.what {
        WaitFor::ClusterOperators => {
            let stable = Duration::from_secs(u.stable_secs);
            let timeout = Duration::from_secs(u.timeout_secs);
            wait_operators(&Oc::new(&bin_dir, dc), interval, stable, timeout, sink).await
        }
    }
}

async fn wait_operators(
    oc: &Oc,
    interval: Duration,
    stable: Duration,
    timeout: Duration,
    sink: &mut LogSink,
) -> Result<(), PipelineError> {
    say(
        sink,
        Stream::Stdout,
        &format!(
            "waiting until every cluster operator is Available, none Progressing or Degraded, and the cluster version Available, for {} (at most {})",
            minutes(stable),
            minutes(timeout)
        ),
    )?;
    let started = std::time::Instant::now();
    let mut settled_since: Option<std::time::Instant> = None;
    let mut last = String::new();
    let mut progress = "the cluster never answered".to_string();
    loop {
        match oc.operators().await {
            Err(e) => not_answered(sink, e, interval)?,
            Ok(o) => {
                let mut line = format!("operators {}/{} available", o.available, o.total);
                if o.progressing > 0 {
                    line.push_str(&format!(", {} progressing", o.progressing));
                }
                if o.degraded > 0 {
                    line.push_str(&format!(", {} degraded", o.degraded));
                }
                match o.version_available {
                    Some(true) => line.push_str("; cluster version available"),
                    Some(false) => line.push_str("; cluster version not available yet"),
                    None => line.push_str("; no cluster version yet"),
                }
                if !o.waiting_for.is_empty() {
                    line.push_str(&format!(" (waiting for: {})", o.waiting_for.join(", ")));
                }
                if line != last {
                    say(sink, Stream::Stdout, &line)?;
                    last = line.clone();
                }
                progress = line;
                if o.settled() {
                    let since = *settled_since.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() >= stable {
                        say(
                            sink,
                            Stream::Stdout,
                            &format!(
                                "every cluster operator has been Available, none Progressing or Degraded, and the cluster version Available, for {}",
                                minutes(stable)
                            ),
                        )?;
                        return Ok(());
                    }
                } else {
                    settled_since = None;
                }
            }
        }
        if started.elapsed() >= timeout {
            return Err(PipelineError::Step(format!(
                "operators did not settle in {}: {progress}",
                minutes(timeout)
            )));
        }
        sink.idle().map_err(PipelineError::Log)?;
        let left = settled_since
            .map(|s| stable.saturating_sub(s.elapsed()))
            .unwrap_or(interval);
        tokio::time::sleep(interval.min(left.max(Duration::from_millis(200)))).await;
    }
}
