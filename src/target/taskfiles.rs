//! The per-thread `/proc/PID/task/TID/{stat,syscall,wchan,schedstat}` files, kept open across
//! snapshots. Opening a `/proc` file costs a path walk, a pid lookup and a close; a positioned
//! read at offset 0 of an open one makes the kernel regenerate it, so a sample pays one
//! syscall per file instead of three (measured: the open/close pairs were most of a
//! snapshot's kernel time on a 20-thread target at a high rate).
//!
//! A sleeping thread's state letter and `wchan` are read again only when it may have changed:
//! both change only when the thread runs (stopping, freezing, entering another wait or
//! exiting all happen on its own CPU time; a wake-up shows as "running" in `syscall`), so a
//! thread in the same syscall with the same `schedstat` counts as when they were read keeps
//! them (`stat` was the costliest file: a third of the `/proc` time of a sample). A thread
//! woken but not yet on a CPU is no exception: the wake-up itself makes the task runnable,
//! which its `syscall` file (read first, every time) shows as "running" (tested with a thread
//! woken behind a real-time spinner). The task list is read through a directory kept open.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::procfs::{self, KernelThread, Syscall};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Which {
    Stat,
    Syscall,
    Wchan,
    Schedstat,
    Status,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Stat => "stat",
            Which::Syscall => "syscall",
            Which::Wchan => "wchan",
            Which::Schedstat => "schedstat",
            Which::Status => "status",
        }
    }
}

/// What `schedstat` says: nanoseconds on a CPU, and how many times the thread was put on one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedStat {
    pub cpu_ns: u64,
    pub timeslices: u64,
}

/// What a thread's `syscall` file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InSyscall {
    /// Runnable (state `R`).
    Running,
    Yes(Syscall),
    /// Stopped or sleeping outside a syscall ("-1 SP PC").
    NotInOne,
}

/// The key of the process's own files (`/proc/PID/stat`, `/proc/PID/status`): no TID is 0.
const PROCESS: i32 = 0;

pub struct TaskFiles {
    pid: i32,
    open: HashMap<(i32, Which), File>,
    /// Per sleeping thread: its state letter and `wchan` as read, and the syscall and
    /// `schedstat` they were read with.
    asleep: HashMap<i32, Asleep>,
    /// `/proc/PID/task`, kept open (`None` until first listed, or when it cannot be).
    task_dir: Option<TaskDir>,
    /// The text of the file read last, reused: a sample reads dozens of small files.
    text: Vec<u8>,
    /// The process's caught signals as last read from its `status`, and when.
    caught: Option<(Option<u64>, Instant)>,
}

/// How long the process's caught signals (`SigCgt:` of `status`) are reused before the file is
/// read again. They change only when the target installs or removes a handler, which a
/// program does at start-up, and `status` is the costliest `/proc` file of a sample (some 40
/// lines printed per read): at `record`'s top rate it was 2% of all CPU. A handler installed
/// later shows within this.
const CAUGHT_MAX_AGE: Duration = Duration::from_millis(250);

/// What a sleeping thread's `stat` and `wchan` said, and when (by its own counters).
struct Asleep {
    syscall: Option<Syscall>,
    sched: SchedStat,
    state: char,
    wchan: Option<String>,
}

/// Descriptors held by every `TaskFiles` of this process (one per target of a tree), against
/// one budget: beyond it, files are opened per read.
static HELD: AtomicUsize = AtomicUsize::new(0);
static BUDGET: OnceLock<usize> = OnceLock::new();

impl TaskFiles {
    pub fn new(pid: i32) -> TaskFiles {
        BUDGET.get_or_init(descriptor_budget);
        TaskFiles {
            pid,
            open: HashMap::new(),
            asleep: HashMap::new(),
            task_dir: None,
            text: Vec::with_capacity(512),
            caught: None,
        }
    }

    /// The process's thread ids, sorted (empty when it is gone): `/proc/PID/task` listed
    /// through a descriptor kept open, rewound for each listing.
    pub fn task_ids(&mut self) -> Vec<i32> {
        if self.task_dir.is_none() {
            self.task_dir = TaskDir::open(self.pid);
        }
        match &mut self.task_dir {
            Some(dir) => dir.list(),
            None => procfs::task_ids(self.pid),
        }
    }

