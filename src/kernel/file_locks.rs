//! File locks from the kernel's own tables: what a thread blocked in `flock(2)` or
//! `fcntl(F_SETLKW | F_OFD_SETLKW)` asked for (its fd and byte range), the file behind the fd
//! (as the target names it), and which processes hold a lock that conflicts with the request
//! (`/proc/locks`, and `/proc/PID/fdinfo/FD` `lock:` lines, which name OFD holders).
//! It reads `/proc` and 32 bytes of the waiter's memory (its `struct flock`); it builds no
//! report nodes and decides no thread state.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::memory::ReadMemory;
use crate::target::procfs::{self, Syscall};

use super::syscalls::{SYS_FCNTL, SYS_FLOCK};

/// At most this many lines of `/proc/locks` (or of one fdinfo file) are parsed.
const MAX_LINES: usize = 100_000;
/// At most this many processes are searched for the holder of an OFD lock.
const MAX_PROCESSES: usize = 8192;
/// At most this many descriptors of one process are looked at.
const MAX_FDS: usize = 4096;

const LOCK_SH: u64 = 1;
const LOCK_EX: u64 = 2;
const LOCK_NB: u64 = 4;
const F_SETLKW: u64 = 7;
const F_OFD_SETLKW: u64 = 38;
const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;

/// Which kind of lock: `flock` locks and record locks (POSIX, OFD) never conflict with each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// `flock(2)`: whole file, owned by the open file description.
    Flock,
    /// `fcntl(F_SETLK*)`/`lockf`: byte ranges, owned by the process.
    Posix,
    /// `fcntl(F_OFD_SETLK*)`: byte ranges, owned by the open file description.
    Ofd,
    /// Leases, delegations and anything newer: never a conflict here.
    Other,
}

impl Family {
    fn parse(s: &str) -> Family {
        match s {
            "FLOCK" => Family::Flock,
            "POSIX" => Family::Posix,
            "OFDLCK" => Family::Ofd,
            _ => Family::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Flock => "flock",
            Family::Posix => "posix",
            Family::Ofd => "ofd",
            Family::Other => "other",
        }
    }

    fn conflicts_with(self, other: Family) -> bool {
        match (self, other) {
            (Family::Flock, Family::Flock) => true,
            (Family::Posix | Family::Ofd, Family::Posix | Family::Ofd) => true,
            _ => false,
        }
    }
}

/// One lock line: `ID: [-> ]TYPE MODE ACCESS PID MAJ:MIN:INODE START END`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockLine {
    pub id: u64,
    /// A `->` line: a request blocked on lock `id`, not a granted lock.
    pub waiting: bool,
    pub family: Family,
    pub write: bool,
    /// The owner's pid in the reader's PID namespace; -1 for OFD locks.
    pub pid: i32,
    /// `major:minor` in hex, as the kernel prints it.
    pub device: String,
    pub inode: u64,
    pub range: Range,
}

/// A byte range, both ends included; `end: None` is "to the end of the file, however long".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    pub start: u64,
    pub end: Option<u64>,
}

impl Range {
    pub const WHOLE: Range = Range {
        start: 0,
        end: None,
    };

    pub fn overlaps(&self, other: &Range) -> bool {
        let before = |a: &Range, b: &Range| a.end.is_some_and(|e| e < b.start);
        !before(self, other) && !before(other, self)
    }

    /// `bytes 0-9`, `bytes 10-EOF`, or `whole file`.
    pub fn label(&self) -> String {
        match (self.start, self.end) {
            (0, None) => "whole file".into(),
            (s, None) => format!("bytes {s}-EOF"),
            (s, Some(e)) => format!("bytes {s}-{e}"),
        }
    }
}

