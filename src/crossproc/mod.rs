//! `--tree`: every Python process of a process tree sampled together, and the waits that cross
//! process boundaries linked with their evidence:
//! - `shm_futex`: a futex in a shared file mapping is a `multiprocessing` semaphore, identified
//!   by the mapping's (device, inode, offset), the same in every process; its holders are the
//!   processes whose `SemLock` has `count > 0` (`last_tid` names the thread);
//! - `wait4`: a thread in `wait4`/`waitid` waits for that child (or any child) to exit;
//! - `pipe`: a thread blocked reading or writing a pipe or socket waits for the processes
//!   holding the other end, unless one of them is serving it right now (`sock_diag` for a
//!   socket, whose peer the kernel's socket tables name).
//!
//! This file samples the tree (`Tree`); `link` merges its snapshots and each child answers
//! one kind of link; none names this file.

mod channels;
mod children;
mod link;
mod nodes;
mod pools;
mod semaphores;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::error::{Error, Result};
use crate::snapshot::{self, Session, Snapshot};
use crate::target::discovery::DiscoveryCache;
use crate::target::procfs::{self};
use crate::target::{ReadOptions, Target};
use crate::tree;

pub use link::link;
pub use nodes::process_id;

/// How often a process that is not (yet) Python is tried again before it is left alone.
const MAX_ATTACH_TRIES: u32 = 20;

/// The Python processes of a tree, attached once each and sampled together.
pub struct Tree {
    pub root: i32,
    pub targets: BTreeMap<i32, Session>,
    /// Processes that failed to attach: their command line and how often they were tried.
    tries: HashMap<i32, (String, u32)>,
    cmdlines: HashMap<i32, String>,
    /// What each process's snapshots read (`cross_process` is always on in a tree).
    pub read: ReadOptions,
    /// Interpreter discovery, shared by every process running the same Python binary.
    pub discovery: DiscoveryCache,
    /// The tree is every descendant of this process, not only of `root` (`run`, a subreaper:
    /// what `root` leaves behind is re-parented here and still watched).
    pub subreaper: bool,
    /// The processes whose snapshot failed in the latest `snapshot_parts`, and why: they are
    /// missing from that tree snapshot.
    pub failed: Vec<(i32, String)>,
}

impl Tree {
    pub fn new(root: i32, read: ReadOptions) -> Tree {
        Tree {
            root,
            targets: BTreeMap::new(),
            tries: HashMap::new(),
            cmdlines: HashMap::new(),
            read: ReadOptions {
                cross_process: true,
                ..read
            },
            discovery: DiscoveryCache::default(),
            subreaper: false,
            failed: Vec::new(),
        }
    }

    /// Attach to the tree rooted at `root`; fails (with the root's own error) when no process
    /// of the tree is Python.
    pub fn attach(root: i32, read: ReadOptions) -> Result<Tree> {
        if root <= 0 || !procfs::exists(root) {
            return Err(Error::NoSuchProcess { pid: root });
        }
        let mut t = Tree::new(root, read);
        t.refresh();
        if t.targets.is_empty() {
            // The root's own error; or, for a root that has only just started (`Target::attach`
            // waits for it), its interpreter, found once the tree is looked at again.
            Target::attach(root, read)?;
            t.refresh();
        }
        if t.targets.is_empty() {
            return Err(Error::TargetExited { pid: root });
        }
        Ok(t)
    }

    /// Follow the tree: attach to new processes (and to ones that exec'd), drop gone ones.
    /// Returns every live pid of the tree, parents first.
    pub fn refresh(&mut self) -> Vec<i32> {
        let pids = if self.subreaper {
            tree::own_descendants()
        } else {
            tree::descendants(self.root)
        };
        let live: HashSet<i32> = pids.iter().copied().collect();
        self.targets.retain(|p, t| live.contains(p) && t.alive());
        self.tries.retain(|p, _| live.contains(p));
        self.cmdlines.retain(|p, _| live.contains(p));
        for &pid in &pids {
            let cmdline = procfs::cmdline(pid);
            if self.cmdlines.get(&pid) != Some(&cmdline) {
                // New, or a new program (exec): start over.
                self.cmdlines.insert(pid, cmdline.clone());
                self.targets.remove(&pid);
                self.tries.remove(&pid);
            }
            if self.targets.contains_key(&pid) {
                continue;
            }
            let tries = self.tries.entry(pid).or_insert((cmdline, 0));
            if tries.1 >= MAX_ATTACH_TRIES {
                continue;
            }
            tries.1 += 1;
            match Session::attach_with(pid, self.read, &mut self.discovery) {
                Ok(t) => {
                    self.targets.insert(pid, t);
                }
                Err(Error::NotPython { .. })
                | Err(Error::Unsupported { .. })
                | Err(Error::Zombie { .. })
                | Err(Error::PermissionDenied { .. }) => tries.1 = MAX_ATTACH_TRIES,
                Err(_) => {}
            }
        }
        pids
    }

    /// One snapshot of the whole tree. A process that exits while being read is left out.
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        self.snapshot_parts().map(|(s, _)| s)
    }

    /// The tree snapshot and the per-process snapshots it was built from.
    pub fn snapshot_parts(&mut self) -> Result<(Snapshot, Vec<Snapshot>)> {
        let pids = self.refresh();
        let mut snaps = Vec::new();
        self.failed.clear();
        for (&pid, t) in self.targets.iter_mut() {
            match snapshot::take(t) {
                Ok(s) => snaps.push(s),
                Err(e) => self.failed.push((pid, e.to_string())),
            }
        }
        if snaps.is_empty() {
            return Err(Error::TargetExited { pid: self.root });
        }
        let parts = snaps.clone();
        Ok((link(self.root, &pids, snaps, &self.targets), parts))
    }
}
