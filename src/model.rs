//! The report contract's document (`shared/design/report-contract.md`): one serde model that
//! every output renders (text, JSON, DOT, and later the TUI). Fields are only ever added.

use std::collections::BTreeMap;

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
    /// Threads whose kernel state could be matched in none of the snapshots they were seen
    /// in (at least two, or the window's only one): the report is incomplete, so its verdict cannot be
    /// "nothing found" (exit 2 unless something fails). Each thread says why
    /// (`kernel_unmatched`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmatched_threads: Vec<String>,
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
    pub state: TaskState,
    /// The suspended await stack, innermost first (for the running task: its thread's frames).
    pub frames: Vec<Frame>,
    pub waits_for: Option<TaskWait>,
    pub address: String,
    /// 3.12+: a task in its first, eager step (3.12/3.13: in `_eager_tasks`; 3.14+: the
    /// running task whose coroutine was called by its creator, not by the loop).
    #[serde(default)]
    pub eager: bool,
    /// `asyncio.Lock`s held through an active `async with` in the await stack.
    #[serde(default)]
    pub holds: Vec<Hold>,
    /// Whose scheduler runs the task.
    #[serde(default)]
    pub framework: Framework,
}

/// The concurrency framework a task belongs to (the contract's `tasks[].framework`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum Framework {
    #[default]
    Asyncio,
    Trio,
    Twisted,
    Celery,
}

/// Where a task is: `running` (the loop's current task), `pending` (suspended or scheduled).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Running,
    Pending,
}

impl TaskState {
    /// The contract's spelling, also the label in text and the TUI.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Running => "running",
            TaskState::Pending => "pending",
        }
    }
}

/// What an event loop is doing: `polling` (in the selector under `_run_once`), `step`
/// (running a callback or task step), `between` (loop bookkeeping), `unknown`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum LoopState {
    Polling,
    Step,
    Between,
    Unknown,
}

impl LoopState {
    /// The contract's spelling, also the label in text and the TUI.
    pub fn as_str(self) -> &'static str {
        match self {
            LoopState::Polling => "polling",
            LoopState::Step => "step",
            LoopState::Between => "between",
            LoopState::Unknown => "unknown",
        }
    }
}

/// What kind of thing a suspended task waits for (`tasks[].waits_for.kind`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum TaskWaitKind {
    /// Another task (`target`), awaited.
    Task,
    /// The tasks of an `asyncio.gather` (`targets`).
    Gather,
    /// An `asyncio.Lock` (`target` is its `locks[]` id).
    Lock,
    Event,
    Condition,
    Semaphore,
    Queue,
    /// `asyncio.sleep`.
    Sleep,
    /// A bare future (or one wrapping a `concurrent.futures.Future`, then `target`).
    Future,
}

impl TaskWaitKind {
    /// The contract's spelling, also the label in text, DOT and the TUI.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskWaitKind::Task => "task",
            TaskWaitKind::Gather => "gather",
            TaskWaitKind::Lock => "lock",
            TaskWaitKind::Event => "event",
            TaskWaitKind::Condition => "condition",
            TaskWaitKind::Semaphore => "semaphore",
            TaskWaitKind::Queue => "queue",
            TaskWaitKind::Sleep => "sleep",
            TaskWaitKind::Future => "future",
        }
    }
}

impl std::fmt::Display for TaskWaitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a suspended task waits for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct TaskWait {
    pub kind: TaskWaitKind,
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
    pub state: LoopState,
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
    /// When gridlock found it gone (RFC 3339), for a process that exited while it was being
    /// recorded; it exited after the window's last snapshot and before this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exited_at: Option<String>,
    /// How gridlock found the interpreter: `searched` (py-spy read the binary's symbols or
    /// scanned its data) or `cached` (from a process of the tree running the same binary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter_found: Option<String>,
    /// What gridlock could not read in this process, or read without testing: an interpreter
    /// newer than the newest tested, a lock layout it did not recognise (that part is off).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The test the process was running at its latest snapshot (pytest, unittest), if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_test: Option<CurrentTest>,
    /// The core file this process was read from (`dump --core`), when it was not read live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<String>,
    /// Every thread is blocked, yet the process is not stuck: it catches a signal someone
    /// outside can send, and its main thread waits where CPython runs the handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<Idle>,
}

/// What can wake an idle process (`processes[].idle`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Idle {
    /// The signals it catches that could wake it (`SIGTERM`), SIGINT and faults aside.
    pub signals: Vec<String>,
    /// Where the main thread waits, which is where the handler runs (`function file:line`).
    pub site: Option<String>,
    /// One line for people: `waiting for SIGTERM's handler`.
    pub summary: String,
}

