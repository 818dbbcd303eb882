//! Pre-flight checks: `stage2-tui check` and the setup flow's first screen.
//! Each check has a status, a message that names the file or JSON path, and what to do.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::config::validate::{self, Severity};
use crate::config::{ConfigError, Deployconfig, PipelineConfig, read_json};
use crate::engine::Engine;
use crate::pipeline::{Kind, Pipeline};

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
}

fn c(check: &str, status: Status, message: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        check: check.into(),
        status,
        message: message.into(),
        fix: fix.map(String::from),
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
        .flat_map(|s| s.contract.makes.iter().map(|m| (m.clone(), s.id.clone())))
        .collect()
}

/// The step that makes `file`, if one does.
fn made_by<'a>(makers: &'a [(String, String)], file: &str) -> Option<&'a str> {
    makers
        .iter()
        .find(|(m, _)| m == file)
        .map(|(_, step)| step.as_str())
}

fn files(dc: &Deployconfig, makers: &[(String, String)], out: &mut Vec<Check>) {
    for (name, what) in FILES {
        let p = dc.dir.join(name);
        let exists = std::fs::symlink_metadata(&p).is_ok();
        if !exists && let Some(step) = made_by(makers, name) {
            out.push(c(
                name,
                Status::Ok,
                format!("not there yet: {step} makes it from config.json at the start of the run"),
                None,
            ));
            continue;
        }
        match std::fs::metadata(&p) {
            Ok(m) if m.len() == 0 && m.is_file() => out.push(c(
                name,
                Status::Error,
                format!("{} is empty: {what}", p.display()),
                Some("copy the real file into the deployconfig folder"),
            )),
            Err(_) => out.push(c(
                name,
                Status::Error,
                format!("{} is missing: {what}", p.display()),
                Some("copy it into the deployconfig folder"),
            )),
            Ok(m) if *name == "deploy.pem" && m.permissions().mode() & 0o077 != 0 => out.push(c(
                name,
                Status::Error,
                format!(
                    "{} has mode {:o}; ssh refuses a key others can read",
                    p.display(),
                    m.permissions().mode() & 0o777
                ),
                Some(&format!("chmod 600 {}", p.display())),
            )),
            Ok(_) => out.push(c(name, Status::Ok, "present", None)),
        }
    }
}

fn parse_problem(name: &str, e: &ConfigError) -> Check {
    match e {
        ConfigError::Parse {
            line, column, msg, ..
        } if msg.starts_with("duplicate key") => c(
            name,
            Status::Error,
            format!("line {line}, column {column}: {msg}"),
            Some(
                "remove one of the two lines in the raw editor (stage2-tui opens it there); removebootstrap.sh adds bootstrap_complete on every run, and stage2-tui removes the old line before it runs",
            ),
        ),
        ConfigError::Parse {
            line, column, msg, ..
        } => c(
            name,
            Status::Error,
            format!("invalid JSON at line {line}, column {column}: {msg}"),
            Some(
                "fix it in the raw editor (stage2-tui opens it there), often a missing comma on the line before",
            ),
        ),
        other => c(name, Status::Error, other.to_string(), None),
    }
}

/// The config.json and secrets.json problems that block a run (parse errors and validation
/// errors), as `check` reports them: `run` refuses to start on any of them.
pub fn blocking_config_problems(dc: &Deployconfig) -> Vec<String> {
    let mut out = Vec::new();
    config(dc, None, &makers(dc), &mut out);
    out.into_iter()
        .filter(|c| c.status == Status::Error)
        .map(|c| format!("{}: {}", c.check, c.message))
        .collect()
}

