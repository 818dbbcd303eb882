//! The dashboard's live log panes: which steps get one, and each pane.

use super::*;

/// The steps whose logs get a pane: the selected one first, then the most recently started.
pub(super) fn pane_steps(app: &App, max: usize) -> Vec<usize> {
    let mut out = vec![app.selected];
    if let Some(run) = &app.run {
        let mut others: Vec<(DateTime<Utc>, usize)> = run
            .steps
            .iter()
            .enumerate()
            .filter(|(i, s)| *i != app.selected && !s.attempts.is_empty())
            .filter_map(|(i, s)| s.last().map(|a| (a.started_at, i)))
            .collect();
        others.sort_by(|a, b| b.cmp(a));
        out.extend(
            others
                .into_iter()
                .map(|(_, i)| i)
                .take(max.saturating_sub(1)),
        );
    }
    out
}

pub(super) fn panes(f: &mut Frame, app: &App, area: Rect) {
    if area.height < 3 {
        return;
    }
    let count = match area.height {
        0..=23 => 1,
        24..=39 => 2,
        _ => 3,
    };
    let ids = pane_steps(app, count);
    // Wide enough: the selected step's pane on the left, the others stacked on the right.
    // Tab gives a pane the keys (Esc gives them back): it is drawn focused and scrolls.
    let focus = |k: usize| match app.pane_focus {
        Some((f, up)) if f == k => (true, Some(up)),
        Some(_) => (false, None),
        None => (k == 0, None),
    };
    if area.width >= 140 && ids.len() > 1 {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Fill(1)]).areas(area);
        let (foc, up) = focus(0);
        pane(f, app, ids[0], left, foc, up);
        let rest = Layout::vertical(vec![Constraint::Fill(1); ids.len() - 1]).split(right);
        for (k, (i, r)) in ids.iter().skip(1).zip(rest.iter()).enumerate() {
            let (foc, up) = focus(k + 1);
            pane(f, app, *i, *r, foc, up);
        }
        return;
    }
    let constraints: Vec<Constraint> = ids
        .iter()
        .enumerate()
        .map(|(k, _)| {
            if k == 0 && ids.len() > 1 {
                Constraint::Percentage(60)
            } else {
                Constraint::Fill(1)
            }
        })
        .collect();
    let rects = Layout::vertical(constraints).split(area);
    for (k, (i, r)) in ids.iter().zip(rects.iter()).enumerate() {
        let (foc, up) = focus(k);
        pane(f, app, *i, *r, foc, up);
    }
}

/// One step's log pane; `scrolled`: it has the keys, scrolled this many lines up from its end.
pub(super) fn pane(
    f: &mut Frame,
    app: &App,
    i: usize,
    area: Rect,
    focused: bool,
    scrolled: Option<usize>,
) {
    let t = app.theme();
    let Some(step) = app.pipeline.steps.get(i) else {
        return;
    };
    let st = app.status_of(i);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(if focused { t.border_focused } else { t.border })
        .title(pane_title(app, i, st, scrolled));
    let mut inner = block.inner(area);
    f.render_widget(block, area);
    // A failed step's diagnosis sits above its log: what went wrong and what to do.
    let diagnosis = app
        .run
        .as_ref()
        .and_then(|r| r.steps.get(i))
        .and_then(|s| s.last())
        .and_then(|a| a.diagnosis.as_ref())
        .filter(|_| st == StepStatus::Failed);
    if let Some(d) = diagnosis
        && inner.height >= 4
    {
        inner = diagnosis_box(f, app, d, inner);
    }
    let matched = diagnosis.and_then(|d| d.text.as_deref());
    let lines = pane_lines(app, step, st, scrolled, inner, matched);
    f.render_widget(Paragraph::new(lines), inner);
}

