//! Diagnosis of failed steps: a catalogue (data, `diagnoses.toml`) of the failures operators
//! meet, matched against the failed attempt's log and error, with what to do.

use std::path::{Path, PathBuf};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::logformat::parse_saved_line;

const BUILTIN: &str = include_str!("diagnoses.toml");

/// The most of a log that is read for a diagnosis (its end: where failures are).
const TAIL_BYTES: u64 = 4 << 20;

/// What a failure means and what to do: stored with the failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The catalogue entry.
    pub id: String,
    /// One line: what went wrong.
    pub cause: String,
    /// What to do.
    pub fix: String,
    /// 1-based line of the attempt's log that matched (`None`: the step's error matched, or
    /// the entry's file-age test).
    #[serde(default)]
    pub line: Option<usize>,
    /// That line's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntrySpec {
    id: String,
    #[serde(default)]
    steps: Vec<String>,
    pattern: String,
    cause: String,
    fix: String,
    #[serde(default)]
    older_than_hours: Option<u64>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    evidence: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    #[serde(default)]
    entry: Vec<EntrySpec>,
}

#[derive(Debug)]
struct Entry {
    spec: EntrySpec,
    re: Regex,
}

/// The catalogue of known failures.
#[derive(Debug)]
pub struct Catalogue {
    entries: Vec<Entry>,
}

/// What a diagnosis may look at besides the log.
#[derive(Debug, Default)]
pub struct Context {
    /// The deployconfig folder (file ages).
    pub deployconfig: Option<PathBuf>,
    /// config.json, to name the fields that hold a value a tool complained about.
    pub config: Option<serde_json::Value>,
    /// The web server's log files (newest last): who fetched bootstrap.ign.
    pub web_logs: Vec<PathBuf>,
}

fn parse(text: &str, source: &str) -> Result<Vec<Entry>, String> {
    let file: CatalogueFile = toml::from_str(text).map_err(|e| format!("{source}: {e}"))?;
    file.entry
        .into_iter()
        .map(|spec| {
            let re = Regex::new(&spec.pattern)
                .map_err(|e| format!("{source}: entry {}: bad pattern: {e}", spec.id))?;
            if let Some(ev) = &spec.evidence
                && ev != "bootstrap-fetch"
            {
                return Err(format!(
                    "{source}: entry {}: unknown evidence {ev:?} (known: bootstrap-fetch)",
                    spec.id
                ));
            }
            Ok(Entry { spec, re })
        })
        .collect()
}

impl Catalogue {
    /// The built-in catalogue with `user` (the text of a user's file, and its name) tried first.
    pub fn with(user: Option<(&str, &str)>) -> Result<Self, String> {
        let mut entries = match user {
            Some((text, source)) => parse(text, source)?,
            None => Vec::new(),
        };
        for e in parse(BUILTIN, "built-in diagnoses.toml")? {
            if !entries.iter().any(|u| u.spec.id == e.spec.id) {
                entries.push(e);
            }
        }
        Ok(Self { entries })
    }

    /// The built-in catalogue plus `<config dir>/diagnoses.toml` when there is one. A broken user
    /// file is reported and the built-in catalogue used.
    pub fn load() -> (Self, Option<String>) {
        let path = crate::config::user_config_dir().map(|d| d.join("diagnoses.toml"));
        let text = path.as_ref().and_then(|p| std::fs::read_to_string(p).ok());
        let source = path.map(|p| p.display().to_string()).unwrap_or_default();
        match Self::with(text.as_deref().map(|t| (t, source.as_str()))) {
            Ok(c) => (c, None),
            Err(e) => match Self::with(None) {
                Ok(c) => (c, Some(format!("{e}; using the built-in diagnoses"))),
                Err(e2) => (
                    Self {
                        entries: Vec::new(),
                    },
                    Some(e2),
                ),
            },
        }
    }

