//! How the text report names the parties of a finding: a process, a thread, a task, a lock
//! (with its program-wide name, kind, address and permits) or whatever an edge points at. It
//! writes nothing and knows no style.

use crate::model::*;

pub(super) fn process_label(doc: &Document, pid: i32) -> String {
    match doc.processes.iter().find(|p| p.pid == pid) {
        Some(p) => format!(
            "process {pid} ({})",
            crate::analysis::detectors::short_cmd(p)
        ),
        None => format!("process {pid} (not Python or gone)"),
    }
}

/// A thread, a process (`PID:p`) or a resource: whatever a cross-process edge points at.
pub(super) fn party_label(doc: &Document, id: &str) -> String {
    if let Some(pid) = id.strip_suffix(":p").and_then(|p| p.parse().ok()) {
        process_label(doc, pid)
    } else if doc.thread(id).is_some() || id.contains(":t:") {
        thread_label(doc, id)
    } else if id.contains(":task:") {
        task_label(doc, id)
    } else {
        lock_label(doc, id, None)
    }
}

pub(super) fn thread_label(doc: &Document, id: &str) -> String {
    match doc.thread(id) {
        Some(t) if doc.processes.len() > 1 => {
            let name = t
                .name
                .clone()
                .map(|n| format!("\"{n}\""))
                .unwrap_or_else(|| format!("thread {}", t.thread_id));
            format!("{name} of {}", process_label(doc, t.pid))
        }
        Some(t) => {
            let name = t
                .name
                .clone()
                .map(|n| format!("\"{n}\""))
                .unwrap_or_else(|| format!("thread {}", t.thread_id));
            match t.tid_label() {
                Some(tid) => format!("{name} ({tid})"),
                None => name,
            }
        }
        None => format!("thread {}", id.rsplit(':').next().unwrap_or(id)),
    }
}

pub(super) fn task_label(doc: &Document, id: &str) -> String {
    match doc.task(id) {
        Some(t) => format!(
            "task \"{}\" ({})",
            t.name.as_deref().unwrap_or("?"),
            t.coroutine.as_deref().unwrap_or("?")
        ),
        None => format!("task {}", id.rsplit(':').next().unwrap_or(id)),
    }
}

/// A thread or an asyncio task.
pub(super) fn node_label(doc: &Document, id: &str) -> String {
    if id.contains(":task:") {
        task_label(doc, id)
    } else if id.contains(":loop:") {
        format!("event loop {}", id.rsplit(':').next().unwrap_or(id))
    } else {
        party_label(doc, id)
    }
}

pub(super) fn lock_label(doc: &Document, id: &str, name: Option<&str>) -> String {
    match doc.lock(id) {
        Some(l) => {
            if let Some(sh) = &l.shared {
                let name = name
                    .map(str::to_string)
                    .or_else(|| l.names.first().map(|n| n.name.clone()));
                if l.kind == LockKind::Children {
                    return format!("any child of process {} to exit", l.pid);
                }
                if l.kind == LockKind::FileLock {
                    return crate::report::kernel::file_lock_label(doc, l);
                }
                if l.kind == LockKind::Socket {
                    if let Some(label) =
                        crate::report::kernel::socket_label(doc, l, name.as_deref())
                    {
                        return label;
                    }
                }
                let what = l.kind.type_label();
                let place = match (&sh.path, sh.offset) {
                    (Some(p), Some(off))
                        if !matches!(l.kind, LockKind::Pipe | LockKind::Socket) =>
                    {
                        format!("{p} +{off:#x}")
                    }
                    (Some(p), _) => p.clone(),
                    _ => l.id.clone(),
                };
                return match name {
                    Some(n) if !n.starts_with("read ") && !n.starts_with("write ") => {
                        format!("{n} <{what} {place}>")
                    }
                    _ => format!("<{what} {place}>"),
                };
            }
            if let Some(c) = crate::analysis::below_python::below_python_label(l) {
                return c;
            }
            let kind = l.python_type.as_deref().unwrap_or(l.kind.type_label());
            // An entry with no object of its own (a Celery task's result) shows its type alone.
            let at = if l.address.is_empty() {
                String::new()
            } else {
                format!(" {}", l.address)
            };
            let name = l.display_name(name);
            match (name, &l.module) {
                (_, Some(m)) => format!("import lock of module {m} <{kind}{at}>"),
                (Some(n), None) => match super::timing::permits_label(l) {
                    Some(p) => format!("{n} <{kind}{at}, {p}>"),
                    None => format!("{n} <{kind}{at}>"),
                },
                (None, None) => format!("<{kind}{at}>"),
            }
        }
        None => id.to_string(),
    }
}

/// What a task awaits that is no task, lock or gather, by its kind and the program's name
/// for it with the code's beside it where they differ (`event jobs.done (ev)`), else the
/// code's name alone.
pub(super) fn awaited_label(kind: TaskWaitKind, w: &TaskWait) -> String {
    match (w.program_name.as_ref().map(|n| &n.name), &w.name) {
        (Some(p), Some(n)) if p != n => format!("{kind} {p} ({n})"),
        (Some(p), _) => format!("{kind} {p}"),
        (None, Some(n)) => format!("{kind} {n}"),
        (None, None) => kind.to_string(),
    }
}
