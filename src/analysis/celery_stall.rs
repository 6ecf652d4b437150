//! A Celery task that waits inside a worker for a subtask which no process of the tree runs,
//! and which every worker of the tree that could take it is too busy to start: a `stall` (not a
//! deadlock: another worker could take it once it frees, or one gridlock cannot see). It names
//! the subtask's id and queue and says how the queue is known; a deadlock through a subtask
//! still in the broker gets a note that consumers outside the tree are not seen.
//!
//! It reads the linked snapshot only (`frameworks::celery::link` put the waits and the result
//! pseudo-locks there); it finds no cycle itself.

use crate::analysis::detectors::finding;
use crate::frameworks::celery_routes::{queue_of, SubtaskQueue};
use crate::model::*;
use crate::snapshot::Snapshot;

const ADVICE: &str = "A task waits inside the worker for a subtask that waits in turn for a busy pool process: do not call get() or join() inside a task (chain the work with chain, chord or a link callback), or route the subtasks to a queue served by a worker kept free for them.";

/// The Celery task id (UUID) in a report task id (`PID:celery:UUID`).
fn uuid(task: &str) -> Option<&str> {
    task.split_once(":celery:").map(|(_, u)| u)
}

/// Where a subtask is: running (in a pool thread), held at a worker, or in the broker.
enum Place<'a> {
    Running,
    HeldAt(&'a Task),
    Broker,
}

fn place<'a>(snap: &'a Snapshot, id: &str) -> Place<'a> {
    let mut held = None;
    for t in snap
        .tasks
        .iter()
        .filter(|t| t.framework == Framework::Celery && uuid(&t.id) == Some(id))
    {
        if !t.frames.is_empty() {
            return Place::Running;
        }
        held = Some(t);
    }
    held.map_or(Place::Broker, Place::HeldAt)
}

/// The Celery task a pool process runs, as `name[id]`.
fn running_in(snap: &Snapshot, pid: i32) -> Option<String> {
    snap.tasks
        .iter()
        .find(|t| t.framework == Framework::Celery && t.pid == pid && !t.frames.is_empty())
        .map(|t| {
            format!(
                "{}[{}]",
                t.name.as_deref().unwrap_or("?"),
                uuid(&t.id).unwrap_or("?")
            )
        })
}

/// Add a stall for each Celery wait no deadlock explains whose subtask every possible taker
/// in the tree is too busy to start; note the unseen consumers on deadlocks through a
/// subtask still in the broker.
pub fn detect(snap: &Snapshot, findings: &mut Vec<Finding>) {
    let mut found = Vec::new();
    for task in snap.tasks.iter().filter(|t| {
        t.framework == Framework::Celery && !t.frames.is_empty() && t.waits_for.is_some()
    }) {
        let Some(thread) = snap.threads.iter().find(|t| {
            t.pid == task.pid
                && t.waits_for
                    .as_ref()
                    .is_some_and(|w| w.evidence == Evidence::Celery)
        }) else {
            continue;
        };
        let wait = thread.waits_for.as_ref().unwrap();
        let results: Vec<&Lock> = wait
            .target
            .iter()
            .chain(&wait.targets)
            .filter_map(|l| snap.lock(l))
            .filter(|l| l.id.starts_with("celery:result:"))
            .collect();
        if let Some(f) = backend_down(snap, task, thread, &results) {
            found.push(f);
            continue;
        }
        let in_deadlock = findings
            .iter()
            .filter(|f| f.kind == FindingKind::Deadlock)
            .find(|f| f.threads.contains(&thread.id));
        if let Some(f) = in_deadlock {
            let i = findings.iter().position(|g| g.id == f.id).unwrap();
            note_broker(snap, task, &results, &mut findings[i]);
            continue;
        }
        if let Some(f) = stall(snap, task, thread, &results) {
            found.push(f);
        }
    }
    findings.extend(found);
}

/// A deadlock through a subtask still in the broker: say that consumers gridlock cannot see
/// are not ruled out.
fn note_broker(snap: &Snapshot, task: &Task, results: &[&Lock], f: &mut Finding) {
    for lock in results {
        let id = lock.id.trim_start_matches("celery:result:");
        if !matches!(place(snap, id), Place::Broker) {
            continue;
        }
        let queue = queue_of(&snap.processes, task.pid, None, id, None);
        let note = format!(
            "[{id}] is still in the broker{}: a consumer of it outside this tree (another host, or a process gridlock was not pointed at) would break this cycle; gridlock sees only the tree",
            queue.map(|q| format!(" ({q})")).unwrap_or_default()
        );
        if !f.notes.contains(&note) {
            f.notes.push(note);
        }
    }
}

