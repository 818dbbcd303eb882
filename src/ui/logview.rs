//! The full-screen log view.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthChar;

use super::{Hits, ansi, footer, right};
use crate::app::{Action, App, Scope};
use crate::logformat::{Stream, parse_saved_line};

/// Restyles every (ASCII case-insensitive) occurrence of `query` in `spans`.
pub fn highlight(spans: Vec<Span<'static>>, query: &str, style: Style) -> Vec<Span<'static>> {
    if query.is_empty() {
        return spans;
    }
    let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
    let hay = text.to_ascii_lowercase();
    let q = query.to_ascii_lowercase();
    let ranges: Vec<(usize, usize)> = hay
        .match_indices(&q)
        .map(|(i, m)| (i, i + m.len()))
        .collect();
    if ranges.is_empty() {
        return spans;
    }
    let mut out = Vec::new();
    let mut offset = 0;
    for s in spans {
        let content = s.content.into_owned();
        let (start, end) = (offset, offset + content.len());
        let mut cuts = vec![start, end];
        for (a, b) in &ranges {
            for c in [*a, *b] {
                if c > start && c < end {
                    cuts.push(c);
                }
            }
        }
        cuts.sort_unstable();
        cuts.dedup();
        for w in cuts.windows(2) {
            let piece = content[w[0] - start..w[1] - start].to_string();
            let hit = ranges.iter().any(|(a, b)| w[0] >= *a && w[1] <= *b);
            out.push(Span::styled(
                piece,
                if hit { s.style.patch(style) } else { s.style },
            ));
        }
        offset = end;
    }
    out
}

/// Splits spans into rows of at most `width` columns.
pub fn wrap(spans: Vec<Span<'static>>, width: usize, max_rows: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let mut rows: Vec<Line<'static>> = Vec::new();
    let mut cur: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for s in spans {
        let mut piece = String::new();
        for c in s.content.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width {
                if !piece.is_empty() {
                    cur.push(Span::styled(std::mem::take(&mut piece), s.style));
                }
                rows.push(Line::from(std::mem::take(&mut cur)));
                used = 0;
                if rows.len() >= max_rows {
                    return rows;
                }
            }
            piece.push(c);
            used += w;
        }
        if !piece.is_empty() {
            cur.push(Span::styled(piece, s.style));
        }
    }
    if !cur.is_empty() || rows.is_empty() {
        rows.push(Line::from(cur));
    }
    rows
}

/// Draws the log view.
pub fn draw(f: &mut Frame, app: &App, area: Rect, _hits: &mut Hits) {
    let Some(v) = app.screen.log() else { return };
    let [head, body, status, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);

    title(f, app, v, head);
    lines(f, app, v, body);

    f.render_widget(Paragraph::new(status_line(app, v)), status);
    let wanted = [
        Action::Back,
        Action::Search,
        Action::NextMatch,
        Action::FirstError,
        Action::ToggleWrap,
        Action::ToggleTimestamps,
        Action::LineNumbers,
        Action::Pager,
        Action::SaveLog,
        Action::CopyLog,
        Action::Help,
    ];
    f.render_widget(
        Paragraph::new(footer(app, Scope::Log, &wanted, foot.width)),
        foot,
    );
}

/// The title row: step, attempt, the lines in view, the toggles in words as they fit, and the
/// search's position on the right.
fn title(f: &mut Frame, app: &App, v: &crate::app::LogView, head: Rect) {
    let t = app.theme();
    let total = v.index.len();
    let last = (v.top + v.visible.len()).min(total);
    let mut title = vec![
        Span::styled(format!(" {} ", v.step), t.title),
        Span::styled(
            if v.attempts > 1 {
                format!("attempt {} of {} ([ ]) ", v.attempt, v.attempts)
            } else {
                format!("attempt {}  ", v.attempt)
            },
            if v.attempts > 1 { t.key } else { t.dim },
        ),
        Span::styled(
            format!(
                "lines {}-{} of {total}",
                if total == 0 { 0 } else { v.top + 1 },
                last
            ),
            t.text,
        ),
    ];
    // Toggles say their state in words, as many as fit beside the search's position (the least
    // important last: nothing is cut in the middle).
    let search_text = v.search.as_ref().map(|s| {
        let pos = if s.matches.is_empty() {
            "no match".to_string()
        } else {
            format!(
                "{}/{}{}",
                s.current + 1,
                s.matches.len(),
                if s.truncated { "+" } else { "" }
            )
        };
        format!("\"{}\" {pos} ", s.query)
    });
    let room = (head.width as usize)
        .saturating_sub(search_text.as_ref().map_or(0, |t| t.chars().count() + 1));
    let flag =
        |on: bool, text: String| Span::styled(format!("  {text}"), if on { t.key } else { t.dim });
    let mut flags = vec![flag(
        v.follow,
        if v.follow {
            "follow: on".into()
        } else {
            "follow: paused".into()
        },
    )];
    if v.numbers {
        flags.push(flag(true, "numbers: on".into()));
    }
    flags.push(flag(
        v.wrap,
        format!("wrap: {}", if v.wrap { "on" } else { "off" }),
    ));
    flags.push(flag(
        v.timestamps != crate::app::Timestamps::Off,
        format!("timestamps: {}", v.timestamps.word()),
    ));
    let mut used: usize = title.iter().map(|s| s.content.chars().count()).sum();
    for f in flags {
        let w = f.content.chars().count();
        if used + w > room {
            break;
        }
        used += w;
        title.push(f);
    }
    f.render_widget(Paragraph::new(Line::from(title)), head);
    if let Some(text) = search_text {
        f.render_widget(right(text, t.key), head);
    }
}

