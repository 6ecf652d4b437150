//! Object pools built on a queue (SQLAlchemy's `QueuePool`, urllib3's `HTTPConnectionPool`
//! with `block=True`, any bounded `queue.Queue`/`LifoQueue` whose items are handed out and
//! put back): when a thread waits in `get` of an empty bounded queue, the queue is a pool
//! (`pool` kind, `permits`), and whoever holds its checked-out items is found from the
//! structure pools share: a thread-private object in a `with` block or a local of the
//! thread's own code that reaches the pool (or its queue) within a few attribute steps
//! (evidence `checkout`). It claims nothing about a queue nobody waits on.

use std::collections::{HashMap, HashSet};

use super::builder::*;
use crate::cpython::layout::common::*;

/// Attribute steps from a frame's object to the pool.
const MAX_STEPS: usize = 3;
/// Attributes followed per object.
const MAX_ATTRS: usize = 64;
/// Queues longer than this are no pool (and a torn read).
const MAX_POOL: i64 = 1 << 16;

/// A frame of library code: its objects are the pool's machinery, not the caller's items.
fn library_frame(file: &str) -> bool {
    file.contains("/site-packages/")
        || file.contains("/dist-packages/")
        || matches!(short_file(file), "threading.py" | "queue.py")
}

/// SQLAlchemy's `QueuePool` (1.3-2.1) lends `_max_overflow` connections beyond its queue's
/// `maxsize` before `get` blocks (-1: unbounded, so it never blocks).
fn overflow(objs: &Objects, owner: usize) -> u64 {
    objs.attr(owner, "_max_overflow")
        .ok()
        .flatten()
        .and_then(|v| objs.int(v).ok())
        .filter(|v| (0..MAX_POOL).contains(v))
        .unwrap_or(0) as u64
}

impl<'w, 'a> Builder<'w, 'a> {
    /// Turn every exhausted bounded queue that threads wait to `get` from into a pool, with
    /// its permits and the threads holding its items.
    pub(super) fn find_checkouts(&mut self, raw: &[RawThread], threads: &mut [Thread]) {
        let queues: Vec<usize> = self
            .locks
            .iter()
            .filter(|(_, l)| l.kind == LockKind::Queue && !l.waiters.is_empty())
            .map(|(a, _)| *a)
            .collect();
        for q in queues {
            self.pool_of_queue(q, raw, threads);
        }
    }

