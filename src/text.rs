//! Making untrusted text (container logs) safe to print on a terminal.

use std::borrow::Cow;

/// Replaces control characters (except tab) with visible caret or `\u{..}` forms, so a log line
/// can never move the cursor, clear the screen or retitle the terminal.
pub fn visible(s: &str) -> Cow<'_, str> {
    if printable_ascii(s.as_bytes()) {
        return Cow::Borrowed(s);
    }
    // Fast path for the common line: a control character needs a byte below 0x20, 0x7f, or
    // the lead byte of a C1 control (0xc2) or of a bidi override (0xe2).
    if !s
        .bytes()
        .any(|b| (b < 0x20 && b != b'\t') || b == 0x7f || b == 0xc2 || b == 0xe2)
        || !s.chars().any(is_control)
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_visible(&mut out, c, "\t");
    }
    Cow::Owned(out)
}

/// True when every byte is printable ASCII (0x20 to 0x7e): the common log line, told eight
/// bytes at a time.
fn printable_ascii(b: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // A byte below 0x20, or 0x7f, or 0x80 and above, sets its high bit in `bad`.
    let bad = |w: u64| (w.wrapping_sub(LO * 0x20) | w.wrapping_add(LO)) & HI;
    let mut chunks = b.chunks_exact(8);
    for c in chunks.by_ref() {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        if bad(u64::from_le_bytes(w)) != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&c| (0x20..0x7f).contains(&c))
}

/// Appends `c`, or its visible form if it is a control character (`^[`, `^M`, `\u{9b}`);
/// a tab becomes `tab`.
pub fn push_visible(out: &mut String, c: char, tab: &str) {
    match c {
        '\t' => out.push_str(tab),
        c if (c as u32) < 0x20 => {
            out.push('^');
            out.push(char::from(b'@' + c as u8));
        }
        '\u{7f}' => out.push_str("^?"),
        c if is_control(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        c => out.push(c),
    }
}

fn is_control(c: char) -> bool {
    c != '\t' && (c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_at_a_time_check_agrees_with_a_byte_at_a_time_one() {
        let naive = |b: &[u8]| b.iter().all(|&c| (0x20..0x7f).contains(&c));
        for bad in 0..=255u8 {
            for at in 0..20 {
                for fill in [b'a', b' ', b'~', b'!'] {
                    let mut line = vec![fill; 20];
                    line[at] = bad;
                    assert_eq!(printable_ascii(&line), naive(&line), "{bad:#x} at {at}");
                }
            }
        }
        assert!(printable_ascii(b""));
    }

    #[test]
    fn escapes_become_visible() {
        assert_eq!(visible("plain\ttext"), "plain\ttext");
        assert_eq!(visible("\x1b]0;pwned\x07\x1b[2J"), "^[]0;pwned^G^[[2J");
        assert_eq!(visible("a\rb\u{9b}c\u{7f}"), "a^Mb\\u{9b}c^?");
    }
}

/// A duration for people: `4.2s`, `2m05s`, `1h02m05s`.
pub fn duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{:.1}s", d.as_secs_f64()),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m{:02}s", s / 3600, (s / 60) % 60, s % 60),
    }
}

/// A window's length as words, exact: "20-second window", "10-minute window",
/// "1 min 30 s window".
pub fn window_words(secs: u64) -> String {
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}-second window"),
        (m, 0) => format!("{m}-minute window"),
        (m, s) => format!("{m} min {s} s window"),
    }
}

/// Masks secret values with one automaton for all of them, built once (for the paths every log
/// line takes: headless printing): a line is read once however many forms of how many secrets
/// there are. Masks what [`mask`] masks.
pub struct Masker {
    /// Every secret, longest match first where two start at the same place.
    any: Option<aho_corasick::AhoCorasick>,
    secrets: Vec<String>,
    /// What each secret becomes (one mask per secret, as `replace_all` takes them).
    masks: Vec<&'static str>,
}

impl Masker {
    /// A masker of these values (empty ones ignored).
    pub fn new(secrets: &[String]) -> Self {
        let secrets: Vec<String> = secrets.iter().filter(|s| !s.is_empty()).cloned().collect();
        let any = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(&secrets)
            .ok()
            .filter(|_| !secrets.is_empty());
        let masks = vec!["••••••"; secrets.len()];
        Self {
            any,
            secrets,
            masks,
        }
    }

