//! One detector per finding kind (tokio-console's lint idea): each looks at a snapshot and
//! its wait-for graph and says what it sees. Persistence over a window is decided elsewhere.

use std::collections::BTreeSet;

use super::graph::{Node, WaitGraph};
use crate::model::*;
use crate::snapshot::Snapshot;

pub trait Detector {
    fn kind(&self) -> FindingKind;
    fn detect(&self, snap: &Snapshot, graph: &WaitGraph, so_far: &[Finding]) -> Vec<Finding>;
}

pub fn all() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(Deadlocks),
        Box::new(LoopSelfDeadlocks),
        Box::new(OrphanedLocks),
        Box::new(Stalls),
    ]
}

fn finding(kind: FindingKind, id: String, summary: String) -> Finding {
    Finding {
        id,
        kind,
        severity: kind.severity(),
        first_seen: String::new(),
        last_seen: String::new(),
        samples: 1,
        summary,
        threads: Vec::new(),
        tasks: Vec::new(),
        processes: Vec::new(),
        locks: Vec::new(),
        edges: Vec::new(),
        advice: None,
        duration: None,
        ongoing: None,
        loop_id: None,
        culprit: None,
        stack: Vec::new(),
        histogram: None,
        knot: false,
        location: None,
        locksets: Vec::new(),
    }
}

pub fn thread_label(snap: &Snapshot, id: &str) -> String {
    let label = thread_label_in_process(snap, id);
    match snap.thread(id) {
        Some(t) if snap.processes.len() > 1 => format!("{label} of process {}", t.pid),
        _ => label,
    }
}

fn process_label(snap: &Snapshot, pid: i32) -> String {
    match snap.processes.iter().find(|p| p.pid == pid) {
        Some(p) => format!("process {pid} ({})", short_cmd(p)),
        None => format!("process {pid}"),
    }
}

/// A short command: the script and its arguments rather than the interpreter's full path.
pub fn short_cmd(p: &Process) -> String {
    let cmd = if p.cmdline.is_empty() {
        &p.name
    } else {
        &p.cmdline
    };
    let words: Vec<&str> = cmd.split(' ').collect();
    let start = usize::from(words.len() > 1 && words[0].contains("python"));
    let s: Vec<String> = words[start..]
        .iter()
        .map(|w| short_file(w).to_string())
        .collect();
    let s = s.join(" ");
    if s.len() > 60 {
        format!("{}...", &s[..s.floor_char_boundary(57)])
    } else {
        s
    }
}

/// The pids a finding involves, from its thread and node ids (`PID:...`).
fn pids_of<'a>(ids: impl Iterator<Item = &'a String>) -> Vec<i32> {
    let mut v: Vec<i32> = ids
        .filter_map(|id| id.split(':').next()?.parse().ok())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn thread_label_in_process(snap: &Snapshot, id: &str) -> String {
    match snap.thread(id) {
        Some(t) => match &t.name {
            Some(n) => format!("\"{n}\""),
            None => format!(
                "thread {}",
                t.native_id
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| t.thread_id.to_string())
            ),
        },
        None => id.to_string(),
    }
}

pub fn lock_label(snap: &Snapshot, id: &str) -> String {
    match snap.lock(id) {
        Some(l) => match l.names.first() {
            Some(n) => n.name.clone(),
            None => format!("{} {}", l.kind, l.address),
        },
        None => id.to_string(),
    }
}

/// Cycles in the wait-for graph in which every wait has one possible waker.
pub struct Deadlocks;

impl Detector for Deadlocks {
    fn kind(&self) -> FindingKind {
        FindingKind::Deadlock
    }

