//! Where a socket leads: the peer of a TCP connection whose both ends live in one network
//! namespace (`/proc/net/tcp` and `tcp6` list each socket's local and remote address and
//! inode; the peer is the socket whose addresses are the same pair swapped), a connected Unix
//! socket's peer (sock_diag), the listener a `connect` reaches (same Unix name, or a TCP
//! listener on that address or a wildcard), the address an `accept` listens on, and the other
//! host of a connection that has no peer here. Reads `/proc`, sock_diag and (for `connect`'s
//! address) 128 bytes of the target's memory, all bounded; it decides no thread state.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::memory::ReadMemory;
use crate::target::procfs::{self, Channel, Syscall};

/// At most this many lines of each table are read.
const MAX_LINES: usize = 200_000;

/// Inode -> peer inode for every TCP connection with both ends in `text` (one table's text).
pub fn parse_peers(text: &str) -> HashMap<u64, u64> {
    let mut by_addrs: HashMap<(&str, &str), u64> = HashMap::new();
    for line in text.lines().skip(1).take(MAX_LINES) {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        let (Some(local), Some(remote), Some(inode)) = (f.get(1), f.get(2), f.get(9)) else {
            continue;
        };
        let Ok(inode) = inode.parse::<u64>() else {
            continue;
        };
        // A listening socket's remote is all zeros: no peer.
        if inode == 0 || remote.trim_start_matches(['0', ':']).is_empty() {
            continue;
        }
        by_addrs.insert((local, remote), inode);
    }
    by_addrs
        .iter()
        .filter_map(|(&(l, r), &i)| Some((i, *by_addrs.get(&(r, l))?)))
        .collect()
}

/// Peers of every local TCP connection, IPv4 and IPv6.
pub fn tcp_peers() -> HashMap<u64, u64> {
    let mut out = HashMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            out.extend(parse_peers(&text));
        }
    }
    out
}

/// Which table a socket came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketFamily {
    Tcp,
    Unix,
}

/// A TCP socket's address, or a Unix socket's name (`/run/app.sock`, `@abstract`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SocketAddress {
    Inet(SocketAddr),
    Unix(String),
}

impl std::fmt::Display for SocketAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketAddress::Inet(a) => write!(f, "{a}"),
            SocketAddress::Unix(n) => f.write_str(n),
        }
    }
}

impl SocketAddress {
    /// Whether this address may be another host's: not loopback, not a Unix name. (One of this
    /// host's own addresses is told apart by a local listener or peer, see `SocketTable`.)
    pub fn is_remote(&self) -> bool {
        match self {
            SocketAddress::Inet(a) => !a.ip().is_loopback(),
            SocketAddress::Unix(_) => false,
        }
    }
}

/// One socket of a network namespace, as `/proc/net/{tcp,tcp6,unix}` list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketEnd {
    pub inode: u64,
    pub family: SocketFamily,
    pub listening: bool,
    /// TCP's `SYN_SENT`, or a Unix socket in `SS_CONNECTING`.
    pub connecting: bool,
    pub local: Option<SocketAddress>,
    pub remote: Option<SocketAddress>,
}

const TCP_SYN_SENT: u8 = 0x02;
const TCP_LISTEN: u8 = 0x0A;
/// `/proc/net/unix` `Flags`: `__SO_ACCEPTCON`, a listening socket.
const UNIX_ACCEPTCON: u32 = 0x10000;
/// `/proc/net/unix` `St`: `SS_CONNECTING`.
const UNIX_CONNECTING: u8 = 2;

