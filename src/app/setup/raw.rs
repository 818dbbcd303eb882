//! The raw JSON editors: config.json, and secrets.json with its values masked until revealed.

use ratatui_textarea::{CursorMove, TextArea};
use serde_json::Value;

use super::Setup;

/// The raw JSON editor, while it is open.
pub struct RawEditor {
    /// The text being edited.
    pub area: TextArea<'static>,
    /// Which file it edits.
    pub file: RawFile,
    /// Esc was pressed on text that does not parse: the next key chooses (discard the raw
    /// edits, keep them unsaved, or any other key to keep editing).
    pub leaving: bool,
}

/// The file a raw editor edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawFile {
    /// config.json.
    Config,
    /// secrets.json; `masked`: its values are hidden, and nothing can be edited until they
    /// are revealed.
    Secrets {
        /// The values are hidden.
        masked: bool,
    },
}

impl RawFile {
    /// secrets.json?
    pub fn is_secrets(self) -> bool {
        matches!(self, RawFile::Secrets { .. })
    }

    /// Its values are hidden (read-only until revealed).
    pub fn masked(self) -> bool {
        matches!(self, RawFile::Secrets { masked: true })
    }

    /// The file's name.
    pub fn name(self) -> &'static str {
        match self {
            RawFile::Config => "config.json",
            RawFile::Secrets { .. } => "secrets.json",
        }
    }
}

impl RawEditor {
    fn new(file: RawFile, area: TextArea<'static>) -> Self {
        RawEditor {
            area,
            file,
            leaving: false,
        }
    }
}

impl Setup {
    /// The raw editor's file, when one is open.
    pub fn raw_file(&self) -> Option<RawFile> {
        self.form.raw.as_ref().map(|r| r.file)
    }

    /// Opens the raw JSON editor on config.json's current text (at the parse error, if any).
    pub fn open_raw(&mut self) {
        if let Some((false, text)) = &self.form.raw_kept {
            let text = text.clone();
            self.form.raw_kept = None;
            self.form.raw = Some(RawEditor::new(RawFile::Config, text_area(&text, None)));
            return;
        }
        let text = self.config.text();
        let area = text_area(&text, self.config.parse_error.as_ref());
        self.form.raw = Some(RawEditor::new(RawFile::Config, area));
    }

    /// Opens the raw editor on secrets.json, its values masked until revealed: a broken
    /// secrets.json can be fixed here, and never blocks saving config.json.
    pub fn open_raw_secrets(&mut self) {
        if let Some((true, text)) = &self.form.raw_kept {
            // The kept edits were made with the values shown.
            let text = text.clone();
            self.form.raw_kept = None;
            let file = RawFile::Secrets { masked: false };
            self.form.raw = Some(RawEditor::new(file, text_area(&text, None)));
            return;
        }
        let text = mask_json_values(&self.secrets.text());
        let area = text_area(&text, self.secrets.parse_error.as_ref());
        self.form.raw = Some(RawEditor::new(RawFile::Secrets { masked: true }, area));
        self.message = Some(format!(
            "secrets.json: values are masked; {} reveals them for editing",
            self.key(crate::app::Action::Reveal)
        ));
    }

    /// Shows the real values in the raw secrets.json editor (the cursor stays).
    pub fn reveal_raw(&mut self) {
        let text = self.secrets.text();
        let Some(raw) = self.form.raw.as_mut().filter(|r| r.file.masked()) else {
            return;
        };
        let ratatui_textarea::DataCursor(row, col) = raw.area.cursor();
        let mut fresh = text_area(&text, None);
        fresh.move_cursor(CursorMove::Jump(row as u16, col as u16));
        raw.area = fresh;
        raw.file = RawFile::Secrets { masked: false };
        self.message = Some("secrets.json values shown; edit, then Esc".into());
    }

    /// Esc in the raw editor: back to the form with the text if it parses; otherwise asks
    /// (in the message line) whether to discard the raw edits, keep them unsaved, or go on.
    pub fn leave_raw(&mut self) {
        if self.close_raw() {
            return;
        }
        if let Some(raw) = self.form.raw.as_mut() {
            raw.leaving = true;
        }
        let at = self.message.take().unwrap_or_default();
        self.message = Some(format!(
            "{at}. d: discard these raw edits (back to the form as it was) · k: keep them unsaved and go back (F2 reopens them; they are not saved) · any other key: keep editing"
        ));
    }

    /// Drops the raw editor's edits: the form shows the file as it was, and the parse error
    /// it left goes with it.
    pub fn discard_raw(&mut self) {
        let Some(raw) = self.form.raw.take() else {
            return;
        };
        self.forget_raw_parse_error(raw.file);
        self.form.raw_kept = None;
        self.message = Some(format!("raw edits of {} discarded", raw.file.name()));
        self.refresh();
    }

