//! Which threads get native frames, and from where: a thread asleep in a syscall outside
//! Python's own waits (a C lock, the GIL, an unknown futex, a syscall gridlock does not
//! model, or any syscall while it holds the GIL) is unwound from the stack pointer and
//! program counter its `syscall` file shows (`native::unwind`), down to the interpreter loop.
//! A thread waiting on a Python object gets none: a 300-thread dump of Python waits reads no
//! native frame. Only with `--native` is a running thread (no registers in `/proc`) stopped,
//! one at a time and briefly (`target::ptrace_stop`), and unwound from the registers and the
//! stack copy taken in that stop. In a core, a blocked thread is unwound from the registers
//! the core kept, over the core's memory and the files it names (never stopped: no process).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::cpython::eval_loop::runs_python_frames;
use crate::error::Result;
use crate::memory::ReadMemory;
use crate::model::{NativeFrame, NativeSource, Thread, ThreadState, WaitKind};
use crate::native::unwind::{Binaries, MappedBinary, Unwound};
use crate::target::ptrace_stop::{self, StopFailure};
use crate::target::{elf, procfs, Frozen};
use procfs::KernelThread;

/// How long a live process's mappings are trusted before they are read again, when every
/// address to unwind lies in a binary they list (a library unmapped and another mapped at the
/// same addresses in between would otherwise name frames wrongly).
const MAPS_MAX_AGE: Duration = Duration::from_secs(1);

/// What native unwinding keeps across a session's snapshots: the binaries' unwind data and
/// symbols, and the live process's mappings with when they were read (`/proc/PID/maps` of a
/// large process costs more than the unwinds themselves).
#[derive(Default)]
pub struct NativeCache {
    binaries: Binaries,
    maps: Option<(Instant, Vec<procfs::Mapping>, Vec<MappedBinary>)>,
}

impl NativeCache {
    /// The live process's mappings and its executable binaries: those read before while they
    /// are younger than `MAPS_MAX_AGE` and cover every address in `pcs` (each lies in a
    /// binary they list), else read now. `fresh` reads them now in any case.
    fn live_maps(&mut self, pid: i32, pcs: &[u64], fresh: bool) {
        let covered = |mapped: &[MappedBinary]| {
            pcs.iter()
                .all(|pc| mapped.iter().any(|b| b.range.contains(pc)))
        };
        let reuse = !fresh
            && self
                .maps
                .as_ref()
                .is_some_and(|(at, _, mapped)| at.elapsed() < MAPS_MAX_AGE && covered(mapped));
        if !reuse {
            let maps = procfs::maps(pid);
            let mapped = mapped_binaries(&maps, true);
            self.maps = Some((Instant::now(), maps, mapped));
        }
    }
}

/// Whether `t`'s wait is one Python's own objects do not explain.
fn below_python(t: &Thread) -> bool {
    let unknown_futex = matches!(&t.waits_for, Some(w) if w.kind == WaitKind::UnknownFutex);
    t.owns_gil
        || unknown_futex
        || matches!(
            t.state,
            ThreadState::NativeLockWait
                | ThreadState::GilWait
                | ThreadState::Syscall
                | ThreadState::Unknown
        )
}

