//! Celery, read from outside: which task each prefork pool process runs (name and id, from
//! `fast_trace_task`'s locals), which results it waits for (the `AsyncResult`, `GroupResult`
//! or `ResultSet` in `get`/`join`), and which requests the worker's main process holds
//! (`celery.worker.state.reserved_requests` and `active_requests`). `link` then ties a
//! waited result to who can produce it across the worker's processes.
//!
//! It answers "what Celery work is in this process, and who completes a waited result"; it
//! knows no CPython version (objects are read through `cpython`) and decides no finding (the
//! wait-for graph does). Every id and name read here is data from the target.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::celery_routes::{consumers, queue_of};
use crate::cpython::objects::Objects;
use crate::cpython::threads::{RawThread, Walker};
use crate::model::*;

/// Where Celery's traced task call lives (the pool process runs it).
const TRACE_FILE: &str = "celery/app/trace.py";
/// Where `AsyncResult.get`, `ResultSet.join` and `GroupResult.get` live.
const RESULT_FILE: &str = "celery/result.py";
/// The Python type of a waited result's entry (`locks[].python_type`): one task's result,
/// whichever of `AsyncResult`, `GroupResult` or `ResultSet` the waiter holds it through.
const RESULT_TYPE: &str = "celery.result.AsyncResult";
/// The worker's own bookkeeping (`reserved_requests`, `active_requests`).
const STATE_MODULE: &str = "celery.worker.state";
/// Bounds against a hostile or torn target.
const MAX_REQUESTS: usize = 4096;
const MAX_RESULTS: usize = 1024;
const MAX_ID: usize = 200;
/// `PyWeakReference.wr_object`, after the object head, in every CPython 3.8+.
const WEAKREF_OBJECT: usize = 16;

/// A task id as the report spells it: `PID:celery:UUID`.
pub fn task_id(pid: i32, uuid: &str) -> String {
    format!("{pid}:celery:{uuid}")
}

/// The id of the pseudo-lock standing for a task's result (`celery:result:UUID`): one per
/// result system-wide, as Celery's task ids are.
pub fn result_id(uuid: &str) -> String {
    format!("celery:result:{uuid}")
}

/// The Celery task id in a report task id.
fn uuid_of(task: &str) -> Option<&str> {
    task.split_once(":celery:").map(|(_, u)| u)
}

/// One snapshot's Celery tasks of one process: the task each thread runs in a pool process
/// (with the results it waits for), and the requests a worker's main process holds.
/// Also returns the routing key each held request was delivered with (task id -> key).
pub fn read(
    walker: &Walker,
    interp: usize,
    pid: i32,
    raw: &[RawThread],
    threads: &[Thread],
) -> (Vec<Task>, BTreeMap<String, String>) {
    let objs = &walker.objs;
    let mut out = Vec::new();
    for (rt, t) in raw.iter().zip(threads) {
        if let Some(task) = running_task(walker, pid, rt, t) {
            out.push(task);
        }
    }
    let running: HashSet<String> = out.iter().map(|t| t.id.clone()).collect();
    let mut delivered = BTreeMap::new();
    if let Ok(Some(state)) = objs.sys_module_dict(interp, STATE_MODULE) {
        let active: HashSet<String> = weak_set(objs, state, "active_requests")
            .into_iter()
            .filter_map(|r| request_fields(objs, r).map(|(id, ..)| id))
            .collect();
        for r in weak_set(objs, state, "reserved_requests") {
            let Some((uuid, name, key)) = request_fields(objs, r) else {
                continue;
            };
            if let Some(key) = key {
                delivered.insert(uuid.clone(), key);
            }
            let id = task_id(pid, &uuid);
            if running.contains(&id) {
                continue;
            }
            let state = if active.contains(&uuid) {
                TaskState::Running
            } else {
                TaskState::Pending
            };
            out.push(task(pid, &uuid, name, state, Vec::new(), None));
        }
    }
    (out, delivered)
}

fn task(
    pid: i32,
    uuid: &str,
    name: Option<String>,
    state: TaskState,
    frames: Vec<Frame>,
    waits_for: Option<TaskWait>,
) -> Task {
    Task {
        id: task_id(pid, uuid),
        pid,
        loop_id: format!("{pid}:celery"),
        name,
        coroutine: None,
        state,
        frames,
        waits_for,
        address: String::new(),
        eager: false,
        holds: Vec::new(),
        framework: Framework::Celery,
        parent: None,
    }
}

