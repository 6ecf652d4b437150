//! Why a thread counts as waiting on something: the futex it sleeps on matched against the
//! lock objects its innermost frames reach (locks, RLocks, conditions, joins, import locks).
//! It never claims a holder: that is `holders`.

use super::builder::*;
use super::wait_matches::Matched;
use crate::cpython::bytecode;
use crate::cpython::layout::common::*;
use crate::probe;

pub(super) fn primitive_kind(type_name: &str) -> LockKind {
    match type_name {
        "Event" => LockKind::Event,
        "Semaphore" | "BoundedSemaphore" => LockKind::Semaphore,
        "Barrier" => LockKind::Barrier,
        "Queue" | "LifoQueue" | "PriorityQueue" | "SimpleQueue" => LockKind::Queue,
        "Thread" => LockKind::Thread,
        _ => LockKind::Condition,
    }
}

impl<'w, 'a> Builder<'w, 'a> {
    /// The lock a thread sleeping on `futex` waits on, found among the objects its frames
    /// reach, or kept from the last snapshot while the thread has not run (`stay`: its ident
    /// and `schedstat` timeslices).
    fn waited_lock(
        &mut self,
        frames: &[FrameView],
        futex: usize,
        stay: Option<(u64, u64)>,
    ) -> Option<Matched> {
        let key = stay.map(|(ident, slices)| (ident, futex, slices));
        if let Some((obj, kind)) = key.and_then(|k| self.wait_matches.get(k)) {
            if self.lock_kind(obj) == Some(kind)
                && self
                    .objs()
                    .lock_waited_on(obj, kind == LockKind::RLock, futex)
            {
                return Some((obj, kind));
            }
        }
        // The kind is kept from this one read: the object may change under a running target.
        let found = self.candidates(frames).into_iter().find_map(|c| {
            let kind = self.lock_kind(c)?;
            self.objs()
                .lock_waited_on(c, kind == LockKind::RLock, futex)
                .then_some((c, kind))
        });
        if let (Some(key), Some(m)) = (key, found) {
            self.wait_matches.keep(key, m);
        }
        found
    }

    /// A futex in the interpreter's static data (the GIL's): no lock object to look for.
    pub(super) fn interpreter_internal(&self, futex: usize) -> bool {
        self.runtime_region
            .is_some_and(|(start, end)| start <= futex && futex < end)
    }

