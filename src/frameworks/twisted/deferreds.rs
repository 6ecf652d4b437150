//! Twisted's Deferred waits, read from outside: the `inlineCallbacks` generators and
//! `ensureDeferred` coroutines the reactor holds suspended (nothing runs them: each sits in
//! the callbacks of the Deferred it yielded, as `_gotResultInlineCallbacks`'s arguments), as
//! `tasks[]` of framework `twisted`, each waiting on its Deferred, and who would fire that
//! Deferred: the generator whose result it is (its `_CancellationStatus.deferred`), or the
//! one suspended generator whose code calls its `callback`/`errback` after where it waits.
//! Anything else is a wait with an unknown firer, never guessed. Deferreds are found from
//! module globals and the attributes of objects there whose class that module defines, from
//! the locals of every thread's frames and their objects' attributes, from what the reactor
//! holds (its connections' protocols and factories, its timed calls' arguments), then from
//! what each generator found holds (its locals, closure cells, their attributes) or fires
//! (see `held`). Read-only; bounded per root and per snapshot.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::pool::Pools;
use crate::asyncio::{await_chains, task_id, ChainLink};
use crate::cpython::bytecode::{Path, Root};
use crate::cpython::objects::Objects;
use crate::cpython::threads::{RawFrame, RawThread, Walker};
use crate::model::{
    lock_id, Evidence, Frame, Framework, Holder, Lock, LockKind, Task, TaskState, TaskWait,
    TaskWaitKind, Thread, Waiter,
};

/// Deferreds followed at most in one snapshot, and module-global values looked at.
const MAX_DEFERREDS: usize = 4096;
const MAX_GLOBALS: usize = 200_000;
/// Frame locals and object attributes looked at, over all threads and generators; and, apart,
/// the attributes of module globals' objects, so large globals cannot starve the frames of
/// what `main` holds (on 3.12 the globals spent it all before any frame was read).
const MAX_HELD: usize = 50_000;
/// Frames looked at per thread.
const MAX_THREAD_FRAMES: usize = 256;
/// Chained Deferreds followed at most from one.
const MAX_CHAIN: usize = 16;
/// The reactor's selectables (connections, ports) and timed calls looked into at most.
const MAX_IO_OBJECTS: usize = 1024;

/// The Deferred waits of one process.
#[derive(Debug, Default)]
pub struct DeferredView {
    pub tasks: Vec<Task>,
    pub locks: Vec<Lock>,
    pub notes: Vec<String>,
}

/// A suspended generator (or coroutine) and the Deferred it waits on.
struct Waiting {
    gen: usize,
    deferred: usize,
}

/// A Deferred's firer as found: the generator it is the result of, or code that calls it.
#[derive(Clone)]
struct Firer {
    gen: usize,
    /// `function file:line` of the `callback` call (none: the generator's own result).
    site: Option<String>,
}

struct Search<'w, 'a> {
    walker: &'w mut Walker<'a>,
    pid: i32,
    /// The await chain of each generator searched (outermost frame first).
    chains: HashMap<usize, Vec<ChainLink>>,
    deferred_ty: usize,
    got_result: usize,
    queue: VecDeque<usize>,
    seen: HashSet<usize>,
    /// How the code names a Deferred (`stock_ready`), where known.
    names: HashMap<usize, String>,
    waiting: Vec<Waiting>,
    /// The generator each Deferred is the result of.
    result_of: HashMap<usize, usize>,
    /// Generators whose code calls a Deferred's `callback`/`errback` further on.
    fired_by: HashMap<usize, Vec<Firer>>,
    /// Deferreds a reactor timer (`callLater(t, d.callback, ...)`) fires.
    timed: HashSet<usize>,
    /// A paused Deferred and the one it is chained to (a callback returned it: it fires
    /// when that one does).
    chained: HashMap<usize, usize>,
    /// What is left of `MAX_HELD` for frames' locals.
    held_budget: usize,
    /// What is left of `MAX_HELD` for module globals' objects.
    globals_held_budget: usize,
    /// What is left of `MAX_HELD` for the reactor's I/O objects and timed calls.
    io_held_budget: usize,
}

/// `twisted.internet.defer`'s module dict, when Twisted is imported.
pub(super) fn defer_module(objs: &Objects, interp: usize) -> Option<usize> {
    objs.sys_module_dict(interp, "twisted.internet.defer")
        .ok()
        .flatten()
}

