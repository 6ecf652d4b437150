//! The standard library's C objects that pools and futures are built on (a function's
//! qualname and closure, a `_queue.SimpleQueue`'s items), per version.

/// The few standard-library C objects that pools and futures are built on: a Python
/// function (who a done-callback refers to) and a `_queue.SimpleQueue` (an executor's work
/// queue). Not in `_Py_DebugOffsets`; checked against each interpreter with ctypes
/// (`id()`-relative reads of `__qualname__`, `__closure__` and queued items).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdlibOffsets {
    /// `PyFunctionObject.func_qualname`.
    pub func_qualname: usize,
    /// `PyFunctionObject.func_closure`.
    pub func_closure: usize,
    /// `PyCellObject.ob_ref`.
    pub cell_ref: usize,
    pub simple_queue: SimpleQueueLayout,
}

/// Where a `_queue.SimpleQueue` keeps its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimpleQueueLayout {
    /// 3.8-3.12: a list and the read position in it.
    List { list: usize, pos: usize },
    /// 3.13+: `RingBuf { put_idx, get_idx, items, items_cap, num_items }` after a padded bool.
    Ring {
        get: usize,
        items: usize,
        cap: usize,
        len: usize,
    },
}

/// The standard-library offsets of CPython 3.`minor` (3.8 and newer).
pub fn stdlib_offsets(minor: u8) -> StdlibOffsets {
    let (func_qualname, func_closure) = if minor <= 9 { (104, 48) } else { (40, 72) };
    StdlibOffsets {
        func_qualname,
        func_closure,
        cell_ref: 16,
        simple_queue: if minor <= 12 {
            SimpleQueueLayout::List { list: 32, pos: 40 }
        } else {
            SimpleQueueLayout::Ring {
                get: 32,
                items: 40,
                cap: 48,
                len: 56,
            }
        },
    }
}

#[cfg(test)]
mod stdlib_tests {
    use super::*;
    use crate::cpython::layout::for_version;

    #[test]
    fn every_layout_carries_its_versions_stdlib_offsets() {
        let l = for_version(3, 12, 1).unwrap();
        assert_eq!(l.stdlib.func_qualname, 40);
        assert!(matches!(
            l.stdlib.simple_queue,
            SimpleQueueLayout::List { list: 32, pos: 40 }
        ));
        let l = for_version(3, 9, 18).unwrap();
        assert_eq!((l.stdlib.func_qualname, l.stdlib.func_closure), (104, 48));
        let l = for_version(3, 13, 0).unwrap();
        assert!(matches!(
            l.stdlib.simple_queue,
            SimpleQueueLayout::Ring { get: 32, .. }
        ));
    }
}
