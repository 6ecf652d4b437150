//! Which threads get native frames, and from where: a thread asleep in a syscall outside
//! Python's own waits (a C lock, the GIL, an unknown futex, a syscall gridlock does not
//! model, or any syscall while it holds the GIL) is unwound from the stack pointer and
//! program counter its `syscall` file shows (`native::unwind`), down to the interpreter loop;
//! in a core, from the registers the core kept, over the core's memory and the files it
//! names. A thread waiting on a Python object gets none: a 300-thread dump of Python waits
//! reads no native frame. It never stops a thread.

use std::collections::HashMap;

use crate::cpython::eval_loop::runs_python_frames;
use crate::memory::ReadMemory;
use crate::model::{NativeFrame, Thread, ThreadState, WaitKind};
use crate::native::unwind::{Binaries, MappedBinary};
use crate::target::{elf, procfs, Frozen};
use procfs::KernelThread;

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

/// Fill `native_frames` of every thread of `threads` asleep in a syscall below Python: of
/// process `pid` while it runs, or of the process a core dumped (`frozen`), whose mappings
/// and files the core named.
pub(super) fn attach<M: ReadMemory + ?Sized>(
    pid: i32,
    frozen: Option<&Frozen>,
    threads: &mut [Thread],
    kernel: &HashMap<i32, KernelThread>,
    mem: &M,
    binaries: &mut Binaries,
) {
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
    if wanted.is_empty() {
        return;
    }
    let maps = match frozen {
        Some(f) => f.maps.clone(),
        None => procfs::maps(pid),
    };
    // A core from gcore lists no program header for the file pages it left out (the text),
    // so which mappings were executable is unknown there: every mapped file is a candidate.
    let mapped = mapped_binaries(&maps, frozen.is_none());
    let mut process = binaries.process(&mapped, |b| {
        let m = maps
            .iter()
            .find(|m| (&m.device, m.inode) == (&b.file.0, b.file.1))?;
        match frozen {
            Some(f) => f.open(m),
            None => elf::open_mapped(pid, m).ok(),
        }
    });
    for (i, (pc, sp)) in wanted {
        let unwound = process.unwind(mem, pc, sp, &runs_python_frames);
        threads[i].native_frames = unwound
            .frames
            .into_iter()
            .map(|f| NativeFrame {
                address: format!("{:#x}", f.address),
                offset: f.symbol.as_ref().map(|s| s.1),
                symbol: f.symbol.map(|s| s.0),
                module: f.module,
                scanned: f.scanned,
            })
            .collect();
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
