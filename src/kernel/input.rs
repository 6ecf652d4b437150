//! What a thread blocked reading a descriptor waits for input from, when that is a person or
//! a process gridlock does not watch: a terminal (any fd), or a stdin pipe whose write end no
//! watched process holds (the parent that never writes, a CI runner). It reads `/proc`
//! only and decides no thread state.

use std::fs;

use crate::model::Evidence;
use crate::target::procfs::{self, Channel, Syscall};

use super::file_locks::{command, target_path};

/// At most this many processes are searched for a pipe's writers, and descriptors per process.
const MAX_PROCESSES: usize = 8192;
const MAX_FDS: usize = 4096;

/// What the other end of a read is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A terminal (`/dev/pts/N`, `/dev/ttyN`, `/dev/console`), by path as the target sees it.
    Terminal(String),
    /// A pipe whose write end only processes outside the watched ones hold: (pid, command).
    Pipe {
        inode: u64,
        writers: Vec<(i32, String)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSource {
    pub syscall: &'static str,
    pub fd: i32,
    pub peer: Peer,
}

impl InputSource {
    /// The resource waited on: `tty:/dev/pts/3`, `pipe:[1234]`.
    pub fn resource_id(&self) -> String {
        match &self.peer {
            Peer::Terminal(p) => format!("tty:{p}"),
            Peer::Pipe { inode, .. } => Channel::Pipe(*inode).id(),
        }
    }

    pub fn evidence(&self) -> Evidence {
        Evidence::Fd
    }

    /// `input on fd 0 (stdin) from the terminal /dev/pts/3`, or from a pipe and who writes it.
    pub fn describe(&self) -> String {
        let fd = if self.fd == 0 {
            "fd 0 (stdin)".to_string()
        } else {
            format!("fd {}", self.fd)
        };
        match &self.peer {
            Peer::Terminal(p) => format!("input on {fd} from the terminal {p}"),
            Peer::Pipe { inode, writers } if writers.is_empty() => format!(
                "input on {fd} from pipe:[{inode}], whose write end no process gridlock can see holds"
            ),
            Peer::Pipe { inode, writers } => format!(
                "input on {fd} from pipe:[{inode}], written by {} outside the watched processes",
                writers
                    .iter()
                    .map(|(p, c)| format!("pid {p} ({c})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Whether a `/proc/PID/fd` link names a terminal.
pub fn is_terminal(link: &str) -> bool {
    link.starts_with("/dev/pts/")
        || link == "/dev/tty"
        || link == "/dev/console"
        || link
            .strip_prefix("/dev/tty")
            .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit() || c == 'S'))
}

/// The input thread of `pid` blocked in `s` waits for, if it reads a terminal, or stdin from a
/// pipe none of `tree` can write.
pub fn input_wait(pid: i32, s: &Syscall, tree: &[i32]) -> Option<InputSource> {
    let syscall = match s.nr {
        procfs::SYS_READ => "read",
        procfs::SYS_READV => "readv",
        _ => return None,
    };
    let fd = s.args[0] as i32;
    let link = fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    let link = link.to_string_lossy().into_owned();
    if is_terminal(&link) {
        return Some(InputSource {
            syscall,
            fd,
            peer: Peer::Terminal(target_path(pid, fd).unwrap_or(link)),
        });
    }
    let Some(Channel::Pipe(inode)) = Channel::parse(&link) else {
        return None;
    };
    if fd != 0 {
        return None;
    }
    let writes = |p: i32| {
        procfs::channel_fds(p)
            .iter()
            .any(|c| c.channel == Channel::Pipe(inode) && c.writable)
    };
    if tree.iter().any(|&p| writes(p)) {
        return None;
    }
    let writers = outside_writers(inode, tree);
    Some(InputSource {
        syscall,
        fd,
        peer: Peer::Pipe { inode, writers },
    })
}

/// Processes outside `tree` holding the write end of `pipe:[inode]` (bounded search).
fn outside_writers(inode: u64, tree: &[i32]) -> Vec<(i32, String)> {
    let want = Channel::Pipe(inode).id();
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    let pids = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .take(MAX_PROCESSES);
    for p in pids.filter(|p| !tree.contains(p)) {
        let Ok(fds) = fs::read_dir(format!("/proc/{p}/fd")) else {
            continue;
        };
        let holds = fds.filter_map(|e| e.ok()).take(MAX_FDS).any(|e| {
            fs::read_link(e.path()).is_ok_and(|l| l.to_str() == Some(want.as_str()))
                && e.file_name().to_str().is_some_and(|fd| {
                    fs::read_to_string(format!("/proc/{p}/fdinfo/{fd}"))
                        .ok()
                        .and_then(|t| procfs::parse_fdinfo_flags(&t))
                        .is_some_and(|f| f & 3 != 0)
                })
        });
        if holds {
            out.push((p, command(p)));
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_terminals() {
        assert!(is_terminal("/dev/pts/3"));
        assert!(is_terminal("/dev/tty"));
        assert!(is_terminal("/dev/tty1"));
        assert!(is_terminal("/dev/ttyS0"));
        assert!(!is_terminal("/dev/ttyprintk-ish"));
        assert!(!is_terminal("pipe:[12]"));
        assert!(!is_terminal("/dev/null"));
    }

    #[test]
    fn describes_what_is_on_the_other_end() {
        let s = InputSource {
            syscall: "read",
            fd: 0,
            peer: Peer::Pipe {
                inode: 42,
                writers: vec![(7, "bash ci.sh".into())],
            },
        };
        assert_eq!(s.resource_id(), "pipe:[42]");
        assert_eq!(
            s.describe(),
            "input on fd 0 (stdin) from pipe:[42], written by pid 7 (bash ci.sh) outside the watched processes"
        );
        let t = InputSource {
            syscall: "read",
            fd: 5,
            peer: Peer::Terminal("/dev/pts/1".into()),
        };
        assert_eq!(t.describe(), "input on fd 5 from the terminal /dev/pts/1");
    }

    #[test]
    fn a_stdin_pipe_nobody_watched_writes_is_input() {
        // This test process reading its own pipe: the write end is ours, so with ourselves in
        // the tree it is a pipe between watched processes, not input.
        let mut fds = [0i32; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let me = std::process::id() as i32;
        let s = Syscall {
            nr: procfs::SYS_READ,
            args: [fds[0] as u64, 0, 0, 0, 0, 0],
            sp: 0,
            pc: 0,
        };
        // Not fd 0: a pipe on another descriptor is left to the pipe linker.
        assert_eq!(input_wait(me, &s, &[]), None);
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }
}
