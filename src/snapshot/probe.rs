//! The opt-in probe's holder claims, checked against memory before they are used: a claim
//! memory contradicts is reported on the lock, never trusted.

use std::collections::{BTreeMap, HashMap};

use super::builder::*;
use crate::probe::{self, ProbeHold};

impl<'w, 'a> Builder<'w, 'a> {
    /// Holders the probe recorded, checked against memory first. A claim memory contradicts
    /// (an owner of an unlocked lock, an RLock whose owner field names another thread, more
    /// permits held than a BoundedSemaphore gave out) is reported on the lock and not used.
    pub(super) fn apply_probe(&mut self, threads: &mut [Thread], holds: &[ProbeHold]) {
        let pid = self.pid;
        let mut by_key: BTreeMap<usize, Vec<&ProbeHold>> = BTreeMap::new();
        for h in holds {
            by_key.entry(h.key).or_default().push(h);
        }
        let mut seqs: HashMap<(String, String), u64> = HashMap::new();
        for (key, claims) in &by_key {
            let key = *key;
            let Ok(ty) = self.objs().type_name(key) else {
                continue;
            };
            let asyncio = claims.iter().any(|c| c.task.is_some());
            let kind = match ty.as_str() {
                "_thread.lock" => LockKind::Lock,
                "_thread.RLock" => LockKind::RLock,
                "Semaphore" | "BoundedSemaphore" if asyncio => LockKind::AsyncioSemaphore,
                "Semaphore" | "BoundedSemaphore" => LockKind::Semaphore,
                "Lock" => LockKind::AsyncioLock,
                // Freed and its address reused by something else: nothing to attach it to.
                _ => continue,
            };
            let (locked, contradiction) = self.check_claims(key, kind, &ty, claims);
            let id = lock_id(pid, key);
            self.ensure_lock(key, kind);
            if let Some(memory) = contradiction {
                let lock = self.locks.get_mut(&key).unwrap();
                lock.locked = locked.or(lock.locked);
                for c in claims {
                    let tid = thread_id(pid, c.ident);
                    lock.contradictions.push(Contradiction {
                        evidence: Evidence::Probe,
                        thread: self.live_idents.contains(&c.ident).then_some(tid),
                        owner_ident: Some(c.ident),
                        site: Some(c.site.clone()),
                        claim: format!("held since {}", c.site),
                        memory: memory.clone(),
                    });
                }
                continue;
            }
            let lock = self.locks.get_mut(&key).unwrap();
            lock.locked = locked.or(lock.locked);
            lock.holders.retain(|h| h.evidence != Evidence::Unknown);
            for c in claims {
                let tid = thread_id(pid, c.ident);
                let live = self.live_idents.contains(&c.ident);
                let task = c.task.map(|t| format!("{pid}:task:{t:#x}"));
                seqs.insert((tid.clone(), id.clone()), c.seq);
                match lock
                    .holders
                    .iter_mut()
                    .find(|h| h.thread.as_deref() == Some(tid.as_str()) && h.task == task)
                {
                    // Memory or a `with` block already says so: the probe adds the site.
                    Some(h)
                        if !matches!(kind, LockKind::Semaphore | LockKind::AsyncioSemaphore) =>
                    {
                        if h.site.is_none() {
                            h.site = Some(c.site.clone());
                        }
                    }
                    _ => lock.holders.push(Holder {
                        process: None,
                        thread: live.then(|| tid.clone()),
                        owner_ident: Some(c.ident),
                        evidence: Evidence::Probe,
                        site: Some(c.site.clone()),
                        count: None,
                        call_path: Vec::new(),
                        task,
                    }),
                }
                if !live {
                    continue;
                }
                if let Some(t) = threads.iter_mut().find(|t| t.id == tid) {
                    match t.holds.iter_mut().find(|h| h.lock == id) {
                        Some(h) => {
                            if h.site.is_none() {
                                h.site = Some(c.site.clone());
                            }
                        }
                        None => t.holds.push(Hold {
                            lock: id.clone(),
                            evidence: Evidence::Probe,
                            site: Some(c.site.clone()),
                            name: None,
                        }),
                    }
                }
            }
        }
        // A Condition's holder is its lock's holder.
        let conditions: Vec<usize> = self
            .locks
            .iter()
            .filter(|(_, l)| l.kind == LockKind::Condition && l.holders.is_empty())
            .map(|(a, _)| *a)
            .collect();
        for cond in conditions {
            let Some(inner) = self.objs().attr(cond, "_lock").ok().flatten() else {
                continue;
            };
            let inner = probe::unwrap(self.objs(), inner);
            let Some(inner_lock) = self.locks.get(&inner) else {
                continue;
            };
            let from_inner: Vec<Holder> = inner_lock
                .holders
                .iter()
                .filter(|h| h.evidence == Evidence::Probe || h.evidence == Evidence::Memory)
                .cloned()
                .collect();
            let lock = self.locks.get_mut(&cond).unwrap();
            lock.locked = Some(!from_inner.is_empty());
            lock.holders = from_inner;
        }
        // Every hold the probe saw has a sequence number: innermost (newest) first.
        for t in threads.iter_mut() {
            let keyed: Option<Vec<u64>> = t
                .holds
                .iter()
                .map(|h| seqs.get(&(t.id.clone(), h.lock.clone())).copied())
                .collect();
            if let Some(keys) = keyed {
                let mut paired: Vec<(u64, Hold)> =
                    keys.into_iter().zip(t.holds.drain(..)).collect();
                paired.sort_by(|a, b| b.0.cmp(&a.0));
                t.holds = paired.into_iter().map(|(_, h)| h).collect();
            }
        }
    }

    /// Whether memory agrees with the probe's claims on one primitive: (locked, contradiction).
    pub(super) fn check_claims(
        &self,
        key: usize,
        kind: LockKind,
        ty: &str,
        claims: &[&ProbeHold],
    ) -> (Option<bool>, Option<String>) {
        let objs = self.objs();
        let attr_int = |name: &str| {
            objs.attr(key, name)
                .ok()
                .flatten()
                .and_then(|v| objs.int(v).ok())
        };
        match kind {
            LockKind::Lock => match objs.lock_held(key) {
                Some(false) => (Some(false), Some("the lock is unlocked".into())),
                Some(true) => (Some(true), None),
                None => (None, None),
            },
            LockKind::RLock => {
                let Some(state) = objs.rlock_state(key) else {
                    return (None, None);
                };
                let (owner, count) = (state.owner, state.count);
                if count == 0 {
                    (Some(false), Some("the RLock is unlocked".into()))
                } else if claims.iter().any(|c| c.ident != owner) {
                    (
                        Some(true),
                        Some(format!("the RLock's owner field is thread ident {owner}")),
                    )
                } else {
                    (Some(true), None)
                }
            }
            LockKind::Semaphore => {
                let value = attr_int("_value");
                let initial = attr_int("_initial_value").filter(|_| ty == "BoundedSemaphore");
                match (value, initial) {
                    (Some(v), Some(i)) if (claims.len() as i64) > i - v => (
                        Some(v == 0),
                        Some(format!("{} of {i} permits are taken", i - v)),
                    ),
                    (v, _) => (v.map(|v| v == 0), None),
                }
            }
            LockKind::AsyncioLock => match attr_int("_locked") {
                Some(0) => (Some(false), Some("the asyncio.Lock is unlocked".into())),
                Some(_) => (Some(true), None),
                None => (None, None),
            },
            _ => (attr_int("_value").map(|v| v == 0), None),
        }
    }
}