/// The stall of one waiting task, if every subtask it waits for is stuck behind busy takers.
fn stall(snap: &Snapshot, task: &Task, thread: &Thread, results: &[&Lock]) -> Option<Finding> {
    let mut parts = Vec::new();
    let mut notes = Vec::new();
    let mut edges = Vec::new();
    let mut threads = vec![thread.id.clone()];
    let mut processes = vec![task.pid];
    let mut tasks = vec![task.id.clone()];
    let mut locks = Vec::new();
    for lock in results {
        let id = lock.id.trim_start_matches("celery:result:");
        let held = match place(snap, id) {
            Place::Running => return None,
            Place::HeldAt(t) => Some(t),
            Place::Broker => None,
        };
        // Every taker must be busy: a pool process running a task, or a main thread blocked
        // handing out work. An idle pool process will start the subtask.
        let mut busy = Vec::new();
        for h in &lock.holders {
            match (&h.thread, h.process) {
                (Some(th), _) => {
                    let blocked = snap.thread(th).is_some_and(|t| t.blocked);
                    if !blocked {
                        return None;
                    }
                    busy.push(format!(
                        "worker pid {}'s main thread is blocked handing out work",
                        th.split(':').next().unwrap_or("?")
                    ));
                    threads.push(th.clone());
                }
                (None, Some(p)) => {
                    let runs = running_in(snap, p)?;
                    busy.push(format!("pool process {p} runs {runs}"));
                    processes.push(p);
                }
                _ => {}
            }
        }
        let name = held
            .and_then(|t| t.name.clone())
            .or_else(|| name_in_wait(thread, id));
        let label = format!("{}[{id}]", name.as_deref().unwrap_or(""));
        let queue: Option<SubtaskQueue> = queue_of(
            &snap.processes,
            task.pid,
            held.map(|t| t.pid),
            id,
            name.as_deref(),
        );
        let queue_text = match &queue {
            Some(q) => q.to_string(),
            None => "an unknown queue (task_routes is set, or no app was read)".to_string(),
        };
        let whence = match held {
            Some(t) => format!("held by worker pid {} ({queue_text})", t.pid),
            None => format!("in the broker ({queue_text})"),
        };
        parts.push(if busy.is_empty() {
            format!("{label}, {whence}, which no worker of this tree takes")
        } else {
            format!("{label}, {whence}, while {}", busy.join(", "))
        });
        if let Some(t) = held {
            tasks.push(t.id.clone());
            processes.push(t.pid);
            notes.push(format!(
                "{label} is reserved by worker pid {}: it runs it once one of its pool processes frees, unless that worker exits and the broker redelivers it",
                t.pid
            ));
        } else {
            notes.push(format!(
                "{label} is still in the broker: any consumer of {} may take it, and gridlock sees only the workers of this tree, not those of other hosts or other process trees",
                queue.as_ref().map(|q| format!("queue {}", q.name)).unwrap_or("its queue".into())
            ));
        }
        locks.push(lock.id.clone());
        edges.push(Edge {
            from: thread.id.clone(),
            to: lock.id.clone(),
            via: EdgeVia::WaitsFor,
            evidence: Evidence::Celery,
            site: thread.waits_for.as_ref().and_then(|w| w.site.clone()),
            name: Some(label.clone()),
        });
        for h in &lock.holders {
            let to = match (&h.thread, h.process) {
                (Some(th), _) => th.clone(),
                (None, Some(p)) => crate::crossproc::process_id(p),
                _ => continue,
            };
            edges.push(Edge {
                from: lock.id.clone(),
                to,
                via: EdgeVia::CompletedBy,
                evidence: h.evidence,
                site: None,
                name: None,
            });
        }
    }
    if parts.is_empty() {
        return None;
    }
    let me = format!(
        "{}[{}] (pool process {})",
        task.name.as_deref().unwrap_or("?"),
        uuid(&task.id).unwrap_or("?"),
        task.pid
    );
    let mut f = finding(
        FindingKind::Stall,
        format!("celery-stall:{}", task.id),
        format!(
            "Celery task {me} waits for {}; another worker could take it, so this is no deadlock, but the task holds its pool process until one does",
            parts.join("; ")
        ),
    );
    processes.sort_unstable();
    processes.dedup();
    f.threads = threads;
    f.tasks = tasks;
    f.processes = processes;
    f.locks = locks;
    f.edges = edges;
    f.notes = notes;
    f.advice = Some(ADVICE.into());
    Some(f)
}

