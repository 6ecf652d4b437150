//! Which name does the program itself give a lock? A module global (`checking`), an
//! attribute path from one (`checking.lock`, `service._stock_lock`, through instance dicts,
//! `__slots__` and class attributes), an entry of a module-level dict, list or tuple
//! (`LOCKS['users']`), or else an attribute of the `self` a holding or waiting thread's
//! frame holds (`InventoryService._stock_lock`).
//!
//! The same for what an asyncio task awaits that is no lock (an Event, Condition, Queue or
//! bare Future) and for waited `concurrent.futures.Future`s.
//!
//! Found from outside by one breadth-first walk (`name_walk`), from the `f_globals` of the
//! blocked threads' frames (names there are unqualified) and then every module of
//! `sys.modules` (qualified: `logging._lock`); the snapshot's notes say when it stopped at its
//! bounds. That walk runs in full only when a lock a finding can name (waited on, or held by
//! no live thread) is unnamed; else what tasks await gets a short, silent glance. A name is
//! only given when every step of its path was read in this sample: a path found in an
//! earlier sample is read again, step by step, before it is used. This file never
//! decides who holds or waits, and knows no CPython version.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::multiprocessing::frame_globals;
use super::name_walk::{hop_holds, search, Bounds, Found, Root, BOUNDS};
use super::writes::is_library_file;
use crate::cpython::threads::{RawThread, Walker};
use crate::model::{
    lock_address, short_file, Framework, Lock, LockKind, LockName, NameHow, Task, TaskWaitKind,
    Thread,
};

pub use super::name_walk::NOTE_PREFIX;

/// What the walk keeps from one sample to the next: each named lock's path (read again
/// before use) and the locks a finished walk did not reach (not searched again).
#[derive(Default)]
pub struct NameCache {
    paths: HashMap<usize, Found>,
    unreached: HashSet<usize>,
    /// Walks that stopped early without reaching a lock, per lock.
    tries: HashMap<usize, u8>,
    /// When the last walk began: `record` meets new locks at many samples (threads come and
    /// go), and walks at most once per `SEARCH_EVERY` for them.
    last_search: Option<Instant>,
    /// When each future or awaited object now waited on was first seen waited on.
    first_waited: HashMap<usize, Instant>,
}

/// A walk for objects no finding can name (what tasks and threads wait on with no lock
/// contended): cheap, and silent when it stops early.
const GLANCE: Bounds = Bounds {
    objects: 5_000,
    time: Duration::from_millis(25),
};

/// The least time between two walks of one session.
const SEARCH_EVERY: Duration = Duration::from_secs(1);
/// Walks stopped early at their bounds after which a lock no walk reached is left unnamed.
const MAX_TRIES: u8 = 3;

/// Whether the kind is a Python object a global can refer to.
fn nameable(kind: LockKind) -> bool {
    !matches!(
        kind,
        LockKind::SharedSemaphore
            | LockKind::Pipe
            | LockKind::Socket
            | LockKind::Children
            | LockKind::Gil
            | LockKind::PthreadMutex
            | LockKind::PthreadRwlock
            | LockKind::FileLock
            | LockKind::ModuleLock
    )
}

/// What a program-wide name is given to: a `locks[]` entry, or the wait of a task whose
/// awaited object is no `locks[]` entry (`TaskWait.program_name`).
#[derive(Clone, Copy, PartialEq)]
enum Named {
    Lock(usize),
    Wait(usize),
}

/// The awaited object of an asyncio task's wait that `locks[]` does not hold: an Event,
/// Condition, Queue or Semaphore (`PID:event:0x...`), or a bare Future.
fn awaited_object(task: &Task) -> Option<usize> {
    if task.framework != Framework::Asyncio {
        return None;
    }
    let w = task.waits_for.as_ref()?;
    let hex = match (w.kind, &w.target) {
        (TaskWaitKind::Future, None) => w.future.as_deref()?,
        (
            TaskWaitKind::Event
            | TaskWaitKind::Condition
            | TaskWaitKind::Queue
            | TaskWaitKind::Semaphore,
            Some(t),
        ) if lock_address(t).is_none() => t.rsplit(':').next()?,
        _ => return None,
    };
    usize::from_str_radix(hex.trim_start_matches("0x"), 16).ok()
}

