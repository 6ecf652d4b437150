//! One thread as the snapshot reports it: its kernel TID, `threading` name, GIL ownership,
//! frames and kernel state, with the `with`-block holds and the wait the other files work out.
//! It does not decide what a futex wait means (`waits`) nor who owns a lock (`holders`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::builder::*;
use crate::cpython::layout::common::*;
use crate::cpython::layout::GilRecord;

/// glibc 2.26+ on x86-64 keeps `struct pthread`'s `tid` here; other offsets are scanned in
/// case of another libc build.
const GLIBC_PTHREAD_TID: usize = 0x2d0;

/// Kernel TIDs of the interpreter's threads, as the target's own PID namespace numbers them
/// (`known` holds those of its live threads). 3.11+ store it in the thread state; before that,
/// the ident is glibc's `pthread_t`, a pointer to `struct pthread`, whose `tid` field sits at
/// a fixed offset: find the offset where every thread's value is one of the process's TIDs.
pub(super) fn native_ids(
    offset: &mut Option<usize>,
    walker: &Walker,
    raw: &[RawThread],
    known: &HashMap<i32, i32>,
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
                    .filter(|tid| known.contains_key(tid))
            })
            .collect()
    };
    // How many threads an offset matched, when it matched some and no two alike.
    let matched = |ids: &Vec<Option<i32>>| {
        let found: Vec<i32> = ids.iter().flatten().copied().collect();
        let distinct: HashSet<i32> = found.iter().copied().collect();
        (!found.is_empty() && distinct.len() == found.len()).then_some(found.len())
    };
    let consistent = |ids: &Vec<Option<i32>>| matched(ids) == Some(ids.len());
    if let Some(off) = *offset {
        let ids = read(off);
        // A thread state left behind by a thread that exited matches nothing: the offset
        // found before still holds for the others (that one is reported unmatched).
        if matched(&ids).is_some() {
            return ids;
        }
    }
    for off in std::iter::once(GLIBC_PTHREAD_TID).chain((0..0x800).step_by(4)) {
        let ids = read(off);
        if consistent(&ids) {
            *offset = Some(off);
            return ids;
        }
    }
    // A thread state left behind by an exited thread fails every offset: glibc's own still
    // matches the live threads.
    let ids = read(GLIBC_PTHREAD_TID);
    if matched(&ids).is_some() {
        *offset = Some(GLIBC_PTHREAD_TID);
        return ids;
    }
    raw.iter().map(|t| t.native_id).collect()
}

/// What the interpreter says about a thread beyond its state: its `threading` name, whether
/// it holds the GIL, its TID in its own PID namespace (when that differs from gridlock's) and
/// why its kernel state could not be matched, if it could not.
pub(super) struct ThreadInfo {
    pub(super) name: Option<String>,
    pub(super) owns_gil: bool,
    pub(super) namespace_tid: Option<i32>,
    pub(super) unmatched: Option<String>,
}

/// What is known of the target's PID namespace, to explain an unmatched thread.
pub(super) struct Namespace {
    pub(super) pid: i32,
    /// The target is in another PID namespace than gridlock.
    pub(super) other: bool,
    /// Some thread's `status` has no `NSpid` line.
    pub(super) missing_nspid: bool,
}

/// Why a thread whose thread state records the TID `own` (in its own namespace), which maps
/// to `/proc`'s `proc_tid`, has no kernel state: one clause for the report.
pub(super) fn unmatched_reason(ns: &Namespace, own: Option<i32>, proc_tid: Option<i32>) -> String {
    let pid = ns.pid;
    match (own, proc_tid) {
        (_, Some(tid)) => format!("/proc/{pid}/task/{tid} could not be read"),
        (None, _) => "its kernel TID could not be read from its thread state".into(),
        (Some(0), _) => {
            "its thread state is bound to no kernel thread yet, as while the thread starts".into()
        }
        (Some(tid), None) if ns.other && ns.missing_nspid => format!(
            "the target is in another PID namespace and this kernel's /proc/{pid}/task/*/status \
             has no NSpid line to map its TID {tid} there"
        ),
        (Some(tid), None) if ns.other => format!(
            "its TID {tid} in the target's PID namespace is no thread's NSpid in /proc/{pid}/task"
        ),
        (Some(tid), None) => format!(
            "its TID {tid} is no thread of /proc/{pid}/task: the thread exited without its \
             thread state being deleted, or gridlock's /proc belongs to another PID namespace"
        ),
    }
}

