//! The deployconfig folder and the parts of `config.json` / `secrets.json` the pipeline needs.
//!
//! `serde_json` is built with `preserve_order`, so a [`serde_json::Value`] keeps key order.

pub mod derived;
pub mod doc;
pub mod problem;
pub mod save;
pub mod schema;
pub mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Default deployconfig folder on a bastion.
pub const DEFAULT_DEPLOYCONFIG: &str = "/home/core/deployconfig";

/// Problems reading the configuration, each naming the file or JSON path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("{path}: invalid JSON at line {line}, column {column}: {msg}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        msg: String,
    },
    /// A required field is missing, empty or of the wrong type.
    #[error("{path}: `{field}` {problem}")]
    Field {
        /// The file.
        path: String,
        /// JSON path of the field.
        field: String,
        /// What is wrong, quoting the value.
        problem: String,
    },
}

/// Paths inside a deployconfig folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployconfig {
    /// The folder (absolute).
    pub dir: PathBuf,
}

impl Deployconfig {
    /// Wraps a folder path in its one canonical spelling: absolute, links resolved (as the
    /// user running stage2-tui resolves them), no `.`/`..` and no trailing slash. The state
    /// folder, lock, pointer, unit and labels all come from this spelling, so
    /// `/home/core/deployconfig/` and `/home/core/./deployconfig` are the same deployconfig.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Self {
            dir: canonical(dir.as_ref()),
        }
    }
    /// `config.json`.
    pub fn config_json(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    /// `secrets.json`.
    pub fn secrets_json(&self) -> PathBuf {
        self.dir.join("secrets.json")
    }
    /// Our state folder (run state, lock, logs): a private folder *outside* the deployconfig,
    /// where no stage container can reach it. `STAGE2_STATE_ROOT` overrides the root; else
    /// `/var/lib/stage2-tui` for root and `$XDG_STATE_HOME/stage2-tui` (or
    /// `~/.local/state/stage2-tui`) for other users. One sub-folder per deployconfig, named by
    /// its path and a hash of it.
    pub fn state_dir(&self) -> PathBuf {
        state_root().join(self.id())
    }
    /// The state folder older versions kept inside the deployconfig. It is never read: a
    /// stage container can write there, so nothing in it can be trusted.
    pub fn legacy_state_dir(&self) -> PathBuf {
        self.dir.join(".stage2-tui")
    }
    /// A stable name for this deployconfig: its path made into one file name, plus a hash.
    pub fn id(&self) -> String {
        let path = self.dir.to_string_lossy();
        let mut readable: String = path
            .trim_matches('/')
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if readable.len() > 48 {
            readable = readable[readable.len() - 48..].to_string();
        }
        format!(
            "{}.{:016x}",
            readable.trim_start_matches('.'),
            fnv1a(path.as_bytes())
        )
    }
    /// Creates the state folder (0700). Returns the folder. A state an older version left in
    /// the deployconfig ([`Self::legacy_state_dir`]) is not carried over: any stage container
    /// could have written it.
    pub fn prepare_state_dir(&self) -> std::io::Result<PathBuf> {
        let dir = self.state_dir();
        if let Some(root) = dir.parent() {
            crate::safefs::private_dir(root)?;
        }
        crate::safefs::private_dir(&dir)?;
        Ok(dir)
    }
    /// The optional pipeline override file.
    pub fn pipeline_file(&self) -> PathBuf {
        self.dir.join("stage2-pipeline.toml")
    }
    /// The disconnected-install `openshift-install` override.
    pub fn installer_override(&self) -> PathBuf {
        self.dir.join("openshift-install")
    }
}

/// `path` made canonical: `realpath` where it exists; else its longest existing ancestor's
/// real path with the rest normalised lexically (`.` dropped, `..` taking a part off).
pub fn canonical(path: &Path) -> PathBuf {
    use std::path::Component;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if let Ok(real) = std::fs::canonicalize(&abs) {
        return real;
    }
    let mut out = PathBuf::from("/");
    let mut resolved = true;
    for c in abs.components() {
        match c {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => {
                out.push(n);
                if resolved {
                    match std::fs::canonicalize(&out) {
                        Ok(real) => out = real,
                        Err(_) => resolved = false,
                    }
                }
            }
        }
    }
    out
}

