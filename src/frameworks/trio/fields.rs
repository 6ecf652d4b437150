//! Attributes of trio's objects, wherever their class keeps them: attrs classes with
//! `slots=True` (`Runner`, `Task`, `Event`) in `__slots__` members, the others in their
//! `__dict__`. Slot offsets are looked up once per (type, name) per snapshot.

use std::collections::HashMap;

use crate::cpython::objects::Objects;

#[derive(Default)]
pub(crate) struct Fields {
    offsets: HashMap<(usize, &'static str), Option<usize>>,
}

impl Fields {
    /// `obj.<name>`, non-NULL and not `None`.
    pub(crate) fn get(&mut self, objs: &Objects, obj: usize, name: &'static str) -> Option<usize> {
        let ty = objs.type_of(obj).ok()?;
        let off = *self
            .offsets
            .entry((ty, name))
            .or_insert_with(|| objs.slot_offset(ty, name));
        let v = match off {
            Some(off) => objs.mem.ptr(obj + off).ok().filter(|v| *v != 0),
            None => objs.attr(obj, name).ok().flatten(),
        }?;
        (!objs.is_none(v)).then_some(v)
    }
}
