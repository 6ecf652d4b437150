//! Below Python: what the C library's own locks say about who holds them. The one place
//! that knows a libc's layouts (`glibc`); the rest of gridlock asks "which C lock is this
//! futex, and whose is it" and gets a `CLock` back. Readers take any `ReadMemory`; nothing
//! here reads `/proc` or knows CPython.

pub mod glibc;
pub mod unwind;

/// The C library a process runs on, told from the names of the files it maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Libc {
    Glibc,
    /// musl lays its locks out differently: their owners are not read (said so in a note).
    Musl,
    /// Neither found (a static binary, another libc): C locks are not read.
    Unknown,
}

impl Libc {
    /// From the paths of the process's mappings (`/proc/PID/maps`).
    pub fn from_mapped_paths<'a>(paths: impl IntoIterator<Item = &'a str>) -> Libc {
        let mut found = Libc::Unknown;
        for path in paths {
            let file = path.rsplit('/').next().unwrap_or(path);
            if file.starts_with("ld-musl") || file.starts_with("libc.musl") {
                return Libc::Musl;
            }
            if file.starts_with("libc.so.6") || file.starts_with("libc-2.") {
                found = Libc::Glibc;
            }
        }
        found
    }
}

/// What a futex wait looks like from `/proc/PID/task/TID/syscall`: the futex word's address,
/// the operation (flags stripped) and the value the waiter expected to find there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FutexWait {
    pub addr: usize,
    pub op: FutexOp,
    pub expected: u32,
}

/// The futex operations a lock waiter sleeps in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FutexOp {
    /// `FUTEX_WAIT` or `FUTEX_WAIT_BITSET`: the word must still hold `expected`.
    Wait,
    /// `FUTEX_LOCK_PI` / `FUTEX_LOCK_PI2`: a priority-inheritance lock; the word holds the owner.
    LockPi,
    Other,
}

impl FutexOp {
    /// From the futex(2) `op` argument (the private and clock flags are ignored).
    pub fn from_arg(op: u64) -> FutexOp {
        match op & 0x7f {
            0 | 9 => FutexOp::Wait,
            6 | 13 => FutexOp::LockPi,
            _ => FutexOp::Other,
        }
    }
}

/// A C lock recognised around a futex, and what it says of its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CLock {
    pub kind: CLockKind,
    /// The lock object's own address (for a rwlock, not the futex word's).
    pub address: usize,
    /// The owner's TID as the lock records it (in the target's PID namespace); `None` for a
    /// rwlock held for reading (glibc counts readers, it records none of them).
    pub owner_tid: Option<i32>,
    /// A rwlock held for reading: how many readers glibc counts.
    pub readers: Option<u32>,
    /// A recursive mutex's count of acquisitions by its owner.
    pub count: Option<u32>,
    /// A robust mutex whose owner died holding it (`FUTEX_OWNER_DIED`).
    pub owner_died: bool,
    /// The mutex type, as `pthread_mutexattr_settype` and the protocol attributes set it.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CLockKind {
    Mutex,
    /// A rwlock held for writing (the writer's TID is recorded; readers are only counted).
    RwlockWriter,
    /// A rwlock held for reading, waited on by a writer: readers are only counted, so its
    /// holders are unknown.
    RwlockReaders,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_libc_from_the_mapped_files() {
        let glibc = [
            "/usr/bin/python3.11",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "[stack]",
        ];
        assert_eq!(Libc::from_mapped_paths(glibc), Libc::Glibc);
        let musl = ["/usr/local/bin/python3", "/lib/ld-musl-x86_64.so.1"];
        assert_eq!(Libc::from_mapped_paths(musl), Libc::Musl);
        assert_eq!(
            Libc::from_mapped_paths(["/usr/bin/python3.12"]),
            Libc::Unknown
        );
        assert_eq!(FutexOp::from_arg(0x80), FutexOp::Wait);
        assert_eq!(FutexOp::from_arg(0x189), FutexOp::Wait);
        assert_eq!(FutexOp::from_arg(0x86), FutexOp::LockPi);
        assert_eq!(FutexOp::from_arg(0x81), FutexOp::Other);
    }
}
