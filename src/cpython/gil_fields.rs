//! Whether a version table's interpreter-list and GIL fields (`interp->next`, `id`,
//! `ceval.gil`, `_gil`: 3.12, where no debug offsets publish them) hold on the live target
//! before they are trusted. It may only keep or turn off those fields; it reads nothing else.

use super::layout::common::GIL_LOCKED;
use super::layout::{Layout, Offsets};
use super::threads::interpreters;
use crate::memory::ReadMemory;

/// Interpreters a walk may list before the links are taken as wrong.
const MAX_CHECKED: usize = 1024;

/// Keep the table's interpreter-list and GIL fields only when the runtime at `runtime`
/// (`_PyRuntime`) bears them out (`fields_hold`); otherwise turn them off, with a note when
/// the runtime was readable but disagreed (an interpreter not started yet says nothing).
/// Layouts without these table fields (3.8-3.11) or from debug offsets are left alone.
pub fn check_table_fields(mem: &dyn ReadMemory, layout: &mut Layout, runtime: Option<usize>) {
    let offsets = &layout.offsets;
    if offsets.interp_own_gil.is_none() && offsets.interp_next_and_id.is_none() {
        return;
    }
    let head = runtime.and_then(|r| mem.ptr(r + offsets.runtime_interpreters_head).ok());
    let verdict = match head {
        Some(head) if head != 0 => fields_hold(mem, offsets, head),
        _ => Err(None),
    };
    if let Err(why) = verdict {
        layout.offsets.interp_ceval_gil = None;
        layout.offsets.interp_own_gil = None;
        layout.offsets.interp_next_and_id = None;
        if let Some(why) = why {
            layout.notes.push(format!(
                "subinterpreters and their own GILs not read: the {} interpreter layout did \
                 not check out ({why})",
                layout.version
            ));
        }
    }
}

/// The fields hold when the walk along `next` from `head` ends, reaches exactly one
/// interpreter with id 0 (the main one) whose first thread state points back at it and whose
/// `ceval.gil` is its own `_gil` with `locked` 0 or 1, and every other interpreter's
/// `ceval.gil` is the main one's (shared) or its own.
fn fields_hold(mem: &dyn ReadMemory, o: &Offsets, head: usize) -> Result<(), Option<String>> {
    let (Some(ceval_gil), Some(own), Some((_, id))) =
        (o.interp_ceval_gil, o.interp_own_gil, o.interp_next_and_id)
    else {
        return Err(Some("a field is missing".into()));
    };
    let list = interpreters(mem, o, head);
    if list.len() >= MAX_CHECKED {
        return Err(Some("the interpreter list does not end".into()));
    }
    let mains: Vec<usize> = list
        .iter()
        .copied()
        .filter(|&i| mem.i64(i + id).ok() == Some(0))
        .collect();
    let [main] = mains[..] else {
        return Err(Some(format!("{} interpreters with id 0", mains.len())));
    };
    let tstate = mem.ptr(main + o.interp_threads_head).unwrap_or(0);
    if tstate == 0 || mem.ptr(tstate + o.tstate_interp).ok() != Some(main) {
        // Not started far enough to tell: no note.
        return Err(None);
    }
    let main_gil = main.wrapping_add(own);
    if mem.ptr(main + ceval_gil).ok() != Some(main_gil) {
        return Err(Some(
            "the main interpreter's GIL is not its own record".into(),
        ));
    }
    if !matches!(mem.i32(main_gil + GIL_LOCKED), Ok(0 | 1)) {
        return Err(Some("the main GIL's `locked` is neither 0 nor 1".into()));
    }
    for &interp in list.iter().filter(|&&i| i != main) {
        let gil = mem.ptr(interp + ceval_gil).ok();
        if gil != Some(main_gil) && gil != Some(interp.wrapping_add(own)) {
            return Err(Some(format!(
                "interpreter {interp:#x}'s GIL is neither shared nor its own"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpython::layout::for_version;
    use crate::memory::FakeMemory;

    const RUNTIME: usize = 0x1000;
    const MAIN: usize = 0x10_000;
    const SUB: usize = 0x20_000;
    const TSTATE: usize = 0x30_000;

    /// 3.12's table layout (its fields as the table gives them).
    fn layout() -> Layout {
        for_version(3, 12, 1).unwrap()
    }

    /// `_PyRuntime` listing SUB (id `sub_id`, `ceval.gil` = `sub_gil`) then MAIN (id 0, its
    /// `ceval.gil` at its own `_gil`, one thread state pointing back at it).
    fn memory(sub_id: i64, sub_gil: usize) -> FakeMemory {
        let o = layout().offsets;
        let (ceval_gil, own) = (o.interp_ceval_gil.unwrap(), o.interp_own_gil.unwrap());
        let mut m = FakeMemory::new();
        m.put(RUNTIME, &[0; 0x100]);
        m.put(MAIN, &[0; 0x800]).put(SUB, &[0; 0x800]);
        m.put(TSTATE, &[0; 0x100]);
        m.put_u64s(RUNTIME + o.runtime_interpreters_head, &[SUB as u64]);
        m.put_u64s(SUB, &[MAIN as u64, sub_id as u64]);
        m.put_u64s(SUB + ceval_gil, &[sub_gil as u64]);
        m.put_u64s(MAIN + o.interp_threads_head, &[TSTATE as u64]);
        m.put_u64s(MAIN + ceval_gil, &[(MAIN + own) as u64]);
        m.put_u64s(TSTATE + o.tstate_interp, &[MAIN as u64]);
        m
    }

    fn checked(m: &FakeMemory) -> Layout {
        let mut l = layout();
        check_table_fields(m, &mut l, Some(RUNTIME));
        l
    }

    #[test]
    fn the_3_12_fields_are_kept_when_the_live_runtime_bears_them_out() {
        let own = layout().offsets.interp_own_gil.unwrap();
        for sub_gil in [SUB + own, MAIN + own] {
            let l = checked(&memory(1, sub_gil));
            assert!(l.offsets.interp_own_gil.is_some() && l.notes.is_empty());
            assert_eq!(l.offsets.interp_next_and_id, Some((0, 8)));
        }
    }

    #[test]
    fn fields_the_runtime_contradicts_are_turned_off_with_a_note() {
        // No interpreter with id 0 along the list; a GIL pointing elsewhere.
        for m in [memory(0, SUB), memory(1, 0x50_000)] {
            let l = checked(&m);
            assert_eq!(l.offsets.interp_ceval_gil, None);
            assert_eq!(l.offsets.interp_own_gil, None);
            assert_eq!(l.offsets.interp_next_and_id, None);
            assert_eq!(l.notes.len(), 1, "{:?}", l.notes);
        }
        // A runtime without interpreters yet: off, without a note.
        let mut l = layout();
        check_table_fields(&FakeMemory::new(), &mut l, Some(RUNTIME));
        assert!(l.offsets.interp_own_gil.is_none() && l.notes.is_empty());
        // Tables without the fields are left alone.
        let mut old = for_version(3, 11, 7).unwrap();
        check_table_fields(&FakeMemory::new(), &mut old, Some(RUNTIME));
        assert!(old.notes.is_empty());
    }
}
