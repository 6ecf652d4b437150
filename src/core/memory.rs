//! The memory of a dumped process: the bytes its core holds (`PT_LOAD` contents), and the
//! file-backed pages the core leaves out (both `gcore` and the kernel skip unmodified file
//! pages) read from the files `NT_FILE` names, at their offsets. An address found in neither
//! is unreadable: an error, never zeros. So is a segment the core holds but whose writer
//! could not read (`forget`): its zeros are not what the process had. Reads are positioned
//! reads of pages kept for the whole dump (a core does not change); nothing is mapped, so a
//! file shrunk under gridlock fails a read instead of faulting.

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::error::{Error, Result};
use crate::memory::{AddrMap, ReadMemory};

const PAGE: u64 = 4096;
/// Pages kept per file before the cache starts over (64 MiB).
const MAX_CACHED_PAGES: usize = 16 * 1024;

/// A file read through a cache of its pages.
#[derive(Debug)]
pub(crate) struct PagedFile {
    file: File,
    len: u64,
    pages: RefCell<AddrMap<Box<[u8]>>>,
}

impl PagedFile {
    pub(crate) fn new(file: File) -> std::io::Result<PagedFile> {
        let len = file.metadata()?.len();
        Ok(PagedFile {
            file,
            len,
            pages: RefCell::new(AddrMap::default()),
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Fill `buf` from `offset`: false when any of it lies past the end of the file or the
    /// read fails.
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) -> bool {
        match offset.checked_add(buf.len() as u64) {
            Some(end) if end <= self.len => {}
            _ => return false,
        }
        if buf.len() > PAGE as usize {
            return self.file.read_exact_at(buf, offset).is_ok();
        }
        let mut pages = self.pages.borrow_mut();
        if pages.len() > MAX_CACHED_PAGES {
            pages.clear();
        }
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let base = at & !(PAGE - 1);
            if !pages.contains_key(&(base as usize)) {
                let n = PAGE.min(self.len - base) as usize;
                let mut page = vec![0u8; n].into_boxed_slice();
                if self.file.read_exact_at(&mut page, base).is_err() {
                    return false;
                }
                pages.insert(base as usize, page);
            }
            let page = &pages[&(base as usize)];
            let from = (at - base) as usize;
            let n = (page.len() - from).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&page[from..from + n]);
            done += n;
        }
        true
    }
}

/// A `PT_LOAD` segment: `[vaddr, vaddr + memsz)`, of which the first `filesz` bytes are in
/// the core at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub filesz: u64,
    pub offset: u64,
    pub flags: u32,
}

impl Segment {
    pub fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.memsz)
    }
}

/// A file mapping whose pages the core may leave out: `[start, end)` is the file `file`
/// (an index into the opened files; `None`: it could not be opened) from byte `offset`.
#[derive(Debug, Clone)]
pub(crate) struct Backing {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub file: Option<usize>,
}

#[derive(Debug)]
pub struct CoreMemory {
    pid: i32,
    core: PagedFile,
    /// Sorted by address, not overlapping.
    segments: Vec<Segment>,
    /// Sorted by address.
    backings: Vec<Backing>,
    files: Vec<PagedFile>,
    /// Start addresses of segments whose bytes the writer of the core did not read.
    forgotten: Vec<u64>,
}

impl CoreMemory {
    pub(crate) fn new(
        pid: i32,
        core: PagedFile,
        mut segments: Vec<Segment>,
        mut backings: Vec<Backing>,
        files: Vec<PagedFile>,
    ) -> CoreMemory {
        segments.sort_by_key(|s| s.vaddr);
        backings.sort_by_key(|b| b.start);
        CoreMemory {
            pid,
            core,
            segments,
            backings,
            files,
            forgotten: Vec::new(),
        }
    }

    /// Treat the segment holding `addr` as unreadable: the core holds zeros there that are
    /// not what the process had (the program that wrote it could not read those pages).
    pub(crate) fn forget(&mut self, addr: u64) {
        if let Some(s) = self.segment(addr) {
            let start = s.vaddr;
            if !self.forgotten.contains(&start) {
                self.forgotten.push(start);
            }
        }
    }

    /// Whether the core holds only zero bytes in `[addr, addr + len)` (cut at the end of the
    /// dumped bytes of its segment). `None`: it holds none of them.
    pub(crate) fn dumped_zeros(&self, addr: u64, len: u64) -> Option<bool> {
        let s = self.segment(addr)?;
        let dumped_end = s.vaddr.saturating_add(s.filesz);
        if addr >= dumped_end {
            return None;
        }
        let n = len.min(dumped_end - addr) as usize;
        let mut buf = vec![0u8; n];
        self.core
            .read(s.offset.saturating_add(addr - s.vaddr), &mut buf)
            .then(|| buf.iter().all(|&b| b == 0))
    }

    fn segment(&self, at: u64) -> Option<&Segment> {
        let i = self.segments.partition_point(|s| s.vaddr <= at);
        self.segments[..i].last().filter(|s| at < s.end())
    }

    fn backing(&self, at: u64) -> Option<&Backing> {
        let i = self.backings.partition_point(|b| b.start <= at);
        self.backings[..i].last().filter(|b| at < b.end)
    }