/// Give every Python lock of the sample, and every object a task awaits that is no lock,
/// its program-wide name where one is read: sets `Lock.name` and adds the name to `names[]`
/// with how it was found (`TaskWait.program_name` for a task's). Returns a note when the
/// walk stopped at its bounds before it had looked everywhere.
pub fn name_locks(
    walker: &Walker,
    interp: usize,
    raw: &[RawThread],
    threads: &[Thread],
    locks: &mut [Lock],
    tasks: &mut [Task],
    cache: &mut NameCache,
) -> Option<String> {
    let objs = &walker.objs;
    let mut targets: HashMap<usize, Vec<Named>> = HashMap::new();
    // Futures and awaited objects come and go by the thousand in a busy program: after a
    // session's first walk, only those waited on since `SEARCH_EVERY` are searched for.
    let mut fleeting: HashSet<usize> = HashSet::new();
    for (i, l) in locks.iter().enumerate() {
        if l.shared.is_some() || !nameable(l.kind) {
            continue;
        }
        if let Ok(a) = usize::from_str_radix(l.address.trim_start_matches("0x"), 16) {
            targets.entry(a).or_default().push(Named::Lock(i));
            if l.kind == LockKind::Future {
                fleeting.insert(a);
            }
        }
    }
    for (i, t) in tasks.iter().enumerate() {
        if let Some(a) = awaited_object(t) {
            targets.entry(a).or_default().push(Named::Wait(i));
            fleeting.insert(a);
        }
    }
    let now = Instant::now();
    cache.first_waited.retain(|a, _| fleeting.contains(a));
    for &a in &fleeting {
        cache.first_waited.entry(a).or_insert(now);
    }
    if targets.is_empty() {
        return None;
    }
    let mut found: HashMap<usize, Found> = HashMap::new();
    for &addr in targets.keys() {
        if let Some(f) = cache.paths.get(&addr) {
            if f.hops.iter().all(|h| hop_holds(objs, h)) {
                found.insert(addr, f.clone());
            }
        }
    }
    let first_walk = cache.last_search.is_none();
    let wanted: HashSet<usize> = targets
        .keys()
        .filter(|a| !found.contains_key(a) && !cache.unreached.contains(a))
        .filter(|a| {
            first_walk || !fleeting.contains(a) || cache.first_waited[a].elapsed() >= SEARCH_EVERY
        })
        .copied()
        .collect();
    let mut note = None;
    let due = cache
        .last_search
        .is_none_or(|t| t.elapsed() >= SEARCH_EVERY);
    if !wanted.is_empty() && due {
        cache.last_search = Some(Instant::now());
        let roots = roots(walker, interp, raw, threads);
        // The full walk, and its note when it stops early, only for an object a finding can
        // name; what healthy code waits on (an idle worker's local queue) gets a glance.
        let live: HashSet<&str> = threads.iter().map(|t| t.id.as_str()).collect();
        let awaited: HashSet<&str> = tasks
            .iter()
            .filter_map(|t| t.waits_for.as_ref()?.target.as_deref())
            .collect();
        let findable = findable_locks(locks, &live, &awaited);
        let contended = wanted.iter().any(|a| {
            targets[a]
                .iter()
                .any(|n| matches!(n, Named::Lock(i) if findable.contains(i)))
        });
        let bounds = if contended { BOUNDS } else { GLANCE };
        let search = search(objs, &roots, wanted.clone(), bounds);
        note = search.note().filter(|_| contended);
        let complete = search.stopped.is_none();
        for (addr, f) in search.found {
            cache.paths.insert(addr, f.clone());
            found.insert(addr, f);
        }
        // Not searched again this session once a walk looked everywhere, nor after
        // `MAX_TRIES` walks that stopped early: `record` must not pay the bound at every
        // sample. A first walk often stops early (nothing of the target read yet), and a
        // lock it missed then would keep its local name for the whole recording.
        for &a in wanted.iter().filter(|a| !found.contains_key(a)) {
            let tries = cache.tries.entry(a).or_default();
            *tries += 1;
            if complete || *tries >= MAX_TRIES {
                cache.unreached.insert(a);
            }
        }
    }
    for (addr, f) in found {
        for named in &targets[&addr] {
            let frame = format!("module {}", f.origin);
            match *named {
                Named::Lock(i) => apply(&mut locks[i], f.name.clone(), f.how, frame),
                Named::Wait(i) => {
                    if let Some(w) = tasks[i].waits_for.as_mut() {
                        w.program_name = Some(LockName {
                            name: f.name.clone(),
                            frame,
                            how: f.how,
                        });
                    }
                }
            }
        }
    }
    // Else the attribute of a holding or waiting thread's `self`, named with its class.
    let unnamed: HashMap<usize, usize> = targets
        .iter()
        .flat_map(|(a, named)| {
            named.iter().filter_map(move |n| match n {
                Named::Lock(i) => Some((*a, *i)),
                Named::Wait(_) => None,
            })
        })
        .filter(|(_, i)| locks[*i].name.is_none())
        .collect();
    if !unnamed.is_empty() {
        for (addr, (name, site)) in owner_attributes(walker, raw, threads, locks, &unnamed) {
            apply(&mut locks[unnamed[&addr]], name, NameHow::Attribute, site);
        }
    }
    note
}