/// A test a process was running, and how gridlock knew.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CurrentTest {
    /// pytest's node id (`tests/test_x.py::TestY::test_z`) or unittest's id
    /// (`module.Class.test_method`).
    pub name: String,
    /// JUnit's classname and name for it, as pytest's `--junitxml` writes them
    /// (`tests.test_x.TestY`, `test_z`).
    pub classname: String,
    pub function: String,
    /// pytest's phase: `setup`, `call` or `teardown` (none for unittest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    pub source: TestSource,
}

/// Where a current test's name was read. A closed set.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TestSource {
    /// `PYTEST_CURRENT_TEST` in the process's `os.environ`, read from its memory.
    OsEnviron,
    /// The innermost `test*` method of a `unittest.TestCase` on a thread's stack.
    Stack,
}

impl TestSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TestSource::OsEnviron => "os_environ",
            TestSource::Stack => "stack",
        }
    }
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
}

/// One native frame: the program counter or a return address, and the function symbol of
/// the mapped binary that covers it (none when the binary's symbols do not cover it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NativeFrame {
    /// `0x7f...`.
    pub address: String,
    pub symbol: Option<String>,
    /// Bytes into `symbol`.
    pub offset: Option<u64>,
    /// The binary's path as the target maps it.
    pub module: Option<String>,
    /// Found by scanning the stack for a return address where the unwind tables could not
    /// go on (a frame that needs a frame pointer the kernel does not show): likely, not certain.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scanned: bool,
}

impl NativeFrame {
    /// `pthread_mutex_lock+0x96 (libc.so.6)`, or `0x7f.. (libc.so.6)` without a symbol.
    pub fn label(&self) -> String {
        let module = self.module.as_deref().map(short_file).unwrap_or("?");
        match (&self.symbol, self.offset) {
            (Some(s), Some(off)) if self.scanned => format!("{s}+{off:#x} ({module}, scanned)"),
            (Some(s), Some(off)) => format!("{s}+{off:#x} ({module})"),
            (Some(s), None) => format!("{s} ({module})"),
            _ => format!("{} ({module})", self.address),
        }
    }
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
    /// The write adds items to a container or takes one out (`append`, `appendleft`,
    /// `extend`, `extendleft`, `add`, `pop`, `popleft`, `popitem`): such writes from several
    /// threads lose and duplicate nothing in any order.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adds_or_takes: bool,
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
        }
    }

    /// The Python type a reader knows it by (`_thread.lock`, `multiprocessing.Lock`), or the
    /// contract's spelling where there is no such type.
    pub fn type_label(self) -> &'static str {
        match self {
            LockKind::Lock => "_thread.lock",
            LockKind::RLock => "_thread.RLock",
            LockKind::AsyncioLock => "asyncio.Lock",
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

impl Lock {
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
    /// A thread held the GIL while blocked in the kernel for the whole window.
    GilHold,
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
            FindingKind::GilHold => "gil_hold",
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
            "gil_hold" => FindingKind::GilHold,
            _ => return None,
        })
    }

    pub fn severity(self) -> Severity {
        match self {
            FindingKind::Deadlock
            | FindingKind::Stall
            | FindingKind::OrphanedLock
            | FindingKind::Hang
            | FindingKind::GilHold => Severity::Error,
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

/// What an edge of a finding says. The JSON spelling is the contract's.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum EdgeVia {
    /// thread or task -> lock.
    WaitsFor,
    /// lock -> thread, task or `PID:p`.
    HeldBy,
    /// thread -> thread.
    Joins,
    /// thread -> `PID:p` or `PID:children`.
    WaitsForExit,
    /// `PID:p` -> thread: a process acts only through its threads.
    HasThread,
    /// task -> task.
    Awaits,
    /// lock -> lock in a lock-order inversion: held while taking the next.
    ThenTakes,
    /// loop -> what its blocking step runs.
    Runs,
    /// thread -> a shared location (races).
    Writes,
    /// a waited future -> whoever will complete it (a worker thread or process, a task).
    CompletedBy,
}

impl EdgeVia {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeVia::WaitsFor => "waits_for",
            EdgeVia::HeldBy => "held_by",
            EdgeVia::Joins => "joins",
            EdgeVia::WaitsForExit => "waits_for_exit",
            EdgeVia::HasThread => "has_thread",
            EdgeVia::Awaits => "awaits",
            EdgeVia::ThenTakes => "then_takes",
            EdgeVia::Runs => "runs",
            EdgeVia::Writes => "writes",
            EdgeVia::CompletedBy => "completed_by",
        }
    }

    /// How a report says it between the two ends: "A waits for B", "L is held by T".
    pub fn verb(self) -> &'static str {
        match self {
            EdgeVia::WaitsFor => "waits for",
            EdgeVia::HeldBy => "is held by",
            EdgeVia::Joins => "joins",
            EdgeVia::WaitsForExit => "waits for the exit of",
            EdgeVia::HasThread => "has thread",
            EdgeVia::Awaits => "awaits",
            EdgeVia::ThenTakes => "is held while taking",
            EdgeVia::Runs => "runs",
            EdgeVia::Writes => "writes",
            EdgeVia::CompletedBy => "is completed by",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub via: EdgeVia,
    pub evidence: Evidence,
    pub site: Option<String>,
    /// How the code names the lock at that site.
    pub name: Option<String>,
}

