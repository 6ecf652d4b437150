//! One sample of a target: every Python thread with its stack, what it holds and what it
//! waits for, and every lock involved, each claim with its evidence.
//!
//! Waits are exact: the futex a thread sleeps on (`/proc/PID/task/TID/syscall`) is matched
//! against the semaphore of lock objects reachable from its innermost frames. Holders come
//! from owner fields in memory (RLock, import module locks) and from the frames' active
//! `with` blocks (value stack); anything else is reported as unknown.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use crate::cpython::bytecode;
use crate::cpython::layout::common::*;
use crate::cpython::objects::Objects;
use crate::cpython::threads::{RawFrame, RawThread, Walker};
use crate::error::{Error, Result};
use crate::model::*;
use crate::probe::{self, ProbeEdge, ProbeHold, ProbeState};
use crate::target::procfs::{self, KernelThread};
use crate::target::taskfiles::{InSyscall, TaskFiles};
use crate::target::Target;

/// How many innermost frames are searched for the object a thread waits on.
const WAIT_SEARCH_FRAMES: usize = 6;

/// How many times a snapshot is taken again when a read failed because the running target
/// changed under it (a torn read).
const SNAPSHOT_RETRIES: usize = 4;

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub taken: SystemTime,
    pub pid: i32,
    pub threads: Vec<Thread>,
    pub locks: Vec<Lock>,
    /// asyncio tasks of every loop (empty without asyncio).
    pub tasks: Vec<Task>,
    /// Event loops, one per thread running one.
    pub loops: Vec<EventLoop>,
    /// With `--tree`: every sampled process (empty for a single-process snapshot).
    pub processes: Vec<Process>,
    /// `multiprocessing` objects seen, for linking processes (only with `Target::cross_process`).
    pub mp: MpView,
    /// Whether the target loaded gridlock's probe, and every lock-order pair it recorded.
    pub probe_loaded: bool,
    pub probe_edges: Vec<ProbeEdge>,
}

/// What one process shows of its `multiprocessing` semaphores.
#[derive(Debug, Clone, Default)]
pub struct MpView {
    /// `_multiprocessing.SemLock` objects reachable from frames and their module globals.
    pub semlocks: Vec<SemLockObj>,
    /// SemLocks held through an active `with` block.
    pub holds: Vec<MpHold>,
    /// Threads sleeping on a futex that no `threading` object accounts for.
    pub waits: Vec<MpWait>,
}

/// A `_multiprocessing.SemLock`: `+16 handle (sem_t*), +24 last_tid, +32 count, +36 maxvalue,
/// +40 kind` (0 RECURSIVE_MUTEX, 1 SEMAPHORE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemLockObj {
    pub addr: usize,
    pub handle: usize,
    pub last_tid: u64,
    pub count: i32,
    pub maxvalue: i32,
    pub kind: i32,
}

#[derive(Debug, Clone)]
pub struct MpHold {
    pub thread: String,
    pub semlock: usize,
    pub site: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MpWait {
    pub thread: String,
    pub futex: usize,
    pub semlock: Option<usize>,
    /// Inside `multiprocessing`'s `Condition.wait` (and so `Event.wait`, `Barrier.wait`).
    pub notify: bool,
    pub site: Option<String>,
    pub name: Option<String>,
    pub via: Option<String>,
}

const SEMLOCK_HANDLE: usize = 16;
const SEMLOCK_LAST_TID: usize = 24;
const SEMLOCK_COUNT: usize = 32;
const SEMLOCK_MAXVALUE: usize = 36;
const SEMLOCK_KIND: usize = 40;

pub fn read_semlock(objs: &Objects, addr: usize) -> Option<SemLockObj> {
    if objs.type_name(addr).ok()? != "_multiprocessing.SemLock" {
        return None;
    }
    let mem = objs.mem;
    Some(SemLockObj {
        addr,
        handle: mem.ptr(addr + SEMLOCK_HANDLE).ok()?,
        last_tid: mem.u64(addr + SEMLOCK_LAST_TID).ok()?,
        count: mem.i32(addr + SEMLOCK_COUNT).ok()?,
        maxvalue: mem.i32(addr + SEMLOCK_MAXVALUE).ok()?,
        kind: mem.i32(addr + SEMLOCK_KIND).ok()?,
    })
}

/// `multiprocessing` wrappers whose attributes lead to SemLocks (`_semlock`, a Queue's
/// `_rlock`/`_wlock`/`_sem`, a Condition's `_lock`/`_sleeping_count`/...).
const MP_WRAPPERS: &[&str] = &[
    "Lock",
    "RLock",
    "Semaphore",
    "BoundedSemaphore",
    "Condition",
    "Event",
    "Barrier",
    "Queue",
    "JoinableQueue",
    "SimpleQueue",
];

/// The module globals dict of a frame (`f_globals`).
fn frame_globals(walker: &Walker, frame: &RawFrame) -> Option<usize> {
    let off = match walker.minor() {
        8..=10 => 48,
        11 => 8,
        _ => 24,
    };
    let d = walker.objs.mem.ptr(frame.addr + off).ok()?;
    (walker.objs.type_name(d).ok()? == "dict").then_some(d)
}

impl Snapshot {
    pub fn thread(&self, id: &str) -> Option<&Thread> {
        self.threads.iter().find(|t| t.id == id)
    }
    pub fn lock(&self, id: &str) -> Option<&Lock> {
        self.locks.iter().find(|l| l.id == id)
    }
    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }
}

pub fn thread_id(pid: i32, ident: u64) -> String {
    format!("{pid}:t:{ident}")
}

pub fn lock_id(pid: i32, addr: usize) -> String {
    format!("{pid}:l:{addr:#x}")
}

