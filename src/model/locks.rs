//! A lock node of the document (a synchronisation object or a cross-process resource):
//! its kind, names, permits, holders, waiters and contradictions, and its report id. It may
//! name evidence, nothing built on locks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::evidence::Evidence;

/// What a lock node of the report is: a synchronisation object, or a resource shared between
/// processes (`--tree`). The JSON spelling is the contract's.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    Lock,
    #[serde(rename = "rlock")]
    RLock,
    /// An import's `_ModuleLock`.
    ModuleLock,
    Condition,
    Event,
    Semaphore,
    Barrier,
    Queue,
    /// A `Thread` waited on through a condition (`Thread.join` before 3.9's tstate lock).
    Thread,
    AsyncioLock,
    AsyncioSemaphore,
    MpLock,
    #[serde(rename = "mp_rlock")]
    MpRLock,
    MpSemaphore,
    MpCondition,
    /// A semaphore in shared memory no process's objects explain.
    SharedSemaphore,
    Pipe,
    Socket,
    /// "Any child of this process exits" (`wait4(-1)`).
    Children,
    /// A `concurrent.futures.Future` waited on: completed by whoever runs its work.
    Future,
    /// An interpreter's GIL.
    Gil,
    /// A C `pthread_mutex_t` (glibc), below Python.
    PthreadMutex,
    /// A C `pthread_rwlock_t` (glibc), below Python.
    PthreadRwlock,
    /// A file lock (`flock`, POSIX record lock, OFD lock) on one file.
    FileLock,
    /// An object pool built on a queue (a connection pool): its items are its permits.
    Pool,
    /// A `trio.Lock` or `trio.StrictFIFOLock`: its owner task is recorded in it.
    TrioLock,
    /// A `trio.Semaphore` or `trio.CapacityLimiter` (whose borrowers are recorded).
    TrioSemaphore,
    /// A trio memory channel: a receiver waits for whoever holds its send side.
    Channel,
    /// A Twisted reactor, waited on for a call it would run (`blockingCallFromThread`):
    /// held by the thread running it.
    Reactor,
    /// A Twisted `Deferred` an `inlineCallbacks` generator or `ensureDeferred` coroutine
    /// waits on: fired by the generator whose Deferred it is, or by whichever suspended
    /// generator's code calls its `callback` later (its holders; unknown when neither).
    Deferred,
}

impl LockKind {
    /// The contract's spelling, also used as the label in text, DOT and the TUI.
    pub fn as_str(self) -> &'static str {
        match self {
            LockKind::Lock => "lock",
            LockKind::RLock => "rlock",
            LockKind::ModuleLock => "module_lock",
            LockKind::Condition => "condition",
            LockKind::Event => "event",
            LockKind::Semaphore => "semaphore",
            LockKind::Barrier => "barrier",
            LockKind::Queue => "queue",
            LockKind::Thread => "thread",
            LockKind::AsyncioLock => "asyncio_lock",
            LockKind::AsyncioSemaphore => "asyncio_semaphore",
            LockKind::MpLock => "mp_lock",
            LockKind::MpRLock => "mp_rlock",
            LockKind::MpSemaphore => "mp_semaphore",
            LockKind::MpCondition => "mp_condition",
            LockKind::SharedSemaphore => "shared_semaphore",
            LockKind::Pipe => "pipe",
            LockKind::Socket => "socket",
            LockKind::Children => "children",
            LockKind::Future => "future",
            LockKind::Gil => "gil",
            LockKind::PthreadMutex => "pthread_mutex",
            LockKind::PthreadRwlock => "pthread_rwlock",
            LockKind::FileLock => "file_lock",
            LockKind::Pool => "pool",
            LockKind::TrioLock => "trio_lock",
            LockKind::TrioSemaphore => "trio_semaphore",
            LockKind::Channel => "channel",
            LockKind::Reactor => "reactor",
            LockKind::Deferred => "deferred",
        }
    }

    /// The Python type a reader knows it by (`_thread.lock`, `multiprocessing.Lock`), or the
    /// contract's spelling where there is no such type.
    pub fn type_label(self) -> &'static str {
        match self {
            LockKind::Lock => "_thread.lock",
            LockKind::RLock => "_thread.RLock",
            LockKind::AsyncioLock => "asyncio.Lock",
            LockKind::TrioLock => "trio.Lock",
            LockKind::Channel => "trio memory channel",
            LockKind::MpLock => "multiprocessing.Lock",
            LockKind::MpRLock => "multiprocessing.RLock",
            LockKind::MpSemaphore => "multiprocessing.Semaphore",
            LockKind::MpCondition => "multiprocessing.Condition",
            LockKind::Future => "concurrent.futures.Future",
            LockKind::Gil => "GIL",
            LockKind::PthreadMutex => "pthread_mutex_t",
            LockKind::PthreadRwlock => "pthread_rwlock_t",
            k => k.as_str(),
        }
    }
}

