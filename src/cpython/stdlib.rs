//! Readers for the few C objects of the standard library that pools and futures are built
//! on: a Python function's qualified name and closure cells (who a done-callback refers to),
//! what a bound method is bound to, and the items of a `_queue.SimpleQueue` (an executor's
//! work queue) and of a `collections.deque` (an event loop's ready queue, a `queue.Queue`). The offsets are the
//! target's `Layout::stdlib` (`layout.rs`); this file only reads, and knows no frames and no
//! versions.

use super::layout::asyncio_common::{
    DEQUE_BLOCKLEN, DEQUE_BLOCK_DATA, DEQUE_BLOCK_RIGHTLINK, DEQUE_LEFTBLOCK, DEQUE_LEFTINDEX,
    DEQUE_LEN,
};
use super::layout::common::{METHOD_FUNC, METHOD_SELF};
use super::layout::SimpleQueueLayout;
use super::objects::Objects;
use crate::error::{Error, Result};

/// Bound on the items read from one queue (a torn read can make any count up).
const MAX_QUEUE_ITEMS: usize = 4096;

/// `PyCFunctionObject.m_ml` (a `PyMethodDef`, whose first field is the C string `ml_name`).
const CFUNCTION_ML: usize = 16;
/// Bound on a C method's name.
const MAX_C_NAME: usize = 64;
/// `_asyncio`'s C wrappers a task queues to run its step (`TaskStepMethWrapper.sw_task`) or,
/// before 3.10, its wakeup (`TaskWakeupMethWrapper.ww_task`): the task right after the object
/// header, in every supported version.
const TASK_WRAPPER_TASK: usize = 16;

/// A callable as a queued callback is: a function, or a method bound to an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callable {
    /// A function's or bound method's `__qualname__` (`Event.set`), or a C method's name
    /// (`set_result`).
    pub name: String,
    /// The object a method is bound to.
    pub bound_to: Option<usize>,
    /// The function itself (for its closure), when it is a Python function.
    pub function: Option<usize>,
}

