//! `stage2-tui status --json`: where a run stands, for scripts, Ansible and support.
//!
//! Read-only: it takes no lock and changes nothing. Exit 0 when a run exists, 2 when none.

use serde_json::{Value, json};

use crate::config::Deployconfig;
use crate::pipeline::RunLock;
use crate::pipeline::state::{Outcome, RunState};

/// An RFC 3339 time, or null.
fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    t.map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .unwrap_or(Value::Null)
}

/// What the engine says of the containers the state calls running or serving: gone, or exited
/// (with its code), by step.
async fn engine_view(
    st: &RunState,
    engine: &crate::engine::Engine,
) -> std::collections::HashMap<String, (&'static str, Option<i64>)> {
    let mut seen = std::collections::HashMap::new();
    for s in st.steps.iter().filter(|s| {
        matches!(
            s.status,
            crate::pipeline::StepStatus::Running | crate::pipeline::StepStatus::Serving
        )
    }) {
        let Some(id) = s.last().and_then(|a| a.container_id.clone()) else {
            continue;
        };
        let look = tokio::time::timeout(std::time::Duration::from_secs(5), engine.inspect(&id));
        match look.await {
            Ok(Ok(None)) => {
                seen.insert(s.id.clone(), ("gone", None));
            }
            Ok(Ok(Some(c))) if !c.running => {
                seen.insert(s.id.clone(), ("exited", c.exit_code));
            }
            _ => {}
        }
    }
    seen
}

/// The run's status as JSON (`None` when there is no run). With an engine, a step the state
/// records as running or serving is checked against its container: one that exited (while no
/// stage2-tui watched) is reported as `exited`, with the engine's exit code; one that is gone,
/// as `gone`.
pub async fn report(
    dc: &Deployconfig,
    engine: Option<&crate::engine::Engine>,
) -> Result<Option<Value>, crate::pipeline::PipelineError> {
    let dir = dc.state_dir();
    let Some(st) = RunState::load(&dir)? else {
        return Ok(None);
    };
    let driver = RunLock::holder(&dir);
    let status = match st.outcome {
        Outcome::InProgress if driver.is_some() => "running",
        Outcome::InProgress => "halted",
        Outcome::Succeeded => "completed",
        Outcome::Failed => "failed",
        Outcome::Stopped => "stopped",
    };
    let seen = match engine {
        Some(engine) => engine_view(&st, engine).await,
        None => Default::default(),
    };
    let steps: Vec<Value> = st
        .steps
        .iter()
        .map(|s| {
            let a = s.last();
            let (word, code) = match seen.get(&s.id) {
                Some((w, c)) => (*w, *c),
                None => (s.status.word(), a.and_then(|a| a.exit_code)),
            };
            json!({
                "id": s.id,
                "status": word,
                "recorded_status": s.status.word(),
                "attempts": s.attempts.len(),
                "exit_code": code,
                "log": a.map(|a| dir.join(&a.log).display().to_string()),
                "started": time(a.map(|a| a.started_at)),
                "finished": time(a.and_then(|a| a.finished_at)),
                "error": a.and_then(|a| a.error.clone()),
                "container": a.and_then(|a| a.container.clone()),
                "window_ends_at": time(s.window_ends_at),
                "diagnosis": a.and_then(|a| a.diagnosis.as_ref()).map(|d| json!({
                    "id": d.id,
                    "cause": d.cause,
                    "fix": d.fix,
                    "line": d.line,
                })),
            })
        })
        .collect();
    Ok(Some(json!({
        "drift": drift(dc),
        "run": st.run_id,
        "state_dir": dir.display().to_string(),
        "deployconfig": dc.dir.display().to_string(),
        "status": status,
        "driver": driver,
        "created": time(Some(st.created_at)),
        "finished": time(st.finished_at),
        "steps": steps,
        "cluster": crate::pipeline::cluster::load(&dir).map(|c| json!({
            "updated": time(Some(c.at)),
            "error": c.error,
            "nodes_declared": c.declared.len(),
            "nodes_ready": c.ready_declared(),
            "not_ready": c.not_ready(),
            "csrs_pending": c.csr_pending.len(),
            "csrs_not_approved": c.csr_other,
            "csrs_approved": c.csr_approved,
            "operators": c.operators,
        })),
    })))
}

/// Where install-config.yaml and ansible-hosts differ from config.json and secrets.json (see
/// [`crate::config::derived`]); secrets are never shown.
fn drift(dc: &Deployconfig) -> Vec<String> {
    let Ok(config) = crate::config::read_json(&dc.config_json()) else {
        return Vec::new();
    };
    let secrets = crate::config::read_json(&dc.secrets_json()).ok();
    crate::config::derived::drift(&dc.dir, &config, secrets.as_ref())
}

/// Runs `status --json`; returns the exit code. `engine`: the engine, when it answered (the
/// status is then checked against the containers).
pub async fn command(dc: &Deployconfig, engine: Option<crate::engine::Engine>) -> i32 {
    match report(dc, engine.as_ref()).await {
        Ok(Some(v)) => {
            crate::outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            0
        }
        Ok(None) => {
            crate::outln!(
                "{}",
                json!({"drift": drift(dc), "run": null, "state_dir": dc.state_dir().display().to_string(), "deployconfig": dc.dir.display().to_string(), "status": "none", "steps": []})
            );
            eprintln!(
                "stage2-tui: no run of {} yet (start one with `stage2-tui` or `stage2-tui run --headless`)",
                dc.dir.display()
            );
            2
        }
        Err(e) => {
            eprintln!("stage2-tui: {e}");
            1
        }
    }
}
