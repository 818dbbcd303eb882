//! The key map is data (`keys.toml`, overridable by the user); help and footer hints derive from it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;

const DEFAULT: &str = include_str!("keys.toml");

/// Where key bindings apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Everywhere unless a screen binds the key itself.
    Global,
    /// The run dashboard.
    Dashboard,
    /// The full-screen log.
    Log,
    /// The setup flow.
    Setup,
    /// A yes/no question.
    Confirm,
    /// The help overlay.
    Help,
}

impl Scope {
    fn section(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Dashboard => "dashboard",
            Scope::Log => "log",
            Scope::Setup => "setup",
            Scope::Confirm => "confirm",
            Scope::Help => "help",
        }
    }
    const ALL: [Scope; 6] = [
        Scope::Global,
        Scope::Dashboard,
        Scope::Log,
        Scope::Setup,
        Scope::Confirm,
        Scope::Help,
    ];
}

/// A key with modifiers, as written in the key map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    code: KeyCode,
    mods: KeyModifiers,
}

impl Key {
    /// Parses `r`, `G`, `ctrl-d`, `pagedown`, `f1`, …
    pub fn parse(s: &str) -> Result<Self, KeymapError> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                mods |= KeyModifiers::CONTROL;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                mods |= KeyModifiers::ALT;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "space" => KeyCode::Char(' '),
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "backspace" => KeyCode::Backspace,
            f if f.starts_with('f') && f.len() > 1 && f[1..].parse::<u8>().is_ok() => {
                KeyCode::F(f[1..].parse().unwrap_or(1))
            }
            c if c.chars().count() == 1 => KeyCode::Char(c.chars().next().unwrap_or(' ')),
            _ => return Err(KeymapError::NotAKey(s.to_string())),
        };
        Ok(Self { code, mods })
    }

    fn from_event(k: &KeyEvent) -> Self {
        // Shifted characters arrive as the character itself; SHIFT is not part of the binding.
        let mods = k.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        let code = match k.code {
            KeyCode::Char(c) if mods.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            c => c,
        };
        Self { code, mods }
    }

    /// How the key is shown in hints.
    pub fn display(&self) -> String {
        let base = match self.code {
            KeyCode::Enter => "Enter".to_string(),
            KeyCode::Esc => "Esc".to_string(),
            KeyCode::Tab => "Tab".to_string(),
            KeyCode::BackTab => "Shift-Tab".to_string(),
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Up => "↑".to_string(),
            KeyCode::Down => "↓".to_string(),
            KeyCode::Left => "←".to_string(),
            KeyCode::Right => "→".to_string(),
            KeyCode::PageUp => "PgUp".to_string(),
            KeyCode::PageDown => "PgDn".to_string(),
            KeyCode::Home => "Home".to_string(),
            KeyCode::End => "End".to_string(),
            KeyCode::Backspace => "Bksp".to_string(),
            KeyCode::F(n) => format!("F{n}"),
            KeyCode::Char(c) if self.mods.contains(KeyModifiers::CONTROL) => {
                c.to_ascii_uppercase().to_string()
            }
            KeyCode::Char(c) => c.to_string(),
            _ => "?".to_string(),
        };
        let mut s = String::new();
        if self.mods.contains(KeyModifiers::CONTROL) {
            s.push_str("Ctrl-");
        }
        if self.mods.contains(KeyModifiers::ALT) {
            s.push_str("Alt-");
        }
        s + &base
    }
}

/// Bindings per scope, in file order (so hints are stable).
#[derive(Debug, Clone)]
pub struct Keymap {
    scopes: BTreeMap<Scope, Vec<(Action, Vec<Key>)>>,
}

type Sections = BTreeMap<String, toml::Table>;

