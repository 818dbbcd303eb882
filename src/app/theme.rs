//! Semantic themes loaded from `themes/*.toml` (built in), overridable from the config dir.

use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// Built-in theme files, in cycling order (the first is the default).
pub const BUILTIN: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("basic16", include_str!("../../themes/basic16.toml")),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: String,
    fg: String,
    bg: String,
    dim: String,
    title: String,
    border: String,
    border_focused: String,
    selected_bg: String,
    pending: String,
    running: String,
    succeeded: String,
    failed: String,
    skipped: String,
    stale: String,
    stderr: String,
    timestamp: String,
    match_fg: String,
    match_bg: String,
    button_fg: String,
    button_bg: String,
    danger_bg: String,
    key: String,
    gauge: String,
}

/// Colours by meaning, never by hue, so every view reads the same in every theme.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    /// Theme name.
    pub name: String,
    /// Plain text.
    pub text: Style,
    /// Secondary text.
    pub dim: Style,
    /// Titles.
    pub title: Style,
    /// Borders.
    pub border: Style,
    /// Border of the focused pane.
    pub border_focused: Style,
    /// Selected row.
    pub selected: Style,
    /// Step statuses.
    pub pending: Style,
    /// Running step.
    pub running: Style,
    /// Succeeded step.
    pub succeeded: Style,
    /// Failed step.
    pub failed: Style,
    /// Skipped step.
    pub skipped: Style,
    /// Stale step.
    pub stale: Style,
    /// stderr lines.
    pub stderr: Style,
    /// Timestamps.
    pub timestamp: Style,
    /// Search matches.
    pub matched: Style,
    /// Buttons.
    pub button: Style,
    /// Destructive buttons.
    pub danger: Style,
    /// Key names in hints.
    pub key: Style,
    /// Gauges.
    pub gauge: Style,
    /// Whether colours are used at all (off with NO_COLOR).
    pub colored: bool,
}

/// What is wrong with a theme file.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    /// It cannot be read.
    #[error(transparent)]
    Read(#[from] std::io::Error),
    /// Not TOML, or a field is missing.
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// A colour that is not one.
    #[error(
        "`{field}`: \"{value}\" is not a colour (use a name like \"red\", \"#rrggbb\" or \"reset\")"
    )]
    Colour {
        /// The field.
        field: String,
        /// What it says.
        value: String,
    },
}

fn color(field: &str, v: &str) -> Result<Color, ThemeError> {
    Color::from_str(v).map_err(|_| ThemeError::Colour {
        field: field.to_string(),
        value: v.to_string(),
    })
}

impl Theme {
    /// Parses a theme file; messages name the field and quote the bad value.
    pub fn parse(text: &str) -> Result<Self, ThemeError> {
        let f: ThemeFile = toml::from_str(text)?;
        let fg = color("fg", &f.fg)?;
        let bg = color("bg", &f.bg)?;
        let s = |field: &str, v: &str| -> Result<Style, ThemeError> {
            Ok(Style::new().fg(color(field, v)?))
        };
        Ok(Self {
            name: f.name,
            text: Style::new().fg(fg).bg(bg),
            dim: s("dim", &f.dim)?,
            title: s("title", &f.title)?.add_modifier(Modifier::BOLD),
            border: s("border", &f.border)?,
            border_focused: s("border_focused", &f.border_focused)?,
            selected: Style::new()
                .bg(color("selected_bg", &f.selected_bg)?)
                .add_modifier(Modifier::BOLD),
            pending: s("pending", &f.pending)?,
            running: s("running", &f.running)?.add_modifier(Modifier::BOLD),
            succeeded: s("succeeded", &f.succeeded)?,
            failed: s("failed", &f.failed)?.add_modifier(Modifier::BOLD),
            skipped: s("skipped", &f.skipped)?,
            stale: s("stale", &f.stale)?,
            stderr: s("stderr", &f.stderr)?,
            timestamp: s("timestamp", &f.timestamp)?,
            matched: Style::new()
                .fg(color("match_fg", &f.match_fg)?)
                .bg(color("match_bg", &f.match_bg)?),
            button: Style::new()
                .fg(color("button_fg", &f.button_fg)?)
                .bg(color("button_bg", &f.button_bg)?)
                .add_modifier(Modifier::BOLD),
            danger: Style::new()
                .fg(color("button_fg", &f.button_fg)?)
                .bg(color("danger_bg", &f.danger_bg)?)
                .add_modifier(Modifier::BOLD),
            key: s("key", &f.key)?.add_modifier(Modifier::BOLD),
            gauge: s("gauge", &f.gauge)?,
            colored: true,
        })
    }

