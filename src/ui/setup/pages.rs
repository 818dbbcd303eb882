//! The installer, tag and review pages.

use super::*;

pub(super) fn version_lines(
    app: &App,
    v: &Option<Result<String, crate::app::setup::TaskError>>,
) -> Vec<Line<'static>> {
    let t = app.theme();
    match v {
        None => vec![Line::styled("asking it for its version…", t.dim)],
        Some(Err(e)) => vec![Line::styled(e.to_string(), t.failed)],
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

pub(super) fn installer(f: &mut Frame, app: &App, s: &Setup, area: Rect) {
    let t = app.theme();
    let (present, aside) = (s.installer.override_present, s.installer.override_aside);
    let [a, b] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let (emb, ovr) = match &s.installer.versions {
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
            &if s.installer.versions.is_none() {
                None
            } else {
                ovr
            },
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

pub(super) fn tags(f: &mut Frame, app: &App, s: &Setup, area: Rect) {
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
    match &s.tag.tags {
        None => lines.push(Line::styled("listing…", t.dim)),
        Some(Err(e)) => lines.push(Line::styled(e.to_string(), t.failed)),
        Some(Ok(list)) if list.is_empty() => lines.push(Line::styled(
            format!(
                "no local image of this registry; {} pulls a tag",
                app.key(Scope::Setup, Action::PullTag)
            ),
            t.dim,
        )),
        Some(Ok(list)) => {
            for (i, (tag, have, all)) in list.iter().enumerate() {
                let sel = i == s.tag.selected;
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
    if let Some(p) = &s.tag.pulling {
        lines.push(Line::default());
        lines.push(Line::styled(p.clone(), t.running));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

/// What saving will change in each file, line by line.
fn changes(app: &App, s: &Setup) -> Vec<Line<'static>> {
    let t = app.theme();
    let mut lines = Vec::new();
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
    lines
}

pub(super) fn review(f: &mut Frame, app: &App, s: &Setup, area: Rect) {
    let t = app.theme();
    let blocking = s.blocking();
    let installer = if s.installer.override_present {
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
    if s.conflict() {
        lines.push(Line::styled(
            format!("A file changed on disk since it was loaded: {} saves yours over it, {} reloads it.", app.key(Scope::Setup, Action::Overwrite), app.key(Scope::Setup, Action::Reload)),
            t.failed,
        ));
    }
    lines.push(Line::default());
    lines.extend(changes(app, s));
    f.render_widget(
        Paragraph::new(lines)
            .block(block(app, " Review ".into(), true))
            .wrap(Wrap { trim: false }),
        area,
    );
}
