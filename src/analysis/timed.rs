//! A timed wait is a wait (the contract's Blocked): over a window of snapshots, a thread
//! found in the same wait (same kind, target and site) in every snapshot is blocked, timed
//! or not. Either its timeout lies beyond the window, or it timed out and waited again at the
//! same site (a polling loop: one wait). `waited_s` counts from the wait's first entry seen.
//! This file only rewrites snapshots' waits before the detectors see them, and words how long
//! a deadlock of timed waits lasts; it reads no process.

use rustc_hash::FxHashMap;

use crate::model::*;
use crate::snapshot::Snapshot;

/// What makes two sightings of a wait the same wait (borrowed: compared per snapshot of a
/// window for every waiting thread, never kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct WaitKey<'w> {
    kind: WaitKind,
    target: Option<&'w str>,
    site: Option<&'w str>,
}

fn key(w: &Wait) -> WaitKey<'_> {
    WaitKey {
        kind: w.kind,
        target: w.target.as_deref(),
        site: w.site.as_deref(),
    }
}

/// Whether two sightings are of the same wait: same kind, target and site.
pub fn same_wait(a: &Wait, b: &Wait) -> bool {
    key(a) == key(b)
}

/// Join each thread's sightings of one wait over the window (oldest snapshot first): set
/// `waited_s` from the first entry seen, and mark a timed wait that held for the whole window
/// blocked. A thread seen running in some snapshot with exactly the stack it had in that
/// wait (it had just timed out and was waiting again) is taken to be in it.
pub fn settle_window(snaps: &mut [Snapshot]) {
    let plans = {
        let view: Vec<&Snapshot> = snaps.iter().collect();
        plan_window(&view, std::time::Duration::ZERO, |_| true)
    };
    for plan in plans.into_iter().flatten() {
        plan.apply(snaps);
    }
}

/// Settle only the newest snapshot of a stream against `older` ones (oldest first, as they
/// were taken), as `settle_window` would settle it; a timed wait is blocked only if the
/// window spans at least `span` (a stream's first snapshots cannot tell a polling loop from
/// a short wait). The older snapshots are only read: a stream pays no copy of its window.
/// Returns, per thread of `newest` (in its order), whether the window shows it in its
/// (settled) wait in every older snapshot.
pub fn settle_newest(
    older: &[&Snapshot],
    newest: &mut Snapshot,
    span: std::time::Duration,
) -> Vec<bool> {
    let n = older.len() + 1;
    let (plans, throughout) = {
        let mut view: Vec<&Snapshot> = older.to_vec();
        view.push(newest);
        let plans = plan_window(&view, span, |i| i + 1 == n);
        let throughout: Vec<bool> = plans
            .iter()
            .zip(&newest.threads)
            .map(|(plan, t)| match plan {
                Some(p) if p.settled => p.first == 0,
                // Left as seen: the raw sightings say it.
                _ => t.waits_for.as_ref().is_some_and(|w| {
                    older.iter().all(|s| {
                        s.thread(&t.id)
                            .and_then(|o| o.waits_for.as_ref())
                            .is_some_and(|o| same_wait(o, w))
                    })
                }),
            })
            .collect();
        (plans, throughout)
    };
    for plan in plans.into_iter().flatten() {
        plan.apply_last(newest, n);
    }
    throughout
}

/// One thread's settling over a window, worked out from the snapshots as taken: where it
/// is in each, which running sightings take the wait of another, and what to write.
struct Plan {
    /// Its index in each snapshot.
    at: Vec<usize>,
    /// Whether a wait was settled (else the thread is left as seen).
    settled: bool,
    /// The first snapshot of the run of sightings of the wait that ends at the newest.
    first: usize,
    /// When that wait was first entered.
    entered: std::time::SystemTime,
    /// Whether the wait is blocked (timed, and held over the whole window).
    blocked: bool,
    /// For each sighting from `first` on that takes another's wait: that wait, state and
    /// holds (copied only for the snapshots to be written).
    restored: Vec<(usize, Restored)>,
}

type Restored = (Option<Wait>, ThreadState, Vec<Hold>);

/// Each newest thread's plan (`None`: absent from some snapshot of the window, left as seen).
/// `writes(i)` says which snapshots will be written (the restored waits copied for them).
fn plan_window(
    snaps: &[&Snapshot],
    span: std::time::Duration,
    writes: impl Fn(usize) -> bool,
) -> Vec<Option<Plan>> {
    let Some(last) = snaps.last() else {
        return Vec::new();
    };
    let spans = match (snaps.first(), snaps.last()) {
        (Some(a), Some(b)) => b.taken.duration_since(a.taken).unwrap_or_default() >= span,
        _ => false,
    };
    let progress = some_thread_moved(snaps);
    last.threads
        .iter()
        .enumerate()
        .map(|(k, t)| {
            // A thread missing from a snapshot of the window is left as it was seen.
            let at: Vec<usize> = snaps
                .iter()
                .map(|s| position(s, &t.id, k))
                .collect::<Option<_>>()?;
            Some(plan_thread(snaps, at, spans, progress, &writes))
        })
        .collect()
}