    /// Bytes at `addr` as the core itself holds them, never from a mapped file: what the
    /// process had in memory (used to check that a file is the one it mapped).
    pub fn read_dumped(&self, addr: u64, buf: &mut [u8]) -> bool {
        let Some(s) = self.segment(addr) else {
            return false;
        };
        if self.forgotten.contains(&s.vaddr) {
            return false;
        }
        let from = addr - s.vaddr;
        from.checked_add(buf.len() as u64)
            .is_some_and(|end| end <= s.filesz)
            && self.core.read(s.offset.saturating_add(from), buf)
    }

    /// The piece of a read at `at` that one source can serve: how many bytes it filled.
    fn read_piece(&self, at: u64, buf: &mut [u8]) -> std::result::Result<usize, &'static str> {
        let segment = self.segment(at);
        if let Some(s) = segment {
            if self.forgotten.contains(&s.vaddr) {
                return Err("the core holds zeros here that its writer could not read");
            }
            let from = at - s.vaddr;
            if from < s.filesz {
                let n = ((s.filesz - from) as usize).min(buf.len());
                return if self.core.read(s.offset.saturating_add(from), &mut buf[..n]) {
                    Ok(n)
                } else {
                    Err("the core file is truncated: it ends before this segment's bytes")
                };
            }
        }
        let Some(b) = self.backing(at) else {
            return Err(if segment.is_some() {
                "the core leaves these bytes out and no mapped file holds them"
            } else {
                "no mapping of the dumped process holds this address"
            });
        };
        let Some(file) = b.file.map(|i| &self.files[i]) else {
            return Err(
                "the core leaves these bytes out and the file mapped there cannot be opened",
            );
        };
        // Stop where the core's own bytes resume.
        let mut n = ((b.end - at) as usize).min(buf.len());
        let next = self.segments.partition_point(|s| s.vaddr <= at);
        if let Some(next) = self.segments.get(next) {
            n = n.min((next.vaddr - at) as usize).max(1);
        }
        let offset = b.offset.saturating_add(at - b.start);
        if file.read(offset, &mut buf[..n]) {
            Ok(n)
        } else {
            Err("the mapped file is shorter than the mapping")
        }
    }
}

impl ReadMemory for CoreMemory {
    fn read_into(&self, addr: usize, buf: &mut [u8]) -> Result<()> {
        let len = buf.len();
        let fail = |why: &str| Error::Memory {
            pid: self.pid,
            addr,
            len,
            source: std::io::Error::other(why.to_string()),
        };
        if addr == 0 {
            return Err(fail("null pointer"));
        }
        let mut done = 0usize;
        while done < buf.len() {
            let at = (addr as u64).wrapping_add(done as u64);
            let n = self.read_piece(at, &mut buf[done..]).map_err(fail)?;
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, bytes: &[u8]) -> (std::path::PathBuf, File) {
        let path =
            std::env::temp_dir().join(format!("gridlock-core-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        let f = File::open(&path).unwrap();
        (path, f)
    }

    #[test]
    fn reads_the_core_then_the_mapped_file_and_fails_elsewhere() {
        // The core holds 0x1000..0x1010 (bytes 1..=16) and a segment at 0x3000 whose bytes
        // it left out; the file mapped at 0x3000 from offset 8 holds them.
        let core_bytes: Vec<u8> = (1..=16).collect();
        let (core_path, core) = temp_file("core", &core_bytes);
        let lib: Vec<u8> = (100..140).collect();
        let (lib_path, lib_file) = temp_file("lib", &lib);
        let mem = CoreMemory::new(
            7,
            PagedFile::new(core).unwrap(),
            vec![
                Segment {
                    vaddr: 0x1000,
                    memsz: 0x10,
                    filesz: 0x10,
                    offset: 0,
                    flags: 4,
                },
                Segment {
                    vaddr: 0x3000,
                    memsz: 0x1000,
                    filesz: 0,
                    offset: 16,
                    flags: 4,
                },
            ],
            vec![Backing {
                start: 0x3000,
                end: 0x4000,
                offset: 8,
                file: Some(0),
            }],
            vec![PagedFile::new(lib_file).unwrap()],
        );
        assert_eq!(mem.bytes(0x1002, 3).unwrap(), vec![3, 4, 5]);
        assert_eq!(mem.bytes(0x3000, 2).unwrap(), vec![108, 109]);
        assert!(mem.read_dumped(0x1000, &mut [0u8; 16]));
        assert!(
            !mem.read_dumped(0x3000, &mut [0u8; 1]),
            "left out of the core"
        );
        // Past the end of the file, past the segment, and nowhere at all: errors.
        assert!(mem.bytes(0x3000 + 31, 2).is_err());
        assert!(mem.bytes(0x100e, 4).is_err());
        assert!(mem.u8(0x2000).is_err());
        assert!(mem.u8(0).is_err());
        let _ = std::fs::remove_file(core_path);
        let _ = std::fs::remove_file(lib_path);
    }

    #[test]
    fn a_truncated_core_is_an_error_not_zeros() {
        let (path, core) = temp_file("short", &[9u8; 8]);
        let mem = CoreMemory::new(
            7,
            PagedFile::new(core).unwrap(),
            vec![Segment {
                vaddr: 0x1000,
                memsz: 0x100,
                filesz: 0x100,
                offset: 0,
                flags: 4,
            }],
            Vec::new(),
            Vec::new(),
        );
        assert_eq!(mem.u64(0x1000).unwrap(), u64::from_le_bytes([9; 8]));
        let err = mem.u64(0x1004).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        let _ = std::fs::remove_file(path);
    }
}
