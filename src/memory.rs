//! Reading another process's memory: the one trait every reader of target memory takes
//! (`ReadMemory`), the live reader (`/proc/PID/mem`, and `process_vm_readv` to fetch many
//! pages at once) and an in-memory fake for unit tests.
//! A leaf: it imports nothing of the crate but the error type (and counts its reads for the
//! cost split diagnostic). Never writes, never stops
//! the target: a positioned read per request.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::error::{Error, Result};

/// Reads of the target's memory; little-endian integers (x86-64). Only `read_into` is
/// required: the typed reads fill a stack buffer through it (no allocation per read).
pub trait ReadMemory {
    /// Fill `buf` from `addr`, all or nothing.
    fn read_into(&self, addr: usize, buf: &mut [u8]) -> Result<()>;

    /// Forget what this snapshot has seen of the bytes at `places` (address, length), so
    /// that their next reads see the target as it is now: for a read that met a running
    /// thread halfway through a change. False where memory cannot change (a core, a fake, a
    /// copy): reading again would see the same bytes.
    fn reread(&self, _places: &[(usize, usize)]) -> bool {
        false
    }

    fn bytes(&self, addr: usize, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.read_into(addr, &mut buf)?;
        Ok(buf)
    }

    fn u64(&self, addr: usize) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read_into(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn ptr(&self, addr: usize) -> Result<usize> {
        Ok(self.u64(addr)? as usize)
    }

    fn i64(&self, addr: usize) -> Result<i64> {
        Ok(self.u64(addr)? as i64)
    }

    fn i32(&self, addr: usize) -> Result<i32> {
        let mut b = [0u8; 4];
        self.read_into(addr, &mut b)?;
        Ok(i32::from_le_bytes(b))
    }

    fn u32_at(&self, addr: usize) -> Result<u32> {
        Ok(self.i32(addr)? as u32)
    }

    fn u16(&self, addr: usize) -> Result<u16> {
        let mut b = [0u8; 2];
        self.read_into(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    fn u8(&self, addr: usize) -> Result<u8> {
        let mut b = [0u8; 1];
        self.read_into(addr, &mut b)?;
        Ok(b[0])
    }
}

mod addr_map;
mod pages;

pub use addr_map::{AddrHasher, AddrMap};
use pages::PAGE;

pub struct ProcMemory {
    pid: i32,
    file: File,
    /// What the current snapshot read (see `begin_snapshot`).
    cache: RefCell<pages::PageCache>,
}

impl ProcMemory {
    pub fn open(pid: i32) -> Result<ProcMemory> {
        match File::open(format!("/proc/{pid}/mem")) {
            Ok(file) => Ok(ProcMemory {
                pid,
                file,
                cache: RefCell::default(),
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

    /// Cache what the snapshot reads until `end_snapshot`: one read syscall per page instead
    /// of one per field, a view of each byte that stays the same for the snapshot, and the
    /// places the last snapshot read fetched together first (`pages`).
    pub fn begin_snapshot(&self) {
        self.cache.borrow_mut().begin(self.pid);
    }

    pub fn end_snapshot(&self) {
        self.cache.borrow_mut().end();
    }

    /// Free the page buffers kept for reuse: for a caller that samples many processes
    /// rarely (`watch`), where holding each one's pages between snapshots costs more than
    /// allocating them again.
    pub fn release_spare(&self) {
        self.cache.borrow_mut().release_spare();
    }

    fn read_direct(&self, addr: usize, buf: &mut [u8]) -> Result<()> {
        crate::cost_split::memory_read();
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
}

impl ReadMemory for ProcMemory {
    fn read_into(&self, addr: usize, buf: &mut [u8]) -> Result<()> {
        if addr == 0 {
            return Err(self.error(addr, buf.len(), std::io::Error::other("null pointer")));
        }
        if buf.len() <= PAGE && self.cache.borrow_mut().read(&self.file, addr, buf) {
            return Ok(());
        }
        self.read_direct(addr, buf)
    }

    fn reread(&self, places: &[(usize, usize)]) -> bool {
        let mut cache = self.cache.borrow_mut();
        for &(addr, len) in places {
            cache.forget(addr, len);
        }
        true
    }
}

/// Memory filled by hand: regions of bytes at addresses. Reads outside every region fail
/// as an unmapped address of a live process does.
#[derive(Default, Debug, Clone)]
pub struct FakeMemory {
    regions: BTreeMap<usize, Vec<u8>>,
}

impl FakeMemory {
    pub fn new() -> FakeMemory {
        FakeMemory::default()
    }

    /// Map `bytes` at `addr` (replacing any region starting there).
    pub fn put(&mut self, addr: usize, bytes: &[u8]) -> &mut FakeMemory {
        self.regions.insert(addr, bytes.to_vec());
        self
    }

    /// Write little-endian u64s at `addr`, inside an existing region or as a new one.
    pub fn put_u64s(&mut self, addr: usize, words: &[u64]) -> &mut FakeMemory {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.write(addr, &bytes)
    }

    /// Overwrite bytes inside an existing region, or map them as a new region.
    pub fn write(&mut self, addr: usize, bytes: &[u8]) -> &mut FakeMemory {
        if let Some((start, region)) = self.regions.range_mut(..=addr).next_back() {
            let from = addr - start;
            if from + bytes.len() <= region.len() {
                region[from..from + bytes.len()].copy_from_slice(bytes);
                return self;
            }
        }
        self.put(addr, bytes)
    }
}

impl ReadMemory for FakeMemory {
    fn read_into(&self, addr: usize, buf: &mut [u8]) -> Result<()> {
        let unmapped = || Error::Memory {
            pid: 0,
            addr,
            len: buf.len(),
            source: std::io::Error::other("unmapped in the fake memory"),
        };
        let (start, region) = self
            .regions
            .range(..=addr)
            .next_back()
            .ok_or_else(unmapped)?;
        let from = addr - start;
        let bytes = region.get(from..from + buf.len()).ok_or_else(unmapped)?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_memory_reads_what_was_put_and_fails_elsewhere() {
        let mut m = FakeMemory::new();
        m.put_u64s(0x1000, &[7, 0x2000]).put(0x2000, b"abc\0");
        assert_eq!(m.u64(0x1000).unwrap(), 7);
        assert_eq!(m.ptr(0x1008).unwrap(), 0x2000);
        assert_eq!(m.bytes(0x2000, 3).unwrap(), b"abc");
        assert_eq!(m.u8(0x2001).unwrap(), b'b');
        assert!(m.u64(0x100c).is_err(), "a read past a region's end fails");
        assert!(m.u8(0x3000).is_err());
        m.write(0x1008, &9u64.to_le_bytes());
        assert_eq!(m.u64(0x1008).unwrap(), 9);
        assert!(!m.reread(&[(0x1000, 8)]), "a fake cannot change on its own");
    }

    /// A snapshot sees each byte as first read, until a reader asks to read it again.
    #[test]
    fn a_snapshot_keeps_what_it_read_until_asked_to_read_it_again() {
        let word = Box::new(std::sync::atomic::AtomicU64::new(1));
        let addr = &*word as *const _ as usize;
        let mem = ProcMemory::open(std::process::id() as i32).expect("open our own memory");
        mem.begin_snapshot();
        assert_eq!(mem.u64(addr).unwrap(), 1);
        word.store(2, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(mem.u64(addr).unwrap(), 1, "the snapshot's view holds");
        assert!(mem.reread(&[(addr, 8)]));
        assert_eq!(
            mem.u64(addr).unwrap(),
            2,
            "read again: the memory as it is now"
        );
        mem.end_snapshot();
    }
}
