//! How long a thread's wait may last and how long it has lasted in this entry: the `timeout`
//! and `endtime` locals of the `threading`/`queue` frames it waits in (`Condition.wait`,
//! `Event.wait`, `Queue.get`, `Semaphore.acquire`, `Thread.join`), and the absolute deadline
//! its futex wait carries. A polling loop's re-entries are joined into one wait over the
//! window by `analysis::timed`, not here; nothing here decides whether a wait is blocked.

use super::builder::*;
use crate::target::procfs::{Syscall, SYS_FUTEX};

/// `FUTEX_WAIT_BITSET`: its timeout is an absolute `struct timespec`; `FUTEX_CLOCK_REALTIME`
/// says which clock (monotonic without it). glibc's `sem_clockwait`/`sem_timedwait` use it.
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_CLOCK_REALTIME: u64 = 0x100;
const FUTEX_CMD: u64 = 0x7f;

/// Waits longer than this (about 31 years) are no real deadline: a torn read.
const MAX_SECONDS: f64 = 1e9;

/// What a thread's frames and futex say of its wait's timing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Timing {
    /// The timeout the caller asked for (the outermost `threading`/`queue` frame's).
    pub timeout: Option<f64>,
    /// Seconds left before the wait times out.
    pub remaining: Option<f64>,
}

impl Timing {
    /// Seconds waited in this entry: the timeout less what is left of it.
    pub fn waited(&self) -> Option<f64> {
        let (t, r) = (self.timeout?, self.remaining?);
        (r <= t + 0.5).then_some((t - r).max(0.0))
    }
}

/// Now on `clock`, in seconds.
fn now(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the one we pass.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Seconds until `deadline`, a value of `time.monotonic()` or of `time.time()`: Python code
/// uses either (`queue` the first, some libraries the second), and the two clocks are decades
/// apart, so the nearer one is the clock it was read on.
fn until(deadline: f64) -> Option<f64> {
    let (mono, real) = (now(libc::CLOCK_MONOTONIC), now(libc::CLOCK_REALTIME));
    let left = if (deadline - mono).abs() < (deadline - real).abs() {
        deadline - mono
    } else {
        deadline - real
    };
    (left.abs() < MAX_SECONDS).then_some(left.max(0.0))
}

fn in_sync_module(f: &Frame) -> bool {
    matches!(short_file(&f.file), "threading.py" | "queue.py")
}

impl<'w, 'a> Builder<'w, 'a> {
    /// The timing of a wait whose innermost frames are `frames`, in the futex wait `syscall`.
    pub(super) fn wait_timing(&self, frames: &[FrameView], syscall: Option<&Syscall>) -> Timing {
        let objs = self.objs();
        let number = |f: &FrameView, name: &str| {
            self.walker
                .local(f.raw, name)
                .and_then(|v| objs.number(v))
                .filter(|v| v.abs() < MAX_SECONDS)
        };
        let mut timing = Timing::default();
        let mut endtime = None;
        for f in frames.iter().take_while(|f| in_sync_module(&f.frame)) {
            // A negative timeout (`lock.acquire(True, -1)`, as `join()` passes it) is none.
            if let Some(t) = number(f, "timeout").filter(|t| *t >= 0.0) {
                timing.timeout = Some(t);
            }
            endtime = number(f, "endtime").or(endtime);
        }
        timing.remaining = endtime
            .and_then(until)
            .or_else(|| syscall.and_then(|s| self.futex_left(s)));
        timing
    }

    /// Seconds left of a futex wait with an absolute deadline (`FUTEX_WAIT_BITSET`), read
    /// from the `timespec` its fourth argument points to in the target.
    fn futex_left(&self, s: &Syscall) -> Option<f64> {
        if s.nr != SYS_FUTEX || s.args[1] & FUTEX_CMD != FUTEX_WAIT_BITSET || s.args[3] == 0 {
            return None;
        }
        let mem = self.objs().mem;
        let at = s.args[3] as usize;
        let (sec, nsec) = (mem.i64(at).ok()?, mem.i64(at + 8).ok()?);
        if !(0..1_000_000_000).contains(&nsec) || !(0..i64::MAX / 2).contains(&sec) {
            return None;
        }
        let clock = if s.args[1] & FUTEX_CLOCK_REALTIME != 0 {
            libc::CLOCK_REALTIME
        } else {
            libc::CLOCK_MONOTONIC
        };
        let left = sec as f64 + nsec as f64 * 1e-9 - now(clock);
        (left.abs() < MAX_SECONDS).then_some(left.max(0.0))
    }

    /// Fill a wait's `timeout_s` and, for this entry, `waited_s`.
    pub(super) fn time_wait(&self, w: &mut Wait, frames: &[FrameView], syscall: Option<&Syscall>) {
        let timing = self.wait_timing(frames, syscall);
        w.timeout_s = timing.timeout.map(Seconds);
        w.waited_s = timing.waited().map(Seconds);
    }
}
