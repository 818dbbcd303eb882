//! The files stage 1's `2.create-config` derives from config.json and secrets.json
//! (`create-config.ps1` with `install-config.tmpl` and `ansible-hosts.tmpl`): 4.run-installer
//! reads only `install-config.yaml`, 8 and 9 only `ansible-hosts`. An edit of config.json
//! reaches those stages only through them, so stage2-tui compares the two and says where they
//! differ ("drift").

use std::path::Path;

use serde_json::Value;

/// The largest derived file read (they are a few KiB).
const MAX_FILE: u64 = 4 << 20;

/// install-config.yaml fields and where the template takes them from: (YAML path, file,
/// JSON pointer, secret).
const INSTALL_CONFIG: &[(&str, &str, &str, bool)] = &[
    ("baseDomain", "config.json", "/basedomain", false),
    ("metadata.name", "config.json", "/clusterid", false),
    (
        "platform.vsphere.vCenter",
        "config.json",
        "/vsphere/vsphere_server",
        false,
    ),
    (
        "platform.vsphere.username",
        "secrets.json",
        "/vcentervolumeprovisioner/username",
        false,
    ),
    (
        "platform.vsphere.password",
        "secrets.json",
        "/vcentervolumeprovisioner/password",
        true,
    ),
    (
        "platform.vsphere.datacenter",
        "config.json",
        "/vsphere/vsphere_datacenter",
        false,
    ),
    (
        "platform.vsphere.defaultDatastore",
        "config.json",
        "/management/vsphere_datastore",
        false,
    ),
    ("pullSecret", "secrets.json", "/rhpullsecret", true),
    ("sshKey", "config.json", "/sshpubkey", false),
];

/// The node lists and single nodes `ansible-hosts.tmpl` writes a line for.
const HOST_LISTS: &[&str] = &[
    "masters",
    "smallworkers",
    "mediumworkers",
    "largeworkers",
    "assuredworkers",
    "combinedworkers",
    "elevatedworkers",
    "assuredpublicworkers",
    "elevatedpublicworkers",
    "infras",
    "svcs",
    "assuredsvcs",
    "combinedsvcs",
    "elevatedsvcs",
    "bootstrap",
    "bastion",
];

/// The files 2.create-config makes.
pub const FILES: [&str; 2] = ["install-config.yaml", "ansible-hosts"];

fn shown(v: &str) -> String {
    let v = crate::text::visible(v);
    if v.chars().count() > 60 {
        format!("{}…", v.chars().take(59).collect::<String>())
    } else if v.is_empty() {
        "\"\"".into()
    } else {
        v.into_owned()
    }
}

/// A JSON value as the template prints it (strings bare, numbers as written).
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.into()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// The scalar at a dotted path of simple YAML (what the template writes): block mappings,
/// `key: value`, quoted or plain; keys compared without case (the template writes `pullsecret`).
pub fn yaml_scalar(text: &str, path: &str) -> Option<String> {
    let want: Vec<String> = path.split('.').map(str::to_ascii_lowercase).collect();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        if body.starts_with('-') {
            continue;
        }
        let Some((key, rest)) = body.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches(['"', '\'']).to_ascii_lowercase();
        let rest = rest.trim();
        let depth = stack.len();
        let matches = depth + 1 == want.len()
            && stack.iter().zip(&want).all(|((_, k), w)| k == w)
            && key == want[depth];
        if matches {
            // A quoted scalar may go on over lines (the template writes the pull secret as
            // PowerShell's multi-line JSON): YAML folds them with single spaces.
            let mut value = rest.to_string();
            if let Some(q) = value.chars().next().filter(|c| *c == '\'' || *c == '"') {
                while !closed(&value, q) {
                    let Some(next) = lines.next() else { break };
                    value.push(' ');
                    value.push_str(next.trim());
                }
            }
            return Some(unquote(&value));
        }
        if rest.is_empty() {
            stack.push((indent, key));
        }
    }
    None
}

/// Whether a scalar that starts with the quote `q` is closed at its end.
fn closed(v: &str, q: char) -> bool {
    let inner = &v[1..];
    if q == '\'' {
        // '' is an escaped quote: an odd run of quotes at the end closes it.
        let run = inner.chars().rev().take_while(|c| *c == '\'').count();
        run % 2 == 1
    } else {
        inner.ends_with('"') && !inner.ends_with("\\\"")
    }
}

fn unquote(v: &str) -> String {
    if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        return v[1..v.len() - 1].replace("''", "'");
    }
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        return v[1..v.len() - 1]
            .replace("\\\"", "\"")
            .replace("\\\\", "\\");
    }
    v.to_string()
}

