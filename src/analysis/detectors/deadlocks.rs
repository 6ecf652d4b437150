//! `deadlock`: cycles of the wait-for graph in which every wait has one possible waker
//! (threads, tasks, processes, futures), and knots of OR-waits whose every possible waker is
//! blocked in the knot. Each says who waits for whom and what to change.

use super::detector::{deadlock, Detector};
use super::naming::{describe_waits, lock_label, party, pids_of, process_label, task_label};
use crate::analysis::graph::{Node, WaitGraph};
use crate::analysis::labels::thread_label;
use crate::model::*;
use crate::snapshot::Snapshot;

/// Cycles in the wait-for graph in which every wait has one possible waker.
pub struct Deadlocks;

const TWISTED_POOL_ADVICE: &str = "Work running in a Twisted thread pool blocks (blockingCallFromThread) on a Deferred of other work deferred to the same pool: with every worker waiting, the queued work never starts. Do not block a pool thread on the pool (return the Deferred to the reactor instead, or defer the inner work to a separate ThreadPool), or make the pool larger than the nested waits (suggestThreadPoolSize).";

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
            if edges.iter().any(|e| e.via == EdgeVia::DrainedBy) && tasks.is_empty() {
                let mut f = super::queue_cycle::queue_deadlock(snap, &key, &edges);
                set_cycle(&mut f, snap, threads, tasks, locks, edges, Vec::new());
                out.push(f);
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
                // Kernel objects with a name (a lock file, a connection's addresses) say more
                // than the threads' names alone.
                let files = locks.iter().filter_map(|l| snap.lock(l)).any(|l| {
                    l.kind == LockKind::FileLock || l.kind == LockKind::Socket && l.name.is_some()
                });
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
            let mut f = deadlock(&key, summary);
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
                crate::analysis::below_python::GIL_CYCLE_ADVICE.into()
            } else if joins {
                "A thread joins another thread that waits for something the joiner holds: release it before joining.".into()
            } else {
                crate::analysis::order_advice::lock_cycle_advice(snap, &threads, &edges).unwrap_or_else(|| {
                    let order: Vec<String> = locks.iter().map(|l| lock_label(snap, l)).collect();
                    format!("The threads take the same locks in different orders ({}): take them in one global order.", order.join(", "))
                })
            });
            // A counting resource whose every permit its waiters hold (a pool of one whose
            // only item its waiter has checked out): said with its counts.
            if let Some(summary) =
                crate::analysis::permits::knot_summary(snap, &locks, party, lock_label)
            {
                f.summary = summary;
                f.advice = Some(crate::analysis::permits::KNOT_ADVICE.into());
            }
            set_cycle(&mut f, snap, threads, Vec::new(), locks, edges, pids);
            out.push(f);
        }
        out
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
    let mut f = deadlock(&key, summary);
    f.advice = Some(if locks.is_empty() {
        format!("Each task awaits another task of the cycle, so none can finish: break the cycle (one of them must not await the other), or add a timeout with {timeout}.")
    } else {
        let label = |t: &str| task_label(snap, t);
        crate::analysis::order_advice::task_cycle_advice(snap, &tasks, &edges, &label).unwrap_or_else(|| {
            let order: Vec<String> = locks.iter().map(|l| lock_label(snap, l)).collect();
            format!("The tasks take the same {lock_type}s in different orders ({}): take them in one global order.", order.join(", "))
        })
    });
    fill(&mut f, threads, tasks, locks, edges, vec![snap.pid]);
    f
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
    let reactor = locks
        .iter()
        .find_map(|l| snap.lock(l).filter(|l| l.kind == LockKind::Reactor));
    if let (Some(r), [thread]) = (reactor, &threads[..]) {
        // blockingCallFromThread on the reactor's own thread.
        let mut f = deadlock(
            &key,
            format!(
                "{} waits in blockingCallFromThread for a call only its own {} would run: the reactor runs on this very thread",
                party(snap, thread),
                r.name.as_deref().unwrap_or("reactor"),
            ),
        );
        f.advice = Some("blockingCallFromThread is for threads other than the reactor's: on the reactor thread call the function directly, or return its Deferred.".into());
        set_cycle(&mut f, snap, threads, tasks, locks, edges, pids);
        return f;
    }
    let all_of = |fw: Framework| {
        !tasks.is_empty()
            && tasks
                .iter()
                .all(|t| snap.task(t).is_some_and(|t| t.framework == fw))
    };
    let (trio, twisted) = (all_of(Framework::Trio), all_of(Framework::Twisted));
    let deferred = locks
        .iter()
        .any(|l| snap.lock(l).is_some_and(|l| l.kind == LockKind::Deferred));
    let mut f = deadlock(
        &key,
        format!(
            "{parties} {} wait for each other in a cycle through a {}: {}",
            match (threads.is_empty(), tasks.is_empty()) {
                (false, true) => "threads",
                (true, false) if trio => "trio tasks",
                (true, false) if twisted => "Twisted inlineCallbacks",
                (true, false) => "asyncio tasks",
                _ => "threads and tasks",
            },
            if channel {
                "memory channel"
            } else if deferred {
                "Deferred"
            } else {
                "future"
            },
            describe_waits(snap, &edges).join("; ")
        ),
    );
    let on_loop = edges.iter().any(|e| e.evidence == Evidence::ReadyQueue);
    let pool_work = locks.iter().any(|l| {
        snap.lock(l).is_some_and(|l| {
            l.kind == LockKind::Deferred
                && l.holders.iter().any(|h| h.evidence == Evidence::ThreadPool)
        })
    });
    f.advice = Some(if pool_work {
        TWISTED_POOL_ADVICE.into()
    } else if deferred {
        "Each inlineCallbacks generator (or coroutine) waits for a Deferred that only another one of the cycle fires, after its own wait: fire it before waiting (or from code that does not wait on the others), or wait with a timeout (addTimeout).".into()
    } else if channel {
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
    let edges = edges
        .into_iter()
        .filter(|e| e.via != EdgeVia::HasThread)
        .collect();
    let pids = if pids.is_empty() {
        vec![snap.pid]
    } else {
        pids
    };
    fill(f, threads, tasks, locks, edges, pids);
}

/// A finding's parties, edges and processes, as given.
fn fill(
    f: &mut Finding,
    threads: Vec<String>,
    tasks: Vec<String>,
    locks: Vec<String>,
    edges: Vec<Edge>,
    pids: Vec<i32>,
) {
    f.threads = threads;
    f.tasks = tasks;
    f.locks = locks;
    f.edges = edges;
    f.processes = pids;
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
    // Threads (and tasks) in a stable order, each followed by the path of its wait.
    for &n in scc {
        if !matches!(graph.graph[n], Node::Thread(_) | Node::Task(_)) {
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
    // Work queued in a pool, waited on by the pool's own workers: a future, or a Deferred a
    // Twisted thread pool's work fires.
    let queued = |l: &Lock| {
        l.holders.len() > 1
            && (l.kind == LockKind::Future
                || (l.kind == LockKind::Deferred
                    && l.holders.iter().all(|h| h.evidence == Evidence::ThreadPool)))
    };
    let pooled = locks.iter().filter_map(|l| snap.lock(l));
    let twisted = pooled
        .clone()
        .any(|l| l.kind == LockKind::Deferred && queued(l));
    let starved = pooled.clone().any(queued);
    if starved {
        let mut f = deadlock(
            &key,
            format!(
                "pool starvation: every worker of a thread pool waits for work queued in that same pool, which no worker is left to run: {}",
                describe_waits(snap, &edges).join("; ")
            ),
        );
        f.advice = Some(if twisted {
            TWISTED_POOL_ADVICE.into()
        } else {
            "Work running in a pool blocks on other work submitted to the same pool: with every worker waiting, the queued work never starts. Do not wait on a pool's futures from inside its workers (chain with add_done_callback, or use a separate pool), or give the pool more workers than nested waits.".into()
        });
        f.knot = true;
        fill(&mut f, threads, Vec::new(), locks, edges, pids);
        return f;
    }
    if let Some(summary) = crate::analysis::permits::knot_summary(snap, &locks, party, lock_label) {
        // A knot among asyncio tasks names them as its tasks.
        let tasks: Vec<String> = nodes
            .iter()
            .filter(|n| snap.task(n).is_some())
            .cloned()
            .collect();
        let mut f = deadlock(&key, summary);
        f.advice = Some(crate::analysis::permits::KNOT_ADVICE.into());
        f.knot = true;
        fill(&mut f, threads, tasks, locks, edges, pids);
        return f;
    }
    let mut f = deadlock(
        &key,
        format!(
            "{} threads in {} blocked in a knot of waits with several possible wakers, every one of which is itself blocked here: {}",
            threads.len(),
            procs.join(", "),
            names.join(", ")
        ),
    );
    f.advice = Some(cross_process_advice(&edges));
    f.knot = true;
    fill(&mut f, threads, Vec::new(), locks, edges, pids);
    f
}
