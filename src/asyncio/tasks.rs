//! One task as the document has it: its fields from the C struct or the `_PyTask`
//! instance dict, its name, its frames, the `asyncio.Lock`s its suspended `async with`s
//! hold (and, from `acquired`, its bare `acquire()`s), and whether it runs. Done tasks and anything not a task are left out. What it
//! waits for is `waits`'s question, its await chain `chain`'s.

use std::collections::HashMap;

use crate::cpython::layout::common::OB_TYPE;
use crate::model::{Evidence, Frame, Framework, Task, TaskState};

use super::ids::{default_task_name, with_hex};
use super::locks::LockSeen;
use super::reader::{int32, word, Reader};
use super::types::{Kind, TaskImpl};

/// The largest C task struct prefix read in one go (`task_name` + 8 is at most 176).
const TASK_READ_MAX: usize = 256;
/// A task's name object read in one go: an int's first digits, or a short ASCII str.
const NAME_READ: usize = 64;

/// A task's own fields, from the C struct or the `_PyTask` instance dict.
pub(super) struct TaskFields {
    pub(super) lp: usize,
    pub(super) waiter: usize,
    pub(super) coro: usize,
    pub(super) name: Option<String>,
}

impl Reader<'_, '_, '_> {
    /// One task, or `None` for anything that is not a pending task.
    pub(super) fn task(
        &mut self,
        addr: usize,
        eager: bool,
        running: bool,
        step: Option<&Vec<Frame>>,
        locks: &mut HashMap<usize, LockSeen>,
    ) -> Option<(usize, Task)> {
        // One read for the C task's fields and its type.
        let o = self.offs;
        let mut buf = [0u8; TASK_READ_MAX];
        let raw = &mut buf[..(o.task_name + 8).min(TASK_READ_MAX)];
        let whole = self.mem().read_into(addr, raw).is_ok();
        let ty = if whole {
            word(raw, OB_TYPE)
        } else {
            self.walker.objs.type_of(addr).ok()?
        };
        let fields = match self.types.kind(&self.walker.objs, ty)? {
            Kind::Task(TaskImpl::C) if whole => {
                let state =
                    i32::from_le_bytes(raw[o.fut_state..o.fut_state + 4].try_into().unwrap());
                if state != 0 {
                    // Done tasks linger in the registry until collected.
                    return None;
                }
                TaskFields {
                    lp: word(raw, o.fut_loop),
                    waiter: word(raw, o.task_fut_waiter),
                    coro: word(raw, o.task_coro),
                    name: self.task_name(word(raw, o.task_name)),
                }
            }
            Kind::Task(TaskImpl::Py) => self.py_task_fields(addr)?,
            _ => return None,
        };
        let TaskFields {
            lp,
            waiter,
            coro,
            name,
        } = fields;
        let chain = self.await_chain(coro);
        // A task that is not its loop's running task while its coroutine executes has its
        // step under way below another's: the creator of a task in its eager first step.
        let under_way = !running && self.chain_executing;
        let coroutine = chain.first().map(|(rf, _)| rf.code.name.clone());
        let id = self.task_id(addr);
        let frames: Vec<Frame> = match (running, step) {
            (true, Some(sf)) => sf.clone(),
            _ => chain.iter().rev().map(|(_, f)| f.frame.clone()).collect(),
        };
        let mut holds = Vec::new();
        if !running {
            // Innermost first, as threads' stacks are.
            for (rf, facts) in chain.iter().rev() {
                if !facts.async_with {
                    continue;
                }
                for w in self.walker.active_withs(rf) {
                    let Some((lock, semaphore)) = self.asyncio_lock_in_slot(w.exit_slot) else {
                        continue;
                    };
                    let (name, line) = self.walker.with_statement(rf, &w);
                    let site = Frame {
                        line: line.unwrap_or(facts.frame.line),
                        ..facts.frame.clone()
                    }
                    .site();
                    let seen = locks.entry(lock).or_default();
                    seen.semaphore |= semaphore;
                    holds.push(seen.held_by(
                        self.pid,
                        (addr, lock),
                        site,
                        name,
                        Evidence::ValueStack,
                    ));
                }
            }
            holds.extend(self.acquired_holds(addr, &chain, locks));
        }
        let waits_for = if running {
            None
        } else {
            self.task_wait(waiter, &chain, locks)
        };
        let task = Task {
            framework: Framework::Asyncio,
            id,
            pid: self.pid,
            loop_id: self.loop_id(lp),
            name,
            coroutine,
            state: if running || under_way {
                TaskState::Running
            } else {
                TaskState::Pending
            },
            frames,
            waits_for,
            address: with_hex("", addr),
            eager,
            holds,
        };
        Some((lp, task))
    }

    /// A C task's name: a str, or (3.12+) the number of a default `Task-N` name, stored as an
    /// int until `get_name()` is called. Short names are decoded from one read.
    pub(super) fn task_name(&mut self, name: usize) -> Option<String> {
        let mut raw = [0u8; NAME_READ];
        if self.mem().read_into(name, &mut raw).is_err() {
            return match self.kind(name)? {
                Kind::Str => self.walker.objs.str(name).ok(),
                Kind::Int => self.walker.objs.int(name).ok().map(|n| format!("Task-{n}")),
                _ => None,
            };
        }
        match self
            .types
            .info(&self.walker.objs, word(&raw, OB_TYPE))?
            .kind
        {
            Kind::Str => {
                // Compact ASCII (state bits 5 and 6) that fits in what was read.
                let len = word(&raw, 16);
                let state = int32(&raw, 32) as u32;
                let data = self.layout.str_ascii_data;
                if state & 0x60 == 0x60 && len <= NAME_READ - data {
                    Some(raw[data..data + len].iter().map(|b| *b as char).collect())
                } else {
                    self.walker.objs.str(name).ok()
                }
            }
            Kind::Int => {
                // One 30-bit digit at most, non-negative: decoded here; anything else by the
                // general reader.
                let head = word(&raw, 16);
                let (ndigits, negative) = if self.layout.int_lv_tag {
                    (head >> 3, head & 3 == 2)
                } else {
                    (head, false)
                };
                match (ndigits, negative) {
                    (0, false) => Some(default_task_name(0)),
                    (1, false) => Some(default_task_name(int32(&raw, 24) as u32 as u64)),
                    _ => self.walker.objs.int(name).ok().map(|n| format!("Task-{n}")),
                }
            }
            _ => None,
        }
    }

    /// A `_PyTask`'s fields, from its instance `__dict__` (`_state` is only there once it
    /// left the class default `PENDING`).
    pub(super) fn py_task_fields(&mut self, addr: usize) -> Option<TaskFields> {
        let attrs = self.walker.objs.instance_attrs(addr).ok()?;
        let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        if let Some(state) = get("_state") {
            if self.walker.objs.str(state).ok()? != "PENDING" {
                return None;
            }
        }
        let waiter = match get("_fut_waiter") {
            Some(w) if self.kind(w)? != Kind::NoneType => w,
            _ => 0,
        };
        let name = match get("_name") {
            Some(n) if self.kind(n)? == Kind::Str => self.walker.objs.str(n).ok(),
            _ => None,
        };
        Some(TaskFields {
            lp: get("_loop")?,
            waiter,
            coro: get("_coro")?,
            name,
        })
    }
}
