//! The run dashboard: steps, live log panes, the ign-webserver window, buttons.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Gauge, Paragraph};

use super::{Hit, Hits, ansi, buttons, footer, right};
use crate::app::{Action, App, Scope, UrlCheck};
use crate::logformat::Stream;
use crate::pipeline::StepStatus;

mod panes;
mod side;

pub(crate) use panes::wrapped_rows;
use panes::*;
use side::*;

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const SPINNER_ASCII: [&str; 4] = ["|", "/", "-", "\\"];

/// Short duration: `4.2s`, `1m05s`, `1h02m`.
pub fn short(d: chrono::Duration) -> String {
    crate::text::duration(d.to_std().unwrap_or_default())
}

fn icon(app: &App, st: StepStatus) -> &'static str {
    let frame = app.tick as usize;
    match (st, app.ascii) {
        (StepStatus::Running, false) => SPINNER[frame % SPINNER.len()],
        (StepStatus::Running, true) => SPINNER_ASCII[frame % SPINNER_ASCII.len()],
        (StepStatus::Pending, false) => "·",
        (StepStatus::Serving, false) => "◉",
        (StepStatus::Succeeded, false) => "✔",
        (StepStatus::Failed, false) => "✘",
        (StepStatus::Stopped, false) => "■",
        (StepStatus::Skipped, false) => "↷",
        (StepStatus::Stale, false) => "↻",
        (StepStatus::Pending, true) => ".",
        (StepStatus::Serving, true) => "@",
        (StepStatus::Succeeded, true) => "+",
        (StepStatus::Failed, true) => "X",
        (StepStatus::Stopped, true) => "#",
        (StepStatus::Skipped, true) => ">",
        (StepStatus::Stale, true) => "~",
    }
}

/// Style of a status.
pub fn status_style(app: &App, st: StepStatus) -> Style {
    let t = app.theme();
    match st {
        StepStatus::Pending => t.pending,
        StepStatus::Running | StepStatus::Serving => t.running,
        StepStatus::Succeeded => t.succeeded,
        StepStatus::Failed | StepStatus::Stopped => t.failed,
        StepStatus::Skipped => t.skipped,
        StepStatus::Stale => t.stale,
    }
}

fn elapsed(app: &App, i: usize) -> (String, String) {
    let Some(s) = app.run.as_ref().and_then(|r| r.steps.get(i)) else {
        return (String::new(), String::new());
    };
    let Some(a) = s.last() else {
        return (String::new(), String::new());
    };
    let end: DateTime<Utc> = a.finished_at.unwrap_or(app.now);
    let time = short(end - a.started_at);
    let exit = a.exit_code.map(|c| c.to_string()).unwrap_or_default();
    (time, exit)
}

/// Draws the dashboard.
pub fn draw(f: &mut Frame, app: &App, area: Rect, hits: &mut Hits) {
    let t = app.theme();
    // A banner while the engine is unreachable or the disk is full: the run waits for it.
    let banner_text = app
        .trouble
        .as_ref()
        .map(|m| format!(" ⚠ {} ", crate::text::visible(m)));
    let banner_h = banner_text.as_ref().map_or(0, |m| {
        let w = area.width.max(1) as usize;
        (unicode_width::UnicodeWidthStr::width(m.as_str()).div_ceil(w) as u16).clamp(1, 3)
    });
    // A long message wraps onto up to 3 rows instead of being cut at the edge.
    let msg = crate::text::visible(app.status.as_deref().unwrap_or_default()).into_owned();
    let status_h = (unicode_width::UnicodeWidthStr::width(msg.as_str())
        .div_ceil(area.width.max(1) as usize) as u16)
        .clamp(1, 3)
        .min(area.height.saturating_sub(7).max(1));
    let [head, body, btns, status, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(status_h),
        Constraint::Length(1),
    ])
    .areas(area);
    // Taken from the top of the body only while there is a banner.
    let (banner, body) = if banner_h > 0 && body.height > banner_h + 2 {
        let [b, rest] =
            Layout::vertical([Constraint::Length(banner_h), Constraint::Min(1)]).areas(body);
        (b, rest)
    } else {
        (head, body)
    };
    header(f, app, head);
    if let Some(m) = banner_text {
        f.render_widget(
            Paragraph::new(m)
                .style(t.failed.add_modifier(ratatui::style::Modifier::REVERSED))
                .wrap(ratatui::widgets::Wrap { trim: false }),
            banner,
        );
    }
    body_parts(f, app, body, hits);
    buttons(f, app, btns, &app.buttons(), hits);
    status_row(f, app, msg, status);
    // The buttons row already shows the step actions that apply, with their keys.
    let wanted = [
        Action::Down,
        Action::Up,
        Action::Quit,
        Action::Setup,
        Action::Messages,
        Action::Shell,
        Action::Inspect,
        Action::Pager,
        Action::DebugShell,
        Action::Search,
        Action::FocusPane,
        Action::CycleTheme,
        Action::ToggleMouse,
        Action::Help,
    ];
    f.render_widget(
        Paragraph::new(footer(app, Scope::Dashboard, &wanted, foot.width)),
        foot,
    );
}

