//! What the kernel says about a process and its threads: `/proc/PID/{stat,cmdline,task}`,
//! and for each thread the syscall it sleeps in (`/proc/PID/task/TID/syscall`) and `wchan`.

use std::fs;

use serde::{Deserialize, Serialize};

pub fn exists(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The single-letter scheduler state (`R`, `S`, `D`, `T`, `t`, `Z`, ...) of a process or thread.
pub fn state_letter(stat_path: &str) -> Option<char> {
    stat_state(&fs::read_to_string(stat_path).ok()?)
}

/// The state letter in the text of a `stat` file.
pub fn stat_state(stat: &str) -> Option<char> {
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

/// The numeric field `n` (1-based, as `proc(5)` counts them, 4 or later) of a `stat` file.
fn stat_field(stat_path: &str, n: usize) -> Option<u64> {
    let stat = fs::read_to_string(stat_path).ok()?;
    // After the command (which may hold spaces and parentheses), the state is field 3.
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(n.checked_sub(3)?)?
        .parse()
        .ok()
}

/// Total CPU time (user + system, in clock ticks) a thread has used.
pub fn thread_cpu_ticks(pid: i32, tid: i32) -> Option<u64> {
    let path = format!("/proc/{pid}/task/{tid}/stat");
    Some(stat_field(&path, 14)? + stat_field(&path, 15)?)
}

/// When the process started (clock ticks after boot): with the pid, it names one process,
/// whatever reuses the pid later.
pub fn start_time(pid: i32) -> Option<u64> {
    stat_field(&format!("/proc/{pid}/stat"), 22)
}

/// How long ago the process started, from its start time and the system's uptime.
pub fn age(pid: i32) -> Option<std::time::Duration> {
    let started = start_time(pid)?;
    let uptime: f64 = fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(std::time::Duration::from_secs_f64(
        (uptime - started as f64 / hz).max(0.0),
    ))
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
    /// How many times the thread has been put on a CPU (`schedstat`'s third field).
    #[serde(default)]
    pub timeslices: Option<u64>,
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
    /// The user stack pointer and program counter at the syscall (0: not known): where a
    /// native unwind of the blocked thread starts.
    #[serde(default)]
    pub sp: u64,
    #[serde(default)]
    pub pc: u64,
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
        timeslices: None,
    })
}

/// `/proc/PID/task/TID/syscall`: "NR ARG1 .. ARG6 SP PC", or "running", or "-1 SP PC" (not in a syscall).
pub fn parse_syscall(text: &str) -> Option<Syscall> {
    let mut fields = text.split_whitespace();
    let nr: i64 = fields.next()?.parse().ok()?;
    if nr < 0 {
        return None;
    }
    let mut hex = || u64::from_str_radix(fields.next()?.trim_start_matches("0x"), 16).ok();
    let mut args = [0u64; 6];
    for arg in args.iter_mut() {
        *arg = hex()?;
    }
    let (sp, pc) = (hex().unwrap_or(0), hex().unwrap_or(0));
    Some(Syscall { nr, args, sp, pc })
}

pub const SYS_READV: i64 = 19;
pub const SYS_WRITEV: i64 = 20;
pub const SYS_SENDTO: i64 = 44;
pub const SYS_SENDMSG: i64 = 46;

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: usize,
    pub end: usize,
    pub perms: String,
    pub offset: u64,
    /// `major:minor` as the kernel prints it (hex).
    pub device: String,
    pub inode: u64,
    pub path: String,
}

impl Mapping {
    /// A `MAP_SHARED` mapping of a file: the same bytes in every process that maps it.
    pub fn shared_file(&self) -> bool {
        self.perms.as_bytes().get(3) == Some(&b's') && self.inode != 0
    }
}

pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_ascii_whitespace();
            let (start, end) = f.next()?.split_once('-')?;
            let perms = f.next()?.to_string();
            let offset = u64::from_str_radix(f.next()?, 16).ok()?;
            let device = f.next()?.to_string();
            let inode = f.next()?.parse().ok()?;
            // The path may contain spaces (and ends with " (deleted)" once unlinked).
            let path = f.collect::<Vec<_>>().join(" ");
            Some(Mapping {
                start: usize::from_str_radix(start, 16).ok()?,
                end: usize::from_str_radix(end, 16).ok()?,
                perms,
                offset,
                device,
                inode,
                path,
            })
        })
        .collect()
}

pub fn maps(pid: i32) -> Vec<Mapping> {
    fs::read_to_string(format!("/proc/{pid}/maps"))
        .map(|t| parse_maps(&t))
        .unwrap_or_default()
}

