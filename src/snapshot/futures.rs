//! Who will complete the `concurrent.futures.Future` a thread or task waits on: the worker
//! thread whose `_WorkItem.run` frame holds it, every worker of the thread pool whose work
//! queue holds it, the asyncio task a `run_coroutine_threadsafe` chain copies it from, or the
//! loop thread whose ready queue holds the callback that will complete it (`ready_queue`;
//! that also gives a waited `threading.Event` its setter).
//! Each waited future becomes a `locks[]` entry of kind `future` whose holders are those
//! parties, and the wait a `future` wait on it. For pools whose workers are other processes
//! (`ProcessPoolExecutor` work ids, `multiprocessing.Pool` job ids) it only records what
//! this process knows (`PoolView`); `crossproc` matches them across the tree. It never
//! guesses: a future nobody is known to complete keeps no holder, so nothing through it is
//! claimed stuck.

use std::collections::{HashMap, HashSet};

use super::builder::*;

/// The asyncio chain's callbacks name both ends of `_chain_future`: a concurrent future's
/// done-callbacks hold, in their closure cells, the task it copies its result from
/// (`run_coroutine_threadsafe`) or the asyncio future it copies its result to
/// (`wrap_future`, `run_in_executor`).
const DONE_CALLBACKS: &str = "_done_callbacks";

/// A pool whose workers are other processes: its jobs are matched across the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// `concurrent.futures.ProcessPoolExecutor` (work ids).
    ProcessPool,
    /// `multiprocessing.Pool` (job ids).
    MpPool,
}

/// What this process knows of pools whose work runs in other processes.
#[derive(Debug, Clone, Default)]
pub struct PoolView {
    /// Waited futures (or `ApplyResult`s) whose work a child process runs.
    pub waits: Vec<PoolWait>,
    /// Work this process runs as a pool worker.
    pub runs: Vec<PoolRun>,
    /// Whether this process is a worker of such a pool.
    pub worker: Option<PoolKind>,
}

#[derive(Debug, Clone)]
pub struct PoolWait {
    /// The `locks[]` entry of kind `future`.
    pub future: String,
    pub kind: PoolKind,
    /// The work id (`_pending_work_items`) or job id (`ApplyResult._job`).
    pub id: i64,
}

#[derive(Debug, Clone)]
pub struct PoolRun {
    pub thread: String,
    pub kind: PoolKind,
    pub id: i64,
    /// Where the work is now, and the function it runs.
    pub site: Option<String>,
    pub what: Option<String>,
}

/// How a future will be completed.
#[derive(Debug, Clone)]
enum Completer {
    /// A worker thread runs its work item now (thread index, site inside the function).
    Running(usize, Option<String>),
    /// Queued in a thread pool: any of its workers (thread indexes) will run it.
    Queued(Vec<usize>),
    /// Copied from an asyncio task's result.
    Task(String),
    /// A callback queued on the loop of this thread (index) will complete it.
    Loop(usize),
    /// Copied from a task whose own step is queued on the loop of this thread (index): the
    /// loop's thread runs the task.
    TaskOnLoop(usize),
}

#[derive(Debug, Clone)]
struct Job {
    /// What it computes: the submitted function, or the task's coroutine.
    what: Option<String>,
    completer: Completer,
}

/// A wait on futures read from a waiting frame.
struct FutureWait {
    futures: Vec<usize>,
    /// Whether any one of them ends the wait (`as_completed`, `FIRST_COMPLETED`).
    any: bool,
    via: &'static str,
}

/// Whether the frame is in `concurrent/futures/<file>` (no allocation: every frame of every
/// thread is asked, every snapshot).
fn in_futures(f: &Frame, file: &str) -> bool {
    f.file
        .strip_suffix(file)
        .is_some_and(|dir| dir.ends_with("concurrent/futures/"))
}

/// `function`, or a method of that name (`Future.result` on 3.11+).
fn named(f: &Frame, function: &str) -> bool {
    f.function
        .strip_suffix(function)
        .is_some_and(|head| head.is_empty() || head.ends_with('.'))
}

