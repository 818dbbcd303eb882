//! Short helper containers and image listings for the setup flow.

use std::collections::HashMap;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use serde::Deserialize;

use super::{ContainerSpec, Engine, Mount, Result, api, labels};

/// Which openshift-install to ask for its version.
#[derive(Debug, Clone, Copy)]
pub enum Installer<'a> {
    /// The one in the installer image.
    Embedded,
    /// The disconnected-install override in this deployconfig folder.
    Override(&'a std::path::Path),
    /// A file the operator named, to copy in once it runs.
    Candidate(&'a std::path::Path),
}

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

    /// `openshift-install version` of `which` installer, run in the installer `image`: its exit
    /// code and output. The embedded one is looked for where the real 4.run-installer image and
    /// others keep it.
    pub async fn installer_version(
        &self,
        image: &str,
        which: Installer<'_>,
    ) -> Result<(i64, String)> {
        const PROBE: &str = "for p in $(command -v openshift-install) /usr/local/bin/openshift-install /usr/bin/openshift-install /usr/local/4.run-installer/openshift-install; do [ -x \"$p\" ] && exec \"$p\" version; done; echo 'no openshift-install in this image' >&2; exit 127";
        let (entrypoint, mounts) = match which {
            Installer::Embedded => (vec!["/bin/sh".into(), "-c".into(), PROBE.into()], vec![]),
            // The deployconfig's override, where the stage finds it.
            Installer::Override(deployconfig) => (
                vec!["/tmp/workingdir/openshift-install".into(), "version".into()],
                vec![Mount {
                    source: deployconfig.display().to_string(),
                    target: "/tmp/workingdir".into(),
                    options: "z".into(),
                }],
            ),
            // A file the operator named, alone and read-only.
            Installer::Candidate(file) => (
                vec!["/tmp/candidate/openshift-install".into(), "version".into()],
                vec![Mount {
                    source: file.display().to_string(),
                    target: "/tmp/candidate/openshift-install".into(),
                    options: "ro".into(),
                }],
            ),
        };
        self.run_output(image, entrypoint, mounts).await
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
