//! Finding the interpreter in a process: the Python version, the main `PyInterpreterState`
//! and where the GIL holder is recorded.
//!
//! The first process running a given Python binary is searched with py-spy (its ELF symbols,
//! or a scan of the binary's data). What that finds is kept per binary as offsets from where
//! the binary is loaded, so every other process running the same binary (pool workers,
//! pytest-xdist workers, forked or spawned children) is found with a few reads instead of
//! parsing the binary again. A cached answer is checked against the process's own memory
//! before it is used (the first thread state must point back at the interpreter); on any
//! doubt the full search runs.

use std::collections::HashMap;
use std::sync::Arc;

use py_spy::config::{LineNo, LockingStrategy};
use py_spy::python_process_info::{get_python_version, PythonProcessInfo, PythonProcessLayout};
use py_spy::Config;

use super::procfs::Mapping;
use crate::cpython::{self, Layout, Refusal};
use crate::memory::{ProcMemory as Memory, ReadMemory};

/// The GIL record lies inside `_PyRuntime` (3.8-3.11 `gilstate.tstate_current`) or inside
/// the main interpreter, which 3.12+ embeds in `_PyRuntime`: a cached offset is only kept when
/// it is that close.
const MAX_RUNTIME_SPAN: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct Found {
    /// The interpreter's layout, lock layouts checked (shared by processes of one binary).
    pub layout: Arc<Layout>,
    pub interpreter: usize,
    pub gil_address: usize,
    /// Found from the cache, not by a search.
    pub cached: bool,
}

/// Identity of a mapped binary file: (device, inode).
type BinaryKey = (String, u64);

#[derive(Debug, Clone)]
struct BinaryFacts {
    layout: Arc<Layout>,
    /// `_PyRuntime` minus the start of the binary's first mapping (file offset 0).
    runtime_from_start: usize,
    /// The GIL record minus `_PyRuntime`.
    gil_from_runtime: isize,
}

/// What the searches so far learned, per Python binary. One per process tree.
#[derive(Default)]
pub struct DiscoveryCache {
    binaries: HashMap<BinaryKey, BinaryFacts>,
}

/// Why a search failed: in py-spy's words (sorted into gridlock's errors by the caller), or
/// an interpreter gridlock does not read.
pub enum SearchError {
    Search(String),
    Refused(Refusal),
}

impl DiscoveryCache {
    /// The interpreter of process `pid`, whose memory is `mem` and maps `maps`.
    pub fn find(&mut self, pid: i32, mem: &Memory, maps: &[Mapping]) -> Result<Found, SearchError> {
        if let Some(found) = self.from_cache(mem, maps) {
            return Ok(found);
        }
        let (found, runtime) = search_with_retries(pid, mem)?;
        if let Some(runtime) = runtime {
            self.remember(maps, &found, runtime);
        }
        Ok(found)
    }

    fn from_cache(&self, mem: &Memory, maps: &[Mapping]) -> Option<Found> {
        for m in maps.iter().filter(|m| m.offset == 0 && m.inode != 0) {
            let Some(facts) = self.binaries.get(&(m.device.clone(), m.inode)) else {
                continue;
            };
            let layout = &facts.layout;
            let runtime = m.start + facts.runtime_from_start;
            let interpreter = mem
                .ptr(runtime + layout.offsets.runtime_interpreters_head)
                .ok()?;
            if !plausible(mem, layout, interpreter) {
                return None;
            }
            return Some(Found {
                layout: layout.clone(),
                interpreter,
                gil_address: runtime.wrapping_add_signed(facts.gil_from_runtime),
                cached: true,
            });
        }
        None
    }

    fn remember(&mut self, maps: &[Mapping], found: &Found, runtime: usize) {
        // The binary holding `_PyRuntime`: the last file mapping that starts at or below it
        // (its .bss may follow as an anonymous mapping).
        let Some(holder) = maps
            .iter()
            .filter(|m| m.inode != 0 && m.start <= runtime)
            .max_by_key(|m| m.start)
        else {
            return;
        };
        let Some(first) = maps
            .iter()
            .find(|m| m.offset == 0 && m.device == holder.device && m.inode == holder.inode)
        else {
            return;
        };
        let gil_from_runtime = found.gil_address as isize - runtime as isize;
        if gil_from_runtime.unsigned_abs() > MAX_RUNTIME_SPAN || runtime < first.start {
            return;
        }
        self.binaries.insert(
            (first.device.clone(), first.inode),
            BinaryFacts {
                layout: found.layout.clone(),
                runtime_from_start: runtime - first.start,
                gil_from_runtime,
            },
        );
    }
}

/// The interpreter's first thread state points back at it: the address is an interpreter.
fn plausible(mem: &Memory, layout: &Layout, interpreter: usize) -> bool {
    if interpreter == 0 {
        return false;
    }
    let head = layout.offsets.interp_threads_head;
    match mem.ptr(interpreter + head) {
        Ok(tstate) if tstate != 0 => {
            mem.ptr(tstate + layout.offsets.tstate_interp).ok() == Some(interpreter)
        }
        _ => false,
    }
}

/// py-spy's search, tried a few times: a process that has just started may not have loaded
/// its interpreter (or its first thread) yet. Also returns `_PyRuntime`'s address when the
/// binary exports it, for the cache.
fn search_with_retries(pid: i32, mem: &Memory) -> Result<(Found, Option<usize>), SearchError> {
    const TRIES: usize = 5;
    let mut last = SearchError::Search(String::new());
    for attempt in 0..TRIES {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        match search(pid, mem) {
            Ok(found) => return Ok(found),
            Err(e @ SearchError::Refused(_)) => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn search(pid: i32, mem: &Memory) -> Result<(Found, Option<usize>), SearchError> {
    let err = |e: anyhow::Error| SearchError::Search(format!("{e:#}"));
    let config = Config {
        blocking: LockingStrategy::NonBlocking,
        lineno: LineNo::LastInstruction,
        native: false,
        dump_locals: 0,
        ..Config::default()
    };
    let process = remoteprocess::Process::new(pid).map_err(|e| err(e.into()))?;
    let info = PythonProcessInfo::new(&process).map_err(err)?;
    let version = get_python_version(&info, &process).map_err(err)?;
    let addresses = PythonProcessLayout::new(&info, &process, &version, &config).map_err(err)?;
    let runtime = info.get_symbol("_PyRuntime").map(|a| *a as usize);
    let mut layout = cpython::layout_for(mem, version.major, version.minor, version.patch, runtime)
        .map_err(SearchError::Refused)?;
    if !plausible(mem, &layout, addresses.interpreter_address) {
        return Err(SearchError::Search(format!(
            "no thread state points back at the interpreter found at {:#x}",
            addresses.interpreter_address
        )));
    }
    cpython::check_locks(mem, &mut layout, addresses.interpreter_address);
    Ok((
        Found {
            layout: Arc::new(layout),
            interpreter: addresses.interpreter_address,
            gil_address: addresses.threadstate_address,
            cached: false,
        },
        runtime,
    ))
}
