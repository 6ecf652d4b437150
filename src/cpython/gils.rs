//! Which subinterpreters have a GIL of their own (3.12+ `Py_NewInterpreterFromConfig` with
//! `gil=OWN_GIL`), where its record is and which thread state holds it. Read only where the
//! layout names `interp->ceval.gil` and `interp->_gil` (3.13+ debug offsets, 3.12's table
//! once checked live: `gil_fields`); a GIL record is trusted
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
    let holder_native_id = holder.and_then(|t| tstate_native_id(mem, offsets, t));
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

/// A thread state's `native_thread_id`, when known and positive: a thread running a
/// subinterpreter's code has a thread state in each interpreter, and the main list keeps only
/// one of them, so a GIL's holder is matched to its thread by this id too. None where the
/// version's subinterpreter thread states may name another thread (`sub_thread_ids_trusted`).
pub fn tstate_native_id(mem: &dyn ReadMemory, offsets: &Offsets, tstate: usize) -> Option<i32> {
    if !offsets.sub_thread_ids_trusted {
        return None;
    }
    let off = offsets.tstate_native_thread_id?;
    mem.i32(tstate + off).ok().filter(|n| *n > 0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpython::layout::for_version;
    use crate::memory::FakeMemory;

    const MAIN: usize = 0x10_000;
    const MAIN_GIL: usize = 0x10_800;
    const SUB: usize = 0x20_000;
    const TSTATE: usize = 0x30_000;
    const OTHER_TSTATE: usize = 0x31_000;

    /// 3.13's table with the debug offsets' GIL fields (chosen here, as the debug offsets
    /// would give them) and an interpreter list SUB -> MAIN.
    fn offsets() -> Offsets {
        let mut o = for_version(3, 13, 0).unwrap().offsets;
        o.interp_ceval_gil = Some(0x100);
        o.interp_own_gil = Some(0x200);
        o.interp_next_and_id = Some((0x8, 0x10));
        o.interp_threads_head = 0x40;
        o.tstate_next = 0x8;
        o.tstate_native_thread_id = Some(0x20);
        o
    }

    /// A subinterpreter whose `ceval.gil` is `gil`, `locked` and `last_holder` as given, one
    /// thread state TSTATE (native id 4242); and a main interpreter on MAIN_GIL.
    fn memory(gil: usize, locked: i32, last_holder: usize) -> FakeMemory {
        let mut m = FakeMemory::new();
        m.put(SUB, &[0; 0x300]).put(MAIN, &[0; 0x300]);
        m.put(TSTATE, &[0; 0x40]).put(OTHER_TSTATE, &[0; 0x40]);
        m.put_u64s(SUB + 0x8, &[MAIN as u64, 7]);
        m.put_u64s(SUB + 0x40, &[TSTATE as u64]);
        m.put_u64s(SUB + 0x100, &[gil as u64]);
        m.put_u64s(MAIN + 0x100, &[MAIN_GIL as u64]);
        m.write(TSTATE + 0x20, &4242i32.to_le_bytes());
        m.put_u64s(SUB + 0x200 + GIL_LAST_HOLDER, &[last_holder as u64]);
        m.write(SUB + 0x200 + GIL_LOCKED, &locked.to_le_bytes());
        m
    }

    fn read(m: &FakeMemory) -> Vec<OwnGil> {
        own_gils(m, &offsets(), SUB, MAIN, MAIN_GIL)
    }

    #[test]
    fn an_own_gil_held_by_a_thread_state_of_its_interpreter_is_read() {
        let got = read(&memory(SUB + 0x200, 1, TSTATE));
        assert_eq!(
            got,
            [OwnGil {
                interpreter: SUB,
                id: Some(7),
                address: SUB + 0x200,
                holder: Some(TSTATE),
                holder_native_id: Some(4242),
            }]
        );
        assert!(got[0].contains(SUB + 0x200 + 0x40) && !got[0].contains(SUB + 0x200 + 208));
        let free = read(&memory(SUB + 0x200, 0, OTHER_TSTATE));
        assert_eq!(free.len(), 1);
        assert_eq!(free[0].holder, None, "last_holder counts only while locked");
    }

    #[test]
    fn a_shared_or_implausible_gil_is_not_an_own_gil() {
        // Legacy: `ceval.gil` is the main interpreter's record.
        assert!(read(&memory(MAIN_GIL, 1, TSTATE)).is_empty());
        // Pointing anywhere but the interpreter's own `_gil`.
        assert!(read(&memory(0x50_000, 1, TSTATE)).is_empty());
        // `locked` neither 0 nor 1, or a holder that is not this interpreter's thread state.
        assert!(read(&memory(SUB + 0x200, 5, TSTATE)).is_empty());
        assert!(read(&memory(SUB + 0x200, 1, OTHER_TSTATE)).is_empty());
        // Before the debug offsets name the fields, nothing is read.
        let mut old = offsets();
        old.interp_own_gil = None;
        assert!(own_gils(&memory(SUB + 0x200, 1, TSTATE), &old, SUB, MAIN, MAIN_GIL).is_empty());
    }
}
