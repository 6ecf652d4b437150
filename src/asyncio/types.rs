//! What asyncio needs to know about an object's type, worked out once per type object per
//! snapshot: whether it is a Task (the C `_asyncio.Task`, the pure-Python `_PyTask`, or a
//! subclass of either, found through the `tp_base` chain), a future, a coroutine, and which
//! asyncio primitive (`Lock`, `Queue`...) it is or derives from.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use crate::cpython::layout::common::TP_NAME;
use crate::cpython::objects::Objects;
use crate::model::TaskWaitKind;

/// `PyTypeObject.tp_base`, the same offset on 3.8-3.13 (checked against `T.__base__`).
pub const TP_BASE: usize = 256;
/// Deepest `tp_base` chain followed.
const MAX_BASES: usize = 64;

/// A hasher for object addresses (and pairs of them): a multiply and a fold, far cheaper than
/// SipHash for the tens of thousands of lookups a snapshot of a large loop makes.
#[derive(Default, Clone, Copy)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(*b as u64);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(23) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        // Addresses are aligned: fold the high bits, which the multiply filled, down to the
        // low bits the table indexes with.
        self.0 ^ (self.0 >> 29)
    }
}

pub type AddrMap<K, V> = HashMap<K, V, BuildHasherDefault<AddrHasher>>;
pub type AddrSet<K> = HashSet<K, BuildHasherDefault<AddrHasher>>;

/// How a task keeps its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskImpl {
    /// `_asyncio.Task` or a subclass: the C struct's offsets.
    C,
    /// `asyncio.tasks._PyTask` or a subclass: attributes in the instance `__dict__`.
    Py,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Task(TaskImpl),
    Future,
    FutureIter,
    Coroutine,
    Generator,
    Str,
    Int,
    NoneType,
    Method,
    Other,
}

#[derive(Debug)]
pub struct TypeInfo {
    /// The type's own `tp_name`.
    pub name: Rc<str>,
    pub kind: Kind,
    /// `asyncio.tasks._GatheringFuture` (or a subclass).
    pub gathering: bool,
    /// The asyncio primitive the type is or derives from (by class name along `tp_base`):
    /// `Lock`, `Event`, `Condition`, `Semaphore`, `Queue`. Only trusted for objects found as
    /// `self` of a frame in asyncio's own locks.py / queues.py.
    pub primitive: Option<TaskWaitKind>,
    /// An event loop asyncio's `BaseEventLoop` runs (a base class of that name); uvloop's
    /// `Loop` is not one.
    pub base_event_loop: bool,
}

/// Classes found by identity in `asyncio.tasks`' globals.
#[derive(Debug, Clone, Copy, Default)]
pub struct Known {
    pub py_task: usize,
    pub py_future: usize,
    pub gathering: usize,
}

/// Type object -> what it is, for one snapshot.
#[derive(Default)]
pub struct Types {
    known: Known,
    by_type: AddrMap<usize, Rc<TypeInfo>>,
}

fn primitive_of(name: &str) -> Option<TaskWaitKind> {
    Some(match name {
        "Lock" => TaskWaitKind::Lock,
        "Event" => TaskWaitKind::Event,
        "Condition" => TaskWaitKind::Condition,
        "Semaphore" | "BoundedSemaphore" => TaskWaitKind::Semaphore,
        "Queue" | "LifoQueue" | "PriorityQueue" => TaskWaitKind::Queue,
        _ => return None,
    })
}

impl Types {
    pub fn new(known: Known) -> Self {
        Types {
            known,
            by_type: AddrMap::default(),
        }
    }

    /// The kind of the type object at `ty` (without sharing the rest).
    pub fn kind(&mut self, objs: &Objects, ty: usize) -> Option<Kind> {
        match self.by_type.get(&ty) {
            Some(i) => Some(i.kind),
            None => self.info(objs, ty).map(|i| i.kind),
        }
    }

    /// What the type object at `ty` is.
    pub fn info(&mut self, objs: &Objects, ty: usize) -> Option<Rc<TypeInfo>> {
        if let Some(i) = self.by_type.get(&ty) {
            return Some(i.clone());
        }
        let info = Rc::new(self.classify(objs, ty)?);
        self.by_type.insert(ty, info.clone());
        Some(info)
    }

    fn classify(&self, objs: &Objects, ty: usize) -> Option<TypeInfo> {
        let name = tp_name(objs, ty)?;
        let exact = match name.as_str() {
            "coroutine" => Some(Kind::Coroutine),
            "generator" => Some(Kind::Generator),
            "str" => Some(Kind::Str),
            "int" => Some(Kind::Int),
            "NoneType" => Some(Kind::NoneType),
            "method" => Some(Kind::Method),
            "_asyncio.FutureIter" | "FutureIter" => Some(Kind::FutureIter),
            _ => None,
        };
        let mut info = TypeInfo {
            name: Rc::from(name.as_str()),
            kind: exact.unwrap_or(Kind::Other),
            gathering: false,
            primitive: None,
            base_event_loop: false,
        };
        if exact.is_some() {
            return Some(info);
        }
        // Up the `tp_base` chain: a subclass is what its nearest known base is. Task derives
        // from Future, so a task's Task base comes before its Future base.
        let k = self.known;
        let mut t = ty;
        let mut base_name = name;
        for depth in 0..MAX_BASES {
            if depth > 0 {
                match tp_name(objs, t) {
                    Some(n) => base_name = n,
                    None => break,
                }
            }
            if info.primitive.is_none() {
                info.primitive = primitive_of(&base_name);
            }
            if base_name == "BaseEventLoop" {
                info.base_event_loop = true;
            }
            if (t == k.gathering && k.gathering != 0) || base_name == "_GatheringFuture" {
                info.gathering = true;
            }
            if base_name == "_asyncio.Task" {
                info.kind = Kind::Task(TaskImpl::C);
                break;
            }
            if t == k.py_task && k.py_task != 0 {
                info.kind = Kind::Task(TaskImpl::Py);
                break;
            }
            if base_name == "_asyncio.Future" || (t == k.py_future && k.py_future != 0) {
                info.kind = Kind::Future;
                break;
            }
            match objs.mem.ptr(t + TP_BASE) {
                Ok(b) if b != 0 => t = b,
                _ => break,
            }
        }
        Some(info)
    }
}

fn tp_name(objs: &Objects, ty: usize) -> Option<String> {
    let name = objs.mem.ptr(ty + TP_NAME).ok()?;
    let mut raw = [0u8; 96];
    objs.mem.read_into(name, &mut raw).ok()?;
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    Some(String::from_utf8_lossy(&raw[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn aligned_addresses_spread_over_low_bits() {
        let b = BuildHasherDefault::<AddrHasher>::default();
        let low: HashSet<u64> = (0..1024usize)
            .map(|i| b.hash_one(0x7f00_0000_0000usize + 64 * i) & 1023)
            .collect();
        assert!(low.len() > 600, "{} distinct buckets of 1024", low.len());
    }
}