/// Resolve every future wait of this snapshot's threads and tasks (after both were read).
pub(super) fn resolve(
    walker: &Walker,
    pid: i32,
    raw: &[RawThread],
    threads: &mut [Thread],
    tasks: &mut [Task],
    locks: &mut Vec<Lock>,
    loops: &[EventLoop],
) -> PoolView {
    let objs = &walker.objs;
    events_set_by_loops(objs, threads, loops, locks);
    let mut jobs = running_and_queued(walker, raw, threads);
    let mut pools = PoolView::default();
    let remote = remote_jobs(walker, raw, threads, &mut pools);
    let waits: Vec<(usize, FutureWait)> = threads
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            t.blocked
                && t.waits_for
                    .as_ref()
                    .is_some_and(|w| w.kind == WaitKind::Notify)
        })
        .filter_map(|(i, t)| Some((i, waited_futures(walker, &raw[i], &t.frames)?)))
        .collect();
    if jobs.is_empty() && waits.is_empty() {
        return pools;
    }

    // asyncio chains: a future copied from a task, a task awaiting a copy of a future.
    let task_at: HashMap<usize, usize> = tasks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Some((parse_hex(&t.address)?, i)))
        .collect();
    let awaiting: HashMap<usize, usize> = tasks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let w = t
                .waits_for
                .as_ref()
                .filter(|w| w.kind == TaskWaitKind::Future)?;
            Some((parse_hex(w.future.as_deref()?)?, i))
        })
        .collect();
    let mut known: Vec<usize> = jobs.keys().copied().collect();
    known.extend(waits.iter().flat_map(|(_, w)| w.futures.iter().copied()));
    known.sort_unstable();
    known.dedup();
    let mut task_waits: Vec<(usize, usize)> = Vec::new();
    let unknown: HashSet<usize> = known
        .iter()
        .copied()
        .filter(|f| !jobs.contains_key(f) && !remote.contains_key(f))
        .collect();
    for (fut, q) in super::ready_queue::completers(objs, threads, loops, &unknown) {
        // The loop's own thread waiting for a callback queued on its loop is the loop's
        // self-deadlock, which `loop_self` reports with the loop; no second cycle for it.
        let waited_by_loop_thread = waits
            .iter()
            .any(|(i, w)| *i == q.thread && w.futures.contains(&fut));
        if waited_by_loop_thread {
            continue;
        }
        jobs.insert(
            fut,
            Job {
                what: Some(short_callback(&q.callback)),
                completer: Completer::Loop(q.thread),
            },
        );
    }
    let mut copied_from: Vec<(usize, usize)> = Vec::new();
    for &fut in &known {
        for value in done_callback_cells(objs, fut) {
            if let Some(&ti) = task_at.get(&value) {
                jobs.entry(fut).or_insert_with(|| {
                    copied_from.push((fut, value));
                    Job {
                        what: tasks[ti].coroutine.clone(),
                        completer: Completer::Task(tasks[ti].id.clone()),
                    }
                });
            }
            if let Some(&ti) = awaiting.get(&value) {
                task_waits.push((ti, fut));
            }
        }
    }
    // A task whose step is queued on a loop runs only when that loop's thread gets to it.
    let sources: HashSet<usize> = copied_from.iter().map(|(_, t)| *t).collect();
    let steps = super::ready_queue::completers(objs, threads, loops, &sources);
    for (fut, task) in copied_from {
        let Some(q) = steps.get(&task) else { continue };
        let waited_by_loop_thread = waits
            .iter()
            .any(|(i, w)| *i == q.thread && w.futures.contains(&fut));
        if waited_by_loop_thread {
            continue;
        }
        let t = &tasks[task_at[&task]];
        let label = match (&t.name, &t.coroutine) {
            (Some(n), Some(c)) => format!("task {n:?} ({c})"),
            (Some(n), None) => format!("task {n:?}"),
            (None, _) => format!("task {}", t.address),
        };
        jobs.insert(
            fut,
            Job {
                what: Some(format!("{label} via {}", q.callback)),
                completer: Completer::TaskOnLoop(q.thread),
            },
        );
    }

    // A task awaiting a bare future (an asyncio one) that a handle queued on a loop completes
    // (`call_soon_threadsafe(fut.set_result, ..)`, `_chain_future`'s `_set_state` from
    // another loop): the loop's thread completes what the task awaits.
    let bare: HashSet<usize> = awaiting
        .keys()
        .copied()
        .filter(|f| !known.contains(f))
        .collect();
    let mut queued_for_tasks: Vec<(usize, usize)> = Vec::new();
    for (fut, q) in super::ready_queue::completers(objs, threads, loops, &bare) {
        queued_for_tasks.push((awaiting[&fut], fut));
        jobs.insert(
            fut,
            Job {
                what: Some(short_callback(&q.callback)),
                completer: Completer::Loop(q.thread),
            },
        );
    }

    let mut entries: BTreeMap<usize, Lock> = BTreeMap::new();
    for (i, fw) in waits {
        let pending: Vec<usize> = fw
            .futures
            .iter()
            .copied()
            .filter(|f| is_pending(objs, *f))
            .collect();
        let chosen: Vec<usize> = if fw.any {
            pending
        } else {
            // All must complete: one still pending is enough to name; prefer one whose
            // worker is itself blocked (the one a cycle would go through).
            let blocked = |f: &usize| match jobs.get(f).map(|j| &j.completer) {
                Some(Completer::Running(w, _)) => threads[*w].blocked,
                _ => false,
            };
            pending
                .iter()
                .find(|f| blocked(f))
                .or_else(|| pending.iter().find(|f| jobs.contains_key(f)))
                .or(pending.first())
                .into_iter()
                .copied()
                .collect()
        };
        if chosen.is_empty() {
            continue;
        }
        let t = &threads[i];
        let user = t.frames.iter().find(|f| {
            !f.file.contains("concurrent/futures/")
                && short_file(&f.file) != "threading.py"
                && !crate::probe::is_probe_file(&f.file)
        });
        let site = user.map(Frame::site);
        let old = t.waits_for.clone().unwrap();
        for &f in &chosen {
            if let Some(r) = remote.get(&f).filter(|_| !jobs.contains_key(&f)) {
                if !entries.contains_key(&f) {
                    pools.waits.push(PoolWait {
                        future: lock_id(pid, f),
                        kind: r.kind,
                        id: r.id,
                    });
                }
            }
            let what = remote.get(&f).map(|r| r.what.clone());
            let e = future_entry(pid, f, jobs.get(&f), threads, &mut entries);
            if let (Some(what), true) = (what, e.holders.is_empty()) {
                e.names[0].name = what;
            }
            if let Some(s) = &site {
                add_name(e, s);
            }
            e.waiters.push(Waiter {
                thread: t.id.clone(),
                evidence: Evidence::Future,
                site: site.clone(),
            });
        }
        let ids: Vec<String> = chosen.iter().map(|f| lock_id(pid, *f)).collect();
        let name = entries[&chosen[0]].names.first().map(|n| n.name.clone());
        // The condition inside the future is an implementation detail: forget that wait.
        if let Some(cond) = old.target.as_deref() {
            if let Some(l) = locks.iter_mut().find(|l| l.id == cond) {
                l.waiters.retain(|w| w.thread != t.id);
            }
            locks.retain(|l| l.id != cond || !l.waiters.is_empty() || !l.holders.is_empty());
        }
        threads[i].waits_for = Some(Wait {
            timeout_s: None,
            waited_s: None,
            kind: WaitKind::Future,
            target: ids.first().cloned(),
            targets: ids[1..].to_vec(),
            evidence: Evidence::Future,
            site,
            name: if fw.any && ids.len() > 1 {
                Some(format!("the first of {} futures", ids.len()))
            } else {
                name
            },
            via: Some(fw.via.into()),
            timed: old.timed,
            futex: old.futex,
        });
    }
    let task_waits = task_waits
        .into_iter()
        .map(|w| (w, Some("wrap_future")))
        // The task's own `await` stays its via.
        .chain(queued_for_tasks.into_iter().map(|w| (w, None)));
    for ((ti, fut), via) in task_waits {
        let task = &tasks[ti];
        let site = task.waits_for.as_ref().and_then(|w| w.site.clone());
        let e = future_entry(pid, fut, jobs.get(&fut), threads, &mut entries);
        // Awaited bare (not wrapping a concurrent one): the asyncio future itself.
        if via.is_none() {
            e.python_type = Some("asyncio.Future".into());
        }
        if let Some(s) = &site {
            add_name(e, s);
        }
        e.waiters.push(Waiter {
            thread: task.id.clone(),
            evidence: Evidence::Future,
            site,
        });
        let name = e.names.first().map(|n| n.name.clone());
        if let Some(w) = tasks[ti].waits_for.as_mut() {
            w.target = Some(lock_id(pid, fut));
            w.evidence = Evidence::Future;
            w.name = name;
            if let Some(via) = via {
                w.via = Some(via.into());
            }
        }
    }
    locks.extend(entries.into_values());
    pools
}

