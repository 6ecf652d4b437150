//! Twisted, read from outside: a thread that runs a reactor and, inside one of its calls,
//! waits in `threads.blockingCallFromThread` on that same reactor. The call waits for a
//! result only the reactor could produce, and the reactor's only thread is the one waiting:
//! its wait is turned into a wait on the reactor (a `future` completed by that thread), a
//! cycle the wait-for graph reports as a deadlock naming the reactor. Read-only; frames and
//! their locals only. Versions are data: `SUPPORTED` is what it was checked on.
//!
//! - `deferreds`: the `inlineCallbacks` generators waiting on Deferreds, as tasks;
//! - `files`: which files are Twisted's own code;
//! - `held`: where else a Deferred is held (frame locals, closure cells, attributes);
//! - `pool`: thread pools (`deferToThread`): workers, queued work, the Deferreds they fire;
//! - `reactor`: the reactor as an event loop (polling, or running which step).

use crate::cpython::threads::{RawThread, Walker};
use crate::model::{
    lock_id, short_file, EventLoop, Evidence, Holder, Lock, LockKind, Task, Thread, Waiter,
};

pub mod deferreds;
mod files;
mod held;
mod pool;
mod reactor;

/// The Twisted part of one snapshot: its reactors' Deferred waits as tasks (their Deferreds
/// go straight into the snapshot's `locks`).
#[derive(Debug, Default)]
pub struct TwistedView {
    pub tasks: Vec<Task>,
    /// The reactor as an event loop (kind: the reactor's class).
    pub loops: Vec<EventLoop>,
    pub notes: Vec<String>,
}

/// Read the process's Twisted state; empty when Twisted is not imported. Threads blocked in
/// `blockingCallFromThread` on a thread pool's work get that wait (`locks` gains its entry).
pub fn read(
    walker: &mut Walker,
    interp: usize,
    pid: i32,
    raw: &[RawThread],
    threads: &mut [Thread],
    locks: &mut Vec<Lock>,
) -> TwistedView {
    let Some(defer) = deferreds::defer_module(&walker.objs, interp) else {
        return TwistedView::default();
    };
    let run = raw
        .iter()
        .zip(threads.iter())
        .find_map(|(rt, th)| reactor_run(walker, rt).map(|(main, r)| (rt, th.clone(), main, r)));
    let reactor = run.as_ref().map(|r| r.3);
    let pools = match walker.objs.dict_get(defer, "Deferred").ok().flatten() {
        Some(ty) => pool::read(walker, raw, threads, reactor, ty),
        None => pool::Pools::default(),
    };
    let lp = crate::asyncio::loop_id(pid, reactor.unwrap_or(0));
    let d = deferreds::read(walker, interp, pid, &lp, reactor, &pools, raw, threads);
    locks.extend(d.locks);
    pool::blocking_waits(walker, pid, raw, threads, &pools, locks);
    let loops = run
        .map(|(rt, th, main, r)| reactor::event_loop(walker, pid, r, rt, &th, main, d.tasks.len()))
        .into_iter()
        .collect();
    let mut notes = d.notes;
    notes.extend(version_note(&walker.objs, interp));
    TwistedView {
        tasks: d.tasks,
        loops,
        notes,
    }
}

/// The index of a thread's frame running a reactor (`ReactorBase.mainLoop`, else `run`),
/// and the reactor (its `self`).
fn reactor_run(walker: &Walker, rt: &RawThread) -> Option<(usize, usize)> {
    rt.frames.iter().enumerate().rev().find_map(|(i, f)| {
        let runs = in_twisted(&f.code.filename, "base.py")
            && matches!(f.code.name.rsplit('.').next(), Some("run" | "mainLoop"));
        runs.then(|| walker.local(f, "self").map(|r| (i, r)))
            .flatten()
    })
}

/// The Twisted releases this was checked on.
pub const SUPPORTED: super::versions::Checked = super::versions::Checked {
    library: "Twisted",
    package: "twisted",
    majors: 24..=26,
    spelled: "24.x-26.x",
};

/// A note when the target's Twisted (`twisted.__version__`) is not a release of `SUPPORTED`,
/// or its version cannot be read: it is still read, as one of those.
fn version_note(objs: &crate::cpython::objects::Objects, interp: usize) -> Option<String> {
    let version = super::versions::read(objs, interp, SUPPORTED.package);
    super::versions::note(&SUPPORTED, version.as_deref())
}

fn in_twisted(filename: &str, file: &str) -> bool {
    filename.ends_with(&format!("twisted/internet/{file}"))
}

/// Threads blocked in `blockingCallFromThread` on the reactor they run: each one's wait
/// becomes a wait on the reactor, which it alone would run (a `future`-kind entry of
/// `locks` named after the reactor's class, held by the same thread).
pub fn blocking_calls(
    walker: &Walker,
    pid: i32,
    raw: &[RawThread],
    threads: &mut [Thread],
    locks: &mut Vec<Lock>,
) {
    for (rt, th) in raw.iter().zip(threads.iter_mut()) {
        let Some(i) = rt.frames.iter().position(|f| {
            in_twisted(&f.code.filename, "threads.py")
                && f.code.name.ends_with("blockingCallFromThread")
        }) else {
            continue;
        };
        let Some(reactor) = walker.local(&rt.frames[i], "reactor") else {
            continue;
        };
        // The same reactor's own code further out on this thread: it runs the reactor.
        let Some(runs) = rt.frames[i + 1..].iter().rev().find(|f| {
            f.code.filename.contains("twisted/internet/")
                && walker.local(f, "self") == Some(reactor)
        }) else {
            continue;
        };
        let Some(old) = th.waits_for.clone() else {
            continue;
        };
        let class = walker
            .objs
            .type_name(reactor)
            .unwrap_or_else(|_| "reactor".into());
        let id = lock_id(pid, reactor);
        let caller = rt.frames.get(i + 1).map(|f| {
            let line = f.instr.and_then(|u| f.code.line_at(u)).unwrap_or(0);
            format!("{} {}:{line}", f.code.name, short_file(&f.code.filename))
        });
        let run_site = {
            let line = runs.instr.and_then(|u| runs.code.line_at(u)).unwrap_or(0);
            format!(
                "{} {}:{line}",
                runs.code.name,
                short_file(&runs.code.filename)
            )
        };
        th.waits_for = Some(pool::blocking_call_wait(
            old,
            id.clone(),
            Evidence::Memory,
            caller.clone(),
            Some(format!("reactor {class}")),
        ));
        if locks.iter().any(|l| l.id == id) {
            continue;
        }
        locks.push(Lock {
            id,
            pid,
            address: format!("{reactor:#x}"),
            kind: LockKind::Reactor,
            name: Some(format!("reactor {class}")),
            names: Vec::new(),
            permits: None,
            locked: None,
            // The reactor runs on this thread only: only it could run the call.
            holders: vec![Holder {
                thread: Some(th.id.clone()),
                task: None,
                process: None,
                owner_ident: None,
                evidence: Evidence::Memory,
                site: Some(run_site),
                count: None,
                call_path: Vec::new(),
            }],
            waiters: vec![Waiter {
                thread: th.id.clone(),
                evidence: Evidence::Memory,
                site: caller,
            }],
            module: None,
            shared: None,
            contradictions: Vec::new(),
            python_type: None,
            readers: None,
        });
    }
}