/// Every secret value in `secrets.json`, longest first, to mask wherever text is shown, printed,
/// stored or exported: each string of 4 characters or more; inside a string that is itself JSON
/// (a pull secret), its strings too; and the user and password inside a base64 `user:password`
/// registry `auth`.
///
/// A secrets.json that does not parse still has secrets in it: then every string found in its
/// text (quoted, or a bare word of 6 characters or more) is masked.
pub fn secret_values(dc: &Deployconfig) -> Vec<String> {
    match read_json(&dc.secrets_json()) {
        Ok(v) => secret_values_in(&v),
        Err(ConfigError::Parse { .. }) => match read_text(&dc.secrets_json()) {
            Ok(t) => secret_values_in(&Value::Array(
                strings_in_broken_json(&t)
                    .into_iter()
                    .map(Value::String)
                    .collect(),
            )),
            Err(_) => Vec::new(),
        },
        Err(_) => Vec::new(),
    }
}

/// Every string in a text that should be JSON but does not parse: each quoted string (as
/// written and unescaped) and each bare word of 6 characters or more that is not a JSON word.
pub fn strings_in_broken_json(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && b[j] != b'"' && b[j] != b'\n' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let raw = &text[start..j.min(b.len())];
            out.push(raw.to_string());
            if let Ok(v) = serde_json::from_str::<String>(&format!("\"{raw}\"")) {
                out.push(v);
            }
            i = j + 1;
        } else {
            i += 1;
        }
    }
    for w in text.split(|c: char| c.is_whitespace() || "{}[],:\"".contains(c)) {
        if w.chars().count() >= 6 && !matches!(w, "true" | "false" | "null") {
            out.push(w.to_string());
        }
    }
    out
}

/// The values [`secret_values`] masks, from secrets.json's content already in memory.
pub fn secret_values_in(secrets: &Value) -> Vec<String> {
    use base64::Engine as _;
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) if s.chars().count() >= 4 => {
                out.push(s.clone());
                if let Ok(inner @ (Value::Object(_) | Value::Array(_))) =
                    serde_json::from_str::<Value>(s)
                {
                    walk(&inner, out);
                }
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(s.trim())
                    && let Ok(text) = String::from_utf8(bytes)
                {
                    if text.chars().count() >= 6 {
                        out.push(text.clone());
                    }
                    if let Some((_, pass)) = text.split_once(':')
                        && pass.chars().count() >= 6
                    {
                        out.push(pass.to_string());
                    }
                }
            }
            Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(secrets, &mut out);
    let forms: Vec<String> = out.iter().flat_map(|v| encoded_forms(v)).collect();
    out.extend(forms);
    out.retain(|s| s.chars().count() >= 4);
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// The other ways a value shows up in text: JSON-escaped (once, and twice as in JSON inside
/// JSON), URL-encoded (upper- and lowercase hex, `+` or `%20` for a space), and base64 (standard
/// and URL-safe, with and without padding).
pub fn encoded_forms(v: &str) -> Vec<String> {
    use base64::Engine as _;
    fn json_escaped(s: &str) -> String {
        let q = serde_json::to_string(s).unwrap_or_default();
        q.get(1..q.len().saturating_sub(1))
            .unwrap_or_default()
            .to_string()
    }
    fn url(s: &str, lower: bool, plus: bool) -> String {
        let mut o = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    o.push(b as char)
                }
                b' ' if plus => o.push('+'),
                _ if lower => o.push_str(&format!("%{b:02x}")),
                _ => o.push_str(&format!("%{b:02X}")),
            }
        }
        o
    }
    let once = json_escaped(v);
    let twice = json_escaped(&once);
    let b = v.as_bytes();
    let mut out = vec![
        once,
        twice,
        url(v, false, false),
        url(v, true, false),
        url(v, false, true),
        base64::engine::general_purpose::STANDARD.encode(b),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(b),
        base64::engine::general_purpose::URL_SAFE.encode(b),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b),
    ];
    out.retain(|f| f != v);
    out
}

