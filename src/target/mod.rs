//! The live process: attaching (through py-spy for interpreter discovery),
//! memory access and what `/proc` says about it. Read-only; nothing here stops the target
//! but `ptrace_stop`, and that only when the verb opted in (`--native`).

pub mod discovery;
pub mod elf;
pub(crate) mod from_maps;
pub mod frozen;
pub mod namespaces;
pub mod procfs;
pub mod ptrace_stop;
pub mod signals;
pub mod sockdiag;
pub mod taskfiles;

use std::sync::Arc;
use std::time::Duration;

use crate::cpython::{Layout, Refusal};
use crate::error::{Error, Result};
use crate::memory::{ProcMemory, ReadMemory};
use crate::model;
use discovery::{DiscoveryCache, SearchError};
use from_maps::FromMaps;
pub use frozen::{Frozen, TargetMemory};

/// What a snapshot reads beyond stacks, locks and waits, chosen by the verb at attach.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Each frame's local variables (`--locals`).
    pub locals: bool,
    /// `multiprocessing` objects, to link processes (`--tree`).
    pub cross_process: bool,
    /// The shared locations each thread writes (`record`, `run`: race candidates).
    pub writes: bool,
    /// Native frames of running threads too, each stopped briefly with ptrace (`--native`).
    pub native: bool,
}

/// How old a process must be before a failed attach is final (`Target::attach`).
const STARTING_UP: Duration = Duration::from_secs(3);
/// How often a process still starting is looked at again.
const STARTING_UP_RETRY: Duration = Duration::from_millis(50);

pub struct Target {
    pub pid: i32,
    pub mem: TargetMemory,
    pub layout: Arc<Layout>,
    pub version: String,
    pub interpreter: usize,
    /// Where the GIL holder is recorded (py-spy's `threadstate_address`): the address of
    /// `gilstate.tstate_current` up to 3.11, of the GIL's `_gil_runtime_state` from 3.12.
    pub gil_address: usize,
    /// Where `_PyRuntime` lists the interpreters (3.13+): threads running in a subinterpreter
    /// have their innermost frames there.
    pub interpreters_head: Option<usize>,
    /// `_PyRuntime`, when known.
    pub(crate) runtime: Option<usize>,
    pub process: model::Process,
    /// What each snapshot reads beyond stacks, locks and waits (set at attach; `top` toggles locals).
    pub read: ReadOptions,
    /// The binary's static data around the GIL (`_PyRuntime`): a futex there is the
    /// interpreter's own (the GIL's condition variable), never a Python lock's, whose
    /// semaphores live on the heap or a waiter's stack. Read through `runtime_region()`.
    pub(crate) runtime_region: FromMaps<Option<(usize, usize)>>,
    /// Each thread's `/proc` files, open across snapshots.
    pub(crate) task_files: taskfiles::TaskFiles,
    /// Each thread's TID in the target's own PID namespace, which its thread state holds.
    pub(crate) namespace_tids: namespaces::NamespaceTids,
    /// The target lives in another PID namespace than gridlock (a container).
    pub other_pid_namespace: bool,
    /// A process read from a core dump: what `/proc` would have said of it.
    pub frozen: Option<Frozen>,
}

impl Target {
    /// Attach to `pid`, with a clear error for every way that can fail. A process that has
    /// only just started (`python app.py & gridlock dump $!`) may not be Python yet (the shell
    /// has forked, not exec'd) or not have made its interpreter: it is looked at again until
    /// it is `STARTING_UP` old.
    pub fn attach(pid: i32, read: ReadOptions) -> Result<Target> {
        loop {
            match Target::attach_with(pid, read, &mut DiscoveryCache::default()) {
                Err(Error::Attach { .. } | Error::NotPython { .. })
                    if procfs::age(pid).is_some_and(|age| age < STARTING_UP) =>
                {
                    std::thread::sleep(STARTING_UP_RETRY)
                }
                attached => return attached,
            }
        }
    }

