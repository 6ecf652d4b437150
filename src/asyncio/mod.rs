//! asyncio, read from outside: event loops per thread (polling or running which step), every
//! task of every loop with its suspended await stack and what it waits for, and the
//! `asyncio.Lock`s tasks hold through `async with`. Offsets are in `cpython::layout`
//! (`AsyncioOffsets`); on 3.14+ they are those the target publishes (`.AsyncioDebug`, found
//! by the caller), checked on live objects (`check`) before anything is built on them.
//! Everything is read through `Memory`, nothing runs in the target.

mod check;
mod facts;
mod types;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cpython::asyncio_debug;
use crate::cpython::layout::asyncio_common::*;
use crate::cpython::layout::common::{METHOD_SELF, OB_TYPE};
use crate::cpython::layout::{
    AsyncioOffsets, AwaitTop, Bytecode, CoroFrame, CurrentTask, InstructionPointer, Offsets,
    RunningLoop, TaskRegistry,
};
use crate::cpython::threads::{CodeInfo, RawFrame, RawThread, Walker};
use crate::model::lock_id;
use crate::model::*;
use facts::{Facts, FrameFacts};
use types::{AddrMap, AddrSet, Kind, Known, TaskImpl, TypeInfo, Types, TP_BASE};

const RUNNING_LOOP_KEY: &str = "__asyncio_running_event_loop__";
/// Deepest await chain followed (coroutine -> coroutine -> ... -> future).
const MAX_CHAIN: usize = 64;
/// How often to look for `asyncio.tasks` again in a process that has not imported it.
const LOOKUP_EVERY: Duration = Duration::from_secs(1);
/// The largest C task struct prefix read in one go (`task_name` + 8 is at most 176).
const TASK_READ_MAX: usize = 256;
/// A frame's fields read in one go: 3.8-3.10 `PyFrameObject` up to `f_state` (+108), 3.11+
/// `_PyInterpreterFrame` up to `stacktop` (+64), both well inside the frame.
const FRAME_READ: usize = 112;
const FRAME_READ_EMBEDDED: usize = 72;
/// Snapshots in a row whose live check of the asyncio offsets must fail before they are
/// given up.
const CHECK_TRIES: u32 = 3;
/// A task's name object read in one go: an int's first digits, or a short ASCII str.
const NAME_READ: usize = 64;

pub fn task_id(pid: i32, addr: usize) -> String {
    format!("{pid}:task:{addr:#x}")
}

/// `prefix` then `addr` as `{:#x}` would write it, without the formatting machinery (ten
/// thousand tasks make tens of thousands of ids per snapshot).
fn with_hex(prefix: &str, addr: usize) -> String {
    with_hex_parts(&[prefix], addr)
}

/// The parts, then `addr` in hex (`PID:`, `event`, `:`, `0x...`).
fn with_hex_parts(parts: &[&str], addr: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 18];
    let mut i = digits.len();
    let mut v = addr;
    loop {
        i -= 1;
        digits[i] = HEX[v & 0xf];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    i -= 2;
    digits[i] = b'0';
    digits[i + 1] = b'x';
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut s = String::with_capacity(len + digits.len() - i);
    for p in parts {
        s.push_str(p);
    }
    s.push_str(std::str::from_utf8(&digits[i..]).unwrap_or_default());
    s
}

/// `Task-N`, the default name of the N-th task.
fn default_task_name(n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut s = String::with_capacity(5 + digits.len() - i);
    s.push_str("Task-");
    s.extend(digits[i..].iter().map(|d| *d as char));
    s
}

pub fn loop_id(pid: i32, addr: usize) -> String {
    format!("{pid}:loop:{addr:#x}")
}

/// What looking for the target's published asyncio offsets found: the binary holding the
/// section and its bytes, no such section, or why the binaries could not be read.
pub type SectionLookup = Result<Option<(String, Vec<u8>)>, String>;

/// How far a process's asyncio offsets are established.
#[derive(Debug, Clone, Default)]
enum Resolution {
    /// Not looked at yet (asyncio not imported so far).
    #[default]
    Unresolved,
    /// Being checked on live objects, which needs a task to exist; meanwhile used, since
    /// with no task nothing is built on them. `table`: the table's values, not the section's.
    Checking { offs: AsyncioOffsets, table: bool },
    /// Checked (or a version without published offsets, whose table is used as is).
    Trusted(AsyncioOffsets),
    /// asyncio is not read in this process (a note says why).
    Off,
}

/// What is kept between snapshots of one process.
#[derive(Default)]
pub struct AsyncioCache {
    resolution: Resolution,
    /// Why the published offsets were not used, while the table's are being checked.
    table_because: Option<String>,
    /// Consecutive snapshots whose live check failed: a list the target changed while it
    /// was read can fail once, so offsets are given up only after `CHECK_TRIES`.
    check_failures: u32,
    /// Notes for the report not yet taken by the caller.
    notes: Vec<String>,
    /// `asyncio.tasks.__dict__`, once the target has imported asyncio.
    tasks_module: Option<usize>,
    last_lookup: Option<Instant>,
    /// Each known loop's `_ready` deque, and its mutation counter read at the start of the
    /// current snapshot: a counter that moved while the stacks were read means the step
    /// changed under us, and that sample is a step boundary.
    ready_queues: HashMap<usize, usize>,
    ready_before: HashMap<usize, u64>,
}

