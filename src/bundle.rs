//! `stage2-tui bundle`: one `tar.gz` with everything support needs to see why a run failed,
//! and no secret: every secrets.json value is masked wherever it appears, stage output included.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::config::Deployconfig;
use crate::engine::{Engine, labels};
use crate::pipeline::Pipeline;
use crate::pipeline::state::RunState;

/// The most of one step log a bundle carries (its end): a real log is far smaller.
pub const MAX_LOG_BYTES: u64 = 64 << 20;

/// What went into a bundle.
#[derive(Debug)]
pub struct Written {
    /// The file.
    pub path: PathBuf,
    /// Entries in it.
    pub files: usize,
    /// Its size in bytes.
    pub bytes: u64,
    /// Parts that could not be added, and why (they are listed in the bundle's README too).
    pub missing: Vec<String>,
    /// What was masked, truthfully: "every secrets.json value is masked", or what was done
    /// instead when secrets.json does not parse.
    pub masking: String,
}

/// Masks every secret value in every form it takes (as written, JSON-escaped inside a JSON
/// string, …: [`crate::config::secret_values`] lists them all).
struct Redactor {
    values: Vec<String>,
}

impl Redactor {
    fn new(dc: &Deployconfig) -> Self {
        Self {
            values: crate::config::secret_values(dc),
        }
    }

    fn text(&self, s: &str) -> String {
        crate::text::mask(s, &self.values).into_owned()
    }

    fn bytes(&self, b: &[u8]) -> Vec<u8> {
        self.text(&String::from_utf8_lossy(b)).into_bytes()
    }

    fn json(&self, v: &Value) -> Vec<u8> {
        self.text(&serde_json::to_string_pretty(v).unwrap_or_default())
            .into_bytes()
    }
}

/// secrets.json with every value replaced: its shape stays, so support sees what is set.
fn blank_secrets(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), blank_secrets(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(blank_secrets).collect()),
        Value::String(s) if s.is_empty() => Value::String(String::new()),
        Value::Null | Value::Bool(_) => v.clone(),
        _ => Value::String("<redacted>".into()),
    }
}

struct Tar {
    builder: tar::Builder<flate2::write::GzEncoder<std::fs::File>>,
    prefix: String,
    files: usize,
}

impl Tar {
    fn add(&mut self, name: &str, data: &[u8]) -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
        h.set_entry_type(tar::EntryType::Regular);
        self.builder
            .append_data(&mut h, format!("{}/{name}", self.prefix), data)?;
        self.files += 1;
        Ok(())
    }
}

/// An error adding `what` to the bundle, said as such.
fn finish(out: &Path) -> impl Fn(std::io::Error) -> BundleError {
    let path = out.to_path_buf();
    move |source| BundleError::Finish {
        path: path.clone(),
        source,
    }
}

