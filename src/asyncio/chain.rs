//! A task's await chain: coroutine -> awaited coroutine -> ... down to the future that ends
//! it, each suspended frame with its current instruction and the top of its value stack,
//! for every version's frame layout (3.8-3.10 frame objects, 3.11+ embedded frames). It
//! follows pointers; what the frames mean is `facts`'s question.

use std::rc::Rc;

use crate::cpython::layout::common::OB_TYPE;
use crate::cpython::layout::{AwaitTop, Bytecode, CoroFrame, InstructionPointer};
use crate::cpython::threads::RawFrame;

use super::facts::FrameFacts;
use super::reader::{int32, word, Reader};
use super::types::Kind;

/// Deepest await chain followed (coroutine -> coroutine -> ... -> future).
const MAX_CHAIN: usize = 64;
/// A frame's fields read in one go: 3.8-3.10 `PyFrameObject` up to `f_state` (+108), 3.11+
/// `_PyInterpreterFrame` up to `stacktop` (+64), both well inside the frame.
const FRAME_READ: usize = 112;
const FRAME_READ_EMBEDDED: usize = 72;

/// A suspended frame of an await chain with what its code tells.
pub(super) type ChainFrame = (RawFrame, Rc<FrameFacts>);

/// One frame of a coroutine's await chain, for schedulers other than asyncio's (trio's
/// tasks are coroutines too): the raw frame (for its locals) and the document's frame.
#[derive(Debug, Clone)]
pub struct ChainLink {
    pub raw: RawFrame,
    pub frame: crate::model::Frame,
}

/// The await chains of coroutines (outermost frame first), each with whether its outermost
/// coroutine is executing now (3.11+; false where the frame state cannot tell). Empty for a
/// version whose coroutine offsets gridlock has not, or anything that is not a coroutine.
pub fn await_chains(
    walker: &mut crate::cpython::threads::Walker,
    pid: i32,
    coros: &[usize],
) -> Vec<(Vec<ChainLink>, bool)> {
    await_chains_showing(walker, pid, coros, |_| true)
}

/// `await_chains`, where only the frames `shown` picks get their document frame: the others'
/// `frame` is empty (no allocation), for a scheduler's own trap frames that every task of
/// it sits in and no report shows.
pub fn await_chains_showing(
    walker: &mut crate::cpython::threads::Walker,
    pid: i32,
    coros: &[usize],
    shown: impl Fn(&RawFrame) -> bool,
) -> Vec<(Vec<ChainLink>, bool)> {
    await_chains_until(walker, pid, coros, shown, |_| false)
}

/// `await_chains_showing`, each chain ending at the first frame `last` picks: for a
/// scheduler whose trap frames end every parked task's chain the same way, so what they
/// await (trio's `_async_yield` generator and the object it yields) tells nothing and its
/// reads are saved.
pub fn await_chains_until(
    walker: &mut crate::cpython::threads::Walker,
    pid: i32,
    coros: &[usize],
    shown: impl Fn(&RawFrame) -> bool,
    last: impl Fn(&RawFrame) -> bool,
) -> Vec<(Vec<ChainLink>, bool)> {
    with_chains(walker, pid, |chains| {
        coros
            .iter()
            .map(|c| chains.until(*c, &shown, &last))
            .collect()
    })
}

/// A reader of await chains one coroutine at a time, for a scheduler that reads the rest of
/// a task (its wait, its fields) between chains through `walker`, while the task's memory
/// is fresh: what is decoded once per snapshot (types, code objects, frame facts) is kept
/// from one chain to the next.
pub struct Chains<'w, 'a, 'c>(ChainsOf<'w, 'a, 'c>);

enum ChainsOf<'w, 'a, 'c> {
    Read(Reader<'w, 'a, 'c>),
    /// A version whose coroutine offsets gridlock has not: every chain is empty.
    Off(&'w mut crate::cpython::threads::Walker<'a>),
}

