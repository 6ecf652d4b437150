//! Which futures a blocked thread waits on (read from the frame of `Future.result`,
//! `concurrent.futures.wait`, `as_completed` or a `multiprocessing.Pool` result's wait), whether
//! each is still pending, and what its done-callbacks hold. It reads only; it decides nothing
//! about who completes them.

use crate::snapshot::builder::*;

use super::jobs::{in_futures, named};

/// The asyncio chain's callbacks name both ends of `_chain_future`: a concurrent future's
/// done-callbacks hold, in their closure cells, the task it copies its result from
/// (`run_coroutine_threadsafe`) or the asyncio future it copies its result to
/// (`wrap_future`, `run_in_executor`).
const DONE_CALLBACKS: &str = "_done_callbacks";

/// A wait on futures read from a waiting frame.
pub(super) struct FutureWait {
    pub(super) futures: Vec<usize>,
    /// Whether any one of them ends the wait (`as_completed`, `FIRST_COMPLETED`).
    pub(super) any: bool,
    pub(super) via: &'static str,
}

/// A future is still to be completed while its `_state` is `PENDING` or `RUNNING`; a
/// `multiprocessing.Pool` result while its `_event` is not set (an `imap` iterator has none).
pub(super) fn is_pending(objs: &Objects, fut: usize) -> bool {
    if let Some(state) = objs.attr(fut, "_state").ok().flatten() {
        return objs
            .str(state)
            .is_ok_and(|s| s == "PENDING" || s == "RUNNING");
    }
    match objs.attr(fut, "_event").ok().flatten() {
        Some(ev) => objs
            .attr(ev, "_flag")
            .ok()
            .flatten()
            .is_some_and(|f| objs.type_is(f, "bool") && objs.int(f).is_ok_and(|v| v == 0)),
        None => true,
    }
}

/// The futures a blocked thread waits on, from the frame of `Future.result`,
/// `concurrent.futures.wait` or `as_completed` on its stack.
pub(super) fn waited_futures(
    walker: &Walker,
    rt: &RawThread,
    frames: &[Frame],
) -> Option<FutureWait> {
    let objs = &walker.objs;
    if let Some((j, f)) = frames
        .iter()
        .enumerate()
        .take(WAIT_SEARCH_FRAMES)
        .find(|(_, f)| {
            f.file.ends_with("multiprocessing/pool.py")
                && (named(f, "wait") || named(f, "get") || named(f, "next"))
        })
    {
        let result = walker.local(rt.frames.get(j)?, "self")?;
        objs.attr(result, "_job").ok()??;
        let via = if named(f, "next") {
            "IMapIterator.next"
        } else {
            "AsyncResult.get"
        };
        return Some(FutureWait {
            futures: vec![result],
            any: false,
            via,
        });
    }
    let (j, f) = frames
        .iter()
        .enumerate()
        .take(WAIT_SEARCH_FRAMES)
        .find(|(_, f)| {
            in_futures(f, "_base.py")
                && (named(f, "result") || named(f, "wait") || named(f, "as_completed"))
        })?;
    let rf = rt.frames.get(j)?;
    let set = |name: &str| -> Vec<usize> {
        walker
            .local(rf, name)
            .and_then(|s| objs.set_items(s).ok())
            .unwrap_or_default()
    };
    if named(f, "result") {
        let fut = walker.local(rf, "self")?;
        return Some(FutureWait {
            futures: vec![fut],
            any: false,
            via: "Future.result",
        });
    }
    if named(f, "as_completed") {
        return Some(FutureWait {
            futures: set("pending"),
            any: true,
            via: "as_completed",
        });
    }
    // `wait`: only ALL_COMPLETED needs every future; the others end on the first one.
    let return_when = walker
        .local(rf, "return_when")
        .and_then(|s| objs.str(s).ok());
    Some(FutureWait {
        futures: set("not_done"),
        any: return_when.as_deref() != Some("ALL_COMPLETED"),
        via: "concurrent.futures.wait",
    })
}

/// The objects held in the closure cells of a future's done-callbacks.
pub(super) fn done_callback_cells(objs: &Objects, fut: usize) -> Vec<usize> {
    let Some(list) = objs.attr(fut, DONE_CALLBACKS).ok().flatten() else {
        return Vec::new();
    };
    objs.list_items(list)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|cb| objs.closure_values(cb))
        .collect()
}
