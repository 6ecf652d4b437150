//! Which subinterpreters have a GIL of their own (3.12+ `Py_NewInterpreterFromConfig` with
//! `gil=OWN_GIL`), where its record is and which thread state holds it. Read only where the
//! debug offsets name `interp->ceval.gil` and `interp->_gil` (3.13+); a GIL record is trusted
//! only when it is the interpreter's own and its `locked`/`last_holder` fields are plausible.
//! It may not say anything of the main interpreter's GIL, nor of a shared one (legacy
//! subinterpreters run under the main GIL, which the caller already reads).

use super::layout::common::{GIL_LAST_HOLDER, GIL_LOCKED};
use super::layout::Offsets;
use super::threads::interpreters;
use crate::memory::ReadMemory;

/// `sizeof(struct _gil_runtime_state)` on x86_64 Linux (`interval`, `last_holder`, `locked`,
/// `switch_number`, then `cond`, `mutex`, `switch_cond`, `switch_mutex`): a thread asleep in
/// `take_gil` waits on a futex inside it.
pub const GIL_RECORD_SIZE: usize = 208;

/// Thread states read per interpreter before its list is taken as endless.
const MAX_THREAD_STATES: usize = 4096;

/// A subinterpreter's own GIL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnGil {
    pub interpreter: usize,
    /// The interpreter's id (`interp->id`), when readable.
    pub id: Option<i64>,
    /// The `_gil_runtime_state` record (inside the interpreter's state).
    pub address: usize,
    /// The thread state holding it (one of this interpreter's), while `locked`.
    pub holder: Option<usize>,
    /// That thread state's `native_thread_id`, when positive.
    pub holder_native_id: Option<i32>,
}

impl OwnGil {
    /// Whether `futex` lies in this GIL's record (its condition variables and mutexes).
    pub fn contains(&self, futex: usize) -> bool {
        self.address <= futex && futex < self.address.saturating_add(GIL_RECORD_SIZE)
    }
}

/// The own GILs of the interpreters listed from `head`, other than `main`'s and other than
/// `main_gil` (a shared GIL). An interpreter whose record is implausible is left out.
pub fn own_gils(
    mem: &dyn ReadMemory,
    offsets: &Offsets,
    head: usize,
    main: usize,
    main_gil: usize,
) -> Vec<OwnGil> {
    let (Some(ceval_gil), Some(own)) = (offsets.interp_ceval_gil, offsets.interp_own_gil) else {
        return Vec::new();
    };
    if offsets.interp_next_and_id.is_none() {
        return Vec::new();
    }
    interpreters(mem, offsets, head)
        .into_iter()
        .filter(|&interp| interp != main)
        .filter_map(|interp| {
            let address = mem.ptr(interp + ceval_gil).ok()?;
            // Its own: `ceval.gil` points at the record inside this interpreter's state.
            if address == 0 || address == main_gil || address != interp.wrapping_add(own) {
                return None;
            }
            read_own_gil(mem, offsets, interp, address)
        })
        .collect()
}

/// The record at `address` of interpreter `interp`, when `locked` is 0 or 1 and, while
/// locked, `last_holder` is a thread state of `interp`.
fn read_own_gil(
    mem: &dyn ReadMemory,
    offsets: &Offsets,
    interp: usize,
    address: usize,
) -> Option<OwnGil> {
    let locked = mem.i32(address + GIL_LOCKED).ok()?;
    let holder = match locked {
        0 => None,
        1 => {
            let last = mem.ptr(address + GIL_LAST_HOLDER).ok()?;
            if !thread_states(mem, offsets, interp).contains(&last) {
                return None;
            }
            Some(last)
        }
        _ => return None,
    };
    let holder_native_id = match (holder, offsets.tstate_native_thread_id) {
        (Some(t), Some(off)) => mem.i32(t + off).ok().filter(|n| *n > 0),
        _ => None,
    };
    let id = offsets
        .interp_next_and_id
        .and_then(|(_, id)| mem.i64(interp + id).ok());
    Some(OwnGil {
        interpreter: interp,
        id,
        address,
        holder,
        holder_native_id,
    })
}

/// The thread states `interp` lists (bounded; an unreadable link ends the list).
fn thread_states(mem: &dyn ReadMemory, offsets: &Offsets, interp: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = mem.ptr(interp + offsets.interp_threads_head).unwrap_or(0);
    while at != 0 && out.len() < MAX_THREAD_STATES {
        out.push(at);
        at = mem.ptr(at + offsets.tstate_next).unwrap_or(0);
    }
    out
}
