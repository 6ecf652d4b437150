//! How asyncio's ids and default names are spelled (`PID:task:0x...`, `PID:loop:0x...`,
//! `Task-N`), written without the formatting machinery where a snapshot makes tens of
//! thousands of them. Pure functions of their arguments: no memory is read here.

pub fn task_id(pid: i32, addr: usize) -> String {
    format!("{pid}:task:{addr:#x}")
}

/// `prefix` then `addr` as `{:#x}` would write it, without the formatting machinery (ten
/// thousand tasks make tens of thousands of ids per snapshot).
pub fn with_hex(prefix: &str, addr: usize) -> String {
    with_hex_parts(&[prefix], addr)
}

/// The parts, then `addr` in hex (`PID:`, `event`, `:`, `0x...`).
pub(super) fn with_hex_parts(parts: &[&str], addr: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 18];
    let mut i = digits.len();
    let mut v = addr;
    loop {
        i -= 1;
        digits[i] = HEX[v & 0xf];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    i -= 2;
    digits[i] = b'0';
    digits[i + 1] = b'x';
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut s = String::with_capacity(len + digits.len() - i);
    for p in parts {
        s.push_str(p);
    }
    // ASCII digits: pushed as they are, without checking them as UTF-8.
    s.extend(digits[i..].iter().map(|d| *d as char));
    s
}

/// `Task-N`, the default name of the N-th task.
pub(super) fn default_task_name(n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut s = String::with_capacity(5 + digits.len() - i);
    s.push_str("Task-");
    s.extend(digits[i..].iter().map(|d| *d as char));
    s
}

pub fn loop_id(pid: i32, addr: usize) -> String {
    format!("{pid}:loop:{addr:#x}")
}