    /// The raw text's parse error goes once the raw text is out of the way (the form shows the
    /// file as it was, which parses).
    fn forget_raw_parse_error(&mut self, raw: RawFile) {
        let file = self.file_mut(raw);
        if serde_json::from_str::<Value>(&file.base_text).is_ok() {
            file.parse_error = None;
        }
    }

    /// The loaded file a raw editor edits.
    fn file_mut(&mut self, raw: RawFile) -> &mut super::JsonFile {
        if raw.is_secrets() {
            &mut self.secrets
        } else {
            &mut self.config
        }
    }

    /// Leaves the raw editor keeping its text (which does not parse) aside, unsaved.
    pub fn keep_raw_unsaved(&mut self) {
        let Some(raw) = self.form.raw.take() else {
            return;
        };
        let secrets = raw.file.is_secrets();
        self.form.raw_kept = Some((secrets, raw.area.lines().join("\n")));
        self.forget_raw_parse_error(raw.file);
        self.message = Some(format!(
            "your raw edits of {} are kept aside, unsaved (they do not parse): {} reopens them",
            raw.file.name(),
            self.key(if secrets {
                crate::app::Action::RawSecrets
            } else {
                crate::app::Action::RawEditor
            })
        ));
        self.refresh();
    }

    /// Closes the raw editor, keeping its text if it parses; otherwise stays, with the error.
    pub fn close_raw(&mut self) -> bool {
        let Some(raw) = self.form.raw.take() else {
            return true;
        };
        if raw.file.masked() {
            // Nothing could be edited while masked.
            return true;
        }
        let base_text = &self.file_mut(raw.file).base_text;
        let mut text = raw.area.lines().join("\n");
        if base_text.ends_with('\n') {
            text.push('\n');
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => {
                if text != self.file_mut(raw.file).text() {
                    self.remember();
                }
                let file = self.file_mut(raw.file);
                file.base_text = text;
                file.base = v.clone();
                file.value = v;
                file.parse_error = None;
                self.form.raw_kept = None;
                // The parse error it showed is gone with its cause.
                if self
                    .message
                    .as_deref()
                    .is_some_and(|m| m.contains("invalid JSON") || m.contains("masked"))
                {
                    self.message = None;
                }
                self.refresh();
                true
            }
            Err(e) => {
                let (l, c) = (e.line(), e.column());
                let mut raw = raw;
                raw.area.move_cursor(CursorMove::Jump(
                    l.saturating_sub(1) as u16,
                    c.saturating_sub(1) as u16,
                ));
                let name = raw.file.name();
                self.file_mut(raw.file).parse_error = Some(crate::config::json_error(&e));
                self.form.raw = Some(raw);
                self.message = Some(format!(
                    "{name}: invalid JSON at line {l}, column {c}: the cursor is there"
                ));
                false
            }
        }
    }
}

/// A text editor on `text`, with line numbers, the cursor at a parse error if given.
fn text_area(text: &str, at: Option<&(usize, usize, String)>) -> TextArea<'static> {
    let mut area = TextArea::new(text.lines().map(String::from).collect());
    area.set_line_number_style(
        ratatui::style::Style::new().add_modifier(ratatui::style::Modifier::DIM),
    );
    if let Some((l, c, _)) = at {
        area.move_cursor(CursorMove::Jump(
            l.saturating_sub(1) as u16,
            c.saturating_sub(1) as u16,
        ));
    }
    area
}

/// JSON text with every string *value* (not key) replaced by `••••••`; works on text that does
/// not parse, too.
pub fn mask_json_values(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '"' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // A string literal: find its end (escapes skipped).
        let mut j = i + 1;
        while j < chars.len() && chars[j] != '"' && chars[j] != '\n' {
            j += if chars[j] == '\\' { 2 } else { 1 };
        }
        let end = j.min(chars.len().saturating_sub(1));
        let next = chars[end + 1..].iter().find(|c| !c.is_whitespace());
        // A key, or an empty value (`""`: nothing to hide, and "••••••" would say it is set).
        if next == Some(&':') || end <= i + 1 {
            out.extend(&chars[i..=end]);
        } else {
            out.push_str("\"••••••\"");
        }
        i = end + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_are_masked_keys_and_empty_values_are_not() {
        let t = "{\n  \"vsphere_password\": \"s3cret\",\n  \"registrytoken\": \"\"\n}";
        assert_eq!(
            super::mask_json_values(t),
            "{\n  \"vsphere_password\": \"••••••\",\n  \"registrytoken\": \"\"\n}"
        );
    }
}