impl Objects<'_> {
    /// A plain Python function's `__qualname__`.
    pub fn function_qualname(&self, func: usize) -> Result<String> {
        if !self.type_is(func, "function") {
            return Err(Error::Layout(format!("{func:#x} is not a function")));
        }
        self.str(self.mem.ptr(func + self.layout.stdlib.func_qualname)?)
    }

    /// What a callable is: a Python function, a bound Python method (`im_func`, `im_self`),
    /// a C method bound to its object (`m_ml->ml_name`, `m_self`), or the C task's step or
    /// wakeup wrapper (named `Task.__step` / `Task.__wakeup`, bound to its task). None for
    /// others.
    pub fn callable(&self, obj: usize) -> Option<Callable> {
        let ty = self.type_name_rc(obj).ok()?;
        match &*ty {
            "function" => Some(Callable {
                name: self.function_qualname(obj).ok()?,
                bound_to: None,
                function: Some(obj),
            }),
            "method" => {
                let func = self.mem.ptr(obj + METHOD_FUNC).ok()?;
                Some(Callable {
                    name: self.function_qualname(func).ok()?,
                    bound_to: self.mem.ptr(obj + METHOD_SELF).ok().filter(|s| *s != 0),
                    function: Some(func),
                })
            }
            // `builtin_method` is a `PyCMethodObject` (a C method needing its class, 3.9+):
            // a `PyCFunctionObject` with one more field at its end.
            "builtin_function_or_method" | "builtin_method" => {
                let def = self.mem.ptr(obj + CFUNCTION_ML).ok()?;
                let name = self.mem.ptr(def).ok().filter(|n| *n != 0)?;
                let raw = self.mem.bytes(name, MAX_C_NAME).ok()?;
                let end = raw.iter().position(|b| *b == 0)?;
                let name = std::str::from_utf8(&raw[..end]).ok()?.to_string();
                Some(Callable {
                    name,
                    bound_to: self.mem.ptr(obj + METHOD_SELF).ok().filter(|s| *s != 0),
                    function: None,
                })
            }
            other => {
                let name = match other.rsplit('.').next() {
                    Some("TaskStepMethWrapper") => "Task.__step",
                    Some("TaskWakeupMethWrapper") => "Task.__wakeup",
                    _ => return None,
                };
                Some(Callable {
                    name: name.into(),
                    bound_to: self
                        .mem
                        .ptr(obj + TASK_WRAPPER_TASK)
                        .ok()
                        .filter(|t| *t != 0),
                    function: None,
                })
            }
        }
    }

    /// The items of a `collections.deque`, left to right: blocks of 64 slots linked by
    /// `rightlink`, the first item at `leftindex` of the left block.
    pub fn deque_items(&self, dq: usize) -> Result<Vec<usize>> {
        if !self.type_is(dq, "collections.deque") {
            return Err(Error::Layout(format!("{dq:#x} is not a deque")));
        }
        let len = self.mem.i64(dq + DEQUE_LEN)?;
        let idx = self.mem.i64(dq + DEQUE_LEFTINDEX)?;
        if !(0..=MAX_QUEUE_ITEMS as i64).contains(&len)
            || !(0..DEQUE_BLOCKLEN as i64).contains(&idx)
        {
            return Err(Error::Layout("implausible deque".into()));
        }
        let mut block = self.mem.ptr(dq + DEQUE_LEFTBLOCK)?;
        let (mut left, mut idx) = (len as usize, idx as usize);
        let mut out = Vec::with_capacity(left);
        while left > 0 {
            if block == 0 {
                return Err(Error::Layout("deque ends early".into()));
            }
            let raw = self
                .mem
                .bytes(block + DEQUE_BLOCK_DATA, DEQUE_BLOCKLEN * 8)?;
            for c in raw[idx * 8..].chunks_exact(8).take(left) {
                out.push(u64::from_le_bytes(c.try_into().unwrap()) as usize);
                left -= 1;
            }
            idx = 0;
            block = self.mem.ptr(block + DEQUE_BLOCK_RIGHTLINK)?;
        }
        Ok(out)
    }

    /// What a Python function's closure cells hold (empty for a function without one).
    pub fn closure_values(&self, func: usize) -> Vec<usize> {
        if !self.type_is(func, "function") {
            return Vec::new();
        }
        let Ok(closure) = self.mem.ptr(func + self.layout.stdlib.func_closure) else {
            return Vec::new();
        };
        if closure == 0 || !self.type_is(closure, "tuple") {
            return Vec::new();
        }
        self.tuple_items(closure)
            .unwrap_or_default()
            .into_iter()
            .filter(|c| self.type_is(*c, "cell"))
            .filter_map(|c| self.mem.ptr(c + self.layout.stdlib.cell_ref).ok())
            .filter(|v| *v != 0)
            .collect()
    }

    /// The items of a `_queue.SimpleQueue`, oldest first: a list and a read position on
    /// 3.8-3.12, a ring buffer on 3.13+.
    pub fn simple_queue_items(&self, queue: usize) -> Result<Vec<usize>> {
        if !self.type_is(queue, "_queue.SimpleQueue") {
            return Err(Error::Layout(format!("{queue:#x} is not a SimpleQueue")));
        }
        match self.layout.stdlib.simple_queue {
            SimpleQueueLayout::List { list, pos } => {
                let list = self.mem.ptr(queue + list)?;
                let pos = self.mem.i64(queue + pos)?;
                let items = self.list_items(list)?;
                let pos =
                    usize::try_from(pos).map_err(|_| Error::Layout("bad queue position".into()))?;
                Ok(items.into_iter().skip(pos).take(MAX_QUEUE_ITEMS).collect())
            }
            SimpleQueueLayout::Ring {
                get,
                items,
                cap,
                len,
            } => {
                let get = self.mem.i64(queue + get)?;
                let items = self.mem.ptr(queue + items)?;
                let cap = self.mem.i64(queue + cap)?;
                let n = self.mem.i64(queue + len)?;
                if cap <= 0
                    || n < 0
                    || n > cap
                    || get < 0
                    || get >= cap
                    || n as usize > MAX_QUEUE_ITEMS
                {
                    return Err(Error::Layout("implausible SimpleQueue ring buffer".into()));
                }
                (0..n)
                    .map(|i| self.mem.ptr(items + 8 * ((get + i) % cap) as usize))
                    .collect()
            }
        }
    }
}
