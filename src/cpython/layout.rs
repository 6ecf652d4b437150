//! Per-version CPython object layouts (x86-64), in one place: one `Layout` value per target,
//! built from this file's tables (3.8-3.12, and what 3.13+ does not publish) and, on 3.13+,
//! from the target's own `_Py_DebugOffsets` (`debug_offsets.rs`). Only `cpython/` knows the
//! version; everything else reads offsets and the semantic choices (enums) from `Layout`.
//!
//! Sources: offsets were taken with `gdb -batch -ex 'ptype /o struct NAME'` on the debug info
//! that pyenv's builds ship (libpython3.X.so.1.0), and checked against live targets as recorded
//! in the project's shared FACTS-cpython.md (every pointer compared with `id()` in the target).
//! 3.8 matches 3.9 for every field used here (CPython's Include/cpython/code.h and frameobject.h).

use super::opcode_table::OpcodeTable;
use super::opcodes;

/// How a thread state reaches its innermost frame.
#[derive(Debug, Clone, Copy)]
pub enum TopFrame {
    /// `tstate->frame` (3.8-3.10).
    Direct(usize),
    /// `tstate->cframe->current_frame` (3.11, 3.12): (cframe offset, current_frame offset).
    ViaCframe(usize, usize),
}

/// Where a frame's current instruction is recorded.
#[derive(Debug, Clone, Copy)]
pub enum InstructionPointer {
    /// `f_lasti` in bytes (3.8, 3.9).
    LastiBytes(usize),
    /// `f_lasti` in code units (3.10).
    LastiUnits(usize),
    /// A pointer into `co_code_adaptive` (3.11 `prev_instr`, 3.12 `prev_instr`, 3.13 `instr_ptr`).
    Pointer(usize),
}

/// How the enclosing `with` blocks of a frame are found.
#[derive(Debug, Clone, Copy)]
pub enum BlockScheme {
    /// The frame's block stack: (`f_iblock`, `f_blockstack`) offsets (3.8-3.10).
    BlockStack { iblock: usize, blockstack: usize },
    /// The code object's exception table (3.11+).
    ExceptionTable,
}

#[derive(Debug, Clone, Copy)]
pub struct Offsets {
    // PyInterpreterState
    pub interp_threads_head: usize,
    /// `interp->modules` (`interp->imports.modules` on 3.12+): the `sys.modules` dict.
    pub interp_modules: usize,
    /// `interp->ceval.gil`, the pointer to the GIL's record (3.13+, from the debug offsets;
    /// older versions take it from py-spy's knowledge of each version).
    pub interp_ceval_gil: Option<usize>,
    /// `interp->next` and `interp->id` (3.13+, from the debug offsets): `_PyRuntime`'s list
    /// starts at the newest interpreter, and the main one (id 0) is found along it.
    pub interp_next_and_id: Option<(usize, usize)>,
    // PyThreadState
    pub tstate_next: usize,
    pub tstate_thread_id: usize,
    pub tstate_native_thread_id: Option<usize>,
    pub tstate_top_frame: TopFrame,
    // frame (PyFrameObject up to 3.10, _PyInterpreterFrame from 3.11)
    pub frame_back: usize,
    pub frame_code: usize,
    /// The frame's globals dict.
    pub frame_globals: usize,
    pub frame_instruction: InstructionPointer,
    /// 3.8-3.10: `f_valuestack` (a pointer); 3.11+: unused (the stack follows the locals inline).
    pub frame_valuestack_ptr: Option<usize>,
    /// Offset of `localsplus` / `f_localsplus` inside the frame.
    pub frame_localsplus: usize,
    pub frame_blocks: BlockScheme,
    /// `owner` byte (3.11+); 3 means a C-stack shim on 3.12+.
    pub frame_owner: Option<usize>,
    // PyCodeObject
    pub code_bytecode: Bytecode,
    pub code_consts: usize,
    pub code_names: usize,
    /// 3.8-3.10 `co_varnames`; 3.11+ `co_localsplusnames`.
    pub code_varnames: usize,
    /// 3.8-3.10 only: `co_cellvars`, `co_freevars` (LOAD_DEREF indexes cells then frees).
    pub code_cellvars: Option<usize>,
    pub code_freevars: Option<usize>,
    pub code_nlocals: usize,
    /// 3.11+: `co_nlocalsplus` (locals + cells + frees, before the value stack).
    pub code_nlocalsplus: Option<usize>,
    pub code_stacksize: usize,
    pub code_exceptiontable: Option<usize>,
    pub code_filename: usize,
    pub code_name: usize,
    pub code_qualname: Option<usize>,
    pub code_firstlineno: usize,
    /// `co_lnotab` (3.8, 3.9), `co_linetable` (3.10+): a bytes object.
    pub code_linetable: usize,
    // Unicode
    pub str_ascii_data: usize,
    pub str_compact_data: usize,
    // Ints
    pub int_lv_tag: bool,
    // instance dicts
    pub instance_dict: InstanceDict,
    /// `_PyRuntime.interpreters.head`.
    pub runtime_interpreters_head: usize,
    /// `PyThreadState.interp`.
    pub tstate_interp: usize,
    /// Frames whose `owner` byte is at least this are interpreter shims, not Python code
    /// (3.12+; 3 = C stack on 3.12/3.13, interpreter entry on 3.14+).
    pub frame_shim_owner: Option<u8>,
    /// Frame slots hold `_PyStackRef`s (3.14+): low bits are tags, `& 3 == 3` a tagged int.
    pub stackrefs: bool,
    /// `PyTupleObject.ob_item`.
    pub tuple_items: usize,
    pub dict_keys: DictKeys,
    /// Bytes before the first value of a split dict's values array (3.13+: a header).
    pub dict_values_header: usize,
    /// `PyHeapTypeObject.ht_cached_keys` (3.11+).
    pub ht_cached_keys: usize,
    pub gil: GilRecord,
    /// `Thread.join` (3.13+) and `PyMutex` locks park in CPython's parking lot.
    pub parking_lot: bool,
}