fn config(
    dc: &Deployconfig,
    edited: Option<&Edited>,
    makers: &[(String, String)],
    out: &mut Vec<Check>,
) {
    let missing = |e: &ConfigError| matches!(e, ConfigError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound);
    let read = |path: std::path::PathBuf, text: Option<&String>| match text {
        Some(t) => crate::config::parse_json(&path, t),
        None => read_json(&path),
    };
    let secrets = match read(dc.secrets_json(), edited.map(|e| &e.secrets)) {
        Err(e) if missing(&e) => None,
        Err(e) => {
            out.push(parse_problem("secrets.json", &e));
            None
        }
        Ok(v) => Some(v),
    };
    match read(dc.config_json(), edited.map(|e| &e.config)) {
        // A missing file is reported by the file checks.
        Err(e) if missing(&e) => {}
        Err(e) => out.push(parse_problem("config.json", &e)),
        Ok(v) => {
            // Judged as the stage images judge them (the schema), secrets.json included.
            let problems = validate::validate_with(&v, secrets.as_ref());
            let (in_secrets, in_config): (Vec<_>, Vec<_>) = problems
                .into_iter()
                .partition(|p| p.path.starts_with("secrets."));
            for (name, problems) in [("config.json", in_config), ("secrets.json", in_secrets)] {
                if name == "secrets.json" && secrets.is_none() {
                    continue;
                }
                if problems.is_empty() {
                    let what = if name == "secrets.json" {
                        "valid: every secret the stage images need is there"
                    } else {
                        "valid: every field the stage images need is there"
                    };
                    out.push(c(name, Status::Ok, what, None));
                }
                if name == "config.json" {
                    drift(
                        dc,
                        &v,
                        secrets.as_ref(),
                        made_by(makers, "install-config.yaml"),
                        out,
                    );
                }
                for p in problems {
                    let st = if p.severity == Severity::Error {
                        Status::Error
                    } else {
                        Status::Warning
                    };
                    out.push(c(
                        name,
                        st,
                        p.to_string(),
                        Some(if name == "secrets.json" {
                            "edit secrets.json (stage2-tui's raw secrets editor, F3 in setup)"
                        } else {
                            "edit config.json (stage2-tui's editor shows the field)"
                        }),
                    ));
                }
            }
        }
    }
}

/// Where install-config.yaml and ansible-hosts no longer match config.json and secrets.json
/// (4 reads only the one, 8 and 9 only the other): each difference, and whether the run makes
/// them again.
fn drift(
    dc: &Deployconfig,
    config: &serde_json::Value,
    secrets: Option<&serde_json::Value>,
    maker: Option<&str>,
    out: &mut Vec<Check>,
) {
    let found = crate::config::derived::drift(&dc.dir, config, secrets);
    let fix = match maker {
        Some(step) => format!(
            "{step} makes both files again from config.json and secrets.json at the start of the run (the old ones are kept in the state folder); until then 4.run-installer, 8 and 9 would not see the edit"
        ),
        None => "no step of this pipeline makes them: edit them to match (4.run-installer reads only install-config.yaml, 8 and 9 only ansible-hosts), or run stage 1's 2.create-config".into(),
    };
    for d in found {
        let file = if d.starts_with("ansible-hosts") {
            "ansible-hosts"
        } else {
            "install-config.yaml"
        };
        out.push(Check {
            check: file.into(),
            status: Status::Warning,
            message: format!("drift: {d}"),
            fix: Some(fix.clone()),
        });
    }
}

fn installer_override(dc: &Deployconfig, out: &mut Vec<Check>) {
    let p = dc.installer_override();
    match std::fs::metadata(&p) {
        Err(_) => out.push(c(
            "openshift-install",
            Status::Ok,
            "no override: the installer embedded in 4.run-installer is used",
            None,
        )),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => out.push(c(
            "openshift-install",
            Status::Error,
            format!("{} is not executable", p.display()),
            Some(&format!("chmod +x {}", p.display())),
        )),
        Ok(_) => out.push(c(
            "openshift-install",
            Status::Ok,
            format!(
                "disconnected override {} is used instead of the embedded one",
                p.display()
            ),
            None,
        )),
    }
}

