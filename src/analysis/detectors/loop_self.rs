//! `deadlock` of an event loop with itself: a loop thread blocked, inside one of its own
//! steps, on a `concurrent.futures.Future` that only work queued on that loop can complete.

use super::detector::{finding, Detector};
use crate::analysis::graph::WaitGraph;
use crate::analysis::labels::thread_label;
use crate::model::*;
use crate::snapshot::Snapshot;

/// A loop thread that, inside one of its own steps, blocks untimed on a
/// `concurrent.futures.Future` while work is queued on its loop: the future can only be
/// completed by that work (`run_coroutine_threadsafe(coro, own_loop).result()`), which the
/// blocked loop will never run.
pub struct LoopSelfDeadlocks;

impl Detector for LoopSelfDeadlocks {
    fn kind(&self) -> FindingKind {
        FindingKind::Deadlock
    }

    fn detect(&self, snap: &Snapshot, _: &WaitGraph, _: &[Finding]) -> Vec<Finding> {
        let mut out = Vec::new();
        for l in &snap.loops {
            let (Some(step), Some(tid)) = (&l.step, &l.thread) else {
                continue;
            };
            let Some(t) = snap.thread(tid) else { continue };
            let Some(w) = t.waits_for.as_ref().filter(|w| t.blocked && !w.timed) else {
                continue;
            };
            let Some(result) = step.frames.iter().find(|f| {
                f.file.ends_with("concurrent/futures/_base.py")
                    && f.function.rsplit('.').next() == Some("result")
            }) else {
                continue;
            };
            if l.ready.unwrap_or(0) == 0 {
                continue;
            }
            let caller = step
                .frames
                .iter()
                .find(|f| !f.file.contains("/concurrent/") && !f.file.ends_with("threading.py"));
            let mut f = finding(
                FindingKind::Deadlock,
                format!("deadlock:{}:{}", tid, l.id),
                format!(
                    "{} runs the event loop and blocks inside one of its steps on concurrent.futures.Future.result(){} while {} callback(s) wait on that loop: a future completed by its own loop (run_coroutine_threadsafe on the running loop) can never be set",
                    thread_label(snap, tid),
                    caller.map(|c| format!(" at {}", c.site())).unwrap_or_default(),
                    l.ready.unwrap_or(0)
                ),
            );
            f.advice = Some("Inside a coroutine, await the coroutine (or asyncio.wrap_future(fut)) instead of calling .result(); run_coroutine_threadsafe is for other threads.".into());
            f.threads = vec![tid.clone()];
            f.tasks = step.task.iter().cloned().collect();
            f.edges = vec![Edge {
                from: tid.clone(),
                to: l.id.clone(),
                via: EdgeVia::WaitsFor,
                // Known from the futex the thread sleeps on (its wait may have been resolved
                // further, to the future and who completes it); in a core, from its registers.
                evidence: if w.evidence == Evidence::CoreRegisters {
                    Evidence::CoreRegisters
                } else {
                    Evidence::Futex
                },
                site: Some(result.site()),
                name: w.name.clone(),
            }];
            f.processes = vec![snap.pid];
            out.push(f);
        }
        out
    }
}
