//! The deployconfig folder and the parts of `config.json` / `secrets.json` the pipeline needs.
//!
//! `serde_json` is built with `preserve_order`, so a [`serde_json::Value`] keeps key order.

pub mod doc;
pub mod save;
pub mod validate;

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
#[derive(Debug, Clone)]
pub struct Deployconfig {
    /// The folder (absolute).
    pub dir: PathBuf,
}

impl Deployconfig {
    /// Wraps a folder path, made absolute.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        Self { dir }
    }
    /// `config.json`.
    pub fn config_json(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    /// `secrets.json`.
    pub fn secrets_json(&self) -> PathBuf {
        self.dir.join("secrets.json")
    }
    /// Our state folder: run state, lock, logs.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join(".stage2-tui")
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

/// Reads and parses a JSON file, reporting parse errors with line and column.
pub fn read_json(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.display().to_string(),
        line: e.line(),
        column: e.column(),
        msg: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_string(),
    })
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
        let v = read_json(&path)?;
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

    /// Credentials for pulls: `registryusername` plus `secrets.json` `registrytoken`.
    pub fn credentials(
        &self,
        dc: &Deployconfig,
    ) -> Result<Option<crate::engine::PullCredentials>, ConfigError> {
        if self.registry_user.is_empty() {
            return Ok(None);
        }
        let path = dc.secrets_json();
        let secrets = read_json(&path)?;
        let token = field(&path, &secrets, "/registrytoken", "registrytoken")?;
        Ok(Some(crate::engine::PullCredentials {
            username: self.registry_user.clone(),
            password: token.to_string(),
        }))
    }
}
