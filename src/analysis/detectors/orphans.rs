//! `orphaned_lock`: a lock whose owner, read from memory, is a thread that no longer exists,
//! or a multiprocessing semaphore taken by no live process that maps it.

use super::detector::{finding, Detector};
use super::naming::{lock_label, pids_of};
use crate::analysis::graph::WaitGraph;
use crate::analysis::labels::thread_label;
use crate::model::*;
use crate::snapshot::Snapshot;

/// Locks whose owner, read from memory, is a thread that no longer exists.
pub struct OrphanedLocks;

impl Detector for OrphanedLocks {
    fn kind(&self) -> FindingKind {
        FindingKind::OrphanedLock
    }

    fn detect(&self, snap: &Snapshot, _: &WaitGraph, _: &[Finding]) -> Vec<Finding> {
        let mut out = Vec::new();
        for lock in &snap.locks {
            if lock
                .shared
                .as_ref()
                .map(|s| s.holder_exited)
                .unwrap_or(false)
            {
                let waiters: Vec<String> = lock
                    .waiters
                    .iter()
                    .map(|w| thread_label(snap, &w.thread))
                    .collect();
                let shared = lock.shared.as_ref().unwrap();
                let mut f = finding(
                    FindingKind::OrphanedLock,
                    format!("orphaned_lock:{}", lock.id),
                    format!(
                        "multiprocessing {} {} is taken (semaphore value 0) but no live process that maps it ({}) holds it: its holder exited{}",
                        lock.kind.as_str().trim_start_matches("mp_"),
                        lock_label(snap, &lock.id),
                        shared.processes.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "),
                        if waiters.is_empty() { String::new() } else { format!("; waiting for it: {}", waiters.join(", ")) }
                    ),
                );
                f.advice = Some("A process died (killed, os._exit, crash) while holding a multiprocessing lock; nothing will release it: release locks in finally blocks, avoid killing workers that hold them, and re-create the lock (and the pool) after a worker dies.".into());
                f.locks = vec![lock.id.clone()];
                f.threads = lock.waiters.iter().map(|w| w.thread.clone()).collect();
                f.edges = waiter_edges(lock).collect();
                f.processes = pids_of(f.threads.iter());
                out.push(f);
                continue;
            }
            for h in &lock.holders {
                let (None, Some(ident), Evidence::Memory) = (&h.thread, h.owner_ident, h.evidence)
                else {
                    continue;
                };
                let waiters: Vec<String> = lock
                    .waiters
                    .iter()
                    .map(|w| thread_label(snap, &w.thread))
                    .collect();
                let what = match &lock.module {
                    Some(m) => format!("the import lock of module {m}"),
                    None => format!("{} {}", lock.kind, lock_label(snap, &lock.id)),
                };
                let mut f = finding(
                    FindingKind::OrphanedLock,
                    format!("orphaned_lock:{}", lock.id),
                    format!(
                        "{what} is held by thread ident {ident}, which no longer exists{}",
                        if waiters.is_empty() {
                            String::new()
                        } else {
                            format!("; waiting for it: {}", waiters.join(", "))
                        }
                    ),
                );
                f.advice = Some("A thread exited (or the process forked) while holding the lock: release it in a finally block or a with statement; after fork, re-create locks in the child.".into());
                f.locks = vec![lock.id.clone()];
                f.threads = lock.waiters.iter().map(|w| w.thread.clone()).collect();
                f.edges = waiter_edges(lock)
                    .chain(std::iter::once(Edge {
                        from: lock.id.clone(),
                        to: format!("{}:t:{ident}", snap.pid),
                        via: EdgeVia::HeldBy,
                        evidence: Evidence::Memory,
                        site: None,
                        name: None,
                    }))
                    .collect();
                f.processes = vec![snap.pid];
                out.push(f);
            }
        }
        out
    }
}

/// Each waiter of `lock` as a `waits_for` edge to it.
fn waiter_edges(lock: &Lock) -> impl Iterator<Item = Edge> + '_ {
    lock.waiters.iter().map(|w| Edge {
        from: w.thread.clone(),
        to: lock.id.clone(),
        via: EdgeVia::WaitsFor,
        evidence: w.evidence,
        site: w.site.clone(),
        name: None,
    })
}
