//! A core dump as a target the snapshot reads like a live one: its binaries found and checked
//! against the build ids the core kept, its interpreter found from their symbols, and what
//! `/proc` would have said of each thread taken from its registers (`NT_PRSTATUS`: on x86-64
//! `orig_rax` is the syscall it was in, `rdi`, `rsi`, `rdx`, `r10` its first arguments).
//! It does not read the core's bytes itself (`Core`) nor take the snapshot (`snapshot`).

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use super::Core;
use crate::cpython::asyncio_debug::{may_hold_section, SECTION, SECTION_MAX};
use crate::cpython::Refusal;
use crate::error::{Error, Result};
use crate::model;
use crate::target::discovery::{self, SearchError};
use crate::target::from_maps::FromMaps;
use crate::target::procfs::{KernelThread, Mapping, Syscall};
use crate::target::TargetMemory;
use crate::target::{elf, namespaces, static_region, taskfiles, Frozen, ReadOptions, Target};

/// What a core cannot tell that a live process would: said once in the report.
pub const LIVE_ONLY: &str = "read from a core dump: the live-only evidence (wait channels, \
    CPU counters from schedstat, /proc/locks, sockets' peers) is absent, so a thread outside a \
    syscall is reported running and waits that only /proc explains stay unexplained";

/// The binaries the interpreter lives in, by file name.
fn pythonic(file_name: &str) -> bool {
    file_name.starts_with("python") || file_name.starts_with("libpython")
}

/// The target `core` is, read as `read` asks.
pub fn target(core: Core, read: ReadOptions) -> Result<Target> {
    let pid = core.process.pid;
    let maps = core.maps();
    let mut notes = Vec::new();
    let binaries: Vec<&Mapping> = elf::mapped_binaries(&maps, &pythonic).collect();
    if binaries.is_empty() {
        return Err(Error::NotPython {
            pid,
            name: core.process.name.clone(),
        });
    }
    for m in &binaries {
        let Some(file) = core.file(&m.path) else {
            continue;
        };
        if let Some(why) = &file.missing {
            return Err(Error::BadCore {
                path: core.path.display().to_string(),
                reason: format!(
                    "the process mapped {} but {} cannot be opened ({why}): give the root it \
                     saw with --sysroot, or its executable with --executable",
                    m.path,
                    file.host.display()
                ),
            });
        }
        if !core.check_build_id(&m.path)? {
            notes.push(format!(
                "{} was not checked against the core: it kept no build id of {}",
                file.host.display(),
                m.path
            ));
        }
    }
    let open = |m: &Mapping| -> Option<File> {
        let f = core.file(&m.path)?;
        f.missing.is_none().then(|| File::open(&f.host).ok())?
    };
    let found = discovery::find_frozen(&core.memory, &maps, &open).map_err(|e| match e {
        SearchError::Refused(Refusal::Unsupported(version)) => Error::Unsupported {
            pid,
            version,
            supported: crate::cpython::layout::supported_range(),
        },
        SearchError::Refused(Refusal::FreeThreaded(version)) => {
            Error::FreeThreaded { pid, version }
        }
        SearchError::Refused(Refusal::Unreadable(reason)) => {
            Error::Layout(format!("core of process {pid}: {reason}"))
        }
        SearchError::Search(reason) => Error::Attach { pid, reason },
    })?;
    let kernel: HashMap<i32, KernelThread> = core
        .threads
        .iter()
        .map(|t| (t.tid, kernel_thread(t)))
        .collect();
    let mut tids: Vec<i32> = kernel.keys().copied().collect();
    tids.sort_unstable();
    let asyncio_section = asyncio_section(&core, &maps, &open);
    let files = readable_files(&core, &maps, &mut notes);
    let layout = found.layout.clone();
    notes.splice(0..0, layout.notes.iter().cloned());
    notes.push(LIVE_ONLY.into());
    if !core.lost_stacks.is_empty() {
        notes.push(lost_stacks_note(&core.lost_stacks));
    }
    let process = model::Process {
        pid,
        ppid: (core.process.ppid > 0).then_some(core.process.ppid),
        name: core.process.name.clone(),
        cmdline: core.process.args.clone(),
        python_version: layout.version.clone(),
        exited: false,
        exited_at: None,
        interpreter_found: Some("searched".into()),
        current_test: None,
        core: Some(core.path.display().to_string()),
        idle: None,
        celery: None,
        notes,
    };
    Ok(Target {
        pid,
        version: layout.version.clone(),
        layout: Arc::clone(&layout),
        interpreter: found.interpreter,
        gil_address: found.gil_address,
        interpreters_head: found.interpreters_head,
        runtime: found.runtime,
        process,
        read,
        runtime_region: FromMaps::settled(static_region(&maps, found.gil_address)),
        task_files: taskfiles::TaskFiles::new(pid),
        namespace_tids: namespaces::NamespaceTids::fixed(pid, &tids),
        other_pid_namespace: false,
        frozen: Some(Frozen {
            kernel,
            asyncio_section,
            maps,
            files,
        }),
        mem: TargetMemory::Frozen(Box::new(core.memory)),
    })
}

