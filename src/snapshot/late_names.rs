//! What does the program call the objects a recording's findings name (the locks of a race's
//! lock sets and of a lock-order inversion, the object a raced attribute belongs to)? Read
//! once, when the recording ends, from the live target: `record` samples many times a second
//! and pays for no name walk per sample for objects only its window-wide findings name. A
//! name is given only when its whole path was read now and leads to that object (with the
//! type it had when it was recorded, where that is known). This file decides nothing about
//! races or lock order.

use std::collections::HashMap;

use super::names::name_objects;
use super::Session;
use crate::cpython::objects::Objects;
use crate::cpython::threads::Walker;

/// What the end-of-recording search read: names by address, and the note to give the
/// process when the search stopped at its bounds (as a snapshot's search says).
#[derive(Debug, Default)]
pub struct LateNames {
    pub names: HashMap<usize, String>,
    pub note: Option<String>,
}

/// The program-wide names of `wanted` objects (address, and its type's address where it
/// must still be that), read now; empty for a core or a target that is gone.
pub fn names_now(session: &Session, wanted: &[(usize, Option<usize>)]) -> LateNames {
    if wanted.is_empty() || session.target.frozen.is_some() || !session.alive() {
        return LateNames::default();
    }
    let target = &session.target;
    target.mem.begin_snapshot();
    let walker = Walker::new(Objects::new(&target.mem, &target.layout));
    let (names, note) = name_objects(&walker, target.interpreter, wanted);
    target.mem.end_snapshot();
    LateNames { names, note }
}
