//! Timed waits in a stream of snapshots (`record`, `top`, `run`, `watch`), settled as `dump`
//! settles its window: each new snapshot is judged with a few older ones spanning at least
//! one default window (a polling loop is one blocked wait, a wait that ends within it is not).
//! Until the stream spans that long, no timed wait is blocked. A wait's `waited_s` counts
//! from its first entry, carried from window to window while the thread stays in it (a
//! polling loop is one wait however long it lasts). It keeps a bounded handful of snapshots
//! and one first entry per waiting thread, and reads no process.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use crate::model::{Seconds, Wait};
use crate::snapshot::Snapshot;

/// What a timed wait must persist over to be blocked: `dump`'s default window.
pub const SETTLE_SPAN: Duration = Duration::from_secs(1);
/// How many older snapshots, evenly spread over the span, a new one is judged with.
const STEPS: u32 = 5;

/// The older snapshots a stream's new ones are settled with (as they were taken).
#[derive(Default)]
pub struct StreamWindow {
    kept: VecDeque<Snapshot>,
    /// Per thread id: the wait it was last seen in, when that wait was first entered, and
    /// when it was last seen in it.
    entries: HashMap<String, Entry>,
}

struct Entry {
    wait: Wait,
    entered: SystemTime,
    seen: SystemTime,
}

impl StreamWindow {
    /// `snap` with its timed waits settled over the stream's recent past, and whether the
    /// stream already spans `SETTLE_SPAN` (before that, nothing timed is blocked). The kept
    /// snapshots are read in place, never copied per snapshot.
    pub fn settle(&mut self, mut snap: Snapshot) -> (Snapshot, bool) {
        let taken = snap.taken;
        let step = SETTLE_SPAN / STEPS;
        let due = self
            .kept
            .back()
            .is_none_or(|b| taken.duration_since(b.taken).unwrap_or_default() >= step);
        // As taken: older snapshots are settled against their own window, not this one.
        let kept_copy = due.then(|| threads_only(&snap));
        let front = self.kept.front().map_or(taken, |s| s.taken);
        let throughout = {
            let older: Vec<&Snapshot> = self.kept.iter().collect();
            super::timed::settle_newest(&older, &mut snap, SETTLE_SPAN)
        };
        let spans = taken.duration_since(front).unwrap_or_default() >= SETTLE_SPAN;
        if let Some(copy) = kept_copy {
            self.kept.push_back(copy);
        }
        // The oldest one kept is the newest that still makes the window span the whole span.
        while self.kept.len() > 2
            && taken.duration_since(self.kept[1].taken).unwrap_or_default() >= SETTLE_SPAN
        {
            self.kept.pop_front();
        }
        self.carry_entries(front, &throughout, &mut snap);
        (snap, spans)
    }

    /// Count each wait of `newest` from its first entry: the one remembered from earlier
    /// windows where the thread was in the same wait in every older snapshot of the window
    /// (`throughout`, per thread of `newest`) and last seen in it within the window (which
    /// begins at `front`); else its entry as this window settled it.
    fn carry_entries(&mut self, front: SystemTime, throughout: &[bool], newest: &mut Snapshot) {
        let taken = newest.taken;
        for (t, &throughout) in newest.threads.iter_mut().zip(throughout) {
            let Some(w) = t.waits_for.as_mut() else {
                continue;
            };
            let own = w
                .waited_s
                .and_then(|s| taken.checked_sub(Duration::from_secs_f64(s.0.max(0.0))))
                .unwrap_or(taken);
            let entered = match self.entries.get(&t.id) {
                Some(e) if throughout && e.seen >= front && super::timed::same_wait(&e.wait, w) => {
                    e.entered.min(own)
                }
                _ => own,
            };
            let since = taken.duration_since(entered).unwrap_or_default();
            w.waited_s = Some(Seconds(since.as_secs_f64()));
            match self.entries.get_mut(&t.id) {
                Some(e) => {
                    if !super::timed::same_wait(&e.wait, w) {
                        e.wait = w.clone();
                    }
                    e.entered = entered;
                    e.seen = taken;
                }
                None => {
                    self.entries.insert(
                        t.id.clone(),
                        Entry {
                            wait: w.clone(),
                            entered,
                            seen: taken,
                        },
                    );
                }
            }
        }
        // A thread between two entries of its loop keeps its entry until the window no
        // longer shows it in that wait. One seen now is one of `newest`'s (no search).
        self.entries
            .retain(|id, e| e.seen == taken || (e.seen >= front && newest.thread(id).is_some()));
    }
}

