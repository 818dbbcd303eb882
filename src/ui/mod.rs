//! Views: state in, frame out. They record the rectangles of clickable things in [`Hits`].

pub mod ansi;
mod dashboard;
mod logview;
#[cfg(feature = "scenes")]
pub mod scenes;
mod setup;
pub mod svg;
/// Themes are part of the app's state (which one is chosen); the views only read them.
pub use crate::app::theme;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use crate::app::{Action, App, Overlay, Scope, Screen};

pub use crate::app::hit::{Hit, Hits, log_rows};

/// Draws the whole screen.
pub fn draw(f: &mut Frame, app: &App, hits: &mut Hits) {
    hits.clear();
    let area = f.area();
    let t = app.theme();
    f.render_widget(Block::new().style(t.text), area);
    if area.width < 4 || area.height < 2 {
        f.render_widget(Paragraph::new("stage2-tui").style(t.title), area);
        return;
    }
    // A screen that cannot fit says so instead of drawing empty boxes.
    let (min_w, min_h) = match &app.screen {
        Screen::Dashboard => (40, 8),
        Screen::Log(_) => (30, 5),
        Screen::Setup(_) => (60, 14),
    };
    if area.width < min_w || area.height < min_h {
        let msg = format!(
            "stage2-tui: the terminal is {}×{}; this screen needs at least {min_w}×{min_h}. Make the window larger ({} quits).",
            area.width,
            area.height,
            app.key(Scope::Global, Action::Quit)
        );
        f.render_widget(
            Paragraph::new(msg)
                .style(t.text)
                .wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    match &app.screen {
        Screen::Dashboard => dashboard::draw(f, app, area, hits),
        Screen::Log(_) => logview::draw(f, app, area, hits),
        Screen::Setup(_) => setup::draw(f, app, area, hits),
    }
    match &app.overlay {
        Some(Overlay::Help) => help(f, app, area),
        Some(Overlay::Messages(up)) => messages(f, app, area, *up),
        Some(Overlay::Confirm(c)) => confirm(f, app, area, &c.title, &c.body, hits),
        None => {}
    }
}

/// Footer hints from the key map: the main actions of the current scope, as many as fit in
/// `width` (whole hints only; help, which lists every key, is kept last when anything is left out).
pub fn footer(app: &App, scope: Scope, wanted: &[Action], width: u16) -> Line<'static> {
    let t = app.theme();
    let hint = |a: Action| {
        app.keys.key_for(scope, a).map(|k| {
            (
                k.clone(),
                format!(" {}", a.label()),
                k.chars().count() + 1 + a.label().chars().count(),
            )
        })
    };
    let all: Vec<(String, String, usize)> = wanted.iter().filter_map(|a| hint(*a)).collect();
    let total: usize = all.iter().map(|h| h.2 + 2).sum();
    let help = hint(Action::Help);
    let budget = width as usize;
    let mut spans = Vec::new();
    let mut used = 0;
    let fits_all = total <= budget + 2;
    // What "? all keys" takes, so it is never cut.
    let reserve = if fits_all {
        0
    } else {
        help.as_ref()
            .map_or(0, |h| h.0.chars().count() + " all keys".len() + 2)
    };
    for (k, label, w) in &all {
        if !fits_all && Some(k) == help.as_ref().map(|h| &h.0) {
            continue;
        }
        let need = w + if spans.is_empty() { 0 } else { 2 };
        if used + need + reserve > budget {
            break;
        }
        if !spans.is_empty() {
            spans.push(Span::styled("  ", t.dim));
        }
        spans.push(Span::styled(k.clone(), t.key));
        spans.push(Span::styled(label.clone(), t.dim));
        used += need;
    }
    if !fits_all && let Some((k, _, _)) = help {
        if !spans.is_empty() {
            spans.push(Span::styled("  ", t.dim));
        }
        spans.push(Span::styled(k, t.key));
        spans.push(Span::styled(" all keys", t.dim));
    }
    Line::from(spans)
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// The message history: every message whole, wrapped, newest at the bottom.
fn messages(f: &mut Frame, app: &App, area: Rect, up: usize) {
    let t = app.theme();
    let r = centered(
        area,
        area.width.saturating_sub(4).max(20),
        area.height.saturating_sub(2).max(5),
    );
    f.render_widget(Clear, r);
    let close = app.key(Scope::Help, Action::Cancel);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.border_focused)
        .title(Span::styled(
            match &app.messages_filter {
                None => format!(
                    " Messages ({} kept; {close} closes, ↑/↓ scroll, / filters) ",
                    app.messages.len()
                ),
                Some(flt) => format!(
                    " Messages matching /{}{} ({close} closes) ",
                    crate::text::visible(&flt.query),
                    if flt.typing { "▏" } else { "" }
                ),
            },
            t.title,
        ))
        .style(t.text);
    let inner = block.inner(r);
    f.render_widget(block, r);
    let width = inner.width.max(1) as usize;
    let shown: Vec<&(chrono::DateTime<chrono::Local>, String)> = app
        .messages
        .iter()
        .filter(|(_, m)| app.messages_filter.as_ref().is_none_or(|f| f.matches(m)))
        .collect();
    let end = shown.len().saturating_sub(up);
    let mut rows: Vec<Line> = Vec::new();
    // Newest last: walk back from `end` until the box is full.
    for (when, msg) in shown[..end].iter().map(|x| (&x.0, &x.1)).rev() {
        let text = format!("{} {}", when.format("%H:%M:%S"), crate::text::visible(msg));
        let mut chunk: Vec<Line> = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        for (k, piece) in chars.chunks(width).enumerate() {
            let s: String = piece.iter().collect();
            chunk.push(if k == 0 {
                Line::from(vec![
                    Span::styled(s.get(..8).unwrap_or("").to_string(), t.dim),
                    Span::styled(s.get(8..).unwrap_or("").to_string(), t.text),
                ])
            } else {
                Line::styled(s, t.text)
            });
        }
        if rows.len() + chunk.len() > inner.height as usize {
            break;
        }
        chunk.extend(rows);
        rows = chunk;
    }
    if rows.is_empty() {
        rows.push(Line::styled("no messages yet", t.dim));
    }
    f.render_widget(Paragraph::new(rows), inner);
}

fn help(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme();
    let scope = match &app.screen {
        Screen::Log(_) => Scope::Log,
        Screen::Setup(_) => Scope::Setup,
        Screen::Dashboard => Scope::Dashboard,
    };
    let mut lines = Vec::new();
    for (title, s) in [
        (
            match scope {
                Scope::Log => "Log view",
                Scope::Setup => "Setup",
                _ => "Dashboard",
            },
            scope,
        ),
        ("Everywhere", Scope::Global),
    ] {
        lines.push(Line::styled(title.to_string(), t.title));
        for (a, keys) in app.keys.bindings(s) {
            lines.push(Line::from(vec![
                Span::styled(format!("  {keys:<22}"), t.key),
                Span::styled(a.label().to_string(), t.text),
            ]));
        }
        lines.push(Line::default());
    }
    lines.push(Line::styled(
        "Keys can be changed in ~/.config/stage2-tui/keys.toml",
        t.dim,
    ));
    let h = lines.len() as u16 + 2;
    let r = centered(area, 60, h);
    f.render_widget(Clear, r);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.border_focused)
        .title(Span::styled(" Help (Esc closes) ", t.title))
        .style(t.text);
    f.render_widget(Paragraph::new(lines).block(block), r);
}

