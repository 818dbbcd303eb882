//! Our own lenient models of the engine answers whose bollard models reject what podman sends
//! (podman 4.3.1 reports the transient state `"stopped"`, which is not in bollard's
//! `ContainerStateStatusEnum`, so `inspect_container` fails right after an exit).

use std::collections::HashMap;

use serde::Deserialize;

/// Answer of `GET /containers/{id}/json`, only the fields we use.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Inspect {
    pub id: String,
    pub state: InspectState,
    pub log_path: Option<String>,
    pub host_config: InspectHostConfig,
    pub config: InspectConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectState {
    pub status: String,
    pub running: bool,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectHostConfig {
    pub log_config: LogConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub typ: String,
    /// Where podman 4's own inspect (the CLI's) puts the log file; 1.x and the API say `LogPath`.
    #[serde(rename = "Path")]
    pub path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InspectConfig {
    pub labels: Option<HashMap<String, String>>,
}

/// One entry of `GET /containers/json`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Summary {
    pub id: String,
    pub labels: Option<HashMap<String, String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_bollard_rejects_is_read() {
        let i: Inspect = serde_json::from_str(
            r#"{"Id":"x","State":{"Status":"stopped","Running":false,"ExitCode":3,"StartedAt":"2026-01-01T00:00:00Z"},"HostConfig":{"LogConfig":{"Type":"k8s-file"}}}"#,
        )
        .unwrap();
        assert_eq!(
            (
                i.state.status.as_str(),
                i.state.exit_code,
                i.host_config.log_config.typ.as_str()
            ),
            ("stopped", 3, "k8s-file")
        );
    }
}
