//! Text from a server, made safe to show on a terminal or in a one-line
//! status file: control characters are escaped, never passed through.
//!
//! A server's error message ends up in `.pushfs/error`, `.pushfs/log`,
//! `pushfs status` and the mount's log. Raw, an `ESC ] 0 ;` would retitle
//! the reader's terminal, `ESC [ 2 J` clear it, a CR overwrite the line
//! with something else, and a NUL or LF break the one-line files.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character (C0, DEL, C1) and every
/// bidirectional override written as a visible escape (`\x1b`, `\r`,
/// `\u{202e}`); anything else, including non-ASCII letters, unchanged.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => shown.push_str("\\n"),
            '\r' => shown.push_str("\\r"),
            '\t' => shown.push_str("\\t"),
            c if (c as u32) < 0x100 && needs_escape(c) => {
                let _ = write!(shown, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(shown, "\\u{{{:x}}}", c as u32);
            }
            c => shown.push(c),
        }
    }
    Cow::Owned(shown)
}

/// A server's JSON with every string and key [`printable`]: JSON escapes
/// C0 controls itself, but not C1 or bidirectional overrides, and a cut
/// copy of the text (see `capped_response`) would carry them raw.
pub fn printable_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => match printable(&s) {
            Cow::Borrowed(_) => Value::String(s),
            Cow::Owned(shown) => Value::String(shown),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(printable_json).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (printable(&k).into_owned(), printable_json(v)))
                .collect(),
        ),
        other => other,
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        // Bidirectional embeddings, overrides and isolates reorder what
        // follows them on screen ("Trojan Source").
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_escaped() {
        let hostile = "bad\x1b]0;title\x07 \x1b[2J\rok\0\n\u{9b}31m \u{202e}gnp.exe";
        assert_eq!(
            printable(hostile),
            "bad\\x1b]0;title\\x07 \\x1b[2J\\rok\\x00\\n\\x9b31m \\u{202e}gnp.exe"
        );
    }

    #[test]
    fn json_strings_and_keys_are_escaped() {
        let value = serde_json::json!({"k\u{9b}": ["\x1b[2J", 3], "ok": "fine"});
        assert_eq!(
            printable_json(value),
            serde_json::json!({"k\\x9b": ["\\x1b[2J", 3], "ok": "fine"})
        );
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        let text = "the server rejected the deploy (HTTP 400): nom déjà pris — 名前";
        assert!(matches!(printable(text), Cow::Borrowed(t) if t == text));
    }
}