/// Fill `native_frames` of every thread of `threads` asleep in a syscall below Python, and
/// with `stop_running` of every running thread (of a live process only). Returns a note when
/// ptrace was refused. `frozen`: the process a core dumped, whose mappings and files the core
/// named.
pub(super) fn attach<M: ReadMemory + ?Sized>(
    pid: i32,
    frozen: Option<&Frozen>,
    threads: &mut [Thread],
    kernel: &HashMap<i32, KernelThread>,
    mem: &M,
    cache: &mut NativeCache,
    stop_running: bool,
) -> Option<String> {
    let regs = |t: &Thread| {
        let k = kernel.get(&t.native_id?)?;
        let s = k
            .syscall
            .as_ref()
            .filter(|_| matches!(k.state, 'S' | 'D'))?;
        (s.sp != 0 && s.pc != 0).then_some((s.pc, s.sp))
    };
    let wanted: Vec<(usize, (u64, u64))> = threads
        .iter()
        .enumerate()
        .filter(|(_, t)| below_python(t))
        .filter_map(|(i, t)| Some((i, regs(t)?)))
        .collect();
    let running: Vec<(usize, i32)> = threads
        .iter()
        .enumerate()
        .filter(|_| stop_running && frozen.is_none())
        .filter_map(|(i, t)| {
            let tid = t.native_id?;
            (kernel.get(&tid)?.state == 'R').then_some((i, tid))
        })
        .collect();
    if wanted.is_empty() && running.is_empty() {
        return None;
    }
    // A core from gcore lists no program header for the file pages it left out (the text),
    // so which mappings were executable is unknown there: every mapped file is a candidate.
    let from_core;
    let (maps, mapped) = match frozen {
        Some(f) => {
            from_core = (f.maps.clone(), mapped_binaries(&f.maps, false));
            (&from_core.0, &from_core.1)
        }
        None => {
            let pcs: Vec<u64> = wanted.iter().map(|(_, (pc, _))| *pc).collect();
            cache.live_maps(pid, &pcs, !running.is_empty());
            let (_, maps, mapped) = cache.maps.as_ref().expect("just read");
            (maps, mapped)
        }
    };
    let mut process = cache.binaries.process(mapped, |b| {
        let m = maps
            .iter()
            .find(|m| (&m.device, m.inode) == (&b.file.0, b.file.1))?;
        match frozen {
            Some(f) => f.open(m),
            None => elf::open_mapped(pid, m).ok(),
        }
    });
    let source = match frozen {
        Some(_) => NativeSource::CoreRegisters,
        None => NativeSource::Syscall,
    };
    for (i, (pc, sp)) in wanted {
        let unwound = process.unwind(mem, pc, sp, &runs_python_frames);
        set_frames(&mut threads[i], unwound, source);
    }
    if running.is_empty() {
        return None;
    }
    // The binaries are read above: a thread is held only for its registers and stack copy.
    let tids: Vec<i32> = running.iter().map(|r| r.1).collect();
    let mut note = None;
    for (tid, result) in ptrace_stop::registers_of(pid, &tids) {
        let Some(&(i, _)) = running.iter().find(|r| r.1 == tid) else {
            continue;
        };
        match result {
            Ok(stopped) => {
                let overlay = StackCopy {
                    base: stopped.sp,
                    bytes: &stopped.stack,
                    rest: mem,
                };
                let (pc, sp, bp) = (stopped.pc, stopped.sp, stopped.bp);
                let unwound = process.unwind_with_bp(&overlay, pc, sp, bp, &runs_python_frames);
                set_frames(&mut threads[i], unwound, NativeSource::PtraceStop);
            }
            Err(StopFailure::NotPermitted) => {
                note = Some(
                    "--native: ptrace was refused, so running threads have no native frames \
                     (run as the target's user or root, with kernel.yama.ptrace_scope 0 or \
                     CAP_SYS_PTRACE)"
                        .to_string(),
                );
            }
            Err(StopFailure::Timeout) => {
                note = Some(format!(
                    "--native: thread {tid} did not stop within {} ms; it and the threads \
                     after it were let go without native frames",
                    ptrace_stop::STOP_TIMEOUT.as_millis()
                ));
            }
            Err(StopFailure::Gone | StopFailure::Failed(_)) => {}
        }
    }
    note
}

fn set_frames(t: &mut Thread, unwound: Unwound, from: NativeSource) {
    t.native_frames = unwound
        .frames
        .into_iter()
        .map(|f| NativeFrame {
            address: format!("{:#x}", f.address),
            offset: f.symbol.as_ref().map(|s| s.offset),
            nearest_export: f.symbol.as_ref().is_some_and(|s| s.nearest_export),
            symbol: f.symbol.map(|s| s.name),
            module: f.module,
            scanned: f.scanned,
        })
        .collect();
    t.native_frames_from = Some(from);
}

/// The target's memory with a thread's stack as copied while it was stopped: reads inside
/// the copy are served from it (the thread has run on since), the rest from the target.
struct StackCopy<'a, M: ?Sized> {
    base: u64,
    bytes: &'a [u8],
    rest: &'a M,
}

impl<M: ReadMemory + ?Sized> ReadMemory for StackCopy<'_, M> {
    fn read_into(&self, addr: usize, buf: &mut [u8]) -> Result<()> {
        let start = (addr as u64).wrapping_sub(self.base) as usize;
        match self.bytes.get(start..start.saturating_add(buf.len())) {
            Some(copy) if addr as u64 >= self.base => {
                buf.copy_from_slice(copy);
                Ok(())
            }
            _ => self.rest.read_into(addr, buf),
        }
    }
}

/// One entry per file mapped (with an executable part, if `executable_only`): its whole
/// extent and where its offset 0 lies.
fn mapped_binaries(maps: &[procfs::Mapping], executable_only: bool) -> Vec<MappedBinary> {
    let mut out: Vec<MappedBinary> = Vec::new();
    for m in maps
        .iter()
        .filter(|m| m.inode != 0 && m.path.starts_with('/'))
    {
        let file = (m.device.clone(), m.inode);
        let (start, end) = (m.start as u64, m.end as u64);
        let start_of_file = start.wrapping_sub(m.offset);
        match out.iter_mut().find(|b| b.file == file) {
            Some(b) => {
                b.range.end = b.range.end.max(end);
                b.range.start = b.range.start.min(start);
                b.start_of_file = b.start_of_file.min(start_of_file);
            }
            None => out.push(MappedBinary {
                file,
                path: m.path.clone(),
                range: start..end,
                start_of_file,
            }),
        }
    }
    let executable: Vec<(String, u64)> = maps
        .iter()
        .filter(|m| m.perms.contains('x'))
        .map(|m| (m.device.clone(), m.inode))
        .collect();
    out.retain(|b| !executable_only || executable.contains(&b.file));
    out
}
