//! The live process: attaching (through py-spy for interpreter discovery and stacks),
//! memory access and what `/proc` says about it. Read-only; nothing here stops the target.

pub mod memory;
pub mod procfs;
pub mod sockdiag;

use std::collections::HashMap;
use std::sync::Arc;

use py_spy::config::{LineNo, LockingStrategy};
use py_spy::{Config, PythonSpy};

use crate::cpython::threads::CodeInfo;
use crate::cpython::{self, VersionLayout};
use crate::error::{Error, Result};
use crate::model;
use memory::Memory;

pub struct Target {
    pub pid: i32,
    pub mem: Memory,
    pub layout: &'static dyn VersionLayout,
    pub version: String,
    pub interpreter: usize,
    /// Where the GIL holder is recorded (py-spy's `threadstate_address`): the address of
    /// `gilstate.tstate_current` up to 3.11, of the GIL's `_gil_runtime_state` from 3.12.
    pub gil_address: usize,
    pub process: model::Process,
    pub(crate) code_cache: HashMap<usize, Arc<CodeInfo>>,
    /// Offset of the kernel TID inside glibc's `struct pthread` (3.8-3.10 only), found by
    /// matching thread states against `/proc/PID/task` once.
    pub(crate) pthread_tid_offset: Option<usize>,
    /// Read each frame's local variables into snapshots (`--locals`).
    pub locals: bool,
    /// Collect `multiprocessing` objects into snapshots, to link processes (`--tree`).
    pub cross_process: bool,
    /// Work out the shared location each thread writes on its current line (`record`).
    pub writes: bool,
}

impl Target {
    /// Attach to `pid`, with a clear error for every way that can fail.
    pub fn attach(pid: i32) -> Result<Target> {
        if pid <= 0 || !procfs::exists(pid) {
            return Err(Error::NoSuchProcess { pid });
        }
        if procfs::process_state(pid) == Some('Z') {
            return Err(Error::Zombie { pid });
        }
        let mem = Memory::open(pid).map_err(|e| match e {
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
        let config = Config {
            blocking: LockingStrategy::NonBlocking,
            lineno: LineNo::LastInstruction,
            collect_thread_names: true,
            native: false,
            dump_locals: 0,
            ..Config::default()
        };
        let spy = PythonSpy::retry_new(pid, &config, 5).map_err(|e| {
            if !procfs::exists(pid) {
                Error::TargetExited { pid }
            } else {
                let msg = format!("{e:#}");
                if msg.contains("Permission denied") || msg.contains("Operation not permitted") {
                    Error::PermissionDenied {
                        pid,
                        hint: crate::error::permission_hint(),
                    }
                } else if let Some(v) = unsupported_version(&msg) {
                    Error::Unsupported { pid, version: v }
                } else {
                    Error::Attach { pid, reason: msg }
                }
            }
        })?;
        let (major, minor) = (spy.version.major, spy.version.minor);
        let version = format!("{}.{}.{}", major, minor, spy.version.patch);
        let layout = cpython::for_version(major, minor).ok_or(Error::Unsupported {
            pid,
            version: version.clone(),
        })?;
        let interpreter = spy.addresses.interpreter_address;
        let gil_address = spy.addresses.threadstate_address;
        let process = model::Process {
            pid,
            ppid: procfs::ppid(pid),
            name,
            cmdline: procfs::cmdline(pid),
            python_version: version.clone(),
            exited: false,
        };
        Ok(Target {
            pid,
            mem,
            layout,
            version,
            interpreter,
            gil_address,
            process,
            code_cache: HashMap::new(),
            pthread_tid_offset: None,
            locals: false,
            cross_process: false,
            writes: false,
        })
    }

    pub fn alive(&self) -> bool {
        procfs::exists(self.pid) && procfs::process_state(self.pid) != Some('Z')
    }
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
