//! Twisted's thread pools (`threads.deferToThread`, `reactor.getThreadPool()`, any
//! `twisted.python.threadpool.ThreadPool`), read from outside as `concurrent.futures` pools
//! are: each pool's workers (threads in `ThreadWorker`'s `work`, busy ones in `Team`'s
//! `doWork`), the work each runs and the work queued for them (`Team._pending`), and the
//! Deferred each work item fires when done (`deferToThreadPool`'s `onResult` closure). A
//! Deferred of running work is fired by its worker; one of queued work by any worker of its
//! pool (an OR-wait). A worker blocked in `blockingCallFromThread` whose result Deferred is
//! such a Deferred (its callbacks hold the call's `queue.put`) waits on it. Read-only; the
//! reactor's own thread is `blocking_calls`'s; nothing here guesses a firer.

use std::collections::{BTreeMap, HashMap};

use crate::cpython::objects::Objects;
use crate::cpython::threads::{RawFrame, RawThread, Walker};
use crate::model::{
    lock_id, short_file, Evidence, Holder, Lock, LockKind, Thread, Wait, WaitKind, Waiter,
};

/// Work items read at most from one pool's queue, and callbacks from one Deferred.
const MAX_QUEUED: usize = 4096;
const MAX_CALLBACKS: usize = 64;

/// Who fires a pool work item's Deferred.
#[derive(Debug, Clone)]
pub(super) enum Runner {
    /// The worker (thread index) running it now, and where its function is.
    Running(usize, Option<String>),
    /// Queued in a pool: any of its workers (thread indexes) will run it.
    Queued(Vec<usize>),
}

/// The work of a pool whose result a Deferred carries.
#[derive(Debug, Clone)]
pub(super) struct Work {
    /// The function the work runs (`render`), where known.
    pub what: Option<String>,
    pub runner: Runner,
}

/// Every Deferred fired by pool work, by the Deferred's address.
#[derive(Debug, Default)]
pub(super) struct Pools {
    pub work: HashMap<usize, Work>,
}

impl Pools {
    /// The `locks[]` entry of a Deferred fired by pool work (without waiters).
    pub(super) fn lock(&self, pid: i32, d: usize, threads: &[Thread]) -> Option<Lock> {
        let work = self.work.get(&d)?;
        let worker = |i: usize, site: Option<String>| Holder {
            thread: Some(threads[i].id.clone()),
            task: None,
            process: None,
            owner_ident: None,
            evidence: Evidence::ThreadPool,
            site,
            count: None,
            call_path: Vec::new(),
        };
        let what = work.what.as_deref().unwrap_or("work");
        let (holders, name) = match &work.runner {
            Runner::Running(w, site) => (
                vec![worker(*w, site.clone())],
                format!("Deferred: the result of {what} (deferToThread)"),
            ),
            Runner::Queued(ws) => (
                ws.iter().map(|w| worker(*w, None)).collect(),
                format!("Deferred: the result of {what} (deferToThread, queued)"),
            ),
        };
        Some(Lock {
            name: Some(name),
            ..Lock::pending_result(pid, d, LockKind::Deferred, holders)
        })
    }
}

fn in_file(f: &RawFrame, file: &str) -> bool {
    f.code.filename.ends_with(file)
}

fn method(f: &RawFrame) -> &str {
    f.code.name.rsplit('.').next().unwrap_or("")
}

/// A local's value, through its cell when it is one (a closure's free or cell variable).
fn deref_local(walker: &Walker, f: &RawFrame, name: &str) -> Option<usize> {
    let v = walker.local(f, name)?;
    super::held::through_cell(&walker.objs, v)
}

