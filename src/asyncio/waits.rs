//! What a suspended task waits for: another task, a gather, an asyncio primitive (a lock,
//! an event, a queue, a sleep) or a bare future, with the await's site and how it was
//! known. A lock wait is exact only when the task's future is among the lock's waiters.

use std::collections::HashMap;

use crate::cpython::layout::asyncio_common::*;
use crate::model::{lock_id, Evidence, LockName, NameHow, TaskWait, TaskWaitKind};

use super::chain::ChainFrame;
use super::ids::{with_hex, with_hex_parts};
use super::locks::LockSeen;
use super::reader::Reader;
use super::types::Kind;

impl Reader<'_, '_, '_> {
    pub(super) fn task_wait(
        &mut self,
        waiter: usize,
        chain: &[ChainFrame],
        locks: &mut HashMap<usize, LockSeen>,
    ) -> Option<TaskWait> {
        // Innermost first, as threads' stacks are.
        let site_frame = chain.iter().rev().find(|c| !c.1.in_asyncio).map(|c| &c.1);
        let site = site_frame.map(|f| f.site.clone());
        let name = site_frame.and_then(|f| f.awaited_name().map(str::to_string));
        // The asyncio primitive whose method is waiting, if any (innermost asyncio frames).
        let primitive = chain
            .iter()
            .rev()
            .take_while(|c| c.1.in_asyncio)
            .find_map(|(rf, f)| {
                if f.file == "tasks.py" && f.function == "sleep" {
                    return Some((TaskWaitKind::Sleep, None, "asyncio.sleep".to_string()));
                }
                if f.file != "locks.py" && f.file != "queues.py" {
                    return None;
                }
                let obj = self.local_slot(rf, f.self_slot?)?;
                let ty = self.ty(obj)?;
                let kind = ty.primitive?;
                Some((kind, Some(obj), format!("{}.{}", ty.name, f.function)))
            });
        if waiter == 0 {
            // Nothing awaited: the task is scheduled to run (e.g. after `await asyncio.sleep(0)`).
            return None;
        }
        let wty = match self.chain_end {
            Some((end, ty)) if end == waiter => self.types.info(&self.walker.objs, ty),
            _ => self.ty(waiter),
        };
        let mut wait = TaskWait {
            kind: TaskWaitKind::Future,
            target: None,
            targets: Vec::new(),
            future: Some(with_hex("", waiter)),
            evidence: Evidence::Memory,
            site,
            name,
            via: None,
            program_name: None,
        };
        if !matches!(primitive.as_ref().map(|p| p.0), Some(k) if k != TaskWaitKind::Sleep) {
            // `asyncio` in `asyncio.sleep()` names a module, not what is awaited.
            wait.name = None;
        }
        if matches!(wty.as_ref().map(|t| t.kind), Some(Kind::Task(_))) {
            wait.kind = TaskWaitKind::Task;
            wait.target = Some(self.task_id(waiter));
            wait.via = Some("await".into());
        } else if wty.as_ref().is_some_and(|t| t.gathering) {
            wait.kind = TaskWaitKind::Gather;
            wait.via = Some("asyncio.gather".into());
            let children = self.walker.objs.attr(waiter, "_children").ok().flatten();
            let items = children
                .and_then(|c| self.walker.objs.list_items(c).ok())
                .unwrap_or_default();
            for c in items {
                if matches!(self.kind(c), Some(Kind::Task(_))) {
                    wait.targets.push(self.task_id(c));
                }
            }
        } else if let Some((kind, obj, via)) = primitive {
            wait.kind = kind;
            wait.via = Some(via);
            if let Some(obj) = obj {
                let semaphore = kind == TaskWaitKind::Semaphore && self.is_asyncio_semaphore(obj);
                if kind == TaskWaitKind::Lock || semaphore {
                    // Exact when the future is one of the lock's (semaphore's) waiters.
                    if !self.deque_contains(obj, "_waiters", waiter) {
                        wait.evidence = Evidence::Unknown;
                    }
                    wait.target = Some(lock_id(self.pid, obj));
                    let seen = locks.entry(obj).or_default();
                    seen.semaphore |= semaphore;
                    if let (Some(n), Some(s)) = (&wait.name, &wait.site) {
                        let ln = LockName {
                            how: NameHow::Local,
                            name: n.clone(),
                            frame: s.clone(),
                        };
                        if !seen.names.contains(&ln) {
                            seen.names.push(ln);
                        }
                    }
                } else {
                    wait.target =
                        Some(with_hex_parts(&[&self.pid_prefix, kind.as_str(), ":"], obj));
                }
            }
        }
        Some(wait)
    }

    /// Whether `obj.<attr>` is a deque holding `item`.
    pub(super) fn deque_contains(&mut self, obj: usize, attr: &str, item: usize) -> bool {
        let Some(dq) = self.walker.objs.attr(obj, attr).ok().flatten() else {
            return false;
        };
        if self.ty(dq).map(|t| t.name.clone()).as_deref() != Some("collections.deque") {
            return false;
        }
        let mem = self.mem();
        let (Ok(len), Ok(mut block), Ok(idx)) = (
            mem.i64(dq + DEQUE_LEN),
            mem.ptr(dq + DEQUE_LEFTBLOCK),
            mem.i64(dq + DEQUE_LEFTINDEX),
        ) else {
            return false;
        };
        let mut left = len.clamp(0, 1 << 16) as usize;
        let mut idx = idx.clamp(0, DEQUE_BLOCKLEN as i64 - 1) as usize;
        while left > 0 && block != 0 {
            let Ok(raw) = mem.bytes(block + DEQUE_BLOCK_DATA, DEQUE_BLOCKLEN * 8) else {
                return false;
            };
            for c in raw[idx * 8..].chunks_exact(8).take(left) {
                if u64::from_le_bytes(c.try_into().unwrap()) as usize == item {
                    return true;
                }
                left -= 1;
            }
            idx = 0;
            block = mem.ptr(block + DEQUE_BLOCK_RIGHTLINK).unwrap_or(0);
        }
        false
    }
}
