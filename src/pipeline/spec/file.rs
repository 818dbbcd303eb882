//! The pipeline file's format: one flat table per step (`[[step]]`, `kind = "…"`), checked with
//! messages that name the step, then turned into the typed [`Step`]s with every default resolved.
//! Writing goes the other way, so a written pipeline reads back the same.

use serde::{Deserialize, Serialize};

use super::{
    Container, DEFAULT_ANCHORED_SERVE_SECS, DEFAULT_MAX_EXTEND_SECS, Host, HostAction, Kind,
    MAX_SECS, MountSpec, Pull, Step, Until, Wait, WaitFor, Window, Work,
};
use crate::pipeline::contract::Contract;
use crate::pipeline::error::PipelineError;

/// Where client binaries go, and where `oc` is looked for, by default.
const DEFAULT_BIN_DIR: &str = "/usr/local/bin";
/// Where the KUBECONFIG profile snippet goes by default.
const DEFAULT_PROFILE_DIR: &str = "/etc/profile.d";
/// Who may read `auth/kubeconfig` after install-clients, by default.
const DEFAULT_SHARE_WITH: &str = "core";
/// Seconds between looks at the cluster, by default.
const DEFAULT_INTERVAL_SECS: u64 = 15;
/// How long approve-csrs goes on at most, by default.
const DEFAULT_APPROVE_TIMEOUT_SECS: u64 = 3600;
/// How long the cluster operators must hold, by default.
const DEFAULT_STABLE_SECS: u64 = 120;
/// How long a wait for the cluster operators goes on at most, by default.
const DEFAULT_WAIT_TIMEOUT_SECS: u64 = 2700;

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

/// The file: `[[step]]` tables in order.
#[derive(Serialize, Deserialize)]
pub(super) struct PipelineFile {
    pub(super) step: Vec<StepFile>,
}

/// One `[[step]]` table as written. Which fields apply depends on `kind`; [`check`] says which
/// are missing, naming the step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StepFile {
    id: String,
    kind: Kind,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    images: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    always: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    network: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    mounts: Vec<MountSpec>,
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    workdir: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_extend_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window_starts_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_serve_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    action: Option<HostAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bin_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profile_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    share_with: Option<String>,
    /// Kept so older pipeline files still parse: approve-csrs now approves until every declared
    /// node is Ready (see `timeout_secs`), not a fixed number of rounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rounds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interval_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<WaitFor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stable_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Contract::is_empty")]
    contract: Contract,
}

/// Checks the steps (ids unique, each with the fields its kind needs, numbers in range) and turns
/// them into typed steps.
pub(super) fn check(file: PipelineFile) -> Result<Vec<Step>, PipelineError> {
    if file.step.is_empty() {
        return Err(PipelineError::Definition(
            "the pipeline has no steps".into(),
        ));
    }
    let ids: Vec<&str> = file.step.iter().map(|s| s.id.as_str()).collect();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(file.step.len());
    for (i, s) in file.step.iter().enumerate() {
        let at = format!("step[{i}] `{}`", s.id);
        let fail = |what: String| PipelineError::Definition(format!("{at}: {what}"));
        if !crate::pipeline::state::is_name(&s.id, true) {
            return Err(fail("id must be 1 to 128 letters, digits, '.', '_' or '-', not starting with '.' or '-'".into()));
        }
        if !seen.insert(&s.id) {
            return Err(fail("duplicate id".into()));
        }
        s.numbers_in_range().map_err(fail)?;
        if let Some(anchor) = &s.window_starts_after {
            let later = ids[i + 1..].contains(&anchor.as_str());
            if s.kind != Kind::Service || !later {
                return Err(fail(format!(
                    "`window_starts_after = \"{anchor}\"` must name a step after this service step (steps: {})",
                    ids.join(", ")
                )));
            }
        }
        s.contract.validate().map_err(fail)?;
        out.push(s.typed().map_err(fail)?);
    }
    Ok(out)
}

