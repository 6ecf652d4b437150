//! Socket waits no peer links, named from what the kernel says (evidence `sock_diag`): a
//! thread in `accept` waits on its listening address, for whoever connects (nobody known: not
//! blocked); a thread in `connect` to a local listener waits for the processes holding that
//! listener (one of them has to `accept`); a `recv`/`send`/`connect` to another host is an
//! I/O wait naming that host's address, waited for as long as the connection has been silent
//! (`tcp_info`); a `recv`/`send` to a local peer nothing linked names
//! the connection and the processes holding its other end. Connections between local processes are linked by
//! `crossproc` (`--tree`) first; this file only fills what is left. What the kernel says is
//! `crate::kernel::sockets`'; this file only turns it into waits and locks.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::kernel::file_locks::command;
use crate::kernel::sockets::{self, SocketAddress, SocketTable};
use crate::memory::ProcMemory;
use crate::model::*;
use crate::target::procfs::{self, Channel};

use super::sample::Snapshot;

/// What a socket wait is for.
enum SocketWait {
    Accept(Option<SocketAddress>),
    /// A connect to a listener of this host: its socket and who holds it.
    ConnectLocal {
        to: SocketAddress,
        listener: u64,
        holders: Vec<i32>,
    },
    Remote {
        what: &'static str,
        to: SocketAddress,
    },
    /// A `recv`/`send` on a connection whose other end is a local socket that no watched
    /// process links (plain `dump`, or a peer outside the tree): its holders are named, and
    /// the wait is not called blocked, as the peer's own state is not read.
    LocalPeer {
        what: &'static str,
        peer: u64,
        connection: String,
        holders: Vec<i32>,
    },
}

