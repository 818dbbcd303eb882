//! The config form's rows: config.json (and secrets.json) laid out as an operator thinks.

use serde_json::Value;

use crate::config::doc::escape_token;
use crate::config::validate::{NODE_GROUPS, ZONES};

/// One line of the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    /// A group title.
    Header(String),
    /// An editable (or read-only) value.
    Field(Field),
}

/// A form field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Shown label.
    pub label: String,
    /// JSON pointer in its file.
    pub ptr: String,
    /// Path as validation messages name it (`masters[1].ipaddress`).
    pub path: String,
    /// In secrets.json (masked).
    pub secret: bool,
    /// Multi-line text (additional CA, image sources).
    pub multiline: bool,
    /// Filled by a stage; not editable.
    pub readonly: bool,
    /// Node group it belongs to (rows can be added and removed).
    pub group: Option<String>,
}

fn label_for(key: &str) -> String {
    key.replace('_', " ")
}

/// The schema's label for a dotted path, or one made from the path ("vsphere.vsphere_edge"
/// reads "vsphere edge": the section's name is not said twice).
fn label_of(path: &str) -> String {
    crate::config::schema::label(path)
        .map(str::to_string)
        .unwrap_or_else(|| {
            let (section, key) = path.rsplit_once('.').unwrap_or(("", path));
            let key = key.strip_prefix(&format!("{section}_")).unwrap_or(key);
            label_for(&if section.is_empty() {
                key.to_string()
            } else {
                format!("{section} {key}")
            })
        })
}

/// The form rows for a config (and secrets) value, grouped as an operator thinks.
pub fn build_rows(config: &Value, secrets: &Value) -> Vec<Row> {
    let mut rows = Vec::new();
    section(
        &mut rows,
        config,
        "Cluster",
        &["clusterid", "basedomain", "useletsencrypt", "sshpubkey"],
    );
    rows.push(Row::Header("Bastion and bootstrap".into()));
    for n in ["bastion", "bootstrap"] {
        for k in ["hostname", "ipaddress"] {
            if config.pointer(&format!("/{n}/{k}")).is_some() {
                rows.push(Row::Field(field(
                    &label_of(&format!("{n}.{k}")),
                    format!("/{n}/{k}"),
                    format!("{n}.{k}"),
                )));
            }
        }
    }
    node_rows(&mut rows, config);
    section(
        &mut rows,
        config,
        "Registry",
        &["registryurl", "registryusername", "imagetag"],
    );
    section(
        &mut rows,
        config,
        "Additional CA and image sources",
        &["additionalca", "imagesources"],
    );
    section(
        &mut rows,
        config,
        "Satellite",
        &["satellitefqdn", "rhnorgid", "rhnactivationkey"],
    );
    zone_rows(&mut rows, config);
    if let Some(map) = config.get("ignition").and_then(Value::as_object) {
        rows.push(Row::Header("Ignition (filled by 6.add-ignition)".into()));
        for k in map.keys() {
            rows.push(Row::Field(Field {
                readonly: true,
                ..field(
                    &label_of(&format!("ignition.{k}")),
                    format!("/ignition/{}", escape_token(k)),
                    format!("ignition.{k}"),
                )
            }));
        }
    }
    if secrets.is_object() {
        rows.push(Row::Header(
            "Secrets (secrets.json; masked, v reveals)".into(),
        ));
        secret_leaves(
            secrets,
            String::new(),
            String::new(),
            &mut Vec::new(),
            &mut rows,
        );
    }
    rows
}

/// A plain, editable field.
fn field(label: &str, ptr: String, path: String) -> Field {
    Field {
        label: label.into(),
        ptr,
        path,
        secret: false,
        multiline: false,
        readonly: false,
        group: None,
    }
}

