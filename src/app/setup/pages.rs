//! The setup flow's state, page by page: what belongs to one page sits in that page's struct,
//! and [`super::Setup`] holds what the pages share (the files, their problems, saving, undo).

use std::collections::BTreeSet;

use super::{Editing, RawEditor, Row, TagInfo, TaskError, Versions};
use crate::check::Check;

/// Page 1: the pre-flight checks.
#[derive(Default)]
pub struct ChecksPage {
    /// The results (`None` while they run).
    pub results: Option<Vec<Check>>,
}

/// Page 2: the form over config.json and secrets.json, and the raw JSON editor.
#[derive(Default)]
pub struct FormPage {
    /// Form rows.
    pub rows: Vec<Row>,
    /// Selected row.
    pub selected: usize,
    /// Field being edited.
    pub editing: Option<Editing>,
    /// Raw JSON editor, when open.
    pub raw: Option<RawEditor>,
    /// Raw edits that do not parse, kept unsaved (secrets.json?, the text): the raw editor
    /// reopens on them; nothing saves them.
    pub raw_kept: Option<(bool, String)>,
    /// Secret fields shown in clear.
    pub revealed: BTreeSet<String>,
    /// `/`: only the fields that match (and their group titles) are listed.
    pub filter: Option<crate::app::Filter>,
}

impl FormPage {
    /// The form rows listed: every row, or with a `/` filter the fields whose label or path
    /// matches and the titles of their groups.
    pub fn listed_rows(&self) -> Vec<usize> {
        let Some(f) = &self.filter else {
            return (0..self.rows.len()).collect();
        };
        let mut out = Vec::new();
        let mut header: Option<usize> = None;
        for (i, r) in self.rows.iter().enumerate() {
            match r {
                Row::Header(h) => {
                    header = Some(i);
                    if f.matches(h) {
                        out.push(i);
                        header = None;
                    }
                }
                Row::Field(fl) if f.matches(&fl.label) || f.matches(&fl.path) => {
                    if let Some(h) = header.take() {
                        out.push(h);
                    }
                    out.push(i);
                }
                Row::Field(_) => {}
            }
        }
        out
    }

    /// Keeps the selection on a listed field.
    pub fn keep_selection_listed(&mut self) {
        let listed = self.listed_rows();
        if !listed.contains(&self.selected) {
            self.selected = listed
                .iter()
                .copied()
                .find(|i| matches!(self.rows[*i], Row::Field(_)))
                .or(listed.first().copied())
                .unwrap_or(self.selected);
        }
    }
}

/// Page 3: which openshift-install the run uses.
#[derive(Default)]
pub struct InstallerPage {
    /// Installer versions: embedded, override (`None` until looked at).
    pub versions: Option<Versions>,
    /// An `openshift-install` override is in the deployconfig (as last looked at).
    pub override_present: bool,
    /// One is set aside (`openshift-install.stage2-tui-disabled`).
    pub override_aside: bool,
    /// An openshift-install being copied in: (where from, its `version` once checked).
    pub candidate: Option<(String, Option<String>)>,
}

/// Page 4: the stage images' tag.
pub struct TagPage {
    /// Local tags (`None` until looked at).
    pub tags: Option<Result<Vec<TagInfo>, TaskError>>,
    /// Selected tag row.
    pub selected: usize,
    /// Latest pull progress.
    pub pulling: Option<String>,
    /// Pulls check the registry's certificate (`false`: `--tls-verify=false`).
    pub tls_verify: bool,
    /// The last tag pulled, to pull again without TLS verification.
    pub last_pull: Option<String>,
}

impl Default for TagPage {
    fn default() -> Self {
        Self {
            tags: None,
            selected: 0,
            pulling: None,
            tls_verify: true,
            last_pull: None,
        }
    }
}
