//! The lock each waiting thread's futex was matched to, kept from one snapshot to the next
//! while the same wait lasts. It only stores and forgets matches: `waits` finds and checks
//! them, and this file reads no memory.

use crate::model::LockKind;

/// The lock object each waiting thread's futex was matched to, kept while the same wait
/// lasts: a thread that has not run since (its `schedstat` timeslices the same) still
/// sleeps in the same frames, so the search of its frames' objects (`candidates`) would find
/// the same lock. A kept match is used only if that object is still a lock of the same kind
/// whose futex is the one slept on (an address freed and reused is not trusted). Entries of
/// waits not seen in a snapshot are dropped at its end.
#[derive(Default)]
pub(crate) struct WaitMatches {
    last: rustc_hash::FxHashMap<WaitKey, Matched>,
    now: rustc_hash::FxHashMap<WaitKey, Matched>,
}

/// (thread ident, futex address, timeslices).
type WaitKey = (u64, usize, u64);
pub(super) type Matched = (usize, LockKind);

impl WaitMatches {
    pub(super) fn get(&mut self, key: WaitKey) -> Option<Matched> {
        if let Some(m) = self.now.get(&key) {
            return Some(*m);
        }
        let m = self.last.remove(&key)?;
        self.now.insert(key, m);
        Some(m)
    }

    pub(super) fn keep(&mut self, key: WaitKey, m: Matched) {
        self.now.insert(key, m);
    }

    /// A snapshot's threads are done: forget the waits it did not see.
    pub(super) fn end_snapshot(&mut self) {
        std::mem::swap(&mut self.last, &mut self.now);
        self.now.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_match_lives_while_its_wait_is_seen_in_each_snapshot() {
        let mut m = WaitMatches::default();
        let (wait, other) = ((7, 0x1000, 3), (8, 0x2000, 5));
        m.keep(wait, (0xa0, LockKind::Lock));
        m.keep(other, (0xb0, LockKind::RLock));
        m.end_snapshot();
        // Only `wait` is seen again: `other` is forgotten at this snapshot's end.
        assert_eq!(m.get(wait), Some((0xa0, LockKind::Lock)));
        assert_eq!(m.get(wait), Some((0xa0, LockKind::Lock)));
        m.end_snapshot();
        assert_eq!(m.get(other), None);
        // The same thread and futex after the thread ran (other timeslices) is another wait.
        assert_eq!(m.get((7, 0x1000, 4)), None);
        assert_eq!(m.get(wait), Some((0xa0, LockKind::Lock)));
        m.end_snapshot();
        m.end_snapshot();
        assert_eq!(m.get(wait), None);
    }
}
