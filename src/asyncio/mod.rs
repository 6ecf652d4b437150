//! asyncio, read from outside: event loops per thread (polling or running which step), every
//! task of every loop with its suspended await stack and what it waits for, and the
//! `asyncio.Lock`s tasks hold through `async with`. Offsets are in `cpython::layout`
//! (`AsyncioOffsets`); everything is read through `Memory`, nothing runs in the target.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::cpython::bytecode;
use crate::cpython::layout::asyncio_common::*;
use crate::cpython::layout::common::METHOD_SELF;
use crate::cpython::layout::{AsyncioOffsets, AwaitTop, CoroFrame, RunningLoop};
use crate::cpython::threads::{RawFrame, RawThread, Walker};
use crate::model::*;
use crate::snapshot::lock_id;

const RUNNING_LOOP_KEY: &str = "__asyncio_running_event_loop__";
/// Deepest await chain followed (coroutine -> coroutine -> ... -> future).
const MAX_CHAIN: usize = 64;
/// How often to look for `asyncio.tasks` again in a process that has not imported it.
const LOOKUP_EVERY: Duration = Duration::from_secs(1);

pub fn task_id(pid: i32, addr: usize) -> String {
    format!("{pid}:task:{addr:#x}")
}

pub fn loop_id(pid: i32, addr: usize) -> String {
    format!("{pid}:loop:{addr:#x}")
}

/// What is kept between snapshots of one process.
#[derive(Default)]
pub struct AsyncioCache {
    /// `asyncio.tasks.__dict__`, once the target has imported asyncio.
    tasks_module: Option<usize>,
    last_lookup: Option<Instant>,
    /// Type object -> `tp_name`, so 10,000 tasks cost one read each for their type.
    type_names: HashMap<usize, String>,
    /// Each known loop's `_ready` deque, and its mutation counter read at the start of the
    /// current snapshot: a counter that moved while the stacks were read means the step
    /// changed under us, and that sample is a step boundary.
    ready_queues: HashMap<usize, usize>,
    ready_before: HashMap<usize, u64>,
}

impl AsyncioCache {
    /// Read the ready-queue counters of the loops seen last time, before anything else.
    pub fn begin(&mut self, mem: &crate::target::memory::Memory) {
        self.ready_before = self
            .ready_queues
            .iter()
            .filter_map(|(lp, dq)| Some((*lp, mem.u64(dq + DEQUE_STATE).ok()?)))
            .collect();
    }
}

/// The asyncio part of one snapshot.
#[derive(Debug, Clone, Default)]
pub struct AsyncView {
    pub loops: Vec<EventLoop>,
    pub tasks: Vec<Task>,
    /// `asyncio.Lock`s that tasks wait for or hold.
    pub locks: Vec<Lock>,
}

struct Reader<'w, 'a, 'c> {
    walker: &'w mut Walker<'a>,
    cache: &'c mut AsyncioCache,
    offs: AsyncioOffsets,
    pid: i32,
}

/// Where an `asyncio.Lock` stands, as seen from the tasks.
#[derive(Default)]
struct LockSeen {
    holders: Vec<(usize, Option<String>, Option<String>)>,
    names: Vec<LockName>,
}

/// Read loops and tasks. Anything unreadable is left out (or `unknown`), never guessed.
pub fn read(
    walker: &mut Walker,
    cache: &mut AsyncioCache,
    interp: usize,
    pid: i32,
    raw: &[RawThread],
    threads: &[Thread],
) -> AsyncView {
    let Some(offs) = walker.objs.layout.asyncio() else {
        return AsyncView::default();
    };
    let mut r = Reader {
        walker,
        cache,
        offs,
        pid,
    };
    r.read(interp, raw, threads).unwrap_or_default()
}

fn short(path: &str) -> &str {
    short_file(path)
}

fn in_asyncio(path: &str) -> bool {
    path.contains("/asyncio/")
}

impl<'w, 'a, 'c> Reader<'w, 'a, 'c> {
    fn mem(&self) -> &crate::target::memory::Memory {
        self.walker.objs.mem
    }

