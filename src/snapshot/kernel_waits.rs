//! Waits only the kernel explains, linked into a snapshot: a thread blocked taking a file lock
//! becomes a `file_lock_wait` on a `file_lock` node held by the processes in its way
//! (evidence `proc_locks`); a thread reading a terminal, or a stdin that nothing it waits with
//! writes, becomes an `input_wait`. What the kernel says is `crate::kernel`'s; this file
//! only turns it into threads, waits and locks.

use std::collections::BTreeMap;

use crate::kernel::{file_locks, input};
use crate::memory::ProcMemory;
use crate::model::*;
use crate::target::procfs;

use super::sample::Snapshot;

/// Link the file-lock and input waits of `snap`'s threads. `tree` is every process gridlock
/// watches (holders and writers are looked for there first).
pub fn link(snap: &mut Snapshot, tree: &[i32]) {
    let mut proc_locks: Option<Vec<file_locks::LockLine>> = None;
    let mut locks: BTreeMap<String, Lock> = BTreeMap::new();
    for t in snap.threads.iter_mut() {
        // Only a thread seen in one of these syscalls is read again (`record` samples often).
        if !matches!(
            t.syscall_name.as_deref(),
            Some("flock" | "fcntl" | "read" | "readv")
        ) {
            continue;
        }
        let Some(tid) = t.native_id else { continue };
        let Some(k) = procfs::kernel_thread(t.pid, tid).filter(|k| matches!(k.state, 'S' | 'D'))
        else {
            continue;
        };
        let Some(s) = k.syscall else { continue };
        if file_locks::is_lock_wait(&s) {
            let table = proc_locks.get_or_insert_with(|| {
                std::fs::read_to_string("/proc/locks")
                    .map(|t| file_locks::parse_proc_locks(&t))
                    .unwrap_or_default()
            });
            let mem = ProcMemory::open(t.pid).ok();
            let Some(w) = file_locks::blocked_wait(t.pid, &s, mem.as_ref(), table, tree) else {
                continue;
            };
            file_lock_wait(t, &w, &mut locks);
        } else if t.state != ThreadState::Running && !t.blocked {
            if let Some(src) = input::input_wait(t.pid, &s, tree) {
                input_wait(t, &src);
            }
        }
    }
    snap.locks.extend(locks.into_values());
    super::socket_waits::link(snap, tree);
}

/// Where user code waits: the innermost frame outside `fcntl`-wrapping libraries, else the innermost.
fn site(t: &Thread) -> Option<String> {
    let library = |f: &Frame| {
        matches!(
            short_file(&f.file),
            "filelock.py" | "_unix.py" | "portalocker.py"
        ) || f.file.contains("/filelock/")
    };
    t.frames
        .iter()
        .find(|f| !library(f))
        .or(t.frames.first())
        .map(|f| f.site())
}

fn file_lock_wait(
    t: &mut Thread,
    w: &file_locks::FileLockWait,
    locks: &mut BTreeMap<String, Lock>,
) {
    let id = w.lock_id();
    let site = site(t);
    let name = w.name();
    let lock = locks.entry(id.clone()).or_insert_with(|| {
        let mut holders: Vec<Holder> = w
            .holders
            .iter()
            .map(|h| Holder::process(h.pid, Evidence::ProcLocks))
            .collect();
        if w.unknown_holders > 0 || holders.is_empty() {
            holders.push(Holder::unknown());
        }
        Lock {
            id: id.clone(),
            pid: t.pid,
            address: format!("{}:{}", w.device, w.inode),
            kind: LockKind::FileLock,
            name: Some(name.clone()),
            names: Vec::new(),
            permits: None,
            locked: Some(true),
            holders,
            waiters: Vec::new(),
            module: None,
            shared: Some(Shared {
                device: Some(w.device.clone()),
                inode: Some(w.inode),
                path: Some(w.path.clone()),
                processes: w.holders.iter().map(|h| h.pid).collect(),
                commands: w
                    .holders
                    .iter()
                    .map(|h| (h.pid, h.command.clone()))
                    .collect(),
                ..Default::default()
            }),
            contradictions: Vec::new(),
            python_type: None,
            readers: None,
        }
    });
    if let Some(site) = &site {
        let ln = LockName {
            name: name.clone(),
            frame: site.clone(),
            how: NameHow::Path,
        };
        if !lock.names.contains(&ln) {
            lock.names.push(ln);
        }
    }
    lock.waiters.push(Waiter {
        thread: t.id.clone(),
        evidence: Evidence::ProcLocks,
        site: site.clone(),
    });
    t.state = ThreadState::FileLockWait;
    t.waits_for = Some(Wait {
        kind: WaitKind::Lock,
        target: Some(id),
        evidence: Evidence::ProcLocks,
        site,
        name: Some(name),
        via: Some(w.request.label()),
        timed: false,
        futex: None,
        targets: Vec::new(),
        timeout_s: None,
        waited_s: None,
    });
    // Only another party can end it; whether that party can is the graph's question (a
    // holder gridlock does not read leaves the wait without a way out it can follow).
    t.blocked = true;
}

fn input_wait(t: &mut Thread, src: &input::InputSource) {
    let id = src.resource_id();
    t.state = ThreadState::InputWait;
    t.waits_for = Some(Wait {
        kind: WaitKind::Input,
        target: Some(id),
        evidence: src.evidence(),
        site: site(t),
        name: Some(src.describe()),
        via: Some(src.syscall.to_string()),
        timed: false,
        futex: None,
        targets: Vec::new(),
        timeout_s: None,
        waited_s: None,
    });
    // Someone outside (a person at the terminal, whoever holds the pipe) may still write.
    t.blocked = false;
}
