//! A pipeline file is used only once the operator has accepted it.
//!
//! `<deployconfig>/stage2-pipeline.toml` decides which images run with which mounts, and where
//! root's host steps copy files. Any stage container can write the deployconfig, so a file
//! that appears or changes is never used silently: `stage2-tui pipeline accept` (or the TUI's
//! question) shows what it changes against the built-in pipeline and records the SHA-256 of the
//! exact bytes accepted in the private state folder. Every later change needs accepting again.

use std::path::Path;

use serde_json::Value;
use sha2::Digest as _;

use super::spec::{Pipeline, Source};
use crate::config::Deployconfig;
use crate::pipeline::error::PipelineError;

/// File in the private state folder holding the accepted file's SHA-256.
pub const ACCEPTED_FILE: &str = "accepted-pipeline";

/// SHA-256 of `bytes`, hex.
pub fn digest(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The digest recorded as accepted for this deployconfig, if any.
pub fn accepted(state_dir: &Path) -> Option<String> {
    let bytes = crate::safefs::read_private(&state_dir.join(ACCEPTED_FILE), 4096, false)
        .ok()
        .flatten()?;
    let text = String::from_utf8(bytes).ok()?;
    let d = text.trim();
    (d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit())).then(|| d.to_string())
}

/// Records `digest` as the accepted pipeline file of this deployconfig.
pub fn record(dc: &Deployconfig, digest: &str) -> std::io::Result<()> {
    let dir = dc.prepare_state_dir()?;
    crate::safefs::Dir::open(&dir)?.write_atomic(
        ACCEPTED_FILE.as_ref(),
        format!("{digest}\n").as_bytes(),
        0o600,
    )
}

/// What a pipeline file changes against the built-in pipeline, one line each: steps added,
/// removed or moved, and every field that differs (images, mounts, entrypoints, host actions and
/// their folders, timings…), old → new.
pub fn changes(file: &Pipeline) -> Vec<String> {
    let Ok(builtin) = Pipeline::default_pipeline() else {
        return vec!["the built-in pipeline cannot be read".into()];
    };
    let fields = |s: &super::spec::Step| -> serde_json::Map<String, Value> {
        match serde_json::to_value(s) {
            Ok(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        }
    };
    let show = |v: Option<&Value>| match v {
        None => "(unset)".to_string(),
        Some(v) => crate::text::visible(&v.to_string()).into_owned(),
    };
    let mut out = Vec::new();
    for s in &builtin.steps {
        if file.index_of(&s.id).is_none() {
            out.push(format!("step {}: removed", s.id));
        }
    }
    for (i, s) in file.steps.iter().enumerate() {
        match builtin.steps.iter().position(|b| b.id == s.id) {
            None => {
                let f = fields(s);
                let what: Vec<String> = f
                    .iter()
                    .filter(|(k, _)| k.as_str() != "id")
                    .map(|(k, v)| format!("{k} = {}", show(Some(v))))
                    .collect();
                out.push(format!("step {}: added ({})", s.id, what.join(", ")));
            }
            Some(j) => {
                if i != j {
                    out.push(format!("step {}: position {} → {}", s.id, j + 1, i + 1));
                }
                let (old, new) = (fields(&builtin.steps[j]), fields(s));
                let keys: Vec<&String> = old.keys().chain(new.keys()).collect();
                let mut seen = std::collections::HashSet::new();
                for k in keys {
                    if !seen.insert(k) || old.get(k) == new.get(k) {
                        continue;
                    }
                    out.push(format!(
                        "step {}: {k}: {} → {}",
                        s.id,
                        show(old.get(k)),
                        show(new.get(k))
                    ));
                }
            }
        }
    }
    out
}

/// Refuses a pipeline file that is not the accepted one: the error names the file, what it
/// changes and the command that accepts it.
pub fn require(
    dc: &Deployconfig,
    pipeline: &Pipeline,
    source: &Source,
) -> Result<(), PipelineError> {
    let Source::File { path, digest } = source else {
        return Ok(());
    };
    if accepted(&dc.state_dir()).as_deref() == Some(digest.as_str()) {
        return Ok(());
    }
    Err(PipelineError::NotAccepted {
        file: path.clone(),
        changes: changes(pipeline),
        command: accept_command(dc),
        digest: digest.clone(),
    })
}

/// The command that accepts this deployconfig's pipeline file.
pub fn accept_command(dc: &Deployconfig) -> String {
    let dflt = Path::new(crate::config::DEFAULT_DEPLOYCONFIG);
    if dc.dir == dflt {
        "stage2-tui pipeline accept".into()
    } else {
        format!(
            "stage2-tui pipeline accept --deployconfig {}",
            crate::safefs::shell_quote(&dc.dir.display().to_string())
        )
    }
}

/// `stage2-tui pipeline accept`: prints what the file changes and records it. `yes`: accept
/// without asking (scripts); else the operator types `yes`.
pub fn command(dc: &Deployconfig, yes: bool) -> i32 {
    let (pipeline, source) = match Pipeline::load(&dc.pipeline_file()) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("stage2-tui: {e}");
            return crate::exit::CANNOT_START;
        }
    };
    let Source::File { path, digest } = &source else {
        crate::outln!(
            "no {} here: the built-in pipeline is used, nothing to accept",
            dc.pipeline_file().display()
        );
        return crate::exit::OK;
    };
    if accepted(&dc.state_dir()).as_deref() == Some(digest.as_str()) {
        crate::outln!("{path} is already accepted (sha256 {digest})");
        return crate::exit::OK;
    }
    crate::outln!("{path} (sha256 {digest}) against the built-in pipeline:");
    print_changes(&changes(&pipeline));
    if !yes && !ask_to_use(path) {
        eprintln!("stage2-tui: not accepted; nothing changed");
        return crate::exit::FAILED;
    }
    match record(dc, digest) {
        Ok(()) => {
            crate::outln!(
                "accepted: runs of {} use {path} until it changes",
                dc.dir.display()
            );
            crate::exit::OK
        }
        Err(e) => {
            eprintln!("stage2-tui: cannot record the acceptance: {e}");
            crate::exit::CANNOT_START
        }
    }
}