/// Why no bundle was written.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The path names no file.
    #[error("{}: not a file name", .0.display())]
    NotAFile(PathBuf),
    /// The bundle file could not be made (it exists, the folder is not writable…).
    #[error("cannot create {}: {source}", path.display())]
    Create {
        /// The bundle.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A part could not be written into it (the disk filled…).
    #[error("writing {what} into the bundle: {source}")]
    Write {
        /// The part.
        what: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// Its end could not be written or synced.
    #[error("finishing {}: {source}", path.display())]
    Finish {
        /// The bundle.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// Its private folder could not be made.
    #[error("cannot make its folder: {0}")]
    Folder(#[source] std::io::Error),
    /// The thread writing it stopped.
    #[error("the bundle writer stopped: {0}")]
    Stopped(String),
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> BundleError {
    let what = what.to_string();
    move |source| BundleError::Write { what, source }
}

/// The default file name: `stage2-bundle-<cluster>-<time>.tar.gz` in `dir`.
pub fn default_path(dc: &Deployconfig, dir: &Path) -> PathBuf {
    let cluster = crate::config::read_json(&dc.config_json())
        .ok()
        .and_then(|c| c.get("clusterid")?.as_str().map(str::to_string))
        .filter(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        })
        .unwrap_or_else(|| "cluster".into());
    dir.join(format!(
        "stage2-bundle-{cluster}-{}.tar.gz",
        chrono::Local::now().format("%Y%m%d-%H%M%S")
    ))
}

/// Writes the bundle of `dc`'s run to `out` (created 0600, never through a link).
pub async fn write(
    engine: Option<&Engine>,
    dc: &Deployconfig,
    out: &Path,
) -> Result<Written, BundleError> {
    let red = Redactor::new(dc);
    let mut missing = Vec::new();
    let name = out
        .file_name()
        .ok_or_else(|| BundleError::NotAFile(out.to_path_buf()))?;
    let file = crate::safefs::create_private_file(out).map_err(|source| BundleError::Create {
        path: out.to_path_buf(),
        source,
    })?;
    let stem = name
        .to_string_lossy()
        .trim_end_matches(".tar.gz")
        .trim_end_matches(".tgz")
        .to_string();
    let mut tar = Tar {
        builder: tar::Builder::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::default(),
        )),
        prefix: stem,
        files: 0,
    };

    // Where the run stands, and its state.
    let state_dir = dc.state_dir();
    match crate::status::report(dc, engine).await {
        Ok(Some(v)) => tar
            .add("status.json", &red.json(&v))
            .map_err(io("status.json"))?,
        Ok(None) => missing.push("status.json: no run of this deployconfig yet".into()),
        Err(e) => missing.push(format!("status.json: {e}")),
    }
    add_run_state(&mut tar, &red, &mut missing, &state_dir)?;
    add_debug_log(&mut tar, &red, &mut missing)?;

    add_files(&mut tar, &red, &mut missing, dc)?;
    let none = crate::engine::EngineError::Unreachable {
        context: "connecting".into(),
        detail: "the engine did not answer".into(),
    };
    let checks = crate::check::run(engine.ok_or(&none), dc).await;
    let doc = json!({ "deployconfig": dc.dir.display().to_string(), "checks": checks });
    tar.add("check.json", &red.json(&doc))
        .map_err(io("check.json"))?;

    // The engine, and every container of this deployconfig as the engine sees it.
    add_engine_view(&mut tar, &red, &mut missing, engine, dc).await?;

    let masking = masking(dc, &red);
    let readme = readme(dc, &masking, &missing);
    tar.add("README.txt", red.text(&readme).as_bytes())
        .map_err(io("README.txt"))?;
    let files = tar.files;
    let gz = tar.builder.into_inner().map_err(finish(out))?;
    let f = gz.finish().map_err(finish(out))?;
    f.sync_all().map_err(finish(out))?;
    let bytes = f.metadata().map(|m| m.len()).unwrap_or(0);
    Ok(Written {
        path: out.to_path_buf(),
        files,
        bytes,
        missing,
        masking,
    })
}

/// What was masked, in words.
fn masking(dc: &Deployconfig, red: &Redactor) -> String {
    match crate::config::read_json(&dc.secrets_json()) {
        Ok(_) => "every secrets.json value is masked".to_string(),
        Err(crate::config::ConfigError::Parse { .. }) => format!(
            "secrets.json does not parse, so its values cannot be told apart: every string found in its text ({} of them) is masked instead, and the file itself is left out",
            red.values.len()
        ),
        Err(_) => "there is no readable secrets.json, so there was nothing to mask".to_string(),
    }
}

/// The bundle's README: where it comes from, what was masked, and what is not in it.
fn readme(dc: &Deployconfig, masking: &str, missing: &[String]) -> String {
    let mut readme = format!(
        "stage2-tui support bundle\n\ndeployconfig: {}\nwritten: {}\nby: stage2-tui {}\n\n\
         Masking: {masking} (••••••), wherever it appears, stage output included;\n\
         secrets.json itself is kept (when it parses) with its values replaced by <redacted>.\n",
        dc.dir.display(),
        chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        env!("CARGO_PKG_VERSION"),
    );
    if !missing.is_empty() {
        readme.push_str("\nNot included:\n");
        for m in missing {
            readme.push_str(&format!("- {m}\n"));
        }
    }
    readme
}

/// stage2-tui's own debug log (`STAGE2_LOG`), its last MAX_LOG_BYTES, masked like the rest.
fn add_debug_log(
    tar: &mut Tar,
    red: &Redactor,
    missing: &mut Vec<String>,
) -> Result<(), BundleError> {
    let path = crate::debuglog::path();
    match crate::safefs::read_private(&path, MAX_LOG_BYTES, true) {
        Ok(Some(b)) => tar
            .add("stage2-tui-debug.log", &red.bytes(&b))
            .map_err(io("stage2-tui-debug.log")),
        Ok(None) => {
            missing.push(format!(
                "stage2-tui-debug.log: there is none at {} (STAGE2_LOG=debug writes one)",
                path.display()
            ));
            Ok(())
        }
        Err(e) => {
            missing.push(format!("{}: {e}", path.display()));
            Ok(())
        }
    }
}

/// The run's state, every attempt's log (masked), the diagnoses, the web server's access
/// evidence and the last look at the cluster.
fn add_run_state(
    tar: &mut Tar,
    red: &Redactor,
    missing: &mut Vec<String>,
    state_dir: &Path,
) -> Result<(), BundleError> {
    let state = RunState::load(state_dir).ok().flatten();
    if let Some(st) = &state {
        let v = serde_json::to_value(st).unwrap_or_default();
        tar.add("state.json", &red.json(&v))
            .map_err(io("state.json"))?;
        // Every attempt's log, masked line by line.
        for s in &st.steps {
            for a in &s.attempts {
                // RunState::load checked that the path is inside logs/; the file is read
                // without following a link, and only its last MAX_LOG_BYTES.
                let path = state_dir.join(&a.log);
                match crate::safefs::read_private(&path, MAX_LOG_BYTES, true) {
                    Ok(Some(b)) => {
                        let entry = a.log.display().to_string();
                        tar.add(&entry, &red.bytes(&b)).map_err(io(&entry))?;
                    }
                    Ok(None) => missing.push(format!("{}: no such file", path.display())),
                    Err(e) => missing.push(format!("{}: {e}", path.display())),
                }
            }
        }
        // The diagnoses, one place.
        let diagnoses: Vec<Value> = st
            .steps
            .iter()
            .flat_map(|s| {
                s.attempts.iter().filter_map(move |a| {
                    a.diagnosis
                        .as_ref()
                        .map(|d| json!({"step": s.id, "attempt": a.n, "diagnosis": d}))
                })
            })
            .collect();
        tar.add("diagnoses.json", &red.json(&Value::Array(diagnoses)))
            .map_err(io("diagnoses.json"))?;
        // The web server's access evidence: who fetched bootstrap.ign, when.
        let mut evidence = String::new();
        for s in &st.steps {
            for a in &s.attempts {
                let Ok((_, lines)) =
                    crate::pipeline::diagnosis::read_log_texts(&state_dir.join(&a.log))
                else {
                    continue;
                };
                for f in
                    crate::pipeline::diagnosis::bootstrap_fetches(lines.iter().map(String::as_str))
                {
                    evidence.push_str(&format!(
                        "{} attempt {}: served to {} {} HTTP {} {} bytes\n",
                        s.id, a.n, f.client, f.time, f.status, f.bytes
                    ));
                }
            }
        }
        if evidence.is_empty() {
            evidence = "no fetch of bootstrap.ign in any web server log of this run\n".into();
        }
        tar.add("webserver-access.txt", red.text(&evidence).as_bytes())
            .map_err(io("webserver-access.txt"))?;
    } else {
        missing.push("state.json and logs: no run state".into());
    }
    if let Some(c) = crate::pipeline::cluster::load(state_dir) {
        let v = serde_json::to_value(c).unwrap_or_default();
        tar.add("cluster.json", &red.json(&v))
            .map_err(io("cluster.json"))?;
    }
    Ok(())
}

/// The deployconfig's files: config.json masked, secrets.json blanked, the pipeline in use.
fn add_files(
    tar: &mut Tar,
    red: &Redactor,
    missing: &mut Vec<String>,
    dc: &Deployconfig,
) -> Result<(), BundleError> {
    match crate::config::read_text(&dc.config_json()) {
        Ok(t) => tar
            .add("config.json", red.text(&t).as_bytes())
            .map_err(io("config.json"))?,
        Err(e) => missing.push(format!("config.json: {e}")),
    }
    match crate::config::read_json(&dc.secrets_json()) {
        Ok(v) => tar
            .add("secrets.redacted.json", &red.json(&blank_secrets(&v)))
            .map_err(io("secrets.json"))?,
        Err(e) => missing.push(format!("secrets.json: {e}")),
    }
    match Pipeline::load(&dc.pipeline_file()) {
        Ok((p, source)) => {
            let from = match source {
                crate::pipeline::spec::Source::Default => "the built-in pipeline".to_string(),
                crate::pipeline::spec::Source::File { path: f, .. } => format!("from {f}"),
            };
            let text = format!("# the pipeline in use: {from}\n{}", p.to_toml());
            tar.add("pipeline.toml", red.text(&text).as_bytes())
                .map_err(io("pipeline.toml"))?;
        }
        Err(e) => missing.push(format!("pipeline: {e}")),
    }
    Ok(())
}

/// The engine, and every container of this deployconfig as the engine sees it.
async fn add_engine_view(
    tar: &mut Tar,
    red: &Redactor,
    missing: &mut Vec<String>,
    engine: Option<&Engine>,
    dc: &Deployconfig,
) -> Result<(), BundleError> {
    match engine {
        Some(engine) => {
            let mut info = json!({ "described": engine.describe() });
            for (key, what) in [
                ("version", crate::engine::About::Version),
                ("info", crate::engine::About::Info),
            ] {
                match engine.about_json(what).await {
                    Ok(Some(v)) => info[key] = v,
                    Ok(None) => missing.push(format!("engine {key}: not found")),
                    Err(e) => missing.push(format!("engine {key}: {e}")),
                }
            }
            tar.add("engine.json", &red.json(&info))
                .map_err(io("engine.json"))?;
            let path = dc.dir.display().to_string();
            match engine
                .find_by_labels(&[(labels::DEPLOYCONFIG, &path)])
                .await
            {
                Ok(ids) => {
                    if ids.is_empty() {
                        missing.push(
                            "inspect/: no container of this deployconfig is left in the engine"
                                .into(),
                        );
                    }
                    for id in ids {
                        match engine.inspect_json(&id).await {
                            Ok(Some(v)) => {
                                let name = v["Name"]
                                    .as_str()
                                    .unwrap_or(&id)
                                    .trim_start_matches('/')
                                    .replace('/', "_");
                                let entry = format!("inspect/{name}.json");
                                tar.add(&entry, &red.json(&v)).map_err(io(&entry))?;
                            }
                            Ok(None) => {}
                            Err(e) => missing.push(format!("inspect {id}: {e}")),
                        }
                    }
                }
                Err(e) => missing.push(format!("listing the run's containers: {e}")),
            }
        }
        None => missing.push("engine.json and inspect/: the engine did not answer".into()),
    }
    Ok(())
}

/// `<state folder>/bundles` (0700): where the dashboard's `B` writes, out of every container's
/// reach.
pub fn private_bundle_dir(dc: &Deployconfig) -> std::io::Result<PathBuf> {
    let d = dc.state_dir().join("bundles");
    crate::safefs::private_dir(&d)?;
    Ok(d)
}

/// [`write`] on a blocking thread: reading every log, masking it and gzipping the lot is disk
/// and CPU work that must not hold a runtime worker (the TUI's loop and the runner use them).
pub async fn write_blocking(
    engine: Option<Engine>,
    dc: Deployconfig,
    out: PathBuf,
) -> Result<Written, BundleError> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(write(engine.as_ref(), &dc, &out)))
        .await
        .map_err(|e| BundleError::Stopped(e.to_string()))?
}