/// Read every pool of the process: the reactor's (`reactor.threadpool`) and any other whose
/// workers are running work. `deferred_ty` is `twisted.internet.defer.Deferred`.
pub(super) fn read(
    walker: &Walker,
    raw: &[RawThread],
    threads: &[Thread],
    reactor: Option<usize>,
    deferred_ty: usize,
) -> Pools {
    let objs = &walker.objs;
    let is_deferred = |o: usize| objs.type_of(o).ok() == Some(deferred_ty);
    // Each pool's `Team`, its busy workers, and the thread each worker queue feeds.
    let mut teams: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    if let Some(team) = reactor
        .and_then(|r| objs.attr(r, "threadpool").ok().flatten())
        .filter(|tp| !objs.is_none(*tp))
        .and_then(|tp| objs.attr(tp, "_team").ok().flatten())
    {
        teams.entry(team).or_default();
    }
    let mut fed_by: HashMap<usize, usize> = HashMap::new();
    let mut pools = Pools::default();
    for (i, rt) in raw.iter().enumerate() {
        for (j, f) in rt.frames.iter().enumerate() {
            if in_file(f, "twisted/_threads/_threadworker.py") && method(f) == "work" {
                if let Some(q) = deref_local(walker, f, "queue") {
                    fed_by.insert(q, i);
                }
            } else if in_file(f, "twisted/_threads/_team.py") && method(f) == "doWork" {
                let Some(team) = deref_local(walker, f, "self") else {
                    continue;
                };
                teams.entry(team).or_default().push(i);
                if let Some((d, what, site)) = running_work(walker, &threads[i], rt, j) {
                    if is_deferred(d) {
                        pools.work.insert(
                            d,
                            Work {
                                what,
                                runner: Runner::Running(i, site),
                            },
                        );
                    }
                }
            }
        }
    }
    for (team, busy) in teams {
        let mut workers = busy;
        let idle = objs
            .attr(team, "_idle")
            .ok()
            .flatten()
            .and_then(|s| objs.set_items(s).ok())
            .unwrap_or_default();
        for w in idle {
            if let Some(&i) = objs
                .attr(w, "_q")
                .ok()
                .flatten()
                .and_then(|q| fed_by.get(&q))
            {
                workers.push(i);
            }
        }
        workers.sort_unstable();
        workers.dedup();
        let pending = objs
            .attr(team, "_pending")
            .ok()
            .flatten()
            .and_then(|q| objs.deque_items(q).ok())
            .unwrap_or_default();
        for task in pending.into_iter().take(MAX_QUEUED) {
            let Some(d) = work_deferred(objs, task).filter(|d| is_deferred(*d)) else {
                continue;
            };
            pools.work.entry(d).or_insert_with(|| Work {
                what: work_function(objs, task),
                runner: Runner::Queued(workers.clone()),
            });
        }
    }
    pools
}

/// The Deferred a work item (`callInThreadWithCallback`'s `inContext`) fires when done: the
/// Deferred in its `onResult`'s closure (`deferToThreadPool`'s `d`).
fn work_deferred(objs: &Objects, in_context: usize) -> Option<usize> {
    let on_result = objs.attr(in_context, "onResult").ok()??;
    let values = objs.closure_values(on_result);
    // `d` and `reactor`: the caller checks which is a Deferred.
    values
        .iter()
        .copied()
        .find(|v| objs.type_name_rc(*v).is_ok_and(|t| &*t == "Deferred"))
}

/// The function a queued work item runs: `theWork`'s closure holds `func`.
fn work_function(objs: &Objects, in_context: usize) -> Option<String> {
    let the_work = objs.attr(in_context, "theWork").ok()??;
    objs.closure_values(the_work)
        .into_iter()
        .filter(|v| objs.type_is(*v, "function") || objs.type_is(*v, "method"))
        .find_map(|v| objs.callable(v))
        .map(|c| c.name)
}

/// The work a busy worker runs (its `doWork` frame at `j`): the Deferred its `inContext`
/// fires, the function it runs and where that function's frame is now.
fn running_work(
    walker: &Walker,
    th: &Thread,
    rt: &RawThread,
    j: usize,
) -> Option<(usize, Option<String>, Option<String>)> {
    let k = rt.frames[..j]
        .iter()
        .rposition(|f| in_file(f, "twisted/python/threadpool.py") && method(f) == "inContext")?;
    let in_context = deref_local(walker, &rt.frames[k], "inContext")?;
    let d = work_deferred(&walker.objs, in_context)?;
    // The submitted function's frame: the outermost one inside, outside Twisted.
    let inner = rt.frames[..k]
        .iter()
        .rposition(|f| !super::files::is_twisted_code(&f.code.filename));
    let what = inner.map(|x| rt.frames[x].code.name.clone());
    let site = inner.and_then(|x| th.frames.get(x)).map(|f| f.site());
    Some((d, what, site))
}

