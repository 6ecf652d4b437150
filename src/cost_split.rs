//! Where a snapshot's CPU time goes: a diagnostic, off unless `GRIDLOCK_COST_SPLIT` is set in
//! gridlock's environment. Each phase of a snapshot (and of its analysis) opens a `Span`;
//! time is charged to the innermost open span (exclusive), measured as this thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`, which a loaded machine inflates less than wall time).
//! `record` prints the split per snapshot on stderr at its end. Off, a span costs one load of
//! a flag. It imports nothing of gridlock: every room may open a span.

use std::cell::RefCell;
use std::sync::OnceLock;

/// The environment variable that turns the split on.
pub const ENV: &str = "GRIDLOCK_COST_SPLIT";

/// One part of a snapshot's cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `/proc`: the task list and each thread's `stat`, `syscall` and `schedstat`, and the
    /// re-reads that settle threads that moved.
    Kernel,
    /// The interpreter's thread list, `threading` names, the GIL holder, signals, the test.
    ThreadList,
    /// Each thread's frames: frame objects, code objects, line numbers.
    Frames,
    /// Waits and holders: `with` blocks, futex waits, lock owners, C locks, the GIL.
    Locks,
    /// The shared writes and reads a thread can still make (races).
    Writes,
    /// Native frames of threads asleep below Python.
    Native,
    /// asyncio, trio, Twisted, Celery, and futures' completers.
    Futures,
    /// Lock names searched in the program's globals.
    Names,
    /// Detectors, lock order, races, loop steps over one snapshot.
    Analysis,
    /// Settling timed waits over the stream's recent snapshots.
    Stream,
}

const PHASES: [Phase; 10] = [
    Phase::Kernel,
    Phase::ThreadList,
    Phase::Frames,
    Phase::Locks,
    Phase::Writes,
    Phase::Native,
    Phase::Futures,
    Phase::Names,
    Phase::Analysis,
    Phase::Stream,
];

impl Phase {
    fn index(self) -> usize {
        PHASES.iter().position(|p| *p == self).unwrap_or(0)
    }

    fn label(self) -> &'static str {
        match self {
            Phase::Kernel => "kernel (/proc)",
            Phase::ThreadList => "thread list",
            Phase::Frames => "frames",
            Phase::Locks => "locks",
            Phase::Writes => "writes",
            Phase::Native => "native frames",
            Phase::Futures => "futures",
            Phase::Names => "names",
            Phase::Analysis => "analysis",
            Phase::Stream => "stream",
        }
    }
}

#[derive(Default)]
struct Split {
    /// Nanoseconds charged to each phase; the last slot is time outside every span.
    ns: [u64; PHASES.len() + 1],
    /// The open spans, innermost last.
    open: Vec<Phase>,
    /// When the innermost span (or the time outside all) was last charged.
    since: Option<u64>,
    snapshots: u64,
    /// Reads of the target's memory that went to the kernel (whole pages, or direct reads),
    /// charged as time is; the last slot is outside every span.
    memory_reads: [u64; PHASES.len() + 1],
}

impl Split {
    fn charge(&mut self, now: u64) {
        let slot = self.open.last().map_or(PHASES.len(), |p| p.index());
        if let Some(since) = self.since {
            self.ns[slot] += now.saturating_sub(since);
        }
        self.since = Some(now);
    }
}

thread_local! {
    static SPLIT: RefCell<Split> = RefCell::default();
}

/// Whether the split is on (read once).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os(ENV).is_some_and(|v| !v.is_empty() && v != "0"))
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec; this clock exists on every Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A phase's time, from now until the span is dropped.
#[must_use = "the span ends when dropped"]
pub struct Span(bool);

/// Open a span of `phase` (nothing when the split is off).
pub fn span(phase: Phase) -> Span {
    if !enabled() {
        return Span(false);
    }
    SPLIT.with(|s| {
        let mut s = s.borrow_mut();
        s.charge(thread_cpu_ns());
        s.open.push(phase);
    });
    Span(true)
}

impl Drop for Span {
    fn drop(&mut self) {
        if !self.0 {
            return;
        }
        SPLIT.with(|s| {
            let mut s = s.borrow_mut();
            s.charge(thread_cpu_ns());
            s.open.pop();
        });
    }
}

/// Count one snapshot (the split is reported per snapshot).
pub fn snapshot_done() {
    if enabled() {
        SPLIT.with(|s| s.borrow_mut().snapshots += 1);
    }
}

/// Count one read of the target's memory that went to the kernel (a page fetched, or a read
/// too large for the page cache).
pub fn memory_read() {
    if enabled() {
        SPLIT.with(|s| {
            let mut s = s.borrow_mut();
            let slot = s.open.last().map_or(PHASES.len(), |p| p.index());
            s.memory_reads[slot] += 1;
        });
    }
}

/// The split so far, one line per phase in µs of CPU per snapshot with its share; `None` when
/// off or before any snapshot.
pub fn report() -> Option<String> {
    if !enabled() {
        return None;
    }
    SPLIT.with(|s| {
        let mut s = s.borrow_mut();
        s.charge(thread_cpu_ns());
        let n = s.snapshots.max(1) as f64;
        if s.snapshots == 0 {
            return None;
        }
        let total: u64 = s.ns.iter().sum();
        let mut out = format!(
            "cost split: {} snapshots, {:.1} µs of CPU each (this thread), {:.1} memory reads each\n",
            s.snapshots,
            total as f64 / 1e3 / n,
            s.memory_reads.iter().sum::<u64>() as f64 / n
        );
        let labels = PHASES.iter().map(|p| p.label()).chain(["other"]);
        for ((label, ns), reads) in labels.zip(s.ns).zip(s.memory_reads) {
            out.push_str(&format!(
                "  {label:<16} {:>9.1} µs {:>5.1}% {:>7.1} reads\n",
                ns as f64 / 1e3 / n,
                100.0 * ns as f64 / total.max(1) as f64,
                reads as f64 / n
            ));
        }
        Some(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_goes_to_the_innermost_span_and_sums_to_the_whole() {
        let mut s = Split::default();
        s.charge(100);
        // Open Frames at 150, Writes inside it at 170; close Writes at 200, Frames at 210.
        s.charge(150);
        s.open.push(Phase::Frames);
        s.charge(170);
        s.open.push(Phase::Writes);
        s.charge(200);
        s.open.pop();
        s.charge(210);
        s.open.pop();
        assert_eq!(s.ns[PHASES.len()], 50);
        assert_eq!(s.ns[Phase::Frames.index()], 30);
        assert_eq!(s.ns[Phase::Writes.index()], 30);
        assert_eq!(s.ns.iter().sum::<u64>(), 110);
    }
}
