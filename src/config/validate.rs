//! Validation of `config.json`: every message names the JSON path and quotes the bad value.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use serde_json::Value;

pub use super::problem::{Problem, Severity};

/// Node groups and the network zone whose addresses they use (`None`: the management network,
/// `vsphere.networkip`/`maskprefix`).
pub const NODE_GROUPS: &[(&str, Option<&str>)] = &[
    ("svcs", None),
    ("masters", None),
    ("infras", None),
    ("smallworkers", None),
    ("mediumworkers", None),
    ("largeworkers", None),
    ("assuredworkers", Some("assured")),
    ("assuredsvcs", Some("assured")),
    ("combinedworkers", Some("combined")),
    ("combinedsvcs", Some("combined")),
    ("elevatedworkers", Some("elevated")),
    ("elevatedsvcs", Some("elevated")),
    ("assuredpublicworkers", Some("assured_public")),
    ("elevatedpublicworkers", Some("elevated_public")),
];

/// The node lists 7.terraform-deploy reads (`main.tf`, `ukcloud.tf`). Each has a default there
/// of one node with an empty name and address, so each must be given (`[]` for none).
pub const TERRAFORM_NODE_LISTS: &[&str] = &[
    "masters",
    "infras",
    "svcs",
    "assuredworkers",
    "assuredsvcs",
    "assuredpublicworkers",
    "combinedworkers",
    "combinedsvcs",
    "elevatedworkers",
    "elevatedsvcs",
    "elevatedpublicworkers",
];

/// The network zones.
pub const ZONES: &[&str] = &[
    "management",
    "assured",
    "assured_public",
    "combined",
    "elevated",
    "elevated_public",
];

struct V<'a> {
    root: &'a Value,
    out: Vec<Problem>,
}

/// A DNS label: lowercase letters, digits and '-', 1–63, not starting or ending with '-'.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS name: dot-separated labels, at most 253 characters.
pub fn is_dns_name(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A fully qualified registry prefix: `host[:port][/path…]`, the host a DNS name with a dot or
/// a port (or `localhost`), path components in lowercase (podman would read a short name as
/// `localhost/…`, Docker as `docker.io/…`).
pub fn is_registry_prefix(u: &str) -> bool {
    let u = u.trim_end_matches('/');
    let host = u.split('/').next().unwrap_or_default();
    let host_name = host.split(':').next().unwrap_or_default();
    let port_ok = host
        .split_once(':')
        .is_none_or(|(_, p)| p.parse::<u16>().is_ok());
    let qualified = host.contains('.') || host.contains(':') || host == "localhost";
    let path_ok = u.split('/').skip(1).all(|p| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    });
    !u.is_empty()
        && !u.contains(char::is_whitespace)
        && qualified
        && port_ok
        && path_ok
        && is_dns_name(&host_name.to_ascii_lowercase())
}

/// An image tag: letters, digits, `_ . -`, not starting with `.` or `-`, at most 128.
pub fn is_image_tag(t: &str) -> bool {
    t.len() <= 128
        && t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn network(ip: Ipv4Addr, prefix: u8) -> (u32, u32) {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    };
    (u32::from(ip) & mask, mask)
}

impl<'a> V<'a> {
    fn err(&mut self, path: &str, message: String) {
        self.out.push(Problem {
            severity: Severity::Error,
            path: path.into(),
            message,
        });
    }
    fn warn(&mut self, path: &str, message: String) {
        self.out.push(Problem {
            severity: Severity::Warning,
            path: path.into(),
            message,
        });
    }