    /// Ids of every entry, in the order they are tried.
    pub fn ids(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.spec.id.as_str()).collect()
    }

    /// Diagnoses a failure of `step` from its log lines (texts, in order), its error message and
    /// what `ctx` adds. `None` when no entry matches.
    pub fn diagnose(
        &self,
        step: &str,
        lines: &[String],
        error: Option<&str>,
        ctx: &Context,
    ) -> Option<Diagnosis> {
        for e in &self.entries {
            let s = &e.spec;
            if !s.steps.is_empty() && !s.steps.iter().any(|x| x == step) {
                continue;
            }
            let hit = lines
                .iter()
                .enumerate()
                .rev()
                .find_map(|(n, l)| e.re.captures(l).map(|c| (Some(n + 1), Some(l), c)))
                .or_else(|| error.and_then(|t| e.re.captures(t).map(|c| (None, None, c))));
            let (line, text, caps) = match hit {
                Some((line, text, caps)) => (line, text, Some(caps)),
                None if file_older(s, ctx) => (None, None, None),
                None => continue,
            };
            let get = |name: &str| -> String {
                caps.as_ref()
                    .and_then(|c| c.name(name))
                    .map(|m| m.as_str().trim().to_string())
                    .unwrap_or_default()
            };
            let fill = |t: &str| -> String {
                let mut out = t.replace("{step}", step);
                for name in e.re.capture_names().flatten() {
                    out = out.replace(&format!("{{{name}}}"), &get(name));
                }
                if out.contains("{where}") {
                    out = out.replace("{where}", &fields_holding(ctx, &get("name"), &get("host")));
                }
                if out.contains("{source}") {
                    // openshift-install names the install-config path first ("platform.vsphere.
                    // vCenter: Required value"): the field 2.create-config made it from.
                    let path = get("what");
                    let path = path.split([':', ' ']).next().unwrap_or_default();
                    let source = crate::config::derived::source_of(path)
                        .map(|s| format!("{s} (install-config.yaml's {path} is made from it)"))
                        .unwrap_or_else(|| {
                            format!("the config.json field behind install-config.yaml's {path}")
                        });
                    out = out.replace("{source}", &source);
                }
                if out.contains("{deployconfig}") {
                    let dc = ctx
                        .deployconfig
                        .as_ref()
                        .map(|d| crate::safefs::shell_quote(&d.display().to_string()))
                        .unwrap_or_else(|| "<deployconfig>".into());
                    out = out.replace("{deployconfig}", &dc);
                }
                if out.contains("{evidence}") {
                    out = out.replace("{evidence}", &bootstrap_evidence(ctx));
                }
                out
            };
            return Some(Diagnosis {
                id: s.id.clone(),
                cause: fill(&s.cause),
                fix: fill(&s.fix),
                line,
                text: text.map(|t| t.chars().take(500).collect()),
            });
        }
        None
    }

    /// Diagnoses from a saved step log.
    pub fn diagnose_log(
        &self,
        step: &str,
        log: &Path,
        error: Option<&str>,
        ctx: &Context,
    ) -> Option<Diagnosis> {
        let lines = read_log_texts(log).unwrap_or_default();
        self.diagnose(step, &lines.1, error, ctx).map(|mut d| {
            // Line numbers count from the start of the file even when only its end was read.
            d.line = d.line.map(|n| n + lines.0);
            d
        })
    }
}

fn file_older(s: &EntrySpec, ctx: &Context) -> bool {
    let (Some(hours), Some(file), Some(dc)) = (s.older_than_hours, &s.file, &ctx.deployconfig)
    else {
        return false;
    };
    std::fs::symlink_metadata(dc.join(file))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() > hours * 3600)
}

/// " (config.json: a.b, c.d)" for the string fields whose value is `name` (or `host`).
fn fields_holding(ctx: &Context, name: &str, host: &str) -> String {
    let Some(cfg) = &ctx.config else {
        return String::new();
    };
    let mut paths = Vec::new();
    for want in [name, host] {
        if !want.is_empty() {
            collect_paths(cfg, want, &mut String::new(), &mut paths);
        }
    }
    paths.dedup();
    // A host name found in a node's `hostname`: its address is the `ipaddress` beside it.
    let paths: Vec<String> = paths
        .into_iter()
        .map(|p| match p.strip_suffix(".hostname") {
            Some(node) => {
                let ip_path = format!("{node}.ipaddress");
                let pointer = format!(
                    "/{}",
                    ip_path.replace('[', ".").replace(']', "").replace('.', "/")
                );
                match cfg.pointer(&pointer).and_then(|v| v.as_str()) {
                    Some(ip) => format!("{p}; its address {ip_path} = {ip}"),
                    None => p,
                }
            }
            None => p,
        })
        .collect();
    if paths.is_empty() {
        String::new()
    } else {
        let more = paths.len().saturating_sub(4);
        let mut list = paths.into_iter().take(4).collect::<Vec<_>>().join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more"));
        }
        format!(" ({list})")
    }
}

fn collect_paths(v: &serde_json::Value, want: &str, at: &mut String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) if s == want => out.push(at.clone()),
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let len = at.len();
                if !at.is_empty() {
                    at.push('.');
                }
                at.push_str(k);
                collect_paths(v, want, at, out);
                at.truncate(len);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                collect_paths(v, want, at, out);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

