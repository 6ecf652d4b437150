//! Process trees from `/proc`: a process and all its descendants.

use std::collections::HashMap;

use crate::target::procfs;

/// `root` and every live descendant, parents before children.
pub fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.filter_map(|e| e.ok()) {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if let Some(ppid) = procfs::ppid(pid) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            let mut kids = kids.clone();
            kids.sort_unstable();
            out.extend(kids);
        }
        i += 1;
    }
    out.retain(|p| procfs::exists(*p));
    out
}

/// Every live descendant of this process, parents before children: `run`'s tree, which (as
/// its subreaper) also holds the processes its command left behind, re-parented here.
pub fn own_descendants() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut pids = descendants(me);
    pids.retain(|p| *p != me);
    pids
}

/// Total CPU ticks used by all threads of `pid`.
pub fn cpu_ticks(pid: i32) -> u64 {
    procfs::task_ids(pid)
        .into_iter()
        .filter_map(|t| procfs::thread_cpu_ticks(pid, t))
        .sum()
}

/// Whether any thread of `pid` is in a timed sleep (it will act again by itself).
pub fn sleeping_with_timeout(pid: i32) -> bool {
    procfs::task_ids(pid)
        .into_iter()
        .filter_map(|t| procfs::kernel_thread(pid, t))
        .any(|k| {
            k.syscall
                .map(|s| {
                    matches!(s.nr, procfs::SYS_NANOSLEEP | procfs::SYS_CLOCK_NANOSLEEP)
                        || s.futex_timed()
                })
                .unwrap_or(false)
        })
}