/// Every Deferred wait of the process's suspended `inlineCallbacks`; empty without Twisted.
/// Deferreds fired by thread-pool work (`pools`) are searched too, their firers the pool's.
#[allow(clippy::too_many_arguments)]
pub(super) fn read(
    walker: &mut Walker,
    interp: usize,
    pid: i32,
    loop_id: &str,
    reactor: Option<usize>,
    pools: &Pools,
    raw: &[RawThread],
    threads: &[Thread],
) -> DeferredView {
    let mut view = DeferredView::default();
    let objs = &walker.objs;
    let Some(defer) = defer_module(objs, interp) else {
        return view;
    };
    let get = |name| objs.dict_get(defer, name).ok().flatten();
    let (Some(deferred_ty), Some(got_result)) = (get("Deferred"), get("_gotResultInlineCallbacks"))
    else {
        view.notes.push(
            "this Twisted has no Deferred or _gotResultInlineCallbacks in twisted.internet.defer: its inlineCallbacks waits are not read".into(),
        );
        return view;
    };
    let mut search = Search {
        walker,
        pid,
        chains: HashMap::new(),
        deferred_ty,
        got_result,
        queue: VecDeque::new(),
        seen: HashSet::new(),
        names: HashMap::new(),
        waiting: Vec::new(),
        result_of: HashMap::new(),
        fired_by: HashMap::new(),
        timed: HashSet::new(),
        chained: HashMap::new(),
        held_budget: MAX_HELD,
        globals_held_budget: MAX_HELD,
        io_held_budget: MAX_HELD,
    };
    search.module_globals(interp);
    // Before the frames: a Deferred the reactor's objects hold is named from them
    // (`reactor's Server.protocol.answered`), not through a reactor frame's `self`.
    if let Some(r) = reactor {
        search.reactor_io(r);
    }
    search.thread_frames(raw);
    for &d in pools.work.keys() {
        search.push(d, None);
    }
    if let Some(r) = reactor {
        search.timed_calls(r);
    }
    let mut gens_seen = HashSet::new();
    while let Some(d) = search.queue.pop_front() {
        for gen in search.waiters_of(d) {
            if gens_seen.insert(gen) {
                search.waiting.push(Waiting { gen, deferred: d });
            }
        }
    }
    let Search {
        waiting,
        names,
        result_of,
        fired_by,
        mut chains,
        timed,
        chained,
        walker,
        ..
    } = search;
    // Where a chain of Deferreds ends: the one whose firing fires them all.
    let end = |d: usize| {
        let mut at = d;
        for _ in 0..MAX_CHAIN {
            match chained.get(&at) {
                Some(&next) if next != d => at = next,
                _ => break,
            }
        }
        at
    };
    // How the code names a Deferred, and the one it is chained to (`listing, chained to
    // indexed`).
    let chained_name = |d: usize, last: usize| {
        let own = names.get(&d).cloned();
        if last == d {
            return own;
        }
        let to = names
            .get(&last)
            .cloned()
            .unwrap_or_else(|| format!("{last:#x}"));
        Some(format!(
            "{}, chained to {to}",
            own.unwrap_or_else(|| format!("{d:#x}"))
        ))
    };
    let mut waiters: BTreeMap<usize, Vec<Waiter>> = BTreeMap::new();
    for w in &waiting {
        let chain = chains.remove(&w.gen).unwrap_or_default();
        let frames: Vec<Frame> = chain.iter().rev().map(|l| l.frame.clone()).collect();
        let site = frames
            .iter()
            .find(|f| !super::files::is_twisted_code(&f.file))
            .map(|f| f.site());
        let id = task_id(pid, w.gen);
        let coroutine = chain.first().map(|l| l.raw.code.name.clone());
        let via = match walker.objs.type_name(w.gen).as_deref() {
            Ok("coroutine") => "twisted.internet.defer.ensureDeferred",
            _ => "twisted.internet.defer.inlineCallbacks",
        };
        waiters.entry(w.deferred).or_default().push(Waiter {
            thread: id.clone(),
            evidence: Evidence::Deferred,
            site: site.clone(),
        });
        // Only a timer fires it: the generator sleeps.
        let last = end(w.deferred);
        let sleeps = timed.contains(&last)
            && !result_of.contains_key(&last)
            && !fired_by.contains_key(&last);
        view.tasks.push(Task {
            id,
            pid,
            loop_id: loop_id.to_string(),
            name: coroutine.clone(),
            coroutine,
            state: TaskState::Pending,
            frames,
            waits_for: Some(TaskWait {
                kind: if sleeps {
                    TaskWaitKind::Sleep
                } else {
                    TaskWaitKind::Future
                },
                target: Some(lock_id(pid, w.deferred)),
                targets: Vec::new(),
                future: Some(format!("{:#x}", w.deferred)),
                evidence: Evidence::Deferred,
                site,
                name: chained_name(w.deferred, last),
                via: Some(if sleeps { "reactor.callLater" } else { via }.into()),
                program_name: None,
            }),
            address: format!("{:#x}", w.gen),
            eager: false,
            holds: Vec::new(),
            framework: Framework::Twisted,
            parent: None,
        });
    }
    for (d, waiters) in waiters {
        if let Some(lock) = pools.lock(pid, d, threads) {
            view.locks.push(Lock { waiters, ..lock });
            continue;
        }
        let last = end(d);
        let holders = match (result_of.get(&last), fired_by.get(&last).map(Vec::as_slice)) {
            (Some(gen), _) => vec![holder(Some(task_id(pid, *gen)), None)],
            (None, Some([one])) => vec![holder(Some(task_id(pid, one.gen)), one.site.clone())],
            // Several generators could fire it, or none found: any other code might.
            _ => vec![Holder {
                evidence: Evidence::Unknown,
                ..holder(None, None)
            }],
        };
        view.locks.push(Lock {
            name: chained_name(d, last).map(|n| format!("Deferred {n}")),
            waiters,
            ..Lock::pending_result(pid, d, LockKind::Deferred, holders)
        });
    }
    view
}

