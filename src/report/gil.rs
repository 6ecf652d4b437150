//! The text report's GIL section (`record`): who held the GIL over the recording, for how
//! long, and who waited. A pure function of the document's `gil`; `text` places it.

use std::io::{self, Write};

use super::labels::thread_label;
use crate::model::{percent, Document, GilThreadUse};

/// Threads listed at most (the rest are counted).
const SHOWN: usize = 8;

/// `GIL over N samples ...` and one line per thread that held or waited for it, the one that
/// held it most first; nothing when the document has no GIL use.
pub fn gil_lines<W: Write>(doc: &Document, out: &mut W) -> io::Result<()> {
    let Some(gil) = &doc.gil else {
        return Ok(());
    };
    let n = gil.samples.max(1) as f64;
    writeln!(
        out,
        "GIL over {} samples: held in {}, waited for in {}, up to {} waiting at once",
        gil.samples,
        percent(gil.held_samples as f64 / n),
        percent(gil.contended_samples as f64 / n),
        gil.max_waiters
    )?;
    for t in gil.threads.iter().take(SHOWN) {
        writeln!(out, "  {}  {}", label(doc, t), t.summary())?;
    }
    if gil.threads.len() > SHOWN {
        writeln!(out, "  … {} more threads", gil.threads.len() - SHOWN)?;
    }
    writeln!(out)
}

fn label(doc: &Document, t: &GilThreadUse) -> String {
    match (doc.thread(&t.thread), &t.name) {
        (None, Some(name)) => format!("\"{name}\" (exited)"),
        _ => thread_label(doc, &t.thread),
    }
}