    /// Close the files of threads that are gone (a TID can be reused by a new thread, whose
    /// files an old descriptor would not show). The process's own files stay.
    pub fn retain(&mut self, tids: &[i32]) {
        let before = self.open.len();
        self.open
            .retain(|(tid, _), _| *tid == PROCESS || tids.binary_search(tid).is_ok());
        HELD.fetch_sub(before - self.open.len(), Ordering::Relaxed);
        self.asleep.retain(|tid, _| tids.binary_search(tid).is_ok());
    }

    /// One `/proc` file of a thread, read whole into `buf`.
    fn read(&mut self, tid: i32, which: Which, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        if let Some(file) = self.open.get(&(tid, which)) {
            if read_whole(file, buf) {
                return true;
            }
            // The thread is gone (or its TID belongs to a new thread): reopen below, and
            // forget what was read of the old one.
            if self.open.remove(&(tid, which)).is_some() {
                HELD.fetch_sub(1, Ordering::Relaxed);
            }
            self.asleep.remove(&tid);
            // The process is gone: its PID may be another's now.
            if tid == PROCESS {
                return false;
            }
        }
        let path = match tid {
            PROCESS => format!("/proc/{}/{}", self.pid, which.name()),
            _ => format!("/proc/{}/task/{tid}/{}", self.pid, which.name()),
        };
        let Ok(file) = File::open(path) else {
            return false;
        };
        let ok = read_whole(&file, buf);
        if ok {
            let budget = BUDGET.get().copied().unwrap_or(0);
            if HELD.fetch_add(1, Ordering::Relaxed) < budget {
                self.open.insert((tid, which), file);
            } else {
                HELD.fetch_sub(1, Ordering::Relaxed);
            }
        }
        ok
    }

    /// One file's text, handed to `parse` in place (no copy kept).
    fn read_with<T>(&mut self, tid: i32, which: Which, parse: impl FnOnce(&str) -> T) -> Option<T> {
        let mut buf = std::mem::take(&mut self.text);
        let read = self.read(tid, which, &mut buf);
        let parsed = read.then(|| parse(&String::from_utf8_lossy(&buf)));
        self.text = buf;
        parsed
    }

    /// Whether the process is still there and not a zombie: its `stat`, kept open (a
    /// descriptor of an exited process reads nothing, whatever takes its PID later).
    pub fn process_alive(&mut self) -> bool {
        self.read_with(PROCESS, Which::Stat, procfs::stat_state)
            .flatten()
            .is_some_and(|c| c != 'Z')
    }

    /// The process's caught signals (`SigCgt:` of its `status`, kept open), read again once
    /// the last reading is `CAUGHT_MAX_AGE` old.
    pub fn caught_signals(&mut self) -> Option<u64> {
        if let Some((mask, at)) = self.caught {
            if at.elapsed() < CAUGHT_MAX_AGE {
                return mask;
            }
        }
        let mask = self
            .read_with(PROCESS, Which::Status, super::signals::parse_sigcgt)
            .flatten();
        self.caught = Some((mask, Instant::now()));
        mask
    }

    pub fn schedstat(&mut self, tid: i32) -> Option<SchedStat> {
        self.read_with(tid, Which::Schedstat, |text| {
            let mut fields = text.split_whitespace();
            let cpu_ns = fields.next()?.parse().ok()?;
            let timeslices = fields.nth(1)?.parse().ok()?;
            Some(SchedStat { cpu_ns, timeslices })
        })?
    }

    /// The thread's `syscall` file alone: whether it is running, and in which syscall if not.
    pub fn syscall(&mut self, tid: i32) -> Option<InSyscall> {
        self.read_with(tid, Which::Syscall, |text| {
            if text.trim() == "running" {
                InSyscall::Running
            } else {
                match procfs::parse_syscall(text) {
                    Some(s) => InSyscall::Yes(s),
                    None => InSyscall::NotInOne,
                }
            }
        })
    }

