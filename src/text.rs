//! Making untrusted text (container logs) safe to print on a terminal.

use std::borrow::Cow;

/// Replaces control characters (except tab) with visible caret or `\u{..}` forms, so a log line
/// can never move the cursor, clear the screen or retitle the terminal.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_visible(&mut out, c, "\t");
    }
    Cow::Owned(out)
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
    fn escapes_become_visible() {
        assert_eq!(visible("plain\ttext"), "plain\ttext");
        assert_eq!(visible("\x1b]0;pwned\x07\x1b[2J"), "^[]0;pwned^G^[[2J");
        assert_eq!(visible("a\rb\u{9b}c\u{7f}"), "a^Mb\\u{9b}c^?");
    }
}

/// Replaces every occurrence of a secret value with `••••••`.
pub fn mask<'a>(s: &'a str, secrets: &[String]) -> Cow<'a, str> {
    let mut out: Cow<'a, str> = Cow::Borrowed(s);
    for secret in secrets {
        if !secret.is_empty() && out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), "••••••"));
        }
    }
    out
}

#[cfg(test)]
mod mask_tests {
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
