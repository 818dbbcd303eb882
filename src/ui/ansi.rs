//! Log text to styled spans: SGR colour sequences become styles; every other control byte is
//! shown visibly, so a log line can never move the cursor, clear the screen or retitle the
//! terminal.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;

fn basic(n: u16, bright: bool) -> Color {
    match (n, bright) {
        (0, false) => Color::Black,
        (1, false) => Color::Red,
        (2, false) => Color::Green,
        (3, false) => Color::Yellow,
        (4, false) => Color::Blue,
        (5, false) => Color::Magenta,
        (6, false) => Color::Cyan,
        (7, false) => Color::Gray,
        (0, true) => Color::DarkGray,
        (1, true) => Color::LightRed,
        (2, true) => Color::LightGreen,
        (3, true) => Color::LightYellow,
        (4, true) => Color::LightBlue,
        (5, true) => Color::LightMagenta,
        (6, true) => Color::LightCyan,
        _ => Color::White,
    }
}

fn apply_sgr(style: Style, params: &str, base: Style) -> Style {
    let nums: Vec<u16> = if params.is_empty() {
        vec![0]
    } else {
        params
            .split([';', ':'])
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    let mut s = style;
    let mut i = 0;
    while i < nums.len() {
        let n = nums[i];
        match n {
            0 => s = base,
            1 => s = s.add_modifier(Modifier::BOLD),
            2 => s = s.add_modifier(Modifier::DIM),
            3 => s = s.add_modifier(Modifier::ITALIC),
            4 => s = s.add_modifier(Modifier::UNDERLINED),
            7 => s = s.add_modifier(Modifier::REVERSED),
            22 => s = s.remove_modifier(Modifier::BOLD | Modifier::DIM),
            23 => s = s.remove_modifier(Modifier::ITALIC),
            24 => s = s.remove_modifier(Modifier::UNDERLINED),
            27 => s = s.remove_modifier(Modifier::REVERSED),
            30..=37 => s = s.fg(basic(n - 30, false)),
            90..=97 => s = s.fg(basic(n - 90, true)),
            40..=47 => s = s.bg(basic(n - 40, false)),
            100..=107 => s = s.bg(basic(n - 100, true)),
            39 => s = s.fg(base.fg.unwrap_or(Color::Reset)),
            49 => s = s.bg(base.bg.unwrap_or(Color::Reset)),
            38 | 48 => {
                let color = match nums.get(i + 1) {
                    Some(5) => nums.get(i + 2).map(|c| {
                        i += 2;
                        Color::Indexed(*c as u8)
                    }),
                    Some(2) if nums.len() > i + 4 => {
                        let c = Color::Rgb(nums[i + 2] as u8, nums[i + 3] as u8, nums[i + 4] as u8);
                        i += 4;
                        Some(c)
                    }
                    _ => None,
                };
                if let Some(c) = color {
                    s = if n == 38 { s.fg(c) } else { s.bg(c) };
                }
            }
            _ => {}
        }
        i += 1;
    }
    s
}

/// Converts one log line's text to spans, starting from `base`. At most `max_chars` characters
/// of the result are produced (long lines stay cheap to render).
pub fn spans(text: &str, base: Style, max_chars: usize) -> Vec<Span<'static>> {
    let mut out: Vec<Span<'static>> = Vec::new();
    let mut cur = String::new();
    let mut style = base;
    let mut produced = 0usize;
    let mut chars = text.chars().peekable();
    let mut cut = false;
    while let Some(c) = chars.next() {
        if produced >= max_chars {
            cut = true;
            break;
        }
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            // CSI: parameters, then a final byte in 0x40..=0x7e.
            let mut seq = String::new();
            chars.next();
            let mut fin = None;
            for d in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&d) {
                    fin = Some(d);
                    break;
                }
                seq.push(d);
                if seq.len() > 64 {
                    break;
                }
            }
            if fin == Some('m')
                && seq
                    .chars()
                    .all(|d| d.is_ascii_digit() || d == ';' || d == ':')
            {
                if !cur.is_empty() {
                    out.push(Span::styled(std::mem::take(&mut cur), style));
                }
                style = apply_sgr(style, &seq, base);
                continue;
            }
            // Any other sequence is shown, not obeyed.
            let shown = format!("^[[{seq}{}", fin.map(String::from).unwrap_or_default());
            produced += shown.chars().count();
            cur.push_str(&shown);
            continue;
        }
        let before = cur.len();
        crate::text::push_visible(&mut cur, c, "    ");
        produced += cur[before..].chars().count();
    }
    if !cur.is_empty() {
        out.push(Span::styled(cur, style));
    }
    // A line longer than the room ends in "…", so a cut is never mistaken for the end.
    if cut && max_chars > 0 {
        while let Some(last) = out.last_mut() {
            let mut s = last.content.to_string();
            if s.pop().is_some() {
                s.push('…');
                last.content = s.into();
                break;
            }
            out.pop();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(sp: &[Span]) -> String {
        sp.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn colours_become_styles() {
        let sp = spans(
            "ok \x1b[31mred\x1b[0m \x1b[1;38;5;208mbold orange\x1b[m",
            Style::new(),
            1000,
        );
        assert_eq!(plain(&sp), "ok red bold orange");
        assert_eq!(sp[1].style.fg, Some(Color::Red));
        assert_eq!(sp[2].style, Style::new());
        assert_eq!(sp[3].style.fg, Some(Color::Indexed(208)));
        assert!(sp[3].style.add_modifier.contains(Modifier::BOLD));
    }

    #[test]
    fn a_cut_line_ends_in_an_ellipsis() {
        assert_eq!(plain(&spans("abcdef", Style::new(), 4)), "abc…");
        assert_eq!(plain(&spans("abcd", Style::new(), 4)), "abcd");
        assert_eq!(plain(&spans("ab\x1b[31mcdef", Style::new(), 3)), "ab…");
    }

    #[test]
    fn hostile_sequences_are_shown_not_obeyed() {
        let sp = spans(
            "\x1b]0;pwned\x07\x1b[2J\x1b[H\x1b[5Atext\r\x08\u{9b}",
            Style::new(),
            1000,
        );
        let s = plain(&sp);
        assert_eq!(s, "^[]0;pwned^G^[[2J^[[H^[[5Atext^M^H\\u{9b}");
        assert!(!s.contains('\u{1b}') && !s.chars().any(|c| c.is_control()));
    }

    #[test]
    fn long_lines_are_cut() {
        let long = "x".repeat(100_000);
        let cut = plain(&spans(&long, Style::new(), 300));
        assert_eq!(cut.chars().count(), 300);
        assert!(cut.ends_with('…'));
    }
}