/// The root of every deployconfig's state folder.
pub fn state_root() -> PathBuf {
    if let Some(r) = std::env::var_os("STAGE2_STATE_ROOT").filter(|r| !r.is_empty()) {
        return PathBuf::from(r);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/stage2-tui");
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|x| !x.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("stage2-tui")
}

/// 64-bit FNV-1a: a stable hash (the same on every version and machine) for folder names.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Reads and parses a JSON file, reporting parse errors with line and column.
///
/// Every reader (`run`, `check`, the setup flow) comes through here, so they agree: the file is
/// read without following a link (a stage container may have planted one), and a folder in its
/// place, a non-UTF-8 file or one that starts with a byte-order mark is an error that says so.
pub fn read_json(path: &Path) -> Result<Value, ConfigError> {
    let text = read_text(path)?;
    parse_json(path, &text)
}

/// Reads a deployconfig text file the one way every reader does (see [`read_json`]).
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    let err = |source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    };
    let bytes = crate::safefs::read_file(path).map_err(err)?;
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "it starts with a byte-order mark (BOM); save it as UTF-8 without a BOM",
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "it is not UTF-8 text (invalid byte at offset {}); save it as UTF-8",
                e.utf8_error().valid_up_to()
            ),
        ))
    })
}

/// A JSON error as (line, column, what), the message without serde's " at line L column C".
pub fn json_error(e: &serde_json::Error) -> (usize, usize, String) {
    let text = e.to_string();
    let what = text
        .split(" at line ")
        .next()
        .unwrap_or_default()
        .to_string();
    (e.line(), e.column(), what)
}

/// Parses JSON text, reporting errors with line and column. A key given twice in one object is
/// an error too: serde keeps the last, but terraform (which reads config.json and secrets.json as
/// var files) rejects the file (`Duplicate attribute definition`).
pub fn parse_json(path: &Path, text: &str) -> Result<Value, ConfigError> {
    let v = serde_json::from_str(text).map_err(|e| {
        let (line, column, msg) = json_error(&e);
        ConfigError::Parse {
            path: path.display().to_string(),
            line,
            column,
            msg,
        }
    })?;
    if let Some(d) = duplicate_key(text) {
        return Err(ConfigError::Parse {
            path: path.display().to_string(),
            line: d.line,
            column: d.column,
            msg: format!(
                "duplicate key \"{}\" (first at line {}); terraform rejects a key given twice",
                d.key, d.first_line
            ),
        });
    }
    Ok(v)
}

/// A key given twice in one JSON object.
#[derive(Debug, PartialEq, Eq)]
pub struct DuplicateKey {
    /// The key, as written.
    pub key: String,
    /// 1-based line of its first occurrence.
    pub first_line: usize,
    /// 1-based line and column of the second.
    pub line: usize,
    /// See `line`.
    pub column: usize,
}

/// The first key given twice in one object of `text`, which must be valid JSON.
pub fn duplicate_key(text: &str) -> Option<DuplicateKey> {
    // Per open object: the keys seen (with their line) and whether a key comes next.
    enum Frame {
        Object(HashMap<String, usize>, bool),
        Array,
    }
    let mut stack: Vec<Frame> = Vec::new();
    let (mut line, mut line_start) = (1usize, 0usize);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                line += 1;
                line_start = i + 1;
            }
            b'{' => stack.push(Frame::Object(HashMap::new(), true)),
            b'[' => stack.push(Frame::Array),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some(Frame::Object(_, next_is_key)) = stack.last_mut() {
                    *next_is_key = true;
                }
            }
            b':' => {
                if let Some(Frame::Object(_, next_is_key)) = stack.last_mut() {
                    *next_is_key = false;
                }
            }
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let key = text.get(start + 1..i.min(text.len())).unwrap_or_default();
                if let Some(Frame::Object(seen, true)) = stack.last_mut() {
                    if let Some(first_line) = seen.get(key) {
                        return Some(DuplicateKey {
                            key: key.to_string(),
                            first_line: *first_line,
                            line,
                            column: text[line_start..start].chars().count() + 1,
                        });
                    }
                    seen.insert(key.to_string(), line);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The values the pipeline takes from `config.json` (and `secrets.json` for pulls).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// `registryurl`, without a trailing slash.
    pub registry: String,
    /// `imagetag`.
    pub tag: String,
    /// `bastion.ipaddress`.
    pub bastion_ip: String,
    /// `registryusername` (empty for anonymous pulls).
    pub registry_user: String,
}

fn field<'a>(path: &Path, v: &'a Value, pointer: &str, name: &str) -> Result<&'a str, ConfigError> {
    let err = |problem: String| ConfigError::Field {
        path: path.display().to_string(),
        field: name.to_string(),
        problem,
    };
    match v.pointer(pointer) {
        None => Err(err("is missing".into())),
        Some(Value::String(s)) if s.trim().is_empty() => Err(err("is empty".into())),
        Some(Value::String(s)) => Ok(s.trim()),
        Some(other) => Err(err(format!("must be a string, found {other}"))),
    }
}

