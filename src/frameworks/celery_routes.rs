//! Which queue a Celery subtask is on and which workers of a process tree consume that queue,
//! from the apps read in each process (`processes[].celery`): a held request's delivery, else
//! the waiting process's app's routing (the task's own queue, else the default queue where no
//! `task_routes` is set).
//!
//! It answers "where is this subtask queued, how is that known, and who in the tree would take
//! it"; it reads no memory and decides no finding.

use crate::model::Process;

/// A subtask's queue and how gridlock knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubtaskQueue {
    pub name: String,
    pub how: &'static str,
}

impl std::fmt::Display for SubtaskQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "queue {} ({})", self.name, self.how)
    }
}

fn app_of(processes: &[Process], pid: i32) -> Option<&crate::model::CeleryApp> {
    processes.iter().find(|p| p.pid == pid)?.celery.as_ref()
}

/// The queue of subtask `uuid` (task `name`): its request's routing key where the worker at
/// `held_at` holds it, else the routing of the app in the waiting process `waiter`.
pub fn queue_of(
    processes: &[Process],
    waiter: i32,
    held_at: Option<i32>,
    uuid: &str,
    name: Option<&str>,
) -> Option<SubtaskQueue> {
    if let Some(key) = held_at
        .and_then(|m| app_of(processes, m))
        .and_then(|app| app.delivered.get(uuid))
    {
        return Some(SubtaskQueue {
            name: key.clone(),
            how: "the routing key its request was delivered with",
        });
    }
    let app = app_of(processes, waiter)?;
    if let Some(q) = name.and_then(|n| app.task_queues.get(n)) {
        return Some(SubtaskQueue {
            name: q.clone(),
            how: "the task's own queue option",
        });
    }
    if app.routes {
        return None;
    }
    app.default_queue.as_ref().map(|q| SubtaskQueue {
        name: q.clone(),
        how: "the app's default queue: no task_routes, no queue option; a queue passed to apply_async is not kept",
    })
}

/// The worker main processes among `workers` whose app consumes `queue`.
pub fn consumers(processes: &[Process], workers: &[i32], queue: &str) -> Vec<i32> {
    let mut out: Vec<i32> = workers
        .iter()
        .copied()
        .filter(|w| app_of(processes, *w).is_some_and(|a| a.consumes.iter().any(|q| q == queue)))
        .collect();
    out.sort_unstable();
    out
}
