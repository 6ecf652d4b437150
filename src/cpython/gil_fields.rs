//! Whether a version table's interpreter-list and GIL fields (`interp->next`, `id`,
//! `ceval.gil`, `_gil`: 3.12, where no debug offsets publish them) hold on the live target
//! before they are trusted. It may only keep, set aside or turn off those fields; it reads
//! nothing else.

use super::layout::common::GIL_LOCKED;
use super::layout::{InterpreterFields, Layout, Offsets};
use super::threads::interpreters;
use crate::memory::ReadMemory;

/// Interpreters a walk may list before the links are taken as wrong.
const MAX_CHECKED: usize = 1024;

/// Why the fields were not kept.
enum Doubt {
    /// The runtime is too early in its start to tell.
    NotYet,
    /// The runtime disagrees, for the reason given.
    Contradicted(String),
}

/// Keep the table's interpreter-list and GIL fields only when the runtime at `runtime`
/// (`_PyRuntime`) bears them out (`fields_hold`). A runtime that disagrees turns them off for
/// good, with a note. One too early in its start to tell (no interpreter, no thread state, no
/// GIL made yet: `run` attaches right after exec) turns them off for now and sets them aside
/// in `interpreter_fields_pending`; calling this again checks them again. Layouts without these
/// table fields (3.8-3.11) or from debug offsets are left alone.
pub fn check_table_fields(mem: &dyn ReadMemory, layout: &mut Layout, runtime: Option<usize>) {
    if let Some(pending) = layout.interpreter_fields_pending.take() {
        layout.offsets.interp_ceval_gil = Some(pending.ceval_gil);
        layout.offsets.interp_own_gil = Some(pending.own_gil);
        layout.offsets.interp_next_and_id = Some(pending.next_and_id);
    }
    let o = &layout.offsets;
    let verdict = match (o.interp_ceval_gil, o.interp_own_gil, o.interp_next_and_id) {
        (None, None, None) => return,
        (Some(ceval_gil), Some(own_gil), Some(next_and_id)) => {
            let fields = InterpreterFields {
                ceval_gil,
                own_gil,
                next_and_id,
            };
            let head = runtime.and_then(|r| mem.ptr(r + o.runtime_interpreters_head).ok());
            match head {
                Some(head) if head != 0 => fields_hold(mem, o, &fields, head),
                _ => Err(Doubt::NotYet),
            }
            .map_err(|doubt| (doubt, Some(fields)))
        }
        _ => Err((Doubt::Contradicted("a field is missing".into()), None)),
    };
    let Err((doubt, fields)) = verdict else {
        return;
    };
    layout.offsets.interp_ceval_gil = None;
    layout.offsets.interp_own_gil = None;
    layout.offsets.interp_next_and_id = None;
    match doubt {
        Doubt::NotYet => layout.interpreter_fields_pending = fields,
        Doubt::Contradicted(why) => layout.notes.push(format!(
            "subinterpreters and their own GILs not read: the {} interpreter layout did not \
             check out ({why})",
            layout.version
        )),
    }
}

/// The fields hold when the walk along `next` from `head` ends, reaches exactly one
/// interpreter with id 0 (the main one) whose first thread state points back at it and whose
/// `ceval.gil` is its own `_gil` with `locked` 0 or 1, and every other interpreter's
/// `ceval.gil` is the main one's (shared) or its own. A main interpreter without a thread
/// state, or whose GIL is not made yet (`ceval.gil` NULL, `locked` -1), cannot tell.
fn fields_hold(
    mem: &dyn ReadMemory,
    o: &Offsets,
    fields: &InterpreterFields,
    head: usize,
) -> Result<(), Doubt> {
    let contradicted = |why: String| Err(Doubt::Contradicted(why));
    let InterpreterFields {
        ceval_gil,
        own_gil: own,
        next_and_id: (_, id),
    } = *fields;
    let list = interpreters(mem, o, head);
    if list.len() >= MAX_CHECKED {
        return contradicted("the interpreter list does not end".into());
    }
    let mains: Vec<usize> = list
        .iter()
        .copied()
        .filter(|&i| mem.i64(i + id).ok() == Some(0))
        .collect();
    let [main] = mains[..] else {
        return contradicted(format!("{} interpreters with id 0", mains.len()));
    };
    let tstate = mem.ptr(main + o.interp_threads_head).unwrap_or(0);
    if tstate == 0 || mem.ptr(tstate + o.tstate_interp).ok() != Some(main) {
        return Err(Doubt::NotYet);
    }
    let main_gil = main.wrapping_add(own);
    match mem.ptr(main + ceval_gil) {
        Ok(0) => return Err(Doubt::NotYet),
        Ok(gil) if gil == main_gil => {}
        _ => return contradicted("the main interpreter's GIL is not its own record".into()),
    }
    match mem.i32(main_gil + GIL_LOCKED) {
        Ok(0 | 1) => {}
        Ok(-1) => return Err(Doubt::NotYet),
        _ => return contradicted("the main GIL's `locked` is neither 0 nor 1".into()),
    }
    for &interp in list.iter().filter(|&&i| i != main) {
        let gil = mem.ptr(interp + ceval_gil).ok();
        if gil != Some(main_gil) && gil != Some(interp.wrapping_add(own)) {
            return contradicted(format!(
                "interpreter {interp:#x}'s GIL is neither shared nor its own"
            ));
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
        // A runtime without interpreters yet: off for now, without a note.
        let mut l = layout();
        check_table_fields(&FakeMemory::new(), &mut l, Some(RUNTIME));
        assert!(l.offsets.interp_own_gil.is_none() && l.notes.is_empty());
        assert!(l.interpreter_fields_pending.is_some());
        // Tables without the fields are left alone.
        let mut old = for_version(3, 11, 7).unwrap();
        check_table_fields(&FakeMemory::new(), &mut old, Some(RUNTIME));
        assert!(old.notes.is_empty());
    }

    #[test]
    fn a_runtime_that_has_not_made_its_gil_yet_is_checked_again_later() {
        // `run` attached after the main thread state was made, before `_PyEval_InitGIL`:
        // `ceval.gil` NULL, then set with the GIL not created (`locked` -1), then created.
        let o = layout().offsets;
        let (ceval_gil, own) = (o.interp_ceval_gil.unwrap(), o.interp_own_gil.unwrap());
        let mut m = memory(1, SUB + own);
        m.put_u64s(MAIN + ceval_gil, &[0]);
        let mut l = checked(&m);
        assert_eq!(l.offsets.interp_ceval_gil, None, "not trusted yet");
        assert!(
            l.notes.is_empty(),
            "no note for a runtime still starting: {:?}",
            l.notes
        );
        m.put_u64s(MAIN + ceval_gil, &[(MAIN + own) as u64]);
        m.write(MAIN + own + GIL_LOCKED, &(-1i32).to_ne_bytes());
        check_table_fields(&m, &mut l, Some(RUNTIME));
        assert!(l.offsets.interp_ceval_gil.is_none() && l.notes.is_empty());
        m.write(MAIN + own + GIL_LOCKED, &1i32.to_ne_bytes());
        check_table_fields(&m, &mut l, Some(RUNTIME));
        assert_eq!(l.offsets.interp_ceval_gil, Some(ceval_gil));
        assert_eq!(l.offsets.interp_own_gil, Some(own));
        assert!(l.interpreter_fields_pending.is_none() && l.notes.is_empty());
    }
}
