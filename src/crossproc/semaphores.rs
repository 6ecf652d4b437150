//! `shm_futex`: a futex in a shared file mapping is a `multiprocessing` semaphore, identified
//! by the mapping's (device, inode, offset) in every process; its holders are the processes
//! whose `SemLock` has `count > 0` (`last_tid` names the thread).

use crate::memory::ReadMemory;
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::cpython::objects::Objects;
use crate::model::*;
use crate::snapshot::{self, read_semlock, MpWait, SemLockObj, Session, Snapshot};
use crate::target::procfs::Mapping;

use super::nodes::thread_mut;

/// The shared semaphore a futex address lies in: (device, inode, offset in the file).
pub(super) type SemKey = (String, u64, u64);

pub(super) fn sem_key(maps: &[Mapping], addr: usize) -> Option<(SemKey, String)> {
    let m = maps
        .iter()
        .find(|m| m.shared_file() && m.start <= addr && addr < m.end)?;
    let off = m.offset + (addr - m.start) as u64;
    Some(((m.device.clone(), m.inode, off), m.path.clone()))
}

pub(super) fn link_semaphores(
    out: &mut Snapshot,
    views: &[(i32, snapshot::MpView)],
    maps: &HashMap<i32, Vec<Mapping>>,
    targets: &BTreeMap<i32, Session>,
    python: &HashSet<i32>,
) {
    let empty = Vec::new();
    let maps_of = |p: i32| maps.get(&p).unwrap_or(&empty);
    // Waits grouped by semaphore.
    let mut groups: BTreeMap<SemKey, Vec<(i32, &MpWait, String)>> = BTreeMap::new();
    for (pid, v) in views {
        for w in &v.waits {
            if let Some((key, path)) = sem_key(maps_of(*pid), w.futex) {
                groups.entry(key).or_default().push((*pid, w, path));
            }
        }
    }
    for (key, waits) in groups {
        let (dev, inode, offset) = key.clone();
        let id = format!("shm:{dev}:{inode}+{offset:#x}");
        let (wpid, first, path) = (waits[0].0, waits[0].1, waits[0].2.clone());
        let mapped_by: Vec<i32> = maps
            .iter()
            .filter(|(_, ms)| ms.iter().any(|m| m.device == dev && m.inode == inode))
            .map(|(p, _)| *p)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        // Every SemLock object for this semaphore, per process: reachable ones, and (for forked
        // children, which share their parent's addresses) the waiters' objects at the same
        // address, each verified by where its handle points.
        let known: Vec<usize> = waits.iter().filter_map(|(_, w, _)| w.semlock).collect();
        let mut per_process: BTreeMap<i32, Vec<SemLockObj>> = BTreeMap::new();
        for &p in &mapped_by {
            let Some(t) = targets.get(&p) else { continue };
            let objs = Objects::new(&t.mem, &t.layout);
            let reachable = views
                .iter()
                .find(|(vp, _)| *vp == p)
                .map(|(_, v)| v.semlocks.clone())
                .unwrap_or_default();
            let same_address = known.iter().filter_map(|a| read_semlock(&objs, *a));
            let mut found: Vec<SemLockObj> = reachable
                .into_iter()
                .chain(same_address)
                .filter(|s| sem_key(maps_of(p), s.handle).map(|k| k.0) == Some(key.clone()))
                .collect();
            found.sort_by_key(|s| s.addr);
            found.dedup_by_key(|s| s.addr);
            if !found.is_empty() {
                per_process.insert(p, found);
            }
        }
        let sample = per_process.values().flatten().next().cloned().or_else(|| {
            let t = targets.get(&wpid)?;
            read_semlock(&Objects::new(&t.mem, &t.layout), first.semlock?)
        });
        let notify = waits.iter().any(|(_, w, _)| w.notify);
        let kind = match &sample {
            _ if notify => LockKind::MpCondition,
            Some(s) if s.kind == 0 => LockKind::MpRLock,
            Some(s) if s.maxvalue == 1 => LockKind::MpLock,
            Some(_) => LockKind::MpSemaphore,
            None => LockKind::SharedSemaphore,
        };
        let value = targets
            .get(&wpid)
            .and_then(|t| t.mem.u32_at(first.futex).ok());
        let mut holders = Vec::new();
        if !notify {
            for (p, objs) in &per_process {
                let Some(s) = objs.iter().find(|s| s.count > 0) else {
                    continue;
                };
                let tid = snapshot::thread_id(*p, s.last_tid);
                let live = out.threads.iter().any(|t| t.id == tid);
                let hold = views
                    .iter()
                    .find(|(vp, _)| vp == p)
                    .and_then(|(_, v)| {
                        v.holds
                            .iter()
                            .find(|h| h.thread == tid && objs.iter().any(|o| o.addr == h.semlock))
                    })
                    .cloned();
                holders.push(Holder {
                    task: None,
                    thread: live.then(|| tid.clone()),
                    process: Some(*p),
                    owner_ident: Some(s.last_tid),
                    evidence: Evidence::Memory,
                    site: hold.as_ref().map(|h| h.site.clone()),
                    count: Some(s.count as u64),
                    call_path: Vec::new(),
                });
                if live {
                    let name = hold.as_ref().and_then(|h| h.name.clone());
                    if let Some(t) = thread_mut(out, &tid) {
                        t.holds.push(Hold {
                            lock: id.clone(),
                            evidence: if hold.is_some() {
                                Evidence::ValueStack
                            } else {
                                Evidence::Memory
                            },
                            site: hold.map(|h| h.site),
                            name,
                        });
                    }
                }
            }
        }
        // Every process that maps the semaphore was read and none holds it: the holder exited.
        let all_checked = mapped_by
            .iter()
            .all(|p| python.contains(p) && per_process.contains_key(p));
        let lock_like = matches!(kind, LockKind::MpLock | LockKind::MpRLock);
        let holder_exited = lock_like && value == Some(0) && holders.is_empty() && all_checked;
        if !notify && holders.is_empty() && !holder_exited {
            holders.push(Holder::unknown());
        }
        let mut names = Vec::new();
        let mut waiters = Vec::new();
        for (_, w, _) in &waits {
            if let (Some(n), Some(s)) = (&w.name, &w.site) {
                let ln = LockName {
                    how: NameHow::Local,
                    name: n.clone(),
                    frame: s.clone(),
                };
                if !names.contains(&ln) {
                    names.push(ln);
                }
            }
            waiters.push(Waiter {
                thread: w.thread.clone(),
                evidence: Evidence::ShmFutex,
                site: w.site.clone(),
            });
            if let Some(t) = thread_mut(out, &w.thread) {
                let timed = t.waits_for.as_ref().map(|x| x.timed).unwrap_or(false);
                t.waits_for = Some(Wait {
                    timeout_s: None,
                    waited_s: None,
                    kind: if notify {
                        WaitKind::Notify
                    } else {
                        WaitKind::Lock
                    },
                    target: Some(id.clone()),
                    evidence: Evidence::ShmFutex,
                    site: w.site.clone(),
                    name: w.name.clone(),
                    via: w.via.clone(),
                    timed,
                    futex: Some(format!("{:#x}", w.futex)),
                    targets: Vec::new(),
                });
                t.state = if notify {
                    ThreadState::ConditionWait
                } else {
                    ThreadState::LockWait
                };
                t.blocked = !timed;
            }
        }
        out.locks.push(Lock {
            name: None,
            permits: None,
            contradictions: Vec::new(),
            python_type: None,
            readers: None,
            id,
            pid: wpid,
            address: format!("{:#x}", first.futex),
            kind,
            names,
            locked: value.map(|v| v == 0),
            holders,
            waiters,
            module: None,
            shared: Some(Shared {
                device: Some(dev),
                inode: Some(inode),
                offset: Some(offset),
                path: Some(path),
                value,
                processes: mapped_by,
                peer_inode: None,
                holder_exited,
                commands: Default::default(),
            }),
        });
    }
}