    /// Replaces every occurrence of a secret value with `••••••`.
    pub fn mask<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let Some(any) = &self.any else {
            return Cow::Borrowed(s);
        };
        let out: Cow<'a, str> = if any.is_match(s) {
            Cow::Owned(any.replace_all(s, &self.masks))
        } else {
            Cow::Borrowed(s)
        };
        match split_by_controls(&out) {
            Some(plain) if any.is_match(&plain) => {
                Cow::Owned(mask(&plain, &self.secrets).into_owned())
            }
            _ => out,
        }
    }
}

/// `s` without its escape sequences and control bytes, when it has any: a secret split by an
/// escape sequence (`p@s\x1b[1msword`) is drawn whole on a terminal, so it is looked for in
/// this text too. `None` when `s` has no control byte.
fn split_by_controls(s: &str) -> Option<String> {
    if printable_ascii(s.as_bytes()) {
        return None;
    }
    if !s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.peek() {
                // CSI: parameters and intermediates, then one final byte.
                Some('[') => {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC / DCS / APC…: up to BEL or ST.
                Some(']' | 'P' | '_' | '^' | 'X') => {
                    chars.next();
                    while let Some(c) = chars.next() {
                        if c == '\x07' || (c == '\x1b' && chars.peek() == Some(&'\\')) {
                            if c == '\x1b' {
                                chars.next();
                            }
                            break;
                        }
                    }
                }
                Some(_) => {
                    chars.next();
                }
                None => {}
            },
            c if (c as u32) < 0x20 || c == '\x7f' => {}
            c => out.push(c),
        }
    }
    Some(out)
}

/// Replaces every occurrence of a secret value with `••••••`; a line where a secret shows only
/// once its escape sequences are taken out is given without them, masked.
pub fn mask<'a>(s: &'a str, secrets: &[String]) -> Cow<'a, str> {
    let mut out: Cow<'a, str> = Cow::Borrowed(s);
    for secret in secrets {
        if !secret.is_empty() && out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), "••••••"));
        }
    }
    if let Some(plain) = split_by_controls(&out)
        && secrets
            .iter()
            .any(|x| !x.is_empty() && plain.contains(x.as_str()))
    {
        let mut p = plain;
        for secret in secrets.iter().filter(|x| !x.is_empty()) {
            p = p.replace(secret.as_str(), "••••••");
        }
        return Cow::Owned(p);
    }
    out
}

#[cfg(test)]
mod duration_and_mask_tests {
    use super::duration as hms;
    use std::time::Duration;

    #[test]
    fn window_lengths_are_said_exactly() {
        assert_eq!(super::window_words(20), "20-second window");
        assert_eq!(super::window_words(600), "10-minute window");
        assert_eq!(super::window_words(90), "1 min 30 s window");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(hms(Duration::from_millis(1500)), "1.5s");
        assert_eq!(hms(Duration::from_secs(125)), "2m05s");
        assert_eq!(hms(Duration::from_secs(3725)), "1h02m05s");
    }

    #[test]
    fn a_secret_split_by_escape_sequences_is_masked_too() {
        let secrets = vec!["p@ssword".to_string()];
        let split = "login p@s\x1b[1msword and p@s\x1b]0;t\x07sword";
        assert_eq!(super::mask(split, &secrets), "login •••••• and ••••••");
        let m = super::Masker::new(&secrets);
        assert_eq!(m.mask(split), "login •••••• and ••••••");
        // Colours without a secret stay.
        assert!(matches!(
            super::mask("\x1b[1mok\x1b[0m", &secrets),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn the_masker_leaves_no_secret_whatever_overlaps() {
        let secrets: Vec<String> = ["abc", "bcd", "b", "abcdef", "tok-1", "tok-12"]
            .map(String::from)
            .to_vec();
        let m = super::Masker::new(&secrets);
        for text in [
            "xabcdefx",
            "abcd",
            "bbb",
            "tok-12 and tok-1 and tok-123",
            "a\x1b[1mbc",
            "none here",
        ] {
            let out = m.mask(text);
            for s in &secrets {
                assert!(!out.contains(s.as_str()), "{text:?} -> {out:?} shows {s:?}");
            }
            // What the one-secret-at-a-time mask leaves is just as clean.
            assert_eq!(
                out.contains('•'),
                super::mask(text, &secrets).contains('•'),
                "{text:?}"
            );
        }
        assert!(matches!(m.mask("none here"), std::borrow::Cow::Borrowed(_)));
        assert!(matches!(
            super::Masker::new(&[]).mask("abc"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn secrets_are_masked() {
        let secrets = vec!["hunter22".to_string(), "tok-123".to_string()];
        assert_eq!(
            super::mask("login hunter22 with tok-123", &secrets),
            "login •••••• with ••••••"
        );
        assert!(matches!(
            super::mask("nothing here", &secrets),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