/// The config.json or secrets.json field an install-config.yaml path is made from, as
/// "config.json vsphere.vsphere_server" (openshift-install names the path in its errors).
pub fn source_of(install_config_path: &str) -> Option<String> {
    let want = install_config_path.trim().to_ascii_lowercase();
    INSTALL_CONFIG
        .iter()
        .filter(|(yaml, ..)| {
            let y = yaml.to_ascii_lowercase();
            want == y || want.starts_with(&format!("{y}.")) || want.starts_with(&format!("{y}["))
        })
        .max_by_key(|(yaml, ..)| yaml.len())
        .map(|(_, file, pointer, _)| {
            format!(
                "{file} {}",
                pointer.trim_start_matches('/').replace('/', ".")
            )
        })
}

fn read(dc: &Path, name: &str) -> Option<String> {
    let bytes = crate::pipeline::contract::read_in(dc, name, MAX_FILE).ok()?;
    String::from_utf8(bytes).ok()
}

/// Where install-config.yaml differs from what config.json and secrets.json would make of it.
pub fn install_config_drift(text: &str, config: &Value, secrets: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (yaml, file, pointer, secret) in INSTALL_CONFIG {
        let source = if *file == "config.json" {
            Some(config)
        } else {
            secrets
        };
        let Some(want) = source.and_then(|s| s.pointer(pointer)) else {
            continue;
        };
        let Some(have) = yaml_scalar(text, yaml) else {
            out.push(format!(
                "install-config.yaml has no {yaml} (from {file} {})",
                pointer.trim_start_matches('/').replace('/', ".")
            ));
            continue;
        };
        let field = pointer.trim_start_matches('/').replace('/', ".");
        // The pull secret is JSON in a string: compared as JSON.
        let same = if *yaml == "pullSecret" {
            let ours = match want {
                Value::String(s) => serde_json::from_str::<Value>(s).ok(),
                v => Some(v.clone()),
            };
            serde_json::from_str::<Value>(&have).ok() == ours && ours.is_some()
        } else {
            as_text(want).is_some_and(|w| w == have)
        };
        if same {
            continue;
        }
        if *secret {
            out.push(format!(
                "install-config.yaml {yaml} differs from {file} {field} (a secret: not shown)"
            ));
        } else {
            out.push(format!(
                "install-config.yaml {yaml} {} ≠ {file} {field} {}",
                shown(&have),
                shown(&as_text(want).unwrap_or_default())
            ));
        }
    }
    out
}

/// Where ansible-hosts differs from config.json: a node with no line, or another address, and
/// the domain suffix.
pub fn ansible_hosts_drift(text: &str, config: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|t| !t.is_empty() && !t[0].starts_with('#') && !t[0].starts_with('['))
        .collect();
    for list in HOST_LISTS {
        let nodes: Vec<(String, &Value)> = match config.get(*list) {
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("{list}[{i}]"), n))
                .collect(),
            Some(n @ Value::Object(_)) => vec![(list.to_string(), n)],
            _ => continue,
        };
        for (at, n) in nodes {
            let host = n["hostname"].as_str().unwrap_or_default();
            if host.is_empty() {
                continue;
            }
            let ip = n["ipaddress"].as_str().unwrap_or_default();
            let Some(line) = lines.iter().find(|t| {
                t[0] == host || t[0].strip_prefix(host).is_some_and(|r| r.starts_with('.'))
            }) else {
                out.push(format!(
                    "ansible-hosts has no line for {} (config.json {at}.hostname)",
                    shown(host)
                ));
                continue;
            };
            let have = line
                .iter()
                .find_map(|t| t.strip_prefix("ip="))
                .or_else(|| line.iter().find_map(|t| t.strip_prefix("ansible_host=")));
            if let Some(have) = have
                && !ip.is_empty()
                && have != ip
            {
                out.push(format!(
                    "ansible-hosts {} ip={} ≠ config.json {at}.ipaddress {}",
                    shown(host),
                    shown(have),
                    shown(ip)
                ));
            }
        }
    }
    let suffix = format!(
        "{}.{}",
        config["clusterid"].as_str().unwrap_or_default(),
        config["basedomain"].as_str().unwrap_or_default()
    );
    if let Some(have) = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("domain_suffix="))
        && have != suffix
    {
        out.push(format!(
            "ansible-hosts domain_suffix={} ≠ config.json clusterid.basedomain {}",
            shown(have),
            shown(&suffix)
        ));
    }
    out
}