/// Where thread `id` is in `snap`: usually where it was in the newest (`hint`).
fn position(snap: &Snapshot, id: &str, hint: usize) -> Option<usize> {
    match snap.threads.get(hint) {
        Some(t) if t.id == id => Some(hint),
        _ => snap.threads.iter().position(|t| t.id == id),
    }
}

/// Whether some thread went from one wait to another over the window (each seen in at least
/// two snapshots): the process makes progress, so a timed wait entered again and again is a
/// thread pacing that progress (`pause.wait(0.25)` between steps), not a loop whose notifier
/// died.
fn some_thread_moved(snaps: &[&Snapshot]) -> bool {
    type Sighting<'a> = (&'a str, WaitKind, Option<&'a str>, Option<&'a str>);
    // Hashed with Fx: ids and sites are gridlock's own strings, and SipHash was most of this.
    let mut seen: FxHashMap<Sighting, usize> = FxHashMap::default();
    for s in snaps {
        for t in &s.threads {
            if let Some(w) = &t.waits_for {
                let k = (
                    t.id.as_str(),
                    w.kind,
                    w.target.as_deref(),
                    w.site.as_deref(),
                );
                *seen.entry(k).or_default() += 1;
            }
        }
    }
    let mut keys: FxHashMap<&str, usize> = FxHashMap::default();
    for ((id, ..), n) in seen {
        if n >= 2 {
            *keys.entry(id).or_default() += 1;
        }
    }
    keys.values().any(|&k| k >= 2)
}

fn plan_thread(
    snaps: &[&Snapshot],
    at: Vec<usize>,
    spans: bool,
    progress: bool,
    writes: &impl Fn(usize) -> bool,
) -> Plan {
    let n = snaps.len();
    let thread = |i: usize| &snaps[i].threads[at[i]];
    let unsettled = |at: Vec<usize>| Plan {
        at,
        settled: false,
        first: n - 1,
        entered: snaps[n - 1].taken,
        blocked: false,
        restored: Vec::new(),
    };
    // A running sighting at the wait's own stack (woken by its timeout, not yet back in
    // Python), or, once per window, anywhere in the frames that called the wait (between
    // two entries of the loop): the wait of a snapshot that saw it.
    let mut blips = 0;
    let borrowed: Vec<Option<usize>> = (0..n)
        .map(|i| {
            let t = thread(i);
            if t.waits_for.is_some() || t.state != ThreadState::Running || t.frames.is_empty() {
                return None;
            }
            // Not a GIL wait for a sighting that holds the GIL: it took it, its wait is over
            // (threads taking turns at the GIL wait for it at the line they run; borrowing
            // the wait made the one running with the GIL a blocked waiter, and every thread
            // blocked: a false stall on a loaded host).
            let timed_at = |j: usize| {
                thread(j).waits_for.as_ref().is_some_and(|w| {
                    w.timed && !(t.owns_gil && crate::snapshot::gil::is_gil_wait(w))
                })
            };
            if let Some(j) = (0..n).find(|&j| timed_at(j) && thread(j).frames == t.frames) {
                return Some(j);
            }
            let j = (0..n).find(|&j| timed_at(j) && same_caller(&thread(j).frames, &t.frames))?;
            blips += 1;
            (blips <= 1.max(n / 5)).then_some(j)
        })
        .collect();
    let wait_at = |i: usize| -> Option<&Wait> {
        match borrowed[i] {
            Some(j) => thread(j).waits_for.as_ref(),
            None => thread(i).waits_for.as_ref(),
        }
    };
    let Some(k) = wait_at(n - 1).map(key) else {
        return unsettled(at);
    };
    if k.kind == WaitKind::UnknownFutex {
        return unsettled(at);
    }
    // The run of sightings of this wait that ends at the newest snapshot.
    let first = (0..n)
        .rev()
        .take_while(|&i| wait_at(i).map(key).as_ref() == Some(&k))
        .last()
        .unwrap_or(n - 1);
    // Entered again within the window (its own entry, from the frame, is younger than the
    // window) while the process moves on: not one wait.
    let reentered = wait_at(n - 1).and_then(|w| w.waited_s).is_some_and(|own| {
        let seen = snaps[n - 1]
            .taken
            .duration_since(snaps[first].taken)
            .unwrap_or_default();
        own.0 + 0.05 < seen.as_secs_f64()
    });
    let whole_window = first == 0 && spans && !(progress && reentered);
    let timed = (first..n).any(|i| wait_at(i).is_some_and(|w| w.timed));
    // The first entry: the earliest sighting, less what it had waited in its own entry.
    let entered = {
        let s = snaps[first];
        let own = wait_at(first)
            .and_then(|w| w.waited_s)
            .map(|w| std::time::Duration::from_secs_f64(w.0))
            .unwrap_or_default();
        s.taken.checked_sub(own).unwrap_or(s.taken)
    };
    let restored = (first..n)
        .filter(|&i| writes(i))
        .filter_map(|i| {
            let o = thread(borrowed[i]?);
            Some((i, (o.waits_for.clone(), o.state, o.holds.clone())))
        })
        .collect();
    Plan {
        at,
        settled: true,
        first,
        entered,
        blocked: timed && whole_window,
        restored,
    }
}