/// Opens a runner for the TUI: a pipeline file not accepted yet is shown with what it changes,
/// and the operator is asked on the terminal (before the screen is taken) to accept exactly
/// those bytes; only a typed `yes` does.
pub fn open_asking(
    engine: &crate::engine::Engine,
    dc: &Deployconfig,
    events: tokio::sync::mpsc::UnboundedSender<super::Event>,
) -> Result<super::Runner, PipelineError> {
    use std::io::IsTerminal as _;
    match super::Runner::open(engine.clone(), dc.clone(), events.clone()) {
        Err(PipelineError::NotAccepted {
            file,
            changes,
            command,
            digest,
        }) if std::io::stdin().is_terminal() => {
            crate::outln!(
                "{file} (sha256 {digest}) is not accepted yet. What it changes against the built-in pipeline:"
            );
            print_changes(&changes);
            if !ask_to_use(&file) {
                return Err(PipelineError::Refused(format!(
                    "{file} was not accepted; nothing ran. Accept it later with `{command}`, or remove it to use the built-in pipeline"
                )));
            }
            record(dc, &digest).map_err(|source| PipelineError::Io {
                action: "record the accepted pipeline in",
                path: dc.state_dir(),
                source,
            })?;
            super::Runner::open(engine.clone(), dc.clone(), events)
        }
        other => other,
    }
}

/// Lists what a pipeline file changes against the built-in pipeline.
fn print_changes(changes: &[String]) {
    if changes.is_empty() {
        crate::outln!("  no difference");
    }
    for c in changes {
        crate::outln!("  {c}");
    }
}

/// Asks whether to use the file (only a typed `yes` says so).
fn ask_to_use(file: &str) -> bool {
    ask_yes(&format!(
        "use {file} for this deployconfig's runs? type yes: "
    ))
}

/// Asks on the terminal; only a typed `yes` (or `y`) accepts — Enter alone refuses.
pub fn ask_yes(question: &str) -> bool {
    use std::io::Write as _;
    crate::out!("{question}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "yes" | "y")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_every_field_that_differs() {
        let mut p = Pipeline::default_pipeline().unwrap();
        let i = p.index_of("install-clients").unwrap();
        use super::super::spec::{Host, MountSpec, Work};
        let Work::Host(Host::InstallClients { bin_dir, .. }) = &mut p.steps[i].work else {
            panic!("install-clients is a host step")
        };
        *bin_dir = "/etc/profile.d".into();
        let j = p.index_of("4.run-installer").unwrap();
        let Work::Oneshot(c) = &mut p.steps[j].work else {
            panic!("4.run-installer is a oneshot step")
        };
        c.mounts.push(MountSpec {
            source: "/".into(),
            target: "/host".into(),
            options: "rw".into(),
        });
        let ch = changes(&p);
        assert!(
            ch.iter()
                .any(|c| c.starts_with("step install-clients: bin_dir:")
                    && c.contains("/etc/profile.d")),
            "{ch:?}"
        );
        assert!(
            ch.iter()
                .any(|c| c.starts_with("step 4.run-installer: mounts:") && c.contains("/host")),
            "{ch:?}"
        );
        assert!(changes(&Pipeline::default_pipeline().unwrap()).is_empty());
    }
}