/// Parse one lock line (the text after `lock:` in fdinfo, or a line of `/proc/locks`).
pub fn parse_line(line: &str) -> Option<LockLine> {
    let (id, rest) = line.trim().split_once(':')?;
    let id = id.trim().parse().ok()?;
    let mut f = rest.split_ascii_whitespace().peekable();
    let waiting = f.peek() == Some(&"->");
    if waiting {
        f.next();
    }
    let family = Family::parse(f.next()?);
    let _mode = f.next()?;
    let write = match f.next()? {
        "WRITE" => true,
        "READ" => false,
        _ => return None,
    };
    let pid = f.next()?.parse().ok()?;
    let (device, inode) = f.next()?.rsplit_once(':')?;
    let inode = inode.parse().ok()?;
    let start = f.next()?.parse().ok()?;
    let end = match f.next()? {
        "EOF" => None,
        e => Some(e.parse().ok()?),
    };
    Some(LockLine {
        id,
        waiting,
        family,
        write,
        pid,
        device: device.to_string(),
        inode,
        range: Range { start, end },
    })
}

/// Every lock line of `/proc/locks` (bounded).
pub fn parse_proc_locks(text: &str) -> Vec<LockLine> {
    text.lines()
        .take(MAX_LINES)
        .filter_map(parse_line)
        .collect()
}

/// The `lock:` lines of a `/proc/PID/fdinfo/FD` file: the locks that descriptor's open file
/// description holds.
pub fn parse_fdinfo_locks(text: &str) -> Vec<LockLine> {
    text.lines()
        .take(MAX_LINES)
        .filter_map(|l| l.strip_prefix("lock:"))
        .filter_map(parse_line)
        .collect()
}

/// What a blocked thread asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub syscall: &'static str,
    pub fd: i32,
    pub family: Family,
    pub write: bool,
    pub range: Range,
}

impl Request {
    /// `flock(fd 4, LOCK_EX)`, `fcntl(fd 4, F_SETLKW, write lock on bytes 0-9)`.
    pub fn label(&self) -> String {
        let access = if self.write { "write" } else { "read" };
        match self.family {
            Family::Flock => format!(
                "flock(fd {}, {})",
                self.fd,
                if self.write { "LOCK_EX" } else { "LOCK_SH" }
            ),
            Family::Ofd => format!(
                "fcntl(fd {}, F_OFD_SETLKW, {access} lock on {})",
                self.fd,
                self.range.label()
            ),
            _ => format!(
                "fcntl(fd {}, F_SETLKW, {access} lock on {})",
                self.fd,
                self.range.label()
            ),
        }
    }
}

/// Whether the syscall is a blocking file-lock request.
pub fn is_lock_wait(s: &Syscall) -> bool {
    match s.nr {
        SYS_FLOCK => s.args[1] & LOCK_NB == 0 && s.args[1] & (LOCK_SH | LOCK_EX) != 0,
        SYS_FCNTL => matches!(s.args[1], F_SETLKW | F_OFD_SETLKW),
        _ => false,
    }
}

/// The fields of a `struct flock` (x86_64: `short l_type, l_whence; off_t l_start, l_len`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlockStruct {
    pub l_type: i16,
    pub l_whence: i16,
    pub l_start: i64,
    pub l_len: i64,
}

impl FlockStruct {
    pub fn read(mem: &impl ReadMemory, addr: usize) -> Option<FlockStruct> {
        let b = mem.bytes(addr, 24).ok()?;
        Some(FlockStruct {
            l_type: i16::from_le_bytes([b[0], b[1]]),
            l_whence: i16::from_le_bytes([b[2], b[3]]),
            l_start: i64::from_le_bytes(b[8..16].try_into().ok()?),
            l_len: i64::from_le_bytes(b[16..24].try_into().ok()?),
        })
    }

    /// The byte range asked for, given the file's offset (`SEEK_CUR`) and size (`SEEK_END`).
    pub fn range(&self, pos: u64, size: u64) -> Option<Range> {
        let base: i64 = match self.l_whence {
            0 => 0,
            1 => pos as i64,
            2 => size as i64,
            _ => return None,
        };
        let start = base.checked_add(self.l_start)?;
        let (start, end) = match self.l_len {
            0 => (start, None),
            l if l > 0 => (start, Some(start.checked_add(l - 1)?)),
            l => (start.checked_add(l)?, Some(start - 1)),
        };
        (start >= 0).then_some(Range {
            start: start as u64,
            end: end.map(|e| e.max(start) as u64),
        })
    }
}

