//! Background work for the TUI: the web server's URL check, the setup flow's engine tasks, and
//! the secret values to mask.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::app::setup::{SetupMsg, SetupTask};
use crate::app::{App, UrlCheck};
use crate::config::Deployconfig;
use crate::engine::Engine;

/// Asks the web server for `url` (HEAD, with a user agent of its own: the server's access log
/// tells it from the bootstrap VM's fetch).
pub async fn check_url(url: &str) -> UrlCheck {
    match crate::http::head(url, "stage2-tui-url-check", Duration::from_secs(3)).await {
        Ok((status, bytes)) => UrlCheck::Answered { status, bytes },
        Err(e) => UrlCheck::Failed(e.to_string()),
    }
}

pub use crate::config::secret_values;

/// Engine work the setup flow asked for; the result comes back as a [`SetupMsg`].
pub(super) fn spawn_setup_task(
    task: SetupTask,
    app: &App,
    engine: &Engine,
    dc: &Deployconfig,
    tx: &UnboundedSender<SetupMsg>,
) {
    let Some(s) = app.screen.setup() else { return };
    let tls_verify = s.tls_verify;
    let registry = s.registry();
    let tag = s.tag();
    let stages = app.pipeline.stage_images();
    // The edited (maybe unsaved) values, read the way the runner reads the saved ones.
    let creds = crate::config::registry_credentials(&s.config.value, &s.secrets.value)
        .map(|(username, password)| crate::engine::PullCredentials { username, password });
    // Pre-flight judges what the operator edited, not what is on disk.
    let edited = crate::check::Edited {
        config: if s.raw.is_some() && !s.raw_secrets {
            s.raw
                .as_ref()
                .map(|a| a.lines().join("\n"))
                .unwrap_or_default()
        } else {
            s.config.text()
        },
        secrets: s.secrets.text(),
    };
    let candidate = s.candidate_path();
    let (engine, dc, tx) = (engine.clone(), dc.clone(), tx.clone());
    tokio::spawn(async move {
        let msg = match task {
            SetupTask::Checks => {
                SetupMsg::Checks(crate::check::run_edited(Ok(&engine), &dc, Some(&edited)).await)
            }
            SetupTask::Versions => {
                let image = format!("{registry}/4.run-installer:{tag}");
                let probe = "for p in $(command -v openshift-install) /usr/local/bin/openshift-install /usr/bin/openshift-install /usr/local/4.run-installer/openshift-install; do [ -x \"$p\" ] && exec \"$p\" version; done; echo 'no openshift-install in this image' >&2; exit 127";
                let run = |ep: Vec<String>, mounts| {
                    let engine = engine.clone();
                    let image = image.clone();
                    async move {
                        match engine.run_output(&image, ep, mounts).await {
                            Ok((0, out)) => Ok(out.trim().to_string()),
                            Ok((c, out)) => Err(format!("exit {c}: {}", out.trim())),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                };
                let embedded = run(vec!["/bin/sh".into(), "-c".into(), probe.into()], vec![]).await;
                let overridden = if dc.installer_override().exists() {
                    let m = crate::engine::Mount {
                        source: dc.dir.display().to_string(),
                        target: "/tmp/workingdir".into(),
                        options: "z".into(),
                    };
                    Some(
                        run(
                            vec!["/tmp/workingdir/openshift-install".into(), "version".into()],
                            vec![m],
                        )
                        .await,
                    )
                } else {
                    None
                };
                SetupMsg::Versions {
                    embedded,
                    overridden,
                }
            }
            SetupTask::AdoptCandidate(from) => {
                let (dc, cand) = (dc.clone(), candidate.clone());
                SetupMsg::Adopted(
                    tokio::task::spawn_blocking(move || {
                        crate::app::setup::adopt_candidate_file(&dc, &from, &cand)
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("the copy stopped: {e}"))),
                )
            }
            SetupTask::CheckCandidate(src) => {
                let (dc2, cand) = (dc.clone(), candidate.clone());
                let staged = tokio::task::spawn_blocking(move || {
                    crate::app::setup::stage_candidate(&dc2, &src, &cand)
                })
                .await
                .unwrap_or_else(|e| Err(format!("the copy stopped: {e}")));
                if let Err(e) = staged {
                    let _ = tx.send(SetupMsg::Candidate(Err(e)));
                    return;
                }
                let image = format!("{registry}/4.run-installer:{tag}");
                let m = crate::engine::Mount {
                    source: candidate.display().to_string(),
                    target: "/tmp/candidate/openshift-install".into(),
                    options: "ro".into(),
                };
                SetupMsg::Candidate(
                    match engine
                        .run_output(
                            &image,
                            vec!["/tmp/candidate/openshift-install".into(), "version".into()],
                            vec![m],
                        )
                        .await
                    {
                        Ok((0, out)) => Ok(out.trim().to_string()),
                        Ok((c, out)) => Err(format!("exit {c}: {}", out.trim())),
                        Err(e) => Err(e.to_string()),
                    },
                )
            }
            SetupTask::Tags => {
                let repo = format!("{registry}/4.run-installer");
                match engine.local_tags(&repo).await {
                    Err(e) => SetupMsg::Tags(Err(e.to_string())),
                    Ok(tags) => {
                        let mut out = Vec::new();
                        for t in tags {
                            let mut have = 0;
                            for st in &stages {
                                if engine
                                    .image_exists(&format!("{registry}/{st}:{t}"))
                                    .await
                                    .unwrap_or(false)
                                {
                                    have += 1;
                                }
                            }
                            out.push((t, have, stages.len()));
                        }
                        SetupMsg::Tags(Ok(out))
                    }
                }
            }
            SetupTask::Pull(t) => {
                let mut result = Ok(t.clone());
                for st in &stages {
                    let image = format!("{registry}/{st}:{t}");
                    let _ = tx.send(SetupMsg::PullProgress(format!("pulling {image}")));
                    let tx2 = tx.clone();
                    let r = engine
                        .pull(&image, creds.as_ref(), tls_verify, |l| {
                            let _ = tx2.send(SetupMsg::PullProgress(format!("{image}: {l}")));
                        })
                        .await;
                    if let Err(e) = r {
                        result = Err(crate::app::setup::PullFailure {
                            message: format!("{image}: {e}"),
                            tls: e.is_tls(),
                        });
                        break;
                    }
                }
                SetupMsg::PullDone(result)
            }
        };
        let _ = tx.send(msg);
    });
}