    /// No colours at all (NO_COLOR): meaning carried by bold, reverse and underline.
    pub fn monochrome() -> Self {
        let plain = Style::new();
        let bold = plain.add_modifier(Modifier::BOLD);
        let rev = plain.add_modifier(Modifier::REVERSED);
        Self {
            name: "no-color".into(),
            text: plain,
            dim: plain.add_modifier(Modifier::DIM),
            title: bold,
            border: plain,
            border_focused: bold,
            selected: rev,
            pending: plain.add_modifier(Modifier::DIM),
            running: bold,
            succeeded: plain,
            failed: bold.add_modifier(Modifier::UNDERLINED),
            skipped: plain.add_modifier(Modifier::DIM),
            stale: plain.add_modifier(Modifier::ITALIC),
            stderr: plain.add_modifier(Modifier::ITALIC),
            timestamp: plain.add_modifier(Modifier::DIM),
            matched: rev,
            button: rev,
            danger: rev.add_modifier(Modifier::BOLD),
            key: bold,
            gauge: plain,
            colored: false,
        }
    }

    /// Only the built-in themes (reproducible renders).
    pub fn load_all_builtin() -> (Vec<Theme>, Vec<String>) {
        let mut themes = Vec::new();
        let mut problems = Vec::new();
        for (name, text) in BUILTIN {
            match Theme::parse(text) {
                Ok(t) => themes.push(t),
                Err(e) => problems.push(format!("built-in theme {name}: {e}")),
            }
        }
        (themes, problems)
    }

    /// The built-in themes plus any `*.toml` in `<config dir>/stage2-tui/themes` (same name
    /// replaces a built-in one). Broken user files are reported, not fatal.
    pub fn load_all() -> (Vec<Theme>, Vec<String>) {
        let (mut themes, mut problems) = Self::load_all_builtin();
        if let Some(dir) = crate::app::keymap::config_dir().map(|d| d.join("themes"))
            && let Ok(entries) = std::fs::read_dir(&dir)
        {
            let mut paths: Vec<_> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            paths.sort();
            for p in paths {
                match crate::safefs::read_settings_file(&p)
                    .map_err(ThemeError::from)
                    .and_then(|t| Theme::parse(&t))
                {
                    Ok(t) => match themes.iter_mut().find(|x| x.name == t.name) {
                        Some(slot) => *slot = t,
                        None => themes.push(t),
                    },
                    Err(e) => problems.push(format!("theme {}: {e}", p.display())),
                }
            }
        }
        (themes, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_theme_file_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("themes");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let t = Theme::parse(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(
                format!("{}.toml", t.name),
                p.file_name().unwrap().to_string_lossy(),
                "name matches file"
            );
            n += 1;
        }
        assert_eq!(n, BUILTIN.len(), "every file in themes/ is built in");
    }

    #[test]
    fn basic16_uses_only_the_16_colours() {
        let t = Theme::parse(BUILTIN[3].1).unwrap();
        for s in [
            t.text,
            t.dim,
            t.title,
            t.running,
            t.failed,
            t.succeeded,
            t.matched,
            t.button,
            t.selected,
        ] {
            for c in [s.fg, s.bg].into_iter().flatten() {
                assert!(!matches!(c, Color::Rgb(..) | Color::Indexed(_)), "{c:?}");
            }
        }
    }

    #[test]
    fn bad_colour_names_the_field() {
        let text = BUILTIN[0]
            .1
            .replace("failed = \"#ff5f5f\"", "failed = \"blood\"");
        assert_eq!(
            Theme::parse(&text).unwrap_err().to_string(),
            "`failed`: \"blood\" is not a colour (use a name like \"red\", \"#rrggbb\" or \"reset\")"
        );
    }
}
