//! The files the setup flow changes: config.json and secrets.json (loaded, rendered, saved
//! safely, diffed) and the openshift-install override.

use std::path::PathBuf;

use serde_json::Value;

use super::{FileOp, InputFor, Setup, SetupTask};
use crate::config::save::{self, Loaded};
use crate::config::{Deployconfig, doc};

/// One JSON file being edited.
#[derive(Clone)]
pub struct JsonFile {
    /// As loaded (for change detection and backup).
    pub loaded: Option<Loaded>,
    /// Text the current value is rendered against (the file, or the last raw edit).
    pub base_text: String,
    /// Value of `base_text`.
    pub base: Value,
    /// Current value.
    pub value: Value,
    /// Parse error of the file or of the raw text: (line, column, message).
    pub parse_error: Option<(usize, usize, String)>,
}

impl JsonFile {
    pub(super) fn load(path: &std::path::Path) -> Self {
        match save::load(path) {
            Ok(l) => {
                let (value, parse_error) = match serde_json::from_str::<Value>(&l.text) {
                    Ok(v) => (v, None),
                    Err(e) => (Value::Null, Some(crate::config::json_error(&e))),
                };
                Self {
                    base_text: l.text.clone(),
                    base: value.clone(),
                    value,
                    parse_error,
                    loaded: Some(l),
                }
            }
            Err(e) => Self {
                loaded: None,
                base_text: String::new(),
                base: Value::Null,
                value: Value::Null,
                parse_error: Some((1, 1, format!("cannot read {}: {e}", path.display()))),
            },
        }
    }

    /// The text to save.
    pub fn text(&self) -> String {
        if self.parse_error.is_some() {
            return self.base_text.clone();
        }
        doc::render(&self.base_text, &self.base, &self.value)
    }

    /// True when saving would change the file.
    pub fn changed(&self) -> bool {
        self.loaded.as_ref().is_some_and(|l| l.text != self.text())
    }
}

/// The override moved aside by "use the embedded installer" (restored by "use the override").
pub fn disabled_override(dc: &Deployconfig) -> PathBuf {
    dc.dir.join("openshift-install.stage2-tui-disabled")
}

impl Setup {
    /// Use the embedded installer: move an override aside (reversibly).
    pub fn use_embedded(&mut self) -> Option<SetupTask> {
        if !self.installer.override_present {
            self.message = Some(
                "the embedded openshift-install is already in use (no override in the folder)"
                    .into(),
            );
            return None;
        }
        Some(SetupTask::File(FileOp::SetAside {
            back: self.key(crate::app::Action::UseOverride),
        }))
    }

    /// Use the override: bring a moved-aside one back, or ask for a file to copy in.
    pub fn use_override(&mut self) -> Option<SetupTask> {
        if self.installer.override_present {
            self.message = Some("the override is already in use".into());
            None
        } else if self.installer.override_aside {
            Some(SetupTask::File(FileOp::PutBack))
        } else {
            self.input = Some((InputFor::OverridePath, String::new()));
            None
        }
    }

    /// Where a copied-in openshift-install waits while it is checked: the private state folder,
    /// so nothing in the deployconfig changes before the operator says yes.
    pub fn candidate_path(&self) -> PathBuf {
        self.dc.state_dir().join("openshift-install.candidate")
    }

    /// Takes an openshift-install to copy in as the override (must be executable): it is copied
    /// aside and its `version` run in the installer image; the operator is then asked.
    pub fn copy_override(&mut self, from: &str) -> Option<SetupTask> {
        let src = std::path::Path::new(from.trim());
        // Whether it is an executable file, the copy (hundreds of MB) and the check all happen
        // in the background ([`stage_candidate`]).
        self.installer.candidate = Some((src.display().to_string(), None));
        self.message = Some(format!(
            "checking {}: copying it aside and running its `version` in the installer image…",
            src.display()
        ));
        Some(SetupTask::CheckCandidate(src.to_path_buf()))
    }