impl Document {
    /// One sentence saying the report is incomplete and what to do, when some thread's
    /// kernel state could not be matched (`unmatched_threads`).
    pub fn unmatched_summary(&self) -> Option<String> {
        let first = self.unmatched_threads.first()?;
        let n = self.unmatched_threads.len();
        let (who, why) = match self.thread(first) {
            Some(t) => (
                t.name
                    .as_ref()
                    .map(|n| format!("\"{n}\""))
                    .unwrap_or_else(|| format!("thread {}", t.thread_id)),
                t.kernel_unmatched.clone().unwrap_or_default(),
            ),
            None => (first.clone(), String::new()),
        };
        let also = match n {
            1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        let advice = if self.threads.iter().any(|t| t.namespace_tid.is_some()) {
            "; the target runs in another PID namespace: run gridlock on the host or in a \
             container that shares the target's PID namespace (docker run \
             --pid=container:NAME --cap-add SYS_PTRACE), with that namespace's /proc mounted"
        } else {
            ""
        };
        Some(format!(
            "the kernel state of {who}{also} could not be matched, so gridlock cannot tell \
             whether {} stuck: {why}{advice}",
            if n == 1 { "it is" } else { "they are" }
        ))
    }

    /// Threads blocked, for the whole window, in a syscall gridlock does not model (state
    /// `syscall`): they may be stuck or not, so no report about them may say "nothing found".
    pub fn unmodelled_threads(&self) -> Vec<&Thread> {
        self.threads
            .iter()
            .filter(|t| t.state == ThreadState::Syscall && t.syscall_name.is_some())
            .filter(|t| self.window.snapshots <= 1 || t.state_since <= self.window.started)
            .collect()
    }

    /// One sentence about `unmodelled_threads`, grouped by syscall: "2 threads blocked in
    /// flock(2), 1 in msgrcv(2): not modelled, ...".
    pub fn unmodelled_summary(&self) -> Option<String> {
        let threads = self.unmodelled_threads();
        if threads.is_empty() {
            return None;
        }
        let mut by: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &threads {
            *by.entry(t.syscall_name.as_deref().unwrap_or("?"))
                .or_default() += 1;
        }
        let parts: Vec<String> = by
            .iter()
            .enumerate()
            .map(|(i, (name, n))| {
                let call = if name.starts_with("syscall ") {
                    name.to_string()
                } else {
                    format!("{name}(2)")
                };
                match (i, n) {
                    (0, 1) => format!("1 thread blocked in {call}"),
                    (0, n) => format!("{n} threads blocked in {call}"),
                    (_, n) => format!("{n} in {call}"),
                }
            })
            .collect();
        Some(format!(
            "{}: not modelled, so gridlock cannot tell whether {} stuck",
            parts.join(", "),
            if threads.len() == 1 {
                "it is"
            } else {
                "they are"
            }
        ))
    }

    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }
    pub fn thread(&self, id: &str) -> Option<&Thread> {
        self.threads.iter().find(|t| t.id == id)
    }
    pub fn lock(&self, id: &str) -> Option<&Lock> {
        self.locks.iter().find(|l| l.id == id)
    }

    /// The test that was running in the processes a finding involves (its processes, its
    /// threads' and its tasks' processes, in the document's order), if one said.
    pub fn finding_test(&self, f: &Finding) -> Option<&CurrentTest> {
        let pid_of = |id: &String| id.split(':').next().and_then(|p| p.parse::<i32>().ok());
        let pids: Vec<i32> = f
            .processes
            .iter()
            .copied()
            .chain(f.threads.iter().filter_map(pid_of))
            .chain(f.tasks.iter().filter_map(pid_of))
            .collect();
        self.processes
            .iter()
            .filter(|p| pids.contains(&p.pid))
            .find_map(|p| p.current_test.as_ref())
    }
}

impl CurrentTest {
    /// `NAME (phase)  [source]`, for the text report.
    pub fn describe(&self) -> String {
        match &self.phase {
            Some(phase) => format!("{} ({phase})  [{}]", self.name, self.source.as_str()),
            None => format!("{}  [{}]", self.name, self.source.as_str()),
        }
    }
}

/// A thread's id in the report: scoped by process, because a forked child repeats its
/// parent's thread idents.
pub fn thread_id(pid: i32, ident: u64) -> String {
    format!("{pid}:t:{ident}")
}

/// A lock's id in the report: scoped by process, because a forked child repeats its parent's
/// lock addresses.
pub fn lock_id(pid: i32, addr: usize) -> String {
    format!("{pid}:l:{addr:#x}")
}
