//! glibc's `pthread_mutex_t` and `pthread_rwlock_t` on x86-64 (`pthreadtypes-arch.h`,
//! `struct __pthread_mutex_s` and `struct __pthread_rwlock_arch_t`): which lock a sleeping
//! thread's futex word belongs to, and the owner TID the lock records. What is read is
//! checked against the futex word's state and the wait's expected value before it is
//! trusted; anything that does not add up is no lock (the wait stays unknown). A rwlock held
//! for reading is recognised too, with its reader count only: glibc records no reader.

use super::{CLock, CLockKind, FutexOp, FutexWait};
use crate::memory::ReadMemory;

// `struct __pthread_mutex_s`: the futex word is the mutex's first field.
const MUTEX_LOCK: usize = 0;
const MUTEX_COUNT: usize = 4;
const MUTEX_OWNER: usize = 8;
const MUTEX_NUSERS: usize = 12;
const MUTEX_KIND: usize = 16;

// `__kind`: the type in the low bits, then protocol and sharing flags.
const KIND_TYPE_MASK: i32 = 3;
const KIND_RECURSIVE: i32 = 1;
const KIND_ERRORCHECK: i32 = 2;
const KIND_ADAPTIVE: i32 = 3;
const KIND_ROBUST: i32 = 16;
const KIND_PRIO_INHERIT: i32 = 32;
const KIND_PRIO_PROTECT: i32 = 64;
const KIND_PSHARED: i32 = 128;
/// glibc's lock-elision bits (`PTHREAD_MUTEX_ELISION_NP`, `_NO_ELISION_NP`).
const KIND_ELISION: i32 = 256 | 512;
const KIND_KNOWN: i32 = KIND_TYPE_MASK
    | KIND_ROBUST
    | KIND_PRIO_INHERIT
    | KIND_PRIO_PROTECT
    | KIND_PSHARED
    | KIND_ELISION;

/// A robust or PI mutex's word: the owner TID in the low bits, `FUTEX_WAITERS` and this
/// flag above.
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// The value a normal mutex's waiter sleeps on (`__lll_lock_wait`: locked, with waiters).
const LOCKED_WITH_WAITERS: u32 = 2;
/// Linux's `PID_MAX_LIMIT`: no TID is larger.
const TID_MAX: i32 = 1 << 22;
/// A robust mutex whose owner died and was not made consistent (`PTHREAD_MUTEX_INCONSISTENT`).
const OWNER_INCONSISTENT: i32 = i32::MAX;

// `struct __pthread_rwlock_arch_t`.
const RW_READERS: usize = 0;
const RW_WRPHASE_FUTEX: usize = 8;
const RW_WRITERS_FUTEX: usize = 12;
const RW_CUR_WRITER: usize = 24;
const RW_SHARED: usize = 28;
const RW_FLAGS: usize = 48;
/// `__readers`: in a write phase, write-locked (a primary writer exists), readers waiting
/// behind a preferred writer; the reader count above these bits.
const RW_WRPHASE: u32 = 1;
const RW_WRLOCKED: u32 = 2;
const RW_READER_SHIFT: u32 = 3;
/// The value a rwlock's futexes hold while someone sleeps on them (`1 | FUTEX_USED`).
const RW_FUTEX_WAITING: u32 = 3;
/// `PTHREAD_RWLOCK_FUTEX_USED`: what a primary writer waiting for the readers' hand-over
/// sleeps on in `__wrphase_futex` (the read phase's 0 with the flag).
const RW_FUTEX_USED: u32 = 2;
/// No more readers than threads a process can have.
const RW_READERS_MAX: u32 = TID_MAX as u32;

fn plausible_tid(tid: i32) -> bool {
    tid > 0 && tid < TID_MAX
}

/// The C lock whose futex word a thread sleeps on, if the memory there is one glibc lock
/// that is held, by a TID the lock records.
pub fn recognise<M: ReadMemory + ?Sized>(mem: &M, wait: &FutexWait) -> Option<CLock> {
    mutex(mem, wait)
        .or_else(|| rwlock_writer(mem, wait))
        .or_else(|| rwlock_readers(mem, wait))
}

