//! Object-header and fixed offsets shared by every supported version.

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