fn ignition_age(dc: &Deployconfig, out: &mut Vec<Check>) {
    let Ok(entries) = std::fs::read_dir(&dc.dir) else {
        return;
    };
    let mut names: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ign"))
        .collect();
    names.sort();
    for p in names {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let age = std::fs::metadata(&p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default();
        let hours = age.as_secs() / 3600;
        if age > Duration::from_secs(24 * 3600) {
            out.push(c(
                &name,
                Status::Error,
                format!("is {hours} h old: its certificates expire after 24 h"),
                Some("run again from 4.run-installer (it regenerates them)"),
            ));
        } else {
            out.push(c(
                &name,
                Status::Ok,
                format!("{} min old (certificates valid 24 h)", age.as_secs() / 60),
                None,
            ));
        }
    }
}

fn disk(dc: &Deployconfig, out: &mut Vec<Check>) {
    let Ok(path) = std::ffi::CString::new(dc.dir.as_os_str().as_encoded_bytes()) else {
        return;
    };
    // SAFETY: statvfs writes into the zeroed struct we pass; the path is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return;
    }
    let free = st.f_bavail as u64 * st.f_frsize as u64;
    let gib = free as f64 / (1u64 << 30) as f64;
    let (status, fix) = match gib {
        g if g < 1.0 => (
            Status::Error,
            Some("free space on that filesystem (logs and ignition files need room)"),
        ),
        g if g < 5.0 => (
            Status::Warning,
            Some("stage logs can grow large; free some space"),
        ),
        _ => (Status::Ok, None),
    };
    out.push(c(
        "disk",
        status,
        format!("{gib:.1} GiB free for {}", dc.dir.display()),
        fix,
    ));
}