/// `0100007F:A0F5` (IPv4) or 32 hex digits and a port (IPv6), each 32-bit word in this
/// machine's byte order, as `/proc/net/tcp*` print them.
pub fn parse_hex_address(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_ne_bytes(),
        )
    };
    let ip: IpAddr = match ip.len() {
        8 => Ipv4Addr::from(word(0)?).into(),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let v6 = Ipv6Addr::from(b);
            match v6.to_ipv4_mapped() {
                Some(v4) => v4.into(),
                None => v6.into(),
            }
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The sockets of one `/proc/net/tcp` or `tcp6` table.
pub fn parse_tcp_table(text: &str) -> Vec<SocketEnd> {
    let mut out = Vec::new();
    for line in text.lines().skip(1).take(MAX_LINES) {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        let (Some(local), Some(remote), Some(state), Some(inode)) =
            (f.get(1), f.get(2), f.get(3), f.get(9))
        else {
            continue;
        };
        let (Ok(inode), Ok(state)) = (inode.parse::<u64>(), u8::from_str_radix(state, 16)) else {
            continue;
        };
        if inode == 0 {
            continue;
        }
        let remote = parse_hex_address(remote).filter(|a| a.port() != 0);
        out.push(SocketEnd {
            inode,
            family: SocketFamily::Tcp,
            listening: state == TCP_LISTEN,
            connecting: state == TCP_SYN_SENT,
            local: parse_hex_address(local).map(SocketAddress::Inet),
            remote: remote.map(SocketAddress::Inet),
        });
    }
    out
}

/// The sockets of `/proc/net/unix`: `Num RefCount Protocol Flags Type St Inode [Path]`; an
/// abstract name is printed with a leading `@`, and a path may hold spaces.
pub fn parse_unix_table(text: &str) -> Vec<SocketEnd> {
    let mut out = Vec::new();
    for line in text.lines().skip(1).take(MAX_LINES) {
        let mut rest = line.trim_start();
        let mut f = Vec::with_capacity(7);
        while f.len() < 7 && !rest.is_empty() {
            let end = rest.find(' ').unwrap_or(rest.len());
            f.push(&rest[..end]);
            rest = rest[end..].trim_start();
        }
        let (Some(flags), Some(state), Some(inode)) = (f.get(3), f.get(5), f.get(6)) else {
            continue;
        };
        let (Ok(flags), Ok(state), Ok(inode)) = (
            u32::from_str_radix(flags, 16),
            u8::from_str_radix(state, 16),
            inode.parse::<u64>(),
        ) else {
            continue;
        };
        out.push(SocketEnd {
            inode,
            family: SocketFamily::Unix,
            listening: flags & UNIX_ACCEPTCON != 0,
            connecting: state == UNIX_CONNECTING,
            local: (!rest.is_empty()).then(|| SocketAddress::Unix(rest.trim_end().to_string())),
            remote: None,
        });
    }
    out
}

/// The sockets of the network namespace `pid` lives in, and the peers of its connections.
#[derive(Debug, Default)]
pub struct SocketTable {
    ends: HashMap<u64, SocketEnd>,
    peers: HashMap<u64, u64>,
}

impl SocketTable {
    /// `pid`'s network namespace, through `/proc/PID/net/*` (the namespace a container's
    /// target sees), plus connected Unix sockets' peers from sock_diag when `pid` shares
    /// gridlock's namespace.
    pub fn read(pid: i32) -> SocketTable {
        let mut t = SocketTable::default();
        for table in ["tcp", "tcp6"] {
            if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) {
                t.peers.extend(parse_peers(&text));
                t.add(parse_tcp_table(&text));
            }
        }
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/unix")) {
            t.add(parse_unix_table(&text));
        }
        let ours = |p: &str| std::fs::read_link(p).ok();
        if ours("/proc/self/ns/net") == ours(&format!("/proc/{pid}/ns/net")) {
            t.peers
                .extend(crate::target::sockdiag::unix_peers().unwrap_or_default());
        }
        t
    }

    pub fn from_parts(ends: Vec<SocketEnd>, peers: HashMap<u64, u64>) -> SocketTable {
        let mut t = SocketTable {
            ends: HashMap::new(),
            peers,
        };
        t.add(ends);
        t
    }

    fn add(&mut self, ends: Vec<SocketEnd>) {
        for e in ends {
            self.ends.insert(e.inode, e);
        }
    }

    pub fn end(&self, inode: u64) -> Option<&SocketEnd> {
        self.ends.get(&inode)
    }

    pub fn peer(&self, inode: u64) -> Option<u64> {
        self.peers.get(&inode).copied()
    }

    /// The listening socket a connection to `to` reaches: same Unix name, or a TCP listener
    /// on that address or on a wildcard address with that port.
    pub fn listener(&self, to: &SocketAddress) -> Option<u64> {
        let fits = |e: &SocketEnd| match (&e.local, to) {
            (Some(SocketAddress::Unix(a)), SocketAddress::Unix(b)) => a == b,
            (Some(SocketAddress::Inet(a)), SocketAddress::Inet(b)) => {
                a.port() == b.port()
                    && (a.ip() == b.ip() || a.ip().is_unspecified() && (a.is_ipv6() || b.is_ipv4()))
            }
            _ => false,
        };
        let mut found: Vec<&SocketEnd> = self
            .ends
            .values()
            .filter(|e| e.listening && fits(e))
            .collect();
        // An exact address before a wildcard.
        found.sort_by_key(|e| (e.local.as_ref() != Some(to), e.inode));
        found.first().map(|e| e.inode)
    }

    /// A connection as a person names it: `tcp 127.0.0.1:40122 -> 127.0.0.1:5000`, or a Unix
    /// socket by its name (its own, or its peer's: a connecting end has none of its own).
    pub fn describe(&self, inode: u64) -> Option<String> {
        let end = self.end(inode)?;
        match end.family {
            SocketFamily::Tcp => Some(format!(
                "tcp {} -> {}",
                end.local.as_ref()?,
                end.remote.as_ref()?
            )),
            SocketFamily::Unix => {
                let name = end.local.as_ref().or_else(|| {
                    self.peer(inode)
                        .and_then(|p| self.end(p))
                        .and_then(|p| p.local.as_ref())
                })?;
                Some(format!("unix socket {name}"))
            }
        }
    }

    /// The other host a connected socket talks to: its remote address, when no socket of this
    /// table is its peer and no listener here has that address.
    pub fn remote_host(&self, inode: u64) -> Option<&SocketAddress> {
        if self.peer(inode).is_some() {
            return None;
        }
        self.end(inode)
            .and_then(|e| e.remote.as_ref())
            .filter(|r| r.is_remote() && self.listener(r).is_none())
    }
}

