//! The pipeline as data: a list of steps, built in by default and overridable by a file.

mod file;

use crate::pipeline::error::PipelineError;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The built-in pipeline (the real stage 2).
/// The largest number of seconds a pipeline file may give (7 days): no overflow, no wrap to 0.
pub const MAX_SECS: u64 = 7 * 24 * 3600;

/// Default extension allowance of a service window (seconds).
pub const DEFAULT_MAX_EXTEND_SECS: u64 = 1800;

pub const DEFAULT_PIPELINE: &str = include_str!("../default-pipeline.toml");

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

/// One step of the pipeline: its id, its line for the operator, and its work, with every
/// default resolved when the pipeline loaded. The file format is [`file::StepFile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Unique id; for container steps, the stage name (`4.run-installer`).
    pub id: String,
    /// One line for the operator.
    pub description: String,
    /// What the step does.
    pub work: Work,
}

/// What a step does, by kind: a new kind is a new variant, and the compiler names every place
/// that must handle it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Pull images.
    Pull(Pull),
    /// A container that runs to its exit.
    Oneshot(Container),
    /// A detached container kept up for its window, while later steps run.
    Service(Container, Window),
    /// A pause, or a wait for a condition.
    Wait(Wait),
    /// A built-in action on the bastion itself.
    Host(Host),
}

/// A pull step's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    /// Stage image names.
    pub images: Vec<String>,
    /// Pull even when present.
    pub always: bool,
}

/// A container step's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Stage image name, run as `<registryurl>/<image>:<imagetag>`.
    pub image: String,
    /// Container name (the step id unless the file names one).
    pub name: String,
    /// Entrypoint override.
    pub entrypoint: Option<Vec<String>>,
    /// Command (arguments) override.
    pub command: Option<Vec<String>>,
    /// Extra environment, `KEY=value`.
    pub env: Vec<String>,
    /// Network mode (`host`).
    pub network: Option<String>,
    /// Extra bind mounts.
    pub mounts: Vec<MountSpec>,
    /// Mount the whole deployconfig at /tmp/workingdir. `false` gives the container only its
    /// `mounts` (least privilege: the web server needs only bootstrap.ign).
    pub workdir: bool,
    /// What the step needs before it runs and must leave behind.
    pub contract: super::contract::Contract,
}

/// A service's window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// How long the service stays up (from its start, or from `starts_after`'s success).
    pub ttl_secs: u64,
    /// How much the operator may extend the window in all.
    pub max_extend_secs: u64,
    /// The countdown starts when this later step succeeds (the bootstrap VM boots only once
    /// `7.terraform-deploy` made it), not at the service's start.
    pub starts_after: Option<String>,
    /// The engine's own limit on the service's life as the file gives it (see
    /// [`Window::serve_limit_secs`]).
    pub max_serve_secs: Option<u64>,
    /// What the service serves, for display and checks.
    pub url: Option<String>,
}

impl Window {
    /// The engine's own limit on the service's life, from its start: `max_serve_secs`, else
    /// `ttl_secs + max_extend_secs`, or 2 hours with `starts_after`. It holds with no stage2-tui
    /// process left: the worst case of a detached run.
    pub fn serve_limit_secs(&self) -> u64 {
        file::serve_limit(self)
    }
}

/// A wait step's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// A pause of `secs`.
    Clock {
        /// Seconds to wait.
        secs: u64,
    },
    /// A wait for a condition of the cluster.
    Until(Until),
}

/// A wait for a condition of the cluster, looked at with `oc` from `bin_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Until {
    /// The condition.
    pub what: WaitFor,
    /// Where `oc` is.
    pub bin_dir: String,
    /// Seconds between looks.
    pub interval_secs: u64,
    /// How long the condition must hold.
    pub stable_secs: u64,
    /// When to give up.
    pub timeout_secs: u64,
}

