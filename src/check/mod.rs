//! Pre-flight checks: `stage2-tui check` and the setup flow's first screen.
//! Each check has a status, a message that names the file or JSON path, and what to do.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::config::validate::{self, Severity};
use crate::config::{ConfigError, Deployconfig, PipelineConfig, read_json};
use crate::engine::{Engine, EngineError};
use crate::pipeline::Pipeline;

mod files;
mod images;

pub use files::blocking_config_problems;
use files::*;
use images::*;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Worth a look; does not block.
    Warning,
    /// Blocks the run.
    Error,
}

/// One line of the pre-flight report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked (`engine`, `config.json`, `images`, …).
    pub check: String,
    /// Its outcome.
    pub status: Status,
    /// What was found.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// deploy.pem is readable by others: the one fix the setup flow applies itself
    /// (`chmod 600`).
    #[serde(skip)]
    pub key_too_open: bool,
}

fn c(check: &str, status: Status, message: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        check: check.into(),
        status,
        message: message.into(),
        fix: fix.map(String::from),
        key_too_open: false,
    }
}

/// Required files of a deployconfig and what produces them.
const FILES: &[(&str, &str)] = &[
    (
        "config.json",
        "the cluster configuration (stage 1 writes it)",
    ),
    ("secrets.json", "credentials (stage 1 writes it)"),
    (
        "install-config.yaml",
        "openshift-install's input (stage 1 writes it)",
    ),
    (
        "ansible-hosts",
        "the inventory for 8.configure-svcs (stage 1 writes it)",
    ),
    (
        "deploy.pem",
        "the SSH key for the svc VMs (stage 1 writes it)",
    ),
];

/// The setup flow's unsaved texts of config.json and secrets.json: checks judge these, not
/// what is on disk.
#[derive(Debug, Clone)]
pub struct Edited {
    /// config.json as edited.
    pub config: String,
    /// secrets.json as edited.
    pub secrets: String,
}

/// The files the deployconfig's pipeline makes, with the step that makes each (2.create-config
/// makes install-config.yaml and ansible-hosts): read once per check.
fn makers(dc: &Deployconfig) -> Vec<(String, String)> {
    let Ok((p, _)) = Pipeline::load(&dc.pipeline_file()) else {
        return Vec::new();
    };
    p.steps
        .iter()
        .flat_map(|s| {
            s.contract()
                .into_iter()
                .flat_map(|c| &c.makes)
                .map(|m| (m.clone(), s.id.clone()))
        })
        .collect()
}

/// The step that makes `file`, if one does.
fn made_by<'a>(makers: &'a [(String, String)], file: &str) -> Option<&'a str> {
    makers
        .iter()
        .find(|(m, _)| m == file)
        .map(|(_, step)| step.as_str())
}

/// Runs every check. `engine` is the connection result (its error is a check too).
pub async fn run(engine: Result<&Engine, &EngineError>, dc: &Deployconfig) -> Vec<Check> {
    run_edited(engine, dc, None).await
}

/// Runs every check, judging `edited` texts (when given) instead of the files on disk.
pub async fn run_edited(
    engine: Result<&Engine, &EngineError>,
    dc: &Deployconfig,
    edited: Option<&Edited>,
) -> Vec<Check> {
    run_with(engine, dc, edited, true).await
}

/// As [`run_edited`]; `tls_verify` false probes the registry as `--tls-verify=false` pulls.
pub async fn run_with(
    engine: Result<&Engine, &EngineError>,
    dc: &Deployconfig,
    edited: Option<&Edited>,
    tls_verify: bool,
) -> Vec<Check> {
    let mut out = Vec::new();
    match &engine {
        Ok(e) => out.push(c("engine", Status::Ok, e.describe(), None)),
        Err(e) => out.push(c(
            "engine",
            Status::Error,
            e.to_string(),
            Some("start the podman API: systemctl enable --now podman.socket"),
        )),
    }
    if !dc.dir.is_dir() {
        out.push(c(
            "deployconfig",
            Status::Error,
            format!("{} does not exist", dc.dir.display()),
            Some("pass --deployconfig DIR (or STAGE2_DEPLOYCONFIG)"),
        ));
        return out;
    }
    let makers = makers(dc);
    files(dc, &makers, &mut out);
    config(dc, edited, &makers, &mut out);
    installer_override(dc, &mut out);
    ignition_age(dc, &mut out);
    disk(dc, &mut out);
    let pipeline = match Pipeline::load(&dc.pipeline_file()) {
        Ok((p, _)) => Some(p),
        Err(e) => {
            out.push(c(
                "stage2-pipeline.toml",
                Status::Error,
                e.to_string(),
                Some("fix or remove the override file"),
            ));
            None
        }
    };
    if let (Ok(engine), Some(p)) = (engine, pipeline) {
        images_and_port(engine, dc, edited, &p, tls_verify, &mut out).await;
    }
    out
}

