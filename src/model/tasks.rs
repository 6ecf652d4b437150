//! asyncio's side of the document: tasks, what a suspended task waits for, event loops and
//! their steps, and the histogram of a culprit's loop blocks. It may name evidence, frames and
//! thread holds, nothing built on tasks.

use serde::{Deserialize, Serialize};

use super::evidence::Evidence;
use super::frames::Frame;
use super::threads::Hold;

/// An asyncio task, like a row of CPython 3.14's `python -m asyncio ps`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Task {
    /// `PID:task:0xADDRESS` (the Task object's address).
    pub id: String,
    pub pid: i32,
    /// The loop's id (`PID:loop:0xADDRESS`).
    #[serde(rename = "loop")]
    pub loop_id: String,
    pub name: Option<String>,
    /// The coroutine's qualified name (`main.<locals>.worker` on 3.11+, `worker` before).
    pub coroutine: Option<String>,
    pub state: TaskState,
    /// The suspended await stack, innermost first (for the running task: its thread's frames).
    pub frames: Vec<Frame>,
    pub waits_for: Option<TaskWait>,
    pub address: String,
    /// 3.12+: a task in its first, eager step (3.12/3.13: in `_eager_tasks`; 3.14+: the
    /// running task whose coroutine was called by its creator, not by the loop).
    #[serde(default)]
    pub eager: bool,
    /// `asyncio.Lock`s held through an active `async with` in the await stack.
    #[serde(default)]
    pub holds: Vec<Hold>,
    /// Whose scheduler runs the task.
    #[serde(default)]
    pub framework: Framework,
    /// trio: the task whose nursery started this one (`task._parent_nursery._parent_task`),
    /// the nursery tree's edge; null for a root task and for other frameworks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// The concurrency framework a task belongs to (the contract's `tasks[].framework`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum Framework {
    #[default]
    Asyncio,
    Trio,
    Twisted,
    Celery,
}

impl Framework {
    /// The contract's spelling, also the label in DOT and the TUI.
    pub fn as_str(self) -> &'static str {
        match self {
            Framework::Asyncio => "asyncio",
            Framework::Trio => "trio",
            Framework::Twisted => "twisted",
            Framework::Celery => "celery",
        }
    }
}

/// Where a task is: `running` (the loop's current task), `pending` (suspended or scheduled).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Running,
    Pending,
}

impl TaskState {
    /// The contract's spelling, also the label in text and the TUI.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Running => "running",
            TaskState::Pending => "pending",
        }
    }
}

/// What an event loop is doing: `polling` (in the selector under `_run_once`), `step`
/// (running a callback or task step), `between` (loop bookkeeping), `unknown`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum LoopState {
    Polling,
    Step,
    Between,
    Unknown,
}

impl LoopState {
    /// The contract's spelling, also the label in text and the TUI.
    pub fn as_str(self) -> &'static str {
        match self {
            LoopState::Polling => "polling",
            LoopState::Step => "step",
            LoopState::Between => "between",
            LoopState::Unknown => "unknown",
        }
    }
}

/// What kind of thing a suspended task waits for (`tasks[].waits_for.kind`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum TaskWaitKind {
    /// Another task (`target`), awaited.
    Task,
    /// The tasks of an `asyncio.gather` (`targets`).
    Gather,
    /// An `asyncio.Lock` (`target` is its `locks[]` id).
    Lock,
    Event,
    Condition,
    Semaphore,
    Queue,
    /// `asyncio.sleep`.
    Sleep,
    /// A bare future (or one wrapping a `concurrent.futures.Future`, then `target`).
    Future,
    /// A memory channel's other side (`target`: the channel, completed by its senders).
    Channel,
    /// A file descriptor becoming readable or writable (trio's I/O waits).
    Io,
    /// Rescheduled by whoever the framework's low-level wait names (trio's
    /// `wait_task_rescheduled` outside any primitive gridlock knows).
    Reschedule,
}

impl TaskWaitKind {
    /// The contract's spelling, also the label in text, DOT and the TUI.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskWaitKind::Task => "task",
            TaskWaitKind::Gather => "gather",
            TaskWaitKind::Lock => "lock",
            TaskWaitKind::Event => "event",
            TaskWaitKind::Condition => "condition",
            TaskWaitKind::Semaphore => "semaphore",
            TaskWaitKind::Queue => "queue",
            TaskWaitKind::Sleep => "sleep",
            TaskWaitKind::Future => "future",
            TaskWaitKind::Channel => "channel",
            TaskWaitKind::Io => "io",
            TaskWaitKind::Reschedule => "reschedule",
        }
    }
}

impl std::fmt::Display for TaskWaitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a suspended task waits for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct TaskWait {
    pub kind: TaskWaitKind,
    /// A task id, an asyncio lock's id, or none (a bare future).
    pub target: Option<String>,
    /// For `gather`: the task ids gathered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// The future the task's `fut_waiter` points at.
    pub future: Option<String>,
    pub evidence: Evidence,
    /// The innermost user frame awaiting (`function file:line`).
    pub site: Option<String>,
    /// How the code names what it awaits (`self.lock_b`).
    pub name: Option<String>,
    /// The asyncio call doing the wait (`Lock.acquire`, `Queue.get`).
    pub via: Option<String>,
    /// The program-wide name of an awaited object that is no `locks[]` entry (an asyncio
    /// Event, Condition, Queue or bare Future: `jobs.done`), with how it was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_name: Option<super::locks::LockName>,
}

/// One event loop and the thread running it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventLoop {
    /// `PID:loop:0xADDRESS`.
    pub id: String,
    pub pid: i32,
    pub address: String,
    /// The loop's type (`_UnixSelectorEventLoop`, `uvloop.Loop`).
    pub kind: String,
    pub thread: Option<String>,
    pub state: LoopState,
    pub step: Option<LoopStep>,
    /// Handles ready to run (`len(loop._ready)`).
    pub ready: Option<usize>,
    /// Tasks of this loop (pending and running).
    pub tasks: usize,
    /// trio: the run's active deadlines (cancel scopes with a finite deadline, `sleep`'s
    /// among them), each of which wakes a task when it expires; null for other loops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadlines: Option<usize>,
}

/// The callback or task step a loop is running.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoopStep {
    /// Tells consecutive steps apart: the ready queue's mutation counter, the handle and
    /// the current task. Equal keys in consecutive samples with no poll between are one step.
    pub key: String,
    pub task: Option<String>,
    /// The callback's function (the frame `Handle._run` called), or the task's coroutine.
    pub callback: Option<String>,
    pub handle: Option<String>,
    /// The step's frames, innermost first, down to (not including) `Handle._run`.
    pub frames: Vec<Frame>,
}

/// Durations of the loop blocks of one culprit (`record`): counts per upper bound.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Histogram {
    pub culprit: String,
    pub count: usize,
    pub max: f64,
    pub total: f64,
    /// `(upper bound in seconds, count)`; the last bound is infinite (`null`).
    pub buckets: Vec<(Option<f64>, usize)>,
}