/// What the blocked syscall asks for. The `struct flock` of an `fcntl` is read from the
/// waiter's memory; when it cannot be, the waiter's own `->` line in `/proc/locks` is used.
pub fn request(
    pid: i32,
    s: &Syscall,
    mem: Option<&impl ReadMemory>,
    waiting_lines: &[&LockLine],
) -> Option<Request> {
    if !is_lock_wait(s) {
        return None;
    }
    let fd = s.args[0] as i32;
    if s.nr == SYS_FLOCK {
        return Some(Request {
            syscall: "flock",
            fd,
            family: Family::Flock,
            write: s.args[1] & LOCK_EX != 0,
            range: Range::WHOLE,
        });
    }
    let family = if s.args[1] == F_OFD_SETLKW {
        Family::Ofd
    } else {
        Family::Posix
    };
    let from_memory = mem
        .and_then(|m| FlockStruct::read(m, s.args[2] as usize))
        .filter(|f| matches!(f.l_type, F_RDLCK | F_WRLCK))
        .and_then(|f| {
            let pos = fdinfo_pos(pid, fd).unwrap_or(0);
            let size = fs::metadata(format!("/proc/{pid}/fd/{fd}"))
                .map(|m| m.len())
                .unwrap_or(0);
            Some((f.l_type == F_WRLCK, f.range(pos, size)?))
        });
    let (write, range) = match from_memory {
        Some(x) => x,
        None => {
            let own = waiting_lines
                .iter()
                .find(|l| l.family == family && (family == Family::Ofd || l.pid == pid))?;
            (own.write, own.range)
        }
    };
    Some(Request {
        syscall: "fcntl",
        fd,
        family,
        write,
        range,
    })
}

fn fdinfo_pos(pid: i32, fd: i32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("pos:"))?
        .trim()
        .parse()
        .ok()
}

/// Whether a granted lock stands in the way of the request.
pub fn conflicts(held: &LockLine, req: &Request) -> bool {
    !held.waiting
        && held.family.conflicts_with(req.family)
        && (held.write || req.write)
        && held.range.overlaps(&req.range)
}

/// The `major:minor` the kernel prints for a `st_dev`.
pub fn device_label(dev: u64) -> String {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    format!("{major:02x}:{minor:02x}")
}

/// The file an open descriptor refers to: (device, inode).
fn fd_file(pid: i32, fd: i32) -> Option<(String, u64)> {
    let m = fs::metadata(format!("/proc/{pid}/fd/{fd}")).ok()?;
    Some((device_label(m.dev()), m.ino()))
}

/// The path of an open file as the target sees it: `/proc/PID/fd/FD` names it from
/// gridlock's root, so the target's own root (a chroot, a container) is taken off.
pub fn target_path(pid: i32, fd: i32) -> Option<String> {
    let link = fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    let link = link.to_string_lossy().into_owned();
    let root = fs::read_link(format!("/proc/{pid}/root"))
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "/".into());
    Some(strip_root(&link, &root))
}

/// `link` relative to `root`, when it lies under it.
pub fn strip_root(link: &str, root: &str) -> String {
    let root = root.trim_end_matches('/');
    match link.strip_prefix(root) {
        Some(rest) if !root.is_empty() && rest.starts_with('/') => rest.to_string(),
        _ => link.to_string(),
    }
}

/// A process holding a conflicting lock, and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    pub pid: i32,
    /// Its command line (`comm` when that is empty), as `/proc` shows it.
    pub command: String,
}

