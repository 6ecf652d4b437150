//! Timed waits in a stream of snapshots (`record`, `top`, `run`, `watch`), settled as `dump`
//! settles its window: each new snapshot is judged with a few older ones spanning at least
//! one default window (a polling loop is one blocked wait, a wait that ends within it is not).
//! Until the stream spans that long, no timed wait is blocked. It keeps a bounded handful of
//! snapshots and reads no process.

use std::collections::VecDeque;
use std::time::Duration;

use crate::snapshot::Snapshot;

/// What a timed wait must persist over to be blocked: `dump`'s default window.
pub const SETTLE_SPAN: Duration = Duration::from_secs(1);
/// How many older snapshots, evenly spread over the span, a new one is judged with.
const STEPS: u32 = 5;

/// The older snapshots a stream's new ones are settled with (as they were taken).
#[derive(Default)]
pub struct StreamWindow {
    kept: VecDeque<Snapshot>,
}

impl StreamWindow {
    /// `snap` with its timed waits settled over the stream's recent past, and whether the
    /// stream already spans `SETTLE_SPAN` (before that, nothing timed is blocked).
    pub fn settle(&mut self, snap: Snapshot) -> (Snapshot, bool) {
        let taken = snap.taken;
        let mut window: Vec<Snapshot> = self.kept.iter().cloned().collect();
        window.push(snap.clone());
        super::timed::settle_spanning(&mut window, SETTLE_SPAN);
        let spans = self
            .kept
            .front()
            .is_some_and(|f| taken.duration_since(f.taken).unwrap_or_default() >= SETTLE_SPAN);
        let step = SETTLE_SPAN / STEPS;
        let due = self
            .kept
            .back()
            .is_none_or(|b| taken.duration_since(b.taken).unwrap_or_default() >= step);
        if due {
            self.kept.push_back(snap);
        }
        // The oldest one kept is the newest that still makes the window span the whole span.
        while self.kept.len() > 2
            && taken.duration_since(self.kept[1].taken).unwrap_or_default() >= SETTLE_SPAN
        {
            self.kept.pop_front();
        }
        (window.pop().expect("just pushed"), spans)
    }
}