impl AsyncioCache {
    /// Notes about how this process's asyncio is read (a fallback, or asyncio turned off),
    /// each given once.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Read the ready-queue counters of the loops seen last time, before anything else.
    pub fn begin(&mut self, mem: &dyn crate::memory::ReadMemory) {
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

/// Everything read or decoded once per snapshot and shared by all tasks: types by type
/// object, frame facts by (code, instruction), loop ids by loop.
struct Reader<'w, 'a, 'c> {
    walker: &'w mut Walker<'a>,
    cache: &'c mut AsyncioCache,
    offs: AsyncioOffsets,
    pid: i32,
    /// The version's frame and code offsets.
    layout: Offsets,
    types: Types,
    facts: Facts,
    /// Code objects by address, looked up in the walker's cache once per snapshot.
    codes: AddrMap<usize, Arc<CodeInfo>>,
    loop_ids: AddrMap<usize, String>,
    /// The object that ended the last await chain read (not a coroutine) and its type: the
    /// future the task waits on, whose type is then known without another read.
    chain_end: Option<(usize, usize)>,
    /// Whether the last await chain read starts with a coroutine that is executing (3.11+,
    /// where the frame state tells executing from not yet started).
    chain_executing: bool,
    /// `PID:task:` and `PID:`.
    task_prefix: String,
    pid_prefix: String,
}

/// Where an `asyncio.Lock` stands, as seen from the tasks.
#[derive(Default)]
struct LockSeen {
    holders: Vec<(usize, Option<String>, Option<String>)>,
    names: Vec<LockName>,
}

/// A task's own fields, from the C struct or the `_PyTask` instance dict.
struct TaskFields {
    lp: usize,
    waiter: usize,
    coro: usize,
    name: Option<String>,
}

/// A suspended frame of an await chain with what its code tells.
type ChainFrame = (RawFrame, Rc<FrameFacts>);

/// The offsets a target's `.AsyncioDebug` section publishes, from what looking for it found,
/// or why there are none.
fn published_offsets(
    layout: &crate::cpython::Layout,
    found: SectionLookup,
) -> Result<AsyncioOffsets, String> {
    let section = asyncio_debug::SECTION;
    match found {
        Ok(Some((binary, bytes))) => asyncio_debug::parse(&bytes)
            .and_then(|d| asyncio_debug::offsets(layout, &d))
            .map_err(|e| format!("{binary}: {e}")),
        Ok(None) => Err(format!(
            "no {section} section was found in the target's _asyncio module or interpreter binary"
        )),
        Err(e) => Err(format!("its {section} section could not be read ({e})")),
    }
}

/// gridlock's own offsets for this build, when it is one they were verified on; else the
/// note that turns asyncio off, saying `why` the published ones are not used.
fn table_offsets(layout: &crate::cpython::Layout, why: &str) -> Result<AsyncioOffsets, String> {
    match (&layout.asyncio_published, layout.asyncio) {
        (Some(p), Some(offs)) if p.table_build => Ok(offs),
        (p, _) => Err(format!(
            "asyncio tasks and event loops not read: {why}; CPython {} is not a build whose asyncio offsets gridlock has verified ({})",
            layout.version,
            p.as_ref().map(|p| p.table_builds.as_str()).unwrap_or("none")
        )),
    }
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
    let layout = walker.objs.layout.offsets;
    let mut r = Reader {
        walker,
        cache,
        offs,
        pid,
        layout,
        types: Types::default(),
        facts: Facts::default(),
        codes: AddrMap::default(),
        loop_ids: AddrMap::default(),
        chain_end: None,
        chain_executing: false,
        task_prefix: format!("{pid}:task:"),
        pid_prefix: format!("{pid}:"),
    };
    r.read(interp, raw, threads, section).unwrap_or_default()
}

fn short(path: &str) -> &str {
    short_file(path)
}

fn word(raw: &[u8], off: usize) -> usize {
    u64::from_le_bytes(raw[off..off + 8].try_into().unwrap()) as usize
}

fn int32(raw: &[u8], off: usize) -> i32 {
    i32::from_le_bytes(raw[off..off + 4].try_into().unwrap())
}

impl<'w, 'a, 'c> Reader<'w, 'a, 'c> {
    fn mem(&self) -> &dyn crate::memory::ReadMemory {
        self.walker.objs.mem
    }

    fn ty(&mut self, obj: usize) -> Option<Rc<TypeInfo>> {
        let t = self.walker.objs.type_of(obj).ok()?;
        self.types.info(&self.walker.objs, t)
    }

    fn kind(&mut self, obj: usize) -> Option<Kind> {
        let t = self.walker.objs.type_of(obj).ok()?;
        self.types.kind(&self.walker.objs, t)
    }

    fn task_id(&self, addr: usize) -> String {
        with_hex(&self.task_prefix, addr)
    }

