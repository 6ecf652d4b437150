//! The report contract's document (`shared/design/report-contract.md`): one serde model that
//! every output renders (text, JSON, DOT, and later the TUI). Fields are only ever added.

use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Document {
    pub schema_version: u32,
    pub tool: Tool,
    pub command: Command,
    pub window: Window,
    pub processes: Vec<Process>,
    pub threads: Vec<Thread>,
    pub locks: Vec<Lock>,
    pub tasks: Vec<Task>,
    pub findings: Vec<Finding>,
    /// Event loops found (one per thread running one), with what each was doing last.
    #[serde(default)]
    pub loops: Vec<EventLoop>,
}

/// An asyncio task, like a row of CPython 3.14's `python -m asyncio ps`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Task {
    /// `PID:task:0xADDRESS` (the Task object's address).
    pub id: String,
    pub pid: i32,
    /// The loop's id (`PID:loop:0xADDRESS`).
    #[serde(rename = "loop")]
    pub loop_id: String,
    pub name: Option<String>,
    /// The coroutine's qualified name (`main.<locals>.worker` on 3.11+, `worker` before).
    pub coroutine: Option<String>,
    /// `running` (the loop's current task), `pending` (suspended or scheduled).
    pub state: String,
    /// The suspended await stack, innermost first (for the running task: its thread's frames).
    pub frames: Vec<Frame>,
    pub waits_for: Option<TaskWait>,
    pub address: String,
    /// 3.12+: a task in its first, eager step (only in `_eager_tasks`).
    #[serde(default)]
    pub eager: bool,
    /// `asyncio.Lock`s held through an active `async with` in the await stack.
    #[serde(default)]
    pub holds: Vec<Hold>,
}

/// What a suspended task waits for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct TaskWait {
    /// `task`, `gather`, `lock`, `event`, `condition`, `semaphore`, `queue`, `sleep`, `future`.
    pub kind: String,
    /// A task id, an asyncio lock's id, or none (a bare future).
    pub target: Option<String>,
    /// For `gather`: the task ids gathered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// The future the task's `fut_waiter` points at.
    pub future: Option<String>,
    pub evidence: Evidence,
    /// The innermost user frame awaiting (`function file:line`).
    pub site: Option<String>,
    /// How the code names what it awaits (`self.lock_b`).
    pub name: Option<String>,
    /// The asyncio call doing the wait (`Lock.acquire`, `Queue.get`).
    pub via: Option<String>,
}

/// One event loop and the thread running it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventLoop {
    /// `PID:loop:0xADDRESS`.
    pub id: String,
    pub pid: i32,
    pub address: String,
    /// The loop's type (`_UnixSelectorEventLoop`, `uvloop.Loop`).
    pub kind: String,
    pub thread: Option<String>,
    /// `polling` (in the selector under `_run_once`), `step` (running a callback or task
    /// step), `between` (loop bookkeeping), `unknown`.
    pub state: String,
    pub step: Option<LoopStep>,
    /// Handles ready to run (`len(loop._ready)`).
    pub ready: Option<usize>,
    /// Tasks of this loop (pending and running).
    pub tasks: usize,
}

/// The callback or task step a loop is running.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoopStep {
    /// Tells consecutive steps apart: the ready queue's mutation counter, the handle and
    /// the current task. Equal keys in consecutive samples with no poll between are one step.
    pub key: String,
    pub task: Option<String>,
    /// The callback's function (the frame `Handle._run` called), or the task's coroutine.
    pub callback: Option<String>,
    pub handle: Option<String>,
    /// The step's frames, innermost first, down to (not including) `Handle._run`.
    pub frames: Vec<Frame>,
}

