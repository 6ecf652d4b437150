//! Who held the GIL over a stream of samples, for how long, and who waited for it (`record`,
//! `top`): the question "which threads hold the GIL, and who waits, for how long". Each
//! sample says who holds its interpreter's GIL (`owns_gil`: the main one, or a
//! subinterpreter's own) and who sleeps in `take_gil` (`gil_wait`); runs of consecutive samples
//! make a hold or a wait. It reads snapshots only.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::model::{GilLockUse, GilThreadUse, GilUse, LockKind, ThreadState};
use crate::snapshot::Snapshot;

#[derive(Default)]
pub struct GilTracker {
    samples: usize,
    held_samples: usize,
    contended_samples: usize,
    max_waiters: usize,
    /// Per thread id, in the order first seen holding or waiting.
    threads: HashMap<String, ThreadRuns>,
    /// Per GIL lock node, in the order first seen contended.
    gils: Vec<GilRuns>,
}

/// One GIL's contended samples: its waiters and the samples each holder held it in.
#[derive(Default)]
struct GilRuns {
    lock: String,
    name: Option<String>,
    contended: usize,
    max_waiters: usize,
    /// (thread id, samples), in the order first seen.
    holders: Vec<(String, usize)>,
}

#[derive(Default)]
struct ThreadRuns {
    name: Option<String>,
    first_seen: usize,
    samples: usize,
    held: usize,
    waited: usize,
    hold: Run,
    wait: Run,
    longest_hold: (f64, usize),
    longest_wait: (f64, usize),
    max_waiters_while_held: usize,
}

/// A run of consecutive samples: when it started and how many samples it has so far.
#[derive(Default)]
struct Run {
    since: Option<SystemTime>,
    samples: usize,
}

impl Run {
    /// Extend the run with a sample at `at` if `on`, else end it; returns its (seconds,
    /// samples) so far.
    fn step(&mut self, on: bool, at: SystemTime) -> (f64, usize) {
        if !on {
            *self = Run::default();
            return (0.0, 0);
        }
        let since = *self.since.get_or_insert(at);
        self.samples += 1;
        let secs = at
            .duration_since(since)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        (secs, self.samples)
    }
}

fn longer(best: &mut (f64, usize), now: (f64, usize)) {
    if now.1 > best.1 || (now.1 == best.1 && now.0 > best.0) {
        *best = now;
    }
}

impl GilTracker {
    pub fn observe(&mut self, snap: &Snapshot) {
        self.samples += 1;
        let waiters = snap
            .threads
            .iter()
            .filter(|t| t.state == ThreadState::GilWait && !t.owns_gil)
            .count();
        let held = snap.threads.iter().any(|t| t.owns_gil);
        self.held_samples += usize::from(held);
        self.contended_samples += usize::from(waiters > 0);
        self.max_waiters = self.max_waiters.max(waiters);
        let order = self.threads.len();
        for t in &snap.threads {
            let waiting = t.state == ThreadState::GilWait && !t.owns_gil;
            let known = self.threads.contains_key(&t.id);
            if !known && !t.owns_gil && !waiting {
                continue;
            }
            let r = self
                .threads
                .entry(t.id.clone())
                .or_insert_with(|| ThreadRuns {
                    first_seen: order,
                    ..ThreadRuns::default()
                });
            if t.name.is_some() {
                r.name = t.name.clone();
            }
            r.samples += 1;
            r.held += usize::from(t.owns_gil);
            r.waited += usize::from(waiting);
            let hold = r.hold.step(t.owns_gil, snap.taken);
            longer(&mut r.longest_hold, hold);
            let wait = r.wait.step(waiting, snap.taken);
            longer(&mut r.longest_wait, wait);
            if t.owns_gil {
                r.max_waiters_while_held = r.max_waiters_while_held.max(waiters);
            }
        }
        self.observe_gils(snap);
        // A thread absent from this sample ended its runs (it exited, or was not read).
        for (id, r) in self.threads.iter_mut() {
            if snap.thread(id).is_none() {
                r.hold = Run::default();
                r.wait = Run::default();
            }
        }
    }

    /// Each GIL lock node of the sample (one per GIL some thread waits for): its waiters and
    /// holder, counted for that GIL alone.
    fn observe_gils(&mut self, snap: &Snapshot) {
        for lock in snap.locks.iter().filter(|l| l.kind == LockKind::Gil) {
            if lock.waiters.is_empty() {
                continue;
            }
            let at = match self.gils.iter().position(|g| g.lock == lock.id) {
                Some(at) => at,
                None => {
                    self.gils.push(GilRuns {
                        lock: lock.id.clone(),
                        ..GilRuns::default()
                    });
                    self.gils.len() - 1
                }
            };
            let g = &mut self.gils[at];
            g.name = lock.name.clone().or(g.name.take());
            g.contended += 1;
            g.max_waiters = g.max_waiters.max(lock.waiters.len());
            let holder = lock.holders.iter().find_map(|h| h.thread.clone());
            if let Some(holder) = holder {
                match g.holders.iter_mut().find(|(t, _)| *t == holder) {
                    Some((_, n)) => *n += 1,
                    None => g.holders.push((holder, 1)),
                }
            }
        }
    }

