//! Who holds the GIL and who waits for it: the interpreter's GIL as a lock node, held by the
//! thread its GIL record names (`gil_state`) and waited for by the threads asleep on its
//! condition variable in `take_gil`. Those wake every switch interval (a timed futex) and go
//! back to sleep while the GIL stays taken: they are blocked on it all the same.

use super::builder::*;
use super::sample::Snapshot;
use crate::target::taskfiles::{InSyscall, TaskFiles};

/// What the report calls the GIL.
pub const GIL_NAME: &str = "the GIL";

impl<'w, 'a> Builder<'w, 'a> {
    /// The GIL's node, when some thread waits for it: its holder and its waiters. A thread
    /// waits for it when it sleeps, not owning it, on a timed futex inside the interpreter's
    /// static data (the GIL's condition variable: `take_gil` waits with a timeout).
    pub(super) fn gil_lock(&mut self, threads: &mut [Thread], gil_address: usize) {
        if gil_address == 0 {
            return;
        }
        let waiting = |t: &Thread, b: &Self| {
            !t.owns_gil
                && t.state == ThreadState::GilWait
                && t.waits_for.as_ref().is_some_and(|w| {
                    w.kind == WaitKind::UnknownFutex
                        && w.timed
                        && w.futex
                            .as_deref()
                            .and_then(|f| {
                                usize::from_str_radix(f.trim_start_matches("0x"), 16).ok()
                            })
                            .is_some_and(|f| b.interpreter_internal(f))
                })
        };
        if !threads.iter().any(|t| waiting(t, self)) {
            return;
        }
        let pid = self.pid;
        let id = lock_id(pid, gil_address);
        let mut holders = Vec::new();
        // Not added to the holder's `holds`: lock order and race lock sets are about the
        // program's locks, and every thread takes the GIL.
        if let Some(t) = threads.iter().find(|t| t.owns_gil) {
            holders.push(Holder {
                thread: Some(t.id.clone()),
                task: None,
                process: None,
                owner_ident: None,
                evidence: Evidence::GilState,
                site: None,
                count: None,
            });
        }
        let mut waiters = Vec::new();
        for t in threads.iter_mut() {
            if !waiting(t, self) {
                continue;
            }
            let w = t.waits_for.as_mut().unwrap();
            w.kind = WaitKind::Lock;
            w.target = Some(id.clone());
            w.name = Some(GIL_NAME.into());
            w.via = Some("take_gil".into());
            w.site = t.frames.first().map(|f| f.site());
            t.blocked = true;
            waiters.push(Waiter {
                thread: t.id.clone(),
                evidence: Evidence::Futex,
                site: w.site.clone(),
            });
        }
        let lock = self.ensure_lock(gil_address, LockKind::Gil);
        lock.name = Some(GIL_NAME.into());
        lock.locked = (!holders.is_empty()).then_some(true);
        lock.holders = holders;
        lock.waiters = waiters;
    }
}

impl<'w, 'a> Builder<'w, 'a> {
    /// While the GIL's holder sits in the kernel, no other thread can run Python: one seen on
    /// a CPU is in C without the GIL, or just woke in `take_gil` (every switch interval, and
    /// it may wait for a CPU a while on a busy machine). Such a thread's syscall is read
    /// again, a few times and briefly, and a thread found back asleep on the GIL's
    /// condition variable is a GIL waiter.
    pub(super) fn catch_gil_waiters(&mut self, threads: &mut [Thread]) {
        let frozen = threads.iter().any(|t| {
            t.owns_gil
                && t.state != ThreadState::Running
                && t.kernel.as_ref().is_some_and(|k| k.syscall.is_some())
        });
        if !frozen {
            return;
        }
        for t in threads
            .iter_mut()
            .filter(|t| t.state == ThreadState::Running && !t.owns_gil)
        {
            let Some(tid) = t.native_id else { continue };
            for attempt in 0..GIL_WAITER_RETRIES {
                if attempt > 0 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                match self.task_files.syscall(tid) {
                    Some(InSyscall::Running) => continue,
                    Some(InSyscall::Yes(s)) => {
                        let futex = s
                            .futex_wait_addr()
                            .filter(|f| s.futex_timed() && self.interpreter_internal(*f));
                        if let Some(futex) = futex {
                            t.state = ThreadState::GilWait;
                            t.waits_for = Some(Wait {
                                kind: WaitKind::UnknownFutex,
                                target: None,
                                evidence: Evidence::Futex,
                                site: None,
                                name: None,
                                via: None,
                                timed: true,
                                futex: Some(format!("{futex:#x}")),
                                targets: Vec::new(),
                                timeout_s: None,
                                waited_s: None,
                            });
                            t.kernel = Some(KernelView {
                                state: "S".into(),
                                syscall: Some(format!(
                                    "{} {:#x} {:#x} {:#x} {:#x}",
                                    super::threads::syscall_name(s.nr),
                                    s.args[0],
                                    s.args[1],
                                    s.args[2],
                                    s.args[3]
                                )),
                                wchan: None,
                            });
                        }
                        break;
                    }
                    _ => break,
                }
            }
        }
    }
}

/// How many times a running thread's syscall is read while the GIL is frozen (1 ms apart).
const GIL_WAITER_RETRIES: usize = 4;

/// Whether a thread seen waiting for the GIL is exempt from the check that it stayed in its
/// wait for the whole snapshot: it wakes every switch interval by design, and while the
/// holder is blocked (which that holder's own check confirms) it cannot have taken the GIL.
pub(super) fn waits_for_gil(t: &Thread) -> bool {
    t.state == ThreadState::GilWait
        && t.waits_for
            .as_ref()
            .is_some_and(|w| w.kind == WaitKind::Lock && w.via.as_deref() == Some("take_gil"))
}

/// A GIL holder seen in the kernel (not running) that ran during the snapshot, or is no longer
/// in the syscall it was seen in, is reported running: `gil_hold` is about a holder that
/// stayed blocked.
pub(super) fn settle_gil_holders(
    snap: &mut Snapshot,
    before: &HashMap<i32, KernelThread>,
    files: &mut TaskFiles,
) {
    for t in snap
        .threads
        .iter_mut()
        .filter(|t| t.owns_gil && !t.blocked && t.state != ThreadState::Running)
    {
        let Some(tid) = t.native_id else { continue };
        let Some(k) = before.get(&tid) else { continue };
        let same_switches = matches!(
            (k.timeslices, files.schedstat(tid)),
            (Some(a), Some(b)) if a == b.timeslices
        );
        let same_call = match (files.syscall(tid), &k.syscall) {
            (Some(InSyscall::Yes(now)), Some(then)) => now == *then,
            _ => false,
        };
        if !(same_switches && same_call) {
            t.state = ThreadState::Running;
        }
    }
}
