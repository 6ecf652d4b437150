//! How a deadlock through a full bounded queue is worded: a thread waits to `put` into a
//! queue that only threads of the cycle will take from (`drained_by`, evidence
//! `queue_getter`), and they wait for what the putter holds. It finds no cycle (`deadlocks`
//! does) and reads no memory.

use super::detector::deadlock;
use super::naming::describe_waits;
use crate::model::*;
use crate::snapshot::Snapshot;

pub(super) const ADVICE: &str = "The producer holds what the only consumer of its full queue needs while it waits for room: release the lock before put() (or put with a timeout, or put_nowait and back off), or let the consumer take from the queue before it takes that lock.";

/// The finding for a cycle whose edges go through a full queue.
pub(super) fn queue_deadlock(snap: &Snapshot, key: &[String], edges: &[Edge]) -> Finding {
    let n = edges
        .iter()
        .filter(|e| snap.thread(&e.from).is_some())
        .count();
    let mut f = deadlock(
        key,
        format!(
            "{n} threads wait for each other in a cycle through a full queue: {}",
            describe_waits(snap, edges).join("; ")
        ),
    );
    f.advice = Some(ADVICE.into());
    f
}
