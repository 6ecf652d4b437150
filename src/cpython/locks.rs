//! What a `_thread.lock` or `_thread.RLock` says from outside: held or not, its owner,
//! whether a thread sleeping on a futex waits for it; and, at attach, which layout the
//! target's lock types have (from their `tp_basicsize`). A layout that is not recognised
//! turns that part off with a note: it never reads a lock with a guessed layout.

use super::layout::{common::*, LockLayout, LockLayouts, RLockLayout};
use super::objects::Objects;

/// An RLock's owner ident and recursion count (0 when free).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RLockState {
    pub owner: u64,
    pub count: u64,
}

impl Objects<'_> {
    /// Whether a thread sleeping on `futex` waits for the lock (or RLock) at `lock`: the
    /// lock's semaphore itself, or, for a `PyMutex`, the parking-lot `wait_entry` holding
    /// `futex` whose `addr` is the mutex.
    pub fn lock_waited_on(&self, lock: usize, rlock: bool, futex: usize) -> bool {
        let locks = self.layout.locks;
        let (sem, mutex) = if rlock {
            match locks.rlock {
                Some(RLockLayout::Semaphore { sem, .. }) => (Some(sem), None),
                Some(RLockLayout::Mutex { mutex, .. }) => (None, Some(mutex)),
                None => return false,
            }
        } else {
            match locks.lock {
                Some(LockLayout::Semaphore { sem, .. }) => (Some(sem), None),
                Some(LockLayout::Mutex { mutex }) => (None, Some(mutex)),
                None => return false,
            }
        };
        if let Some(sem) = sem {
            return self.mem.ptr(lock + sem).ok() == Some(futex);
        }
        let Some(mutex) = mutex else { return false };
        futex >= WAIT_ENTRY_SEMA
            && self.mem.ptr(futex - WAIT_ENTRY_SEMA + WAIT_ENTRY_ADDR).ok() == Some(lock + mutex)
    }

    /// Whether a `_thread.lock` is held; None when its layout is unknown or unreadable.
    pub fn lock_held(&self, lock: usize) -> Option<bool> {
        match self.layout.locks.lock? {
            LockLayout::Semaphore { locked, .. } => self.mem.u8(lock + locked).ok().map(|b| b != 0),
            LockLayout::Mutex { mutex } => self.mem.u8(lock + mutex).ok().map(|b| b & 1 != 0),
        }
    }

    /// An RLock's owner and count; None when its layout is unknown or unreadable.
    pub fn rlock_state(&self, rlock: usize) -> Option<RLockState> {
        match self.layout.locks.rlock? {
            RLockLayout::Semaphore { owner, count, .. } => Some(RLockState {
                owner: self.mem.u64(rlock + owner).ok()?,
                count: self.mem.u64(rlock + count).ok()?,
            }),
            RLockLayout::Mutex {
                mutex,
                owner,
                level,
            } => {
                let held = self.mem.u8(rlock + mutex).ok()? & 1 != 0;
                let owner = self.mem.u64(rlock + owner).ok()?;
                let level = self.mem.u64(rlock + level).ok()?;
                Some(if held && owner != 0 {
                    RLockState {
                        owner,
                        count: level + 1,
                    }
                } else {
                    RLockState { owner: 0, count: 0 }
                })
            }
        }
    }
}

