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

mod form;
mod pages;

use form::*;
use pages::*;

fn block<'a>(app: &App, title: String, focused: bool) -> Block<'a> {
    let t = app.theme();
    Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(if focused { t.border_focused } else { t.border })
        .title(Span::styled(title, t.title))
}

/// Draws the setup flow.
pub fn draw(f: &mut Frame, app: &App, area: Rect, hits: &mut Hits) {
    let Some(s) = app.screen.setup() else { return };
    let [tabs, body, msg, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    page_tabs(f, app, s, tabs);
    match s.step {
        Page::Checks => checks(f, app, s, body),
        Page::Config => config(f, app, s, body, hits),
        Page::Installer => installer(f, app, s, body),
        Page::Tag => tags(f, app, s, body),
        Page::Review => review(f, app, s, body),
    }
    message_row(f, app, s, msg);
    hint_row(f, app, s, foot);
}

/// The pages as tabs, the current one lit: full titles when they fit, short ones otherwise
/// (every page stays visible at 80 columns).
fn page_tabs(f: &mut Frame, app: &App, s: &Setup, tabs: Rect) {
    let t = app.theme();
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
}

/// The input being typed, or the last message.
fn message_row(f: &mut Frame, app: &App, s: &Setup, msg: Rect) {
    let t = app.theme();
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
}

/// The keys this page offers (or the editor's, while one is open).
fn hint_row(f: &mut Frame, app: &App, s: &Setup, foot: Rect) {
    let t = app.theme();
    let wanted = page_keys(s.step, s.safe_fix().is_some());
    let hint = if s.form.editing.is_some() {
        Line::styled("Enter save (Ctrl-S in multi-line text)  Esc cancel", t.dim)
    } else if s.raw_file().is_some_and(crate::app::setup::RawFile::masked) {
        Line::styled(
            format!(
                "secrets.json, values masked: {} reveals them for editing  Esc back to the form",
                app.key(Scope::Setup, Action::Reveal)
            ),
            t.dim,
        )
    } else if s.form.raw.is_some() {
        Line::styled(
            "Esc/Ctrl-S back to the form (not parsing: d discard, k keep aside)  Ctrl-Z undo  Ctrl-Y redo  F1 help",
            t.dim,
        )
    } else {
        footer(app, Scope::Setup, wanted, foot.width)
    };
    f.render_widget(Paragraph::new(hint), foot);
}

/// The keys a page offers, in the order its footer shows them (`fix`: a safe fix is there).
fn page_keys(page: Page, fix: bool) -> &'static [Action] {
    match page {
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
    }
}

fn checks(f: &mut Frame, app: &App, s: &Setup, area: Rect) {
    let t = app.theme();
    let b = block(app, " Pre-flight checks ".into(), true);
    let inner = b.inner(area);
    f.render_widget(b, area);
    let Some(list) = &s.preflight.results else {
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
