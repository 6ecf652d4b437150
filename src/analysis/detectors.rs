//! One detector per finding kind (tokio-console's lint idea): each looks at a snapshot and
//! its wait-for graph and says what it sees. Persistence over a window is decided elsewhere.

use std::collections::BTreeSet;

use super::graph::{Node, WaitGraph};
pub use super::labels::thread_label;
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

pub(super) fn finding(kind: FindingKind, id: String, summary: String) -> Finding {
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

pub fn lock_label(snap: &Snapshot, id: &str) -> String {
    match snap.lock(id) {
        Some(l) => l
            .display_name(None)
            .or_else(|| super::below_python::below_python_label(l))
            .unwrap_or_else(|| format!("{} {}", l.kind, l.address)),
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
            if edges.iter().any(|e| e.via == EdgeVia::CompletedBy) {
                out.push(future_deadlock(snap, key, threads, tasks, locks, edges));
                continue;
            }
            if !tasks.is_empty() {
                out.push(task_deadlock(snap, key, threads, tasks, locks, edges));
                continue;
            }
            let names: Vec<String> = threads.iter().map(|t| thread_label(snap, t)).collect();
            let pids = pids_of(threads.iter().chain(&process_nodes));
            let joins = edges.iter().any(|e| e.via == EdgeVia::Joins);
            let summary = if threads.len() == 1 {
                format!(
                    "{} waits for {} that it holds itself",
                    names[0],
                    lock_label(snap, locks.first().map(String::as_str).unwrap_or("?"))
                )
            } else if pids.len() > 1 {
                let files = locks
                    .iter()
                    .filter_map(|l| snap.lock(l))
                    .any(|l| l.kind == LockKind::FileLock);
                format!(
                    "{} threads in {} processes wait for each other in a cycle: {}",
                    threads.len(),
                    pids.len(),
                    if files {
                        describe_waits(snap, &edges).join("; ")
                    } else {
                        names.join(" -> ")
                    }
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
            let self_pipe = threads.len() == 1 && edges.iter().any(|e| is_channel(e.evidence));
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
            } else if locks
                .iter()
                .any(|l| snap.lock(l).is_some_and(|l| l.kind == LockKind::Gil))
            {
                super::below_python::GIL_CYCLE_ADVICE.into()
            } else if joins {
                "A thread joins another thread that waits for something the joiner holds: release it before joining.".into()
            } else {
                super::order_advice::lock_cycle_advice(snap, &threads, &edges).unwrap_or_else(|| {
                    let order: Vec<String> = locks.iter().map(|l| lock_label(snap, l)).collect();
                    format!("The threads take the same locks in different orders ({}): take them in one global order.", order.join(", "))
                })
            });
            set_cycle(&mut f, snap, threads, Vec::new(), locks, edges, pids);
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
    // The framework the tasks share (trio's tasks and locks are not asyncio's).
    let trio = !tasks.is_empty()
        && tasks
            .iter()
            .all(|t| snap.task(t).is_some_and(|t| t.framework == Framework::Trio));
    let (fw, lock_type, timeout) = if trio {
        ("trio", "trio.Lock", "trio.move_on_after")
    } else {
        ("asyncio", "asyncio.Lock", "asyncio.wait_for")
    };
    let summary = if tasks.len() == 1 && locks.is_empty() {
        format!("{} awaits itself", names[0])
    } else if tasks.len() == 1 {
        format!(
            "{} waits for {lock_type} {} that it holds itself",
            names[0],
            lock_label(snap, &locks[0])
        )
    } else {
        format!(
            "{} {fw} tasks wait for each other in a cycle: {}",
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
        format!("Each task awaits another task of the cycle, so none can finish: break the cycle (one of them must not await the other), or add a timeout with {timeout}.")
    } else {
        let order: Vec<String> = locks.iter().map(|l| lock_label(snap, l)).collect();
        format!("The tasks take the same {lock_type}s in different orders ({}): take them in one global order.", order.join(", "))
    });
    f.threads = threads;
    f.tasks = tasks;
    f.locks = locks;
    f.edges = edges;
    f.processes = vec![snap.pid];
    f
}

/// A thread or task's label, whichever `id` names.
fn party(snap: &Snapshot, id: &str) -> String {
    if let Some(pid) = id.strip_suffix(":p").and_then(|p| p.parse().ok()) {
        process_label(snap, pid)
    } else if snap.task(id).is_some() {
        task_label(snap, id)
    } else {
        thread_label(snap, id)
    }
}

/// Each wait of a cycle in words, from the waiter to whoever can end it: "A waits for the
/// result of f running on B", "B waits for lock_a, held by A", "C joins D".
pub fn describe_waits(snap: &Snapshot, edges: &[Edge]) -> Vec<String> {
    let mut parts = Vec::new();
    for (i, e) in edges.iter().enumerate() {
        let next = edges.get(i + 1).filter(|n| n.from == e.to);
        let from = party(snap, &e.from);
        let part = match e.via {
            EdgeVia::WaitsFor
                if next.is_some_and(|n| {
                    n.via == EdgeVia::CompletedBy && n.evidence == Evidence::ReadyQueue
                }) =>
            {
                let event = snap.lock(&e.to).is_some_and(|l| l.kind == LockKind::Event);
                format!(
                    "{from} waits for {}, {} on the event loop of {}",
                    lock_label(snap, &e.to),
                    if event {
                        "set by a callback queued"
                    } else {
                        "queued"
                    },
                    party(snap, &next.unwrap().to)
                )
            }
            EdgeVia::WaitsFor if snap.lock(&e.to).is_some_and(|l| l.kind == LockKind::Future) => {
                let what = lock_label(snap, &e.to);
                match next.filter(|n| n.via == EdgeVia::CompletedBy) {
                    Some(n) if n.site.is_some() || snap.task(&n.to).is_some() => format!(
                        "{from} waits for {what} {} {}",
                        if snap.task(&n.to).is_some() {
                            "computed by"
                        } else {
                            "running on"
                        },
                        party(snap, &n.to)
                    ),
                    Some(_) => {
                        let workers: Vec<String> = edges[i + 1..]
                            .iter()
                            .take_while(|n| n.via == EdgeVia::CompletedBy && n.from == e.to)
                            .map(|n| party(snap, &n.to))
                            .collect();
                        let any = if workers.len() > 1 { "any of " } else { "" };
                        format!(
                            "{from} waits for {what}, queued for {any}{}",
                            workers.join(", ")
                        )
                    }
                    None => format!("{from} waits for {what}"),
                }
            }
            EdgeVia::WaitsFor => match next.filter(|n| n.via == EdgeVia::HeldBy) {
                Some(n) => format!(
                    "{from} waits for {}, held by {}",
                    lock_label(snap, &e.to),
                    party(snap, &n.to)
                ),
                None => format!("{from} waits for {}", lock_label(snap, &e.to)),
            },
            EdgeVia::Joins => format!("{from} joins {}", party(snap, &e.to)),
            EdgeVia::Awaits => format!("{from} awaits {}", party(snap, &e.to)),
            EdgeVia::WaitsForExit => format!("{from} waits for {} to exit", e.to),
            _ => continue,
        };
        parts.push(part);
    }
    parts
}

/// A cycle through a future: a waiter holds what the work behind the future needs, or the
/// work waits for the waiter in turn.
fn future_deadlock(
    snap: &Snapshot,
    key: Vec<String>,
    threads: Vec<String>,
    tasks: Vec<String>,
    locks: Vec<String>,
    edges: Vec<Edge>,
) -> Finding {
    let parties = threads.len() + tasks.len();
    let pids = pids_of(threads.iter().chain(&tasks));
    // A trio memory channel stands where a future would: its senders complete it.
    let channel = locks
        .iter()
        .any(|l| snap.lock(l).is_some_and(|l| l.kind == LockKind::Channel));
    let trio = !tasks.is_empty()
        && tasks
            .iter()
            .all(|t| snap.task(t).is_some_and(|t| t.framework == Framework::Trio));
    let mut f = finding(
        FindingKind::Deadlock,
        format!("deadlock:{}", key.join(",")),
        format!(
            "{parties} {} wait for each other in a cycle through a {}: {}",
            match (threads.is_empty(), tasks.is_empty()) {
                (false, true) => "threads",
                (true, false) if trio => "trio tasks",
                (true, false) => "asyncio tasks",
                _ => "threads and tasks",
            },
            if channel { "memory channel" } else { "future" },
            describe_waits(snap, &edges).join("; ")
        ),
    );
    let on_loop = f.edges.iter().any(|e| e.evidence == Evidence::ReadyQueue);
    f.advice = Some(if channel {
        "A channel's other side is held only by tasks that wait for the waiter (or for what it holds): release what the other side needs before waiting on the channel, or give the channel to a task that does not wait.".into()
    } else if on_loop {
        "Only the event loop's thread can run the callback that completes this wait, and that thread is blocked: never join, lock or wait for a thread from inside a loop step while that thread waits for the loop (await asyncio.to_thread(...) or loop.run_in_executor instead of a blocking join or lock).".into()
    } else {
        "A future's work needs something its waiter holds or is blocked on (a lock, or the waiter itself): release it before waiting on the future, and never block on a future from inside the work that must complete it.".into()
    });
    set_cycle(&mut f, snap, threads, tasks, locks, edges, pids);
    f
}

/// A cycle's parties, in cycle order, and its edges (a process acting through its threads
/// is implied, not listed); the snapshot's own process when no other is named.
fn set_cycle(
    f: &mut Finding,
    snap: &Snapshot,
    threads: Vec<String>,
    tasks: Vec<String>,
    locks: Vec<String>,
    edges: Vec<Edge>,
    pids: Vec<i32>,
) {
    f.threads = threads;
    f.tasks = tasks;
    f.locks = locks;
    f.edges = edges
        .into_iter()
        .filter(|e| e.via != EdgeVia::HasThread)
        .collect();
    f.processes = if pids.is_empty() {
        vec![snap.pid]
    } else {
        pids
    };
}

/// Who holds a lock (or completes a future), as far as known: threads, tasks, processes.
/// An edge (`held_by`, or `completed_by` for a future) from the lock to each holder that is a
/// thread, task or process, with how it is known, where it was taken and the name the
/// holder's code gives it.
fn holder_edges<'a>(
    snap: &'a Snapshot,
    lock: &'a Lock,
    via: EdgeVia,
) -> impl Iterator<Item = Edge> + 'a {
    lock.holders.iter().filter_map(move |h| {
        let to = match (&h.thread, &h.task, h.process) {
            (Some(id), _, _) | (None, Some(id), _) => id.clone(),
            (None, None, Some(p)) => format!("{p}:p"),
            _ => return None,
        };
        let name = snap
            .thread(&to)
            .and_then(|t| t.holds.iter().find(|x| x.lock == lock.id))
            .and_then(|x| x.name.clone());
        Some(Edge {
            from: lock.id.clone(),
            to,
            via,
            evidence: h.evidence,
            site: h.site.clone(),
            name,
        })
    })
}