/// The address a `connect(2)` asks for, from its `struct sockaddr` (`len` bytes): IPv4,
/// IPv6, or a Unix name (`@` for an abstract one).
pub fn parse_sockaddr(b: &[u8]) -> Option<SocketAddress> {
    let family = u16::from_ne_bytes(b.get(0..2)?.try_into().ok()?) as i32;
    let port = || Some(u16::from_be_bytes(b.get(2..4)?.try_into().ok()?));
    match family {
        libc::AF_INET => {
            let ip: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(SocketAddress::Inet(SocketAddr::new(
                Ipv4Addr::from(ip).into(),
                port()?,
            )))
        }
        libc::AF_INET6 => {
            let ip: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let v6 = Ipv6Addr::from(ip);
            let ip: IpAddr = v6.to_ipv4_mapped().map_or(v6.into(), Into::into);
            Some(SocketAddress::Inet(SocketAddr::new(ip, port()?)))
        }
        libc::AF_UNIX => {
            let path = b.get(2..)?;
            if path.is_empty() {
                return None;
            }
            let name = if path[0] == 0 {
                format!("@{}", String::from_utf8_lossy(&path[1..]))
            } else {
                let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
                String::from_utf8_lossy(&path[..end]).into_owned()
            };
            Some(SocketAddress::Unix(name))
        }
        _ => None,
    }
}

/// The address a thread blocked in `connect(fd, addr, len)` connects to, read from its memory
/// (at most 128 bytes, `sizeof(struct sockaddr_storage)`).
pub fn connect_address(mem: &impl ReadMemory, s: &Syscall) -> Option<SocketAddress> {
    if s.nr != super::syscalls::SYS_CONNECT {
        return None;
    }
    let len = (s.args[2] as usize).min(128);
    let b = mem.bytes(s.args[1] as usize, len).ok()?;
    parse_sockaddr(&b)
}