/// A `pthread_mutex_t` starting at the futex word.
fn mutex<M: ReadMemory + ?Sized>(mem: &M, wait: &FutexWait) -> Option<CLock> {
    let at = wait.addr;
    let word = mem.u32_at(at + MUTEX_LOCK).ok()?;
    let count = mem.u32_at(at + MUTEX_COUNT).ok()?;
    let owner = mem.i32(at + MUTEX_OWNER).ok()?;
    let nusers = mem.u32_at(at + MUTEX_NUSERS).ok()?;
    let kind = mem.i32(at + MUTEX_KIND).ok()?;
    if kind & !KIND_KNOWN != 0 || nusers > 1 << 16 {
        return None;
    }
    let ty = kind & KIND_TYPE_MASK;
    // Only a recursive mutex counts its owner's acquisitions.
    let count = match ty {
        KIND_RECURSIVE if (1..1 << 20).contains(&count) => Some(count),
        KIND_RECURSIVE => return None,
        _ if count == 0 => None,
        _ => return None,
    };
    let pi = kind & KIND_PRIO_INHERIT != 0;
    let robust = kind & KIND_ROBUST != 0;
    let protect = kind & KIND_PRIO_PROTECT != 0;
    let (owner_tid, owner_died) = if pi || robust {
        // The word itself is the owner's TID, flagged: it must agree with `__owner`.
        let tid = (word & FUTEX_TID_MASK) as i32;
        let died = word & FUTEX_OWNER_DIED != 0;
        let op_fits = match wait.op {
            FutexOp::LockPi => pi,
            FutexOp::Wait => !pi && wait.expected & FUTEX_TID_MASK == word & FUTEX_TID_MASK,
            FutexOp::Other => false,
        };
        if !op_fits || !plausible_tid(tid) || !(owner == tid || owner == OWNER_INCONSISTENT) {
            return None;
        }
        (tid, died)
    } else {
        // A normal (or priority-protect) mutex: 1 locked, 2 locked with waiters, which
        // is what `__lll_lock_wait` sleeps on; `__owner` is the TID.
        // Every lock of one counts a user (`__nusers`), so a held one has at least one.
        let (state, expected) = if protect {
            (word & 3, wait.expected & 3)
        } else {
            (word, wait.expected)
        };
        if wait.op != FutexOp::Wait
            || expected != LOCKED_WITH_WAITERS
            || !(state == 1 || state == 2)
            || nusers == 0
            || !plausible_tid(owner)
        {
            return None;
        }
        (owner, false)
    };
    let mut detail = match ty {
        KIND_RECURSIVE => "recursive",
        KIND_ERRORCHECK => "error-checking",
        KIND_ADAPTIVE => "adaptive",
        _ => "normal",
    }
    .to_string();
    for (bit, name) in [
        (KIND_ROBUST, "robust"),
        (KIND_PRIO_INHERIT, "priority-inheritance"),
        (KIND_PRIO_PROTECT, "priority-protect"),
        (KIND_PSHARED, "process-shared"),
    ] {
        if kind & bit != 0 {
            detail.push_str(", ");
            detail.push_str(name);
        }
    }
    Some(CLock {
        kind: CLockKind::Mutex,
        address: at,
        owner_tid: Some(owner_tid),
        readers: None,
        count,
        owner_died,
        detail,
    })
}

/// A `pthread_rwlock_t` held for writing, whose readers (on `__wrphase_futex`) or writers
/// (on `__writers_futex`) sleep: `__cur_writer` is the writer's TID.
fn rwlock_writer<M: ReadMemory + ?Sized>(mem: &M, wait: &FutexWait) -> Option<CLock> {
    if wait.op != FutexOp::Wait || wait.expected != RW_FUTEX_WAITING {
        return None;
    }
    [RW_WRPHASE_FUTEX, RW_WRITERS_FUTEX]
        .into_iter()
        .find_map(|offset| {
            let base = wait.addr.checked_sub(offset)?;
            let readers = mem.u32_at(base + RW_READERS).ok()?;
            let writer = mem.i32(base + RW_CUR_WRITER).ok()?;
            let shared = mem.i32(base + RW_SHARED).ok()?;
            let flags = mem.u32_at(base + RW_FLAGS).ok()?;
            let futex = mem.u32_at(wait.addr).ok()?;
            let held = readers & (RW_WRPHASE | RW_WRLOCKED) == RW_WRPHASE | RW_WRLOCKED;
            (held
                && futex == RW_FUTEX_WAITING
                && plausible_tid(writer)
                && (shared == 0 || shared == 1)
                && flags <= 2)
                .then(|| CLock {
                    kind: CLockKind::RwlockWriter,
                    address: base,
                    owner_tid: Some(writer),
                    readers: None,
                    count: None,
                    owner_died: false,
                    detail: "held for writing".into(),
                })
        })
}

