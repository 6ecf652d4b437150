//! The document itself (`schema_version`, tool, command, window and the lists of
//! processes, threads, locks, tasks, findings and loops). Lookups over it live in `lookups`.

use serde::{Deserialize, Serialize};

use super::findings::Finding;
use super::gil::GilUse;
use super::locks::Lock;
use super::processes::Process;
use super::tasks::{EventLoop, Task};
use super::threads::Thread;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Document {
    pub schema_version: u32,
    pub tool: Tool,
    pub command: Command,
    pub window: Window,
    pub processes: Vec<Process>,
    pub threads: Vec<Thread>,
    pub locks: Vec<Lock>,
    pub tasks: Vec<Task>,
    pub findings: Vec<Finding>,
    /// Event loops found (one per thread running one), with what each was doing last.
    #[serde(default)]
    pub loops: Vec<EventLoop>,
    /// Threads whose kernel state could be matched in none of the snapshots they were seen
    /// in (at least two, or the window's only one): the report is incomplete, so its verdict cannot be
    /// "nothing found" (exit 2 unless something fails). Each thread says why
    /// (`kernel_unmatched`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmatched_threads: Vec<String>,
    /// GIL use over the recording (`record`, `top`): per thread, its share of samples
    /// holding the GIL, its longest hold and its waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gil: Option<GilUse>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Command {
    pub name: String,
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Window {
    pub started: String,
    pub ended: String,
    pub snapshots: usize,
    /// Seconds between the first and last snapshot.
    pub seconds: f64,
}
