//! `__slots__` attributes: values stored at fixed offsets in an object, found through the
//! `member_descriptor`s of its type's MRO (`PyMemberDescrObject.d_member->offset`). Objects
//! that keep their references there (SQLAlchemy's pooled connections) are otherwise opaque
//! to `instance_attrs`. Only reads; every offset is bounded by the type's basic size.

use super::layout::common::*;
use super::objects::Objects;

/// `PyDescrObject`: head (16), `d_type`, `d_name`, `d_qualname`, then the member's def.
const MEMBER_DESCR_DEF: usize = 40;
/// `PyMemberDef.offset`, after `name` and `type` (padded).
const MEMBER_DEF_OFFSET: usize = 16;
/// `PyMemberDef.type`: only object members (`T_OBJECT`, `T_OBJECT_EX`) hold references.
const MEMBER_DEF_TYPE: usize = 8;
const T_OBJECT: i32 = 6;
const T_OBJECT_EX: i32 = 16;
/// Bounds against hostile or torn types.
const MAX_MRO: usize = 16;
const MAX_SLOTS: usize = 64;

impl Objects<'_> {
    /// The object-valued `__slots__` attributes of `obj` that are set, by name.
    pub fn slot_attrs(&self, obj: usize) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let Ok(ty) = self.type_of(obj) else {
            return out;
        };
        let Ok(size) = self.mem.u64(ty + TP_BASICSIZE) else {
            return out;
        };
        let Ok(mro) = self.mem.ptr(ty + TP_MRO) else {
            return out;
        };
        let Ok(types) = self.tuple_items(mro) else {
            return out;
        };
        for t in types.into_iter().take(MAX_MRO) {
            let Ok(dict) = self.mem.ptr(t + TP_DICT) else {
                continue;
            };
            if dict == 0 {
                continue;
            }
            for (name, descr) in self.dict_entries(dict).unwrap_or_default() {
                if out.len() >= MAX_SLOTS {
                    return out;
                }
                if !self.type_is(descr, "member_descriptor") {
                    continue;
                }
                let Some(offset) = self
                    .mem
                    .ptr(descr + MEMBER_DESCR_DEF)
                    .and_then(|def| self.mem.i64(def + MEMBER_DEF_OFFSET))
                    .ok()
                    .filter(|o| *o >= 16 && (*o as u64) + 8 <= size)
                else {
                    continue;
                };
                let (Ok(name), Ok(value)) = (self.str(name), self.mem.ptr(obj + offset as usize))
                else {
                    continue;
                };
                if value != 0 {
                    out.push((name, value));
                }
            }
        }
        out
    }

    /// The object members the `__slots__` of type `ty`'s MRO declare: each member's name
    /// (a str object) and its offset, bounded by the type's basic size. Read once per type
    /// by a caller that walks many instances.
    pub fn slot_members(&self, ty: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let (Ok(size), Ok(mro)) = (self.mem.u64(ty + TP_BASICSIZE), self.mem.ptr(ty + TP_MRO))
        else {
            return out;
        };
        if !self.type_is(mro, "tuple") {
            return out;
        }
        for t in self
            .tuple_items(mro)
            .unwrap_or_default()
            .into_iter()
            .take(MAX_MRO)
        {
            let Some(dict) = self.mem.ptr(t + TP_DICT).ok().filter(|d| *d != 0) else {
                continue;
            };
            for (name, descr) in self.dict_entries(dict).unwrap_or_default() {
                if out.len() >= MAX_SLOTS {
                    return out;
                }
                if !self.type_is(descr, "member_descriptor") {
                    continue;
                }
                let Ok(def) = self.mem.ptr(descr + MEMBER_DESCR_DEF) else {
                    continue;
                };
                let object = self
                    .mem
                    .i32(def + MEMBER_DEF_TYPE)
                    .is_ok_and(|k| k == T_OBJECT || k == T_OBJECT_EX);
                let offset = self
                    .mem
                    .i64(def + MEMBER_DEF_OFFSET)
                    .ok()
                    .filter(|o| *o >= 16 && (*o as u64) + 8 <= size);
                if let (true, Some(offset), true) = (object, offset, self.type_is(name, "str")) {
                    out.push((name, offset as usize));
                }
            }
        }
        out
    }

    /// The value of the slot at `offset` of `obj` (from `slot_members` of its type); `None`
    /// when unset.
    pub fn slot_value(&self, obj: usize, offset: usize) -> Option<usize> {
        self.mem.ptr(obj + offset).ok().filter(|v| *v != 0)
    }
}
