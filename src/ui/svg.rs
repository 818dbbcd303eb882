//! Screenshots from code: a rendered ratatui buffer written out as SVG.

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

fn hex(c: Color, default: &str) -> String {
    let basic = |i: u8| -> &'static str {
        [
            "#1c1c1c", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#c0c0c0",
            "#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff",
        ][i as usize % 16]
    };
    match c {
        Color::Reset => default.to_string(),
        Color::Black => basic(0).into(),
        Color::Red => basic(1).into(),
        Color::Green => basic(2).into(),
        Color::Yellow => basic(3).into(),
        Color::Blue => basic(4).into(),
        Color::Magenta => basic(5).into(),
        Color::Cyan => basic(6).into(),
        Color::Gray => basic(7).into(),
        Color::DarkGray => basic(8).into(),
        Color::LightRed => basic(9).into(),
        Color::LightGreen => basic(10).into(),
        Color::LightYellow => basic(11).into(),
        Color::LightBlue => basic(12).into(),
        Color::LightMagenta => basic(13).into(),
        Color::LightCyan => basic(14).into(),
        Color::White => basic(15).into(),
        Color::Rgb(r, g, b) => format!("#{r:02x}{g:02x}{b:02x}"),
        Color::Indexed(i) if i < 16 => basic(i).into(),
        Color::Indexed(i) if i >= 232 => {
            let v = 8 + (i - 232) * 10;
            format!("#{v:02x}{v:02x}{v:02x}")
        }
        Color::Indexed(i) => {
            let i = i - 16;
            let l = |x: u8| if x == 0 { 0 } else { 55 + x * 40 };
            format!("#{:02x}{:02x}{:02x}", l(i / 36), l((i / 6) % 6), l(i % 6))
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Writes the buffer as an SVG image (monospace cells, colours and bold kept).
pub fn render(buf: &Buffer, background: &str, foreground: &str) -> String {
    let (cw, ch) = (8.4_f64, 17.0_f64);
    let w = buf.area.width as f64 * cw;
    let h = buf.area.height as f64 * ch;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"{background}\"/>\n\
         <g font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"14\">\n"
    );
    for y in 0..buf.area.height {
        let mut x = 0;
        while x < buf.area.width {
            let cell = &buf[(x, y)];
            let reversed = cell.modifier.contains(Modifier::REVERSED);
            let (fg, bg) = if reversed {
                (cell.bg, cell.fg)
            } else {
                (cell.fg, cell.bg)
            };
            // Group runs of cells with the same style into one <text>.
            let mut run = String::new();
            let start = x;
            while x < buf.area.width {
                let c = &buf[(x, y)];
                if c.fg != cell.fg || c.bg != cell.bg || c.modifier != cell.modifier {
                    break;
                }
                run.push_str(c.symbol());
                x += 1;
            }
            let px = start as f64 * cw;
            let py = y as f64 * ch;
            let len = (x - start) as f64 * cw;
            if bg != Color::Reset || reversed {
                out += &format!(
                    "<rect x=\"{px:.1}\" y=\"{py:.1}\" width=\"{len:.1}\" height=\"{ch:.1}\" fill=\"{}\"/>\n",
                    hex(bg, background)
                );
            }
            if !run.trim().is_empty() {
                let weight = if cell.modifier.contains(Modifier::BOLD) {
                    " font-weight=\"bold\""
                } else {
                    ""
                };
                out += &format!(
                    "<text x=\"{px:.1}\" y=\"{:.1}\" fill=\"{}\" xml:space=\"preserve\" textLength=\"{len:.1}\"{weight}>{}</text>\n",
                    py + ch * 0.78,
                    hex(fg, foreground),
                    esc(&run)
                );
            }
        }
    }
    out + "</g>\n</svg>\n"
}