/// The pool Deferred a `blockingCallFromThread` waits on: the one whose callbacks hold the
/// bound `put` of the call's queue.
fn awaited_by_queue(objs: &Objects, pools: &Pools, queue: usize) -> Option<usize> {
    pools.work.keys().copied().find(|&d| {
        objs.attr(d, "_callbacks")
            .ok()
            .flatten()
            .or_else(|| objs.attr(d, "callbacks").ok().flatten())
            .and_then(|l| objs.list_items(l).ok())
            .unwrap_or_default()
            .into_iter()
            .take(MAX_CALLBACKS)
            .filter_map(|pair| objs.tuple_items(pair).ok()?.first().copied())
            .filter_map(|cb| objs.tuple_items(cb).ok()?.first().copied())
            .filter_map(|f| objs.callable(f))
            .any(|c| c.bound_to == Some(queue) && c.name.ends_with("put"))
    })
}

/// Threads (not the reactor's) blocked in `blockingCallFromThread` whose call returned a
/// pool work's Deferred: each waits on that Deferred (a `deferred` entry of `locks`).
pub(super) fn blocking_waits(
    walker: &Walker,
    pid: i32,
    raw: &[RawThread],
    threads: &mut [Thread],
    pools: &Pools,
    locks: &mut Vec<Lock>,
) {
    if pools.work.is_empty() {
        return;
    }
    let objs = &walker.objs;
    for i in 0..raw.len().min(threads.len()) {
        let rt = &raw[i];
        let Some(at) = rt.frames.iter().position(|f| {
            in_file(f, "twisted/internet/threads.py") && method(f) == "blockingCallFromThread"
        }) else {
            continue;
        };
        let th = &threads[i];
        let Some(old) = th.waits_for.clone().filter(|_| th.blocked) else {
            continue;
        };
        if old.via.as_deref() == Some("twisted.internet.threads.blockingCallFromThread") {
            continue;
        }
        let Some(d) = deref_local(walker, &rt.frames[at], "queue")
            .and_then(|q| awaited_by_queue(objs, pools, q))
        else {
            continue;
        };
        let id = lock_id(pid, d);
        let site = rt.frames.get(at + 1).map(|f| {
            let line = f.instr.and_then(|u| f.code.line_at(u)).unwrap_or(0);
            format!("{} {}:{line}", f.code.name, short_file(&f.code.filename))
        });
        if !locks.iter().any(|l| l.id == id) {
            locks.extend(pools.lock(pid, d, threads));
        }
        // The queue's condition is how the call waits, not what for: forget that wait.
        if let Some(cond) = old.target.as_deref() {
            if let Some(l) = locks.iter_mut().find(|l| l.id == cond) {
                l.waiters.retain(|w| w.thread != threads[i].id);
            }
            locks.retain(|l| l.id != cond || !l.waiters.is_empty() || !l.holders.is_empty());
        }
        let Some(lock) = locks.iter_mut().find(|l| l.id == id) else {
            continue;
        };
        lock.waiters.push(Waiter {
            thread: threads[i].id.clone(),
            evidence: Evidence::Deferred,
            site: site.clone(),
        });
        let name = lock.name.clone();
        threads[i].waits_for = Some(blocking_call_wait(old, id, Evidence::Deferred, site, name));
    }
}

/// A thread's wait in `blockingCallFromThread`, for the result `target` stands for: what the
/// thread was seen waiting on (`old`: its condition's futex, timeout, time waited) kept, the
/// site where known.
pub(super) fn blocking_call_wait(
    old: Wait,
    target: String,
    evidence: Evidence,
    site: Option<String>,
    name: Option<String>,
) -> Wait {
    Wait {
        kind: WaitKind::Future,
        target: Some(target),
        evidence,
        site: site.or(old.site),
        name,
        via: Some("twisted.internet.threads.blockingCallFromThread".into()),
        timed: old.timed,
        futex: old.futex,
        targets: Vec::new(),
        timeout_s: old.timeout_s,
        waited_s: old.waited_s,
    }
}