    /// What the thread is doing in the kernel. The `syscall` file says "running" exactly when
    /// the thread is runnable (state `R`); only for a thread that is not are its CPU counters,
    /// state letter and (outside futex waits) `wchan` read: a sample of a busy target costs
    /// one read per running thread. The state and `wchan` are those read before while the
    /// thread stays in the same syscall without running (same `schedstat`; see the top).
    pub fn kernel_thread(&mut self, tid: i32) -> Option<KernelThread> {
        let syscall = match self.syscall(tid)? {
            InSyscall::Running => {
                return Some(KernelThread {
                    tid,
                    state: 'R',
                    syscall: None,
                    wchan: None,
                    cpu_ns: None,
                    timeslices: None,
                })
            }
            InSyscall::Yes(s) => Some(s),
            InSyscall::NotInOne => None,
        };
        let sched = self.schedstat(tid);
        let kept = self.asleep.get(&tid).filter(|a| {
            // A thread that never ran, or counters that are off (all zero), prove nothing.
            sched.is_some_and(|s| s == a.sched && s.timeslices > 0) && a.syscall == syscall
        });
        let (state, wchan) = match kept {
            Some(a) => (a.state, a.wchan.clone()),
            None => {
                let state = self.read_with(tid, Which::Stat, procfs::stat_state)??;
                // In a futex wait the kernel function is always the futex wait's own: not
                // worth a read.
                let wchan = if syscall.as_ref().is_some_and(|s| s.nr == procfs::SYS_FUTEX) {
                    None
                } else {
                    self.read_with(tid, Which::Wchan, |s| s.trim().to_string())
                        .filter(|s| !s.is_empty() && s != "0")
                };
                if let Some(sched) = sched {
                    let asleep = Asleep {
                        syscall: syscall.clone(),
                        sched,
                        state,
                        wchan: wchan.clone(),
                    };
                    self.asleep.insert(tid, asleep);
                }
                (state, wchan)
            }
        };
        Some(KernelThread {
            tid,
            state,
            syscall,
            wchan,
            cpu_ns: sched.map(|s| s.cpu_ns),
            timeslices: sched.map(|s| s.timeslices),
        })
    }
}

impl Drop for TaskFiles {
    fn drop(&mut self) {
        HELD.fetch_sub(self.open.len(), Ordering::Relaxed);
    }
}

/// An open directory of a process's tasks.
struct TaskDir(std::ptr::NonNull<libc::DIR>);

impl TaskDir {
    fn open(pid: i32) -> Option<TaskDir> {
        let path = std::ffi::CString::new(format!("/proc/{pid}/task")).ok()?;
        // SAFETY: `path` is a valid C string; the handle is closed once, on drop.
        std::ptr::NonNull::new(unsafe { libc::opendir(path.as_ptr()) }).map(TaskDir)
    }

    /// The thread ids listed now, sorted. Rewinding makes the kernel list the tasks afresh.
    fn list(&mut self) -> Vec<i32> {
        let mut tids = Vec::with_capacity(64);
        // SAFETY: the handle is open and used by this thread only; each entry is read before
        // the next `readdir` call, its name a NUL-terminated string inside it.
        unsafe {
            libc::rewinddir(self.0.as_ptr());
            loop {
                let entry = libc::readdir(self.0.as_ptr());
                if entry.is_null() {
                    break;
                }
                let name = std::ffi::CStr::from_ptr((*entry).d_name.as_ptr());
                if let Some(tid) = name.to_str().ok().and_then(|n| n.parse().ok()) {
                    tids.push(tid);
                }
            }
        }
        tids.sort_unstable();
        tids
    }
}

// SAFETY: a directory stream may be used from another thread as long as one thread at a
// time uses it; `list` takes `&mut self`.
unsafe impl Send for TaskDir {}

impl Drop for TaskDir {
    fn drop(&mut self) {
        // SAFETY: opened by `opendir`, closed only here.
        unsafe { libc::closedir(self.0.as_ptr()) };
    }
}