/// A `pthread_rwlock_t` in a read phase with readers, waited on by writers: the primary
/// writer (which set `WRLOCKED`) sleeps on `__wrphase_futex` for the last reader's hand-over,
/// later writers on `__writers_futex` for the primary one. No writer is recorded yet
/// (`__cur_writer` 0) and readers are only counted, so the lock has no known owner.
fn rwlock_readers<M: ReadMemory + ?Sized>(mem: &M, wait: &FutexWait) -> Option<CLock> {
    if wait.op != FutexOp::Wait {
        return None;
    }
    let offset = match wait.expected {
        RW_FUTEX_USED => RW_WRPHASE_FUTEX,
        RW_FUTEX_WAITING => RW_WRITERS_FUTEX,
        _ => return None,
    };
    let base = wait.addr.checked_sub(offset)?;
    let readers = mem.u32_at(base + RW_READERS).ok()?;
    let wrphase_futex = mem.u32_at(base + RW_WRPHASE_FUTEX).ok()?;
    let writers_futex = mem.u32_at(base + RW_WRITERS_FUTEX).ok()?;
    let writer = mem.i32(base + RW_CUR_WRITER).ok()?;
    let shared = mem.i32(base + RW_SHARED).ok()?;
    let flags = mem.u32_at(base + RW_FLAGS).ok()?;
    let count = readers >> RW_READER_SHIFT;
    // A read phase (no WRPHASE) with a primary writer (WRLOCKED) and readers; the primary
    // writer has enabled blocking on `__writers_futex` (1, or 3 once someone sleeps there);
    // `__wrphase_futex` is the read phase's 0, flagged once the primary writer sleeps.
    let read_held = readers & (RW_WRPHASE | RW_WRLOCKED) == RW_WRLOCKED
        && (1..RW_READERS_MAX).contains(&count)
        && wrphase_futex | RW_FUTEX_USED == RW_FUTEX_USED
        && (writers_futex == 1 || writers_futex == RW_FUTEX_WAITING)
        && mem.u32_at(wait.addr).ok()? == wait.expected;
    (read_held && writer == 0 && (shared == 0 || shared == 1) && flags <= 2).then(|| CLock {
        kind: CLockKind::RwlockReaders,
        address: base,
        owner_tid: None,
        readers: Some(count),
        count: None,
        owner_died: false,
        detail: format!(
            "held for reading by {count} reader{} (glibc records no reader owners)",
            if count == 1 { "" } else { "s" }
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::FakeMemory;

    const FUTEX_WAITERS: u32 = 0x8000_0000;

    const AT: usize = 0x7f00_0000_1000;

    fn mutex_bytes(lock: u32, count: u32, owner: i32, nusers: u32, kind: i32) -> Vec<u8> {
        let mut b = vec![0u8; 40];
        b[0..4].copy_from_slice(&lock.to_le_bytes());
        b[4..8].copy_from_slice(&count.to_le_bytes());
        b[8..12].copy_from_slice(&owner.to_le_bytes());
        b[12..16].copy_from_slice(&nusers.to_le_bytes());
        b[16..20].copy_from_slice(&kind.to_le_bytes());
        b
    }

    fn wait(op: FutexOp, expected: u32) -> FutexWait {
        FutexWait {
            addr: AT,
            op,
            expected,
        }
    }

    fn mem(bytes: &[u8]) -> FakeMemory {
        let mut m = FakeMemory::new();
        m.put(AT, bytes);
        m
    }

    #[test]
    fn a_contended_normal_mutex_names_its_owner() {
        // As read live: lock=2 count=0 owner=22421 nusers=1 kind=0, waiter on value 2.
        let m = mem(&mutex_bytes(2, 0, 22421, 1, 0));
        let found = recognise(&m, &wait(FutexOp::Wait, 2)).unwrap();
        assert_eq!(found.kind, CLockKind::Mutex);
        assert_eq!((found.address, found.owner_tid), (AT, Some(22421)));
        assert_eq!((found.count, found.detail.as_str()), (None, "normal"));
    }

    #[test]
    fn a_recursive_mutex_reports_its_count() {
        let m = mem(&mutex_bytes(2, 2, 700, 1, KIND_RECURSIVE));
        let found = recognise(&m, &wait(FutexOp::Wait, 2)).unwrap();
        assert_eq!((found.owner_tid, found.count), (Some(700), Some(2)));
        assert_eq!(found.detail, "recursive");
        // A recursive mutex that claims no acquisition is not one.
        let m = mem(&mutex_bytes(2, 0, 700, 1, KIND_RECURSIVE));
        assert_eq!(recognise(&m, &wait(FutexOp::Wait, 2)), None);
    }

    #[test]
    fn words_that_do_not_fit_a_held_mutex_are_no_mutex() {
        // A free word, an owner of zero (between the lock and the owner store), a kind
        // with unknown bits, a count on a normal mutex, a semaphore's wait on value 0.
        for (bytes, expected) in [
            (mutex_bytes(0, 0, 900, 1, 0), 2),
            (mutex_bytes(2, 0, 0, 1, 0), 2),
            (mutex_bytes(2, 0, 900, 1, 0x4000), 2),
            (mutex_bytes(2, 3, 900, 1, 0), 2),
            (mutex_bytes(2, 0, 900, 1, 0), 0),
            (mutex_bytes(2, 0, -5, 1, 0), 2),
            (mutex_bytes(2, 0, 900, 0, 0), 2),
        ] {
            let m = mem(&bytes);
            assert_eq!(
                recognise(&m, &wait(FutexOp::Wait, expected)),
                None,
                "{bytes:?} on {expected}"
            );
        }
        // Unreadable memory is no lock either.
        assert_eq!(recognise(&FakeMemory::new(), &wait(FutexOp::Wait, 2)), None);
    }

    #[test]
    fn robust_and_pi_mutexes_keep_the_owner_in_the_word() {
        let word = 4242 | FUTEX_WAITERS;
        let m = mem(&mutex_bytes(word, 0, 4242, 1, KIND_ROBUST));
        let found = recognise(&m, &wait(FutexOp::Wait, word)).unwrap();
        assert_eq!(found.owner_tid, Some(4242));
        assert!(!found.owner_died);
        assert_eq!(found.detail, "normal, robust");
        // The word and `__owner` must agree.
        let m = mem(&mutex_bytes(word, 0, 4243, 1, KIND_ROBUST));
        assert_eq!(recognise(&m, &wait(FutexOp::Wait, word)), None);

        let died = 4242 | FUTEX_WAITERS | FUTEX_OWNER_DIED;
        let m = mem(&mutex_bytes(died, 0, OWNER_INCONSISTENT, 1, KIND_ROBUST));
        assert!(
            recognise(&m, &wait(FutexOp::Wait, died))
                .unwrap()
                .owner_died
        );

        let m = mem(&mutex_bytes(word, 0, 4242, 1, KIND_PRIO_INHERIT));
        let found = recognise(&m, &wait(FutexOp::LockPi, 0)).unwrap();
        assert_eq!(
            (found.owner_tid, found.detail.as_str()),
            (Some(4242), "normal, priority-inheritance")
        );
        // A PI mutex is waited on with FUTEX_LOCK_PI, never a plain wait.
        assert_eq!(recognise(&m, &wait(FutexOp::Wait, word)), None);
    }

    #[test]
    fn a_write_locked_rwlock_names_its_writer() {
        let mut b = vec![0u8; 56];
        b[0..4].copy_from_slice(&(RW_WRPHASE | RW_WRLOCKED).to_le_bytes());
        b[8..12].copy_from_slice(&RW_FUTEX_WAITING.to_le_bytes());
        b[24..28].copy_from_slice(&31337i32.to_le_bytes());
        let m = mem(&b);
        // A reader sleeps on `__wrphase_futex`.
        let w = FutexWait {
            addr: AT + RW_WRPHASE_FUTEX,
            op: FutexOp::Wait,
            expected: RW_FUTEX_WAITING,
        };
        let found = recognise(&m, &w).unwrap();
        assert_eq!(found.kind, CLockKind::RwlockWriter);
        assert_eq!((found.address, found.owner_tid), (AT, Some(31337)));
        // Read-locked (no write phase): the owners are not recorded.
        let mut r = b.clone();
        r[0..4].copy_from_slice(&(3u32 << 3).to_le_bytes());
        assert_eq!(recognise(&mem(&r), &w), None);
    }

    /// A rwlock's first 16 bytes and `__cur_writer`.
    fn rwlock_bytes(readers: u32, wrphase: u32, writers: u32, cur_writer: i32) -> Vec<u8> {
        let mut b = vec![0u8; 56];
        b[0..4].copy_from_slice(&readers.to_le_bytes());
        b[8..12].copy_from_slice(&wrphase.to_le_bytes());
        b[12..16].copy_from_slice(&writers.to_le_bytes());
        b[24..28].copy_from_slice(&cur_writer.to_le_bytes());
        b
    }

    fn rw_wait(offset: usize, expected: u32) -> FutexWait {
        FutexWait {
            addr: AT + offset,
            op: FutexOp::Wait,
            expected,
        }
    }

    #[test]
    fn a_read_held_rwlock_counts_its_readers_and_names_no_owner() {
        // As read live (glibc 2.36 and 2.43): two readers hold it, a primary writer sleeps on
        // `__wrphase_futex` (2), a second writer on `__writers_futex` (3):
        // __readers = 2 << 3 | WRLOCKED = 18.
        let m = mem(&rwlock_bytes(18, 2, 3, 0));
        for w in [rw_wait(RW_WRPHASE_FUTEX, 2), rw_wait(RW_WRITERS_FUTEX, 3)] {
            let found = recognise(&m, &w).unwrap();
            assert_eq!(found.kind, CLockKind::RwlockReaders);
            assert_eq!(found.address, AT);
            assert_eq!((found.owner_tid, found.readers), (None, Some(2)));
            assert_eq!(
                found.detail,
                "held for reading by 2 readers (glibc records no reader owners)"
            );
        }
        let one = recognise(&mem(&rwlock_bytes(10, 2, 1, 0)), &rw_wait(8, 2)).unwrap();
        assert_eq!(one.readers, Some(1));
        assert!(one.detail.starts_with("held for reading by 1 reader ("));
    }

    #[test]
    fn a_rwlock_that_is_not_read_held_by_counted_readers_is_no_reader_lock() {
        for (bytes, w) in [
            // No reader counted.
            (rwlock_bytes(2, 2, 1, 0), rw_wait(RW_WRPHASE_FUTEX, 2)),
            // No primary writer: nobody would sleep on these futexes.
            (rwlock_bytes(16, 2, 1, 0), rw_wait(RW_WRPHASE_FUTEX, 2)),
            // A writer is recorded: not a read phase.
            (rwlock_bytes(18, 2, 1, 77), rw_wait(RW_WRPHASE_FUTEX, 2)),
            // The futex word no longer holds what the waiter slept on.
            (rwlock_bytes(18, 1, 1, 0), rw_wait(RW_WRPHASE_FUTEX, 2)),
            // `__writers_futex` not enabled by a primary writer.
            (rwlock_bytes(18, 2, 0, 0), rw_wait(RW_WRPHASE_FUTEX, 2)),
            (rwlock_bytes(18, 2, 7, 0), rw_wait(RW_WRITERS_FUTEX, 7)),
        ] {
            let found = recognise(&mem(&bytes), &w);
            assert!(
                found
                    .as_ref()
                    .is_none_or(|f| f.kind != CLockKind::RwlockReaders),
                "{bytes:?} at +{:#x}: {found:?}",
                w.addr - AT
            );
        }
    }
}
