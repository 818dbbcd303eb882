//! `/` filters over the lists the TUI shows (steps, messages, the config form), and moving the
//! selection among what a filter lists.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::Action;

/// A `/` filter over a list: its text, and whether it is still being typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// What a row must contain (case does not matter).
    pub query: String,
    /// Keys go to the query until Enter.
    pub typing: bool,
}

impl Filter {
    /// Whether `text` passes.
    pub fn matches(&self, text: &str) -> bool {
        text.to_lowercase().contains(&self.query.to_lowercase())
    }

    /// A key while typing: true when it was taken. Enter keeps the filter, Esc drops it.
    pub(crate) fn key(slot: &mut Option<Filter>, k: &KeyEvent) -> bool {
        let Some(f) = slot.as_mut().filter(|f| f.typing) else {
            return false;
        };
        match k.code {
            KeyCode::Enter => f.typing = false,
            KeyCode::Esc => *slot = None,
            KeyCode::Backspace => {
                f.query.pop();
            }
            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => *slot = None,
            KeyCode::Char(c) => f.query.push(c),
            _ => {}
        }
        if slot
            .as_ref()
            .is_some_and(|f| !f.typing && f.query.is_empty())
        {
            *slot = None;
        }
        true
    }
}

impl Filter {
    /// A filter being typed, empty so far.
    pub fn typing() -> Self {
        Filter {
            query: String::new(),
            typing: true,
        }
    }
}

/// Where a movement key takes the selection `current` among the `listed` rows (a `/` filter
/// may hide some); `page` rows for PgUp/PgDn.
pub fn move_within(listed: &[usize], current: usize, a: Action, page: usize) -> usize {
    let pos = listed.iter().position(|i| *i == current).unwrap_or(0);
    let last = listed.len().saturating_sub(1);
    let to = match a {
        Action::Up => pos.saturating_sub(1),
        Action::Down => (pos + 1).min(last),
        Action::PageUp => pos.saturating_sub(page),
        Action::PageDown => (pos + page).min(last),
        Action::Top => 0,
        _ => last,
    };
    listed.get(to).copied().unwrap_or(current)
}