fn port_of(url: &str) -> u16 {
    url.strip_prefix("http://")
        .and_then(|r| r.split('/').next())
        .and_then(|h| h.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(80)
}

async fn images_and_port(
    engine: &Engine,
    dc: &Deployconfig,
    edited: Option<&Edited>,
    pipeline: &Pipeline,
    tls_verify: bool,
    out: &mut Vec<Check>,
) {
    let cfg = match edited {
        Some(e) => crate::config::parse_json(&dc.config_json(), &e.config)
            .and_then(|v| PipelineConfig::from_value(&dc.config_json(), &v)),
        None => PipelineConfig::load(dc),
    };
    let Ok(cfg) = cfg else {
        return;
    };
    let stages = pipeline.stage_images();
    let mut missing = Vec::new();
    for s in &stages {
        match engine.image_exists(&cfg.image(s)).await {
            Ok(true) => {}
            Ok(false) => missing.push(cfg.image(s)),
            Err(e) => out.push(c(
                "images",
                Status::Warning,
                format!("cannot check {}: {e}", cfg.image(s)),
                None,
            )),
        }
    }
    if missing.is_empty() {
        out.push(c(
            "images",
            Status::Ok,
            format!(
                "all {} stage images for tag {} are present",
                stages.len(),
                cfg.tag
            ),
            None,
        ));
    } else {
        out.push(c(
            "images",
            Status::Warning,
            format!("{} of {} not present locally: {}", missing.len(), stages.len(), missing.join(", ")),
            Some("the pull step pulls them: the registry must be reachable (or pick a tag that is present)"),
        ));
        registry_probe(engine, dc, &cfg, tls_verify, out).await;
    }
    for s in pipeline.steps.iter().filter(|s| s.kind == Kind::Service) {
        let url = s
            .url
            .clone()
            .unwrap_or_default()
            .replace("{bastion_ip}", &cfg.bastion_ip);
        let port = port_of(&url);
        let ours = engine
            .inspect(s.container_name())
            .await
            .ok()
            .flatten()
            .is_some_and(|st| st.running);
        let check = format!("port {port}");
        match std::net::TcpListener::bind(("0.0.0.0", port)) {
            Ok(_) => out.push(c(&check, Status::Ok, format!("free for {}", s.id), None)),
            Err(_) if ours => out.push(c(
                &check,
                Status::Ok,
                format!("served by the running {} container", s.container_name()),
                None,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => out.push(c(
                &check,
                Status::Error,
                format!("in use by another program; {} needs it", s.id),
                Some(&format!("find it with: ss -ltnp 'sport = :{port}'")),
            )),
            Err(e) => out.push(c(
                &check,
                Status::Warning,
                format!("cannot check ({e})"),
                Some("run as root to check ports below 1024"),
            )),
        }
    }
}

/// Asks the registry whether it has the tag, as the pull step would reach it.
async fn registry_probe(
    engine: &Engine,
    dc: &Deployconfig,
    cfg: &PipelineConfig,
    tls_verify: bool,
    out: &mut Vec<Check>,
) {
    let repo = format!("{}/4.run-installer", cfg.registry);
    let creds = match cfg.credentials(dc) {
        Ok(c) => {
            c.map(|(username, password)| crate::engine::PullCredentials { username, password })
        }
        Err(e) => {
            out.push(c(
                "registry",
                Status::Error,
                e.to_string(),
                Some("set registrytoken in secrets.json"),
            ));
            return;
        }
    };
    let how = if tls_verify {
        ""
    } else {
        " (without TLS verification)"
    };
    match engine.registry_tags(&repo, creds.as_ref(), tls_verify).await {
        Ok(tags) if tags.contains(&cfg.tag) => out.push(c(
            "registry",
            Status::Ok,
            format!("{repo} answers{how} and has tag {}", cfg.tag),
            None,
        )),
        Ok(tags) => out.push(c(
            "registry",
            Status::Error,
            format!(
                "{repo} answers{how} but has no tag {} (it has: {})",
                cfg.tag,
                if tags.is_empty() { "none".to_string() } else { tags.join(", ") }
            ),
            Some("set imagetag in config.json to a tag the registry has"),
        )),
        Err(e) if tls_verify && crate::pipeline::is_tls_error(&e.to_string()) => out.push(c(
            "registry",
            Status::Error,
            format!("{repo}: a TLS problem: the registry's certificate is not trusted (self-signed, or plain HTTP): {e}"),
            Some("run with --tls-verify=false to pull without checking it (as the old script did), or give the registry a CA the bastion trusts in /etc/containers/certs.d/<registry>/ca.crt"),
        )),
        Err(e) => out.push(c(
            "registry",
            Status::Warning,
            format!("{repo}: {e}"),
            Some("check registryurl, registryusername and registrytoken, and that the bastion reaches the registry"),
        )),
    }
}

/// Runs every check. `engine` is the connection result (its error is a check too).
pub async fn run(engine: Result<&Engine, String>, dc: &Deployconfig) -> Vec<Check> {
    run_edited(engine, dc, None).await
}

/// Runs every check, judging `edited` texts (when given) instead of the files on disk.
pub async fn run_edited(
    engine: Result<&Engine, String>,
    dc: &Deployconfig,
    edited: Option<&Edited>,
) -> Vec<Check> {
    run_with(engine, dc, edited, true).await
}

/// As [`run_edited`]; `tls_verify` false probes the registry as `--tls-verify=false` pulls.
pub async fn run_with(
    engine: Result<&Engine, String>,
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
            e.clone(),
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
    engine: Result<Engine, String>,
    dc: &Deployconfig,
    json: bool,
    tls_verify: bool,
) -> i32 {
    let checks = run_with(engine.as_ref().map_err(Clone::clone), dc, None, tls_verify).await;
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
        let on_disk = run_edited(Err("no engine here".into()), &dc, None).await;
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
        let judged = run_edited(Err("no engine here".into()), &dc, Some(&edited)).await;
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
        let on_disk = run_edited(Err("no engine here".into()), &dc, None).await;
        assert!(drifts(&on_disk).is_empty(), "{on_disk:?}");
        let mut edited = config.clone();
        edited["basedomain"] = serde_json::json!("demo.example.org");
        let judged = run_edited(
            Err("no engine here".into()),
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
