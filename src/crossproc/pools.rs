//! A `multiprocessing` pool's workers seen from the parent: pool views of several processes
//! joined (a forkserver's children are the pool's too).

use std::collections::{HashMap, HashSet};

use crate::model::*;
use crate::snapshot::{self, Snapshot};

/// A future (or `multiprocessing.Pool` result) waited on in one process, whose work a child
/// runs: its holder is the worker thread whose `_process_worker`/`worker` frame runs that
/// work or job id; work no child runs yet is queued, for any worker process of the pool.
/// A `forkserver` pool's workers are the server's children: they count as children of the
/// process that started the server.
pub(super) fn link_pools(out: &mut Snapshot, pools: &[(i32, snapshot::PoolView)]) {
    let ppid: HashMap<i32, Option<i32>> = out.processes.iter().map(|p| (p.pid, p.ppid)).collect();
    let servers = fork_servers(out);
    let pool_parent = |child: i32| -> Option<i32> {
        let parent = ppid.get(&child).copied().flatten()?;
        if servers.contains(&parent) {
            ppid.get(&parent).copied().flatten()
        } else {
            Some(parent)
        }
    };
    let children = |parent: i32| -> Vec<&(i32, snapshot::PoolView)> {
        pools
            .iter()
            .filter(|(c, _)| pool_parent(*c) == Some(parent))
            .collect()
    };
    for (pid, view) in pools {
        for w in &view.waits {
            let runs: Vec<&snapshot::PoolRun> = children(*pid)
                .into_iter()
                .flat_map(|(_, v)| &v.runs)
                .filter(|r| r.kind == w.kind && r.id == w.id)
                .collect();
            let holder =
                |thread: Option<String>, process: Option<i32>, site: Option<String>| Holder {
                    thread,
                    task: None,
                    process,
                    owner_ident: None,
                    evidence: Evidence::Future,
                    site,
                    count: None,
                    call_path: Vec::new(),
                };
            let holders: Vec<Holder> = if runs.is_empty() {
                children(*pid)
                    .into_iter()
                    .filter(|(_, v)| v.worker == Some(w.kind))
                    .map(|(c, _)| holder(None, Some(*c), None))
                    .collect()
            } else {
                runs.iter()
                    .map(|r| holder(Some(r.thread.clone()), None, r.site.clone()))
                    .collect()
            };
            let Some(lock) = out.locks.iter_mut().find(|l| l.id == w.future) else {
                continue;
            };
            if let (Some(what), Some(name)) = (
                runs.first().and_then(|r| r.what.as_ref()),
                lock.names.first_mut(),
            ) {
                if w.kind == snapshot::PoolKind::MpPool {
                    name.name = format!("the result of {what} (pool job {})", w.id);
                }
            }
            if runs.is_empty() {
                if let Some(name) = lock.names.first_mut() {
                    name.name.push_str(" (queued)");
                }
            }
            lock.holders = holders;
        }
    }
}

/// The processes serving `multiprocessing`'s `forkserver`: a thread in the server's `main`
/// (`multiprocessing/forkserver.py`) that is not serving one fork (`_serve_one`: a worker
/// forked from the server keeps the server's frames below its own).
pub(super) fn fork_servers(snap: &Snapshot) -> HashSet<i32> {
    let in_forkserver = |f: &Frame, function: &str| {
        f.function == function && f.file.ends_with("multiprocessing/forkserver.py")
    };
    snap.threads
        .iter()
        .filter(|t| {
            t.frames.iter().any(|f| in_forkserver(f, "main"))
                && !t.frames.iter().any(|f| in_forkserver(f, "_serve_one"))
        })
        .map(|t| t.pid)
        .collect()
}