    fn pool_of_queue(&mut self, q: usize, raw: &[RawThread], threads: &mut [Thread]) {
        let objs = self.objs();
        let int_attr = |o: usize, name: &str| objs.int(objs.attr(o, name).ok()??).ok();
        let Some(maxsize) = int_attr(q, "maxsize").filter(|m| (1..MAX_POOL).contains(m)) else {
            return;
        };
        let Some(items) = objs.attr(q, "queue").ok().flatten() else {
            return;
        };
        if !(objs.type_is(items, "collections.deque") || objs.type_is(items, "list")) {
            return;
        }
        let Ok(free) = objs.mem.i64(items + VAR_SIZE) else {
            return;
        };
        if free != 0 {
            return;
        }
        let waiters: Vec<String> = self.locks[&q]
            .waiters
            .iter()
            .map(|w| w.thread.clone())
            .collect();
        let owner = self.pool_owner(q, raw, threads, &waiters).unwrap_or(q);
        let total = maxsize as u64 + overflow(objs, owner);
        let targets: HashSet<usize> = [q, owner].into_iter().collect();
        // Per thread: each item it holds, with the site and name that hold it.
        let mut held: Vec<(usize, Vec<(usize, String, Option<String>)>)> = Vec::new();
        for (i, rt) in raw.iter().enumerate() {
            let mut mine: Vec<(usize, String, Option<String>)> = Vec::new();
            for rf in rt
                .frames
                .iter()
                .filter(|f| !library_frame(&f.code.filename))
            {
                let frame = Frame {
                    function: rf.code.name.clone(),
                    file: rf.code.filename.clone(),
                    line: rf.instr.and_then(|u| rf.code.line_at(u)).unwrap_or(0),
                    locals: None,
                    parameters: rf.code.parameters.clone(),
                };
                let mut candidates: Vec<(usize, Option<String>, u32)> = Vec::new();
                for w in self.walker.active_withs(rf) {
                    let owner = match objs.type_name(w.exit_slot).as_deref() {
                        Ok("builtin_function_or_method" | "method") => objs
                            .mem
                            .ptr(w.exit_slot + METHOD_SELF)
                            .unwrap_or(w.exit_slot),
                        _ => w.exit_slot,
                    };
                    let (name, line) = self.walker.with_statement(rf, &w);
                    candidates.push((owner, name, line.unwrap_or(frame.line)));
                }
                for (name, v) in self.walker.locals(rf) {
                    candidates.push((v, Some(name), frame.line));
                }
                for (c, name, line) in candidates {
                    let site = Frame {
                        line,
                        ..frame.clone()
                    }
                    .site();
                    for item in self.items_reaching(c, &targets) {
                        if !mine.iter().any(|(m, _, _)| *m == item) {
                            mine.push((item, site.clone(), name.clone()));
                        }
                    }
                }
            }
            held.push((i, mine));
        }
        // An object several threads reach (the engine, a shared session factory), or a module
        // global of the code holding it (an engine made at import), is no item.
        let globals: HashSet<usize> = raw
            .iter()
            .flat_map(|rt| rt.frames.iter())
            .filter(|f| !library_frame(&f.code.filename))
            .filter_map(|f| super::multiprocessing::frame_globals(self.walker, f))
            .collect::<HashSet<usize>>()
            .into_iter()
            .flat_map(|d| objs.dict_entries(d).unwrap_or_default())
            .map(|(_, v)| v)
            .collect();
        let mut seen: HashMap<usize, usize> = HashMap::new();
        for (_, mine) in &held {
            for (item, _, _) in mine {
                *seen.entry(*item).or_default() += 1;
            }
        }
        let pid = self.pid;
        let id = lock_id(pid, q);
        let owner_name = objs.type_name(owner).ok();
        let mut holders = Vec::new();
        for (i, mine) in held {
            let private = |m: &usize| seen[m] == 1 && !globals.contains(m);
            for (_, site, name) in mine.into_iter().filter(|(m, _, _)| private(m)) {
                holders.push(Holder {
                    thread: Some(threads[i].id.clone()),
                    task: None,
                    process: None,
                    owner_ident: None,
                    evidence: Evidence::Checkout,
                    site: Some(site.clone()),
                    count: None,
                    call_path: Vec::new(),
                });
                threads[i].holds.push(Hold {
                    lock: id.clone(),
                    evidence: Evidence::Checkout,
                    site: Some(site),
                    name,
                });
            }
        }
        // A waiter waits where its own code asked the pool, not in the library's `get`.
        for t in threads.iter_mut().filter(|t| waiters.contains(&t.id)) {
            let Some(site) = t
                .frames
                .iter()
                .find(|f| !library_frame(&f.file))
                .map(|f| f.site())
            else {
                continue;
            };
            if let Some(w) = t.waits_for.as_mut() {
                w.site = Some(site.clone());
            }
            if let Some(w) = self
                .locks
                .get_mut(&q)
                .and_then(|l| l.waiters.iter_mut().find(|w| w.thread == t.id))
            {
                w.site = Some(site);
            }
        }
        let lock = self.locks.get_mut(&q).unwrap();
        lock.kind = LockKind::Pool;
        lock.permits = Some(Permits {
            total: Some(total),
            free: Some(0),
        });
        lock.locked = Some(true);
        lock.holders = holders;
        if let Some(ty) = owner_name.filter(|_| owner != q) {
            let frame = lock
                .names
                .first()
                .map(|n| n.frame.clone())
                .unwrap_or_default();
            lock.names.insert(
                0,
                LockName {
                    name: ty,
                    frame,
                    how: NameHow::Local,
                },
            );
        }
    }

    /// The object that owns queue `q` as its pool: the `self` of a waiter's frame one of whose
    /// attributes is the queue (`QueuePool._pool`, `HTTPConnectionPool.pool`).
    fn pool_owner(
        &self,
        q: usize,
        raw: &[RawThread],
        threads: &[Thread],
        waiters: &[String],
    ) -> Option<usize> {
        let objs = self.objs();
        raw.iter()
            .zip(threads)
            .filter(|(_, t)| waiters.contains(&t.id))
            .flat_map(|(rt, _)| rt.frames.iter())
            .filter_map(|f| self.walker.local(f, "self"))
            .filter(|s| *s != q)
            .find(|s| {
                objs.instance_attrs(*s)
                    .unwrap_or_default()
                    .iter()
                    .any(|(_, v)| *v == q)
            })
    }

    /// The nearest objects, zero to `MAX_STEPS - 1` attribute steps from `start`, whose next
    /// step is one of `targets` (the item a path passes through last). Instance and `__slots__` attributes are followed; nothing else.
    fn items_reaching(&self, start: usize, targets: &HashSet<usize>) -> Vec<usize> {
        let objs = self.objs();
        if targets.contains(&start) {
            return Vec::new();
        }
        let mut found = Vec::new();
        let mut seen: HashSet<usize> = HashSet::from([start]);
        let mut layer = vec![start];
        for _ in 0..MAX_STEPS {
            let mut next = Vec::new();
            for o in layer {
                if matches!(
                    objs.type_name_rc(o).as_deref(),
                    Ok("module" | "type" | "function" | "dict" | "list" | "tuple" | "str")
                ) {
                    continue;
                }
                let mut attrs = objs.instance_attrs(o).unwrap_or_default();
                attrs.extend(objs.slot_attrs(o));
                for (_, v) in attrs.into_iter().take(MAX_ATTRS) {
                    if targets.contains(&v) {
                        if !found.contains(&o) {
                            found.push(o);
                        }
                    } else if seen.insert(v) {
                        next.push(v);
                    }
                }
            }
            // The nearest items only: a pooled connection also reaches the pool through its
            // own record, one step further.
            if !found.is_empty() {
                break;
            }
            layer = next;
        }
        found
    }
}
