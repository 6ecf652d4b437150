//! What a `Layout` holds: the interpreter's field offsets (`Offsets`) and the semantic
//! choices of one build (how a thread reaches its frame, where the instruction pointer is,
//! how dicts, bytecode and the GIL record are kept), and the bytecode `Dialect`. Types only:
//! the values are built in `tables`, `versions` and `debug`.

use super::asyncio::{AsyncioOffsets, PublishedAsyncio};
use super::locks::LockLayouts;
use super::stdlib::StdlibOffsets;
use crate::cpython::opcode_table::OpcodeTable;

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
    /// `interp->ceval.gil`, the pointer to the GIL's record (3.13+ from the debug offsets,
    /// 3.12 from the table once checked live; older versions take it from py-spy's
    /// knowledge of each version).
    pub interp_ceval_gil: Option<usize>,
    /// `interp->_gil`, the interpreter's own GIL record (3.12+, as `interp_ceval_gil`): a
    /// subinterpreter made with `gil=OWN_GIL` points `ceval.gil` at it.
    pub interp_own_gil: Option<usize>,
    /// `interp->next` and `interp->id` (3.12+, as `interp_ceval_gil`): `_PyRuntime`'s list
    /// starts at the newest interpreter, and the main one (id 0) is found along it.
    pub interp_next_and_id: Option<(usize, usize)>,
    // PyThreadState
    pub tstate_next: usize,
    pub tstate_thread_id: usize,
    pub tstate_native_thread_id: Option<usize>,
    pub tstate_top_frame: TopFrame,
    /// The pointer to the frame every thread's chain ends at (`base_frame`, 3.15+, from the
    /// debug offsets; the frame itself lies past the public thread state).
    pub tstate_base_frame: Option<usize>,
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
    /// `co_argcount`; `co_kwonlyargcount` is two ints later (after `co_posonlyargcount`)
    /// in every version.
    pub code_argcount: usize,
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
    /// A subinterpreter's thread state names the OS thread that runs it (`thread_id`,
    /// `native_thread_id`): 3.13+ binds one to each thread entering the interpreter. Before,
    /// `_xxsubinterpreters.run_string` runs code on the interpreter's newest thread state from
    /// any thread, whose ids name the thread that made it: not matched to a thread by them.
    pub sub_thread_ids_trusted: bool,
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
    /// 3.12's interpreter-list and GIL fields, set aside while the runtime was too early in its
    /// start to check them (`gil_fields`): checked again at the next snapshot.
    pub interpreter_fields_pending: Option<InterpreterFields>,
    /// The standard library's C objects that pools and futures are built on.
    pub stdlib: StdlibOffsets,
    /// What the report should say about this layout (an untested version, a part turned off).
    pub notes: Vec<String>,
}

/// A version table's interpreter-list and GIL fields (3.12, where no debug offsets publish
/// them): `ceval.gil`, `_gil`, and `next` and `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterpreterFields {
    pub ceval_gil: usize,
    pub own_gil: usize,
    pub next_and_id: (usize, usize),
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