impl StepFile {
    /// Every number at most its bound: no overflow, no wrap to 0.
    fn numbers_in_range(&self) -> Result<(), String> {
        for (name, v, max) in [
            ("ttl_secs", self.ttl_secs, MAX_SECS),
            ("secs", self.secs, MAX_SECS),
            ("interval_secs", self.interval_secs, MAX_SECS),
            ("stable_secs", self.stable_secs, MAX_SECS),
            ("timeout_secs", self.timeout_secs, MAX_SECS),
            ("max_extend_secs", self.max_extend_secs, MAX_SECS),
            ("max_serve_secs", self.max_serve_secs, MAX_SECS),
            ("rounds", self.rounds.map(u64::from), 10_000),
        ] {
            if let Some(v) = v
                && v > max
            {
                return Err(format!(
                    "`{name} = {v}` is too large (at most {max}{})",
                    if max == MAX_SECS {
                        " seconds, 7 days"
                    } else {
                        ""
                    }
                ));
            }
        }
        if self.ttl_secs == Some(0) {
            return Err("`ttl_secs` must be at least 1".into());
        }
        Ok(())
    }

    /// The typed step, defaults resolved; what is missing for its kind, named.
    fn typed(&self) -> Result<Step, String> {
        let kind = self.kind;
        let need = |what: &str| format!("a {kind:?} step needs {what}");
        if !self.contract.is_empty() && !matches!(kind, Kind::Oneshot | Kind::Service) {
            return Err("only oneshot and service steps have a contract".into());
        }
        let bin_dir = || {
            self.bin_dir
                .clone()
                .unwrap_or_else(|| DEFAULT_BIN_DIR.into())
        };
        let interval_secs = self.interval_secs.unwrap_or(DEFAULT_INTERVAL_SECS).max(1);
        let work = match kind {
            Kind::Pull if self.images.is_empty() => return Err(need("`images`")),
            Kind::Pull => Work::Pull(Pull {
                images: self.images.clone(),
                always: self.always,
            }),
            Kind::Oneshot => Work::Oneshot(self.container().ok_or_else(|| need("`image`"))?),
            Kind::Service => {
                let c = self.container().ok_or_else(|| need("`image`"))?;
                let ttl_secs = self.ttl_secs.ok_or_else(|| need("`ttl_secs`"))?;
                Work::Service(
                    c,
                    Window {
                        ttl_secs,
                        max_extend_secs: self.max_extend_secs.unwrap_or(DEFAULT_MAX_EXTEND_SECS),
                        starts_after: self.window_starts_after.clone(),
                        max_serve_secs: self.max_serve_secs,
                        url: self.url.clone(),
                    },
                )
            }
            Kind::Wait => match (self.until, self.secs) {
                (Some(what), _) => Work::Wait(Wait::Until(Until {
                    what,
                    bin_dir: bin_dir(),
                    interval_secs,
                    stable_secs: self.stable_secs.unwrap_or(DEFAULT_STABLE_SECS),
                    timeout_secs: self.timeout_secs.unwrap_or(DEFAULT_WAIT_TIMEOUT_SECS),
                })),
                (None, Some(secs)) => Work::Wait(Wait::Clock { secs }),
                (None, None) => return Err(need("`secs` or `until`")),
            },
            Kind::Host => Work::Host(match self.action {
                Some(HostAction::InstallClients) => Host::InstallClients {
                    bin_dir: bin_dir(),
                    profile_dir: self
                        .profile_dir
                        .clone()
                        .unwrap_or_else(|| DEFAULT_PROFILE_DIR.into()),
                    share_with: self
                        .share_with
                        .clone()
                        .unwrap_or_else(|| DEFAULT_SHARE_WITH.into()),
                },
                Some(HostAction::ApproveCsrs) => Host::ApproveCsrs {
                    bin_dir: bin_dir(),
                    interval_secs,
                    timeout_secs: self.timeout_secs.unwrap_or(DEFAULT_APPROVE_TIMEOUT_SECS),
                },
                None => return Err(need("`action` (install-clients or approve-csrs)")),
            }),
        };
        Ok(Step {
            id: self.id.clone(),
            description: self.description.clone(),
            work,
        })
    }