/// What is wrong with a key map file; each names the file (`origin`) and the entry.
#[derive(Debug, thiserror::Error)]
pub enum KeymapError {
    /// Not a key this map understands.
    #[error("\"{0}\" is not a key")]
    NotAKey(String),
    /// Not TOML.
    #[error("{origin}: {source}")]
    Toml {
        /// The file.
        origin: String,
        /// What the parser said.
        #[source]
        source: toml::de::Error,
    },
    /// A section, action or key list that is not right.
    #[error("{origin}: {what}")]
    Entry {
        /// The file.
        origin: String,
        /// What is wrong, and where.
        what: String,
    },
}

fn parse_sections(text: &str, origin: &str) -> Result<Vec<(Scope, Action, Vec<Key>)>, KeymapError> {
    let entry = |what: String| KeymapError::Entry {
        origin: origin.to_string(),
        what,
    };
    let sections: Sections = toml::from_str(text).map_err(|source| KeymapError::Toml {
        origin: origin.to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for (name, table) in sections {
        let scope = Scope::ALL
            .into_iter()
            .find(|s| s.section() == name)
            .ok_or_else(|| {
                entry(format!(
                    "unknown section [{name}] (use global, dashboard, log, setup, confirm, help)"
                ))
            })?;
        for (action, keys) in table {
            let a: Action = toml::Value::String(action.clone())
                .try_into()
                .map_err(|_| entry(format!("[{name}] `{action}` is not an action")))?;
            let keys = keys
                .as_array()
                .ok_or_else(|| entry(format!("[{name}] `{action}` must be a list of keys")))?
                .iter()
                .map(|k| {
                    k.as_str()
                        .ok_or_else(|| entry(format!("[{name}] `{action}`: keys are strings")))
                        .and_then(Key::parse)
                })
                .collect::<Result<Vec<_>, _>>()?;
            out.push((scope, a, keys));
        }
    }
    Ok(out)
}

/// The user's config folder for stage2-tui.
pub fn config_dir() -> Option<PathBuf> {
    crate::config::user_config_dir()
}

impl Keymap {
    /// The built-in key map with `overrides` (the user's file text) applied on top.
    pub fn load(overrides: Option<(&str, &str)>) -> Result<Self, KeymapError> {
        let mut scopes: BTreeMap<Scope, Vec<(Action, Vec<Key>)>> = BTreeMap::new();
        // File order is the help's and the hints' order: toml keeps it (`preserve_order`).
        for (scope, action, keys) in parse_sections(DEFAULT, "built-in keys")? {
            scopes.entry(scope).or_default().push((action, keys));
        }
        if let Some((text, origin)) = overrides {
            for (scope, action, keys) in parse_sections(text, origin)? {
                let list = scopes.entry(scope).or_default();
                match list.iter_mut().find(|(a, _)| *a == action) {
                    Some(slot) => slot.1 = keys,
                    None => list.push((action, keys)),
                }
            }
            // A map with no way out is refused (the defaults are used instead).
            let quit = scopes
                .get(&Scope::Global)
                .and_then(|l| l.iter().find(|(a, _)| *a == Action::Quit))
                .is_some_and(|(_, k)| !k.is_empty());
            if !quit {
                return Err(KeymapError::Entry {
                    origin: origin.to_string(),
                    what: "[global] quit has no key: there would be no way out; give it at least one (q, ctrl-c)".into(),
                });
            }
        }
        Ok(Self { scopes })
    }

    /// The built-in map (tested to load; empty if it ever did not).
    pub fn builtin() -> Self {
        Self::load(None).unwrap_or_else(|_| Self {
            scopes: BTreeMap::new(),
        })
    }

    /// The built-in map plus `<config dir>/keys.toml` if present.
    pub fn load_user() -> Result<Self, KeymapError> {
        let path = config_dir().map(|d| d.join("keys.toml"));
        match path.as_deref().map(crate::safefs::read_settings_file) {
            Some(Err(e)) if e.kind() != std::io::ErrorKind::NotFound => Err(KeymapError::Entry {
                origin: path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                what: e.to_string(),
            }),
            Some(Ok(text)) => {
                let origin = path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                Self::load(Some((&text, &origin)))
            }
            _ => Self::load(None),
        }
    }

    /// The action for a key in `scope` (then global, except in dialogs).
    pub fn action(&self, scope: Scope, ev: &KeyEvent) -> Option<Action> {
        let key = Key::from_event(ev);
        let find = |s: Scope| {
            self.scopes
                .get(&s)
                .and_then(|l| l.iter().find(|(_, ks)| ks.contains(&key)).map(|(a, _)| *a))
        };
        find(scope).or_else(|| {
            if matches!(scope, Scope::Confirm) {
                None
            } else {
                find(Scope::Global)
            }
        })
    }

    /// Bindings of a scope, in order, with their keys as shown.
    pub fn bindings(&self, scope: Scope) -> Vec<(Action, String)> {
        self.scopes
            .get(&scope)
            .map(|l| {
                l.iter()
                    .map(|(a, ks)| {
                        (
                            *a,
                            ks.iter().map(Key::display).collect::<Vec<_>>().join("/"),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first key of an action in a scope (or global), for hints and buttons.
    pub fn key_for(&self, scope: Scope, action: Action) -> Option<String> {
        [scope, Scope::Global]
            .iter()
            .filter_map(|s| self.scopes.get(s))
            .flat_map(|l| l.iter())
            .find(|(a, _)| *a == action)
            .and_then(|(_, ks)| ks.first().map(Key::display))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_map_with_no_way_out_is_refused() {
        let e = Keymap::load(Some(("[global]\nquit = []\n", "keys.toml"))).unwrap_err();
        assert!(e.to_string().contains("no way out"), "{e}");
        assert!(Keymap::load(Some(("[global]\nquit = [\"x\"]\n", "keys.toml"))).is_ok());
    }

    use super::*;

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn screen_bindings_win_over_global_ones() {
        let k = Keymap::load(None).unwrap();
        assert_eq!(k.action(Scope::Dashboard, &key('r')), Some(Action::Retry));
        assert_eq!(k.action(Scope::Log, &key('q')), Some(Action::Back));
        assert_eq!(k.action(Scope::Dashboard, &key('q')), Some(Action::Quit));
        assert_eq!(
            k.action(
                Scope::Log,
                &KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL)
            ),
            Some(Action::HalfPageDown)
        );
        assert_eq!(
            k.action(
                Scope::Log,
                &KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT)
            ),
            Some(Action::Bottom)
        );
        assert_eq!(
            k.action(Scope::Confirm, &key('t')),
            None,
            "dialogs take only their own keys"
        );
    }

    #[test]
    fn user_overrides_replace_keys() {
        let k = Keymap::load(Some((
            "[dashboard]\nretry = [\"R\", \"ctrl-r\"]\n",
            "keys.toml",
        )))
        .unwrap();
        assert_eq!(k.action(Scope::Dashboard, &key('r')), None);
        assert_eq!(k.action(Scope::Dashboard, &key('R')), Some(Action::Retry));
        assert_eq!(
            k.key_for(Scope::Dashboard, Action::Retry).as_deref(),
            Some("R")
        );
        let e = Keymap::load(Some(("[dashboard]\nfly = [\"x\"]\n", "keys.toml"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "keys.toml: [dashboard] `fly` is not an action"
        );
        let e =
            Keymap::load(Some(("[dashboard]\nretry = [\"hyper-x\"]\n", "keys.toml"))).unwrap_err();
        assert_eq!(e.to_string(), "\"hyper-x\" is not a key");
    }

    #[test]
    fn hints_keep_file_order() {
        let k = Keymap::load(None).unwrap();
        let d: Vec<_> = k
            .bindings(Scope::Dashboard)
            .into_iter()
            .map(|(a, _)| a)
            .take(3)
            .collect();
        assert_eq!(d, [Action::Up, Action::Down, Action::Top]);
    }
}