/// A thread blocked taking a file lock, with what it asked for and who is in the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLockWait {
    pub request: Request,
    /// The locked file as the target names it.
    pub path: String,
    pub device: String,
    pub inode: u64,
    /// Every process holding a conflicting lock (several: any of them may be the one that
    /// must let go; a lock shared by forked processes is released by any of them).
    pub holders: Vec<LockHolder>,
    /// Conflicting granted locks whose holder could not be found (an OFD lock held by a
    /// process gridlock cannot read).
    pub unknown_holders: usize,
}

impl FileLockWait {
    /// The lock node's id: the file and what was asked for (waiters asking for the same share it).
    pub fn lock_id(&self) -> String {
        let r = &self.request;
        format!(
            "file:{}:{}:{}:{}:{}",
            self.device,
            self.inode,
            r.family.as_str(),
            if r.write { "w" } else { "r" },
            match r.range.end {
                None => format!("{}-EOF", r.range.start),
                Some(e) => format!("{}-{e}", r.range.start),
            }
        )
    }

    /// How a reader names the lock: the file, and the range when not the whole file.
    pub fn name(&self) -> String {
        match self.request.family {
            Family::Flock => self.path.clone(),
            _ if self.request.range == Range::WHOLE => self.path.clone(),
            _ => format!("{} {}", self.path, self.request.range.label()),
        }
    }
}

/// The command line of `pid` for a report (`comm` when it has none), bounded.
pub fn command(pid: i32) -> String {
    let mut c = procfs::cmdline(pid);
    if c.is_empty() {
        c = procfs::comm(pid);
    }
    if c.len() > 200 {
        c.truncate(c.floor_char_boundary(200));
    }
    c
}

/// The processes (of `candidates`, in order) that have a descriptor on (`device`, `inode`) whose
/// fdinfo lists `lock`: the holders of a lock owned by an open file description.
fn fdinfo_holders(candidates: &[i32], device: &str, inode: u64, lock: &LockLine) -> Vec<i32> {
    let same = |l: &LockLine| {
        l.family == lock.family
            && l.write == lock.write
            && l.pid == lock.pid
            && l.range == lock.range
            && l.inode == inode
            && l.device == device
    };
    let mut out = Vec::new();
    for &p in candidates {
        let Ok(rd) = fs::read_dir(format!("/proc/{p}/fd")) else {
            continue;
        };
        let holds = rd.filter_map(|e| e.ok()).take(MAX_FDS).any(|e| {
            let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                return false;
            };
            fd_file(p, fd).is_some_and(|(d, i)| d == device && i == inode)
                && fs::read_to_string(format!("/proc/{p}/fdinfo/{fd}"))
                    .map(|t| parse_fdinfo_locks(&t).iter().any(same))
                    .unwrap_or(false)
        });
        if holds {
            out.push(p);
        }
    }
    out
}