    /// Attach to `pid`, finding its interpreter from what `discovery` learned of other
    /// processes running the same Python binary, when it can.
    pub fn attach_with(
        pid: i32,
        read: ReadOptions,
        discovery: &mut DiscoveryCache,
    ) -> Result<Target> {
        if pid <= 0 || !procfs::exists(pid) {
            return Err(Error::NoSuchProcess { pid });
        }
        if procfs::process_state(pid) == Some('Z') {
            return Err(Error::Zombie { pid });
        }
        let mem = ProcMemory::open(pid).map_err(|e| match e {
            // `/proc/PID/mem` of a live process without an address space: a kernel thread.
            Error::NoSuchProcess { .. } if procfs::exists(pid) => {
                match procfs::process_state(pid) {
                    Some('Z') => Error::Zombie { pid },
                    _ => Error::NotPython {
                        pid,
                        name: procfs::comm(pid),
                    },
                }
            }
            e => e,
        })?;
        // Reading the maps needs the same permission as reading memory; probe it now so a
        // permission problem is reported as one (not as "not Python").
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| {
            match e.raw_os_error() {
                Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied {
                    pid,
                    hint: crate::error::permission_hint(),
                },
                _ => Error::NoSuchProcess { pid },
            }
        })?;
        let mut probe = [0u8; 1];
        if let Some(addr) = first_readable_address(&maps) {
            if let Err(Error::Memory { source, .. }) = mem.read_into(addr, &mut probe) {
                if matches!(
                    source.raw_os_error(),
                    Some(libc::EACCES) | Some(libc::EPERM)
                ) {
                    return Err(Error::PermissionDenied {
                        pid,
                        hint: crate::error::permission_hint(),
                    });
                }
            }
        }
        let name = procfs::comm(pid);
        if !maps_look_like_python(&maps) {
            return Err(Error::NotPython { pid, name });
        }
        let mappings = procfs::parse_maps(&maps);
        let found = discovery.find(pid, &mem, &mappings).map_err(|e| {
            let msg = match e {
                SearchError::Search(msg) => msg,
                SearchError::Refused(Refusal::Unsupported(version)) => {
                    return Error::Unsupported {
                        pid,
                        version,
                        supported: crate::cpython::layout::supported_range(),
                    }
                }
                SearchError::Refused(Refusal::FreeThreaded(version)) => {
                    return Error::FreeThreaded { pid, version }
                }
                SearchError::Refused(Refusal::Unreadable(reason)) => {
                    return Error::Layout(format!("process {pid}: {reason}"))
                }
            };
            if !procfs::exists(pid) {
                Error::TargetExited { pid }
            } else if msg.contains("Permission denied") || msg.contains("Operation not permitted") {
                Error::PermissionDenied {
                    pid,
                    hint: crate::error::permission_hint(),
                }
            } else if let Some(v) = unsupported_version(&msg) {
                Error::Unsupported {
                    pid,
                    version: v,
                    supported: crate::cpython::layout::supported_range(),
                }
            } else {
                Error::Attach { pid, reason: msg }
            }
        })?;
        let layout = found.layout.clone();
        let version = layout.version.clone();
        let interpreter = found.interpreter;
        let gil_address = found.gil_address;
        let runtime_region = static_region(&mappings, gil_address);
        let process = model::Process {
            pid,
            ppid: procfs::ppid(pid),
            name,
            cmdline: procfs::cmdline(pid),
            python_version: version.clone(),
            exited: false,
            exited_at: None,
            interpreter_found: Some(if found.cached { "cached" } else { "searched" }.into()),
            current_test: None,
            core: None,
            notes: layout.notes.clone(),
            idle: None,
            celery: None,
        };
        Ok(Target {
            pid,
            mem: TargetMemory::Live(mem),
            layout,
            version,
            interpreter,
            gil_address,
            interpreters_head: found.interpreters_head,
            runtime: found.runtime,
            process,
            read,
            runtime_region: if gil_address == 0 {
                FromMaps::settled(None)
            } else {
                FromMaps::read_now(runtime_region)
            },
            task_files: taskfiles::TaskFiles::new(pid),
            namespace_tids: namespaces::NamespaceTids::new(pid),
            other_pid_namespace: namespaces::other_pid_namespace(pid).unwrap_or(false),
            frozen: None,
        })
    }

    /// Read now what an attach made while the interpreter was still starting could not read
    /// (`run` attaches right after exec), each piece until it is known: the lock types, once
    /// `_thread` is imported; 3.12's interpreter-list and GIL fields, once the runtime can
    /// check them; the GIL record's address, once the interpreter has made its GIL (3.12+
    /// `ceval.gil` is NULL until then). Seen on pyenv's 3.12 under load: every GIL wait of a
    /// `run` was an unknown futex and a GIL deadlock went unreported.
    pub(crate) fn settle_interpreter(&mut self) {
        let needs_locks = !self.layout.locks_checked;
        let needs_fields = self.layout.interpreter_fields_pending.is_some();
        if needs_locks || needs_fields {
            let mut layout = (*self.layout).clone();
            if needs_locks {
                let notes = crate::cpython::check_locks(&self.mem, &mut layout, self.interpreter);
                self.process.notes.extend(notes);
            }
            if needs_fields {
                let before = layout.notes.len();
                crate::cpython::gil_fields::check_table_fields(
                    &self.mem,
                    &mut layout,
                    self.runtime,
                );
                self.process
                    .notes
                    .extend(layout.notes[before..].iter().cloned());
                self.interpreters_head = discovery::interpreters_head(&layout, self.runtime);
            }
            self.layout = Arc::new(layout);
        }
        if self.gil_address == 0 {
            let pointer = self.layout.offsets.interp_ceval_gil;
            let gil = pointer.and_then(|at| self.mem.ptr(self.interpreter + at).ok());
            if let Some(gil) = gil.filter(|&g| g != 0) {
                self.gil_address = gil;
                self.runtime_region = match &self.frozen {
                    Some(f) => FromMaps::settled(static_region(&f.maps, gil)),
                    None => FromMaps::read_now(static_region(&procfs::maps(self.pid), gil)),
                };
            }
        }
    }

    /// The static data around the GIL, looked up again while the loader may still be
    /// mapping libpython (`FromMaps`). Seen on pyenv's 3.8 (a shared libpython): `run`
    /// attached before the GIL's address was in any binary's mapping, every GIL wait of the
    /// run was then an unknown futex, and a GIL deadlock went unreported.
    pub(crate) fn runtime_region(&mut self) -> Option<(usize, usize)> {
        let (pid, gil) = (self.pid, self.gil_address);
        self.runtime_region
            .get(Option::is_some, || static_region(&procfs::maps(pid), gil))
    }

    pub fn alive(&self) -> bool {
        self.frozen.is_some()
            || procfs::exists(self.pid) && procfs::process_state(self.pid) != Some('Z')
    }
}