    fn ty(&mut self, obj: usize) -> Option<String> {
        let t = self.walker.objs.type_of(obj).ok()?;
        if let Some(n) = self.cache.type_names.get(&t) {
            return Some(n.clone());
        }
        let n = self.walker.objs.type_name(obj).ok()?;
        self.cache.type_names.insert(t, n.clone());
        Some(n)
    }

    fn tasks_module(&mut self, interp: usize) -> Option<usize> {
        if let Some(m) = self.cache.tasks_module {
            return Some(m);
        }
        if let Some(at) = self.cache.last_lookup {
            if at.elapsed() < LOOKUP_EVERY {
                return None;
            }
        }
        self.cache.last_lookup = Some(Instant::now());
        let objs = &self.walker.objs;
        let modules = objs.mem.ptr(interp + self.offs.interp_modules).ok()?;
        let module = objs.dict_get(modules, "asyncio.tasks").ok()??;
        let dict = objs.mem.ptr(module + 16).ok()?;
        (objs.type_name(dict).ok()? == "dict").then_some(())?;
        self.cache.tasks_module = Some(dict);
        Some(dict)
    }

    fn read(&mut self, interp: usize, raw: &[RawThread], threads: &[Thread]) -> Option<AsyncView> {
        let module = self.tasks_module(interp)?;
        let globals: HashMap<String, usize> = match self.walker.objs.dict_items(module) {
            Ok(g) => g.into_iter().collect(),
            Err(_) => {
                // The module was unloaded or its dict moved: look it up again next time.
                self.cache.tasks_module = None;
                return None;
            }
        };
        let current: HashMap<usize, usize> = globals
            .get("_current_tasks")
            .and_then(|d| self.walker.objs.dict_entries(*d).ok())
            .unwrap_or_default()
            .into_iter()
            .collect();

        // Loops, per thread.
        let mut view = AsyncView::default();
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
        }

