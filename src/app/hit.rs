//! What the views tell the update about the last frame: clickable places, rows for the log.

use ratatui::layout::Rect;

use super::Action;

/// Something clickable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    /// Do this action.
    Action(Action),
    /// Select this step.
    Step(usize),
}

/// Clickable rectangles of the last frame.
pub type Hits = Vec<(Rect, Hit)>;

/// Rows the log view has for lines, for a terminal of `height` rows.
pub fn log_rows(height: u16) -> usize {
    height.saturating_sub(3).max(1) as usize
}
