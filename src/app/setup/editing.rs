//! Editing the config page: a field's editor opens and commits, nodes are added and removed,
//! problems visited, text keys typed, and the rows the filter lists.

use super::*;

impl Setup {
    /// Starts editing the selected field.
    pub fn edit(&mut self) {
        let Some(row) = self.form.rows.get(self.form.selected).cloned() else {
            return;
        };
        let Row::Field(Field {
            readonly,
            multiline,
            label,
            ..
        }) = &row
        else {
            return;
        };
        if *readonly {
            self.message = Some(format!(
                "{label} is filled by 6.add-ignition and not edited here"
            ));
            return;
        }
        let value = self.value_of(&row).unwrap_or_default();
        let mut area = TextArea::new(value.split('\n').map(String::from).collect());
        area.move_cursor(CursorMove::Bottom);
        area.move_cursor(CursorMove::End);
        self.form.editing = Some(Editing {
            row: self.form.selected,
            area,
            multiline: *multiline,
        });
    }

    /// Writes the edited text into the value.
    pub fn commit(&mut self) {
        let Some(ed) = self.form.editing.take() else {
            return;
        };
        let text = ed.area.lines().join("\n");
        if self
            .value_of(&self.form.rows[ed.row.min(self.form.rows.len().saturating_sub(1))])
            .as_deref()
            != Some(text.as_str())
        {
            self.remember();
        }
        if let Some(Row::Field(Field { ptr, secret, .. })) = self.form.rows.get(ed.row).cloned() {
            let file = if secret {
                &mut self.secrets
            } else {
                &mut self.config
            };
            if let Some(slot) = file.value.pointer_mut(&ptr) {
                *slot = Value::String(text);
            }
        }
        self.refresh();
    }

    /// Adds a node to the selected row's group (a node's row, or the group's title, which is
    /// all an empty group has).
    pub fn add_node(&mut self) {
        let group = match self.form.rows.get(self.form.selected) {
            Some(Row::Field(Field { group: Some(g), .. })) => Some(g.clone()),
            Some(Row::Header(h)) => validate::NODE_GROUPS
                .iter()
                .find(|(g, _)| h.starts_with(&format!("{g} (")))
                .map(|(g, _)| (*g).to_string()),
            _ => None,
        };
        let Some(g) = group else {
            self.message =
                Some("select a node group (its title or a node's row) to add a node to it".into());
            return;
        };
        if self.config.value.get(&g).is_some_and(Value::is_array) {
            self.remember();
        }
        if let Some(list) = self.config.value.get_mut(&g).and_then(Value::as_array_mut) {
            list.push(serde_json::json!({ "hostname": "", "ipaddress": "" }));
            let n = list.len() - 1;
            self.refresh();
            if let Some(i) = self.form.rows.iter().position(|r| matches!(r, Row::Field(Field { ptr, .. }) if *ptr == format!("/{g}/{n}/hostname"))) {
                self.form.selected = i;
            }
        }
    }

    /// Removes the node of the selected row.
    pub fn remove_node(&mut self) {
        let Some(Row::Field(Field {
            group: Some(g),
            ptr,
            ..
        })) = self.form.rows.get(self.form.selected).cloned()
        else {
            self.message = Some("select a node's row to remove it".into());
            return;
        };
        let idx: Option<usize> = ptr.split('/').nth(2).and_then(|i| i.parse().ok());
        if idx.is_some() {
            self.remember();
        }
        if let (Some(list), Some(i)) = (
            self.config.value.get_mut(&g).and_then(Value::as_array_mut),
            idx,
        ) {
            list.remove(i);
            self.message = Some(format!("removed {g}[{i}]"));
            self.refresh();
        }
    }