/// How long names read from `threading._active` are reused while the dict holds the same
/// entries (the same ident keys to the same `Thread` objects): a name set after the thread
/// started (`current_thread().name = ...`) shows within this. Reading every thread's name is
/// several pages per thread, most of a busy target's snapshot otherwise.
const NAMES_MAX_AGE: Duration = Duration::from_millis(250);

/// `threading._active` (found once through `sys.modules`, a search through hundreds of keys:
/// the module mutates it in place and never rebinds it), and the names last read from it.
#[derive(Default)]
pub struct ActiveNames {
    dict: Option<usize>,
    /// The dict's (key, `Thread`) object pairs when `names` were read, and when.
    entries: Vec<(usize, usize)>,
    read_at: Option<Instant>,
    names: HashMap<u64, String>,
}

/// `threading._active`: thread ident -> `Thread._name`, read again when the dict's entries
/// changed or the names are older than `NAMES_MAX_AGE`.
pub(super) fn thread_names<'c>(
    walker: &Walker,
    interpreter: usize,
    cache: &'c mut ActiveNames,
) -> &'c HashMap<u64, String> {
    let objs = &walker.objs;
    let find = || -> Option<usize> {
        let modules = objs
            .mem
            .ptr(interpreter + objs.layout.offsets.interp_modules)
            .ok()?;
        let threading = objs.dict_get(modules, "threading").ok()??;
        let globals = objs.mem.ptr(threading + MODULE_DICT).ok()?;
        objs.dict_get(globals, "_active").ok()?
    };
    if !cache.dict.is_some_and(|d| objs.type_is(d, "dict")) {
        cache.dict = find();
        cache.read_at = None;
    }
    let Some(entries) = cache.dict.and_then(|d| objs.dict_entries(d).ok()) else {
        cache.names.clear();
        cache.read_at = None;
        return &cache.names;
    };
    let fresh = cache.read_at.is_some_and(|t| t.elapsed() < NAMES_MAX_AGE);
    if fresh && entries == cache.entries {
        return &cache.names;
    }
    cache.names.clear();
    for &(key, thread) in &entries {
        let (Ok(ident), Some(name)) = (objs.int(key), objs.attr(thread, "_name").ok().flatten())
        else {
            continue;
        };
        if let Ok(name) = objs.str(name) {
            cache.names.insert(ident as u64, name);
        }
    }
    cache.entries = entries;
    cache.read_at = Some(Instant::now());
    &cache.names
}

/// The thread state holding the GIL: `gilstate.tstate_current` (3.8-3.11), or the GIL's
/// `last_holder` while `locked` (3.12+), at the address py-spy found when attaching.
pub(super) fn gil_holder(walker: &Walker, gil_address: usize) -> Option<usize> {
    if gil_address == 0 {
        return None;
    }
    let mem = walker.objs.mem;
    if walker.objs.layout.offsets.gil == GilRecord::LastHolder {
        (mem.i32(gil_address + GIL_LOCKED).ok()? != 0)
            .then(|| mem.ptr(gil_address + GIL_LAST_HOLDER).ok())?
    } else {
        mem.ptr(gil_address).ok()
    }
    .filter(|p| *p != 0)
}

/// The contract's thread state from the kernel's view, before lock analysis refines it.
pub(super) fn kernel_state(k: Option<&KernelThread>, owns_gil: bool) -> ThreadState {
    use procfs::*;
    let Some(k) = k else {
        return ThreadState::Unknown;
    };
    if k.state == 'R' {
        return ThreadState::Running;
    }
    if is_stopped(k) {
        return ThreadState::Stopped;
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
        SYS_READ
        | SYS_WRITE
        | SYS_POLL
        | SYS_SELECT
        | SYS_PSELECT6
        | SYS_PPOLL
        | SYS_ACCEPT
        | SYS_ACCEPT4
        | SYS_RECVFROM
        | SYS_RECVMSG
        | SYS_EPOLL_WAIT
        | SYS_EPOLL_PWAIT
        | SYS_EPOLL_PWAIT2
        | SYS_READV
        | SYS_WRITEV
        | SYS_SENDTO
        | SYS_SENDMSG
        | crate::kernel::syscalls::SYS_CONNECT => ThreadState::IoWait,
        // A child's exit: `--tree` links it to the child (`crossproc`).
        SYS_WAIT4 | SYS_WAITID => ThreadState::JoinWait,
        SYS_FUTEX if !owns_gil => ThreadState::LockWait,
        _ => ThreadState::Syscall,
    }
}

