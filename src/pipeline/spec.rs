//! The pipeline as data: a list of steps, built in by default and overridable by a file.

use crate::pipeline::error::PipelineError;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The built-in pipeline (the real stage 2).
/// The largest number of seconds a pipeline file may give (7 days): no overflow, no wrap to 0.
pub const MAX_SECS: u64 = 7 * 24 * 3600;

/// Default extension allowance of a service window (seconds).
pub const DEFAULT_MAX_EXTEND_SECS: u64 = 1800;

pub const DEFAULT_PIPELINE: &str = include_str!("default-pipeline.toml");

/// What kind of work a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Pull images (only those missing locally unless `always`).
    Pull,
    /// A container that runs to its exit.
    Oneshot,
    /// A detached container kept up for `ttl_secs`, while later steps run.
    Service,
    /// A pause of `secs`.
    Wait,
    /// A built-in action on the bastion itself.
    Host,
}

/// Built-in host actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostAction {
    /// Copy `oc` and `kubectl` from the deployconfig into `bin_dir`; KUBECONFIG in `profile_dir`.
    InstallClients,
    /// `oc adm certificate approve` pending CSRs every `interval_secs` until every node config.json
    /// declares is Ready and none is pending, or `timeout_secs`.
    ApproveCsrs,
}

/// An extra bind mount for a container step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Host path (`{deployconfig}` is replaced).
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// Mount options.
    #[serde(default = "default_mount_options")]
    pub options: String,
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

fn default_mount_options() -> String {
    "z".into()
}

/// One step of the pipeline. Which fields apply depends on `kind`; [`Pipeline::validate`]
/// checks them with messages that name the step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique id; for container steps, the stage name (`4.run-installer`).
    pub id: String,
    /// Kind of step.
    pub kind: Kind,
    /// One line for the operator.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Stage image name (oneshot, service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Stage image names (pull).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Pull even when present (pull).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub always: bool,
    /// Container name (default: the step id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Entrypoint override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Command (arguments) override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Extra environment, `KEY=value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Network mode (`host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Extra bind mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountSpec>,
    /// Mount the whole deployconfig at /tmp/workingdir (default true). `false` gives the
    /// container only its `mounts` (least privilege: the web server needs only bootstrap.ign).
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub workdir: bool,
    /// How long a service stays up (service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// What a service serves, for display and checks (service).
    /// Service steps: how much the operator may extend the window in all (seconds, default
    /// 1800). The engine itself kills the service at `ttl_secs + max_extend_secs` after its start,
    /// so a window is bounded even with no stage2-tui process left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_extend_secs: Option<u64>,
    /// Service steps: the `ttl_secs` countdown starts when this later step succeeds (the
    /// bootstrap VM boots only once `7.terraform-deploy` made it), not at the service's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_starts_after: Option<String>,
    /// Service steps: the engine's own limit on the service's life, from its start (default:
    /// `ttl_secs + max_extend_secs`, or 7200 with `window_starts_after`). It holds with no
    /// stage2-tui process left: the worst case of a detached run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_serve_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Seconds to wait (wait).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secs: Option<u64>,
    /// The built-in action (host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<HostAction>,
    /// Where client binaries go (host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<String>,
    /// Where the KUBECONFIG profile snippet goes (host, install-clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_dir: Option<String>,
    /// The user who may read `auth/kubeconfig` afterwards (host, install-clients; default core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_with: Option<String>,
    /// Kept so older pipeline files still parse: `approve-csrs` now approves until every declared
    /// node is Ready (see `timeout_secs`), not a fixed number of rounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<u32>,
    /// Seconds between looks at the cluster (approve-csrs, and a wait with `until`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<u64>,
    /// What a wait waits for instead of a clock (wait): `cluster-operators` (every cluster
    /// operator Available and none Degraded for `stable_secs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<WaitFor>,
    /// How long the condition must hold (wait with `until`; default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_secs: Option<u64>,
    /// When to give up (approve-csrs: default 3600; wait with `until`: default 2700).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// What the step needs before it runs and must leave behind (container steps).
    #[serde(default, skip_serializing_if = "super::contract::Contract::is_empty")]
    pub contract: super::contract::Contract,
}

/// Conditions a wait step can wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitFor {
    /// Every cluster operator Available and none Degraded, for `stable_secs`.
    ClusterOperators,
}

/// How long a service with `window_starts_after` may live at most, by default (2 hours).
pub const DEFAULT_ANCHORED_SERVE_SECS: u64 = 7200;