    /// The string at `path` (dotted, with [i]); reports missing or non-string values.
    fn string(&mut self, v: Option<&'a Value>, path: &str, required: bool) -> Option<&'a str> {
        match v {
            None if required => {
                self.err(path, "is missing".into());
                None
            }
            None => None,
            Some(Value::String(s)) => Some(s.as_str()),
            // terraform converts a JSON number where it takes a string: the images accept it.
            Some(Value::Number(_)) => None,
            // ... and a boolean ("true"/"false": useletsencrypt, bootstrap_complete).
            Some(Value::Bool(_)) => None,
            Some(other) => {
                self.err(path, format!("must be a string (in quotes), found {other}"));
                None
            }
        }
    }

    fn ipv4(&mut self, v: Option<&'a Value>, path: &str, required: bool) -> Option<Ipv4Addr> {
        let s = self.string(v, path, required)?;
        match s.parse::<Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.err(path, format!("\"{s}\" is not an IPv4 address"));
                None
            }
        }
    }

    fn number(
        &mut self,
        v: Option<&'a Value>,
        path: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Option<u64> {
        if let Some(Value::Number(n)) = v {
            return match n.as_u64() {
                Some(n) if range.contains(&n) => Some(n),
                _ => {
                    self.err(
                        path,
                        format!(
                            "{n} must be a whole number between {} and {}",
                            range.start(),
                            range.end()
                        ),
                    );
                    None
                }
            };
        }
        let s = self.string(v, path, false)?;
        match s.trim().parse::<u64>() {
            Ok(n) if range.contains(&n) => Some(n),
            Ok(_) => {
                self.err(
                    path,
                    format!(
                        "\"{s}\" must be between {} and {}",
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
            Err(_) => {
                self.err(path, format!("\"{s}\" must be a whole number (in quotes)"));
                None
            }
        }
    }

    fn run(mut self) -> Vec<Problem> {
        let r = self.root;
        if !r.is_object() {
            self.err("(top level)", "must be a JSON object { … }".into());
            return self.out;
        }
        if let Some(c) = self.string(r.get("clusterid"), "clusterid", true)
            && !is_dns_label(c)
        {
            self.err(
                "clusterid",
                format!(
                    "\"{c}\" must be a DNS label: lowercase letters, digits and '-', at most 63"
                ),
            );
        }
        if let Some(d) = self.string(r.get("basedomain"), "basedomain", true)
            && !is_dns_name(d)
        {
            self.err(
                "basedomain",
                format!("\"{d}\" is not a DNS name (lowercase labels separated by dots)"),
            );
        }
        if let Some(u) = self.string(r.get("useletsencrypt"), "useletsencrypt", false)
            && !matches!(u, "True" | "False" | "")
        {
            self.warn(
                "useletsencrypt",
                format!("\"{u}\" should be \"True\" or \"False\""),
            );
        }
        self.registry();
        self.ca();
        if let Some(k) = self.string(r.get("sshpubkey"), "sshpubkey", true)
            && !["ssh-rsa ", "ssh-ed25519 ", "ecdsa-sha2-", "sk-"]
                .iter()
                .any(|p| k.starts_with(p))
        {
            let shown: String = k.chars().take(30).collect();
            self.err(
                "sshpubkey",
                format!("\"{shown}…\" is not an SSH public key (ssh-rsa, ssh-ed25519 or ecdsa-…)"),
            );
        }
        if let Some(s) = self.string(r.get("satellitefqdn"), "satellitefqdn", false)
            && !s.is_empty()
            && !is_dns_name(&s.to_ascii_lowercase())
        {
            self.err("satellitefqdn", format!("\"{s}\" is not a DNS name"));
        }
        let mgmt_net = self.vsphere();
        let zone_nets = self.zones(mgmt_net);
        self.nodes(mgmt_net, &zone_nets);
        self.out
    }

    fn registry(&mut self) {
        let r = self.root;
        // stage2-tui builds image references from these: a JSON number is not read back as it
        // was typed (4.10 is the number 4.1), so they must be strings, as `run` requires.
        for key in ["registryurl", "imagetag"] {
            if let Some(n @ Value::Number(_)) = r.get(key) {
                self.err(
                    key,
                    format!("must be a string in quotes (\"{n}\"), found the number {n}: a number loses trailing zeros"),
                );
            }
        }
        if let Some(u) = self.string(r.get("registryurl"), "registryurl", true) {
            let u = u.trim_end_matches('/');
            if !is_registry_prefix(u) {
                self.err("registryurl", format!("\"{u}\" is not a registry prefix like registry.example.com:5002/docker-openshift"));
            }
        }
        if let Some(t) = self.string(r.get("imagetag"), "imagetag", true) {
            let ok = is_image_tag(t);
            if !ok {
                self.err(
                    "imagetag",
                    format!(
                        "\"{t}\" is not an image tag (letters, digits, '_', '.', '-'; at most 128)"
                    ),
                );
            }
        }
    }

    fn ca(&mut self) {
        let Some(ca) = self.string(self.root.get("additionalca"), "additionalca", false) else {
            return;
        };
        if ca.trim().is_empty() {
            return;
        }
        let mut rest = ca;
        let mut blocks = 0;
        while let Some(b) = rest.find("-----BEGIN CERTIFICATE-----") {
            let after = &rest[b + 27..];
            let Some(e) = after.find("-----END CERTIFICATE-----") else {
                self.err(
                    "additionalca",
                    format!(
                        "certificate {} has BEGIN but no \"-----END CERTIFICATE-----\"",
                        blocks + 1
                    ),
                );
                return;
            };
            let body: String = after[..e].chars().filter(|c| !c.is_whitespace()).collect();
            if body.is_empty()
                || !body
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c))
            {
                self.err(
                    "additionalca",
                    format!(
                        "certificate {} is not base64 between its BEGIN and END lines",
                        blocks + 1
                    ),
                );
            }
            blocks += 1;
            rest = &after[e + 25..];
        }
        if blocks == 0 {
            let shown: String = ca.trim().chars().take(40).collect();
            self.err("additionalca", format!("\"{shown}…\" holds no PEM certificate (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----)"));
        }
    }

    fn vsphere(&mut self) -> Option<(Ipv4Addr, u8)> {
        let Some(vs) = self.root.get("vsphere") else {
            self.err("vsphere", "is missing".into());
            return None;
        };
        for k in [
            "vsphere_server",
            "vsphere_cluster",
            "vsphere_datacenter",
            "vsphere_folder",
            // The VMs' network: main.tf and ukcloud.tf put every VM on the port group
            // (vsphere_network is a key terraform needs, and may be empty).
            "vsphere_portgroup",
            "rhcos_template",
        ] {
            let path = format!("vsphere.{k}");
            if let Some(s) = self.string(vs.get(k), &path, true)
                && s.trim().is_empty()
            {
                self.err(&path, "is empty".into());
            }
        }
        let ip = self.ipv4(vs.get("networkip"), "vsphere.networkip", true);
        let prefix = self.number(vs.get("maskprefix"), "vsphere.maskprefix", 0..=32);
        let (ip, prefix) = (ip?, prefix? as u8);
        let (net, _) = network(ip, prefix);
        if net != u32::from(ip) {
            self.warn(
                "vsphere.networkip",
                format!(
                    "\"{ip}\" has host bits set for /{prefix}; the network is {}/{prefix}",
                    Ipv4Addr::from(net)
                ),
            );
        }
        Some((Ipv4Addr::from(net), prefix))
    }

    fn zones(
        &mut self,
        mgmt: Option<(Ipv4Addr, u8)>,
    ) -> HashMap<&'static str, Option<(Ipv4Addr, u8)>> {
        let mut nets = HashMap::new();
        for z in ZONES {
            let Some(zone) = self.root.get(*z) else {
                continue;
            };
            let own = match (zone.get("networkip"), zone.get("maskprefix")) {
                (Some(_), Some(_)) => {
                    let ip = self.ipv4(zone.get("networkip"), &format!("{z}.networkip"), true);
                    let p = self.number(zone.get("maskprefix"), &format!("{z}.maskprefix"), 0..=32);
                    ip.zip(p)
                        .map(|(ip, p)| (Ipv4Addr::from(network(ip, p as u8).0), p as u8))
                }
                _ => None,
            };
            let net = if *z == "management" {
                own.or(mgmt)
            } else {
                own
            };
            for k in [
                "defaultgw",
                "upstreamdns1",
                "upstreamdns2",
                "internalvip",
                "externalvip",
            ] {
                let path = format!("{z}.{k}");
                let ip = self.ipv4(zone.get(k), &path, false);
                if k == "defaultgw"
                    && let (Some(ip), Some(n)) = (ip, net)
                {
                    self.inside(&path, ip, n);
                }
            }
            for (k, range) in [
                ("num_cpu", 1..=512),
                ("memory", 512..=4_194_304),
                ("disk_size", 1..=65_536),
            ] {
                self.number(zone.get(k), &format!("{z}.{k}"), range);
            }
            nets.insert(*z, net);
        }
        nets
    }

    fn inside(&mut self, path: &str, ip: Ipv4Addr, (net, prefix): (Ipv4Addr, u8)) {
        let (n, mask) = network(net, prefix);
        if u32::from(ip) & mask != n {
            self.err(path, format!("\"{ip}\" is outside {net}/{prefix}"));
        }
    }

    fn node(
        &mut self,
        node: &'a Value,
        path: &str,
        net: Option<(Ipv4Addr, u8)>,
        seen: &mut (HashMap<String, String>, HashMap<Ipv4Addr, String>),
    ) {
        if !node.is_object() {
            self.err(
                path,
                format!("must be {{\"hostname\": …, \"ipaddress\": …}}, found {node}"),
            );
            return;
        }
        let hp = format!("{path}.hostname");
        if let Some(h) = self.string(node.get("hostname"), &hp, true) {
            if !is_dns_label(h) {
                self.err(
                    &hp,
                    format!(
                        "\"{h}\" must be a DNS label: lowercase letters, digits and '-', at most 63"
                    ),
                );
            } else if let Some(first) = seen.0.insert(h.to_string(), hp.clone()) {
                self.err(&hp, format!("\"{h}\" is also used by {first}"));
            }
        }
        let ip_path = format!("{path}.ipaddress");
        if let Some(ip) = self.ipv4(node.get("ipaddress"), &ip_path, true) {
            if let Some(first) = seen.1.insert(ip, ip_path.clone()) {
                self.err(&ip_path, format!("\"{ip}\" is also used by {first}"));
            }
            if let Some(n) = net {
                self.inside(&ip_path, ip, n);
            }
        }
    }

    fn nodes(
        &mut self,
        mgmt: Option<(Ipv4Addr, u8)>,
        zones: &HashMap<&'static str, Option<(Ipv4Addr, u8)>>,
    ) {
        let r = self.root;
        let mut seen = (HashMap::new(), HashMap::new());
        for single in ["bastion", "bootstrap"] {
            match r.get(single) {
                Some(n) => self.node(n, single, mgmt, &mut seen),
                None => self.err(single, "is missing".into()),
            }
        }
        for (group, zone) in NODE_GROUPS {
            let net = match zone {
                None => mgmt,
                Some(z) => zones.get(z).copied().flatten(),
            };
            let read_by_terraform = TERRAFORM_NODE_LISTS.contains(group);
            match r.get(*group) {
                None if read_by_terraform => self.err(
                    group,
                    "is missing: terraform's default for it plans a VM with no name or address; give the list ([] for none)".into(),
                ),
                None => {}
                Some(Value::Array(list)) if !read_by_terraform && !list.is_empty() => self.warn(
                    group,
                    format!(
                        "terraform does not make these {} node{} (only tenant.tf.depreciated has {group}, and terraform does not load it): move them to a list it reads (assuredworkers, combinedworkers, elevatedworkers, …) or they are never created",
                        list.len(),
                        if list.len() == 1 { "" } else { "s" }
                    ),
                ),
                Some(Value::Array(list)) => {
                    for (i, n) in list.iter().enumerate() {
                        self.node(n, &format!("{group}[{i}]"), net, &mut seen);
                    }
                    if *group == "masters" && list.len() != 3 {
                        self.err(
                            "masters",
                            format!(
                                "has {} entries; OpenShift needs exactly 3 masters",
                                list.len()
                            ),
                        );
                    }
                }
                Some(other) => self.err(group, format!("must be a list [ … ], found {other}")),
            }
        }
    }
}

