//! trio, read from outside: each thread running `trio.run` (its `Runner`, from the `run`
//! frame's `runner` local), the run's tasks with their await chains, what each parked task
//! waits for (`waits`) and the run as a loop (polling, or running which task). Read-only,
//! through `Memory`; versions are data (`SUPPORTED`), an unknown one is read with a note.
//!
//! - `fields`: attributes of trio's objects, whether in a `__dict__` or in `__slots__`;
//! - `places`: whose code a task's frame runs, and which of trio's functions;
//! - `waits`: what a parked task waits on (a lock, a semaphore, a channel, a nursery, ...).

mod fields;
mod places;
mod waits;

use std::hash::BuildHasherDefault;

use crate::asyncio::{loop_id, with_chains, with_hex, ChainLink};
use crate::cpython::threads::{RawThread, Walker};
use crate::model::{
    short_file, EventLoop, Frame, Framework, Lock, LoopState, LoopStep, Task, TaskState, Thread,
};

use fields::Fields;
use waits::TaskRead;

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

/// trio's traps (`wait_task_rescheduled`, `_async_yield`): every parked task sits in them, so
/// a task's frames leave them out (its wait's `via` says how it parked).
fn is_trap(filename: &str) -> bool {
    filename.ends_with("trio/_core/_traps.py")
}

/// A set of addresses, hashed as addresses.
type AddrSet = std::collections::HashSet<usize, BuildHasherDefault<crate::memory::AddrHasher>>;

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
    let lp = loop_id(pid, runner);
    let on_stack: AddrSet = rt.frames.iter().map(|f| f.addr).collect();
    let task_prefix = format!("{pid}:task:");
    // Each task read whole before the next (its fields, chain, wait, name): its memory is
    // then still in the CPU's cache, where a pass over all tasks per question is not.
    let (mut tasks, seen, running) = with_chains(walker, pid, |chains| {
        let mut waits = waits::Waits::new(pid, &addrs);
        let mut tasks = Vec::with_capacity(addrs.len());
        let mut coros = Vec::with_capacity(addrs.len());
        let mut running: Option<usize> = None;
        // One buffer for every task's chain: its frames are moved out of it.
        let mut links: Vec<ChainLink> = Vec::new();
        // Each nursery's parent task's id, read and written once for all its children.
        let mut nursery_parents: crate::memory::AddrMap<Option<String>> = Default::default();
        for addr in &addrs {
            let addr = *addr;
            // A task's coroutine, name and nursery, in one read.
            let [coro, name, nursery] = fields.slots(
                &chains.walker().objs,
                addr,
                ["coro", "name", "_parent_nursery"],
            );
            let coro = coro.unwrap_or(0);
            coros.push(coro);
            // A chain ends at its first trap frame: what the trap awaits (`_async_yield`'s
            // generator and the object it yields) is the same for every parked task and
            // tells nothing.
            chains.until_into(
                coro,
                &|f| !is_trap(&f.code.filename),
                &|f| is_trap(&f.code.filename),
                &mut links,
            );
            let walker = chains.walker();
            let is_running = running.is_none()
                && links
                    .first()
                    .is_some_and(|l| on_stack.contains(&l.raw.addr));
            if is_running {
                running = Some(addr);
            }
            let waits_for = if is_running {
                None
            } else {
                waits.of(walker, &mut fields, addr, &links)
            };
            let name = name.and_then(|n| walker.objs.str_uncached(n).ok());
            let coroutine = links.first().map(|l| l.raw.code.name.clone());
            // The nursery tree: the task whose nursery started this one.
            let parent = nursery.and_then(|n| {
                nursery_parents
                    .entry(n)
                    .or_insert_with(|| {
                        fields
                            .get(&walker.objs, n, "_parent_task")
                            .filter(|p| waits.is_task(*p))
                            .map(|p| with_hex(&task_prefix, p))
                    })
                    .clone()
            });
            let frames: Vec<Frame> = if is_running {
                running_frames(rt, th, &links)
            } else {
                // Sized exactly: the shown frames are fewer than the links.
                let mut frames = Vec::with_capacity(
                    links
                        .iter()
                        .filter(|l| !is_trap(&l.raw.code.filename))
                        .count(),
                );
                frames.extend(
                    links
                        .drain(..)
                        .rev()
                        .filter(|l| !is_trap(&l.raw.code.filename))
                        .map(|l| l.frame),
                );
                frames
            };
            let id = with_hex(&task_prefix, addr);
            // The address as the id writes it (`0x...`), without writing it again.
            let address = id[task_prefix.len()..].to_string();
            tasks.push(Task {
                framework: Framework::Trio,
                id,
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
                address,
                eager: false,
                holds: Vec::new(),
                parent,
            });
        }
        // Who holds a channel's other side is read from every task's frames: read again,
        // only for a run where a task waits on a channel.
        if waits.waits_on_channels() {
            let reads: Vec<TaskRead> = addrs
                .iter()
                .zip(&coros)
                .map(|(addr, coro)| TaskRead {
                    addr: *addr,
                    chain: chains
                        .until(*coro, &|_| false, &|f| is_trap(&f.code.filename))
                        .0,
                })
                .collect();
            waits.channel_holders(chains.walker(), &mut fields, &reads);
        }
        (tasks, waits.finish(), running)
    });
    let locks = seen.into_locks(&tasks);
    let by_id: std::collections::HashMap<String, usize> = locks
        .iter()
        .any(|l| l.kind == crate::model::LockKind::TrioLock)
        .then(|| {
            tasks
                .iter()
                .enumerate()
                .map(|(i, t)| (t.id.clone(), i))
                .collect()
        })
        .unwrap_or_default();
    for l in locks
        .iter()
        .filter(|l| l.kind == crate::model::LockKind::TrioLock)
    {
        for h in &l.holders {
            let Some(i) = h.task.as_ref().and_then(|o| by_id.get(o)) else {
                continue;
            };
            tasks[*i].holds.push(crate::model::Hold {
                lock: l.id.clone(),
                evidence: h.evidence,
                site: None,
                name: None,
            });
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
    // `Deadlines._active`: cancel scopes with a finite deadline still attached to a task.
    let deadlines = fields
        .get(&walker.objs, runner, "deadlines")
        .and_then(|d| fields.get(&walker.objs, d, "_active"))
        .and_then(|v| walker.objs.int(v).ok())
        .map(|n| n.clamp(0, i64::from(u32::MAX)) as usize);
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
        deadlines,
    });
    if tasks.iter().all(|t| t.frames.is_empty()) && !tasks.is_empty() {
        view.notes.push(format!(
            "trio tasks of run {:#x} read without their await chains: CPython {}'s coroutine offsets are not verified",
            runner, walker.objs.layout.version
        ));
    }
    // Moved whole, not copied, when it is the first run (ten thousand tasks are megabytes).
    if view.tasks.is_empty() {
        view.tasks = tasks;
    } else {
        view.tasks.extend(tasks);
    }
    view.locks.extend(locks);
}

