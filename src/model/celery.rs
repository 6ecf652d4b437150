//! A Celery app as read from one process: the queues its worker consumes, where the app routes
//! a task by default, and the broker and result backend it talks to (passwords masked). Data
//! only: who reads it and what it means for a wait are elsewhere.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `processes[].celery`: the Celery app of a process (a worker's main or pool process, or a
/// client), from `celery._state._apps`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct CeleryApp {
    /// The queues a worker of this app consumes (`app.amqp.queues`' selection: `-Q`, else
    /// every declared queue). Only a worker's main process consumes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumes: Vec<String>,
    /// `task_default_queue`: where a task goes that has no route and no queue of its own.
    pub default_queue: Option<String>,
    /// Whether `task_routes` is set (a task's queue then is not known from the app alone).
    #[serde(default)]
    pub routes: bool,
    /// The tasks that name their own queue (`@app.task(queue=...)`): task name -> queue.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub task_queues: BTreeMap<String, String>,
    /// The routing key each request this worker holds was delivered with (task id ->
    /// routing key: the queue's name on Celery's default direct exchange), from the
    /// request's `delivery_info`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub delivered: BTreeMap<String, String>,
    /// `broker_url`, its password masked.
    pub broker: Option<String>,
    /// `result_backend`, its password masked.
    pub backend: Option<String>,
    /// `celery.__version__` (absent when it could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}