/// A host step's action and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// Copy `oc` and `kubectl` from the deployconfig into `bin_dir`; KUBECONFIG in `profile_dir`.
    InstallClients {
        /// Where client binaries go.
        bin_dir: String,
        /// Where the KUBECONFIG profile snippet goes.
        profile_dir: String,
        /// The user who may read `auth/kubeconfig` afterwards.
        share_with: String,
    },
    /// `oc adm certificate approve` pending CSRs every `interval_secs` until every node
    /// config.json declares is Ready and none is pending, or `timeout_secs`.
    ApproveCsrs {
        /// Where `oc` is.
        bin_dir: String,
        /// Seconds between looks.
        interval_secs: u64,
        /// When to give up.
        timeout_secs: u64,
    },
}

impl Host {
    /// The action's name in the file.
    pub fn action(&self) -> HostAction {
        match self {
            Host::InstallClients { .. } => HostAction::InstallClients,
            Host::ApproveCsrs { .. } => HostAction::ApproveCsrs,
        }
    }

    /// Where the client binaries are.
    pub fn bin_dir(&self) -> &str {
        match self {
            Host::InstallClients { bin_dir, .. } | Host::ApproveCsrs { bin_dir, .. } => bin_dir,
        }
    }
}

impl Serialize for Pipeline {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        file::PipelineFile {
            step: self.steps.iter().map(file::StepFile::from).collect(),
        }
        .serialize(s)
    }
}

/// Read back as it was written (the attach protocol sends it), and checked again.
impl<'de> Deserialize<'de> for Pipeline {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f = file::PipelineFile::deserialize(d)?;
        let steps = file::check(f).map_err(serde::de::Error::custom)?;
        Ok(Pipeline { steps })
    }
}

impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        file::StepFile::from(self).serialize(s)
    }
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
    /// The step's kind, as the file names it.
    pub fn kind(&self) -> Kind {
        match &self.work {
            Work::Pull(_) => Kind::Pull,
            Work::Oneshot(_) => Kind::Oneshot,
            Work::Service(..) => Kind::Service,
            Work::Wait(_) => Kind::Wait,
            Work::Host(_) => Kind::Host,
        }
    }

    /// A container step's settings.
    pub fn container(&self) -> Option<&Container> {
        match &self.work {
            Work::Oneshot(c) | Work::Service(c, _) => Some(c),
            Work::Pull(_) | Work::Wait(_) | Work::Host(_) => None,
        }
    }

    /// A service step's window.
    pub fn window(&self) -> Option<&Window> {
        match &self.work {
            Work::Service(_, w) => Some(w),
            _ => None,
        }
    }

    /// The later step a service's window waits for (`window_starts_after`).
    pub fn starts_after(&self) -> Option<&str> {
        self.window()?.starts_after.as_deref()
    }

    /// True for a service step.
    pub fn is_service(&self) -> bool {
        self.window().is_some()
    }

    /// A container step's contract (other steps have none).
    pub fn contract(&self) -> Option<&super::contract::Contract> {
        self.container().map(|c| &c.contract)
    }

    /// Where `oc` is for a step that uses it (host steps, a wait for the cluster).
    pub fn bin_dir(&self) -> Option<&str> {
        match &self.work {
            Work::Host(h) => Some(h.bin_dir()),
            Work::Wait(Wait::Until(u)) => Some(&u.bin_dir),
            _ => None,
        }
    }

    /// Seconds between looks at the cluster, for a step that looks at it.
    pub fn interval_secs(&self) -> Option<u64> {
        match &self.work {
            Work::Host(Host::ApproveCsrs { interval_secs, .. }) => Some(*interval_secs),
            Work::Wait(Wait::Until(u)) => Some(u.interval_secs),
            _ => None,
        }
    }
}

fn default_mount_options() -> String {
    "z".into()
}

