//! The merge of a tree's snapshots into one, then each kind of cross-process link in turn
//! (pools, shared semaphores, children, joins, channels).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::snapshot::{self, Session, Snapshot};
use crate::target::procfs::{self, Mapping};

use super::channels::link_channels;
use super::children::{link_children, link_joins};
use super::pools::link_pools;
use super::semaphores::link_semaphores;

/// Merge per-process snapshots into one tree snapshot and add the cross-process waits.
pub fn link(
    root: i32,
    tree_pids: &[i32],
    snaps: Vec<Snapshot>,
    targets: &BTreeMap<i32, Session>,
) -> Snapshot {
    let taken = snaps.iter().map(|s| s.taken).min().unwrap();
    let python: HashSet<i32> = snaps.iter().map(|s| s.pid).collect();
    let mut out = Snapshot::of_threads(taken, root, Vec::new());
    let mut views = Vec::new();
    let mut pools = Vec::new();
    for s in snaps {
        if let Some(t) = targets.get(&s.pid) {
            out.processes.push(t.process.clone());
        }
        out.threads.extend(s.threads);
        out.locks.extend(s.locks);
        out.tasks.extend(s.tasks);
        out.loops.extend(s.loops);
        out.signals.extend(s.signals);
        out.notes.extend(s.notes);
        views.push((s.pid, s.mp));
        pools.push((s.pid, s.pools));
    }
    let maps: HashMap<i32, Vec<Mapping>> = tree_pids
        .iter()
        .map(|&p| {
            let m: Vec<Mapping> = procfs::maps(p)
                .into_iter()
                .filter(|m| m.shared_file())
                .collect();
            (p, m)
        })
        .collect();
    link_semaphores(&mut out, &views, &maps, targets, &python);
    link_children(&mut out, tree_pids, &python);
    link_joins(&mut out, &views, &python);
    link_channels(&mut out, tree_pids, &python);
    link_pools(&mut out, &pools);
    crate::frameworks::celery::link(
        &out.processes,
        &mut out.threads,
        &mut out.locks,
        &mut out.tasks,
    );
    snapshot::kernel_waits::link(&mut out, tree_pids);
    out
}