impl std::fmt::Display for LockKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Lock {
    /// `PID:l:0xADDRESS` (the Python object's address).
    pub id: String,
    pub pid: i32,
    pub address: String,
    pub kind: LockKind,
    /// The one program-wide name (`checking.lock`, `LOCKS['users']`), read from memory in
    /// this sample; `None` when none was found.
    #[serde(default)]
    pub name: Option<String>,
    pub names: Vec<LockName>,
    /// For a semaphore or a pool: its permits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permits: Option<Permits>,
    pub locked: Option<bool>,
    /// For a C rwlock held for reading: how many readers the lock counts. glibc records no
    /// reader, so they are not among `holders` (which stays empty: the owners are unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readers: Option<u64>,
    pub holders: Vec<Holder>,
    pub waiters: Vec<Waiter>,
    /// For a module lock: the module being imported.
    pub module: Option<String>,
    /// For a resource shared between processes (`--tree`): what identifies it system-wide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<Shared>,
    /// Claims about this lock that memory contradicts (e.g. a probe owner of an unlocked
    /// lock): reported, never used as holders.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contradictions: Vec<Contradiction>,
    /// The Python type where `kind` does not say it: `asyncio.Future` for a `future` that is
    /// an asyncio future (a `future` is otherwise a `concurrent.futures.Future`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_type: Option<String>,
}

impl Lock {
    /// The entry of a result some code will complete (a future, a Deferred), which its
    /// waiters wait on: held (`locked`) by whoever would complete it, unnamed, no waiters yet.
    /// One definition for every framework's pending results.
    pub fn pending_result(pid: i32, address: usize, kind: LockKind, holders: Vec<Holder>) -> Lock {
        Lock {
            id: lock_id(pid, address),
            pid,
            address: format!("{address:#x}"),
            kind,
            name: None,
            names: Vec::new(),
            permits: None,
            locked: Some(true),
            readers: None,
            holders,
            waiters: Vec::new(),
            module: None,
            shared: None,
            contradictions: Vec::new(),
            python_type: None,
        }
    }

    /// For a C rwlock held for reading: "held for reading by 2 readers (glibc records no
    /// reader owners)".
    pub fn readers_note(&self) -> Option<String> {
        let n = self.readers?;
        Some(format!(
            "held for reading by {n} reader{} (glibc records no reader owners)",
            if n == 1 { "" } else { "s" }
        ))
    }

    /// How a report names the lock where the code calls it `local` (if known): the
    /// program-wide name first, with the local one where it differs and the function that
    /// uses it (`checking.lock (dst.lock in transfer)`); else the local name; else the
    /// first name seen.
    pub fn display_name(&self, local: Option<&str>) -> Option<String> {
        match (&self.name, local) {
            (Some(name), Some(local)) if name != local => {
                // The function that uses the name, where only one does.
                let mut functions = self
                    .names
                    .iter()
                    .filter(|n| n.how == NameHow::Local && n.name == local)
                    .filter_map(|n| n.frame.split_whitespace().next());
                let first = functions.next();
                let function = first.filter(|f| functions.all(|g| g == *f));
                Some(match function {
                    Some(f) => format!("{name} ({local} in {f})"),
                    None => format!("{name} ({local})"),
                })
            }
            (Some(name), _) => Some(name.clone()),
            (None, Some(local)) => Some(local.to_string()),
            (None, None) => self.names.first().map(|n| n.name.clone()),
        }
    }
}

