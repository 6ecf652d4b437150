//! The `Snapshot` value: one sample's threads, locks, tasks, loops and what links processes
//! (multiprocessing objects, pools, signals), with lookups by id. It builds nothing.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::futures::PoolView;
use super::mp_view::MpView;
use crate::model::*;
use crate::probe::ProbeEdge;

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub taken: SystemTime,
    pub pid: i32,
    pub threads: Vec<Thread>,
    pub locks: Vec<Lock>,
    /// asyncio tasks of every loop (empty without asyncio).
    pub tasks: Vec<Task>,
    /// Event loops, one per thread running one.
    pub loops: Vec<EventLoop>,
    /// With `--tree`: every sampled process (empty for a single-process snapshot).
    pub processes: Vec<Process>,
    /// `multiprocessing` objects seen, for linking processes (only with `Target::cross_process`).
    pub mp: MpView,
    /// Whether the target loaded gridlock's probe, and every lock-order pair it recorded.
    pub probe_loaded: bool,
    pub probe_edges: Vec<ProbeEdge>,
    /// Pools whose work runs in other processes, for linking them (`--tree`).
    pub pools: PoolView,
    /// Per process: the signals it catches (`SigCgt`), read at this snapshot.
    pub signals: BTreeMap<i32, u64>,
    /// Per process: what this sample's linking could not follow (a connection's other end
    /// outside the report), shown with the process.
    pub notes: BTreeMap<i32, Vec<String>>,
}

impl Snapshot {
    /// A snapshot of these threads alone, taken then in process `pid`: no locks, tasks,
    /// loops or links (what a builder fills in, or a reader of threads alone needs).
    pub fn of_threads(taken: SystemTime, pid: i32, threads: Vec<Thread>) -> Snapshot {
        Snapshot {
            taken,
            pid,
            threads,
            locks: Vec::new(),
            tasks: Vec::new(),
            loops: Vec::new(),
            processes: Vec::new(),
            mp: Default::default(),
            probe_loaded: false,
            probe_edges: Vec::new(),
            pools: Default::default(),
            signals: Default::default(),
            notes: Default::default(),
        }
    }
    pub fn thread(&self, id: &str) -> Option<&Thread> {
        self.threads.iter().find(|t| t.id == id)
    }
    pub fn lock(&self, id: &str) -> Option<&Lock> {
        self.locks.iter().find(|l| l.id == id)
    }
    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }
}
