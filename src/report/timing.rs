//! The text report's words for what issue 31 added: an idle process (what can wake it), a
//! wait's timeout and how long it has lasted, and a counting resource's permits. Pure
//! functions of the document; `text` places them.

use std::io::{self, Write};

use crate::model::{Document, Lock, Wait};

/// `IDLE  process 4242: waiting for SIGTERM's handler (its main thread waits at ...)`, one
/// line per idle process, then a blank line when there was any.
pub fn idle_lines<W: Write>(doc: &Document, out: &mut W) -> io::Result<()> {
    let mut any = false;
    for p in &doc.processes {
        let Some(idle) = &p.idle else { continue };
        let at = idle
            .site
            .as_deref()
            .map(|s| format!("; its main thread waits at {s}"))
            .unwrap_or_default();
        writeln!(
            out,
            "IDLE  process {} is idle, not stuck: every thread waits, and it is {}{at}.",
            p.pid, idle.summary
        )?;
        any = true;
    }
    if any {
        writeln!(out)?;
    }
    Ok(())
}

/// ` (timeout 0.2 s, waiting 12.4 s)`, ` (waiting 3.0 s)`, or ` (with timeout)` where neither
/// is known.
pub fn wait_timing(w: &Wait) -> String {
    let mut parts = Vec::new();
    if let Some(t) = w.timeout_s {
        parts.push(format!("timeout {}", short_seconds(t.0)));
    }
    if let Some(s) = w.waited_s {
        parts.push(format!("waiting {}", short_seconds(s.0)));
    }
    match (parts.is_empty(), w.timed) {
        (false, _) => format!(" ({})", parts.join(", ")),
        (true, true) => " (with timeout)".into(),
        (true, false) => String::new(),
    }
}

/// `2 of 2 permits held`, for a semaphore or pool whose permits are known.
pub fn permits_label(lock: &Lock) -> Option<String> {
    let p = lock.permits?;
    let unit = if lock.kind == crate::model::LockKind::Pool {
        "items"
    } else {
        "permits"
    };
    Some(match (p.total, p.free) {
        (Some(t), Some(f)) => format!("{} of {t} {unit} held", t.saturating_sub(f)),
        (None, Some(f)) => format!("{f} {unit} free"),
        (Some(t), None) => format!("{t} {unit}"),
        (None, None) => return None,
    })
}

fn short_seconds(s: f64) -> String {
    if s >= 100.0 {
        crate::analysis::timed::seconds_text(s)
    } else {
        format!("{s:.1} s")
    }
}
