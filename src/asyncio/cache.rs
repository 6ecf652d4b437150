//! What is kept between snapshots of one process: how far its asyncio offsets are
//! established, notes for the report, where `asyncio.tasks` is, and each loop's ready-queue
//! counter. It holds state; deciding and reading tasks happen elsewhere.

use std::collections::HashMap;
use std::time::Instant;

use crate::cpython::layout::asyncio_common::DEQUE_STATE;
use crate::cpython::layout::AsyncioOffsets;

/// How far a process's asyncio offsets are established.
#[derive(Debug, Clone, Default)]
pub(super) enum Resolution {
    /// Not looked at yet (asyncio not imported so far).
    #[default]
    Unresolved,
    /// Being checked on live objects, which needs a task to exist; meanwhile used, since
    /// with no task nothing is built on them. `table`: the table's values, not the section's.
    Checking { offs: AsyncioOffsets, table: bool },
    /// Checked (or a version without published offsets, whose table is used as is).
    Trusted(AsyncioOffsets),
    /// asyncio is not read in this process (a note says why).
    Off,
}

/// What is kept between snapshots of one process.
#[derive(Default)]
pub struct AsyncioCache {
    pub(super) resolution: Resolution,
    /// Why the published offsets were not used, while the table's are being checked.
    pub(super) table_because: Option<String>,
    /// Consecutive snapshots whose live check failed: a list the target changed while it
    /// was read can fail once, so offsets are given up only after `CHECK_TRIES`.
    pub(super) check_failures: u32,
    /// Notes for the report not yet taken by the caller.
    pub(super) notes: Vec<String>,
    /// `asyncio.tasks.__dict__`, once the target has imported asyncio.
    pub(super) tasks_module: Option<usize>,
    pub(super) last_lookup: Option<Instant>,
    /// Each known loop's `_ready` deque, and its mutation counter read at the start of the
    /// current snapshot: a counter that moved while the stacks were read means the step
    /// changed under us, and that sample is a step boundary.
    pub(super) ready_queues: HashMap<usize, usize>,
    pub(super) ready_before: HashMap<usize, u64>,
}

impl AsyncioCache {
    /// Notes about how this process's asyncio is read (a fallback, or asyncio turned off),
    /// each given once.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Read the ready-queue counters of the loops seen last time, before anything else.
    pub fn begin(&mut self, mem: &dyn crate::memory::ReadMemory) {
        self.ready_before = self
            .ready_queues
            .iter()
            .filter_map(|(lp, dq)| Some((*lp, mem.u64(dq + DEQUE_STATE).ok()?)))
            .collect();
    }
}
