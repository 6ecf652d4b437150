//! Who will take from a full bounded `queue.Queue` that a thread waits to `put` into: every
//! other thread one of whose own frames will load that very queue and call its `get` or
//! `get_nowait` ahead of its current instruction (or in a loop around it), decoded from the
//! frame's bytecode, directly or through up to two levels of calls to functions read from
//! memory (a module global, a method of the receiver's class), their parameters bound to the
//! call's positional and keyword arguments (name chains, their subscripts by a constant or by
//! the str or int another name chain holds now, and the tuple and dict a `*args` / `**kwargs`
//! call unpacks, read from memory; an argument whose names the frame binds again before the
//! call is not followed) (evidence `queue_getter`, the site of that `get`, the calls down to
//! it as the holder's `call_path`). They become the queue's
//! holders, so the putter's wait leads to them (`drained_by`). A thread that is not blocked
//! and whose code refers to the queue in a way not decoded, or whose stack or state could not
//! be read, may drain it too: it is a holder with evidence `unknown`, which makes the wait an
//! OR that it can end, so no deadlock is claimed through the queue. It claims nothing of a
//! queue that is not full, or of a thread that reaches `get` only through code it cannot
//! resolve.

use super::builder::*;
use super::writes::{code_site, is_library_file, Scope};
use crate::cpython::bytecode::{Key, Path, Root};
use crate::cpython::functions;
use crate::cpython::layout::common::VAR_SIZE;
use crate::cpython::threads::CodeInfo;
use crate::cpython::writes::{Argument, CallArguments, CodeCall};

/// Methods that take an item out of a `queue.Queue`.
const TAKERS: [&str; 2] = ["get", "get_nowait"];
/// A `maxsize` beyond this is no bound a program waits on (and a torn read).
const MAX_BOUND: i64 = 1 << 24;
/// How many calls deep a `get` is looked for below a frame's own code.
const MAX_CALL_DEPTH: usize = 2;
/// Bound on the functions read for one thread's search (each is a code object read).
const MAX_CALLEES: usize = 24;

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

/// Where a path's names are looked up: a frame on the stack, or a function a frame will call,
/// its parameters bound to the objects the call passes.
enum Names<'r> {
    Frame(&'r RawFrame),
    Bound {
        locals: Vec<(String, usize)>,
        globals: usize,
    },
}

