//! The one place gridlock stops a thread of the target (only under `--native`): what a
//! running thread's registers and innermost stack are, taken while it is held in a ptrace
//! stop for as short a time as the reads take. It unwinds nothing and knows no CPython.
//!
//! Never left stopped: one thread at a time is seized (`PTRACE_SEIZE`), interrupted
//! (`PTRACE_INTERRUPT`), waited for within a bound, read and detached. A guard detaches on
//! every path (errors and panics). The whole pass runs on a helper thread of gridlock that
//! is the tracer and ends with the pass: when a tracer thread exits (the pass ends, or
//! gridlock is killed by SIGINT, SIGTERM or SIGKILL at any instant) the kernel detaches its
//! tracees and drops a pending interrupt, so even a thread that did not stop within the bound
//! is not stopped later. A thread that does not stop within the bound ends the pass.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// How long one thread may take to reach its stop before the pass gives up on it.
pub const STOP_TIMEOUT: Duration = Duration::from_millis(100);
/// How many bytes of stack above the stack pointer are copied while the thread is stopped.
pub const STACK_COPY: usize = 64 << 10;

/// What one stopped thread showed.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub pc: u64,
    pub sp: u64,
    pub bp: u64,
    /// The stack from `sp` up, as far as it was readable (at most `STACK_COPY` bytes).
    pub stack: Vec<u8>,
    /// From the interrupt to the detach.
    pub held_for: Duration,
}

/// Why a thread gave no registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopFailure {
    /// ptrace was refused (permissions, Yama's `ptrace_scope`, another tracer).
    NotPermitted,
    /// The thread exited before it stopped.
    Gone,
    /// It did not stop within `STOP_TIMEOUT` (the pass ended there).
    Timeout,
    /// Another ptrace error.
    Failed(Errno),
}

/// Stop each of `tids` (threads of `pid`) in turn, read its registers and stack, let it go.
/// Threads after a timeout or a refusal are not touched (they are not in the result).
pub fn registers_of(pid: i32, tids: &[i32]) -> Vec<(i32, Result<Stopped, StopFailure>)> {
    let tids = tids.to_vec();
    // The helper thread is the tracer: its end detaches whatever it still traces.
    let pass = std::thread::Builder::new()
        .name("gridlock-ptrace".into())
        .spawn(move || {
            let mem = File::open(format!("/proc/{pid}/mem")).ok();
            let mut out = Vec::new();
            for tid in tids {
                let result = stop_and_read(tid, mem.as_ref());
                let stop_here = matches!(
                    result,
                    Err(StopFailure::Timeout | StopFailure::NotPermitted)
                );
                out.push((tid, result));
                if stop_here {
                    break;
                }
            }
            out
        });
    match pass {
        Ok(handle) => handle.join().unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// A seized thread; dropping it detaches if the thread is in a stop, passing on a signal
/// whose delivery the stop intercepted.
struct Seized {
    tid: Pid,
    stopped: bool,
    pending_signal: Option<Signal>,
}

impl Drop for Seized {
    fn drop(&mut self) {
        if self.stopped {
            // Fails only if the thread died meanwhile; nothing is left to let go then.
            let _ = ptrace::detach(self.tid, self.pending_signal);
        }
        // Not stopped: the interrupt may still be pending; the tracer thread's exit drops it.
    }
}

fn stop_and_read(tid: i32, mem: Option<&File>) -> Result<Stopped, StopFailure> {
    let tid = Pid::from_raw(tid);
    ptrace::seize(tid, ptrace::Options::empty()).map_err(|e| match e {
        Errno::EPERM | Errno::EACCES => StopFailure::NotPermitted,
        Errno::ESRCH => StopFailure::Gone,
        e => StopFailure::Failed(e),
    })?;
    let mut seized = Seized {
        tid,
        stopped: false,
        pending_signal: None,
    };
    let started = Instant::now();
    ptrace::interrupt(tid).map_err(|e| match e {
        Errno::ESRCH => StopFailure::Gone,
        e => StopFailure::Failed(e),
    })?;
    wait_for_stop(&mut seized, started)?;
    let regs = ptrace::getregs(tid).map_err(StopFailure::Failed)?;
    let stack = mem.map(|m| read_stack(m, regs.rsp)).unwrap_or_default();
    drop(seized);
    Ok(Stopped {
        pc: regs.rip,
        sp: regs.rsp,
        bp: regs.rbp,
        stack,
        held_for: started.elapsed(),
    })
}

/// Poll for the thread's stop until `STOP_TIMEOUT` has passed since `started`.
fn wait_for_stop(seized: &mut Seized, started: Instant) -> Result<(), StopFailure> {
    let flags = WaitPidFlag::__WALL | WaitPidFlag::WNOHANG;
    let mut pause = Duration::from_micros(20);
    loop {
        match waitpid(seized.tid, Some(flags)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(WaitStatus::PtraceEvent(..)) => {
                seized.stopped = true;
                return Ok(());
            }
            Ok(WaitStatus::Stopped(_, signal)) => {
                // A signal's delivery was stopped first: it is passed on at the detach.
                seized.stopped = true;
                seized.pending_signal = Some(signal);
                return Ok(());
            }
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(Errno::ECHILD) => {
                return Err(StopFailure::Gone)
            }
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(e) => return Err(StopFailure::Failed(e)),
        }
        if started.elapsed() >= STOP_TIMEOUT {
            return Err(StopFailure::Timeout);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(2));
    }
}

/// The stack from `sp` up: the whole copy, or the part before the first unreadable page.
fn read_stack(mem: &File, sp: u64) -> Vec<u8> {
    let mut buf = vec![0u8; STACK_COPY];
    let mut len = STACK_COPY;
    while len >= 4096 {
        if mem.read_exact_at(&mut buf[..len], sp).is_ok() {
            buf.truncate(len);
            return buf;
        }
        len /= 2;
    }
    Vec::new()
}
