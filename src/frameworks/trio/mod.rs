//! trio, read from outside: each thread running `trio.run` (its `Runner`, from the `run`
//! frame's `runner` local), the run's tasks with their await chains, what each parked task
//! waits for (`waits`) and the run as a loop (polling, or running which task). Read-only,
//! through `Memory`; versions are data (`SUPPORTED`), an unknown one is read with a note.
//!
//! - `fields`: attributes of trio's objects, whether in a `__dict__` or in `__slots__`;
//! - `waits`: what a parked task waits on (a lock, a semaphore, a channel, a nursery, ...).

mod fields;
mod waits;

use crate::asyncio::{await_chains, loop_id, task_id, ChainLink};
use crate::cpython::threads::{RawThread, Walker};
use crate::model::{
    short_file, EventLoop, Frame, Framework, Lock, LoopState, LoopStep, Task, TaskState, Thread,
};

use fields::Fields;

/// The trio releases gridlock reads (the layout of `Runner`, `Task`, the primitives and
/// the memory channels was checked on 0.31 and 0.35).
pub const SUPPORTED: &str = "0.30-0.35";

/// The trio part of one snapshot.
#[derive(Debug, Clone, Default)]
pub struct TrioView {
    pub loops: Vec<EventLoop>,
    pub tasks: Vec<Task>,
    /// trio locks, semaphores and memory channels that tasks wait for.
    pub locks: Vec<Lock>,
    pub notes: Vec<String>,
}

/// The suffix of trio's run loop's file.
const RUN_FILE: &str = "trio/_core/_run.py";

/// A trio task as read: its object, coroutine chain and whether it runs now.
pub(crate) struct TaskRead {
    pub(crate) addr: usize,
    pub(crate) chain: Vec<ChainLink>,
}

/// Read every trio run of the process. Nothing when no thread runs `trio.run`.
pub fn read(
    walker: &mut Walker,
    interp: usize,
    pid: i32,
    raw: &[RawThread],
    threads: &[Thread],
) -> TrioView {
    let mut view = TrioView::default();
    for (rt, th) in raw.iter().zip(threads) {
        let Some(runner) = runner_of(walker, rt) else {
            continue;
        };
        if view.loops.is_empty() {
            view.notes.extend(version_note(walker, interp));
        }
        read_run(walker, pid, runner, rt, th, &mut view);
    }
    view
}

/// A note when the target's trio is not a release gridlock reads (or has no version).
fn version_note(walker: &Walker, interp: usize) -> Option<String> {
    let objs = &walker.objs;
    let version = objs
        .sys_module_dict(interp, "trio")
        .ok()
        .flatten()
        .and_then(|d| objs.dict_get(d, "__version__").ok().flatten())
        .and_then(|v| objs.str(v).ok());
    match version {
        Some(v) => supported_note(&v),
        None => Some(format!(
            "trio's version could not be read; its tasks are read as those of trio {SUPPORTED}"
        )),
    }
}

/// The `Runner` of the `trio.run` this thread is in (the `run` frame's local), if any.
fn runner_of(walker: &Walker, rt: &RawThread) -> Option<usize> {
    let f = rt.frames.iter().find(|f| {
        f.code.filename.ends_with(RUN_FILE)
            && matches!(f.code.name.as_str(), "run" | "unrolled_run")
    })?;
    let runner = walker.local(f, "runner")?;
    walker.objs.type_is(runner, "Runner").then_some(runner)
}

