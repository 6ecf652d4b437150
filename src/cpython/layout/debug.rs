//! The layout of a 3.13+ target from its own `_Py_DebugOffsets`, completed by the facts it
//! does not give; a version newer than the newest tested is attempted with a note.

use super::asyncio::*;
use super::locks::*;
use super::offsets::*;
use super::stdlib::stdlib_offsets;
use super::tables::from_312;
use super::versions::supported_range;
use crate::cpython::opcode_table::OpcodeTable;
use crate::cpython::opcodes;

/// The layout of a 3.13+ target: every offset its `_Py_DebugOffsets` gives, completed by
/// the facts it does not give (../shared/FACTS-cpython-314.md, "Not provided by
/// `_Py_DebugOffsets`"). A version newer than the newest tested is attempted with a note.
pub fn from_debug_offsets(
    d: &crate::cpython::debug_offsets::DebugOffsets,
) -> crate::error::Result<Layout> {
    let minor = u8::try_from(d.minor()).unwrap_or(u8::MAX);
    let mut o = from_312(13);
    let newer = minor >= 14;
    o.runtime_interpreters_head = d.need("runtime_state", "interpreters_head")?;
    o.interp_threads_head = d.need("interpreter_state", "threads_head")?;
    o.interp_modules = d.need("interpreter_state", "imports_modules")?;
    o.interp_ceval_gil = d.get("interpreter_state", "ceval_gil");
    o.interp_own_gil = d.get("interpreter_state", "gil_runtime_state");
    o.interp_next_and_id = d
        .get("interpreter_state", "next")
        .zip(d.get("interpreter_state", "id"));
    o.tstate_next = d.need("thread_state", "next")?;
    o.tstate_interp = d.need("thread_state", "interp")?;
    o.tstate_thread_id = d.need("thread_state", "thread_id")?;
    o.tstate_native_thread_id = Some(d.need("thread_state", "native_thread_id")?);
    o.tstate_top_frame = TopFrame::Direct(d.need("thread_state", "current_frame")?);
    o.tstate_base_frame = d.get("thread_state", "base_frame");
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
    o.code_argcount = d.need("code_object", "argcount")?;
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
        interpreter_fields_pending: None,
        stdlib: stdlib_offsets(minor),
        notes,
    })
}

/// The newest version whose debug-offsets field order `debug_offsets.rs` knows.
const NEWEST_DEBUG: u8 = 15;
