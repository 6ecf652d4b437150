//! CPython internals, read from outside: per-version layouts behind one trait, object
//! readers, a bytecode decoder and the thread/frame walker.

pub mod asyncio_debug;
pub mod bytecode;
pub mod code_at;
pub mod debug_offsets;
pub mod eval_loop;
pub mod frame_paths;
pub mod functions;
pub mod gil_fields;
pub mod gils;
pub mod layout;
pub mod lines;
pub mod locks;
pub mod modules_index;
pub mod numbers;
pub mod objects;
pub mod opcode_table;
pub mod slots;
mod stack;
pub mod stdlib;
#[rustfmt::skip]
pub mod opcodes;
pub mod threads;
pub mod writes;

pub use layout::{for_version, Dialect, Layout};

use crate::memory::ReadMemory;

/// Why a target's interpreter is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A version gridlock has no layout for (and no debug offsets to read one from).
    Unsupported(String),
    /// A free-threaded build (its object header and per-object locks are not read).
    FreeThreaded(String),
    /// The debug offsets were present but could not be read or made sense of.
    Unreadable(String),
}

/// The layout of the interpreter `major.minor.patch` whose `_PyRuntime` is at `runtime`:
/// from its debug offsets when it publishes them (3.13+), else from the version tables (whose
/// interpreter-list and GIL fields are kept only when the live runtime bears them out).
pub fn layout_for(
    mem: &dyn ReadMemory,
    major: u64,
    minor: u64,
    patch: u64,
    runtime: Option<usize>,
) -> Result<Layout, Refusal> {
    let version = format!("{major}.{minor}.{patch}");
    if let Some(runtime) =
        runtime.filter(|r| major == 3 && minor >= 13 && debug_offsets::present(mem, *r))
    {
        let d =
            debug_offsets::read(mem, runtime).map_err(|e| Refusal::Unreadable(e.to_string()))?;
        if d.free_threaded {
            return Err(Refusal::FreeThreaded(version));
        }
        return layout::from_debug_offsets(&d).map_err(|e| Refusal::Unreadable(e.to_string()));
    }
    let mut layout = for_version(major, minor, patch).ok_or(Refusal::Unsupported(version))?;
    gil_fields::check_table_fields(mem, &mut layout, runtime);
    Ok(layout)
}

/// Check the layout's lock choices against the target's own lock types (through the
/// interpreter's `sys.modules`), turning off what is not recognised, with a note; returns
/// the notes added. Nothing changes while `_thread` cannot be read yet (`locks_checked`
/// stays false, and the caller asks again at the next snapshot).
pub fn check_locks(mem: &dyn ReadMemory, layout: &mut Layout, interpreter: usize) -> Vec<String> {
    let objs = objects::Objects::new(mem, layout);
    let Ok(modules) = mem.ptr(interpreter + layout.offsets.interp_modules) else {
        return Vec::new();
    };
    let Some((locks, notes)) = locks::check_locks(&objs, modules, layout.locks) else {
        return Vec::new();
    };
    layout.locks = locks;
    layout.locks_checked = true;
    layout.notes.extend(notes.iter().cloned());
    notes
}

/// The CPython versions gridlock reads ("3.8", ...), from the range the layouts are tested on,
/// so the list `--version` prints cannot drift from what attaching accepts.
pub fn supported_versions() -> Vec<String> {
    (layout::OLDEST..=layout::NEWEST)
        .map(|minor| format!("3.{minor}"))
        .collect()
}
