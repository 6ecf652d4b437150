//! `wait4`: a thread in `wait4`/`waitid` waits for that child (or any child) to exit; and a
//! `Process.join` waits for that process.

use std::collections::{HashMap, HashSet};

use crate::model::*;
use crate::snapshot::{self, Snapshot};
use crate::target::procfs::{self};

use super::nodes::{process_node, thread_mut, user_site};

/// Threads in `wait4`/`waitid`: waiting for a child (or any child) to exit.
pub(super) fn link_children(out: &mut Snapshot, tree_pids: &[i32], python: &HashSet<i32>) {
    let ppids: HashMap<i32, Option<i32>> =
        tree_pids.iter().map(|&p| (p, procfs::ppid(p))).collect();
    let mut new_locks = Vec::new();
    for t in out.threads.iter_mut() {
        let Some(s) = t
            .native_id
            .and_then(|tid| procfs::kernel_thread(t.pid, tid))
            .filter(|k| k.state == 'S')
            .and_then(|k| k.syscall)
        else {
            continue;
        };
        const WNOHANG: u64 = 1;
        let child: Option<i32> = match s.nr {
            procfs::SYS_WAIT4 if s.args[2] & WNOHANG == 0 => Some(s.args[0] as i32),
            // waitid(P_ALL=0 | P_PID=1, id, info, options)
            procfs::SYS_WAITID if s.args[3] & WNOHANG == 0 => match s.args[0] {
                0 => Some(-1),
                1 => Some(s.args[1] as i32),
                _ => None,
            },
            _ => None,
        };
        let Some(child) = child else { continue };
        let site = user_site(t);
        let (target, blocked) = if child > 0 {
            (process_node(child), python.contains(&child))
        } else {
            let kids: Vec<i32> = ppids
                .iter()
                .filter(|(_, pp)| **pp == Some(t.pid))
                .map(|(p, _)| *p)
                .collect();
            let id = format!("{}:children", t.pid);
            if !new_locks.iter().any(|l: &Lock| l.id == id) {
                new_locks.push(Lock {
                    name: None,
                    permits: None,
                    contradictions: Vec::new(),
                    python_type: None,
                    readers: None,
                    id: id.clone(),
                    pid: t.pid,
                    address: String::new(),
                    kind: LockKind::Children,
                    names: vec![],
                    locked: None,
                    holders: kids
                        .iter()
                        .map(|&k| Holder::process(k, Evidence::Wait4))
                        .collect(),
                    waiters: vec![],
                    module: None,
                    shared: Some(Shared {
                        processes: kids.clone(),
                        ..Default::default()
                    }),
                });
            }
            if let Some(l) = new_locks.iter_mut().find(|l| l.id == id) {
                l.waiters.push(Waiter {
                    thread: t.id.clone(),
                    evidence: Evidence::Wait4,
                    site: site.clone(),
                });
            }
            (
                id,
                !kids.is_empty() && kids.iter().all(|k| python.contains(k)),
            )
        };
        t.waits_for = Some(Wait {
            timeout_s: None,
            waited_s: None,
            kind: WaitKind::ChildExit,
            target: Some(target),
            evidence: Evidence::Wait4,
            site,
            name: (child > 0).then(|| format!("process {child}")),
            via: Some(if s.nr == procfs::SYS_WAITID {
                "waitid".into()
            } else {
                "wait4".into()
            }),
            timed: false,
            targets: Vec::new(),
            futex: None,
        });
        t.state = ThreadState::JoinWait;
        t.blocked = blocked;
    }
    out.locks.extend(new_locks);
}

/// Threads in `Process.join` that no `wait4` explains (a `forkserver` child, waited for through
/// the server's pipe): waiting for the child whose pid their `Popen` holds to exit.
pub(super) fn link_joins(
    out: &mut Snapshot,
    views: &[(i32, snapshot::MpView)],
    python: &HashSet<i32>,
) {
    for join in views.iter().flat_map(|(_, v)| &v.joins) {
        let Some(t) = thread_mut(out, &join.thread) else {
            continue;
        };
        if t.waits_for
            .as_ref()
            .is_some_and(|w| w.kind == WaitKind::ChildExit)
        {
            continue;
        }
        t.waits_for = Some(Wait {
            timeout_s: None,
            waited_s: None,
            kind: WaitKind::ChildExit,
            target: Some(process_node(join.pid)),
            evidence: Evidence::Memory,
            site: join.site.clone(),
            name: Some(format!("process {}", join.pid)),
            via: Some("Process.join".into()),
            timed: join.timed,
            targets: Vec::new(),
            futex: None,
        });
        t.state = ThreadState::JoinWait;
        t.blocked = python.contains(&join.pid);
    }
}