/// Link the socket waits of `snap`'s threads that nothing linked yet. `tree` is every process
/// gridlock watches (a listener's holders are looked for there first).
pub fn link(snap: &mut Snapshot, tree: &[i32]) {
    let python: HashSet<i32> = snap.threads.iter().map(|t| t.pid).collect();
    let mut tables: HashMap<i32, SocketTable> = HashMap::new();
    let mut locks: BTreeMap<String, Lock> = BTreeMap::new();
    let mut notes: Vec<(i32, String)> = Vec::new();
    // Threads waiting on another host, by index, with their socket's inode.
    let mut remote: Vec<(usize, u64)> = Vec::new();
    for (index, t) in snap.threads.iter_mut().enumerate() {
        if t.waits_for.is_some() || t.state != ThreadState::IoWait {
            continue;
        }
        let what = match t.syscall_name.as_deref() {
            Some("accept" | "accept4") => "accept",
            Some("connect") => "connect",
            Some("read" | "readv" | "recvfrom" | "recvmsg") => "read from",
            Some("write" | "writev" | "sendto" | "sendmsg") => "write to",
            _ => continue,
        };
        let Some(tid) = t.native_id else { continue };
        let Some(s) = procfs::kernel_thread(t.pid, tid)
            .filter(|k| k.state == 'S')
            .and_then(|k| k.syscall)
        else {
            continue;
        };
        let fd = s.args[0] as i32;
        let Some(Channel::Socket(inode)) = std::fs::read_link(format!("/proc/{}/fd/{fd}", t.pid))
            .ok()
            .and_then(|l| Channel::parse(l.to_str()?))
        else {
            continue;
        };
        let table = tables
            .entry(t.pid)
            .or_insert_with(|| SocketTable::read(t.pid));
        let wait = match what {
            "accept" => SocketWait::Accept(table.end(inode).and_then(|e| e.local.clone())),
            "connect" => {
                let mem = ProcMemory::open(t.pid).ok();
                let to = mem
                    .as_ref()
                    .and_then(|m| sockets::connect_address(m, &s))
                    .or_else(|| table.end(inode).and_then(|e| e.remote.clone()));
                let Some(to) = to else { continue };
                match table.listener(&to) {
                    Some(listener) => SocketWait::ConnectLocal {
                        holders: sockets::holders(listener, tree),
                        to,
                        listener,
                    },
                    None if to.is_remote() => SocketWait::Remote { what, to },
                    None => continue,
                }
            }
            _ => match (table.remote_host(inode), table.peer(inode)) {
                (Some(to), _) => SocketWait::Remote {
                    what,
                    to: to.clone(),
                },
                (None, Some(peer)) => SocketWait::LocalPeer {
                    what,
                    peer,
                    connection: table
                        .describe(inode)
                        .unwrap_or_else(|| Channel::Socket(inode).id()),
                    holders: sockets::holders(peer, tree),
                },
                (None, None) => continue,
            },
        };
        if let SocketWait::LocalPeer { holders, .. } = &wait {
            let outside: Vec<String> = holders
                .iter()
                .filter(|p| !tree.contains(p))
                .map(|p| format!("pid {p}"))
                .collect();
            if !outside.is_empty() {
                let thread = t.name.as_deref().unwrap_or("?");
                notes.push((
                    t.pid,
                    format!(
                        "thread {thread:?} waits on a connection whose other end {} holds, outside this report: dump it too (or a common parent with --tree) to know whether it can answer",
                        outside.join(" and ")
                    ),
                ));
            }
        }
        if matches!(wait, SocketWait::Remote { .. }) {
            remote.push((index, inode));
        }
        link_wait(t, inode, wait, &python, &mut locks);
    }
    // How long a remote connection has been silent, from the kernel: a single dump knows it.
    let inodes: Vec<u64> = remote.iter().map(|&(_, i)| i).collect();
    if let Ok(silence) = crate::target::sockdiag::tcp_silence(&inodes) {
        for (index, inode) in remote {
            if let (Some(quiet), Some(w)) =
                (silence.get(&inode), snap.threads[index].waits_for.as_mut())
            {
                w.waited_s = Some(Seconds(quiet.as_secs_f64()));
            }
        }
    }
    snap.locks.extend(locks.into_values());
    for (pid, note) in notes {
        let notes = snap.notes.entry(pid).or_default();
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
}

fn link_wait(
    t: &mut Thread,
    inode: u64,
    wait: SocketWait,
    python: &HashSet<i32>,
    locks: &mut BTreeMap<String, Lock>,
) {
    let mut peer_inode = None;
    let (socket, name, address, holders, blocked) = match &wait {
        SocketWait::Accept(at) => {
            let at = at
                .as_ref()
                .map_or_else(|| Channel::Socket(inode).id(), |a| a.to_string());
            (inode, format!("accept on {at}"), at, Vec::new(), false)
        }
        SocketWait::ConnectLocal {
            to,
            listener,
            holders,
        } => (
            *listener,
            format!("connect to {to}"),
            to.to_string(),
            holders.clone(),
            // Stuck only while every process that could accept is one gridlock reads.
            !holders.is_empty() && holders.iter().all(|p| python.contains(p)),
        ),
        SocketWait::LocalPeer {
            what,
            peer,
            connection,
            holders,
        } => {
            peer_inode = Some(*peer);
            (
                inode,
                format!("{what} {connection}"),
                connection.clone(),
                holders.clone(),
                false,
            )
        }
        SocketWait::Remote { what, to } => (
            inode,
            format!("{what} {to}, a remote host"),
            to.to_string(),
            Vec::new(),
            false,
        ),
    };
    let id = Channel::Socket(socket).id();
    // Where user code waits: the innermost frame outside `socket.py`'s wrappers.
    let site = t
        .frames
        .iter()
        .find(|f| short_file(&f.file) != "socket.py")
        .or(t.frames.first())
        .map(|f| f.site());
    let lock = locks.entry(id.clone()).or_insert_with(|| Lock {
        id: id.clone(),
        pid: t.pid,
        address: String::new(),
        kind: LockKind::Socket,
        name: Some(address.clone()),
        names: Vec::new(),
        permits: None,
        locked: None,
        holders: holders
            .iter()
            .map(|&p| Holder::process(p, Evidence::SockDiag))
            .collect(),
        waiters: Vec::new(),
        module: None,
        shared: Some(Shared {
            inode: Some(socket),
            peer_inode,
            path: Some(address),
            processes: holders.clone(),
            commands: holders
                .iter()
                .filter(|p| !python.contains(p))
                .map(|&p| (p, command(p)))
                .collect(),
            ..Default::default()
        }),
        contradictions: Vec::new(),
        python_type: None,
        readers: None,
    });
    lock.waiters.push(Waiter {
        thread: t.id.clone(),
        evidence: Evidence::SockDiag,
        site: site.clone(),
    });
    t.waits_for = Some(Wait {
        kind: WaitKind::Pipe,
        target: Some(id),
        evidence: Evidence::SockDiag,
        site,
        name: Some(name),
        via: t.syscall_name.clone(),
        timed: false,
        futex: None,
        targets: Vec::new(),
        timeout_s: None,
        waited_s: None,
    });
    t.blocked = blocked;
}