/// The dict-keys object's internals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DictKeys {
    /// 3.8-3.10: `dk_size` +8, `dk_nentries` +32, indices at +40, 24-byte entries.
    Sized,
    /// 3.11+: `log2_index_bytes` +9, `dk_kind` +10, `dk_nentries` +24, indices at +32.
    Log2,
}

/// Where the interpreter records which thread holds the GIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GilRecord {
    /// `gilstate.tstate_current`, a thread-state pointer (3.8-3.11).
    TstatePointer,
    /// `_gil_runtime_state`: `last_holder` counts only while `locked` (3.12+).
    LastHolder,
}

#[derive(Debug, Clone, Copy)]
pub enum Bytecode {
    /// A `bytes` object pointer (`co_code`, 3.8-3.10).
    Object(usize),
    /// Inline array at this offset (`co_code_adaptive`, 3.11+).
    Inline(usize),
}

/// Where an object's instance attributes live.
#[derive(Debug, Clone, Copy)]
pub enum InstanceDict {
    /// `tp_dictoffset` (type +288) gives the dict pointer's offset (3.8-3.10).
    DictOffset,
    /// 3.11: obj-24 is the dict or NULL; obj-32 a values array keyed by `ht_cached_keys` (+872).
    Managed311,
    /// 3.12: obj-24 tagged (odd: values at ptr+1, even: dict); `ht_cached_keys` +880.
    Managed312,
    /// 3.13: obj-24 dict or NULL, else inline values at obj + `tp_basicsize` (+8 past a header).
    Managed313,
}

/// Everything gridlock reads from one target's interpreter: offsets, object internals and
/// the semantic choices of that build. Built once per binary at attach.
#[derive(Debug, Clone)]
pub struct Layout {
    pub(in crate::cpython) minor: u8,
    /// `3.13.18`.
    pub version: String,
    pub offsets: Offsets,
    /// asyncio's structures (task registry, Task/Future, coroutine frames, running loop). On
    /// 3.14+ these are the table's values, used only where `asyncio_published` allows.
    pub asyncio: Option<AsyncioOffsets>,
    /// 3.14+: the target publishes its asyncio offsets (`_asyncio`'s `.AsyncioDebug` section),
    /// read from it at the first snapshot that sees asyncio (`asyncio_debug.rs`).
    pub asyncio_published: Option<PublishedAsyncio>,
    pub opcodes: &'static OpcodeTable,
    /// `_thread.lock` / `_thread.RLock` internals, as checked on the target (None: off).
    pub locks: LockLayouts,
    /// The lock types were read from the target (a process that has just started may not
    /// have imported `_thread` yet: the check is repeated until it has).
    pub locks_checked: bool,
    /// The standard library's C objects that pools and futures are built on.
    pub stdlib: StdlibOffsets,
    /// What the report should say about this layout (an untested version, a part turned off).
    pub notes: Vec<String>,
}

