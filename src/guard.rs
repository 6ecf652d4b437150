//! How `run`'s process tree dies with gridlock, even when gridlock is killed by SIGKILL and
//! can do nothing more: the command gets a parent-death signal, and a guard process (gridlock
//! itself, re-executed, outside the tree) is kept told which processes the tree holds and
//! kills them when gridlock's end of their pipe closes. It may not kill anything it was not
//! told of: each process is named by its pid and start time.

use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, Stdio};

use crate::target::procfs;

/// Set in the environment of the guard process: `main` runs `guard_main` when it is.
pub const GUARD_ENV: &str = "GRIDLOCK_RUN_GUARD";

/// Start `cmd` so that it is killed (SIGKILL) when gridlock dies, even by SIGKILL.
pub fn die_with_parent(cmd: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec only async-signal-safe calls (prctl, getppid, raise).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // gridlock died before the prctl: the signal will never come.
            if libc::getppid() != parent {
                libc::raise(libc::SIGKILL);
            }
            Ok(())
        });
    }
}

/// gridlock's end of the guard's pipe.
pub struct Guard {
    pipe: Option<ChildStdin>,
}

impl Guard {
    /// Start the guard (before `run` becomes a subreaper, so that the guard, which leaves by
    /// forking, is re-parented to init and not into the tree). A guard that cannot start
    /// leaves the parent-death signal alone to do its job.
    pub fn start() -> Guard {
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(_) => return Guard { pipe: None },
        };
        let child = Command::new(exe)
            .env(GUARD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(mut c) => {
                // Taken first: waiting closes the child's stdin otherwise.
                let pipe = c.stdin.take();
                // The first process exits as soon as its fork, the guard, is on its own.
                let _ = c.wait();
                Guard { pipe }
            }
            Err(_) => Guard { pipe: None },
        }
    }

    /// Tell the guard the tree's processes now (all of them: the last list is what it kills).
    pub fn update(&mut self, pids: &[i32]) {
        let Some(pipe) = &mut self.pipe else { return };
        let line: Vec<String> = pids
            .iter()
            .filter_map(|&p| Some(format!("{p}:{}", procfs::start_time(p)?)))
            .collect();
        // A guard that went away makes this fail (SIGPIPE is ignored): nothing more to tell.
        if writeln!(pipe, "{}", line.join(" ")).is_err() {
            self.pipe = None;
        }
    }
}

/// The guard process: leave gridlock's tree and session, read the latest list of the tree's
/// processes until gridlock's end of the pipe closes, then kill every one still running.
pub fn guard_main() -> ! {
    // SAFETY: called first thing in `main`, while the process has one thread.
    unsafe {
        match libc::fork() {
            0 => {
                // Out of the terminal's process group: Ctrl-C is gridlock's to handle.
                libc::setsid();
            }
            -1 => libc::_exit(1),
            _ => libc::_exit(0),
        }
    }
    let mut last = String::new();
    for line in std::io::stdin().lock().lines() {
        match line {
            Ok(l) => last = l,
            Err(_) => break,
        }
    }
    // The list is parents first: children go first.
    for item in last.split_whitespace().rev() {
        let Some((pid, start)) = item.split_once(':') else {
            continue;
        };
        let (Ok(pid), Ok(start)) = (pid.parse::<i32>(), start.parse::<u64>()) else {
            continue;
        };
        if pid > 1 && procfs::start_time(pid) == Some(start) {
            // SAFETY: a plain kill of a process this guard was told of.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    std::process::exit(0)
}
