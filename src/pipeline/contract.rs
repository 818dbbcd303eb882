//! What a stage needs before it runs and what it must leave behind (its contract), and what a
//! run of it again would undo. The real stage images exit 0 when they fail (4.run-installer
//! ends with a `cp`, 6.add-ignition `Exit`s with no code), so an exit code alone proves nothing:
//! a step succeeds only when its contract holds.
//!
//! Everything here reads the deployconfig, which stage containers write: files are opened
//! without following a link at any level, only regular files count, and reads are capped.

use std::io::{BufRead, Read};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The largest JSON file (config.json, terraform.tfstate) a contract check reads.
const MAX_JSON: u64 = 64 << 20;

/// A step's contract. Every list is optional; paths are relative to the deployconfig.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// Files that must exist before the step starts (else it does not start).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// config.json fields (dotted, `ignition.svc_ignition`) that must be filled before it starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs_fields: Vec<String>,
    /// Files the step must leave: regular, not empty, and written after the step started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub makes: Vec<String>,
    /// config.json fields the step must leave filled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fills: Vec<String>,
    /// Terraform states (`terraform.tfstate`) the step must leave with at least one resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<String>,
    /// Log lines that mean failure whatever the exit code (regular expressions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fails_on: Vec<String>,
    /// Inputs the step consumes: stage2-tui keeps a copy of each (in its private state) before
    /// the step runs, and puts it back, byte for byte, when a later run of the step finds it gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keeps: Vec<String>,
    /// Files copied into the run's private state folder (`backups/<run>/`) before the step runs
    /// (one that makes them again: the old ones are not lost).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backs_up: Vec<String>,
    /// A terraform state: while it lists resources (VMs), running this step again is refused
    /// (it would make them again, or make a CA they do not trust), unless forced knowingly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_while_state: Option<String>,
    /// Top-level config.json keys removed before the step runs: a step that appends one on every
    /// run (removebootstrap.sh's `bootstrap_complete`) then never leaves a duplicate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clears_keys: Vec<String>,
}

impl Contract {
    /// True when the step declares nothing.
    pub fn is_empty(&self) -> bool {
        self == &Contract::default()
    }

    /// Checks paths are plain relative paths, fields dotted names, and patterns valid regexes.
    pub fn validate(&self) -> Result<(), String> {
        let files = self
            .needs
            .iter()
            .chain(&self.makes)
            .chain(&self.states)
            .chain(&self.keeps)
            .chain(&self.backs_up)
            .chain(&self.refuse_while_state);
        for f in files {
            let p = Path::new(f);
            if f.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
                return Err(format!(
                    "contract path `{f}` must be a plain path inside the deployconfig (no `/` at the start, no `..`)"
                ));
            }
        }
        for k in self
            .needs_fields
            .iter()
            .chain(&self.fills)
            .chain(&self.clears_keys)
        {
            if k.is_empty() || k.split('.').any(str::is_empty) {
                return Err(format!(
                    "contract field `{k}` must be a dotted config.json field"
                ));
            }
        }
        for k in &self.clears_keys {
            if k.contains('.') || k.contains('"') || k.contains('\\') {
                return Err(format!(
                    "`clears_keys` entry `{k}` must be a plain top-level config.json key"
                ));
            }
        }
        for p in &self.fails_on {
            regex::Regex::new(p).map_err(|e| format!("`fails_on` pattern `{p}`: {e}"))?;
        }
        Ok(())
    }
}

/// Opens the regular file `rel` inside `dc`, following no link at any level.
pub fn open_in(dc: &Path, rel: &str) -> std::io::Result<std::fs::File> {
    let rel = Path::new(rel);
    let name = rel.file_name().unwrap_or_default();
    let parent = rel.parent().unwrap_or(Path::new(""));
    crate::safefs::Dir::open(dc)?
        .subdir(parent, false)?
        .open_file(name)
}

