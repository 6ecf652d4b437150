//! Attributes of trio's objects, wherever their class keeps them: attrs classes with
//! `slots=True` (`Runner`, `Task`, `Event`) in `__slots__` members, the others in their
//! `__dict__`. Slot offsets are looked up once per (type, name) per snapshot; several slots
//! of one object (a task's coroutine, name and nursery) come in one read with its type.

use rustc_hash::FxHashMap;

use crate::cpython::layout::common::OB_TYPE;
use crate::cpython::objects::Objects;

#[derive(Default)]
pub(crate) struct Fields {
    /// By (type object, name's address and length): the names are literals, so these tell
    /// them apart without hashing their bytes (looked up several times per task); the length
    /// too, as the compiler may store a literal inside a longer one (`coro`, `coroutine`).
    offsets: FxHashMap<(usize, usize, usize), Option<usize>>,
    /// By the first name of a `slots` call: the type its last object had and how many of
    /// its bytes that call read, so an object of the same type comes in one read.
    heads: FxHashMap<usize, (usize, usize)>,
}

impl Fields {
    fn offset(&mut self, objs: &Objects, ty: usize, name: &'static str) -> Option<usize> {
        *self
            .offsets
            .entry((ty, name.as_ptr() as usize, name.len()))
            .or_insert_with(|| objs.slot_offset(ty, name))
    }

    /// `obj.<name>`, non-NULL and not `None`.
    pub(crate) fn get(&mut self, objs: &Objects, obj: usize, name: &'static str) -> Option<usize> {
        let ty = objs.type_of(obj).ok()?;
        let v = match self.offset(objs, ty, name) {
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
        let key = names.first().map_or(0, |n| n.as_ptr() as usize);
        let mut raw = [0u8; SLOTS_READ];
        // The object's type and slots in one read, when it has the type the last one had.
        let guess = self.heads.get(&key).copied();
        let head = guess.and_then(|(ty, end)| {
            objs.mem.read_into(obj, &mut raw[..end]).ok()?;
            (word(&raw, OB_TYPE) == ty).then_some((ty, end))
        });
        let ty = match head {
            Some((ty, _)) => ty,
            None => match objs.type_of(obj) {
                Ok(ty) => ty,
                Err(_) => return out,
            },
        };
        let offs = names.map(|name| self.offset(objs, ty, name));
        let end = offs
            .iter()
            .flatten()
            .max()
            .map_or(OB_TYPE + 8, |o| o + 8)
            .max(OB_TYPE + 8);
        let whole = end <= SLOTS_READ
            && (head.is_some_and(|(_, e)| e >= end)
                || objs.mem.read_into(obj, &mut raw[..end]).is_ok());
        if end <= SLOTS_READ && guess != Some((ty, end)) {
            self.heads.insert(key, (ty, end));
        }
        for (i, off) in offs.iter().enumerate() {
            out[i] = match off {
                Some(off) if whole => Some(word(&raw, *off)).filter(|v| *v != 0),
                Some(off) => objs.mem.ptr(obj + off).ok().filter(|v| *v != 0),
                None => objs.attr(obj, names[i]).ok().flatten(),
            };
        }
        out
    }
}

/// The pointer-sized word at `off` of bytes read from the target.
pub(super) fn word(raw: &[u8], off: usize) -> usize {
    u64::from_le_bytes(raw[off..off + 8].try_into().unwrap()) as usize
}

/// Bytes of an object read at once for its slots (a trio `Task`'s are within 200).
const SLOTS_READ: usize = 512;
