//! Which waited objects only a loop's own thread will complete: the handles queued in an
//! asyncio event loop's ready queue (`_ready`) whose callback sets a future or an event that
//! another thread waits on, or runs a task on. `run_coroutine_threadsafe` queues a callback
//! that creates the task whose result it copies to its future (the future is in the
//! callback's closure); once it ran, the task's own first step is queued (`Task.__step`,
//! bound to the task: the loop's thread runs the task), and once the task is done, the copy
//! (`_call_set_state`, the future in its closure). `call_soon_threadsafe(fut.set_result, ..)`
//! or `(event.set)` queues the setter itself; the `_chain_future` bridge queues
//! `_set_state(destination, source)`. It reads the queue only; it claims nothing of a
//! callback it does not know to complete its object (a lambda that might), and nothing of
//! loops whose queue is native (uvloop keeps no `_ready` deque).

use std::collections::{HashMap, HashSet};

use super::builder::*;

/// Method names that complete the object they are bound to: `threading.Event.set`,
/// `Future.set_result` / `set_exception` (concurrent and asyncio, Python or C).
const COMPLETING_METHODS: [&str; 3] = ["set", "set_result", "set_exception"];

/// `run_coroutine_threadsafe`'s queued callback: its closure holds the concurrent future it
/// completes through the task it creates.
const RUN_COROUTINE_THREADSAFE: &str = "run_coroutine_threadsafe.<locals>.callback";

/// `_chain_future`'s queued copy: `_set_state(destination, source)` completes its first
/// argument.
const CHAIN_SET_STATE: &str = "_chain_future.<locals>._set_state";

/// `_chain_future`'s done-callback on the source, queued once the source (a task) is done: its
/// closure holds the destination it copies the result to.
const CHAIN_CALL_SET_STATE: &str = "_chain_future.<locals>._call_set_state";

/// A task's own queued step: its first step after `create_task` (or
/// `run_coroutine_threadsafe`'s callback), or its wakeup once what it awaits is done; bound
/// to the task (the C task's `TaskStepMethWrapper` / `task_wakeup`, the Python task's
/// methods). The loop's thread runs the task on from there.
const TASK_STEPS: [&str; 3] = ["Task.__step", "Task.__wakeup", "task_wakeup"];

/// How many handles of one ready queue are looked at (each costs a few reads): a handle past
/// them claims nothing.
const MAX_HANDLES: usize = 512;

/// A queued handle that will complete a waited object when its loop runs it.
#[derive(Debug, Clone)]
pub(super) struct Queued {
    /// Index of the loop's thread in the snapshot's threads.
    pub thread: usize,
    /// The callback's name (`Event.set`, `run_coroutine_threadsafe.<locals>.callback`).
    pub callback: String,
}

/// For each object of `wanted` some loop's ready queue will complete: the loop's thread and
/// the callback. Loops without a thread or without a readable `_ready` deque give nothing.
pub(super) fn completers(
    objs: &Objects,
    threads: &[Thread],
    loops: &[EventLoop],
    wanted: &HashSet<usize>,
) -> HashMap<usize, Queued> {
    let mut out = HashMap::new();
    if wanted.is_empty() {
        return out;
    }
    for lp in loops {
        let Some(thread) = lp
            .thread
            .as_ref()
            .and_then(|id| threads.iter().position(|t| &t.id == id))
        else {
            continue;
        };
        let Some(addr) = usize::from_str_radix(lp.address.trim_start_matches("0x"), 16).ok() else {
            continue;
        };
        let Some(ready) = objs.attr(addr, "_ready").ok().flatten() else {
            continue;
        };
        for handle in objs
            .deque_items(ready)
            .unwrap_or_default()
            .into_iter()
            .take(MAX_HANDLES)
        {
            for (obj, callback) in completed_by(objs, handle) {
                if wanted.contains(&obj) {
                    out.entry(obj).or_insert(Queued {
                        thread,
                        callback: callback.clone(),
                    });
                }
            }
        }
    }
    out
}

/// The objects a queued `asyncio.Handle` completes when it runs, with its callback's name.
fn completed_by(objs: &Objects, handle: usize) -> Vec<(usize, String)> {
    let slots = objs.slot_attrs(handle);
    let slot = |name: &str| slots.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    if slot("_cancelled")
        .is_some_and(|c| objs.type_is(c, "bool") && objs.int(c).is_ok_and(|v| v == 1))
    {
        return Vec::new();
    }
    let Some(cb) = slot("_callback").and_then(|c| objs.callable(c)) else {
        return Vec::new();
    };
    let method = cb.name.rsplit('.').next().unwrap_or(&cb.name);
    let done: Vec<usize> =
        if let (Some(me), true) = (cb.bound_to, COMPLETING_METHODS.contains(&method)) {
            vec![me]
        } else if let (Some(task), true) = (cb.bound_to, TASK_STEPS.contains(&cb.name.as_str())) {
            vec![task]
        } else if cb.name == RUN_COROUTINE_THREADSAFE || cb.name == CHAIN_CALL_SET_STATE {
            cb.function
                .map(|f| objs.closure_values(f))
                .unwrap_or_default()
        } else if cb.name == CHAIN_SET_STATE {
            slot("_args")
                .and_then(|a| objs.tuple_items(a).ok())
                .and_then(|a| a.first().copied())
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
    // The C task's wakeup is a bound C function named `task_wakeup`: named as Python's. A
    // C method (`_asyncio.Future.set_result`) has no qualified name: its type gives it.
    let name = match (cb.name.as_str(), cb.bound_to) {
        ("task_wakeup", _) => "Task.__wakeup".to_string(),
        (bare, Some(me)) if !bare.contains('.') && COMPLETING_METHODS.contains(&bare) => {
            match objs.type_name(me) {
                Ok(ty) => format!("{}.{bare}", ty.rsplit('.').next().unwrap_or(&ty)),
                Err(_) => cb.name,
            }
        }
        _ => cb.name,
    };
    done.into_iter().map(|o| (o, name.clone())).collect()
}

/// A note when a thread waits for a future or an event nobody is known to complete while a
/// loop whose ready queue is native (uvloop's `Loop` keeps it in its C struct, with no
/// layout gridlock can check) runs on a thread: a callback queued there may be the one that
/// completes it, and a cycle through that loop's thread would go unseen.
pub(super) fn native_queue_note(
    objs: &Objects,
    threads: &[Thread],
    locks: &[Lock],
    loops: &[EventLoop],
) -> Option<String> {
    let (ty, thread) = loops.iter().find_map(|l| {
        let t = threads.iter().find(|t| Some(&t.id) == l.thread.as_ref())?;
        let addr = usize::from_str_radix(l.address.trim_start_matches("0x"), 16).ok()?;
        // `uvloop.Loop` is a Python subclass (module `uvloop`) of the Cython `uvloop.loop.Loop`.
        let module = objs.type_module(addr)?;
        let ty = format!("{module}.{}", objs.type_name(addr).ok()?);
        (module == "uvloop" || module.starts_with("uvloop.")).then_some((ty, t))
    })?;
    let unheld = locks.iter().any(|l| {
        matches!(l.kind, LockKind::Future | LockKind::Event)
            && l.holders.is_empty()
            && !l.waiters.is_empty()
    });
    unheld.then(|| {
        format!(
            "uvloop: queued callbacks not read ({} runs on thread {:?}, whose ready queue is native): a waited future or event that one of them would complete has no known completer, and a cycle through that thread is not seen",
            ty,
            thread.name.as_deref().unwrap_or("?")
        )
    })
}
