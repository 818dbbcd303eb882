//! A JSON document that keeps its original text: unchanged parts are written back byte for byte,
//! changed values are spliced in place (indented like their surroundings), unknown keys and key
//! order are kept (`serde_json` with `preserve_order`).

use std::collections::HashMap;
use std::ops::Range;

use serde_json::Value;

/// Byte ranges of every value in a JSON text, by JSON pointer.
fn spans(text: &str) -> HashMap<String, Range<usize>> {
    let mut out = HashMap::new();
    let mut s = Scanner {
        b: text.as_bytes(),
        i: 0,
    };
    s.value(String::new(), &mut out);
    out
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

/// A key as a JSON pointer token (`~` → `~0`, `/` → `~1`).
pub fn escape_token(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn string(&mut self) -> Range<usize> {
        let start = self.i;
        self.i += 1;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    break;
                }
                _ => self.i += 1,
            }
        }
        start..self.i.min(self.b.len())
    }

    fn value(&mut self, ptr: String, out: &mut HashMap<String, Range<usize>>) {
        self.ws();
        let start = self.i;
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                loop {
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b'}') => {
                            self.i += 1;
                            break;
                        }
                        Some(b',') => self.i += 1,
                        Some(b'"') => {
                            let k = self.string();
                            let key: String =
                                serde_json::from_slice(&self.b[k]).unwrap_or_default();
                            self.ws();
                            self.i += 1; // ':'
                            self.value(format!("{ptr}/{}", escape_token(&key)), out);
                        }
                        _ => break,
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut n = 0;
                loop {
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b']') => {
                            self.i += 1;
                            break;
                        }
                        Some(b',') => self.i += 1,
                        Some(_) => {
                            self.value(format!("{ptr}/{n}"), out);
                            n += 1;
                        }
                        None => break,
                    }
                }
            }
            Some(b'"') => {
                self.string();
            }
            Some(_) => {
                while self.i < self.b.len()
                    && !matches!(self.b[self.i], b',' | b'}' | b']')
                    && !self.b[self.i].is_ascii_whitespace()
                {
                    self.i += 1;
                }
            }
            None => {}
        }
        out.insert(ptr, start..self.i);
    }
}

/// Leading whitespace of the line holding byte `at`.
fn indent_at(text: &str, at: usize) -> &str {
    let line_start = text[..at].rfind('\n').map(|p| p + 1).unwrap_or(0);
    let line = &text[line_start..];
    &line[..line.len() - line.trim_start().len()]
}

/// Pretty JSON for `v`, with continuation lines indented by `indent`.
fn pretty(v: &Value, indent: &str) -> String {
    let s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.replace('\n', &format!("\n{indent}"))
}

fn edits(
    text: &str,
    sp: &HashMap<String, Range<usize>>,
    ptr: &str,
    old: &Value,
    new: &Value,
    out: &mut Vec<(Range<usize>, String)>,
) {
    if old == new {
        return;
    }
    let Some(range) = sp.get(ptr).cloned() else {
        return;
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) if a.keys().eq(b.keys()) => {
            for (k, v) in b {
                if let Some(o) = a.get(k) {
                    edits(text, sp, &format!("{ptr}/{}", escape_token(k)), o, v, out);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (o, v)) in a.iter().zip(b).enumerate() {
                edits(text, sp, &format!("{ptr}/{i}"), o, v, out);
            }
        }
        // Rows added at the end: the rows there keep their text; each new one is written like
        // its neighbour (same line breaks, spacing and key order where it has the same keys).
        (Value::Array(a), Value::Array(b))
            if !a.is_empty() && b.len() > a.len() && a[..] == b[..a.len()] =>
        {
            let at = |i: usize| sp.get(&format!("{ptr}/{i}")).cloned();
            let (Some(first), Some(last)) = (at(0), at(a.len() - 1)) else {
                return out.push((range.clone(), pretty(new, indent_at(text, range.start))));
            };
            let indent = indent_at(text, first.start);
            let sep = if text[range.start..first.start].contains('\n') {
                format!(",\n{indent}")
            } else {
                ", ".to_string()
            };
            let neighbour = &text[last.clone()];
            let mut add = String::new();
            for v in &b[a.len()..] {
                add.push_str(&sep);
                add.push_str(&like(neighbour, &a[a.len() - 1], v, indent));
            }
            out.push((last.end..last.end, add));
        }
        // One row removed: only its text (and the separator before it) goes.
        (Value::Array(a), Value::Array(b)) if b.len() + 1 == a.len() => {
            let at = |i: usize| sp.get(&format!("{ptr}/{i}")).cloned();
            let gone = (0..a.len()).find(|&k| {
                a.iter()
                    .enumerate()
                    .filter(|(i, _)| *i != k)
                    .map(|(_, v)| v)
                    .eq(b.iter())
            });
            let cut = match gone {
                Some(k) if k > 0 => at(k - 1).zip(at(k)).map(|(p, r)| p.end..r.end),
                Some(0) if a.len() > 1 => at(0).zip(at(1)).map(|(r, n)| r.start..n.start),
                Some(_) => at(0),
                None => None,
            };
            match cut {
                Some(c) => out.push((c, String::new())),
                None => out.push((range.clone(), pretty(new, indent_at(text, range.start)))),
            }
        }
        _ => out.push((range.clone(), pretty(new, indent_at(text, range.start)))),
    }
}

