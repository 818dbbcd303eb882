//! Diagnosis of failed steps: a catalogue (data, `diagnoses.toml`) of the failures operators
//! meet, matched against the failed attempt's log and error, with what to do.

use std::path::{Path, PathBuf};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::engine::logs::parse_saved_line;

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
                r#"^(?P<client>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?:GET|HEAD) /bootstrap\.ign[^"]*" (?P<status>\d{3}) (?P<bytes>\d+|-)"#,
            )
            .ok()
        })
        .as_ref()
    else {
        return Vec::new();
    };
    lines
        .into_iter()
        .filter_map(|l| {
            let c = re.captures(l)?;
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
mod tests {
    use super::*;

    fn cat() -> Catalogue {
        Catalogue::with(None).unwrap()
    }

    fn one(step: &str, text: &str) -> Diagnosis {
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        cat()
            .diagnose(step, &lines, None, &Context::default())
            .unwrap_or_else(|| panic!("no diagnosis for {step}: {text}"))
    }

    #[test]
    fn the_builtin_catalogue_parses() {
        assert!(cat().ids().len() >= 20);
    }

    /// One real-looking failure per entry: (entry, step, log text).
    const CASES: &[(&str, &str, &str)] = &[
        (
            "disk-full",
            "7.terraform-deploy",
            "Error: writing terraform.tfstate: write /tmp/workingdir/terraform.tfstate: no space left on device",
        ),
        (
            "vsphere-login",
            "7.terraform-deploy",
            "Error: error setting up new vSphere SOAP client: ServerFaultCode: Cannot complete login due to an incorrect user name or password.\n\n  with provider[\"registry.terraform.io/hashicorp/vsphere\"],",
        ),
        (
            "vsphere-vm-exists",
            "7.terraform-deploy",
            "Error: error cloning virtual machine: The name 'master-1' already exists.\n\n  with module.masters.vsphere_virtual_machine.vm[\"master-1\"],",
        ),
        (
            "vsphere-datastore-not-found",
            "7.terraform-deploy",
            "Error: error fetching datastore: datastore 'datastore-ssd' not found\n\n  with data.vsphere_datastore.datastore,",
        ),
        (
            "vsphere-network-not-found",
            "7.terraform-deploy",
            "Error: error fetching network: network 'VM Network 2' not found",
        ),
        (
            "vsphere-folder-not-found",
            "7.terraform-deploy",
            "Error: folder '/Datacenter/vm/ocp4test' not found",
        ),
        (
            "vsphere-resource-pool-not-found",
            "7.terraform-deploy",
            "Error: error fetching resource pool: resource pool 'Cluster/Resources/ocp4' not found",
        ),
        (
            "vsphere-template-not-found",
            "7.terraform-deploy",
            "Error: error fetching virtual machine: vm 'rhcos-4.14-template' not found",
        ),
        (
            "vsphere-datacenter-not-found",
            "7.terraform-deploy",
            "Error: error fetching datacenter: datacenter 'DC2' not found",
        ),
        (
            "dns-lookup",
            "7.terraform-deploy",
            "Error: error setting up new vSphere SOAP client: Post \"https://vcenter.example.local/sdk\": dial tcp: lookup vcenter.example.local on 10.50.1.1:53: no such host",
        ),
        (
            "vsphere-invalid-state",
            "remove-bootstrap",
            "Error: error destroying virtual machine: ServerFaultCode: The operation is not allowed in the current state.",
        ),
        (
            "ansible-unreachable",
            "8.configure-svcs",
            "TASK [Install CoreDNS packages] ***\nfatal: [svc-1]: UNREACHABLE! => {\"changed\": false, \"msg\": \"Failed to connect to the host via ssh: ssh: connect to host 10.50.1.16 port 22: No route to host\", \"unreachable\": true}",
        ),
        (
            "satellite-refused",
            "8.configure-svcs",
            "fatal: [svc-0]: FAILED! => {\"changed\": false, \"cmd\": \"/sbin/subscription-manager register --org SatOrgID --activationkey VALUE_SPECIFIED_IN_NO_LOG_PARAMETER\", \"msg\": \"HTTP error (400 - Bad Request): Organization SatOrgID does not exist.\", \"rc\": 70}",
        ),
        (
            "port-80-in-use",
            "5.ign-webserver",
            "2026/11/28 12:00:01 [emerg] 1#1: bind() to 0.0.0.0:80 failed (98: Address already in use)\nnginx: [emerg] bind() to 0.0.0.0:80 failed (98: Address already in use)",
        ),
        (
            "ignition-expired",
            "approve-csrs",
            "error: You must be logged in to the server (the server has asked for the client to provide credentials): x509: certificate has expired or is not yet valid: current time 2026-11-29T12:00:00Z is after 2026-11-29T09:14:00Z",
        ),
        (
            "bootstrap-timeout",
            "wait-for-bootstrap",
            "level=info msg=\"Waiting up to 30m0s for bootstrapping to complete...\"\nlevel=fatal msg=\"Bootstrap failed to complete: timed out waiting for the condition\"",
        ),
        (
            "api-unreachable",
            "approve-csrs",
            "Unable to connect to the server: dial tcp 10.50.1.1:6443: connect: connection refused",
        ),
        (
            "nodes-not-ready",
            "approve-csrs",
            "gave up after 1h00m00s: nodes 7/9 Ready, 0 CSRs pending; not Ready: worker-2, worker-3",
        ),
        (
            "operators-not-settled",
            "wait-operators",
            "operators did not settle in 45m00s: operators 29/31 available (waiting for: console, ingress)",
        ),
        (
            "cluster-unauthorized",
            "approve-csrs",
            "error: You must be logged in to the server (Unauthorized)",
        ),
        (
            "pull-secret-invalid",
            "4.run-installer",
            "level=fatal msg=\"failed to fetch Master Machines: failed to load asset \\\"Install Config\\\": invalid \\\"install-config.yaml\\\" file: pullSecret: Invalid value: \\\"{}\\\": auths required\"",
        ),
        (
            "registry-auth",
            "pull",
            "pulling registry.example.local:5002/docker-openshift/4.run-installer:0.5: unauthorized: authentication required",
        ),
        (
            "image-not-found",
            "pull",
            "pulling registry.example.local:5002/docker-openshift/4.run-installer:0.9: reading manifest 0.9 in registry.example.local:5002/docker-openshift/4.run-installer: manifest unknown",
        ),
        (
            "registry-tls",
            "pull",
            "pinging container registry registry.example.local:5002: Get \"https://registry.example.local:5002/v2/\": tls: failed to verify certificate: x509: certificate signed by unknown authority",
        ),
        (
            "install-config-invalid",
            "4.run-installer",
            "level=fatal msg=\"failed to fetch Master Machines: failed to load asset \\\"Install Config\\\": failed to create install config: invalid \\\"install-config.yaml\\\" file: platform.vsphere.vCenter: Required value: must specify the name of the vCenter\"",
        ),
        (
            "config-json-unreadable",
            "6.add-ignition",
            "Traceback (most recent call last):\njson.decoder.JSONDecodeError: Expecting ',' delimiter: line 120 column 5 (char 3071)",
        ),
        (
            "webhook-not-ready",
            "9.post-deployment",
            "fatal: [localhost]: FAILED! => {\"changed\": false, \"msg\": \"Failed to create object: b'{\\\"kind\\\":\\\"Status\\\",\\\"message\\\":\\\"Internal error occurred: failed calling webhook\\\"}'\"}",
        ),
    ];

    #[test]
    fn every_entry_recognises_a_real_looking_failure() {
        let c = cat();
        for (id, step, text) in CASES {
            let d = one(step, text);
            assert_eq!(&d.id, id, "{step}: {text}");
            assert!(!d.cause.contains('{') && !d.fix.contains("{step}"), "{d:?}");
            assert!(
                d.fix.contains(step) || d.fix.contains('`') || d.fix.contains("config.json"),
                "{d:?}"
            );
        }
        // Every built-in entry has its case.
        for id in c.ids() {
            assert!(CASES.iter().any(|(x, _, _)| *x == id), "no case for {id}");
        }
    }

    #[test]
    fn the_matching_line_is_the_last_one_and_counted_from_one() {
        let lines: Vec<String> = [
            "ok",
            "fatal: [svc-0]: UNREACHABLE! =>",
            "x",
            "fatal: [svc-1]: UNREACHABLE! =>",
            "PLAY RECAP",
        ]
        .map(String::from)
        .to_vec();
        let d = cat()
            .diagnose("8.configure-svcs", &lines, None, &Context::default())
            .unwrap();
        assert_eq!(d.line, Some(4));
        assert!(d.cause.contains("svc-1"), "{d:?}");
        // An entry for other steps never matches.
        assert!(
            cat()
                .diagnose("4.run-installer", &lines, None, &Context::default())
                .is_none()
        );
    }

    #[test]
    fn the_error_message_is_tried_when_the_log_says_nothing() {
        let d = cat()
            .diagnose(
                "pull",
                &[],
                Some("pulling x:1: manifest unknown"),
                &Context::default(),
            )
            .unwrap();
        assert_eq!((d.id.as_str(), d.line), ("image-not-found", None));
    }

    #[test]
    fn the_fix_names_the_config_fields_holding_the_value() {
        let ctx = Context {
            config: Some(
                serde_json::json!({"management": {"vsphere_datastore": "ds1"}, "assured": {"vsphere_datastore": "ds1"}, "other": "x"}),
            ),
            ..Context::default()
        };
        let lines = vec!["Error: datastore 'ds1' not found".to_string()];
        let d = cat()
            .diagnose("7.terraform-deploy", &lines, None, &ctx)
            .unwrap();
        assert!(
            d.fix
                .contains("(management.vsphere_datastore, assured.vsphere_datastore)"),
            "{}",
            d.fix
        );
    }

    #[test]
    fn old_ignition_files_are_named_even_without_the_x509_line() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("bootstrap.ign");
        std::fs::write(&f, "{}").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 3600);
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let ctx = Context {
            deployconfig: Some(tmp.path().into()),
            ..Context::default()
        };
        let lines = vec!["level=fatal msg=\"Bootstrap failed to complete\"".to_string()];
        let d = cat()
            .diagnose("wait-for-bootstrap", &lines, None, &ctx)
            .unwrap();
        assert_eq!(d.id, "ignition-expired");
        // A fresh file: the timeout entry instead.
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(std::time::SystemTime::now())
            .unwrap();
        let d = cat()
            .diagnose("wait-for-bootstrap", &lines, None, &ctx)
            .unwrap();
        assert_eq!(d.id, "bootstrap-timeout");
    }

    #[test]
    fn the_bootstrap_timeout_says_whether_the_vm_fetched_its_ignition() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("web.log");
        std::fs::write(&log, "2026-11-28T12:04:31.000000000Z stdout 10.50.1.250 - - [28/Nov/2026:12:04:31 +0000] \"GET /bootstrap.ign HTTP/1.1\" 200 295123 \"-\" \"Ignition/2.14.0\"\n").unwrap();
        let ctx = Context {
            web_logs: vec![log.clone()],
            ..Context::default()
        };
        let lines = vec![
            "level=fatal msg=\"Bootstrap failed to complete: timed out waiting for the condition\""
                .to_string(),
        ];
        let d = cat()
            .diagnose("wait-for-bootstrap", &lines, None, &ctx)
            .unwrap();
        assert!(
            d.fix
                .contains("served bootstrap.ign to 10.50.1.250 at 28/Nov/2026:12:04:31 +0000"),
            "{}",
            d.fix
        );
        std::fs::write(
            &log,
            "2026-11-28T12:04:31.000000000Z stderr nginx started\n",
        )
        .unwrap();
        let d = cat()
            .diagnose("wait-for-bootstrap", &lines, None, &ctx)
            .unwrap();
        assert!(
            d.fix.contains("shows no fetch of bootstrap.ign"),
            "{}",
            d.fix
        );
    }

    #[test]
    fn a_users_file_extends_and_overrides_and_a_broken_one_is_named() {
        let user = "[[entry]]\nid = \"disk-full\"\npattern = 'quota exceeded'\ncause = \"Quota\"\nfix = \"Ask for more\"\n\n[[entry]]\nid = \"site-proxy\"\npattern = 'proxyconnect tcp'\ncause = \"The site proxy refused\"\nfix = \"Call the network team\"\n";
        let c = Catalogue::with(Some((user, "diagnoses.toml"))).unwrap();
        assert_eq!(c.ids()[..2], ["disk-full", "site-proxy"]);
        assert_eq!(c.ids().iter().filter(|i| **i == "disk-full").count(), 1);
        let d = c
            .diagnose(
                "pull",
                &["proxyconnect tcp: EOF".into()],
                None,
                &Context::default(),
            )
            .unwrap();
        assert_eq!(d.cause, "The site proxy refused");
        let e = Catalogue::with(Some((
            "[[entry]]\nid = \"x\"\npattern = '('\ncause = \"\"\nfix = \"\"\n",
            "diagnoses.toml",
        )))
        .unwrap_err();
        assert!(e.contains("diagnoses.toml: entry x: bad pattern"), "{e}");
    }

    #[test]
    fn line_numbers_stay_true_when_only_the_end_of_a_big_log_is_read() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("big.log");
        let mut text = String::new();
        let pad = "x".repeat(200);
        let n = (TAIL_BYTES as usize / 200) + 5000;
        for i in 0..n {
            text.push_str(&format!(
                "2026-11-28T12:00:00.000000000Z stdout line {i} {pad}\n"
            ));
        }
        text.push_str("2026-11-28T12:00:00.000000000Z stderr Error: datastore 'd' not found\n");
        std::fs::write(&log, text).unwrap();
        let d = cat()
            .diagnose_log("7.terraform-deploy", &log, None, &Context::default())
            .unwrap();
        assert_eq!(d.line, Some(n + 1));
    }
}