/// The running task's frames: its thread's, innermost first, down to its coroutine's.
fn running_frames(rt: &RawThread, th: &Thread, chain: &[ChainLink]) -> Vec<Frame> {
    let Some(outer) = chain.first() else {
        return Vec::new();
    };
    match rt.frames.iter().position(|f| f.addr == outer.raw.addr) {
        Some(k) if th.frames.len() == rt.frames.len() => th.frames[..=k].to_vec(),
        _ => chain
            .iter()
            .rev()
            .filter(|l| !is_trap(&l.raw.code.filename))
            .map(|l| l.frame.clone())
            .collect(),
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

#[cfg(test)]
mod tests {
    use super::supported_note;

    #[test]
    fn a_trio_release_outside_the_read_range_gets_a_note_naming_it_and_the_range() {
        for inside in ["0.30.0", "0.31.0", "0.35.0", "0.35.1.dev0"] {
            assert_eq!(supported_note(inside), None, "{inside}");
        }
        for outside in ["0.29.0", "0.36.0", "1.0.0", "unknown", ""] {
            let note = supported_note(outside).unwrap_or_else(|| panic!("{outside}"));
            assert!(
                note.starts_with(&format!("trio {outside} is outside the releases"))
                    && note.contains(SUPPORTED_IN_NOTE),
                "{note}"
            );
        }
    }

    const SUPPORTED_IN_NOTE: &str = "(0.30-0.35)";
}
