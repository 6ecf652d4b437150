//! How a claim of the document was known (`Evidence`, the contract's evidence names): a
//! closed set every output shares. It names no other part of the document.

use serde::{Deserialize, Serialize};

/// How a claim was known. A closed set, shared by every output.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// An owner field read from the object (RLock owner, module lock owner).
    Memory,
    /// The thread sleeps on this lock's semaphore.
    Futex,
    /// The frame's active `with` keeps this lock's bound `__exit__`.
    ValueStack,
    /// Inferred from an `acquire()` call.
    AcquireCall,
    Probe,
    Wait4,
    Pipe,
    ShmFutex,
    /// A `concurrent.futures` future: the waiter's frame (`Future.result`, `wait`,
    /// `as_completed`) names it, and the worker's `_WorkItem.run` frame (or the executor's
    /// work queue, or the asyncio chain of callbacks) says who will complete it.
    Future,
    /// The interpreter's GIL record (its holder thread state).
    GilState,
    /// A C mutex's or rwlock's owner TID read from the lock itself.
    PthreadOwner,
    /// `/proc/locks` and `/proc/PID/fdinfo/FD` lock lines.
    ProcLocks,
    /// A socket's peer (`NETLINK_SOCK_DIAG`, `/proc/net/*`).
    SockDiag,
    /// A core dump's thread registers (`NT_PRSTATUS`).
    CoreRegisters,
    /// A thread's frame holds an item taken from a pool (a `with` block over it, or a local,
    /// within a few attribute steps of the pool).
    Checkout,
    /// What a descriptor is (`/proc/PID/fd`, `fdinfo`): a terminal, the pipe a stdin reads.
    Fd,
    /// Read from Celery's own objects: the id a pool process traces (`fast_trace_task`), the
    /// result it waits for in `celery/result.py`, the worker's reserved requests.
    Celery,
    /// An event loop's ready queue (`_ready`) holds a handle whose callback completes the
    /// waited future or sets the waited event: only that loop's thread will run it.
    ReadyQueue,
    /// A Twisted `Deferred`'s callbacks hold the `inlineCallbacks` generator (or coroutine)
    /// waiting on it; who fires it: the generator it is the result of (`_CancellationStatus`),
    /// or the one suspended generator whose code calls its `callback`/`errback` further on.
    Deferred,
    /// A Twisted thread pool's work fires this Deferred (`deferToThread`: the work item's
    /// `onResult` closure holds it): run by the worker whose frames run it, or queued in the
    /// pool's `Team._pending` for any of its workers.
    ThreadPool,
    /// A full bounded `queue.Queue`'s taker: the thread's own frame will load that queue and
    /// call its `get`/`get_nowait` ahead of (or in a loop around) its current instruction.
    QueueGetter,
    Unknown,
}

impl Evidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::Memory => "memory",
            Evidence::Futex => "futex",
            Evidence::ValueStack => "value_stack",
            Evidence::AcquireCall => "acquire_call",
            Evidence::Probe => "probe",
            Evidence::Wait4 => "wait4",
            Evidence::Pipe => "pipe",
            Evidence::ShmFutex => "shm_futex",
            Evidence::Future => "future",
            Evidence::GilState => "gil_state",
            Evidence::PthreadOwner => "pthread_owner",
            Evidence::ProcLocks => "proc_locks",
            Evidence::SockDiag => "sock_diag",
            Evidence::CoreRegisters => "core_registers",
            Evidence::Checkout => "checkout",
            Evidence::Fd => "fd",
            Evidence::Celery => "celery",
            Evidence::ReadyQueue => "ready_queue",
            Evidence::Deferred => "deferred",
            Evidence::ThreadPool => "thread_pool",
            Evidence::QueueGetter => "queue_getter",
            Evidence::Unknown => "unknown",
        }
    }
}
