//! The `asyncio.Lock`s and `asyncio.Semaphore`s tasks hold (through `async with`, from the
//! value stack) and wait for, with their holders, waiters and (semaphores) permits: `_value`
//! free, a `BoundedSemaphore`'s `_bound_value` total. Permits taken beyond the holders found
//! (by `async with`, or a bare `acquire()` whose `release()` is ahead: `acquired`) have an
//! unknown holder.

use std::collections::HashMap;

use crate::cpython::layout::common::METHOD_SELF;
use crate::model::{
    lock_id, Evidence, Hold, Holder, Lock, LockKind, LockName, NameHow, Permits, Task,
    TaskWaitKind, Waiter,
};

use super::ids::task_id;
use super::reader::Reader;
use super::types::Kind;

/// Where an `asyncio.Lock` stands, as seen from the tasks.
#[derive(Default)]
pub(super) struct LockSeen {
    /// Holder task, the `async with`'s site and the name it used, and how it was known.
    pub(super) holders: Vec<(usize, Option<String>, Option<String>, Evidence)>,
    pub(super) names: Vec<LockName>,
    /// An `asyncio.Semaphore` (or `BoundedSemaphore`) rather than a `Lock`.
    pub(super) semaphore: bool,
}

impl LockSeen {
    /// Note `task` as a holder of `lock` (at `site`, through `name`) and give the task's hold.
    pub(super) fn held_by(
        &mut self,
        pid: i32,
        (task, lock): (usize, usize),
        site: String,
        name: Option<String>,
        evidence: Evidence,
    ) -> Hold {
        self.holders
            .push((task, Some(site.clone()), name.clone(), evidence));
        if let Some(n) = &name {
            let ln = LockName {
                how: NameHow::Local,
                name: n.clone(),
                frame: site.clone(),
            };
            if !self.names.contains(&ln) {
                self.names.push(ln);
            }
        }
        Hold {
            lock: lock_id(pid, lock),
            evidence,
            site: Some(site),
            name,
        }
    }
}

/// Counts above this are no semaphore's: a torn or foreign read.
const MAX_PERMITS: i64 = 1 << 20;

impl Reader<'_, '_, '_> {
    /// The `asyncio.Lock` or `Semaphore` whose bound `__aexit__` an `async with` keeps on the
    /// value stack, and whether it is a semaphore.
    pub(super) fn asyncio_lock_in_slot(&mut self, slot: usize) -> Option<(usize, bool)> {
        let obj = if self.kind(slot)? != Kind::Method {
            // 3.14+: the slot holds the context manager itself.
            slot
        } else {
            self.mem().ptr(slot + METHOD_SELF).ok()?
        };
        if self.is_asyncio_lock(obj) {
            Some((obj, false))
        } else {
            self.is_asyncio_semaphore(obj).then_some((obj, true))
        }
    }

    /// An `asyncio.Semaphore` or `BoundedSemaphore` (or a subclass) with its `_value`.
    pub(super) fn is_asyncio_semaphore(&mut self, obj: usize) -> bool {
        self.ty(obj).and_then(|i| i.primitive) == Some(TaskWaitKind::Semaphore)
            && self.permit_count(obj, "_value").is_some()
    }

    fn permit_count(&mut self, obj: usize, attr: &str) -> Option<u64> {
        let objs = &self.walker.objs;
        let v = objs.int(objs.attr(obj, attr).ok()??).ok()?;
        (0..=MAX_PERMITS).contains(&v).then_some(v as u64)
    }

    pub(super) fn is_asyncio_lock(&mut self, obj: usize) -> bool {
        self.ty(obj).and_then(|i| i.primitive) == Some(TaskWaitKind::Lock)
            && self
                .walker
                .objs
                .attr(obj, "_locked")
                .ok()
                .flatten()
                .is_some()
    }

    /// An `asyncio.Lock`'s `_locked`, where it reads as an int.
    fn lock_flag(&mut self, obj: usize) -> Option<bool> {
        let objs = &self.walker.objs;
        let flag = objs.attr(obj, "_locked").ok()??;
        objs.int(flag).ok().map(|v| v != 0)
    }

    pub(super) fn asyncio_lock_locked(&mut self, obj: usize) -> bool {
        self.lock_flag(obj) == Some(true)
    }

    /// `asyncio.Lock`s and semaphores seen in waits and holds, with their holder tasks.
    pub(super) fn locks(&mut self, seen: HashMap<usize, LockSeen>, tasks: &[Task]) -> Vec<Lock> {
        let mut addrs: Vec<usize> = seen.keys().copied().collect();
        addrs.sort();
        let mut out = Vec::new();
        for addr in addrs {
            let s = &seen[&addr];
            let permits = if s.semaphore {
                let free = self.permit_count(addr, "_value");
                // A plain Semaphore has no total: `release()` may add permits.
                let total = self.permit_count(addr, "_bound_value");
                Some(Permits { total, free })
            } else {
                None
            };
            let locked = self
                .lock_flag(addr)
                .or_else(|| permits.and_then(|p| p.free).map(|free| free == 0));
            let mut holders: Vec<Holder> = s
                .holders
                .iter()
                .map(|(t, site, _, evidence)| Holder {
                    thread: None,
                    task: Some(task_id(self.pid, *t)),
                    process: None,
                    owner_ident: None,
                    evidence: *evidence,
                    site: site.clone(),
                    count: None,
                    call_path: Vec::new(),
                })
                .collect();
            // Permits taken beyond the holders found were taken where nothing records it.
            let unexplained = match permits {
                Some(Permits {
                    total: Some(t),
                    free: Some(f),
                }) => t.saturating_sub(f) > holders.len() as u64,
                Some(_) => false,
                None => holders.is_empty() && locked == Some(true),
            };
            if unexplained {
                // A bare acquire() leaves no trace of its owner.
                holders.push(Holder::unknown());
            }
            let id = lock_id(self.pid, addr);
            let waiters = tasks
                .iter()
                .filter(|t| t.waits_for.as_ref().and_then(|w| w.target.as_ref()) == Some(&id))
                .map(|t| Waiter {
                    thread: t.id.clone(),
                    evidence: t.waits_for.as_ref().unwrap().evidence,
                    site: t.waits_for.as_ref().unwrap().site.clone(),
                })
                .collect();
            out.push(Lock {
                name: None,
                permits,
                contradictions: Vec::new(),
                python_type: None,
                readers: None,
                id,
                pid: self.pid,
                address: format!("{addr:#x}"),
                kind: if s.semaphore {
                    LockKind::AsyncioSemaphore
                } else {
                    LockKind::AsyncioLock
                },
                names: s.names.clone(),
                locked,
                holders,
                waiters,
                module: None,
                shared: None,
            });
        }
        out
    }
}
