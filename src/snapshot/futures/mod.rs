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

use crate::snapshot::builder::*;

mod entry;
mod jobs;
mod remote;
mod waited;

use entry::{add_name, future_entry, short_callback};
use jobs::{running_and_queued, Completer, Job};
use remote::remote_jobs;
pub use remote::{PoolKind, PoolRun, PoolView, PoolWait};
use waited::{done_callback_cells, is_pending, waited_futures, FutureWait};

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

fn parse_hex(s: &str) -> Option<usize> {
    usize::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}