/// A header and the top-level string fields `keys` that config.json has.
fn section(rows: &mut Vec<Row>, config: &Value, title: &str, keys: &[&str]) {
    rows.push(Row::Header(title.into()));
    for k in keys {
        if config.get(*k).is_some_and(|v| v.is_string()) {
            let multiline = matches!(*k, "additionalca" | "imagesources" | "sshpubkey");
            rows.push(Row::Field(Field {
                multiline,
                ..field(&label_of(k), format!("/{k}"), (*k).to_string())
            }));
        }
    }
}

/// Each node group: a header with its size and network, then hostname and address per node.
fn node_rows(rows: &mut Vec<Row>, config: &Value) {
    for (group, zone) in NODE_GROUPS {
        let Some(list) = config.get(*group).and_then(Value::as_array) else {
            continue;
        };
        let zone = zone.unwrap_or("management");
        rows.push(Row::Header(format!(
            "{group} ({} node{}, {zone} network)",
            list.len(),
            if list.len() == 1 { "" } else { "s" }
        )));
        for i in 0..list.len() {
            for k in ["hostname", "ipaddress"] {
                rows.push(Row::Field(Field {
                    group: Some((*group).to_string()),
                    ..field(
                        &format!("{group}[{i}] {k}"),
                        format!("/{group}/{i}/{k}"),
                        format!("{group}[{i}].{k}"),
                    )
                }));
            }
        }
    }
}

/// vSphere and each network zone: their string fields.
fn zone_rows(rows: &mut Vec<Row>, config: &Value) {
    for obj in std::iter::once("vsphere").chain(ZONES.iter().copied()) {
        let Some(map) = config.get(obj).and_then(Value::as_object) else {
            continue;
        };
        rows.push(Row::Header(if obj == "vsphere" {
            "vSphere".into()
        } else {
            format!("Zone: {obj}")
        }));
        for (k, v) in map {
            if v.is_string() {
                rows.push(Row::Field(field(
                    &label_of(&format!("{obj}.{k}")),
                    format!("/{obj}/{}", escape_token(k)),
                    format!("{obj}.{k}"),
                )));
            }
        }
    }
}

/// Every string in secrets.json, masked. Keys are kept whole in labels (a registry host in the
/// pull secret has dots): the schema's label for the top of the path, then "›" and the rest.
fn secret_leaves(v: &Value, ptr: String, path: String, keys: &mut Vec<String>, out: &mut Vec<Row>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                keys.push(k.clone());
                secret_leaves(x, format!("{ptr}/{}", escape_token(k)), p, keys, out);
                keys.pop();
            }
        }
        Value::String(_) => out.push(Row::Field(Field {
            secret: true,
            ..field(&secret_label(keys), ptr, path)
        })),
        _ => {}
    }
}

/// The label of a secret at the key path `keys`.
fn secret_label(keys: &[String]) -> String {
    let whole = keys.join(".");
    match crate::config::schema::label(&whole) {
        Some(l) => l.to_string(),
        None => {
            let top = crate::config::schema::label(&keys[0])
                .map(str::to_string)
                .unwrap_or_else(|| label_for(&keys[0]));
            std::iter::once(top)
                .chain(keys[1..].iter().cloned())
                .collect::<Vec<_>>()
                .join(" › ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_the_schema_and_no_two_rows_share_one() {
        let rows = build_rows(&crate::demo::config_json(), &crate::demo::secrets_json());
        let labels: Vec<&str> = rows
            .iter()
            .filter_map(|r| match r {
                Row::Field(f) => Some(f.label.as_str()),
                Row::Header(_) => None,
            })
            .collect();
        for want in [
            "vCenter server",
            "Management datastore",
            "Elevated public vCPUs per worker",
            "vCenter deploy account password",
            "Red Hat pull secret › auths › registry.demo.example.internal › auth",
        ] {
            assert!(labels.contains(&want), "{want} not in {labels:?}");
        }
        let mut seen = std::collections::BTreeSet::new();
        for l in &labels {
            assert!(seen.insert(*l), "two rows are labelled {l}");
        }
    }
}