    /// The checked candidate becomes the override (the operator said yes); the copy runs in
    /// the background ([`adopt`]).
    pub fn adopt_candidate(&mut self) -> Option<SetupTask> {
        let (from, _) = self.installer.candidate.take()?;
        self.message = Some(format!(
            "copying {from} to {}…",
            self.dc.installer_override().display()
        ));
        Some(SetupTask::AdoptCandidate(from))
    }

    /// Drops the candidate (the operator said no, or it did not run): its copy is removed off
    /// the update.
    pub fn drop_candidate(&mut self) -> SetupTask {
        self.installer.candidate = None;
        SetupTask::File(FileOp::DropCandidate(self.candidate_path()))
    }

    /// The changed files, detached from the setup state so they can be written off the update
    /// loop ([`write_files`]).
    pub fn files_to_save(&self) -> Vec<SaveFile> {
        [
            ("config.json", &self.config),
            ("secrets.json", &self.secrets),
        ]
        .into_iter()
        .filter_map(|(name, f)| {
            // Rendered once: what `changed` compares is what is written.
            let loaded = f.loaded.clone()?;
            let text = f.text();
            (loaded.text != text).then_some(SaveFile { name, loaded, text })
        })
        .collect()
    }

    /// Takes what saving found: the new stamps of the files written. Err: a message (a file
    /// changed on disk meanwhile names the keys that resolve it).
    pub fn saved(&mut self, r: Saved) -> Result<Vec<String>, super::SaveFailed> {
        let mut names = Vec::new();
        for (name, nl) in r.saved {
            let file = if name == "config.json" {
                &mut self.config
            } else {
                &mut self.secrets
            };
            file.loaded = Some(nl);
            names.push(name.to_string());
        }
        match r.failed {
            Some((name, save::SaveError::ChangedOnDisk(_))) => Err(super::SaveFailed {
                message: format!(
                    "{name} changed on disk since it was loaded (a stage rewrites it): press {} to save yours over it, {} to reload it from disk",
                    self.key(crate::app::Action::Overwrite),
                    self.key(crate::app::Action::Reload)
                ),
                conflict: true,
            }),
            Some((_, e)) => Err(super::SaveFailed {
                message: e.to_string(),
                conflict: false,
            }),
            None => Ok(names),
        }
    }

    /// What saving over the files that changed on disk would drop: per file, the lines on disk
    /// that are not in the edit (`-`) and the edit's lines that are not on disk (`+`), secrets
    /// masked; at most `max` lines each.
    pub fn overwrite_diff(&self, max: usize) -> Vec<String> {
        let mut out = Vec::new();
        for (name, f, path) in [
            ("config.json", &self.config, self.dc.config_json()),
            ("secrets.json", &self.secrets, self.dc.secrets_json()),
        ] {
            let ours = f.text();
            let Ok(disk) = crate::config::read_text(&path) else {
                continue;
            };
            if f.loaded.as_ref().is_some_and(|l| l.text == disk) || disk == ours {
                continue;
            }
            let mut secrets = crate::config::secret_values_in(&self.secrets.value);
            if let Ok(v) = serde_json::from_str::<Value>(&disk)
                && name == "secrets.json"
            {
                secrets.extend(crate::config::secret_values_in(&v));
            }
            let mine: std::collections::HashSet<&str> = ours.lines().collect();
            let theirs: std::collections::HashSet<&str> = disk.lines().collect();
            let mut lines: Vec<String> = disk
                .lines()
                .filter(|l| !mine.contains(l))
                .map(|l| format!("- {}", l.trim()))
                .chain(
                    ours.lines()
                        .filter(|l| !theirs.contains(l))
                        .map(|l| format!("+ {}", l.trim())),
                )
                .map(|l| crate::text::visible(&crate::text::mask(&l, &secrets)).into_owned())
                .collect();
            let more = lines.len().saturating_sub(max);
            lines.truncate(max);
            out.push(format!("{name} (- on disk now, + yours):"));
            out.extend(lines.into_iter().map(|l| format!("  {l}")));
            if more > 0 {
                out.push(format!("  +{more} more"));
            }
        }
        out
    }