/// The task a thread runs under `fast_trace_task` (or `trace_task_ret`), and what it waits
/// for in `celery/result.py`.
fn running_task(walker: &Walker, pid: i32, rt: &RawThread, t: &Thread) -> Option<Task> {
    let objs = &walker.objs;
    let trace = rt.frames.iter().find(|f| {
        f.code.filename.ends_with(TRACE_FILE)
            && matches!(bare(&f.code.name), "fast_trace_task" | "trace_task_ret")
    })?;
    let uuid = walker
        .local(trace, "uuid")
        .and_then(|o| short_str(objs, o))?;
    let name = ["task", "name"]
        .iter()
        .find_map(|n| walker.local(trace, n).and_then(|o| short_str(objs, o)));
    // The outermost call into the result API: the user's own wait.
    let at = rt.frames.iter().rposition(|f| {
        f.code.filename.ends_with(RESULT_FILE)
            && matches!(bare(&f.code.name), "get" | "join" | "join_native" | "wait")
    });
    let waits_for = at.and_then(|i| {
        let frame = &rt.frames[i];
        let this = walker.local(frame, "self")?;
        let kind = objs.type_name(this).ok()?;
        let waited = waited_results(objs, this);
        if waited.is_empty() {
            return None;
        }
        // `t.frames` mirrors `rt.frames`; the caller of the result API is the user's site.
        let site = t.frames.get(i + 1).map(|f| f.site());
        let names: Vec<String> = waited
            .iter()
            .map(|(id, name)| match name {
                Some(n) => format!("{n}[{id}]"),
                None => format!("[{id}]"),
            })
            .collect();
        let mut ids = waited.into_iter().map(|(id, _)| format!("celery:{id}"));
        let target = ids.next();
        Some(TaskWait {
            kind: if names.len() > 1 {
                TaskWaitKind::Gather
            } else {
                TaskWaitKind::Task
            },
            target,
            targets: ids.collect(),
            future: None,
            evidence: Evidence::Celery,
            site,
            name: Some(names.join(", ")),
            via: Some(format!("{kind}.{}", bare(&frame.code.name))),
            program_name: None,
        })
    });
    Some(task(
        pid,
        &uuid,
        name,
        TaskState::Running,
        t.frames.clone(),
        waits_for,
    ))
}