/// The report as text, one line per check (plus its fix).
pub fn render(checks: &[Check]) -> String {
    let w = checks.iter().map(|c| c.check.len()).max().unwrap_or(6);
    let mut s = String::new();
    for ch in checks {
        let mark = match ch.status {
            Status::Ok => "ok   ",
            Status::Warning => "WARN ",
            Status::Error => "ERROR",
        };
        // Messages quote values from files: control bytes are made visible, line by line (a
        // message of several lines keeps them, indented under the first).
        for (i, line) in ch.message.lines().enumerate() {
            let (mark, name) = if i == 0 {
                (mark, ch.check.as_str())
            } else {
                ("     ", "")
            };
            s += &format!("{mark} {name:<w$}  {}\n", crate::text::visible(line));
        }
        if let Some(f) = &ch.fix
            && ch.status != Status::Ok
        {
            s += &format!("      {:<w$}  fix: {f}\n", "");
        }
    }
    let errors = checks.iter().filter(|c| c.status == Status::Error).count();
    let warnings = checks
        .iter()
        .filter(|c| c.status == Status::Warning)
        .count();
    s += &format!("{errors} error(s), {warnings} warning(s)\n");
    s
}

#[cfg(test)]
mod render_tests {
    use super::*;

    #[test]
    fn a_message_of_several_lines_keeps_them_and_control_bytes_stay_visible() {
        let out = render(&[c(
            "engine",
            Status::Error,
            "no container engine answered.\nTried:\n  - unix:///x.sock: \x1b[31mgone",
            None,
        )]);
        assert!(!out.contains("^J"), "{out}");
        assert!(
            out.contains("ERROR engine  no container engine answered.\n"),
            "{out}"
        );
        assert!(out.contains("\n              Tried:\n"), "{out}");
        assert!(!out.contains('\x1b'), "{out}");
    }
}

/// `stage2-tui check`: exit 0 when nothing blocks a run, 1 on errors.
pub async fn command(
    engine: Result<Engine, EngineError>,
    dc: &Deployconfig,
    json: bool,
    tls_verify: bool,
) -> i32 {
    let checks = run_with(engine.as_ref(), dc, None, tls_verify).await;
    let errors = checks.iter().any(|c| c.status == Status::Error);
    if json {
        let doc = serde_json::json!({ "ok": !errors, "deployconfig": dc.dir.display().to_string(), "checks": checks });
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        crate::out!("{}", render(&checks));
    }
    i32::from(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checks_judge_the_edited_text_and_empty_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let dc = Deployconfig::new(dir.path());
        std::fs::write(dc.config_json(), "{ \"broken\": ").unwrap();
        std::fs::write(dc.secrets_json(), "{}").unwrap();
        std::fs::write(dir.path().join("install-config.yaml"), "").unwrap();
        let none = crate::engine::EngineError::Unreachable {
            context: "connecting".into(),
            detail: "no engine here".into(),
        };
        let on_disk = run_edited(Err(&none), &dc, None).await;
        assert!(
            on_disk
                .iter()
                .any(|c| c.check == "config.json" && c.message.contains("invalid JSON")),
            "{on_disk:?}"
        );
        assert!(
            on_disk.iter().any(|c| c.check == "install-config.yaml"
                && c.status == Status::Error
                && c.message.contains("is empty")),
            "{on_disk:?}"
        );
        let edited = Edited {
            config: "{ \"clusterid\": \"x\" }".into(),
            secrets: "{}".into(),
        };
        let judged = run_edited(Err(&none), &dc, Some(&edited)).await;
        assert!(
            !judged
                .iter()
                .any(|c| c.check == "config.json" && c.message.contains("invalid JSON")),
            "the unsaved edit parses: {judged:?}"
        );
    }

    #[tokio::test]
    async fn an_unsaved_edit_that_the_derived_files_do_not_have_shows_as_drift() {
        let dir = tempfile::tempdir().unwrap();
        let dc = Deployconfig::new(dir.path());
        let config = crate::demo::files::config_json();
        std::fs::write(dc.config_json(), config.to_string()).unwrap();
        std::fs::write(
            dc.secrets_json(),
            crate::demo::files::secrets_json().to_string(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("install-config.yaml"),
            "baseDomain: \"demo.example.internal\"\nmetadata:\n  name: \"ocp4demo\"\n",
        )
        .unwrap();
        let drifts = |checks: &[Check]| -> Vec<String> {
            checks
                .iter()
                .filter(|c| {
                    c.message
                        .starts_with("drift: install-config.yaml baseDomain")
                })
                .map(|c| c.message.clone())
                .collect()
        };
        let none = crate::engine::EngineError::Unreachable {
            context: "connecting".into(),
            detail: "no engine here".into(),
        };
        let on_disk = run_edited(Err(&none), &dc, None).await;
        assert!(drifts(&on_disk).is_empty(), "{on_disk:?}");
        let mut edited = config.clone();
        edited["basedomain"] = serde_json::json!("demo.example.org");
        let judged = run_edited(
            Err(&none),
            &dc,
            Some(&Edited {
                config: edited.to_string(),
                secrets: crate::demo::files::secrets_json().to_string(),
            }),
        )
        .await;
        assert_eq!(
            drifts(&judged),
            [
                "drift: install-config.yaml baseDomain demo.example.internal ≠ config.json basedomain demo.example.org"
            ],
            "{judged:?}"
        );
        let c = judged
            .iter()
            .find(|c| {
                c.message
                    .starts_with("drift: install-config.yaml baseDomain")
            })
            .unwrap();
        assert_eq!(c.status, Status::Warning);
    }
}