/// The steps, the window, the cluster and the log panes: side by side when wide enough, else
/// the steps on top.
fn body_parts(f: &mut Frame, app: &App, body: Rect, hits: &mut Hits) {
    let wide = body.width >= 70;
    let steps_w = if wide {
        (body.width * 36 / 100).clamp(30, 44)
    } else {
        body.width
    };
    let steps_h = if wide {
        body.height
    } else {
        (app.pipeline.steps.len() as u16 + 3)
            .min(body.height / 2)
            .max(3)
    };
    let (steps_area, rest) = if wide {
        let [a, b] =
            Layout::horizontal([Constraint::Length(steps_w), Constraint::Min(1)]).areas(body);
        (a, b)
    } else {
        let [a, b] =
            Layout::vertical([Constraint::Length(steps_h), Constraint::Min(0)]).areas(body);
        (a, b)
    };
    steps(f, app, steps_area, hits);
    let rest = match &app.window {
        Some(_) if rest.height >= 7 => {
            let [w, r] = Layout::vertical([Constraint::Length(4), Constraint::Min(1)]).areas(rest);
            window(f, app, w);
            r
        }
        _ => rest,
    };
    let rest = match &app.cluster {
        Some(c) if rest.height >= 14 => {
            // One more line for CSRs that are not a node's, when there are any.
            let h = 6 + u16::from(!c.csr_other.is_empty());
            let [w, r] = Layout::vertical([Constraint::Length(h), Constraint::Min(1)]).areas(rest);
            cluster(f, app, c, w);
            r
        }
        _ => rest,
    };
    panes(f, app, rest);
}

/// The last message, coloured by how the run ended.
fn status_row(f: &mut Frame, app: &App, msg: String, status: Rect) {
    let t = app.theme();
    let st = match &app.finish {
        Some(Ok(crate::pipeline::Finish::Succeeded)) => t.succeeded,
        Some(
            Ok(crate::pipeline::Finish::Failed { .. } | crate::pipeline::Finish::Stopped { .. })
            | Err(_),
        ) => t.failed,
        _ => t.dim,
    };
    f.render_widget(
        Paragraph::new(Span::styled(msg, st)).wrap(ratatui::widgets::Wrap { trim: false }),
        status,
    );
}

/// How the run stands, for the header: running (and why, when only a window is left),
/// completed, failed, stopped or idle.
fn outcome(app: &App) -> (String, ratatui::style::Style) {
    let t = app.theme();
    let run = app.run.as_ref();
    // Every step done but a service window still open: say why the run is still "running".
    let only_serving = run.is_some_and(|r| {
        r.steps
            .iter()
            .all(|s| s.status.is_done() || s.status == crate::pipeline::StepStatus::Serving)
    });
    let serving_reason = app.window.as_ref().filter(|_| only_serving).map(|w| {
        format!(
            "running: {} serves until {}",
            w.step,
            w.ends_at.with_timezone(&chrono::Local).format("%H:%M:%S")
        )
    });
    match (app.driving, run.map(|r| r.outcome)) {
        (true, _) => (
            serving_reason.unwrap_or_else(|| "running".into()),
            t.running,
        ),
        (false, Some(crate::pipeline::Outcome::Succeeded)) => ("completed".into(), t.succeeded),
        (false, Some(crate::pipeline::Outcome::Failed)) => ("failed".into(), t.failed),
        (false, Some(crate::pipeline::Outcome::Stopped)) => ("stopped".into(), t.failed),
        (false, _) => ("idle".into(), t.dim),
    }
}