/// A waited `threading.Event` that a callback queued on a loop will set: its `locks[]` entry
/// (kind `event`, id of the event's address) gets the loop's thread as its one holder.
fn events_set_by_loops(
    objs: &Objects,
    threads: &[Thread],
    loops: &[EventLoop],
    locks: &mut [Lock],
) {
    let waited: HashSet<usize> = locks
        .iter()
        .filter(|l| l.kind == LockKind::Event && l.holders.is_empty() && !l.waiters.is_empty())
        .filter_map(|l| parse_hex(&l.address))
        .collect();
    let setters = super::ready_queue::completers(objs, threads, loops, &waited);
    for l in locks.iter_mut().filter(|l| l.kind == LockKind::Event) {
        let Some(q) = parse_hex(&l.address).and_then(|a| setters.get(&a)) else {
            continue;
        };
        // The loop's own thread waiting for it is the loop's self-deadlock (`loop_self`).
        let loop_thread = &threads[q.thread].id;
        if !l.holders.is_empty() || l.waiters.iter().any(|w| &w.thread == loop_thread) {
            continue;
        }
        l.holders.push(Holder {
            thread: Some(loop_thread.clone()),
            task: None,
            process: None,
            owner_ident: None,
            evidence: Evidence::ReadyQueue,
            site: None,
            count: None,
            call_path: Vec::new(),
        });
    }
}