    fn detect(&self, snap: &Snapshot, graph: &WaitGraph, _: &[Finding]) -> Vec<Finding> {
        let mut out = Vec::new();
        for scc in graph.stuck_sccs() {
            if graph.has_or(&scc) {
                out.push(knot(snap, graph, &scc));
            }
        }
        for cycle in graph.cycles(64) {
            let mut threads = Vec::new();
            let mut tasks = Vec::new();
            let mut locks = Vec::new();
            let mut edges = Vec::new();
            // Start the report at a thread or task.
            let start = cycle
                .iter()
                .position(|n| matches!(graph.graph[*n], Node::Thread(_) | Node::Task(_)))
                .unwrap_or(0);
            let ordered: Vec<_> = cycle[start..]
                .iter()
                .chain(&cycle[..start])
                .copied()
                .collect();
            let mut process_nodes = Vec::new();
            for (i, &n) in ordered.iter().enumerate() {
                match &graph.graph[n] {
                    Node::Thread(id) => threads.push(id.clone()),
                    Node::Lock(id) => locks.push(id.clone()),
                    Node::Task(id) => tasks.push(id.clone()),
                    Node::Process(id) => process_nodes.push(id.clone()),
                }
                let next = ordered[(i + 1) % ordered.len()];
                if let Some(e) = graph.edge(n, next) {
                    edges.push(e.clone());
                }
            }
            let mut key: Vec<String> = threads
                .iter()
                .chain(&tasks)
                .chain(&locks)
                .chain(&process_nodes)
                .cloned()
                .collect();
            key.sort();
            if !tasks.is_empty() {
                out.push(task_deadlock(snap, key, threads, tasks, locks, edges));
                continue;
            }
            let names: Vec<String> = threads.iter().map(|t| thread_label(snap, t)).collect();
            let pids = pids_of(threads.iter().chain(&process_nodes));
            let joins = edges.iter().any(|e| e.via == "joins");
            let summary = if threads.len() == 1 {
                format!(
                    "{} waits for {} that it holds itself",
                    names[0],
                    lock_label(snap, locks.first().map(String::as_str).unwrap_or("?"))
                )
            } else if pids.len() > 1 {
                format!(
                    "{} threads in {} processes wait for each other in a cycle: {}",
                    threads.len(),
                    pids.len(),
                    names.join(" -> ")
                )
            } else {
                format!(
                    "{} threads wait for each other in a cycle: {}",
                    threads.len(),
                    names.join(" -> ")
                )
            };
            let mut f = finding(
                FindingKind::Deadlock,
                format!("deadlock:{}", key.join(",")),
                summary,
            );
            let self_pipe =
                threads.len() == 1 && edges.iter().any(|e| e.evidence == Evidence::Pipe);
            if self_pipe {
                f.summary = format!(
                    "{} waits on {} whose other end only its own process holds, and no other thread of it can serve it",
                    names[0],
                    locks.first().map(String::as_str).unwrap_or("a pipe")
                );
            }
            f.advice = Some(if self_pipe {
                "Close the ends a process does not use (after fork, or in a socketpair it keeps both ends of), or read with a timeout.".into()
            } else if threads.len() == 1 {
                "The thread re-enters a non-reentrant Lock it already holds (a signal handler, callback or recursion): use an RLock, or do not take the lock there.".into()
            } else if pids.len() > 1 {
                cross_process_advice(&edges)
            } else if joins {
                "A thread joins another thread that waits for something the joiner holds: release it before joining.".into()
            } else {
                let order: Vec<String> = locks.iter().map(|l| lock_label(snap, l)).collect();
                format!("The threads take the same locks in different orders ({}): take them in one global order.", order.join(", "))
            });
            f.threads = threads;
            f.locks = locks;
            f.edges = edges
                .into_iter()
                .filter(|e| e.via != "has_thread")
                .collect();
            f.processes = if pids.is_empty() {
                vec![snap.pid]
            } else {
                pids
            };
            out.push(f);
        }
        out
    }
}

pub fn task_label(snap: &Snapshot, id: &str) -> String {
    match snap.task(id) {
        Some(t) => format!(
            "task \"{}\" ({})",
            t.name.as_deref().unwrap_or("?"),
            t.coroutine.as_deref().unwrap_or("?")
        ),
        None => id.to_string(),
    }
}

/// A cycle through asyncio tasks: awaits of each other, or `asyncio.Lock`s taken in
/// opposite orders. No task of the cycle can be resumed: only the others could wake it.
fn task_deadlock(
    snap: &Snapshot,
    key: Vec<String>,
    threads: Vec<String>,
    tasks: Vec<String>,
    locks: Vec<String>,
    edges: Vec<Edge>,
) -> Finding {
    let names: Vec<String> = tasks.iter().map(|t| task_label(snap, t)).collect();
    let summary = if tasks.len() == 1 && locks.is_empty() {
        format!("{} awaits itself", names[0])
    } else if tasks.len() == 1 {
        format!(
            "{} waits for asyncio.Lock {} that it holds itself",
            names[0],
            lock_label(snap, &locks[0])
        )
    } else {
        format!(
            "{} asyncio tasks wait for each other in a cycle: {}",
            tasks.len(),
            names.join(" -> ")
        )
    };
    let mut f = finding(
        FindingKind::Deadlock,
        format!("deadlock:{}", key.join(",")),
        summary,
    );
    f.advice = Some(if locks.is_empty() {
        "Each task awaits another task of the cycle, so none can finish: break the cycle (one of them must not await the other), or add a timeout with asyncio.wait_for.".into()
    } else {
        let order: Vec<String> = locks.iter().map(|l| lock_label(snap, l)).collect();
        format!("The tasks take the same asyncio.Locks in different orders ({}): take them in one global order.", order.join(", "))
    });
    f.threads = threads;
    f.tasks = tasks;
    f.locks = locks;
    f.edges = edges;
    f.processes = vec![snap.pid];
    f
}

