//! One detector per finding kind (tokio-console's lint idea): each looks at a snapshot and
//! its wait-for graph and says what it sees. Persistence over a window is decided elsewhere.
//!
//! Each child answers one kind of finding (`deadlocks`, with `queue_cycle` for one through a
//! full queue; `loop_self`, `orphans`, `stalls`, `trio_parked` for a trio run's stall) and
//! builds on `detector` (the trait, the blank finding) and `naming` (the words); none names
//! this file.

mod deadlocks;
mod detector;
mod loop_self;
mod naming;
mod orphans;
mod queue_cycle;
mod stalls;
#[cfg(test)]
mod tests;
mod trio_parked;

pub use crate::analysis::labels::thread_label;
pub use deadlocks::Deadlocks;
pub(super) use detector::finding;
pub use detector::Detector;
pub use loop_self::LoopSelfDeadlocks;
pub use naming::{describe_waits, lock_label, short_cmd, task_label};
pub(super) use orphans::orphan_finding;
pub use orphans::OrphanedLocks;
pub use stalls::Stalls;
pub use trio_parked::TrioParked;

pub fn all() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(Deadlocks),
        Box::new(LoopSelfDeadlocks),
        Box::new(OrphanedLocks),
        Box::new(Stalls),
        Box::new(TrioParked),
    ]
}