impl Plan {
    /// Write the settled sightings into `snaps` (the whole window).
    fn apply(mut self, snaps: &mut [Snapshot]) {
        if !self.settled {
            return;
        }
        for i in self.first..snaps.len() {
            self.write(&mut snaps[i], i);
        }
    }

    /// Write only the newest sighting, into `last`: the window had `n` snapshots.
    fn apply_last(mut self, last: &mut Snapshot, n: usize) {
        if self.settled {
            self.write(last, n - 1);
        }
    }

    /// Write sighting `i` (the thread's in `snap`, snapshot `i` of the window).
    fn write(&mut self, snap: &mut Snapshot, i: usize) {
        let index = self.at[i];
        let restored = self
            .restored
            .iter()
            .position(|(j, _)| *j == i)
            .map(|p| self.restored.swap_remove(p).1);
        let borrowed = restored.is_some();
        let taken = snap.taken;
        let t = &mut snap.threads[index];
        if let Some((w, state, holds)) = restored {
            t.waits_for = w;
            t.state = state;
            t.holds = holds;
        }
        let Some(w) = t.waits_for.as_mut() else {
            return;
        };
        let since = taken
            .duration_since(self.entered)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        w.waited_s = Some(Seconds(w.waited_s.map_or(since, |own| own.0.max(since))));
        if self.blocked {
            t.blocked = true;
            if borrowed {
                restore_lock_view(snap, index);
            }
        }
    }
}

/// Whether a running thread's stack is the caller of a wait's stack: the same functions
/// below the `threading`/`queue` frames the wait runs in (the innermost's line aside).
fn same_caller(waiting: &[Frame], running: &[Frame]) -> bool {
    let callers = |frames: &[Frame]| -> Vec<(String, String)> {
        frames
            .iter()
            .skip_while(|f| matches!(short_file(&f.file), "threading.py" | "queue.py"))
            .map(|f| (f.function.clone(), f.file.clone()))
            .collect()
    };
    let (a, b) = (callers(waiting), callers(running));
    !a.is_empty() && a == b
}

/// A restored wait in the locks' view: the thread waits on its target again, and holds only
/// what its restored holds say (a condition's lock is released inside `Condition.wait`).
fn restore_lock_view(snap: &mut Snapshot, index: usize) {
    let t = &snap.threads[index];
    let id = t.id.clone();
    let holds: Vec<String> = t.holds.iter().map(|h| h.lock.clone()).collect();
    let wait = t.waits_for.clone();
    for lock in &mut snap.locks {
        lock.holders
            .retain(|h| h.thread.as_deref() != Some(id.as_str()) || holds.contains(&lock.id));
        if let Some(w) = wait
            .as_ref()
            .filter(|w| w.target.as_ref() == Some(&lock.id))
        {
            if !lock.waiters.iter().any(|x| x.thread == id) {
                lock.waiters.push(Waiter {
                    thread: id.clone(),
                    evidence: w.evidence,
                    site: w.site.clone(),
                });
            }
        }
    }
}

/// Seconds left before the first of `threads`' timed waits times out, counting only waits
/// that have not yet outlived their timeout (a polling loop never ends by itself).
pub fn first_timeout(snap: &Snapshot, threads: &[String]) -> Option<f64> {
    threads
        .iter()
        .filter_map(|id| snap.thread(id)?.waits_for.as_ref())
        .filter_map(|w| {
            let left = w.timeout_s?.0 - w.waited_s.map_or(0.0, |s| s.0);
            (left > 0.0).then_some(left)
        })
        .min_by(f64::total_cmp)
}

