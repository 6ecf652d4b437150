//! Whether a process whose threads are all blocked can still be woken from outside: it
//! catches a signal someone can send (`SigCgt`, SIGINT and faults aside) and its main thread
//! waits where CPython runs Python signal handlers (a lock, condition, event, queue, join,
//! child or pipe wait entered from Python code). Such a process is idle, not stalled. This
//! file reads only the snapshot; it never reports a finding.

use crate::model::{Idle, Thread, ThreadState, WaitKind};
use crate::snapshot::Snapshot;
use crate::target::signals;

/// `pid`'s idleness in `snap`: every thread of it blocked, a waking signal caught, and the
/// main thread in a wait a handler interrupts. None otherwise (not every thread blocked, no
/// such signal, or a main thread in a C-level wait no handler ends).
pub fn idle(snap: &Snapshot, pid: i32) -> Option<Idle> {
    let threads: Vec<&Thread> = snap.threads.iter().filter(|t| t.pid == pid).collect();
    if threads.is_empty() || !threads.iter().all(|t| t.blocked) {
        return None;
    }
    let wakers = signals::wakers(*snap.signals.get(&pid)?);
    if wakers.is_empty() {
        return None;
    }
    // The main thread's kernel TID is the process's pid.
    let main = threads.iter().find(|t| t.native_id == Some(pid))?;
    if !handler_can_run(main) {
        return None;
    }
    let names: Vec<String> = wakers.into_iter().map(signals::name).collect();
    let summary = match &names[..] {
        [one] => format!("waiting for {one}'s handler"),
        [init @ .., last] => format!("waiting for the handler of {} or {last}", init.join(", ")),
        [] => unreachable!("wakers is not empty"),
    };
    Some(Idle {
        signals: names,
        site: main.waits_for.as_ref().and_then(|w| w.site.clone()),
        summary,
    })
}

/// Whether any process of the snapshot is idle: then the snapshot is no stall.
pub fn any_idle(snap: &Snapshot) -> bool {
    pids(snap).into_iter().any(|pid| idle(snap, pid).is_some())
}

/// The processes a snapshot covers: its own, or every process of a tree.
pub fn pids(snap: &Snapshot) -> Vec<i32> {
    if snap.processes.is_empty() {
        vec![snap.pid]
    } else {
        snap.processes.iter().map(|p| p.pid).collect()
    }
}

/// A wait the interpreter leaves when a signal arrives, to run the handler in the main
/// thread: lock acquires (interruptible on the main thread since 3.2), condition, event,
/// queue and future waits (built on them), joins, `waitpid`, and reads and writes retried
/// after the handler (PEP 475). A futex no lock explains, the GIL, a C mutex, or a stopped
/// or unreadable thread: no handler is known to run there.
fn handler_can_run(main: &Thread) -> bool {
    let Some(w) = &main.waits_for else {
        return false;
    };
    let state_ok = matches!(
        main.state,
        ThreadState::LockWait
            | ThreadState::ConditionWait
            | ThreadState::JoinWait
            | ThreadState::Sleep
            | ThreadState::IoWait
            | ThreadState::InputWait
            | ThreadState::FileLockWait
    );
    let wait_ok = matches!(
        w.kind,
        WaitKind::Lock
            | WaitKind::Join
            | WaitKind::Notify
            | WaitKind::Future
            | WaitKind::ChildExit
            | WaitKind::Pipe
            | WaitKind::Input
    );
    state_ok && wait_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::fixtures::{snapshot, thread};
    use crate::model::FindingKind;

    fn daemon(mask: Option<u64>) -> Snapshot {
        let mut main = thread(1, 1, "MainThread", Some((WaitKind::Notify, "1:l:0xe")));
        main.native_id = Some(1);
        let worker = thread(1, 2, "worker", Some((WaitKind::Notify, "1:l:0xq")));
        let mut snap = snapshot(vec![main, worker], Vec::new());
        if let Some(m) = mask {
            snap.signals.insert(1, m);
        }
        snap
    }

    #[test]
    fn a_sigterm_handler_makes_an_all_blocked_process_idle_not_stalled() {
        let snap = daemon(Some(1 << (libc::SIGTERM - 1) | 0x2));
        let idle = idle(&snap, 1).expect("idle");
        assert_eq!(idle.summary, "waiting for SIGTERM's handler");
        assert!(crate::analysis::findings(&snap).is_empty());

        // SIGINT alone (every CPython catches it) wakes nothing: a stall.
        for snap in [daemon(Some(0x2)), daemon(None)] {
            assert!(super::idle(&snap, 1).is_none());
            let f = crate::analysis::findings(&snap);
            assert_eq!(f.len(), 1);
            assert_eq!(f[0].kind, FindingKind::Stall);
        }
    }

    #[test]
    fn a_main_thread_in_an_unexplained_futex_runs_no_handler() {
        let mut snap = daemon(Some(1 << (libc::SIGTERM - 1)));
        snap.threads[0].waits_for.as_mut().unwrap().kind = WaitKind::UnknownFutex;
        assert!(idle(&snap, 1).is_none());
    }
}