/// A loop thread that, inside one of its own steps, blocks untimed on a
/// `concurrent.futures.Future` while work is queued on its loop: the future can only be
/// completed by that work (`run_coroutine_threadsafe(coro, own_loop).result()`), which the
/// blocked loop will never run.
pub struct LoopSelfDeadlocks;

impl Detector for LoopSelfDeadlocks {
    fn kind(&self) -> FindingKind {
        FindingKind::Deadlock
    }

    fn detect(&self, snap: &Snapshot, _: &WaitGraph, _: &[Finding]) -> Vec<Finding> {
        let mut out = Vec::new();
        for l in &snap.loops {
            let (Some(step), Some(tid)) = (&l.step, &l.thread) else {
                continue;
            };
            let Some(t) = snap.thread(tid) else { continue };
            let Some(w) = t.waits_for.as_ref().filter(|w| t.blocked && !w.timed) else {
                continue;
            };
            let Some(result) = step.frames.iter().find(|f| {
                f.file.ends_with("concurrent/futures/_base.py")
                    && f.function.rsplit('.').next() == Some("result")
            }) else {
                continue;
            };
            if l.ready.unwrap_or(0) == 0 {
                continue;
            }
            let caller = step
                .frames
                .iter()
                .find(|f| !f.file.contains("/concurrent/") && !f.file.ends_with("threading.py"));
            let mut f = finding(
                FindingKind::Deadlock,
                format!("deadlock:{}:{}", tid, l.id),
                format!(
                    "{} runs the event loop and blocks inside one of its steps on concurrent.futures.Future.result(){} while {} callback(s) wait on that loop: a future completed by its own loop (run_coroutine_threadsafe on the running loop) can never be set",
                    thread_label(snap, tid),
                    caller.map(|c| format!(" at {}", c.site())).unwrap_or_default(),
                    l.ready.unwrap_or(0)
                ),
            );
            f.advice = Some("Inside a coroutine, await the coroutine (or asyncio.wrap_future(fut)) instead of calling .result(); run_coroutine_threadsafe is for other threads.".into());
            f.threads = vec![tid.clone()];
            f.tasks = step.task.iter().cloned().collect();
            f.edges = vec![Edge {
                from: tid.clone(),
                to: l.id.clone(),
                via: "waits_for".into(),
                evidence: w.evidence,
                site: Some(result.site()),
                name: w.name.clone(),
            }];
            f.processes = vec![snap.pid];
            out.push(f);
        }
        out
    }
}

fn cross_process_advice(edges: &[Edge]) -> String {
    let ev: Vec<Evidence> = edges.iter().map(|e| e.evidence).collect();
    if ev.contains(&Evidence::Wait4) && ev.contains(&Evidence::Pipe) {
        "A process waits for a child to exit while the child waits for it to drain a pipe or queue: read everything the child sends (Queue.get, Connection.recv) before joining it.".into()
    } else if ev.contains(&Evidence::ShmFutex) {
        "Processes take the same multiprocessing locks in different orders, or wait for one while holding another: take them in one global order, and never block on another process while holding a lock it needs.".into()
    } else {
        "The processes wait for each other: break the cycle by draining pipes before joining, and by not holding a lock across a blocking send, recv or join.".into()
    }
}