/// Take one snapshot of `target`, consistent for every thread it reports blocked.
///
/// The kernel's view, the stacks and the objects are read one after the other while the
/// target runs. A thread that ran in between (its context-switch counts or its futex
/// changed) may have been seen waiting at one instant and holding at another, so it is
/// reported running, never blocked: a single snapshot of a healthy process never shows a
/// cycle that was not there. Reads that fail because memory changed under them are retried.
pub fn take(target: &mut Target) -> Result<Snapshot> {
    let mut tries = 0;
    loop {
        let tids = procfs::task_ids(target.pid);
        target.task_files.retain(&tids);
        let kernel: HashMap<i32, KernelThread> = tids
            .iter()
            .filter_map(|&tid| Some((tid, target.task_files.kernel_thread(tid)?)))
            .collect();
        match take_once(target, &kernel) {
            Ok(mut snap) => {
                settle_moved_threads(&mut snap, &kernel, &mut target.task_files);
                return Ok(snap);
            }
            Err(e) if tries < SNAPSHOT_RETRIES && is_torn_read(&e) && target.alive() => {
                tries += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_torn_read(e: &Error) -> bool {
    matches!(
        e,
        Error::Attach { .. } | Error::Memory { .. } | Error::Layout(_)
    )
}

/// Report running every blocked thread that did not stay in the same wait for the whole
/// snapshot: it was put on a CPU again (`schedstat`'s timeslice count moved since `before`,
/// the kernel's view read when the snapshot began), or no longer sleeps on the futex it was
/// seen on.
fn settle_moved_threads(
    snap: &mut Snapshot,
    before: &HashMap<i32, KernelThread>,
    files: &mut TaskFiles,
) {
    let mut moved = HashSet::new();
    for t in snap.threads.iter_mut().filter(|t| t.blocked) {
        let still = t.native_id.is_some_and(|tid| {
            let same_switches = matches!(
                (before.get(&tid).and_then(|k| k.timeslices), files.schedstat(tid)),
                (Some(a), Some(b)) if a == b.timeslices
            );
            // The syscall seen may predate the timeslice count read after it: check it too.
            same_switches
                && match (
                    files.syscall(tid),
                    t.waits_for.as_ref().and_then(|w| w.futex.as_ref()),
                ) {
                    (Some(InSyscall::Yes(s)), Some(f)) => {
                        s.futex_wait_addr().map(|a| format!("{a:#x}")).as_ref() == Some(f)
                    }
                    (Some(InSyscall::Yes(_) | InSyscall::NotInOne), None) => true,
                    _ => false,
                }
        });
        if !still {
            t.blocked = false;
            t.state = ThreadState::Running;
            t.waits_for = None;
            moved.insert(t.id.clone());
        }
    }
    if moved.is_empty() {
        return;
    }
    // An owner ident read from memory is taken for an exited thread's when the live thread
    // with that ident waits on the same lock; if that wait was not real, the owner is live.
    let live: HashMap<u64, String> = snap
        .threads
        .iter()
        .map(|t| (t.thread_id, t.id.clone()))
        .collect();
    let mut restored = Vec::new();
    for lock in &mut snap.locks {
        lock.waiters.retain(|w| !moved.contains(&w.thread));
        for h in &mut lock.holders {
            let owner = h.owner_ident.and_then(|o| live.get(&o));
            if let (None, Evidence::Memory, Some(owner)) = (&h.thread, h.evidence, owner) {
                if moved.contains(owner) {
                    h.thread = Some(owner.clone());
                    let name = lock.names.first().map(|n| n.name.clone());
                    restored.push((owner.clone(), lock.id.clone(), name));
                }
            }
        }
    }
    for (owner, lock, name) in restored {
        if let Some(t) = snap.threads.iter_mut().find(|t| t.id == owner) {
            if !t.holds.iter().any(|h| h.lock == lock) {
                t.holds.push(Hold {
                    lock,
                    evidence: Evidence::Memory,
                    site: None,
                    name,
                });
            }
        }
    }
}

/// One attempt at a snapshot.
fn take_once(target: &mut Target, kernel: &HashMap<i32, KernelThread>) -> Result<Snapshot> {
    let pid = target.pid;
    let taken = SystemTime::now();
    if kernel.is_empty() || !target.alive() {
        return Err(Error::TargetExited { pid });
    }
    // Before the page cache: a counter that moves during the sample marks a step boundary.
    target.asyncio.begin(&target.mem);
    target.mem.begin_snapshot();
    let result = take_cached(target, taken, kernel);
    target.mem.end_snapshot();
    result
}

fn take_cached(
    target: &mut Target,
    taken: SystemTime,
    kernel: &HashMap<i32, KernelThread>,
) -> Result<Snapshot> {
    let pid = target.pid;
    let objs = Objects::new(&target.mem, target.layout);
    let mut walker = Walker::new(objs);
    walker.adopt_cache(std::mem::take(&mut target.code_cache));
    let raw = walker.threads(target.interpreter).map_err(|e| {
        if procfs::exists(pid) {
            e
        } else {
            Error::TargetExited { pid }
        }
    });
    let raw = match raw {
        Ok(r) => r,
        Err(e) => {
            target.code_cache = walker.take_cache();
            return Err(e);
        }
    };
    let native_ids = native_ids(&mut target.pthread_tid_offset, &walker, &raw, &kernel);
    let names = thread_names(&walker, target.interpreter, &mut target.threading_active);
    let gil_holder = gil_holder(&walker, target.gil_address);
    let probe_state: Option<ProbeState> = target
        .probe
        .module_dict(&walker.objs, target.interpreter)
        .and_then(|d| probe::read(&walker.objs, d).ok());

    let mut builder = Builder {
        pid,
        with_locals: target.locals,
        with_writes: target.writes,
        walker: &walker,
        locks: BTreeMap::new(),
        live_idents: raw.iter().map(|t| t.thread_id).collect(),
        mp: target.cross_process.then(MpView::default),
        task_files: &mut target.task_files,
        runtime_region: target.runtime_region,
    };
    let mut threads = Vec::new();
    for (i, rt) in raw.iter().enumerate() {
        let native_id = native_ids[i];
        let k = native_id.and_then(|tid| kernel.get(&tid));
        let info = ThreadInfo {
            name: names.get(&rt.thread_id).cloned(),
            owns_gil: gil_holder == Some(rt.tstate),
        };
        threads.push(builder.thread(rt, native_id, k, &info));
    }
    builder.resolve_owners(&mut threads);
    if let Some(mp) = builder.mp.as_mut() {
        mp.semlocks = collect_semlocks(&walker, &raw);
    }
    let mp = builder.mp.take().unwrap_or_default();
    if let Some(p) = &probe_state {
        builder.apply_probe(&mut threads, &p.holds);
    }
    let mut locks: Vec<Lock> = builder.locks.into_values().collect();
    let view = crate::asyncio::read(
        &mut walker,
        &mut target.asyncio,
        target.interpreter,
        pid,
        &raw,
        &threads,
    );
    locks.extend(view.locks);
    target.code_cache = walker.take_cache();
    Ok(Snapshot {
        taken,
        pid,
        threads,
        locks,
        tasks: view.tasks,
        loops: view.loops,
        processes: Vec::new(),
        mp,
        probe_loaded: probe_state.is_some(),
        probe_edges: probe_state.map(|p| p.edges).unwrap_or_default(),
    })
}

/// Kernel TIDs of the interpreter's threads. 3.11+ store it in the thread state; before that,
/// the ident is glibc's `pthread_t`, a pointer to `struct pthread`, whose `tid` field sits at
/// a fixed offset: find the offset where every thread's value is one of the process's TIDs.
fn native_ids(
    offset: &mut Option<usize>,
    walker: &Walker,
    raw: &[RawThread],
    kernel: &HashMap<i32, KernelThread>,
) -> Vec<Option<i32>> {
    if raw.iter().all(|t| t.native_id.is_some()) {
        return raw.iter().map(|t| t.native_id).collect();
    }
    let read = |off: usize| -> Vec<Option<i32>> {
        raw.iter()
            .map(|t| {
                walker
                    .objs
                    .mem
                    .i32(t.thread_id as usize + off)
                    .ok()
                    .filter(|tid| kernel.contains_key(tid))
            })
            .collect()
    };
    let consistent = |ids: &Vec<Option<i32>>| {
        let found: Vec<i32> = ids.iter().flatten().copied().collect();
        let distinct: HashSet<i32> = found.iter().copied().collect();
        !found.is_empty() && found.len() == ids.len() && distinct.len() == found.len()
    };
    if let Some(off) = *offset {
        let ids = read(off);
        if consistent(&ids) {
            return ids;
        }
    }
    // glibc 2.26+ on x86-64 keeps `tid` at 0x2d0; scan nearby in case of another libc build.
    for off in std::iter::once(0x2d0).chain((0..0x800).step_by(4)) {
        let ids = read(off);
        if consistent(&ids) {
            *offset = Some(off);
            return ids;
        }
    }
    raw.iter().map(|t| t.native_id).collect()
}

/// What the interpreter says about a thread beyond its state: its `threading` name and
/// whether it holds the GIL.
struct ThreadInfo {
    name: Option<String>,
    owns_gil: bool,
}

/// `threading._active`: thread ident -> `Thread._name`. The dict is found once through
/// `sys.modules` (a search through hundreds of keys) and kept in `active`: the module mutates
/// it in place and never rebinds it.
fn thread_names(
    walker: &Walker,
    interpreter: usize,
    active: &mut Option<usize>,
) -> HashMap<u64, String> {
    let objs = &walker.objs;
    let find = || -> Option<usize> {
        let modules = objs
            .mem
            .ptr(interpreter + objs.layout.offsets().interp_modules)
            .ok()?;
        let threading = objs.dict_get(modules, "threading").ok()??;
        let globals = objs.mem.ptr(threading + MODULE_DICT).ok()?;
        objs.dict_get(globals, "_active").ok()?
    };
    if !active.is_some_and(|d| objs.type_is(d, "dict")) {
        *active = find();
    }
    let read = |active: usize| -> Option<HashMap<u64, String>> {
        let mut out = HashMap::new();
        for (key, thread) in objs.dict_entries(active).ok()? {
            let (Ok(ident), Some(name)) =
                (objs.int(key), objs.attr(thread, "_name").ok().flatten())
            else {
                continue;
            };
            if let Ok(name) = objs.str(name) {
                out.insert(ident as u64, name);
            }
        }
        Some(out)
    };
    active.and_then(read).unwrap_or_default()
}

/// The thread state holding the GIL: `gilstate.tstate_current` (3.8-3.11), or the GIL's
/// `last_holder` while `locked` (3.12+), at the address py-spy found when attaching.
fn gil_holder(walker: &Walker, gil_address: usize) -> Option<usize> {
    if gil_address == 0 {
        return None;
    }
    let mem = walker.objs.mem;
    if walker.minor() >= 12 {
        (mem.i32(gil_address + GIL_LOCKED).ok()? != 0)
            .then(|| mem.ptr(gil_address + GIL_LAST_HOLDER).ok())?
    } else {
        mem.ptr(gil_address).ok()
    }
    .filter(|p| *p != 0)
}

struct Builder<'w, 'a> {
    pid: i32,
    with_locals: bool,
    with_writes: bool,
    walker: &'w Walker<'a>,
    locks: BTreeMap<usize, Lock>,
    live_idents: HashSet<u64>,
    mp: Option<MpView>,
    task_files: &'w mut TaskFiles,
    runtime_region: Option<(usize, usize)>,
}

/// Every SemLock reachable from any frame: locals, value stacks and module globals, through
/// `multiprocessing` wrappers and argument tuples (two levels deep).
fn collect_semlocks(walker: &Walker, raw: &[RawThread]) -> Vec<SemLockObj> {
    let objs = &walker.objs;
    let mut roots: Vec<usize> = Vec::new();
    let mut globals = HashSet::new();
    for t in raw {
        for f in &t.frames {
            roots.extend(walker.locals(f).into_iter().map(|(_, v)| v));
            roots.extend(walker.stack_candidates(f));
            if let Some(g) = frame_globals(walker, f) {
                if globals.insert(g) {
                    roots.extend(
                        objs.dict_items(g)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(_, v)| v),
                    );
                }
            }
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut level: Vec<usize> = roots;
    for depth in 0..3 {
        let mut next = Vec::new();
        for obj in level {
            if obj == 0 || !seen.insert(obj) {
                continue;
            }
            let Ok(ty) = objs.type_name(obj) else {
                continue;
            };
            match ty.as_str() {
                "_multiprocessing.SemLock" => out.extend(read_semlock(objs, obj)),
                "tuple" if depth < 2 => next.extend(objs.tuple_items(obj).unwrap_or_default()),
                "list" if depth < 2 => next.extend(
                    objs.list_items(obj)
                        .unwrap_or_default()
                        .into_iter()
                        .take(64),
                ),
                t if MP_WRAPPERS.contains(&t) => next.extend(
                    objs.instance_attrs(obj)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(_, v)| v),
                ),
                _ => {}
            }
        }
        level = next;
    }
    out
}

/// What an object in a `with` slot or a wait turns out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LockKind {
    Lock,
    RLock,
}

struct FrameView<'r> {
    raw: &'r RawFrame,
    frame: Frame,
}

impl<'w, 'a> Builder<'w, 'a> {
    fn objs(&self) -> &Objects<'a> {
        &self.walker.objs
    }

    fn lock_kind(&self, obj: usize) -> Option<LockKind> {
        match self.objs().type_name_rc(obj).ok()?.as_ref() {
            "_thread.lock" => Some(LockKind::Lock),
            "_thread.RLock" => Some(LockKind::RLock),
            _ => None,
        }
    }

    /// A futex in the interpreter's static data (the GIL's): no lock object to look for.
    fn interpreter_internal(&self, futex: usize) -> bool {
        self.runtime_region
            .is_some_and(|(start, end)| start <= futex && futex < end)
    }

    fn semaphore_of(&self, lock: usize) -> Option<usize> {
        self.objs().mem.ptr(lock + LOCK_SEM).ok()
    }

    fn ensure_lock(&mut self, addr: usize, kind: &str) -> &mut Lock {
        let pid = self.pid;
        self.locks.entry(addr).or_insert_with(|| Lock {
            id: lock_id(pid, addr),
            pid,
            address: format!("{addr:#x}"),
            kind: kind.to_string(),
            names: Vec::new(),
            locked: None,
            holders: Vec::new(),
            waiters: Vec::new(),
            module: None,
            shared: None,
            contradictions: Vec::new(),
        })
    }

    fn add_name(&mut self, addr: usize, name: Option<&String>, site: &str) {
        if let (Some(name), Some(lock)) = (name, self.locks.get_mut(&addr)) {
            let n = LockName {
                name: name.clone(),
                frame: site.to_string(),
            };
            if !lock.names.contains(&n) {
                lock.names.push(n);
            }
        }
    }

    /// The lock behind a `with` block's `__exit__` slot, if it is one gridlock models:
    /// a builtin method's `__self__` (Lock, RLock), or a `Condition`'s inner lock.
    fn lock_in_exit_slot(&self, slot: usize) -> Option<(usize, LockKind)> {
        let objs = self.objs();
        let owner = match objs.type_name(slot).ok()?.as_str() {
            "builtin_function_or_method" | "method" => objs.mem.ptr(slot + METHOD_SELF).ok()?,
            _ => slot,
        };
        let owner = probe::unwrap(objs, owner);
        if let Some(kind) = self.lock_kind(owner) {
            return Some((owner, kind));
        }
        if objs.type_name(owner).ok()? == "Condition" {
            let inner = probe::unwrap(objs, objs.attr(owner, "_lock").ok()??);
            return self.lock_kind(inner).map(|k| (inner, k));
        }
        None
    }

    fn thread(
        &mut self,
        rt: &RawThread,
        native_id: Option<i32>,
        k: Option<&KernelThread>,
        info: &ThreadInfo,
    ) -> Thread {
        let id = thread_id(self.pid, rt.thread_id);
        let frames = self.frames(rt);
        let mut holds = Vec::new();
        // Holds from active `with` blocks, innermost frame first.
        for fv in &frames {
            for w in self.walker.active_withs(fv.raw) {
                let Some((lock, kind)) = self.lock_in_exit_slot(w.exit_slot) else {
                    if self.mp.is_some() {
                        self.note_mp_hold(&id, fv, w.exit_slot, w.statement);
                    }
                    continue;
                };
                let code = &fv.raw.code;
                let name = w.statement.and_then(|s| {
                    bytecode::with_subject(self.walker.minor(), &code.instructions, s, &code.names)
                });
                // The holder's site is the `with` statement that took the lock.
                let line = w
                    .statement
                    .and_then(|i| code.line_of_instruction(i))
                    .unwrap_or(fv.frame.line);
                let site = Frame {
                    line,
                    ..fv.frame.clone()
                }
                .site();
                self.ensure_lock(
                    lock,
                    if kind == LockKind::RLock {
                        "rlock"
                    } else {
                        "lock"
                    },
                );
                self.add_name(lock, name.as_ref(), &site);
                holds.push((
                    lock,
                    Hold {
                        lock: lock_id(self.pid, lock),
                        evidence: Evidence::ValueStack,
                        site: Some(site),
                        name,
                    },
                ));
            }
        }

        let owns_gil = info.owns_gil;
        let futex = k
            .and_then(|k| k.syscall.as_ref())
            .and_then(|s| s.futex_wait_addr());
        let timed = k
            .and_then(|k| k.syscall.as_ref())
            .map(|s| s.futex_timed())
            .unwrap_or(false);
        let mut state = kernel_state(k, owns_gil);
        let mut waits_for = None;
        if let Some(futex) = futex {
            let (s, w, released) = self.classify_futex_wait(&id, &frames, futex, timed);
            state = match s {
                ThreadState::Unknown if timed && !owns_gil => ThreadState::GilWait,
                ThreadState::Unknown => ThreadState::LockWait,
                s => s,
            };
            if self.mp.is_some()
                && !self.interpreter_internal(futex)
                && matches!(&w, Some(w) if w.kind == WaitKind::UnknownFutex)
            {
                self.note_mp_wait(&id, &frames, futex);
            }
            waits_for = w;
            // A thread inside `Condition.wait` has released the condition's lock, although the
            // caller's `with cond:` block is still active.
            if let Some(released) = released {
                holds.retain(|(lock, _)| *lock != released);
            }
        }
        let blocked = waits_for
            .as_ref()
            .map(|w| !w.timed && w.kind != WaitKind::UnknownFutex)
            .unwrap_or(false)
            || (state == ThreadState::LockWait && !timed);
        // Only a thread that is not on a CPU (waiting for the GIL, typically) has frames that
        // hold still while we read them; a running thread's lasti and block stack can be torn
        // apart, which would invent a write outside the lock that guards it.
        let off_cpu = k
            .map(|k| k.state != 'R' && k.cpu_ns.is_some())
            .unwrap_or(false);
        let mut writes = if self.with_writes && off_cpu {
            self.writes(&frames)
        } else {
            Vec::new()
        };
        if let (Some(k), false) = (k, writes.is_empty()) {
            if self.task_files.schedstat(k.tid).map(|s| s.cpu_ns) != k.cpu_ns {
                writes.clear();
            }
        }
        let mut seen = HashSet::new();
        let holds: Vec<Hold> = holds
            .into_iter()
            .filter(|(l, _)| seen.insert(*l))
            .map(|(_, h)| h)
            .collect();
        let name = info
            .name
            .clone()
            .or_else(|| native_id.and_then(|tid| procfs::thread_comm(self.pid, tid)));
        Thread {
            id,
            pid: self.pid,
            thread_id: rt.thread_id,
            native_id,
            name,
            state,
            state_since: String::new(),
            blocked,
            owns_gil,
            frames: frames.into_iter().map(|f| f.frame).collect(),
            holds,
            waits_for,
            kernel: k.map(|k| KernelView {
                state: k.state.to_string(),
                syscall: k.syscall.as_ref().map(|s| {
                    format!(
                        "{} {:#x} {:#x} {:#x} {:#x}",
                        syscall_name(s.nr),
                        s.args[0],
                        s.args[1],
                        s.args[2],
                        s.args[3]
                    )
                }),
                wchan: k.wchan.clone(),
            }),
            writes,
        }
    }

    /// A `with` on a `multiprocessing` lock keeps the wrapper's bound `__exit__`.
    fn note_mp_hold(
        &mut self,
        thread: &str,
        fv: &FrameView,
        slot: usize,
        statement: Option<usize>,
    ) {
        let objs = self.objs();
        let owner = match objs.type_name(slot).ok().as_deref() {
            Some("method") => objs.mem.ptr(slot + METHOD_SELF).unwrap_or(0),
            _ => return,
        };
        let Some(semlock) = objs
            .attr(owner, "_semlock")
            .ok()
            .flatten()
            .filter(|s| read_semlock(objs, *s).is_some())
        else {
            return;
        };
        let code = &fv.raw.code;
        let name = statement.and_then(|s| {
            bytecode::with_subject(self.walker.minor(), &code.instructions, s, &code.names)
        });
        let line = statement
            .and_then(|i| code.line_of_instruction(i))
            .unwrap_or(fv.frame.line);
        let site = Frame {
            line,
            ..fv.frame.clone()
        }
        .site();
        if let Some(mp) = self.mp.as_mut() {
            mp.holds.push(MpHold {
                thread: thread.to_string(),
                semlock,
                site,
                name,
            });
        }
    }

    /// A futex no `threading` object explains: find the SemLock whose semaphore it is.
    fn note_mp_wait(&mut self, thread: &str, frames: &[FrameView], futex: usize) {
        let objs = self.objs();
        let in_mp = |f: &FrameView| f.frame.file.contains("multiprocessing/");
        let mut semlock = None;
        'search: for fv in frames.iter().take(WAIT_SEARCH_FRAMES) {
            let mut slots: Vec<usize> = self
                .walker
                .locals(fv.raw)
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            slots.extend(self.walker.stack_candidates(fv.raw));
            for s in slots {
                let mut cands = vec![s];
                if let Ok(ty) = objs.type_name(s) {
                    if ty == "builtin_function_or_method" || ty == "method" {
                        if let Ok(o) = objs.mem.ptr(s + METHOD_SELF) {
                            cands.push(o);
                        }
                    }
                }
                let mut more = Vec::new();
                for c in &cands {
                    if let Ok(ty) = objs.type_name(*c) {
                        if MP_WRAPPERS.contains(&ty.as_str()) {
                            for (_, v) in objs.instance_attrs(*c).unwrap_or_default() {
                                more.push(v);
                                if let Ok(inner) = objs.attr(v, "_semlock") {
                                    more.extend(inner);
                                }
                            }
                        }
                    }
                }
                cands.extend(more);
                for c in cands {
                    if let Some(sl) = read_semlock(objs, c) {
                        if sl.handle == futex {
                            semlock = Some(c);
                            break 'search;
                        }
                    }
                }
            }
        }
        let notify = frames.iter().any(|f| {
            in_mp(f)
                && f.frame.function.rsplit('.').next() == Some("wait")
                && self
                    .walker
                    .local(f.raw, "self")
                    .and_then(|s| objs.type_name(s).ok())
                    .map(|t| matches!(t.as_str(), "Condition" | "Event" | "Barrier"))
                    .unwrap_or(false)
        });
        let user = frames.iter().position(|f| !in_mp(f));
        let via = user.and_then(|u| u.checked_sub(1)).map(|i| {
            let f = &frames[i];
            qualified(
                &f.frame.function,
                &f.raw.code.names.locals,
                f.raw,
                self.walker,
            )
        });
        let site = user.map(|i| frames[i].frame.site());
        let name = user.and_then(|i| self.waited_name(&frames[i]));
        if let Some(mp) = self.mp.as_mut() {
            mp.waits.push(MpWait {
                thread: thread.to_string(),
                futex,
                semlock,
                notify,
                site,
                name,
                via,
            });
        }
    }

    /// The thread's frames, with lines from each code object's line table.
    fn frames<'r>(&self, rt: &'r RawThread) -> Vec<FrameView<'r>> {
        rt.frames
            .iter()
            .map(|r| FrameView {
                raw: r,
                frame: Frame {
                    function: r.code.name.clone(),
                    file: r.code.filename.clone(),
                    locals: self.with_locals.then(|| self.local_values(r)),
                    line: r.instr.and_then(|u| r.code.line_at(u)).unwrap_or(0),
                },
            })
            .collect()
    }

    fn local_values(&self, frame: &RawFrame) -> Vec<Local> {
        let objs = self.objs();
        self.walker
            .locals(frame)
            .into_iter()
            .map(|(name, addr)| {
                let repr = match objs.type_name(addr).as_deref() {
                    Ok("int" | "str" | "NoneType") => objs.short_repr(addr),
                    Ok("_thread.lock") => {
                        let locked = objs
                            .mem
                            .u8(addr + LOCK_LOCKED)
                            .map(|b| b != 0)
                            .unwrap_or(false);
                        format!(
                            "<{} _thread.lock at {addr:#x}>",
                            if locked { "locked" } else { "unlocked" }
                        )
                    }
                    Ok(ty) => format!("<{ty} at {addr:#x}>"),
                    Err(_) => format!("<unreadable at {addr:#x}>"),
                };
                Local {
                    name,
                    address: format!("{addr:#x}"),
                    repr,
                }
            })
            .collect()
    }

    /// The shared locations the innermost user frame writes on its current line, by identity.
    fn writes(&self, frames: &[FrameView]) -> Vec<WriteAccess> {
        let Some(fv) = frames.iter().find(|f| !is_library_file(&f.frame.file)) else {
            return Vec::new();
        };
        let code = &fv.raw.code;
        let Some(at) = self.walker.current_index(fv.raw) else {
            return Vec::new();
        };
        let Some(line) = code.line_of_instruction(at) else {
            return Vec::new();
        };
        let same_line = |i: usize| code.line_of_instruction(i) == Some(line);
        let mut start = at;
        while start > 0 && same_line(start - 1) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < code.instructions.len() && same_line(end) {
            end += 1;
        }
        let module_level = code.name == "<module>";
        let site = Frame {
            line,
            ..fv.frame.clone()
        }
        .site();
        let objs = self.objs();
        let mut out = Vec::new();
        for w in bytecode::writes_in(
            self.walker.minor(),
            &code.instructions,
            start..end,
            at,
            &code.names,
            module_level,
        ) {
            let (location, name) = match w {
                bytecode::WriteTarget::Global(name) => {
                    let Ok(globals) = objs
                        .mem
                        .ptr(fv.raw.addr + objs.layout.offsets().frame_globals)
                    else {
                        continue;
                    };
                    (format!("global {globals:#x}:{name}"), name)
                }
                bytecode::WriteTarget::Attr { object, attr } => {
                    let Some(obj) = self.resolve(fv.raw, &object) else {
                        continue;
                    };
                    if self.thread_local(obj) {
                        continue;
                    }
                    (format!("attr {obj:#x}:{attr}"), format!("{object}.{attr}"))
                }
                bytecode::WriteTarget::Item { container } => {
                    let Some(obj) = self.resolve(fv.raw, &container) else {
                        continue;
                    };
                    if self.thread_local(obj) {
                        continue;
                    }
                    (format!("item {obj:#x}"), format!("{container}[...]"))
                }
            };
            out.push(WriteAccess {
                location,
                name,
                site: site.clone(),
            });
        }
        out
    }

    fn thread_local(&self, obj: usize) -> bool {
        matches!(
            self.objs().type_name(obj).as_deref(),
            Ok("_thread._local") | Ok("_threading_local.local")
        )
    }

    /// The object a name-and-attributes path refers to in a frame.
    fn resolve(&self, frame: &RawFrame, path: &bytecode::Path) -> Option<usize> {
        let objs = self.objs();
        let mut obj = match &path.root {
            bytecode::Root::Local(n) => self.walker.local(frame, n)?,
            bytecode::Root::Deref(n) => {
                let cell = self.walker.local(frame, n)?;
                if objs.type_name(cell).ok()? == "cell" {
                    objs.mem.ptr(cell + 16).ok().filter(|p| *p != 0)?
                } else {
                    cell
                }
            }
            bytecode::Root::Global(n) => {
                let globals = objs
                    .mem
                    .ptr(frame.addr + objs.layout.offsets().frame_globals)
                    .ok()?;
                objs.dict_get(globals, n).ok()??
            }
        };
        for a in &path.attrs {
            obj = objs.attr(obj, a).ok()??;
        }
        Some(obj)
    }

    /// Objects a thread's innermost frames can reach: locals, value-stack slots, the
    /// `__self__` of methods there, and the attributes of `self` in threading's frames.
    fn candidates(&self, frames: &[FrameView]) -> Vec<usize> {
        let objs = self.objs();
        let mut out = Vec::new();
        for fv in frames.iter().take(WAIT_SEARCH_FRAMES) {
            let mut slots: Vec<usize> = self
                .walker
                .locals(fv.raw)
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            slots.extend(self.walker.stack_candidates(fv.raw));
            for s in slots {
                out.push(s);
                match objs.type_name_rc(s).as_deref() {
                    Ok("builtin_function_or_method") | Ok("method") => {
                        if let Ok(owner) = objs.mem.ptr(s + METHOD_SELF) {
                            out.push(owner);
                        }
                    }
                    Ok("Condition")
                    | Ok("Thread")
                    | Ok("_ModuleLock")
                    | Ok("Event")
                    | Ok("Semaphore")
                    | Ok("BoundedSemaphore")
                    | Ok("Barrier")
                    | Ok("_DummyThread")
                    | Ok("_MainThread") => {
                        out.extend(
                            objs.instance_attrs(s)
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(_, v)| v),
                        );
                    }
                    Ok(t) if t.starts_with(probe::WRAPPER_PREFIX) => {
                        out.extend(
                            objs.instance_attrs(s)
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(_, v)| v),
                        );
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// Work out what a thread sleeping on futex `futex` waits for.
    /// Returns its state, the wait, and a lock it has released while waiting (Condition.wait).
    fn classify_futex_wait(
        &mut self,
        thread: &str,
        frames: &[FrameView],
        futex: usize,
        timed: bool,
    ) -> (ThreadState, Option<Wait>, Option<usize>) {
        let minor = self.walker.minor();
        let futex_hex = Some(format!("{futex:#x}"));
        // The kind is kept from this one read: the object may change under a running target.
        let matched = if self.interpreter_internal(futex) {
            None
        } else {
            self.candidates(frames).into_iter().find_map(|c| {
                let kind = self.lock_kind(c)?;
                (self.semaphore_of(c) == Some(futex)).then_some((c, kind))
            })
        };
        let in_sync_module = |f: &Frame| {
            let file = short_file(&f.file);
            file == "threading.py"
                || file == "queue.py"
                || f.file.contains("importlib._bootstrap")
                || probe::is_probe_file(&f.file)
        };
        // The first frame outside threading/queue/importlib: where the user's code waits.
        let user = frames.iter().position(|f| !in_sync_module(&f.frame));
        let user_site = user.map(|i| frames[i].frame.site());
        let outermost_sync = user
            .unwrap_or(frames.len())
            .checked_sub(1)
            .map(|i| &frames[i]);
        let via = outermost_sync.map(|f| {
            qualified(
                &f.frame.function,
                &f.raw.code.names.locals,
                f.raw,
                self.walker,
            )
        });

        if let Some((lock, kind)) = matched {
            // Condition.wait: sleeping on its private waiter lock means waiting for a notify.
            if let Some(cw) = frames.iter().find(|f| {
                is_function(f, "threading.py", "wait")
                    && self.walker.local(f.raw, "waiter") == Some(lock)
            }) {
                let cond = self.walker.local(cw.raw, "self").unwrap_or(0);
                let released = self
                    .objs()
                    .attr(cond, "_lock")
                    .ok()
                    .flatten()
                    .map(|l| probe::unwrap(self.objs(), l));
                // Name the waited primitive by the outermost threading/queue frame's `self`.
                let (target_obj, kind) = outermost_sync
                    .and_then(|f| {
                        let obj = self.walker.local(f.raw, "self")?;
                        Some((obj, primitive_kind(&self.objs().type_name(obj).ok()?)))
                    })
                    .unwrap_or((cond, "condition"));
                self.ensure_lock(target_obj, kind);
                let name = user.and_then(|i| self.receiver_name(&frames[i]));
                if let Some(site) = &user_site {
                    self.add_name(target_obj, name.as_ref(), site);
                }
                let waiter = Waiter {
                    thread: thread.to_string(),
                    evidence: Evidence::Futex,
                    site: user_site.clone(),
                };
                self.locks
                    .get_mut(&target_obj)
                    .unwrap()
                    .waiters
                    .push(waiter);
                let wait = Wait {
                    kind: WaitKind::Notify,
                    target: Some(lock_id(self.pid, target_obj)),
                    evidence: Evidence::Futex,
                    site: user_site,
                    name,
                    via,
                    timed,
                    futex: futex_hex,
                };
                return (ThreadState::ConditionWait, Some(wait), released);
            }
            // Thread.join (3.8-3.12): sleeping on the joined thread's `_tstate_lock`.
            if let Some(jf) = frames
                .iter()
                .find(|f| is_function(f, "threading.py", "_wait_for_tstate_lock"))
            {
                if let Some(joined) = self.walker.local(jf.raw, "self") {
                    let ident = self
                        .objs()
                        .attr(joined, "_ident")
                        .ok()
                        .flatten()
                        .and_then(|i| self.objs().int(i).ok());
                    return (
                        ThreadState::JoinWait,
                        Some(self.join_wait(ident, frames, user, futex_hex, timed, via)),
                        None,
                    );
                }
            }
            // An import: sleeping on a `_ModuleLock`'s wakeup lock.
            if let Some(mf) = frames.iter().find(|f| {
                f.frame.file.contains("importlib._bootstrap")
                    && f.frame.function.ends_with("acquire")
            }) {
                if let Some(ml) = self
                    .walker
                    .local(mf.raw, "self")
                    .filter(|s| self.objs().type_name(*s).ok().as_deref() == Some("_ModuleLock"))
                {
                    return (
                        ThreadState::LockWait,
                        Some(self.module_lock_wait(thread, ml, frames, user, futex_hex, timed)),
                        None,
                    );
                }
            }
            self.ensure_lock(
                lock,
                if kind == LockKind::RLock {
                    "rlock"
                } else {
                    "lock"
                },
            );
            // The probe's wrapper frame is not where the user's code waits.
            let top = frames.iter().find(|f| !probe::is_probe_file(&f.frame.file));
            let site = top.map(|f| f.frame.site());
            let name = top.and_then(|f| self.waited_name(f));
            if let Some(site) = &site {
                self.add_name(lock, name.as_ref(), site);
            }
            let waiter = Waiter {
                thread: thread.to_string(),
                evidence: Evidence::Futex,
                site: site.clone(),
            };
            self.locks.get_mut(&lock).unwrap().waiters.push(waiter);
            let wait = Wait {
                kind: WaitKind::Lock,
                target: Some(lock_id(self.pid, lock)),
                evidence: Evidence::Futex,
                site,
                name,
                via: None,
                timed,
                futex: futex_hex,
            };
            return (ThreadState::LockWait, Some(wait), None);
        }

        // 3.13 Thread.join parks in the parking lot: the futex is a semaphore inside a
        // `wait_entry` on the joiner's stack whose `addr` is the joined ThreadHandle's
        // `thread_is_exiting` event; the handle's `ident` names the joined thread.
        if minor >= 13
            && frames
                .iter()
                .any(|f| is_function(f, "threading.py", "join"))
        {
            let mem = self.objs().mem;
            if let Ok(addr) = mem.ptr(futex - WAIT_ENTRY_SEMA + WAIT_ENTRY_ADDR) {
                if let Ok(ident) =
                    mem.u64(addr.wrapping_sub(THREAD_HANDLE_EXITING_EVENT) + THREAD_HANDLE_IDENT)
                {
                    if self.live_idents.contains(&ident) || ident != 0 {
                        return (
                            ThreadState::JoinWait,
                            Some(self.join_wait(
                                Some(ident as i64),
                                frames,
                                user,
                                futex_hex,
                                timed,
                                via,
                            )),
                            None,
                        );
                    }
                }
            }
        }
        let wait = Wait {
            kind: WaitKind::UnknownFutex,
            target: None,
            evidence: Evidence::Futex,
            site: frames.first().map(|f| f.frame.site()),
            name: None,
            via: None,
            timed,
            futex: futex_hex,
        };
        (ThreadState::Unknown, Some(wait), None)
    }

    fn join_wait(
        &self,
        ident: Option<i64>,
        frames: &[FrameView],
        user: Option<usize>,
        futex: Option<String>,
        timed: bool,
        via: Option<String>,
    ) -> Wait {
        Wait {
            kind: WaitKind::Join,
            target: ident.map(|i| thread_id(self.pid, i as u64)),
            evidence: Evidence::Futex,
            site: user.map(|i| frames[i].frame.site()),
            name: user.and_then(|i| self.receiver_name(&frames[i])),
            via,
            timed,
            futex,
        }
    }

    fn module_lock_wait(
        &mut self,
        thread: &str,
        ml: usize,
        frames: &[FrameView],
        user: Option<usize>,
        futex: Option<String>,
        timed: bool,
    ) -> Wait {
        let module = self
            .objs()
            .attr(ml, "name")
            .ok()
            .flatten()
            .and_then(|n| self.objs().str(n).ok());
        let site = user.map(|i| frames[i].frame.site());
        let lock = self.ensure_lock(ml, "module_lock");
        lock.module = module.clone();
        lock.waiters.push(Waiter {
            thread: thread.to_string(),
            evidence: Evidence::Futex,
            site: site.clone(),
        });
        let name = module.map(|m| format!("import {m}"));
        if let Some(s) = &site {
            self.add_name(ml, name.as_ref(), s);
        }
        Wait {
            kind: WaitKind::Lock,
            target: Some(lock_id(self.pid, ml)),
            evidence: Evidence::Futex,
            site,
            name,
            via: Some("import".into()),
            timed,
            futex,
        }
    }

    /// How the waiting frame names what it waits on: the subject of the `with` being entered,
    /// or the receiver of the call in progress (`lock` in `lock.acquire()`).
    fn waited_name(&self, fv: &FrameView) -> Option<String> {
        let idx = self.walker.current_index(fv.raw)?;
        let code = &fv.raw.code;
        let minor = self.walker.minor();
        match code.instructions[idx].name {
            "SETUP_WITH" | "BEFORE_WITH" => {
                bytecode::with_subject(minor, &code.instructions, idx, &code.names)
            }
            _ => {
                bytecode::call_receiver(minor, &code.instructions, idx, &code.names).map(|(r, _)| r)
            }
        }
    }

    fn receiver_name(&self, fv: &FrameView) -> Option<String> {
        let idx = self.walker.current_index(fv.raw)?;
        let code = &fv.raw.code;
        bytecode::call_receiver(self.walker.minor(), &code.instructions, idx, &code.names)
            .map(|(r, _)| r)
    }

    /// Holders the probe recorded, checked against memory first. A claim memory contradicts
    /// (an owner of an unlocked lock, an RLock whose owner field names another thread, more
    /// permits held than a BoundedSemaphore gave out) is reported on the lock and not used.
    fn apply_probe(&mut self, threads: &mut [Thread], holds: &[ProbeHold]) {
        let pid = self.pid;
        let mut by_key: BTreeMap<usize, Vec<&ProbeHold>> = BTreeMap::new();
        for h in holds {
            by_key.entry(h.key).or_default().push(h);
        }
        let mut seqs: HashMap<(String, String), u64> = HashMap::new();
        for (key, claims) in &by_key {
            let key = *key;
            let Ok(ty) = self.objs().type_name(key) else {
                continue;
            };
            let asyncio = claims.iter().any(|c| c.task.is_some());
            let kind = match ty.as_str() {
                "_thread.lock" => "lock",
                "_thread.RLock" => "rlock",
                "Semaphore" | "BoundedSemaphore" if asyncio => "asyncio_semaphore",
                "Semaphore" | "BoundedSemaphore" => "semaphore",
                "Lock" => "asyncio_lock",
                // Freed and its address reused by something else: nothing to attach it to.
                _ => continue,
            };
            let (locked, contradiction) = self.check_claims(key, kind, &ty, claims);
            let id = lock_id(pid, key);
            self.ensure_lock(key, kind);
            if let Some(memory) = contradiction {
                let lock = self.locks.get_mut(&key).unwrap();
                lock.locked = locked.or(lock.locked);
                for c in claims {
                    let tid = thread_id(pid, c.ident);
                    lock.contradictions.push(Contradiction {
                        evidence: Evidence::Probe,
                        thread: self.live_idents.contains(&c.ident).then_some(tid),
                        owner_ident: Some(c.ident),
                        site: Some(c.site.clone()),
                        claim: format!("held since {}", c.site),
                        memory: memory.clone(),
                    });
                }
                continue;
            }
            let lock = self.locks.get_mut(&key).unwrap();
            lock.locked = locked.or(lock.locked);
            lock.holders.retain(|h| h.evidence != Evidence::Unknown);
            for c in claims {
                let tid = thread_id(pid, c.ident);
                let live = self.live_idents.contains(&c.ident);
                let task = c.task.map(|t| format!("{pid}:task:{t:#x}"));
                seqs.insert((tid.clone(), id.clone()), c.seq);
                match lock
                    .holders
                    .iter_mut()
                    .find(|h| h.thread.as_deref() == Some(tid.as_str()) && h.task == task)
                {
                    // Memory or a `with` block already says so: the probe adds the site.
                    Some(h) if !kind.contains("semaphore") => {
                        if h.site.is_none() {
                            h.site = Some(c.site.clone());
                        }
                    }
                    _ => lock.holders.push(Holder {
                        process: None,
                        thread: live.then(|| tid.clone()),
                        owner_ident: Some(c.ident),
                        evidence: Evidence::Probe,
                        site: Some(c.site.clone()),
                        count: None,
                        task,
                    }),
                }
                if !live {
                    continue;
                }
                if let Some(t) = threads.iter_mut().find(|t| t.id == tid) {
                    match t.holds.iter_mut().find(|h| h.lock == id) {
                        Some(h) => {
                            if h.site.is_none() {
                                h.site = Some(c.site.clone());
                            }
                        }
                        None => t.holds.push(Hold {
                            lock: id.clone(),
                            evidence: Evidence::Probe,
                            site: Some(c.site.clone()),
                            name: None,
                        }),
                    }
                }
            }
        }
        // A Condition's holder is its lock's holder.
        let conditions: Vec<usize> = self
            .locks
            .iter()
            .filter(|(_, l)| l.kind == "condition" && l.holders.is_empty())
            .map(|(a, _)| *a)
            .collect();
        for cond in conditions {
            let Some(inner) = self.objs().attr(cond, "_lock").ok().flatten() else {
                continue;
            };
            let inner = probe::unwrap(self.objs(), inner);
            let Some(inner_lock) = self.locks.get(&inner) else {
                continue;
            };
            let from_inner: Vec<Holder> = inner_lock
                .holders
                .iter()
                .filter(|h| h.evidence == Evidence::Probe || h.evidence == Evidence::Memory)
                .cloned()
                .collect();
            let lock = self.locks.get_mut(&cond).unwrap();
            lock.locked = Some(!from_inner.is_empty());
            lock.holders = from_inner;
        }
        // Every hold the probe saw has a sequence number: innermost (newest) first.
        for t in threads.iter_mut() {
            let keyed: Option<Vec<u64>> = t
                .holds
                .iter()
                .map(|h| seqs.get(&(t.id.clone(), h.lock.clone())).copied())
                .collect();
            if let Some(keys) = keyed {
                let mut paired: Vec<(u64, Hold)> =
                    keys.into_iter().zip(t.holds.drain(..)).collect();
                paired.sort_by(|a, b| b.0.cmp(&a.0));
                t.holds = paired.into_iter().map(|(_, h)| h).collect();
            }
        }
    }

    /// Whether memory agrees with the probe's claims on one primitive: (locked, contradiction).
    fn check_claims(
        &self,
        key: usize,
        kind: &str,
        ty: &str,
        claims: &[&ProbeHold],
    ) -> (Option<bool>, Option<String>) {
        let objs = self.objs();
        let attr_int = |name: &str| {
            objs.attr(key, name)
                .ok()
                .flatten()
                .and_then(|v| objs.int(v).ok())
        };
        match kind {
            "lock" => match objs.mem.u8(key + LOCK_LOCKED) {
                Ok(0) => (Some(false), Some("the lock is unlocked".into())),
                Ok(_) => (Some(true), None),
                Err(_) => (None, None),
            },
            "rlock" => {
                let owner = objs.mem.u64(key + RLOCK_OWNER).unwrap_or(0);
                let count = objs.mem.u64(key + RLOCK_COUNT).unwrap_or(0);
                if count == 0 {
                    (Some(false), Some("the RLock is unlocked".into()))
                } else if claims.iter().any(|c| c.ident != owner) {
                    (
                        Some(true),
                        Some(format!("the RLock's owner field is thread ident {owner}")),
                    )
                } else {
                    (Some(true), None)
                }
            }
            "semaphore" => {
                let value = attr_int("_value");
                let initial = attr_int("_initial_value").filter(|_| ty == "BoundedSemaphore");
                match (value, initial) {
                    (Some(v), Some(i)) if (claims.len() as i64) > i - v => (
                        Some(v == 0),
                        Some(format!("{} of {i} permits are taken", i - v)),
                    ),
                    (v, _) => (v.map(|v| v == 0), None),
                }
            }
            "asyncio_lock" => match attr_int("_locked") {
                Some(0) => (Some(false), Some("the asyncio.Lock is unlocked".into())),
                Some(_) => (Some(true), None),
                None => (None, None),
            },
            _ => (attr_int("_value").map(|v| v == 0), None),
        }
    }

    /// Owners read from memory: RLock owner fields and import module locks. Plain locks that
    /// are locked with no holder found keep an `unknown` holder.
    fn resolve_owners(&mut self, threads: &mut [Thread]) {
        let pid = self.pid;
        let mut holders_by_lock: HashMap<String, Vec<(String, Hold)>> = HashMap::new();
        for t in threads.iter() {
            for h in &t.holds {
                holders_by_lock
                    .entry(h.lock.clone())
                    .or_default()
                    .push((t.id.clone(), h.clone()));
            }
        }
        let addrs: Vec<usize> = self.locks.keys().copied().collect();
        for addr in addrs {
            let kind = self.locks[&addr].kind.clone();
            let mut holders: Vec<Holder> = Vec::new();
            let mut locked = None;
            let objs = self.objs();
            let memory_owner = match kind.as_str() {
                "rlock" => {
                    let owner = objs.mem.u64(addr + RLOCK_OWNER).unwrap_or(0);
                    let count = objs.mem.u64(addr + RLOCK_COUNT).unwrap_or(0);
                    locked = Some(count > 0);
                    (count > 0 && owner != 0).then_some((owner, Some(count)))
                }
                "module_lock" => {
                    let owner = objs
                        .attr(addr, "owner")
                        .ok()
                        .flatten()
                        .and_then(|o| objs.int(o).ok());
                    let count = objs.attr(addr, "count").ok().flatten().and_then(|c| {
                        objs.int(c)
                            .ok()
                            .map(|v| v as u64)
                            .or_else(|| objs.list_items(c).ok().map(|l| l.len() as u64))
                    });
                    locked = Some(owner.is_some() && count.unwrap_or(1) > 0);
                    owner
                        .filter(|_| count.unwrap_or(1) > 0)
                        .map(|o| (o as u64, count))
                }
                "lock" => {
                    locked = objs.mem.u8(addr + LOCK_LOCKED).ok().map(|b| b != 0);
                    None
                }
                _ => None,
            };
            let id = lock_id(pid, addr);
            if let Some((owner, count)) = memory_owner {
                let tid = thread_id(pid, owner);
                // glibc reuses thread idents (pthread_t is the thread's descriptor address). A
                // live thread with the owner's ident that sleeps on this very lock cannot be its
                // owner (RLock and module locks are reentrant): the owner was an exited thread.
                let waits_on_it = self.locks[&addr].waiters.iter().any(|w| w.thread == tid);
                let live = self.live_idents.contains(&owner) && !waits_on_it;
                let site = holders_by_lock
                    .get(&id)
                    .and_then(|v| v.iter().find(|(t, _)| *t == tid))
                    .and_then(|(_, h)| h.site.clone());
                holders.push(Holder {
                    process: None,
                    thread: live.then(|| tid.clone()),
                    task: None,
                    owner_ident: Some(owner),
                    evidence: Evidence::Memory,
                    site,
                    count,
                });
                if live {
                    if let Some(t) = threads.iter_mut().find(|t| t.id == tid) {
                        if !t.holds.iter().any(|h| h.lock == id) {
                            let name = self.locks[&addr].names.first().map(|n| n.name.clone());
                            t.holds.push(Hold {
                                lock: id.clone(),
                                evidence: Evidence::Memory,
                                site: None,
                                name,
                            });
                        } else if let Some(h) = t.holds.iter_mut().find(|h| h.lock == id) {
                            h.evidence = Evidence::Memory;
                        }
                    }
                }
            }
            for (tid, h) in holders_by_lock.get(&id).into_iter().flatten() {
                if !holders
                    .iter()
                    .any(|x| x.thread.as_deref() == Some(tid.as_str()))
                    && kind != "rlock"
                {
                    holders.push(Holder {
                        process: None,
                        thread: Some(tid.clone()),
                        task: None,
                        owner_ident: None,
                        evidence: h.evidence,
                        site: h.site.clone(),
                        count: None,
                    });
                }
            }
            if holders.is_empty() && locked == Some(true) {
                holders.push(Holder {
                    process: None,
                    thread: None,
                    task: None,
                    owner_ident: None,
                    evidence: Evidence::Unknown,
                    site: None,
                    count: None,
                });
            }
            let lock = self.locks.get_mut(&addr).unwrap();
            lock.locked = locked.or(lock.locked);
            lock.holders = holders;
        }
    }
}

/// Code from the standard library (threading, queue, importlib...), whose internal writes are
/// never the user's race.
fn is_library_file(file: &str) -> bool {
    file.starts_with('<') || file.contains("/lib/python3.")
}

fn is_function(f: &FrameView, file: &str, function: &str) -> bool {
    short_file(&f.frame.file) == file
        && (f.frame.function == function || f.frame.function.ends_with(&format!(".{function}")))
}

/// `Event.wait` for a frame named `wait` whose `self` is an Event (3.8-3.10 code has no qualname).
fn qualified(function: &str, _locals: &[String], raw: &RawFrame, walker: &Walker) -> String {
    if function.contains('.') {
        return function.to_string();
    }
    match walker
        .local(raw, "self")
        .and_then(|s| walker.objs.type_name(s).ok())
    {
        Some(ty) => format!("{ty}.{function}"),
        None => function.to_string(),
    }
}

fn primitive_kind(type_name: &str) -> &'static str {
    match type_name {
        "Event" => "event",
        "Semaphore" | "BoundedSemaphore" => "semaphore",
        "Barrier" => "barrier",
        "Queue" | "LifoQueue" | "PriorityQueue" | "SimpleQueue" => "queue",
        "Thread" => "thread",
        _ => "condition",
    }
}

/// The contract's thread state from the kernel's view, before lock analysis refines it.
fn kernel_state(k: Option<&KernelThread>, owns_gil: bool) -> ThreadState {
    use procfs::*;
    let Some(k) = k else {
        return ThreadState::Unknown;
    };
    if k.state == 'R' {
        return ThreadState::Running;
    }
    let Some(s) = &k.syscall else {
        return if matches!(k.state, 'S' | 'D') {
            ThreadState::Syscall
        } else {
            ThreadState::Running
        };
    };
    match s.nr {
        SYS_NANOSLEEP | SYS_CLOCK_NANOSLEEP => ThreadState::Sleep,
        SYS_SELECT | SYS_PSELECT6 if s.args[4] != 0 && s.args[0] == 0 => ThreadState::Sleep,
        SYS_READ | SYS_WRITE | SYS_POLL | SYS_SELECT | SYS_PSELECT6 | SYS_PPOLL | SYS_ACCEPT
        | SYS_ACCEPT4 | SYS_RECVFROM | SYS_RECVMSG | SYS_EPOLL_WAIT | SYS_EPOLL_PWAIT
        | SYS_EPOLL_PWAIT2 => ThreadState::IoWait,
        SYS_FUTEX if !owns_gil => ThreadState::LockWait,
        _ => ThreadState::Syscall,
    }
}

fn syscall_name(nr: i64) -> String {
    use procfs::*;
    match nr {
        SYS_READ => "read".into(),
        SYS_WRITE => "write".into(),
        SYS_POLL => "poll".into(),
        SYS_SELECT => "select".into(),
        SYS_NANOSLEEP => "nanosleep".into(),
        SYS_WAIT4 => "wait4".into(),
        SYS_FUTEX => "futex".into(),
        SYS_CLOCK_NANOSLEEP => "clock_nanosleep".into(),
        SYS_EPOLL_WAIT => "epoll_wait".into(),
        SYS_WAITID => "waitid".into(),
        SYS_PSELECT6 => "pselect6".into(),
        SYS_PPOLL => "ppoll".into(),
        SYS_EPOLL_PWAIT => "epoll_pwait".into(),
        n => format!("syscall {n}"),
    }
}
