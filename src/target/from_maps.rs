//! A fact a live process's memory maps give (where the GIL's static data lies, which libc is
//! mapped), kept across snapshots but looked up again while the dynamic loader may still be
//! changing the maps: `run` attaches right after exec, when a library may not be mapped yet,
//! or mapped in one piece not yet split by `mprotect`. It reads no maps itself; its caller's
//! lookup does.

use std::time::{Duration, Instant};

/// How often a fact not found yet is looked up again.
const RETRY: Duration = Duration::from_millis(200);
/// How long after its last look a found fact is looked up once more before it is settled.
const SETTLE: Duration = Duration::from_secs(1);

pub(crate) struct FromMaps<T> {
    value: T,
    /// When the maps were last read for it; None once settled.
    looked: Option<Instant>,
}

impl<T: Copy> FromMaps<T> {
    /// A fact that will not change: a core's, or one with nothing to look for.
    pub(crate) fn settled(value: T) -> Self {
        FromMaps {
            value,
            looked: None,
        }
    }

    /// A fact just read from a live process's maps.
    pub(crate) fn read_now(value: T) -> Self {
        FromMaps {
            value,
            looked: Some(Instant::now()),
        }
    }

    /// The fact, looked up again with `lookup` every 200 ms while `found` says it is not
    /// there, and once a second after the last look; settled after a found fact is found
    /// again a second later.
    pub(crate) fn get(&mut self, found: impl Fn(&T) -> bool, lookup: impl FnOnce() -> T) -> T {
        if let Some(at) = self.looked {
            let since = at.elapsed();
            let was_found = found(&self.value);
            if (!was_found && since >= RETRY) || since >= SETTLE {
                self.value = lookup();
                let settled = was_found && since >= SETTLE && found(&self.value);
                self.looked = (!settled).then(Instant::now);
            }
        }
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settled_fact_is_never_looked_up_and_a_fresh_one_not_at_once() {
        let mut core = FromMaps::settled(None::<u8>);
        assert_eq!(core.get(Option::is_some, || panic!("looked up")), None);
        let mut live = FromMaps::read_now(Some(1u8));
        assert_eq!(live.get(Option::is_some, || panic!("looked up")), Some(1));
        let mut missing = FromMaps::read_now(None::<u8>);
        assert_eq!(missing.get(Option::is_some, || panic!("looked up")), None);
    }

    #[test]
    fn a_missing_fact_is_looked_up_again_and_settles_once_found_twice() {
        let past = |d: Duration| Some(Instant::now() - d);
        let mut f = FromMaps::read_now(None::<u8>);
        f.looked = past(RETRY);
        assert_eq!(f.get(Option::is_some, || Some(7)), Some(7));
        assert!(f.looked.is_some(), "found once: looked at again later");
        f.looked = past(SETTLE);
        assert_eq!(f.get(Option::is_some, || Some(8)), Some(8));
        assert!(f.looked.is_none(), "found again a second later: settled");
        assert_eq!(f.get(Option::is_some, || panic!("looked up")), Some(8));
    }
}