impl Layout {
    /// How bytecode is decoded and evaluated (opaque outside `cpython/`).
    pub fn dialect(&self) -> Dialect {
        Dialect(self.minor)
    }
}

/// The bytecode dialect of a target: which instruction set and stack conventions apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect(pub(in crate::cpython) u8);

impl Dialect {
    /// 3.8-3.10 mark a suspended `await` with `YIELD_FROM`; 3.11+ have no such marker.
    pub fn marks_yield_from(self) -> bool {
        self.0 <= 10
    }
    /// 3.8-3.10 keep cells and frees after the locals, named by separate tuples.
    pub fn cells_named_apart(self) -> bool {
        self.0 <= 10
    }
}

/// `_thread.lock` internals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockLayout {
    /// 40 bytes (3.8-3.13.0): `lock_lock` (a `sem_t*`) and the `locked` byte.
    Semaphore { sem: usize, locked: usize },
    /// 24 bytes (3.13.x later, 3.14+): a `PyMutex` byte; waiters park in the parking lot.
    Mutex { mutex: usize },
}

/// `_thread.RLock` internals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RLockLayout {
    /// 48 bytes (3.8-3.13): `rlock_lock` (`sem_t*`), `rlock_owner` (ident), `rlock_count`.
    Semaphore {
        sem: usize,
        owner: usize,
        count: usize,
    },
    /// 40 bytes (3.14+): `PyMutex`, owner ident, `level` = count - 1 while held.
    Mutex {
        mutex: usize,
        owner: usize,
        level: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockLayouts {
    pub lock: Option<LockLayout>,
    pub rlock: Option<RLockLayout>,
}

const SEM_LOCK: LockLayout = LockLayout::Semaphore {
    sem: 16,
    locked: 32,
};
const SEM_RLOCK: RLockLayout = RLockLayout::Semaphore {
    sem: 16,
    owner: 24,
    count: 32,
};

impl LockLayouts {
    /// The layouts a `tp_basicsize` identifies (../shared/FACTS-cpython-314.md, "Locks").
    pub fn lock_of_size(size: u64) -> Option<LockLayout> {
        match size {
            40 => Some(SEM_LOCK),
            24 => Some(LockLayout::Mutex { mutex: 16 }),
            _ => None,
        }
    }
    pub fn rlock_of_size(size: u64) -> Option<RLockLayout> {
        match size {
            48 => Some(SEM_RLOCK),
            40 => Some(RLockLayout::Mutex {
                mutex: 16,
                owner: 24,
                level: 32,
            }),
            _ => None,
        }
    }
}

const fn before_311(minor: u8) -> Offsets {
    let is_310 = minor == 10;
    Offsets {
        interp_threads_head: 8,
        interp_modules: if minor == 8 { 56 } else { 856 },
        interp_ceval_gil: None,
        interp_next_and_id: None,
        tstate_next: 8,
        tstate_thread_id: 176,
        tstate_native_thread_id: None,
        tstate_top_frame: TopFrame::Direct(24),
        frame_back: 24,
        frame_code: 32,
        frame_globals: 48,
        frame_instruction: if is_310 {
            InstructionPointer::LastiUnits(96)
        } else {
            InstructionPointer::LastiBytes(104)
        },
        frame_valuestack_ptr: Some(64),
        // f_blockstack holds CO_MAXBLOCKS (20) PyTryBlocks of 12 bytes, then f_localsplus.
        frame_localsplus: if is_310 { 112 + 240 } else { 120 + 240 },
        frame_blocks: if is_310 {
            BlockScheme::BlockStack {
                iblock: 104,
                blockstack: 112,
            }
        } else {
            BlockScheme::BlockStack {
                iblock: 112,
                blockstack: 120,
            }
        },
        frame_owner: None,
        code_bytecode: Bytecode::Object(48),
        code_consts: 56,
        code_names: 64,
        code_varnames: 72,
        code_cellvars: Some(88),
        code_freevars: Some(80),
        code_nlocals: 28,
        code_nlocalsplus: None,
        code_stacksize: 32,
        code_exceptiontable: None,
        code_filename: 104,
        code_name: 112,
        code_qualname: None,
        code_firstlineno: 40,
        code_linetable: 120,
        str_ascii_data: 48,
        str_compact_data: 72,
        int_lv_tag: false,
        instance_dict: InstanceDict::DictOffset,
        runtime_interpreters_head: 32,
        tstate_interp: 16,
        frame_shim_owner: None,
        stackrefs: false,
        tuple_items: 24,
        dict_keys: DictKeys::Sized,
        dict_values_header: 0,
        ht_cached_keys: 0,
        gil: GilRecord::TstatePointer,
        parking_lot: false,
    }
}

const V311: Offsets = Offsets {
    interp_threads_head: 16,
    interp_modules: 888,
    interp_ceval_gil: None,
    interp_next_and_id: None,
    tstate_next: 8,
    tstate_thread_id: 152,
    tstate_native_thread_id: Some(160),
    tstate_top_frame: TopFrame::ViaCframe(56, 8),
    frame_back: 48,
    frame_code: 32,
    frame_globals: 8,
    frame_instruction: InstructionPointer::Pointer(56),
    frame_valuestack_ptr: None,
    frame_localsplus: 72,
    frame_blocks: BlockScheme::ExceptionTable,
    frame_owner: Some(69),
    code_bytecode: Bytecode::Inline(184),
    code_consts: 24,
    code_names: 32,
    code_varnames: 96,
    code_cellvars: None,
    code_freevars: None,
    code_nlocals: 80,
    code_nlocalsplus: Some(76),
    code_stacksize: 68,
    code_exceptiontable: Some(40),
    code_filename: 112,
    code_name: 120,
    code_qualname: Some(128),
    code_firstlineno: 72,
    code_linetable: 136,
    str_ascii_data: 48,
    str_compact_data: 72,
    int_lv_tag: false,
    instance_dict: InstanceDict::Managed311,
    runtime_interpreters_head: 40,
    tstate_interp: 16,
    frame_shim_owner: None,
    stackrefs: false,
    tuple_items: 24,
    dict_keys: DictKeys::Log2,
    dict_values_header: 0,
    ht_cached_keys: 872,
    gil: GilRecord::TstatePointer,
    parking_lot: false,
};

const fn from_312(minor: u8) -> Offsets {
    let is_313 = minor == 13;
    Offsets {
        interp_threads_head: if is_313 { 7344 } else { 72 },
        interp_modules: if is_313 { 7656 } else { 944 },
        interp_ceval_gil: None,
        interp_next_and_id: None,
        tstate_next: 8,
        tstate_thread_id: if is_313 { 152 } else { 136 },
        tstate_native_thread_id: Some(if is_313 { 160 } else { 144 }),
        tstate_top_frame: if is_313 {
            TopFrame::Direct(72)
        } else {
            TopFrame::ViaCframe(56, 0)
        },
        frame_back: 8,
        frame_code: 0,
        frame_globals: 24,
        frame_instruction: InstructionPointer::Pointer(56),
        frame_valuestack_ptr: None,
        frame_localsplus: 72,
        frame_blocks: BlockScheme::ExceptionTable,
        frame_owner: Some(70),
        code_bytecode: Bytecode::Inline(if is_313 { 200 } else { 192 }),
        code_consts: 24,
        code_names: 32,
        code_varnames: 96,
        code_cellvars: None,
        code_freevars: None,
        code_nlocals: 80,
        code_nlocalsplus: Some(72),
        code_stacksize: 64,
        code_exceptiontable: Some(40),
        code_filename: 112,
        code_name: 120,
        code_qualname: Some(128),
        code_firstlineno: 68,
        code_linetable: 136,
        str_ascii_data: 40,
        str_compact_data: 56,
        int_lv_tag: true,
        instance_dict: if is_313 {
            InstanceDict::Managed313
        } else {
            InstanceDict::Managed312
        },
        runtime_interpreters_head: if is_313 { 632 } else { 40 },
        tstate_interp: 16,
        frame_shim_owner: Some(3),
        stackrefs: false,
        tuple_items: 24,
        dict_keys: DictKeys::Log2,
        dict_values_header: if is_313 { 8 } else { 0 },
        ht_cached_keys: 880,
        gil: GilRecord::LastHolder,
        parking_lot: is_313,
    }
}

/// The oldest and newest CPython minor versions gridlock is tested on (3.`OLDEST`..3.`NEWEST`).
pub const OLDEST: u8 = 8;
pub const NEWEST: u8 = 15;

/// The supported range as users read it ("3.8 to 3.15").
pub fn supported_range() -> String {
    format!("3.{OLDEST} to 3.{NEWEST}")
}

/// The table layout for CPython `major.minor.patch`, if this file knows it.
pub fn for_version(major: u64, minor: u64, patch: u64) -> Option<Layout> {
    if major != 3 {
        return None;
    }
    let minor = u8::try_from(minor).ok()?;
    let (offsets, opcodes): (Offsets, &'static OpcodeTable) = match minor {
        8 => (before_311(8), &opcodes::V3_8),
        9 => (before_311(9), &opcodes::V3_9),
        10 => (before_311(10), &opcodes::V3_10),
        11 => (V311, &opcodes::V3_11),
        12 => (from_312(12), &opcodes::V3_12),
        13 => (from_312(13), &opcodes::V3_13),
        _ => return None,
    };
    Some(Layout {
        minor,
        version: format!("{major}.{minor}.{patch}"),
        offsets,
        asyncio: asyncio_offsets(minor),
        asyncio_published: None,
        opcodes,
        locks: LockLayouts {
            lock: Some(SEM_LOCK),
            rlock: Some(SEM_RLOCK),
        },
        locks_checked: false,
        stdlib: stdlib_offsets(minor),
        notes: Vec::new(),
    })
}

/// The few standard-library C objects that pools and futures are built on: a Python
/// function (who a done-callback refers to) and a `_queue.SimpleQueue` (an executor's work
/// queue). Not in `_Py_DebugOffsets`; checked against each interpreter with ctypes
/// (`id()`-relative reads of `__qualname__`, `__closure__` and queued items).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdlibOffsets {
    /// `PyFunctionObject.func_qualname`.
    pub func_qualname: usize,
    /// `PyFunctionObject.func_closure`.
    pub func_closure: usize,
    /// `PyCellObject.ob_ref`.
    pub cell_ref: usize,
    pub simple_queue: SimpleQueueLayout,
}