/// Choose the lock layouts from the target's own lock types (`_thread.LockType` and
/// `_thread.RLock`, through `sys.modules`), returning them and a note per part turned off;
/// None while `_thread` cannot be read yet (the caller's `table` stays in place).
pub fn check_locks(
    objs: &Objects,
    modules: usize,
    table: LockLayouts,
) -> Option<(LockLayouts, Vec<String>)> {
    let mut out = table;
    let mut notes = Vec::new();
    let thread = objs
        .dict_get(modules, "_thread")
        .ok()
        .flatten()
        .and_then(|m| objs.mem.ptr(m + MODULE_DICT).ok());
    let thread = thread?;
    let size_of = |name: &str| -> Option<u64> {
        let ty = objs.dict_get(thread, name).ok().flatten()?;
        objs.mem.u64(ty + TP_BASICSIZE).ok()
    };
    match size_of("LockType") {
        Some(size) => {
            out.lock = LockLayouts::lock_of_size(size);
            if out.lock.is_none() {
                notes.push(format!(
                    "lock owners unavailable: unrecognised `_thread.lock` layout, {size} bytes"
                ));
            }
        }
        None if out.lock.is_none() => {
            notes.push("lock owners unavailable: `_thread.LockType` could not be read".into())
        }
        None => {}
    }
    if let Some(size) = size_of("RLock") {
        out.rlock = LockLayouts::rlock_of_size(size);
        if out.rlock.is_none() {
            notes.push(format!(
                "RLock owners unavailable: unrecognised `_thread.RLock` layout, {size} bytes"
            ));
        }
    }
    Some((out, notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpython::for_version;
    use crate::memory::FakeMemory;

    /// Fake objects in a 3.12 layout: compact ASCII strs and a dict of str keys.
    struct Heap {
        mem: FakeMemory,
        next: usize,
    }

    impl Heap {
        fn alloc(&mut self, size: usize) -> usize {
            let at = self.next;
            self.next += size.div_ceil(64) * 64 + 64;
            self.mem.put(at, &vec![0u8; size]);
            at
        }
        fn str(&mut self, s: &str) -> usize {
            let at = self.alloc(40 + s.len() + 1);
            self.mem.put_u64s(at + 16, &[s.len() as u64]);
            // state: kind 1, compact, ascii.
            self.mem
                .write(at + 32, &[(1 << 2) | (1 << 5) | (1 << 6), 0, 0, 0]);
            self.mem.write(at + 40, s.as_bytes());
            at
        }
        fn dict(&mut self, items: &[(&str, usize)]) -> usize {
            let keys = self.alloc(40 + 16 * items.len());
            self.mem.write(keys + 9, &[3, 1]); // 8 index bytes, unicode keys (16-byte entries)
            self.mem.put_u64s(keys + 24, &[items.len() as u64]);
            for (i, (k, v)) in items.iter().enumerate() {
                let k = self.str(k);
                self.mem
                    .put_u64s(keys + 40 + 16 * i, &[k as u64, *v as u64]);
            }
            let dict = self.alloc(48);
            self.mem.put_u64s(dict + 32, &[keys as u64, 0]);
            dict
        }
        fn type_of_size(&mut self, basicsize: u64) -> usize {
            let ty = self.alloc(64);
            self.mem.put_u64s(ty + TP_BASICSIZE, &[basicsize]);
            ty
        }
    }

    fn modules_with_lock_sizes(heap: &mut Heap, lock: u64, rlock: u64) -> usize {
        let lock_type = heap.type_of_size(lock);
        let rlock_type = heap.type_of_size(rlock);
        let thread_dict = heap.dict(&[("LockType", lock_type), ("RLock", rlock_type)]);
        let module = heap.alloc(32);
        heap.mem
            .put_u64s(module + MODULE_DICT, &[thread_dict as u64]);
        heap.dict(&[("sys", 0x1), ("_thread", module)])
    }

    #[test]
    fn an_unknown_lock_size_turns_lock_reading_off_with_a_note() {
        let mut heap = Heap {
            mem: FakeMemory::new(),
            next: 0x10_0000,
        };
        let modules = modules_with_lock_sizes(&mut heap, 32, 48);
        // A lock object whose `+16` holds the futex a waiter sleeps on: with a guessed
        // semaphore layout it would match.
        let lock = heap.alloc(32);
        heap.mem.put_u64s(lock + 16, &[0xdead_0000, 0, 1]);
        let mut layout = for_version(3, 12, 1).unwrap();
        let objs = Objects::new(&heap.mem, &layout);
        let (locks, notes) = check_locks(&objs, modules, layout.locks).unwrap();
        assert_eq!(locks.lock, None);
        assert!(matches!(locks.rlock, Some(RLockLayout::Semaphore { .. })));
        assert_eq!(
            notes,
            vec![
                "lock owners unavailable: unrecognised `_thread.lock` layout, 32 bytes".to_string()
            ]
        );
        layout.locks = locks;
        let objs = Objects::new(&heap.mem, &layout);
        assert!(
            !objs.lock_waited_on(lock, false, 0xdead_0000),
            "no wait built on it"
        );
        assert_eq!(objs.lock_held(lock), None, "no holder built on it");
    }

    #[test]
    fn known_sizes_choose_semaphore_or_mutex_layouts() {
        let mut heap = Heap {
            mem: FakeMemory::new(),
            next: 0x10_0000,
        };
        let modules = modules_with_lock_sizes(&mut heap, 24, 40);
        let layout = for_version(3, 12, 1).unwrap();
        let objs = Objects::new(&heap.mem, &layout);
        let (locks, notes) = check_locks(&objs, modules, layout.locks).unwrap();
        assert!(notes.is_empty());
        assert_eq!(locks.lock, Some(LockLayout::Mutex { mutex: 16 }));
        assert!(matches!(locks.rlock, Some(RLockLayout::Mutex { .. })));
        // A PyMutex waiter: the futex is the `sema` of a wait_entry whose `addr` is the mutex.
        let mut layout = layout.clone();
        layout.locks = locks;
        let lock = heap.alloc(24);
        heap.mem.write(lock + 16, &[1]);
        let entry = heap.alloc(64);
        heap.mem.put_u64s(entry, &[0, (lock + 16) as u64]);
        let objs = Objects::new(&heap.mem, &layout);
        assert!(objs.lock_waited_on(lock, false, entry + WAIT_ENTRY_SEMA));
        assert!(!objs.lock_waited_on(lock, false, entry + 64));
        assert_eq!(objs.lock_held(lock), Some(true));
    }
}