/// How a queued callback is named in a future's name: the function that made a closure
/// (`run_coroutine_threadsafe` for its `callback`), with the closure's own name where it says
/// which copy it is (`_chain_future's _call_set_state`).
fn short_callback(callback: &str) -> String {
    match callback.split_once(".<locals>.") {
        Some((outer, "callback")) => outer.to_string(),
        Some((outer, inner)) => format!("{outer}'s {inner}"),
        None => callback.to_string(),
    }
}

fn parse_hex(s: &str) -> Option<usize> {
    usize::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

/// A future is still to be completed while its `_state` is `PENDING` or `RUNNING`; a
/// `multiprocessing.Pool` result while its `_event` is not set (an `imap` iterator has none).
fn is_pending(objs: &Objects, fut: usize) -> bool {
    if let Some(state) = objs.attr(fut, "_state").ok().flatten() {
        return objs
            .str(state)
            .is_ok_and(|s| s == "PENDING" || s == "RUNNING");
    }
    match objs.attr(fut, "_event").ok().flatten() {
        Some(ev) => objs
            .attr(ev, "_flag")
            .ok()
            .flatten()
            .is_some_and(|f| objs.type_is(f, "bool") && objs.int(f).is_ok_and(|v| v == 0)),
        None => true,
    }
}

/// Where the future is waited on, as a place its name is used (the entry is made unplaced).
fn add_name(lock: &mut Lock, site: &str) {
    let Some(name) = lock.names.first().map(|n| n.name.clone()) else {
        return;
    };
    if let Some(unplaced) = lock.names.iter_mut().find(|n| n.frame.is_empty()) {
        unplaced.frame = site.to_string();
        return;
    }
    let n = LockName {
        how: NameHow::Local,
        name,
        frame: site.to_string(),
    };
    if !lock.names.contains(&n) {
        lock.names.push(n);
    }
}

/// The `locks[]` entry of a waited future, made once: holders are whoever completes it.
fn future_entry<'e>(
    pid: i32,
    fut: usize,
    job: Option<&Job>,
    threads: &[Thread],
    entries: &'e mut BTreeMap<usize, Lock>,
) -> &'e mut Lock {
    entries.entry(fut).or_insert_with(|| {
        let holder = |thread: Option<String>, task: Option<String>, site: Option<String>| Holder {
            thread,
            task,
            process: None,
            owner_ident: None,
            evidence: Evidence::Future,
            site,
            count: None,
            call_path: Vec::new(),
        };
        let on_loop = |w: usize| Holder {
            evidence: Evidence::ReadyQueue,
            ..holder(Some(threads[w].id.clone()), None, None)
        };
        let (what, holders) = match job {
            Some(j) => {
                let holders = match &j.completer {
                    Completer::Running(w, site) => {
                        vec![holder(Some(threads[*w].id.clone()), None, site.clone())]
                    }
                    Completer::Queued(ws) => ws
                        .iter()
                        .map(|w| holder(Some(threads[*w].id.clone()), None, None))
                        .collect(),
                    Completer::Task(t) => vec![holder(None, Some(t.clone()), None)],
                    Completer::Loop(w) | Completer::TaskOnLoop(w) => vec![on_loop(*w)],
                };
                (j.what.clone(), holders)
            }
            None => (None, Vec::new()),
        };
        let queued = matches!(job.map(|j| &j.completer), Some(Completer::Queued(_)));
        let on_loop = matches!(job.map(|j| &j.completer), Some(Completer::Loop(_)));
        let name = match what {
            Some(w) if on_loop && w == "run_coroutine_threadsafe" => format!("the result of {w}"),
            Some(w) if on_loop => format!("a future set by {w}"),
            Some(w) if queued => format!("the result of {w} (queued)"),
            Some(w) => format!("the result of {w}"),
            None => "a future".to_string(),
        };
        Lock {
            names: vec![LockName {
                how: NameHow::Local,
                name,
                frame: String::new(),
            }],
            ..Lock::pending_result(pid, fut, LockKind::Future, holders)
        }
    })
}

