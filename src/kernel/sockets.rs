//! Peers of TCP connections whose both ends live in gridlock's network namespace (loopback,
//! or any local address): `/proc/net/tcp` and `/proc/net/tcp6` list each socket's local and
//! remote address and inode, and the peer of a connection is the socket whose addresses are
//! the same pair swapped. Reads `/proc` only (bounded); a connection to another host has no
//! peer here and stays an I/O wait.

use std::collections::HashMap;

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
}
