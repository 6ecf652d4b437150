//! JUnit XML: one failed test case per finding, the text report as its failure message, so
//! CI systems show it next to the tests; one passing case when nothing was found. A finding
//! in a process that was running a test (pytest, unittest) is filed under that test's
//! classname and name.

use std::io::{self, Write};

use crate::model::*;

/// Text for an XML attribute or element; control characters (from the target's strings) are
/// not allowed in XML 1.0 and are dropped.
fn escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn render<W: Write>(doc: &Document, fail_on: &[FindingKind], mut out: W) -> io::Result<()> {
    // XML 1.0 cannot carry most control characters either: the escaped document has none.
    let doc = &*super::escape::document(doc);
    let mut text = Vec::new();
    super::text::render(doc, &super::text::Style { color: false }, &mut text)?;
    let report = String::from_utf8_lossy(&text);
    let failing: Vec<&Finding> = doc
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error || fail_on.contains(&f.kind))
        .collect();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="gridlock" tests="{}" failures="{}">"#,
        failing.len().max(1),
        failing.len()
    )?;
    writeln!(
        out,
        r#"  <testsuite name="gridlock" tests="{}" failures="{}">"#,
        failing.len().max(1),
        failing.len()
    )?;
    if failing.is_empty() {
        writeln!(
            out,
            r#"    <testcase classname="gridlock" name="no deadlock, stall or hang"/>"#
        )?;
    }
    for f in failing {
        // The hung test's own names, so CI attributes the failure to it; else gridlock's.
        let (classname, name) = match doc.finding_test(f) {
            Some(t) => (t.classname.clone(), t.function.clone()),
            None => (format!("gridlock.{}", f.kind.as_str()), f.summary.clone()),
        };
        writeln!(
            out,
            r#"    <testcase classname="{}" name="{}">"#,
            escape(&classname),
            escape(&name)
        )?;
        writeln!(
            out,
            r#"      <failure type="{}" message="{}">{}</failure>"#,
            f.kind.as_str(),
            escape(&f.summary),
            escape(&report)
        )?;
        writeln!(out, "    </testcase>")?;
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(out, "</testsuites>")
}