/// The program-wide names of `wanted` objects (any object, not only locks), by one walk
/// from `sys.modules` (`__main__`'s globals unqualified), and the note when the walk stopped
/// at its bounds. An object with an expected type is only named while it still has that type.
pub(super) fn name_objects(
    walker: &Walker,
    interp: usize,
    wanted: &[(usize, Option<usize>)],
) -> (HashMap<usize, String>, Option<String>) {
    let objs = &walker.objs;
    let wanted: HashSet<usize> = wanted
        .iter()
        .filter(|(addr, ty)| ty.is_none_or(|ty| objs.type_of(*addr).ok() == Some(ty)))
        .map(|(addr, _)| *addr)
        .collect();
    if wanted.is_empty() {
        return (HashMap::new(), None);
    }
    let search = search(objs, &roots(walker, interp, &[], &[]), wanted, BOUNDS);
    let note = search.note();
    let names = search.found.into_iter().map(|(a, f)| (a, f.name)).collect();
    (names, note)
}

/// The `locks[]` entries a finding can name: waited on (by a thread, or by a task awaiting
/// one of the `awaited` ids), or held by no `live` thread nor task (an orphan). A lock only
/// held, or nothing but awaited objects, is no deadlock, stall or orphan.
fn findable_locks(locks: &[Lock], live: &HashSet<&str>, awaited: &HashSet<&str>) -> HashSet<usize> {
    locks
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            !l.waiters.is_empty()
                || awaited.contains(l.id.as_str())
                || l.holders.iter().any(|h| {
                    h.task.is_none() && h.thread.as_deref().is_none_or(|t| !live.contains(t))
                })
        })
        .map(|(i, _)| i)
        .collect()
}

fn apply(lock: &mut Lock, name: String, how: NameHow, frame: String) {
    let n = LockName {
        name: name.clone(),
        frame,
        how,
    };
    if !lock.names.contains(&n) {
        lock.names.push(n);
    }
    lock.name = Some(name);
}

/// The frames' own globals first (the blocked and holding threads'), then `sys.modules`.
fn roots(walker: &Walker, interp: usize, raw: &[RawThread], threads: &[Thread]) -> Vec<Root> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let involved: HashSet<u64> = threads
        .iter()
        .filter(|t| t.blocked || !t.holds.is_empty())
        .map(|t| t.thread_id)
        .collect();
    for rt in raw.iter().filter(|t| involved.contains(&t.thread_id)) {
        for f in &rt.frames {
            if let Some(g) = frame_globals(walker, f) {
                if seen.insert(g) {
                    out.push(Root {
                        dict: g,
                        module: None,
                    });
                }
            }
        }
    }
    // A frame's module is named unqualified; stdlib frames' too (threading, queue).
    for (key, dict) in walker.objs.modules(interp).unwrap_or_default() {
        if seen.insert(dict) {
            out.push(Root {
                dict,
                module: Some(key),
            });
        }
    }
    out
}

