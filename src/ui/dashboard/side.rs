//! The dashboard's side boxes: the web server's window and the cluster.

use super::*;

pub(super) fn window(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme();
    let Some(w) = &app.window else { return };
    let title = match &w.url {
        Some(u) => format!(" {} serving {u} ", w.step),
        None => format!(" {} ", w.step),
    };
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.border_focused)
        .title(Span::styled(title, t.title));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let left = (w.ends_at - app.now).num_seconds().max(0);
    let total = (w.ends_at - w.opened_at).num_seconds().max(1);
    let check = url_check(app, w);
    let [top, evidence] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(inner);
    let check_w = (check.0.chars().count() as u16 + 2).min(inner.width / 2);
    let [g, c] = Layout::horizontal([Constraint::Min(10), Constraint::Length(check_w)]).areas(top);
    let gauge = countdown(app, w, left, total);
    f.render_widget(gauge, g);
    f.render_widget(
        Paragraph::new(Span::styled(format!(" {}", check.0), check.1)),
        c,
    );
    let line = fetched(app, w);
    f.render_widget(Paragraph::new(line), evidence);
}

/// What the web server answers stage2-tui's own check, and its colour.
fn url_check(app: &App, w: &crate::app::WindowInfo) -> (String, ratatui::style::Style) {
    let t = app.theme();
    match &w.check {
        UrlCheck::Unknown => ("checking…".to_string(), t.dim),
        UrlCheck::Answered { status, bytes } => (
            format!(
                "answers {status}{}",
                bytes
                    .map(|b| format!(" ({} KB)", b.div_ceil(1024)))
                    .unwrap_or_default()
            ),
            if *status == 200 {
                t.succeeded
            } else {
                t.failed
            },
        ),
        // nginx takes a moment to start: no alarm in the window's first seconds.
        UrlCheck::Failed(_) if (app.now - w.opened_at).num_seconds() < 10 => {
            ("starting…".to_string(), t.dim)
        }
        UrlCheck::Failed(e) => (format!("not answering: {e}"), t.failed),
    }
}

/// The window's countdown, or what it waits for before it starts.
fn countdown(app: &App, w: &crate::app::WindowInfo, left: i64, total: i64) -> Gauge<'static> {
    let t = app.theme();
    match &w.waiting_for {
        // The countdown has not started: the bootstrap VM does not exist yet.
        Some(anchor) => {
            let ttl = app
                .pipeline
                .steps
                .iter()
                .find(|s| s.id == w.step)
                .and_then(|s| s.window())
                .map_or(crate::pipeline::spec::DEFAULT_TTL_SECS, |w| w.ttl_secs);
            Gauge::default()
                .gauge_style(t.gauge)
                .ratio(1.0)
                .label(Span::styled(
                    format!("waiting for {anchor}, then {:02}:{:02}", ttl / 60, ttl % 60),
                    t.text,
                ))
        }
        None => Gauge::default()
            .gauge_style(t.gauge)
            .ratio((left as f64 / total as f64).clamp(0.0, 1.0))
            .label(Span::styled(
                format!("{:02}:{:02} left", left / 60, left % 60),
                t.text,
            )),
    }
}

/// The web server's own access log: did the bootstrap VM fetch its ignition?
fn fetched(app: &App, w: &crate::app::WindowInfo) -> Span<'static> {
    let t = app.theme();
    match w.fetches.last() {
        Some(last) => {
            let more = w.fetches.len() - 1;
            let mut l = last.describe();
            if more > 0 {
                l.push_str(&format!(" (and {more} earlier)"));
            }
            Span::styled(
                l,
                if last.status == 200 {
                    t.succeeded
                } else {
                    t.failed
                },
            )
        }
        None => Span::styled("bootstrap.ign not fetched yet", t.dim),
    }
}

/// The cluster operators: how many are available, progressing, degraded, and which are awaited.
fn operator_lines(app: &App, c: &crate::pipeline::cluster::Snapshot) -> Vec<Line<'static>> {
    let t = app.theme();
    let Some(o) = &c.operators else {
        return vec![Line::from(Span::styled("operators not read yet", t.dim))];
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!("operators {}/{} available", o.available, o.total),
            if o.settled() { t.succeeded } else { t.running },
        ),
        Span::styled(
            format!(", {} progressing, {} degraded", o.progressing, o.degraded),
            if o.degraded > 0 { t.failed } else { t.dim },
        ),
    ])];
    if !o.waiting_for.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("  waiting for: {}", o.waiting_for.join(", ")),
            t.dim,
        )));
    }
    lines
}

/// The cluster taking shape: nodes Ready against the declared ones, CSRs, operators.
pub(super) fn cluster(
    f: &mut Frame,
    app: &App,
    c: &crate::pipeline::cluster::Snapshot,
    area: Rect,
) {
    let t = app.theme();
    let age = (app.now - c.at).num_seconds().max(0);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.border)
        .title(Span::styled(" Cluster ", t.title))
        .title(
            ratatui::text::Line::from(Span::styled(
                format!(" looked {} ago ", short(chrono::Duration::seconds(age))),
                t.dim,
            ))
            .right_aligned(),
        );
    let inner = block.inner(area);
    f.render_widget(block, area);
    let mut lines = Vec::new();
    if let Some(e) = c.error.as_ref().filter(|_| c.nodes.is_empty()) {
        lines.push(Line::from(Span::styled(
            "the API does not answer yet",
            t.dim,
        )));
        lines.push(Line::from(Span::styled(
            crate::text::visible(e).into_owned(),
            t.dim,
        )));
        f.render_widget(
            Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: true }),
            inner,
        );
        return;
    }
    let ready = c.ready_declared();
    let all = c.declared.len();
    let pending = c.csr_pending.len();
    let ok = |b: bool| if b { t.succeeded } else { t.running };
    lines.push(Line::from(vec![
        Span::styled(
            format!("nodes {ready}/{all} Ready"),
            ok(ready == all && all > 0),
        ),
        Span::styled(
            format!("   CSRs {pending} pending, {} approved", c.csr_approved),
            if pending > 0 { t.running } else { t.dim },
        ),
    ]));
    let missing = c.not_ready();
    lines.push(Line::from(Span::styled(
        if missing.is_empty() {
            "  every declared node is Ready".to_string()
        } else {
            format!("  not Ready: {}", missing.join(", "))
        },
        t.dim,
    )));
    if !c.csr_other.is_empty() {
        lines.push(Line::from(Span::styled(
            format!(
                "  not a node's, left alone: {}",
                crate::text::visible(&c.csr_other.join("; "))
            ),
            t.failed,
        )));
    }
    lines.extend(operator_lines(app, c));
    if let Some(e) = &c.error {
        lines.push(Line::from(Span::styled(
            format!("last look: {}", crate::text::visible(e)),
            t.dim,
        )));
    }
    f.render_widget(Paragraph::new(lines), inner);
}
