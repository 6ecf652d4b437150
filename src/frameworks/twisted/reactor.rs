//! A Twisted reactor as an event loop: the thread in `ReactorBase.mainLoop`, whether it polls
//! (`doPoll`/`doSelect`/...) or runs a step (a timed call under `runUntilCurrent`, a read or
//! write under `_doReadOrWrite`, ...), and that step's frames and key, so a step that holds
//! the reactor past the threshold is a loop block as an asyncio callback is. Read-only;
//! stacks and frame locals only.

use crate::cpython::threads::{RawFrame, RawThread, Walker};
use crate::model::{EventLoop, Frame, LoopState, LoopStep, Thread};

/// Reactor methods that wait for I/O: the reactor is idle in them.
const POLLS: [&str; 6] = [
    "doPoll",
    "doSelect",
    "doIteration",
    "_doIteration",
    "doKEvent",
    "doWaitForMultipleEvents",
];
/// Reactor methods that dispatch one step (the frames inside them are the step's).
const DISPATCHERS: [&str; 4] = [
    "runUntilCurrent",
    "_doReadOrWrite",
    "_doReadOrWriteNow",
    "mainLoop",
];

fn reactor_method(f: &RawFrame) -> Option<&str> {
    f.code
        .filename
        .contains("twisted/internet/")
        .then(|| f.code.name.rsplit('.').next())
        .flatten()
}

/// The reactor loop run by thread `rt` from its `mainLoop` frame `main` (index in `rt.frames`).
pub(super) fn event_loop(
    walker: &Walker,
    pid: i32,
    reactor: usize,
    rt: &RawThread,
    th: &Thread,
    main: usize,
    tasks: usize,
) -> EventLoop {
    let id = crate::asyncio::loop_id(pid, reactor);
    let class = walker
        .objs
        .type_name(reactor)
        .unwrap_or_else(|_| "reactor".into());
    // The innermost reactor method that polls or dispatches, inside `mainLoop`.
    let inner = rt.frames[..=main].iter().position(|f| {
        reactor_method(f).is_some_and(|m| POLLS.contains(&m) || DISPATCHERS.contains(&m))
    });
    let (state, step) = match inner {
        Some(0) if reactor_method(&rt.frames[0]).is_some_and(|m| POLLS.contains(&m)) => {
            (LoopState::Polling, None)
        }
        Some(0) | None => (LoopState::Between, None),
        Some(k) => {
            let dispatcher = &rt.frames[k];
            let outer = &rt.frames[k - 1];
            // The call being run: a timed call's DelayedCall, or the selectable being served.
            let what = ["call", "selectable"]
                .iter()
                .find_map(|n| walker.local(dispatcher, n))
                .unwrap_or(0);
            let frames: Vec<Frame> = if th.frames.len() == rt.frames.len() {
                th.frames[..k].to_vec()
            } else {
                Vec::new()
            };
            let step = LoopStep {
                key: format!("twisted:{reactor:#x}:{what:#x}:{:#x}", outer.addr),
                task: None,
                callback: Some(outer.code.name.clone()),
                handle: (what != 0).then(|| format!("{what:#x}")),
                frames,
            };
            (LoopState::Step, Some(step))
        }
    };
    EventLoop {
        id,
        pid,
        address: format!("{reactor:#x}"),
        kind: class,
        thread: Some(th.id.clone()),
        state,
        step,
        ready: None,
        tasks,
        deadlines: None,
    }
}
