//! What the stage images need from config.json and secrets.json, as data (`schema.toml`):
//! `check` and the setup form judge both files by it, the form takes its labels from it, and the
//! demo config is complete by it.

use serde::Deserialize;
use serde_json::Value;

use super::problem::{Problem, Severity};

const SCHEMA: &str = include_str!("schema.toml");

/// Which file a field lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum File {
    /// config.json.
    Config,
    /// secrets.json.
    Secrets,
}

/// The JSON a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Type {
    /// A string; a number too (terraform converts it to a string).
    #[default]
    String,
    /// A JSON object (the pull secret).
    Object,
}

/// One field the images need.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// config or secrets.
    pub file: File,
    /// Dotted path.
    pub path: String,
    /// The setup form's label.
    pub label: String,
    /// The JSON it takes.
    #[serde(default, rename = "type")]
    pub typ: Type,
    /// `""` is a valid value.
    #[serde(default)]
    pub empty: bool,
    /// Shown masked.
    #[serde(default)]
    pub secret: bool,
    /// Where the requirement comes from.
    pub source: String,
}

#[derive(Deserialize)]
struct Doc {
    field: Vec<Field>,
}

/// Every field of the schema, in file order.
pub fn fields() -> &'static [Field] {
    static FIELDS: std::sync::OnceLock<Vec<Field>> = std::sync::OnceLock::new();
    FIELDS.get_or_init(|| {
        toml::from_str::<Doc>(SCHEMA)
            .map(|d| d.field)
            .unwrap_or_default()
    })
}

/// The schema's label for a dotted path (`None`: not in the schema).
pub fn label(path: &str) -> Option<&'static str> {
    fields()
        .iter()
        .find(|f| f.path == path)
        .map(|f| f.label.as_str())
}

fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// What the images would refuse in these files: missing fields, wrong JSON types, empty values
/// where one is needed. A field may be in either file (terraform reads both as var-files).
pub fn check(config: &Value, secrets: Option<&Value>) -> Vec<Problem> {
    let mut out = Vec::new();
    for f in fields() {
        if f.file == File::Secrets && secrets.is_none() {
            continue;
        }
        let (mine, other) = match f.file {
            File::Config => (Some(config), secrets),
            File::Secrets => (secrets, Some(config)),
        };
        let name = match f.file {
            File::Config => "config.json",
            File::Secrets => "secrets.json",
        };
        let found = mine
            .and_then(|v| at(v, &f.path))
            .or_else(|| other.and_then(|v| at(v, &f.path)));
        let problem = match (found, f.typ) {
            (None, _) => Some(format!(
                "is missing from {name}: {} needs it ({}, {})",
                stage_of(&f.source),
                f.label,
                f.source
            )),
            (Some(Value::String(s)), Type::String) if s.trim().is_empty() && !f.empty => {
                Some(format!(
                    "is empty: {} needs a value ({})",
                    stage_of(&f.source),
                    f.label
                ))
            }
            // terraform converts a number or a boolean where a variable is a string.
            (Some(Value::String(_) | Value::Number(_) | Value::Bool(_)), Type::String) => None,
            (Some(other), Type::String) => Some(format!(
                "must be a string (or a number or true/false), found {}",
                kind(other)
            )),
            (Some(Value::Object(_)), Type::Object) => None,
            (Some(other), Type::Object) => Some(format!(
                "must be a JSON object (not in quotes), found {}",
                kind(other)
            )),
        };
        if let Some(message) = problem {
            let path = match f.file {
                File::Config => f.path.clone(),
                File::Secrets => format!("secrets.{}", f.path),
            };
            out.push(Problem {
                severity: Severity::Error,
                path,
                message,
            });
        }
    }
    out
}

fn stage_of(source: &str) -> &str {
    source.split_whitespace().next().unwrap_or("a stage")
}

fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string \"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_schema_parses_and_names_its_sources() {
        let f = fields();
        assert!(f.len() > 80, "{}", f.len());
        assert!(f.iter().all(|x| x.source.contains("7.terraform-deploy")));
        assert_eq!(label("vsphere.vsphere_server"), Some("vCenter server"));
    }

    #[test]
    fn the_demo_config_is_complete_by_the_schema() {
        let problems = check(
            &crate::demo::config_json(),
            Some(&crate::demo::secrets_json()),
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn missing_fields_name_the_stage_and_numbers_are_strings_to_terraform() {
        let mut cfg = crate::demo::config_json();
        let secrets = crate::demo::secrets_json();
        cfg["vsphere"]
            .as_object_mut()
            .unwrap()
            .remove("rhel_template");
        cfg["assured"]["num_cpu"] = json!(4);
        cfg["vsphere"]["maskprefix"] = json!(24);
        let p = check(&cfg, Some(&secrets));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].path, "vsphere.rhel_template");
        assert!(
            p[0].message.contains(
                "is missing from config.json: 7.terraform-deploy needs it (RHEL template"
            ),
            "{}",
            p[0].message
        );
        let mut s2 = secrets.clone();
        s2["rhpullsecret"] = json!("{\"auths\":{}}");
        s2["dns"].as_object_mut().unwrap().remove("password");
        let p = check(&cfg, Some(&s2));
        assert!(
            p.iter()
                .any(|x| x.path == "secrets.rhpullsecret"
                    && x.message.contains("must be a JSON object")),
            "{p:?}"
        );
        assert!(p.iter().any(|x| x.path == "secrets.dns.password"), "{p:?}");
        // A field in the other file is found there, as terraform would.
        let mut s3 = secrets.clone();
        s3["registryurl"] = cfg["registryurl"].clone();
        let mut c3 = cfg.clone();
        c3.as_object_mut().unwrap().remove("registryurl");
        assert!(
            !check(&c3, Some(&s3))
                .iter()
                .any(|x| x.path == "registryurl")
        );
    }
}