/// Where a `_queue.SimpleQueue` keeps its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimpleQueueLayout {
    /// 3.8-3.12: a list and the read position in it.
    List { list: usize, pos: usize },
    /// 3.13+: `RingBuf { put_idx, get_idx, items, items_cap, num_items }` after a padded bool.
    Ring {
        get: usize,
        items: usize,
        cap: usize,
        len: usize,
    },
}

/// The standard-library offsets of CPython 3.`minor` (3.8 and newer).
pub fn stdlib_offsets(minor: u8) -> StdlibOffsets {
    let (func_qualname, func_closure) = if minor <= 9 { (104, 48) } else { (40, 72) };
    StdlibOffsets {
        func_qualname,
        func_closure,
        cell_ref: 16,
        simple_queue: if minor <= 12 {
            SimpleQueueLayout::List { list: 32, pos: 40 }
        } else {
            SimpleQueueLayout::Ring {
                get: 32,
                items: 40,
                cap: 48,
                len: 56,
            }
        },
    }
}

/// Object-header and fixed offsets shared by every supported version.
pub mod common {
    pub const OB_TYPE: usize = 8;
    pub const VAR_SIZE: usize = 16;
    pub const BYTES_DATA: usize = 32;
    pub const LIST_ITEMS: usize = 24;
    pub const TP_NAME: usize = 24;
    pub const TP_BASICSIZE: usize = 32;
    pub const TP_DICTOFFSET: usize = 288;
    /// `tp_dict` (a heap type's namespace) and `tp_mro` (a tuple of types).
    pub const TP_DICT: usize = 264;
    pub const TP_MRO: usize = 344;
    pub const STR_LENGTH: usize = 16;
    pub const STR_STATE: usize = 32;
    /// Builtin method `m_self`; bound method `im_self` (`im_func` at 16).
    pub const METHOD_SELF: usize = 24;
    pub const METHOD_FUNC: usize = 16;
    /// A module's `md_dict`.
    pub const MODULE_DICT: usize = 16;
    /// `_gil_runtime_state` (3.12+): `last_holder` and `locked`.
    pub const GIL_LAST_HOLDER: usize = 8;
    pub const GIL_LOCKED: usize = 16;
    /// PyTryBlock (3.8-3.10): 12 bytes {b_type, b_handler, b_level}.
    pub const TRY_BLOCK_SIZE: usize = 12;
    pub const SETUP_FINALLY_BLOCK: i32 = 122;
    /// 3.13 parking lot: `wait_entry {park_arg, addr, sem_t sema, ..}`; the futex is `sema`.
    pub const WAIT_ENTRY_SEMA: usize = 16;
    pub const WAIT_ENTRY_ADDR: usize = 8;
    /// 3.13 `ThreadHandle`: `ident` at 32; a joiner parks on `thread_is_exiting` at 57.
    pub const THREAD_HANDLE_IDENT: usize = 32;
    pub const THREAD_HANDLE_EXITING_EVENT: usize = 57;
}

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