/// Call `f` with a chain reader over `walker` (see `Chains`).
pub fn with_chains<'a, R>(
    walker: &mut crate::cpython::threads::Walker<'a>,
    pid: i32,
    f: impl FnOnce(&mut Chains<'_, 'a, '_>) -> R,
) -> R {
    // 3.14+: the table's coroutine offsets hold only on the build they were verified on.
    let layout = walker.objs.layout;
    let verified = layout
        .asyncio_published
        .as_ref()
        .is_none_or(|p| p.table_build);
    match layout.asyncio.filter(|_| verified) {
        Some(offs) => {
            let mut cache = super::cache::AsyncioCache::default();
            f(&mut Chains(ChainsOf::Read(Reader::new(
                walker, &mut cache, offs, pid,
            ))))
        }
        None => f(&mut Chains(ChainsOf::Off(walker))),
    }
}

impl<'a> Chains<'_, 'a, '_> {
    /// The walker, to read what a chain's frames hold.
    pub fn walker(&self) -> &crate::cpython::threads::Walker<'a> {
        match &self.0 {
            ChainsOf::Read(r) => r.walker,
            ChainsOf::Off(w) => w,
        }
    }

    /// One coroutine's chain as `await_chains_until` gives it, with whether its outermost
    /// coroutine is executing now.
    pub fn until(
        &mut self,
        coro: usize,
        shown: &dyn Fn(&RawFrame) -> bool,
        last: &dyn Fn(&RawFrame) -> bool,
    ) -> (Vec<ChainLink>, bool) {
        let mut links = Vec::new();
        let executing = self.until_into(coro, shown, last, &mut links);
        (links, executing)
    }

    /// `until` into `links` (emptied first): for a reader that keeps one buffer for the
    /// chains of all its tasks instead of one allocation per task.
    pub fn until_into(
        &mut self,
        coro: usize,
        shown: &dyn Fn(&RawFrame) -> bool,
        last: &dyn Fn(&RawFrame) -> bool,
        links: &mut Vec<ChainLink>,
    ) -> bool {
        links.clear();
        let ChainsOf::Read(r) = &mut self.0 else {
            return false;
        };
        r.await_chain_each(coro, last, |raw, facts| {
            links.push(ChainLink {
                frame: if shown(&raw) {
                    facts.frame.clone()
                } else {
                    crate::model::Frame {
                        function: String::new(),
                        file: String::new(),
                        line: 0,
                        locals: None,
                        parameters: None,
                    }
                },
                raw,
            })
        });
        r.chain_executing
    }
}

