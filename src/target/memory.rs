//! Read-only access to another process's memory through `/proc/PID/mem`.
//! Never writes, never stops the target: a positioned read per request.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::unix::fs::FileExt;

use crate::error::{Error, Result};

const PAGE: usize = 4096;

/// A map keyed by addresses in the target. Its hasher is a multiply of the one word hashed:
/// addresses are not chosen by an adversary, and SipHash was a measurable share of a snapshot.
pub type AddrMap<V> = HashMap<usize, V, BuildHasherDefault<AddrHasher>>;

#[derive(Default)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        // The product's low bits depend only on the input's low bits (zero for page
        // addresses), and hashbrown picks buckets by the low bits: bring the mixed high bits down.
        self.0.rotate_left(26)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ *b as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_usize(&mut self, n: usize) {
        // Fibonacci hashing: the product's high bits depend on every input bit.
        self.0 = (n as u64 ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

pub struct Memory {
    pid: i32,
    file: File,
    /// Pages read during one snapshot (see `begin_snapshot`): one read syscall per page
    /// instead of one per field, and a view of each page that stays the same for the snapshot.
    pages: RefCell<Option<AddrMap<Option<Box<[u8]>>>>>,
    /// Page buffers of earlier snapshots, reused (no allocation or zeroing per page).
    spare: RefCell<Vec<Box<[u8]>>>,
}

impl Memory {
    pub fn open(pid: i32) -> Result<Memory> {
        match File::open(format!("/proc/{pid}/mem")) {
            Ok(file) => Ok(Memory {
                pid,
                file,
                pages: RefCell::new(None),
                spare: RefCell::new(Vec::new()),
            }),
            Err(e) => Err(match e.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ESRCH) => Error::NoSuchProcess { pid },
                Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied {
                    pid,
                    hint: crate::error::permission_hint(),
                },
                _ => Error::Io(e),
            }),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Cache pages until `end_snapshot`.
    pub fn begin_snapshot(&self) {
        *self.pages.borrow_mut() = Some(AddrMap::default());
    }

    pub fn end_snapshot(&self) {
        if let Some(pages) = self.pages.borrow_mut().take() {
            self.spare
                .borrow_mut()
                .extend(pages.into_values().flatten());
        }
    }

    pub fn read_into(&self, addr: usize, buf: &mut [u8]) -> Result<()> {
        if addr == 0 {
            return Err(self.error(addr, buf.len(), std::io::Error::other("null pointer")));
        }
        if buf.len() <= PAGE && self.pages.borrow().is_some() && self.read_cached(addr, buf) {
            return Ok(());
        }
        self.read_direct(addr, buf)
    }

    /// Serve a small read from cached pages; false when a page cannot be read whole (the
    /// direct read then reports the precise error).
    fn read_cached(&self, addr: usize, buf: &mut [u8]) -> bool {
        let mut pages = self.pages.borrow_mut();
        let Some(pages) = pages.as_mut() else {
            return false;
        };
        let mut done = 0;
        while done < buf.len() {
            let at = addr.wrapping_add(done);
            let base = at & !(PAGE - 1);
            let page = pages.entry(base).or_insert_with(|| {
                let mut p = self
                    .spare
                    .borrow_mut()
                    .pop()
                    .unwrap_or_else(|| vec![0u8; PAGE].into_boxed_slice());
                match self.file.read_at(&mut p, base as u64) {
                    Ok(PAGE) => Some(p),
                    _ => {
                        self.spare.borrow_mut().push(p);
                        None
                    }
                }
            });
            let Some(page) = page else { return false };
            let from = at - base;
            let n = (PAGE - from).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&page[from..from + n]);
            done += n;
        }
        true
    }

    fn read_direct(&self, addr: usize, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], (addr + done) as u64) {
                // An unmapped address fails with EIO; reading nothing at all means the
                // process has no address space any more: it is exiting.
                Ok(0) => return Err(Error::TargetExited { pid: self.pid }),
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if !std::path::Path::new(&format!("/proc/{}", self.pid)).exists() {
                        return Err(Error::TargetExited { pid: self.pid });
                    }
                    return Err(self.error(addr, buf.len(), e));
                }
            }
        }
        Ok(())
    }

    fn error(&self, addr: usize, len: usize, source: std::io::Error) -> Error {
        Error::Memory {
            pid: self.pid,
            addr,
            len,
            source,
        }
    }

    pub fn bytes(&self, addr: usize, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.read_into(addr, &mut buf)?;
        Ok(buf)
    }

    pub fn u64(&self, addr: usize) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read_into(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn ptr(&self, addr: usize) -> Result<usize> {
        Ok(self.u64(addr)? as usize)
    }

    pub fn i64(&self, addr: usize) -> Result<i64> {
        Ok(self.u64(addr)? as i64)
    }

    pub fn i32(&self, addr: usize) -> Result<i32> {
        let mut b = [0u8; 4];
        self.read_into(addr, &mut b)?;
        Ok(i32::from_le_bytes(b))
    }

    pub fn u16(&self, addr: usize) -> Result<u16> {
        let mut b = [0u8; 2];
        self.read_into(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    pub fn u8(&self, addr: usize) -> Result<u8> {
        let mut b = [0u8; 1];
        self.read_into(addr, &mut b)?;
        Ok(b[0])
    }
}
