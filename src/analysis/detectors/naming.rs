//! How a finding words its parties: a process, a lock, a task, a lock's holders, and each
//! wait of a cycle from waiter to waker. Words only, shared by the detectors and the reports;
//! it decides no finding.

use crate::analysis::labels::thread_label;
use crate::model::*;
use crate::snapshot::Snapshot;

pub(super) fn process_label(snap: &Snapshot, pid: i32) -> String {
    match snap.processes.iter().find(|p| p.pid == pid) {
        Some(p) => format!("process {pid} ({})", short_cmd(p)),
        None => format!("process {pid}"),
    }
}

/// A short command: the script and its arguments rather than the interpreter's full path.
pub fn short_cmd(p: &Process) -> String {
    let cmd = if p.cmdline.is_empty() {
        &p.name
    } else {
        &p.cmdline
    };
    let words: Vec<&str> = cmd.split(' ').collect();
    let start = usize::from(words.len() > 1 && words[0].contains("python"));
    let s: Vec<String> = words[start..]
        .iter()
        .map(|w| short_file(w).to_string())
        .collect();
    let s = s.join(" ");
    if s.len() > 60 {
        format!("{}...", &s[..s.floor_char_boundary(57)])
    } else {
        s
    }
}

/// The pids a finding involves, from its thread and node ids (`PID:...`).
pub(super) fn pids_of<'a>(ids: impl Iterator<Item = &'a String>) -> Vec<i32> {
    let mut v: Vec<i32> = ids
        .filter_map(|id| id.split(':').next()?.parse().ok())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

pub fn lock_label(snap: &Snapshot, id: &str) -> String {
    match snap.lock(id) {
        Some(l) => l
            .display_name(None)
            .or_else(|| crate::analysis::below_python::below_python_label(l))
            .unwrap_or_else(|| format!("{} {}", l.kind, l.address)),
        None => id.to_string(),
    }
}

pub fn task_label(snap: &Snapshot, id: &str) -> String {
    match snap.task(id) {
        Some(t) => format!(
            "task \"{}\" ({})",
            t.name.as_deref().unwrap_or("?"),
            t.coroutine.as_deref().unwrap_or("?")
        ),
        None => id.to_string(),
    }
}

/// A thread or task's label, whichever `id` names.
pub(super) fn party(snap: &Snapshot, id: &str) -> String {
    if let Some(pid) = id.strip_suffix(":p").and_then(|p| p.parse().ok()) {
        process_label(snap, pid)
    } else if snap.task(id).is_some() {
        task_label(snap, id)
    } else {
        thread_label(snap, id)
    }
}

/// Each wait of a cycle in words, from the waiter to whoever can end it: "A waits for the
/// result of f running on B", "B waits for lock_a, held by A", "C joins D".
pub fn describe_waits(snap: &Snapshot, edges: &[Edge]) -> Vec<String> {
    let mut parts = Vec::new();
    for (i, e) in edges.iter().enumerate() {
        let next = edges.get(i + 1).filter(|n| n.from == e.to);
        let from = party(snap, &e.from);
        let part = match e.via {
            EdgeVia::WaitsFor
                if next.is_some_and(|n| {
                    n.via == EdgeVia::CompletedBy && n.evidence == Evidence::ReadyQueue
                }) =>
            {
                let event = snap.lock(&e.to).is_some_and(|l| l.kind == LockKind::Event);
                format!(
                    "{from} waits for {}, {} on the event loop of {}",
                    lock_label(snap, &e.to),
                    if event {
                        "set by a callback queued"
                    } else {
                        "queued"
                    },
                    party(snap, &next.unwrap().to)
                )
            }
            EdgeVia::WaitsFor
                if snap
                    .lock(&e.to)
                    .is_some_and(|l| l.kind == LockKind::Deferred) =>
            {
                let what = lock_label(snap, &e.to);
                match next.filter(|n| n.via == EdgeVia::CompletedBy) {
                    Some(n) => format!("{from} waits for {what}, fired by {}", party(snap, &n.to)),
                    None => format!("{from} waits for {what}"),
                }
            }
            EdgeVia::WaitsFor if snap.lock(&e.to).is_some_and(|l| l.kind == LockKind::Future) => {
                let what = lock_label(snap, &e.to);
                match next.filter(|n| n.via == EdgeVia::CompletedBy) {
                    Some(n) if n.site.is_some() || snap.task(&n.to).is_some() => format!(
                        "{from} waits for {what} {} {}",
                        if snap.task(&n.to).is_some() {
                            "computed by"
                        } else {
                            "running on"
                        },
                        party(snap, &n.to)
                    ),
                    Some(_) => {
                        let workers: Vec<String> = edges[i + 1..]
                            .iter()
                            .take_while(|n| n.via == EdgeVia::CompletedBy && n.from == e.to)
                            .map(|n| party(snap, &n.to))
                            .collect();
                        let any = if workers.len() > 1 { "any of " } else { "" };
                        format!(
                            "{from} waits for {what}, queued for {any}{}",
                            workers.join(", ")
                        )
                    }
                    None => format!("{from} waits for {what}"),
                }
            }
            EdgeVia::WaitsFor if next.is_some_and(|n| n.via == EdgeVia::DrainedBy) => {
                let getters: Vec<String> = edges[i + 1..]
                    .iter()
                    .take_while(|n| n.via == EdgeVia::DrainedBy && n.from == e.to)
                    .map(|n| party(snap, &n.to))
                    .collect();
                format!(
                    "{from} waits to put into {}, which is full and only {} takes from",
                    lock_label(snap, &e.to),
                    getters.join(" or ")
                )
            }
            EdgeVia::WaitsFor => match next.filter(|n| n.via == EdgeVia::HeldBy) {
                Some(n) => format!(
                    "{from} waits for {}, held by {}",
                    lock_label(snap, &e.to),
                    party(snap, &n.to)
                ),
                None => format!("{from} waits for {}", lock_label(snap, &e.to)),
            },
            EdgeVia::Joins => format!("{from} joins {}", party(snap, &e.to)),
            EdgeVia::Awaits => format!("{from} awaits {}", party(snap, &e.to)),
            EdgeVia::WaitsForExit => format!("{from} waits for {} to exit", e.to),
            _ => continue,
        };
        parts.push(part);
    }
    parts
}

pub(super) fn holder_labels(snap: &Snapshot, lock: &Lock) -> Vec<String> {
    lock.holders
        .iter()
        .filter_map(|h| match (&h.thread, &h.task, h.process) {
            (Some(id), _, _) | (None, Some(id), _) => Some(party(snap, id)),
            (None, None, _) if h.evidence == Evidence::PthreadOwner => {
                crate::analysis::below_python::c_owner_label(h)
            }
            (None, None, Some(p)) => Some(outside_process_label(snap, lock, p)),
            _ => None,
        })
        .collect()
}

/// A holding process; one outside the snapshot by the command the lock recorded for it.
fn outside_process_label(snap: &Snapshot, lock: &Lock, pid: i32) -> String {
    let command = lock.shared.as_ref().and_then(|s| s.commands.get(&pid));
    match command {
        Some(c) if !snap.processes.iter().any(|p| p.pid == pid) && pid != snap.pid => {
            format!("process {pid} ({c}), outside the watched processes")
        }
        _ => process_label(snap, pid),
    }
}