    /// Selects the first row with an error.
    pub fn next_problem(&mut self) {
        let n = self.form.rows.len();
        for k in 1..=n {
            let i = (self.form.selected + k) % n;
            // A problem of a whole group (`masters`) leads to the group's first row.
            if let Row::Field(Field { path, .. }) = &self.form.rows[i]
                && self
                    .problems
                    .iter()
                    .any(|p| p.path == *path || path.starts_with(&format!("{}[", p.path)))
            {
                self.form.selected = i;
                return;
            }
        }
        self.message = Some("no problems left".into());
    }

    /// Handles keys while a text editor (field, raw) or an input is open. True if consumed.
    pub fn on_text_key(&mut self, k: KeyEvent) -> bool {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        // The form's `/` filter: typed here; Esc drops it before it would leave the page.
        if self.step == Page::Config && self.form.raw.is_none() && self.form.editing.is_none() {
            if crate::app::Filter::key(&mut self.form.filter, &k) {
                self.form.keep_selection_listed();
                return true;
            }
            if k.code == KeyCode::Esc && self.form.filter.take().is_some() {
                self.message = Some("filter cleared: every field is listed".into());
                return true;
            }
        }
        if self.input.is_some() {
            match k.code {
                KeyCode::Esc => self.input = None,
                KeyCode::Backspace => {
                    if let Some((_, t)) = self.input.as_mut() {
                        t.pop();
                    }
                }
                KeyCode::Char(c) if !ctrl => {
                    if let Some((_, t)) = self.input.as_mut() {
                        t.push(c);
                    }
                }
                _ => {}
            }
            return true;
        }
        if let Some(ed) = &mut self.form.editing {
            match k.code {
                KeyCode::Esc => self.form.editing = None,
                KeyCode::Enter if !ed.multiline => self.commit(),
                KeyCode::Char('s') if ctrl => self.commit(),
                _ => {
                    ed.area.input(k);
                }
            }
            return true;
        }
        if self.form.raw.is_some() && self.step == Page::Config {
            return self.on_raw_key(k);
        }
        false
    }

    /// A key in the raw JSON editor. True if consumed (F1 goes on to the app's help).
    fn on_raw_key(&mut self, k: KeyEvent) -> bool {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let reveal =
            self.keys.action(crate::app::Scope::Setup, &k) == Some(crate::app::Action::Reveal);
        let editing_key = matches!(
            k.code,
            KeyCode::Char(_) | KeyCode::Backspace | KeyCode::Delete | KeyCode::Enter | KeyCode::Tab
        ) && !(ctrl && k.code == KeyCode::Char('s'));
        let Some(raw) = self.form.raw.as_mut() else {
            return false;
        };
        let masked = raw.file.masked();
        if std::mem::take(&mut raw.leaving) {
            match k.code {
                KeyCode::Char('d') => self.discard_raw(),
                KeyCode::Char('k') => self.keep_raw_unsaved(),
                _ => self.message = Some("still editing: the text does not parse yet".into()),
            }
            return true;
        }
        match k.code {
            KeyCode::Esc => self.leave_raw(),
            KeyCode::Char('s') if ctrl => self.leave_raw(),
            // The app's help (F1) shows the raw editor's keys too.
            KeyCode::F(1) => return false,
            KeyCode::Char('z') if ctrl && !masked => {
                if let Some(raw) = self.form.raw.as_mut()
                    && !raw.area.undo()
                {
                    self.message = Some("nothing to undo".into());
                }
            }
            KeyCode::Char('y') if ctrl && !masked => {
                if let Some(raw) = self.form.raw.as_mut()
                    && !raw.area.redo()
                {
                    self.message = Some("nothing to redo".into());
                }
            }
            _ if masked && reveal => self.reveal_raw(),
            _ if masked && editing_key => {
                self.message = Some(format!(
                    "the values are masked: {} reveals them before you edit",
                    self.key(crate::app::Action::Reveal)
                ));
            }
            _ => {
                if let Some(raw) = self.form.raw.as_mut() {
                    raw.area.input(k);
                }
            }
        }
        true
    }
}
