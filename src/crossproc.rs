//! `--tree`: every Python process of a process tree sampled together, and the waits that cross
//! process boundaries linked with their evidence:
//! - `shm_futex`: a futex in a shared file mapping is a `multiprocessing` semaphore, identified
//!   by the mapping's (device, inode, offset), the same in every process; its holders are the
//!   processes whose `SemLock` has `count > 0` (`last_tid` names the thread);
//! - `wait4`: a thread in `wait4`/`waitid` waits for that child (or any child) to exit;
//! - `pipe`: a thread blocked reading or writing a pipe or socket waits for the processes
//!   holding the other end, unless one of them is serving it right now (`sock_diag` for a
//!   socket, whose peer the kernel's socket tables name).

use crate::memory::ReadMemory;
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::cpython::objects::Objects;
use crate::error::{Error, Result};
use crate::model::*;
use crate::snapshot::{self, read_semlock, MpWait, SemLockObj, Session, Snapshot};
use crate::target::discovery::DiscoveryCache;
use crate::target::procfs::{self, Channel, ChannelFd, Mapping};
use crate::target::{sockdiag, ReadOptions, Target};
use crate::tree;

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
            Target::attach(root, read)?;
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

/// The shared semaphore a futex address lies in: (device, inode, offset in the file).
type SemKey = (String, u64, u64);

fn sem_key(maps: &[Mapping], addr: usize) -> Option<(SemKey, String)> {
    let m = maps
        .iter()
        .find(|m| m.shared_file() && m.start <= addr && addr < m.end)?;
    let off = m.offset + (addr - m.start) as u64;
    Some(((m.device.clone(), m.inode, off), m.path.clone()))
}

/// Where user code waits: the innermost frame outside the standard library's process and
/// thread plumbing (`Process.join`, `Connection.recv`, `Popen.wait`), else the innermost.
fn user_site(t: &Thread) -> Option<String> {
    let library = |f: &Frame| {
        f.file.contains("/multiprocessing/")
            || matches!(
                short_file(&f.file),
                "subprocess.py" | "threading.py" | "queue.py"
            )
    };
    t.frames
        .iter()
        .find(|f| !library(f))
        .or(t.frames.first())
        .map(|f| f.site())
}

fn process_node(pid: i32) -> String {
    format!("{pid}:p")
}

