//! Readers for the few C objects of the standard library that pools and futures are built
//! on: a Python function's qualified name and closure cells (who a done-callback refers to)
//! and the items of a `_queue.SimpleQueue` (an executor's work queue). Layouts checked
//! against each interpreter with ctypes; this file only reads, and knows no frames.

use super::objects::Objects;
use crate::error::{Error, Result};

/// Bound on the items read from one queue (a torn read can make any count up).
const MAX_QUEUE_ITEMS: usize = 4096;
/// `PyCellObject.ob_ref`.
const CELL_REF: usize = 16;

impl Objects<'_> {
    /// `(func_qualname, func_closure)` offsets in `PyFunctionObject`.
    fn function_fields(&self) -> (usize, usize) {
        if self.layout.minor <= 9 {
            (104, 48)
        } else {
            (40, 72)
        }
    }

    /// A plain Python function's `__qualname__`.
    pub fn function_qualname(&self, func: usize) -> Result<String> {
        if !self.type_is(func, "function") {
            return Err(Error::Layout(format!("{func:#x} is not a function")));
        }
        self.str(self.mem.ptr(func + self.function_fields().0)?)
    }

    /// What a Python function's closure cells hold (empty for a function without one).
    pub fn closure_values(&self, func: usize) -> Vec<usize> {
        if !self.type_is(func, "function") {
            return Vec::new();
        }
        let Ok(closure) = self.mem.ptr(func + self.function_fields().1) else {
            return Vec::new();
        };
        if closure == 0 || !self.type_is(closure, "tuple") {
            return Vec::new();
        }
        self.tuple_items(closure)
            .unwrap_or_default()
            .into_iter()
            .filter(|c| self.type_is(*c, "cell"))
            .filter_map(|c| self.mem.ptr(c + CELL_REF).ok())
            .filter(|v| *v != 0)
            .collect()
    }

    /// The items of a `_queue.SimpleQueue`, oldest first: a list and a read position on
    /// 3.8-3.12, a ring buffer on 3.13.
    pub fn simple_queue_items(&self, queue: usize) -> Result<Vec<usize>> {
        if !self.type_is(queue, "_queue.SimpleQueue") {
            return Err(Error::Layout(format!("{queue:#x} is not a SimpleQueue")));
        }
        if self.layout.minor <= 12 {
            let list = self.mem.ptr(queue + 32)?;
            let pos = self.mem.i64(queue + 40)?;
            let items = self.list_items(list)?;
            let pos =
                usize::try_from(pos).map_err(|_| Error::Layout("bad queue position".into()))?;
            return Ok(items.into_iter().skip(pos).take(MAX_QUEUE_ITEMS).collect());
        }
        // RingBuf { put_idx, get_idx, items, items_cap, num_items } after a padded bool.
        let get = self.mem.i64(queue + 32)?;
        let items = self.mem.ptr(queue + 40)?;
        let cap = self.mem.i64(queue + 48)?;
        let n = self.mem.i64(queue + 56)?;
        if cap <= 0 || n < 0 || n > cap || get < 0 || get >= cap || n as usize > MAX_QUEUE_ITEMS {
            return Err(Error::Layout("implausible SimpleQueue ring buffer".into()));
        }
        (0..n)
            .map(|i| self.mem.ptr(items + 8 * ((get + i) % cap) as usize))
            .collect()
    }
}
