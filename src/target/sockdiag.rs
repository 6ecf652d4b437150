//! Peers of Unix sockets from the kernel's socket diagnostics (`NETLINK_SOCK_DIAG`,
//! `UNIX_DIAG_PEER`): `/proc` shows `socket:[INODE]` for both ends of a socketpair but not
//! which two belong together. Read-only: one dump request, no target is touched.

use std::collections::HashMap;
use std::io;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const UDIAG_SHOW_PEER: u32 = 0x4;
const UNIX_DIAG_PEER: u16 = 2;
const NLMSG_HDR: usize = 16;
const UNIX_DIAG_MSG: usize = 16;

/// Inode -> peer inode for every connected Unix socket in gridlock's network namespace.
pub fn unix_peers() -> io::Result<HashMap<u64, u64>> {
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
    let result = dump(fd);
    unsafe { libc::close(fd) };
    result
}

fn dump(fd: i32) -> io::Result<HashMap<u64, u64>> {
    // nlmsghdr + unix_diag_req {family, protocol, pad, states, ino, show, cookie[2]}.
    let mut req = Vec::with_capacity(NLMSG_HDR + 24);
    req.extend_from_slice(&((NLMSG_HDR + 24) as u32).to_ne_bytes());
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // seq
    req.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
    req.push(libc::AF_UNIX as u8);
    req.push(0);
    req.extend_from_slice(&0u16.to_ne_bytes());
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(&UDIAG_SHOW_PEER.to_ne_bytes());
    req.extend_from_slice(&[0xff; 8]); // no cookie
    let sent = unsafe { libc::send(fd, req.as_ptr().cast(), req.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut peers = HashMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if parse_messages(&buf[..n as usize], &mut peers)? {
            return Ok(peers);
        }
    }
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Parse one datagram of netlink messages; `true` once the dump is done.
fn parse_messages(mut b: &[u8], peers: &mut HashMap<u64, u64>) -> io::Result<bool> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed sock_diag reply");
    while b.len() >= NLMSG_HDR {
        let len = u32_at(b, 0).ok_or_else(bad)? as usize;
        let ty = u16_at(b, 4).ok_or_else(bad)?;
        if len < NLMSG_HDR || len > b.len() {
            return Err(bad());
        }
        match ty as i32 {
            libc::NLMSG_DONE => return Ok(true),
            libc::NLMSG_ERROR => {
                let errno = u32_at(b, NLMSG_HDR).map(|e| -(e as i32)).unwrap_or(0);
                return Err(io::Error::from_raw_os_error(errno));
            }
            _ => {
                // unix_diag_msg {family, type, state, pad, ino, cookie[2]}, then attributes.
                let msg = &b[NLMSG_HDR..len];
                let ino = u32_at(msg, 4).ok_or_else(bad)? as u64;
                let mut attrs = msg.get(UNIX_DIAG_MSG..).unwrap_or(&[]);
                while attrs.len() >= 4 {
                    let alen = u16_at(attrs, 0).ok_or_else(bad)? as usize;
                    let aty = u16_at(attrs, 2).ok_or_else(bad)?;
                    if alen < 4 || alen > attrs.len() {
                        break;
                    }
                    if aty == UNIX_DIAG_PEER {
                        if let Some(peer) = u32_at(attrs, 4) {
                            peers.insert(ino, peer as u64);
                        }
                    }
                    attrs = &attrs[((alen + 3) & !3).min(attrs.len())..];
                }
            }
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    Ok(false)
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
}
