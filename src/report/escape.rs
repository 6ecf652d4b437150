//! Which characters of a string the operator's terminal must never receive raw, and the one
//! document every human-facing printer (text, DOT, JUnit) renders from, with those escaped.
//!
//! Thread names, file names, function and variable names, the command line and string locals
//! all come from the target, which may be buggy or hostile: a raw ESC, BEL, NUL or line break
//! would drive the terminal or break line-based parsing of the report, and a bidi override
//! would make a name read as something else. Such characters are shown escaped (`\x1b`, `\n`,
//! `\u{202e}`); every other character, the backslash included, is left as it is. It may not
//! change the JSON document (JSON escapes them itself) nor `top` (it has its own rendering).

use std::borrow::Cow;

use crate::model::{Document, Process};

/// Whether `c` must not reach a terminal raw: C0 and C1 controls, DEL, bidi embeddings,
/// overrides, isolates and marks, and the Unicode line and paragraph separators.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
                | '\u{2028}' | '\u{2029}'
        )
}

/// `s` with every unsafe character shown escaped; borrowed when there is none.
/// Idempotent: an escaped string has nothing left to escape.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) && (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The document with every string in it escaped, for the human-facing printers. Walked
/// through its serialized form so that every string field, including ones added later, is
/// covered without a list of fields to keep up to date; ids are escaped alike everywhere, so
/// references between them still match. Borrowed when nothing needs escaping (the usual case).
pub fn document(doc: &Document) -> Cow<'_, Document> {
    // A quick look first (a `Value` tree of a 300-thread document costs milliseconds): compact
    // JSON shows every character raw except `"`, `\` and the controls below U+0020, which it
    // writes behind a backslash, so text with no unsafe character and no backslash but those
    // before `"` and `\` holds no string to escape.
    if serde_json::to_string(doc)
        .is_ok_and(|json| !json.chars().any(is_unsafe) && !escapes_a_control(&json))
    {
        return Cow::Borrowed(doc);
    }
    let Ok(mut value) = serde_json::to_value(doc) else {
        return Cow::Borrowed(doc);
    };
    if !escape_strings(&mut value) {
        return Cow::Borrowed(doc);
    }
    match serde_json::from_value(value) {
        Ok(escaped) => Cow::Owned(escaped),
        // Only a non-finite number could fail the round trip (it serializes as null): print
        // the processes alone rather than anything raw.
        Err(_) => Cow::Owned(Document {
            processes: doc
                .processes
                .iter()
                .map(|p| Process {
                    name: escape(&p.name).into_owned(),
                    cmdline: escape(&p.cmdline).into_owned(),
                    celery: None,
                    ..p.clone()
                })
                .collect(),
            threads: Vec::new(),
            locks: Vec::new(),
            tasks: Vec::new(),
            findings: Vec::new(),
            loops: Vec::new(),
            gil: None,
            ..doc.clone()
        }),
    }
}

/// Whether JSON text holds an escape other than `\"` and `\\`: a control character.
fn escapes_a_control(json: &str) -> bool {
    let mut bytes = json.bytes();
    while let Some(b) = bytes.next() {
        if b == b'\\' && !matches!(bytes.next(), Some(b'"' | b'\\')) {
            return true;
        }
    }
    false
}

/// Escape every string (and object key) in `v`; whether anything changed.
fn escape_strings(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => match escape(s) {
            Cow::Owned(e) => {
                *s = e;
                true
            }
            Cow::Borrowed(_) => false,
        },
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, x| escape_strings(x) | changed),
        Value::Object(map) => {
            let mut changed = false;
            if map.keys().any(|k| matches!(escape(k), Cow::Owned(_))) {
                let old = std::mem::take(map);
                for (k, x) in old {
                    map.insert(escape(&k).into_owned(), x);
                }
                changed = true;
            }
            map.values_mut()
                .fold(changed, |changed, x| escape_strings(x) | changed)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_shown_escaped_and_nothing_else_changes() {
        assert_eq!(
            escape("a\x1b[1;33mX\x07\x00\n\r\t\u{7f}\u{9b}\u{202e}gnp.py"),
            "a\\x1b[1;33mX\\x07\\x00\\n\\r\\t\\x7f\\u{9b}\\u{202e}gnp.py"
        );
        for plain in [
            "teller-1",
            "bank_transfer.py",
            "a\\nb",
            "é ü 漢字 🦀",
            "\"q\" <x>",
        ] {
            assert!(matches!(escape(plain), Cow::Borrowed(_)), "{plain}");
        }
        let once = escape("x\x1by\u{2066}").into_owned();
        assert_eq!(escape(&once), once);
    }

    #[test]
    fn a_document_round_trips_with_every_string_escaped() {
        let text = std::fs::read_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/documents"
        ))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap();
        let mut doc: Document = serde_json::from_str(&text).unwrap();
        assert!(matches!(document(&doc), Cow::Borrowed(_)));
        doc.processes[0].cmdline = "python \x1b]0;owned\x07 \u{202e}".into();
        if let Some(t) = doc.threads.first_mut() {
            t.name = Some("w\x00\n".into());
        }
        let escaped = document(&doc).into_owned();
        assert_eq!(
            escaped.processes[0].cmdline,
            "python \\x1b]0;owned\\x07 \\u{202e}"
        );
        if let Some(t) = escaped.threads.first() {
            assert_eq!(t.name.as_deref(), Some("w\\x00\\n"));
        }
        assert_eq!(escaped.findings.len(), doc.findings.len());
        if let Some(t) = doc.threads.first_mut() {
            t.name = Some("w".into());
        }
        // Quotes and backslashes need no escaping; DEL and C1 controls, which JSON leaves raw,
        // and a control behind an escaped backslash do.
        for (name, expected) in [
            ("say \"hi\" C:\\x \\\"", None),
            ("del\u{7f}", Some("del\\x7f")),
            ("csi\u{9b}", Some("csi\\u{9b}")),
            ("\\\x1b", Some("\\\\x1b")),
        ] {
            doc.processes[0].cmdline = name.into();
            match (document(&doc), expected) {
                (Cow::Borrowed(_), None) => {}
                (Cow::Owned(d), Some(e)) => assert_eq!(d.processes[0].cmdline, e),
                (got, _) => panic!("{name:?}: {:?}", got.processes[0].cmdline),
            }
        }
    }

    #[test]
    fn json_escapes_of_controls_are_told_from_quotes_and_backslashes() {
        assert!(!escapes_a_control(r#"{"a":"x\"y\\z"}"#));
        assert!(escapes_a_control(r#"{"a":"x\u001b"}"#));
        assert!(escapes_a_control(r#"{"a":"\\\n"}"#));
        assert!(!escapes_a_control(r#"{"a":"\\n"}"#));
    }
}