/// The processes holding a descriptor on socket `inode`: those of `tree` (in order), else any
/// process (bounded), for a listener outside the watched processes.
pub fn holders(inode: u64, tree: &[i32]) -> Vec<i32> {
    let holds = |p: &i32| {
        procfs::channel_fds(*p)
            .iter()
            .any(|c| c.channel == Channel::Socket(inode))
    };
    let found: Vec<i32> = tree.iter().copied().filter(holds).collect();
    if !found.is_empty() {
        return found;
    }
    super::file_locks::all_pids()
        .into_iter()
        .filter(holds)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_the_two_ends_of_a_loopback_connection() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A0F5 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A0F5 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 5003 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:C350 0100007F:A0F5 01 00000000:00000000 00:00000000 00000000     0        0 5002 1 0000000000000000 20 4 30 10 -1
   3: 0A00020F:D2C4 5DB8D822:01BB 01 00000000:00000000 00:00000000 00000000     0        0 5004 1 0000000000000000 20 4 30 10 -1
";
        let p = parse_peers(text);
        assert_eq!(p.get(&5002), Some(&5003));
        assert_eq!(p.get(&5003), Some(&5002));
        assert_eq!(p.get(&5001), None, "a listening socket has no peer");
        assert_eq!(p.get(&5004), None, "a remote host's end is not here");
        assert!(parse_peers("header only\n").is_empty());
    }

    #[test]
    fn finds_a_live_loopback_connection() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        use std::os::fd::AsRawFd;
        let ino = |fd: i32| -> u64 {
            let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
            let s = link.to_str().unwrap();
            s["socket:[".len()..s.len() - 1].parse().unwrap()
        };
        let peers = tcp_peers();
        assert_eq!(peers.get(&ino(c.as_raw_fd())), Some(&ino(s.as_raw_fd())));
    }

    #[test]
    fn reads_addresses_states_and_unix_names() {
        assert_eq!(
            parse_hex_address("0100007F:A0F5"),
            Some("127.0.0.1:41205".parse().unwrap())
        );
        assert_eq!(
            parse_hex_address("00000000000000000000000001000000:0050"),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(
            parse_hex_address("0000000000000000FFFF00000100007F:0050"),
            Some("127.0.0.1:80".parse().unwrap()),
            "an IPv4-mapped address is shown as IPv4"
        );
        assert_eq!(parse_hex_address("zz:1"), None);
        let tcp = parse_tcp_table("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A0F5 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1 0000000000000000 100 0 0 10 0
   1: 0200000A:D2C4 0764330C:0050 02 00000000:00000000 00:00000000 00000000     0        0 5005 1 0000000000000000 20 4 30 10 -1
   3: 0200000A:D2C4 5DB8D822:01BB 01 00000000:00000000 00:00000000 00000000     0        0 5004 1 0000000000000000 20 4 30 10 -1
");
        assert!(tcp[0].listening && tcp[0].remote.is_none());
        assert_eq!(
            tcp[2].remote.as_ref().unwrap().to_string(),
            "34.216.184.93:443"
        );
        let unix = parse_unix_table(
            "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 7001 /tmp/app dir/app.sock
0000000000000000: 00000002 00000000 00010000 0001 01 7002 @gridlock-abstract
0000000000000000: 00000003 00000000 00000000 0001 03 7003
0000000000000000: 00000003 00000000 00000000 0001 02 7004
",
        );
        assert_eq!(unix.len(), 4);
        assert!(unix[0].listening && unix[1].listening && !unix[2].listening);
        assert_eq!(
            unix[0].local,
            Some(SocketAddress::Unix("/tmp/app dir/app.sock".into())),
            "a path with a space stays whole"
        );
        assert_eq!(unix[2].local, None);
        assert!(unix[3].connecting);
        let mut ends = tcp;
        ends.extend(unix);
        ends.push(SocketEnd {
            inode: 5006,
            family: SocketFamily::Tcp,
            listening: true,
            connecting: false,
            local: Some(SocketAddress::Inet("0.0.0.0:8080".parse().unwrap())),
            remote: None,
        });
        // 7003 is a connected client end without a name of its own; its peer is 7001's.
        let t = SocketTable::from_parts(ends, HashMap::from([(7003, 7001), (7001, 7003)]));
        assert_eq!(
            t.describe(5004).as_deref(),
            Some("tcp 10.0.0.2:53956 -> 34.216.184.93:443")
        );
        assert_eq!(
            t.describe(7003).as_deref(),
            Some("unix socket /tmp/app dir/app.sock"),
            "a nameless end is named by its peer"
        );
        assert_eq!(t.describe(7004), None, "no name on either end");
        assert_eq!(t.describe(9999), None);
        let inet = |s: &str| SocketAddress::Inet(s.parse().unwrap());
        assert_eq!(t.listener(&inet("127.0.0.1:41205")), Some(5001));
        assert_eq!(
            t.listener(&inet("127.0.0.1:8080")),
            Some(5006),
            "a wildcard"
        );
        assert_eq!(t.listener(&inet("127.0.0.1:9")), None);
        assert_eq!(
            t.listener(&SocketAddress::Unix("@gridlock-abstract".into())),
            Some(7002)
        );
        assert_eq!(
            t.remote_host(5004).map(|a| a.to_string()).as_deref(),
            Some("34.216.184.93:443")
        );
        assert_eq!(t.remote_host(5001), None, "a listener talks to nobody");
    }

    #[test]
    fn reads_the_address_a_connect_asks_for() {
        let mut v4 = vec![0u8; 16];
        v4[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&8080u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(parse_sockaddr(&v4).unwrap().to_string(), "127.0.0.1:8080");
        let mut un = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        un.extend_from_slice(b"/run/app.sock\0junk");
        assert_eq!(parse_sockaddr(&un).unwrap().to_string(), "/run/app.sock");
        let mut abs = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        abs.extend_from_slice(b"\0hidden");
        assert_eq!(parse_sockaddr(&abs).unwrap().to_string(), "@hidden");
        assert_eq!(parse_sockaddr(&[1]), None, "too short");
        assert_eq!(parse_sockaddr(&(libc::AF_INET as u16).to_ne_bytes()), None);
    }

    #[test]
    fn finds_a_live_listener_and_who_holds_it() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = SocketAddress::Inet(l.local_addr().unwrap());
        let t = SocketTable::read(std::process::id() as i32);
        let ino = t
            .listener(&addr)
            .expect("the listener is in /proc/PID/net/tcp");
        let me = std::process::id() as i32;
        assert_eq!(holders(ino, &[me]), vec![me]);
    }
}
