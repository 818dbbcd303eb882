//! The setup flow's screens.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use super::{Hit, Hits, footer};
use crate::app::setup::{Field, InputFor, Page, Row, Setup};
use crate::app::{Action, App, Scope};
use crate::check::Status;
use crate::config::validate::Severity;

fn block<'a>(app: &App, title: String, focused: bool) -> Block<'a> {
    let t = app.theme();
    Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(if focused { t.border_focused } else { t.border })
        .title(Span::styled(title, t.title))
}

/// Draws the setup flow.
pub fn draw(f: &mut Frame, app: &App, area: Rect, hits: &mut Hits) {
    let t = app.theme();
    let Some(s) = app.screen.setup() else { return };
    let [tabs, body, msg, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    // Full titles when they fit, short ones otherwise (every step stays visible at 80 columns).
    let full: u16 = 19
        + Page::ALL
            .iter()
            .map(|s| s.title().chars().count() as u16 + 3)
            .sum::<u16>();
    let short = tabs.width < full;
    let mut x = tabs.x;
    if !short {
        f.render_widget(
            Paragraph::new(Span::styled(" stage2-tui setup ", t.title)),
            tabs,
        );
        x += 20;
    }
    for st in Page::ALL {
        let label = format!(" {} ", if short { st.short() } else { st.title() });
        let w = label.chars().count() as u16;
        if x + w > tabs.x + tabs.width {
            break;
        }
        let r = Rect::new(x, tabs.y, w, 1);
        f.render_widget(
            Paragraph::new(Span::styled(
                label,
                if st == s.step { t.button } else { t.dim },
            )),
            r,
        );
        x += w + 1;
    }
    match s.step {
        Page::Checks => checks(f, app, s, body),
        Page::Config => config(f, app, s, body, hits),
        Page::Installer => installer(f, app, s, body),
        Page::Tag => tags(f, app, s, body),
        Page::Review => review(f, app, s, body),
    }
    let line = match (&s.input, &s.message) {
        (Some((what, text)), _) => {
            let prompt = match what {
                InputFor::PullTag => "tag to pull: ",
                InputFor::OverridePath => "path of the openshift-install to copy in: ",
            };
            Line::from(vec![
                Span::styled(prompt, t.key),
                Span::styled(format!("{text}▏"), t.text),
                Span::styled("  Enter ok  Esc cancel", t.dim),
            ])
        }
        (None, Some(m)) => Line::styled(m.clone(), t.text),
        (None, None) => Line::default(),
    };
    f.render_widget(Paragraph::new(line), msg);
    let fix = s.safe_fix().is_some();
    let wanted: &[Action] = match s.step {
        Page::Checks if fix => &[
            Action::Fix,
            Action::NextStep,
            Action::Recheck,
            Action::Help,
            Action::Quit,
        ],
        Page::Checks => &[
            Action::NextStep,
            Action::Recheck,
            Action::Help,
            Action::Quit,
        ],
        Page::Config => &[
            Action::NextStep,
            Action::Edit,
            Action::NextProblem,
            Action::AddRow,
            Action::DeleteRow,
            Action::Undo,
            Action::SaveOnly,
            Action::RawEditor,
            Action::RawSecrets,
            Action::Reveal,
            Action::Search,
            Action::Help,
        ],
        Page::Installer => &[
            Action::NextStep,
            Action::UseEmbedded,
            Action::UseOverride,
            Action::Recheck,
            Action::Help,
        ],
        Page::Tag => &[
            Action::NextStep,
            Action::Edit,
            Action::PullTag,
            Action::Recheck,
            Action::Help,
        ],
        Page::Review if fix => &[
            Action::StartRun,
            Action::Fix,
            Action::SaveOnly,
            Action::PrevStep,
            Action::Reload,
            Action::Help,
            Action::Quit,
        ],
        Page::Review => &[
            Action::StartRun,
            Action::SaveOnly,
            Action::PrevStep,
            Action::Reload,
            Action::Help,
            Action::Quit,
        ],
    };
    let hint = if s.editing.is_some() {
        Line::styled("Enter save (Ctrl-S in multi-line text)  Esc cancel", t.dim)
    } else if s.raw.is_some() && s.raw_masked {
        Line::styled(
            format!(
                "secrets.json, values masked: {} reveals them for editing  Esc back to the form",
                app.key(Scope::Setup, Action::Reveal)
            ),
            t.dim,
        )
    } else if s.raw.is_some() {
        Line::styled(
            "Esc/Ctrl-S back to the form (not parsing: d discard, k keep aside)  Ctrl-Z undo  Ctrl-Y redo  F1 help",
            t.dim,
        )
    } else {
        footer(app, Scope::Setup, wanted, foot.width)
    };
    f.render_widget(Paragraph::new(hint), foot);
}

fn checks(f: &mut Frame, app: &App, s: &Setup, area: Rect) {
    let t = app.theme();
    let b = block(app, " Pre-flight checks ".into(), true);
    let inner = b.inner(area);
    f.render_widget(b, area);
    let Some(list) = &s.checks else {
        f.render_widget(Paragraph::new(Span::styled("checking…", t.dim)), inner);
        return;
    };
    let w = list.iter().map(|c| c.check.len()).max().unwrap_or(8);
    let mut lines = Vec::new();
    for c in list {
        let (mark, st) = match c.status {
            Status::Ok => ("✔", t.succeeded),
            Status::Warning => ("!", t.skipped),
            Status::Error => ("✘", t.failed),
        };
        lines.push(Line::from(vec![
            Span::styled(format!(" {mark} "), st),
            Span::styled(format!("{:<w$}  ", c.check), t.text),
            Span::styled(c.message.clone(), st),
        ]));
        if let Some(fix) = c.fix.as_ref().filter(|_| c.status != Status::Ok) {
            lines.push(Line::styled(format!("   {:<w$}  → {fix}", ""), t.dim));
        }
    }
    let errors = list.iter().filter(|c| c.status == Status::Error).count();
    lines.push(Line::default());
    lines.push(Line::styled(
        if errors == 0 {
            format!("Nothing blocks the run. {}: the config editor.", app.key(Scope::Setup, Action::NextStep))
        } else {
            format!(
                "{errors} error(s); they block Start. {} goes on to the editor; the review lists what still blocks.{}",
                app.key(Scope::Setup, Action::NextStep),
                s.safe_fix()
                    .map(|(what, _)| format!(" {} applies the safe fix: {what}.", app.key(Scope::Setup, Action::Fix)))
                    .unwrap_or_default()
            )
        },
        if errors == 0 { t.succeeded } else { t.failed },
    ));
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

fn masked(s: &Setup, f: &Field, value: &str) -> String {
    if f.secret && !s.revealed.contains(&f.ptr) {
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

fn config(f: &mut Frame, app: &App, s: &Setup, area: Rect, hits: &mut Hits) {
    if let Some(editor) = &s.raw {
        raw_editor(f, app, s, editor, area);
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
            match &s.filter {
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
    if let Some(ed) = &s.editing {
        field_editor(f, app, s, ed, area);
    }
}

/// The raw JSON editor of config.json or (masked) secrets.json.
fn raw_editor(
    f: &mut Frame,
    app: &App,
    s: &Setup,
    area_ta: &ratatui_textarea::TextArea<'static>,
    area: Rect,
) {
    let t = app.theme();
    let (name, file) = if s.raw_secrets {
        ("secrets.json", &s.secrets)
    } else {
        ("config.json", &s.config)
    };
    let masked = if s.raw_masked { ", values masked" } else { "" };
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
fn form_rows(f: &mut Frame, app: &App, s: &Setup, inner: Rect, hits: &mut Hits) {
    let t = app.theme();
    let rows = inner.height as usize;
    // Only the listed rows (a `/` filter may hide some).
    let listed = s.listed_rows();
    let at = listed.iter().position(|i| *i == s.selected).unwrap_or(0);
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
        let sel = i == s.selected;
        let base = if sel { t.selected } else { Style::new() };
        let line = match &s.rows[i] {
            Row::Header(h) => Line::styled(h.clone(), t.title.patch(base)),
            Row::Field(fl) => {
                let value = s.value_of(&s.rows[i]).unwrap_or_default();
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

/// The totals, then every problem: the selected field's first (marked ▸).
fn problems(f: &mut Frame, app: &App, s: &Setup, errors: usize, warnings: usize, summary: Rect) {
    let t = app.theme();
    let mut lines = Vec::new();
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
    lines.push(Line::styled(
        totals,
        if errors > 0 || s.config.parse_error.is_some() {
            t.failed
        } else {
            t.succeeded
        },
    ));
    if let Some((l, c, m)) = &s.secrets.parse_error {
        lines.push(Line::styled(
            format!(
                "secrets.json: invalid JSON at line {l}, column {c}: {m} ({} opens it raw, values masked)",
                app.key(Scope::Setup, Action::RawSecrets)
            ),
            t.failed,
        ));
    }
    let selected_path = match s.rows.get(s.selected) {
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
        .map(|l| super::dashboard::wrapped_rows(&l.to_string(), width))
        .sum();
    let room = inner_s.height as usize;
    for (k, p) in ordered.iter().enumerate() {
        let here = Some(p.path.as_str()) == selected_path;
        let text = format!("{}{p}", if here { "▸ " } else { "  " });
        let need = super::dashboard::wrapped_rows(&text, width);
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
fn field_editor(f: &mut Frame, app: &App, s: &Setup, ed: &crate::app::setup::Editing, area: Rect) {
    let Some(Row::Field(fl)) = s.rows.get(ed.row) else {
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

fn version_lines(app: &App, v: &Option<Result<String, String>>) -> Vec<Line<'static>> {
    let t = app.theme();
    match v {
        None => vec![Line::styled("asking it for its version…", t.dim)],
        Some(Err(e)) => vec![Line::styled(e.clone(), t.failed)],
        Some(Ok(out)) => {
            let mut l: Vec<Line> = out
                .lines()
                .map(|x| Line::styled(x.to_string(), t.text))
                .collect();
            if let Some(img) = out.lines().find_map(|x| x.strip_prefix("release image ")) {
                let host = img.split('/').next().unwrap_or_default();
                l.push(if host == "quay.io" {
                    Line::styled("connected build (release image from quay.io)", t.dim)
                } else {
                    Line::styled(
                        format!("DISCONNECTED build: release image from {host}"),
                        t.key,
                    )
                });
            }
            l
        }
    }
}

fn installer(f: &mut Frame, app: &App, s: &Setup, area: Rect) {
    let t = app.theme();
    let (present, aside) = (s.override_present, s.override_aside);
    let [a, b] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let (emb, ovr) = match &s.versions {
        None => (None, None),
        Some((e, o)) => (Some(e.clone()), o.clone()),
    };
    let mut le = vec![Line::styled(
        if present {
            "not used: the override below takes precedence".to_string()
        } else {
            "IN USE".to_string()
        },
        if present { t.dim } else { t.succeeded },
    )];
    le.extend(version_lines(app, &emb));
    f.render_widget(
        Paragraph::new(le)
            .block(block(
                app,
                format!(
                    " Embedded in the 4.run-installer image ({}) ",
                    app.key(Scope::Setup, Action::UseEmbedded)
                ),
                !present,
            ))
            .wrap(Wrap { trim: false }),
        a,
    );
    let mut lo = Vec::new();
    if present {
        lo.push(Line::styled(
            "IN USE: <deployconfig>/openshift-install".to_string(),
            t.succeeded,
        ));
        lo.extend(version_lines(
            app,
            &if s.versions.is_none() { None } else { ovr },
        ));
    } else if aside {
        lo.push(Line::styled(
            format!("moved aside to <deployconfig>/openshift-install.stage2-tui-disabled — {} brings it back", app.key(Scope::Setup, Action::UseOverride)),
            t.dim,
        ));
    } else {
        lo.push(Line::styled(
            format!(
                "none in the deployconfig folder — {} copies one in (for disconnected installs)",
                app.key(Scope::Setup, Action::UseOverride)
            ),
            t.dim,
        ));
    }
    f.render_widget(
        Paragraph::new(lo)
            .block(block(
                app,
                format!(
                    " Override: <deployconfig>/openshift-install ({}) ",
                    app.key(Scope::Setup, Action::UseOverride)
                ),
                present,
            ))
            .wrap(Wrap { trim: false }),
        b,
    );
}

fn tags(f: &mut Frame, app: &App, s: &Setup, area: Rect) {
    let t = app.theme();
    let current = s.tag();
    let b = block(
        app,
        format!(
            " Tags of {}/4.run-installer in the engine (imagetag: {current}) ",
            s.registry()
        ),
        true,
    );
    let inner = b.inner(area);
    f.render_widget(b, area);
    let mut lines = Vec::new();
    match &s.tags {
        None => lines.push(Line::styled("listing…", t.dim)),
        Some(Err(e)) => lines.push(Line::styled(e.clone(), t.failed)),
        Some(Ok(list)) if list.is_empty() => lines.push(Line::styled(
            format!(
                "no local image of this registry; {} pulls a tag",
                app.key(Scope::Setup, Action::PullTag)
            ),
            t.dim,
        )),
        Some(Ok(list)) => {
            for (i, (tag, have, all)) in list.iter().enumerate() {
                let sel = i == s.tag_selected;
                let base = if sel { t.selected } else { Style::new() };
                let st = if have == all { t.succeeded } else { t.skipped };
                lines.push(Line::from(vec![
                    Span::styled(
                        if *tag == current { " ● " } else { "   " },
                        t.key.patch(base),
                    ),
                    Span::styled(format!("{tag:<30}"), t.text.patch(base)),
                    Span::styled(format!("{have}/{all} stage images present"), st.patch(base)),
                ]));
            }
        }
    }
    if let Some(p) = &s.pulling {
        lines.push(Line::default());
        lines.push(Line::styled(p.clone(), t.running));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

fn review(f: &mut Frame, app: &App, s: &Setup, area: Rect) {
    let t = app.theme();
    let blocking = s.blocking();
    let installer = if s.override_present {
        "the override in the deployconfig folder (disconnected)"
    } else {
        "the one embedded in 4.run-installer"
    };
    let tag = s.tag();
    let mut lines = vec![
        Line::from(vec![
            Span::styled("openshift-install  ", t.dim),
            Span::styled(installer, t.text),
        ]),
        Line::from(vec![
            Span::styled("images             ", t.dim),
            Span::styled(format!("{}/<stage>:{tag}", s.registry()), t.text),
        ]),
        Line::from(vec![
            Span::styled("Start will         ", t.dim),
            Span::styled(app.start_description(), t.text),
        ]),
        Line::default(),
    ];
    if blocking.is_empty() {
        lines.push(Line::styled(
            format!(
                "config.json is valid — {} saves the changes and starts, {} only saves",
                app.key(Scope::Setup, Action::StartRun),
                app.key(Scope::Setup, Action::SaveOnly)
            ),
            t.succeeded,
        ));
    } else {
        lines.push(Line::styled(
            format!(
                "{} problem(s) block Start ({} in the editor jumps to them):",
                blocking.len(),
                app.key(Scope::Setup, Action::NextProblem)
            ),
            t.failed,
        ));
        for b in &blocking {
            lines.push(Line::styled(format!("  {b}"), t.failed));
        }
        if let Some((what, _)) = s.safe_fix() {
            lines.push(Line::styled(
                format!(
                    "  {} applies the safe fix: {what}",
                    app.key(Scope::Setup, Action::Fix)
                ),
                t.key,
            ));
        }
    }
    if s.conflict {
        lines.push(Line::styled(
            format!("A file changed on disk since it was loaded: {} saves yours over it, {} reloads it.", app.key(Scope::Setup, Action::Overwrite), app.key(Scope::Setup, Action::Reload)),
            t.failed,
        ));
    }
    lines.push(Line::default());
    for (name, d) in [
        ("config.json", &s.pending[0]),
        ("secrets.json", &s.pending[1]),
    ] {
        if d.is_empty() {
            lines.push(Line::styled(format!("{name}: no change"), t.dim));
            continue;
        }
        lines.push(Line::styled(format!("{name}: {} changed line(s); saved atomically with a backup (.{name}.stage2-tui.bak)", d.len()), t.title));
        for l in d {
            let st = if l.starts_with('+') {
                t.succeeded
            } else {
                t.failed
            };
            lines.push(Line::styled(format!("  {l}"), st));
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(block(app, " Review ".into(), true))
            .wrap(Wrap { trim: false }),
        area,
    );
}
