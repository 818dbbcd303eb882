//! The config page: the form (rows, the field editor, the problems box) and the raw editor.

use super::*;

pub(super) fn masked(s: &Setup, f: &Field, value: &str) -> String {
    if f.secret && !s.form.revealed.contains(&f.ptr) {
        if value.is_empty() {
            "(empty)".into()
        } else {
            "••••••••".into()
        }
    } else {
        let one = value.replace('\n', "⏎");
        if one.chars().count() > 80 {
            format!("{}…", one.chars().take(80).collect::<String>())
        } else {
            one
        }
    }
}

pub(super) fn config(f: &mut Frame, app: &App, s: &Setup, area: Rect, hits: &mut Hits) {
    if let Some(editor) = &s.form.raw {
        raw_editor(f, app, s, &editor.area, editor.file, area);
        return;
    }
    let errors = s
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warnings = s.problems.len() - errors;
    let [form, summary] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(
            ((s.problems.len() as u16) + 3)
                .clamp(3, 8)
                .min(area.height / 3)
                .max(3),
        ),
    ])
    .areas(area);
    let b = block(
        app,
        format!(
            " config.json{}{} ",
            if s.pending_any {
                " (changed, not saved)"
            } else {
                ""
            },
            match &s.form.filter {
                None => String::new(),
                Some(flt) if flt.typing => format!("  /{}▏", crate::text::visible(&flt.query)),
                Some(flt) => format!("  /{} (Esc: all)", crate::text::visible(&flt.query)),
            }
        ),
        true,
    );
    let inner = b.inner(form);
    f.render_widget(b, form);
    form_rows(f, app, s, inner, hits);
    problems(f, app, s, errors, warnings, summary);
    if let Some(ed) = &s.form.editing {
        field_editor(f, app, s, ed, area);
    }
}

/// The raw JSON editor of config.json or (masked) secrets.json.
pub(super) fn raw_editor(
    f: &mut Frame,
    app: &App,
    s: &Setup,
    area_ta: &ratatui_textarea::TextArea<'static>,
    raw: crate::app::setup::RawFile,
    area: Rect,
) {
    let t = app.theme();
    let name = raw.name();
    let file = if raw.is_secrets() {
        &s.secrets
    } else {
        &s.config
    };
    let masked = if raw.masked() { ", values masked" } else { "" };
    let title = match &file.parse_error {
        Some((l, c, m)) => {
            format!(" {name} (raw{masked}) — invalid JSON at line {l}, column {c}: {m} ")
        }
        None => format!(" {name} (raw{masked}) "),
    };
    let b = block(app, title, true).border_style(if file.parse_error.is_some() {
        t.failed
    } else {
        t.border_focused
    });
    let inner = b.inner(area);
    f.render_widget(b, area);
    f.render_widget(area_ta, inner);
}

/// The form's rows around the selected one.
pub(super) fn form_rows(f: &mut Frame, app: &App, s: &Setup, inner: Rect, hits: &mut Hits) {
    let t = app.theme();
    let rows = inner.height as usize;
    // Only the listed rows (a `/` filter may hide some).
    let listed = s.form.listed_rows();
    let at = listed
        .iter()
        .position(|i| *i == s.form.selected)
        .unwrap_or(0);
    let first = at
        .saturating_sub(rows / 2)
        .min(listed.len().saturating_sub(rows));
    if listed.is_empty() && rows > 0 {
        f.render_widget(
            Paragraph::new(Line::styled(
                "no field matches (Esc lists them all)",
                app.theme().dim,
            )),
            Rect::new(inner.x, inner.y, inner.width, 1),
        );
    }
    // As wide as the longest label shown, up to half the room; a longer one ends in "…".
    let longest = s
        .form
        .rows
        .iter()
        .filter_map(|r| match r {
            Row::Field(fl) => Some(fl.label.chars().count()),
            Row::Header(_) => None,
        })
        .max()
        .unwrap_or(20);
    let label_w = longest.min(inner.width as usize / 2).max(8);
    for (k, i) in listed.iter().copied().skip(first).enumerate().take(rows) {
        let r = Rect::new(inner.x, inner.y + k as u16, inner.width, 1);
        let sel = i == s.form.selected;
        let base = if sel { t.selected } else { Style::new() };
        let line = match &s.form.rows[i] {
            Row::Header(h) => Line::styled(h.clone(), t.title.patch(base)),
            Row::Field(fl) => {
                let value = s.value_of(&s.form.rows[i]).unwrap_or_default();
                let probs = s.problems_of(&fl.path);
                let mark = match probs.first().map(|p| p.severity) {
                    Some(Severity::Error) => Span::styled(" ✘ ", t.failed.patch(base)),
                    Some(Severity::Warning) => Span::styled(" ! ", t.skipped.patch(base)),
                    None => Span::styled("   ", base),
                };
                let label: String = if fl.label.chars().count() > label_w {
                    let mut l: String = fl.label.chars().take(label_w.saturating_sub(1)).collect();
                    l.push('…');
                    l
                } else {
                    fl.label.clone()
                };
                let vstyle = if fl.readonly { t.dim } else { t.text };
                Line::from(vec![
                    mark,
                    Span::styled(format!("{label:<label_w$} "), t.dim.patch(base)),
                    Span::styled(masked(s, fl, &value), vstyle.patch(base)),
                ])
            }
        };
        f.render_widget(Paragraph::new(line).style(base), r);
        hits.push((r, Hit::Action(Action::Edit)));
    }
}

