//! Attributes of trio's objects, wherever their class keeps them: attrs classes with
//! `slots=True` (`Runner`, `Task`, `Event`) in `__slots__` members, the others in their
//! `__dict__`. Slot offsets are looked up once per (type, name) per snapshot; several slots
//! of one object (a task's coroutine, name and nursery) come in one read.

use rustc_hash::FxHashMap;

use crate::cpython::objects::Objects;

#[derive(Default)]
pub(crate) struct Fields {
    /// By (type object, name); Fx: looked up several times per task of ten thousand.
    offsets: FxHashMap<(usize, &'static str), Option<usize>>,
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

    /// Several non-NULL attributes of one object, its slots in one read (no `None` check:
    /// for fields that are never `None`, or whose `None` the caller handles).
    pub(crate) fn slots<const N: usize>(
        &mut self,
        objs: &Objects,
        obj: usize,
        names: [&'static str; N],
    ) -> [Option<usize>; N] {
        let mut out = [None; N];
        let Ok(ty) = objs.type_of(obj) else {
            return out;
        };
        let offs = names.map(|name| {
            *self
                .offsets
                .entry((ty, name))
                .or_insert_with(|| objs.slot_offset(ty, name))
        });
        let end = offs.iter().flatten().max().map_or(0, |o| o + 8);
        let mut raw = [0u8; SLOTS_READ];
        let whole = end <= SLOTS_READ && objs.mem.read_into(obj, &mut raw[..end]).is_ok();
        for (i, off) in offs.iter().enumerate() {
            out[i] = match off {
                Some(off) if whole => {
                    let v = u64::from_le_bytes(raw[*off..off + 8].try_into().unwrap()) as usize;
                    (v != 0).then_some(v)
                }
                Some(off) => objs.mem.ptr(obj + off).ok().filter(|v| *v != 0),
                None => objs.attr(obj, names[i]).ok().flatten(),
            };
        }
        out
    }
}

/// Bytes of an object read at once for its slots (a trio `Task`'s are within 200).
const SLOTS_READ: usize = 512;
