//! The setup flow's state: pre-flight checks → config → openshift-install → image tag → review.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::{CursorMove, TextArea};
use serde_json::Value;

use crate::config::validate::{self, Problem, Severity};

mod editing;
mod files;
mod form;
mod messages;
mod pages;
mod raw;
use crate::config::Deployconfig;
pub use files::{
    JsonFile, SaveFile, Saved, adopt as adopt_candidate_file, disabled_override, file_op,
    read_again, stage_candidate, write_files,
};
pub use form::{Field, Row, build_rows};
pub use messages::{
    AfterSave, FileDone, FileOp, PullFailure, Reloaded, SaveFailed, SaveRequest, Saving, SetupMsg,
    SetupTask, TagInfo, TaskError, Versions,
};
pub use pages::{ChecksPage, FormPage, InstallerPage, TagPage};
pub use raw::{RawEditor, RawFile, mask_json_values};

/// The pages of the setup flow, in order (not to be confused with the pipeline's steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Page {
    /// Pre-flight checks.
    Checks,
    /// config.json (form or raw) and secrets.
    Config,
    /// Which openshift-install.
    Installer,
    /// Which image tag.
    Tag,
    /// The changes, then Start.
    Review,
}

impl Page {
    /// All steps.
    pub const ALL: [Page; 5] = [
        Page::Checks,
        Page::Config,
        Page::Installer,
        Page::Tag,
        Page::Review,
    ];
    /// Short title, for narrow terminals.
    pub fn short(self) -> &'static str {
        match self {
            Page::Checks => "1 Checks",
            Page::Config => "2 Config",
            Page::Installer => "3 Installer",
            Page::Tag => "4 Tag",
            Page::Review => "5 Review",
        }
    }
    /// Title.
    pub fn title(self) -> &'static str {
        match self {
            Page::Checks => "1 Pre-flight",
            Page::Config => "2 config.json",
            Page::Installer => "3 openshift-install",
            Page::Tag => "4 Image tag",
            Page::Review => "5 Review & start",
        }
    }
}

/// A field being edited.
pub struct Editing {
    /// Which row.
    pub row: usize,
    /// The editor.
    pub area: TextArea<'static>,
    /// Multi-line.
    pub multiline: bool,
}

/// The whole setup flow.
pub struct Setup {
    /// Where saving stands.
    pub saving: Saving,
    /// Current step.
    pub step: Page,
    /// The deployconfig.
    pub dc: Deployconfig,
    /// Page 1: the pre-flight checks.
    pub preflight: ChecksPage,
    /// Page 2: the form and the raw editor.
    pub form: FormPage,
    /// Page 3: the installer.
    pub installer: InstallerPage,
    /// Page 4: the image tag.
    pub tag: TagPage,
    /// config.json.
    pub config: JsonFile,
    /// secrets.json.
    pub secrets: JsonFile,
    /// Validation of the current config (the form shows it, the review sums it up).
    pub problems: Vec<Problem>,
    /// Tag or path being typed (on the tag or the installer page).
    pub input: Option<(InputFor, String)>,
    /// The unsaved changes of config.json and secrets.json, as diff lines (secrets masked).
    pub pending: [Vec<String>; 2],
    /// Saving would change a file.
    pub pending_any: bool,
    /// Status message.
    pub message: Option<String>,
    /// Earlier versions of both files, for undo (newest last).
    pub history: Vec<(JsonFile, JsonFile)>,
    /// The key map, for messages that name keys.
    pub keys: crate::app::Keymap,
}

/// Undo steps kept.
const UNDO_KEPT: usize = 200;

/// What typed text is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFor {
    /// A tag to pull.
    PullTag,
    /// A path of an openshift-install to copy in.
    OverridePath,
}

impl Setup {
    /// The last save found a file changed on disk (and nothing saved since).
    pub fn conflict(&self) -> bool {
        matches!(self.saving, Saving::Conflict(_))
    }

    /// Loads the deployconfig's files. A config.json that does not parse opens in the raw editor.
    pub fn open(dc: Deployconfig, keys: crate::app::Keymap) -> Self {
        let files = read_again(&dc);
        Self::with_files(dc, keys, files)
    }

