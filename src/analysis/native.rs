//! Findings below Python: C locks whose owner is no thread of the process (`orphaned_lock`),
//! and a thread that keeps the GIL while it blocks in the kernel (`gil_hold`). Deadlocks
//! through C locks and the GIL need nothing here: they are cycles of the one wait-for graph.

use super::below_python::{below_python_label, gone_owner_id};
use super::detectors::{finding, orphan_finding, thread_label, Detector};
use super::graph::WaitGraph;
use crate::model::*;
use crate::snapshot::Snapshot;

/// The detectors of this file, run after `detectors::all()` (a `gil_hold` defers to the
/// deadlocks found there).
pub fn all() -> Vec<Box<dyn Detector>> {
    vec![Box::new(OrphanedCLocks), Box::new(GilHolds)]
}

/// A C lock's holder whose recorded owner TID is no thread of the process: it exited holding
/// the lock, or the lock was copied locked into a child by `fork`.
pub struct OrphanedCLocks;

impl Detector for OrphanedCLocks {
    fn kind(&self) -> FindingKind {
        FindingKind::OrphanedLock
    }

    fn detect(&self, snap: &Snapshot, _: &WaitGraph, _: &[Finding]) -> Vec<Finding> {
        let mut out = Vec::new();
        for lock in &snap.locks {
            if !matches!(lock.kind, LockKind::PthreadMutex | LockKind::PthreadRwlock) {
                continue;
            }
            for h in &lock.holders {
                let (None, None, Some(tid), Evidence::PthreadOwner) =
                    (&h.thread, h.process, h.owner_ident, h.evidence)
                else {
                    continue;
                };
                let what = below_python_label(lock).unwrap_or_else(|| lock.id.clone());
                let mut f = orphan_finding(
                    snap,
                    lock,
                    format!(
                        "{what} is held by TID {tid}, which is no thread of process {}: the thread exited holding it, or the process was forked while another thread held it",
                        lock.pid,
                    ),
                    "A C lock was held by a thread that is gone: after fork() only the forking thread exists in the child, and locks other threads held stay locked forever. Fork before starting threads, use the spawn or forkserver start method, or re-initialise the lock in the child (pthread_atfork).",
                    Some((gone_owner_id(lock.pid, tid), Evidence::PthreadOwner)),
                );
                f.processes = vec![lock.pid];
                out.push(f);
            }
        }
        out
    }
}

/// A thread that holds the GIL while blocked in the kernel, while other threads wait for the
/// GIL. Persistence over the window (decided by the caller) makes it "for the whole window".
/// Not raised when no thread waits for the GIL: then nobody is frozen by it. Not raised for a
/// holder that is part of a deadlock already reported (the deadlock says it).
pub struct GilHolds;

impl Detector for GilHolds {
    fn kind(&self) -> FindingKind {
        FindingKind::GilHold
    }

    fn detect(&self, snap: &Snapshot, _: &WaitGraph, so_far: &[Finding]) -> Vec<Finding> {
        let mut out = Vec::new();
        // One GIL per process (with `--tree`, several processes).
        for gil in snap
            .locks
            .iter()
            .filter(|l| l.kind == LockKind::Gil && !l.waiters.is_empty())
        {
            let holder = gil
                .holders
                .iter()
                .find_map(|h| snap.thread(h.thread.as_deref()?));
            let Some(t) = holder else { continue };
            let in_kernel = !matches!(
                t.state,
                ThreadState::Running | ThreadState::Unknown | ThreadState::Stopped
            );
            let Some(call) = syscall_of(t).filter(|_| in_kernel && t.owns_gil) else {
                continue;
            };
            let in_deadlock = so_far
                .iter()
                .any(|f| f.kind == FindingKind::Deadlock && f.threads.contains(&t.id));
            if in_deadlock {
                continue;
            }
            out.push(gil_hold(snap, gil, t, &call));
        }
        out
    }
}

fn gil_hold(snap: &Snapshot, gil: &Lock, t: &Thread, call: &str) -> Finding {
    let waiters: Vec<String> = gil
        .waiters
        .iter()
        .map(|w| thread_label(snap, &w.thread))
        .collect();
    let site = t
        .frames
        .first()
        .map(|f| format!(" (called from {})", f.site()))
        .unwrap_or_default();
    let mut f = finding(
        FindingKind::GilHold,
        format!("gil_hold:{}", t.id),
        format!(
            "{} holds the GIL while blocked in {call}{site}: every other thread of the interpreter is frozen ({} waiting for the GIL: {})",
            thread_label(snap, &t.id),
            waiters.len(),
            waiters.join(", ")
        ),
    );
    f.advice = Some("Release the GIL around blocking C calls: ctypes.CDLL instead of PyDLL, Py_BEGIN_ALLOW_THREADS in a C extension; long C work that cannot release it belongs in another process.".into());
    f.threads = std::iter::once(t.id.clone())
        .chain(gil.waiters.iter().map(|w| w.thread.clone()))
        .collect();
    f.locks = vec![gil.id.clone()];
    f.edges = std::iter::once(Edge {
        from: gil.id.clone(),
        to: t.id.clone(),
        via: EdgeVia::HeldBy,
        evidence: Evidence::GilState,
        site: t.frames.first().map(|f| f.site()),
        name: None,
    })
    .chain(gil.waiters.iter().map(|w| Edge {
        from: w.thread.clone(),
        to: gil.id.clone(),
        via: EdgeVia::WaitsFor,
        evidence: w.evidence,
        site: w.site.clone(),
        name: None,
    }))
    .collect();
    f.processes = vec![gil.pid];
    f
}

