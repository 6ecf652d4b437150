//! What one snapshot's reading of asyncio shares: the walker, the cache, the offsets, and
//! what is decoded once per snapshot (types, frame facts, code objects, loop ids). The
//! `Reader`'s other methods live in the file of the question they answer; this one only
//! holds the state and the small reads every question needs.

use std::rc::Rc;
use std::sync::Arc;

use crate::cpython::layout::{AsyncioOffsets, Offsets};
use crate::cpython::threads::{CodeInfo, RawFrame, Walker};
use crate::model::short_file;

use super::cache::AsyncioCache;
use super::facts::Facts;
use super::ids::{loop_id, with_hex};
use super::types::{AddrMap, Kind, TypeInfo, Types};

/// Everything read or decoded once per snapshot and shared by all tasks: types by type
/// object, frame facts by (code, instruction), loop ids by loop.
pub(super) struct Reader<'w, 'a, 'c> {
    pub(super) walker: &'w mut Walker<'a>,
    pub(super) cache: &'c mut AsyncioCache,
    pub(super) offs: AsyncioOffsets,
    pub(super) pid: i32,
    /// The version's frame and code offsets.
    pub(super) layout: Offsets,
    pub(super) types: Types,
    pub(super) facts: Facts,
    /// Code objects by address, looked up in the walker's cache once per snapshot.
    pub(super) codes: AddrMap<usize, Arc<CodeInfo>>,
    pub(super) loop_ids: AddrMap<usize, String>,
    /// The object that ended the last await chain read (not a coroutine) and its type: the
    /// future the task waits on, whose type is then known without another read.
    pub(super) chain_end: Option<(usize, usize)>,
    /// Whether the last await chain read starts with a coroutine that is executing (3.11+,
    /// where the frame state tells executing from not yet started).
    pub(super) chain_executing: bool,
    /// `PID:task:` and `PID:`.
    pub(super) task_prefix: String,
    pub(super) pid_prefix: String,
}

impl<'w, 'a, 'c> Reader<'w, 'a, 'c> {
    pub(super) fn new(
        walker: &'w mut Walker<'a>,
        cache: &'c mut AsyncioCache,
        offs: AsyncioOffsets,
        pid: i32,
    ) -> Self {
        let layout = walker.objs.layout.offsets;
        Reader {
            walker,
            cache,
            offs,
            pid,
            layout,
            types: Types::default(),
            facts: Facts::default(),
            codes: AddrMap::default(),
            loop_ids: AddrMap::default(),
            chain_end: None,
            chain_executing: false,
            task_prefix: format!("{pid}:task:"),
            pid_prefix: format!("{pid}:"),
        }
    }

    pub(super) fn mem(&self) -> &dyn crate::memory::ReadMemory {
        self.walker.objs.mem
    }

    pub(super) fn ty(&mut self, obj: usize) -> Option<Rc<TypeInfo>> {
        let t = self.walker.objs.type_of(obj).ok()?;
        self.types.info(&self.walker.objs, t)
    }

    pub(super) fn kind(&mut self, obj: usize) -> Option<Kind> {
        let t = self.walker.objs.type_of(obj).ok()?;
        self.types.kind(&self.walker.objs, t)
    }

    pub(super) fn task_id(&self, addr: usize) -> String {
        with_hex(&self.task_prefix, addr)
    }

    pub(super) fn loop_id(&mut self, lp: usize) -> String {
        let pid = self.pid;
        self.loop_ids
            .entry(lp)
            .or_insert_with(|| loop_id(pid, lp))
            .clone()
    }

    /// The code object at `addr`, through the walker's cache once per snapshot.
    pub(super) fn code(&mut self, addr: usize) -> Option<Arc<CodeInfo>> {
        if let Some(c) = self.codes.get(&addr) {
            return Some(c.clone());
        }
        let c = self.walker.code(addr).ok()?;
        self.codes.insert(addr, c.clone());
        Some(c)
    }

    /// A frame's local at slot `i` (locals, then cells and frees), if set.
    pub(super) fn local_slot(&self, rf: &RawFrame, i: usize) -> Option<usize> {
        let base = rf.addr + self.walker.objs.layout.offsets.frame_localsplus;
        self.mem().ptr(base + 8 * i).ok().filter(|v| *v != 0)
    }
}

pub(super) fn short(path: &str) -> &str {
    short_file(path)
}

pub(super) fn word(raw: &[u8], off: usize) -> usize {
    u64::from_le_bytes(raw[off..off + 8].try_into().unwrap()) as usize
}

pub(super) fn int32(raw: &[u8], off: usize) -> i32 {
    i32::from_le_bytes(raw[off..off + 4].try_into().unwrap())
}