/// A cross-process resource: a `multiprocessing` semaphore (futex in a shared mapping), a pipe
/// or socket, or the set of a process's children.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Shared {
    /// The mapping's device (`major:minor`) and inode, and the offset inside the file.
    pub device: Option<String>,
    pub inode: Option<u64>,
    pub offset: Option<u64>,
    /// The mapped file (`/dev/shm/sem.*`, often `(deleted)`), or `pipe:[N]`/`socket:[N]`.
    pub path: Option<String>,
    /// The semaphore's current value read from the shared memory (0: taken).
    pub value: Option<u32>,
    /// Processes that map the semaphore or hold an end of the pipe.
    pub processes: Vec<i32>,
    /// For a socket: the peer socket's inode (`NETLINK_SOCK_DIAG`, `UNIX_DIAG_PEER`).
    pub peer_inode: Option<u64>,
    /// A taken semaphore that no live process in the tree holds: its holder exited.
    pub holder_exited: bool,
    /// For a file lock: the command line of each holding process (by pid), which may lie
    /// outside the processes gridlock reads.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub commands: BTreeMap<i32, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Contradiction {
    /// Where the claim came from (`probe`).
    pub evidence: Evidence,
    /// The thread the claim names as owner (live), and its ident.
    pub thread: Option<String>,
    pub owner_ident: Option<u64>,
    pub site: Option<String>,
    /// What the claim says, and what memory says instead.
    pub claim: String,
    pub memory: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct LockName {
    pub name: String,
    pub frame: String,
    /// How the name was found.
    #[serde(default)]
    pub how: NameHow,
}

/// How a lock's name was found (the contract's `names[].how`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum NameHow {
    /// A module global.
    Global,
    /// An attribute path from a module global or an owner object.
    Attribute,
    /// An entry of a module-level dict, list or tuple.
    Registry,
    /// A frame's local name.
    #[default]
    Local,
    /// The locked file's path as the target names it (a file lock).
    Path,
}

/// A semaphore's or pool's permits: how many there are (`None` where unknown) and how many
/// are free.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Permits {
    pub total: Option<u64>,
    pub free: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    /// A thread id, or `None` when the owner is known not to be a live thread.
    pub thread: Option<String>,
    /// For an `asyncio` primitive: the holding task's id (`PID:task:0xADDRESS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// For a cross-process resource: the process holding it, when no single thread is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<i32>,
    /// The owner's ident as read from memory, when the evidence is `memory`.
    pub owner_ident: Option<u64>,
    pub evidence: Evidence,
    pub site: Option<String>,
    pub count: Option<u64>,
    /// For evidence `queue_getter`: the calls from the holder's frame down to the `get`
    /// (`consume`, `_next_job`, `take`, `q.get`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub call_path: Vec<String>,
}

impl Holder {
    /// A holder nobody can name: the lock is held, or may be, by code that left no trace.
    pub fn unknown() -> Holder {
        Holder {
            thread: None,
            task: None,
            process: None,
            owner_ident: None,
            evidence: Evidence::Unknown,
            site: None,
            count: None,
            call_path: Vec::new(),
        }
    }

    /// A whole process holding a cross-process resource, known by `evidence`.
    pub fn process(pid: i32, evidence: Evidence) -> Holder {
        Holder {
            process: Some(pid),
            evidence,
            ..Holder::unknown()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Waiter {
    pub thread: String,
    pub evidence: Evidence,
    pub site: Option<String>,
}

/// A lock's id in the report: scoped by process, because a forked child repeats its parent's
/// lock addresses.
pub fn lock_id(pid: i32, addr: usize) -> String {
    format!("{pid}:l:{addr:#x}")
}

/// The object address of an id made by `lock_id`; `None` for any other id (a later lock at a
/// reused address, `...#serial`, or a resource that is no Python object).
pub fn lock_address(id: &str) -> Option<usize> {
    let (_, addr) = id.split_once(":l:0x")?;
    usize::from_str_radix(addr, 16).ok()
}
