//! What the kernel says about a process and its threads: `/proc/PID/{stat,cmdline,task}`,
//! and for each thread the syscall it sleeps in (`/proc/PID/task/TID/syscall`) and `wchan`.

use std::fs;

use serde::{Deserialize, Serialize};

pub fn exists(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The single-letter scheduler state (`R`, `S`, `D`, `T`, `t`, `Z`, ...) of a process or thread.
pub fn state_letter(stat_path: &str) -> Option<char> {
    let stat = fs::read_to_string(stat_path).ok()?;
    // The command name is in parentheses and may itself contain spaces or ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().next()?.chars().next()
}

pub fn process_state(pid: i32) -> Option<char> {
    state_letter(&format!("/proc/{pid}/stat"))
}

pub fn ppid(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

pub fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub fn thread_comm(pid: i32, tid: i32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

pub fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

pub fn task_ids(pid: i32) -> Vec<i32> {
    let mut tids: Vec<i32> = fs::read_dir(format!("/proc/{pid}/task"))
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    tids.sort_unstable();
    tids
}

/// Total CPU time (user + system, in clock ticks) a thread has used.
pub fn thread_cpu_ticks(pid: i32, tid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3 (index 0 here); utime 14, stime 15 -> indices 11, 12.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// What one thread is doing in the kernel at this instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelThread {
    pub tid: i32,
    pub state: char,
    /// `None` when the thread is running (the kernel prints "running").
    pub syscall: Option<Syscall>,
    pub wchan: Option<String>,
    /// Nanoseconds the thread has spent on a CPU (`schedstat`): unchanged across a read of
    /// its memory means it did not run meanwhile, so what was read holds together.
    pub cpu_ns: Option<u64>,
}

pub fn cpu_ns(pid: i32, tid: i32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Syscall {
    pub nr: i64,
    pub args: [u64; 6],
}

pub const SYS_READ: i64 = 0;
pub const SYS_WRITE: i64 = 1;
pub const SYS_POLL: i64 = 7;
pub const SYS_SELECT: i64 = 23;
pub const SYS_NANOSLEEP: i64 = 35;
pub const SYS_ACCEPT: i64 = 43;
pub const SYS_RECVFROM: i64 = 45;
pub const SYS_RECVMSG: i64 = 47;
pub const SYS_WAIT4: i64 = 61;
pub const SYS_FUTEX: i64 = 202;
pub const SYS_CLOCK_NANOSLEEP: i64 = 230;
pub const SYS_EPOLL_WAIT: i64 = 232;
pub const SYS_WAITID: i64 = 247;
pub const SYS_PSELECT6: i64 = 270;
pub const SYS_PPOLL: i64 = 271;
pub const SYS_EPOLL_PWAIT: i64 = 281;
pub const SYS_ACCEPT4: i64 = 288;
pub const SYS_EPOLL_PWAIT2: i64 = 441;

const FUTEX_CMD_MASK: u64 = 0x7f & !0x80 & !0x100; // strip PRIVATE and CLOCK_REALTIME flags
const FUTEX_WAIT: u64 = 0;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_LOCK_PI: u64 = 6;
const FUTEX_LOCK_PI2: u64 = 13;
const FUTEX_WAIT_REQUEUE_PI: u64 = 11;

impl Syscall {
    /// The futex word a thread sleeps on, when it is in a futex wait.
    pub fn futex_wait_addr(&self) -> Option<usize> {
        if self.nr != SYS_FUTEX {
            return None;
        }
        let cmd = self.args[1] & FUTEX_CMD_MASK;
        matches!(
            cmd,
            FUTEX_WAIT | FUTEX_WAIT_BITSET | FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_WAIT_REQUEUE_PI
        )
        .then_some(self.args[0] as usize)
    }

    /// A futex wait with a timeout argument can end by itself: not blocked.
    pub fn futex_timed(&self) -> bool {
        self.nr == SYS_FUTEX && self.args[3] != 0
    }
}

pub fn kernel_thread(pid: i32, tid: i32) -> Option<KernelThread> {
    let base = format!("/proc/{pid}/task/{tid}");
    let state = state_letter(&format!("{base}/stat"))?;
    let syscall = fs::read_to_string(format!("{base}/syscall"))
        .ok()
        .and_then(|s| parse_syscall(&s));
    let wchan = fs::read_to_string(format!("{base}/wchan"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s != "0");
    Some(KernelThread {
        tid,
        state,
        syscall,
        wchan,
        cpu_ns: cpu_ns(pid, tid),
    })
}

/// `/proc/PID/task/TID/syscall`: "NR ARG1 .. ARG6 SP PC", or "running", or "-1 SP PC" (not in a syscall).
pub fn parse_syscall(text: &str) -> Option<Syscall> {
    let mut fields = text.split_whitespace();
    let nr: i64 = fields.next()?.parse().ok()?;
    if nr < 0 {
        return None;
    }
    let mut args = [0u64; 6];
    for arg in args.iter_mut() {
        *arg = u64::from_str_radix(fields.next()?.trim_start_matches("0x"), 16).ok()?;
    }
    Some(Syscall { nr, args })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_futex_wait() {
        let s =
            parse_syscall("202 0x7f3a1c000b60 0x189 0x0 0x0 0x0 0xffffffff 0x7ffd 0x7f3a").unwrap();
        assert_eq!(s.nr, SYS_FUTEX);
        assert_eq!(s.futex_wait_addr(), Some(0x7f3a1c000b60));
        assert!(!s.futex_timed());
        assert!(parse_syscall("running").is_none());
        assert!(parse_syscall("-1 0x7ffd 0x7f3a").is_none());
    }

    #[test]
    fn futex_wake_is_not_a_wait() {
        let s = parse_syscall("202 0x1000 0x81 0x1 0x0 0x0 0x0 0x0 0x0").unwrap();
        assert_eq!(s.futex_wait_addr(), None);
    }
}