/// Reads the regular file `rel` inside `dc`, at most `cap` bytes (more is an error).
pub fn read_in(dc: &Path, rel: &str, cap: u64) -> std::io::Result<Vec<u8>> {
    let f = open_in(dc, rel)?;
    let mut out = Vec::new();
    f.take(cap + 1).read_to_end(&mut out)?;
    if out.len() as u64 > cap {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            cap >> 20
        )));
    }
    Ok(out)
}

/// The value at a dotted path (`ignition.svc_ignition`, `svcs.0.hostname`).
pub fn lookup<'a>(v: &'a serde_json::Value, dotted: &str) -> Option<&'a serde_json::Value> {
    dotted.split('.').try_fold(v, |v, k| match v {
        serde_json::Value::Object(m) => m.get(k),
        serde_json::Value::Array(a) => a.get(k.parse::<usize>().ok()?),
        _ => None,
    })
}

fn filled(v: Option<&serde_json::Value>) -> bool {
    match v {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::String(s)) => !s.trim().is_empty(),
        Some(serde_json::Value::Array(a)) => !a.is_empty(),
        Some(serde_json::Value::Object(m)) => !m.is_empty(),
        Some(_) => true,
    }
}

fn config_json(dc: &Path) -> Result<serde_json::Value, String> {
    let bytes = read_in(dc, "config.json", MAX_JSON).map_err(|e| format!("config.json: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("config.json does not parse ({e})"))
}

/// What is missing before a step may start: files and config.json fields, each named.
pub fn missing_inputs(dc: &Path, c: &Contract) -> Vec<String> {
    let mut out = Vec::new();
    for f in &c.needs {
        match open_in(dc, f).and_then(|f| f.metadata()) {
            Ok(m) if m.len() > 0 => {}
            Ok(_) => out.push(format!("{f} is empty")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => out.push(format!("no {f}")),
            Err(e) => out.push(format!("{f}: {e}")),
        }
    }
    if !c.needs_fields.is_empty() {
        match config_json(dc) {
            Ok(v) => {
                for k in &c.needs_fields {
                    if !filled(lookup(&v, k)) {
                        out.push(format!("config.json {k} is empty"));
                    }
                }
            }
            Err(e) => out.push(e),
        }
    }
    out
}

/// The names of the resources a terraform state lists (VM names where it has them), or `None`
/// when there is no such file. A file that is not a readable state is an error.
pub fn state_resources(dc: &Path, rel: &str) -> Result<Option<Vec<String>>, String> {
    let bytes = match read_in(dc, rel, MAX_JSON) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{rel}: {e}")),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(vec![]));
    }
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{rel} is not a terraform state ({e})"))?;
    let mut names = Vec::new();
    for r in v["resources"].as_array().into_iter().flatten() {
        if r["mode"].as_str() == Some("data") {
            continue;
        }
        let kind = r["type"].as_str().unwrap_or("resource");
        for inst in r["instances"].as_array().into_iter().flatten() {
            let name = inst["attributes"]["name"]
                .as_str()
                .or_else(|| inst["index_key"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| format!("{kind}.{}", r["name"].as_str().unwrap_or("?")));
            names.push(crate::text::visible(&name).chars().take(80).collect());
        }
    }
    Ok(Some(names))
}

/// The first saved-log line matching one of `patterns`, as text.
pub fn failure_line(log: &Path, patterns: &[String]) -> Option<String> {
    let set = regex::RegexSet::new(patterns).ok()?;
    let f = std::fs::File::open(log).ok()?;
    let mut r = std::io::BufReader::new(f);
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let raw = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = crate::logformat::parse_saved_line(raw).map_or(raw, |(_, _, t)| t);
        let text = String::from_utf8_lossy(text);
        if set.is_match(&text) {
            return Some(text.trim().chars().take(300).collect());
        }
    }
}

/// How a step that exited 0 broke its contract: each problem in words, failure line first.
pub fn broken(dc: &Path, c: &Contract, since: SystemTime, log: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(l) = failure_line(log, &c.fails_on) {
        out.push(format!("its log says: {l}"));
    }
    let mut missing = Vec::new();
    let mut stale = Vec::new();
    for f in &c.makes {
        match open_in(dc, f).and_then(|f| f.metadata()) {
            Ok(m) if m.len() == 0 => out.push(format!("left {f} empty")),
            Ok(m) => {
                // A second of slack: file times and the engine's start are both the host clock.
                let fresh = m
                    .modified()
                    .is_ok_and(|t| t + std::time::Duration::from_secs(2) >= since);
                if !fresh {
                    stale.push(f.as_str());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(f.as_str()),
            Err(e) => out.push(format!("left {f} unusable ({e})")),
        }
    }
    if !missing.is_empty() {
        out.push(format!("made no {}", missing.join(", ")));
    }
    if !stale.is_empty() {
        out.push(format!(
            "did not write {} (older than the step's start)",
            stale.join(", ")
        ));
    }
    if !c.fills.is_empty() {
        match config_json(dc) {
            Ok(v) => {
                let empty: Vec<&str> = c
                    .fills
                    .iter()
                    .filter(|k| !filled(lookup(&v, k)))
                    .map(String::as_str)
                    .collect();
                if !empty.is_empty() {
                    out.push(format!("left config.json {} empty", empty.join(", ")));
                }
            }
            Err(e) => out.push(format!("left {e}")),
        }
    }
    for s in &c.states {
        match state_resources(dc, s) {
            Ok(Some(r)) if !r.is_empty() => {}
            Ok(Some(_)) => out.push(format!("left {s} with no resources")),
            Ok(None) => out.push(format!("made no {s}")),
            Err(e) => out.push(format!("left {e}")),
        }
    }
    out
}

/// A deployconfig path as one file name (`auth/kubeconfig` -> `auth%kubeconfig`).
pub fn flat_name(rel: &str) -> String {
    rel.replace('/', "%")
}

/// Where stage2-tui keeps its copy of a consumed input (inside the private state folder).
pub fn kept_path(state_dir: &Path, rel: &str) -> PathBuf {
    state_dir.join("kept").join(flat_name(rel))
}

/// Removes every line that holds only the top-level key `key` (`"key": "value",`) from
/// config.json text; returns the new text and how many lines went.
pub fn without_key_lines(text: &str, key: &str) -> (String, usize) {
    let pattern = format!(
        r#"^\s*"{}"\s*:\s*("[^"]*"|true|false|null|-?[0-9.]+)\s*,?\s*$"#,
        regex::escape(key)
    );
    let Ok(re) = regex::Regex::new(&pattern) else {
        return (text.to_string(), 0);
    };
    let mut n = 0;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if re.is_match(line.trim_end_matches(['\n', '\r'])) {
            n += 1;
        } else {
            out.push_str(line);
        }
    }
    (out, n)
}

/// A re-run that would undo the deployment: the step, the state file and what it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hazard {
    /// The step that would undo it.
    pub step: String,
    /// The terraform state that lists the VMs.
    pub state_file: String,
    /// The VMs (or resources) it lists.
    pub vms: Vec<String>,
}

impl Hazard {
    /// What running the step again would do, in one sentence.
    pub fn consequence(&self) -> String {
        let shown: Vec<&str> = self.vms.iter().take(6).map(String::as_str).collect();
        let more = self.vms.len().saturating_sub(shown.len());
        format!(
            "{} moves {} aside and makes a new install CA, but {} lists {} VM{} ({}{}): terraform would try to create them again (\"The name '…' already exists\") and the running nodes would not trust the new CA",
            self.step,
            self.state_file,
            self.state_file,
            self.vms.len(),
            if self.vms.len() == 1 { "" } else { "s" },
            shown.join(", "),
            if more > 0 {
                format!(", +{more} more")
            } else {
                String::new()
            }
        )
    }

    /// What to do instead.
    pub fn remedy(&self) -> String {
        format!(
            "remove those VMs first (terraform destroy with {}), or run it again knowingly (`run --force`, or confirm in the TUI)",
            self.state_file
        )
    }
}

/// The hazards of running `steps` (by contract) in the deployconfig `dc`.
pub fn hazards_of<'a>(
    dc: &Path,
    steps: impl Iterator<Item = &'a crate::pipeline::spec::Step>,
) -> Vec<Hazard> {
    steps
        .filter_map(|s| {
            let file = s.contract()?.refuse_while_state.as_ref()?;
            let vms = state_resources(dc, file).ok()??;
            (!vms.is_empty()).then(|| Hazard {
                step: s.id.clone(),
                state_file: file.clone(),
                vms,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_contracts_are_refused() {
        let c = Contract {
            makes: vec!["../etc/passwd".into()],
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().contains("plain path"));
        let c = Contract {
            makes: vec!["/etc/passwd".into()],
            ..Default::default()
        };
        assert!(c.validate().is_err());
        let c = Contract {
            fails_on: vec!["(".into()],
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().contains("fails_on"));
        let c = Contract {
            clears_keys: vec!["a.b".into()],
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn key_lines_go_and_nothing_else() {
        let text = "{\n  \"clusterid\": \"x\",\n  \"bootstrap_complete\": \"true\",\n  \"bootstrap_complete\": \"true\",\n  \"a\": 1\n}\n";
        let (out, n) = without_key_lines(text, "bootstrap_complete");
        assert_eq!(n, 2);
        assert_eq!(out, "{\n  \"clusterid\": \"x\",\n  \"a\": 1\n}\n");
        assert_eq!(without_key_lines(&out, "bootstrap_complete").1, 0);
    }

    #[test]
    fn checks_follow_no_links_and_want_fresh_files() {
        let d = tempfile::tempdir().unwrap();
        let dc = d.path();
        std::fs::write(dc.join("old.ign"), "x").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        let since = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::create_dir(dc.join("real")).unwrap();
        std::fs::write(dc.join("real/kubeconfig"), "k").unwrap();
        std::os::unix::fs::symlink(dc.join("real"), dc.join("auth")).unwrap();
        std::fs::write(
            dc.join("config.json"),
            r#"{"ignition":{"svc_ignition":""}}"#,
        )
        .unwrap();
        let log = dc.join("log");
        std::fs::write(
            &log,
            "2026-01-01T00:00:00.000000000Z E level=fatal msg=\"boom\"\n",
        )
        .unwrap();
        let c = Contract {
            makes: vec![
                "old.ign".into(),
                "auth/kubeconfig".into(),
                "none.ign".into(),
            ],
            fills: vec!["ignition.svc_ignition".into()],
            states: vec!["terraform.tfstate".into()],
            fails_on: vec!["level=fatal".into()],
            ..Default::default()
        };
        let b = broken(dc, &c, since, &log);
        assert!(b[0].starts_with("its log says: "), "{b:?}");
        assert!(b[0].contains("level=fatal"), "{b:?}");
        assert!(
            b.iter().any(|l| l.contains("auth/kubeconfig unusable")),
            "{b:?}"
        );
        assert!(b.contains(&"made no none.ign".to_string()), "{b:?}");
        assert!(
            b.iter().any(|l| l.contains("did not write old.ign")),
            "{b:?}"
        );
        assert!(
            b.contains(&"left config.json ignition.svc_ignition empty".to_string()),
            "{b:?}"
        );
        assert!(
            b.contains(&"made no terraform.tfstate".to_string()),
            "{b:?}"
        );
    }

    #[test]
    fn states_list_their_vms() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("terraform.tfstate"),
            r#"{"version":4,"resources":[{"mode":"managed","type":"vsphere_virtual_machine","name":"vm","instances":[{"index_key":"master-0","attributes":{"name":"master-0"}},{"index_key":"w","attributes":{}}]},{"mode":"data","type":"x","name":"y","instances":[{}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            state_resources(d.path(), "terraform.tfstate").unwrap(),
            Some(vec!["master-0".to_string(), "w".to_string()])
        );
        assert_eq!(state_resources(d.path(), "none").unwrap(), None);
    }
}
