//! What the kernel's socket diagnostics (`NETLINK_SOCK_DIAG`) say that `/proc` does not: the
//! peers of Unix sockets (`UNIX_DIAG_PEER`: `/proc` shows `socket:[INODE]` for both ends of a
//! socketpair but not which two belong together), and how long a TCP connection has been
//! silent (`INET_DIAG_INFO`'s `tcp_info`). Read-only: dump requests, no target is touched.

use std::collections::HashMap;
use std::io;
use std::time::Duration;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const UDIAG_SHOW_PEER: u32 = 0x4;
const UNIX_DIAG_PEER: u16 = 2;
const NLMSG_HDR: usize = 16;
const UNIX_DIAG_MSG: usize = 16;
/// `inet_diag_req_v2`: family, protocol, ext, pad, states, then a 48-byte `inet_diag_sockid`.
const INET_DIAG_REQ: usize = 56;
/// `inet_diag_msg`, before its attributes.
const INET_DIAG_MSG: usize = 72;
const INET_DIAG_INFO: u16 = 2;
const TCP_ESTABLISHED: u8 = 1;
/// `struct tcp_info`: eight one-byte fields, then `__u32`s from `tcpi_rto`; milliseconds.
const TCPI_LAST_DATA_SENT: usize = 44;
const TCPI_LAST_DATA_RECV: usize = 52;

/// Inode -> peer inode for every connected Unix socket in gridlock's network namespace.
pub fn unix_peers() -> io::Result<HashMap<u64, u64>> {
    with_diag_socket(dump)
}

/// Open a sock_diag socket, run `f` on it, close it.
fn with_diag_socket<T>(f: impl FnOnce(i32) -> io::Result<T>) -> io::Result<T> {
    // SAFETY: plain socket syscalls on a descriptor this function owns and closes.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let result = f(fd);
    unsafe { libc::close(fd) };
    result
}

/// How long each TCP connection in gridlock's network namespace has gone without data, by
/// inode: the smaller of `tcp_info`'s `tcpi_last_data_recv` and `tcpi_last_data_sent`.
pub fn tcp_silence(inodes: &[u64]) -> io::Result<HashMap<u64, Duration>> {
    let mut out = HashMap::new();
    if inodes.is_empty() {
        return Ok(out);
    }
    for family in [libc::AF_INET, libc::AF_INET6] {
        let found = with_diag_socket(|fd| inet_dump(fd, family as u8))?;
        out.extend(found.into_iter().filter(|(ino, _)| inodes.contains(ino)));
    }
    Ok(out)
}

/// `inet_diag_req_v2` for every TCP socket of `family`, asking for `INET_DIAG_INFO`.
fn inet_dump(fd: i32, family: u8) -> io::Result<HashMap<u64, Duration>> {
    let mut req = dump_request(INET_DIAG_REQ);
    req.push(family);
    req.push(libc::IPPROTO_TCP as u8);
    req.push(1 << (INET_DIAG_INFO - 1));
    req.push(0);
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    req.resize(NLMSG_HDR + INET_DIAG_REQ, 0); // inet_diag_sockid: any
    send_all(fd, &req)?;
    let mut silence = HashMap::new();
    receive(fd, |msg| {
        // inet_diag_msg: family, state, timer, retrans, sockid (48 bytes), expires, rqueue,
        // wqueue, uid, inode; then attributes.
        let Some(ino) = u32_at(msg, 68) else { return };
        // Only an established connection's times mean silence: a connecting socket has sent
        // no data yet, and the kernel then counts from boot.
        if msg.get(1) != Some(&TCP_ESTABLISHED) {
            return;
        }
        for (ty, value) in attributes(msg.get(INET_DIAG_MSG..).unwrap_or(&[])) {
            if ty == INET_DIAG_INFO {
                let (Some(sent), Some(recv)) = (
                    u32_at(value, TCPI_LAST_DATA_SENT),
                    u32_at(value, TCPI_LAST_DATA_RECV),
                ) else {
                    continue;
                };
                silence.insert(ino as u64, Duration::from_millis(sent.min(recv) as u64));
            }
        }
    })?;
    Ok(silence)
}

/// A `SOCK_DIAG_BY_FAMILY` dump request's `nlmsghdr`, for a request body of `body` bytes
/// the caller appends.
fn dump_request(body: usize) -> Vec<u8> {
    let mut req = Vec::with_capacity(NLMSG_HDR + body);
    req.extend_from_slice(&((NLMSG_HDR + body) as u32).to_ne_bytes());
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // seq
    req.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
    req
}

