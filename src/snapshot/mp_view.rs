//! What one process shows of its `multiprocessing` objects in a snapshot (SemLocks, who
//! holds and waits for them, joins of children): plain data, filled by `multiprocessing.rs`
//! and read by the `Builder` and `Snapshot`. It reads nothing.

/// What one process shows of its `multiprocessing` semaphores.
#[derive(Debug, Clone, Default)]
pub struct MpView {
    /// `_multiprocessing.SemLock` objects reachable from frames and their module globals.
    pub semlocks: Vec<SemLockObj>,
    /// SemLocks held through an active `with` block.
    pub holds: Vec<MpHold>,
    /// Threads sleeping on a futex that no `threading` object accounts for.
    pub waits: Vec<MpWait>,
    /// Threads in `Process.join` (`Popen.wait`), with the child's pid from the `Popen`.
    pub joins: Vec<MpJoin>,
}

/// A thread blocked in `multiprocessing`'s `Popen.wait`: it waits for child `pid` to exit.
/// A `forkserver` child is waited for through a pipe from the server (its sentinel), not by
/// `wait4`, so only the frames tell which process the wait is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpJoin {
    pub thread: String,
    pub pid: i32,
    pub site: Option<String>,
    /// `join(timeout)`: the wait ends by itself.
    pub timed: bool,
}

/// A `_multiprocessing.SemLock`: `+16 handle (sem_t*), +24 last_tid, +32 count, +36 maxvalue,
/// +40 kind` (0 RECURSIVE_MUTEX, 1 SEMAPHORE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemLockObj {
    pub addr: usize,
    pub handle: usize,
    pub last_tid: u64,
    pub count: i32,
    pub maxvalue: i32,
    pub kind: i32,
}

#[derive(Debug, Clone)]
pub struct MpHold {
    pub thread: String,
    pub semlock: usize,
    pub site: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MpWait {
    pub thread: String,
    pub futex: usize,
    pub semlock: Option<usize>,
    /// Inside `multiprocessing`'s `Condition.wait` (and so `Event.wait`, `Barrier.wait`).
    pub notify: bool,
    pub site: Option<String>,
    pub name: Option<String>,
    pub via: Option<String>,
}
