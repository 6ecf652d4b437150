//! Which `asyncio.Lock`s and semaphores a suspended task holds by a bare
//! `await X.acquire()` whose `X.release()` is still ahead in the same coroutine
//! (`acquire_call`), as threads do. Only user frames are judged (asyncio's own acquire and
//! release pairs are its business); a lock is claimed only while memory shows it locked, a
//! semaphore permit while the frame is past its acquire.

use std::collections::HashMap;

use crate::model::{Evidence, Frame, Hold};

use super::chain::ChainFrame;
use super::locks::LockSeen;
use super::reader::Reader;

impl Reader<'_, '_, '_> {
    /// Holds of task `task` from `acquire()` ... `release()` spans around each user frame's
    /// suspension point, innermost frame first, each also noted in `locks`.
    pub(super) fn acquired_holds(
        &mut self,
        task: usize,
        chain: &[ChainFrame],
        locks: &mut HashMap<usize, LockSeen>,
    ) -> Vec<Hold> {
        let mut out = Vec::new();
        for (rf, facts) in chain.iter().rev() {
            if facts.in_asyncio || rf.code.acquires().is_empty() {
                continue;
            }
            let Some(at) = self.walker.current_index(rf) else {
                continue;
            };
            let code = rf.code.clone();
            for (start, end, guard) in code.acquires() {
                if !(*start < at && at < *end) {
                    continue;
                }
                let line = code.line_of_instruction(*start);
                // Suspended on the acquire's own line: still waiting to take it.
                if line.is_some() && line == code.line_of_instruction(at) {
                    continue;
                }
                let Some(obj) = guard
                    .path
                    .as_ref()
                    .and_then(|p| self.walker.resolve_in_frame(rf, p))
                else {
                    continue;
                };
                let semaphore = if self.is_asyncio_semaphore(obj) {
                    true
                } else if self.is_asyncio_lock(obj) && self.asyncio_lock_locked(obj) {
                    false
                } else {
                    continue;
                };
                let site = Frame {
                    line: line.unwrap_or(facts.frame.line),
                    ..facts.frame.clone()
                }
                .site();
                let seen = locks.entry(obj).or_default();
                seen.semaphore |= semaphore;
                out.push(seen.held_by(
                    self.pid,
                    (task, obj),
                    site,
                    guard.text.clone(),
                    Evidence::AcquireCall,
                ));
            }
        }
        out
    }
}