    /// Asks for both files to be read again from disk (off the update; unsaved edits are
    /// dropped when they come).
    pub fn reload(&mut self) -> SetupTask {
        self.message = Some("reading config.json and secrets.json again…".into());
        SetupTask::Reload
    }

    /// Both files as read again from disk replace the edited ones.
    pub fn apply_reload(&mut self, r: super::Reloaded) {
        self.config = r.config;
        self.secrets = r.secrets;
        self.installer.override_present = r.override_present;
        self.installer.override_aside = r.override_aside;
        if self.conflict() {
            self.saving = super::Saving::Idle;
        }
        self.history.clear();
        self.form.raw = None;
        self.refresh();
        self.message = Some(match &self.config.parse_error {
            Some((l, c, m)) => format!(
                "reloaded from disk: config.json does not parse (line {l}, column {c}: {m}); {} opens the raw editor at the error",
                self.key(crate::app::Action::RawEditor)
            ),
            None => "reloaded config.json and secrets.json from disk".into(),
        });
    }

    /// What unsaved changes would be lost (empty when there are none), one line per file.
    pub fn unsaved(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, file, secret) in [
            ("config.json", &self.config, false),
            ("secrets.json", &self.secrets, true),
        ] {
            if file.changed() {
                let d = self.diff(secret);
                out.push(format!("{name}: {} changed line(s)", d.len()));
                out.extend(d.into_iter().take(6).map(|l| format!("  {l}")));
            }
        }
        if let Some((secrets, _)) = &self.form.raw_kept {
            out.push(format!(
                "raw edits of {} kept aside (they do not parse)",
                if *secrets {
                    "secrets.json"
                } else {
                    "config.json"
                }
            ));
        }
        if let Some(raw) = self.raw_file() {
            out.push(format!("the raw {} editor's text", raw.name()));
        }
        out
    }

    /// A unified diff of a file's pending change (secret values masked).
    pub fn diff(&self, secret: bool) -> Vec<String> {
        let file = if secret { &self.secrets } else { &self.config };
        let Some(l) = &file.loaded else { return vec![] };
        let new = file.text();
        let d = similar::TextDiff::from_lines(l.text.as_str(), new.as_str());
        let mut out = Vec::new();
        for change in d.iter_all_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Delete => "-",
                similar::ChangeTag::Insert => "+",
                similar::ChangeTag::Equal => continue,
            };
            let mut line = change.value().trim_end_matches('\n').to_string();
            if secret && let Some((k, _)) = line.split_once(':') {
                line = format!("{k}: ••••••");
            }
            out.push(format!("{sign} {line}"));
        }
        out
    }
}

/// Copies an openshift-install aside to `cand`, in a private folder (the deployconfig's state
/// folder; blocking file work: run it off the update loop).
pub fn stage_candidate(
    src: &std::path::Path,
    cand: &std::path::Path,
) -> Result<(), super::TaskError> {
    use std::os::unix::fs::PermissionsExt;
    let exec = std::fs::metadata(src)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .map_err(|e| super::TaskError::File(format!("{}: {e}", src.display())))?;
    if !exec {
        return Err(super::TaskError::File(format!(
            "{} is not an executable file (chmod +x it first)",
            src.display()
        )));
    }
    std::fs::read(src)
        .and_then(|bytes| {
            let dir = cand.parent().unwrap_or(std::path::Path::new("."));
            crate::safefs::private_dir(dir)?;
            crate::safefs::Dir::open(dir)?.write_atomic(
                cand.file_name().unwrap_or_default(),
                &bytes,
                0o755,
            )
        })
        .map_err(|e| super::TaskError::File(format!("cannot copy {} aside: {e}", src.display())))
}

/// Reads config.json and secrets.json again, and looks at the installer files (blocking: run it
/// off the update loop).
pub fn read_again(dc: &Deployconfig) -> super::Reloaded {
    let (override_present, override_aside) = installer_files(dc);
    super::Reloaded {
        config: JsonFile::load(&dc.config_json()),
        secrets: JsonFile::load(&dc.secrets_json()),
        override_present,
        override_aside,
    }
}

