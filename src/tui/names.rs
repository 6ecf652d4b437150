//! How the dashboard names threads, locks and waits in a few words (the header, the threads
//! table and the graph say them the same way). Functions of the document only.

use crate::model::{Document, Thread, ThreadState, WaitKind};

pub fn thread_name(t: &Thread) -> String {
    t.name
        .clone()
        .unwrap_or_else(|| format!("thread {}", t.thread_id))
}

/// A thread's name, with its process when the document spans several (each has a MainThread).
pub fn qualified_name(doc: &Document, t: &Thread) -> String {
    if doc.processes.len() > 1 {
        format!("{}@{}", thread_name(t), t.pid)
    } else {
        thread_name(t)
    }
}

pub fn thread_name_by_id(doc: &Document, id: &str) -> String {
    doc.thread(id)
        .map(|t| qualified_name(doc, t))
        .unwrap_or_else(|| format!("thread {}", id.rsplit(':').next().unwrap_or(id)))
}

/// How a table cell names a lock: its program-wide name (`checking.lock`), else the given
/// name, else its first known name, else kind and address.
pub fn lock_short(doc: &Document, id: &str, name: Option<&str>) -> String {
    if let Some(program) = doc.lock(id).and_then(|l| l.name.clone()) {
        return program;
    }
    if let Some(n) = name {
        return n.to_string();
    }
    match doc.lock(id) {
        Some(l) => match (&l.module, l.names.first()) {
            (Some(m), _) => format!("import lock {m}"),
            (None, Some(n)) => n.name.clone(),
            (None, None) => format!("{} {}", l.kind, l.address),
        },
        None => id.rsplit(':').next().unwrap_or(id).to_string(),
    }
}

/// How a wider panel names a lock: the program-wide name first, with the local one where it
/// differs (`checking.lock (dst.lock in transfer)`); else as `lock_short`.
pub fn lock_long(doc: &Document, id: &str, name: Option<&str>) -> String {
    doc.lock(id)
        .filter(|l| l.name.is_some())
        .and_then(|l| l.display_name(name))
        .unwrap_or_else(|| lock_short(doc, id, name))
}

pub fn holds_text(doc: &Document, t: &Thread) -> String {
    t.holds
        .iter()
        .map(|h| lock_short(doc, &h.lock, h.name.as_deref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a thread waits for, in a few words: the lock or thread, a counting resource's
/// permits and holders, and the wait's timeout and how long it has lasted.
pub fn wait_text(doc: &Document, t: &Thread) -> String {
    let Some(w) = &t.waits_for else {
        return String::new();
    };
    // The futex of a thread waiting for the GIL is the GIL's: say so rather than its address.
    if t.state == ThreadState::GilWait && w.kind == WaitKind::UnknownFutex {
        return "GIL".into();
    }
    // ` (timeout 0.2 s, waiting 12.4 s)`: how long a (polling) wait has lasted so far.
    let timed = &crate::report::timing::wait_timing(w);
    match (w.kind, &w.target) {
        (WaitKind::Join, Some(th)) => format!("join {}{timed}", thread_name_by_id(doc, th)),
        (WaitKind::Notify, Some(l)) => {
            format!("notify {}{timed}", lock_short(doc, l, w.name.as_deref()))
        }
        (_, Some(l)) => {
            let holders: Vec<String> = doc
                .lock(l)
                .map(|lock| {
                    lock.holders
                        .iter()
                        .filter_map(|h| h.thread.as_deref())
                        .map(|id| thread_name_by_id(doc, id))
                        .collect()
                })
                .unwrap_or_default();
            let by = if holders.is_empty() {
                String::new()
            } else {
                format!(" ← {}", holders.join(", "))
            };
            // A semaphore's or pool's count: `, 2 of 2 permits held`.
            let permits = doc
                .lock(l)
                .and_then(crate::report::timing::permits_label)
                .map(|p| format!(", {p}"))
                .unwrap_or_default();
            format!(
                "{}{permits}{by}{timed}",
                lock_short(doc, l, w.name.as_deref())
            )
        }
        _ => format!("futex {}{timed}", w.futex.as_deref().unwrap_or("?")),
    }
}