fn header(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme();
    let run = app.run.as_ref();
    let outcome = outcome(app);
    // Narrow terminals drop the run id first, then shorten the folder from its start: the
    // run's status always shows.
    let width = area.width as usize;
    let run_text = run
        .map(|r| format!("  run {}  ", r.run_id))
        .unwrap_or_default();
    let fixed = " stage2-tui ".len() + outcome.0.chars().count();
    let run_text = if fixed + app.header.deployconfig.chars().count() + run_text.len() <= width {
        run_text
    } else {
        "  ".to_string()
    };
    let room = width.saturating_sub(fixed + run_text.len());
    let dc = &app.header.deployconfig;
    let dc = if dc.chars().count() <= room {
        dc.clone()
    } else if room > 1 {
        let keep: String = dc
            .chars()
            .rev()
            .take(room - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{keep}")
    } else {
        String::new()
    };
    let line = Line::from(vec![
        Span::styled(" stage2-tui ", t.title),
        Span::styled(dc, t.text),
        Span::styled(run_text, t.dim),
        Span::styled(outcome.0, outcome.1),
    ]);
    // Attached to another process's run: who drives it matters more than the engine.
    let (right_text, right_style) = match &app.driven_by {
        Some(d) => (
            format!(
                "{}; actions here are requests to it ",
                crate::text::visible(d)
            ),
            t.running,
        ),
        None => (format!("{} ", app.header.engine), t.dim),
    };
    let left_w = line.width();
    let used = left_w + right_text.chars().count() + 2;
    f.render_widget(Paragraph::new(line), area);
    if (area.width as usize) >= used {
        f.render_widget(right(right_text, right_style), area);
    } else if let Some(d) = &app.driven_by {
        // Narrower: without "actions here are requests to it", then only who drives.
        let who = d.split(", pid").next().unwrap_or(d);
        let fits = |t: &str| (area.width as usize) >= left_w + t.chars().count() + 3;
        if let Some(short) = [d.as_str(), who]
            .into_iter()
            .map(|t| format!("{} ", crate::text::visible(t)))
            .find(|t| fits(t))
        {
            f.render_widget(right(short, right_style), area);
        }
    }
}

/// One row of the step list: its icon, id (and how often it ran), and the longest form of its
/// time, exit code or window that fits `w`; and the row's style.
fn step_row(app: &App, i: usize, w: usize) -> (Line<'static>, Style) {
    let t = app.theme();
    let st = app.status_of(i);
    let (time, exit) = elapsed(app, i);
    // A step that ran more than once says how often.
    let tries = app
        .run
        .as_ref()
        .and_then(|r| r.steps.get(i))
        .map_or(0, |s| s.attempts.len());
    let id = &if tries > 1 {
        format!("{} ×{tries}", app.pipeline.steps[i].id)
    } else {
        app.pipeline.steps[i].id.clone()
    };
    let sel = i == app.selected;
    let base = if sel { t.selected } else { Style::new() };
    let left_len = 3 + id.chars().count();
    // Longest form that fits with a space before it: "serving 8m20s" / "1m14s exit 1" / "1m14s".
    let is_service = app.pipeline.steps[i].is_service();
    let serving = match st {
        StepStatus::Serving => "serving ",
        _ if is_service && !time.is_empty() => "served ",
        _ => "",
    };
    let candidates = [
        if exit.is_empty() || exit == "0" {
            format!("{serving}{time}")
        } else {
            format!("{time} exit {exit}")
        },
        time.clone(),
        String::new(),
    ];
    let right_text = candidates
        .into_iter()
        .find(|c| c.is_empty() || left_len + c.chars().count() + 2 <= w)
        .unwrap_or_default();
    let pad = w.saturating_sub(left_len + right_text.chars().count() + 1);
    let line = Line::from(vec![
        Span::styled(
            format!(" {} ", icon(app, st)),
            status_style(app, st).patch(base),
        ),
        Span::styled(id.clone(), t.text.patch(base)),
        Span::styled(" ".repeat(pad), base),
        Span::styled(format!("{right_text} "), status_style(app, st).patch(base)),
    ]);
    (line, base)
}

fn steps(f: &mut Frame, app: &App, area: Rect, hits: &mut Hits) {
    let t = app.theme();
    // A `/` filter lists only the steps that match, and says so in the title.
    let title = match &app.step_filter {
        None => " Steps ".to_string(),
        Some(flt) if flt.typing => format!(" Steps /{}▏ ", crate::text::visible(&flt.query)),
        Some(flt) => format!(" Steps /{} (Esc: all) ", crate::text::visible(&flt.query)),
    };
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.border)
        .title(Span::styled(title, t.title));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let listed = app.listed_steps();
    let n = listed.len();
    let rows = inner.height as usize;
    let has_total = rows > n;
    if n == 0 && rows > 0 {
        f.render_widget(
            Paragraph::new(Line::styled("no step matches (Esc lists them all)", t.dim)),
            Rect::new(inner.x, inner.y, inner.width, 1),
        );
    }
    let at = listed.iter().position(|i| *i == app.selected).unwrap_or(0);
    let first = if rows == 0 {
        0
    } else {
        at.saturating_sub(rows.saturating_sub(1))
    };
    for (row, i) in listed.iter().copied().skip(first).enumerate().take(rows) {
        let r = Rect::new(inner.x, inner.y + row as u16, inner.width, 1);
        let (line, base) = step_row(app, i, inner.width as usize);
        f.render_widget(Paragraph::new(line).style(base), r);
        hits.push((r, Hit::Step(i)));
    }
    if let Some(run) = &app.run {
        let (work, wall) = run.work_and_wall(&app.pipeline, app.now);
        if has_total && !work.is_zero() {
            let r = Rect::new(inner.x, inner.y + inner.height - 1, inner.width, 1);
            let text = format!("work {}  wall {} ", short(work), short(wall));
            f.render_widget(right(text, t.dim), r);
        }
    }
}
