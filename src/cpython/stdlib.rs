//! Readers for the few C objects of the standard library that pools and futures are built
//! on: a Python function's qualified name and closure cells (who a done-callback refers to)
//! and the items of a `_queue.SimpleQueue` (an executor's work queue). The offsets are the
//! target's `Layout::stdlib` (`layout.rs`); this file only reads, and knows no frames and no
//! versions.

use super::layout::SimpleQueueLayout;
use super::objects::Objects;
use crate::error::{Error, Result};

/// Bound on the items read from one queue (a torn read can make any count up).
const MAX_QUEUE_ITEMS: usize = 4096;

impl Objects<'_> {
    /// A plain Python function's `__qualname__`.
    pub fn function_qualname(&self, func: usize) -> Result<String> {
        if !self.type_is(func, "function") {
            return Err(Error::Layout(format!("{func:#x} is not a function")));
        }
        self.str(self.mem.ptr(func + self.layout.stdlib.func_qualname)?)
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