/// A pane's title: the step, its status, time, exit code, attempt, and whether it has the keys.
fn pane_title(app: &App, i: usize, st: StepStatus, scrolled: Option<usize>) -> Line<'static> {
    let t = app.theme();
    let id = app
        .pipeline
        .steps
        .get(i)
        .map(|s| s.id.as_str())
        .unwrap_or_default();
    let mut title = vec![
        Span::styled(format!(" {id} "), t.title),
        Span::styled(format!("{} ", st.word()), status_style(app, st)),
    ];
    let (time, exit) = elapsed(app, i);
    let attempt = app
        .run
        .as_ref()
        .and_then(|r| r.steps.get(i))
        .map(|s| s.attempts.len())
        .unwrap_or(0);
    if !time.is_empty() {
        title.push(Span::styled(format!("{time} "), t.dim));
    }
    if !exit.is_empty() {
        title.push(Span::styled(
            format!("exit {exit} "),
            if exit == "0" { t.dim } else { t.failed },
        ));
    }
    if attempt > 1 {
        title.push(Span::styled(format!("attempt {attempt} "), t.dim));
    }
    if let Some(up) = scrolled {
        title.push(Span::styled(
            if up == 0 {
                "· has the keys (j/k scroll, Esc) ".to_string()
            } else {
                format!("· {up} lines up (G: end, Esc) ")
            },
            t.key,
        ));
    }
    Line::from(title)
}

/// The diagnosis box at the top of `inner`; returns what is left below it for the log.
fn diagnosis_box(
    f: &mut Frame,
    app: &App,
    d: &crate::pipeline::diagnosis::Diagnosis,
    inner: Rect,
) -> Rect {
    let t = app.theme();
    let text = vec![
        Line::from(vec![
            Span::styled("✚ ", t.failed),
            Span::styled(
                crate::text::visible(&d.cause).into_owned(),
                t.failed.add_modifier(Modifier::BOLD),
            ),
        ]),
        Line::from(vec![
            Span::styled("→ ", t.key),
            Span::styled(crate::text::visible(&d.fix).into_owned(), t.text),
        ]),
    ];
    let para = Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: false });
    let want = (wrapped_rows(&format!("✚ {}", d.cause), inner.width as usize)
        + wrapped_rows(&format!("→ {}", d.fix), inner.width as usize)) as u16;
    let h = want.min(inner.height / 2).max(2);
    let [top, rest] =
        Layout::vertical([Constraint::Length(h + 1), Constraint::Min(1)]).areas(inner);
    f.render_widget(
        para.block(
            Block::new()
                .borders(ratatui::widgets::Borders::BOTTOM)
                .border_style(t.border),
        ),
        top,
    );
    rest
}

/// The log lines a pane shows (the last that fit, or `scrolled` up from there), the line the
/// diagnosis matched reversed; or what it waits for.
fn pane_lines(
    app: &App,
    step: &crate::pipeline::spec::Step,
    st: StepStatus,
    scrolled: Option<usize>,
    inner: Rect,
    matched: Option<&str>,
) -> Vec<Line<'static>> {
    let t = app.theme();
    let rows = inner.height as usize;
    let width = inner.width as usize;
    match app.tails.get(&step.id) {
        Some(tail) if !tail.is_empty() => tail
            .iter()
            .skip(
                tail.len()
                    .saturating_sub(rows)
                    .saturating_sub(scrolled.unwrap_or(0))
                    .min(tail.len().saturating_sub(1)),
            )
            .take(rows)
            .map(|l| {
                let mut base = if l.stream == Stream::Stderr {
                    t.stderr
                } else {
                    t.text
                };
                // The line the diagnosis matched stands out.
                if matched.is_some_and(|m| {
                    crate::text::mask(&l.text, &app.secrets).trim_end() == m.trim_end()
                }) {
                    base = base.add_modifier(Modifier::REVERSED);
                }
                Line::from(ansi::spans(
                    &crate::text::mask(&l.text, &app.secrets),
                    base,
                    width,
                ))
            })
            .collect(),
        _ => {
            let msg = match st {
                StepStatus::Pending => crate::text::visible(&step.description).into_owned(),
                StepStatus::Running | StepStatus::Serving => "no output yet".to_string(),
                _ => "no output".to_string(),
            };
            vec![Line::styled(msg, t.dim)]
        }
    }
}

/// Rows `text` takes when word-wrapped at `width` (as `Paragraph` wraps it).
pub(crate) fn wrapped_rows(text: &str, width: usize) -> usize {
    use unicode_width::UnicodeWidthStr;
    if width == 0 {
        return 1;
    }
    let (mut rows, mut col) = (1, 0);
    for word in text.split(' ') {
        let w = word.width();
        let need = if col == 0 { w } else { col + 1 + w };
        if need <= width {
            col = need;
        } else if w <= width {
            rows += 1;
            col = w;
        } else {
            // A word longer than the row is cut across rows.
            rows += usize::from(col > 0) + (w - 1) / width;
            col = w % width;
        }
    }
    rows
}