fn send_all(fd: i32, req: &[u8]) -> io::Result<()> {
    let sent = unsafe { libc::send(fd, req.as_ptr().cast(), req.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Read a dump's replies until `NLMSG_DONE`, handing each message's payload to `each`.
fn receive(fd: i32, mut each: impl FnMut(&[u8])) -> io::Result<()> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed sock_diag reply");
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut b = &buf[..n as usize];
        while b.len() >= NLMSG_HDR {
            let len = u32_at(b, 0).ok_or_else(bad)? as usize;
            let ty = u16_at(b, 4).ok_or_else(bad)?;
            if len < NLMSG_HDR || len > b.len() {
                return Err(bad());
            }
            match ty as i32 {
                libc::NLMSG_DONE => return Ok(()),
                libc::NLMSG_ERROR => {
                    let errno = u32_at(b, NLMSG_HDR).map(|e| -(e as i32)).unwrap_or(0);
                    return Err(io::Error::from_raw_os_error(errno));
                }
                _ => each(&b[NLMSG_HDR..len]),
            }
            b = &b[((len + 3) & !3).min(b.len())..];
        }
    }
}

/// A message's netlink attributes as (type, value), stopping at the first malformed one.
fn attributes(mut attrs: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while attrs.len() >= 4 {
        let (Some(alen), Some(aty)) = (u16_at(attrs, 0), u16_at(attrs, 2)) else {
            break;
        };
        let alen = alen as usize;
        if alen < 4 || alen > attrs.len() {
            break;
        }
        out.push((aty, &attrs[4..alen]));
        attrs = &attrs[((alen + 3) & !3).min(attrs.len())..];
    }
    out
}

fn dump(fd: i32) -> io::Result<HashMap<u64, u64>> {
    // unix_diag_req {family, protocol, pad, states, ino, show, cookie[2]}.
    let mut req = dump_request(24);
    req.push(libc::AF_UNIX as u8);
    req.push(0);
    req.extend_from_slice(&0u16.to_ne_bytes());
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(&UDIAG_SHOW_PEER.to_ne_bytes());
    req.extend_from_slice(&[0xff; 8]); // no cookie
    send_all(fd, &req)?;
    let mut peers = HashMap::new();
    receive(fd, |msg| {
        // unix_diag_msg {family, type, state, pad, ino, cookie[2]}, then attributes.
        let Some(ino) = u32_at(msg, 4) else { return };
        for (ty, value) in attributes(msg.get(UNIX_DIAG_MSG..).unwrap_or(&[])) {
            if let (UNIX_DIAG_PEER, Some(peer)) = (ty, u32_at(value, 0)) {
                peers.insert(ino as u64, peer as u64);
            }
        }
    })?;
    Ok(peers)
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_peer_of_a_socketpair() {
        let mut sv = [0i32; 2];
        assert_eq!(
            unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) },
            0
        );
        let ino = |fd: i32| -> u64 {
            let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
            let s = link.to_str().unwrap();
            s["socket:[".len()..s.len() - 1].parse().unwrap()
        };
        let (a, b) = (ino(sv[0]), ino(sv[1]));
        let peers = unix_peers().unwrap();
        unsafe {
            libc::close(sv[0]);
            libc::close(sv[1]);
        }
        assert_eq!(peers.get(&a), Some(&b));
        assert_eq!(peers.get(&b), Some(&a));
    }

    #[test]
    fn tells_how_long_a_tcp_connection_has_been_silent() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        c.write_all(b"ping").unwrap();
        std::thread::sleep(Duration::from_millis(400));
        let ino = |fd: i32| -> u64 {
            let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
            let s = link.to_str().unwrap();
            s["socket:[".len()..s.len() - 1].parse().unwrap()
        };
        let (ci, si) = (ino(c.as_raw_fd()), ino(s.as_raw_fd()));
        let silence = tcp_silence(&[ci, si]).unwrap();
        for i in [ci, si] {
            let quiet = silence.get(&i).copied().unwrap();
            // At least the sleep, and not some unrelated field read at a wrong offset.
            assert!(
                quiet >= Duration::from_millis(350) && quiet < Duration::from_secs(60),
                "{quiet:?}"
            );
        }
        assert!(tcp_silence(&[]).unwrap().is_empty());
    }
}
