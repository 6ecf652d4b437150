//! `multiprocessing` semaphores seen by one process (SemLocks, holds through `with`, futex
//! waits no `threading` object explains) and its joins of child processes, for linking
//! processes in `--tree`. It does not link processes itself: that is `crossproc`.

use std::collections::HashSet;

use super::builder::*;
pub use super::mp_view::{MpHold, MpJoin, MpView, MpWait, SemLockObj};
use crate::cpython::layout::common::*;

/// The sleeping threads of this snapshot inside `Popen.wait` (`multiprocessing/popen_fork.py`,
/// which every start method's `Popen` inherits), with the child's pid read from `self.pid`.
pub(super) fn child_joins(walker: &Walker, raw: &[RawThread], threads: &[Thread]) -> Vec<MpJoin> {
    let objs = &walker.objs;
    let mut out = Vec::new();
    let asleep = |t: &&Thread| t.kernel.as_ref().is_some_and(|k| k.state == "S");
    for (rt, t) in raw.iter().zip(threads).filter(|(_, t)| asleep(t)) {
        let Some(j) = t.frames.iter().take(WAIT_SEARCH_FRAMES).position(|f| {
            f.file.ends_with("multiprocessing/popen_fork.py")
                && f.function.rsplit('.').next() == Some("wait")
        }) else {
            continue;
        };
        let Some(rf) = rt.frames.get(j) else { continue };
        let Some(pid) = walker
            .local(rf, "self")
            .and_then(|popen| objs.attr(popen, "pid").ok().flatten())
            .and_then(|p| objs.int(p).ok())
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p > 0)
        else {
            continue;
        };
        let timed = walker
            .local(rf, "timeout")
            .is_some_and(|timeout| !objs.is_none(timeout));
        let user = t.frames[j..]
            .iter()
            .find(|f| !f.file.contains("/multiprocessing/"));
        out.push(MpJoin {
            thread: t.id.clone(),
            pid,
            site: user.map(Frame::site),
            timed,
        });
    }
    out
}

pub(super) const SEMLOCK_HANDLE: usize = 16;
pub(super) const SEMLOCK_LAST_TID: usize = 24;
pub(super) const SEMLOCK_COUNT: usize = 32;
pub(super) const SEMLOCK_MAXVALUE: usize = 36;
pub(super) const SEMLOCK_KIND: usize = 40;

pub fn read_semlock(objs: &Objects, addr: usize) -> Option<SemLockObj> {
    if objs.type_name(addr).ok()? != "_multiprocessing.SemLock" {
        return None;
    }
    let mem = objs.mem;
    Some(SemLockObj {
        addr,
        handle: mem.ptr(addr + SEMLOCK_HANDLE).ok()?,
        last_tid: mem.u64(addr + SEMLOCK_LAST_TID).ok()?,
        count: mem.i32(addr + SEMLOCK_COUNT).ok()?,
        maxvalue: mem.i32(addr + SEMLOCK_MAXVALUE).ok()?,
        kind: mem.i32(addr + SEMLOCK_KIND).ok()?,
    })
}

/// `multiprocessing` wrappers whose attributes lead to SemLocks (`_semlock`, a Queue's
/// `_rlock`/`_wlock`/`_sem`, a Condition's `_lock`/`_sleeping_count`/...).
pub(super) const MP_WRAPPERS: &[&str] = &[
    "Lock",
    "RLock",
    "Semaphore",
    "BoundedSemaphore",
    "Condition",
    "Event",
    "Barrier",
    "Queue",
    "JoinableQueue",
    "SimpleQueue",
];

/// The module globals dict of a frame (`f_globals`).
pub(super) fn frame_globals(walker: &Walker, frame: &RawFrame) -> Option<usize> {
    walker.frame_globals(frame)
}