/// OR-waits that deadlock: every party that could wake any member is itself a member.
fn knot(snap: &Snapshot, graph: &WaitGraph, scc: &[petgraph::graph::NodeIndex]) -> Finding {
    let mut threads = Vec::new();
    let mut locks = Vec::new();
    let mut nodes = Vec::new();
    for &n in scc {
        match &graph.graph[n] {
            Node::Thread(id) => threads.push(id.clone()),
            Node::Lock(id) => locks.push(id.clone()),
            Node::Process(id) | Node::Task(id) => nodes.push(id.clone()),
        }
    }
    threads.sort();
    locks.sort();
    let mut key: Vec<String> = threads
        .iter()
        .chain(&locks)
        .chain(&nodes)
        .cloned()
        .collect();
    key.sort();
    let members: std::collections::HashSet<_> = scc.iter().copied().collect();
    let mut edges: Vec<Edge> = Vec::new();
    // Threads in a stable order, each followed by the path of its wait.
    for &n in scc {
        if !matches!(graph.graph[n], Node::Thread(_)) {
            continue;
        }
        let mut at = n;
        let mut hops = 0;
        while hops < 2 {
            let next: Vec<_> = graph
                .graph
                .neighbors(at)
                .filter(|x| members.contains(x))
                .collect();
            for &m in &next {
                if let Some(e) = graph.edge(at, m) {
                    if e.via != "has_thread" && !edges.contains(e) {
                        edges.push(e.clone());
                    }
                }
            }
            match next.first() {
                Some(&m) if matches!(graph.graph[m], Node::Lock(_)) => at = m,
                _ => break,
            }
            hops += 1;
        }
    }
    let pids = pids_of(threads.iter().chain(&nodes));
    let procs: Vec<String> = pids.iter().map(|p| process_label(snap, *p)).collect();
    let names: Vec<String> = threads.iter().map(|t| thread_label(snap, t)).collect();
    let mut f = finding(
        FindingKind::Deadlock,
        format!("deadlock:{}", key.join(",")),
        format!(
            "{} threads in {} blocked in a knot of waits with several possible wakers, every one of which is itself blocked here: {}",
            threads.len(),
            procs.join(", "),
            names.join(", ")
        ),
    );
    f.advice = Some(cross_process_advice(&edges));
    f.knot = true;
    f.threads = threads;
    f.locks = locks;
    f.edges = edges;
    f.processes = pids;
    f
}

/// Locks whose owner, read from memory, is a thread that no longer exists.
pub struct OrphanedLocks;

impl Detector for OrphanedLocks {
    fn kind(&self) -> FindingKind {
        FindingKind::OrphanedLock
    }

    fn detect(&self, snap: &Snapshot, _: &WaitGraph, _: &[Finding]) -> Vec<Finding> {
        let mut out = Vec::new();
        for lock in &snap.locks {
            if lock
                .shared
                .as_ref()
                .map(|s| s.holder_exited)
                .unwrap_or(false)
            {
                let waiters: Vec<String> = lock
                    .waiters
                    .iter()
                    .map(|w| thread_label(snap, &w.thread))
                    .collect();
                let shared = lock.shared.as_ref().unwrap();
                let mut f = finding(
                    FindingKind::OrphanedLock,
                    format!("orphaned_lock:{}", lock.id),
                    format!(
                        "multiprocessing {} {} is taken (semaphore value 0) but no live process that maps it ({}) holds it: its holder exited{}",
                        lock.kind.trim_start_matches("mp_"),
                        lock_label(snap, &lock.id),
                        shared.processes.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "),
                        if waiters.is_empty() { String::new() } else { format!("; waiting for it: {}", waiters.join(", ")) }
                    ),
                );
                f.advice = Some("A process died (killed, os._exit, crash) while holding a multiprocessing lock; nothing will release it: release locks in finally blocks, avoid killing workers that hold them, and re-create the lock (and the pool) after a worker dies.".into());
                f.locks = vec![lock.id.clone()];
                f.threads = lock.waiters.iter().map(|w| w.thread.clone()).collect();
                f.edges = waiter_edges(lock).collect();
                f.processes = pids_of(f.threads.iter());
                out.push(f);
                continue;
            }
            for h in &lock.holders {
                let (None, Some(ident), Evidence::Memory) = (&h.thread, h.owner_ident, h.evidence)
                else {
                    continue;
                };
                let waiters: Vec<String> = lock
                    .waiters
                    .iter()
                    .map(|w| thread_label(snap, &w.thread))
                    .collect();
                let what = match &lock.module {
                    Some(m) => format!("the import lock of module {m}"),
                    None => format!("{} {}", lock.kind, lock_label(snap, &lock.id)),
                };
                let mut f = finding(
                    FindingKind::OrphanedLock,
                    format!("orphaned_lock:{}", lock.id),
                    format!(
                        "{what} is held by thread ident {ident}, which no longer exists{}",
                        if waiters.is_empty() {
                            String::new()
                        } else {
                            format!("; waiting for it: {}", waiters.join(", "))
                        }
                    ),
                );
                f.advice = Some("A thread exited (or the process forked) while holding the lock: release it in a finally block or a with statement; after fork, re-create locks in the child.".into());
                f.locks = vec![lock.id.clone()];
                f.threads = lock.waiters.iter().map(|w| w.thread.clone()).collect();
                f.edges = waiter_edges(lock)
                    .chain(std::iter::once(Edge {
                        from: lock.id.clone(),
                        to: format!("{}:t:{ident}", snap.pid),
                        via: "held_by".into(),
                        evidence: Evidence::Memory,
                        site: None,
                        name: None,
                    }))
                    .collect();
                f.processes = vec![snap.pid];
                out.push(f);
            }
        }
        out
    }
}

