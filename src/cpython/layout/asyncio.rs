//! What asyncio needs, per version: where the tasks are listed, the Task and Future fields,
//! how a coroutine's frame and awaited object are reached, and the running loop and task.
//! 3.8-3.13 from this file's table; 3.14+ as their `.AsyncioDebug` sections publish.

/// What asyncio needs, per version (x86-64). Source: `gdb ptype /o` on the debug info of
/// pyenv's libpython3.X.so.1.0 and `_asyncio` extension, every pointer checked against `id()`
/// in live targets (shared FACTS-cpython.md, "Tasks", "The event loop thread", "asyncio.Lock").
#[derive(Debug, Clone, Copy)]
pub struct AsyncioOffsets {
    /// Interpreter state -> `modules` dict (`imports.modules` on 3.12+).
    pub interp_modules: usize,
    /// How a thread reaches its running loop.
    pub running_loop: RunningLoop,
    // `_asyncio` FutureObj / TaskObj
    pub fut_loop: usize,
    pub fut_result: usize,
    /// A C int: 0 pending, 1 cancelled, 2 finished.
    pub fut_state: usize,
    pub task_fut_waiter: usize,
    pub task_coro: usize,
    pub task_name: usize,
    /// Coroutine -> its frame.
    pub coro_frame: CoroFrame,
    /// Where a suspended frame keeps the object it awaits.
    pub await_top: AwaitTop,
    /// How the coroutine's frame state byte is numbered.
    pub coro_states: CoroStates,
    /// Where the native tasks are listed.
    pub registry: TaskRegistry,
    /// Where a loop's running task is recorded.
    pub current_task: CurrentTask,
}

/// Where asyncio keeps its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskRegistry {
    /// `asyncio.tasks`' `_all_tasks` / `_scheduled_tasks` WeakSets and `_eager_tasks` set.
    ModuleSets,
    /// 3.14+: a circular list per thread state (head at `tstate_head`), and one on the
    /// interpreter (`interp_head`) for the tasks of exited threads; each task's list node is
    /// at `node` inside it. `task_size` (`sizeof(TaskObj)`) and `is_task` (a byte that is 1
    /// in every task) are what a live check compares.
    ThreadLists {
        tstate_head: usize,
        interp_head: usize,
        node: usize,
        task_size: usize,
        is_task: usize,
    },
}

/// What a 3.14+ target's published asyncio offsets are checked against.
#[derive(Debug, Clone)]
pub struct PublishedAsyncio {
    /// The table (`Layout::asyncio`) holds the values this exact build was seen to publish,
    /// so it may stand in when the section cannot be read or fails its check.
    pub table_build: bool,
    /// `sizeof(PyInterpreterState)` from `_Py_DebugOffsets`: the section's must agree.
    pub interp_size: Option<usize>,
    /// `sizeof(PyThreadState)` from `_Py_DebugOffsets`: the section's thread-state fields live
    /// in `_PyThreadStateImpl`, past it.
    pub tstate_base_size: Option<usize>,
    /// The builds the table was verified on (for notes).
    pub table_builds: String,
}

/// Where the task a loop is running is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurrentTask {
    /// `asyncio.tasks._current_tasks`, a dict {loop: task}.
    ModuleDict,
    /// The running thread's `asyncio_running_task` field (3.14+).
    TstateField(usize),
}

/// The numbering of a generator's or coroutine's frame state (`gi_frame_state`, i8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoroStates {
    /// 3.11/3.12: CREATED -2, SUSPENDED -1, EXECUTING 0, then COMPLETED/CLEARED.
    V311,
    /// 3.13/3.14: CREATED -3, SUSPENDED -2, SUSPENDED_YIELD_FROM -1, EXECUTING 0, ...
    V313,
    /// 3.15: CREATED 0, SUSPENDED 1, YIELD_FROM 2, YIELD_FROM_LOCKED 3, EXECUTING 4, CLEARED 5.
    V315,
}