/// Durations of the loop blocks of one culprit (`record`): counts per upper bound.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Histogram {
    pub culprit: String,
    pub count: usize,
    pub max: f64,
    pub total: f64,
    /// `(upper bound in seconds, count)`; the last bound is infinite (`null`).
    pub buckets: Vec<(Option<f64>, usize)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Command {
    pub name: String,
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Window {
    pub started: String,
    pub ended: String,
    pub snapshots: usize,
    /// Seconds between the first and last snapshot.
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Process {
    pub pid: i32,
    pub ppid: Option<i32>,
    pub name: String,
    pub cmdline: String,
    pub python_version: String,
    pub exited: bool,
    /// How gridlock found the interpreter: `searched` (py-spy read the binary's symbols or
    /// scanned its data) or `cached` (from a process of the tree running the same binary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter_found: Option<String>,
}

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
    Syscall,
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
            ThreadState::Syscall => "syscall",
            ThreadState::Unknown => "unknown",
        }
    }
}

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
            Evidence::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Frame {
    pub function: String,
    pub file: String,
    pub line: u32,
    /// With `--locals`: the frame's local variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locals: Option<Vec<Local>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Local {
    pub name: String,
    pub address: String,
    /// A short rendering: the value of an int, str or None, otherwise `<type at address>`.
    pub repr: String,
}

impl Frame {
    /// `function file:line`, the contract's `site`.
    pub fn site(&self) -> String {
        format!("{} {}:{}", self.function, short_file(&self.file), self.line)
    }
}

pub fn short_file(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Thread {
    /// `PID:t:THREAD_ID`.
    pub id: String,
    pub pid: i32,
    /// Python's thread ident (`threading.get_ident()`).
    pub thread_id: u64,
    /// Kernel TID.
    pub native_id: Option<i32>,
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
    /// Shared locations the thread is writing on its current line (`record` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<WriteAccess>,
}

/// A write to shared state seen in a sample: the location by identity and by name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct WriteAccess {
    pub location: Location,
    /// How the code names it: `counter`, `meter.value`, `Meter.value` (through `self`),
    /// `registry[...]`.
    pub name: String,
    /// Whether the name came through `self` (a reader prefers another thread's name).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub through_self: bool,
    /// The write's own line: `function file:line`.
    pub site: String,
    pub evidence: WriteEvidence,
    /// Locks of the `with` blocks (and `acquire()`...`release()` spans) around the write in
    /// its code, resolved in its frame: held when the write runs, whether or not held now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<GuardLock>,
}

/// A shared location by identity (addresses in the target, as hex).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Location {
    /// A module global: the module's globals dict and the name.
    Global { globals: String, name: String },
    /// An attribute of one object. `type` is its class's address: an address reused by an
    /// object of another class is another location.
    Attr {
        object: String,
        #[serde(rename = "type")]
        class: String,
        attr: String,
    },
    /// Any item of one container (`container[key]`, `container.append(...)`).
    Item {
        container: String,
        #[serde(rename = "type")]
        class: String,
    },
}

impl Location {
    /// A stable id for findings: `global 0xGLOBALS:name`, `attr 0xOBJECT:name`, `item 0xCONTAINER`.
    pub fn id(&self) -> String {
        match self {
            Location::Global { globals, name } => format!("global {globals}:{name}"),
            Location::Attr { object, attr, .. } => format!("attr {object}:{attr}"),
            Location::Item { container, .. } => format!("item {container}"),
        }
    }
}

/// How a write was seen. A closed set.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum WriteEvidence {
    /// The innermost user frame's current line makes it.
    CurrentLine,
    /// A frame on the stack can still make it from where it is (ahead, or in a loop around
    /// its current instruction), with the names it uses bound as they are now.
    ReachableWrite,
    /// A user function a frame on the stack can still call makes it (one call deep: a global
    /// function or a method looked up on a name the frame has bound now, or a property's
    /// setter), with the callee's first parameter bound to that object.
    CalleeWrite,
}