/// What an open file descriptor refers to, when it is a pipe or a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Pipe(u64),
    Socket(u64),
}

impl Channel {
    /// `/proc/PID/fd/N` link text: `pipe:[1234]`, `socket:[5678]`.
    pub fn parse(link: &str) -> Option<Channel> {
        let inode = |prefix: &str| -> Option<u64> {
            link.strip_prefix(prefix)?.strip_suffix(']')?.parse().ok()
        };
        inode("pipe:[")
            .map(Channel::Pipe)
            .or_else(|| inode("socket:[").map(Channel::Socket))
    }

    pub fn id(&self) -> String {
        match self {
            Channel::Pipe(i) => format!("pipe:[{i}]"),
            Channel::Socket(i) => format!("socket:[{i}]"),
        }
    }
}

/// An open pipe or socket descriptor and its access mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelFd {
    pub fd: i32,
    pub channel: Channel,
    /// From `/proc/PID/fdinfo/FD` `flags` (O_ACCMODE): whether reads / writes are allowed.
    pub readable: bool,
    pub writable: bool,
}

/// Every pipe and socket descriptor of `pid`.
pub fn channel_fds(pid: i32) -> Vec<ChannelFd> {
    let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.filter_map(|e| e.ok()) {
        let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Some(channel) = fs::read_link(e.path())
            .ok()
            .and_then(|l| Channel::parse(l.to_str()?))
        else {
            continue;
        };
        let mode = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
            .ok()
            .and_then(|t| parse_fdinfo_flags(&t))
            .map(|f| f & 3);
        out.push(ChannelFd {
            fd,
            channel,
            readable: matches!(mode, Some(0) | Some(2) | None),
            writable: matches!(mode, Some(1) | Some(2) | None),
        });
    }
    out.sort_by_key(|c| c.fd);
    out
}

/// The octal `flags:` field of an fdinfo file.
pub fn parse_fdinfo_flags(text: &str) -> Option<u32> {
    text.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
}

/// The descriptor a thread's blocking I/O syscall works on, and whether it reads.
pub fn io_syscall(s: &Syscall) -> Option<(i32, bool)> {
    let reads = match s.nr {
        SYS_READ | SYS_READV | SYS_RECVFROM | SYS_RECVMSG => true,
        SYS_WRITE | SYS_WRITEV | SYS_SENDTO | SYS_SENDMSG => false,
        _ => return None,
    };
    Some((s.args[0] as i32, reads))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_maps_and_channels() {
        let m = parse_maps("7f3a1c000000-7f3a1c001000 rw-s 00000000 00:1a 12345 /dev/shm/sem.mp-ab (deleted)\n7f00-7f10 r-xp 00001000 08:01 1 /usr/lib/libc.so.6\n");
        assert_eq!(m.len(), 2);
        assert!(m[0].shared_file());
        assert_eq!(m[0].device, "00:1a");
        assert_eq!(m[0].inode, 12345);
        assert_eq!(m[0].path, "/dev/shm/sem.mp-ab (deleted)");
        assert!(!m[1].shared_file());
        assert_eq!(Channel::parse("pipe:[42]"), Some(Channel::Pipe(42)));
        assert_eq!(Channel::parse("socket:[7]"), Some(Channel::Socket(7)));
        assert_eq!(Channel::parse("/dev/null"), None);
        assert_eq!(
            parse_fdinfo_flags("pos:\t0\nflags:\t02000001\nmnt_id:\t15\n"),
            Some(0o2000001)
        );
    }

    #[test]
    fn parses_a_futex_wait() {
        let s =
            parse_syscall("202 0x7f3a1c000b60 0x189 0x0 0x0 0x0 0xffffffff 0x7ffd 0x7f3a").unwrap();
        assert_eq!(s.nr, SYS_FUTEX);
        assert_eq!(s.futex_wait_addr(), Some(0x7f3a1c000b60));
        assert!(!s.futex_timed());
        assert_eq!((s.sp, s.pc), (0x7ffd, 0x7f3a));
        assert!(parse_syscall("running").is_none());
        assert!(parse_syscall("-1 0x7ffd 0x7f3a").is_none());
    }

    #[test]
    fn futex_wake_is_not_a_wait() {
        let s = parse_syscall("202 0x1000 0x81 0x1 0x0 0x0 0x0 0x0 0x0").unwrap();
        assert_eq!(s.futex_wait_addr(), None);
    }
}
