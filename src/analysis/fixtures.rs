//! Hand-made model values for the analysis unit tests: a thread, a lock, a snapshot. Test-only;
//! it reads no process.

use crate::model::*;
use crate::snapshot::Snapshot;

pub fn thread(pid: i32, ident: u64, name: &str, wait: Option<(WaitKind, &str)>) -> Thread {
    Thread {
        syscall_name: None,
        id: format!("{pid}:t:{ident}"),
        pid,
        thread_id: ident,
        native_id: None,
        namespace_tid: None,
        kernel_unmatched: None,
        name: Some(name.into()),
        state: ThreadState::LockWait,
        state_since: String::new(),
        blocked: wait.is_some(),
        owns_gil: false,
        frames: Vec::new(),
        holds: Vec::new(),
        waits_for: wait.map(|(kind, target)| Wait {
            timeout_s: None,
            waited_s: None,
            kind,
            target: Some(target.into()),
            evidence: Evidence::Future,
            site: None,
            name: None,
            via: None,
            timed: false,
            futex: None,
            targets: Vec::new(),
        }),
        kernel: None,
        writes: Vec::new(),
        native_frames: Vec::new(),
        native_frames_from: None,
    }
}

pub fn lock(id: &str, kind: LockKind, name: &str, holders: &[&str], site: Option<&str>) -> Lock {
    Lock {
        name: None,
        permits: None,
        id: id.into(),
        pid: 1,
        address: "0x1".into(),
        kind,
        names: vec![LockName {
            how: NameHow::Local,
            name: name.into(),
            frame: String::new(),
        }],
        locked: Some(true),
        holders: holders
            .iter()
            .map(|h| Holder {
                thread: Some(h.to_string()),
                task: None,
                process: None,
                owner_ident: None,
                evidence: Evidence::Future,
                site: site.map(str::to_string),
                count: None,
                call_path: Vec::new(),
            })
            .collect(),
        waiters: Vec::new(),
        module: None,
        shared: None,
        contradictions: Vec::new(),
        python_type: None,
        readers: None,
    }
}

pub fn snapshot(threads: Vec<Thread>, locks: Vec<Lock>) -> Snapshot {
    Snapshot {
        locks,
        ..Snapshot::of_threads(std::time::SystemTime::now(), 1, threads)
    }
}