/// Futures being run by a worker thread now, and futures queued in a thread pool.
fn running_and_queued(
    walker: &Walker,
    raw: &[RawThread],
    threads: &[Thread],
) -> HashMap<usize, Job> {
    let objs = &walker.objs;
    let mut jobs = HashMap::new();
    let mut pools: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, rt) in raw.iter().enumerate() {
        let frames = &threads[i].frames;
        for (j, rf) in rt.frames.iter().enumerate() {
            let Some(f) = frames.get(j) else { break };
            if !in_futures(f, "thread.py") {
                continue;
            }
            if named(f, "_worker") {
                if let Some(q) = walker.local(rf, "work_queue") {
                    pools.entry(q).or_default().push(i);
                }
                continue;
            }
            if !named(f, "run") {
                continue;
            }
            let Some(item) = walker
                .local(rf, "self")
                .filter(|s| objs.type_is(*s, "_WorkItem"))
            else {
                continue;
            };
            let Some(fut) = objs.attr(item, "future").ok().flatten() else {
                continue;
            };
            // The frame `run` called is the submitted function's, where it is now (3.14+ call
            // it through `WorkerContext.run`, in the same file).
            let inner = frames[..j]
                .iter()
                .rev()
                .find(|f| !f.file.ends_with("concurrent/futures/thread.py"));
            let what = work_item_function(objs, item).or_else(|| inner.map(|f| f.function.clone()));
            jobs.insert(
                fut,
                Job {
                    what,
                    completer: Completer::Running(i, inner.map(Frame::site)),
                },
            );
        }
    }
    for (queue, workers) in pools {
        for item in objs.simple_queue_items(queue).unwrap_or_default() {
            if !objs.type_is(item, "_WorkItem") {
                continue;
            }
            let Some(fut) = objs.attr(item, "future").ok().flatten() else {
                continue;
            };
            jobs.entry(fut).or_insert_with(|| Job {
                what: work_item_function(objs, item),
                completer: Completer::Queued(workers.clone()),
            });
        }
    }
    jobs
}