fn holder_labels(snap: &Snapshot, lock: &Lock) -> Vec<String> {
    lock.holders
        .iter()
        .filter_map(|h| match (&h.thread, &h.task, h.process) {
            (Some(id), _, _) | (None, Some(id), _) => Some(party(snap, id)),
            (None, None, _) if h.evidence == Evidence::PthreadOwner => {
                super::below_python::c_owner_label(h)
            }
            (None, None, Some(p)) => Some(outside_process_label(snap, lock, p)),
            _ => None,
        })
        .collect()
}

/// A holding process; one outside the snapshot by the command the lock recorded for it.
fn outside_process_label(snap: &Snapshot, lock: &Lock, pid: i32) -> String {
    let command = lock.shared.as_ref().and_then(|s| s.commands.get(&pid));
    match command {
        Some(c) if !snap.processes.iter().any(|p| p.pid == pid) && pid != snap.pid => {
            format!("process {pid} ({c}), outside the watched processes")
        }
        _ => process_label(snap, pid),
    }
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
                via: EdgeVia::WaitsFor,
                // Known from the futex the thread sleeps on (its wait may have been resolved
                // further, to the future and who completes it); in a core, from its registers.
                evidence: if w.evidence == Evidence::CoreRegisters {
                    Evidence::CoreRegisters
                } else {
                    Evidence::Futex
                },
                site: Some(result.site()),
                name: w.name.clone(),
            }];
            f.processes = vec![snap.pid];
            out.push(f);
        }
        out
    }
}