/// The task name the waiting thread's wait gives a result (`name[id]` in `waits_for.name`).
fn name_in_wait(thread: &Thread, id: &str) -> Option<String> {
    let names = thread.waits_for.as_ref()?.name.as_deref()?;
    names.split(", ").find_map(|one| {
        let (name, rest) = one.split_once('[')?;
        (rest.strip_suffix(']') == Some(id) && !name.is_empty()).then(|| name.to_string())
    })
}

/// The result backend's connection being retried under a task's wait (Celery's
/// `reconnect_on_error` or a backend's `_reconnect`): the frame that says so.
fn backend_retry(thread: &Thread) -> Option<&Frame> {
    thread.frames.iter().find(|f| {
        f.file.contains("celery/backends/")
            && (f.function.ends_with("_reconnect") || f.function.ends_with("reconnect_on_error"))
    })
}

/// Whether a process's main thread is retrying its broker connection (kombu's
/// `Connection._ensure_connection`).
fn broker_retry(snap: &Snapshot, pid: i32) -> Option<&Frame> {
    snap.threads
        .iter()
        .filter(|t| t.pid == pid)
        .flat_map(|t| &t.frames)
        .find(|f| {
            f.file.ends_with("kombu/connection.py") && f.function.ends_with("_ensure_connection")
        })
}

/// A task waiting on a result backend that cannot answer: an I/O wait naming the backend
/// (from the app's `result_backend`, its password masked), a stall, never a deadlock.
fn backend_down(
    snap: &Snapshot,
    task: &Task,
    thread: &Thread,
    results: &[&Lock],
) -> Option<Finding> {
    let retry = backend_retry(thread)?;
    let app = snap
        .processes
        .iter()
        .find(|p| p.pid == task.pid)
        .and_then(|p| p.celery.as_ref());
    let backend = app
        .and_then(|a| a.backend.clone())
        .unwrap_or_else(|| "its result backend (URL not read)".into());
    let waited = thread
        .waits_for
        .as_ref()
        .and_then(|w| w.name.clone())
        .unwrap_or_else(|| "a result".into());
    let mut summary = format!(
        "Celery task {}[{}] (pool process {}) waits for {waited} from the result backend {backend}, which cannot answer: the backend's connection is being retried ({})",
        task.name.as_deref().unwrap_or("?"),
        uuid(&task.id).unwrap_or("?"),
        task.pid,
        retry.site()
    );
    let worker = snap
        .processes
        .iter()
        .find(|p| p.pid == task.pid)
        .and_then(|p| p.ppid);
    let mut processes = vec![task.pid];
    if let Some((w, f)) = worker.and_then(|w| Some((w, broker_retry(snap, w)?))) {
        let broker = snap
            .processes
            .iter()
            .find(|p| p.pid == w)
            .and_then(|p| p.celery.as_ref())
            .and_then(|a| a.broker.clone())
            .unwrap_or_else(|| "its broker".into());
        summary.push_str(&format!(
            "; worker pid {w} retries its broker connection to {broker} too ({})",
            f.site()
        ));
        processes.push(w);
    }
    let mut f = finding(
        FindingKind::Stall,
        format!("celery-backend:{}", task.id),
        summary,
    );
    f.threads = vec![thread.id.clone()];
    f.tasks = vec![task.id.clone()];
    f.processes = processes;
    f.locks = results.iter().map(|l| l.id.clone()).collect();
    f.edges = results
        .iter()
        .map(|l| Edge {
            from: thread.id.clone(),
            to: l.id.clone(),
            via: EdgeVia::WaitsFor,
            evidence: Evidence::Celery,
            site: thread.waits_for.as_ref().and_then(|w| w.site.clone()),
            name: Some(format!("a result from {backend}")),
        })
        .collect();
    f.notes = vec![
        "the connection's socket state (refused, connect in progress) is not read: the retry is known from the stack".into(),
    ];
    f.advice = Some("The result backend does not answer: check that the server in the backend URL is up and reachable; Celery retries the connection, then fails the task.".into());
    Some(f)
}
