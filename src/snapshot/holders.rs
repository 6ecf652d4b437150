//! Who holds a lock: the lock behind an active `with` block's exit slot, and owner fields
//! read from memory (RLock owners, import module locks). A locked lock with no known holder
//! keeps an `unknown` holder; nothing here guesses.

use std::collections::HashMap;

use super::builder::*;
use crate::cpython::layout::common::*;
use crate::probe;

impl<'w, 'a> Builder<'w, 'a> {
    /// The lock behind a `with` block's `__exit__` slot, if it is one gridlock models:
    /// a builtin method's `__self__` (Lock, RLock), or a `Condition`'s inner lock.
    pub(super) fn lock_in_exit_slot(&self, slot: usize) -> Option<(usize, LockKind)> {
        let objs = self.objs();
        let owner = match objs.type_name(slot).ok()?.as_str() {
            "builtin_function_or_method" | "method" => objs.mem.ptr(slot + METHOD_SELF).ok()?,
            _ => slot,
        };
        self.lock_behind(owner)
    }

    /// The lock an object is or wraps: a Lock or RLock (or the probe's wrapper of one), or a
    /// `Condition`'s inner lock.
    pub(super) fn lock_behind(&self, owner: usize) -> Option<(usize, LockKind)> {
        let objs = self.objs();
        let owner = probe::unwrap(objs, owner);
        if let Some(kind) = self.lock_kind(owner) {
            return Some((owner, kind));
        }
        match objs.type_name_rc(owner).ok()?.as_ref() {
            "Condition" => {
                let inner = probe::unwrap(objs, objs.attr(owner, "_lock").ok()??);
                self.lock_kind(inner).map(|k| (inner, k))
            }
            // `with sem:` holds one permit of a counting semaphore.
            "Semaphore" | "BoundedSemaphore" => Some((owner, LockKind::Semaphore)),
            _ => None,
        }
    }

    /// Owners read from memory: RLock owner fields and import module locks. Plain locks that
    /// are locked with no holder found keep an `unknown` holder.
    pub(super) fn resolve_owners(&mut self, threads: &mut [Thread]) {
        let pid = self.pid;
        let mut holders_by_lock: HashMap<String, Vec<(String, Hold)>> = HashMap::new();
        for t in threads.iter() {
            for h in &t.holds {
                holders_by_lock
                    .entry(h.lock.clone())
                    .or_default()
                    .push((t.id.clone(), h.clone()));
            }
        }
        let addrs: Vec<usize> = self.locks.keys().copied().collect();
        for addr in addrs {
            let kind = self.locks[&addr].kind;
            let mut holders: Vec<Holder> = Vec::new();
            let mut locked = None;
            let mut permits = None;
            let objs = self.objs();
            let memory_owner = match kind {
                LockKind::RLock => {
                    let state = objs.rlock_state(addr);
                    locked = state.map(|s| s.count > 0);
                    state
                        .filter(|s| s.count > 0 && s.owner != 0)
                        .map(|s| (s.owner, Some(s.count)))
                }
                LockKind::ModuleLock => {
                    let owner = objs
                        .attr(addr, "owner")
                        .ok()
                        .flatten()
                        .and_then(|o| objs.int(o).ok());
                    let count = objs.attr(addr, "count").ok().flatten().and_then(|c| {
                        objs.int(c)
                            .ok()
                            .map(|v| v as u64)
                            .or_else(|| objs.list_items(c).ok().map(|l| l.len() as u64))
                    });
                    locked = Some(owner.is_some() && count.unwrap_or(1) > 0);
                    owner
                        .filter(|_| count.unwrap_or(1) > 0)
                        .map(|o| (o as u64, count))
                }
                LockKind::Lock => {
                    locked = objs.lock_held(addr);
                    None
                }
                LockKind::Semaphore => {
                    permits = super::permits::semaphore(objs, addr);
                    locked = permits.and_then(|p| p.free).map(|free| free == 0);
                    None
                }
                _ => None,
            };
            let id = lock_id(pid, addr);
            if let Some((owner, count)) = memory_owner {
                let tid = thread_id(pid, owner);
                // glibc reuses thread idents (pthread_t is the thread's descriptor address). A
                // live thread with the owner's ident that sleeps on this very lock cannot be its
                // owner (RLock and module locks are reentrant): the owner was an exited thread.
                let waits_on_it = self.locks[&addr].waiters.iter().any(|w| w.thread == tid);
                let live = self.live_idents.contains(&owner) && !waits_on_it;
                let site = holders_by_lock
                    .get(&id)
                    .and_then(|v| v.iter().find(|(t, _)| *t == tid))
                    .and_then(|(_, h)| h.site.clone());
                holders.push(Holder {
                    process: None,
                    thread: live.then(|| tid.clone()),
                    task: None,
                    owner_ident: Some(owner),
                    evidence: Evidence::Memory,
                    site,
                    count,
                    call_path: Vec::new(),
                });
                if live {
                    if let Some(t) = threads.iter_mut().find(|t| t.id == tid) {
                        if !t.holds.iter().any(|h| h.lock == id) {
                            let name = self.locks[&addr].names.first().map(|n| n.name.clone());
                            t.holds.push(Hold {
                                lock: id.clone(),
                                evidence: Evidence::Memory,
                                site: None,
                                name,
                            });
                        } else if let Some(h) = t.holds.iter_mut().find(|h| h.lock == id) {
                            h.evidence = Evidence::Memory;
                        }
                    }
                }
            }
            for (tid, h) in holders_by_lock.get(&id).into_iter().flatten() {
                if !holders
                    .iter()
                    .any(|x| x.thread.as_deref() == Some(tid.as_str()))
                    && kind != LockKind::RLock
                {
                    holders.push(Holder {
                        process: None,
                        thread: Some(tid.clone()),
                        task: None,
                        owner_ident: None,
                        evidence: h.evidence,
                        site: h.site.clone(),
                        count: None,
                        call_path: Vec::new(),
                    });
                }
            }
            if holders.is_empty() && locked == Some(true) {
                holders.push(Holder::unknown());
            }
            let lock = self.locks.get_mut(&addr).unwrap();
            lock.locked = locked.or(lock.locked);
            lock.permits = permits.or(lock.permits);
            lock.holders = holders;
        }
    }
}