    /// The container settings, when the step names its image.
    fn container(&self) -> Option<Container> {
        Some(Container {
            image: self.image.clone()?,
            name: self.name.clone().unwrap_or_else(|| self.id.clone()),
            entrypoint: self.entrypoint.clone(),
            command: self.command.clone(),
            env: self.env.clone(),
            network: self.network.clone(),
            mounts: self.mounts.clone(),
            workdir: self.workdir,
            contract: self.contract.clone(),
        })
    }
}

impl From<&Step> for StepFile {
    /// The table that reads back as `step` (defaults written out).
    fn from(step: &Step) -> Self {
        let mut f = StepFile {
            id: step.id.clone(),
            kind: step.kind(),
            description: step.description.clone(),
            image: None,
            images: Vec::new(),
            always: false,
            name: None,
            entrypoint: None,
            command: None,
            env: Vec::new(),
            network: None,
            mounts: Vec::new(),
            workdir: true,
            ttl_secs: None,
            max_extend_secs: None,
            window_starts_after: None,
            max_serve_secs: None,
            url: None,
            secs: None,
            action: None,
            bin_dir: None,
            profile_dir: None,
            share_with: None,
            rounds: None,
            interval_secs: None,
            until: None,
            stable_secs: None,
            timeout_secs: None,
            contract: Contract::default(),
        };
        match &step.work {
            Work::Pull(p) => {
                f.images = p.images.clone();
                f.always = p.always;
            }
            Work::Oneshot(c) => f.set_container(&step.id, c),
            Work::Service(c, w) => {
                f.set_container(&step.id, c);
                f.ttl_secs = Some(w.ttl_secs);
                f.max_extend_secs = Some(w.max_extend_secs);
                f.window_starts_after = w.starts_after.clone();
                f.max_serve_secs = w.max_serve_secs;
                f.url = w.url.clone();
            }
            Work::Wait(Wait::Clock { secs }) => f.secs = Some(*secs),
            Work::Wait(Wait::Until(u)) => {
                f.until = Some(u.what);
                f.bin_dir = Some(u.bin_dir.clone());
                f.interval_secs = Some(u.interval_secs);
                f.stable_secs = Some(u.stable_secs);
                f.timeout_secs = Some(u.timeout_secs);
            }
            Work::Host(h) => f.set_host(h),
        }
        f
    }
}

impl StepFile {
    /// A container step's fields.
    fn set_container(&mut self, id: &str, c: &Container) {
        self.image = Some(c.image.clone());
        self.name = (c.name != id).then(|| c.name.clone());
        self.entrypoint = c.entrypoint.clone();
        self.command = c.command.clone();
        self.env = c.env.clone();
        self.network = c.network.clone();
        self.mounts = c.mounts.clone();
        self.workdir = c.workdir;
        self.contract = c.contract.clone();
    }

    /// A host step's fields.
    fn set_host(&mut self, h: &Host) {
        self.action = Some(h.action());
        self.bin_dir = Some(h.bin_dir().to_string());
        match h {
            Host::InstallClients {
                profile_dir,
                share_with,
                ..
            } => {
                self.profile_dir = Some(profile_dir.clone());
                self.share_with = Some(share_with.clone());
            }
            Host::ApproveCsrs {
                interval_secs,
                timeout_secs,
                ..
            } => {
                self.interval_secs = Some(*interval_secs);
                self.timeout_secs = Some(*timeout_secs);
            }
        }
    }
}

/// The engine's own limit on a service's life, from its start: `max_serve_secs` (at least the
/// window), else the window and its extensions, or 2 hours for a window that waits for a later
/// step.
pub(super) fn serve_limit(w: &Window) -> u64 {
    let (ttl, extend) = (w.ttl_secs, w.max_extend_secs);
    match (w.max_serve_secs, &w.starts_after) {
        (Some(m), _) => m.max(ttl),
        (None, Some(_)) => DEFAULT_ANCHORED_SERVE_SECS.max(ttl + extend),
        (None, None) => ttl + extend,
    }
}