/// Every pid in `/proc` (bounded), for finding a holder outside the tree (an OFD lock's, a
/// listening socket's).
pub fn all_pids() -> Vec<i32> {
    let mut v: Vec<i32> = fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .take(MAX_PROCESSES)
                .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// What thread `tid` of `pid`, blocked in `s`, waits for, from `locks` (`/proc/locks`);
/// holders are looked for in `tree` first, then anywhere. `None` when `s` is not a file-lock
/// wait or its file cannot be read.
pub fn blocked_wait(
    pid: i32,
    s: &Syscall,
    mem: Option<&impl ReadMemory>,
    locks: &[LockLine],
    tree: &[i32],
) -> Option<FileLockWait> {
    if !is_lock_wait(s) {
        return None;
    }
    let fd = s.args[0] as i32;
    let (device, inode) = fd_file(pid, fd)?;
    let on_file: Vec<&LockLine> = locks
        .iter()
        .filter(|l| l.inode == inode && l.device == device)
        .collect();
    let waiting: Vec<&LockLine> = on_file.iter().copied().filter(|l| l.waiting).collect();
    let req = request(pid, s, mem, &waiting)?;
    // Locks the waiting descriptor's own open file description holds are never in its way.
    let own: Vec<LockLine> = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
        .map(|t| parse_fdinfo_locks(&t))
        .unwrap_or_default();
    let mut holders: BTreeMap<i32, LockHolder> = BTreeMap::new();
    let mut unknown = 0;
    let mut everyone: Option<Vec<i32>> = None;
    for held in on_file.iter().filter(|l| conflicts(l, &req)) {
        let mine = own.iter().any(|o| {
            o.family == held.family
                && o.write == held.write
                && o.range == held.range
                && o.pid == held.pid
        }) && held.family != Family::Posix;
        if mine || (held.family == Family::Posix && held.pid == pid) {
            continue;
        }
        let pids: Vec<i32> = match held.family {
            Family::Posix => vec![held.pid],
            _ => {
                let mut found = fdinfo_holders(tree, &device, inode, held);
                if found.is_empty() && held.pid > 0 {
                    found = fdinfo_holders(&[held.pid], &device, inode, held);
                }
                if found.is_empty() {
                    let all = everyone.get_or_insert_with(all_pids);
                    found = fdinfo_holders(all, &device, inode, held);
                }
                if found.is_empty() && held.pid > 0 && procfs::exists(held.pid) {
                    found.push(held.pid);
                }
                found
            }
        };
        if pids.is_empty() {
            unknown += 1;
        }
        for p in pids.into_iter().filter(|p| *p > 0) {
            holders.entry(p).or_insert_with(|| LockHolder {
                pid: p,
                command: command(p),
            });
        }
    }
    Some(FileLockWait {
        path: target_path(pid, fd).unwrap_or_else(|| format!("{device}:{inode}")),
        device,
        inode,
        request: req,
        holders: holders.into_values().collect(),
        unknown_holders: unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::FakeMemory;

    const PROC_LOCKS: &str = "\
1: FLOCK  ADVISORY  WRITE 27370 fe:00:10018941 0 EOF
1: -> FLOCK  ADVISORY  WRITE 27369 fe:00:10018941 0 EOF
2: POSIX  ADVISORY  WRITE 27464 fe:00:10018940 0 9
3: OFDLCK ADVISORY  READ -1 fe:00:10018942 10 EOF
3: -> OFDLCK ADVISORY  WRITE -1 fe:00:10018942 0 19
4: LEASE  ACTIVE    READ 1 fe:00:1 0 EOF
garbage line
5: POSIX  ADVISORY  WRITE notapid fe:00:1 0 9
";

    #[test]
    fn parses_proc_locks_lines() {
        let l = parse_proc_locks(PROC_LOCKS);
        assert_eq!(l.len(), 6, "{l:#?}");
        assert_eq!(
            l[0],
            LockLine {
                id: 1,
                waiting: false,
                family: Family::Flock,
                write: true,
                pid: 27370,
                device: "fe:00".into(),
                inode: 10018941,
                range: Range::WHOLE,
            }
        );
        assert!(l[1].waiting && l[1].pid == 27369);
        assert_eq!(
            l[2].range,
            Range {
                start: 0,
                end: Some(9)
            }
        );
        assert_eq!(
            (l[3].family, l[3].pid, l[3].write),
            (Family::Ofd, -1, false)
        );
        assert_eq!(l[5].family, Family::Other);
        // A deeper waiter is indented before its arrow.
        let deep = parse_line("7:  -> POSIX  ADVISORY  WRITE 5 00:1a:42 0 EOF").unwrap();
        assert!(deep.waiting && deep.device == "00:1a" && deep.inode == 42);
    }

    #[test]
    fn parses_fdinfo_lock_lines() {
        let text = "pos:\t0\nflags:\t02100002\nmnt_id:\t27\nino:\t10018940\nlock:\t1: OFDLCK ADVISORY  WRITE -1 fe:00:10018940 0 9\n";
        let l = parse_fdinfo_locks(text);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].family, Family::Ofd);
        assert_eq!(l[0].range.end, Some(9));
        assert!(parse_fdinfo_locks("pos:\t0\n").is_empty());
    }

    #[test]
    fn compares_byte_ranges_and_access() {
        let held = parse_line("1: POSIX  ADVISORY  WRITE 10 fe:00:5 0 9").unwrap();
        let req = |write, start, end| Request {
            syscall: "fcntl",
            fd: 3,
            family: Family::Posix,
            write,
            range: Range { start, end },
        };
        assert!(conflicts(&held, &req(true, 5, Some(20))));
        assert!(!conflicts(&held, &req(true, 10, Some(19))));
        assert!(conflicts(&held, &req(false, 9, None)));
        let read = parse_line("1: OFDLCK ADVISORY  READ -1 fe:00:5 0 EOF").unwrap();
        assert!(!conflicts(&read, &req(false, 100, Some(200))));
        assert!(conflicts(&read, &req(true, 100, Some(200))));
        // flock and record locks live apart.
        let f = parse_line("1: FLOCK  ADVISORY  WRITE 10 fe:00:5 0 EOF").unwrap();
        assert!(!conflicts(&f, &req(true, 0, None)));
        // A waiting request is in nobody's way yet.
        let w = parse_line("1: -> POSIX  ADVISORY  WRITE 10 fe:00:5 0 9").unwrap();
        assert!(!conflicts(&w, &req(true, 0, None)));
    }

    #[test]
    fn reads_the_requested_range_from_struct_flock() {
        let mut mem = FakeMemory::new();
        let mut s = Vec::new();
        s.extend_from_slice(&F_WRLCK.to_le_bytes());
        s.extend_from_slice(&1i16.to_le_bytes()); // SEEK_CUR
        s.extend_from_slice(&[0; 4]);
        s.extend_from_slice(&10i64.to_le_bytes());
        s.extend_from_slice(&5i64.to_le_bytes());
        s.extend_from_slice(&[0; 8]);
        mem.put(0x1000, &s);
        let f = FlockStruct::read(&mem, 0x1000).unwrap();
        assert_eq!(
            (f.l_type, f.l_whence, f.l_start, f.l_len),
            (F_WRLCK, 1, 10, 5)
        );
        assert_eq!(
            f.range(100, 0),
            Some(Range {
                start: 110,
                end: Some(114)
            })
        );
        let back = FlockStruct {
            l_len: -4,
            l_whence: 0,
            ..f
        };
        assert_eq!(
            back.range(0, 0),
            Some(Range {
                start: 6,
                end: Some(9)
            })
        );
        let to_eof = FlockStruct {
            l_len: 0,
            l_whence: 2,
            l_start: 0,
            ..f
        };
        assert_eq!(to_eof.range(0, 50).unwrap().end, None);
        assert!(FlockStruct { l_whence: 9, ..f }.range(0, 0).is_none());
        assert!(FlockStruct::read(&mem, 0x9000).is_none());
    }

    #[test]
    fn recognises_blocking_lock_requests() {
        let s = |nr, a1| Syscall {
            nr,
            args: [4, a1, 0, 0, 0, 0],
            sp: 0,
            pc: 0,
        };
        assert!(is_lock_wait(&s(SYS_FLOCK, LOCK_EX)));
        assert!(!is_lock_wait(&s(SYS_FLOCK, LOCK_EX | LOCK_NB)));
        assert!(is_lock_wait(&s(SYS_FCNTL, F_SETLKW)));
        assert!(is_lock_wait(&s(SYS_FCNTL, F_OFD_SETLKW)));
        assert!(!is_lock_wait(&s(SYS_FCNTL, 1)));
    }

    #[test]
    fn strips_the_targets_root_and_labels_devices() {
        assert_eq!(
            strip_root("/var/tmp/sid/tmp/a.lock", "/var/tmp/sid"),
            "/tmp/a.lock"
        );
        assert_eq!(strip_root("/tmp/a.lock", "/"), "/tmp/a.lock");
        assert_eq!(
            strip_root("/var/tmp/sidx/a", "/var/tmp/sid"),
            "/var/tmp/sidx/a"
        );
        assert_eq!(device_label(0xfe00), "fe:00");
        assert_eq!(device_label(0x1a), "00:1a");
    }
}