/// The ordered list of steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// Steps in order.
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

    /// Parses and checks pipeline TOML; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, PipelineError> {
        let at = |e: String| PipelineError::Definition(format!("{origin}: {e}"));
        let f: file::PipelineFile = toml::from_str(text).map_err(|e| at(e.to_string()))?;
        let steps = file::check(f).map_err(|e| at(e.to_string()))?;
        Ok(Pipeline { steps })
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

    /// Index of a step by id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// Every stage image the pipeline uses: what the pull steps pull, then any other image a
    /// step runs, each once.
    pub fn stage_images(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let pulled = self.steps.iter().flat_map(|s| match &s.work {
            Work::Pull(p) => p.images.as_slice(),
            _ => &[],
        });
        let run = self
            .steps
            .iter()
            .filter_map(|s| s.container().map(|c| &c.image));
        for i in pulled.chain(run) {
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

    /// A stable hash of the steps (as TOML), to notice a pipeline changed mid-run.
    pub fn hash(&self) -> String {
        format!("{:016x}", crate::config::fnv1a(self.to_toml().as_bytes()))
    }

    /// Serializes to TOML (the override file format), every default written out.
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
        assert_eq!(web.container().unwrap().name, "ign-webserver");
        assert_eq!(web.window().unwrap().ttl_secs, 600);
        assert_eq!(web.window().unwrap().serve_limit_secs(), 7200);
        assert_eq!(p.steps[6].work, Work::Wait(Wait::Clock { secs: 80 }));
        assert!(p.stage_images().contains(&"2.create-config".to_string()));
        assert_eq!(p.stage_images().len(), 7, "{:?}", p.stage_images());
    }

    #[test]
    fn defaults_are_resolved_once_at_load() {
        let p = Pipeline::parse(
            "[[step]]\nid = \"a\"\nkind = \"host\"\naction = \"approve-csrs\"\ninterval_secs = 0\n\
             [[step]]\nid = \"b\"\nkind = \"host\"\naction = \"install-clients\"\n\
             [[step]]\nid = \"c\"\nkind = \"wait\"\nuntil = \"cluster-operators\"\nsecs = 5\n\
             [[step]]\nid = \"d\"\nkind = \"service\"\nimage = \"i\"\nttl_secs = 60\n",
            "f",
        )
        .unwrap();
        assert_eq!(
            p.steps[0].work,
            Work::Host(Host::ApproveCsrs {
                bin_dir: "/usr/local/bin".into(),
                interval_secs: 1,
                timeout_secs: 3600
            })
        );
        assert_eq!(
            p.steps[1].work,
            Work::Host(Host::InstallClients {
                bin_dir: "/usr/local/bin".into(),
                profile_dir: "/etc/profile.d".into(),
                share_with: "core".into()
            })
        );
        // `until` wins over `secs`, as it always did.
        let Work::Wait(Wait::Until(u)) = &p.steps[2].work else {
            panic!("{:?}", p.steps[2].work)
        };
        assert_eq!(
            (u.interval_secs, u.stable_secs, u.timeout_secs),
            (15, 120, 2700)
        );
        let (c, w) = (
            p.steps[3].container().unwrap(),
            p.steps[3].window().unwrap(),
        );
        assert_eq!((c.name.as_str(), c.workdir), ("d", true));
        assert_eq!(
            (w.ttl_secs, w.max_extend_secs, w.serve_limit_secs()),
            (60, 1800, 1860)
        );
        // Written out with its defaults, it reads back the same.
        assert_eq!(Pipeline::parse(&p.to_toml(), "again").unwrap(), p);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Pipeline>(&json).unwrap(), p);
    }

    #[test]
    fn a_contract_or_window_on_the_wrong_kind_is_refused() {
        let e = Pipeline::parse(
            "[[step]]\nid = \"a\"\nkind = \"wait\"\nsecs = 1\n[step.contract]\nmakes = [\"x\"]\n",
            "f",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "f: step[0] `a`: only oneshot and service steps have a contract"
        );
        let e = Pipeline::parse(
            "[[step]]\nid = \"a\"\nkind = \"oneshot\"\nimage = \"i\"\nwindow_starts_after = \"b\"\n[[step]]\nid = \"b\"\nkind = \"wait\"\nsecs = 1\n",
            "f",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("must name a step after this service step (steps: a, b)"),
            "{e}"
        );
        let e = Pipeline::parse("[[step]]\nid = \"a\"\nkind = \"host\"\n", "f")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "f: step[0] `a`: a Host step needs `action` (install-clients or approve-csrs)"
        );
        let e = Pipeline::parse("[[step]]\nid = \"a\"\nsecs = 1\n", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `kind`"), "{e}");
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