/// Every file the process mapped that gridlock can read (for native frames; a gcore core
/// does not say which mappings were executable), by its mapped path: one whose build id
/// contradicts the core's is left out with a note (the interpreter's own binaries were
/// refused before).
fn readable_files(
    core: &Core,
    maps: &[Mapping],
    notes: &mut Vec<String>,
) -> HashMap<String, PathBuf> {
    let mut files = HashMap::new();
    for m in maps.iter().filter(|m| m.path.starts_with('/')) {
        let Some(f) = core.file(&m.path) else {
            continue;
        };
        if f.missing.is_some() || files.contains_key(&m.path) {
            continue;
        }
        match core.check_build_id(&m.path) {
            Ok(_) => {
                files.insert(m.path.clone(), f.host.clone());
            }
            Err(e) => notes.push(format!("native frames are not named in {}: {e}", m.path)),
        }
    }
    files
}

/// Which threads' stacks the core holds as zeros, and what that hides.
fn lost_stacks_note(tids: &[i32]) -> String {
    let list: Vec<String> = tids.iter().map(|t| t.to_string()).collect();
    format!(
        "the core holds only zeros for the stack of thread(s) {}: the program that wrote it \
         could not read them (gdb's gcore gives up on a whole mapping at its first unreadable \
         page, such as a guard page inside a thread's stack; a core the kernel writes keeps \
         them), so what lay there (C frames, lock wait records) is unknown",
        list.join(", ")
    )
}

/// What `/proc/PID/task/TID/{stat,syscall}` would have said of a dumped thread: asleep in
/// the syscall its `orig_rax` names, or running (outside any syscall) when it is `-1`.
pub fn kernel_thread(t: &super::CoreThread) -> KernelThread {
    let r = &t.registers;
    let in_syscall = r.orig_rax >= 0;
    KernelThread {
        tid: t.tid,
        state: if in_syscall { 'S' } else { 'R' },
        syscall: in_syscall.then_some(Syscall {
            nr: r.orig_rax,
            args: r.args,
            sp: r.rsp,
            pc: r.rip,
        }),
        wchan: None,
        cpu_ns: None,
        timeslices: None,
    }
}

/// The `.AsyncioDebug` section of the first binary that may hold it and does.
fn asyncio_section(
    core: &Core,
    maps: &[Mapping],
    open: &dyn Fn(&Mapping) -> Option<File>,
) -> std::result::Result<Option<(String, Vec<u8>)>, String> {
    for m in elf::mapped_binaries(maps, &may_hold_section) {
        let Some(f) = open(m) else {
            let host = core.file(&m.path).map(|f| f.host.display().to_string());
            return Err(format!(
                "{} cannot be opened",
                host.unwrap_or(m.path.clone())
            ));
        };
        match elf::read_section(&f, SECTION, SECTION_MAX) {
            Ok(Some(bytes)) => return Ok(Some((m.path.clone(), bytes))),
            Ok(None) => {}
            Err(e) => return Err(format!("{}: {e}", m.path)),
        }
    }
    Ok(None)
}