/// The syscall a thread is in, by name.
fn syscall_of(t: &Thread) -> Option<String> {
    t.syscall_name.clone().or_else(|| {
        t.kernel
            .as_ref()?
            .syscall
            .as_deref()?
            .split_whitespace()
            .next()
            .map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::fixtures::{lock, snapshot, thread};

    fn gil_snapshot(holder_state: ThreadState) -> Snapshot {
        let mut sleeper = thread(1, 1, "gil-sleeper", None);
        sleeper.owns_gil = true;
        sleeper.state = holder_state;
        sleeper.kernel = Some(KernelView {
            state: "S".into(),
            syscall: Some("clock_nanosleep 0x0 0x0 0x7ffd 0x7ffd".into()),
            wchan: None,
            timeslices: None,
        });
        let mut waiter = thread(1, 2, "ticker", Some((WaitKind::Lock, "1:l:0x9")));
        waiter.state = ThreadState::GilWait;
        let mut gil = lock("1:l:0x9", LockKind::Gil, "the GIL", &["1:t:1"], None);
        gil.waiters.push(Waiter {
            thread: "1:t:2".into(),
            evidence: Evidence::Futex,
            site: None,
        });
        snapshot(vec![sleeper, waiter], vec![gil])
    }

    #[test]
    fn a_gil_holder_asleep_in_the_kernel_freezes_the_waiters() {
        let f = crate::analysis::findings(&gil_snapshot(ThreadState::Sleep));
        let holds: Vec<&Finding> = f
            .iter()
            .filter(|f| f.kind == FindingKind::GilHold)
            .collect();
        assert_eq!(holds.len(), 1, "{f:#?}");
        assert!(
            holds[0]
                .summary
                .starts_with("\"gil-sleeper\" holds the GIL while blocked in clock_nanosleep"),
            "{}",
            holds[0].summary
        );
        assert_eq!(holds[0].threads, ["1:t:1", "1:t:2"]);
        // A holder on a CPU is what the GIL is for.
        let f = crate::analysis::findings(&gil_snapshot(ThreadState::Running));
        assert!(f.iter().all(|f| f.kind != FindingKind::GilHold), "{f:#?}");
        // Nobody waiting: nobody frozen.
        let mut alone = gil_snapshot(ThreadState::Sleep);
        alone.locks[0].waiters.clear();
        let f = crate::analysis::findings(&alone);
        assert!(f.iter().all(|f| f.kind != FindingKind::GilHold), "{f:#?}");
    }

    #[test]
    fn a_c_mutex_owned_by_a_gone_tid_is_orphaned() {
        let mut waiter = thread(1, 1, "MainThread", Some((WaitKind::Lock, "1:l:0x5")));
        waiter.state = ThreadState::NativeLockWait;
        let mut m = lock("1:l:0x5", LockKind::PthreadMutex, "", &[], None);
        m.names.clear();
        m.address = "0x5".into();
        m.holders.push(Holder {
            thread: None,
            task: None,
            process: None,
            owner_ident: Some(777),
            evidence: Evidence::PthreadOwner,
            site: None,
            count: None,
            call_path: Vec::new(),
        });
        m.waiters.push(Waiter {
            thread: "1:t:1".into(),
            evidence: Evidence::Futex,
            site: None,
        });
        let snap = snapshot(vec![waiter], vec![m.clone()]);
        let f = crate::analysis::findings(&snap);
        let orphan = f
            .iter()
            .find(|f| f.kind == FindingKind::OrphanedLock)
            .unwrap_or_else(|| panic!("{f:#?}"));
        assert!(
            orphan.summary.starts_with(
                "C mutex 0x5 (pthread_mutex_t) is held by TID 777, which is no thread"
            ),
            "{}",
            orphan.summary
        );
        assert!(orphan.edges.iter().any(|e| e.to == "1:tid:777"));
        // Held by a live thread that runs no Python: not orphaned.
        m.holders[0].process = Some(1);
        let snap = snapshot(vec![snap.threads[0].clone()], vec![m]);
        let f = crate::analysis::findings(&snap);
        assert!(
            f.iter().all(|f| f.kind != FindingKind::OrphanedLock),
            "{f:#?}"
        );
    }
}
