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
                let shared = lock.shared.as_ref().unwrap();
                let claim = format!(
                    "multiprocessing {} {} is taken (semaphore value 0) but no live process that maps it ({}) holds it: its holder exited",
                    lock.kind.as_str().trim_start_matches("mp_"),
                    lock_label(snap, &lock.id),
                    shared.processes.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "),
                );
                let mut f = orphan_finding(
                    snap,
                    lock,
                    claim,
                    "A process died (killed, os._exit, crash) while holding a multiprocessing lock; nothing will release it: release locks in finally blocks, avoid killing workers that hold them, and re-create the lock (and the pool) after a worker dies.",
                    None,
                );
                f.processes = pids_of(f.threads.iter());
                out.push(f);
                continue;
            }
            for h in &lock.holders {
                let (None, Some(ident), Evidence::Memory) = (&h.thread, h.owner_ident, h.evidence)
                else {
                    continue;
                };
                let what = match &lock.module {
                    Some(m) => format!("the import lock of module {m}"),
                    None => format!("{} {}", lock.kind, lock_label(snap, &lock.id)),
                };
                let mut f = orphan_finding(
                    snap,
                    lock,
                    format!("{what} is held by thread ident {ident}, which no longer exists"),
                    "A thread exited (or the process forked) while holding the lock: release it in a finally block or a with statement; after fork, re-create locks in the child.",
                    Some((format!("{}:t:{ident}", snap.pid), Evidence::Memory)),
                );
                f.processes = vec![snap.pid];
                out.push(f);
            }
        }
        out
    }
}

/// The `orphaned_lock` finding of `lock`: `claim`, then who waits for it; `advice`; edges from
/// each waiter to the lock and, where the gone holder has a node (its id, and how its
/// ownership was known), from the lock to it. The caller sets the processes.
pub fn orphan_finding(
    snap: &Snapshot,
    lock: &Lock,
    claim: String,
    advice: &str,
    gone_holder: Option<(String, Evidence)>,
) -> Finding {
    let waiters: Vec<String> = lock
        .waiters
        .iter()
        .map(|w| thread_label(snap, &w.thread))
        .collect();
    let waiting = if waiters.is_empty() {
        String::new()
    } else {
        format!("; waiting for it: {}", waiters.join(", "))
    };
    let mut f = finding(
        FindingKind::OrphanedLock,
        format!("orphaned_lock:{}", lock.id),
        format!("{claim}{waiting}"),
    );
    f.advice = Some(advice.into());
    f.locks = vec![lock.id.clone()];
    f.threads = lock.waiters.iter().map(|w| w.thread.clone()).collect();
    let held_by = gone_holder.map(|(to, evidence)| Edge {
        from: lock.id.clone(),
        to,
        via: EdgeVia::HeldBy,
        evidence,
        site: None,
        name: None,
    });
    f.edges = lock
        .waiters
        .iter()
        .map(|w| Edge {
            from: w.thread.clone(),
            to: lock.id.clone(),
            via: EdgeVia::WaitsFor,
            evidence: w.evidence,
            site: w.site.clone(),
            name: None,
        })
        .chain(held_by)
        .collect();
    f
}