/// A service's window when the pipeline gives no `ttl_secs` (10 minutes, as the script's sleep).
pub const DEFAULT_TTL_SECS: u64 = 600;

impl Step {
    /// The service's window (`ttl_secs`, else [`DEFAULT_TTL_SECS`]).
    pub fn ttl(&self) -> u64 {
        self.ttl_secs.unwrap_or(DEFAULT_TTL_SECS)
    }

    /// The engine's own limit on a service's life, from its start (see `max_serve_secs`).
    pub fn serve_limit_secs(&self) -> u64 {
        let ttl = self.ttl();
        let extend = self.max_extend_secs.unwrap_or(DEFAULT_MAX_EXTEND_SECS);
        match (self.max_serve_secs, &self.window_starts_after) {
            (Some(m), _) => m.max(ttl),
            (None, Some(_)) => DEFAULT_ANCHORED_SERVE_SECS.max(ttl + extend),
            (None, None) => ttl + extend,
        }
    }

    /// The container name for container steps.
    pub fn container_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// The ordered list of steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Steps in order.
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
}

/// Where the pipeline came from, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Built in.
    Default,
    /// Loaded from this override file, whose bytes had this SHA-256 (hex).
    File {
        /// The file.
        path: String,
        /// SHA-256 of the bytes parsed.
        digest: String,
    },
}

impl Pipeline {
    /// The built-in pipeline.
    pub fn default_pipeline() -> Result<Self, PipelineError> {
        Self::parse(DEFAULT_PIPELINE, "built-in pipeline")
    }

