//! When each thread entered the state it is in, over a stream of snapshots. A thread in a
//! syscall gridlock does not model (state `syscall`) has entered it again when it is seen in
//! another syscall, or was put on a CPU since it was last seen (its `schedstat` timeslice
//! count moved): a thread renaming files in a loop is seen in `rename(2)` call after call,
//! each one short, never one call held across the window. One that stays in the same call
//! without running keeps its first sighting, so it is still reported as not modelled. This
//! file reads no process and decides no thread state; it only dates the states it is given.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::model::{Thread, ThreadState};

/// What a thread was last seen doing, and when it started doing it.
struct Entry {
    state: ThreadState,
    /// For the `syscall` state only: the syscall and the timeslice count it was seen with.
    call: Option<(String, Option<u64>)>,
    since: SystemTime,
}

/// Per thread id: when it entered its current state (a lower bound: its first sighting in it).
#[derive(Default)]
pub struct StateSince {
    entries: HashMap<String, Entry>,
}

/// The syscall and timeslice count that make a `syscall`-state sighting one call.
fn call_of(t: &Thread) -> Option<(String, Option<u64>)> {
    (t.state == ThreadState::Syscall).then(|| {
        (
            t.syscall_name.clone().unwrap_or_default(),
            t.kernel.as_ref().and_then(|k| k.timeslices),
        )
    })
}

/// Whether `t`, seen now, is still in the state `e` saw it enter. In the `syscall` state: the
/// same call, and not put on a CPU since (an unknown count proves no move).
fn still_in(e: &Entry, t: &Thread) -> bool {
    if e.state != t.state {
        return false;
    }
    let Some((name, slices)) = &e.call else {
        return true;
    };
    let now = t.kernel.as_ref().and_then(|k| k.timeslices);
    t.syscall_name.as_deref().unwrap_or_default() == name
        && match (slices, now) {
            (Some(a), Some(b)) => *a == b,
            _ => true,
        }
}

impl StateSince {
    /// Take in the threads of a snapshot taken at `taken`; threads no longer there are dropped.
    pub fn observe(&mut self, threads: &[Thread], taken: SystemTime) {
        // Keys cloned only for threads not seen before; a map with one entry per thread of
        // this snapshot (each was just visited) holds no gone one, so needs no sweep.
        for t in threads {
            match self.entries.get_mut(&t.id) {
                Some(e) if still_in(e, t) => {
                    // The count it has now: a later move is measured from this sighting.
                    if let Some((_, slices)) = e.call.as_mut() {
                        *slices = t.kernel.as_ref().and_then(|k| k.timeslices).or(*slices);
                    }
                }
                Some(e) => {
                    *e = Entry {
                        state: t.state,
                        call: call_of(t),
                        since: taken,
                    }
                }
                None => {
                    self.entries.insert(
                        t.id.clone(),
                        Entry {
                            state: t.state,
                            call: call_of(t),
                            since: taken,
                        },
                    );
                }
            }
        }
        if self.entries.len() != threads.len() {
            self.entries
                .retain(|id, _| threads.iter().any(|t| &t.id == id));
        }
    }

    /// When thread `id` entered the state it was last seen in.
    pub fn get(&self, id: &str) -> Option<SystemTime> {
        self.entries.get(id).map(|e| e.since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::fixtures::thread;
    use crate::model::KernelView;
    use std::time::Duration;

    /// A thread in `call` (state `syscall`, kernel state `D`) put on a CPU `slices` times.
    fn in_call(call: &str, slices: Option<u64>) -> Thread {
        let mut t = thread(1, 1, "worker", None);
        t.state = ThreadState::Syscall;
        t.syscall_name = Some(call.into());
        t.kernel = Some(KernelView {
            state: "D".into(),
            syscall: Some(format!("{call} 0x3 0x7f00 0x0 0x0")),
            wchan: None,
            timeslices: slices,
        });
        t
    }

    fn since_after(sightings: &[Thread]) -> usize {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut s = StateSince::default();
        for (i, t) in sightings.iter().enumerate() {
            s.observe(
                std::slice::from_ref(t),
                t0 + Duration::from_millis(100 * i as u64),
            );
        }
        let since = s.get("1:t:1").unwrap();
        (since.duration_since(t0).unwrap().as_millis() / 100) as usize
    }

    #[test]
    fn a_thread_renaming_in_a_loop_enters_its_syscall_again_at_each_call() {
        // Seen in rename(2) five times, run between each: five calls, the last one new.
        let loop_: Vec<Thread> = (0..5)
            .map(|i| in_call("rename", Some(40 + 7 * i)))
            .collect();
        assert_eq!(since_after(&loop_), 4);
        // Seen in other unmodelled calls in turn (open, rename, close): each a new one too.
        let calls = [
            in_call("openat", Some(40)),
            in_call("rename", Some(40)),
            in_call("close", Some(40)),
        ];
        assert_eq!(since_after(&calls), 2);
    }

    #[test]
    fn a_thread_held_in_one_syscall_keeps_its_first_sighting() {
        // Never put on a CPU across the window: one call, from the first sighting on.
        let stuck: Vec<Thread> = (0..5).map(|_| in_call("rename", Some(40))).collect();
        assert_eq!(since_after(&stuck), 0);
        // Counts that cannot be read prove no move: still one call, never "fine".
        let unknown: Vec<Thread> = (0..5).map(|_| in_call("msgrcv", None)).collect();
        assert_eq!(since_after(&unknown), 0);
        let mixed = [
            in_call("msgrcv", Some(3)),
            in_call("msgrcv", None),
            in_call("msgrcv", Some(3)),
        ];
        assert_eq!(since_after(&mixed), 0);
    }

    #[test]
    fn other_states_are_dated_by_state_alone() {
        // A lock wait seen again is the same state, whatever the kernel counts say.
        let mut a = thread(1, 1, "worker", None);
        a.state = ThreadState::LockWait;
        a.kernel = Some(KernelView {
            state: "S".into(),
            syscall: None,
            wchan: None,
            timeslices: Some(1),
        });
        let mut b = a.clone();
        b.kernel.as_mut().unwrap().timeslices = Some(9);
        assert_eq!(since_after(&[a.clone(), b.clone()]), 0);
        // Leaving it and coming back is a new entry.
        let running = {
            let mut r = a.clone();
            r.state = ThreadState::Running;
            r
        };
        assert_eq!(since_after(&[a, running, b]), 2);
    }
}