/// The function a `_WorkItem` runs: its `fn`, or (3.14+) the first of its `task` tuple
/// `(fn, args, kwargs)`.
fn work_item_function(objs: &Objects, item: usize) -> Option<String> {
    let f = match objs.attr(item, "fn").ok().flatten() {
        Some(f) => f,
        None => {
            let task = objs.attr(item, "task").ok().flatten()?;
            *objs.tuple_items(task).ok()?.first()?
        }
    };
    objs.function_qualname(f).ok()
}

/// The futures a blocked thread waits on, from the frame of `Future.result`,
/// `concurrent.futures.wait` or `as_completed` on its stack.
fn waited_futures(walker: &Walker, rt: &RawThread, frames: &[Frame]) -> Option<FutureWait> {
    let objs = &walker.objs;
    if let Some((j, f)) = frames
        .iter()
        .enumerate()
        .take(WAIT_SEARCH_FRAMES)
        .find(|(_, f)| {
            f.file.ends_with("multiprocessing/pool.py")
                && (named(f, "wait") || named(f, "get") || named(f, "next"))
        })
    {
        let result = walker.local(rt.frames.get(j)?, "self")?;
        objs.attr(result, "_job").ok()??;
        let via = if named(f, "next") {
            "IMapIterator.next"
        } else {
            "AsyncResult.get"
        };
        return Some(FutureWait {
            futures: vec![result],
            any: false,
            via,
        });
    }
    let (j, f) = frames
        .iter()
        .enumerate()
        .take(WAIT_SEARCH_FRAMES)
        .find(|(_, f)| {
            in_futures(f, "_base.py")
                && (named(f, "result") || named(f, "wait") || named(f, "as_completed"))
        })?;
    let rf = rt.frames.get(j)?;
    let set = |name: &str| -> Vec<usize> {
        walker
            .local(rf, name)
            .and_then(|s| objs.set_items(s).ok())
            .unwrap_or_default()
    };
    if named(f, "result") {
        let fut = walker.local(rf, "self")?;
        return Some(FutureWait {
            futures: vec![fut],
            any: false,
            via: "Future.result",
        });
    }
    if named(f, "as_completed") {
        return Some(FutureWait {
            futures: set("pending"),
            any: true,
            via: "as_completed",
        });
    }
    // `wait`: only ALL_COMPLETED needs every future; the others end on the first one.
    let return_when = walker
        .local(rf, "return_when")
        .and_then(|s| objs.str(s).ok());
    Some(FutureWait {
        futures: set("not_done"),
        any: return_when.as_deref() != Some("ALL_COMPLETED"),
        via: "concurrent.futures.wait",
    })
}

/// The objects held in the closure cells of a future's done-callbacks.
fn done_callback_cells(objs: &Objects, fut: usize) -> Vec<usize> {
    let Some(list) = objs.attr(fut, DONE_CALLBACKS).ok().flatten() else {
        return Vec::new();
    };
    objs.list_items(list)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|cb| objs.closure_values(cb))
        .collect()
}

/// A job of a process pool, as the submitting process knows it.
struct RemoteJob {
    kind: PoolKind,
    id: i64,
    /// The entry's name: the submitted function, or the job id.
    what: String,
}