/// `Class.attr` for an unnamed lock that is an attribute of the `self` of a frame of a
/// thread that holds or waits for it, with that frame's site. Only the program's own frames
/// count: a library's `self` (`_WorkItem.future` in a pool worker) is not a name the program
/// gives, and would hide the better description the report has of it.
fn owner_attributes(
    walker: &Walker,
    raw: &[RawThread],
    threads: &[Thread],
    locks: &[Lock],
    unnamed: &HashMap<usize, usize>,
) -> HashMap<usize, (String, String)> {
    let objs = &walker.objs;
    let mut involved: HashSet<&str> = HashSet::new();
    for i in unnamed.values() {
        let l = &locks[*i];
        involved.extend(l.holders.iter().filter_map(|h| h.thread.as_deref()));
        involved.extend(l.waiters.iter().map(|w| w.thread.as_str()));
    }
    let mut out = HashMap::new();
    for t in threads.iter().filter(|t| involved.contains(t.id.as_str())) {
        let Some(rt) = raw.iter().find(|r| r.thread_id == t.thread_id) else {
            continue;
        };
        for f in &rt.frames {
            if is_library_file(&f.code.filename) {
                continue;
            }
            let Some(me) = walker.local(f, "self") else {
                continue;
            };
            let slots = objs
                .type_of(me)
                .map(|ty| objs.slot_members(ty))
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, offset)| Some((k, objs.slot_value(me, offset)?)));
            let attrs = objs.instance_entries(me).unwrap_or_default();
            for (k, v) in attrs.into_iter().chain(slots) {
                if !unnamed.contains_key(&v) || out.contains_key(&v) {
                    continue;
                }
                let (Ok(attr), Ok(class)) = (objs.str(k), objs.type_name(me)) else {
                    continue;
                };
                let line = f.instr.and_then(|u| f.code.line_at(u)).unwrap_or(0);
                let site = format!("{} {}:{line}", f.code.name, short_file(&f.code.filename));
                out.insert(v, (format!("{class}.{attr}"), site));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(address: &str, holders: serde_json::Value, waiters: serde_json::Value) -> Lock {
        serde_json::from_value(serde_json::json!({
            "id": format!("7:l:{address}"), "pid": 7, "address": address, "kind": "lock",
            "names": [], "locked": true, "holders": holders, "waiters": waiters, "module": null
        }))
        .unwrap()
    }

    fn held_by(thread: Option<&str>) -> serde_json::Value {
        serde_json::json!([{"thread": thread, "owner_ident": null, "evidence": "memory",
                            "site": null, "count": null}])
    }

    #[test]
    fn only_waited_and_orphaned_locks_are_searched_for_in_full() {
        let waiter = serde_json::json!([{"thread": "7:t:2", "evidence": "futex", "site": null}]);
        let none = serde_json::json!([]);
        let locks = [
            lock("0x10", held_by(Some("7:t:1")), none.clone()), // only held: healthy
            lock("0x20", held_by(Some("7:t:1")), waiter),       // contended
            lock("0x30", held_by(Some("7:t:9")), none.clone()), // its holder is gone
            lock("0x40", held_by(None), none.clone()),          // held by no live thread
            lock("0x50", none.clone(), none),                   // a task awaits it
        ];
        let live: HashSet<&str> = ["7:t:1", "7:t:2"].into();
        let awaited: HashSet<&str> = ["7:l:0x50", "7:event:0x60"].into();
        let mut findable: Vec<usize> = findable_locks(&locks, &live, &awaited)
            .into_iter()
            .collect();
        findable.sort();
        assert_eq!(findable, [1, 2, 3, 4]);
        assert!(findable_locks(&locks[..1], &live, &HashSet::new()).is_empty());
    }
}
