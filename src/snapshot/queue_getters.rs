//! Who will take from a full bounded `queue.Queue` that a thread waits to `put` into: every
//! other thread one of whose own frames will load that very queue and call its `get` or
//! `get_nowait` ahead of its current instruction (or in a loop around it), decoded from the
//! frame's bytecode (evidence `queue_getter`). They become the queue's holders, so the putter's
//! wait leads to them (`drained_by`). It claims nothing of a queue that is not full, of code it
//! cannot decode, or of a thread that reaches `get` only through a function not on its stack.

use super::builder::*;
use super::writes::{code_site, is_library_file, Scope};
use crate::cpython::layout::common::VAR_SIZE;

/// Methods that take an item out of a `queue.Queue`.
const TAKERS: [&str; 2] = ["get", "get_nowait"];
/// A `maxsize` beyond this is no bound a program waits on (and a torn read).
const MAX_BOUND: i64 = 1 << 24;

/// Whether a thread waits inside `queue.py`'s `put`.
fn waits_in_put(t: &Thread) -> bool {
    t.blocked
        && t.waits_for
            .as_ref()
            .is_some_and(|w| w.kind == WaitKind::Notify)
        && t.frames.iter().any(|f| {
            short_file(&f.file) == "queue.py"
                && (f.function == "put" || f.function.ends_with(".put"))
        })
}

impl<'w, 'a> Builder<'w, 'a> {
    /// Give every full bounded queue that a thread waits to put into the threads whose code
    /// will take from it, as holders with evidence `queue_getter`.
    pub(super) fn find_queue_getters(&mut self, raw: &[RawThread], threads: &[Thread]) {
        let queues: Vec<(usize, Vec<String>)> = self
            .locks
            .iter()
            .filter(|(_, l)| l.kind == LockKind::Queue && l.holders.is_empty())
            .filter_map(|(a, l)| {
                let putters: Vec<String> = l
                    .waiters
                    .iter()
                    .filter(|w| {
                        threads.iter().any(|t| {
                            t.id == w.thread
                                && waits_in_put(t)
                                && t.waits_for.as_ref().and_then(|w| w.target.as_ref())
                                    == Some(&l.id)
                        })
                    })
                    .map(|w| w.thread.clone())
                    .collect();
                (!putters.is_empty()).then_some((*a, putters))
            })
            .collect();
        for (q, putters) in queues {
            if !self.is_full(q) {
                continue;
            }
            let mut holders = Vec::new();
            for (rt, t) in raw.iter().zip(threads) {
                if putters.contains(&t.id) {
                    continue;
                }
                if let Some(site) = self.takes_from(rt, q) {
                    holders.push(Holder {
                        thread: Some(t.id.clone()),
                        task: None,
                        process: None,
                        owner_ident: None,
                        evidence: Evidence::QueueGetter,
                        site: Some(site),
                        count: None,
                    });
                }
            }
            if let Some(lock) = self.locks.get_mut(&q) {
                lock.holders = holders;
            }
        }
    }

    /// Whether queue `q` is bounded and holds `maxsize` items or more (`Queue.full()`).
    fn is_full(&self, q: usize) -> bool {
        let objs = self.objs();
        let int_attr = |name: &str| objs.int(objs.attr(q, name).ok()??).ok();
        let Some(maxsize) = int_attr("maxsize").filter(|m| (1..MAX_BOUND).contains(m)) else {
            return false;
        };
        let Some(items) = objs.attr(q, "queue").ok().flatten() else {
            return false;
        };
        if !(objs.type_is(items, "collections.deque") || objs.type_is(items, "list")) {
            return false;
        }
        objs.mem
            .i64(items + VAR_SIZE)
            .is_ok_and(|n| (maxsize..MAX_BOUND).contains(&n))
    }

    /// The site (`function file:line`) of the first `q.get()` a thread's own frames will still
    /// make, innermost frame first: the method looked up on an expression that names `q` now.
    fn takes_from(&self, rt: &RawThread, q: usize) -> Option<String> {
        for rf in rt
            .frames
            .iter()
            .filter(|f| !is_library_file(&f.code.filename))
        {
            let Some(at) = self.walker.current_index(rf) else {
                continue;
            };
            let decoded = rf.code.writes();
            let call = decoded.calls.iter().find(|c| {
                TAKERS.contains(&c.name.as_str())
                    && c.receiver.as_ref().is_some_and(|r| {
                        decoded.reachable_call(at, c)
                            && self.resolve(Scope::Frame(rf), r) == Some(q)
                    })
            });
            if let Some(c) = call {
                return Some(code_site(&rf.code, rf.code.line_of_instruction(c.index)));
            }
        }
        None
    }
}
