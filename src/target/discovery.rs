//! Finding the interpreter in a process: the Python version, the main `PyInterpreterState`
//! and where the GIL holder is recorded.
//!
//! The first process running a given Python binary is searched with py-spy's knowledge: from
//! `_PyRuntime` and `Py_Version` when the binary exports them (3.11+: read from its dynamic
//! symbol table alone), else from py-spy's parse of the whole binaries (their ELF symbols, or
//! a scan of their data). What that finds is kept per binary as offsets from where
//! the binary is loaded, so every other process running the same binary (pool workers,
//! pytest-xdist workers, forked or spawned children) is found with a few reads instead of
//! parsing the binary again. A cached answer is checked against the process's own memory
//! before it is used (the first thread state must point back at the interpreter); on any
//! doubt the full search runs.

use std::collections::HashMap;
use std::sync::Arc;

use py_spy::binary_parser::BinaryInfo;
use py_spy::config::{LineNo, LockingStrategy};
use py_spy::python_process_info::{
    get_python_version, get_threadstate_address, ContainsAddr, PythonProcessInfo,
    PythonProcessLayout,
};
use py_spy::Config;

use super::procfs::Mapping;
use crate::cpython::{self, Layout, Refusal};
use crate::memory::ReadMemory;

/// Any reader of the target's memory: a live process's, or a core's.
type Memory = dyn ReadMemory;

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
    /// `_PyRuntime.interpreters.head`, where subinterpreters are listed (3.13+, when
    /// `_PyRuntime` is known).
    pub interpreters_head: Option<usize>,
    /// `_PyRuntime`, when known: where a layout's interpreter fields are checked again while
    /// the runtime is too early in its start to tell (`cpython::check_table_fields`).
    pub runtime: Option<usize>,
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
        let (found, runtime) = search_with_retries(pid, mem, maps)?;
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
            let interpreter = runtime_interpreter(mem, layout, runtime)?;
            return Some(Found {
                layout: layout.clone(),
                interpreter,
                gil_address: runtime.wrapping_add_signed(facts.gil_from_runtime),
                interpreters_head: interpreters_head(layout, Some(runtime)),
                runtime: Some(runtime),
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

/// Where `_PyRuntime` lists the interpreters, when the layout knows how to walk them.
pub(crate) fn interpreters_head(layout: &Layout, runtime: Option<usize>) -> Option<usize> {
    layout.offsets.interp_next_and_id?;
    Some(runtime? + layout.offsets.runtime_interpreters_head)
}

/// The main interpreter of the runtime at `runtime` (`_PyRuntime`), once its first thread
/// state points back at it.
fn runtime_interpreter(mem: &Memory, layout: &Layout, runtime: usize) -> Option<usize> {
    let head = mem
        .ptr(runtime + layout.offsets.runtime_interpreters_head)
        .ok()?;
    Some(main_interpreter(mem, layout, head)).filter(|&i| plausible(mem, layout, i))
}

/// The main interpreter (id 0), walking from `head`, the newest interpreter `_PyRuntime` lists
/// (a process running subinterpreters lists those first). `head` itself where the layout does
/// not know the links (before 3.13) or the walk finds no main interpreter.
fn main_interpreter(mem: &Memory, layout: &Layout, head: usize) -> usize {
    let Some((_, id)) = layout.offsets.interp_next_and_id else {
        return head;
    };
    for interp in cpython::threads::interpreters(mem, &layout.offsets, head) {
        match mem.u64(interp + id) {
            Ok(0) => return interp,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    head
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
fn search_with_retries(
    pid: i32,
    mem: &Memory,
    maps: &[Mapping],
) -> Result<(Found, Option<usize>), SearchError> {
    const TRIES: usize = 5;
    let mut last = SearchError::Search(String::new());
    for attempt in 0..TRIES {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        match search(pid, mem, maps) {
            Ok(found) => return Ok(found),
            Err(e @ SearchError::Refused(_)) => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn search(pid: i32, mem: &Memory, maps: &[Mapping]) -> Result<(Found, Option<usize>), SearchError> {
    let process = remoteprocess::Process::new(pid).map_err(|e| search_error(e.into()))?;
    if let Some(info) = exported_runtime(pid, mem, maps) {
        match search_with(mem, &process, &info, false) {
            Err(SearchError::Search(_)) => {}
            done => return done,
        }
    }
    let info = PythonProcessInfo::new(&process).map_err(search_error)?;
    search_with(mem, &process, &info, true)
}

fn search_error(e: anyhow::Error) -> SearchError {
    SearchError::Search(format!("{e:#}"))
}

/// The symbols a CPython 3.11+ binary exports that tell where its runtime lies and which
/// version it is (`Py_Version`, the packed `PY_VERSION_HEX`).
const EXPORTS: [&str; 2] = ["_PyRuntime", "Py_Version"];

/// What py-spy's search needs of the binaries, taken from the dynamic symbols of a Python
/// binary the process maps, when it exports `_PyRuntime` and a 3.11+ `Py_Version`: a few
/// reads instead of parsing the executable and libpython whole (most of a one-shot dump's
/// time on 3.11). `None` sends the caller to the full search.
fn exported_runtime(pid: i32, mem: &Memory, maps: &[Mapping]) -> Option<PythonProcessInfo> {
    let pythonic =
        |file_name: &str| file_name.starts_with("python") || file_name.starts_with("libpython");
    for m in super::elf::mapped_binaries(maps, &pythonic) {
        let Ok(symbols) = super::elf::exported_symbols(pid, m, &EXPORTS) else {
            continue;
        };
        let symbols: HashMap<String, u64> =
            symbols.into_iter().map(|(n, a)| (n, a as u64)).collect();
        let (Some(_), Some(&version_at)) = (symbols.get("_PyRuntime"), symbols.get("Py_Version"))
        else {
            continue;
        };
        let hex = mem.u32_at(version_at as usize).ok()?;
        if hex >> 24 != 3 || (hex >> 16) & 0xff < 11 {
            return None;
        }
        return Some(PythonProcessInfo {
            python_binary: Some(BinaryInfo {
                symbols,
                bss_addr: 0,
                bss_size: 0,
                pyruntime_addr: 0,
                pyruntime_size: 0,
                addr: m.start as u64,
                size: (m.end - m.start) as u64,
            }),
            libpython_binary: None,
            maps: Box::new(NoMaps),
            python_filename: m.path.clone().into(),
            dockerized: false,
        });
    }
    None
}

/// The address ranges py-spy's binary scan would search: none, when the symbols were found.
struct NoMaps;

impl ContainsAddr for NoMaps {
    fn contains_addr(&self, _: usize) -> bool {
        false
    }
}

/// The interpreter, from the binaries' facts in `info`; with `scan`, py-spy's search of the
/// binaries' data when `_PyRuntime` does not lead to it.
fn search_with(
    mem: &Memory,
    process: &remoteprocess::Process,
    info: &PythonProcessInfo,
    scan: bool,
) -> Result<(Found, Option<usize>), SearchError> {
    let err = search_error;
    let config = Config {
        blocking: LockingStrategy::NonBlocking,
        lineno: LineNo::LastInstruction,
        native: false,
        dump_locals: 0,
        ..Config::default()
    };
    let version = get_python_version(info, process).map_err(err)?;
    let runtime = info.get_symbol("_PyRuntime").map(|a| *a as usize);
    let mut layout = cpython::layout_for(mem, version.major, version.minor, version.patch, runtime)
        .map_err(SearchError::Refused)?;
    // Where the GIL holder of `interpreter` is recorded: the debug offsets' `ceval_gil`
    // (3.13+), else py-spy's knowledge of the version.
    let gil_of = |interpreter: usize| match layout.offsets.interp_ceval_gil {
        Some(offset) => mem.ptr(interpreter + offset).ok(),
        None => get_threadstate_address(interpreter, info, process, &version, &config).ok(),
    };
    let from_runtime = runtime.and_then(|runtime| {
        let interpreter = runtime_interpreter(mem, &layout, runtime)?;
        Some((interpreter, gil_of(interpreter)?))
    });
    // py-spy's own search checks the interpreter it finds by reading every thread's stack (a
    // second full read of the target): only taken when `_PyRuntime` does not lead to one.
    let (interpreter, gil_address) = match from_runtime {
        Some(found) => found,
        None if scan => {
            let addresses =
                PythonProcessLayout::new(info, process, &version, &config).map_err(err)?;
            let interpreter = main_interpreter(mem, &layout, addresses.interpreter_address);
            if interpreter != addresses.interpreter_address {
                // py-spy took the GIL record of the newest interpreter: the main one's is wanted.
                (interpreter, gil_of(interpreter).unwrap_or(0))
            } else {
                (addresses.interpreter_address, addresses.threadstate_address)
            }
        }
        None => {
            return Err(SearchError::Search(
                "_PyRuntime does not lead to an interpreter".into(),
            ))
        }
    };
    if !plausible(mem, &layout, interpreter) {
        return Err(SearchError::Search(format!(
            "no thread state points back at the interpreter found at {interpreter:#x}"
        )));
    }
    cpython::check_locks(mem, &mut layout, interpreter);
    Ok((
        Found {
            interpreters_head: interpreters_head(&layout, runtime),
            layout: Arc::new(layout),
            interpreter,
            gil_address,
            runtime,
            cached: false,
        },
        runtime,
    ))
}

/// The interpreter of a process that no longer runs (a core), whose memory is `mem` and maps
/// `maps`: from the dynamic symbols of the Python binaries it mapped (`_PyRuntime`, and
/// `Py_Version` on 3.11+), which `open` finds on disk. Before 3.11 the version is read from
/// `sys.version`'s text in the binary's data, or else from its file name.
pub fn find_frozen(
    mem: &Memory,
    maps: &[Mapping],
    open: &dyn Fn(&Mapping) -> Option<std::fs::File>,
) -> Result<Found, SearchError> {
    let pythonic =
        |file_name: &str| file_name.starts_with("python") || file_name.starts_with("libpython");
    let mut last = SearchError::Search(
        "no Python binary the process mapped could be read (python* or libpython*)".into(),
    );
    for m in super::elf::mapped_binaries(maps, &pythonic) {
        let Some(f) = open(m) else { continue };
        let symbols = match super::elf::exported_symbols_in(&f, m.start, &EXPORTS) {
            Ok(s) => s,
            Err(e) => {
                last = SearchError::Search(format!("{}: {e}", m.path));
                continue;
            }
        };
        let symbols: HashMap<String, u64> =
            symbols.into_iter().map(|(n, a)| (n, a as u64)).collect();
        let Some(&runtime) = symbols.get("_PyRuntime") else {
            last = SearchError::Search(format!("{} does not export _PyRuntime", m.path));
            continue;
        };
        let (bss_addr, bss_size) = writable_data(maps, m);
        let info = PythonProcessInfo {
            python_binary: Some(BinaryInfo {
                symbols: symbols.clone(),
                bss_addr,
                bss_size,
                pyruntime_addr: 0,
                pyruntime_size: 0,
                addr: m.start as u64,
                size: (m.end - m.start) as u64,
            }),
            libpython_binary: None,
            maps: Box::new(NoMaps),
            python_filename: m.path.clone().into(),
            dockerized: false,
        };
        let version = get_python_version(&info, &Frozen(mem)).map_err(|e| {
            SearchError::Search(format!("the Python version of {} is unknown ({e})", m.path))
        })?;
        let runtime = runtime as usize;
        let mut layout = cpython::layout_for(
            mem,
            version.major,
            version.minor,
            version.patch,
            Some(runtime),
        )
        .map_err(SearchError::Refused)?;
        let interpreter = runtime_interpreter(mem, &layout, runtime).ok_or_else(|| {
            SearchError::Search("_PyRuntime does not lead to an interpreter".into())
        })?;
        let gil_address = match layout.offsets.interp_ceval_gil {
            Some(offset) => mem.ptr(interpreter + offset).unwrap_or(0),
            None => {
                let config = Config {
                    blocking: LockingStrategy::NonBlocking,
                    ..Config::default()
                };
                get_threadstate_address(interpreter, &info, &Frozen(mem), &version, &config)
                    .unwrap_or(0)
            }
        };
        cpython::check_locks(mem, &mut layout, interpreter);
        return Ok(Found {
            interpreters_head: interpreters_head(&layout, Some(runtime)),
            layout: Arc::new(layout),
            interpreter,
            gil_address,
            runtime: Some(runtime),
            cached: false,
        });
    }
    Err(last)
}

/// More of a binary's data than `sys.version`'s text is searched in.
const MAX_VERSION_SCAN: usize = 16 << 20;

/// The writable data of binary `m` (its last writable mapping and the anonymous `.bss` right
/// after it), where `Py_GetVersion` formats `sys.version` at start-up: (address, size).
fn writable_data(maps: &[Mapping], m: &Mapping) -> (u64, u64) {
    let Some(i) = maps
        .iter()
        .rposition(|w| w.inode == m.inode && w.device == m.device && w.perms.contains('w'))
    else {
        return (0, 0);
    };
    let mut end = maps[i].end;
    if let Some(bss) = maps.get(i + 1).filter(|b| b.inode == 0 && b.start == end) {
        end = bss.end;
    }
    let size = (end - maps[i].start).min(MAX_VERSION_SCAN);
    (maps[i].start as u64, size as u64)
}

/// A core's memory as py-spy reads a process's.
struct Frozen<'m>(&'m Memory);

impl remoteprocess::ProcessMemory for Frozen<'_> {
    fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), remoteprocess::Error> {
        self.0
            .read_into(addr, buf)
            .map_err(|e| remoteprocess::Error::Other(e.to_string()))
    }
}
