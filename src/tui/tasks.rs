//! Background work for the TUI: the web server's URL check, the setup flow's engine tasks, and
//! the secret values to mask.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::app::setup::{PullFailure, RawFile, SetupMsg, SetupTask, TaskError};
use crate::app::{App, UrlCheck};
use crate::config::Deployconfig;
use crate::engine::{Engine, Installer};

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
    let tls_verify = s.tag.tls_verify;
    let registry = s.registry();
    let tag = s.tag();
    let stages = app.pipeline.stage_images();
    // The edited (maybe unsaved) values, read the way the runner reads the saved ones.
    let creds = crate::config::registry_credentials(&s.config.value, &s.secrets.value)
        .map(|(username, password)| crate::engine::PullCredentials { username, password });
    // Pre-flight judges what the operator edited, not what is on disk.
    let edited = crate::check::Edited {
        config: if let Some(raw) = s.form.raw.as_ref().filter(|r| r.file == RawFile::Config) {
            raw.area.lines().join("\n")
        } else {
            s.config.text()
        },
        secrets: s.secrets.text(),
    };
    let candidate = s.candidate_path();
    let (engine, dc, tx) = (engine.clone(), dc.clone(), tx.clone());
    tokio::spawn(async move {
        let image = format!("{registry}/4.run-installer:{tag}");
        let msg = match task {
            SetupTask::Checks => {
                SetupMsg::Checks(crate::check::run_edited(Ok(&engine), &dc, Some(&edited)).await)
            }
            SetupTask::Versions => versions(&engine, &image, &dc).await,
            SetupTask::AdoptCandidate(from) => {
                let (dc, cand) = (dc.clone(), candidate.clone());
                SetupMsg::Adopted(
                    tokio::task::spawn_blocking(move || {
                        crate::app::setup::adopt_candidate_file(&dc, &from, &cand)
                    })
                    .await
                    .unwrap_or_else(|e| Err(TaskError::File(format!("the copy stopped: {e}")))),
                )
            }
            SetupTask::CheckCandidate(src) => {
                SetupMsg::Candidate(check_candidate(&engine, &image, src, candidate).await)
            }
            SetupTask::Tags => SetupMsg::Tags(tags(&engine, &registry, &stages).await),
            SetupTask::Reload => {
                let read = move || crate::app::setup::read_again(&dc);
                blocking("reading the files again", read, |r| {
                    SetupMsg::Reloaded(Box::new(r))
                })
                .await
            }
            SetupTask::File(op) => {
                let work = move || crate::app::setup::file_op(&dc, op);
                blocking("the file operation", work, SetupMsg::File).await
            }
            SetupTask::Pull(t) => {
                let images: Vec<String> = stages
                    .iter()
                    .map(|st| format!("{registry}/{st}:{t}"))
                    .collect();
                let r = pull(&engine, &images, creds.as_ref(), tls_verify, &tx).await;
                SetupMsg::PullDone(r.map(|()| t))
            }
        };
        let _ = tx.send(msg);
    });
}

/// File work on a blocking thread, off the runtime's workers; one that stops (panics) is said
/// in a note.
async fn blocking<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
    done: impl FnOnce(T) -> SetupMsg,
) -> SetupMsg {
    match tokio::task::spawn_blocking(work).await {
        Ok(t) => done(t),
        Err(e) => SetupMsg::Note(format!("{what} stopped: {e}")),
    }
}

/// The output of a `version` run, or why there is none.
fn version_of(r: crate::engine::Result<(i64, String)>) -> Result<String, TaskError> {
    match r {
        Ok((0, out)) => Ok(out.trim().to_string()),
        Ok((code, out)) => Err(TaskError::Exited {
            code,
            output: out.trim().to_string(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Both installers asked for their version: the embedded one, and the override if there is one.
async fn versions(engine: &Engine, image: &str, dc: &Deployconfig) -> SetupMsg {
    let embedded = version_of(engine.installer_version(image, Installer::Embedded).await);
    let overridden = if dc.installer_override().exists() {
        let r = engine
            .installer_version(image, Installer::Override(&dc.dir))
            .await;
        Some(version_of(r))
    } else {
        None
    };
    SetupMsg::Versions {
        embedded,
        overridden,
    }
}

/// Copies the operator's openshift-install aside (to the private state folder) and asks it for
/// its version in the installer image.
async fn check_candidate(
    engine: &Engine,
    image: &str,
    src: std::path::PathBuf,
    candidate: std::path::PathBuf,
) -> Result<String, TaskError> {
    let cand = candidate.clone();
    tokio::task::spawn_blocking(move || crate::app::setup::stage_candidate(&src, &cand))
        .await
        .unwrap_or_else(|e| Err(TaskError::File(format!("the copy stopped: {e}"))))?;
    version_of(
        engine
            .installer_version(image, Installer::Candidate(&candidate))
            .await,
    )
}

/// The installer image's local tags, each with how many stage images it has.
async fn tags(
    engine: &Engine,
    registry: &str,
    stages: &[String],
) -> Result<Vec<crate::app::setup::TagInfo>, TaskError> {
    let tags = engine
        .local_tags(&format!("{registry}/4.run-installer"))
        .await?;
    let mut out = Vec::new();
    for t in tags {
        let mut have = 0;
        for st in stages {
            let image = format!("{registry}/{st}:{t}");
            if engine.image_exists(&image).await.unwrap_or(false) {
                have += 1;
            }
        }
        out.push((t, have, stages.len()));
    }
    Ok(out)
}

/// Pulls `images` in order, saying each line of progress; the first failure ends it.
async fn pull(
    engine: &Engine,
    images: &[String],
    creds: Option<&crate::engine::PullCredentials>,
    tls_verify: bool,
    tx: &UnboundedSender<SetupMsg>,
) -> Result<(), PullFailure> {
    for image in images {
        let _ = tx.send(SetupMsg::PullProgress(format!("pulling {image}")));
        let say = |l: &str| {
            let _ = tx.send(SetupMsg::PullProgress(format!("{image}: {l}")));
        };
        if let Err(e) = engine.pull(image, creds, tls_verify, say).await {
            return Err(PullFailure {
                message: format!("{image}: {e}"),
                tls: e.is_tls(),
            });
        }
    }
    Ok(())
}
