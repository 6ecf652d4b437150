//! `_thread.lock` and `_thread.RLock` internals per object size (semaphore builds and
//! `PyMutex` builds). It names no other part of the layout.

/// `_thread.lock` internals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockLayout {
    /// 40 bytes (3.8-3.13.0): `lock_lock` (a `sem_t*`) and the `locked` byte.
    Semaphore { sem: usize, locked: usize },
    /// 24 bytes (3.13.x later, 3.14+): a `PyMutex` byte; waiters park in the parking lot.
    Mutex { mutex: usize },
}

/// `_thread.RLock` internals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RLockLayout {
    /// 48 bytes (3.8-3.13): `rlock_lock` (`sem_t*`), `rlock_owner` (ident), `rlock_count`.
    Semaphore {
        sem: usize,
        owner: usize,
        count: usize,
    },
    /// 40 bytes (3.14+): `PyMutex`, owner ident, `level` = count - 1 while held.
    Mutex {
        mutex: usize,
        owner: usize,
        level: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockLayouts {
    pub lock: Option<LockLayout>,
    pub rlock: Option<RLockLayout>,
}

pub(super) const SEM_LOCK: LockLayout = LockLayout::Semaphore {
    sem: 16,
    locked: 32,
};
pub(super) const SEM_RLOCK: RLockLayout = RLockLayout::Semaphore {
    sem: 16,
    owner: 24,
    count: 32,
};

impl LockLayouts {
    /// The layouts a `tp_basicsize` identifies (../shared/FACTS-cpython-314.md, "Locks").
    pub fn lock_of_size(size: u64) -> Option<LockLayout> {
        match size {
            40 => Some(SEM_LOCK),
            24 => Some(LockLayout::Mutex { mutex: 16 }),
            _ => None,
        }
    }
    pub fn rlock_of_size(size: u64) -> Option<RLockLayout> {
        match size {
            48 => Some(SEM_RLOCK),
            40 => Some(RLockLayout::Mutex {
                mutex: 16,
                owner: 24,
                level: 32,
            }),
            _ => None,
        }
    }
}
