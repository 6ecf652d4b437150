//! One sample of a target: every Python thread with its stack, what it holds and what it
//! waits for, and every lock involved, each claim with its evidence.
//!
//! This file answers "how is a snapshot taken": the `Snapshot` value, one consistent sample
//! (`take`, retries on torn reads, settling threads that moved) and the per-snapshot `Builder`
//! that the files beside it extend. Which thread waits on what is `waits`, who holds a lock is
//! `holders`, who completes a waited future is `futures` (and `ready_queue`, a blocked loop's queued
//! callbacks; `queue_getters`, who takes from a full queue a putter waits on), the probe's claims are `probe`, multiprocessing semaphores are `multiprocessing`,
//! shared writes for races are `writes`, a thread's own view is `threads`. It knows no CPython
//! version: layouts come from `cpython`.

mod acquired;
mod builder;
mod checkout;
pub mod current_test;
pub mod futures;
pub mod gil;
mod holders;
pub mod kernel_waits;
pub mod late_names;
mod mp_view;
pub mod multiprocessing;
mod name_walk;
pub mod names;
mod native_frames;
mod native_locks;
mod permits;
mod probe;
mod queue_getters;
mod reads;
mod ready_queue;
mod sample;
mod session;
pub mod socket_waits;
mod threads;
mod timeouts;
mod wait_matches;
mod waits;
mod writes;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use crate::cost_split::{span, Phase};
use crate::cpython::objects::Objects;
use crate::cpython::threads::Walker;
use crate::error::{Error, Result};
use crate::model::*;
use crate::probe::ProbeState;
use crate::target::procfs::{self, KernelThread};
use crate::target::taskfiles::{InSyscall, TaskFiles};
use builder::Builder;

pub use crate::model::{lock_id, thread_id};
use crate::target::from_maps::FromMaps;
pub use futures::{PoolKind, PoolRun, PoolView, PoolWait};
use multiprocessing::collect_semlocks;
pub use multiprocessing::{read_semlock, MpHold, MpJoin, MpView, MpWait, SemLockObj};
pub use sample::Snapshot;
pub use session::Session;
use threads::{gil_holder, native_ids, thread_names, unmatched_reason, Namespace, ThreadInfo};

/// How many times a snapshot is taken again when a read failed because the running target
/// changed under it (a torn read).
const SNAPSHOT_RETRIES: usize = 4;

