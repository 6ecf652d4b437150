//! Taking snapshots over a window. The seam where later commands (`record`, `run`, `top`)
//! plug in their own cadence.

use std::time::{Duration, Instant};

use crate::error::Result;
use crate::snapshot::{self, Session, Snapshot};

/// Snapshots a `dump` takes over a non-zero window (first and last at its ends).
pub const DUMP_SNAPSHOTS: usize = 5;

/// Take `count` snapshots spread evenly over `window` (one if the window is zero).
pub fn sample_window(
    target: &mut Session,
    window: Duration,
    count: usize,
) -> Result<Vec<Snapshot>> {
    let count = if window.is_zero() { 1 } else { count.max(2) };
    let interval = if count > 1 {
        window / (count as u32 - 1)
    } else {
        Duration::ZERO
    };
    let start = Instant::now();
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let due = start + interval * i as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        out.push(snapshot::take(target)?);
    }
    Ok(out)
}