/// `v` written like `neighbour_text` (the text of `neighbour`): the same layout when both are
/// objects with the same keys, else pretty JSON at `indent`.
fn like(neighbour_text: &str, neighbour: &Value, v: &Value, indent: &str) -> String {
    match (neighbour, v) {
        (Value::Object(a), Value::Object(b)) if a.keys().eq(b.keys()) => {
            render(neighbour_text, neighbour, v)
        }
        _ => pretty(v, indent),
    }
}

/// Writes `new` as text, keeping `original`'s bytes wherever `new` equals what it held.
/// `original` must be valid JSON (it is what `old` was parsed from).
pub fn render(original: &str, old: &Value, new: &Value) -> String {
    if old == new {
        return original.to_string();
    }
    let sp = spans(original);
    let mut list = Vec::new();
    edits(original, &sp, "", old, new, &mut list);
    list.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(original.len() + 256);
    let mut at = 0;
    for (r, text) in list {
        out.push_str(&original[at..r.start]);
        out.push_str(&text);
        at = r.end;
    }
    out.push_str(&original[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "{\n  \"clusterid\": \"ocp4\",\n  \"zzz_unknown\": {\"keep\":  [1,2 ,3]},\n\n  \"masters\": [\n    {\"hostname\": \"m-0\", \"ipaddress\": \"10.0.0.1\"}\n  ],\n  \"a/b\": \"x\"  \n}\n";

    #[test]
    fn unchanged_is_byte_identical() {
        let v: Value = serde_json::from_str(TEXT).unwrap();
        assert_eq!(render(TEXT, &v, &v), TEXT);
    }

    #[test]
    fn a_changed_value_is_spliced_in_place() {
        let old: Value = serde_json::from_str(TEXT).unwrap();
        let mut new = old.clone();
        new["masters"][0]["ipaddress"] = "10.0.0.9".into();
        new["a/b"] = "y\"q".into();
        let out = render(TEXT, &old, &new);
        assert_eq!(
            out,
            TEXT.replace("10.0.0.1", "10.0.0.9")
                .replace("\"x\"", "\"y\\\"q\"")
        );
    }

    #[test]
    fn added_rows_keep_the_others_text_and_look_like_their_neighbour() {
        let old: Value = serde_json::from_str(TEXT).unwrap();
        let mut new = old.clone();
        new["masters"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"hostname": "m-1", "ipaddress": "10.0.0.2"}));
        let out = render(TEXT, &old, &new);
        let back: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, new);
        assert_eq!(
            out,
            TEXT.replace(
                "{\"hostname\": \"m-0\", \"ipaddress\": \"10.0.0.1\"}\n",
                "{\"hostname\": \"m-0\", \"ipaddress\": \"10.0.0.1\"},\n    {\"hostname\": \"m-1\", \"ipaddress\": \"10.0.0.2\"}\n"
            )
        );
        // And removed again: byte for byte the original.
        assert_eq!(render(&out, &new, &old), TEXT);
    }

    /// The shape of a real config.json (the reference example's formatting: 2-space indent, one
    /// key per line, a blank line between groups).
    const REFERENCE_STYLE: &str = "{\n  \"clusterid\": \"ocp4test\",\n  \"masters\": [\n    {\n      \"hostname\": \"master-0\",\n      \"ipaddress\": \"10.50.1.10\"\n    },\n    {\n      \"hostname\": \"master-1\",\n      \"ipaddress\": \"10.50.1.11\"\n    },\n    {\n      \"hostname\": \"master-2\",\n      \"ipaddress\": \"10.50.1.12\"\n    }\n  ],\n  \"smallworkers\": [],\n\n  \"satellitefqdn\": \"satellite.example.com\"\n}\n";

    #[test]
    fn node_rows_added_and_removed_in_the_reference_style_touch_only_their_lines() {
        let old: Value = serde_json::from_str(REFERENCE_STYLE).unwrap();
        let mut added = old.clone();
        added["masters"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"hostname": "master-3", "ipaddress": "10.50.1.13"}));
        let out = render(REFERENCE_STYLE, &old, &added);
        assert_eq!(
            out,
            REFERENCE_STYLE.replace(
                "\"10.50.1.12\"\n    }\n",
                "\"10.50.1.12\"\n    },\n    {\n      \"hostname\": \"master-3\",\n      \"ipaddress\": \"10.50.1.13\"\n    }\n"
            )
        );
        // Removing the middle row takes its lines only.
        let mut removed = old.clone();
        removed["masters"].as_array_mut().unwrap().remove(1);
        let out = render(REFERENCE_STYLE, &old, &removed);
        assert_eq!(
            out,
            REFERENCE_STYLE.replace(
                ",\n    {\n      \"hostname\": \"master-1\",\n      \"ipaddress\": \"10.50.1.11\"\n    }",
                ""
            )
        );
        // The first and the only rows too.
        let mut first = old.clone();
        first["masters"].as_array_mut().unwrap().remove(0);
        let out = render(REFERENCE_STYLE, &old, &first);
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), first);
        assert!(out.starts_with("{\n  \"clusterid\": \"ocp4test\",\n  \"masters\": [\n    {\n      \"hostname\": \"master-1\""), "{out}");
        // A first node in an empty group is written pretty at the group's indentation.
        let mut worker = old.clone();
        worker["smallworkers"] =
            serde_json::json!([{"hostname": "worker-0", "ipaddress": "10.50.1.30"}]);
        let out = render(REFERENCE_STYLE, &old, &worker);
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), worker);
        assert!(
            out.contains("\"smallworkers\": [\n    {\n      \"hostname\": \"worker-0\""),
            "{out}"
        );
    }
}