/// `3,597 s`.
pub fn seconds_text(s: f64) -> String {
    let whole = s.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out} s")
}

/// Deadlocks whose waits are timed say how long they last at most: "until the timeout in
/// 3,597 s" (the first wait to time out breaks the cycle).
pub fn annotate(snap: &Snapshot, findings: &mut [Finding]) {
    for f in findings
        .iter_mut()
        .filter(|f| f.kind == FindingKind::Deadlock)
    {
        if let Some(left) = first_timeout(snap, &f.threads) {
            f.summary = format!("{}, until the timeout in {}", f.summary, seconds_text(left));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::fixtures::{snapshot, thread};
    use std::time::{Duration, SystemTime};

    fn polling(taken: SystemTime, running: bool) -> Snapshot {
        let mut t = thread(1, 1, "cond-loop", Some((WaitKind::Notify, "1:l:0xc")));
        t.frames = vec![Frame {
            function: "wait".into(),
            file: "threading.py".into(),
            line: 320,
            locals: None,
            parameters: None,
        }];
        let w = t.waits_for.as_mut().unwrap();
        w.timed = true;
        w.site = Some("cond_loop app.py:9".into());
        w.timeout_s = Some(Seconds(0.2));
        w.waited_s = Some(Seconds(0.1));
        t.blocked = false;
        if running {
            t.waits_for = None;
            t.state = ThreadState::Running;
        }
        let mut s = snapshot(vec![t], Vec::new());
        s.taken = taken;
        s
    }

    #[test]
    fn a_polling_loop_over_the_window_is_one_blocked_wait() {
        let t0 = SystemTime::now();
        let mut snaps: Vec<Snapshot> = (0..5)
            .map(|i| polling(t0 + Duration::from_millis(250 * i), i == 2))
            .collect();
        settle_window(&mut snaps);
        for s in &snaps {
            let t = &s.threads[0];
            assert!(t.blocked, "{t:#?}");
            assert_eq!(
                t.waits_for.as_ref().unwrap().target.as_deref(),
                Some("1:l:0xc")
            );
        }
        let waited = snaps[4].threads[0]
            .waits_for
            .as_ref()
            .unwrap()
            .waited_s
            .unwrap()
            .0;
        assert!((waited - 1.1).abs() < 0.01, "{waited}");
        // It outlived its timeout: it never ends by itself.
        assert_eq!(first_timeout(&snaps[4], &["1:t:1".into()]), None);
    }

    /// Threads taking turns at the GIL (gil_share's healthy target): one seen waiting for
    /// it in every older snapshot and running with it in the newest, at the same Python
    /// line, took the GIL: it is not put back into its GIL wait.
    #[test]
    fn a_thread_that_got_the_gil_is_not_put_back_into_its_gil_wait() {
        let t0 = SystemTime::now();
        let sighting = |i: u64, running: bool| {
            let mut t = thread(1, 1, "cpu-1", Some((WaitKind::Lock, "1:l:0x9")));
            t.frames = vec![Frame {
                function: "cpu".into(),
                file: "native_locks.py".into(),
                line: 170,
                locals: None,
                parameters: None,
            }];
            let w = t.waits_for.as_mut().unwrap();
            w.timed = true;
            w.via = Some("take_gil".into());
            w.site = Some("cpu native_locks.py:170".into());
            w.waited_s = Some(Seconds(0.01));
            t.state = ThreadState::GilWait;
            if running {
                t.waits_for = None;
                t.state = ThreadState::Running;
                t.owns_gil = true;
                t.blocked = false;
            }
            let mut s = snapshot(vec![t], Vec::new());
            s.taken = t0 + Duration::from_millis(250 * i);
            s
        };
        let older: Vec<Snapshot> = (0..5).map(|i| sighting(i, false)).collect();
        let mut newest = sighting(5, true);
        let view: Vec<&Snapshot> = older.iter().collect();
        settle_newest(&view, &mut newest, Duration::from_secs(1));
        let t = &newest.threads[0];
        assert!(!t.blocked, "{t:#?}");
        assert!(t.waits_for.is_none(), "{t:#?}");
        assert_eq!(t.state, ThreadState::Running);
    }

    #[test]
    fn a_wait_seen_once_in_a_window_is_not_blocked() {
        let t0 = SystemTime::now();
        let mut snaps = vec![
            polling(t0, true),
            polling(t0 + Duration::from_millis(250), false),
        ];
        snaps[0].threads[0].frames[0].line = 1;
        settle_window(&mut snaps);
        assert!(!snaps[1].threads[0].blocked);
        assert_eq!(seconds_text(3597.4), "3,597 s");
        assert_eq!(seconds_text(12.0), "12 s");
    }
}
