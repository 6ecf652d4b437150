//! A target that no longer runs: a process read from a core dump. What `/proc` says of a live
//! process (its threads, what each waits in) comes from the core's notes instead, filled by
//! `crate::core::attach`; this file only holds it and the memory reader either kind of target
//! uses. Nothing here reads `/proc`.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;

use super::procfs::{KernelThread, Mapping};
use crate::error::Result;
use crate::memory::{ProcMemory, ReadMemory};

/// A target's memory: the live process's, or a dumped one's.
pub enum TargetMemory {
    Live(ProcMemory),
    Frozen(Box<dyn ReadMemory + Send>),
}

impl TargetMemory {
    /// Cache pages until `end_snapshot` (a dumped process's pages are kept anyway).
    pub fn begin_snapshot(&self) {
        if let TargetMemory::Live(m) = self {
            m.begin_snapshot()
        }
    }

    pub fn end_snapshot(&self) {
        if let TargetMemory::Live(m) = self {
            m.end_snapshot()
        }
    }

    /// Free the page buffers a live reader keeps for reuse (`ProcMemory::release_spare`).
    pub fn release_spare(&self) {
        if let TargetMemory::Live(m) = self {
            m.release_spare()
        }
    }
}

impl ReadMemory for TargetMemory {
    fn read_into(&self, addr: usize, buf: &mut [u8]) -> Result<()> {
        match self {
            TargetMemory::Live(m) => m.read_into(addr, buf),
            TargetMemory::Frozen(m) => m.read_into(addr, buf),
        }
    }

    fn reread(&self, places: &[(usize, usize)]) -> bool {
        match self {
            TargetMemory::Live(m) => m.reread(places),
            TargetMemory::Frozen(_) => false,
        }
    }
}

/// What a dumped process's threads were doing when it was dumped, as `/proc` would have said.
#[derive(Debug, Clone)]
pub struct Frozen {
    /// Each thread by TID: its state and the syscall it was in, from its registers (no wait
    /// channel, no CPU counters: those are live-only).
    pub kernel: HashMap<i32, KernelThread>,
    /// The asyncio offsets section of the binaries it mapped, looked up once.
    pub asyncio_section: std::result::Result<Option<(String, Vec<u8>)>, String>,
    /// Its mappings, as `/proc/PID/maps` would have listed them.
    pub maps: Vec<Mapping>,
    /// Where each mapped file can be read, by the path the process mapped it at: only files
    /// found and not contradicted by a build id the core kept.
    pub files: HashMap<String, PathBuf>,
}

impl Frozen {
    /// The file mapped at `m`, opened where it was found.
    pub fn open(&self, m: &Mapping) -> Option<File> {
        File::open(self.files.get(&m.path)?).ok()
    }
}