fn read_whole(file: &File, buf: &mut Vec<u8>) -> bool {
    // A `/proc` file is generated whole at each read: one read of a page gets all of it.
    let mut chunk = [0u8; 4096];
    loop {
        match file.read_at(&mut chunk, buf.len() as u64) {
            Ok(0) => return !buf.is_empty(),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    return true;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Half of the soft descriptor limit, after raising it to the hard limit (a no-op when
/// they are equal): the rest stays free for everything else gridlock opens. Raising it affects
/// gridlock alone: `run` starts its command before attaching, so the command keeps its limit.
fn descriptor_budget() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    (lim.rlim_cur.min(1 << 20) / 2) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_busy_thread_again_and_again() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        // Another thread of this process, spinning (reading one's own `syscall` file shows
        // the read itself, not "running").
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let spinner = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                tx.send(unsafe { libc::gettid() }).unwrap();
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
                }
            })
        };
        let tid = rx.recv().unwrap();
        let pid = std::process::id() as i32;
        let mut files = TaskFiles::new(pid);
        let first = files.schedstat(tid).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let second = files.schedstat(tid).unwrap();
        assert!(second.cpu_ns > first.cpu_ns, "{first:?} then {second:?}");
        let k = files.kernel_thread(tid).unwrap();
        assert_eq!(k.state, 'R');
        assert!(k.syscall.is_none() && k.cpu_ns.is_none(), "{k:?}");
        // Descriptors kept for the files read: schedstat and syscall.
        assert_eq!(files.open.len(), 2);
        stop.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
        files.retain(&[]);
        assert!(files.open.is_empty());
        assert!(files.schedstat(i32::MAX).is_none());
    }

    #[test]
    fn caught_signals_are_reused_for_a_while_then_read_again() {
        let mut files = TaskFiles::new(std::process::id() as i32);
        let first = files
            .caught_signals()
            .expect("this process's status has SigCgt");
        // A handler installed now (SIGWINCH: no test of this binary sends or handles it) is not
        // seen while the reading is fresh, and is once it is old.
        extern "C" fn ignore(_: libc::c_int) {}
        let bit = 1u64 << (libc::SIGWINCH - 1);
        // SAFETY: installs a handler that does nothing, for a signal nobody sends here.
        let old =
            unsafe { libc::signal(libc::SIGWINCH, ignore as *const () as libc::sighandler_t) };
        assert_eq!(files.caught_signals(), Some(first));
        let stale = Instant::now().checked_sub(CAUGHT_MAX_AGE).unwrap();
        files.caught = files.caught.map(|(mask, _)| (mask, stale));
        let fresh = files.caught_signals().unwrap();
        // SAFETY: puts back the disposition found.
        unsafe { libc::signal(libc::SIGWINCH, old) };
        assert_eq!(fresh & bit, bit, "{fresh:#x}");
    }

    /// `tid`'s kernel view once it sleeps in a system call (polled for up to a second).
    fn asleep_in_a_syscall(files: &mut TaskFiles, tid: i32) -> KernelThread {
        for _ in 0..200 {
            if let Some(k) = files.kernel_thread(tid).filter(|k| k.syscall.is_some()) {
                return k;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("thread {tid} never slept in a system call")
    }

    #[test]
    fn a_sleeping_threads_state_is_read_once_while_it_stays_asleep() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (wake, asleep) = std::sync::mpsc::channel::<()>();
        let sleeper = std::thread::spawn(move || {
            tx.send(unsafe { libc::gettid() }).unwrap();
            let _ = asleep.recv();
        });
        let tid = rx.recv().unwrap();
        let pid = std::process::id() as i32;
        let mut files = TaskFiles::new(pid);
        // Until it is asleep in the channel's futex wait.
        let first = asleep_in_a_syscall(&mut files, tid);
        assert_eq!(first.state, 'S');
        // Its `stat` closed: were it read again, it would be opened again.
        assert!(files.open.remove(&(tid, Which::Stat)).is_some());
        HELD.fetch_sub(1, Ordering::Relaxed);
        let second = files.kernel_thread(tid).unwrap();
        assert_eq!(second, first);
        assert!(!files.open.contains_key(&(tid, Which::Stat)));
        // The task list, through the kept directory, lists it; once it is gone, its kept
        // state goes with it.
        assert!(files.task_ids().contains(&tid));
        wake.send(()).unwrap();
        sleeper.join().unwrap();
        let tids = files.task_ids();
        assert!(!tids.contains(&tid), "{tids:?}");
        files.retain(&tids);
        assert!(files.asleep.is_empty());
    }

    /// The risk of keeping a sleeping thread's state: a thread woken but not yet on a CPU
    /// (state `R`, queued) has the same `schedstat` and, had it kept its syscall, would read as
    /// still asleep. It does not: the wake-up sets the task's state to running, and the
    /// `syscall` file (read first, every snapshot) says "running" for exactly that state. Shown
    /// with a thread woken on a CPU held by a real-time spinner, so it cannot run.
    #[test]
    fn a_woken_thread_that_has_not_run_yet_reads_as_running() {
        use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
        use std::sync::Arc;
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            eprintln!("note: needs 2 CPUs; skipped");
            return;
        }
        fn pin(cpu: usize) -> bool {
            // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes inside it.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) == 0
            }
        }
        let busy_cpu = 1;
        let reader_cpu = 0;
        let (tx, rx) = std::sync::mpsc::channel();
        let (wake, asleep) = std::sync::mpsc::channel::<()>();
        let ran = Arc::new(AtomicBool::new(false));
        let sleeper = {
            let ran = ran.clone();
            std::thread::spawn(move || {
                tx.send((unsafe { libc::gettid() }, pin(busy_cpu))).unwrap();
                let _ = asleep.recv();
                ran.store(true, Ordering::SeqCst);
            })
        };
        let (tid, pinned) = rx.recv().unwrap();
        let finish = |step: &AtomicI32| step.store(3, Ordering::SeqCst);
        let pid = std::process::id() as i32;
        let mut files = TaskFiles::new(pid);
        let reader_pinned = pin(reader_cpu) && pinned;
        // The sleeper asleep in its futex wait, its state kept.
        let first = asleep_in_a_syscall(&mut files, tid);
        // 0: starting; 4: spinning, waiting for the go; 1: go; 2: sleeper woken; 3: stop;
        // -1: no real-time policy or pinning here.
        let step = Arc::new(AtomicI32::new(0));
        let spinner = {
            let step = step.clone();
            std::thread::spawn(move || {
                let param = libc::sched_param { sched_priority: 1 };
                // SAFETY: sets this thread's own policy; `param` is valid.
                let fifo = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } == 0;
                if !pin(busy_cpu) || !fifo {
                    step.store(-1, Ordering::SeqCst);
                    return;
                }
                step.store(4, Ordering::SeqCst);
                // Holds the CPU, bounded (real-time throttling aside) to 2 s in all.
                let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
                while step.load(Ordering::SeqCst) == 4 && std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
                let _ = wake.send(());
                let _ = step.compare_exchange(1, 2, Ordering::SeqCst, Ordering::SeqCst);
                while step.load(Ordering::SeqCst) != 3 && std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
            })
        };
        while step.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if step.load(Ordering::SeqCst) == -1 || !reader_pinned {
            eprintln!("note: no SCHED_FIFO or CPU pinning here; skipped");
            finish(&step);
            spinner.join().unwrap();
            // The sleeper's channel closed with the spinner: it returns.
            sleeper.join().unwrap();
            return;
        }
        assert_eq!(first.state, 'S');
        assert!(files.asleep.contains_key(&tid));
        let before = files.schedstat(tid).unwrap();
        step.store(1, Ordering::SeqCst);
        while step.load(Ordering::SeqCst) != 2 {
            std::hint::spin_loop();
        }
        let woken = files.kernel_thread(tid).unwrap();
        let after = files.schedstat(tid).unwrap();
        let had_run = ran.load(Ordering::SeqCst);
        finish(&step);
        spinner.join().unwrap();
        sleeper.join().unwrap();
        assert!(ran.load(Ordering::SeqCst));
        if had_run || after != before {
            // Real-time throttling or a migration let it run: nothing shown either way.
            eprintln!("note: the woken thread ran before it was read; not shown");
            return;
        }
        assert_eq!(
            woken.state, 'R',
            "{woken:?} (schedstat {before:?} unchanged)"
        );
        assert!(woken.syscall.is_none(), "{woken:?}");
    }
}