    /// The setup flow on files already read ([`read_again`], off the update loop).
    pub fn with_files(dc: Deployconfig, keys: crate::app::Keymap, files: Reloaded) -> Self {
        let Reloaded {
            config,
            secrets,
            override_present,
            override_aside,
        } = files;
        let mut s = Self {
            step: Page::Checks,
            dc,
            preflight: ChecksPage::default(),
            form: FormPage::default(),
            installer: InstallerPage {
                override_present,
                override_aside,
                ..Default::default()
            },
            tag: TagPage::default(),
            config,
            secrets,
            problems: Vec::new(),
            input: None,
            pending: [Vec::new(), Vec::new()],
            pending_any: false,
            saving: Saving::Idle,
            message: None,
            history: Vec::new(),
            keys,
        };
        s.refresh();
        // A config.json that does not parse is the first thing to fix: straight to the raw
        // editor, at the parser's line and column.
        if s.config.parse_error.is_some() && s.config.loaded.is_some() {
            s.step = Page::Config;
            s.open_raw();
        }
        s
    }

    /// The key for an action of the setup screen, for messages.
    pub fn key(&self, a: crate::app::Action) -> String {
        self.keys
            .key_for(crate::app::Scope::Setup, a)
            .unwrap_or_else(|| format!("({})", a.label()))
    }

    /// Remembers the files before a change, for undo.
    fn remember(&mut self) {
        self.history
            .push((self.config.clone(), self.secrets.clone()));
        if self.history.len() > UNDO_KEPT {
            self.history.remove(0);
        }
    }

    /// Undoes the last change to the files.
    pub fn undo(&mut self) {
        match self.history.pop() {
            Some((c, s)) => {
                self.config = c;
                self.secrets = s;
                self.refresh();
                self.message = Some(format!(
                    "undone ({} more step(s) to undo)",
                    self.history.len()
                ));
            }
            None => self.message = Some("nothing to undo".into()),
        }
    }

    /// Works out the pending changes' diffs, after each key or message (the views only read
    /// what this found, never a diff per frame; the disk is read by jobs, not here).
    pub fn look_around(&mut self) {
        self.pending = [self.diff(false), self.diff(true)];
        self.pending_any = self.config.changed() || self.secrets.changed();
    }

    /// Re-validates and rebuilds the form.
    pub fn refresh(&mut self) {
        self.look_around();
        self.problems = if self.config.parse_error.is_none() {
            let secrets = self
                .secrets
                .parse_error
                .is_none()
                .then_some(&self.secrets.value);
            validate::validate_with(&self.config.value, secrets)
        } else {
            vec![]
        };
        self.form.rows = build_rows(&self.config.value, &self.secrets.value);
        self.form.selected = self
            .form
            .selected
            .min(self.form.rows.len().saturating_sub(1));
    }