/// Stopped by a signal (`T`) or a tracer (`t`): whatever it waits in, it cannot act until it
/// is continued, so its wait says nothing about a deadlock.
fn is_stopped(k: &KernelThread) -> bool {
    matches!(k.state, 'T' | 't')
}

pub(super) fn syscall_name(nr: i64) -> String {
    crate::kernel::syscalls::label(nr)
}

impl<'w, 'a> Builder<'w, 'a> {
    pub(super) fn thread(
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
                        self.note_mp_hold(&id, fv, &w);
                    }
                    continue;
                };
                // The holder's site is the `with` statement that took the lock.
                let (name, site) = self.with_site(fv, &w);
                self.ensure_lock(lock, kind);
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
        // Holds from bare `acquire()` calls whose `release()` is still ahead.
        holds.extend(self.acquired_holds(&frames));

        let owns_gil = info.owns_gil;
        // Nothing is inferred from a stopped thread's wait: no lock wait, no blocked thread.
        let futex = k
            .filter(|k| !is_stopped(k))
            .and_then(|k| k.syscall.as_ref())
            .and_then(|s| s.futex_wait_addr());
        let timed = k
            .and_then(|k| k.syscall.as_ref())
            .map(|s| s.futex_timed())
            .unwrap_or(false);
        let mut state = kernel_state(k, owns_gil);
        let mut waits_for = None;
        if let Some(futex) = futex {
            // Not in a core (no `schedstat` there): a match is kept only while the thread
            // provably has not run (counters that are off, all zero, prove nothing).
            let stay = k
                .and_then(|k| k.timeslices)
                .filter(|&slices| slices > 0 && !self.frozen)
                .map(|slices| (rt.thread_id, slices));
            let (s, w, released) = self.classify_futex_wait(&id, &frames, futex, timed, stay);
            let syscall = k.and_then(|k| k.syscall.as_ref());
            let (s, w) = self.c_lock_or_unknown(&id, &frames, syscall, s, w);
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
            if let Some(w) = waits_for.as_mut() {
                self.time_wait(w, &frames, k.and_then(|k| k.syscall.as_ref()));
            }
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
            let _writes = crate::cost_split::span(crate::cost_split::Phase::Writes);
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
        let name = info.name.clone().or_else(|| {
            let tid = native_id.filter(|_| !self.frozen)?;
            procfs::thread_comm(self.pid, tid)
        });
        // The syscall's name, made once for both places that show it.
        let label = k
            .and_then(|k| k.syscall.as_ref())
            .map(|s| syscall_name(s.nr));
        Thread {
            // The syscall a sleeping thread is in, by name (a running one is in none).
            syscall_name: k
                .filter(|k| matches!(k.state, 'S' | 'D'))
                .and(label.clone()),
            id,
            pid: self.pid,
            thread_id: rt.thread_id,
            native_id,
            namespace_tid: info.namespace_tid,
            kernel_unmatched: info.unmatched.clone(),
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
                syscall: k.syscall.as_ref().zip(label).map(|(s, label)| {
                    format!(
                        "{label} {:#x} {:#x} {:#x} {:#x}",
                        s.args[0], s.args[1], s.args[2], s.args[3]
                    )
                }),
                wchan: k.wchan.clone(),
                timeslices: k.timeslices,
            }),
            writes,
            native_frames: Vec::new(),
            native_frames_from: None,
        }
    }

    /// The thread's frames, with lines from each code object's line table.
    pub(super) fn frames<'r>(&self, rt: &'r RawThread) -> Vec<FrameView<'r>> {
        let _frames = crate::cost_split::span(crate::cost_split::Phase::Frames);
        rt.frames
            .iter()
            .map(|r| FrameView {
                raw: r,
                frame: Frame {
                    function: r.code.name.clone(),
                    file: r.code.filename.clone(),
                    locals: self.with_locals.then(|| self.local_values(r)),
                    line: r.instr.and_then(|u| r.code.line_at(u)).unwrap_or(0),
                    parameters: r.code.parameters.clone(),
                },
            })
            .collect()
    }

    pub(super) fn local_values(&self, frame: &RawFrame) -> Vec<Local> {
        let objs = self.objs();
        self.walker
            .locals(frame)
            .into_iter()
            .map(|(name, addr)| {
                let repr = match objs.type_name(addr).as_deref() {
                    Ok("int" | "str" | "NoneType") => objs.short_repr(addr),
                    Ok("_thread.lock") => {
                        let state = match objs.lock_held(addr) {
                            Some(true) => "locked ",
                            Some(false) => "unlocked ",
                            None => "",
                        };
                        format!("<{state}_thread.lock at {addr:#x}>")
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
}