impl PipelineConfig {
    /// Reads the pipeline's values from `config.json`.
    pub fn load(dc: &Deployconfig) -> Result<Self, ConfigError> {
        let path = dc.config_json();
        Self::from_value(&path, &read_json(&path)?)
    }

    /// The pipeline's values from a config.json value (`path` for messages).
    pub fn from_value(path: &Path, v: &Value) -> Result<Self, ConfigError> {
        let path = path.to_path_buf();
        let v = v.clone();
        let registry = field(&path, &v, "/registryurl", "registryurl")?
            .trim_end_matches('/')
            .to_string();
        if !validate::is_registry_prefix(&registry) {
            return Err(ConfigError::Field {
                path: path.display().to_string(),
                field: "registryurl".into(),
                problem: format!(
                    "\"{registry}\" is not a fully qualified registry prefix (expected e.g. registry.example.com:5002/docker-openshift)"
                ),
            });
        }
        let tag = field(&path, &v, "/imagetag", "imagetag")?.to_string();
        let tag_ok = validate::is_image_tag(&tag);
        if !tag_ok {
            return Err(ConfigError::Field {
                path: path.display().to_string(),
                field: "imagetag".into(),
                problem: format!(
                    "\"{tag}\" is not a valid image tag (letters, digits, _ . -; at most 128)"
                ),
            });
        }
        let bastion_ip = field(&path, &v, "/bastion/ipaddress", "bastion.ipaddress")?.to_string();
        let registry_user = v
            .pointer("/registryusername")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok(Self {
            registry,
            tag,
            bastion_ip,
            registry_user,
        })
    }

    /// `<registryurl>/<stage>:<imagetag>`.
    pub fn image(&self, stage: &str) -> String {
        format!("{}/{}:{}", self.registry, stage, self.tag)
    }

    /// Credentials for pulls: `registryusername` plus `secrets.json` `registrytoken` (user, token).
    pub fn credentials(&self, dc: &Deployconfig) -> Result<Option<(String, String)>, ConfigError> {
        if self.registry_user.is_empty() {
            return Ok(None);
        }
        let path = dc.secrets_json();
        let secrets = read_json(&path)?;
        // A missing token is an error here (the run needs it).
        let token = field(&path, &secrets, REGISTRY_TOKEN, "registrytoken")?;
        Ok(Some((self.registry_user.clone(), token.to_string())))
    }
}

const REGISTRY_TOKEN: &str = "/registrytoken";

/// Registry credentials from config.json's and secrets.json's values (user, token): `None`
/// without a `registryusername`. The one place that knows where they live.
pub fn registry_credentials(config: &Value, secrets: &Value) -> Option<(String, String)> {
    let user = config
        .get("registryusername")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())?;
    let token = secrets
        .pointer(REGISTRY_TOKEN)
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some((user.to_string(), token.to_string()))
}

/// The user's config folder for stage2-tui (`$XDG_CONFIG_HOME/stage2-tui`, or
/// `~/.config/stage2-tui`): the key map, themes and diagnoses live there.
pub fn user_config_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config")))
        .map(|d| d.join("stage2-tui"))
}

#[cfg(test)]
mod duplicate_tests {
    use super::*;

    #[test]
    fn a_key_twice_in_one_object_names_both_lines() {
        let text = "{\n  \"clusterid\": \"x\",\n  \"bootstrap_complete\": \"true\",\n  \"bootstrap_complete\": \"true\",\n  \"svcs\": [{\"hostname\": \"a\"}, {\"hostname\": \"b\"}]\n}\n";
        let d = duplicate_key(text).unwrap();
        assert_eq!(
            d,
            DuplicateKey {
                key: "bootstrap_complete".into(),
                first_line: 3,
                line: 4,
                column: 3
            }
        );
        let e = parse_json(Path::new("config.json"), text)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config.json: invalid JSON at line 4, column 3: duplicate key \"bootstrap_complete\" (first at line 3); terraform rejects a key given twice"
        );
        // The same key in different objects, in values, and escaped quotes are no duplicates.
        let ok = r#"{"a": {"k": 1}, "b": {"k": "\"k\": 2"}, "k": ["k", "k"], "c": "\\"}"#;
        assert_eq!(duplicate_key(ok), None);
        assert!(parse_json(Path::new("x"), ok).is_ok());
        assert!(duplicate_key(r#"{"a": {"x": 1, "x": 2}}"#).is_some());
    }
}
