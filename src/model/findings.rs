//! A finding of the document: its kind and severity, what it involves, and the edges of the
//! graph it shows. It may name evidence, frames, writes and tasks (a loop block's histogram).

use serde::{Deserialize, Serialize};

use super::evidence::Evidence;
use super::frames::Frame;
use super::tasks::Histogram;
use super::writes::RaceSide;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    Deadlock,
    Stall,
    OrphanedLock,
    Hang,
    LockOrderInversion,
    Race,
    LoopBlock,
    /// A thread held the GIL while blocked in the kernel for the whole window.
    GilHold,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Deadlock => "deadlock",
            FindingKind::Stall => "stall",
            FindingKind::OrphanedLock => "orphaned_lock",
            FindingKind::Hang => "hang",
            FindingKind::LockOrderInversion => "lock_order_inversion",
            FindingKind::Race => "race",
            FindingKind::LoopBlock => "loop_block",
            FindingKind::GilHold => "gil_hold",
        }
    }

    pub fn parse(s: &str) -> Option<FindingKind> {
        Some(match s {
            "deadlock" => FindingKind::Deadlock,
            "stall" => FindingKind::Stall,
            "orphaned_lock" => FindingKind::OrphanedLock,
            "hang" => FindingKind::Hang,
            "lock_order_inversion" => FindingKind::LockOrderInversion,
            "race" => FindingKind::Race,
            "loop_block" => FindingKind::LoopBlock,
            "gil_hold" => FindingKind::GilHold,
            _ => return None,
        })
    }

    pub fn severity(self) -> Severity {
        match self {
            FindingKind::Deadlock
            | FindingKind::Stall
            | FindingKind::OrphanedLock
            | FindingKind::Hang
            | FindingKind::GilHold => Severity::Error,
            _ => Severity::Warning,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    pub id: String,
    pub kind: FindingKind,
    pub severity: Severity,
    pub first_seen: String,
    pub last_seen: String,
    pub samples: usize,
    pub summary: String,
    pub threads: Vec<String>,
    pub tasks: Vec<String>,
    pub processes: Vec<i32>,
    pub locks: Vec<String>,
    pub edges: Vec<Edge>,
    /// Advice a person can act on.
    pub advice: Option<String>,
    /// `loop_block`: how long the step held the loop, in seconds (so far, if `ongoing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// `loop_block`: whether the step was still running at the last sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ongoing: Option<bool>,
    /// `loop_block`: the loop's id.
    #[serde(default, rename = "loop", skip_serializing_if = "Option::is_none")]
    pub loop_id: Option<String>,
    /// `loop_block`: the task (`name (coroutine)`) or callback function that held the loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub culprit: Option<String>,
    /// `loop_block`: the stack seen doing it (innermost first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stack: Vec<Frame>,
    /// `loop_block` in `record`: every block of the same culprit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Histogram>,
    /// A deadlock through OR-waits (several possible wakers, every one of them blocked): all
    /// of the knot's members are in `threads`, `processes`, `locks` and `edges`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub knot: bool,
    /// `race`: the location as the code names it (`meter.value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// `race`: each writing thread's side, with its lock set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locksets: Vec<RaceSide>,
    /// What gridlock could not see that bears on the finding (a Celery stall: consumers of
    /// the queue outside the tree).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What an edge of a finding says. The JSON spelling is the contract's.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum EdgeVia {
    /// thread or task -> lock.
    WaitsFor,
    /// lock -> thread, task or `PID:p`.
    HeldBy,
    /// thread -> thread.
    Joins,
    /// thread -> `PID:p` or `PID:children`.
    WaitsForExit,
    /// `PID:p` -> thread: a process acts only through its threads.
    HasThread,
    /// task -> task.
    Awaits,
    /// lock -> lock in a lock-order inversion: held while taking the next.
    ThenTakes,
    /// loop -> what its blocking step runs.
    Runs,
    /// thread -> a shared location (races).
    Writes,
    /// thread -> a shared location it reads to mutate what it holds (races).
    Reads,
    /// a waited future -> whoever will complete it (a worker thread or process, a task).
    CompletedBy,
    /// a full bounded queue a thread waits to put into -> a thread whose code will take from it.
    DrainedBy,
}

impl EdgeVia {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeVia::WaitsFor => "waits_for",
            EdgeVia::HeldBy => "held_by",
            EdgeVia::Joins => "joins",
            EdgeVia::WaitsForExit => "waits_for_exit",
            EdgeVia::HasThread => "has_thread",
            EdgeVia::Awaits => "awaits",
            EdgeVia::ThenTakes => "then_takes",
            EdgeVia::Runs => "runs",
            EdgeVia::Writes => "writes",
            EdgeVia::Reads => "reads",
            EdgeVia::CompletedBy => "completed_by",
            EdgeVia::DrainedBy => "drained_by",
        }
    }

    /// How a report says it between the two ends: "A waits for B", "L is held by T".
    pub fn verb(self) -> &'static str {
        match self {
            EdgeVia::WaitsFor => "waits for",
            EdgeVia::HeldBy => "is held by",
            EdgeVia::Joins => "joins",
            EdgeVia::WaitsForExit => "waits for the exit of",
            EdgeVia::HasThread => "has thread",
            EdgeVia::Awaits => "awaits",
            EdgeVia::ThenTakes => "is held while taking",
            EdgeVia::Runs => "runs",
            EdgeVia::Writes => "writes",
            EdgeVia::Reads => "reads to mutate",
            EdgeVia::CompletedBy => "is completed by",
            EdgeVia::DrainedBy => "is drained by",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub via: EdgeVia,
    pub evidence: Evidence,
    pub site: Option<String>,
    /// How the code names the lock at that site.
    pub name: Option<String>,
}
