//! How many permits a counting resource has and how many are free: a `threading.Semaphore`'s
//! `_value` (free) and a `BoundedSemaphore`'s `_initial_value` (total; a plain Semaphore has
//! no total: `release()` may add permits). Who holds them is `holders`' (one hold per `with`).

use crate::cpython::objects::Objects;
use crate::model::Permits;

/// Counts above this are no semaphore's: a torn or foreign read.
const MAX_PERMITS: i64 = 1 << 20;

fn count(objs: &Objects, obj: usize, attr: &str) -> Option<u64> {
    let v = objs.int(objs.attr(obj, attr).ok()??).ok()?;
    (0..=MAX_PERMITS).contains(&v).then_some(v as u64)
}

/// The permits of the `threading.Semaphore` or `BoundedSemaphore` at `sem`.
pub(super) fn semaphore(objs: &Objects, sem: usize) -> Option<Permits> {
    let free = count(objs, sem, "_value");
    let total = count(objs, sem, "_initial_value");
    (free.is_some() || total.is_some()).then_some(Permits { total, free })
}
