//! How the human-facing printers name what only the kernel explains: a file lock and who
//! holds it (a process of the report, or one outside it, by pid and command), a socket wait
//! named by its address (an `accept`, a `connect` and who listens, another host).

use crate::model::*;

/// `pid 27370 (python3 gc.py)` for a process of the report; `pid 4242 (sleep 600), outside
/// the watched processes` for one the lock table names but gridlock does not read.
pub fn holder_label(doc: &Document, lock: &Lock, pid: i32) -> String {
    if let Some(p) = doc.processes.iter().find(|p| p.pid == pid) {
        return format!("pid {pid} ({})", crate::analysis::detectors::short_cmd(p));
    }
    let command = lock
        .shared
        .as_ref()
        .and_then(|s| s.commands.get(&pid))
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    format!("pid {pid}{command}, outside the watched processes")
}

/// `file lock on /tmp/index.lock, held by pid 20415 (gc.py)`.
pub fn file_lock_label(doc: &Document, lock: &Lock) -> String {
    let what = lock
        .name
        .clone()
        .or_else(|| lock.shared.as_ref().and_then(|s| s.path.clone()))
        .unwrap_or_else(|| lock.address.clone());
    let holders: Vec<String> = lock
        .holders
        .iter()
        .filter_map(|h| h.process)
        .map(|p| holder_label(doc, lock, p))
        .collect();
    let unknown = lock.holders.iter().any(|h| h.evidence == Evidence::Unknown);
    match (holders.is_empty(), unknown) {
        (true, _) => format!("file lock on {what} (holder unknown)"),
        (false, false) => format!("file lock on {what}, held by {}", holders.join(" and ")),
        (false, true) => format!(
            "file lock on {what}, held by {} and a holder gridlock cannot see",
            holders.join(" and ")
        ),
    }
}

/// `connect to /run/app.sock, listened on by pid 4242 (server.py)`, `accept on
/// 127.0.0.1:8080, nobody known to connect`, `read from 93.184.216.34:443, a remote host`: a
/// socket wait whose lock carries an address (`Lock.name`); a connection linked to its peer as
/// `write to socket:[N] (tcp 127.0.0.1:40122 -> 127.0.0.1:5000)`; `None` without a name.
pub fn socket_label(doc: &Document, lock: &Lock, wait_name: Option<&str>) -> Option<String> {
    let address = lock.name.as_deref()?;
    let what = wait_name.unwrap_or(address);
    if !is_listener(lock) {
        // A connection: named by its two addresses; its other end's holders only when the
        // report does not show them (a process outside it), as a finding's edges do that.
        let mut label = match wait_name {
            Some(w) if !w.contains(address) => format!("{w} ({address})"),
            _ => what.to_string(),
        };
        let outside: Vec<String> = lock
            .holders
            .iter()
            .filter_map(|h| h.process)
            .filter(|p| !doc.processes.iter().any(|x| x.pid == *p))
            .map(|p| holder_label(doc, lock, p))
            .collect();
        if !outside.is_empty() {
            label.push_str(&format!(", other end held by {}", outside.join(" and ")));
        }
        return Some(label);
    }
    let holders: Vec<String> = lock
        .holders
        .iter()
        .filter_map(|h| h.process)
        .map(|p| holder_label(doc, lock, p))
        .collect();
    Some(if !holders.is_empty() {
        format!("{what}, listened on by {}", holders.join(" and "))
    } else if what.starts_with("accept") {
        format!("{what}, nobody known to connect")
    } else {
        what.to_string()
    })
}

/// Whether a socket lock stands for a listener (a `connect` waits for whoever accepts), not for
/// a connection linked to its peer: only the latter knows its peer's socket.
pub fn is_listener(lock: &Lock) -> bool {
    lock.kind == LockKind::Socket
        && lock.name.is_some()
        && lock.shared.as_ref().is_none_or(|s| s.peer_inode.is_none())
}

/// What the threads of process `pid` wait for through the kernel and who is on the other side,
/// one entry per wait: `file lock index.lock -> pid 20415`, `socket -> pid 20417`,
/// `pipe -> pid 20417`; a holder outside the report is named by pid alone. The process view
/// of `top` shows these as the edges between processes.
pub fn process_kernel_waits(doc: &Document, pid: i32) -> Vec<String> {
    let mut out = Vec::new();
    for thread in doc.threads.iter().filter(|t| t.pid == pid) {
        let Some(lock) = thread
            .waits_for
            .as_ref()
            .and_then(|w| w.target.as_deref())
            .and_then(|id| doc.lock(id))
        else {
            continue;
        };
        let what = match lock.kind {
            LockKind::FileLock => {
                let path = lock
                    .name
                    .clone()
                    .or_else(|| lock.shared.as_ref().and_then(|s| s.path.clone()))
                    .unwrap_or_else(|| lock.address.clone());
                let file = path.rsplit('/').next().unwrap_or(&path).to_string();
                format!("file lock {file}")
            }
            LockKind::Socket | LockKind::Pipe | LockKind::Children => {
                lock.kind.as_str().to_string()
            }
            _ => continue,
        };
        let mut others: Vec<i32> = lock
            .holders
            .iter()
            .filter_map(|h| {
                h.process.or_else(|| {
                    h.thread
                        .as_deref()
                        .and_then(|t| doc.thread(t))
                        .map(|t| t.pid)
                })
            })
            .filter(|p| *p != pid)
            .collect();
        others.sort_unstable();
        others.dedup();
        let entry = if others.is_empty() {
            format!("{what} -> holder unknown")
        } else {
            let pids: Vec<String> = others.iter().map(|p| format!("pid {p}")).collect();
            format!("{what} -> {}", pids.join(", "))
        };
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    out
}
