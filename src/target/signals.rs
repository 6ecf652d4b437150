//! Which signals a process catches, from `/proc/PID/status` (`SigCgt`: bit n-1 for signal n),
//! and which of them someone outside could send to wake it (`kill -TERM`). It reads nothing
//! else and decides nothing about threads: whether a handler can run is `analysis::idle`'s.

use std::fs;

/// Signals whose handlers wake nobody: SIGINT (every CPython catches it, for
/// KeyboardInterrupt; Ctrl-C is a person, not a waker), the synchronous faults faulthandler
/// (and pytest) catch to print tracebacks, and glibc's internal SIGCANCEL/SIGSETXID (32, 33).
const NOT_WAKERS: [i32; 8] = [
    libc::SIGINT,
    libc::SIGILL,
    libc::SIGABRT,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGSEGV,
    32,
    33,
];

/// The `SigCgt` mask of `pid`; None when `/proc/PID/status` cannot be read.
pub fn caught_mask(pid: i32) -> Option<u64> {
    parse_sigcgt(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The `SigCgt:` line of a `status` file.
pub fn parse_sigcgt(status: &str) -> Option<u64> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

/// The signals of `mask` that could wake the process from outside, lowest first.
pub fn wakers(mask: u64) -> Vec<i32> {
    (1..=64)
        .filter(|n| mask & (1u64 << (n - 1)) != 0 && !NOT_WAKERS.contains(n))
        .collect()
}

/// `SIGTERM`, `SIGUSR1`, `signal 40`: how a person names a signal to `kill`.
pub fn name(n: i32) -> String {
    let known = match n {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGURG => "SIGURG",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGSYS => "SIGSYS",
        _ => "",
    };
    if known.is_empty() {
        format!("signal {n}")
    } else {
        known.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigterm_is_a_waker_and_sigint_and_glibc_internals_are_not() {
        // A CPython that set a SIGTERM handler and started threads (FACTS-native.md).
        let status = "Name:\tpython3\nSigIgn:\t0000000001001000\nSigCgt:\t0000000180004002\n";
        let mask = parse_sigcgt(status).unwrap();
        assert_eq!(wakers(mask), vec![libc::SIGTERM]);
        assert_eq!(name(libc::SIGTERM), "SIGTERM");
        // A plain interpreter catches SIGINT only.
        assert!(wakers(0x2).is_empty());
        assert_eq!(parse_sigcgt("Name:\tx\n"), None);
    }
}