/// Every drift between the derived files in `dc` and `config`/`secrets` (files that are not
/// there have none: the file checks report them). The files are a stage's to write: a secret
/// planted in a field that is not one is masked too.
pub fn drift(dc: &Path, config: &Value, secrets: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = read(dc, "install-config.yaml") {
        out.extend(install_config_drift(&t, config, secrets));
    }
    if let Some(t) = read(dc, "ansible-hosts") {
        out.extend(ansible_hosts_drift(&t, config));
    }
    let masks = secrets
        .map(crate::config::secret_values_in)
        .unwrap_or_default();
    out.into_iter()
        .map(|l| crate::text::mask(&l, &masks).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const IC: &str = "apiVersion: v1\nbaseDomain: \"example.com\"\nmetadata:\n  name: \"ocp4\"\ncompute:\n- hyperthreading: Enabled\n  name: worker\nplatform:\n  vsphere:\n    vCenter: \"vc.example.com\"\n    username: \"vol@vsphere.local\"\n    password: \"pw\"\n    datacenter: \"dc1\"\n    defaultDatastore: \"ds1\"\npullsecret: '{\"auths\":{\"r\":{\"auth\":\"x\"}}}'\nsshKey: 'ssh-ed25519 AAA core'\n";

    fn config() -> Value {
        json!({
            "basedomain": "example.com", "clusterid": "ocp4", "sshpubkey": "ssh-ed25519 AAA core",
            "vsphere": {"vsphere_server": "vc.example.com", "vsphere_datacenter": "dc1"},
            "management": {"vsphere_datastore": "ds1"},
            "masters": [{"hostname": "master-0", "ipaddress": "10.0.0.10"}],
            "svcs": [{"hostname": "svc-0", "ipaddress": "10.0.0.15"}],
            "bastion": {"hostname": "bastion-0", "ipaddress": "10.0.0.254"}
        })
    }

    fn secrets() -> Value {
        json!({"rhpullsecret": {"auths": {"r": {"auth": "x"}}},
               "vcentervolumeprovisioner": {"username": "vol@vsphere.local", "password": "pw"}})
    }

    #[test]
    fn a_rendered_install_config_has_no_drift_and_an_edit_shows_as_one() {
        assert_eq!(yaml_scalar(IC, "metadata.name").as_deref(), Some("ocp4"));
        assert_eq!(yaml_scalar(IC, "compute.name"), None);
        let multi = "pullsecret: '{\n    \"auths\": {\n        \"r\": {\"auth\": \"x\"}\n    }\n}'\nsshKey: 'a'\n";
        assert_eq!(
            serde_json::from_str::<Value>(&yaml_scalar(multi, "pullSecret").unwrap()).unwrap(),
            json!({"auths": {"r": {"auth": "x"}}})
        );
        assert_eq!(yaml_scalar(multi, "sshKey").as_deref(), Some("a"));
        assert_eq!(yaml_scalar("k: 'it''s'\n", "k").as_deref(), Some("it's"));
        assert_eq!(
            yaml_scalar(IC, "pullSecret").as_deref(),
            Some("{\"auths\":{\"r\":{\"auth\":\"x\"}}}")
        );
        assert_eq!(
            install_config_drift(IC, &config(), Some(&secrets())),
            Vec::<String>::new()
        );
        let mut c = config();
        c["basedomain"] = json!("example.org");
        let mut s = secrets();
        s["rhpullsecret"] = json!("{\"auths\":{}}");
        s["vcentervolumeprovisioner"]["password"] = json!("new");
        let d = install_config_drift(IC, &c, Some(&s));
        assert_eq!(
            d,
            [
                "install-config.yaml baseDomain example.com ≠ config.json basedomain example.org",
                "install-config.yaml platform.vsphere.password differs from secrets.json vcentervolumeprovisioner.password (a secret: not shown)",
                "install-config.yaml pullSecret differs from secrets.json rhpullsecret (a secret: not shown)",
            ]
        );
        assert!(!d.iter().any(|l| l.contains("new")));
    }

    #[test]
    fn install_config_paths_name_their_source() {
        assert_eq!(
            source_of("platform.vsphere.vCenter").as_deref(),
            Some("config.json vsphere.vsphere_server")
        );
        assert_eq!(
            source_of("pullSecret").as_deref(),
            Some("secrets.json rhpullsecret")
        );
        assert_eq!(source_of("networking.machineNetwork"), None);
    }

    #[test]
    fn ansible_hosts_lines_follow_the_nodes() {
        let hosts = "[masters]\nmaster-0.ocp4.example.com ip=10.0.0.10\n\n[svcs]\nsvc-0.ocp4.example.com ip=10.0.0.15 ansible_host=10.0.0.15\n[bastion]\nbastion-0.ocp4.example.com ip=10.0.0.254 ansible_host=198.51.100.1\n[all:vars]\ndomain_suffix=ocp4.example.com\n";
        assert_eq!(ansible_hosts_drift(hosts, &config()), Vec::<String>::new());
        let mut c = config();
        c["svcs"][0]["ipaddress"] = json!("10.0.0.16");
        c["svcs"]
            .as_array_mut()
            .unwrap()
            .push(json!({"hostname": "svc-1", "ipaddress": "10.0.0.17"}));
        c["basedomain"] = json!("example.org");
        assert_eq!(
            ansible_hosts_drift(hosts, &c),
            [
                "ansible-hosts svc-0 ip=10.0.0.15 ≠ config.json svcs[0].ipaddress 10.0.0.16",
                "ansible-hosts has no line for svc-1 (config.json svcs[1].hostname)",
                "ansible-hosts domain_suffix=ocp4.example.com ≠ config.json clusterid.basedomain ocp4.example.org",
            ]
        );
    }
}