        // Tasks: the registry, plus 3.12+'s eager tasks.
        let mut members: Vec<(usize, bool)> = Vec::new();
        for name in ["_all_tasks", "_scheduled_tasks"] {
            if let Some(ws) = globals.get(name) {
                for t in self.weakset(*ws) {
                    members.push((t, false));
                }
            }
        }
        if let Some(eager) = globals.get("_eager_tasks") {
            for t in self.walker.objs.set_items(*eager).unwrap_or_default() {
                members.push((t, true));
            }
        }
        let mut seen = HashSet::new();
        let running: HashMap<usize, usize> = current.iter().map(|(l, t)| (*t, *l)).collect();
        let mut locks: HashMap<usize, LockSeen> = HashMap::new();
        for (addr, eager) in members {
            if !seen.insert(addr) {
                continue;
            }
            let step = running.get(&addr).and_then(|l| steps.get(l));
            if let Some(t) = self.task(addr, eager, running.contains_key(&addr), step, &mut locks) {
                view.tasks.push(t);
            }
        }
        view.tasks
            .sort_by(|a, b| a.loop_id.cmp(&b.loop_id).then(a.id.cmp(&b.id)));
        for l in &mut view.loops {
            l.tasks = view.tasks.iter().filter(|t| t.loop_id == l.id).count();
        }
        view.locks = self.locks(locks, &view.tasks);
        Some(view)
    }

    /// The members of a `weakref.WeakSet`: its `data` set holds weak references.
    fn weakset(&mut self, ws: usize) -> Vec<usize> {
        let objs = &self.walker.objs;
        let Some(data) = objs.attr(ws, "data").ok().flatten() else {
            return Vec::new();
        };
        let refs = objs.set_items(data).unwrap_or_default();
        refs.into_iter()
            .filter_map(|r| {
                let obj = objs.mem.ptr(r + WEAKREF_OBJECT).ok()?;
                (obj != 0 && !objs.is_none(obj)).then_some(obj)
            })
            .collect()
    }

    fn running_loop(&mut self, rt: &RawThread) -> Option<usize> {
        let objs = &self.walker.objs;
        let from_tstate = match self.offs.running_loop {
            RunningLoop::DictHolder(off) | RunningLoop::DictLoop(off) => {
                let dict = objs.mem.ptr(rt.tstate + off).ok().filter(|d| *d != 0);
                let value = dict.and_then(|d| objs.dict_get(d, RUNNING_LOOP_KEY).ok().flatten());
                match (self.offs.running_loop, value) {
                    (RunningLoop::DictHolder(_), Some(h)) => {
                        objs.mem.ptr(h + RUNNING_LOOP_HOLDER_LOOP).ok()
                    }
                    (_, v) => v,
                }
            }
            RunningLoop::Field(off) => objs.mem.ptr(rt.tstate + off).ok(),
        };
        if let Some(lp) = from_tstate.filter(|l| *l != 0 && !objs.is_none(*l)) {
            return Some(lp);
        }
        // Pure-Python asyncio keeps the running loop elsewhere: `_run_once`'s `self` is it.
        let f = rt
            .frames
            .iter()
            .find(|f| is_run_once(&f.code.filename, &f.code.name))?;
        self.walker.local(f, "self")
    }

    /// What the loop thread does now, and the frames of the step it runs.
    fn loop_state(
        &mut self,
        lp: usize,
        rt: &RawThread,
        th: &Thread,
        current: Option<usize>,
    ) -> (EventLoop, Option<Vec<Frame>>) {
        let kind = self.ty(lp).unwrap_or_else(|| "?".into());
        let ready = self.walker.objs.attr(lp, "_ready").ok().flatten();
        let ready_len = ready
            .and_then(|d| self.mem().i64(d + DEQUE_LEN).ok())
            .map(|n| n.max(0) as usize);
        let ready_state = ready.and_then(|d| self.mem().u64(d + DEQUE_STATE).ok());
        if let Some(d) = ready {
            self.cache.ready_queues.insert(lp, d);
        }
        let torn = matches!(
            (self.cache.ready_before.get(&lp), ready_state),
            (Some(before), Some(now)) if *before != now
        );
        let frames = &th.frames;
        let run_once = frames
            .iter()
            .position(|f| is_run_once(&f.file, &f.function));
        let run = run_once.and_then(|ro| {
            frames[..ro].iter().position(|f| {
                short(&f.file) == "events.py"
                    && (f.function == "_run" || f.function == "Handle._run")
            })
        });
        let mut step = None;
        let mut step_frames = None;
        let state = match (run_once, run) {
            (None, _) => "unknown",
            // The ready queue moved while we read: a step ended or began during the sample.
            (Some(_), Some(_)) if torn => "between",
            (Some(_), Some(j)) => {
                let handle = rt.frames.get(j).and_then(|f| self.walker.local(f, "self"));
                let callback = (j > 0).then(|| frames[j - 1].function.clone());
                let sf: Vec<Frame> = frames[..j].to_vec();
                step_frames = Some(sf.clone());
                step = Some(LoopStep {
                    key: format!(
                        "{:x}/{:x}/{:x}",
                        ready_state.unwrap_or(0),
                        handle.unwrap_or(0),
                        current.unwrap_or(0)
                    ),
                    task: current.map(|t| task_id(self.pid, t)),
                    callback,
                    handle: handle.map(|h| format!("{h:#x}")),
                    frames: sf,
                });
                "step"
            }
            (Some(ro), None) => {
                if ro > 0 && short(&frames[ro - 1].file) == "selectors.py" {
                    "polling"
                } else {
                    "between"
                }
            }
        };
        (
            EventLoop {
                id: loop_id(self.pid, lp),
                pid: self.pid,
                address: format!("{lp:#x}"),
                kind,
                thread: Some(th.id.clone()),
                state: state.into(),
                step,
                ready: ready_len,
                tasks: 0,
            },
            step_frames,
        )
    }

    fn task(
        &mut self,
        addr: usize,
        eager: bool,
        running: bool,
        step: Option<&Vec<Frame>>,
        locks: &mut HashMap<usize, LockSeen>,
    ) -> Option<Task> {
        let ty = self.ty(addr)?;
        if !ty.ends_with("Task") {
            return None;
        }
        let o = self.offs;
        let raw = self.mem().bytes(addr, o.task_name + 8).ok()?;
        let word = |off: usize| u64::from_le_bytes(raw[off..off + 8].try_into().unwrap()) as usize;
        let state = i32::from_le_bytes(raw[o.fut_state..o.fut_state + 4].try_into().unwrap());
        if state != 0 {
            // Done tasks linger in the registry until collected.
            return None;
        }
        let (lp, waiter, coro, name) = (
            word(o.fut_loop),
            word(o.task_fut_waiter),
            word(o.task_coro),
            word(o.task_name),
        );
        let name = match self.ty(name).as_deref() {
            Some("str") => self.walker.objs.str(name).ok(),
            // 3.12+: a default name is stored as its number until get_name() is called.
            Some("int") => self.walker.objs.int(name).ok().map(|n| format!("Task-{n}")),
            _ => None,
        };
        let chain = self.await_chain(coro);
        let coroutine = chain.frames.first().map(|f| f.code.name.clone());
        let id = task_id(self.pid, addr);
        let frames: Vec<Frame> = match (running, step) {
            (true, Some(sf)) => sf.clone(),
            _ => chain.frames.iter().rev().map(frame_of).collect(),
        };
        // Innermost first, as threads' stacks are.
        let inner: Vec<&RawFrame> = chain.frames.iter().rev().collect();
        let mut holds = Vec::new();
        if !running {
            for rf in &inner {
                for w in self.walker.active_withs(rf) {
                    let Some(lock) = self.asyncio_lock_in_slot(w.exit_slot) else {
                        continue;
                    };
                    let code = &rf.code;
                    let name = w.statement.and_then(|s| {
                        bytecode::with_subject(
                            self.walker.minor(),
                            &code.instructions,
                            s,
                            &code.names,
                        )
                    });
                    let line = w
                        .statement
                        .and_then(|i| code.line_of_instruction(i))
                        .unwrap_or_else(|| frame_of(rf).line);
                    let site = Frame {
                        line,
                        ..frame_of(rf)
                    }
                    .site();
                    let seen = locks.entry(lock).or_default();
                    seen.holders.push((addr, Some(site.clone()), name.clone()));
                    if let Some(n) = &name {
                        let ln = LockName {
                            name: n.clone(),
                            frame: site.clone(),
                        };
                        if !seen.names.contains(&ln) {
                            seen.names.push(ln);
                        }
                    }
                    holds.push(Hold {
                        lock: lock_id(self.pid, lock),
                        evidence: Evidence::ValueStack,
                        site: Some(site),
                        name,
                    });
                }
            }
        }
        let waits_for = if running {
            None
        } else {
            self.task_wait(waiter, &inner, locks)
        };
        Some(Task {
            id,
            pid: self.pid,
            loop_id: loop_id(self.pid, lp),
            name,
            coroutine,
            state: if running { "running" } else { "pending" }.into(),
            frames,
            waits_for,
            address: format!("{addr:#x}"),
            eager,
            holds,
        })
    }

    /// The `asyncio.Lock` whose bound `__aexit__` an `async with` keeps on the value stack.
    fn asyncio_lock_in_slot(&mut self, slot: usize) -> Option<usize> {
        if self.ty(slot)? != "method" {
            return None;
        }
        let owner = self.mem().ptr(slot + METHOD_SELF).ok()?;
        self.is_asyncio_lock(owner).then_some(owner)
    }

    fn is_asyncio_lock(&mut self, obj: usize) -> bool {
        self.ty(obj).as_deref() == Some("Lock")
            && self
                .walker
                .objs
                .attr(obj, "_locked")
                .ok()
                .flatten()
                .is_some()
    }

    /// Coroutine -> awaited coroutine -> ... -> the future at the end, outermost frame first.
    fn await_chain(&mut self, coro: usize) -> Chain {
        let mut chain = Chain::default();
        let mut obj = coro;
        for _ in 0..MAX_CHAIN {
            let Some(ty) = self.ty(obj) else { break };
            match ty.as_str() {
                "coroutine" | "generator" => {
                    let Some((frame, suspended)) = self.coro_frame(obj) else {
                        break;
                    };
                    let Ok(rf) = self.walker.frame_at(frame) else {
                        break;
                    };
                    let suspended = suspended && self.in_yield_from(&rf);
                    let top = suspended.then(|| self.await_top(&rf)).flatten();
                    chain.frames.push(rf);
                    match top {
                        Some(next) => obj = next,
                        None => break,
                    }
                }
                "_asyncio.FutureIter" | "FutureIter" => {
                    chain.end = self.mem().ptr(obj + FUTURE_ITER_FUTURE).ok();
                    break;
                }
                t if t.ends_with("Future") || t.ends_with("Task") => {
                    chain.end = Some(obj);
                    break;
                }
                _ => break,
            }
        }
        chain
    }

    /// A coroutine's frame and whether it is suspended (not created, running or finished).
    fn coro_frame(&mut self, obj: usize) -> Option<(usize, bool)> {
        let minor = self.walker.minor();
        match self.offs.coro_frame {
            CoroFrame::Pointer { at, f_state } => {
                let frame = self.mem().ptr(obj + at).ok().filter(|f| *f != 0)?;
                let suspended = match f_state {
                    // 3.10 FRAME_SUSPENDED.
                    Some(off) => self.mem().u8(frame + off).ok()? as i8 == -1,
                    // 3.8/3.9: the value stack top is saved only while suspended.
                    None => self.mem().ptr(frame + 72).ok()? != 0,
                };
                Some((frame, suspended))
            }
            CoroFrame::Embedded { at, state } => {
                let s = self.mem().u8(obj + state).ok()? as i8;
                // 3.11/3.12: CREATED -2, SUSPENDED -1; 3.13: CREATED -3, SUSPENDED -2,
                // SUSPENDED_YIELD_FROM -1; EXECUTING 0, then COMPLETED/CLEARED.
                let (created, suspended) = if minor >= 13 {
                    (s == -3, s == -1 || s == -2)
                } else {
                    (s == -2, s == -1)
                };
                if s > 0 || created {
                    return None;
                }
                Some((obj + at, suspended))
            }
        }
    }

    /// 3.8-3.10 resume a suspended `await` by re-running its YIELD_FROM; 3.11+ have no such
    /// marker, and the awaited object's type is checked instead.
    fn in_yield_from(&self, rf: &RawFrame) -> bool {
        if self.walker.minor() >= 11 {
            return true;
        }
        // `f_lasti` is moved back one instruction on suspension, so YIELD_FROM is next.
        let ins = &rf.code.instructions;
        self.walker
            .current_index(rf)
            .map(|i| {
                ins[i].name == "YIELD_FROM" || ins.get(i + 1).map(|n| n.name) == Some("YIELD_FROM")
            })
            .unwrap_or(false)
    }

    fn await_top(&self, rf: &RawFrame) -> Option<usize> {
        let mem = self.mem();
        let slot = match self.offs.await_top {
            AwaitTop::StackTop(off) => {
                let top = mem.ptr(rf.addr + off).ok().filter(|t| *t != 0)?;
                top.checked_sub(8)?
            }
            AwaitTop::Depth(vs, depth) => {
                let base = mem.ptr(rf.addr + vs).ok()?;
                let d = mem.i32(rf.addr + depth).ok()?;
                (1..=4096).contains(&d).then_some(())?;
                base + 8 * (d as usize - 1)
            }
            AwaitTop::Localsplus(lp, top) => {
                let d = mem.i32(rf.addr + top).ok()?;
                (1..=4096).contains(&d).then_some(())?;
                rf.addr + lp + 8 * (d as usize - 1)
            }
        };
        mem.ptr(slot).ok().filter(|p| *p != 0)
    }

    fn task_wait(
        &mut self,
        waiter: usize,
        inner: &[&RawFrame],
        locks: &mut HashMap<usize, LockSeen>,
    ) -> Option<TaskWait> {
        let site_frame = inner
            .iter()
            .find(|f| !in_asyncio(&f.code.filename))
            .copied();
        let site = site_frame.map(|f| frame_of(f).site());
        let name = site_frame.and_then(|f| self.awaited_name(f));
        // The asyncio primitive whose method is waiting, if any (innermost asyncio frames).
        let primitive = inner
            .iter()
            .take_while(|f| in_asyncio(&f.code.filename))
            .find_map(|f| {
                let file = short(&f.code.filename);
                let func = f.code.name.rsplit('.').next().unwrap_or("").to_string();
                if file == "tasks.py" && func == "sleep" {
                    return Some(("sleep".to_string(), None, "asyncio.sleep".to_string()));
                }
                if file != "locks.py" && file != "queues.py" {
                    return None;
                }
                let obj = self.walker.local(f, "self")?;
                let ty = self.ty(obj)?;
                let kind = match ty.as_str() {
                    "Lock" => "lock",
                    "Event" => "event",
                    "Condition" => "condition",
                    "Semaphore" | "BoundedSemaphore" => "semaphore",
                    "Queue" | "LifoQueue" | "PriorityQueue" => "queue",
                    _ => return None,
                };
                Some((kind.to_string(), Some(obj), format!("{ty}.{func}")))
            });
        if waiter == 0 {
            // Nothing awaited: the task is scheduled to run (e.g. after `await asyncio.sleep(0)`).
            return None;
        }
        let ty = self.ty(waiter).unwrap_or_default();
        let mut wait = TaskWait {
            kind: "future".into(),
            target: None,
            targets: Vec::new(),
            future: Some(format!("{waiter:#x}")),
            evidence: Evidence::Memory,
            site,
            name,
            via: None,
        };
        if !matches!(
            primitive.as_ref().map(|p| p.0.as_str()),
            Some("lock" | "event" | "condition" | "semaphore" | "queue")
        ) {
            // `asyncio` in `asyncio.sleep()` names a module, not what is awaited.
            wait.name = None;
        }
        if ty.ends_with("Task") {
            wait.kind = "task".into();
            wait.target = Some(task_id(self.pid, waiter));
            wait.via = Some("await".into());
        } else if ty == "_GatheringFuture" {
            wait.kind = "gather".into();
            wait.via = Some("asyncio.gather".into());
            let children = self.walker.objs.attr(waiter, "_children").ok().flatten();
            let items = children
                .and_then(|c| self.walker.objs.list_items(c).ok())
                .unwrap_or_default();
            for c in items {
                let cty = self.ty(c).unwrap_or_default();
                if cty.ends_with("Task") {
                    wait.targets.push(task_id(self.pid, c));
                }
            }
        } else if let Some((kind, obj, via)) = primitive {
            wait.kind = kind;
            wait.via = Some(via);
            if let Some(obj) = obj {
                if wait.kind == "lock" {
                    // Exact when the future is one of the lock's waiters.
                    if !self.deque_contains(obj, "_waiters", waiter) {
                        wait.evidence = Evidence::Unknown;
                    }
                    wait.target = Some(lock_id(self.pid, obj));
                    let seen = locks.entry(obj).or_default();
                    if let (Some(n), Some(s)) = (&wait.name, &wait.site) {
                        let ln = LockName {
                            name: n.clone(),
                            frame: s.clone(),
                        };
                        if !seen.names.contains(&ln) {
                            seen.names.push(ln);
                        }
                    }
                } else {
                    wait.target = Some(format!("{}:{}:{obj:#x}", self.pid, wait.kind));
                }
            }
        }
        Some(wait)
    }

    /// Whether `obj.<attr>` is a deque holding `item`.
    fn deque_contains(&mut self, obj: usize, attr: &str, item: usize) -> bool {
        let Some(dq) = self.walker.objs.attr(obj, attr).ok().flatten() else {
            return false;
        };
        if self.ty(dq).as_deref() != Some("collections.deque") {
            return false;
        }
        let mem = self.mem();
        let (Ok(len), Ok(mut block), Ok(idx)) = (
            mem.i64(dq + DEQUE_LEN),
            mem.ptr(dq + DEQUE_LEFTBLOCK),
            mem.i64(dq + DEQUE_LEFTINDEX),
        ) else {
            return false;
        };
        let mut left = len.clamp(0, 1 << 16) as usize;
        let mut idx = idx.clamp(0, DEQUE_BLOCKLEN as i64 - 1) as usize;
        while left > 0 && block != 0 {
            let Ok(raw) = mem.bytes(block + DEQUE_BLOCK_DATA, DEQUE_BLOCKLEN * 8) else {
                return false;
            };
            for c in raw[idx * 8..].chunks_exact(8).take(left) {
                if u64::from_le_bytes(c.try_into().unwrap()) as usize == item {
                    return true;
                }
                left -= 1;
            }
            idx = 0;
            block = mem.ptr(block + DEQUE_BLOCK_RIGHTLINK).unwrap_or(0);
        }
        false
    }

    /// How the awaiting frame names what it awaits: the subject of the `async with` being
    /// entered, or the receiver of the awaited call (`q` in `await q.get()`).
    fn awaited_name(&self, rf: &RawFrame) -> Option<String> {
        let idx = self.walker.current_index(rf)?;
        let code = &rf.code;
        let minor = self.walker.minor();
        let lo = idx.saturating_sub(10);
        if let Some(at) = (lo..=idx)
            .rev()
            .find(|&i| code.instructions[i].name == "BEFORE_ASYNC_WITH")
        {
            return bytecode::with_subject(minor, &code.instructions, at, &code.names);
        }
        let at = (lo..=idx).rev().find(|&i| {
            matches!(
                code.instructions[i].name,
                "CALL_METHOD" | "CALL_FUNCTION" | "CALL" | "PRECALL"
            )
        })?;
        bytecode::call_receiver(minor, &code.instructions, at, &code.names).map(|(r, _)| r)
    }

    /// `asyncio.Lock`s seen in waits and holds, with their holder tasks.
    fn locks(&mut self, seen: HashMap<usize, LockSeen>, tasks: &[Task]) -> Vec<Lock> {
        let mut addrs: Vec<usize> = seen.keys().copied().collect();
        addrs.sort();
        let mut out = Vec::new();
        for addr in addrs {
            let s = &seen[&addr];
            let locked = self
                .walker
                .objs
                .attr(addr, "_locked")
                .ok()
                .flatten()
                .and_then(|b| self.walker.objs.int(b).ok())
                .map(|v| v != 0);
            let mut holders: Vec<Holder> = s
                .holders
                .iter()
                .map(|(t, site, _)| Holder {
                    thread: None,
                    task: Some(task_id(self.pid, *t)),
                    process: None,
                    owner_ident: None,
                    evidence: Evidence::ValueStack,
                    site: site.clone(),
                    count: None,
                })
                .collect();
            if holders.is_empty() && locked == Some(true) {
                // A bare acquire() leaves no trace of its owner.
                holders.push(Holder {
                    thread: None,
                    task: None,
                    process: None,
                    owner_ident: None,
                    evidence: Evidence::Unknown,
                    site: None,
                    count: None,
                });
            }
            let id = lock_id(self.pid, addr);
            let waiters = tasks
                .iter()
                .filter(|t| t.waits_for.as_ref().and_then(|w| w.target.as_ref()) == Some(&id))
                .map(|t| Waiter {
                    thread: t.id.clone(),
                    evidence: t.waits_for.as_ref().unwrap().evidence,
                    site: t.waits_for.as_ref().unwrap().site.clone(),
                })
                .collect();
            out.push(Lock {
                contradictions: Vec::new(),
                id,
                pid: self.pid,
                address: format!("{addr:#x}"),
                kind: "asyncio_lock".into(),
                names: s.names.clone(),
                locked,
                holders,
                waiters,
                module: None,
                shared: None,
            });
        }
        out
    }
}

#[derive(Default)]
struct Chain {
    /// Outermost (the task's coroutine) first.
    frames: Vec<RawFrame>,
    /// The future at the end of the chain.
    #[allow(dead_code)]
    end: Option<usize>,
}

fn is_run_once(file: &str, function: &str) -> bool {
    short_file(file) == "base_events.py" && function.ends_with("_run_once")
}

fn frame_of(rf: &RawFrame) -> Frame {
    Frame {
        function: rf.code.name.clone(),
        file: rf.code.filename.clone(),
        line: rf.instr.and_then(|u| rf.code.line_at(u)).unwrap_or(0),
        locals: None,
    }
}