/// A wait on a pipe's or socket's other end (`pipe`, `sock_diag`).
fn is_channel(e: Evidence) -> bool {
    matches!(e, Evidence::Pipe | Evidence::SockDiag)
}

fn cross_process_advice(edges: &[Edge]) -> String {
    let ev: Vec<Evidence> = edges.iter().map(|e| e.evidence).collect();
    let connects = edges.iter().any(|e| {
        e.evidence == Evidence::SockDiag
            && e.name
                .as_deref()
                .is_some_and(|n| n.starts_with("connect to "))
    });
    if connects {
        "A process waits to connect to a listener whose process does not accept (it waits for the connecting side instead): accept from a thread of its own, or connect with a timeout.".into()
    } else if ev.contains(&Evidence::Wait4) && ev.iter().any(|e| is_channel(*e)) {
        "A process waits for a child to exit while the child waits for it to drain a pipe or queue: read everything the child sends (Queue.get, Connection.recv) before joining it.".into()
    } else if ev.contains(&Evidence::ProcLocks) {
        "Processes take the same lock files in different orders, or wait for one while holding another: take them in one global order (sorted by path), or take the later ones without blocking (LOCK_NB, F_SETLK) and back off.".into()
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
                    if e.via != EdgeVia::HasThread && !edges.contains(e) {
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
    let starved = locks
        .iter()
        .filter_map(|l| snap.lock(l))
        .any(|l| l.kind == LockKind::Future && l.holders.len() > 1);
    if starved {
        let mut f = finding(
            FindingKind::Deadlock,
            format!("deadlock:{}", key.join(",")),
            format!(
                "pool starvation: every worker of a thread pool waits for work queued in that same pool, which no worker is left to run: {}",
                describe_waits(snap, &edges).join("; ")
            ),
        );
        f.advice = Some("Work running in a pool blocks on other work submitted to the same pool: with every worker waiting, the queued work never starts. Do not wait on a pool's futures from inside its workers (chain with add_done_callback, or use a separate pool), or give the pool more workers than nested waits.".into());
        f.knot = true;
        f.threads = threads;
        f.locks = locks;
        f.edges = edges;
        f.processes = pids_of(f.threads.iter().chain(&nodes));
        return f;
    }
    if let Some(summary) = super::permits::knot_summary(snap, &locks, thread_label, lock_label) {
        let mut f = finding(
            FindingKind::Deadlock,
            format!("deadlock:{}", key.join(",")),
            summary,
        );
        f.advice = Some(super::permits::KNOT_ADVICE.into());
        f.knot = true;
        f.threads = threads;
        f.locks = locks;
        f.edges = edges;
        f.processes = pids;
        return f;
    }
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
                        lock.kind.as_str().trim_start_matches("mp_"),
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
                        via: EdgeVia::HeldBy,
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
        if so_far.iter().any(|f| f.kind == FindingKind::Deadlock) || super::idle::any_idle(snap) {
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
                (WaitKind::Notify, Some(l)) => format!(
                    "a notify on {}{}",
                    lock_label(snap, l),
                    super::permits::held_note(snap, l, thread_label)
                ),
                (WaitKind::Lock, Some(l)) => {
                    let holder = snap.lock(l).map(|lk| {
                        if lk.holders.iter().any(|h| h.evidence == Evidence::Unknown) {
                            " (holder unknown)".to_string()
                        } else {
                            let by = holder_labels(snap, lk);
                            if by.is_empty() {
                                String::new()
                            } else {
                                format!(", held by {}", by.join(" and "))
                            }
                        }
                    });
                    format!("{}{}", lock_label(snap, l), holder.unwrap_or_default())
                }
                (WaitKind::Future, Some(fut)) => {
                    let by = snap
                        .lock(fut)
                        .map(|l| holder_labels(snap, l))
                        .unwrap_or_default();
                    match by.len() {
                        0 => lock_label(snap, fut),
                        1 => format!("{} running on {}", lock_label(snap, fut), by[0]),
                        _ => format!("{} (any of {})", lock_label(snap, fut), by.join(", ")),
                    }
                }
                (WaitKind::Join, Some(th))
                    if w.via.as_deref().is_some_and(|v| v.ends_with("_shutdown")) =>
                {
                    format!(
                        "the non-daemon thread {} to exit (joined at interpreter exit by threading._shutdown)",
                        thread_label(snap, th)
                    )
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
                to: target.clone(),
                via: if w.kind == WaitKind::Join {
                    EdgeVia::Joins
                } else {
                    EdgeVia::WaitsFor
                },
                evidence: w.evidence,
                site: w.site.clone(),
                name: w.name.clone(),
            });
            // Every holder the summary names is an edge too, so the JSON says who holds (or,
            // for a future, who will complete it, as a deadlock says).
            let via = match w.kind {
                WaitKind::Lock => Some(EdgeVia::HeldBy),
                WaitKind::Future => Some(EdgeVia::CompletedBy),
                _ => None,
            };
            if let (Some(via), Some(lock)) = (via, snap.lock(&target)) {
                edges.extend(holder_edges(snap, lock, via));
            }
        }
        let mut f = finding(
            FindingKind::Stall,
            format!("stall:{}", snap.pid),
            if snap.threads.len() == 1 {
                format!(
                    "the only thread is blocked and nothing can wake it: {}",
                    parts.join("; ")
                )
            } else {
                format!(
                    "all {} threads are blocked and none can wake another: {}",
                    snap.threads.len(),
                    parts.join("; ")
                )
            },
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
        via: EdgeVia::WaitsFor,
        evidence: w.evidence,
        site: w.site.clone(),
        name: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::fixtures::{lock, snapshot, thread};

    fn findings(snap: &Snapshot) -> Vec<Finding> {
        crate::analysis::findings(snap)
    }

    #[test]
    fn a_cycle_through_a_running_future_names_both_waits() {
        let snap = snapshot(
            vec![
                thread(1, 1, "MainThread", Some((WaitKind::Future, "1:l:0xf"))),
                thread(1, 2, "reloader_0", Some((WaitKind::Lock, "1:l:0xa"))),
            ],
            vec![
                lock(
                    "1:l:0xf",
                    LockKind::Future,
                    "the result of reload_rate",
                    &["1:t:2"],
                    Some("reload_rate a.py:3"),
                ),
                lock("1:l:0xa", LockKind::Lock, "config_lock", &["1:t:1"], None),
            ],
        );
        let f = findings(&snap);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].kind, FindingKind::Deadlock);
        assert!(
            f[0].summary.contains(
                "\"MainThread\" waits for the result of reload_rate running on \"reloader_0\""
            ),
            "{}",
            f[0].summary
        );
        assert!(
            f[0].summary
                .contains("\"reloader_0\" waits for config_lock, held by \"MainThread\""),
            "{}",
            f[0].summary
        );
        assert!(f[0]
            .edges
            .iter()
            .any(|e| e.via == EdgeVia::CompletedBy && e.to == "1:t:2"));
    }

    #[test]
    fn queued_futures_deadlock_only_when_every_worker_is_stuck() {
        let pool = ["1:t:1", "1:t:2"];
        let starved = snapshot(
            vec![
                thread(1, 1, "pool_0", Some((WaitKind::Future, "1:l:0xf1"))),
                thread(1, 2, "pool_1", Some((WaitKind::Future, "1:l:0xf2"))),
            ],
            vec![
                lock(
                    "1:l:0xf1",
                    LockKind::Future,
                    "the result of inner (queued)",
                    &pool,
                    None,
                ),
                lock(
                    "1:l:0xf2",
                    LockKind::Future,
                    "the result of inner (queued)",
                    &pool,
                    None,
                ),
            ],
        );
        let f = findings(&starved);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(
            f[0].knot && f[0].summary.starts_with("pool starvation"),
            "{}",
            f[0].summary
        );

        // One worker free (not blocked): the queued work will run.
        let mut busy = starved.clone();
        busy.threads[1].blocked = false;
        busy.threads[1].waits_for = None;
        assert!(findings(&busy).is_empty());
    }
}