/// Take one snapshot of `target`, consistent for every thread it reports blocked.
///
/// The kernel's view, the stacks and the objects are read one after the other while the
/// target runs. A thread that ran in between (its context-switch counts or its futex
/// changed) may have been seen waiting at one instant and holding at another, so it is
/// reported running, never blocked: a single snapshot of a healthy process never shows a
/// cycle that was not there. Reads that fail because memory changed under them are retried.
pub fn take(session: &mut Session) -> Result<Snapshot> {
    if let Some(frozen) = &session.target.frozen {
        // A core: one instant, read once; nothing moved while it was read.
        let kernel = frozen.kernel.clone();
        let mut snap = take_once(session, &kernel)?;
        known_from_registers(&mut snap);
        return Ok(snap);
    }
    let mut tries = 0;
    loop {
        let kernel_span = span(Phase::Kernel);
        let tids = session.task_files.task_ids();
        session.task_files.retain(&tids);
        session.target.namespace_tids.refresh(&tids);
        let mut kernel = HashMap::with_capacity(tids.len());
        for &tid in &tids {
            if let Some(k) = session.task_files.kernel_thread(tid) {
                kernel.insert(tid, k);
            }
        }
        drop(kernel_span);
        match take_once(session, &kernel) {
            Ok(mut snap) => {
                let _kernel = span(Phase::Kernel);
                settle_moved_threads(&mut snap, &kernel, &mut session.task_files);
                gil::settle_gil_holders(&mut snap, &kernel, &mut session.task_files);
                // A tree links these once over all its processes (`crossproc`).
                if !session.target.read.cross_process {
                    kernel_waits::link(&mut snap, &[session.pid]);
                }
                return Ok(snap);
            }
            Err(e) if tries < SNAPSHOT_RETRIES && is_torn_read(&e) && session.alive() => {
                tries += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// In a core, what a live snapshot knows from the futex syscall a thread sleeps in
/// (`/proc/PID/task/TID/syscall`) is known from its dumped registers (`NT_PRSTATUS`).
fn known_from_registers(snap: &mut Snapshot) {
    let relabel = |e: &mut Evidence| {
        if *e == Evidence::Futex {
            *e = Evidence::CoreRegisters;
        }
    };
    for t in &mut snap.threads {
        if let Some(w) = &mut t.waits_for {
            relabel(&mut w.evidence);
        }
    }
    for l in &mut snap.locks {
        l.waiters.iter_mut().for_each(|w| relabel(&mut w.evidence));
        l.holders.iter_mut().for_each(|h| relabel(&mut h.evidence));
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
    for t in snap
        .threads
        .iter_mut()
        .filter(|t| t.blocked && !gil::waits_for_gil(t))
    {
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
fn take_once(session: &mut Session, kernel: &HashMap<i32, KernelThread>) -> Result<Snapshot> {
    let pid = session.pid;
    let taken = SystemTime::now();
    let alive = session.target.frozen.is_some() || session.target.task_files.process_alive();
    if kernel.is_empty() || !alive {
        return Err(Error::TargetExited { pid });
    }
    let target = &mut session.target;
    target.settle_interpreter();
    // Before the page cache: a counter that moves during the sample marks a step boundary.
    session.asyncio.begin(&session.target.mem);
    session.mem.begin_snapshot();
    let result = take_cached(session, taken, kernel);
    session.mem.end_snapshot();
    result
}

fn take_cached(
    session: &mut Session,
    taken: SystemTime,
    kernel: &HashMap<i32, KernelThread>,
) -> Result<Snapshot> {
    let Session {
        target,
        code_cache,
        modules_index,
        pthread_tid_offset,
        probe,
        asyncio,
        threading_active,
        tests,
        names: name_cache,
        libc,
        binaries,
        wait_matches,
    } = session;
    let pid = target.pid;
    // Both looked up again while the loader may still be mapping libraries (`run`).
    let libc_of = |maps: &[procfs::Mapping]| {
        crate::native::Libc::from_mapped_paths(maps.iter().map(|m| m.path.as_str()))
    };
    let libc = libc
        .get_or_insert_with(|| match &target.frozen {
            Some(f) => FromMaps::settled(libc_of(&f.maps)),
            None => FromMaps::read_now(libc_of(&procfs::maps(pid))),
        })
        .get(
            |l| *l != crate::native::Libc::Unknown,
            || libc_of(&procfs::maps(pid)),
        );
    let runtime_region = target.runtime_region();
    let thread_list = span(Phase::ThreadList);
    let mut objs = Objects::new(&target.mem, &target.layout);
    objs.adopt_modules(std::mem::take(modules_index));
    let mut walker = Walker::new(objs);
    walker.adopt_cache(std::mem::take(code_cache));
    let frozen = target.frozen.as_ref().map(|f| f.asyncio_section.clone());
    let raw = walker.threads(target.interpreter).map_err(|e| {
        if frozen.is_some() || procfs::exists(pid) {
            e
        } else {
            Error::TargetExited { pid }
        }
    });
    let raw = match raw {
        Ok(mut r) => {
            if let Some(head) = target
                .interpreters_head
                .and_then(|h| walker.objs.mem.ptr(h).ok())
            {
                walker.add_subinterpreters(head, target.interpreter, &mut r);
            }
            r
        }
        Err(e) => {
            *code_cache = walker.take_cache();
            *modules_index = walker.objs.take_modules();
            return Err(e);
        }
    };
    // Thread states hold TIDs of the target's own PID namespace; `/proc` has gridlock's.
    let to_proc = target.namespace_tids.to_proc();
    let own_ids = native_ids(pthread_tid_offset, &walker, &raw, &to_proc);
    let namespace = Namespace {
        pid,
        other: target.other_pid_namespace || target.namespace_tids.nested,
        missing_nspid: target.namespace_tids.missing_nspid,
    };
    let names = thread_names(&walker, target.interpreter, threading_active);
    let gil_holder = gil_holder(&walker, target.gil_address);
    let own_gils = target
        .interpreters_head
        .and_then(|h| walker.objs.mem.ptr(h).ok())
        .map(|head| {
            crate::cpython::gils::own_gils(
                walker.objs.mem,
                &walker.objs.layout.offsets,
                head,
                target.interpreter,
                target.gil_address,
            )
        })
        .unwrap_or_default();
    let gils = gil::gil_views(target.gil_address, own_gils);
    let main_holder = (
        gil_holder,
        gil_holder.and_then(|t| {
            crate::cpython::gils::tstate_native_id(walker.objs.mem, &walker.objs.layout.offsets, t)
        }),
    );
    let probe_state: Option<ProbeState> = probe
        .module_dict(&walker.objs, target.interpreter)
        .and_then(|d| crate::probe::read(&walker.objs, d).ok());
    // Kept on the process (not the snapshot): a document names the test of the latest sample.
    target.process.current_test = current_test::read(&walker, target.interpreter, &raw, tests);
    drop(thread_list);
    let locks_span = span(Phase::Locks);

    let mut builder = Builder {
        pid,
        with_locals: target.read.locals,
        with_writes: target.read.writes,
        walker: &walker,
        locks: BTreeMap::new(),
        live_idents: raw.iter().map(|t| t.thread_id).collect(),
        mp: target.read.cross_process.then(MpView::default),
        task_files: &mut target.task_files,
        runtime_region,
        frozen: frozen.is_some(),
        libc,
        c_locks: BTreeMap::new(),
        wait_matches,
    };
    let mut threads = Vec::new();
    let mut held = Vec::new();
    for (i, rt) in raw.iter().enumerate() {
        let own = own_ids[i];
        let proc_tid = own.and_then(|o| to_proc.get(&o).copied());
        // Outside a namespace the two numberings are one: keep a TID that matched nothing.
        let native_id = proc_tid.or(own.filter(|_| !namespace.other));
        let k = proc_tid.and_then(|tid| kernel.get(&tid));
        held.push(gil::held_gil(&gils, main_holder, rt.tstate, rt.native_id));
        let info = ThreadInfo {
            name: names.get(&rt.thread_id).cloned(),
            owns_gil: held.last().copied().flatten().is_some(),
            namespace_tid: own.filter(|o| namespace.other && proc_tid != Some(*o)),
            unmatched: match k {
                Some(_) => None,
                None => Some(unmatched_reason(&namespace, own, proc_tid)),
            },
        };
        threads.push(builder.thread(rt, native_id, k, &info));
    }
    builder.wait_matches.end_snapshot();
    builder.resolve_owners(&mut threads);
    builder.resolve_c_lock_owners(&mut threads, &to_proc);
    builder.catch_gil_waiters(&mut threads, &gils, &held);
    builder.gil_lock(&mut threads, &gils, &held);
    if let Some(note) = native_locks::unread_libc_note(libc, &threads) {
        if !target.process.notes.contains(&note) {
            target.process.notes.push(note);
        }
    }
    drop(locks_span);
    let native_span = span(Phase::Native);
    let stop_running = target.read.native && frozen.is_none();
    let mem = walker.objs.mem;
    let frozen_target = target.frozen.as_ref();
    if let Some(note) = native_frames::attach(
        pid,
        frozen_target,
        &mut threads,
        kernel,
        mem,
        binaries,
        stop_running,
    ) {
        if !target.process.notes.contains(&note) {
            target.process.notes.push(note);
        }
    }
    drop(native_span);
    let locks_span = span(Phase::Locks);
    builder.find_checkouts(&raw, &mut threads);
    builder.find_queue_getters(&raw, &threads);
    if let Some(mp) = builder.mp.as_mut() {
        mp.semlocks = collect_semlocks(&walker, &raw);
        mp.joins = multiprocessing::child_joins(&walker, &raw, &threads);
    }
    let mp = builder.mp.take().unwrap_or_default();
    if let Some(p) = &probe_state {
        builder.apply_probe(&mut threads, &p.holds);
    }
    let mut locks: Vec<Lock> = builder.locks.into_values().collect();
    drop(locks_span);
    let futures_span = span(Phase::Futures);
    crate::frameworks::twisted::blocking_calls(&walker, pid, &raw, &mut threads, &mut locks);
    let view = crate::asyncio::read(
        &mut walker,
        asyncio,
        target.interpreter,
        pid,
        &raw,
        &threads,
        &mut || match &frozen {
            Some(section) => section.clone(),
            None => published_asyncio_section(pid),
        },
    );
    target.process.notes.extend(asyncio.take_notes());
    locks.extend(view.locks);
    let mut tasks = view.tasks;
    let mut loops = view.loops;
    let trio = crate::frameworks::trio::read(&mut walker, target.interpreter, pid, &raw, &threads);
    for note in trio.notes {
        if !target.process.notes.contains(&note) {
            target.process.notes.push(note);
        }
    }
    locks.extend(trio.locks);
    // Moved whole, not copied, where asyncio has no tasks (a trio run's are megabytes).
    if tasks.is_empty() {
        tasks = trio.tasks;
    } else {
        tasks.extend(trio.tasks);
    }
    loops.extend(trio.loops);
    let twisted = crate::frameworks::twisted::read(
        &mut walker,
        target.interpreter,
        pid,
        &raw,
        &mut threads,
        &mut locks,
    );
    for note in twisted.notes {
        if !target.process.notes.contains(&note) {
            target.process.notes.push(note);
        }
    }
    tasks.extend(twisted.tasks);
    loops.extend(twisted.loops);
    let (celery_tasks, delivered) =
        crate::frameworks::celery::read(&walker, target.interpreter, pid, &raw, &threads);
    tasks.extend(celery_tasks);
    target.process.celery = crate::frameworks::celery_app::read(&walker.objs, target.interpreter)
        .map(|app| CeleryApp { delivered, ..app });
    if let Some(note) = target
        .process
        .celery
        .as_ref()
        .and_then(crate::frameworks::celery_app::version_note)
    {
        if !target.process.notes.contains(&note) {
            target.process.notes.push(note);
        }
    }
    let pools = futures::resolve(
        &walker,
        pid,
        &raw,
        &mut threads,
        &mut tasks,
        &mut locks,
        &loops,
    );
    if let Some(note) = ready_queue::native_queue_note(&walker.objs, &threads, &locks, &loops) {
        if !target.process.notes.contains(&note) {
            target.process.notes.push(note);
        }
    }
    drop(futures_span);
    let names_span = span(Phase::Names);
    let note = names::name_locks(
        &walker,
        target.interpreter,
        &raw,
        &threads,
        &mut locks,
        &mut tasks,
        name_cache,
    );
    let noted = |n: &String| n.starts_with(names::NOTE_PREFIX);
    if let Some(note) = note.filter(|_| !target.process.notes.iter().any(noted)) {
        target.process.notes.push(note);
    }
    drop(names_span);
    let _thread_list = span(Phase::ThreadList);
    *code_cache = walker.take_cache();
    *modules_index = walker.objs.take_modules();
    let caught = match &target.frozen {
        Some(_) => crate::target::signals::caught_mask(pid),
        None => target.task_files.caught_signals(),
    };
    Ok(Snapshot {
        taken,
        pid,
        threads,
        locks,
        tasks,
        loops,
        processes: Vec::new(),
        mp,
        probe_loaded: probe_state.is_some(),
        probe_edges: probe_state.map(|p| p.edges).unwrap_or_default(),
        pools,
        signals: caught
            .map(|m| BTreeMap::from([(pid, m)]))
            .unwrap_or_default(),
        notes: BTreeMap::new(),
    })
}

/// The target's `.AsyncioDebug` section, from the binaries it maps that may hold it.
fn published_asyncio_section(pid: i32) -> crate::asyncio::SectionLookup {
    use crate::cpython::asyncio_debug::{may_hold_section, SECTION, SECTION_MAX};
    let maps = procfs::maps(pid);
    crate::target::elf::find_in_maps(pid, &maps, &may_hold_section, SECTION, SECTION_MAX)
        .map(|found| found.map(|s| (s.binary, s.bytes)))
        .map_err(|e| e.to_string())
}
