//! Host steps: the parts of stage 2 that run on the bastion itself, not in a container.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::spec::{HostAction, Step};
use crate::engine::logs::{LogSink, Stream};

fn now_ts() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn say(sink: &mut LogSink, stream: Stream, text: &str) -> Result<(), String> {
    sink.line(stream, now_ts().as_bytes(), text.as_bytes())
        .map_err(|e| format!("writing the step log: {e}"))
}

fn expand(s: &str, dc: &Path) -> PathBuf {
    PathBuf::from(s.replace("{deployconfig}", &dc.display().to_string()))
}

/// Runs a host step to completion, writing its output to `sink`.
pub async fn run(step: &Step, dc: &Path, sink: &mut LogSink) -> Result<(), String> {
    let bin_dir = expand(step.bin_dir.as_deref().unwrap_or("/usr/local/bin"), dc);
    match step.action {
        Some(HostAction::InstallClients) => {
            let profile_dir = expand(step.profile_dir.as_deref().unwrap_or("/etc/profile.d"), dc);
            install_clients(dc, &bin_dir, &profile_dir, sink)
        }
        Some(HostAction::ApproveCsrs) => {
            let rounds = step.rounds.unwrap_or(5).max(1);
            let interval = Duration::from_secs(step.interval_secs.unwrap_or(60));
            approve_csrs(dc, &bin_dir, rounds, interval, sink).await
        }
        None => Err(format!("host step {} has no action", step.id)),
    }
}

fn install_clients(
    dc: &Path,
    bin_dir: &Path,
    profile_dir: &Path,
    sink: &mut LogSink,
) -> Result<(), String> {
    use crate::safefs::Dir;
    std::fs::create_dir_all(bin_dir)
        .map_err(|e| format!("cannot create {}: {e}", bin_dir.display()))?;
    let src_dir = Dir::open(dc).map_err(|e| format!("cannot open {}: {e}", dc.display()))?;
    let dst_dir =
        Dir::open(bin_dir).map_err(|e| format!("cannot open {}: {e}", bin_dir.display()))?;
    for tool in ["oc", "kubectl"] {
        let src = dc.join(tool);
        // By descriptor, regular files only: a link planted as <deployconfig>/oc (to a root-only
        // file, say) is refused, never copied to a world-executable place.
        let mut from = match src_dir.open_file(tool.as_ref()) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!(
                    "{} is missing: 4.run-installer puts oc and kubectl in the deployconfig; rerun it",
                    src.display()
                ));
            }
            Err(e) => return Err(format!("cannot install {tool}: {e}")),
        };
        let dst = bin_dir.join(tool);
        // Written beside the target, then renamed: a running `oc` is never overwritten in place.
        dst_dir
            .write_atomic_with(tool.as_ref(), 0o755, |to| {
                std::io::copy(&mut from, to).map(|_| ())
            })
            .map_err(|e| format!("cannot install {}: {e}", dst.display()))?;
        say(
            sink,
            Stream::Stdout,
            &format!("installed {} -> {}", src.display(), dst.display()),
        )?;
    }
    std::fs::create_dir_all(profile_dir)
        .map_err(|e| format!("cannot create {}: {e}", profile_dir.display()))?;
    let profile = profile_dir.join("stage2-kubeconfig.sh");
    let kubeconfig = dc.join("auth/kubeconfig");
    let text = format!(
        "# written by stage2-tui\nexport KUBECONFIG={}\n",
        crate::safefs::shell_quote(&kubeconfig.display().to_string())
    );
    Dir::open(profile_dir)
        .and_then(|d| d.write_atomic("stage2-kubeconfig.sh".as_ref(), text.as_bytes(), 0o644))
        .map_err(|e| format!("cannot write {}: {e}", profile.display()))?;
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

/// Runs a command, copying its output lines to the sink; returns its stdout lines.
async fn run_logged(
    cmd: &mut Command,
    what: &str,
    sink: &mut LogSink,
) -> Result<Vec<String>, String> {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let mut out = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let mut err = BufReader::new(child.stderr.take().ok_or("no stderr")?).lines();
    let mut stdout_lines = Vec::new();
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        tokio::select! {
            l = out.next_line(), if out_open => match l {
                Ok(Some(l)) => { say(sink, Stream::Stdout, &l)?; stdout_lines.push(l); }
                _ => out_open = false,
            },
            l = err.next_line(), if err_open => match l {
                Ok(Some(l)) => say(sink, Stream::Stderr, &l)?,
                _ => err_open = false,
            },
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| format!("waiting for {what}: {e}"))?;
    if status.success() {
        Ok(stdout_lines)
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

async fn approve_csrs(
    dc: &Path,
    bin_dir: &Path,
    rounds: u32,
    interval: Duration,
    sink: &mut LogSink,
) -> Result<(), String> {
    let oc = bin_dir.join("oc");
    let kubeconfig = dc.join("auth/kubeconfig");
    let pending = r#"{{range .items}}{{if not .status}}{{.metadata.name}}{{"\n"}}{{end}}{{end}}"#;
    for round in 1..=rounds {
        say(
            sink,
            Stream::Stdout,
            &format!("round {round}/{rounds}: looking for pending CSRs"),
        )?;
        let names = run_logged(
            Command::new(&oc)
                .args(["get", "csr", "-o", &format!("go-template={pending}")])
                .env("KUBECONFIG", &kubeconfig),
            "oc get csr",
            sink,
        )
        .await?;
        let names: Vec<_> = names.into_iter().filter(|n| !n.trim().is_empty()).collect();
        if names.is_empty() {
            say(sink, Stream::Stdout, "no pending CSRs")?;
        } else {
            run_logged(
                Command::new(&oc)
                    .args(["adm", "certificate", "approve"])
                    .args(&names)
                    .env("KUBECONFIG", &kubeconfig),
                "oc adm certificate approve",
                sink,
            )
            .await?;
        }
        sink.idle()
            .map_err(|e| format!("writing the step log: {e}"))?;
        if round < rounds {
            tokio::time::sleep(interval).await;
        }
    }
    Ok(())
}