/// A function's own name: its qualified name's last part (3.11+ code carries the qualname).
fn bare(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// The (id, task name) of every result an `AsyncResult`, `GroupResult` or `ResultSet` stands
/// for (a group's members, one level down).
fn waited_results(objs: &Objects, result: usize) -> Vec<(String, Option<String>)> {
    let one = |r: usize| -> Option<(String, Option<String>)> {
        let id = objs.attr(r, "id").ok()?.and_then(|o| short_str(objs, o))?;
        let name = objs
            .attr(r, "name")
            .ok()
            .flatten()
            .and_then(|o| short_str(objs, o));
        Some((id, name))
    };
    if let Some(members) = objs.attr(result, "results").ok().flatten() {
        if let Ok(items) = objs.list_items(members) {
            return items
                .into_iter()
                .take(MAX_RESULTS)
                .filter_map(one)
                .collect();
        }
    }
    one(result).into_iter().collect()
}

/// The live referents of a module-level `weakref.WeakSet` (its `data`, a set of weakrefs).
pub(super) fn weak_set(objs: &Objects, module: usize, name: &str) -> Vec<usize> {
    let Some(set) = objs.dict_get(module, name).ok().flatten() else {
        return Vec::new();
    };
    let Some(data) = objs.attr(set, "data").ok().flatten() else {
        return Vec::new();
    };
    let Ok(refs) = objs.set_items(data) else {
        return Vec::new();
    };
    refs.into_iter()
        .take(MAX_REQUESTS)
        .filter_map(|r| {
            let o = objs.mem.ptr(r + WEAKREF_OBJECT).ok()?;
            (o != 0 && !objs.is_none(o)).then_some(o)
        })
        .collect()
}

/// A worker `Request`'s id, task name and the routing key it was delivered with
/// (`__slots__` members in Celery 5).
fn request_fields(
    objs: &Objects,
    request: usize,
) -> Option<(String, Option<String>, Option<String>)> {
    let slots: HashMap<String, usize> = objs.slot_attrs(request).into_iter().collect();
    let get = |n: &str| {
        slots
            .get(n)
            .copied()
            .or_else(|| objs.attr(request, n).ok().flatten())
    };
    let id = get("id").and_then(|o| short_str(objs, o))?;
    let key = get("_delivery_info")
        .filter(|d| objs.type_is(*d, "dict"))
        .and_then(|d| objs.dict_get(d, "routing_key").ok().flatten())
        .and_then(|o| short_str(objs, o));
    Some((id, get("name").and_then(|o| short_str(objs, o)), key))
}

/// A `str` of plausible id length.
pub(super) fn short_str(objs: &Objects, obj: usize) -> Option<String> {
    if !objs.type_is(obj, "str") {
        return None;
    }
    let s = objs.str(obj).ok()?;
    (!s.is_empty() && s.len() <= MAX_ID).then_some(s)
}

/// Whether a thread is a billiard pool process's worker loop (busy or idle).
fn is_pool_worker(t: &Thread) -> bool {
    t.frames
        .iter()
        .any(|f| f.function.ends_with("workloop") && f.file.ends_with("billiard/pool.py"))
}

/// A process's main thread: the one whose kernel id is the pid (the worker's consumer runs
/// there).
fn main_thread(threads: &[Thread], pid: i32) -> Option<String> {
    threads
        .iter()
        .find(|t| t.pid == pid && t.native_id == Some(pid))
        .map(|t| t.id.clone())
}

/// Whether a thread is the main process handing work to the pool (`Pool.apply_async`
/// blocked on `_putlock`: the worker consumes no message until a pool process is free).
fn hands_out_work(t: &Thread) -> bool {
    t.frames.iter().any(|f| f.function.ends_with("apply_async"))
        && t.frames
            .iter()
            .any(|f| f.function.ends_with("execute_using_pool"))
}

/// Tie the Celery waits of a process tree together (`--tree`): each pool thread waiting for
/// results waits on one result pseudo-lock per result, completed by
/// - the pool thread running that task, where one does;
/// - any pool process of the worker holding the request queued (an OR over the pool);
/// - the main thread of a worker that is blocked handing out work and so fetches no message,
///   for a result no process of the tree holds (still in the broker);
///
/// and the main process's `_putlock`, when every pool process runs a task, is a pool whose
/// permits those tasks' threads hold. Tasks' wait targets are resolved to the ids found.
pub fn link(
    processes: &[Process],
    threads: &mut [Thread],
    locks: &mut Vec<Lock>,
    tasks: &mut [Task],
) {
    let celery: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.framework == Framework::Celery)
        .collect();
    if celery.is_empty() {
        return;
    }
    let ppid: HashMap<i32, i32> = processes
        .iter()
        .filter_map(|p| Some((p.pid, p.ppid?)))
        .collect();
    // Each worker's pool: its children running billiard's work loop.
    let mut pools: HashMap<i32, Vec<i32>> = HashMap::new();
    for t in threads.iter().filter(|t| is_pool_worker(t)) {
        if let Some(&parent) = ppid.get(&t.pid) {
            let pool = pools.entry(parent).or_default();
            if !pool.contains(&t.pid) {
                pool.push(t.pid);
            }
        }
    }
    let mut worker_threads: HashMap<i32, String> = HashMap::new();
    for t in threads.iter().filter(|t| is_pool_worker(t)) {
        worker_threads.entry(t.pid).or_insert_with(|| t.id.clone());
    }
    let thread_of = |pid: i32| worker_threads.get(&pid).cloned();
    // Where each task id is: running in a pool thread, or queued at a worker.
    let task_names: HashMap<String, String> = celery
        .iter()
        .filter_map(|t| Some((uuid_of(&t.id)?.to_string(), t.name.clone()?)))
        .collect();
    let mut running: HashMap<String, (String, String)> = HashMap::new();
    let mut queued: HashMap<String, (i32, String)> = HashMap::new();
    for t in &celery {
        let Some(uuid) = uuid_of(&t.id) else { continue };
        match t.state {
            TaskState::Running if t.frames.is_empty() => {}
            TaskState::Running => {
                if let Some(th) = thread_of(t.pid) {
                    running.insert(uuid.to_string(), (th, t.id.clone()));
                }
            }
            TaskState::Pending => {
                queued.insert(uuid.to_string(), (t.pid, t.id.clone()));
            }
        }
    }
    let handing_out: HashMap<i32, String> = threads
        .iter()
        .filter(|t| pools.contains_key(&t.pid) && hands_out_work(t))
        .map(|t| (t.pid, t.id.clone()))
        .collect();
    let waits: Vec<(i32, TaskWait, String)> = celery
        .iter()
        .filter_map(|t| Some((t.pid, t.waits_for.clone()?, t.id.clone())))
        .collect();
    let mut resolved: HashMap<String, Option<String>> = HashMap::new();
    // A subtask still in the broker is named by the `AsyncResult` waited on (`name[id]`).
    let waited_names: HashMap<String, String> = waits
        .iter()
        .filter_map(|(_, w, _)| w.name.as_deref())
        .flat_map(|n| n.split(", "))
        .filter_map(|one| {
            let (name, rest) = one.split_once('[')?;
            Some((rest.strip_suffix(']')?.to_string(), name.to_string()))
        })
        .filter(|(_, name)| !name.is_empty())
        .collect();
    let name_of = |uuid: &str| {
        task_names
            .get(uuid)
            .or_else(|| waited_names.get(uuid))
            .map(String::as_str)
    };
    for (pid, w, _) in &waits {
        let Some(waiter) = thread_of(*pid) else {
            continue;
        };
        let worker = ppid.get(pid).copied();
        let mut targets = Vec::new();
        for target in w.target.iter().chain(&w.targets) {
            let Some(uuid) = target.strip_prefix("celery:") else {
                continue;
            };
            let lock = result_id(uuid);
            targets.push(lock.clone());
            if locks.iter().any(|l| l.id == lock) {
                continue;
            }
            let holder = |thread: Option<String>, process: Option<i32>| Holder {
                thread,
                task: None,
                process,
                owner_ident: None,
                evidence: Evidence::Celery,
                site: None,
                count: None,
                call_path: Vec::new(),
            };
            let (holders, whence, task) = if let Some((th, task)) = running.get(uuid) {
                (
                    vec![holder(Some(th.clone()), None)],
                    "running".to_string(),
                    Some(task.clone()),
                )
            } else if let Some((main, task)) = queued.get(uuid) {
                let pool = pools.get(main).cloned().unwrap_or_default();
                let queue = queue_of(processes, *pid, Some(*main), uuid, name_of(uuid))
                    .map(|q| format!(", {q}"))
                    .unwrap_or_default();
                (
                    pool.iter().map(|p| holder(None, Some(*p))).collect(),
                    format!("queued at worker pid {main}{queue}"),
                    Some(task.clone()),
                )
            } else {
                // Still in the broker: whoever consumes its queue may take it. In the tree
                // that is each consuming worker (its main thread where that is blocked
                // handing out work, else any of its pool processes).
                let queue = queue_of(processes, *pid, None, uuid, name_of(uuid));
                let workers: Vec<i32> = pools.keys().copied().collect();
                let takers = queue
                    .as_ref()
                    .map(|q| consumers(processes, &workers, &q.name))
                    .unwrap_or_default();
                let others: Vec<i32> = takers
                    .iter()
                    .copied()
                    .filter(|w| Some(*w) != worker)
                    .collect();
                let at = queue.map(|q| format!(", {q}")).unwrap_or_default();
                let own = worker.and_then(|w| handing_out.get(&w));
                let mut holders: Vec<Holder> = own
                    .iter()
                    .map(|main| holder(Some((*main).clone()), None))
                    .collect();
                // The waiter's own worker, consuming the queue and free to fetch: its main
                // thread will take the message.
                let own_free = own.is_none() && worker.is_some_and(|w| takers.contains(&w));
                if own_free {
                    if let Some(main) = worker.and_then(|w| main_thread(threads, w)) {
                        holders.push(holder(Some(main), None));
                    }
                }
                for w in &others {
                    match handing_out.get(w) {
                        Some(main) => holders.push(holder(Some(main.clone()), None)),
                        None => holders.extend(pools[w].iter().map(|p| holder(None, Some(*p)))),
                    }
                }
                let whence = match (own.is_some() || own_free, others.is_empty()) {
                    (true, true) if own_free => {
                        format!("in the broker{at}; its worker consumes that queue")
                    }
                    (true, true) => format!(
                        "in the broker{at}; its worker's main thread is blocked handing out work"
                    ),
                    (_, false) => format!(
                        "in the broker{at}; consumed in this tree by worker pid {}",
                        others
                            .iter()
                            .map(|w| w.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    (false, true) => format!("in the broker{at}; no worker of this tree takes it"),
                };
                (holders, whence, None)
            };
            resolved.insert(target.clone(), task);
            let label = match name_of(uuid) {
                Some(name) => format!("{name}[{uuid}]"),
                None => format!("[{uuid}]"),
            };
            locks.push(Lock {
                id: lock.clone(),
                pid: *pid,
                address: String::new(),
                kind: LockKind::Future,
                name: Some(format!("the result of {label} ({whence})")),
                names: vec![LockName {
                    how: NameHow::Local,
                    name: format!("the result of {label} ({whence})"),
                    frame: w.site.clone().unwrap_or_default(),
                }],
                permits: None,
                locked: None,
                holders,
                waiters: Vec::new(),
                module: None,
                shared: None,
                contradictions: Vec::new(),
                // Not a `concurrent.futures.Future`, which a `future` otherwise is.
                python_type: Some(RESULT_TYPE.into()),
                readers: None,
            });
        }
        let Some(first) = targets.first().cloned() else {
            continue;
        };
        if let Some(lock) = locks.iter_mut().find(|l| l.id == first) {
            lock.waiters.push(Waiter {
                thread: waiter.clone(),
                evidence: Evidence::Celery,
                site: w.site.clone(),
            });
        }
        if let Some(t) = threads.iter_mut().find(|t| t.id == waiter) {
            // Polling the backend (sleeping or reading a socket between polls) is one wait.
            t.blocked = true;
            t.waits_for = Some(Wait {
                kind: WaitKind::Future,
                target: Some(first),
                targets: targets[1..].to_vec(),
                evidence: Evidence::Celery,
                site: w.site.clone(),
                name: w.name.clone(),
                via: w.via.clone(),
                timed: false,
                futex: None,
                timeout_s: None,
                waited_s: None,
            });
        }
    }
    for t in tasks
        .iter_mut()
        .filter(|t| t.framework == Framework::Celery)
    {
        if let Some(w) = t.waits_for.as_mut() {
            // Name each waited result by its task's name where the tree holds that task.
            let named: Vec<String> = w
                .target
                .iter()
                .chain(&w.targets)
                .filter_map(|id| id.strip_prefix("celery:"))
                .map(|uuid| match name_of(uuid) {
                    Some(name) => format!("{name}[{uuid}]"),
                    None => format!("[{uuid}]"),
                })
                .collect();
            if !named.is_empty() {
                w.name = Some(named.join(", "));
            }
            let fix = |id: &mut String| {
                if let Some(Some(real)) = resolved.get(id.as_str()) {
                    *id = real.clone();
                }
            };
            if let Some(target) = w.target.as_mut() {
                fix(target);
            }
            w.targets.iter_mut().for_each(fix);
        }
    }
    putlock_permits(&pools, &running, &handing_out, threads, locks);
}

/// A main thread blocked on `Pool._putlock` while every pool process of its worker runs a
/// task: the semaphore is the pool, each permit held by a pool process's running task.
fn putlock_permits(
    pools: &HashMap<i32, Vec<i32>>,
    running: &HashMap<String, (String, String)>,
    handing_out: &HashMap<i32, String>,
    threads: &[Thread],
    locks: &mut [Lock],
) {
    for (main, thread) in handing_out {
        let Some(pool) = pools.get(main) else {
            continue;
        };
        let busy: Vec<&String> = running
            .values()
            .map(|(th, _)| th)
            .filter(|th| {
                threads
                    .iter()
                    .any(|t| &t.id == *th && pool.contains(&t.pid))
            })
            .collect();
        if busy.len() != pool.len() || pool.is_empty() {
            continue;
        }
        let Some(target) = threads
            .iter()
            .find(|t| &t.id == thread)
            .and_then(|t| t.waits_for.as_ref())
            .filter(|w| w.kind == WaitKind::Notify)
            .and_then(|w| w.target.clone())
        else {
            continue;
        };
        let Some(lock) = locks.iter_mut().find(|l| l.id == target) else {
            continue;
        };
        lock.kind = LockKind::Pool;
        lock.permits = Some(Permits {
            total: Some(pool.len() as u64),
            free: Some(0),
        });
        lock.holders = busy
            .into_iter()
            .map(|th| Holder {
                thread: Some(th.clone()),
                task: None,
                process: None,
                owner_ident: None,
                evidence: Evidence::Celery,
                site: None,
                count: Some(1),
                call_path: Vec::new(),
            })
            .collect();
    }
}
