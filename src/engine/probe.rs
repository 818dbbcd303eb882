//! Short helper containers and image listings for the setup flow.

use std::collections::HashMap;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use serde::Deserialize;

use super::{ContainerSpec, Engine, Mount, Result, api, labels};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ImageEntry {
    repo_tags: Option<Vec<String>>,
}

impl Engine {
    /// Tags of `repo` (e.g. `registry/x/4.run-installer`) in local storage, sorted.
    pub async fn local_tags(&self, repo: &str) -> Result<Vec<String>> {
        if let Some(p) = self.cli() {
            return self.cli_local_tags(p, repo).await;
        }
        let list: Vec<ImageEntry> = self
            .get_json("/images/json", "listing images")
            .await?
            .unwrap_or_default();
        let prefix = format!("{repo}:");
        let mut tags: Vec<String> = list
            .into_iter()
            .flat_map(|i| i.repo_tags.unwrap_or_default())
            .filter_map(|t| t.strip_prefix(&prefix).map(String::from))
            .collect();
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// Runs a short-lived container to its end and returns its exit code and output (stdout and
    /// stderr together). The container is removed afterwards.
    pub async fn run_output(
        &self,
        image: &str,
        entrypoint: Vec<String>,
        mounts: Vec<Mount>,
    ) -> Result<(i64, String)> {
        let name = format!("stage2-tui-probe-{}", std::process::id());
        let spec = ContainerSpec {
            name: name.clone(),
            image: image.to_string(),
            entrypoint: Some(entrypoint),
            mounts,
            labels: HashMap::from([(labels::TOOL.to_string(), "stage2-tui".to_string())]),
            ..Default::default()
        };
        let id = self.create_container(&spec, |_| false).await?;
        let result = async {
            self.start(&id).await?;
            let code = self.wait_exit(&id).await?;
            if let Some(p) = self.cli() {
                return Ok((code, self.cli_logs(p, &id).await?));
            }
            let (_, streams) = self.clients("reading probe output")?;
            let opts = LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .build();
            let mut stream = streams.logs(&id, Some(opts));
            let mut out = Vec::new();
            while let Some(item) = stream.next().await {
                match item.map_err(api("reading probe output"))? {
                    LogOutput::StdOut { message }
                    | LogOutput::StdErr { message }
                    | LogOutput::Console { message } => out.extend_from_slice(&message),
                    LogOutput::StdIn { .. } => {}
                }
            }
            Ok((code, String::from_utf8_lossy(&out).into_owned()))
        }
        .await;
        let _ = self.remove(&id, true).await;
        result
    }
}