/// Validates a parsed `config.json`.
pub fn validate(config: &Value) -> Vec<Problem> {
    validate_with(config, None)
}

/// Validates config.json, and with `secrets` secrets.json too, against the checks here and what
/// the stage images need (the schema); one problem per path.
pub fn validate_with(config: &Value, secrets: Option<&Value>) -> Vec<Problem> {
    let mut out = V {
        root: config,
        out: Vec::new(),
    }
    .run();
    for p in super::schema::check(config, secrets) {
        if !out.iter().any(|o| o.path == p.path) {
            out.push(p);
        }
    }
    out.sort_by_key(|p| p.severity);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_names() {
        assert!(is_dns_label("master-0"));
        assert!(
            !is_dns_label("Master-0")
                && !is_dns_label("-a")
                && !is_dns_label("a_b")
                && !is_dns_label("")
        );
        assert!(is_dns_name("cna.example.uk") && !is_dns_name("cna..uk"));
    }

    #[test]
    fn node_lists_as_terraform_reads_them() {
        let mut c = crate::demo::files::config_json();
        let find = |c: &Value, path: &str| {
            validate(c)
                .into_iter()
                .find(|p| p.path == path)
                .map(|p| (p.severity, p.message))
        };
        assert_eq!(find(&c, "svcs"), None);
        // A list terraform reads, left out: its default is a VM with no name.
        c.as_object_mut().unwrap().remove("elevatedsvcs");
        let (sev, msg) = find(&c, "elevatedsvcs").unwrap();
        assert_eq!(sev, Severity::Error);
        assert!(msg.contains("plans a VM with no name or address"), "{msg}");
        // small/medium/large workers are not made by terraform: a warning, not a node.
        c["smallworkers"] =
            serde_json::json!([{"hostname": "worker-small-0", "ipaddress": "10.50.1.30"}]);
        let (sev, msg) = find(&c, "smallworkers").unwrap();
        assert_eq!(sev, Severity::Warning);
        assert!(
            msg.contains("terraform does not make these 1 node "),
            "{msg}"
        );
        c.as_object_mut().unwrap().remove("largeworkers");
        assert_eq!(find(&c, "largeworkers"), None);
        // terraform converts a boolean where it takes a string; keys it never uses may be "".
        c["useletsencrypt"] = serde_json::json!(false);
        c["satellitefqdn"] = serde_json::json!("");
        c["vsphere"]["vsphere_network"] = serde_json::json!("");
        assert_eq!(find(&c, "useletsencrypt"), None);
        assert_eq!(find(&c, "satellitefqdn"), None);
        assert_eq!(find(&c, "vsphere.vsphere_network"), None);
    }
}