/// Merge per-process snapshots into one tree snapshot and add the cross-process waits.
pub fn link(
    root: i32,
    tree_pids: &[i32],
    snaps: Vec<Snapshot>,
    targets: &BTreeMap<i32, Session>,
) -> Snapshot {
    let taken = snaps.iter().map(|s| s.taken).min().unwrap();
    let python: HashSet<i32> = snaps.iter().map(|s| s.pid).collect();
    let mut out = Snapshot {
        probe_loaded: false,
        probe_edges: Vec::new(),
        taken,
        pid: root,
        threads: Vec::new(),
        locks: Vec::new(),
        processes: Vec::new(),
        mp: Default::default(),
        tasks: Vec::new(),
        loops: Vec::new(),
        pools: Default::default(),
        signals: Default::default(),
    };
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

/// A future (or `multiprocessing.Pool` result) waited on in one process, whose work a child
/// runs: its holder is the worker thread whose `_process_worker`/`worker` frame runs that
/// work or job id; work no child runs yet is queued, for any worker process of the pool.
/// A `forkserver` pool's workers are the server's children: they count as children of the
/// process that started the server.
fn link_pools(out: &mut Snapshot, pools: &[(i32, snapshot::PoolView)]) {
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
fn fork_servers(snap: &Snapshot) -> HashSet<i32> {
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

fn thread_mut<'a>(snap: &'a mut Snapshot, id: &str) -> Option<&'a mut Thread> {
    snap.threads.iter_mut().find(|t| t.id == id)
}

fn link_semaphores(
    out: &mut Snapshot,
    views: &[(i32, snapshot::MpView)],
    maps: &HashMap<i32, Vec<Mapping>>,
    targets: &BTreeMap<i32, Session>,
    python: &HashSet<i32>,
) {
    let empty = Vec::new();
    let maps_of = |p: i32| maps.get(&p).unwrap_or(&empty);
    // Waits grouped by semaphore.
    let mut groups: BTreeMap<SemKey, Vec<(i32, &MpWait, String)>> = BTreeMap::new();
    for (pid, v) in views {
        for w in &v.waits {
            if let Some((key, path)) = sem_key(maps_of(*pid), w.futex) {
                groups.entry(key).or_default().push((*pid, w, path));
            }
        }
    }
    for (key, waits) in groups {
        let (dev, inode, offset) = key.clone();
        let id = format!("shm:{dev}:{inode}+{offset:#x}");
        let (wpid, first, path) = (waits[0].0, waits[0].1, waits[0].2.clone());
        let mapped_by: Vec<i32> = maps
            .iter()
            .filter(|(_, ms)| ms.iter().any(|m| m.device == dev && m.inode == inode))
            .map(|(p, _)| *p)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        // Every SemLock object for this semaphore, per process: reachable ones, and (for forked
        // children, which share their parent's addresses) the waiters' objects at the same
        // address, each verified by where its handle points.
        let known: Vec<usize> = waits.iter().filter_map(|(_, w, _)| w.semlock).collect();
        let mut per_process: BTreeMap<i32, Vec<SemLockObj>> = BTreeMap::new();
        for &p in &mapped_by {
            let Some(t) = targets.get(&p) else { continue };
            let objs = Objects::new(&t.mem, &t.layout);
            let reachable = views
                .iter()
                .find(|(vp, _)| *vp == p)
                .map(|(_, v)| v.semlocks.clone())
                .unwrap_or_default();
            let same_address = known.iter().filter_map(|a| read_semlock(&objs, *a));
            let mut found: Vec<SemLockObj> = reachable
                .into_iter()
                .chain(same_address)
                .filter(|s| sem_key(maps_of(p), s.handle).map(|k| k.0) == Some(key.clone()))
                .collect();
            found.sort_by_key(|s| s.addr);
            found.dedup_by_key(|s| s.addr);
            if !found.is_empty() {
                per_process.insert(p, found);
            }
        }
        let sample = per_process.values().flatten().next().cloned().or_else(|| {
            let t = targets.get(&wpid)?;
            read_semlock(&Objects::new(&t.mem, &t.layout), first.semlock?)
        });
        let notify = waits.iter().any(|(_, w, _)| w.notify);
        let kind = match &sample {
            _ if notify => LockKind::MpCondition,
            Some(s) if s.kind == 0 => LockKind::MpRLock,
            Some(s) if s.maxvalue == 1 => LockKind::MpLock,
            Some(_) => LockKind::MpSemaphore,
            None => LockKind::SharedSemaphore,
        };
        let value = targets
            .get(&wpid)
            .and_then(|t| t.mem.u32_at(first.futex).ok());
        let mut holders = Vec::new();
        if !notify {
            for (p, objs) in &per_process {
                let Some(s) = objs.iter().find(|s| s.count > 0) else {
                    continue;
                };
                let tid = snapshot::thread_id(*p, s.last_tid);
                let live = out.threads.iter().any(|t| t.id == tid);
                let hold = views
                    .iter()
                    .find(|(vp, _)| vp == p)
                    .and_then(|(_, v)| {
                        v.holds
                            .iter()
                            .find(|h| h.thread == tid && objs.iter().any(|o| o.addr == h.semlock))
                    })
                    .cloned();
                holders.push(Holder {
                    task: None,
                    thread: live.then(|| tid.clone()),
                    process: Some(*p),
                    owner_ident: Some(s.last_tid),
                    evidence: Evidence::Memory,
                    site: hold.as_ref().map(|h| h.site.clone()),
                    count: Some(s.count as u64),
                });
                if live {
                    let name = hold.as_ref().and_then(|h| h.name.clone());
                    if let Some(t) = thread_mut(out, &tid) {
                        t.holds.push(Hold {
                            lock: id.clone(),
                            evidence: if hold.is_some() {
                                Evidence::ValueStack
                            } else {
                                Evidence::Memory
                            },
                            site: hold.map(|h| h.site),
                            name,
                        });
                    }
                }
            }
        }
        // Every process that maps the semaphore was read and none holds it: the holder exited.
        let all_checked = mapped_by
            .iter()
            .all(|p| python.contains(p) && per_process.contains_key(p));
        let lock_like = matches!(kind, LockKind::MpLock | LockKind::MpRLock);
        let holder_exited = lock_like && value == Some(0) && holders.is_empty() && all_checked;
        if !notify && holders.is_empty() && !holder_exited {
            holders.push(Holder {
                task: None,
                thread: None,
                process: None,
                owner_ident: None,
                evidence: Evidence::Unknown,
                site: None,
                count: None,
            });
        }
        let mut names = Vec::new();
        let mut waiters = Vec::new();
        for (_, w, _) in &waits {
            if let (Some(n), Some(s)) = (&w.name, &w.site) {
                let ln = LockName {
                    how: NameHow::Local,
                    name: n.clone(),
                    frame: s.clone(),
                };
                if !names.contains(&ln) {
                    names.push(ln);
                }
            }
            waiters.push(Waiter {
                thread: w.thread.clone(),
                evidence: Evidence::ShmFutex,
                site: w.site.clone(),
            });
            if let Some(t) = thread_mut(out, &w.thread) {
                let timed = t.waits_for.as_ref().map(|x| x.timed).unwrap_or(false);
                t.waits_for = Some(Wait {
                    timeout_s: None,
                    waited_s: None,
                    kind: if notify {
                        WaitKind::Notify
                    } else {
                        WaitKind::Lock
                    },
                    target: Some(id.clone()),
                    evidence: Evidence::ShmFutex,
                    site: w.site.clone(),
                    name: w.name.clone(),
                    via: w.via.clone(),
                    timed,
                    futex: Some(format!("{:#x}", w.futex)),
                    targets: Vec::new(),
                });
                t.state = if notify {
                    ThreadState::ConditionWait
                } else {
                    ThreadState::LockWait
                };
                t.blocked = !timed;
            }
        }
        out.locks.push(Lock {
            name: None,
            permits: None,
            contradictions: Vec::new(),
            id,
            pid: wpid,
            address: format!("{:#x}", first.futex),
            kind,
            names,
            locked: value.map(|v| v == 0),
            holders,
            waiters,
            module: None,
            shared: Some(Shared {
                device: Some(dev),
                inode: Some(inode),
                offset: Some(offset),
                path: Some(path),
                value,
                processes: mapped_by,
                peer_inode: None,
                holder_exited,
                commands: Default::default(),
            }),
        });
    }
}

/// Threads in `wait4`/`waitid`: waiting for a child (or any child) to exit.
fn link_children(out: &mut Snapshot, tree_pids: &[i32], python: &HashSet<i32>) {
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
                    id: id.clone(),
                    pid: t.pid,
                    address: String::new(),
                    kind: LockKind::Children,
                    names: vec![],
                    locked: None,
                    holders: kids
                        .iter()
                        .map(|&k| Holder {
                            task: None,
                            thread: None,
                            process: Some(k),
                            owner_ident: None,
                            evidence: Evidence::Wait4,
                            site: None,
                            count: None,
                        })
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
fn link_joins(out: &mut Snapshot, views: &[(i32, snapshot::MpView)], python: &HashSet<i32>) {
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

/// Threads blocked reading or writing a pipe or socket, linked to the holders of the other end.
fn link_channels(out: &mut Snapshot, tree_pids: &[i32], python: &HashSet<i32>) {
    let fds: HashMap<i32, Vec<ChannelFd>> = tree_pids
        .iter()
        .map(|&p| (p, procfs::channel_fds(p)))
        .collect();
    let channel_of = |pid: i32, fd: i32| -> Option<ChannelFd> {
        fds.get(&pid)?.iter().find(|c| c.fd == fd).copied()
    };
    // Every thread of the tree (Python or not) in a read or write on a pipe or socket.
    let mut active: Vec<(i32, i32, Channel, bool)> = Vec::new();
    for &p in tree_pids {
        for tid in procfs::task_ids(p) {
            let Some(s) = procfs::kernel_thread(p, tid).and_then(|k| k.syscall) else {
                continue;
            };
            if let Some((fd, reads)) = procfs::io_syscall(&s) {
                if let Some(c) = channel_of(p, fd) {
                    active.push((p, tid, c.channel, reads));
                }
            }
        }
    }
    let need_peers = active
        .iter()
        .any(|(_, _, c, _)| matches!(c, Channel::Socket(_)));
    // Unknown peers stay unknown: a socket wait is then left unlinked.
    let peers = if need_peers {
        let mut p = sockdiag::unix_peers().unwrap_or_default();
        p.extend(crate::kernel::sockets::tcp_peers());
        p
    } else {
        HashMap::new()
    };
    let holders_of = |c: Channel, readable: Option<bool>| -> Vec<i32> {
        let mut v: Vec<i32> = fds
            .iter()
            .filter(|(_, cs)| {
                cs.iter().any(|x| {
                    x.channel == c
                        && match readable {
                            Some(true) => x.readable,
                            Some(false) => x.writable,
                            None => true,
                        }
                })
            })
            .map(|(p, _)| *p)
            .collect();
        v.sort_unstable();
        v
    };
    let mut locks: BTreeMap<String, Lock> = BTreeMap::new();
    for t in out.threads.iter_mut() {
        let Some(tid) = t.native_id else { continue };
        let Some(&(_, _, channel, reads)) =
            active.iter().find(|(p, x, _, _)| *p == t.pid && *x == tid)
        else {
            continue;
        };
        let state = procfs::kernel_thread(t.pid, tid).map(|k| k.state);
        // The other end, who could serve this wait, and whether someone is serving it now.
        let (other, holders, peer) = match channel {
            Channel::Pipe(_) => (channel, holders_of(channel, Some(!reads)), None),
            Channel::Socket(i) => match peers.get(&i) {
                Some(&p) => (
                    Channel::Socket(p),
                    holders_of(Channel::Socket(p), None),
                    Some(p),
                ),
                None => continue,
            },
        };
        let served = active
            .iter()
            .any(|(p, x, c, r)| *c == other && *r != reads && !(*p == t.pid && *x == tid));
        let id = channel.id();
        let site = user_site(t);
        let what = if reads { "read" } else { "write" };
        // A socket's other end is known from sock_diag or /proc/net/tcp; a pipe's from fds.
        let evidence = match channel {
            Channel::Pipe(_) => Evidence::Pipe,
            Channel::Socket(_) => Evidence::SockDiag,
        };
        let lock = locks.entry(id.clone()).or_insert_with(|| Lock {
            name: None,
            permits: None,
            contradictions: Vec::new(),
            id: id.clone(),
            pid: t.pid,
            address: String::new(),
            kind: match channel {
                Channel::Pipe(_) => LockKind::Pipe,
                Channel::Socket(_) => LockKind::Socket,
            },
            names: vec![],
            locked: None,
            holders: holders
                .iter()
                .map(|&p| Holder {
                    task: None,
                    thread: None,
                    process: Some(p),
                    owner_ident: None,
                    evidence,
                    site: None,
                    count: None,
                })
                .collect(),
            waiters: vec![],
            module: None,
            shared: Some(Shared {
                inode: Some(match channel {
                    Channel::Pipe(i) | Channel::Socket(i) => i,
                }),
                path: Some(id.clone()),
                processes: holders.clone(),
                peer_inode: peer,
                ..Default::default()
            }),
        });
        lock.waiters.push(Waiter {
            thread: t.id.clone(),
            evidence,
            site: site.clone(),
        });
        t.waits_for = Some(Wait {
            timeout_s: None,
            waited_s: None,
            kind: WaitKind::Pipe,
            target: Some(id.clone()),
            evidence,
            site,
            name: Some(format!("{what} {}", if reads { "from" } else { "to" }))
                .map(|s| format!("{s} {id}")),
            via: Some(what.into()),
            targets: Vec::new(),
            timed: false,
            futex: None,
        });
        t.state = ThreadState::IoWait;
        // Provably stuck only if nobody serves it and every other party is a Python process
        // of the tree that gridlock reads (anything else may act at any time).
        t.blocked = state == Some('S')
            && !served
            && !holders.is_empty()
            && holders.iter().all(|p| python.contains(p));
    }
    out.locks.extend(locks.into_values());
}

/// Used by the graph: the node id of a process.
pub fn process_id(pid: i32) -> String {
    process_node(pid)
}
