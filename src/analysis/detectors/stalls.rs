//! `stall`: every thread blocked with no cycle to blame and nothing idle that a signal could
//! wake; each wait is named with who holds (or will complete) what it waits for.

use std::collections::BTreeSet;

use super::detector::{finding, Detector};
use super::naming::{holder_labels, lock_label};
use crate::analysis::graph::WaitGraph;
use crate::analysis::labels::thread_label;
use crate::model::*;
use crate::snapshot::Snapshot;

/// Every thread blocked with no cycle to blame.
pub struct Stalls;

impl Detector for Stalls {
    fn kind(&self) -> FindingKind {
        FindingKind::Stall
    }

    fn detect(&self, snap: &Snapshot, _: &WaitGraph, so_far: &[Finding]) -> Vec<Finding> {
        if snap.threads.is_empty() || !snap.threads.iter().all(|t| t.blocked) {
            return Vec::new();
        }
        if so_far.iter().any(|f| f.kind == FindingKind::Deadlock)
            || crate::analysis::idle::any_idle(snap)
        {
            return Vec::new();
        }
        // A waited-for lock that is unlocked has just been released: its waiter is being woken.
        let waking = snap
            .threads
            .iter()
            .filter_map(|t| t.waits_for.as_ref())
            .any(|w| {
                w.kind == WaitKind::Lock
                    && w.target
                        .as_deref()
                        .and_then(|l| snap.lock(l))
                        .map(|l| l.locked == Some(false))
                        .unwrap_or(false)
            });
        if waking {
            return Vec::new();
        }
        let mut edges = Vec::new();
        let mut locks = BTreeSet::new();
        let mut parts = Vec::new();
        for t in &snap.threads {
            let Some(w) = &t.waits_for else { continue };
            let target = w.target.clone().unwrap_or_else(|| "unknown".into());
            let what = match (w.kind, &w.target) {
                (WaitKind::Notify, Some(l)) => format!(
                    "a notify on {}{}",
                    lock_label(snap, l),
                    crate::analysis::permits::held_note(snap, l, thread_label)
                ),
                (WaitKind::Lock, Some(l)) => {
                    let holder = snap.lock(l).map(|lk| {
                        if lk.holders.iter().any(|h| h.evidence == Evidence::Unknown) {
                            " (holder unknown)".to_string()
                        } else {
                            let by = holder_labels(snap, lk);
                            if by.is_empty() {
                                String::new()
                            } else {
                                format!(", held by {}", by.join(" and "))
                            }
                        }
                    });
                    format!("{}{}", lock_label(snap, l), holder.unwrap_or_default())
                }
                (WaitKind::Future, Some(fut)) => {
                    let by = snap
                        .lock(fut)
                        .map(|l| holder_labels(snap, l))
                        .unwrap_or_default();
                    match by.len() {
                        0 => lock_label(snap, fut),
                        1 => format!("{} running on {}", lock_label(snap, fut), by[0]),
                        _ => format!("{} (any of {})", lock_label(snap, fut), by.join(", ")),
                    }
                }
                (WaitKind::Join, Some(th))
                    if w.via.as_deref().is_some_and(|v| v.ends_with("_shutdown")) =>
                {
                    format!(
                        "the non-daemon thread {} to exit (joined at interpreter exit by threading._shutdown)",
                        thread_label(snap, th)
                    )
                }
                (WaitKind::Join, Some(th)) => format!("{} to exit", thread_label(snap, th)),
                (WaitKind::ChildExit, Some(p)) => format!("{p} to exit"),
                (WaitKind::Pipe, Some(c)) => w.name.clone().unwrap_or_else(|| c.clone()),
                _ => "a futex no one accounts for".into(),
            };
            parts.push(format!("{} waits for {what}", thread_label(snap, &t.id)));
            if snap.lock(&target).is_some() {
                locks.insert(target.clone());
            }
            edges.push(Edge {
                from: t.id.clone(),
                to: target.clone(),
                via: if w.kind == WaitKind::Join {
                    EdgeVia::Joins
                } else {
                    EdgeVia::WaitsFor
                },
                evidence: w.evidence,
                site: w.site.clone(),
                name: w.name.clone(),
            });
            // Every holder the summary names is an edge too, so the JSON says who holds (or,
            // for a future, who will complete it, as a deadlock says).
            let via = match w.kind {
                WaitKind::Lock => Some(EdgeVia::HeldBy),
                WaitKind::Future => Some(EdgeVia::CompletedBy),
                _ => None,
            };
            if let (Some(via), Some(lock)) = (via, snap.lock(&target)) {
                edges.extend(holder_edges(snap, lock, via));
            }
        }
        let mut f = finding(
            FindingKind::Stall,
            format!("stall:{}", snap.pid),
            if snap.threads.len() == 1 {
                format!(
                    "the only thread is blocked and nothing can wake it: {}",
                    parts.join("; ")
                )
            } else {
                format!(
                    "all {} threads are blocked and none can wake another: {}",
                    snap.threads.len(),
                    parts.join("; ")
                )
            },
        );
        f.advice = Some("Nothing left running can release these waits: look for a notify or release that never happens (a missed notify, a lock whose owner exited, a pool with every worker waiting).".into());
        f.threads = snap.threads.iter().map(|t| t.id.clone()).collect();
        f.locks = locks.into_iter().collect();
        f.edges = edges;
        f.processes = if snap.processes.is_empty() {
            vec![snap.pid]
        } else {
            snap.processes.iter().map(|p| p.pid).collect()
        };
        vec![f]
    }
}

/// Who holds a lock (or completes a future), as far as known: threads, tasks, processes.
/// An edge (`held_by`, or `completed_by` for a future) from the lock to each holder that is a
/// thread, task or process, with how it is known, where it was taken and the name the
/// holder's code gives it.
fn holder_edges<'a>(
    snap: &'a Snapshot,
    lock: &'a Lock,
    via: EdgeVia,
) -> impl Iterator<Item = Edge> + 'a {
    lock.holders.iter().filter_map(move |h| {
        let to = match (&h.thread, &h.task, h.process) {
            (Some(id), _, _) | (None, Some(id), _) => id.clone(),
            (None, None, Some(p)) => format!("{p}:p"),
            _ => return None,
        };
        let name = snap
            .thread(&to)
            .and_then(|t| t.holds.iter().find(|x| x.lock == lock.id))
            .and_then(|x| x.name.clone());
        Some(Edge {
            from: lock.id.clone(),
            to,
            via,
            evidence: h.evidence,
            site: h.site.clone(),
            name,
        })
    })
}