/// The problems' first line: config.json does not parse, is valid, or how many problems.
fn totals(app: &App, s: &Setup, errors: usize, warnings: usize) -> Line<'static> {
    let t = app.theme();
    let totals = match &s.config.parse_error {
        Some((l, c, m)) => format!(
            "config.json does not parse (line {l}, column {c}: {m}): {} opens the raw editor at the error",
            app.key(Scope::Setup, Action::RawEditor)
        ),
        None if errors + warnings == 0 => "config.json is valid".to_string(),
        None => format!(
            "{errors} error(s), {warnings} warning(s) — {} jumps to the next one; errors block Start",
            app.key(Scope::Setup, Action::NextProblem)
        ),
    };
    Line::styled(
        totals,
        if errors > 0 || s.config.parse_error.is_some() {
            t.failed
        } else {
            t.succeeded
        },
    )
}

/// The totals, then every problem: the selected field's first (marked ▸).
pub(super) fn problems(
    f: &mut Frame,
    app: &App,
    s: &Setup,
    errors: usize,
    warnings: usize,
    summary: Rect,
) {
    let t = app.theme();
    let mut lines = vec![totals(app, s, errors, warnings)];
    if let Some((l, c, m)) = &s.secrets.parse_error {
        lines.push(Line::styled(
            format!(
                "secrets.json: invalid JSON at line {l}, column {c}: {m} ({} opens it raw, values masked)",
                app.key(Scope::Setup, Action::RawSecrets)
            ),
            t.failed,
        ));
    }
    let selected_path = match s.form.rows.get(s.form.selected) {
        Some(Row::Field(fl)) => Some(fl.path.as_str()),
        _ => None,
    };
    let mut ordered: Vec<_> = s.problems.iter().collect();
    ordered.sort_by_key(|p| Some(p.path.as_str()) != selected_path);
    let b = block(app, " Problems ".into(), false);
    let inner_s = b.inner(summary);
    // As many as fit (each may wrap), then "+N more": none is dropped silently.
    let width = inner_s.width as usize;
    let mut rows: usize = lines
        .iter()
        .map(|l| crate::ui::dashboard::wrapped_rows(&l.to_string(), width))
        .sum();
    let room = inner_s.height as usize;
    for (k, p) in ordered.iter().enumerate() {
        let here = Some(p.path.as_str()) == selected_path;
        let text = format!("{}{p}", if here { "▸ " } else { "  " });
        let need = crate::ui::dashboard::wrapped_rows(&text, width);
        let left = ordered.len() - k;
        if rows + need > room || (left > 1 && rows + need + 1 > room) {
            lines.push(Line::styled(
                format!(
                    "  +{left} more ({} goes to each in turn)",
                    app.key(Scope::Setup, Action::NextProblem)
                ),
                t.dim,
            ));
            break;
        }
        rows += need;
        lines.push(Line::styled(
            text,
            if p.severity == Severity::Error {
                t.failed
            } else {
                t.skipped
            },
        ));
    }
    f.render_widget(b, summary);
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner_s);
}

/// The editor of one field, over the form.
pub(super) fn field_editor(
    f: &mut Frame,
    app: &App,
    s: &Setup,
    ed: &crate::app::setup::Editing,
    area: Rect,
) {
    let Some(Row::Field(fl)) = s.form.rows.get(ed.row) else {
        return;
    };
    let h = if ed.multiline {
        (area.height * 2 / 3).max(5)
    } else {
        3
    };
    let w = (area.width * 4 / 5).max(20).min(area.width);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height.saturating_sub(h)) / 2,
        w,
        h,
    );
    f.render_widget(Clear, r);
    let b = block(app, format!(" {} ", fl.path), true);
    let inner = b.inner(r);
    f.render_widget(b, r);
    f.render_widget(&ed.area, inner);
}