/// One fetch of a file seen in a web server's access log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    /// Client address.
    pub client: String,
    /// When, as the server wrote it.
    pub time: String,
    /// HTTP status.
    pub status: u16,
    /// Bytes sent.
    pub bytes: u64,
}

impl Fetch {
    /// The server's `HH:MM:SS`, as it wrote it (the whole time when it has another shape).
    pub fn clock(&self) -> String {
        chrono::DateTime::parse_from_str(&self.time, "%d/%b/%Y:%H:%M:%S %z")
            .map(|t| t.format("%H:%M:%S").to_string())
            .unwrap_or_else(|_| self.time.clone())
    }

    /// "served bootstrap.ign to 10.50.1.250 12:04:31, 200, 295 KB".
    pub fn describe(&self) -> String {
        format!(
            "served bootstrap.ign to {} {}, {}, {} KB",
            self.client,
            self.clock(),
            self.status,
            self.bytes.div_ceil(1024)
        )
    }
}

/// Fetches of `bootstrap.ign` in access-log lines (nginx's combined format).
pub fn bootstrap_fetches<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Fetch> {
    static RE: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    let Some(re) = RE
        .get_or_init(|| {
            Regex::new(
                r#"^(?P<client>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "GET /bootstrap\.ign[^"]*" (?P<status>\d{3}) (?P<bytes>\d+|-)"#,
            )
            .ok()
        })
        .as_ref()
    else {
        return Vec::new();
    };
    lines
        .into_iter()
        // Every log line of a run can come through here (headless, the dashboard): a plain
        // substring test first, the regex only for the few lines that name the file.
        .filter(|l| {
            static NAME: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
                std::sync::LazyLock::new(|| memchr::memmem::Finder::new("bootstrap.ign"));
            NAME.find(l.as_bytes()).is_some()
        })
        .filter_map(|l| {
            let c = re.captures(l)?;
            // stage2-tui's own URL checks are not the bootstrap VM fetching its ignition: they
            // are HEAD requests (not matched) that name themselves in the user agent.
            if l.contains("\"stage2-tui") {
                return None;
            }
            Some(Fetch {
                client: c["client"].to_string(),
                time: c["time"].to_string(),
                status: c["status"].parse().ok()?,
                bytes: c["bytes"].parse().unwrap_or(0),
            })
        })
        .collect()
}

fn bootstrap_evidence(ctx: &Context) -> String {
    if ctx.web_logs.is_empty() {
        return "The web server's log is not available to tell.".into();
    }
    let mut fetches = Vec::new();
    for p in &ctx.web_logs {
        if let Ok((_, lines)) = read_log_texts(p) {
            fetches.extend(bootstrap_fetches(lines.iter().map(String::as_str)));
        }
    }
    match fetches.iter().rev().find(|f| f.status == 200) {
        Some(f) => format!(
            "Yes: the web server served bootstrap.ign to {} at {} ({} bytes), so look at what the bootstrap VM did next.",
            f.client, f.time, f.bytes
        ),
        None if !fetches.is_empty() => {
            let f = &fetches[fetches.len() - 1];
            format!(
                "No: {} asked for bootstrap.ign at {} and got HTTP {}; check the file's mount and mode.",
                f.client, f.time, f.status
            )
        }
        None => "No: the web server's log shows no fetch of bootstrap.ign. The bootstrap VM never reached it: check its network, ignition.bootstrap_ignition_url in config.json and the bastion's firewall (port 80), and that the window was still open when the VM booted.".into(),
    }
}

/// The texts of a saved log's lines (its last `TAIL_BYTES` at most), with how many lines came
/// before them.
pub fn read_log_texts(path: &Path) -> std::io::Result<(usize, Vec<String>)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    let mut skipped = 0;
    if start > 0 {
        // Count the lines before the part that is read, so line numbers stay true.
        let mut head = std::io::BufReader::new(std::fs::File::open(path)?).take(start);
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = head.read(&mut buf)?;
            if n == 0 {
                break;
            }
            skipped += memchr::memchr_iter(b'\n', &buf[..n]).count();
        }
    }
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let mut parts = buf.split(|b| *b == b'\n').peekable();
    if start > 0 {
        // The first piece is (the end of) a line that is not read: it counts too.
        parts.next();
        skipped += 1;
    }
    let mut out = Vec::new();
    for raw in parts {
        if raw.is_empty() {
            continue;
        }
        let text = parse_saved_line(raw).map(|(_, _, t)| t).unwrap_or(raw);
        out.push(String::from_utf8_lossy(text).into_owned());
    }
    Ok((skipped, out))
}

#[cfg(test)]
#[path = "diagnosis_tests.rs"]
mod tests;
