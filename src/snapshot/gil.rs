//! Who holds the GIL and who waits for it: the interpreter's GIL as a lock node, held by the
//! thread its GIL record names (`gil_state`) and waited for by the threads asleep on its
//! condition variable in `take_gil`. Those wake every switch interval (a timed futex) and go
//! back to sleep while the GIL stays taken: they are blocked on it all the same. A
//! subinterpreter with a GIL of its own (3.12+ `gil=OWN_GIL`) gets a node of its own, and
//! its waiters are matched to it by the futex they sleep on.

use super::builder::*;
use super::sample::Snapshot;
use crate::cpython::gils::OwnGil;
use crate::target::taskfiles::{InSyscall, TaskFiles};

/// What the report calls the GIL.
pub const GIL_NAME: &str = "the GIL";

/// One GIL of the process: the main interpreter's (its record in the interpreter's static
/// data), or a subinterpreter's own (3.12+ `gil=OWN_GIL`, read in `cpython::gils`).
pub(super) struct GilView {
    pub(super) address: usize,
    pub(super) own: Option<OwnGil>,
}

impl GilView {
    /// The GIL's name in the report: "the GIL", or "the GIL of interpreter 1".
    fn name(&self) -> String {
        match self.own.as_ref().and_then(|g| g.id) {
            Some(id) => format!("{GIL_NAME} of interpreter {id}"),
            None if self.own.is_some() => format!("{GIL_NAME} of a subinterpreter"),
            None => GIL_NAME.into(),
        }
    }

    /// Whether a thread asleep on `futex` in `take_gil` waits for this GIL.
    fn has_futex(&self, b: &Builder, futex: usize) -> bool {
        match &self.own {
            Some(g) => g.contains(futex),
            None => b.interpreter_internal(futex),
        }
    }
}

/// The process's GILs: the main one at `main` (none when 0) and the subinterpreters' own.
pub(super) fn gil_views(main: usize, own: Vec<OwnGil>) -> Vec<GilView> {
    (main != 0)
        .then_some(GilView {
            address: main,
            own: None,
        })
        .into_iter()
        .chain(own.into_iter().map(|g| GilView {
            address: g.address,
            own: Some(g),
        }))
        .collect()
}

/// The GIL a thread state holds, by its address: the main one or a subinterpreter's own, whose
/// record names `tstate` or a thread state of the same OS thread (a thread running a
/// subinterpreter's code is listed by its main thread state).
/// `main_holder` is the main record's holder and that thread state's native id (a legacy
/// subinterpreter's thread holds the shared GIL under a thread state the main list lacks).
pub(super) fn held_gil(
    gils: &[GilView],
    main_holder: (Option<usize>, Option<i32>),
    tstate: usize,
    native_id: Option<i32>,
) -> Option<usize> {
    let same_thread = |holder: Option<usize>, holder_native_id: Option<i32>| {
        holder.is_some()
            && (holder == Some(tstate) || (native_id.is_some() && holder_native_id == native_id))
    };
    gils.iter().find_map(|g| {
        let holds = match &g.own {
            None => same_thread(main_holder.0, main_holder.1),
            Some(own) => same_thread(own.holder, own.holder_native_id),
        };
        holds.then_some(g.address)
    })
}

/// The futex address a thread sleeps on, from its wait's text.
fn wait_futex(t: &Thread) -> Option<usize> {
    let w = t.waits_for.as_ref()?;
    if w.kind != WaitKind::UnknownFutex || !w.timed {
        return None;
    }
    let f = w.futex.as_deref()?;
    usize::from_str_radix(f.trim_start_matches("0x"), 16).ok()
}

impl<'w, 'a> Builder<'w, 'a> {
    /// Each GIL's node, when some thread waits for it: its holder and its waiters. A thread
    /// waits for a GIL when it sleeps, not owning a GIL, on a timed futex inside that GIL's
    /// record (its condition variable: `take_gil` waits with a timeout). `held[i]` is the
    /// GIL `threads[i]` holds.
    pub(super) fn gil_lock(
        &mut self,
        threads: &mut [Thread],
        gils: &[GilView],
        held: &[Option<usize>],
    ) {
        for gil in gils {
            self.one_gil_lock(threads, gil, held);
        }
    }

    fn one_gil_lock(&mut self, threads: &mut [Thread], gil: &GilView, held: &[Option<usize>]) {
        let waiting = |t: &Thread, b: &Self| {
            !t.owns_gil
                && t.state == ThreadState::GilWait
                && wait_futex(t).is_some_and(|f| gil.has_futex(b, f))
        };
        if !threads.iter().any(|t| waiting(t, self)) {
            return;
        }
        let pid = self.pid;
        let id = lock_id(pid, gil.address);
        let name = gil.name();
        let mut holders = Vec::new();
        // Not added to the holder's `holds`: lock order and race lock sets are about the
        // program's locks, and every thread takes the GIL.
        let holder = threads
            .iter()
            .zip(held)
            .find(|(_, h)| **h == Some(gil.address));
        if let Some((t, _)) = holder {
            holders.push(Holder {
                thread: Some(t.id.clone()),
                task: None,
                process: None,
                owner_ident: None,
                evidence: Evidence::GilState,
                site: None,
                count: None,
                call_path: Vec::new(),
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
            w.name = Some(name.clone());
            w.via = Some(GIL_WAIT_VIA.into());
            w.site = t.frames.first().map(|f| f.site());
            t.blocked = true;
            waiters.push(Waiter {
                thread: t.id.clone(),
                evidence: Evidence::Futex,
                site: w.site.clone(),
            });
        }
        let lock = self.ensure_lock(gil.address, LockKind::Gil);
        lock.name = Some(name);
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
    /// Only a GIL whose holder sits in the kernel is frozen: a thread caught asleep on another
    /// GIL (a subinterpreter's own, or the main one while a subinterpreter's holder sleeps)
    /// is left as it was seen.
    pub(super) fn catch_gil_waiters(
        &mut self,
        threads: &mut [Thread],
        gils: &[GilView],
        held: &[Option<usize>],
    ) {
        let frozen: Vec<&GilView> = gils
            .iter()
            .filter(|g| {
                threads.iter().zip(held).any(|(t, h)| {
                    *h == Some(g.address)
                        && t.state != ThreadState::Running
                        && t.kernel.as_ref().is_some_and(|k| k.syscall.is_some())
                })
            })
            .collect();
        if frozen.is_empty() {
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
                        let futex = s.futex_wait_addr().filter(|f| {
                            s.futex_timed() && frozen.iter().any(|g| g.has_futex(self, *f))
                        });
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
                                timeslices: None,
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
    t.state == ThreadState::GilWait && t.waits_for.as_ref().is_some_and(is_gil_wait)
}

/// The `via` of a wait for a GIL (`take_gil`'s timed futex).
const GIL_WAIT_VIA: &str = "take_gil";

/// Whether a wait is one for a GIL, as this module names it.
pub fn is_gil_wait(w: &Wait) -> bool {
    w.kind == WaitKind::Lock && w.via.as_deref() == Some(GIL_WAIT_VIA)
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
