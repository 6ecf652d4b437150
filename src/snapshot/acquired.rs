//! Which locks and permits a thread holds by a bare `X.acquire()` whose `X.release()` is
//! still ahead in the same function (`acquire_call`). It judges only user frames (the
//! standard library's own acquire/release pairs, as in `Condition.wait`, are its business),
//! and claims a plain lock only while memory shows it locked; RLock owners are read from
//! memory elsewhere.

use super::builder::*;
use super::writes::{is_library_file, Scope};

impl<'w, 'a> Builder<'w, 'a> {
    /// Holds from `acquire()` ... `release()` spans around each user frame's current
    /// instruction, innermost frame first.
    pub(super) fn acquired_holds(&mut self, frames: &[FrameView]) -> Vec<(usize, Hold)> {
        let mut out = Vec::new();
        for fv in frames.iter().filter(|f| !is_library_file(&f.frame.file)) {
            let code = fv.raw.code.clone();
            if code.acquires().is_empty() {
                continue;
            }
            let Some(here) = fv.raw.instr.map(|unit| code.at(unit)) else {
                continue;
            };
            let Some(at) = here.index else {
                continue;
            };
            for (start, end, guard) in code.acquires() {
                if !(*start < at && at < *end) {
                    continue;
                }
                // The call in progress: a frame still inside `X.acquire()` does not hold X yet.
                let calling = code.calling(&here);
                if matches!(calling, Some((r, m)) if m == "acquire" && Some(r) == guard.text.as_ref())
                {
                    continue;
                }
                let Some(obj) = guard
                    .path
                    .as_ref()
                    .and_then(|p| self.resolve(Scope::Frame(fv.raw), p))
                else {
                    continue;
                };
                let Some((lock, kind)) = self.lock_behind(obj) else {
                    continue;
                };
                let held = match kind {
                    LockKind::Lock => self.objs().lock_held(lock) == Some(true),
                    LockKind::Semaphore => true,
                    _ => false,
                };
                if !held {
                    continue;
                }
                let site = Frame {
                    line: code.line_of_instruction(*start).unwrap_or(fv.frame.line),
                    ..fv.frame.clone()
                }
                .site();
                self.ensure_lock(lock, kind);
                self.add_name(lock, guard.text.as_ref(), &site);
                out.push((
                    lock,
                    Hold {
                        lock: lock_id(self.pid, lock),
                        evidence: Evidence::AcquireCall,
                        site: Some(site),
                        name: guard.text.clone(),
                    },
                ));
            }
        }
        out
    }
}