/// Every SemLock reachable from any frame: locals, value stacks and module globals, through
/// `multiprocessing` wrappers and argument tuples (two levels deep).
pub(super) fn collect_semlocks(walker: &Walker, raw: &[RawThread]) -> Vec<SemLockObj> {
    let objs = &walker.objs;
    let mut roots: Vec<usize> = Vec::new();
    let mut globals = HashSet::new();
    for t in raw {
        for f in &t.frames {
            roots.extend(walker.frame_objects(f));
            if let Some(g) = frame_globals(walker, f) {
                if globals.insert(g) {
                    roots.extend(
                        objs.dict_items(g)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(_, v)| v),
                    );
                }
            }
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut level: Vec<usize> = roots;
    for depth in 0..3 {
        let mut next = Vec::new();
        for obj in level {
            if obj == 0 || !seen.insert(obj) {
                continue;
            }
            let Ok(ty) = objs.type_name(obj) else {
                continue;
            };
            match ty.as_str() {
                "_multiprocessing.SemLock" => out.extend(read_semlock(objs, obj)),
                "tuple" if depth < 2 => next.extend(objs.tuple_items(obj).unwrap_or_default()),
                "list" if depth < 2 => next.extend(
                    objs.list_items(obj)
                        .unwrap_or_default()
                        .into_iter()
                        .take(64),
                ),
                t if MP_WRAPPERS.contains(&t) => next.extend(
                    objs.instance_attrs(obj)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(_, v)| v),
                ),
                _ => {}
            }
        }
        level = next;
    }
    out
}

impl<'w, 'a> Builder<'w, 'a> {
    /// A `with` on a `multiprocessing` lock keeps the wrapper's bound `__exit__`.
    pub(super) fn note_mp_hold(&mut self, thread: &str, fv: &FrameView, with: &ActiveWith) {
        let slot = with.exit_slot;
        let objs = self.objs();
        let owner = match objs.type_name(slot).ok().as_deref() {
            Some("method") => objs.mem.ptr(slot + METHOD_SELF).unwrap_or(0),
            _ => return,
        };
        let Some(semlock) = objs
            .attr(owner, "_semlock")
            .ok()
            .flatten()
            .filter(|s| read_semlock(objs, *s).is_some())
        else {
            return;
        };
        let (name, site) = self.with_site(fv, with);
        if let Some(mp) = self.mp.as_mut() {
            mp.holds.push(MpHold {
                thread: thread.to_string(),
                semlock,
                site,
                name,
            });
        }
    }

    /// A futex no `threading` object explains: find the SemLock whose semaphore it is.
    pub(super) fn note_mp_wait(&mut self, thread: &str, frames: &[FrameView], futex: usize) {
        let objs = self.objs();
        let in_mp = |f: &FrameView| f.frame.file.contains("multiprocessing/");
        let mut semlock = None;
        'search: for fv in frames.iter().take(WAIT_SEARCH_FRAMES) {
            for s in self.walker.frame_objects(fv.raw) {
                let mut cands = vec![s];
                if let Ok(ty) = objs.type_name(s) {
                    if ty == "builtin_function_or_method" || ty == "method" {
                        if let Ok(o) = objs.mem.ptr(s + METHOD_SELF) {
                            cands.push(o);
                        }
                    }
                }
                let mut more = Vec::new();
                for c in &cands {
                    if let Ok(ty) = objs.type_name(*c) {
                        if MP_WRAPPERS.contains(&ty.as_str()) {
                            for (_, v) in objs.instance_attrs(*c).unwrap_or_default() {
                                more.push(v);
                                if let Ok(inner) = objs.attr(v, "_semlock") {
                                    more.extend(inner);
                                }
                            }
                        }
                    }
                }
                cands.extend(more);
                for c in cands {
                    if let Some(sl) = read_semlock(objs, c) {
                        if sl.handle == futex {
                            semlock = Some(c);
                            break 'search;
                        }
                    }
                }
            }
        }
        let notify = frames.iter().any(|f| {
            in_mp(f)
                && f.frame.function.rsplit('.').next() == Some("wait")
                && self
                    .walker
                    .local(f.raw, "self")
                    .and_then(|s| objs.type_name(s).ok())
                    .map(|t| matches!(t.as_str(), "Condition" | "Event" | "Barrier"))
                    .unwrap_or(false)
        });
        let user = frames.iter().position(|f| !in_mp(f));
        let via = user.and_then(|u| u.checked_sub(1)).map(|i| {
            let f = &frames[i];
            qualified(
                &f.frame.function,
                &f.raw.code.names.locals,
                f.raw,
                self.walker,
            )
        });
        let site = user.map(|i| frames[i].frame.site());
        let name = user.and_then(|i| self.waited_name(&frames[i]));
        if let Some(mp) = self.mp.as_mut() {
            mp.waits.push(MpWait {
                thread: thread.to_string(),
                futex,
                semlock,
                notify,
                site,
                name,
                via,
            });
        }
    }
}