impl WriteEvidence {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteEvidence::CurrentLine => "current_line",
            WriteEvidence::ReachableWrite => "reachable_write",
            WriteEvidence::CalleeWrite => "callee_write",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GuardLock {
    pub lock: String,
    /// How the code names it (`self.lock`).
    pub name: Option<String>,
}

/// One writing thread's side of a `race`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RaceSide {
    pub thread: String,
    pub name: Option<String>,
    /// Where it writes: `function file:line`.
    pub sites: Vec<String>,
    /// Lock ids held (or guarding the write) at every sampled write of this thread.
    pub locks: Vec<String>,
    /// How the code names those locks, in the same order.
    pub lock_names: Vec<String>,
    pub samples: usize,
    /// How its writes were seen.
    pub evidence: Vec<WriteEvidence>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KernelView {
    pub state: String,
    pub syscall: Option<String>,
    pub wchan: Option<String>,
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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Lock {
    /// `PID:l:0xADDRESS` (the Python object's address).
    pub id: String,
    pub pid: i32,
    pub address: String,
    /// `lock`, `rlock`, `module_lock`, `condition`, `event`, `semaphore`, `barrier`, `queue`.
    pub kind: String,
    pub names: Vec<LockName>,
    pub locked: Option<bool>,
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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Waiter {
    pub thread: String,
    pub evidence: Evidence,
    pub site: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    Deadlock,
    Stall,
    OrphanedLock,
    Hang,
    LockOrderInversion,
    Race,
    LoopBlock,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Deadlock => "deadlock",
            FindingKind::Stall => "stall",
            FindingKind::OrphanedLock => "orphaned_lock",
            FindingKind::Hang => "hang",
            FindingKind::LockOrderInversion => "lock_order_inversion",
            FindingKind::Race => "race",
            FindingKind::LoopBlock => "loop_block",
        }
    }

    pub fn parse(s: &str) -> Option<FindingKind> {
        Some(match s {
            "deadlock" => FindingKind::Deadlock,
            "stall" => FindingKind::Stall,
            "orphaned_lock" => FindingKind::OrphanedLock,
            "hang" => FindingKind::Hang,
            "lock_order_inversion" => FindingKind::LockOrderInversion,
            "race" => FindingKind::Race,
            "loop_block" => FindingKind::LoopBlock,
            _ => return None,
        })
    }

    pub fn severity(self) -> Severity {
        match self {
            FindingKind::Deadlock
            | FindingKind::Stall
            | FindingKind::OrphanedLock
            | FindingKind::Hang => Severity::Error,
            _ => Severity::Warning,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    pub id: String,
    pub kind: FindingKind,
    pub severity: Severity,
    pub first_seen: String,
    pub last_seen: String,
    pub samples: usize,
    pub summary: String,
    pub threads: Vec<String>,
    pub tasks: Vec<String>,
    pub processes: Vec<i32>,
    pub locks: Vec<String>,
    pub edges: Vec<Edge>,
    /// Advice a person can act on.
    pub advice: Option<String>,
    /// `loop_block`: how long the step held the loop, in seconds (so far, if `ongoing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// `loop_block`: whether the step was still running at the last sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ongoing: Option<bool>,
    /// `loop_block`: the loop's id.
    #[serde(default, rename = "loop", skip_serializing_if = "Option::is_none")]
    pub loop_id: Option<String>,
    /// `loop_block`: the task (`name (coroutine)`) or callback function that held the loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub culprit: Option<String>,
    /// `loop_block`: the stack seen doing it (innermost first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stack: Vec<Frame>,
    /// `loop_block` in `record`: every block of the same culprit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Histogram>,
    /// A deadlock through OR-waits (several possible wakers, every one of them blocked): all
    /// of the knot's members are in `threads`, `processes`, `locks` and `edges`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub knot: bool,
    /// `race`: the location as the code names it (`meter.value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// `race`: each writing thread's side, with its lock set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locksets: Vec<RaceSide>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// `waits_for` (thread -> lock), `held_by` (lock -> thread or `PID:p`), `joins`
    /// (thread -> thread), `waits_for_exit` (thread -> `PID:p` or `PID:children`),
    /// `has_thread` (`PID:p` -> thread: a process acts only through its threads).
    pub via: String,
    pub evidence: Evidence,
    pub site: Option<String>,
    /// How the code names the lock at that site.
    pub name: Option<String>,
}

impl Document {
    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }
    pub fn thread(&self, id: &str) -> Option<&Thread> {
        self.threads.iter().find(|t| t.id == id)
    }
    pub fn lock(&self, id: &str) -> Option<&Lock> {
        self.locks.iter().find(|l| l.id == id)
    }
}