    /// Parses and validates pipeline TOML; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, PipelineError> {
        let p: Pipeline = toml::from_str(text)
            .map_err(|e| PipelineError::Definition(format!("{origin}: {e}")))?;
        p.validate()
            .map_err(|e| PipelineError::Definition(format!("{origin}: {e}")))?;
        Ok(p)
    }

    /// The override file if present, else the built-in pipeline.
    pub fn load(override_file: &Path) -> Result<(Self, Source), PipelineError> {
        // Inside the deployconfig, where a stage container can write: never follow a link.
        let read = || -> std::io::Result<(String, String)> {
            let bytes = crate::safefs::read_file(override_file)?;
            let digest = super::accept::digest(&bytes);
            let text = String::from_utf8(bytes).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "it is not UTF-8 text")
            })?;
            Ok((text, digest))
        };
        match read() {
            Ok((text, digest)) => {
                let origin = override_file.display().to_string();
                Ok((
                    Self::parse(&text, &origin)?,
                    Source::File {
                        path: origin,
                        digest,
                    },
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok((Self::default_pipeline()?, Source::Default))
            }
            Err(e) => Err(PipelineError::Definition(format!(
                "cannot read {}: {e}",
                override_file.display()
            ))),
        }
    }

    /// Checks ids are unique and each step has the fields its kind needs.
    pub fn validate(&self) -> Result<(), PipelineError> {
        if self.steps.is_empty() {
            return Err(PipelineError::Definition(
                "the pipeline has no steps".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.steps.iter().enumerate() {
            let at = format!("step[{i}] `{}`", s.id);
            if !super::state::is_name(&s.id, true) {
                return Err(PipelineError::Definition(format!(
                    "{at}: id must be 1 to 128 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
                )));
            }
            if !seen.insert(&s.id) {
                return Err(PipelineError::Definition(format!("{at}: duplicate id")));
            }
            let need = |ok: bool, what: &str| {
                if ok {
                    Ok(())
                } else {
                    Err(PipelineError::Definition(format!(
                        "{at}: a {:?} step needs {what}",
                        s.kind
                    )))
                }
            };
            for (name, v, max) in [
                ("ttl_secs", s.ttl_secs, MAX_SECS),
                ("secs", s.secs, MAX_SECS),
                ("interval_secs", s.interval_secs, MAX_SECS),
                ("stable_secs", s.stable_secs, MAX_SECS),
                ("timeout_secs", s.timeout_secs, MAX_SECS),
                ("max_extend_secs", s.max_extend_secs, MAX_SECS),
                ("max_serve_secs", s.max_serve_secs, MAX_SECS),
                ("rounds", s.rounds.map(u64::from), 10_000),
            ] {
                if let Some(v) = v
                    && v > max
                {
                    return Err(PipelineError::Definition(format!(
                        "{at}: `{name} = {v}` is too large (at most {max}{})",
                        if max == MAX_SECS {
                            " seconds, 7 days"
                        } else {
                            ""
                        }
                    )));
                }
            }
            if let Some(anchor) = &s.window_starts_after {
                let later = self.steps.iter().skip(i + 1).any(|x| &x.id == anchor);
                if s.kind != Kind::Service || !later {
                    return Err(PipelineError::Definition(format!(
                        "{at}: `window_starts_after = \"{anchor}\"` must name a step after this service step (steps: {})",
                        self.ids()
                    )));
                }
            }
            s.contract
                .validate()
                .map_err(|e| PipelineError::Definition(format!("{at}: {e}")))?;
            if !s.contract.is_empty() && !matches!(s.kind, Kind::Oneshot | Kind::Service) {
                return Err(PipelineError::Definition(format!(
                    "{at}: only oneshot and service steps have a contract"
                )));
            }
            if s.ttl_secs == Some(0) {
                return Err(PipelineError::Definition(format!(
                    "{at}: `ttl_secs` must be at least 1"
                )));
            }
            match s.kind {
                Kind::Pull => need(!s.images.is_empty(), "`images`")?,
                Kind::Oneshot => need(s.image.is_some(), "`image`")?,
                Kind::Service => {
                    need(s.image.is_some(), "`image`")?;
                    need(s.ttl_secs.is_some(), "`ttl_secs`")?;
                }
                Kind::Wait => need(s.secs.is_some() || s.until.is_some(), "`secs` or `until`")?,
                Kind::Host => need(
                    s.action.is_some(),
                    "`action` (install-clients or approve-csrs)",
                )?,
            }
        }
        Ok(())
    }

    /// Index of a step by id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// Every stage image the pipeline uses: what the pull steps pull, then any other image a
    /// step runs, each once.
    pub fn stage_images(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let pulled = self
            .steps
            .iter()
            .filter(|s| s.kind == Kind::Pull)
            .flat_map(|s| s.images.iter());
        for i in pulled.chain(self.steps.iter().filter_map(|s| s.image.as_ref())) {
            if !out.contains(i) {
                out.push(i.clone());
            }
        }
        out
    }

    /// The step ids, comma-separated (for error messages).
    pub fn ids(&self) -> String {
        self.steps
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Serializes to TOML (the override file format).
    /// A stable hash of the steps (as TOML), to notice a pipeline changed mid-run.
    pub fn hash(&self) -> String {
        format!("{:016x}", crate::config::fnv1a(self.to_toml().as_bytes()))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pipeline_is_the_real_stage2() {
        let p = Pipeline::default_pipeline().unwrap();
        let ids: Vec<_> = p.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "pull",
                "2.create-config",
                "4.run-installer",
                "5.ign-webserver",
                "6.add-ignition",
                "7.terraform-deploy",
                "wait-svcs",
                "8.configure-svcs",
                "install-clients",
                "wait-for-bootstrap",
                "remove-bootstrap",
                "approve-csrs",
                "9.post-deployment",
                "wait-operators"
            ]
        );
        let web = &p.steps[3];
        assert_eq!(web.container_name(), "ign-webserver");
        assert_eq!(web.ttl_secs, Some(600));
        assert_eq!(p.steps[6].secs, Some(80));
        assert!(p.steps[0].images.contains(&"2.create-config".to_string()));
        assert_eq!(p.stage_images().len(), 7, "{:?}", p.stage_images());
    }

    #[test]
    fn round_trips_through_toml() {
        let p = Pipeline::default_pipeline().unwrap();
        assert_eq!(Pipeline::parse(&p.to_toml(), "x").unwrap(), p);
    }

    #[test]
    fn bad_files_name_the_step() {
        let e = Pipeline::parse(
            "[[step]]\nid = \"a\"\nkind = \"service\"\nimage = \"x\"\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "f.toml: step[0] `a`: a Service step needs `ttl_secs`");
        let e = Pipeline::parse("[[step]]\nid = \"a\"\nkind = \"wait\"\nsecs = 1\n[[step]]\nid = \"a\"\nkind = \"wait\"\nsecs = 1\n", "f").unwrap_err().to_string();
        assert!(e.contains("duplicate id"), "{e}");
        let e = Pipeline::parse(
            "[[step]]\nid = \"a\"\nkind = \"wait\"\nsecs = 10000000000000\n",
            "f",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`secs = 10000000000000` is too large"), "{e}");
        assert!(
            Pipeline::parse(
                &format!(
                    "[[step]]\nid = \"a\"\nkind = \"wait\"\nsecs = {}\n",
                    u64::MAX
                ),
                "f"
            )
            .is_err()
        );
        let e = Pipeline::parse("[[step]]\nid = \"a\"\nkind = \"sleep\"\n", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `sleep`"), "{e}");
    }
}
