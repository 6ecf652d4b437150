//! The `asyncio.Lock`s tasks hold (through `async with`, from the value stack) and wait
//! for, with their holders and waiters. A lock held by a bare `acquire()` has an unknown
//! holder: nothing records it.

use std::collections::HashMap;

use crate::cpython::layout::common::METHOD_SELF;
use crate::model::{
    lock_id, Evidence, Holder, Lock, LockKind, LockName, Task, TaskWaitKind, Waiter,
};

use super::ids::task_id;
use super::reader::Reader;
use super::types::Kind;

/// Where an `asyncio.Lock` stands, as seen from the tasks.
#[derive(Default)]
pub(super) struct LockSeen {
    pub(super) holders: Vec<(usize, Option<String>, Option<String>)>,
    pub(super) names: Vec<LockName>,
}

impl Reader<'_, '_, '_> {
    /// The `asyncio.Lock` whose bound `__aexit__` an `async with` keeps on the value stack.
    pub(super) fn asyncio_lock_in_slot(&mut self, slot: usize) -> Option<usize> {
        if self.kind(slot)? != Kind::Method {
            // 3.14+: the slot holds the context manager itself.
            return self.is_asyncio_lock(slot).then_some(slot);
        }
        let owner = self.mem().ptr(slot + METHOD_SELF).ok()?;
        self.is_asyncio_lock(owner).then_some(owner)
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

    /// `asyncio.Lock`s seen in waits and holds, with their holder tasks.
    pub(super) fn locks(&mut self, seen: HashMap<usize, LockSeen>, tasks: &[Task]) -> Vec<Lock> {
        let mut addrs: Vec<usize> = seen.keys().copied().collect();
        addrs.sort();
        let mut out = Vec::new();
        for addr in addrs {
            let s = &seen[&addr];
            let locked = self
                .walker
                .objs
                .attr(addr, "_locked")
                .ok()
                .flatten()
                .and_then(|b| self.walker.objs.int(b).ok())
                .map(|v| v != 0);
            let mut holders: Vec<Holder> = s
                .holders
                .iter()
                .map(|(t, site, _)| Holder {
                    thread: None,
                    task: Some(task_id(self.pid, *t)),
                    process: None,
                    owner_ident: None,
                    evidence: Evidence::ValueStack,
                    site: site.clone(),
                    count: None,
                })
                .collect();
            if holders.is_empty() && locked == Some(true) {
                // A bare acquire() leaves no trace of its owner.
                holders.push(Holder {
                    thread: None,
                    task: None,
                    process: None,
                    owner_ident: None,
                    evidence: Evidence::Unknown,
                    site: None,
                    count: None,
                });
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
                permits: None,
                contradictions: Vec::new(),
                id,
                pid: self.pid,
                address: format!("{addr:#x}"),
                kind: LockKind::AsyncioLock,
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