/// Futures of this process's `ProcessPoolExecutor`s (the manager's `pending_work_items`,
/// work id -> `_WorkItem`) and `multiprocessing.Pool` results waited on here (`_job`); and,
/// in a pool worker, the work it runs now (`_process_worker`'s `call_item`, `worker`'s `job`).
fn remote_jobs(
    walker: &Walker,
    raw: &[RawThread],
    threads: &[Thread],
    pools: &mut PoolView,
) -> HashMap<usize, RemoteJob> {
    let objs = &walker.objs;
    let mut out = HashMap::new();
    for (i, rt) in raw.iter().enumerate() {
        let frames = &threads[i].frames;
        for (j, rf) in rt.frames.iter().enumerate() {
            let Some(f) = frames.get(j) else { break };
            let worker = if in_futures(f, "process.py") {
                let pending = walker.local(rf, "pending_work_items").or_else(|| {
                    let me = walker.local(rf, "self")?;
                    objs.attr(me, "pending_work_items").ok()?
                });
                for (id, item) in pending
                    .and_then(|d| objs.dict_entries(d).ok())
                    .unwrap_or_default()
                {
                    let (Ok(id), Some(fut)) =
                        (objs.int(id), objs.attr(item, "future").ok().flatten())
                    else {
                        continue;
                    };
                    let what = match work_item_function(objs, item) {
                        Some(w) => format!("the result of {w}"),
                        None => format!("the result of work item {id}"),
                    };
                    out.insert(
                        fut,
                        RemoteJob {
                            kind: PoolKind::ProcessPool,
                            id,
                            what,
                        },
                    );
                }
                named(f, "_process_worker").then(|| {
                    let id = walker
                        .local(rf, "call_item")
                        .and_then(|c| objs.attr(c, "work_id").ok()?)
                        .and_then(|w| objs.int(w).ok());
                    (PoolKind::ProcessPool, id)
                })
            } else if f.file.ends_with("multiprocessing/pool.py") && named(f, "worker") {
                let id = walker.local(rf, "job").and_then(|w| objs.int(w).ok());
                Some((PoolKind::MpPool, id))
            } else {
                None
            };
            let Some((kind, id)) = worker else { continue };
            pools.worker = Some(kind);
            // Running only while the frame it called is not the queue read of the next item.
            let inner = &frames[..j];
            let idle = inner.last().is_none_or(|c| {
                c.file.contains("/multiprocessing/")
                    && matches!(short_file(&c.file), "queues.py" | "connection.py")
            });
            if let (Some(id), false) = (id, idle) {
                let user = inner.iter().rev().find(|c| {
                    !c.file.contains("/multiprocessing/") && !c.file.contains("/concurrent/")
                });
                pools.runs.push(PoolRun {
                    thread: threads[i].id.clone(),
                    kind,
                    id,
                    site: user.or(inner.last()).map(Frame::site),
                    what: user.map(|c| c.function.clone()),
                });
            }
        }
    }
    // `multiprocessing.Pool` results: known only from the frames waiting on them.
    for (i, rt) in raw.iter().enumerate() {
        for (j, f) in threads[i]
            .frames
            .iter()
            .enumerate()
            .take(WAIT_SEARCH_FRAMES)
        {
            if !(f.file.ends_with("multiprocessing/pool.py")
                && (named(f, "wait") || named(f, "get") || named(f, "next")))
            {
                continue;
            }
            let Some(result) = rt.frames.get(j).and_then(|rf| walker.local(rf, "self")) else {
                continue;
            };
            let Some(id) = objs
                .attr(result, "_job")
                .ok()
                .flatten()
                .and_then(|v| objs.int(v).ok())
            else {
                continue;
            };
            out.insert(
                result,
                RemoteJob {
                    kind: PoolKind::MpPool,
                    id,
                    what: format!("the result of pool job {id}"),
                },
            );
        }
    }
    out
}
