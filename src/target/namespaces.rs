//! Which TID each of a target's threads has in the target's own PID namespace (a container,
//! `unshare --pid`), where the interpreter's thread states record it, against the TID gridlock
//! sees in `/proc/PID/task`. Read once per thread from `NSpid` in
//! `/proc/PID/task/TID/status` (the first number is the TID in the namespace of gridlock's
//! `/proc`, the last the one in the thread's own namespace); threads that appear later are
//! read when they appear. It does not read thread states nor decide what an unmatched thread
//! means (`snapshot`).

use std::collections::HashMap;

/// The TIDs of a thread from the namespace of gridlock's `/proc` down to its own (`NSpid`).
pub fn parse_nspid(status: &str) -> Option<Vec<i32>> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    let ids: Option<Vec<i32>> = line.split_whitespace().map(|s| s.parse().ok()).collect();
    ids.filter(|v| !v.is_empty())
}

/// Whether `pid` lives in another PID namespace than gridlock (`None` when it cannot be told).
pub fn other_pid_namespace(pid: i32) -> Option<bool> {
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    let ours = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(theirs != ours)
}

/// Whether `pid` is in the PID namespace of the `/proc` gridlock reads. Either gridlock
/// shares the target's namespace and its own `NSpid` has one number (so `/proc` numbers
/// threads in that namespace; a `/proc` of an enclosing namespace would show gridlock's TID
/// there too), or the target shares PID 1's (whose namespace link only a privileged reader
/// may see). `false` when it cannot be told.
fn in_procs_namespace(pid: i32) -> bool {
    let Ok(theirs) = std::fs::read_link(format!("/proc/{pid}/ns/pid")) else {
        return false;
    };
    let ours_is_procs = std::fs::read_to_string("/proc/self/status")
        .ok()
        .as_deref()
        .and_then(parse_nspid)
        .is_some_and(|ids| ids.len() == 1);
    if ours_is_procs && std::fs::read_link("/proc/self/ns/pid").ok() == Some(theirs.clone()) {
        return true;
    }
    std::fs::read_link("/proc/1/ns/pid").is_ok_and(|procs| procs == theirs)
}

/// One target's map between TIDs in its own namespace and TIDs in `/proc`.
#[derive(Debug, Default)]
pub struct NamespaceTids {
    pid: i32,
    /// `/proc` TID -> the thread's TID in its own namespace (equal outside a namespace).
    own: HashMap<i32, i32>,
    /// Whether some thread's `status` had no `NSpid` line (a kernel before 4.1) or could not
    /// be read: its own TID is then taken to be the `/proc` one.
    pub missing_nspid: bool,
    /// Whether some thread's own TID differs from its `/proc` TID.
    pub nested: bool,
    /// Whether the target is in the PID namespace `/proc` numbers threads in, so each own TID
    /// is its `/proc` TID with no `status` to read (`None` until first asked).
    numbered_by_proc: Option<bool>,
}

impl NamespaceTids {
    pub fn new(pid: i32) -> NamespaceTids {
        NamespaceTids {
            pid,
            ..Default::default()
        }
    }

    /// The map of a process whose threads `/proc` cannot list (a core dump's): each TID is
    /// taken as its own.
    pub fn fixed(pid: i32, tids: &[i32]) -> NamespaceTids {
        NamespaceTids {
            pid,
            own: tids.iter().map(|&t| (t, t)).collect(),
            numbered_by_proc: Some(true),
            ..Default::default()
        }
    }

    /// Bring the map up to date with the threads now in `/proc/PID/task` (sorted), reading
    /// `status` only for threads not seen before.
    pub fn refresh(&mut self, tids: &[i32]) {
        self.own.retain(|tid, _| tids.binary_search(tid).is_ok());
        let pid = self.pid;
        let numbered_by_proc = *self
            .numbered_by_proc
            .get_or_insert_with(|| in_procs_namespace(pid));
        for &tid in tids {
            if self.own.contains_key(&tid) {
                continue;
            }
            if numbered_by_proc {
                self.own.insert(tid, tid);
                continue;
            }
            let path = format!("/proc/{}/task/{tid}/status", self.pid);
            let own = match std::fs::read_to_string(path)
                .ok()
                .as_deref()
                .and_then(parse_nspid)
            {
                Some(ids) => *ids.last().expect("non-empty"),
                None => {
                    self.missing_nspid = true;
                    tid
                }
            };
            self.nested |= own != tid;
            self.own.insert(tid, own);
        }
    }

    /// Own-namespace TID -> `/proc` TID, for the threads of the last `refresh`.
    pub fn to_proc(&self) -> HashMap<i32, i32> {
        self.own.iter().map(|(&tid, &own)| (own, tid)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nspid() {
        let status = "Name:\tpython3\nTgid:\t31215\nPid:\t31215\nNSpid:\t31215\t1\nNSsid:\t0\n";
        assert_eq!(parse_nspid(status), Some(vec![31215, 1]));
        assert_eq!(parse_nspid("Pid:\t7\nNSpid:\t7\n"), Some(vec![7]));
        assert_eq!(parse_nspid("Pid:\t7\n"), None);
        assert_eq!(parse_nspid("NSpid:\tx\n"), None);
    }

    #[test]
    fn maps_this_process_to_itself() {
        let pid = std::process::id() as i32;
        let tids = crate::target::procfs::task_ids(pid);
        let mut map = NamespaceTids::new(pid);
        map.refresh(&tids);
        assert!(!map.nested);
        assert_eq!(map.to_proc().get(&pid), Some(&pid));
        // This test runs in the namespace its `/proc` numbers threads in.
        assert!(in_procs_namespace(pid));
        assert_eq!(other_pid_namespace(pid), Some(false));
    }
}