/// Every span bold and underlined.
fn stand_out(spans: Vec<Span<'static>>) -> Vec<Span<'static>> {
    spans
        .into_iter()
        .map(|s| {
            let style = s.style.add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
            s.style(style)
        })
        .collect()
}

/// A line's gutter: its number, and the mark of the current match (▶) or the first error (✘).
fn gutter_spans(
    app: &App,
    v: &crate::app::LogView,
    n: usize,
    digits: usize,
    marks: bool,
    current: Option<usize>,
) -> Vec<Span<'static>> {
    let t = app.theme();
    let mut spans = Vec::new();
    if v.numbers {
        spans.push(Span::styled(format!("{:>digits$} ", n + 1), t.dim));
    }
    if marks {
        spans.push(if current == Some(n) {
            Span::styled("▶ ", t.key)
        } else if v.first_error_line == Some(n) {
            Span::styled("✘ ", t.failed)
        } else {
            Span::raw("  ")
        });
    }
    spans
}

/// The log's lines, with the gutter (numbers, the current match, the first error), timestamps,
/// masking, search highlights and wrapping.
fn lines(f: &mut Frame, app: &App, v: &crate::app::LogView, body: Rect) {
    let t = app.theme();
    let total = v.index.len();
    // The gutter: line numbers (`#`), and a mark on the current match (▶) and on the first
    // error line (✘) once asked for.
    let current = v
        .search
        .as_ref()
        .and_then(|s| s.matches.get(s.current).copied());
    let marks = current.is_some() || v.first_error_line.is_some();
    let digits = if v.numbers {
        total.max(1).to_string().len()
    } else {
        0
    };
    let gutter = if v.numbers { digits + 1 } else { 0 } + if marks { 2 } else { 0 };
    let width = (body.width as usize).saturating_sub(gutter).max(1);
    let rows = body.height as usize;
    let query = v.search.as_ref().map(|s| s.query.as_str()).unwrap_or("");
    let mut lines: Vec<Line> = Vec::with_capacity(rows);
    for (k, raw) in v.visible.iter().enumerate() {
        if lines.len() >= rows {
            break;
        }
        let n = v.top + k;
        let (ts, stream, text) = parse_saved_line(raw).unwrap_or((b"", Stream::Stdout, raw));
        let base = if stream == Stream::Stderr {
            t.stderr
        } else {
            t.text
        };
        let text = String::from_utf8_lossy(text);
        let budget = if v.wrap {
            width * (rows - lines.len())
        } else {
            width
        };
        let mut spans = gutter_spans(app, v, n, digits, marks, current);
        if let Some(ts) = v.timestamps.show(ts) {
            spans.push(Span::styled(format!("{ts} "), t.timestamp));
        }
        spans.extend(ansi::spans(
            &crate::text::mask(&text, &app.secrets),
            base,
            budget,
        ));
        let is_match = v
            .search
            .as_ref()
            .is_some_and(|s| s.matches.binary_search(&n).is_ok());
        if is_match {
            spans = highlight(spans, query, t.matched);
        }
        // The current match's whole line stands out, so n and N visibly move.
        if current == Some(n) {
            spans = stand_out(spans);
        }
        if v.wrap {
            lines.extend(wrap(spans, width + gutter, rows - lines.len()));
        } else {
            lines.push(Line::from(spans));
        }
    }
    if total == 0 {
        lines.push(Line::styled(
            if v.opening {
                "(reading the log…)"
            } else {
                "(no output yet)"
            },
            t.dim,
        ));
    }
    f.render_widget(Paragraph::new(lines), body);
}

/// The status row: the search being typed, the work going on, or the last message.
fn status_line(app: &App, v: &crate::app::LogView) -> Line<'static> {
    let t = app.theme();
    match (&v.input, &v.message) {
        (Some(input), _) => Line::from(vec![
            Span::styled("/", t.key),
            Span::styled(format!("{input}▏"), t.text),
            Span::styled("   Enter search  Esc cancel", t.dim),
        ]),
        (None, _) if v.working().is_some() => Line::from(vec![
            Span::styled(v.working().unwrap_or_default(), t.text),
            Span::styled(
                if v.stoppable() {
                    format!("   {} stops it", app.key(Scope::Log, Action::Back))
                } else {
                    String::new()
                },
                t.dim,
            ),
        ]),
        (None, Some(m)) => Line::styled(m.clone(), t.dim),
        (None, None) => Line::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_across_spans() {
        let spans = vec![Span::raw("Error: cl"), Span::raw("oning vm")];
        let out = highlight(spans, "CLONING", Style::new().bold());
        let styled: Vec<_> = out
            .iter()
            .map(|s| (s.content.to_string(), s.style == Style::new().bold()))
            .collect();
        assert_eq!(
            styled,
            vec![
                ("Error: ".into(), false),
                ("cl".into(), true),
                ("oning".into(), true),
                (" vm".into(), false)
            ]
        );
    }

    #[test]
    fn wraps_to_width() {
        let rows = wrap(vec![Span::raw("abcdefghij")], 4, 10);
        let text: Vec<String> = rows
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect();
        assert_eq!(text, ["abcd", "efgh", "ij"]);
        assert_eq!(wrap(vec![Span::raw("x".repeat(100_000))], 100, 5).len(), 5);
    }
}
