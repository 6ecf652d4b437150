//! A target being sampled, with what its snapshots keep from one to the next: decoded code
//! objects, where the probe's tables, asyncio's registries and `threading._active` are, and
//! where glibc keeps a thread's TID. The caches live here, not in `target`, so that the live
//! process knows nothing of the readers above it. Nothing here reads memory by itself.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::cpython::threads::CodeInfo;
use crate::error::Result;
use crate::target::discovery::DiscoveryCache;
use crate::target::{ReadOptions, Target};

pub struct Session {
    pub target: Target,
    pub(super) code_cache: HashMap<usize, Arc<CodeInfo>>,
    /// `sys.modules` by name, while its keys table stays the same.
    pub(super) modules_index: crate::cpython::modules_index::ModulesIndex,
    /// Offset of the kernel TID inside glibc's `struct pthread` (3.8-3.10 only), found by
    /// matching thread states against `/proc/PID/task` once.
    pub(super) pthread_tid_offset: Option<usize>,
    /// Where the in-target probe's tables are, if the target loaded it.
    pub(super) probe: crate::probe::ProbeCache,
    /// asyncio's module dict and type names, found once.
    pub(super) asyncio: crate::asyncio::AsyncioCache,
    /// The `threading._active` dict, once found, and the names last read from it.
    pub(super) threading_active: super::threads::ActiveNames,
    /// Where the target's `os.environ` is, for the test it runs.
    pub(super) tests: super::current_test::TestCache,
    /// The program's names of locks found so far (`names`).
    pub(super) names: super::names::NameCache,
    /// The target's C library, told from its mappings (again while the loader may map it).
    pub(super) libc: Option<crate::target::from_maps::FromMaps<crate::native::Libc>>,
    /// Unwind data and symbols of the binaries the target maps, read once per file, and its
    /// mappings.
    pub(super) binaries: super::native_frames::NativeCache,
    /// The lock objects futex waits were matched to, while the same waits last.
    pub(super) wait_matches: super::wait_matches::WaitMatches,
}

impl Session {
    pub fn new(target: Target) -> Session {
        Session {
            target,
            code_cache: HashMap::new(),
            modules_index: crate::cpython::modules_index::ModulesIndex::kept(),
            pthread_tid_offset: None,
            probe: Default::default(),
            asyncio: Default::default(),
            threading_active: Default::default(),
            tests: Default::default(),
            names: Default::default(),
            libc: None,
            binaries: Default::default(),
            wait_matches: Default::default(),
        }
    }

    /// Attach to `pid` (see `Target::attach`).
    pub fn attach(pid: i32, read: ReadOptions) -> Result<Session> {
        Target::attach(pid, read).map(Session::new)
    }

    /// Attach to `pid`, reusing what `discovery` learned of processes running the same binary.
    pub fn attach_with(
        pid: i32,
        read: ReadOptions,
        discovery: &mut DiscoveryCache,
    ) -> Result<Session> {
        Target::attach_with(pid, read, discovery).map(Session::new)
    }
}

impl Deref for Session {
    type Target = Target;
    fn deref(&self) -> &Target {
        &self.target
    }
}

impl DerefMut for Session {
    fn deref_mut(&mut self) -> &mut Target {
        &mut self.target
    }
}
