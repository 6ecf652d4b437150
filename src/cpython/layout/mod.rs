//! Per-version CPython object layouts (x86-64), in one place: one `Layout` value per target,
//! built from this file's tables (3.8-3.12, and what 3.13+ does not publish) and, on 3.13+,
//! from the target's own `_Py_DebugOffsets` (`debug_offsets.rs`). Only `cpython/` knows the
//! version; everything else reads offsets and the semantic choices (enums) from `Layout`.
//!
//! Sources: offsets were taken with `gdb -batch -ex 'ptype /o struct NAME'` on the debug info
//! that pyenv's builds ship (libpython3.X.so.1.0), and checked against live targets as recorded
//! in the project's shared FACTS-cpython.md (every pointer compared with `id()` in the target).
//! 3.8 matches 3.9 for every field used here (CPython's Include/cpython/code.h and frameobject.h).
//!
//! The children each answer one question and none names this file: `offsets` (the types),
//! `tables` (3.8-3.13), `versions` (the supported range, a table layout by version), `debug`
//! (3.13+ from `_Py_DebugOffsets`), `locks`, `stdlib`, `asyncio`, and the fixed offsets of
//! `common` and `asyncio_common`.

mod asyncio;
pub mod asyncio_common;
pub mod common;
mod debug;
mod locks;
mod offsets;
mod stdlib;
mod tables;
mod versions;

pub use asyncio::*;
pub use debug::*;
pub use locks::*;
pub use offsets::*;
pub use stdlib::*;
pub use versions::*;
