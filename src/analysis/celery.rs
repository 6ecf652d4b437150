//! Celery pool starvation said in Celery's words: a deadlock through Celery results names the
//! waiting tasks (`name[id]` and pool process), the results they wait for, and the worker's
//! pool size. It only rewords deadlocks the wait-for graph found; it finds nothing itself.
//! With `-c N` one subtask is typically still in the broker (the main thread, blocked handing
//! out the first, fetches no more): its only waker in the tree is that blocked main thread, so
//! the knot is a deadlock of the tree, and the summary says the claim is as far as the tree
//! shows (`celery_stall` notes the consumers outside it that gridlock cannot see).

use crate::model::*;
use crate::snapshot::Snapshot;

const ADVICE: &str = "A task waits for a subtask's result inside the worker, and every pool process is doing the same, so the subtasks never get a process: do not call get() or join() inside a task (chain the work with chain, chord or a link callback), or route the subtasks to a queue another worker serves.";

/// Reword each deadlock through a Celery result (`celery:result:UUID`).
pub fn describe(snap: &Snapshot, findings: &mut [Finding]) {
    for f in findings
        .iter_mut()
        .filter(|f| f.kind == FindingKind::Deadlock)
    {
        if !f.locks.iter().any(|l| l.starts_with("celery:result:")) {
            continue;
        }
        let in_finding = |pid: i32| {
            let prefix = format!("{pid}:");
            f.threads.iter().any(|t| t.starts_with(&prefix))
        };
        let mut waiting: Vec<&Task> = snap
            .tasks
            .iter()
            .filter(|t| t.framework == Framework::Celery && !t.frames.is_empty())
            .filter(|t| t.waits_for.is_some() && in_finding(t.pid))
            .collect();
        if waiting.is_empty() {
            continue;
        }
        waiting.sort_by_key(|t| t.pid);
        let worker = snap
            .processes
            .iter()
            .find(|p| p.pid == waiting[0].pid)
            .and_then(|p| p.ppid);
        let pool = worker.map(|w| snap.processes.iter().filter(|p| p.ppid == Some(w)).count());
        let uuid = |id: &str| id.split_once(":celery:").map(|(_, u)| u.to_string());
        let waits: Vec<String> = waiting
            .iter()
            .map(|t| {
                let name = t.name.as_deref().unwrap_or("?");
                let id = uuid(&t.id).unwrap_or_default();
                let what = t
                    .waits_for
                    .as_ref()
                    .and_then(|w| w.name.clone())
                    .unwrap_or_default();
                format!("{name}[{id}] (pool process {}) waits for {what}", t.pid)
            })
            .collect();
        // A waited result no task of the tree holds: its subtask is still in the broker.
        let in_broker =
            f.locks
                .iter()
                .filter_map(|l| l.strip_prefix("celery:result:"))
                .any(|u| {
                    !snap.tasks.iter().any(|t| {
                        t.framework == Framework::Celery && uuid(&t.id).as_deref() == Some(u)
                    })
                });
        let scope = if in_broker {
            " as far as this process tree shows (a subtask is still in the broker: see the notes)"
        } else {
            ""
        };
        let (worker, pool) = match (worker, pool) {
            (Some(w), Some(n)) => (format!("worker pid {w}"), format!("all {n}")),
            _ => ("a worker".to_string(), "every one".to_string()),
        };
        f.summary = format!(
            "Celery pool starvation in {worker}: {pool} of its pool processes run a task that waits for a result only this worker would produce{scope}: {}",
            waits.join("; ")
        );
        f.tasks = waiting.iter().map(|t| t.id.clone()).collect();
        f.advice = Some(ADVICE.into());
    }
}
