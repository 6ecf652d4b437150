//! What this process knows of pools whose workers are other processes
//! (`ProcessPoolExecutor` work ids, `multiprocessing.Pool` job ids): the futures waited on here
//! whose work a child runs, and the work this process runs as such a worker. `crossproc`
//! matches them across the tree; this file claims no holder.

use std::collections::HashMap;

use crate::snapshot::builder::*;

use super::jobs::{in_futures, named, work_item_function};

/// A pool whose workers are other processes: its jobs are matched across the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// `concurrent.futures.ProcessPoolExecutor` (work ids).
    ProcessPool,
    /// `multiprocessing.Pool` (job ids).
    MpPool,
}

/// What this process knows of pools whose work runs in other processes.
#[derive(Debug, Clone, Default)]
pub struct PoolView {
    /// Waited futures (or `ApplyResult`s) whose work a child process runs.
    pub waits: Vec<PoolWait>,
    /// Work this process runs as a pool worker.
    pub runs: Vec<PoolRun>,
    /// Whether this process is a worker of such a pool.
    pub worker: Option<PoolKind>,
}

#[derive(Debug, Clone)]
pub struct PoolWait {
    /// The `locks[]` entry of kind `future`.
    pub future: String,
    pub kind: PoolKind,
    /// The work id (`_pending_work_items`) or job id (`ApplyResult._job`).
    pub id: i64,
}

#[derive(Debug, Clone)]
pub struct PoolRun {
    pub thread: String,
    pub kind: PoolKind,
    pub id: i64,
    /// Where the work is now, and the function it runs.
    pub site: Option<String>,
    pub what: Option<String>,
}

/// A job of a process pool, as the submitting process knows it.
pub(super) struct RemoteJob {
    pub(super) kind: PoolKind,
    pub(super) id: i64,
    /// The entry's name: the submitted function, or the job id.
    pub(super) what: String,
}

/// Futures of this process's `ProcessPoolExecutor`s (the manager's `pending_work_items`,
/// work id -> `_WorkItem`) and `multiprocessing.Pool` results waited on here (`_job`); and,
/// in a pool worker, the work it runs now (`_process_worker`'s `call_item`, `worker`'s `job`).
pub(super) fn remote_jobs(
    walker: &Walker,
    raw: &[RawThread],
    threads: &[Thread],
    pools: &mut PoolView,
) -> HashMap<usize, RemoteJob> {
    let objs = &walker.objs;
    let mut out = HashMap::new();
    for (i, rt) in raw.iter().enumerate() {
        let frames = &threads[i].frames;
        for (j, rf) in rt.frames.iter().enumerate() {
            let Some(f) = frames.get(j) else { break };
            let worker = if in_futures(f, "process.py") {
                let pending = walker.local(rf, "pending_work_items").or_else(|| {
                    let me = walker.local(rf, "self")?;
                    objs.attr(me, "pending_work_items").ok()?
                });
                for (id, item) in pending
                    .and_then(|d| objs.dict_entries(d).ok())
                    .unwrap_or_default()
                {
                    let (Ok(id), Some(fut)) =
                        (objs.int(id), objs.attr(item, "future").ok().flatten())
                    else {
                        continue;
                    };
                    let what = match work_item_function(objs, item) {
                        Some(w) => format!("the result of {w}"),
                        None => format!("the result of work item {id}"),
                    };
                    out.insert(
                        fut,
                        RemoteJob {
                            kind: PoolKind::ProcessPool,
                            id,
                            what,
                        },
                    );
                }
                named(f, "_process_worker").then(|| {
                    let id = walker
                        .local(rf, "call_item")
                        .and_then(|c| objs.attr(c, "work_id").ok()?)
                        .and_then(|w| objs.int(w).ok());
                    (PoolKind::ProcessPool, id)
                })
            } else if f.file.ends_with("multiprocessing/pool.py") && named(f, "worker") {
                let id = walker.local(rf, "job").and_then(|w| objs.int(w).ok());
                Some((PoolKind::MpPool, id))
            } else {
                None
            };
            let Some((kind, id)) = worker else { continue };
            pools.worker = Some(kind);
            // Running only while the frame it called is not the queue read of the next item.
            let inner = &frames[..j];
            let idle = inner.last().is_none_or(|c| {
                c.file.contains("/multiprocessing/")
                    && matches!(short_file(&c.file), "queues.py" | "connection.py")
            });
            if let (Some(id), false) = (id, idle) {
                let user = inner.iter().rev().find(|c| {
                    !c.file.contains("/multiprocessing/") && !c.file.contains("/concurrent/")
                });
                pools.runs.push(PoolRun {
                    thread: threads[i].id.clone(),
                    kind,
                    id,
                    site: user.or(inner.last()).map(Frame::site),
                    what: user.map(|c| c.function.clone()),
                });
            }
        }
    }
    // `multiprocessing.Pool` results: known only from the frames waiting on them.
    for (i, rt) in raw.iter().enumerate() {
        for (j, f) in threads[i]
            .frames
            .iter()
            .enumerate()
            .take(WAIT_SEARCH_FRAMES)
        {
            if !(f.file.ends_with("multiprocessing/pool.py")
                && (named(f, "wait") || named(f, "get") || named(f, "next")))
            {
                continue;
            }
            let Some(result) = rt.frames.get(j).and_then(|rf| walker.local(rf, "self")) else {
                continue;
            };
            let Some(id) = objs
                .attr(result, "_job")
                .ok()
                .flatten()
                .and_then(|v| objs.int(v).ok())
            else {
                continue;
            };
            out.insert(
                result,
                RemoteJob {
                    kind: PoolKind::MpPool,
                    id,
                    what: format!("the result of pool job {id}"),
                },
            );
        }
    }
    out
}