fn confirm(f: &mut Frame, app: &App, area: Rect, title: &str, body: &[String], hits: &mut Hits) {
    let t = app.theme();
    let w = body
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(20)
        .max(title.chars().count())
        .max(30) as u16
        + 4;
    // As many rows as the body takes once wrapped to the box (a long sentence is not cut).
    let inner_w = w.min(area.width).saturating_sub(2).max(1) as usize;
    let rows: usize = body
        .iter()
        .map(|l| dashboard::wrapped_rows(l, inner_w))
        .sum();
    let h = (rows as u16).saturating_add(5);
    let r = centered(area, w, h);
    f.render_widget(Clear, r);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.failed)
        .title(Span::styled(format!(" {title} "), t.title))
        .style(t.text);
    let inner = block.inner(r);
    f.render_widget(block, r);
    let [text, _, buttons] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let lines: Vec<Line> = body
        .iter()
        .map(|l| Line::styled(l.clone(), t.text))
        .collect();
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text);
    let yes = format!(
        " Yes ({}) ",
        app.keys
            .key_for(Scope::Confirm, Action::Confirm)
            .unwrap_or_default()
    );
    // Every key that answers no (Enter and Esc among them by default): nothing destructive
    // happens by reflex.
    let no = format!(
        " No ({}) ",
        app.keys
            .bindings(Scope::Confirm)
            .into_iter()
            .find(|(a, _)| *a == Action::Cancel)
            .map(|(_, k)| k.replace('/', ", "))
            .unwrap_or_default()
    );
    let x = buttons.x
        + buttons
            .width
            .saturating_sub((yes.len() + no.len() + 2) as u16)
            / 2;
    let yes_r =
        Rect::new(x, buttons.y, (yes.len() as u16).min(buttons.width), 1).intersection(buttons);
    let no_r =
        Rect::new(x + yes.len() as u16 + 2, buttons.y, no.len() as u16, 1).intersection(buttons);
    f.render_widget(Paragraph::new(Span::styled(yes, t.danger)), yes_r);
    f.render_widget(Paragraph::new(Span::styled(no, t.button)), no_r);
    hits.push((yes_r, Hit::Action(Action::Confirm)));
    hits.push((no_r, Hit::Action(Action::Cancel)));
}

/// Renders buttons left to right into `area`, recording their rectangles.
pub fn buttons(f: &mut Frame, app: &App, area: Rect, actions: &[Action], hits: &mut Hits) {
    let t = app.theme();
    let mut x = area.x;
    for a in actions {
        let key = app.keys.key_for(Scope::Dashboard, *a).unwrap_or_default();
        let label = format!(" {} {key} ", title_case(a.label()));
        let w = label.chars().count() as u16;
        if x + w > area.x + area.width {
            break;
        }
        let style = if matches!(a, Action::Stop | Action::Skip | Action::EndWindow) {
            t.danger
        } else {
            t.button
        };
        let r = Rect::new(x, area.y, w, 1);
        f.render_widget(Paragraph::new(Span::styled(label, style)), r);
        hits.push((r, Hit::Action(*a)));
        x += w + 1;
    }
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// One line, right-aligned.
pub fn right(text: String, style: Style) -> Paragraph<'static> {
    Paragraph::new(Span::styled(text, style)).alignment(Alignment::Right)
}
