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
        _ => out.push((range.clone(), pretty(new, indent_at(text, range.start)))),
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
    fn added_rows_are_indented_like_their_neighbours() {
        let old: Value = serde_json::from_str(TEXT).unwrap();
        let mut new = old.clone();
        new["masters"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"hostname": "m-1", "ipaddress": "10.0.0.2"}));
        let out = render(TEXT, &old, &new);
        let back: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, new);
        assert!(out.starts_with("{\n  \"clusterid\": \"ocp4\",\n  \"zzz_unknown\": {\"keep\":  [1,2 ,3]},\n\n  \"masters\": [\n    {\n"), "{out}");
        assert!(out.ends_with("  ],\n  \"a/b\": \"x\"  \n}\n"), "{out}");
    }
}