    /// Objects a thread's innermost frames can reach: locals, value-stack slots, the
    /// `__self__` of methods there, and the attributes of `self` in threading's frames.
    pub(super) fn candidates(&self, frames: &[FrameView]) -> Vec<usize> {
        let objs = self.objs();
        let mut out = Vec::new();
        for fv in frames.iter().take(WAIT_SEARCH_FRAMES) {
            for s in self.walker.frame_objects(fv.raw) {
                out.push(s);
                match objs.type_name_rc(s).as_deref() {
                    Ok("builtin_function_or_method") | Ok("method") => {
                        if let Ok(owner) = objs.mem.ptr(s + METHOD_SELF) {
                            out.push(owner);
                        }
                    }
                    Ok("Condition")
                    | Ok("Thread")
                    | Ok("_ModuleLock")
                    | Ok("Event")
                    | Ok("Semaphore")
                    | Ok("BoundedSemaphore")
                    | Ok("Barrier")
                    | Ok("_DummyThread")
                    | Ok("_MainThread") => {
                        out.extend(
                            objs.instance_attrs(s)
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(_, v)| v),
                        );
                    }
                    Ok(t) if t.starts_with(probe::WRAPPER_PREFIX) => {
                        out.extend(
                            objs.instance_attrs(s)
                                .unwrap_or_default()
                                .into_iter()
                                .map(|(_, v)| v),
                        );
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// Work out what a thread sleeping on futex `futex` waits for.
    /// Returns its state, the wait, and a lock it has released while waiting (Condition.wait).
    pub(super) fn classify_futex_wait(
        &mut self,
        thread: &str,
        frames: &[FrameView],
        futex: usize,
        timed: bool,
        stay: Option<(u64, u64)>,
    ) -> (ThreadState, Option<Wait>, Option<usize>) {
        let futex_hex = Some(format!("{futex:#x}"));
        let matched = if self.interpreter_internal(futex) {
            None
        } else {
            self.waited_lock(frames, futex, stay)
        };
        let in_sync_module = |f: &Frame| {
            let file = short_file(&f.file);
            file == "threading.py"
                || file == "queue.py"
                || f.file.contains("importlib._bootstrap")
                || probe::is_probe_file(&f.file)
        };
        // The first frame outside threading/queue/importlib: where the user's code waits.
        let user = frames.iter().position(|f| !in_sync_module(&f.frame));
        let user_site = user.map(|i| frames[i].frame.site());
        let outermost_sync = user
            .unwrap_or(frames.len())
            .checked_sub(1)
            .map(|i| &frames[i]);
        let via = outermost_sync.map(|f| {
            qualified(
                &f.frame.function,
                &f.raw.code.names.locals,
                f.raw,
                self.walker,
            )
        });

        if let Some((lock, kind)) = matched {
            // Condition.wait: sleeping on its private waiter lock means waiting for a notify.
            if let Some(cw) = frames.iter().find(|f| {
                is_function(f, "threading.py", "wait")
                    && self.walker.local(f.raw, "waiter") == Some(lock)
            }) {
                let cond = self.walker.local(cw.raw, "self").unwrap_or(0);
                let released = self
                    .objs()
                    .attr(cond, "_lock")
                    .ok()
                    .flatten()
                    .map(|l| probe::unwrap(self.objs(), l));
                // Name the waited primitive by the outermost threading/queue frame's `self`.
                let (target_obj, kind) = outermost_sync
                    .and_then(|f| {
                        let obj = self.walker.local(f.raw, "self")?;
                        Some((obj, primitive_kind(&self.objs().type_name(obj).ok()?)))
                    })
                    .unwrap_or((cond, LockKind::Condition));
                self.ensure_lock(target_obj, kind);
                let name = user.and_then(|i| self.receiver_name(&frames[i]));
                if let Some(site) = &user_site {
                    self.add_name(target_obj, name.as_ref(), site);
                }
                let waiter = Waiter {
                    thread: thread.to_string(),
                    evidence: Evidence::Futex,
                    site: user_site.clone(),
                };
                self.locks
                    .get_mut(&target_obj)
                    .unwrap()
                    .waiters
                    .push(waiter);
                let wait = Wait {
                    timeout_s: None,
                    waited_s: None,
                    kind: WaitKind::Notify,
                    target: Some(lock_id(self.pid, target_obj)),
                    evidence: Evidence::Futex,
                    site: user_site,
                    name,
                    via,
                    timed,
                    futex: futex_hex,
                    targets: Vec::new(),
                };
                return (ThreadState::ConditionWait, Some(wait), released);
            }
            // Thread.join (3.8-3.12): sleeping on the joined thread's `_tstate_lock`.
            if let Some(jf) = frames
                .iter()
                .find(|f| is_function(f, "threading.py", "_wait_for_tstate_lock"))
            {
                if let Some(joined) = self.walker.local(jf.raw, "self") {
                    let ident = self
                        .objs()
                        .attr(joined, "_ident")
                        .ok()
                        .flatten()
                        .and_then(|i| self.objs().int(i).ok());
                    return (
                        ThreadState::JoinWait,
                        Some(self.join_wait(ident, frames, user, futex_hex, timed, via)),
                        None,
                    );
                }
            }
            // At exit, `threading._shutdown` (3.8-3.12) acquires each non-daemon thread's
            // `_tstate_lock` in turn: it joins that thread.
            if let Some(sf) = frames
                .iter()
                .find(|f| is_function(f, "threading.py", "_shutdown"))
            {
                if let Some(ident) = self.tstate_lock_owner(sf.raw, lock) {
                    let mut w = self.join_wait(Some(ident), frames, user, futex_hex, timed, via);
                    w.site = Some(sf.frame.site());
                    w.via = Some("threading._shutdown".into());
                    return (ThreadState::JoinWait, Some(w), None);
                }
            }
            // An import: sleeping on a `_ModuleLock`'s wakeup lock.
            if let Some(mf) = frames.iter().find(|f| {
                f.frame.file.contains("importlib._bootstrap")
                    && f.frame.function.ends_with("acquire")
            }) {
                if let Some(ml) = self
                    .walker
                    .local(mf.raw, "self")
                    .filter(|s| self.objs().type_name(*s).ok().as_deref() == Some("_ModuleLock"))
                {
                    return (
                        ThreadState::LockWait,
                        Some(self.module_lock_wait(thread, ml, frames, user, futex_hex, timed)),
                        None,
                    );
                }
            }
            self.ensure_lock(lock, kind);
            // The probe's wrapper frame is not where the user's code waits.
            let top = frames.iter().find(|f| !probe::is_probe_file(&f.frame.file));
            let site = top.map(|f| f.frame.site());
            let name = top.and_then(|f| self.waited_name(f));
            if let Some(site) = &site {
                self.add_name(lock, name.as_ref(), site);
            }
            let waiter = Waiter {
                thread: thread.to_string(),
                evidence: Evidence::Futex,
                site: site.clone(),
            };
            self.locks.get_mut(&lock).unwrap().waiters.push(waiter);
            let wait = Wait {
                timeout_s: None,
                waited_s: None,
                kind: WaitKind::Lock,
                target: Some(lock_id(self.pid, lock)),
                evidence: Evidence::Futex,
                site,
                name,
                via: None,
                timed,
                targets: Vec::new(),
                futex: futex_hex,
            };
            return (ThreadState::LockWait, Some(wait), None);
        }

        // 3.13 Thread.join parks in the parking lot: the futex is a semaphore inside a
        // `wait_entry` on the joiner's stack whose `addr` is the joined ThreadHandle's
        // `thread_is_exiting` event; the handle's `ident` names the joined thread.
        if self.objs().layout.offsets.parking_lot
            && frames.iter().any(|f| {
                is_function(f, "threading.py", "join")
                    || is_function(f, "threading.py", "_shutdown")
            })
        {
            let mem = self.objs().mem;
            if let Ok(addr) = mem.ptr(futex - WAIT_ENTRY_SEMA + WAIT_ENTRY_ADDR) {
                if let Ok(ident) =
                    mem.u64(addr.wrapping_sub(THREAD_HANDLE_EXITING_EVENT) + THREAD_HANDLE_IDENT)
                {
                    if self.live_idents.contains(&ident) || ident != 0 {
                        return (
                            ThreadState::JoinWait,
                            Some(self.join_wait(
                                Some(ident as i64),
                                frames,
                                user,
                                futex_hex,
                                timed,
                                via,
                            )),
                            None,
                        );
                    }
                }
            }
        }
        let wait = Wait {
            timeout_s: None,
            waited_s: None,
            kind: WaitKind::UnknownFutex,
            target: None,
            evidence: Evidence::Futex,
            site: frames.first().map(|f| f.frame.site()),
            name: None,
            via: None,
            targets: Vec::new(),
            timed,
            futex: futex_hex,
        };
        (ThreadState::Unknown, Some(wait), None)
    }

    pub(super) fn join_wait(
        &self,
        ident: Option<i64>,
        frames: &[FrameView],
        user: Option<usize>,
        futex: Option<String>,
        timed: bool,
        via: Option<String>,
    ) -> Wait {
        Wait {
            timeout_s: None,
            waited_s: None,
            kind: WaitKind::Join,
            target: ident.map(|i| thread_id(self.pid, i as u64)),
            evidence: Evidence::Futex,
            // All in threading (`_shutdown` at exit): its innermost frame.
            site: user
                .or((!frames.is_empty()).then_some(0))
                .map(|i| frames[i].frame.site()),
            name: user.and_then(|i| self.receiver_name(&frames[i])),
            targets: Vec::new(),
            via,
            timed,
            futex,
        }
    }

    /// The ident of the thread in `threading._active` whose `_tstate_lock` is `lock`, read
    /// through the globals of a frame of `threading`.
    fn tstate_lock_owner(&self, threading_frame: &RawFrame, lock: usize) -> Option<i64> {
        let objs = self.objs();
        let globals = super::multiprocessing::frame_globals(self.walker, threading_frame)?;
        let active = objs.dict_get(globals, "_active").ok()??;
        objs.dict_entries(active)
            .ok()?
            .into_iter()
            .find_map(|(ident, thread)| {
                (objs.attr(thread, "_tstate_lock").ok()?? == lock).then(|| objs.int(ident).ok())?
            })
    }

    pub(super) fn module_lock_wait(
        &mut self,
        thread: &str,
        ml: usize,
        frames: &[FrameView],
        user: Option<usize>,
        futex: Option<String>,
        timed: bool,
    ) -> Wait {
        let module = self
            .objs()
            .attr(ml, "name")
            .ok()
            .flatten()
            .and_then(|n| self.objs().str(n).ok());
        let site = user.map(|i| frames[i].frame.site());
        let lock = self.ensure_lock(ml, LockKind::ModuleLock);
        lock.module = module.clone();
        lock.waiters.push(Waiter {
            thread: thread.to_string(),
            evidence: Evidence::Futex,
            site: site.clone(),
        });
        let name = module.map(|m| format!("import {m}"));
        if let Some(s) = &site {
            self.add_name(ml, name.as_ref(), s);
        }
        Wait {
            timeout_s: None,
            waited_s: None,
            kind: WaitKind::Lock,
            target: Some(lock_id(self.pid, ml)),
            evidence: Evidence::Futex,
            site,
            targets: Vec::new(),
            name,
            via: Some("import".into()),
            timed,
            futex,
        }
    }

    /// How the waiting frame names what it waits on: the subject of the `with` being entered,
    /// or the receiver of the call in progress (`lock` in `lock.acquire()`).
    pub(super) fn waited_name(&self, fv: &FrameView) -> Option<String> {
        let idx = self.walker.current_index(fv.raw)?;
        let code = &fv.raw.code;
        let dialect = self.walker.dialect();
        match bytecode::entering_with(dialect, &code.instructions, idx) {
            Some(at) => bytecode::with_subject(dialect, &code.instructions, at, &code.names),
            None => bytecode::call_receiver(dialect, &code.instructions, idx, &code.names)
                .map(|(r, _)| r),
        }
    }

    pub(super) fn receiver_name(&self, fv: &FrameView) -> Option<String> {
        let idx = self.walker.current_index(fv.raw)?;
        let code = &fv.raw.code;
        bytecode::call_receiver(self.walker.dialect(), &code.instructions, idx, &code.names)
            .map(|(r, _)| r)
    }
}
