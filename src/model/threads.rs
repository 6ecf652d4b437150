//! A thread of the document: its state, frames, holds and wait, what the kernel shows, and
//! its report id. It may name evidence, frames and writes, nothing built on threads.

use serde::{Deserialize, Serialize};

use super::evidence::Evidence;
use super::frames::{Frame, NativeFrame, NativeSource};
use super::writes::WriteAccess;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ThreadState {
    Running,
    LockWait,
    JoinWait,
    ConditionWait,
    Sleep,
    IoWait,
    GilWait,
    /// Blocked on a C-level lock (a `pthread_mutex_t` or rwlock) below Python.
    NativeLockWait,
    /// Blocked taking a file lock (`flock`, POSIX record or OFD lock).
    FileLockWait,
    /// Reading a terminal or a stdin nobody writes.
    InputWait,
    Syscall,
    /// Stopped by a signal (SIGSTOP, SIGTSTP) or a tracer: it cannot act until continued.
    Stopped,
    Unknown,
}

impl ThreadState {
    pub fn as_str(self) -> &'static str {
        match self {
            ThreadState::Running => "running",
            ThreadState::LockWait => "lock_wait",
            ThreadState::JoinWait => "join_wait",
            ThreadState::ConditionWait => "condition_wait",
            ThreadState::Sleep => "sleep",
            ThreadState::IoWait => "io_wait",
            ThreadState::GilWait => "gil_wait",
            ThreadState::NativeLockWait => "native_lock_wait",
            ThreadState::FileLockWait => "file_lock_wait",
            ThreadState::InputWait => "input_wait",
            ThreadState::Syscall => "syscall",
            ThreadState::Stopped => "stopped",
            ThreadState::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Thread {
    /// `PID:t:THREAD_ID`.
    pub id: String,
    pub pid: i32,
    /// Python's thread ident (`threading.get_ident()`).
    pub thread_id: u64,
    /// Kernel TID, as gridlock's `/proc` numbers it (the host's, for a target in a container).
    pub native_id: Option<i32>,
    /// The kernel TID in the target's own PID namespace, when it differs from `native_id`
    /// (`unshare --pid`, a container): what the thread state and the target itself see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_tid: Option<i32>,
    /// Why this thread's kernel state (scheduler state, syscall) could not be read: its
    /// `state` is then `unknown`, and the report cannot say that nothing was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_unmatched: Option<String>,
    pub name: Option<String>,
    pub state: ThreadState,
    /// When the thread was first seen in this state during the window (a lower bound).
    pub state_since: String,
    /// Whether this is an untimed wait that only another party can end.
    pub blocked: bool,
    pub owns_gil: bool,
    /// Innermost first.
    pub frames: Vec<Frame>,
    pub holds: Vec<Hold>,
    pub waits_for: Option<Wait>,
    /// What the kernel shows: scheduler state, syscall and wait channel.
    pub kernel: Option<KernelView>,
    /// The syscall the thread is blocked in, by name (`flock`, `recvfrom`, `futex`), when the
    /// kernel says it is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall_name: Option<String>,
    /// Shared locations the thread is writing on its current line (`record` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<WriteAccess>,
    /// For a thread blocked outside Python waits: its native frames, innermost (the syscall)
    /// first, down to the interpreter loop that runs its innermost Python frame.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub native_frames: Vec<NativeFrame>,
    /// How `native_frames` were started: from the syscall's registers, or in a ptrace stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_frames_from: Option<NativeSource>,
}

impl Thread {
    /// `tid 31215`, or `tid 31215, 1 in its namespace` for a thread in another PID
    /// namespace; `tid 1 in its namespace` when only that one is known.
    pub fn tid_label(&self) -> Option<String> {
        match (self.native_id, self.namespace_tid) {
            (Some(tid), Some(own)) => Some(format!("tid {tid}, {own} in its namespace")),
            (Some(tid), None) => Some(format!("tid {tid}")),
            (None, Some(own)) => Some(format!("tid {own} in its namespace")),
            (None, None) => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KernelView {
    pub state: String,
    pub syscall: Option<String>,
    pub wchan: Option<String>,
    /// How many times the kernel had put the thread on a CPU (`schedstat`), when read: a
    /// thread whose count moved between two snapshots ran between them. Not in the report.
    #[serde(skip)]
    pub timeslices: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Hold {
    pub lock: String,
    pub evidence: Evidence,
    /// Where it was taken, when known (`function file:line`).
    pub site: Option<String>,
    /// The name the code uses for it there.
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum WaitKind {
    /// Acquiring a lock (id in `target`).
    Lock,
    /// Joining a thread (id in `target`).
    Join,
    /// Waiting for a notify on a condition (id in `target`).
    Notify,
    /// A futex nobody in the model accounts for.
    UnknownFutex,
    /// Waiting for a child process to exit (`wait4`): `target` is `PID:p`, or `PID:children`
    /// for `wait4(-1)`, an OR-wait on every child.
    ChildExit,
    /// Blocked reading or writing a pipe or socket: `target` is the `pipe:[INODE]` or
    /// `socket:[INODE]` resource, whose holders are the processes that could serve it.
    Pipe,
    /// Waiting for a `concurrent.futures.Future`: `target` is the future (a `locks[]` entry
    /// of kind `future` whose holders are who will complete it: the worker thread running
    /// it, every worker of the pool it is queued in, or the asyncio task computing it);
    /// `targets` lists the others when any one of several will do (`as_completed`).
    Future,
    /// Reading a terminal or a stdin: `target` is the fd's resource.
    Input,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Wait {
    pub kind: WaitKind,
    pub target: Option<String>,
    pub evidence: Evidence,
    pub site: Option<String>,
    pub name: Option<String>,
    /// The higher-level primitive the wait is part of (`Event.wait`, `Queue.get`, ...).
    pub via: Option<String>,
    pub timed: bool,
    pub futex: Option<String>,
    /// `future` waits that any one of several futures ends (`as_completed`,
    /// `wait(FIRST_COMPLETED)`): the futures besides `target`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// The wait's timeout in seconds, read from the frame (`None`: untimed or unknown).
    #[serde(default)]
    pub timeout_s: Option<Seconds>,
    /// How long the thread has waited here, counted from its first entry (a polling loop
    /// that waits again at the same site is one wait).
    #[serde(default)]
    pub waited_s: Option<Seconds>,
}

/// A number of seconds in the document (`timeout_s`, `waited_s`): serialised as a plain
/// number, compared and hashed by its bits so the structs that carry it stay `Eq + Hash`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, PartialOrd)]
#[serde(transparent)]
pub struct Seconds(pub f64);

impl Eq for Seconds {}

impl std::hash::Hash for Seconds {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

/// A thread's id in the report: scoped by process, because a forked child repeats its
/// parent's thread idents.
pub fn thread_id(pid: i32, ident: u64) -> String {
    format!("{pid}:t:{ident}")
}
