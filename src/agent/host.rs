//! The processes of this host that `watch` may look at: `/proc`'s list read once per pass,
//! each entry's `stat` (name, parent, start time) and owner, narrowed by the options' filters.
//! Whether a process is Python is not decided here (attaching tells).

use std::os::unix::fs::MetadataExt;

use regex::Regex;

/// Which processes to watch; every filter given must hold (none: every process of the host).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these pids.
    pub pids: Vec<i32>,
    /// Only processes whose name (`/proc/PID/comm`) matches.
    pub comm: Option<Regex>,
    /// Only processes owned by this uid.
    pub uid: Option<u32>,
    /// Only processes whose cgroup path starts with this.
    pub cgroup: Option<String>,
    /// Only children of this pid.
    pub ppid: Option<i32>,
}

/// One process of the host as `/proc/PID/stat` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub pid: i32,
    pub ppid: i32,
    pub comm: String,
    /// Clock ticks after boot: with the pid, names one process whatever reuses the pid.
    pub start: u64,
    pub uid: u32,
}

/// Every process of the host but this one and kernel threads.
pub fn processes() -> Vec<Entry> {
    let me = std::process::id() as i32;
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            if pid == me {
                return None;
            }
            let uid = e.metadata().ok()?.uid();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            parse_stat(pid, &stat, uid)
        })
        .collect()
}

/// The fields of a `stat` text the agent uses; `None` for kernel threads (children of
/// kthreadd, pid 2) and zombies.
pub fn parse_stat(pid: i32, stat: &str, uid: u32) -> Option<Entry> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // After the name: state (3), ppid (4), ... starttime (22), numbered from 1 as in proc(5).
    let state = rest.first()?;
    let ppid: i32 = rest.get(1)?.parse().ok()?;
    let start: u64 = rest.get(19)?.parse().ok()?;
    if pid == 2 || ppid == 2 || *state == "Z" || *state == "X" {
        return None;
    }
    Some(Entry {
        pid,
        ppid,
        comm,
        start,
        uid,
    })
}

impl Filter {
    /// Whether the process passes every filter; `cgroup_path` is read only when a cgroup
    /// filter is set.
    pub fn admits(&self, e: &Entry, cgroup_path: impl FnOnce() -> String) -> bool {
        (self.pids.is_empty() || self.pids.contains(&e.pid))
            && self.ppid.is_none_or(|p| p == e.ppid)
            && self.uid.is_none_or(|u| u == e.uid)
            && self.comm.as_ref().is_none_or(|re| re.is_match(&e.comm))
            && self
                .cgroup
                .as_ref()
                .is_none_or(|prefix| cgroup_path().starts_with(prefix.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_with_a_hostile_name() {
        let stat =
            "4242 (a) b (c) S 17 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 1 1";
        let e = parse_stat(4242, stat, 1000).unwrap();
        assert_eq!(
            (e.comm.as_str(), e.ppid, e.start, e.uid),
            ("a) b (c", 17, 987654, 1000)
        );
        let kthread = "3 (rcu_gp) I 2 0 0 0 -1 0 0 0 0 0 0 0 0 0 0 -20 1 0 5 0 0";
        assert_eq!(parse_stat(3, kthread, 0), None);
        let zombie = "9 (py) Z 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 0 20 1 0 5 0 0";
        assert_eq!(parse_stat(9, zombie, 0), None);
    }

    #[test]
    fn every_filter_given_must_hold() {
        let e = parse_stat(
            10,
            "10 (python3.12) S 5 0 0 0 -1 0 0 0 0 0 0 0 0 0 0 20 1 0 77 0 0",
            1000,
        )
        .unwrap();
        let none = Filter::default();
        assert!(none.admits(&e, || unreachable!()));
        let f = Filter {
            comm: Some(Regex::new("^python").unwrap()),
            uid: Some(1000),
            ppid: Some(5),
            ..Filter::default()
        };
        assert!(f.admits(&e, || unreachable!()));
        let f = Filter {
            pids: vec![11],
            ..Filter::default()
        };
        assert!(!f.admits(&e, || unreachable!()));
        let f = Filter {
            cgroup: Some("/kubepods".into()),
            ..Filter::default()
        };
        assert!(f.admits(&e, || "/kubepods.slice/x".into()));
        assert!(!f.admits(&e, || "/system.slice/x".into()));
    }
}