/// Every thread blocked with no cycle to blame.
pub struct Stalls;

impl Detector for Stalls {
    fn kind(&self) -> FindingKind {
        FindingKind::Stall
    }

    fn detect(&self, snap: &Snapshot, _: &WaitGraph, so_far: &[Finding]) -> Vec<Finding> {
        if snap.threads.is_empty() || !snap.threads.iter().all(|t| t.blocked) {
            return Vec::new();
        }
        if so_far.iter().any(|f| f.kind == FindingKind::Deadlock) {
            return Vec::new();
        }
        // A waited-for lock that is unlocked has just been released: its waiter is being woken.
        let waking = snap
            .threads
            .iter()
            .filter_map(|t| t.waits_for.as_ref())
            .any(|w| {
                w.kind == WaitKind::Lock
                    && w.target
                        .as_deref()
                        .and_then(|l| snap.lock(l))
                        .map(|l| l.locked == Some(false))
                        .unwrap_or(false)
            });
        if waking {
            return Vec::new();
        }
        let mut edges = Vec::new();
        let mut locks = BTreeSet::new();
        let mut parts = Vec::new();
        for t in &snap.threads {
            let Some(w) = &t.waits_for else { continue };
            let target = w.target.clone().unwrap_or_else(|| "unknown".into());
            let what = match (w.kind, &w.target) {
                (WaitKind::Notify, Some(l)) => format!("a notify on {}", lock_label(snap, l)),
                (WaitKind::Lock, Some(l)) => {
                    let holder = snap.lock(l).map(|lk| {
                        if lk.holders.iter().any(|h| h.evidence == Evidence::Unknown) {
                            " (holder unknown)".to_string()
                        } else {
                            String::new()
                        }
                    });
                    format!("{}{}", lock_label(snap, l), holder.unwrap_or_default())
                }
                (WaitKind::Join, Some(th)) => format!("{} to exit", thread_label(snap, th)),
                (WaitKind::ChildExit, Some(p)) => format!("{p} to exit"),
                (WaitKind::Pipe, Some(c)) => w.name.clone().unwrap_or_else(|| c.clone()),
                _ => "a futex no one accounts for".into(),
            };
            parts.push(format!("{} waits for {what}", thread_label(snap, &t.id)));
            if snap.lock(&target).is_some() {
                locks.insert(target.clone());
            }
            edges.push(Edge {
                from: t.id.clone(),
                to: target,
                via: "waits_for".into(),
                evidence: w.evidence,
                site: w.site.clone(),
                name: w.name.clone(),
            });
        }
        let mut f = finding(
            FindingKind::Stall,
            format!("stall:{}", snap.pid),
            format!(
                "all {} threads are blocked and none can wake another: {}",
                snap.threads.len(),
                parts.join("; ")
            ),
        );
        f.advice = Some("Nothing left running can release these waits: look for a notify or release that never happens (a missed notify, a lock whose owner exited, a pool with every worker waiting).".into());
        f.threads = snap.threads.iter().map(|t| t.id.clone()).collect();
        f.locks = locks.into_iter().collect();
        f.edges = edges;
        f.processes = if snap.processes.is_empty() {
            vec![snap.pid]
        } else {
            snap.processes.iter().map(|p| p.pid).collect()
        };
        vec![f]
    }
}

/// Each waiter of `lock` as a `waits_for` edge to it.
fn waiter_edges(lock: &Lock) -> impl Iterator<Item = Edge> + '_ {
    lock.waiters.iter().map(|w| Edge {
        from: w.thread.clone(),
        to: lock.id.clone(),
        via: "waits_for".into(),
        evidence: w.evidence,
        site: w.site.clone(),
        name: None,
    })
}