impl<'w, 'a> Builder<'w, 'a> {
    /// Give every full bounded queue that a thread waits to put into the threads whose code
    /// will take from it, as holders with evidence `queue_getter`, and the threads that may
    /// (running, or unread) as holders with evidence `unknown`.
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
            let holder = |t: &Thread, evidence: Evidence, site: Option<String>, path| Holder {
                thread: Some(t.id.clone()),
                task: None,
                process: None,
                owner_ident: None,
                evidence,
                site,
                count: None,
                call_path: path,
            };
            for (rt, t) in raw.iter().zip(threads) {
                if putters.contains(&t.id) {
                    continue;
                }
                if let Some((site, path)) = self.takes_from(rt, q) {
                    holders.push(holder(t, Evidence::QueueGetter, Some(site), path));
                } else if let Some(site) = self.may_take_from(rt, t, q) {
                    holders.push(holder(t, Evidence::Unknown, site, Vec::new()));
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
    /// make, innermost frame first: the method looked up on an expression that names `q` now,
    /// in the frame's code or in a function it calls (two levels deep at most); with the call
    /// path to it (the frame's function, each callee, `q.get`).
    fn takes_from(&self, rt: &RawThread, q: usize) -> Option<(String, Vec<String>)> {
        let mut budget = MAX_CALLEES;
        for rf in rt
            .frames
            .iter()
            .filter(|f| !is_library_file(&f.code.filename))
        {
            let Some(at) = self.walker.current_index(rf) else {
                continue;
            };
            let names = Names::Frame(rf);
            let found = self.takes_in(&rf.code, at, &names, q, 0, &mut budget);
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// The site of a `q.get()` among the calls `code` can still make from instruction `at`
    /// (its names looked up in `names`), or in the functions they call with arguments still
    /// bound as they are now, `depth` levels below a frame; with the call path from `code`'s
    /// function down to it.
    fn takes_in(
        &self,
        code: &CodeInfo,
        at: usize,
        names: &Names,
        q: usize,
        depth: usize,
        budget: &mut usize,
    ) -> Option<(String, Vec<String>)> {
        let decoded = code.writes();
        let calls: Vec<&CodeCall> = decoded
            .calls
            .iter()
            .filter(|c| decoded.reachable_call(at, c))
            .collect();
        let direct = calls.iter().find(|c| {
            TAKERS.contains(&c.name.as_str())
                && c.receiver
                    .as_ref()
                    .is_some_and(|r| self.resolve_in(names, r) == Some(q))
        });
        if let Some(c) = direct {
            let receiver = c
                .receiver
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_default();
            return Some((
                code_site(code, code.line_of_instruction(c.index)),
                vec![code.name.clone(), format!("{receiver}.{}", c.name)],
            ));
        }
        if depth >= MAX_CALL_DEPTH {
            return None;
        }
        for c in calls.iter().filter(|c| !TAKERS.contains(&c.name.as_str())) {
            if *budget == 0 {
                return None;
            }
            // An argument whose names are bound again on the way passes another value.
            let args = code.call_arguments(c).unwrap_or_default();
            if !decoded.reachable_call_passing(at, c, &args) {
                continue;
            }
            let Some((callee, bound)) = self.callee_of(c, &args, names) else {
                continue;
            };
            *budget -= 1;
            if let Some((site, mut path)) = self.takes_in(&callee, 0, &bound, q, depth + 1, budget)
            {
                path.insert(0, code.name.clone());
                return Some((site, path));
            }
        }
        None
    }

    /// The user function a call names (a global function, or a method of the class of the
    /// object it is looked up on), read from memory, with its parameters bound to what the
    /// call passes (the receiver first for a method); `None` for anything else.
    fn callee_of(
        &self,
        c: &CodeCall,
        args: &CallArguments,
        names: &Names,
    ) -> Option<(std::sync::Arc<CodeInfo>, Names<'static>)> {
        let objs = self.objs();
        let globals = self.globals_of(names)?;
        let (func, receiver) = match &c.receiver {
            None => (objs.dict_get(globals, &c.name).ok()??, None),
            Some(path) => {
                let obj = self.resolve_in(names, path)?;
                // An instance attribute is no method of its class.
                if objs.attr(obj, &c.name).ok()?.is_some() {
                    return None;
                }
                (
                    objs.attr(objs.type_of(obj).ok()?, &c.name).ok()??,
                    Some(obj),
                )
            }
        };
        let (code_addr, callee_globals) = functions::function_parts(objs, func)?;
        let callee = self.walker.read_code(code_addr).ok()?;
        if is_library_file(&callee.filename) {
            return None;
        }
        let params = callee.parameters.clone().unwrap_or_default();
        let resolve =
            |a: &Option<Argument>| a.as_ref().and_then(|p| self.resolve_argument(names, p));
        let star = args.star.as_ref().map(|a| self.unpacked(names, a));
        let double_star = args
            .double_star
            .as_ref()
            .map(|a| self.unpacked_keywords(names, a));
        let values = receiver
            .into_iter()
            .map(Some)
            .chain(args.positional.iter().map(resolve))
            .chain(star.into_iter().flatten().map(Some));
        let by_position = params.iter().cloned().zip(values);
        // A keyword binds the parameter of that name (one the call also passes by position
        // is a TypeError at run time: the positional one is kept).
        let by_keyword = args
            .keywords
            .iter()
            .filter(|(k, _)| params.contains(k))
            .map(|(k, a)| (k.clone(), resolve(a)))
            .chain(
                double_star
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| params.contains(k))
                    .map(|(k, v)| (k, Some(v))),
            );
        let mut locals: Vec<(String, usize)> = Vec::new();
        for (p, v) in by_position.chain(by_keyword) {
            if let (Some(v), false) = (v, locals.iter().any(|(k, _)| *k == p)) {
                locals.push((p, v));
            }
        }
        Some((
            callee,
            Names::Bound {
                locals,
                globals: callee_globals,
            },
        ))
    }

    /// The object an argument names now: a name chain, or a subscript of one by a constant
    /// or by what another name chain names now (a dict's str or int key, a list's or tuple's
    /// index).
    fn resolve_argument(&self, names: &Names, a: &Argument) -> Option<usize> {
        let objs = self.objs();
        let (path, key) = match a {
            Argument::Name(p) => return self.resolve_in(names, p),
            Argument::Item(p, key) => (p, key),
        };
        let container = self.resolve_in(names, path)?;
        let key = match key {
            Key::Name(k) => self.key_value(names, k)?,
            k => k.clone(),
        };
        let ty = objs.type_name_rc(container).ok()?;
        let items = match (&*ty, &key) {
            ("dict" | "collections.defaultdict", Key::Str(k)) => {
                return objs.dict_get(container, k).ok()?
            }
            ("dict" | "collections.defaultdict", Key::Int(i)) => {
                // Bounded by the reader's entry count; keys that are no int are passed over.
                return objs
                    .dict_entries(container)
                    .ok()?
                    .into_iter()
                    .find(|(k, _)| objs.int(*k).is_ok_and(|v| v == *i))
                    .map(|(_, v)| v);
            }
            ("list", Key::Int(_)) => objs.list_items(container).ok()?,
            ("tuple", Key::Int(_)) => objs.tuple_items(container).ok()?,
            _ => return None,
        };
        let Key::Int(i) = key else { return None };
        let at = match usize::try_from(i) {
            Ok(at) => at,
            Err(_) => items
                .len()
                .checked_sub(usize::try_from(i.unsigned_abs()).ok()?)?,
        };
        items.get(at).copied()
    }

    /// The value a computed subscript's key names now, as a constant key: a `str` (bounded
    /// by the reader) or an `int` (a bool or int subclass too) that fits in 64 bits; `None`
    /// for any other object.
    fn key_value(&self, names: &Names, key: &Path) -> Option<Key> {
        let objs = self.objs();
        let k = self.resolve_in(names, key)?;
        if objs.type_is(k, "str") {
            return objs.str(k).ok().map(Key::Str);
        }
        objs.int(k).ok().map(Key::Int)
    }

    /// The items a `*X` argument unpacks: those of a tuple or list (bounded by the reader),
    /// nothing for another iterable.
    fn unpacked(&self, names: &Names, a: &Argument) -> Vec<usize> {
        let objs = self.objs();
        let Some(seq) = self.resolve_argument(names, a) else {
            return Vec::new();
        };
        match objs.type_name_rc(seq).as_deref() {
            Ok("tuple") => objs.tuple_items(seq).unwrap_or_default(),
            Ok("list") => objs.list_items(seq).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// The str-keyed entries a `**X` argument unpacks (a dict's).
    fn unpacked_keywords(&self, names: &Names, a: &Argument) -> Vec<(String, usize)> {
        let objs = self.objs();
        self.resolve_argument(names, a)
            .filter(|d| objs.type_name_rc(*d).is_ok_and(|t| &*t == "dict"))
            .and_then(|d| objs.dict_items(d).ok())
            .unwrap_or_default()
    }

    fn globals_of(&self, names: &Names) -> Option<usize> {
        match names {
            Names::Frame(rf) => self.globals(Scope::Frame(rf)),
            Names::Bound { globals, .. } => Some(*globals),
        }
    }

    /// The object a path names now: in a frame, or through a called function's bound
    /// parameters and globals.
    fn resolve_in(&self, names: &Names, path: &Path) -> Option<usize> {
        let (locals, globals) = match names {
            Names::Frame(rf) => return self.resolve(Scope::Frame(rf), path),
            Names::Bound { locals, globals } => (locals, *globals),
        };
        let objs = self.objs();
        let mut obj = match &path.root {
            Root::Local(n) => locals.iter().find(|(k, _)| k == n).map(|(_, v)| *v)?,
            Root::Deref(_) => return None,
            Root::Global(n) => objs.dict_get(globals, n).ok()??,
        };
        for a in &path.attrs {
            obj = match objs.attr(obj, a).ok()? {
                Some(v) => v,
                None => objs.attr(objs.type_of(obj).ok()?, a).ok()??,
            };
        }
        Some(obj)
    }

    /// Whether a thread that is not known to take from `q` may still do so: it is not
    /// blocked and its code refers to `q` (a call on it, an argument, a method running on
    /// it now), or its state or stack could not be read. Then `Some(site)`, the site where it
    /// refers to `q` where one is known (its own code's first).
    fn may_take_from(&self, rt: &RawThread, t: &Thread, q: usize) -> Option<Option<String>> {
        if t.state == ThreadState::Unknown || (rt.frames.is_empty() && !t.blocked) {
            return Some(None);
        }
        if t.blocked {
            return None;
        }
        for rf in rt
            .frames
            .iter()
            .filter(|f| !is_library_file(&f.code.filename))
        {
            let names = Names::Frame(rf);
            for c in &rf.code.writes().calls {
                let on_q = c
                    .receiver
                    .as_ref()
                    .is_some_and(|r| self.resolve_in(&names, r) == Some(q));
                let passes_q = || {
                    rf.code.call_arguments(c).is_some_and(|args| {
                        args.all()
                            .flatten()
                            .any(|p| self.resolve_argument(&names, p) == Some(q))
                            || args
                                .star
                                .as_ref()
                                .is_some_and(|a| self.unpacked(&names, a).contains(&q))
                            || args.double_star.as_ref().is_some_and(|a| {
                                self.unpacked_keywords(&names, a)
                                    .iter()
                                    .any(|(_, v)| *v == q)
                            })
                    })
                };
                if on_q || passes_q() {
                    return Some(Some(code_site(
                        &rf.code,
                        rf.code.line_of_instruction(c.index),
                    )));
                }
            }
        }
        // A method of the queue running now (`qsize`, `get_nowait` called some other way).
        rt.frames
            .iter()
            .find(|rf| self.walker.local(rf, "self") == Some(q))
            .map(|rf| Some(code_site(&rf.code, self.line_now(rf))))
    }

    fn line_now(&self, rf: &RawFrame) -> Option<u32> {
        self.walker
            .current_index(rf)
            .and_then(|i| rf.code.line_of_instruction(i))
    }
}