impl CoroStates {
    /// None for a frame that has not started or has finished; else whether it is suspended
    /// (false: executing).
    pub fn suspended(self, s: i8) -> Option<bool> {
        match self {
            CoroStates::V311 => match s {
                -1 => Some(true),
                0 => Some(false),
                _ => None,
            },
            CoroStates::V313 => match s {
                -2 | -1 => Some(true),
                0 => Some(false),
                _ => None,
            },
            CoroStates::V315 => match s {
                1..=3 => Some(true),
                4 => Some(false),
                _ => None,
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum RunningLoop {
    /// `tstate->dict` at this offset, key `__asyncio_running_event_loop__` -> holder, loop at +16.
    DictHolder(usize),
    /// `tstate->dict`, same key -> the loop itself (3.12).
    DictLoop(usize),
    /// `tstate->asyncio_running_loop` (3.13+).
    Field(usize),
    /// Not in the thread state: asyncio running without its C accelerator on 3.14+ keeps it
    /// in a `threading.local`, and only `_run_once`'s `self` tells.
    NotInThreadState,
}

#[derive(Debug, Clone, Copy)]
pub enum CoroFrame {
    /// `cr_frame` pointer to a PyFrameObject (3.8-3.10), with 3.10's `f_state` offset.
    Pointer { at: usize, f_state: Option<usize> },
    /// The interpreter frame embedded in the coroutine (3.11+), and `cr_frame_state` (i8).
    Embedded { at: usize, state: usize },
}

#[derive(Debug, Clone, Copy)]
pub enum AwaitTop {
    /// `*(f_stacktop - 8)` (3.8, 3.9).
    StackTop(usize),
    /// `f_valuestack[f_stackdepth - 1]` (3.10): (valuestack, stackdepth).
    Depth(usize, usize),
    /// `localsplus[stacktop - 1]` (3.11-3.13): (localsplus, stacktop i32).
    Localsplus(usize, usize),
    /// 3.14+: the slot `below` bytes under the frame's `stackpointer` (at `sp`).
    StackPointer { sp: usize, below: usize },
}

/// asyncio offsets for CPython 3.`minor` (3.8-3.13).
pub fn asyncio_offsets(minor: u8) -> Option<AsyncioOffsets> {
    let (modules, running_loop) = match minor {
        8 => (56, RunningLoop::DictHolder(152)),
        9 | 10 => (856, RunningLoop::DictHolder(152)),
        11 => (888, RunningLoop::DictHolder(128)),
        12 => (944, RunningLoop::DictLoop(112)),
        13 => (7656, RunningLoop::Field(304)),
        _ => return None,
    };
    // fut_loop, fut_result, fut_state, fut_waiter, coro, name
    let (result, state, waiter, coro, name) = match minor {
        8 => (56, 72, 104, 112, 120),
        9 => (56, 80, 144, 152, 160),
        10 => (64, 88, 152, 160, 168),
        11 | 12 => (64, 88, 128, 136, 144),
        _ => (64, 96, 112, 120, 128),
    };
    let coro_frame = match minor {
        8 | 9 => CoroFrame::Pointer {
            at: 16,
            f_state: None,
        },
        10 => CoroFrame::Pointer {
            at: 16,
            f_state: Some(108),
        },
        11 => CoroFrame::Embedded { at: 80, state: 75 },
        _ => CoroFrame::Embedded { at: 72, state: 67 },
    };
    let await_top = match minor {
        8 | 9 => AwaitTop::StackTop(72),
        10 => AwaitTop::Depth(64, 80),
        _ => AwaitTop::Localsplus(72, 64),
    };
    Some(AsyncioOffsets {
        interp_modules: modules,
        running_loop,
        fut_loop: 16,
        fut_result: result,
        fut_state: state,
        task_fut_waiter: waiter,
        task_coro: coro,
        task_name: name,
        coro_frame,
        await_top,
        coro_states: if minor >= 13 {
            CoroStates::V313
        } else {
            CoroStates::V311
        },
        registry: TaskRegistry::ModuleSets,
        current_task: CurrentTask::ModuleDict,
    })
}

/// The builds whose `.AsyncioDebug` values the 3.14+ table holds (seen live).
pub(super) const ASYNCIO_TABLE_BUILDS: &[(u8, u64)] = &[(14, 10), (15, 2)];

/// asyncio on 3.14/3.15 (../shared/FACTS-cpython-314.md, "asyncio", every offset checked
/// live on 3.14.10 and 3.15.2; the values their `.AsyncioDebug` sections publish, and the
/// Future fields no section publishes).
pub(super) fn asyncio_offsets_314(minor: u8, interp_modules: usize) -> Option<AsyncioOffsets> {
    // (running loop, running task, tasks head) in the thread state; interpreter tasks head.
    let (running_loop, running_task, tstate_head, interp_head, below, states) = match minor {
        14 => (864, 872, 880, 10880, 8, CoroStates::V313),
        // 3.15 pushes a NULL before SEND: the awaited object is one slot lower.
        15 => (1024, 1032, 1048, 10856, 16, CoroStates::V315),
        _ => return None,
    };
    Some(AsyncioOffsets {
        interp_modules,
        running_loop: RunningLoop::Field(running_loop),
        fut_loop: 16,
        fut_result: 64,
        fut_state: 104,
        task_fut_waiter: 120,
        task_coro: 128,
        task_name: 136,
        coro_frame: CoroFrame::Embedded { at: 72, state: 67 },
        await_top: AwaitTop::StackPointer { sp: 64, below },
        coro_states: states,
        registry: TaskRegistry::ThreadLists {
            tstate_head,
            interp_head,
            node: 152,
            task_size: 168,
            is_task: 108,
        },
        current_task: CurrentTask::TstateField(running_task),
    })
}
