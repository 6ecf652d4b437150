//! Per-version CPython object layouts (x86-64), in one place behind one trait.
//!
//! Sources: offsets were taken with `gdb -batch -ex 'ptype /o struct NAME'` on the debug info
//! that pyenv's builds ship (libpython3.X.so.1.0), and checked against live targets as recorded
//! in the project's shared FACTS-cpython.md (every pointer compared with `id()` in the target).
//! 3.8 matches 3.9 for every field used here (CPython's Include/cpython/code.h and frameobject.h).

use super::bytecode::OpcodeTable;
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

/// One CPython minor version's layout.
pub trait VersionLayout: Send + Sync {
    fn minor(&self) -> u8;
    fn offsets(&self) -> &Offsets;
    fn opcodes(&self) -> &'static OpcodeTable;
    fn name(&self) -> String {
        format!("3.{}", self.minor())
    }
    /// asyncio's structures (task registry, Task/Future, coroutine frames, running loop).
    fn asyncio(&self) -> Option<AsyncioOffsets> {
        asyncio_offsets(self.minor())
    }
}

struct Layout {
    minor: u8,
    offsets: Offsets,
    opcodes: &'static OpcodeTable,
}

impl VersionLayout for Layout {
    fn minor(&self) -> u8 {
        self.minor
    }
    fn offsets(&self) -> &Offsets {
        &self.offsets
    }
    fn opcodes(&self) -> &'static OpcodeTable {
        self.opcodes
    }
}

const fn before_311(minor: u8) -> Offsets {
    let is_310 = minor == 10;
    Offsets {
        interp_threads_head: 8,
        interp_modules: if minor == 8 { 56 } else { 856 },
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
    }
}

static V38: Layout = Layout {
    minor: 8,
    offsets: before_311(8),
    opcodes: &opcodes::V3_8,
};
static V39: Layout = Layout {
    minor: 9,
    offsets: before_311(9),
    opcodes: &opcodes::V3_9,
};
static V310: Layout = Layout {
    minor: 10,
    offsets: before_311(10),
    opcodes: &opcodes::V3_10,
};

static V311: Layout = Layout {
    minor: 11,
    opcodes: &opcodes::V3_11,
    offsets: Offsets {
        interp_threads_head: 16,
        interp_modules: 888,
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
    },
};

const fn from_312(minor: u8) -> Offsets {
    let is_313 = minor == 13;
    Offsets {
        interp_threads_head: if is_313 { 7344 } else { 72 },
        interp_modules: if is_313 { 7656 } else { 944 },
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
    }
}

static V312: Layout = Layout {
    minor: 12,
    offsets: from_312(12),
    opcodes: &opcodes::V3_12,
};
static V313: Layout = Layout {
    minor: 13,
    offsets: from_312(13),
    opcodes: &opcodes::V3_13,
};

/// The layout for CPython 3.`minor`, if gridlock supports it.
pub fn for_version(major: u64, minor: u64) -> Option<&'static dyn VersionLayout> {
    if major != 3 {
        return None;
    }
    Some(match minor {
        8 => &V38,
        9 => &V39,
        10 => &V310,
        11 => &V311,
        12 => &V312,
        13 => &V313,
        _ => return None,
    })
}

/// Object-header and fixed offsets shared by every supported version.
pub mod common {
    pub const OB_TYPE: usize = 8;
    pub const VAR_SIZE: usize = 16;
    pub const TUPLE_ITEMS: usize = 24;
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
    /// `_thread.lock`: `lock_lock` (sem_t*) and the `locked` byte.
    pub const LOCK_SEM: usize = 16;
    pub const LOCK_LOCKED: usize = 32;
    /// `_thread.RLock`: `rlock_lock`, `rlock_owner` (thread ident), `rlock_count`.
    pub const RLOCK_SEM: usize = 16;
    pub const RLOCK_OWNER: usize = 24;
    pub const RLOCK_COUNT: usize = 32;
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
}

#[derive(Debug, Clone, Copy)]
pub enum RunningLoop {
    /// `tstate->dict` at this offset, key `__asyncio_running_event_loop__` -> holder, loop at +16.
    DictHolder(usize),
    /// `tstate->dict`, same key -> the loop itself (3.12).
    DictLoop(usize),
    /// `tstate->asyncio_running_loop` (3.13).
    Field(usize),
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
    /// `localsplus[stacktop - 1]` (3.11+): (localsplus, stacktop i32).
    Localsplus(usize, usize),
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
    })
}
