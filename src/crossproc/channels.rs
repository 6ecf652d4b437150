//! `pipe`: a thread blocked reading or writing a pipe or socket waits for the processes
//! holding the other end, unless one of them is serving it right now.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::kernel::sockets::SocketTable;
use crate::model::*;
use crate::snapshot::Snapshot;
use crate::target::procfs::{self, Channel, ChannelFd};
use crate::target::sockdiag;

use super::nodes::user_site;

/// Threads blocked reading or writing a pipe or socket, linked to the holders of the other end.
pub(super) fn link_channels(out: &mut Snapshot, tree_pids: &[i32], python: &HashSet<i32>) {
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
    // Each waiting process's sockets, read once, to name a connection by its addresses.
    let mut socket_tables: HashMap<i32, SocketTable> = HashMap::new();
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
        let name = match channel {
            Channel::Pipe(_) => None,
            Channel::Socket(i) => socket_tables
                .entry(t.pid)
                .or_insert_with(|| SocketTable::read(t.pid))
                .describe(i),
        };
        let lock = locks.entry(id.clone()).or_insert_with(|| Lock {
            name,
            permits: None,
            contradictions: Vec::new(),
            python_type: None,
            readers: None,
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
                .map(|&p| Holder::process(p, evidence))
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