    /// The summary so far, or `None` when no sample saw a holder or a waiter (the GIL was not
    /// read, or nobody used it while sampled).
    pub fn summary(&self) -> Option<GilUse> {
        if self.threads.is_empty() {
            return None;
        }
        let total = self.samples.max(1) as f64;
        let mut rows: Vec<(&String, &ThreadRuns)> = self.threads.iter().collect();
        rows.sort_by(|a, b| {
            b.1.held
                .cmp(&a.1.held)
                .then(b.1.longest_hold.0.total_cmp(&a.1.longest_hold.0))
                .then(a.1.first_seen.cmp(&b.1.first_seen))
        });
        Some(GilUse {
            samples: self.samples,
            held_samples: self.held_samples,
            contended_samples: self.contended_samples,
            max_waiters: self.max_waiters,
            threads: rows
                .into_iter()
                .map(|(id, r)| GilThreadUse {
                    thread: id.clone(),
                    name: r.name.clone(),
                    samples: r.samples,
                    held: r.held,
                    share: r.held as f64 / total,
                    longest_hold_s: r.longest_hold.0,
                    longest_hold_samples: r.longest_hold.1,
                    waited: r.waited,
                    longest_wait_s: r.longest_wait.0,
                    max_waiters_while_held: r.max_waiters_while_held,
                })
                .collect(),
            gils: self
                .gils
                .iter()
                .map(|g| {
                    // The first seen among those holding it most.
                    let top = g
                        .holders
                        .iter()
                        .rev()
                        .max_by_key(|(_, n)| *n)
                        .map(|(t, n)| (t.clone(), *n));
                    GilLockUse {
                        lock: g.lock.clone(),
                        name: g.name.clone(),
                        contended_samples: g.contended,
                        max_waiters: g.max_waiters,
                        top_holder: top.as_ref().map(|(t, _)| t.clone()),
                        top_holder_samples: top.map_or(0, |(_, n)| n),
                    }
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::fixtures;
    use std::time::Duration;

    fn two_threads() -> Snapshot {
        let mut threads = vec![
            fixtures::thread(1, 1, "a", None),
            fixtures::thread(1, 2, "b", None),
        ];
        for t in &mut threads {
            t.state = ThreadState::Running;
        }
        fixtures::snapshot(threads, Vec::new())
    }

    #[test]
    fn counts_shares_runs_and_waiters() {
        let mut g = GilTracker::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        // "a" holds for three samples while "b" waits, then "b" holds once.
        for i in 0..4u64 {
            let mut snap = two_threads();
            snap.taken = t0 + Duration::from_millis(100 * i);
            let (a, b) = if i < 3 { (0, 1) } else { (1, 0) };
            snap.threads[a].owns_gil = true;
            snap.threads[b].state = ThreadState::GilWait;
            g.observe(&snap);
        }
        let s = g.summary().unwrap();
        assert_eq!((s.samples, s.held_samples, s.contended_samples), (4, 4, 4));
        let a = &s.threads[0];
        assert_eq!(a.name.as_deref(), Some("a"));
        assert_eq!((a.held, a.longest_hold_samples, a.waited), (3, 3, 1));
        assert!((a.longest_hold_s - 0.2).abs() < 1e-9);
        assert!((a.share - 0.75).abs() < 1e-9);
        assert_eq!(a.max_waiters_while_held, 1);
        let b = &s.threads[1];
        assert_eq!((b.held, b.waited, b.longest_hold_samples), (1, 3, 1));
        assert!((b.longest_wait_s - 0.2).abs() < 1e-9);
    }

    /// A GIL node `id` named `name`, held by `holder`, waited for by `waiters`.
    fn gil(id: &str, name: &str, holder: &str, waiters: &[&str]) -> crate::model::Lock {
        let mut l = fixtures::lock(id, LockKind::Gil, name, &[holder], None);
        l.name = Some(name.into());
        l.waiters = waiters
            .iter()
            .map(|w| crate::model::Waiter {
                thread: w.to_string(),
                evidence: crate::model::Evidence::Futex,
                site: None,
            })
            .collect();
        l
    }

    #[test]
    fn each_gil_keeps_its_own_series() {
        let mut g = GilTracker::default();
        // The main GIL is contended in both samples (holder "a"), a subinterpreter's own GIL in
        // the second only (holder "c", two waiters).
        for i in 0..2 {
            let mut snap = two_threads();
            snap.threads[0].owns_gil = true;
            snap.threads[1].state = ThreadState::GilWait;
            snap.locks.push(gil("1:l:0x10", "the GIL", "a", &["b"]));
            if i == 1 {
                snap.locks.push(gil(
                    "1:l:0x20",
                    "the GIL of interpreter 1",
                    "c",
                    &["d", "e"],
                ));
            }
            g.observe(&snap);
        }
        let s = g.summary().unwrap();
        let got: Vec<_> = s
            .gils
            .iter()
            .map(|g| {
                (
                    g.name.as_deref().unwrap(),
                    g.contended_samples,
                    g.max_waiters,
                    g.top_holder.as_deref().unwrap(),
                    g.top_holder_samples,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("the GIL", 2, 1, "a", 2),
                ("the GIL of interpreter 1", 1, 2, "c", 1)
            ]
        );
    }

    #[test]
    fn nobody_holding_or_waiting_gives_no_summary() {
        let mut g = GilTracker::default();
        g.observe(&two_threads());
        assert!(g.summary().is_none());
    }
}
