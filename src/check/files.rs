//! The checks of the deployconfig's own files: present, parseable, valid, in step with what
//! 2.create-config makes from them, the installer override, the ignition's age, the disk.

use super::*;

pub(super) fn files(dc: &Deployconfig, makers: &[(String, String)], out: &mut Vec<Check>) {
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
            Ok(m) if *name == "deploy.pem" && m.permissions().mode() & 0o077 != 0 => {
                out.push(Check {
                    key_too_open: true,
                    ..c(
                        name,
                        Status::Error,
                        format!(
                            "{} has mode {:o}; ssh refuses a key others can read",
                            p.display(),
                            m.permissions().mode() & 0o777
                        ),
                        Some(&format!("chmod 600 {}", p.display())),
                    )
                })
            }
            Ok(_) => out.push(c(name, Status::Ok, "present", None)),
        }
    }
}

pub(super) fn parse_problem(name: &str, e: &ConfigError) -> Check {
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

pub(super) fn config(
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
pub(super) fn drift(
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
            key_too_open: false,
        });
    }
}

pub(super) fn installer_override(dc: &Deployconfig, out: &mut Vec<Check>) {
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

pub(super) fn ignition_age(dc: &Deployconfig, out: &mut Vec<Check>) {
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

pub(super) fn disk(dc: &Deployconfig, out: &mut Vec<Check>) {
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