impl Reader<'_, '_, '_> {
    /// Coroutine -> awaited coroutine -> ..., outermost frame first, each frame with what its
    /// code tells (decoded once per code and instruction).
    pub(super) fn await_chain(&mut self, coro: usize) -> Vec<ChainFrame> {
        self.await_chain_until(coro, &|_| false)
    }

    /// `await_chain`, ending at the first frame `last` picks (not following what it awaits).
    fn await_chain_until(
        &mut self,
        coro: usize,
        last: &dyn Fn(&RawFrame) -> bool,
    ) -> Vec<ChainFrame> {
        let mut chain = Vec::new();
        self.await_chain_each(coro, last, |rf, facts| chain.push((rf, facts)));
        chain
    }

    /// `await_chain_until`, each frame given to `each` as it is read, outermost first.
    fn await_chain_each(
        &mut self,
        coro: usize,
        last: &dyn Fn(&RawFrame) -> bool,
        mut each: impl FnMut(RawFrame, Rc<FrameFacts>),
    ) {
        let dialect = self.walker.dialect();
        let mut obj = coro;
        self.chain_end = None;
        self.chain_executing = false;
        let embedded = matches!(self.offs.coro_frame, CoroFrame::Embedded { .. });
        for depth in 0..MAX_CHAIN {
            let Some((rf, suspended, top)) = self.suspended_frame(obj) else {
                // A future (FutureIter, Future, Task) ends the chain: `fut_waiter` names it.
                break;
            };
            if depth == 0 {
                self.chain_executing = embedded && !suspended;
            }
            let facts = self.facts.of(dialect, &rf);
            let next = if suspended && facts.yield_from && !last(&rf) {
                top.and_then(|slot| self.mem().ptr(slot).ok())
                    .map(|p| self.walker.slot_object(p))
                    .filter(|p| *p != 0)
            } else {
                None
            };
            each(rf, facts);
            match next {
                Some(next) => obj = next,
                None => break,
            }
        }
    }

    /// The frame of a coroutine or generator, whether it is suspended (not created, running
    /// or finished), and the address of the top of its value stack (what a suspended `await`
    /// waits on). The object and its frame's fields come in one read each. Inlined into
    /// each of `await_chain_each`'s two callers, as it was into asyncio's chain loop alone.
    #[inline(always)]
    fn suspended_frame(&mut self, obj: usize) -> Option<(RawFrame, bool, Option<usize>)> {
        let mut buf = [0u8; 80 + FRAME_READ_EMBEDDED];
        let mut fbuf = [0u8; FRAME_READ];
        let (frame, suspended, embedded_at) = match self.offs.coro_frame {
            CoroFrame::Pointer { at, f_state } => {
                let head = &mut buf[..at + 8];
                self.mem().read_into(obj, head).ok()?;
                if !self.is_coroutine(word(head, OB_TYPE)) {
                    self.chain_end = Some((obj, word(head, OB_TYPE)));
                    return None;
                }
                let frame = word(head, at);
                if frame == 0 {
                    return None;
                }
                self.mem().read_into(frame, &mut fbuf).ok()?;
                let suspended = match f_state {
                    // 3.10 FRAME_SUSPENDED.
                    Some(off) => fbuf[off] as i8 == -1,
                    // 3.8/3.9: the value stack top is saved only while suspended.
                    None => word(&fbuf, 72) != 0,
                };
                (frame, suspended, None)
            }
            CoroFrame::Embedded { at, state } => {
                // The object's head and its embedded frame's fields, in one read.
                let raw = &mut buf[..at + FRAME_READ_EMBEDDED];
                self.mem().read_into(obj, raw).ok()?;
                if !self.is_coroutine(word(raw, OB_TYPE)) {
                    self.chain_end = Some((obj, word(raw, OB_TYPE)));
                    return None;
                }
                let Some(suspended) = self.offs.coro_states.suspended(raw[state] as i8) else {
                    return None;
                };
                (obj + at, suspended, Some(at))
            }
        };
        let fraw: &[u8] = match embedded_at {
            Some(at) => &buf[at..at + FRAME_READ_EMBEDDED],
            None => &fbuf,
        };
        let code_addr = self.walker.slot_object(word(fraw, self.layout.frame_code));
        let code = self.code(code_addr)?;
        let instr = match self.layout.frame_instruction {
            InstructionPointer::LastiBytes(off) => {
                let lasti = int32(fraw, off);
                (lasti >= 0).then_some(lasti as usize / 2)
            }
            InstructionPointer::LastiUnits(off) => {
                let lasti = int32(fraw, off);
                (lasti >= 0).then_some(lasti as usize)
            }
            InstructionPointer::Pointer(off) => match self.layout.code_bytecode {
                Bytecode::Inline(start) => {
                    let ptr = word(fraw, off);
                    let base = code_addr + start;
                    (ptr >= base).then(|| (ptr - base) / 2)
                }
                Bytecode::Object(_) => None,
            },
        };
        let top = match self.offs.await_top {
            AwaitTop::StackTop(off) => Some(word(fraw, off))
                .filter(|t| *t != 0)
                .and_then(|t| t.checked_sub(8)),
            AwaitTop::Depth(vs, depth) => {
                let d = int32(fraw, depth);
                (1..=4096)
                    .contains(&d)
                    .then(|| word(fraw, vs) + 8 * (d as usize - 1))
            }
            AwaitTop::Localsplus(lp, top) => {
                let d = int32(fraw, top);
                (1..=4096)
                    .contains(&d)
                    .then(|| frame + lp + 8 * (d as usize - 1))
            }
            AwaitTop::StackPointer { sp, below } => {
                let base = frame + self.layout.frame_localsplus;
                Some(word(fraw, sp))
                    .filter(|p| *p >= base + below && *p < base + 8 * 4096)
                    .map(|p| p - below)
            }
        };
        let rf = RawFrame {
            addr: frame,
            code,
            instr,
        };
        Some((rf, suspended, top))
    }

    pub(super) fn is_coroutine(&mut self, ty: usize) -> bool {
        matches!(
            self.types.kind(&self.walker.objs, ty),
            Some(Kind::Coroutine | Kind::Generator)
        )
    }
}