/// Offsets of `FutureIter.future`, the running-loop holder's loop, and a `collections.deque`.
pub mod asyncio_common {
    pub const FUTURE_ITER_FUTURE: usize = 16;
    pub const RUNNING_LOOP_HOLDER_LOOP: usize = 16;
    /// `set`: `mask` and `table` ({key, hash} entries of 16 bytes).
    pub const SET_MASK: usize = 32;
    pub const SET_TABLE: usize = 40;
    /// `weakref.wr_object`.
    pub const WEAKREF_OBJECT: usize = 16;
    /// `collections.deque`: ob_size, leftblock, leftindex; `state` counts index moves
    /// (Modules/_collectionsmodule.c, same on 3.8-3.13); block `data[64]` at +8, `rightlink` +520.
    pub const DEQUE_LEN: usize = 16;
    pub const DEQUE_LEFTBLOCK: usize = 24;
    pub const DEQUE_LEFTINDEX: usize = 40;
    pub const DEQUE_STATE: usize = 56;
    pub const DEQUE_BLOCK_DATA: usize = 8;
    pub const DEQUE_BLOCK_RIGHTLINK: usize = 520;
    pub const DEQUE_BLOCKLEN: usize = 64;
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
const ASYNCIO_TABLE_BUILDS: &[(u8, u64)] = &[(14, 10), (15, 2)];

/// asyncio on 3.14/3.15 (../shared/FACTS-cpython-314.md, "asyncio", every offset checked
/// live on 3.14.10 and 3.15.2; the values their `.AsyncioDebug` sections publish, and the
/// Future fields no section publishes).
fn asyncio_offsets_314(minor: u8, interp_modules: usize) -> Option<AsyncioOffsets> {
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

/// The layout of a 3.13+ target: every offset its `_Py_DebugOffsets` gives, completed by
/// the facts it does not give (../shared/FACTS-cpython-314.md, "Not provided by
/// `_Py_DebugOffsets`"). A version newer than the newest tested is attempted with a note.
pub fn from_debug_offsets(d: &super::debug_offsets::DebugOffsets) -> crate::error::Result<Layout> {
    let minor = u8::try_from(d.minor()).unwrap_or(u8::MAX);
    let mut o = from_312(13);
    let newer = minor >= 14;
    o.runtime_interpreters_head = d.need("runtime_state", "interpreters_head")?;
    o.interp_threads_head = d.need("interpreter_state", "threads_head")?;
    o.interp_modules = d.need("interpreter_state", "imports_modules")?;
    o.interp_ceval_gil = d.get("interpreter_state", "ceval_gil");
    o.interp_next_and_id = d
        .get("interpreter_state", "next")
        .zip(d.get("interpreter_state", "id"));
    o.tstate_next = d.need("thread_state", "next")?;
    o.tstate_interp = d.need("thread_state", "interp")?;
    o.tstate_thread_id = d.need("thread_state", "thread_id")?;
    o.tstate_native_thread_id = Some(d.need("thread_state", "native_thread_id")?);
    o.tstate_top_frame = TopFrame::Direct(d.need("thread_state", "current_frame")?);
    o.frame_back = d.need("interpreter_frame", "previous")?;
    o.frame_code = d.need("interpreter_frame", "executable")?;
    o.frame_instruction = InstructionPointer::Pointer(d.need("interpreter_frame", "instr_ptr")?);
    o.frame_localsplus = d.need("interpreter_frame", "localsplus")?;
    o.frame_owner = Some(d.need("interpreter_frame", "owner")?);
    o.code_filename = d.need("code_object", "filename")?;
    o.code_name = d.need("code_object", "name")?;
    o.code_qualname = Some(d.need("code_object", "qualname")?);
    o.code_linetable = d.need("code_object", "linetable")?;
    o.code_firstlineno = d.need("code_object", "firstlineno")?;
    o.code_varnames = d.need("code_object", "localsplusnames")?;
    o.code_bytecode = Bytecode::Inline(d.need("code_object", "co_code_adaptive")?);
    o.tuple_items = d.need("tuple_object", "ob_item")?;
    o.str_ascii_data = d.need("unicode_object", "asciiobject_size")?;
    if let Some(compact) = d.get("unicode_object", "compactunicodeobject_size") {
        o.str_compact_data = compact;
    }
    if let Some(keys) = d.get("heap_type_object", "ht_cached_keys") {
        o.ht_cached_keys = keys;
    }
    // 3.14+: frame slots are `_PyStackRef`s; the shim owner (3) is the interpreter's entry.
    o.stackrefs = newer;
    let mut notes = Vec::new();
    if d.newer_than_known {
        notes.push(format!(
            "CPython 3.{minor} is newer than the newest tested ({}): its layout was read from its debug offsets with 3.{NEWEST_DEBUG}'s field order, untested",
            supported_range()
        ));
    }
    let opcodes: &'static OpcodeTable = match minor {
        13 => &opcodes::V3_13,
        14 => &opcodes::V3_14,
        _ => &opcodes::V3_15,
    };
    let asyncio = if minor == 13 {
        asyncio_offsets(13).map(|mut a| {
            // `asyncio_running_loop` follows the thread state (3.13.18 grew it by 8 bytes).
            if let Some(size) = d.get("thread_state", "size") {
                a.running_loop = RunningLoop::Field(size);
            }
            a.interp_modules = o.interp_modules;
            a
        })
    } else {
        asyncio_offsets_314(minor, o.interp_modules)
    };
    let asyncio_published = asyncio.is_some().then(|| PublishedAsyncio {
        table_build: ASYNCIO_TABLE_BUILDS.contains(&(minor, d.micro())),
        interp_size: d.get("interpreter_state", "size"),
        tstate_base_size: d.get("thread_state", "size"),
        table_builds: ASYNCIO_TABLE_BUILDS
            .iter()
            .map(|(minor, micro)| format!("3.{minor}.{micro}"))
            .collect::<Vec<_>>()
            .join(", "),
    });
    if newer && asyncio.is_none() {
        notes.push(format!(
            "asyncio tasks and event loops are not read on CPython 3.{minor} (untested layout)"
        ));
    }
    Ok(Layout {
        minor,
        version: format!("{}.{}.{}", d.major(), d.minor(), d.micro()),
        offsets: o,
        asyncio,
        asyncio_published: if newer { asyncio_published } else { None },
        opcodes,
        // 3.13's patch releases differ (3.13.0 a semaphore, later a PyMutex): the target's
        // own lock types decide at attach (`locks::check_locks`).
        locks: if newer {
            LockLayouts {
                lock: LockLayouts::lock_of_size(24),
                rlock: LockLayouts::rlock_of_size(40),
            }
        } else {
            LockLayouts {
                lock: None,
                rlock: Some(SEM_RLOCK),
            }
        },
        locks_checked: false,
        stdlib: stdlib_offsets(minor),
        notes,
    })
}

/// The newest version whose debug-offsets field order `debug_offsets.rs` knows.
const NEWEST_DEBUG: u8 = 15;

#[cfg(test)]
mod stdlib_tests {
    use super::*;

    #[test]
    fn every_layout_carries_its_versions_stdlib_offsets() {
        let l = for_version(3, 12, 1).unwrap();
        assert_eq!(l.stdlib.func_qualname, 40);
        assert!(matches!(
            l.stdlib.simple_queue,
            SimpleQueueLayout::List { list: 32, pos: 40 }
        ));
        let l = for_version(3, 9, 18).unwrap();
        assert_eq!((l.stdlib.func_qualname, l.stdlib.func_closure), (104, 48));
        let l = for_version(3, 13, 0).unwrap();
        assert!(matches!(
            l.stdlib.simple_queue,
            SimpleQueueLayout::Ring { get: 32, .. }
        ));
    }
}
