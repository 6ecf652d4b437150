//! Offsets of `FutureIter.future`, the running-loop holder's loop, and a `collections.deque`.

pub const FUTURE_ITER_FUTURE: usize = 16;
pub const RUNNING_LOOP_HOLDER_LOOP: usize = 16;
/// `set`: `mask` and `table` ({key, hash} entries of 16 bytes).
pub const SET_MASK: usize = 32;
pub const SET_TABLE: usize = 40;
/// `weakref.wr_object`.
pub const WEAKREF_OBJECT: usize = 16;
/// `collections.deque`: ob_size, leftblock, leftindex; `state` counts index moves
/// (Modules/_collectionsmodule.c, same on 3.8-3.13); block `data[64]` at +8, `rightlink` +520.
pub const DEQUE_LEN: usize = 16;
pub const DEQUE_LEFTBLOCK: usize = 24;
pub const DEQUE_LEFTINDEX: usize = 40;
pub const DEQUE_STATE: usize = 56;
pub const DEQUE_BLOCK_DATA: usize = 8;
pub const DEQUE_BLOCK_RIGHTLINK: usize = 520;
pub const DEQUE_BLOCKLEN: usize = 64;