    /// Errors that block Start.
    pub fn blocking(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.to_string())
            .collect();
        if let Some((l, c, m)) = &self.config.parse_error {
            v.insert(
                0,
                format!("config.json: invalid JSON at line {l}, column {c}: {m}"),
            );
        }
        if let Some((l, c, m)) = &self.secrets.parse_error {
            v.push(format!(
                "secrets.json: invalid JSON at line {l}, column {c}: {m} ({} opens it in the raw editor, values masked)",
                self.key(crate::app::Action::RawSecrets)
            ));
        }
        // Every pre-flight error too (config.json and secrets.json are judged above, live).
        for c in self.preflight.results.iter().flatten() {
            if c.status == crate::check::Status::Error
                && c.check != "config.json"
                && c.check != "secrets.json"
            {
                v.push(format!("pre-flight: {}: {}", c.check, c.message));
            }
        }
        v
    }

    /// A fix for a pre-flight problem that is safe to apply here: (what it does, the file).
    pub fn safe_fix(&self) -> Option<(String, std::path::PathBuf)> {
        self.preflight.results.iter().flatten().find_map(|c| {
            if !c.key_too_open {
                return None;
            }
            let p = self.dc.dir.join("deploy.pem");
            let what = c
                .fix
                .clone()
                .unwrap_or_else(|| format!("chmod 600 {}", p.display()));
            Some((what, p))
        })
    }

    /// Applies the safe fix, if any (off the update); the checks run again after it.
    pub fn apply_fix(&mut self) -> Option<SetupTask> {
        let Some((what, _)) = self.safe_fix() else {
            self.message =
                Some("no pre-flight problem has a fix that is safe to apply here".into());
            return None;
        };
        self.message = Some(format!("{what}…"));
        self.preflight.results = None;
        Some(SetupTask::File(FileOp::KeyPrivate(what)))
    }

    /// Problems of a row's path.
    pub fn problems_of(&self, path: &str) -> Vec<&Problem> {
        self.problems.iter().filter(|p| p.path == path).collect()
    }

    /// The value of a row.
    pub fn value_of(&self, row: &Row) -> Option<String> {
        let Row::Field(Field { ptr, secret, .. }) = row else {
            return None;
        };
        let file = if *secret { &self.secrets } else { &self.config };
        file.value
            .pointer(ptr)
            .and_then(Value::as_str)
            .map(String::from)
    }

    /// Applies a background result.
    pub fn on_msg(&mut self, m: SetupMsg) -> Option<SetupTask> {
        match m {
            SetupMsg::Checks(c) => self.preflight.results = Some(c),
            SetupMsg::Versions {
                embedded,
                overridden,
            } => {
                // The job looked for the override: what it found is the latest word.
                self.installer.override_present = overridden.is_some();
                self.installer.versions = Some((embedded, overridden));
            }
            SetupMsg::Tags(t) => self.tag.tags = Some(t),
            SetupMsg::PullProgress(p) => self.tag.pulling = Some(p),
            SetupMsg::Candidate(Ok(v)) => {
                if let Some((_, version)) = self.installer.candidate.as_mut() {
                    *version = Some(v);
                }
            }
            SetupMsg::Candidate(Err(e)) => {
                let from = self
                    .installer
                    .candidate
                    .as_ref()
                    .map(|c| c.0.clone())
                    .unwrap_or_default();
                let drop = self.drop_candidate();
                self.message = Some(match e {
                    // It never got to run: missing, not executable, not readable.
                    TaskError::File(why) => format!("not copied: {why}; nothing was changed"),
                    e => format!(
                        "not copied: {from} does not run in the installer image ({e}); nothing was changed"
                    ),
                });
                return Some(drop);
            }
            SetupMsg::Adopted(r) => {
                self.installer.override_present |= r.is_ok();
                self.message = Some(match r {
                    Ok(m) => m,
                    Err(e) => e.to_string(),
                });
                return Some(SetupTask::Versions);
            }
            SetupMsg::PullDone(r) => {
                self.tag.pulling = None;
                self.message = Some(match r {
                    Ok(tag) => {
                        self.set_tag(&tag);
                        format!("pulled every stage image for {tag}; imagetag set to {tag}")
                    }
                    Err(PullFailure { message: e, tls }) if self.tag.tls_verify && tls => {
                        format!(
                            "pull failed on the registry's certificate (a TLS problem: self-signed, or the registry speaks plain HTTP): {e}. Press T to pull without checking it (--tls-verify=false, as the old script did; remembered for this run), or give the registry a CA the bastion trusts (/etc/containers/certs.d/<registry>/ca.crt)"
                        )
                    }
                    Err(e) => format!("pull failed: {}", e.message),
                });
                return Some(SetupTask::Tags);
            }
            SetupMsg::Reloaded(r) => self.apply_reload(*r),
            SetupMsg::Note(n) => self.message = Some(n),
            SetupMsg::File(done) => {
                self.installer.override_present = done.override_present;
                self.installer.override_aside = done.override_aside;
                if done.said.is_some() {
                    self.message = done.said;
                }
                return done.then;
            }
        }
        None
    }

    /// Writes `imagetag`.
    pub fn set_tag(&mut self, tag: &str) {
        if self.tag() != tag {
            self.remember();
        }
        if let Some(slot) = self.config.value.get_mut("imagetag") {
            *slot = Value::String(tag.to_string());
            self.refresh();
        }
    }

    /// `imagetag` from the current config.
    pub fn tag(&self) -> String {
        self.config
            .value
            .get("imagetag")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// The registry prefix from the current config.
    pub fn registry(&self) -> String {
        self.config
            .value
            .get("registryurl")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string()
    }
}