fn read_run(
    walker: &mut Walker,
    pid: i32,
    runner: usize,
    rt: &RawThread,
    th: &Thread,
    view: &mut TrioView,
) {
    let mut fields = Fields::default();
    let members = fields
        .get(&walker.objs, runner, "tasks")
        .and_then(|s| walker.objs.set_items(s).ok())
        .unwrap_or_default();
    let mut addrs: Vec<usize> = members;
    addrs.sort_unstable();
    addrs.dedup();
    let coros: Vec<usize> = addrs
        .iter()
        .map(|t| fields.get(&walker.objs, *t, "coro").unwrap_or(0))
        .collect();
    let chains = await_chains(walker, pid, &coros);
    let lp = loop_id(pid, runner);
    let on_stack: std::collections::HashSet<usize> = rt.frames.iter().map(|f| f.addr).collect();
    let reads: Vec<TaskRead> = addrs
        .iter()
        .zip(chains)
        .map(|(addr, (chain, _))| TaskRead { addr: *addr, chain })
        .collect();
    let running: Option<usize> = reads
        .iter()
        .find(|t| {
            t.chain
                .first()
                .is_some_and(|l| on_stack.contains(&l.raw.addr))
        })
        .map(|t| t.addr);
    let mut waits = waits::Waits::new(pid, &reads);
    let mut tasks = Vec::with_capacity(reads.len());
    for t in &reads {
        let is_running = running == Some(t.addr);
        let name = fields
            .get(&walker.objs, t.addr, "name")
            .and_then(|n| walker.objs.str(n).ok());
        let coroutine = t.chain.first().map(|l| l.raw.code.name.clone());
        let frames: Vec<Frame> = if is_running {
            running_frames(rt, th, &t.chain)
        } else {
            t.chain.iter().rev().map(|l| l.frame.clone()).collect()
        };
        let waits_for = if is_running {
            None
        } else {
            waits.of(walker, &mut fields, t)
        };
        tasks.push(Task {
            framework: Framework::Trio,
            id: task_id(pid, t.addr),
            pid,
            loop_id: lp.clone(),
            name,
            coroutine,
            state: if is_running {
                TaskState::Running
            } else {
                TaskState::Pending
            },
            frames,
            waits_for,
            address: format!("{:#x}", t.addr),
            eager: false,
            holds: Vec::new(),
        });
    }
    let locks = waits.into_locks(&tasks);
    for l in &locks {
        for h in &l.holders {
            let Some(owner) = &h.task else { continue };
            if let Some(t) = tasks.iter_mut().find(|t| &t.id == owner) {
                if l.kind == crate::model::LockKind::TrioLock {
                    t.holds.push(crate::model::Hold {
                        lock: l.id.clone(),
                        evidence: h.evidence,
                        site: None,
                        name: None,
                    });
                }
            }
        }
    }
    let step = running.map(|addr| {
        let task = tasks.iter().find(|t| t.address == format!("{addr:#x}"));
        // A checkpoint moves one of these counters: equal keys are one step.
        let points: Vec<String> = ["_cancel_points", "_schedule_points"]
            .iter()
            .filter_map(|f| fields.get(&walker.objs, addr, f))
            .filter_map(|v| walker.objs.int(v).ok())
            .map(|v| v.to_string())
            .collect();
        LoopStep {
            key: format!("trio:{addr:#x}:{}", points.join(":")),
            task: task.map(|t| t.id.clone()),
            callback: task.and_then(|t| t.coroutine.clone()),
            handle: None,
            frames: task.map(|t| t.frames.clone()).unwrap_or_default(),
        }
    });
    let polling = rt.frames.iter().take(4).any(|f| {
        short_file(&f.code.filename).starts_with("_io_") && f.code.name.ends_with("get_events")
    });
    let runq = fields
        .get(&walker.objs, runner, "runq")
        .and_then(|d| {
            walker
                .objs
                .mem
                .i64(d + crate::cpython::layout::asyncio_common::DEQUE_LEN)
                .ok()
        })
        .map(|n| n.clamp(0, 1 << 20) as usize);
    view.loops.push(EventLoop {
        id: lp,
        pid,
        address: format!("{runner:#x}"),
        kind: "trio".into(),
        thread: Some(th.id.clone()),
        state: match (&step, polling) {
            (Some(_), _) => LoopState::Step,
            (None, true) => LoopState::Polling,
            (None, false) => LoopState::Between,
        },
        step,
        ready: runq,
        tasks: tasks.len(),
    });
    if tasks.iter().all(|t| t.frames.is_empty()) && !tasks.is_empty() {
        view.notes.push(format!(
            "trio tasks of run {:#x} read without their await chains: CPython {}'s coroutine offsets are not verified",
            runner, walker.objs.layout.version
        ));
    }
    view.tasks.extend(tasks);
    view.locks.extend(locks);
}

/// The running task's frames: its thread's, innermost first, down to its coroutine's.
fn running_frames(rt: &RawThread, th: &Thread, chain: &[ChainLink]) -> Vec<Frame> {
    let Some(outer) = chain.first() else {
        return Vec::new();
    };
    match rt.frames.iter().position(|f| f.addr == outer.raw.addr) {
        Some(k) if th.frames.len() == rt.frames.len() => th.frames[..=k].to_vec(),
        _ => chain.iter().rev().map(|l| l.frame.clone()).collect(),
    }
}

/// The note for a trio release outside `SUPPORTED` (`None` inside it).
pub fn supported_note(version: &str) -> Option<String> {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    let (Some(Some(0)), Some(Some(minor))) = (parts.next(), parts.next()) else {
        return Some(format!(
            "trio {version} is outside the releases gridlock reads ({SUPPORTED}); its tasks are read as those"
        ));
    };
    (!(30..=35).contains(&minor)).then(|| {
        format!("trio {version} is outside the releases gridlock reads ({SUPPORTED}); its tasks are read as those")
    })
}
