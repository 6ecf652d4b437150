//! Which C lock a thread sleeps on when no Python lock explains its futex, and which thread
//! owns it: the lock (recognised by `native`) becomes a lock node, the owner TID it records
//! becomes its holder. It never guesses: a futex that is no recognised lock stays unknown, and
//! a rwlock held for reading keeps no holder (glibc counts its readers, it records none).

use std::collections::HashMap;

use super::builder::*;
use crate::native::{glibc, CLock, CLockKind, FutexOp, FutexWait, Libc};
use crate::target::procfs::Syscall;

impl<'w, 'a> Builder<'w, 'a> {
    /// A thread's futex wait that the Python-level classification left unknown: a wait on
    /// a C mutex or rwlock when the memory around the futex is one, else the unknown wait.
    pub(super) fn c_lock_or_unknown(
        &mut self,
        thread: &str,
        frames: &[FrameView],
        syscall: Option<&Syscall>,
        state: ThreadState,
        wait: Option<Wait>,
    ) -> (ThreadState, Option<Wait>) {
        let unknown = matches!(&wait, Some(w) if w.kind == WaitKind::UnknownFutex);
        let (true, Some(sc), Some(w)) = (unknown && state == ThreadState::Unknown, syscall, &wait)
        else {
            return (state, wait);
        };
        match self.c_lock_wait(thread, frames, sc, w) {
            Some(cw) => (ThreadState::NativeLockWait, Some(cw)),
            None => (state, wait),
        }
    }

    fn c_lock_wait(
        &mut self,
        thread: &str,
        frames: &[FrameView],
        sc: &Syscall,
        unknown: &Wait,
    ) -> Option<Wait> {
        if self.libc != Libc::Glibc {
            return None;
        }
        let futex = FutexWait {
            addr: sc.args[0] as usize,
            op: FutexOp::from_arg(sc.args[1]),
            expected: sc.args[2] as u32,
        };
        let found = glibc::recognise(self.objs().mem, &futex)?;
        let (kind, via) = match found.kind {
            CLockKind::Mutex => (LockKind::PthreadMutex, "pthread_mutex_lock"),
            CLockKind::RwlockWriter => (LockKind::PthreadRwlock, "pthread_rwlock"),
            CLockKind::RwlockReaders => (LockKind::PthreadRwlock, "pthread_rwlock_wrlock"),
        };
        let site = frames.first().map(|f| f.frame.site());
        let address = found.address;
        let lock = self.ensure_lock(address, kind);
        lock.locked = Some(true);
        lock.readers = found.readers.map(u64::from);
        lock.waiters.push(Waiter {
            thread: thread.to_string(),
            evidence: Evidence::Futex,
            site: site.clone(),
        });
        self.c_locks.insert(address, found);
        Some(Wait {
            kind: WaitKind::Lock,
            target: Some(lock_id(self.pid, address)),
            evidence: Evidence::Futex,
            site,
            name: None,
            via: Some(via.into()),
            timed: unknown.timed,
            futex: unknown.futex.clone(),
            targets: Vec::new(),
            timeout_s: None,
            waited_s: None,
        })
    }

    /// The holder of each C lock found: the Python thread whose TID the lock records
    /// (`to_proc` maps the target's TIDs to `/proc`'s); a live thread that runs no Python
    /// is held by the process; a TID that is no thread of the process (an exited thread, or
    /// the parent's across `fork`) is a holder that is gone (no thread, no process).
    pub(super) fn resolve_c_lock_owners(
        &mut self,
        threads: &mut [Thread],
        to_proc: &HashMap<i32, i32>,
    ) {
        let pid = self.pid;
        for (addr, found) in std::mem::take(&mut self.c_locks) {
            let CLock {
                owner_tid,
                count,
                owner_died,
                ..
            } = found;
            // Held for reading: no owner is recorded, so none is claimed.
            let Some(owner_tid) = owner_tid else { continue };
            let proc_tid = to_proc.get(&owner_tid).copied().filter(|_| !owner_died);
            let owner =
                proc_tid.and_then(|tid| threads.iter_mut().find(|t| t.native_id == Some(tid)));
            let id = lock_id(pid, addr);
            let holder = Holder {
                thread: owner.as_ref().map(|t| t.id.clone()),
                task: None,
                process: (proc_tid.is_some() && owner.is_none()).then_some(pid),
                owner_ident: Some(owner_tid as u64),
                evidence: Evidence::PthreadOwner,
                site: None,
                count: count.map(u64::from),
                call_path: Vec::new(),
            };
            // A mutex of the interpreter's own static data (the GIL's `mutex`, which a thread
            // holds for an instant while it drops or takes the GIL) is not added to its
            // holder's `holds`, as the GIL is not: lock order and race lock sets are about the
            // program's locks, and every thread takes these.
            let internal = self.interpreter_internal(addr);
            if let Some(t) = owner.filter(|_| !internal) {
                if !t.holds.iter().any(|h| h.lock == id) {
                    t.holds.push(Hold {
                        lock: id.clone(),
                        evidence: Evidence::PthreadOwner,
                        site: None,
                        name: None,
                    });
                }
            }
            if let Some(lock) = self.locks.get_mut(&addr) {
                lock.holders = vec![holder];
            }
        }
    }
}

/// Under musl, whose lock layouts `native` does not know, one note when some thread sleeps on
/// a futex nothing explained: its C lock's owner (if it is one) is unknown.
pub(super) fn unread_libc_note(libc: Libc, threads: &[Thread]) -> Option<String> {
    let unexplained = threads
        .iter()
        .any(|t| matches!(&t.waits_for, Some(w) if w.kind == WaitKind::UnknownFutex));
    (libc == Libc::Musl && unexplained).then(|| {
        "owner unknown: musl: the C library is musl, whose lock layouts gridlock does not read, so a thread asleep on a futex no Python lock explains may wait for a C mutex whose owner is not known".to_string()
    })
}