/// The mapping holding `addr` when it is a binary's static data: a file mapping, or the
/// anonymous `.bss` mapping right after one (never the heap).
pub(crate) fn static_region(maps: &[procfs::Mapping], addr: usize) -> Option<(usize, usize)> {
    let i = maps.iter().position(|m| m.start <= addr && addr < m.end)?;
    let m = &maps[i];
    let file_backed = |m: &procfs::Mapping| m.inode != 0;
    let bss = m.path.is_empty() && i > 0 && file_backed(&maps[i - 1]) && maps[i - 1].end == m.start;
    (file_backed(m) || bss).then_some((m.start, m.end))
}

fn first_readable_address(maps: &str) -> Option<usize> {
    maps.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let range = f.next()?;
        let perms = f.next()?;
        perms
            .starts_with('r')
            .then(|| usize::from_str_radix(range.split('-').next()?, 16).ok())?
    })
}

/// A CPython process maps either libpython or an executable named python*.
fn maps_look_like_python(maps: &str) -> bool {
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .any(|path| {
            let file = path.rsplit('/').next().unwrap_or(path);
            file.starts_with("libpython") || file.starts_with("python")
        })
}

fn unsupported_version(msg: &str) -> Option<String> {
    let idx = msg.find("Unsupported version of Python: ")?;
    Some(msg[idx + 31..].split_whitespace().next()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_python_maps() {
        let maps = "7f00-7f10 r-xp 00000000 08:01 1 /root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0\n";
        assert!(maps_look_like_python(maps));
        assert!(!maps_look_like_python(
            "5500-5600 r-xp 0 08:01 2 /usr/bin/sleep\n"
        ));
        assert!(maps_look_like_python(
            "5500-5600 r-xp 0 08:01 2 /usr/bin/python3.11\n"
        ));
    }
}