fn holder(task: Option<String>, site: Option<String>) -> Holder {
    Holder {
        thread: None,
        task,
        process: None,
        owner_ident: None,
        evidence: Evidence::Deferred,
        site,
        count: None,
        call_path: Vec::new(),
    }
}

impl Search<'_, '_> {
    fn objs(&self) -> &Objects<'_> {
        &self.walker.objs
    }

    fn is_deferred(&self, obj: usize) -> bool {
        self.objs().type_of(obj).ok() == Some(self.deferred_ty)
    }

    fn push(&mut self, d: usize, name: Option<String>) {
        if self.seen.len() >= MAX_DEFERREDS || !self.is_deferred(d) {
            return;
        }
        if let Some(n) = name {
            self.names.entry(d).or_insert(n);
        }
        if self.seen.insert(d) {
            self.queue.push_back(d);
        }
    }

    /// Deferreds held in module globals (Twisted's own modules left out).
    fn module_globals(&mut self, interp: usize) {
        let Ok(modules) = self.objs().modules(interp) else {
            return;
        };
        let mut budget = MAX_GLOBALS;
        // Whether a type is a class of the module being read (its instances' attributes are
        // looked at: `warehouse.restocked`), by type and module.
        let mut own_class: HashMap<(usize, usize), bool> = HashMap::new();
        for (key, dict) in modules {
            let name = self.objs().str(key).unwrap_or_default();
            if name.starts_with("twisted") {
                continue;
            }
            let Ok(entries) = self.objs().dict_entries(dict) else {
                continue;
            };
            for (k, v) in entries {
                if budget == 0 {
                    return;
                }
                budget -= 1;
                if self.is_deferred(v) {
                    let name = self.objs().str(k).ok();
                    self.push(v, name);
                    continue;
                }
                let Ok(ty) = self.objs().type_of(v) else {
                    continue;
                };
                let own = *own_class.entry((ty, key)).or_insert_with(|| {
                    self.walker.objs.type_module(v).as_deref() == Some(name.as_str())
                });
                if own {
                    let global = self.objs().str(k).unwrap_or_default();
                    let held = super::held::attributes(
                        &self.walker.objs,
                        &global,
                        v,
                        &mut self.globals_held_budget,
                    );
                    for (n, d) in held {
                        self.push(d, Some(n));
                    }
                }
            }
        }
    }

    /// Deferreds held in the locals of every thread's frames (a `main` that keeps its service
    /// object and runs the reactor), or in their objects' attributes.
    fn thread_frames(&mut self, raw: &[RawThread]) {
        for rt in raw {
            for f in rt.frames.iter().take(MAX_THREAD_FRAMES) {
                for (n, d) in super::held::frame_values(self.walker, f, &mut self.held_budget) {
                    self.push(d, Some(n));
                }
            }
        }
    }

    /// Deferreds the reactor's pending timed calls fire (`callLater(t, d.callback)`).
    fn timed_calls(&mut self, reactor: usize) {
        let objs = self.objs();
        let mut calls = Vec::new();
        for list in ["_pendingTimedCalls", "_newTimedCalls"] {
            if let Some(items) = objs
                .attr(reactor, list)
                .ok()
                .flatten()
                .and_then(|l| objs.list_items(l).ok())
            {
                calls.extend(items.into_iter().take(MAX_DEFERREDS));
            }
        }
        let mut fired = Vec::new();
        for call in calls {
            let Some(func) = objs.attr(call, "func").ok().flatten() else {
                continue;
            };
            if !objs.type_is(func, "method") {
                continue;
            }
            // A bound method: its function and its `self`.
            let Some(crate::cpython::stdlib::Callable {
                function: Some(f),
                bound_to: Some(this),
                ..
            }) = objs.callable(func)
            else {
                continue;
            };
            let callback = crate::cpython::functions::function_parts(objs, f)
                .and_then(|(code, _)| objs.mem.ptr(code).ok().map(|_| code));
            if callback.is_some() && self.is_deferred(this) {
                fired.push(this);
            }
        }
        for d in fired {
            self.timed.insert(d);
            self.push(d, None);
        }
    }

    /// Deferreds held only by what the reactor holds: its selectables (a connection's
    /// `protocol` and that protocol's `factory`, a port's `factory`), and its timed calls'
    /// arguments and bound `self` (`callLater(60, audit, ledger)`, `callLater(5, poller.poll)`).
    fn reactor_io(&mut self, reactor: usize) {
        let objs = self.objs();
        let mut roots: Vec<(String, usize)> = Vec::new();
        // epoll and poll: `_selectables` (fd -> selectable); select: `_reads`/`_writes` sets.
        let mut selectables: Vec<usize> = objs
            .attr(reactor, "_selectables")
            .ok()
            .flatten()
            .filter(|d| objs.type_is(*d, "dict"))
            .and_then(|d| objs.dict_entries(d).ok())
            .unwrap_or_default()
            .into_iter()
            .take(MAX_IO_OBJECTS)
            .map(|(_, v)| v)
            .collect();
        for set in ["_reads", "_writes"] {
            let Some(items) = objs
                .attr(reactor, set)
                .ok()
                .flatten()
                .filter(|s| objs.type_is(*s, "set"))
                .and_then(|s| objs.set_items(s).ok())
            else {
                continue;
            };
            selectables.extend(items.into_iter().take(MAX_IO_OBJECTS));
        }
        let mut seen = HashSet::new();
        for sel in selectables {
            if seen.len() >= MAX_IO_OBJECTS || !seen.insert(sel) {
                continue;
            }
            // An int is a file descriptor (epoll's `_reads`), not a selectable.
            let Ok(class) = objs.type_name(sel) else {
                continue;
            };
            if class == "int" {
                continue;
            }
            roots.push((format!("reactor's {class}"), sel));
        }
        for list in ["_pendingTimedCalls", "_newTimedCalls"] {
            let calls = objs
                .attr(reactor, list)
                .ok()
                .flatten()
                .and_then(|l| objs.list_items(l).ok())
                .unwrap_or_default();
            for call in calls.into_iter().take(MAX_IO_OBJECTS) {
                if roots.len() >= 2 * MAX_IO_OBJECTS {
                    break;
                }
                roots.push(("callLater(...)".into(), call));
                let Some(func) = objs.attr(call, "func").ok().flatten() else {
                    continue;
                };
                // A bound method's `self`.
                if objs.type_is(func, "method") {
                    if let Some(this) = objs.callable(func).and_then(|c| c.bound_to) {
                        roots.push(("callLater(...).func.__self__".into(), this));
                    }
                }
            }
        }
        for (name, root) in roots {
            if self.is_deferred(root) {
                continue;
            }
            let held = super::held::attributes_avoiding(
                &self.walker.objs,
                &name,
                root,
                &[reactor],
                &mut self.io_held_budget,
            );
            for (n, d) in held {
                self.push(d, Some(n));
            }
        }
    }

    /// The generators waiting on Deferred `d` (its `_gotResultInlineCallbacks` callbacks),
    /// each searched for more Deferreds: its own result, its locals, what it fires.
    fn waiters_of(&mut self, d: usize) -> Vec<usize> {
        if let Some(inner) = self.chained_to(d) {
            self.chained.insert(d, inner);
            self.push(inner, None);
        }
        let objs = self.objs();
        let callbacks = objs
            .attr(d, "_callbacks")
            .ok()
            .flatten()
            .or_else(|| objs.attr(d, "callbacks").ok().flatten())
            .and_then(|l| objs.list_items(l).ok())
            .unwrap_or_default();
        let mut gens = Vec::new();
        for pair in callbacks.into_iter().take(64) {
            let Some(call) = objs.tuple_items(pair).ok().and_then(|p| p.first().copied()) else {
                continue;
            };
            let Some(parts) = objs.tuple_items(call).ok() else {
                continue;
            };
            if parts.first() != Some(&self.got_result) {
                continue;
            }
            // (waiting, gen, status, context)
            let Some(args) = parts.get(1).and_then(|a| objs.tuple_items(*a).ok()) else {
                continue;
            };
            let (Some(&gen), Some(&status)) = (args.get(1), args.get(2)) else {
                continue;
            };
            gens.push((gen, status));
        }
        let mut out = Vec::new();
        for (gen, status) in gens {
            if let Some(result) = self.objs().attr(status, "deferred").ok().flatten() {
                if self.is_deferred(result) {
                    self.result_of.insert(result, gen);
                    self.push(result, None);
                }
            }
            self.search_generator(gen);
            out.push(gen);
        }
        out
    }

    /// The Deferred a paused Deferred waits for: a callback of it returned that one
    /// (`_chainedTo`, else a Deferred `result` while paused).
    fn chained_to(&self, d: usize) -> Option<usize> {
        let objs = self.objs();
        let paused = objs
            .attr(d, "paused")
            .ok()
            .flatten()
            .and_then(|p| objs.int(p).ok())
            .is_some_and(|p| p > 0);
        if !paused {
            return None;
        }
        ["_chainedTo", "result"]
            .iter()
            .filter_map(|a| objs.attr(d, a).ok().flatten())
            .find(|x| *x != d && self.is_deferred(*x))
    }

    /// A generator's locals that are Deferreds, and those its code fires further on.
    fn search_generator(&mut self, gen: usize) {
        let Some(frame) = self.generator_frame(gen) else {
            return;
        };
        for (name, v) in super::held::frame_values(self.walker, &frame, &mut self.held_budget) {
            self.push(v, Some(name));
        }
        let Some(at) = frame.instr.and_then(|u| frame.code.index_at(u)) else {
            return;
        };
        for (k, _, guard) in frame.code.method_lookups(&["callback", "errback"]) {
            if k <= at {
                continue;
            }
            let Some(path) = guard.path.as_ref() else {
                continue;
            };
            let Some(d) = self.resolve(&frame, path) else {
                continue;
            };
            if !self.is_deferred(d) {
                continue;
            }
            let line = frame.code.line_of_instruction(k).unwrap_or(0);
            let site = format!(
                "{} {}:{line}",
                frame.code.name,
                crate::model::short_file(&frame.code.filename)
            );
            let firers = self.fired_by.entry(d).or_default();
            if !firers.iter().any(|f| f.gen == gen) {
                firers.push(Firer {
                    gen,
                    site: Some(site),
                });
            }
            self.push(d, guard.text.clone());
        }
    }

    /// The generator's own suspended frame (for a coroutine: the coroutine's), its await
    /// chain kept for its task.
    fn generator_frame(&mut self, gen: usize) -> Option<RawFrame> {
        let (chain, _) = await_chains(self.walker, self.pid, &[gen]).pop()?;
        let frame = chain.first().map(|l| l.raw.clone());
        self.chains.insert(gen, chain);
        frame
    }

    /// The object a name chain refers to in a generator's frame.
    fn resolve(&self, frame: &RawFrame, path: &Path) -> Option<usize> {
        let objs = self.objs();
        let mut obj = match &path.root {
            Root::Local(n) => self.walker.local(frame, n)?,
            Root::Deref(n) => {
                let cell = self.walker.local(frame, n)?;
                if objs.type_is(cell, "cell") {
                    let cell_ref = objs.layout.stdlib.cell_ref;
                    objs.mem.ptr(cell + cell_ref).ok().filter(|p| *p != 0)?
                } else {
                    cell
                }
            }
            Root::Global(n) => {
                let globals = objs
                    .mem
                    .ptr(frame.addr + objs.layout.offsets.frame_globals)
                    .ok()?;
                objs.dict_get(globals, n).ok()??
            }
        };
        for a in &path.attrs {
            obj = objs.attr(obj, a).ok()??;
        }
        Some(obj)
    }
}
