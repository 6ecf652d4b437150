//! `stall` of a trio run: every task parked on something only another task can end (a lock,
//! semaphore, event, condition, memory channel or nursery), no deadline that could expire, no
//! I/O wait, and no other thread of the process left running to call in through trio's entry
//! queue (`from_thread`, `run_sync_soon`). Words and edges only; what each task waits on is
//! read by `frameworks::trio`.

use std::collections::HashSet;

use super::detector::{finding, Detector};
use super::naming::{holder_labels, lock_label};
use crate::analysis::graph::WaitGraph;
use crate::analysis::trio_runs::parked_run;
use crate::model::*;
use crate::snapshot::Snapshot;

/// Parked tasks the summary names one by one; the rest are counted.
const NAMED: usize = 6;

/// A trio run whose every task is parked with nothing that could wake one.
pub struct TrioParked;

impl Detector for TrioParked {
    fn kind(&self) -> FindingKind {
        FindingKind::Stall
    }

    fn detect(&self, snap: &Snapshot, _: &WaitGraph, so_far: &[Finding]) -> Vec<Finding> {
        let mut out = Vec::new();
        for lp in snap.loops.iter().filter(|l| l.kind == "trio") {
            if let Some(f) = stuck_run(snap, lp, so_far) {
                out.push(f);
            }
        }
        out
    }
}

fn stuck_run(snap: &Snapshot, lp: &EventLoop, so_far: &[Finding]) -> Option<Finding> {
    let run = parked_run(lp, &snap.threads, &snap.tasks)?;
    // A task whose waker is unknown could be woken: the report says it cannot tell.
    if !run.unknown.is_empty() {
        return None;
    }
    let parked = run.parked;
    // A cycle among these tasks is already blamed as a deadlock.
    let ids: HashSet<&str> = parked.iter().map(|(t, _)| t.id.as_str()).collect();
    if so_far.iter().any(|f| {
        f.kind == FindingKind::Deadlock && f.tasks.iter().any(|t| ids.contains(t.as_str()))
    }) {
        return None;
    }
    let mut locks: Vec<String> = Vec::new();
    let mut edges = Vec::new();
    let mut parts = Vec::new();
    for (t, w) in &parked {
        if parts.len() < NAMED {
            parts.push(format!("{} {}", label(t), what(snap, w)));
        }
        // A nursery awaits each of its children; any other wait is for its target.
        let (via, to): (EdgeVia, Vec<&String>) = match &w.target {
            Some(target) => (EdgeVia::WaitsFor, vec![target]),
            None => (EdgeVia::Awaits, w.targets.iter().collect()),
        };
        for to in to {
            if snap.lock(to).is_some() && !locks.contains(to) {
                locks.push(to.clone());
            }
            edges.push(Edge {
                from: t.id.clone(),
                to: to.clone(),
                via,
                evidence: w.evidence,
                site: w.site.clone(),
                name: w.name.clone(),
            });
        }
    }
    if parked.len() > NAMED {
        parts.push(format!("and {} more", parked.len() - NAMED));
    }
    let thread = lp.thread.as_deref().unwrap_or("?");
    let mut f = finding(
        FindingKind::Stall,
        format!("stall:{}", lp.id),
        format!(
            "the trio run on thread {thread} is stuck: all {} of its tasks are parked with no I/O wait, no deadline and no other thread running that could wake one: {}",
            parked.len(),
            parts.join("; ")
        ),
    );
    f.advice = Some("Only a task of this run can end these waits, and every one is parked: look for the set(), release() or send() that never happens, or give the waits a deadline (trio.move_on_after).".into());
    f.tasks = parked.iter().map(|(t, _)| t.id.clone()).collect();
    f.threads = lp.thread.iter().cloned().collect();
    f.locks = locks;
    f.edges = edges;
    f.processes = vec![lp.pid];
    f.loop_id = Some(lp.id.clone());
    Some(f)
}

fn label(t: &Task) -> String {
    format!(
        "task \"{}\" ({})",
        t.name.as_deref().unwrap_or("?"),
        t.coroutine.as_deref().unwrap_or("?")
    )
}

/// What a parked task waits on, in words: the primitive and who holds it, as far as known.
fn what(snap: &Snapshot, w: &TaskWait) -> String {
    let via = w.via.as_deref().unwrap_or(w.kind.as_str());
    match (&w.target, w.kind) {
        (_, TaskWaitKind::Gather) => format!(
            "waits in {via} for {} child task{}",
            w.targets.len(),
            if w.targets.len() == 1 { "" } else { "s" }
        ),
        (Some(target), _) => match snap.lock(target) {
            Some(l) => {
                let by = holder_labels(snap, l);
                let held = if by.is_empty() {
                    String::new()
                } else {
                    format!(", held by {}", by.join(" and "))
                };
                format!("waits in {via} on {}{held}", lock_label(snap, target))
            }
            None => format!("waits in {via}"),
        },
        (None, _) => format!("waits in {via}"),
    }
}
