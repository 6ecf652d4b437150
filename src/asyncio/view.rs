//! One snapshot's asyncio part put together: the offsets resolved, the loops per thread,
//! the tasks of every registry in the order of their ids, and the locks they hold and wait
//! for. It orders and counts; each piece is read by the file of its question.

use std::collections::HashMap;

use crate::cpython::threads::{RawThread, Walker};
use crate::model::{EventLoop, Frame, Lock, Task, Thread};

use super::cache::AsyncioCache;
use super::locks::LockSeen;
use super::offsets::SectionLookup;
use super::reader::Reader;
use super::types::{AddrMap, AddrSet, Known, Types, TP_BASE};

/// The asyncio part of one snapshot.
#[derive(Debug, Clone, Default)]
pub struct AsyncView {
    pub loops: Vec<EventLoop>,
    pub tasks: Vec<Task>,
    /// `asyncio.Lock`s that tasks wait for or hold.
    pub locks: Vec<Lock>,
}

/// Read loops and tasks. Anything unreadable is left out (or `unknown`), never guessed.
/// `section` finds the target's `.AsyncioDebug` section; it is asked at most once.
pub fn read(
    walker: &mut Walker,
    cache: &mut AsyncioCache,
    interp: usize,
    pid: i32,
    raw: &[RawThread],
    threads: &[Thread],
    section: &mut dyn FnMut() -> SectionLookup,
) -> AsyncView {
    let Some(offs) = walker.objs.layout.asyncio else {
        return AsyncView::default();
    };
    let mut r = Reader::new(walker, cache, offs, pid);
    r.read(interp, raw, threads, section).unwrap_or_default()
}

impl Reader<'_, '_, '_> {
    pub(super) fn read(
        &mut self,
        interp: usize,
        raw: &[RawThread],
        threads: &[Thread],
        section: &mut dyn FnMut() -> SectionLookup,
    ) -> Option<AsyncView> {
        let globals = self.module_globals(interp)?;
        // The pure-Python classes, by identity: `_PyTask` (whose base is `_PyFuture`) and
        // `_GatheringFuture`. The C ones are known by their `tp_name`.
        let py_task = globals.get("_PyTask").copied().unwrap_or(0);
        let py_future = if py_task != 0 {
            self.mem().ptr(py_task + TP_BASE).unwrap_or(0)
        } else {
            0
        };
        self.types = Types::new(Known {
            py_task,
            py_future,
            gathering: globals.get("_GatheringFuture").copied().unwrap_or(0),
        });
        self.offs = self.resolve(interp, raw, &globals, section)?;
        let current = self.current_tasks(raw, &globals);

        let eager_steps = self.eager_steps(raw, &current);

        // Loops, per thread.
        let mut view = AsyncView::default();
        let mut loop_addrs = Vec::new();
        let mut steps: HashMap<usize, Vec<Frame>> = HashMap::new();
        for (rt, th) in raw.iter().zip(threads) {
            let Some(lp) = self.running_loop(rt) else {
                continue;
            };
            let (ev, step_frames) = self.loop_state(lp, rt, th, current.get(&lp).copied());
            if let Some(f) = step_frames {
                steps.insert(lp, f);
            }
            view.loops.push(ev);
            loop_addrs.push(lp);
        }

        // Tasks: the registry, plus 3.12+'s eager tasks.
        let mut members = self.members(interp, raw, &globals);
        // By address, so that the tasks come out in the order of their ids without moving
        // them (stable: a task in both registries keeps its first entry's `eager`).
        members.sort_by_key(|(addr, _)| *addr);
        let mut seen = AddrSet::default();
        let running: AddrMap<usize, usize> = current.iter().map(|(l, t)| (*t, *l)).collect();
        let mut locks: HashMap<usize, LockSeen> = HashMap::new();
        let mut tasks: Vec<Task> = Vec::with_capacity(members.len());
        let mut task_loops: Vec<usize> = Vec::with_capacity(members.len());
        for (addr, eager) in members {
            if !seen.insert(addr) {
                continue;
            }
            let eager_step = eager_steps.get(&addr);
            let eager = eager || eager_step.is_some();
            let step = eager_step.or_else(|| running.get(&addr).and_then(|l| steps.get(l)));
            if let Some((lp, t)) =
                self.task(addr, eager, running.contains_key(&addr), step, &mut locks)
            {
                tasks.push(t);
                task_loops.push(lp);
            }
        }
        let mut per_loop: AddrMap<usize, usize> = AddrMap::default();
        for lp in &task_loops {
            *per_loop.entry(*lp).or_default() += 1;
        }
        for (l, lp) in view.loops.iter_mut().zip(&loop_addrs) {
            l.tasks = per_loop.get(lp).copied().unwrap_or(0);
        }
        if per_loop.len() > 1 {
            // By loop, then by address (stable).
            let mut order: Vec<usize> = (0..tasks.len()).collect();
            order.sort_by_key(|i| task_loops[*i]);
            let mut slots: Vec<Option<Task>> = tasks.into_iter().map(Some).collect();
            tasks = order.into_iter().filter_map(|i| slots[i].take()).collect();
        }
        view.tasks = tasks;
        view.locks = self.locks(locks, &view.tasks);
        Some(view)
    }
}