/// The TUI's bundle: [`write`] into the private state folder's `bundles/`, named by cluster and
/// time, all on a blocking thread (making the folder and reading config.json for the name too).
pub async fn write_private_blocking(
    engine: Option<Engine>,
    dc: Deployconfig,
) -> Result<Written, BundleError> {
    let at = dc.clone();
    let out = tokio::task::spawn_blocking(move || {
        private_bundle_dir(&at).map(|dir| default_path(&at, &dir))
    })
    .await
    .map_err(|e| BundleError::Stopped(e.to_string()))?
    .map_err(BundleError::Folder)?;
    write_blocking(engine, dc, out).await
}

/// Runs `stage2-tui bundle`; returns the exit code.
pub async fn command(
    engine: Result<Engine, crate::engine::EngineError>,
    dc: &Deployconfig,
    out: Option<PathBuf>,
) -> i32 {
    let out = out.unwrap_or_else(|| {
        // Never into the deployconfig by default: every stage container reads it.
        let here = std::env::current_dir()
            .map(|d| crate::config::canonical(&d))
            .unwrap_or_default();
        if here.starts_with(&dc.dir) {
            private_bundle_dir(dc).map_or_else(
                |_| default_path(dc, Path::new(".")),
                |d| default_path(dc, &d),
            )
        } else {
            default_path(dc, Path::new("."))
        }
    });
    if let Err(e) = &engine {
        eprintln!("stage2-tui: {e}; the bundle goes without the engine's view");
    }
    match write_blocking(engine.ok(), dc.clone(), out).await {
        Ok(w) => {
            crate::outln!(
                "support bundle written to {} ({} files, {} KB); {}",
                w.path.display(),
                w.files,
                w.bytes.div_ceil(1024),
                w.masking
            );
            for m in &w.missing {
                crate::outln!("  not included: {m}");
            }
            0
        }
        Err(e) => {
            eprintln!("stage2-tui: {e}");
            1
        }
    }
}