/// What settling reads of an older snapshot, as it was taken: when, and its threads. Its
/// tasks, locks and loops (10,000 tasks on a busy loop) are left out, as only the newest
/// snapshot of a window comes back out of it.
fn threads_only(snap: &Snapshot) -> Snapshot {
    Snapshot::of_threads(snap.taken, snap.pid, snap.threads.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::fixtures::{snapshot, thread};
    use crate::analysis::Accumulator;
    use crate::model::*;
    use std::time::SystemTime;

    /// One thread in a timed condition wait at `site` (a loop of `cond.wait(0.2)`), at `at`.
    fn waiting(at: SystemTime, site: &str, timeout: f64) -> Snapshot {
        let mut t = thread(1, 1, "cond-loop", Some((WaitKind::Notify, "1:l:0xc")));
        t.state = ThreadState::ConditionWait;
        t.blocked = false;
        let w = t.waits_for.as_mut().unwrap();
        w.timed = true;
        w.site = Some(site.into());
        w.timeout_s = Some(Seconds(timeout));
        w.waited_s = Some(Seconds(0.05));
        let mut s = snapshot(vec![t], Vec::new());
        s.taken = at;
        s
    }

    #[test]
    fn a_polling_loop_in_a_stream_is_blocked_once_the_stream_spans_a_window() {
        let t0 = SystemTime::now();
        let mut acc = Accumulator::over_time();
        let mut blocked_at = None;
        for i in 0..25u64 {
            let at = t0 + Duration::from_millis(100 * i);
            acc.push(waiting(at, "cond_loop app.py:9", 0.2));
            let t = &acc.last().unwrap().threads[0];
            if t.blocked && blocked_at.is_none() {
                blocked_at = Some(i);
            }
            if let Some(b) = blocked_at {
                assert!(t.blocked, "blocked from snapshot {b} on, not at {i}");
            }
        }
        // Blocked only once a second of snapshots agree, and from then on.
        assert_eq!(blocked_at, Some(10));
        let w = acc.last().unwrap().threads[0].waits_for.clone().unwrap();
        // Counted from its first entry (0.05 s before the first snapshot), past the window.
        assert!((w.waited_s.unwrap().0 - 2.45).abs() < 0.01, "{w:?}");
        // The stall is found from then on, and counts as persisting: over every settled
        // snapshot, though not over the stream's first second.
        let stall = acc
            .last_findings
            .iter()
            .find(|f| f.kind == FindingKind::Stall)
            .expect("a stall")
            .id
            .clone();
        assert_eq!(acc.warmup, 10);
        assert!(acc.persisted(&stall));
        assert_eq!(acc.seen.get(&stall), Some(&15));
    }

    #[test]
    fn a_wait_left_and_entered_again_later_counts_from_its_new_entry() {
        let t0 = SystemTime::now();
        let mut acc = Accumulator::over_time();
        for i in 0..40u64 {
            let at = t0 + Duration::from_millis(100 * i);
            let mut s = waiting(at, "cond_loop app.py:9", 0.2);
            if (15..20).contains(&i) {
                // Half a second elsewhere: the first wait ended.
                s.threads[0].waits_for.as_mut().unwrap().site = Some("work app.py:20".into());
            }
            acc.push(s);
        }
        let w = acc.last().unwrap().threads[0].waits_for.clone().unwrap();
        // Entered again at snapshot 20 (0.05 s before it): 1.95 s by snapshot 39.
        assert!((w.waited_s.unwrap().0 - 1.95).abs() < 0.01, "{w:?}");
    }

    #[test]
    fn a_short_timed_wait_that_ends_is_never_blocked_in_a_stream() {
        // `pause.wait(0.25)` entered again every 0.25 s while another thread goes from one
        // wait to another (the program moves on), sampled at 100 Hz.
        let t0 = SystemTime::now();
        let mut acc = Accumulator::over_time();
        for i in 0..200u64 {
            let at = t0 + Duration::from_millis(10 * i);
            let mut s = waiting(at, "alternate app.py:40", 0.25);
            s.threads[0].waits_for.as_mut().unwrap().waited_s =
                Some(Seconds((i % 25) as f64 / 100.0));
            let target = if (i / 15) % 2 == 0 {
                "1:l:0xa"
            } else {
                "1:l:0xb"
            };
            s.threads
                .push(thread(1, 2, "path", Some((WaitKind::Notify, target))));
            acc.push(s);
            assert!(!acc.last().unwrap().threads[0].blocked, "blocked at {i}");
        }
    }
}