/// Whether an override is there, and one set aside.
fn installer_files(dc: &Deployconfig) -> (bool, bool) {
    (
        dc.installer_override().exists(),
        disabled_override(dc).exists(),
    )
}

/// Carries out a file operation of the setup flow (blocking: run it off the update loop), and
/// looks at the installer files afterwards.
pub fn file_op(dc: &Deployconfig, op: super::FileOp) -> super::FileDone {
    let o = dc.installer_override();
    let aside = disabled_override(dc);
    let (said, then) = match op {
        FileOp::SetAside { back } => (
            Some(match std::fs::rename(&o, &aside) {
                Ok(()) => format!(
                    "override moved aside to {} ({back} brings it back)",
                    aside.display()
                ),
                Err(e) => format!("cannot move {} aside: {e}", o.display()),
            }),
            Some(SetupTask::Versions),
        ),
        FileOp::PutBack => (
            Some(match std::fs::rename(&aside, &o) {
                Ok(()) => format!("override {} restored", o.display()),
                Err(e) => format!("cannot restore {}: {e}", o.display()),
            }),
            Some(SetupTask::Versions),
        ),
        FileOp::KeyPrivate(what) => {
            use std::os::unix::fs::PermissionsExt;
            // By descriptor, never through a link planted in the deployconfig.
            let r = crate::safefs::Dir::open(&dc.dir)
                .and_then(|d| d.open_file("deploy.pem".as_ref()))
                .and_then(|f| f.set_permissions(std::fs::Permissions::from_mode(0o600)));
            (
                Some(match r {
                    Ok(()) => format!("done: {what}"),
                    Err(e) => format!("{what} failed: {e}"),
                }),
                Some(SetupTask::Checks),
            )
        }
        FileOp::DropCandidate(cand) => {
            let _ = std::fs::remove_file(cand);
            (None, None)
        }
    };
    let (override_present, override_aside) = installer_files(dc);
    super::FileDone {
        said,
        override_present,
        override_aside,
        then,
    }
}

/// Copies the checked candidate in as the override, without following a link a stage may have
/// planted, and removes the candidate (blocking file work: run it off the update loop).
pub fn adopt(
    dc: &Deployconfig,
    from: &str,
    cand: &std::path::Path,
) -> Result<String, super::TaskError> {
    let dst = dc.installer_override();
    let copy = std::fs::read(cand).and_then(|bytes| {
        crate::safefs::Dir::open(&dc.dir)?.write_atomic("openshift-install".as_ref(), &bytes, 0o755)
    });
    let _ = std::fs::remove_file(cand);
    match copy {
        Ok(()) => Ok(format!("copied {from} to {}", dst.display())),
        Err(e) => Err(super::TaskError::File(format!(
            "cannot copy to {}: {e}",
            dst.display()
        ))),
    }
}

/// A file to save: where, its stamp when loaded, and the new text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveFile {
    /// "config.json" or "secrets.json".
    pub name: &'static str,
    /// The file as loaded (its path and stamp: a file changed since is not clobbered).
    pub loaded: Loaded,
    /// The text to write.
    pub text: String,
}

/// What saving found: the files written (with their new stamps), and the first that was not.
#[derive(Debug)]
pub struct Saved {
    /// Written, in order.
    pub saved: Vec<(&'static str, Loaded)>,
    /// The first file not written, and why (the ones after it were not tried).
    pub failed: Option<(&'static str, save::SaveError)>,
}

/// Writes the files atomically, each with a backup beside it (blocking file work with fsync:
/// run it off the update loop). `overwrite` writes over a file that changed on disk.
pub fn write_files(files: Vec<SaveFile>, overwrite: bool) -> Saved {
    let mut out = Saved {
        saved: Vec::new(),
        failed: None,
    };
    for f in files {
        match save::save(&f.loaded, &f.text, overwrite) {
            Ok(nl) => out.saved.push((f.name, nl)),
            Err(e) => {
                out.failed = Some((f.name, e));
                break;
            }
        }
    }
    out
}