    fn loop_id(&mut self, lp: usize) -> String {
        let pid = self.pid;
        self.loop_ids
            .entry(lp)
            .or_insert_with(|| loop_id(pid, lp))
            .clone()
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

    /// The offsets to read this process's asyncio with: on 3.14+ those its `.AsyncioDebug`
    /// section publishes, else (section missing, unreadable or failing the live check) the
    /// table's when this exact build is the one they were verified on, checked the same way;
    /// else none (asyncio off, with a note). `None` also while nothing can be trusted.
    fn resolve(
        &mut self,
        interp: usize,
        raw: &[RawThread],
        globals: &HashMap<String, usize>,
        section: &mut dyn FnMut() -> SectionLookup,
    ) -> Option<AsyncioOffsets> {
        let layout = self.walker.objs.layout;
        let unresolved = matches!(self.cache.resolution, Resolution::Unresolved);
        if layout.asyncio_published.is_some() && unresolved && !globals.contains_key("_CTask") {
            // asyncio without its C accelerator (or still importing it, before its section
            // is mapped): no C task exists and no thread-state field is in use, so only the
            // pure-Python registries are read, with no offset that needs the section.
            return Some(AsyncioOffsets {
                registry: TaskRegistry::ModuleSets,
                current_task: CurrentTask::ModuleDict,
                running_loop: RunningLoop::NotInThreadState,
                ..self.offs
            });
        }
        loop {
            match std::mem::take(&mut self.cache.resolution) {
                Resolution::Trusted(o) => {
                    self.cache.resolution = Resolution::Trusted(o);
                    return Some(o);
                }
                Resolution::Off => {
                    self.cache.resolution = Resolution::Off;
                    return None;
                }
                Resolution::Unresolved => {
                    if layout.asyncio_published.is_none() {
                        self.cache.resolution = Resolution::Trusted(self.offs);
                        continue;
                    }
                    self.cache.resolution = match published_offsets(layout, section()) {
                        Ok(offs) => Resolution::Checking { offs, table: false },
                        Err(why) => self.fallback(why),
                    };
                }
                Resolution::Checking { offs, table } => {
                    let task_type = globals.get("Task").copied();
                    let objs = &self.walker.objs;
                    let verdict =
                        check::check(objs, &mut self.types, &offs, interp, raw, task_type);
                    if !matches!(verdict, check::Verdict::Fails(_)) {
                        self.cache.check_failures = 0;
                    }
                    match verdict {
                        check::Verdict::Holds => {
                            if let Some(why) = self.cache.table_because.take() {
                                self.cache.notes.push(format!(
                                    "asyncio read with gridlock's own offsets for CPython {} (checked on live tasks): {why}",
                                    layout.version
                                ));
                            }
                            self.cache.resolution = Resolution::Trusted(offs);
                            return Some(offs);
                        }
                        check::Verdict::NoTaskYet => {
                            self.cache.resolution = Resolution::Checking { offs, table };
                            return Some(offs);
                        }
                        check::Verdict::Fails(_) if self.cache.check_failures + 1 < CHECK_TRIES => {
                            // Not read this time; checked again at the next snapshot.
                            self.cache.check_failures += 1;
                            self.cache.resolution = Resolution::Checking { offs, table };
                            return None;
                        }
                        check::Verdict::Fails(why) if table => {
                            let first = self.cache.table_because.take().unwrap_or_default();
                            self.cache.notes.push(format!(
                                "asyncio tasks and event loops not read: {first}; gridlock's own offsets for CPython {} fail a check on live objects too ({why})",
                                layout.version
                            ));
                            self.cache.resolution = Resolution::Off;
                        }
                        check::Verdict::Fails(why) => {
                            self.cache.check_failures = 0;
                            self.cache.resolution = self.fallback(format!(
                                "the offsets its {} section publishes fail a check on live objects ({why})",
                                asyncio_debug::SECTION
                            ));
                        }
                    }
                }
            }
        }
    }

    /// The table's offsets, to be checked, when this build is the one they were verified
    /// on; else asyncio off with a note saying `why`.
    fn fallback(&mut self, why: String) -> Resolution {
        match table_offsets(self.walker.objs.layout, &why) {
            Ok(offs) => {
                self.cache.table_because = Some(why);
                Resolution::Checking { offs, table: true }
            }
            Err(note) => {
                self.cache.notes.push(note);
                Resolution::Off
            }
        }
    }

    fn read(
        &mut self,
        interp: usize,
        raw: &[RawThread],
        threads: &[Thread],
        section: &mut dyn FnMut() -> SectionLookup,
    ) -> Option<AsyncView> {
        let module = self.tasks_module(interp)?;
        let globals: HashMap<String, usize> = match self.walker.objs.dict_items(module) {
            Ok(g) => g.into_iter().collect(),
            Err(_) => {
                // The module was unloaded or its dict moved: look it up again next time.
                self.cache.tasks_module = None;
                return None;
            }
        };
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
        let current: HashMap<usize, usize> = match self.offs.current_task {
            CurrentTask::ModuleDict => globals
                .get("_current_tasks")
                .and_then(|d| self.walker.objs.dict_entries(*d).ok())
                .unwrap_or_default()
                .into_iter()
                .collect(),
            CurrentTask::TstateField(off) => {
                let mut current = HashMap::new();
                for rt in raw {
                    let Some(lp) = self.running_loop(rt) else {
                        continue;
                    };
                    let objs = &self.walker.objs;
                    if let Some(t) = objs
                        .mem
                        .ptr(rt.tstate + off)
                        .ok()
                        .filter(|t| *t != 0 && !objs.is_none(*t))
                    {
                        current.insert(lp, t);
                    }
                }
                current
            }
        };

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
        let mut members: Vec<(usize, bool)> = Vec::new();
        if let TaskRegistry::ThreadLists {
            tstate_head,
            interp_head,
            node,
            ..
        } = self.offs.registry
        {
            for head in raw
                .iter()
                .map(|rt| rt.tstate + tstate_head)
                .chain([interp + interp_head])
            {
                for t in self.task_list(head, node) {
                    members.push((t, false));
                }
            }
        }
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

    /// 3.14+: the running tasks in their first, eager step, with their frames (innermost
    /// first, down to the task's coroutine). With `eager_start` the first step runs inside
    /// the task's constructor (`task_eager_start`), so the coroutine's frame is called by
    /// whatever created the task; a step the loop runs is called by `Handle._run`, or, in a
    /// native loop, by the frame that called into the loop. (3.12/3.13 list such tasks in
    /// `_eager_tasks` instead.)
    fn eager_steps(
        &mut self,
        raw: &[RawThread],
        current: &HashMap<usize, usize>,
    ) -> AddrMap<usize, Vec<Frame>> {
        let mut out = AddrMap::default();
        let (TaskRegistry::ThreadLists { .. }, CoroFrame::Embedded { at, .. }) =
            (self.offs.registry, self.offs.coro_frame)
        else {
            return out;
        };
        let dialect = self.walker.dialect();
        for rt in raw {
            let Some(task) = self
                .running_loop(rt)
                .and_then(|lp| current.get(&lp).copied())
            else {
                continue;
            };
            if self.kind(task) != Some(Kind::Task(TaskImpl::C)) {
                continue;
            }
            let Some(coro) = self
                .mem()
                .ptr(task + self.offs.task_coro)
                .ok()
                .filter(|c| *c != 0)
            else {
                continue;
            };
            let Some(k) = rt.frames.iter().position(|f| f.addr == coro + at) else {
                continue;
            };
            let Some(caller) = rt.frames.get(k + 1) else {
                continue;
            };
            let by_loop = (short(&caller.code.filename) == "events.py"
                && matches!(caller.code.name.as_str(), "_run" | "Handle._run"))
                || matches!(
                    self.facts.of(dialect, caller).called_method(),
                    Some("run_until_complete" | "run_forever")
                );
            if by_loop {
                continue;
            }
            let frames = rt.frames[..=k]
                .iter()
                .map(|f| self.facts.of(dialect, f).frame.clone())
                .collect();
            out.insert(task, frames);
        }
        out
    }

    /// The tasks of a 3.14+ circular task list whose head node is at `head`: each node is
    /// `{next, prev}` inside a task, `node` bytes from its start.
    fn task_list(&self, head: usize, node: usize) -> Vec<usize> {
        const MAX_TASKS: usize = 1 << 20;
        let mut out = Vec::new();
        let mem = self.mem();
        let mut at = match mem.ptr(head) {
            Ok(p) => p,
            Err(_) => return out,
        };
        while at != head && at != 0 && out.len() < MAX_TASKS {
            let Some(task) = at.checked_sub(node) else {
                break;
            };
            out.push(task);
            at = match mem.ptr(at) {
                Ok(p) => p,
                Err(_) => break,
            };
        }
        out
    }

    /// The members of a `weakref.WeakSet`: its `data` set holds weak references. A dead
    /// reference points at `None`, which is not a task and is dropped when read as one.
    fn weakset(&mut self, ws: usize) -> Vec<usize> {
        let objs = &self.walker.objs;
        let Some(data) = objs.attr(ws, "data").ok().flatten() else {
            return Vec::new();
        };
        let refs = objs.set_items(data).unwrap_or_default();
        refs.into_iter()
            .filter_map(|r| objs.mem.ptr(r + WEAKREF_OBJECT).ok().filter(|o| *o != 0))
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
            RunningLoop::NotInThreadState => None,
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
        let info = self.ty(lp);
        let kind = info
            .as_ref()
            .map(|i| i.name.to_string())
            .unwrap_or_else(|| "?".into());
        let native = info.is_some_and(|i| !i.base_event_loop);
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
            (None, _) if native => {
                let (state, s) = self.native_loop_state(rt, th, current);
                step_frames = s.as_ref().map(|s| s.frames.clone());
                step = s;
                state
            }
            (None, _) => LoopState::Unknown,
            // The ready queue moved while we read: a step ended or began during the sample.
            (Some(_), Some(_)) if torn => LoopState::Between,
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
                LoopState::Step
            }
            (Some(ro), None) => {
                if ro > 0 && short(&frames[ro - 1].file) == "selectors.py" {
                    LoopState::Polling
                } else {
                    LoopState::Between
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
                state,
                step,
                ready: ready_len,
                tasks: 0,
            },
            step_frames,
        )
    }

    /// A loop that asyncio's `BaseEventLoop` does not run (uvloop's `Loop`, scheduling in
    /// native code): seen from the thread's stack and syscall only. The innermost frame that
    /// called into the loop (`run_until_complete` / `run_forever`, from its bytecode) runs
    /// it; Python frames above that frame are a callback or task step (the task is the
    /// loop's `_current_tasks` entry); none, in `epoll_wait`, is polling. Without the loop's
    /// own counters, two steps of one task or callback with no poll sampled between them
    /// look like one.
    fn native_loop_state(
        &mut self,
        rt: &RawThread,
        th: &Thread,
        current: Option<usize>,
    ) -> (LoopState, Option<LoopStep>) {
        let dialect = self.walker.dialect();
        let run = rt.frames.iter().position(|f| {
            matches!(
                self.facts.of(dialect, f).called_method(),
                Some("run_until_complete" | "run_forever")
            )
        });
        let Some(j) = run else {
            return (LoopState::Unknown, None);
        };
        if j == 0 || th.frames.len() != rt.frames.len() {
            let polling = th
                .kernel
                .as_ref()
                .and_then(|k| k.syscall.as_deref())
                .is_some_and(|s| s.starts_with("epoll_wait") || s.starts_with("epoll_pwait"));
            return (
                if polling {
                    LoopState::Polling
                } else {
                    LoopState::Between
                },
                None,
            );
        }
        let frames: Vec<Frame> = th.frames[..j].to_vec();
        let step = LoopStep {
            key: format!(
                "native/{:x}/{:x}",
                current.unwrap_or(0),
                rt.frames[j - 1].addr
            ),
            task: current.map(|t| self.task_id(t)),
            callback: Some(frames[j - 1].function.clone()),
            handle: None,
            frames,
        };
        (LoopState::Step, Some(step))
    }

    /// One task, or `None` for anything that is not a pending task.
    fn task(
        &mut self,
        addr: usize,
        eager: bool,
        running: bool,
        step: Option<&Vec<Frame>>,
        locks: &mut HashMap<usize, LockSeen>,
    ) -> Option<(usize, Task)> {
        // One read for the C task's fields and its type.
        let o = self.offs;
        let mut buf = [0u8; TASK_READ_MAX];
        let raw = &mut buf[..(o.task_name + 8).min(TASK_READ_MAX)];
        let whole = self.mem().read_into(addr, raw).is_ok();
        let ty = if whole {
            word(raw, OB_TYPE)
        } else {
            self.walker.objs.type_of(addr).ok()?
        };
        let fields = match self.types.kind(&self.walker.objs, ty)? {
            Kind::Task(TaskImpl::C) if whole => {
                let state =
                    i32::from_le_bytes(raw[o.fut_state..o.fut_state + 4].try_into().unwrap());
                if state != 0 {
                    // Done tasks linger in the registry until collected.
                    return None;
                }
                TaskFields {
                    lp: word(raw, o.fut_loop),
                    waiter: word(raw, o.task_fut_waiter),
                    coro: word(raw, o.task_coro),
                    name: self.task_name(word(raw, o.task_name)),
                }
            }
            Kind::Task(TaskImpl::Py) => self.py_task_fields(addr)?,
            _ => return None,
        };
        let TaskFields {
            lp,
            waiter,
            coro,
            name,
        } = fields;
        let chain = self.await_chain(coro);
        // A task that is not its loop's running task while its coroutine executes has its
        // step under way below another's: the creator of a task in its eager first step.
        let under_way = !running && self.chain_executing;
        let coroutine = chain.first().map(|(rf, _)| rf.code.name.clone());
        let id = self.task_id(addr);
        let frames: Vec<Frame> = match (running, step) {
            (true, Some(sf)) => sf.clone(),
            _ => chain.iter().rev().map(|(_, f)| f.frame.clone()).collect(),
        };
        let mut holds = Vec::new();
        if !running {
            // Innermost first, as threads' stacks are.
            for (rf, facts) in chain.iter().rev() {
                if !facts.async_with {
                    continue;
                }
                for w in self.walker.active_withs(rf) {
                    let Some(lock) = self.asyncio_lock_in_slot(w.exit_slot) else {
                        continue;
                    };
                    let (name, line) = self.walker.with_statement(rf, &w);
                    let site = Frame {
                        line: line.unwrap_or(facts.frame.line),
                        ..facts.frame.clone()
                    }
                    .site();
                    let seen = locks.entry(lock).or_default();
                    seen.holders.push((addr, Some(site.clone()), name.clone()));
                    if let Some(n) = &name {
                        let ln = LockName {
                            how: NameHow::Local,
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
            self.task_wait(waiter, &chain, locks)
        };
        let task = Task {
            framework: Framework::Asyncio,
            id,
            pid: self.pid,
            loop_id: self.loop_id(lp),
            name,
            coroutine,
            state: if running || under_way {
                TaskState::Running
            } else {
                TaskState::Pending
            },
            frames,
            waits_for,
            address: with_hex("", addr),
            eager,
            holds,
        };
        Some((lp, task))
    }

    /// A C task's name: a str, or (3.12+) the number of a default `Task-N` name, stored as an
    /// int until `get_name()` is called. Short names are decoded from one read.
    fn task_name(&mut self, name: usize) -> Option<String> {
        let mut raw = [0u8; NAME_READ];
        if self.mem().read_into(name, &mut raw).is_err() {
            return match self.kind(name)? {
                Kind::Str => self.walker.objs.str(name).ok(),
                Kind::Int => self.walker.objs.int(name).ok().map(|n| format!("Task-{n}")),
                _ => None,
            };
        }
        match self
            .types
            .info(&self.walker.objs, word(&raw, OB_TYPE))?
            .kind
        {
            Kind::Str => {
                // Compact ASCII (state bits 5 and 6) that fits in what was read.
                let len = word(&raw, 16);
                let state = int32(&raw, 32) as u32;
                let data = self.layout.str_ascii_data;
                if state & 0x60 == 0x60 && len <= NAME_READ - data {
                    Some(raw[data..data + len].iter().map(|b| *b as char).collect())
                } else {
                    self.walker.objs.str(name).ok()
                }
            }
            Kind::Int => {
                // One 30-bit digit at most, non-negative: decoded here; anything else by the
                // general reader.
                let head = word(&raw, 16);
                let (ndigits, negative) = if self.layout.int_lv_tag {
                    (head >> 3, head & 3 == 2)
                } else {
                    (head, false)
                };
                match (ndigits, negative) {
                    (0, false) => Some(default_task_name(0)),
                    (1, false) => Some(default_task_name(int32(&raw, 24) as u32 as u64)),
                    _ => self.walker.objs.int(name).ok().map(|n| format!("Task-{n}")),
                }
            }
            _ => None,
        }
    }

    /// A `_PyTask`'s fields, from its instance `__dict__` (`_state` is only there once it
    /// left the class default `PENDING`).
    fn py_task_fields(&mut self, addr: usize) -> Option<TaskFields> {
        let attrs = self.walker.objs.instance_attrs(addr).ok()?;
        let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        if let Some(state) = get("_state") {
            if self.walker.objs.str(state).ok()? != "PENDING" {
                return None;
            }
        }
        let waiter = match get("_fut_waiter") {
            Some(w) if self.kind(w)? != Kind::NoneType => w,
            _ => 0,
        };
        let name = match get("_name") {
            Some(n) if self.kind(n)? == Kind::Str => self.walker.objs.str(n).ok(),
            _ => None,
        };
        Some(TaskFields {
            lp: get("_loop")?,
            waiter,
            coro: get("_coro")?,
            name,
        })
    }

    /// The `asyncio.Lock` whose bound `__aexit__` an `async with` keeps on the value stack.
    fn asyncio_lock_in_slot(&mut self, slot: usize) -> Option<usize> {
        if self.kind(slot)? != Kind::Method {
            // 3.14+: the slot holds the context manager itself.
            return self.is_asyncio_lock(slot).then_some(slot);
        }
        let owner = self.mem().ptr(slot + METHOD_SELF).ok()?;
        self.is_asyncio_lock(owner).then_some(owner)
    }

    fn is_asyncio_lock(&mut self, obj: usize) -> bool {
        self.ty(obj).and_then(|i| i.primitive) == Some(TaskWaitKind::Lock)
            && self
                .walker
                .objs
                .attr(obj, "_locked")
                .ok()
                .flatten()
                .is_some()
    }

    /// Coroutine -> awaited coroutine -> ..., outermost frame first, each frame with what its
    /// code tells (decoded once per code and instruction).
    fn await_chain(&mut self, coro: usize) -> Vec<ChainFrame> {
        let mut chain = Vec::new();
        let dialect = self.walker.dialect();
        let mut obj = coro;
        self.chain_end = None;
        self.chain_executing = false;
        let embedded = matches!(self.offs.coro_frame, CoroFrame::Embedded { .. });
        for _ in 0..MAX_CHAIN {
            let Some((rf, suspended, top)) = self.suspended_frame(obj) else {
                // A future (FutureIter, Future, Task) ends the chain: `fut_waiter` names it.
                break;
            };
            if chain.is_empty() {
                self.chain_executing = embedded && !suspended;
            }
            let facts = self.facts.of(dialect, &rf);
            let next = if suspended && facts.yield_from {
                top.and_then(|slot| self.mem().ptr(slot).ok())
                    .map(|p| self.walker.slot_object(p))
                    .filter(|p| *p != 0)
            } else {
                None
            };
            chain.push((rf, facts));
            match next {
                Some(next) => obj = next,
                None => break,
            }
        }
        chain
    }

    /// The frame of a coroutine or generator, whether it is suspended (not created, running
    /// or finished), and the address of the top of its value stack (what a suspended `await`
    /// waits on). The object and its frame's fields come in one read each.
    fn suspended_frame(&mut self, obj: usize) -> Option<(RawFrame, bool, Option<usize>)> {
        let mut buf = [0u8; 80 + FRAME_READ_EMBEDDED];
        let mut fbuf = [0u8; FRAME_READ];
        let (frame, suspended, embedded_at) = match self.offs.coro_frame {
            CoroFrame::Pointer { at, f_state } => {
                let head = &mut buf[..at + 8];
                self.mem().read_into(obj, head).ok()?;
                if !self.is_coroutine(word(head, OB_TYPE)) {
                    self.chain_end = Some((obj, word(head, OB_TYPE)));
                    return None;
                }
                let frame = word(head, at);
                if frame == 0 {
                    return None;
                }
                self.mem().read_into(frame, &mut fbuf).ok()?;
                let suspended = match f_state {
                    // 3.10 FRAME_SUSPENDED.
                    Some(off) => fbuf[off] as i8 == -1,
                    // 3.8/3.9: the value stack top is saved only while suspended.
                    None => word(&fbuf, 72) != 0,
                };
                (frame, suspended, None)
            }
            CoroFrame::Embedded { at, state } => {
                // The object's head and its embedded frame's fields, in one read.
                let raw = &mut buf[..at + FRAME_READ_EMBEDDED];
                self.mem().read_into(obj, raw).ok()?;
                if !self.is_coroutine(word(raw, OB_TYPE)) {
                    self.chain_end = Some((obj, word(raw, OB_TYPE)));
                    return None;
                }
                let Some(suspended) = self.offs.coro_states.suspended(raw[state] as i8) else {
                    return None;
                };
                (obj + at, suspended, Some(at))
            }
        };
        let fraw: &[u8] = match embedded_at {
            Some(at) => &buf[at..at + FRAME_READ_EMBEDDED],
            None => &fbuf,
        };
        let code_addr = self.walker.slot_object(word(fraw, self.layout.frame_code));
        let code = self.code(code_addr)?;
        let instr = match self.layout.frame_instruction {
            InstructionPointer::LastiBytes(off) => {
                let lasti = int32(fraw, off);
                (lasti >= 0).then_some(lasti as usize / 2)
            }
            InstructionPointer::LastiUnits(off) => {
                let lasti = int32(fraw, off);
                (lasti >= 0).then_some(lasti as usize)
            }
            InstructionPointer::Pointer(off) => match self.layout.code_bytecode {
                Bytecode::Inline(start) => {
                    let ptr = word(fraw, off);
                    let base = code_addr + start;
                    (ptr >= base).then(|| (ptr - base) / 2)
                }
                Bytecode::Object(_) => None,
            },
        };
        let top = match self.offs.await_top {
            AwaitTop::StackTop(off) => Some(word(fraw, off))
                .filter(|t| *t != 0)
                .and_then(|t| t.checked_sub(8)),
            AwaitTop::Depth(vs, depth) => {
                let d = int32(fraw, depth);
                (1..=4096)
                    .contains(&d)
                    .then(|| word(fraw, vs) + 8 * (d as usize - 1))
            }
            AwaitTop::Localsplus(lp, top) => {
                let d = int32(fraw, top);
                (1..=4096)
                    .contains(&d)
                    .then(|| frame + lp + 8 * (d as usize - 1))
            }
            AwaitTop::StackPointer { sp, below } => {
                let base = frame + self.layout.frame_localsplus;
                Some(word(fraw, sp))
                    .filter(|p| *p >= base + below && *p < base + 8 * 4096)
                    .map(|p| p - below)
            }
        };
        let rf = RawFrame {
            addr: frame,
            code,
            instr,
        };
        Some((rf, suspended, top))
    }

    fn is_coroutine(&mut self, ty: usize) -> bool {
        matches!(
            self.types.kind(&self.walker.objs, ty),
            Some(Kind::Coroutine | Kind::Generator)
        )
    }

    /// The code object at `addr`, through the walker's cache once per snapshot.
    fn code(&mut self, addr: usize) -> Option<Arc<CodeInfo>> {
        if let Some(c) = self.codes.get(&addr) {
            return Some(c.clone());
        }
        let c = self.walker.code(addr).ok()?;
        self.codes.insert(addr, c.clone());
        Some(c)
    }

    /// A frame's local at slot `i` (locals, then cells and frees), if set.
    fn local_slot(&self, rf: &RawFrame, i: usize) -> Option<usize> {
        let base = rf.addr + self.walker.objs.layout.offsets.frame_localsplus;
        self.mem().ptr(base + 8 * i).ok().filter(|v| *v != 0)
    }

    fn task_wait(
        &mut self,
        waiter: usize,
        chain: &[ChainFrame],
        locks: &mut HashMap<usize, LockSeen>,
    ) -> Option<TaskWait> {
        // Innermost first, as threads' stacks are.
        let site_frame = chain.iter().rev().find(|c| !c.1.in_asyncio).map(|c| &c.1);
        let site = site_frame.map(|f| f.site.clone());
        let name = site_frame.and_then(|f| f.awaited_name().map(str::to_string));
        // The asyncio primitive whose method is waiting, if any (innermost asyncio frames).
        let primitive = chain
            .iter()
            .rev()
            .take_while(|c| c.1.in_asyncio)
            .find_map(|(rf, f)| {
                if f.file == "tasks.py" && f.function == "sleep" {
                    return Some((TaskWaitKind::Sleep, None, "asyncio.sleep".to_string()));
                }
                if f.file != "locks.py" && f.file != "queues.py" {
                    return None;
                }
                let obj = self.local_slot(rf, f.self_slot?)?;
                let ty = self.ty(obj)?;
                let kind = ty.primitive?;
                Some((kind, Some(obj), format!("{}.{}", ty.name, f.function)))
            });
        if waiter == 0 {
            // Nothing awaited: the task is scheduled to run (e.g. after `await asyncio.sleep(0)`).
            return None;
        }
        let wty = match self.chain_end {
            Some((end, ty)) if end == waiter => self.types.info(&self.walker.objs, ty),
            _ => self.ty(waiter),
        };
        let mut wait = TaskWait {
            kind: TaskWaitKind::Future,
            target: None,
            targets: Vec::new(),
            future: Some(with_hex("", waiter)),
            evidence: Evidence::Memory,
            site,
            name,
            via: None,
        };
        if !matches!(primitive.as_ref().map(|p| p.0), Some(k) if k != TaskWaitKind::Sleep) {
            // `asyncio` in `asyncio.sleep()` names a module, not what is awaited.
            wait.name = None;
        }
        if matches!(wty.as_ref().map(|t| t.kind), Some(Kind::Task(_))) {
            wait.kind = TaskWaitKind::Task;
            wait.target = Some(self.task_id(waiter));
            wait.via = Some("await".into());
        } else if wty.as_ref().is_some_and(|t| t.gathering) {
            wait.kind = TaskWaitKind::Gather;
            wait.via = Some("asyncio.gather".into());
            let children = self.walker.objs.attr(waiter, "_children").ok().flatten();
            let items = children
                .and_then(|c| self.walker.objs.list_items(c).ok())
                .unwrap_or_default();
            for c in items {
                if matches!(self.kind(c), Some(Kind::Task(_))) {
                    wait.targets.push(self.task_id(c));
                }
            }
        } else if let Some((kind, obj, via)) = primitive {
            wait.kind = kind;
            wait.via = Some(via);
            if let Some(obj) = obj {
                if kind == TaskWaitKind::Lock {
                    // Exact when the future is one of the lock's waiters.
                    if !self.deque_contains(obj, "_waiters", waiter) {
                        wait.evidence = Evidence::Unknown;
                    }
                    wait.target = Some(lock_id(self.pid, obj));
                    let seen = locks.entry(obj).or_default();
                    if let (Some(n), Some(s)) = (&wait.name, &wait.site) {
                        let ln = LockName {
                            how: NameHow::Local,
                            name: n.clone(),
                            frame: s.clone(),
                        };
                        if !seen.names.contains(&ln) {
                            seen.names.push(ln);
                        }
                    }
                } else {
                    wait.target =
                        Some(with_hex_parts(&[&self.pid_prefix, kind.as_str(), ":"], obj));
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
        if self.ty(dq).map(|t| t.name.clone()).as_deref() != Some("collections.deque") {
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
                name: None,
                permits: None,
                contradictions: Vec::new(),
                id,
                pid: self.pid,
                address: format!("{addr:#x}"),
                kind: LockKind::AsyncioLock,
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

fn is_run_once(file: &str, function: &str) -> bool {
    short_file(file) == "base_events.py" && function.ends_with("_run_once")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpython::asyncio_debug::test_layout_314;

    /// 3.14.10's `.AsyncioDebug`, as bytes.
    fn section_314() -> Vec<u8> {
        [
            168u64, 136, 96, 108, 109, 128, 152, 225864, 10880, 936, 864, 872, 880,
        ]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
    }

    #[test]
    fn a_found_section_gives_offsets_and_a_missing_one_says_why() {
        let layout = test_layout_314(10);
        let found = Ok(Some(("/usr/lib/_asyncio.so".to_string(), section_314())));
        let o = published_offsets(&layout, found).unwrap();
        assert!(matches!(
            o.registry,
            TaskRegistry::ThreadLists { node: 152, .. }
        ));
        let err = published_offsets(&layout, Ok(None)).unwrap_err();
        assert!(err.contains("no .AsyncioDebug section"), "{err}");
        let short = Ok(Some(("/x/_asyncio.so".to_string(), vec![0u8; 40])));
        let err = published_offsets(&layout, short).unwrap_err();
        assert!(err.starts_with("/x/_asyncio.so: "), "{err}");
    }

    #[test]
    fn the_table_stands_in_only_on_the_build_it_was_verified_on() {
        assert!(table_offsets(&test_layout_314(10), "no section").is_ok());
        let note = table_offsets(&test_layout_314(11), "no section").unwrap_err();
        assert_eq!(
            note,
            "asyncio tasks and event loops not read: no section; CPython 3.14.11 is not a build whose asyncio offsets gridlock has verified (3.14.10, 3.15.2)"
        );
    }
}
